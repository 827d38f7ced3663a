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

use crate::api::{audit, policies};
use crate::catalog;
use crate::error::OrRaise;
use crate::error::TenancyError::*;
use crate::postgres::system::unix_now;
use crate::postgres::{citus, gucs, security};
use crate::tenant::Tenant;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use hmac::{Hmac, Mac};
use pgrx::prelude::*;
use serde_json::json;
use sha2::Sha256;
use std::cell::RefCell;
use std::rc::Rc;
use uuid::Uuid;

type HmacSha256 = Hmac<Sha256>;

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
            let signature = B64.encode(sign(&key(), payload.as_bytes()));
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
    let mut mac = HmacSha256::new_from_slice(&key()).expect("HMAC takes any key length");
    mac.update(signed.as_bytes());
    mac.verify_slice(&signature)
        .map_err(|_| "the signature does not match this cluster's key".to_string())?;
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
    })
}

/// This backend's distributed transaction id: (initiator node, number,
/// timestamp in microseconds); number 0 when it has none.
fn distributed_transaction() -> (i32, i64, i64) {
    Spi::get_three::<i32, i64, i64>(
        "SELECT initiator_node_identifier, transaction_number, \
                coalesce(floor(extract(epoch FROM transaction_stamp) * 1000000), 0)::int8 \
         FROM pg_catalog.get_current_transaction_id()",
    )
    .map(|(a, b, c)| (a.unwrap_or(0), b.unwrap_or(0), c.unwrap_or(0)))
    .or_raise("reading the distributed transaction id")
}

fn key() -> Rc<Vec<u8>> {
    if let Some(key) = KEY.with_borrow(|k| k.clone()) {
        return key;
    }
    let key = catalog::as_owner(|| Spi::get_one::<Vec<u8>>("SELECT key FROM tenancy.cluster_key"))
        .ok()
        .flatten()
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

fn sign(key: &[u8], message: &[u8]) -> Vec<u8> {
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(message);
    mac.finalize().into_bytes().to_vec()
}

/// Refuse a session-scoped context where a protected table is distributed:
/// Citus carries SET LOCAL only, so the workers would not see it.
pub(crate) fn check_session_scope() {
    let distributed = catalog::as_owner(|| {
        Spi::get_one::<bool>(
            "SELECT EXISTS (SELECT FROM tenancy.protected_tables p \
                            JOIN pg_catalog.pg_dist_partition d ON d.logicalrelid = p.relid::oid)",
        )
    })
    .ok()
    .flatten()
    .unwrap_or(false);
    if distributed {
        SessionScopeOnCitus.raise();
    }
}

/// Whether tenant schemas become Citus distributed schemas: on Citus, once
/// `distribute()` has made the catalog reference tables.
pub(crate) fn shards_schemas() -> bool {
    active()
        && Spi::get_one::<bool>(
            "SELECT EXISTS (SELECT FROM pg_catalog.pg_dist_partition \
                            WHERE logicalrelid = 'tenancy.tenants'::pg_catalog.regclass)",
        )
        .ok()
        .flatten()
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
        .or_raise("a statement")
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
                .map(|row| Ok(row.get::<pg_sys::Oid>(1)?.expect("oid")))
                .collect::<Result<_, pgrx::spi::Error>>()
        })
        .or_raise("a statement");
        for relid in new_tables {
            citus::create_tenant_schema_table(relid);
        }
    });
}

/// Make this Citus cluster one for tenancy (superusers, on the coordinator):
/// the tenant catalog, configuration and migrations become reference tables
/// (the same rows on every node), and every worker gets the coordinator's
/// cluster key. Idempotent.
#[pg_extern(volatile, parallel_unsafe, requires = ["catalog"])]
fn distribute() {
    if !security::is_superuser() {
        PermissionDenied(
            "only a superuser can distribute the tenancy catalog".into(),
            "It changes the catalog on every node of the cluster.".into(),
        )
        .raise();
    }
    if !active() {
        NotConfigured(
            "Citus is not installed in this database".into(),
            "Preload citus and CREATE EXTENSION citus first.".into(),
        )
        .raise();
    }
    let role = security::current_role_name();
    // Citus converts tables of the catalog (and those their foreign keys
    // reach) with DDL that auto-protect must not act on.
    policies::without_auto_protect(|| {
        catalog::as_owner(|| {
            // In foreign-key order; the catalog's triggers only invalidate
            // caches; the tables exist on the workers already (CREATE EXTENSION
            // was propagated), so no local table may be converted on the way.
            security::with_setting(
                c"citus.enable_local_reference_table_foreign_keys",
                "off",
                || {
                    security::with_setting(c"citus.enable_unsafe_triggers", "on", || {
                        for table in [
                            "tenants",
                            "config_defaults",
                            "tenant_config",
                            "migrations",
                            "schema_migrations",
                        ] {
                            Spi::run(&format!(
                    "SELECT pg_catalog.create_reference_table('tenancy.{table}') \
                     WHERE NOT EXISTS (SELECT FROM pg_catalog.pg_dist_partition \
                                       WHERE logicalrelid = 'tenancy.{table}'::pg_catalog.regclass)"
                ))
                            .or_raise(&format!("making tenancy.{table} a reference table"));
                        }
                    })
                },
            );
            // The key travels as a literal over Citus' connections as this
            // superuser: only superusers can see that statement's text.
            Spi::run(
                "SELECT pg_catalog.run_command_on_workers(pg_catalog.format( \
                 'UPDATE tenancy.cluster_key SET key = %L::bytea', key)) FROM tenancy.cluster_key",
            )
            .or_raise("sending the cluster key to the workers");
            let _ = audit::record(&role, "distribute", None, json!({}));
        })
    });
}

