//! Cross-backend invalidation of the tenant cache through PostgreSQL's relcache
//! invalidation messages: sent at commit by the writer, processed by every other
//! backend at its next transaction start (or lock acquisition).

use crate::api::{citus, config, tokens};
use crate::{cache, catalog};
use pgrx::pg_sys;
use pgrx::prelude::*;

pub fn init() {
    // SAFETY: called once per backend from _PG_init; the callback only frees memory.
    unsafe { pg_sys::CacheRegisterRelcacheCallback(Some(on_relcache_invalidation), 0.into()) };
}

#[pg_guard]
unsafe extern "C-unwind" fn on_relcache_invalidation(_arg: pg_sys::Datum, relid: pg_sys::Oid) {
    // InvalidOid means "everything" (e.g. after an invalidation queue overflow).
    if relid == pg_sys::InvalidOid || catalog::is_catalog_relation(relid) {
        catalog::forget_relations();
        cache::invalidate();
        config::invalidate();
        tokens::invalidate();
        citus::invalidate();
    }
}

/// Statement trigger on the catalog tables: any change, through the API or
/// plain DML, invalidates every backend's caches. Sent as a change of
/// tenancy.tenants whichever table changed: on a Citus worker the trigger
/// fires on a reference table's placement, which no cache watches.
#[pg_trigger]
fn catalog_changed<'a>(
    _trigger: &'a pgrx::PgTrigger<'a>,
) -> Result<Option<PgHeapTuple<'a, AllocatedByPostgres>>, std::convert::Infallible> {
    // SAFETY: the message is queued for commit.
    unsafe { pg_sys::CacheInvalidateRelcacheByRelid(catalog::tenants_relid()) };
    Ok(None)
}
