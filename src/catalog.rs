//! Reading `tenancy.tenants`: through the cache first, then the table itself,
//! queried as the table's owner so that application roles need no privilege on it.

use crate::cache;
use crate::error::OrRaise;
use crate::error::TenancyError::{Internal, NotConfigured};
use crate::postgres::rows::{self, Seen};
use crate::postgres::{invalidation, query, relations, security};
use crate::tenant::{from_sql, to_sql, Status, Tenant};
use pgrx::pg_sys;
use pgrx::prelude::*;
use pgrx::spi::OwnedPreparedStatement;
use pgrx::{PgBuiltInOids, PgOid};
use std::cell::{Cell, OnceCell};
use std::rc::Rc;
use uuid::Uuid;

/// The catalog tables whose changes invalidate the caches, the relation that
/// announces them, and their owner.
#[derive(Clone, Copy)]
struct Relations {
    tenants: pg_sys::Oid,
    changes: pg_sys::Oid,
    config_defaults: pg_sys::Oid,
    tenant_config: pg_sys::Oid,
    signing_keys: pg_sys::Oid,
    cluster_key: pg_sys::Oid,
    owner: pg_sys::Oid,
}

thread_local! {
    /// Resolved once per backend; forgotten with the caches on invalidation
    /// (the tables may have been dropped with the extension, or changed owner).
    static RELATIONS: Cell<Option<Relations>> = const { Cell::new(None) };
}

fn relations() -> Relations {
    if let Some(rels) = RELATIONS.get() {
        return rels;
    }
    let relid = |name: &std::ffi::CStr| {
        relations::relid(c"tenancy", name).unwrap_or_else(|| {
            NotConfigured(
                format!("relation tenancy.{name:?} does not exist"),
                "Is the extension installed in this database? CREATE EXTENSION tenancy;".into(),
            )
            .raise()
        })
    };
    let tenants = relid(c"tenants");
    let rels = Relations {
        tenants,
        // Until the 0.5.0 upgrade script created it (an update from an
        // older release runs the older scripts with this library): the
        // tenants table, as before. That script changes watched tables, so
        // every backend resolves these again once it has run.
        changes: relations::relid(c"tenancy", c"catalog_changes").unwrap_or(tenants),
        config_defaults: relid(c"config_defaults"),
        tenant_config: relid(c"tenant_config"),
        signing_keys: relid(c"signing_keys"),
        cluster_key: relid(c"cluster_key"),
        owner: relations::owner(tenants),
    };
    RELATIONS.set(Some(rels));
    rels
}

/// Whether the extension is installed in this database.
pub fn installed() -> bool {
    RELATIONS.get().is_some() || relations::relid(c"tenancy", c"tenants").is_some()
}

/// The tenants table: who may read it administers tenancy (see grant_admin).
pub fn tenants_relation() -> pg_sys::Oid {
    relations().tenants
}

pub fn is_catalog_relation(relid: pg_sys::Oid) -> bool {
    RELATIONS.get().is_some_and(|r| {
        [
            r.tenants,
            r.changes,
            r.config_defaults,
            r.tenant_config,
            r.signing_keys,
            r.cluster_key,
        ]
        .contains(&relid)
    })
}

/// Statement trigger on the catalog tables: any change, through the API or
/// plain DML, invalidates every backend's caches. Sent as a change of
/// tenancy.catalog_changes whichever table changed: on a Citus worker the
/// trigger fires on a reference table's placement, which no cache watches;
/// and no backend has that relation open, so that it rebuilds nothing (the
/// writer, after each of its statements, included).
#[pg_trigger]
fn catalog_changed<'a>(
    _trigger: &'a pgrx::PgTrigger<'a>,
) -> Result<Option<PgHeapTuple<'a, AllocatedByPostgres>>, std::convert::Infallible> {
    invalidation::invalidate(relations().changes);
    Ok(None)
}

/// Whether a registered tenant has the schema of this name (false where the
/// extension is not installed: no tenant can).
pub fn is_registered_schema(schema: &str) -> bool {
    if relations::relid(c"tenancy", c"tenants").is_none() {
        return false;
    }
    as_owner(|| {
        query::optional_one::<bool>(
            "SELECT EXISTS (SELECT FROM tenancy.tenants WHERE schema_name = $1)",
            &[schema.into()],
        )
    })
    .or_raise("reading tenancy.tenants")
    .unwrap_or(false)
}

/// Mark the row of `table` whose `column` is `key` retired (once), as the
/// catalog owner; false when there is no such row.
pub fn retire(table: &str, column: &str, key: &str) -> bool {
    as_owner(|| {
        Spi::get_one_with_args::<bool>(
            &format!(
                "WITH r AS (UPDATE tenancy.{table} SET retired_at = coalesce(retired_at, clock_timestamp()) \
                 WHERE {column} = $1 RETURNING 1) SELECT count(*) > 0 FROM r"
            ),
            &[key.into()],
        )
    })
    .or_raise(&format!("retiring from tenancy.{table}"))
    .unwrap_or(false)
}

