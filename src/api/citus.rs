//! Scale-out on Citus: the tenant context of a coordinator's transaction
//! reaches the workers that run its shard queries, and nothing else opens it.
//!
//! A worker evaluates the policies of shards itself, with its own (empty)
//! `tenancy.tenant`. So `set_tenant(…, is_local => true)` on a coordinator
//! also signs a carrier — HMAC-SHA256 with the cluster key over the tenant,
//! the distributed transaction id and an expiry — and issues it as
//! `SET LOCAL tenancy.context = …`, which Citus sends to every worker the
//! transaction uses (`citus.propagate_set_commands = 'local'`, set for that
//! statement only). A worker's `current_tenant()` accepts a carrier only if
//! it verifies with its cluster key, has not expired, and names the
//! distributed transaction the worker's backend belongs to: edited, forged,
//! or replayed in another transaction or on a connection of its own, it is an
//! error, never "no tenant". Tenant status is checked where the carrier is
//! signed: a carrier lives one transaction, so a suspension committed on the
//! coordinator is refused by every node from the next transaction on.

use crate::catalog;
use crate::error::OrRaise;
use crate::error::TenancyError::*;
use crate::postgres::system::unix_now;
use crate::postgres::{citus, gucs, query, security};
use crate::signature;
use crate::tenant::Tenant;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use pgrx::prelude::*;
use std::cell::RefCell;
use std::rc::Rc;
use uuid::Uuid;

/// How long a carrier verifies: longer than any request transaction should
/// take, short enough that one read from a log is of no use.
const CARRIER_SECONDS: i64 = 300;

thread_local! {
    /// The cluster key, loaded on first use, dropped on catalog invalidation.
    static KEY: RefCell<Option<Rc<Vec<u8>>>> = const { RefCell::new(None) };
    /// The carrier verified in this transaction, and its tenant.
    static VERIFIED: RefCell<Option<(Vec<u8>, Rc<Tenant>)>> = const { RefCell::new(None) };
}

pub fn invalidate() {
    KEY.with_borrow_mut(|k| *k = None);
}

pub fn on_transaction_end() {
    VERIFIED.with_borrow_mut(|v| *v = None);
}

/// Whether this database runs on Citus (library loaded, extension installed).
pub fn active() -> bool {
    citus::installed()
}

/// Sign the context of this transaction for the workers and hand it to
/// Citus (or clear it, for `None`). Called for every transaction-scoped
/// context change on a Citus coordinator.
pub(crate) fn carry(tenant: Option<&Tenant>) {
    let carrier = match tenant {
        Some(tenant) => {
            citus::use_coordinated_transaction();
            let (initiator, number, stamp) = distributed_transaction();
            let expiry = unix_now() + CARRIER_SECONDS;
            let payload = format!(
                "c1.{}.{}.{initiator}.{number}.{stamp}.{expiry}",
                tenant.id.simple(),
                B64.encode(tenant.identifier.as_bytes()),
            );
            let signature = B64.encode(signature::sign(&key(), payload.as_bytes()));
            format!("{payload}.{signature}")
        }
        None => String::new(),
    };
    // Citus propagates SET LOCAL statements, not set_config(): issue one,
    // with propagation on for this statement only.
    security::with_setting(c"citus.propagate_set_commands", "local", || {
        Spi::run(&format!("SET LOCAL tenancy.context = '{carrier}'"))
            .or_raise("passing the tenant context to Citus");
    });
}

/// On a worker: the tenant of a verified carrier, or None without one.
/// The id of the coordinator's tenant if its carrier has been verified
/// already (by a statement that needed it); never raises.
pub(crate) fn verified_carried_id() -> Option<uuid::Uuid> {
    gucs::with_context_setting(|text| {
        VERIFIED.with_borrow(|v| {
            v.as_ref()
                .filter(|(carrier, _)| carrier == text)
                .map(|(_, tenant)| tenant.id)
        })
    })?
}

pub(crate) fn carried_tenant() -> Option<Rc<Tenant>> {
    let cached = gucs::with_context_setting(|text| {
        VERIFIED.with_borrow(|v| {
            v.as_ref()
                .filter(|(carrier, _)| carrier == text)
                .map(|(_, tenant)| tenant.clone())
        })
    })?;
    if let Some(tenant) = cached {
        return Some(tenant);
    }
    let text = gucs::with_context_setting(|text| text.to_vec())?;
    let tenant = Rc::new(
        verify(&String::from_utf8_lossy(&text))
            .unwrap_or_else(|reason| InvalidContext(reason).raise()),
    );
    VERIFIED.with_borrow_mut(|v| *v = Some((text, tenant.clone())));
    Some(tenant)
}

fn verify(carrier: &str) -> Result<Tenant, String> {
    let parts: Vec<&str> = carrier.split('.').collect();
    let ["c1", tenant, identifier, initiator, number, stamp, expiry, signature] = parts[..] else {
        return Err("malformed context".into());
    };
    let signature = B64
        .decode(signature)
        .map_err(|_| "malformed context".to_string())?;
    let signed = &carrier[..carrier.len() - parts[7].len() - 1];
    if !signature::verify(&key(), signed.as_bytes(), &signature) {
        return Err("the signature does not match this cluster's key".into());
    }
    // Signed by a coordinator of this cluster: the fields are its own.
    if expiry.parse::<i64>().map_err(|_| "malformed context")? <= unix_now() {
        return Err("the context has expired".into());
    }
    let (here_initiator, here_number, here_stamp) = distributed_transaction();
    if (initiator, number, stamp)
        != (
            here_initiator.to_string().as_str(),
            here_number.to_string().as_str(),
            here_stamp.to_string().as_str(),
        )
        || here_number == 0
    {
        return Err("the context belongs to another distributed transaction".into());
    }
    Ok(Tenant {
        id: Uuid::try_parse(tenant).map_err(|_| "malformed context")?,
        identifier: B64
            .decode(identifier)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .ok_or("malformed context")?,
        status: crate::tenant::Status::Active,
        schema: None,
        created_at: 0,
        limits: None,
    })
}

