//! Hooks into statement processing and transaction ends. The boundary knows
//! no feature: callers register what to run.

use pgrx::pg_sys;
use pgrx::prelude::*;
use std::cell::Cell;
use std::ffi::c_char;

thread_local! {
    static PREVIOUS_UTILITY: Cell<pg_sys::ProcessUtility_hook_type> = const { Cell::new(None) };
    static ON_HOLD_CURSOR: Cell<Option<fn(&str)>> = const { Cell::new(None) };
    static ON_TRANSACTION_END: Cell<Option<fn(bool)>> = const { Cell::new(None) };
}

/// `on_hold_cursor(name)` runs before every `DECLARE name CURSOR WITH HOLD`
/// (it may raise); `on_transaction_end(committed)` after every commit, abort
/// and prepare (it may only change memory). Once per backend, from _PG_init.
pub fn init(on_hold_cursor: fn(&str), on_transaction_end: fn(bool)) {
    ON_HOLD_CURSOR.set(Some(on_hold_cursor));
    ON_TRANSACTION_END.set(Some(on_transaction_end));
    // SAFETY: chaining the hook as every extension does, once per backend;
    // the callback only resets thread-local state.
    unsafe {
        PREVIOUS_UTILITY.set(pg_sys::ProcessUtility_hook);
        pg_sys::ProcessUtility_hook = Some(process_utility);
        pg_sys::RegisterXactCallback(Some(transaction_event), std::ptr::null_mut());
    }
}

#[pg_guard]
#[allow(clippy::too_many_arguments)]
unsafe extern "C-unwind" fn process_utility(
    pstmt: *mut pg_sys::PlannedStmt,
    query_string: *const c_char,
    read_only_tree: bool,
    context: pg_sys::ProcessUtilityContext::Type,
    params: pg_sys::ParamListInfo,
    query_env: *mut pg_sys::QueryEnvironment,
    dest: *mut pg_sys::DestReceiver,
    qc: *mut pg_sys::QueryCompletion,
) {
    // SAFETY: PostgreSQL passes a valid planned utility statement.
    let statement = unsafe { (*pstmt).utilityStmt };
    // SAFETY: a DeclareCursorStmt node, checked by its tag; its name is a C string.
    let held_cursor = unsafe {
        (!statement.is_null() && (*statement).type_ == pg_sys::NodeTag::T_DeclareCursorStmt)
            .then(|| &*statement.cast::<pg_sys::DeclareCursorStmt>())
            .filter(|declare| declare.options & pg_sys::CURSOR_OPT_HOLD as i32 != 0)
            .map(|declare| std::ffi::CStr::from_ptr(declare.portalname).to_string_lossy())
    };
    if let (Some(name), Some(callback)) = (held_cursor, ON_HOLD_CURSOR.get()) {
        callback(&name);
    }
    // SAFETY: the arguments as received, to the next hook or PostgreSQL itself.
    #[rustfmt::skip]
    let result = unsafe {
        match PREVIOUS_UTILITY.get() {
            Some(next) => next(pstmt, query_string, read_only_tree, context, params, query_env, dest, qc),
            None => pg_sys::standard_ProcessUtility(pstmt, query_string, read_only_tree, context, params, query_env, dest, qc),
        }
    };
    result
}

#[pg_guard]
unsafe extern "C-unwind" fn transaction_event(
    event: pg_sys::XactEvent::Type,
    _arg: *mut std::ffi::c_void,
) {
    use pg_sys::XactEvent::*;
    let committed = match event {
        XACT_EVENT_COMMIT | XACT_EVENT_PREPARE => true,
        XACT_EVENT_ABORT => false,
        _ => return,
    };
    if let Some(callback) = ON_TRANSACTION_END.get() {
        callback(committed);
    }
}
