//! Client statements: top-level ones (that the client sent, not those a
//! function or trigger runs inside them, which are part of their caller's),
//! from their start to their end, or to the abort of the (sub)transaction
//! they ran in, which ends them as failed (see `hooks`, which calls this).
//!
//! Before one starts, the feature applies what must hold while it runs and
//! may take a place for it under a cap (given back at its end); what it
//! uses — time, rows, buffers, WAL — is added to the shared table under the
//! key the feature gives at its start.

use super::shared::{self, Key, Usage};
use pgrx::pg_sys;
use std::cell::{Cell, RefCell};
use std::time::Instant;

/// Whether statements are measured now, and the key a statement counts under
/// (None: not known yet; asked again at its end, then the zero key); and
/// what runs before one starts (it may raise or wait): `admits` for those
/// that may be held under a cap (not transaction control or SET), true when
/// it took a place, given back by `shared::leave` at the statement's end.
/// Before a `utility` statement it may run no statement: one would take the
/// transaction's snapshot before a `BEGIN ISOLATION LEVEL`, a `SET
/// TRANSACTION SNAPSHOT` or a `LOCK`. `may_act(utility)` says, without
/// calling PostgreSQL (it runs outside any error guard, for every
/// statement), whether `before` may have anything to do.
#[derive(Clone, Copy)]
pub struct Callbacks {
    pub wanted: fn() -> bool,
    pub key: fn() -> Option<Key>,
    pub may_act: fn(utility: bool) -> bool,
    pub before: fn(utility: bool, admits: bool) -> bool,
}

struct Open {
    /// The statement's query descriptor, or 0 for a utility statement.
    id: usize,
    measured: bool,
    admitted: bool,
    subtransaction: pg_sys::SubTransactionId,
    started: Instant,
    buffers: pg_sys::BufferUsage,
    wal_bytes: u64,
    key: Option<Key>,
}

/// Read on every statement (see `BackendCell`): the callbacks, and how many
/// statements are open.
static CALLBACKS: super::BackendCell<Option<Callbacks>> = super::BackendCell::new(None);
static OPEN_COUNT: super::BackendCell<usize> = super::BackendCell::new(0);

/// The rest of this backend's state, in one thread-local.
struct State {
    /// Top-level statements started and not yet ended (an extended-protocol
    /// portal may stay open while the client runs others).
    open: RefCell<Vec<Open>>,
    /// An error was reported to the client and its (sub)transaction not yet
    /// aborted: a statement failed, maybe before it started (parsing it,
    /// planning it), to be counted if no started one fails with it.
    error_reported: Cell<bool>,
    /// A statement is starting: the statements its `before` runs (reading
    /// the catalog) are part of it. An error there ends it: reset at abort.
    starting: Cell<bool>,
}

thread_local! {
    static STATE: State = const {
        State {
            open: RefCell::new(Vec::new()),
            error_reported: Cell::new(false),
            starting: Cell::new(false),
        }
    };
}

/// PostgreSQL reported an error to the client (see `hooks`).
pub fn error_reported() {
    STATE.with(|s| s.error_reported.set(true));
}

pub fn init(callbacks: Callbacks) {
    CALLBACKS.set(Some(callbacks));
}

/// Whether a statement starting now has anything to start here (then
/// `start`, in an error guard, if it is a top-level one). Calls no
/// PostgreSQL function; with nothing to measure or apply, reads no
/// thread-local either.
pub fn wanted(utility: bool) -> bool {
    let Some(callbacks) = CALLBACKS.get() else {
        return false;
    };
    let measured = shared::ready() && (callbacks.wanted)();
    if !measured && !(callbacks.may_act)(utility) {
        return false;
    }
    STATE.with(|s| {
        // An error before this statement was not its.
        s.error_reported.set(false);
        !s.starting.get()
    })
}

/// The id of a utility statement (a query descriptor's is its address).
pub const UTILITY: usize = 0;

