//! Hooks into statement processing and transaction ends. The boundary knows
//! no feature: callers register what to run.
//!
//! Every statement of the cluster passes through these hooks, so they leave
//! it exactly as PostgreSQL runs it: the next hook (or PostgreSQL itself) is
//! called directly, never through pgrx's error guard, which would catch an
//! error raised there and raise it again with only some of its fields (the
//! position, context, and schema, table and constraint names would be lost).
//! A frame that an error passes through holds nothing to drop.

use pgrx::pg_sys;
use pgrx::prelude::*;
use std::cell::Cell;
use std::ffi::{c_char, CStr};

/// What the extension looks at in a utility statement before it runs.
pub enum Utility<'a> {
    /// `DECLARE name CURSOR WITH HOLD`.
    HoldCursor(&'a str),
    /// `LOCK TABLE`: each relation named that exists, and its schema's name.
    Lock(Vec<(pg_sys::Oid, String)>),
}

thread_local! {
    static PREVIOUS_UTILITY: Cell<pg_sys::ProcessUtility_hook_type> = const { Cell::new(None) };
    static BEFORE_UTILITY: Cell<Option<fn(&Utility)>> = const { Cell::new(None) };
    static ON_TRANSACTION_END: Cell<Option<fn(bool)>> = const { Cell::new(None) };
}

/// `before_utility(statement)` runs before every utility statement the
/// extension looks at (it may raise); `on_transaction_end(committed)` after
/// every commit, abort and prepare (it may only change memory). Once per
/// backend, from _PG_init.
pub fn init(before_utility: fn(&Utility), on_transaction_end: fn(bool)) {
    BEFORE_UTILITY.set(Some(before_utility));
    ON_TRANSACTION_END.set(Some(on_transaction_end));
    // SAFETY: chaining the hook as every extension does, once per backend;
    // the callback only resets thread-local state.
    unsafe {
        PREVIOUS_UTILITY.set(pg_sys::ProcessUtility_hook);
        pg_sys::ProcessUtility_hook = Some(process_utility);
        pg_sys::RegisterXactCallback(Some(transaction_event), std::ptr::null_mut());
    }
}

unsafe extern "C-unwind" {
    /// PostgreSQL's own, unguarded (see the module's comment).
    #[link_name = "standard_ProcessUtility"]
    fn standard_process_utility(
        pstmt: *mut pg_sys::PlannedStmt,
        query_string: *const c_char,
        read_only_tree: bool,
        context: pg_sys::ProcessUtilityContext::Type,
        params: pg_sys::ParamListInfo,
        query_env: *mut pg_sys::QueryEnvironment,
        dest: *mut pg_sys::DestReceiver,
        qc: *mut pg_sys::QueryCompletion,
    );
}

/// Not guarded (see the module's comment): the extension's own checks run
/// in a guarded function first, then the statement runs as without it.
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
    // SAFETY: PostgreSQL passes a valid planned utility statement; the
    // arguments go on as received, to the next hook or PostgreSQL itself.
    unsafe {
        before_utility(pstmt);
        let run = PREVIOUS_UTILITY.get().unwrap_or(standard_process_utility);
        run(
            pstmt,
            query_string,
            read_only_tree,
            context,
            params,
            query_env,
            dest,
            qc,
        );
    }
}

#[pg_guard]
unsafe extern "C-unwind" fn before_utility(pstmt: *mut pg_sys::PlannedStmt) {
    let Some(callback) = BEFORE_UTILITY.get() else {
        return;
    };
    // SAFETY: PostgreSQL passes a valid planned utility statement; nodes are
    // read by their tags.
    unsafe {
        let statement = (*pstmt).utilityStmt;
        if statement.is_null() {
            return;
        }
        match (*statement).type_ {
            pg_sys::NodeTag::T_DeclareCursorStmt => {
                let declare = &*statement.cast::<pg_sys::DeclareCursorStmt>();
                if declare.options & pg_sys::CURSOR_OPT_HOLD as i32 != 0 {
                    let name = CStr::from_ptr(declare.portalname).to_string_lossy();
                    callback(&Utility::HoldCursor(&name));
                }
            }
            pg_sys::NodeTag::T_LockStmt => {
                let lock = &*statement.cast::<pg_sys::LockStmt>();
                let relations = pgrx::PgList::<pg_sys::RangeVar>::from_pg(lock.relations)
                    .iter_ptr()
                    .filter_map(|range| {
                        let relid = pg_sys::RangeVarGetRelidExtended(
                            range,
                            pg_sys::NoLock as i32,
                            pg_sys::RVROption::RVR_MISSING_OK,
                            None,
                            std::ptr::null_mut(),
                        );
                        let schema = pg_sys::get_namespace_name(pg_sys::get_rel_namespace(relid));
                        (relid != pg_sys::InvalidOid && !schema.is_null())
                            .then(|| (relid, CStr::from_ptr(schema).to_string_lossy().into_owned()))
                    })
                    .collect();
                callback(&Utility::Lock(relations));
            }
            _ => {}
        }
    }
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
