//! Backend-local LRU cache of tenants, so that `set_tenant` (by identifier) and
//! `current_tenant` (by id) cost a hash lookup instead of a query.
//!
//! Staleness is ruled out by invalidation, not by a TTL: every change to
//! `tenancy.tenants` sends a relcache invalidation, and `invalidate()` runs in
//! every backend when it processes it (see `postgres::invalidation`). Borrows
//! of the cache are never held across anything that can process invalidations.

use crate::postgres::gucs;
use crate::tenant::Tenant;
use std::cell::RefCell;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::rc::Rc;
use uuid::Uuid;

#[derive(Default, Clone, Copy, Debug, PartialEq)]
pub struct Stats {
    pub hits: i64,
    pub misses: i64,
    pub evictions: i64,
    pub invalidations: i64,
}

/// Least-recently-used by a use counter stored next to each entry: a hit
/// writes only the entry it found, where a linked LRU list would also touch
/// its neighbours (cache misses on the hot path of every statement). The
/// oldest entry is found through `queue`, which only a miss on a full cache
/// reads: a min-heap of (counter when queued, id) holding every entry at
/// least once, at or before its last use. An entry used since it was queued
/// is queued again at its last use when it reaches the top; the first that
/// was not is the least recently used (every other entry's last use is at
/// or after its own place in the heap, which is at or after the top's). A
/// miss that evicts costs O(log n), amortized, where a scan of the whole
/// cache cost O(n) (300,000 instructions at the default size).
#[derive(Default)]
struct Cache {
    by_id: HashMap<Uuid, (Rc<Tenant>, u64)>,
    queue: BinaryHeap<Reverse<(u64, Uuid)>>,
    /// identifier → id, kept in step with `by_id` (same entries).
    by_identifier: HashMap<String, Uuid>,
    /// Counts lookups; an entry's copy says when it was last used.
    clock: u64,
    stats: Stats,
    /// Bumped by every invalidation: a lookup that raced with one is not cached.
    generation: u64,
    /// The text of `tenancy.tenant` last looked up, and its tenant (an entry
    /// of `by_id`: forgotten with it).
    by_setting: Option<(Vec<u8>, Rc<Tenant>)>,
}

thread_local! {
    static CACHE: RefCell<Cache> = RefCell::new(Cache::default());
}

fn capacity() -> usize {
    gucs::cache_size()
}

impl Cache {
    /// Follow `tenancy.cache_size` when it shrinks.
    fn fit_capacity(&mut self) {
        while self.by_id.len() > capacity() && self.evict_lru() {}
    }

    /// Remove the least recently used entry; false when there is none.
    fn evict_lru(&mut self) -> bool {
        while let Some(Reverse((queued, id))) = self.queue.pop() {
            match self.by_id.get(&id) {
                // (removed, or evicted through a second place, since)
                None => {}
                Some((_, used)) if *used > queued => self.queue.push(Reverse((*used, id))),
                Some(_) => {
                    self.remove(id);
                    return true;
                }
            }
        }
        false
    }

    /// Queue an entry just used at `clock`. Places of removed entries stay
    /// until they reach the top: rebuilt from the entries when they would
    /// outnumber them.
    fn enqueue(&mut self, id: Uuid) {
        self.queue.push(Reverse((self.clock, id)));
        if self.queue.len() > 2 * self.by_id.len() + 64 {
            self.queue = self
                .by_id
                .iter()
                .map(|(id, (_, used))| Reverse((*used, *id)))
                .collect();
        }
    }

    fn remove(&mut self, id: Uuid) {
        self.forget_setting(id);
        if let Some((tenant, _)) = self.by_id.remove(&id) {
            self.by_identifier.remove(&tenant.identifier);
            self.stats.evictions += 1;
        }
    }

    fn forget_setting(&mut self, id: Uuid) {
        if self.by_setting.as_ref().is_some_and(|(_, t)| t.id == id) {
            self.by_setting = None;
        }
    }

