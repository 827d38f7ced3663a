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

#[derive(Clone, Copy)]
struct Relation {
    relid: pg_sys::Oid,
    owner: pg_sys::Oid,
}

thread_local! {
    /// Resolved once per backend; forgotten with the cache on invalidation
    /// (the table may have been dropped with the extension, or changed owner).
    static TENANTS: Cell<Option<Relation>> = const { Cell::new(None) };
}

fn tenants_relation() -> Relation {
    if let Some(rel) = TENANTS.get() {
        return rel;
    }
    // SAFETY: syscache lookups; the relcache entry is released right away.
    let rel = unsafe {
        let namespace = pg_sys::get_namespace_oid(c"tenancy".as_ptr(), false);
        let relid = pg_sys::get_relname_relid(c"tenants".as_ptr(), namespace);
        if relid == pg_sys::InvalidOid {
            error!("relation \"tenancy.tenants\" does not exist: is the extension installed?");
        }
        let relation = pg_sys::RelationIdGetRelation(relid);
        let owner = (*(*relation).rd_rel).relowner;
        pg_sys::RelationClose(relation);
        Relation { relid, owner }
    };
    TENANTS.set(Some(rel));
    rel
}

pub fn is_tenants_relation(relid: pg_sys::Oid) -> bool {
    TENANTS.get().is_some_and(|rel| rel.relid == relid)
}

pub fn forget_relation() {
    TENANTS.set(None);
}

/// Run catalog work as the owner of the tenancy catalog (see `security::as_owner`).
pub fn as_owner<R>(f: impl FnOnce() -> R) -> R {
    security::as_owner(tenants_relation().owner, f)
}

pub fn find_by_identifier(identifier: &str) -> Option<Rc<Tenant>> {
    cache::get_by_identifier(identifier).or_else(|| {
        load(
            "SELECT id, identifier, status FROM tenancy.tenants WHERE identifier = $1",
            identifier,
        )
    })
}

pub fn find_by_id(id: Uuid) -> Option<Rc<Tenant>> {
    cache::get_by_id(id).or_else(|| {
        load(
            "SELECT id, identifier, status FROM tenancy.tenants WHERE id = $1",
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