pub fn forget_relations() {
    RELATIONS.set(None);
    DIRECT.set(None);
}

/// Run catalog work as the owner of the tenancy catalog (see `security::as_owner`).
pub fn as_owner<R>(f: impl FnOnce() -> R) -> R {
    security::as_owner(relations().owner, f)
}

thread_local! {
    /// Whether any tenant may have limits (see `init`).
    static LIMITS_POSSIBLE: Cell<fn() -> bool> = const { Cell::new(|| true) };
}

/// From _PG_init: how to tell, without reading the catalog each time, that
/// no tenant has limits (api/limits.rs knows, as of the last invalidation);
/// a cache miss then reads one index less.
pub fn init(limits_possible: fn() -> bool) {
    LIMITS_POSSIBLE.set(limits_possible);
}

/// Whether a destroy freed `identifier` (tenancy.freed_identifiers), on the
/// latest committed state: a JWT naming the tenant registered under it since
/// must be younger than that registration (api/tokens.rs). Read only for
/// such a JWT, not with every tenant the cache loads.
pub fn identifier_freed(identifier: &str) -> bool {
    let (freed, _) = query::on_latest_snapshot(|| {
        as_owner(|| {
            Spi::get_one_with_args::<bool>(
                "SELECT EXISTS (SELECT FROM tenancy.freed_identifiers WHERE identifier = $1)",
                &[identifier.into()],
            )
        })
    });
    freed
        .or_raise("reading tenancy.freed_identifiers")
        .unwrap_or(false)
}

pub fn find_by_identifier(identifier: &str) -> Option<Rc<Tenant>> {
    cache::get_by_identifier(identifier).or_else(|| load(Lookup::ByIdentifier, identifier))
}

pub fn find_by_id(id: Uuid) -> Option<Rc<Tenant>> {
    cache::get_by_id(id).or_else(|| load(Lookup::ById, to_sql(id)))
}

#[derive(Clone, Copy)]
enum Lookup {
    ByIdentifier = 0,
    ById = 1,
}

thread_local! {
    /// The two lookups, prepared once per backend and kept (SPI_keepplan): a
    /// cache miss costs an execution, not a parse and plan. PostgreSQL's plan
    /// cache revalidates them if the table is ever recreated.
    static LOOKUPS: OnceCell<Rc<[OwnedPreparedStatement; 2]>> = const { OnceCell::new() };
}

fn prepared(client: &pgrx::spi::SpiClient) -> Rc<[OwnedPreparedStatement; 2]> {
    if let Some(lookups) = LOOKUPS.with(|l| l.get().cloned()) {
        return lookups;
    }
    let columns = "SELECT t.id, t.identifier, t.status, t.schema_name::text, \
                   (extract(epoch FROM t.created_at) * 1000000)::int8, \
                   (SELECT jsonb_object_agg(c.key, c.value)::text FROM tenancy.tenant_config c \
                     WHERE c.tenant_id = t.id AND starts_with(c.key, 'limits.')) \
                   FROM tenancy.tenants t";
    let prepare = |filter: &str, arg: PgBuiltInOids| {
        client
            .prepare(
                &*format!("{columns} WHERE t.{filter} = $1"),
                &[PgOid::BuiltIn(arg)],
            )
            .or_raise("preparing the tenant lookup")
            .keep()
    };
    let lookups = Rc::new([
        prepare("identifier", PgBuiltInOids::TEXTOID),
        prepare("id", PgBuiltInOids::UUIDOID),
    ]);
    LOOKUPS.with(|l| l.get_or_init(|| lookups.clone()).clone())
}

fn load(lookup: Lookup, key: impl IntoDatum) -> Option<Rc<Tenant>> {
    let generation = cache::generation();
    let (tenant, latest) = match direct() {
        Some(direct) => query::on_latest_snapshot(|| Ok(direct.read(lookup, key))),
        None => read_with_spi(lookup, key),
    };
    let tenant = tenant.or_raise("reading tenancy.tenants").map(Rc::new);
    if let Some(tenant) = tenant.as_ref().filter(|_| latest) {
        cache::insert(tenant.clone(), generation);
    }
    tenant
}

/// Where a cache miss reads the catalog without the executor (see
/// `rows`): starting the lookup's plan (two relations, an aggregate) cost
/// three times what reading the rows through their indexes costs, and a
/// miss is what a pooled connection pays for each tenant it has not seen.
/// Resolved with the relations; None where Citus is loaded (the catalog
/// tables are reference tables, whose rows the coordinator reads through
/// Citus) or an index is missing: the SPI lookup then serves.
#[derive(Clone, Copy)]
struct Direct {
    tenants: pg_sys::Oid,
    by_identifier: rows::Index,
    by_id: rows::Index,
    id: i16,
    identifier: i16,
    status: i16,
    schema_name: i16,
    created_at: i16,
    config: pg_sys::Oid,
    config_by_tenant: rows::Index,
    config_tenant: i16,
    config_key: i16,
    config_value: i16,
}