    fn get(&mut self, id: Option<Uuid>) -> Option<Rc<Tenant>> {
        self.clock += 1;
        let found = id
            .and_then(|id| self.by_id.get_mut(&id))
            .map(|(tenant, used)| {
                *used = self.clock;
                tenant.clone()
            });
        match found {
            Some(_) => self.stats.hits += 1,
            None => self.stats.misses += 1,
        }
        found
    }
}

pub fn get_by_id(id: Uuid) -> Option<Rc<Tenant>> {
    CACHE.with_borrow_mut(|c| c.get(Some(id)))
}

pub fn get_by_identifier(identifier: &str) -> Option<Rc<Tenant>> {
    CACHE.with_borrow_mut(|c| {
        let id = c.by_identifier.get(identifier).copied();
        c.get(id)
    })
}

/// The tenant of the context setting's text `setting`, if it is the text
/// last remembered (see `remember_setting`).
pub fn get_by_setting(setting: &[u8]) -> Option<Rc<Tenant>> {
    CACHE.with_borrow_mut(|c| {
        let tenant = c
            .by_setting
            .as_ref()
            .filter(|(text, _)| text == setting)?
            .1
            .clone();
        c.stats.hits += 1;
        Some(tenant)
    })
}

/// Remember which cached tenant the context setting's text `setting` names.
pub fn remember_setting(setting: &[u8], tenant: &Rc<Tenant>) {
    CACHE.with_borrow_mut(|c| {
        if c.by_id
            .get(&tenant.id)
            .is_some_and(|(cached, _)| Rc::ptr_eq(cached, tenant))
        {
            c.by_setting = Some((setting.to_vec(), tenant.clone()));
        }
    })
}

/// Take before a catalog lookup and hand to `insert`.
pub fn generation() -> u64 {
    CACHE.with_borrow(|c| c.generation)
}

/// Cache a tenant read from the catalog, unless an invalidation arrived since
/// `generation` was taken (the row read may already be outdated).
pub fn insert(tenant: Rc<Tenant>, generation: u64) {
    CACHE.with_borrow_mut(|c| {
        if c.generation != generation {
            return;
        }
        c.fit_capacity();
        c.forget_setting(tenant.id);
        if let Some((old, _)) = c.by_id.get(&tenant.id) {
            let old_identifier = old.identifier.clone();
            c.by_identifier.remove(&old_identifier);
        } else if c.by_id.len() >= capacity() {
            c.evict_lru();
        }
        c.clock += 1;
        let id = tenant.id;
        c.by_identifier.insert(tenant.identifier.clone(), id);
        c.by_id.insert(id, (tenant, c.clock));
        c.enqueue(id);
    })
}

/// Drop every entry. Called from the relcache callback: only frees memory.
pub fn invalidate() {
    CACHE.with_borrow_mut(|c| {
        c.by_id.clear();
        c.by_identifier.clear();
        c.queue.clear();
        c.by_setting = None;
        c.generation += 1;
        c.stats.invalidations += 1;
    })
}

pub fn stats() -> (Stats, usize, usize) {
    CACHE.with_borrow_mut(|c| {
        c.fit_capacity();
        (c.stats, c.by_id.len(), capacity())
    })
}

#[cfg(any(test, feature = "pg_test"))]
#[pgrx::pg_schema]
mod tests {
    use super::*;

    fn tenant(n: u128) -> Rc<Tenant> {
        Rc::new(Tenant {
            id: Uuid::from_u128(n),
            identifier: format!("tenant-{n}"),
            status: crate::tenant::Status::Active,
            schema: None,
            created_at: 0,
            limits: None,
        })
    }

