//! The extension's shared memory, which exists only when the library is in
//! `shared_preload_libraries`: a bounded table of usage counters by key (a
//! tenant's id), evicting the least-used keys when full, like
//! pg_stat_statements; and one slot per backend that says which key it works
//! for now, and under which key it runs statements that count against a cap
//! on how many may run at once. The boundary knows no feature: keys are 16
//! bytes.
//!
//! Counters are atomics: a statement adds to its entry with the table's lock
//! held shared; entering a key, evicting and resetting take it exclusive.
//! The table is written to `pg_stat/tenancy.stat` at a clean shutdown and
//! read back (then removed) at start: a crash loses it, as it loses
//! PostgreSQL's own statistics.

use pgrx::pg_sys;
use std::cell::Cell;
use std::ptr::null_mut;
use std::sync::atomic::{AtomicI32, AtomicI64, AtomicU32, AtomicU64, Ordering::Relaxed};

pub type Key = [u8; 16];

/// The sums kept for a key, in this order (see `Usage::sums`).
pub const SUMS: usize = 10;

/// What statements used: a statement's own, or an entry's sums.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Usage {
    /// calls, failed, time (ns), rows, shared blocks hit, read, dirtied,
    /// written, temp blocks written, WAL bytes.
    pub sums: [u64; SUMS],
    /// The longest statement (ns).
    pub max_ns: u64,
    /// When the first and the last statement ended (PostgreSQL timestamps;
    /// 0: never).
    pub first: i64,
    pub last: i64,
}

#[repr(C)]
struct Entry {
    key: Key,
    sums: [AtomicU64; SUMS],
    max_ns: AtomicU64,
    first: AtomicI64,
    last: AtomicI64,
}

/// What the backend in this slot works for: written by that backend alone,
/// read by others between two even, equal versions. `running` statements
/// under `running_key` hold places of that key's cap: taken under the
/// table's lock held exclusive, given back at their end or the backend's.
#[repr(C)]
struct Slot {
    version: AtomicU32,
    pid: AtomicI32,
    role: AtomicU32,
    local: AtomicU32,
    key: [AtomicU64; 2],
    running: AtomicU32,
    running_key: [AtomicU64; 2],
}

fn to_words(key: Key) -> [u64; 2] {
    let mut words = [0u64; 2];
    for (word, bytes) in words.iter_mut().zip(key.chunks_exact(8)) {
        let mut half = [0u8; 8];
        half.copy_from_slice(bytes);
        *word = u64::from_ne_bytes(half);
    }
    words
}

fn from_words(words: [u64; 2]) -> Key {
    let mut key = Key::default();
    key[..8].copy_from_slice(&words[0].to_ne_bytes());
    key[8..].copy_from_slice(&words[1].to_ne_bytes());
    key
}

#[repr(C)]
struct Header {
    lock: *mut pg_sys::LWLock,
    /// How many times the least-used entries were evicted.
    dealloc: AtomicU64,
    /// When the whole table was last reset.
    reset: AtomicI64,
    max: usize,
    slots: usize,
}

/// The slots follow the header.
fn slots_offset() -> usize {
    size_of::<Header>().next_multiple_of(align_of::<Slot>())
}

/// Null until shared memory is set up (read on every statement).
static HEADER: super::BackendCell<*mut Header> = super::BackendCell::new(null_mut());

thread_local! {
    static TABLE: Cell<*mut pg_sys::HTAB> = const { Cell::new(null_mut()) };
    static MAX: Cell<usize> = const { Cell::new(0) };
    static PREVIOUS_REQUEST: Cell<pg_sys::shmem_request_hook_type> = const { Cell::new(None) };
    static PREVIOUS_STARTUP: Cell<pg_sys::shmem_startup_hook_type> = const { Cell::new(None) };
    static SLOT_CLEARED_AT_EXIT: Cell<bool> = const { Cell::new(false) };
}

