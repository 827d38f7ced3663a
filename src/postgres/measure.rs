//! Client statements: top-level ones (that the client sent, not those a
//! function or trigger runs inside them, which are part of their caller's),
//! from their planning or start to their end, or to the abort of the
//! (sub)transaction they ran in, which ends them as failed (see `hooks`,
//! which calls this).
//!
//! Before one is planned and each time it runs (each `ExecutorRun` or
//! `ExecutorFinish` of it, a utility statement), the feature applies what
//! must hold while it runs, and may take a place for the run under a cap,
//! given back when the run returns (or the abort): a portal bound and left
//! idle holds none. What a statement uses — time, rows, buffers, WAL — is
//! added to the shared table under the feature's key; when the key changes
//! while it runs, what it used until then goes to the key of then.

use super::shared::{self, Key, Usage};
use pgrx::pg_sys;
use std::cell::{Cell, RefCell};
use std::time::Instant;

/// Whether statements are measured now, and the key a statement counts under
/// (None: not known yet; asked again at its end, then the zero key); and
/// what runs before one is planned or runs (it may raise or wait): `admits`
/// for a run that may be held under a cap (not transaction control or SET),
/// true when it took a place, given back by `shared::leave`. Before a
/// `utility` statement it may run no statement: one would take the
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
    /// Before a function the client calls through the protocol's fast
    /// path, which runs outside any statement: nothing can be applied while
    /// it runs, nor its end seen. It may raise to refuse the call.
    pub fast_path: fn(),
}

/// Where a measured statement's use starts: the clock, the buffer and WAL
/// counters.
#[derive(Clone, Copy)]
struct Mark {
    at: Instant,
    buffers: pg_sys::BufferUsage,
    wal_bytes: u64,
}

impl Mark {
    fn now() -> Mark {
        // SAFETY: this backend's counters.
        let (buffers, wal_bytes) = unsafe { (pg_sys::pgBufferUsage, pg_sys::pgWalUsage.wal_bytes) };
        Mark {
            at: Instant::now(),
            buffers,
            wal_bytes,
        }
    }
}

struct Open {
    /// The statement's query descriptor, or 0 for a utility statement.
    id: usize,
    subtransaction: pg_sys::SubTransactionId,
    since: Mark,
    key: Option<Key>,
}

/// A run of a top-level statement (`run`: it ends when the run returns) or
/// a place taken inside one (when the context changed to a capped tenant);
/// `held`: a place to give back.
struct Place {
    run: bool,
    held: bool,
    subtransaction: pg_sys::SubTransactionId,
}

/// Read on every statement (see `BackendCell`): the callbacks, and how many
/// statements are measured.
static CALLBACKS: super::BackendCell<Option<Callbacks>> = super::BackendCell::new(None);
static OPEN_COUNT: super::BackendCell<usize> = super::BackendCell::new(0);
/// `before` runs: the statements it runs (reading the catalog) are part of
/// the client's. An error there ends it: reset at abort.
static STARTING: super::BackendCell<bool> = super::BackendCell::new(false);
/// A place was taken in a run that no `run` recorded (a context entered
/// inside a statement that nothing applied to when it began): the hooks end
/// that run when the statement's top level returns.
static LAZY: super::BackendCell<bool> = super::BackendCell::new(false);

/// The rest of this backend's state, in one thread-local.
struct State {
    /// Measured top-level statements started and not yet ended (an
    /// extended-protocol portal may stay open while the client runs others).
    open: RefCell<Vec<Open>>,
    /// Runs in progress and the places they hold, innermost last.
    places: RefCell<Vec<Place>>,
    /// Where the statement being planned started.
    planning: Cell<Option<Mark>>,
    /// An error was reported to the client and its (sub)transaction not yet
    /// aborted: a statement failed, maybe before it started (parsing it,
    /// planning it), to be counted if no started one fails with it.
    error_reported: Cell<bool>,
}

