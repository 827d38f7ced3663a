//! Reading `tenancy.tenants`: through the cache first, then the table itself,
//! queried as the table's owner so that application roles need no privilege on it.

use crate::cache;
use crate::postgres::security;
use crate::tenant::Tenant;
use pgrx::pg_sys;
use pgrx::prelude::*;
use std::cell::Cell;
use std::rc::Rc;
use uuid::Uuid;

/// The catalog tables whose changes invalidate the caches, and their owner.
#[derive(Clone, Copy)]
struct Relations {
    tenants: pg_sys::Oid,
    config_defaults: pg_sys::Oid,
    tenant_config: pg_sys::Oid,
    signing_keys: pg_sys::Oid,
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
    // SAFETY: syscache lookups; the relcache entry is released right away.
    let rels = unsafe {
        let namespace = pg_sys::get_namespace_oid(c"tenancy".as_ptr(), false);
        let relid = |name: &std::ffi::CStr| {
            let relid = pg_sys::get_relname_relid(name.as_ptr(), namespace);
            if relid == pg_sys::InvalidOid {
                error!("relation tenancy.{name:?} does not exist: is the extension installed?");
            }
            relid
        };
        let tenants = relid(c"tenants");
        let relation = pg_sys::RelationIdGetRelation(tenants);
        let owner = (*(*relation).rd_rel).relowner;
        pg_sys::RelationClose(relation);
        Relations {
            tenants,
            config_defaults: relid(c"config_defaults"),
            tenant_config: relid(c"tenant_config"),
            signing_keys: relid(c"signing_keys"),
            owner,
        }
    };
    RELATIONS.set(Some(rels));
    rels
}

pub fn is_catalog_relation(relid: pg_sys::Oid) -> bool {
    RELATIONS.get().is_some_and(|r| {
        [
            r.tenants,
            r.config_defaults,
            r.tenant_config,
            r.signing_keys,
        ]
        .contains(&relid)
    })
}

pub fn forget_relations() {
    RELATIONS.set(None);
}

/// Run catalog work as the owner of the tenancy catalog (see `security::as_owner`).
pub fn as_owner<R>(f: impl FnOnce() -> R) -> R {
    security::as_owner(relations().owner, f)
}

pub fn find_by_identifier(identifier: &str) -> Option<Rc<Tenant>> {
    cache::get_by_identifier(identifier).or_else(|| {
        load(
            "SELECT id, identifier, status, schema_name::text FROM tenancy.tenants WHERE identifier = $1",
            identifier,
        )
    })
}

pub fn find_by_id(id: Uuid) -> Option<Rc<Tenant>> {
    cache::get_by_id(id).or_else(|| {
        load(
            "SELECT id, identifier, status, schema_name::text FROM tenancy.tenants WHERE id = $1",
            pgrx::Uuid::from_bytes(*id.as_bytes()),
        )
    })
}

fn load(query: &str, key: impl IntoDatum) -> Option<Rc<Tenant>> {
    let generation = cache::generation();
    let tenant = as_owner(|| {
        Spi::connect(|client| {
            let rows = client.select(query, Some(1), &[key.into()])?;
            if rows.is_empty() {
                return Ok::<_, pgrx::spi::Error>(None);
            }
            let row = rows.first();
            let id: pgrx::Uuid = row.get(1)?.expect("id is NOT NULL");
            Ok(Some(Tenant {
                id: Uuid::from_bytes(*id.as_bytes()),
                identifier: row.get(2)?.expect("identifier is NOT NULL"),
                status: row.get(3)?.expect("status is NOT NULL"),
                schema: row.get(4)?,
            }))
        })
    })
    .unwrap_or_else(|e| error!("reading tenancy.tenants failed: {e}"))
    .map(Rc::new);
    if let Some(tenant) = &tenant {
        cache::insert(tenant.clone(), generation);
    }
    tenant
}