/// This backend's distributed transaction id: (initiator node, number,
/// timestamp in microseconds); number 0 when it has none.
fn distributed_transaction() -> (i32, i64, i64) {
    security::pinned(|| {
        Spi::get_three::<i32, i64, i64>(
            "SELECT initiator_node_identifier, transaction_number, \
                    coalesce(floor(extract(epoch FROM transaction_stamp) * 1000000), 0)::int8 \
             FROM get_current_transaction_id()",
        )
    })
    .map(|(a, b, c)| (a.unwrap_or(0), b.unwrap_or(0), c.unwrap_or(0)))
    .or_raise("reading the distributed transaction id")
}

fn key() -> Rc<Vec<u8>> {
    if let Some(key) = KEY.with_borrow(|k| k.clone()) {
        return key;
    }
    let key = catalog::as_owner(|| {
        query::optional_one::<Vec<u8>>("SELECT key FROM tenancy.cluster_key", &[])
    })
    .or_raise("reading the cluster key")
    .unwrap_or_else(|| {
        NotConfigured(
            "this node has no cluster key".into(),
            "Run SELECT tenancy.distribute(); on the coordinator.".into(),
        )
        .raise()
    });
    let key = Rc::new(key);
    KEY.with_borrow_mut(|k| *k = Some(key.clone()));
    key
}

/// Refuse a session-scoped context where a protected table is distributed:
/// Citus carries SET LOCAL only, so the workers would not see it.
pub(crate) fn check_session_scope() {
    let distributed = catalog::as_owner(|| {
        query::optional_one::<bool>(
            "SELECT EXISTS (SELECT FROM tenancy.protected_tables p \
                            JOIN pg_catalog.pg_dist_partition d ON d.logicalrelid = p.relid::oid)",
            &[],
        )
    })
    .or_raise("reading the distributed tables")
    .unwrap_or(false);
    if distributed {
        SessionScopeOnCitus.raise();
    }
}

/// Whether tenant schemas become Citus distributed schemas: on Citus, once
/// `distribute()` has made the catalog reference tables.
pub(crate) fn shards_schemas() -> bool {
    active()
        && query::optional_one::<bool>(
            "SELECT EXISTS (SELECT FROM pg_catalog.pg_dist_partition \
                            WHERE logicalrelid = 'tenancy.tenants'::pg_catalog.regclass)",
            &[],
        )
        .or_raise("reading the distributed tables")
        .unwrap_or(false)
}

/// After migrations ran in a tenant's schema (as the migration owner): make
/// it a distributed schema of Citus' schema-based sharding, or make the
/// tables the migrations created there tables of it (Citus converts only
/// top-level CREATE TABLE statements). The tables' triggers are the
/// extension's guards.
pub(crate) fn distribute_schema(schema: &str) {
    security::with_setting(c"citus.enable_unsafe_triggers", "on", || {
        let distributed = Spi::get_one_with_args::<bool>(
            "SELECT EXISTS (SELECT FROM pg_catalog.pg_dist_schema \
                            WHERE schemaid = $1::pg_catalog.regnamespace)",
            &[spi::quote_identifier(schema).into()],
        )
        .or_raise("reading Citus's distributed schemas")
        .unwrap_or(false);
        if !distributed {
            Spi::run_with_args(
                "SELECT pg_catalog.citus_schema_distribute($1::pg_catalog.regnamespace)",
                &[spi::quote_identifier(schema).into()],
            )
            .or_raise(&format!("distributing schema {schema}"));
            return;
        }
        let new_tables: Vec<pg_sys::Oid> = Spi::connect(|client| {
            client
                .select(
                    "SELECT c.oid FROM pg_catalog.pg_class c \
                     WHERE c.relnamespace = $1::pg_catalog.regnamespace AND c.relkind IN ('r', 'p') \
                       AND NOT c.relispartition \
                       AND NOT EXISTS (SELECT FROM pg_catalog.pg_dist_partition d WHERE d.logicalrelid = c.oid)",
                    None,
                    &[spi::quote_identifier(schema).into()],
                )?
                .map(|row| query::required::<pg_sys::Oid>(&row, 1))
                .collect::<Result<_, query::ReadError>>()
        })
        .or_raise("listing the schema's tables to distribute");
        for relid in new_tables {
            citus::create_tenant_schema_table(relid);
        }
    });
}

/// Run `f` (creating a schema) with Citus' schema-based sharding off, when
/// Citus is there: the extension distributes tenant schemas itself, and never
/// its scratch schema; and with the schema created on the workers at once
/// (Citus defers that inside a transaction block, or a function).
pub(crate) fn without_schema_sharding(f: impl FnOnce()) {
    if active() {
        security::with_setting(c"citus.enable_schema_based_sharding", "off", || {
            security::with_setting(c"citus.create_object_propagation", "immediate", f)
        })
    } else {
        f()
    }
}