thread_local! {
    static STATE: State = const {
        State {
            open: RefCell::new(Vec::new()),
            places: RefCell::new(Vec::new()),
            planning: Cell::new(None),
            error_reported: Cell::new(false),
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

fn measured(callbacks: &Callbacks) -> bool {
    shared::ready() && (callbacks.wanted)()
}

/// Whether statements are measured now (then `start` a top-level one, in an
/// error guard). Calls no PostgreSQL function and reads no thread-local.
pub fn measuring() -> bool {
    !STARTING.get() && CALLBACKS.get().is_some_and(|c| measured(&c))
}

/// Whether the feature may have something to apply before a statement is
/// planned or runs (then `planning` or `run`, in an error guard, for a
/// top-level one). Calls no PostgreSQL function.
pub fn acting(utility: bool) -> bool {
    !STARTING.get() && CALLBACKS.get().is_some_and(|c| (c.may_act)(utility))
}

/// The id of a utility statement (a query descriptor's is its address).
pub const UTILITY: usize = 0;

fn before(callbacks: &Callbacks, utility: bool, admits: bool) -> bool {
    STARTING.set(true);
    let held = (callbacks.before)(utility, admits);
    STARTING.set(false);
    held
}

/// A measured top-level statement is about to be planned: its time starts
/// here. Calls no PostgreSQL function that can fail.
pub fn planning_starts() {
    STATE.with(|s| {
        s.error_reported.set(false);
        s.planning.set(Some(Mark::now()));
    });
}

/// A top-level statement is about to be planned: what must hold applies.
pub fn planning() {
    if let Some(callbacks) = CALLBACKS.get() {
        before(&callbacks, false, false);
    }
}

/// A top-level statement starts (`id` as in `Open`), measured if wanted.
pub fn start(id: usize) {
    let Some(callbacks) = CALLBACKS.get() else {
        return;
    };
    let planned = STATE.with(|s| {
        s.error_reported.set(false);
        s.planning.take()
    });
    let open = Open {
        id,
        // SAFETY: reads the current subtransaction.
        subtransaction: unsafe { pg_sys::GetCurrentSubTransactionId() },
        since: planned.unwrap_or_else(Mark::now),
        key: (callbacks.key)(),
    };
    STATE.with(|s| s.open.borrow_mut().push(open));
    OPEN_COUNT.set(OPEN_COUNT.get() + 1);
}

/// A top-level statement runs (`run_end` when the run returns): what must
/// hold applies, and a place is taken if the feature's cap says so.
pub fn run(utility: bool, admits: bool) {
    let Some(callbacks) = CALLBACKS.get() else {
        return;
    };
    let held = before(&callbacks, utility, admits);
    push_place(true, held);
}

/// A place taken inside a statement (the context changed to a capped
/// tenant), given back when its run returns (a run is recorded for it if
/// none was).
pub fn hold_place() {
    if !STATE.with(|s| s.places.borrow().iter().any(|p| p.run)) {
        push_place(true, false);
        LAZY.set(true);
    }
    push_place(false, true);
}

/// Whether a run was recorded by `hold_place` (see `LAZY`). Reads no
/// thread-local.
pub fn lazy() -> bool {
    LAZY.get()
}

fn push_place(run: bool, held: bool) {
    // SAFETY: reads the current subtransaction.
    let subtransaction = unsafe { pg_sys::GetCurrentSubTransactionId() };
    STATE.with(|s| {
        s.places.borrow_mut().push(Place {
            run,
            held,
            subtransaction,
        })
    });
}

/// The innermost run returned: its places are given back. Calls no
/// PostgreSQL function.
pub fn run_end() {
    STATE.with(|s| {
        let mut places = s.places.borrow_mut();
        while let Some(place) = places.pop() {
            if place.held {
                shared::leave();
            }
            if place.run {
                break;
            }
        }
        if places.is_empty() {
            LAZY.set(false);
        }
    });
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
        record(&open, 1, rows, false);
    }
}

/// The client calls a function through the protocol's fast path (see
/// `hooks::is_fast_path_call`): it counts as a statement under its key (its
/// time and use not measured), and the feature may refuse it.
pub fn fast_path_call() {
    let Some(callbacks) = CALLBACKS.get() else {
        return;
    };
    // No lock was taken for it (a statement's would have read them): what
    // other sessions committed since the last statement, a tenant's new
    // limits included, is read now.
    super::invalidation::catch_up();
    // Counted first: a call the feature refuses is a failed one (its abort
    // adds the failure).
    if measured(&callbacks) {
        let open = Open {
            id: UTILITY,
            // SAFETY: reads the current subtransaction.
            subtransaction: unsafe { pg_sys::GetCurrentSubTransactionId() },
            since: Mark::now(),
            key: (callbacks.key)(),
        };
        record(&open, 1, 0, false);
    }
    (callbacks.fast_path)();
}

/// The key changed while statements run: what the innermost one used until
/// now goes to its key of then (as use, not as a statement), and the rest
/// to the new key.
pub fn key_changed() {
    let Some(callbacks) = CALLBACKS.get() else {
        return;
    };
    if OPEN_COUNT.get() == 0 {
        return;
    }
    let segment = STATE.with(|s| {
        let mut o = s.open.borrow_mut();
        let open = o.last_mut()?;
        let segment = Open {
            id: open.id,
            subtransaction: open.subtransaction,
            since: open.since,
            key: open.key,
        };
        open.since = Mark::now();
        open.key = (callbacks.key)();
        Some(segment)
    });
    if let Some(segment) = segment {
        record(&segment, 0, 0, false);
    }
}

/// The transaction (None) or the subtransaction `from` aborted: the
/// statements started in it, or in a later one, failed, and the places
/// taken there are given back. (A subtransaction that a function opens and
/// rolls back inside a statement, as a plpgsql EXCEPTION block does, began
/// after the statement: it stays open.)
pub fn abort(from: Option<pg_sys::SubTransactionId>) {
    let inside =
        |subtransaction: pg_sys::SubTransactionId| from.is_none_or(|from| subtransaction >= from);
    STARTING.set(false);
    let (failed, error_reported) = STATE.with(|s| {
        s.planning.set(None);
        let mut places = s.places.borrow_mut();
        while places.last().is_some_and(|p| inside(p.subtransaction)) {
            if places.pop().is_some_and(|p| p.held) {
                shared::leave();
            }
        }
        if places.is_empty() {
            LAZY.set(false);
        }
        let mut o = s.open.borrow_mut();
        let (failed, kept): (Vec<Open>, Vec<Open>) = std::mem::take(&mut *o)
            .into_iter()
            .partition(|open| inside(open.subtransaction));
        *o = kept;
        OPEN_COUNT.set(o.len());
        (failed, s.error_reported.replace(false))
    });
    let callbacks = CALLBACKS.get().filter(measured);
    if let (true, true, Some(callbacks)) = (error_reported, failed.is_empty(), callbacks) {
        // It failed before it started: no time, no rows, its tenant now's.
        // SAFETY: reads the clock.
        let now = unsafe { pg_sys::GetCurrentTimestamp() };
        let mut usage = Usage {
            first: now,
            last: now,
            ..Usage::default()
        };
        // (A fast-path call that failed was counted when it began.)
        usage.sums[0] = u64::from(!super::hooks::in_fast_path_call());
        usage.sums[1] = 1;
        shared::add((callbacks.key)().unwrap_or_default(), &usage);
    }
    for open in failed {
        record(&open, 1, 0, true);
    }
}

/// Add what `open` used since its mark: `calls` statements (0 for a part
/// of one), `rows`, failed or not.
fn record(open: &Open, calls: u64, rows: u64, failed: bool) {
    let ns = u64::try_from(open.since.at.elapsed().as_nanos()).unwrap_or(u64::MAX);
    let key = open
        .key
        .or_else(|| CALLBACKS.get().and_then(|c| (c.key)()))
        .unwrap_or_default();
    let now = Mark::now();
    // SAFETY: reads the clock.
    let timestamp = unsafe { pg_sys::GetCurrentTimestamp() };
    let since = |now: i64, then: i64| u64::try_from(now - then).unwrap_or(0);
    let (after, before) = (now.buffers, open.since.buffers);
    let usage = Usage {
        sums: [
            calls,
            failed as u64,
            ns,
            rows,
            since(after.shared_blks_hit, before.shared_blks_hit),
            since(after.shared_blks_read, before.shared_blks_read),
            since(after.shared_blks_dirtied, before.shared_blks_dirtied),
            since(after.shared_blks_written, before.shared_blks_written),
            since(after.temp_blks_written, before.temp_blks_written),
            now.wal_bytes.saturating_sub(open.since.wal_bytes),
        ],
        max_ns: if calls > 0 { ns } else { 0 },
        first: timestamp,
        last: timestamp,
    };
    shared::add(key, &usage);
}