const TRANCHE: &std::ffi::CStr = c"tenancy";
const FILE: &str = "pg_stat/tenancy.stat";
const TEMPORARY: &str = "pg_stat/tenancy.stat.tmp";
const MAGIC: u32 = 0x7E4A_0001;

/// Whether the library is being preloaded (only then can it have shared memory).
pub fn preloading() -> bool {
    // SAFETY: a flag PostgreSQL sets while it loads shared_preload_libraries.
    unsafe { pg_sys::process_shared_preload_libraries_in_progress }
}

/// Ask for shared memory for `max` keys; from _PG_init while preloading.
pub fn request(max: usize) {
    MAX.set(max.max(1));
    // SAFETY: chaining the hooks as every extension does, once, in the postmaster.
    unsafe {
        PREVIOUS_REQUEST.set(pg_sys::shmem_request_hook);
        pg_sys::shmem_request_hook = Some(on_request);
        PREVIOUS_STARTUP.set(pg_sys::shmem_startup_hook);
        pg_sys::shmem_startup_hook = Some(on_startup);
    }
}

fn table_size(max: usize) -> usize {
    // SAFETY: pure arithmetic of dynahash.
    unsafe { pg_sys::hash_estimate_size(max as i64, size_of::<Entry>()) }
}

fn backends() -> usize {
    // SAFETY: set before shared memory is requested (PostgreSQL 15 and later).
    unsafe { pg_sys::MaxBackends as usize }
}

#[pgrx::pg_guard]
unsafe extern "C-unwind" fn on_request() {
    // SAFETY: called by PostgreSQL while shared memory may be requested.
    unsafe {
        if let Some(previous) = PREVIOUS_REQUEST.get() {
            previous();
        }
        let size = slots_offset() + backends() * size_of::<Slot>();
        pg_sys::RequestAddinShmemSpace(size + table_size(MAX.get()));
        pg_sys::RequestNamedLWLockTranche(TRANCHE.as_ptr(), 1);
    }
}

#[pgrx::pg_guard]
unsafe extern "C-unwind" fn on_startup() {
    // SAFETY: PostgreSQL calls this with the shared memory created; the
    // structure is initialised under AddinShmemInitLock by the first caller.
    unsafe {
        if let Some(previous) = PREVIOUS_STARTUP.get() {
            previous();
        }
        pg_sys::LWLockAcquire(addin_shmem_init_lock(), pg_sys::LWLockMode::LW_EXCLUSIVE);
        let max = MAX.get();
        let slots = backends();
        let mut found = false;
        let header = pg_sys::ShmemInitStruct(
            c"tenancy".as_ptr(),
            slots_offset() + slots * size_of::<Slot>(),
            &mut found,
        )
        .cast::<Header>();
        if !found {
            header.write(Header {
                lock: &raw mut (*pg_sys::GetNamedLWLockTranche(TRANCHE.as_ptr())).lock,
                dealloc: AtomicU64::new(0),
                reset: AtomicI64::new(pg_sys::GetCurrentTimestamp()),
                max,
                slots,
            });
            std::ptr::write_bytes(
                header.cast::<u8>().add(slots_offset()),
                0,
                slots * size_of::<Slot>(),
            );
        }
        let mut info = pg_sys::HASHCTL {
            keysize: size_of::<Key>(),
            entrysize: size_of::<Entry>(),
            ..Default::default()
        };
        let table = pg_sys::ShmemInitHash(
            c"tenancy usage".as_ptr(),
            max as i64,
            max as i64,
            &mut info,
            (pg_sys::HASH_ELEM | pg_sys::HASH_BLOBS) as i32,
        );
        pg_sys::LWLockRelease(addin_shmem_init_lock());
        HEADER.set(header);
        TABLE.set(table);
        // The postmaster (not a backend of EXEC_BACKEND builds) reads what the
        // last clean shutdown wrote, and writes it at the next.
        if !pg_sys::IsUnderPostmaster {
            pg_sys::on_shmem_exit(Some(on_shutdown), pg_sys::Datum::from(0));
            load();
        }
    }
}

