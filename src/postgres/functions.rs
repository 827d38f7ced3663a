//! Functions that another role wrote and that PostgreSQL runs for whoever
//! uses them: a call by name, an operator, an aggregate, a trigger, a view
//! or a default reach them alike. For the functions a feature marks
//! (`init`), each call runs as a security-restricted operation, as
//! PostgreSQL runs an index's functions during VACUUM: no SET ROLE, no
//! temporary objects, no held cursors, and every setting the function
//! changed is discarded when it returns. PostgreSQL's function manager hook
//! (as sepgsql uses it) brings each call of a marked function here.

use super::{BackendCell, BackendRefCell};
use pgrx::pg_sys;
use pgrx::pg_sys::errcodes::PgSqlErrorCode;
use pgrx::prelude::*;
use std::cell::RefCell;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

// Read at every call site PostgreSQL prepares: plain statics (see `BackendCell`).
static PREVIOUS_NEEDS: BackendCell<pg_sys::needs_fmgr_hook_type> = BackendCell::new(None);
static BY_SUPERUSER: BackendCell<Option<fn(pg_sys::Oid)>> = BackendCell::new(None);
static PREVIOUS_HOOK: BackendCell<pg_sys::fmgr_hook_type> = BackendCell::new(None);
static MARKED: BackendCell<Option<super::OidTest>> = BackendCell::new(None);
/// Transactions ended in this backend (a procedure's ROLLBACK ends one
/// while it runs: its settings' nest levels are gone with it).
static ENDED: BackendCell<u64> = BackendCell::new(0);
/// What `MARKED` said of each function looked up, until pg_proc or
/// pg_namespace change (the answer depends on the function's schema and
/// that schema's name): PostgreSQL asks at every call site it prepares
/// and before inlining a SQL function, a few catalog lookups each time
/// otherwise.
static KNOWN: BackendRefCell<HashMap<pg_sys::Oid, bool, BuildHasherDefault<OidHasher>>> =
    BackendRefCell::new(HashMap::with_hasher(BuildHasherDefault::new()));
/// Counts those changes: an answer read while one arrived is not kept.
static CHANGES: BackendCell<u64> = BackendCell::new(0);

thread_local! {
    /// The calls running, innermost last: what to restore when each ends.
    static CALLS: RefCell<Vec<Saved>> = const { RefCell::new(Vec::new()) };
}

/// Oids are small distinct integers: a multiplication spreads them enough.
#[derive(Default)]
struct OidHasher(u64);