    #[pgrx::pg_test]
    fn lookups_by_id_and_identifier_hit_the_same_entry() {
        invalidate();
        let before = stats().0;
        insert(tenant(1), generation());
        assert_eq!(
            get_by_identifier("tenant-1").unwrap().id,
            Uuid::from_u128(1)
        );
        assert_eq!(
            get_by_id(Uuid::from_u128(1)).unwrap().identifier,
            "tenant-1"
        );
        assert!(get_by_identifier("tenant-2").is_none());
        let after = stats().0;
        assert_eq!(
            (after.hits - before.hits, after.misses - before.misses),
            (2, 1)
        );
    }

    #[pgrx::pg_test]
    fn a_lookup_that_raced_with_an_invalidation_is_not_cached() {
        let generation = generation();
        invalidate();
        insert(tenant(7), generation);
        assert!(get_by_id(Uuid::from_u128(7)).is_none());
    }

    /// An empty cache of `size` entries, then tenants 1 to `size` in it.
    fn filled(size: u128) {
        pgrx::Spi::run(&format!("SET tenancy.cache_size = {size}")).unwrap();
        invalidate();
        for n in 1..=size {
            insert(tenant(n), generation());
        }
    }

    #[pgrx::pg_test]
    fn eviction_keeps_both_indexes_in_step() {
        filled(2);
        insert(tenant(3), generation());
        let (stats, entries, capacity) = stats();
        assert_eq!((entries, capacity), (2, 2));
        assert!(stats.evictions >= 1);
        assert!(
            get_by_identifier("tenant-1").is_none(),
            "least recently used is gone"
        );
        assert!(get_by_identifier("tenant-3").is_some());
    }

    #[pgrx::pg_test]
    fn eviction_takes_the_least_recently_used_whatever_the_order_of_insertion() {
        filled(3);
        assert!(get_by_id(Uuid::from_u128(1)).is_some());
        insert(tenant(4), generation());
        let present = |n| get_by_identifier(&format!("tenant-{n}")).is_some();
        assert!(!present(2), "2 was used least recently");
        // (these lookups use 1, 3 and 4 in that order)
        assert!(present(1) && present(3) && present(4));
        assert!(get_by_id(Uuid::from_u128(1)).is_some());
        insert(tenant(5), generation());
        assert!(!present(3), "3 was used least recently");
        assert!(present(1) && present(4) && present(5));
        // Replacing an entry many times leaves no more than a bounded queue.
        for _ in 0..1000 {
            insert(tenant(5), generation());
        }
        CACHE.with_borrow(|c| assert!(c.queue.len() <= 2 * c.by_id.len() + 64));
        pgrx::Spi::run("SET tenancy.cache_size = 1").unwrap();
        assert_eq!(stats().1, 1, "shrinking evicts down to the new size");
        assert!(present(5), "the most recently used stays");
    }

    #[pgrx::pg_test]
    fn the_remembered_setting_goes_with_its_entry() {
        let setting = b"00000000-0000-0000-0000-000000000009";
        invalidate();
        insert(tenant(9), generation());
        remember_setting(setting, &get_by_id(Uuid::from_u128(9)).unwrap());
        assert_eq!(get_by_setting(setting).unwrap().id, Uuid::from_u128(9));
        assert!(get_by_setting(b"00000000-0000-0000-0000-000000000008").is_none());
        invalidate();
        assert!(get_by_setting(setting).is_none(), "invalidation forgets it");

        pgrx::Spi::run("SET tenancy.cache_size = 1").unwrap();
        insert(tenant(9), generation());
        remember_setting(setting, &get_by_id(Uuid::from_u128(9)).unwrap());
        insert(tenant(10), generation());
        assert!(get_by_setting(setting).is_none(), "eviction forgets it");
    }

    #[pgrx::pg_test]
    fn renamed_tenant_replaces_its_old_identifier() {
        invalidate();
        insert(tenant(5), generation());
        let renamed = Rc::new(Tenant {
            identifier: "renamed".into(),
            ..(*tenant(5)).clone()
        });
        insert(renamed, generation());
        assert!(get_by_identifier("tenant-5").is_none());
        assert!(get_by_identifier("renamed").is_some());
    }
}
