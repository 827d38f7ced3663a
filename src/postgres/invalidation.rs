//! Cross-backend invalidation through PostgreSQL's relcache invalidation
//! messages: sent at commit by the writer, processed by every other backend
//! at its next transaction start (or lock acquisition). The boundary knows no
//! feature: the catalog says which relations are watched, the features
//! register what to forget, and an epoch counts the invalidations.

use pgrx::pg_sys;
use pgrx::prelude::*;
use std::cell::{Cell, RefCell};

/// Read on every statement (see `BackendCell`).
static EPOCH: super::BackendCell<u64> = super::BackendCell::new(0);

thread_local! {
    static WATCHED: Cell<Option<super::OidTest>> = const { Cell::new(None) };
    static CALLBACKS: RefCell<Vec<fn()>> = const { RefCell::new(Vec::new()) };
}

/// Once per backend, from _PG_init: `watched` tells which relations' changes
/// invalidate.
pub fn init(watched: super::OidTest) {
    WATCHED.set(Some(watched));
    // SAFETY: called once per backend from _PG_init; the callback only runs
    // registered functions, which may only clear memory.
    unsafe { pg_sys::CacheRegisterRelcacheCallback(Some(on_relcache_invalidation), 0.into()) };
}

/// Run `forget` at every invalidation of a watched relation. It may only
/// clear memory (no catalog access, no SPI).
pub fn register(forget: fn()) {
    CALLBACKS.with_borrow_mut(|callbacks| callbacks.push(forget));
}

/// Counts the invalidations this backend processed: a cache filled from a
/// read that an invalidation overtook must not keep it (compare before and after).
pub fn epoch() -> u64 {
    EPOCH.get()
}

/// Process the invalidations other backends committed since this one last
/// did (it does at transaction start and when it takes a lock): a read
/// inside a transaction that opens no relation follows them too.
pub fn catch_up() {
    // SAFETY: what PostgreSQL does at every lock acquisition.
    unsafe { pg_sys::AcceptInvalidationMessages() };
}

/// Queue an invalidation of `relid` for every backend, sent at commit.
pub fn invalidate(relid: pg_sys::Oid) {
    // SAFETY: queues a message for commit.
    unsafe { pg_sys::CacheInvalidateRelcacheByRelid(relid) };
}

#[pg_guard]
unsafe extern "C-unwind" fn on_relcache_invalidation(_arg: pg_sys::Datum, relid: pg_sys::Oid) {
    // InvalidOid means "everything" (e.g. after an invalidation queue overflow).
    if relid == pg_sys::InvalidOid || WATCHED.get().is_some_and(|watched| watched(relid)) {
        EPOCH.set(EPOCH.get() + 1);
        let callbacks = CALLBACKS.with_borrow(|callbacks| callbacks.clone());
        callbacks.iter().for_each(|forget| forget());
    }
}