/// A top-level statement starts (`id` as in `Open`).
pub fn start(id: usize, admits: bool) {
    let Some(callbacks) = CALLBACKS.get() else {
        return;
    };
    STATE.with(|s| s.starting.set(true));
    let admitted = (callbacks.before)(id == UTILITY, admits);
    STATE.with(|s| s.starting.set(false));
    let measured = shared::ready() && (callbacks.wanted)();
    if !measured && !admitted {
        return;
    }
    // SAFETY: this backend's counters and current subtransaction.
    let (buffers, wal_bytes, subtransaction) = unsafe {
        (
            pg_sys::pgBufferUsage,
            pg_sys::pgWalUsage.wal_bytes,
            pg_sys::GetCurrentSubTransactionId(),
        )
    };
    let open = Open {
        id,
        measured,
        admitted,
        subtransaction,
        started: Instant::now(),
        buffers,
        wal_bytes,
        key: (callbacks.key)(),
    };
    STATE.with(|s| s.open.borrow_mut().push(open));
    OPEN_COUNT.set(OPEN_COUNT.get() + 1);
}

/// Whether the top-level statement `id` is being measured.
pub fn is_open(id: usize) -> bool {
    OPEN_COUNT.get() > 0 && STATE.with(|s| s.open.borrow().iter().any(|open| open.id == id))
}

/// The top-level statement `id` ended, having returned or changed `rows`.
pub fn end(id: usize, rows: u64) {
    let open = STATE.with(|s| {
        let mut o = s.open.borrow_mut();
        let at = o.iter().rposition(|open| open.id == id)?;
        let open = o.remove(at);
        OPEN_COUNT.set(o.len());
        Some(open)
    });
    if let Some(open) = open {
        record(open, rows, false);
    }
}

/// The transaction (None) or the subtransaction `from` aborted: the
/// statements started in it, or in a later one, failed. (A subtransaction
/// that a function opens and rolls back inside a statement, as a plpgsql
/// EXCEPTION block does, began after the statement: it stays open.)
pub fn abort(from: Option<pg_sys::SubTransactionId>) {
    let (failed, error_reported, callbacks) = STATE.with(|s| {
        s.starting.set(false);
        let mut o = s.open.borrow_mut();
        let (failed, kept): (Vec<Open>, Vec<Open>) = std::mem::take(&mut *o)
            .into_iter()
            .partition(|open| from.is_none_or(|from| open.subtransaction >= from));
        *o = kept;
        OPEN_COUNT.set(o.len());
        (failed, s.error_reported.replace(false), CALLBACKS.get())
    });
    if error_reported && failed.is_empty() {
        // It failed before it started: no time, no rows, its tenant now's.
        if let Some(callbacks) = callbacks.filter(|c| shared::ready() && (c.wanted)()) {
            let key = (callbacks.key)().unwrap_or_default();
            // SAFETY: reads the clock.
            let now = unsafe { pg_sys::GetCurrentTimestamp() };
            let mut usage = Usage {
                first: now,
                last: now,
                ..Usage::default()
            };
            usage.sums[0] = 1;
            usage.sums[1] = 1;
            shared::add(key, &usage);
        }
    }
    for open in failed {
        record(open, 0, true);
    }
}

fn record(open: Open, rows: u64, failed: bool) {
    if open.admitted {
        shared::leave();
    }
    if !open.measured {
        return;
    }
    let ns = u64::try_from(open.started.elapsed().as_nanos()).unwrap_or(u64::MAX);
    let key = open
        .key
        .or_else(|| CALLBACKS.get().and_then(|c| (c.key)()))
        .unwrap_or_default();
    // SAFETY: this backend's counters and clock.
    let (now, buffers, wal_bytes) = unsafe {
        (
            pg_sys::GetCurrentTimestamp(),
            pg_sys::pgBufferUsage,
            pg_sys::pgWalUsage.wal_bytes,
        )
    };
    let since = |now: i64, then: i64| u64::try_from(now - then).unwrap_or(0);
    let before = open.buffers;
    let usage = Usage {
        sums: [
            1,
            failed as u64,
            ns,
            rows,
            since(buffers.shared_blks_hit, before.shared_blks_hit),
            since(buffers.shared_blks_read, before.shared_blks_read),
            since(buffers.shared_blks_dirtied, before.shared_blks_dirtied),
            since(buffers.shared_blks_written, before.shared_blks_written),
            since(buffers.temp_blks_written, before.temp_blks_written),
            wal_bytes.saturating_sub(open.wal_bytes),
        ],
        max_ns: ns,
        first: now,
        last: now,
    };
    shared::add(key, &usage);
}