/// PostgreSQL's AddinShmemInitLock, a C macro: the 21st main lock in 15 to 18.
///
/// # Safety
/// The main locks exist (shared memory is created).
unsafe fn addin_shmem_init_lock() -> *mut pg_sys::LWLock {
    // SAFETY: MainLWLockArray holds the named main locks.
    unsafe { &raw mut (*pg_sys::MainLWLockArray.add(21)).lock }
}

/// Whether shared memory is there (the library was preloaded).
pub fn ready() -> bool {
    !HEADER.get().is_null()
}

fn header() -> Option<&'static Header> {
    // SAFETY: set once at startup to shared memory that lives as long as the process.
    unsafe { HEADER.get().as_ref() }
}

/// Runs `f` with the table's lock held in `mode`.
fn locked<R>(mode: pg_sys::LWLockMode::Type, f: impl FnOnce(*mut pg_sys::HTAB) -> R) -> Option<R> {
    let header = header()?;
    // SAFETY: the tranche's lock, in shared memory. `f` raises no error (it
    // only reads and writes the table's memory), so the lock is released;
    // an error would be released by the abort anyway.
    unsafe {
        pg_sys::LWLockAcquire(header.lock, mode);
        let result = f(TABLE.get());
        pg_sys::LWLockRelease(header.lock);
        Some(result)
    }
}

impl Entry {
    fn add(&self, usage: &Usage) {
        for (sum, add) in self.sums.iter().zip(usage.sums) {
            sum.fetch_add(add, Relaxed);
        }
        self.max_ns.fetch_max(usage.max_ns, Relaxed);
        let _ = self
            .first
            .compare_exchange(0, usage.first, Relaxed, Relaxed);
        self.last.fetch_max(usage.last, Relaxed);
    }

    fn read(&self) -> Usage {
        Usage {
            sums: std::array::from_fn(|i| self.sums[i].load(Relaxed)),
            max_ns: self.max_ns.load(Relaxed),
            first: self.first.load(Relaxed),
            last: self.last.load(Relaxed),
        }
    }
}

/// Add a statement's usage to `key`'s entry (entering it, and evicting the
/// least-used entries if the table is full). Nothing without shared memory.
pub fn add(key: Key, usage: &Usage) {
    let added = locked(pg_sys::LWLockMode::LW_SHARED, |table| {
        // SAFETY: a lookup in the shared table under its lock.
        let entry = unsafe { find(table, &key, pg_sys::HASHACTION::HASH_FIND) };
        entry.map(|entry| entry.add(usage)).is_some()
    });
    if added == Some(false) {
        locked(pg_sys::LWLockMode::LW_EXCLUSIVE, |table| {
            // SAFETY: entering under the exclusive lock.
            unsafe {
                if pg_sys::hash_get_num_entries(table) as usize >= MAX.get().max(1) {
                    evict(table);
                }
                if let Some(entry) = find(table, &key, pg_sys::HASHACTION::HASH_ENTER_NULL) {
                    entry.add(usage);
                }
            }
        });
    }
}

/// The entry of `key`: found, or entered with zero counters.
///
/// # Safety
/// The table's lock is held (exclusive to enter).
unsafe fn find<'a>(
    table: *mut pg_sys::HTAB,
    key: &Key,
    action: pg_sys::HASHACTION::Type,
) -> Option<&'a Entry> {
    let mut found = false;
    // SAFETY: the table's keys are 16 bytes; an entered entry holds only its
    // key until written here.
    unsafe {
        let entry =
            pg_sys::hash_search(table, key.as_ptr().cast(), action, &mut found).cast::<Entry>();
        if entry.is_null() {
            return None;
        }
        if !found {
            let sums = &raw mut (*entry).sums;
            sums.write(std::array::from_fn(|_| AtomicU64::new(0)));
            (&raw mut (*entry).max_ns).write(AtomicU64::new(0));
            (&raw mut (*entry).first).write(AtomicI64::new(0));
            (&raw mut (*entry).last).write(AtomicI64::new(0));
        }
        Some(&*entry)
    }
}