impl Hasher for OidHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 ^ u64::from(*b)).wrapping_mul(0x100000001b3);
        }
    }
    fn write_u32(&mut self, n: u32) {
        self.0 = u64::from(n).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

struct Saved {
    user: pg_sys::Oid,
    context: i32,
    nest_level: i32,
    ended: u64,
}

/// Once per backend, from _PG_init: `marked(function)` tells the functions
/// whose calls run restricted; `by_superuser(function)` raises for a call of
/// one by a superuser (restricted, it would still run with every right a
/// superuser has that a restricted operation does not take away, such as
/// COPY … TO PROGRAM).
pub fn init(marked: super::OidTest, by_superuser: fn(pg_sys::Oid)) {
    MARKED.set(Some(marked));
    BY_SUPERUSER.set(Some(by_superuser));
    // SAFETY: chaining the hooks as every extension does, once per backend.
    unsafe {
        PREVIOUS_NEEDS.set(pg_sys::needs_fmgr_hook);
        pg_sys::needs_fmgr_hook = Some(needs_hook);
        PREVIOUS_HOOK.set(pg_sys::fmgr_hook);
        pg_sys::fmgr_hook = Some(hook);
        pg_sys::RegisterXactCallback(Some(transaction_event), std::ptr::null_mut());
        for cache in [
            pg_sys::SysCacheIdentifier::PROCOID,
            pg_sys::SysCacheIdentifier::NAMESPACEOID,
        ] {
            pg_sys::CacheRegisterSyscacheCallback(cache as i32, Some(forget_known), 0.into());
        }
    }
}

/// A function or a schema changed (here or, at the next transaction or lock,
/// in another backend): ask again. Only frees memory.
unsafe extern "C-unwind" fn forget_known(_arg: pg_sys::Datum, _cache: i32, _hash: u32) {
    CHANGES.set(CHANGES.get().wrapping_add(1));
    KNOWN.with(|known| {
        if let Ok(mut known) = known.try_borrow_mut() {
            known.clear();
        }
    });
}

/// A restricted call may not commit (a procedure's COMMIT): the commit is
/// refused, as PostgreSQL refuses it in SECURITY DEFINER procedures. Not
/// guarded: only the refusal, rare, needs the guard.
unsafe extern "C-unwind" fn transaction_event(
    event: pg_sys::XactEvent::Type,
    _arg: *mut std::ffi::c_void,
) {
    use pg_sys::XactEvent::*;
    match event {
        XACT_EVENT_PRE_COMMIT | XACT_EVENT_PRE_PREPARE if in_restricted_call() => {
            // SAFETY: a guarded call.
            unsafe { refuse_commit() };
        }
        XACT_EVENT_COMMIT | XACT_EVENT_ABORT | XACT_EVENT_PREPARE => {
            ENDED.set(ENDED.get() + 1);
        }
        _ => {}
    }
}

#[pg_guard]
unsafe extern "C-unwind" fn refuse_commit() {
    ereport!(
        ERROR,
        PgSqlErrorCode::ERRCODE_INVALID_TRANSACTION_TERMINATION,
        "a tenant schema's procedure may not commit",
        "Its calls run restricted, as one operation: commit after the CALL returns."
    );
}

/// Whether a restricted call is running (its statements are the function
/// author's).
pub fn in_restricted_call() -> bool {
    DEPTH.get() > 0
}

/// How many restricted calls are running (CALLS' length), read where every
/// function call's initialisation asks (the object access hook).
static DEPTH: super::BackendCell<usize> = super::BackendCell::new(0);

/// Asked when PostgreSQL looks a function up (once per call site, not per
/// call; never for built-in functions). Not guarded: the decision is.
unsafe extern "C-unwind" fn needs_hook(function: pg_sys::Oid) -> bool {
    // SAFETY: the previous hook, with the argument as received.
    (unsafe {
        PREVIOUS_NEEDS
            .get()
            .is_some_and(|previous| previous(function))
    }) || unsafe { marked(function) }
}

unsafe extern "C-unwind" fn marked(function: pg_sys::Oid) -> bool {
    let known = KNOWN.with(|known| known.try_borrow().ok()?.get(&function).copied());
    known.unwrap_or_else(|| {
        let changes = CHANGES.get();
        // SAFETY: the feature's test may look the catalog up (and so process
        // invalidations), and raise.
        let answer = unsafe { marked_by_feature(function) };
        if CHANGES.get() == changes {
            KNOWN.with(|known| {
                if let Ok(mut known) = known.try_borrow_mut() {
                    known.insert(function, answer);
                }
            });
        }
        answer
    })
}

#[pg_guard]
unsafe extern "C-unwind" fn marked_by_feature(function: pg_sys::Oid) -> bool {
    MARKED.get().is_some_and(|marked| marked(function))
}

/// Each call of a function some hook asked for (ours, another extension's,
/// SECURITY DEFINER and SET functions): `memo` is the call site's, 0 until
/// the first call tells whether the function is ours to restrict.
unsafe extern "C-unwind" fn hook(
    event: pg_sys::FmgrHookEventType::Type,
    info: *mut pg_sys::FmgrInfo,
    memo: *mut pg_sys::Datum,
) {
    // SAFETY: the arguments as received; the memo is the call site's own.
    unsafe {
        if let Some(previous) = PREVIOUS_HOOK.get() {
            previous(event, info, memo);
        }
        // The memo is one Datum for every hook: kept only when none other is.
        const RESTRICTED: usize = 1;
        const FREE: usize = 2;
        let restricted = if PREVIOUS_HOOK.get().is_some() {
            marked((*info).fn_oid)
        } else {
            if (*memo).value() == 0 {
                *memo = pg_sys::Datum::from(if marked((*info).fn_oid) {
                    RESTRICTED
                } else {
                    FREE
                });
            }
            (*memo).value() == RESTRICTED
        };
        if restricted {
            match event {
                pg_sys::FmgrHookEventType::FHET_START => enter((*info).fn_oid),
                pg_sys::FmgrHookEventType::FHET_END => leave(true),
                _ => leave(false),
            }
        }
    }
}

fn enter(function: pg_sys::Oid) {
    let mut user = pg_sys::InvalidOid;
    let mut context = 0;
    // SAFETY: reads the current user; `refuse` is guarded.
    unsafe {
        pg_sys::GetUserIdAndSecContext(&mut user, &mut context);
        if pg_sys::superuser_arg(user) {
            refuse(function);
        }
    }
    // SAFETY: the save/restore pair of PostgreSQL's own restricted
    // operations; a GUC nest level closed in `leave` or by the abort.
    let nest_level = unsafe {
        pg_sys::SetUserIdAndSecContext(
            user,
            context | pg_sys::SECURITY_RESTRICTED_OPERATION as i32,
        );
        pg_sys::NewGUCNestLevel()
    };
    CALLS.with(|calls| {
        if let Ok(mut calls) = calls.try_borrow_mut() {
            calls.push(Saved {
                user,
                context,
                nest_level,
                ended: ENDED.get(),
            });
            DEPTH.set(calls.len());
        }
    });
}

#[pg_guard]
unsafe extern "C-unwind" fn refuse(function: pg_sys::Oid) {
    if let Some(by_superuser) = BY_SUPERUSER.get() {
        by_superuser(function);
    }
}

/// `returned`: the function returned (its settings are discarded here); or
/// it raised (the (sub)transaction's abort closes the nest level).
fn leave(returned: bool) {
    let saved = CALLS.with(|calls| {
        calls.try_borrow_mut().ok().and_then(|mut calls| {
            let saved = calls.pop();
            DEPTH.set(calls.len());
            saved
        })
    });
    if let Some(saved) = saved {
        // SAFETY: restores what `enter` saved.
        unsafe {
            if returned && saved.ended == ENDED.get() {
                pg_sys::AtEOXact_GUC(false, saved.nest_level);
            }
            pg_sys::SetUserIdAndSecContext(saved.user, saved.context);
        }
    }
}

/// The function's qualified name and argument types, as `regprocedure`
/// shows it.
pub fn name(function: pg_sys::Oid) -> String {
    // SAFETY: format_procedure_qualified builds a palloc'd string (for a
    // function that is gone, its oid).
    unsafe {
        let name = pg_sys::format_procedure_qualified(function);
        let shown = std::ffi::CStr::from_ptr(name)
            .to_string_lossy()
            .into_owned();
        pg_sys::pfree(name.cast());
        shown
    }
}

/// Whether the name of a function's schema passes `test` (false for a
/// function that is gone). Read in place: it runs for every function call
/// PostgreSQL prepares that is not built in.
pub fn schema_name_is(function: pg_sys::Oid, test: impl Fn(&[u8]) -> bool) -> bool {
    // SAFETY: syscache lookups; InvalidOid or NULL for what is gone. The
    // name is a palloc'd copy, freed after the test.
    unsafe {
        let namespace = pg_sys::get_func_namespace(function);
        if namespace == pg_sys::InvalidOid {
            return false;
        }
        let name = pg_sys::get_namespace_name(namespace);
        if name.is_null() {
            return false;
        }
        let result = test(std::ffi::CStr::from_ptr(name).to_bytes());
        pg_sys::pfree(name.cast());
        result
    }
}