thread_local! {
    /// Resolved once per backend, forgotten with the relations.
    static DIRECT: Cell<Option<Option<Direct>>> = const { Cell::new(None) };
}

fn direct() -> Option<Direct> {
    if let Some(direct) = DIRECT.get() {
        return direct;
    }
    // Resolved first: which relations' changes invalidate the cache that
    // this read fills is known only once they are (see is_catalog_relation).
    relations();
    let resolve = || {
        if crate::postgres::citus::loaded() {
            return None;
        }
        let table = |name| relations::relid(c"tenancy", name);
        let column = |table, name| Some(rows::column(table, name)).filter(|&n| n > 0);
        let (tenants, config) = (table(c"tenants")?, table(c"tenant_config")?);
        let (id, identifier, config_tenant) = (
            column(tenants, c"id")?,
            column(tenants, c"identifier")?,
            column(config, c"tenant_id")?,
        );
        Some(Direct {
            tenants,
            by_identifier: rows::index_on(tenants, identifier)?,
            by_id: rows::index_on(tenants, id)?,
            id,
            identifier,
            status: column(tenants, c"status")?,
            schema_name: column(tenants, c"schema_name")?,
            created_at: column(tenants, c"created_at")?,
            config,
            config_by_tenant: rows::index_on(config, config_tenant)?,
            config_tenant,
            config_key: column(config, c"key")?,
            config_value: column(config, c"value")?,
        })
    };
    let direct = resolve();
    DIRECT.set(Some(direct));
    direct
}

/// Microseconds from the Unix epoch to PostgreSQL's (2000-01-01).
const POSTGRES_EPOCH_US: i64 = 946_684_800_000_000;

impl Direct {
    /// What the SPI lookup returns, read through the indexes under the
    /// active snapshot.
    fn read(&self, lookup: Lookup, key: impl IntoDatum) -> Option<Tenant> {
        let (index, column, equal) = match lookup {
            Lookup::ByIdentifier => (self.by_identifier, self.identifier, pg_sys::F_TEXTEQ),
            Lookup::ById => (self.by_id, self.id, pg_sys::F_UUID_EQ),
        };
        let key = key.into_datum()?;
        let mut found = None;
        rows::each_equal(
            self.tenants,
            index,
            column,
            equal,
            key,
            Seen::Active,
            |row| {
                found = Some((
                    row.get::<pgrx::Uuid>(self.id),
                    row.get::<String>(self.identifier),
                    row.get::<String>(self.status),
                    row.name(self.schema_name),
                    row.datum(self.created_at).map(|at| at.value() as i64),
                ));
                false
            },
        );
        let (Some(id), Some(identifier), Some(status), schema, Some(created_at)) = found? else {
            Internal("a row of tenancy.tenants lacks a required column".into()).raise()
        };
        let mut limits = serde_json::Map::new();
        // While no tenant has limits (as of the last invalidation: one that
        // adds some empties the cache), there are none to read.
        if LIMITS_POSSIBLE.get()() {
            rows::each_equal(
                self.config,
                self.config_by_tenant,
                self.config_tenant,
                pg_sys::F_UUID_EQ,
                id.into_datum()?,
                Seen::Active,
                |row| {
                    if let Some(key) = row.get::<String>(self.config_key) {
                        if key.starts_with("limits.") {
                            if let Some(pgrx::JsonB(value)) = row.get(self.config_value) {
                                limits.insert(key, value);
                            }
                        }
                    }
                    true
                },
            );
        }
        Some(Tenant {
            id: from_sql(id),
            identifier,
            status: Status::parse(&status),
            schema,
            created_at: created_at + POSTGRES_EPOCH_US,
            limits: (!limits.is_empty()).then(|| serde_json::Value::Object(limits).to_string()),
        })
    }
}

/// The lookup through SPI (where Citus is loaded), as the catalog's owner.
fn read_with_spi(
    lookup: Lookup,
    key: impl IntoDatum,
) -> (Result<Option<Tenant>, query::ReadError>, bool) {
    // Prepared under as_owner's pinned search_path, executed as the owner.
    query::on_latest_snapshot(|| {
        as_owner(|| {
            Spi::connect(|client| {
                let lookups = prepared(client);
                let rows = client.select(&lookups[lookup as usize], Some(1), &[key.into()])?;
                if rows.is_empty() {
                    return Ok::<_, query::ReadError>(None);
                }
                let row = rows.first();
                let id: pgrx::Uuid = query::required(&row, 1)?;
                Ok(Some(Tenant {
                    id: from_sql(id),
                    identifier: query::required(&row, 2)?,
                    status: Status::parse(&query::required::<String>(&row, 3)?),
                    schema: row.get(4)?,
                    created_at: query::required(&row, 5)?,
                    limits: row.get(6)?,
                }))
            })
        })
    })
}