/// Distribute a protected table by its tenant column, or make it a
/// reference table (Citus refuses to distribute a table with triggers, and
/// policies with a sub-select): its protection is lifted, the table
/// distributed as the caller (who must own it, as Citus requires) and
/// protected again, in one transaction.
#[pg_extern(volatile, parallel_unsafe, requires = ["catalog"])]
fn distribute_table(
    tbl: Option<pgrx::PgRelation>,
    colocate_with: default!(Option<&str>, "'default'"),
    reference: default!(Option<bool>, false),
) {
    // The relation is let go at once: it is altered below.
    let relid = crate::error::required(tbl, "tbl").oid();
    let colocate_with = crate::error::required(colocate_with, "colocate_with");
    let reference = crate::error::required(reference, "reference");
    if !active() {
        NotConfigured(
            "Citus is not installed in this database".into(),
            "Preload citus and CREATE EXTENSION citus first.".into(),
        )
        .raise();
    }
    let column = catalog::as_owner(|| {
        Spi::get_one_with_args::<String>(
            "SELECT tenant_column::text FROM tenancy.protected_tables WHERE relid = $1",
            &[relid.into()],
        )
    })
    .ok()
    .flatten()
    .unwrap_or_else(|| "tenant_id".into());
    Spi::run_with_args("SELECT tenancy.unprotect($1)", &[relid.into()]).or_raise("a statement");
    let distribute = if reference {
        Spi::run_with_args(
            "SELECT pg_catalog.create_reference_table($1)",
            &[relid.into()],
        )
    } else {
        Spi::run_with_args(
            "SELECT pg_catalog.create_distributed_table($1, $2, colocate_with => $3)",
            &[relid.into(), column.as_str().into(), colocate_with.into()],
        )
    };
    distribute.or_raise("distributing the table");
    Spi::run_with_args(
        "SELECT tenancy.protect($1, $2)",
        &[relid.into(), column.as_str().into()],
    )
    .or_raise("a statement");
}

/// For verify(): shard placements of protected Citus tables whose
/// row-level security is not what protect() made (a shard created by a
/// rebalance, a split or isolate_tenant_to_new_shard, or changed on a worker).
#[pg_extern(volatile, parallel_unsafe, requires = ["catalog"])]
fn citus_placement_problems() -> TableIterator<
    'static,
    (
        name!(severity, String),
        name!(object, String),
        name!(problem, String),
        name!(fix, String),
    ),
> {
    if !active() {
        return TableIterator::new(Vec::new());
    }
    let rows: Vec<(String, String, String, String)> = catalog::as_owner(|| {
        Spi::connect(|client| {
            client
                .select(
                    "SELECT 'error', pg_catalog.format('shard %s of %s on %s:%s', r.shardid, p.relid, r.nodename, r.nodeport), \
                            pg_catalog.format('shard placement without the row-level security of its table (%s)', r.result), \
                            pg_catalog.format('SELECT tenancy.protect(%L, %L);', p.relid::text, p.tenant_column) \
                     FROM tenancy.protected_tables p \
                     JOIN pg_catalog.pg_dist_partition d ON d.logicalrelid = p.relid::oid \
                     CROSS JOIN LATERAL pg_catalog.run_command_on_placements(p.relid, \
                         $$SELECT coalesce((SELECT (c.relrowsecurity AND c.relforcerowsecurity \
                                  AND EXISTS (SELECT FROM pg_catalog.pg_policy pol \
                                              WHERE pol.polrelid = c.oid AND pol.polname = 'tenancy_isolation'))::text \
                                  FROM pg_catalog.pg_class c WHERE c.oid = pg_catalog.to_regclass('%s')), 'missing')$$) r \
                     WHERE r.result IS DISTINCT FROM 'true'",
                    None,
                    &[],
                )?
                .map(|row| {
                    Ok((
                        row.get(1)?.unwrap_or_default(),
                        row.get(2)?.unwrap_or_default(),
                        row.get(3)?.unwrap_or_default(),
                        row.get(4)?.unwrap_or_default(),
                    ))
                })
                .collect::<Result<_, pgrx::spi::Error>>()
        })
    })
    .or_raise("checking the shard placements");
    TableIterator::new(rows)
}