/// Every entry's key and usage.
///
/// # Safety
/// The table's lock is held.
unsafe fn scan(table: *mut pg_sys::HTAB) -> Vec<(Key, Usage)> {
    let mut rows = Vec::new();
    // SAFETY: a complete sequential scan (so no hash_seq_term is needed).
    unsafe {
        let mut status = std::mem::zeroed::<pg_sys::HASH_SEQ_STATUS>();
        pg_sys::hash_seq_init(&mut status, table);
        loop {
            let entry = pg_sys::hash_seq_search(&mut status).cast::<Entry>();
            let Some(entry) = entry.as_ref() else { break };
            rows.push((entry.key, entry.read()));
        }
    }
    rows
}

/// Remove the 5 % least-called entries (at least one).
///
/// # Safety
/// The table's lock is held exclusive.
unsafe fn evict(table: *mut pg_sys::HTAB) {
    // SAFETY: under the exclusive lock.
    unsafe {
        let mut rows = scan(table);
        rows.sort_by_key(|(_, usage)| (usage.sums[0], usage.last));
        let victims = (rows.len() / 20).max(1);
        for (key, _) in rows.iter().take(victims) {
            pg_sys::hash_search(
                table,
                key.as_ptr().cast(),
                pg_sys::HASHACTION::HASH_REMOVE,
                null_mut(),
            );
        }
    }
    if let Some(header) = header() {
        header.dealloc.fetch_add(1, Relaxed);
    }
}

/// Every key's usage (None without shared memory).
pub fn entries() -> Option<Vec<(Key, Usage)>> {
    // SAFETY: scanning under the shared lock.
    locked(pg_sys::LWLockMode::LW_SHARED, |table| unsafe {
        scan(table)
    })
}

/// Forget `key`'s usage, or with None every key's (and start the table's
/// clock again). False without shared memory.
pub fn reset(key: Option<Key>) -> bool {
    locked(pg_sys::LWLockMode::LW_EXCLUSIVE, |table| {
        // SAFETY: removing under the exclusive lock.
        unsafe {
            let keys = match key {
                Some(key) => vec![key],
                None => scan(table).into_iter().map(|(key, _)| key).collect(),
            };
            for key in keys {
                pg_sys::hash_search(
                    table,
                    key.as_ptr().cast(),
                    pg_sys::HASHACTION::HASH_REMOVE,
                    null_mut(),
                );
            }
        }
    })
    .inspect(|_| {
        if let (None, Some(header)) = (key, header()) {
            header.dealloc.store(0, Relaxed);
            // SAFETY: reads the clock.
            header
                .reset
                .store(unsafe { pg_sys::GetCurrentTimestamp() }, Relaxed);
        }
    })
    .is_some()
}

/// The table's bookkeeping: (entries allowed, evictions, last full reset,
/// bytes of shared memory taken).
pub fn info() -> Option<(usize, u64, i64, usize)> {
    let header = header()?;
    Some((
        header.max,
        header.dealloc.load(Relaxed),
        header.reset.load(Relaxed),
        slots_offset() + header.slots * size_of::<Slot>() + table_size(header.max),
    ))
}

/// This backend's slot, if it has one (a regular backend).
fn own_slot() -> Option<&'static Slot> {
    let header = header()?;
    #[cfg(any(feature = "pg15", feature = "pg16"))]
    // SAFETY: this backend's id, from 1 (0: none).
    let index = unsafe { pg_sys::MyBackendId as usize }.checked_sub(1)?;
    #[cfg(not(any(feature = "pg15", feature = "pg16")))]
    // SAFETY: this backend's number, from 0 (regular backends come first).
    let index = usize::try_from(unsafe { pg_sys::MyProcNumber }).ok()?;
    slot(header, index)
}

fn slot(header: &'static Header, index: usize) -> Option<&'static Slot> {
    // SAFETY: `slots` slots follow the header in shared memory.
    (index < header.slots).then(|| unsafe {
        &*(std::ptr::from_ref(header)
            .cast::<u8>()
            .add(slots_offset())
            .cast::<Slot>()
            .add(index))
    })
}

/// Say what this backend works for now (None: nothing); cleared when it exits.
pub fn set_backend(key: Option<Key>, local: bool, role: pg_sys::Oid) {
    let Some(slot) = own_slot() else { return };
    clear_at_exit();
    let words = to_words(key.unwrap_or_default());
    slot.version.fetch_add(1, Relaxed);
    std::sync::atomic::fence(std::sync::atomic::Ordering::Release);
    // SAFETY: this process's pid.
    slot.pid.store(unsafe { pg_sys::MyProcPid }, Relaxed);
    slot.role.store(role.to_u32(), Relaxed);
    slot.local.store(local as u32, Relaxed);
    slot.key[0].store(words[0], Relaxed);
    slot.key[1].store(words[1], Relaxed);
    std::sync::atomic::fence(std::sync::atomic::Ordering::Release);
    slot.version.fetch_add(1, Relaxed);
}

/// Once per backend: its slot is cleared when it exits, however it exits
/// (a crash resets all shared memory).
fn clear_at_exit() {
    if !SLOT_CLEARED_AT_EXIT.replace(true) {
        // SAFETY: a callback that only writes this backend's slot.
        unsafe { pg_sys::before_shmem_exit(Some(clear_slot), pg_sys::Datum::from(0)) };
    }
}

#[pgrx::pg_guard]
unsafe extern "C-unwind" fn clear_slot(_code: i32, _arg: pg_sys::Datum) {
    set_backend(None, false, pg_sys::InvalidOid);
    if let Some(slot) = own_slot() {
        slot.running.store(0, Relaxed);
    }
}

/// What `try_enter` did.
#[derive(Clone, Copy, PartialEq, Debug)]
pub enum Place {
    /// Took one: give it back with `leave`.
    Taken,
    /// This backend holds one already (its statement entered the tenant
    /// again, or runs another's): nothing taken, nothing to give back.
    Held,
    /// All are taken: try again later.
    Full,
}

/// Take a place for a statement of `key`, whose statements may run `cap`
/// at once across the backends.
pub fn try_enter(key: Key, cap: u32) -> Place {
    let Some(slot) = own_slot() else {
        return Place::Held;
    };
    clear_at_exit();
    let words = to_words(key);
    let mine = |s: &Slot| {
        [
            s.running_key[0].load(Relaxed),
            s.running_key[1].load(Relaxed),
        ] == words
    };
    if slot.running.load(Relaxed) > 0 {
        return Place::Held;
    }
    locked(pg_sys::LWLockMode::LW_EXCLUSIVE, |_| {
        let Some(header) = header() else {
            return Place::Held;
        };
        let taken: u32 = (0..header.slots)
            .filter_map(|index| self::slot(header, index))
            .filter(|s| mine(s))
            .map(|s| s.running.load(Relaxed))
            .sum();
        if taken >= cap {
            return Place::Full;
        }
        slot.running_key[0].store(words[0], Relaxed);
        slot.running_key[1].store(words[1], Relaxed);
        slot.running.fetch_add(1, Relaxed);
        Place::Taken
    })
    .unwrap_or(Place::Held)
}

/// Give back a place taken by `try_enter`.
pub fn leave() {
    if let Some(slot) = own_slot() {
        let _ = slot
            .running
            .fetch_update(Relaxed, Relaxed, |n| n.checked_sub(1));
    }
}

/// The backends that work for a key now: (pid, key, transaction-scoped, role).
pub fn working() -> Vec<(i32, Key, bool, pg_sys::Oid)> {
    let Some(header) = header() else {
        return Vec::new();
    };
    (0..header.slots)
        .filter_map(|index| {
            let slot = slot(header, index)?;
            // A consistent read: the same even version before and after.
            loop {
                let before = slot.version.load(Relaxed);
                std::sync::atomic::fence(std::sync::atomic::Ordering::Acquire);
                let (pid, role, local) = (
                    slot.pid.load(Relaxed),
                    slot.role.load(Relaxed),
                    slot.local.load(Relaxed),
                );
                let key = from_words([slot.key[0].load(Relaxed), slot.key[1].load(Relaxed)]);
                std::sync::atomic::fence(std::sync::atomic::Ordering::Acquire);
                if before % 2 == 1 || slot.version.load(Relaxed) != before {
                    std::hint::spin_loop();
                    continue;
                }
                return (pid != 0 && key != Key::default()).then_some((
                    pid,
                    key,
                    local != 0,
                    pg_sys::Oid::from(role),
                ));
            }
        })
        .collect()
}

#[pgrx::pg_guard]
unsafe extern "C-unwind" fn on_shutdown(code: i32, _arg: pg_sys::Datum) {
    // After a crash (code != 0) the counters are not trusted: nothing is written.
    if code == 0 {
        save();
    }
}

/// One entry in the file: its key, then its numbers as little-endian words.
const RECORD: usize = 16 + 8 * (SUMS + 3);

fn save() {
    let Some((_, dealloc, reset, _)) = info() else {
        return;
    };
    // SAFETY: at the postmaster's exit every backend is gone: nothing else
    // reads or writes the table.
    let rows = unsafe { scan(TABLE.get()) };
    let mut bytes = Vec::with_capacity(24 + rows.len() * RECORD);
    bytes.extend(MAGIC.to_le_bytes());
    bytes.extend(0u32.to_le_bytes());
    bytes.extend(dealloc.to_le_bytes());
    bytes.extend(reset.to_le_bytes());
    for (key, usage) in rows {
        bytes.extend(key);
        for sum in usage.sums {
            bytes.extend(sum.to_le_bytes());
        }
        bytes.extend(usage.max_ns.to_le_bytes());
        bytes.extend(usage.first.to_le_bytes());
        bytes.extend(usage.last.to_le_bytes());
    }
    // Written aside, then renamed: a file is whole or absent.
    let written = std::fs::write(TEMPORARY, &bytes).and_then(|()| std::fs::rename(TEMPORARY, FILE));
    if let Err(error) = written {
        pgrx::warning!("tenancy: could not write {FILE}: {error}");
    }
}

fn load() {
    let Ok(bytes) = std::fs::read(FILE) else {
        return;
    };
    // Read once: the next start (after a crash, say) must not find it again.
    let _ = std::fs::remove_file(FILE);
    let word = |at: usize| -> Option<u64> {
        Some(u64::from_le_bytes(bytes.get(at..at + 8)?.try_into().ok()?))
    };
    let valid =
        bytes.len() >= 24 && bytes[..4] == MAGIC.to_le_bytes() && (bytes.len() - 24) % RECORD == 0;
    if !valid {
        pgrx::warning!("tenancy: ignoring {FILE}, which this version did not write");
        return;
    }
    if let (Some(header), Some(dealloc), Some(reset)) = (header(), word(8), word(16)) {
        header.dealloc.store(dealloc, Relaxed);
        header.reset.store(reset as i64, Relaxed);
    }
    for record in bytes[24..].chunks_exact(RECORD) {
        let Ok(key) = Key::try_from(&record[..16]) else {
            continue;
        };
        let numbers: Vec<u64> = record[16..]
            .chunks_exact(8)
            .map(|w| u64::from_le_bytes(w.try_into().unwrap_or_default()))
            .collect();
        let usage = Usage {
            sums: std::array::from_fn(|i| numbers[i]),
            max_ns: numbers[SUMS],
            first: numbers[SUMS + 1] as i64,
            last: numbers[SUMS + 2] as i64,
        };
        add(key, &usage);
    }
}
