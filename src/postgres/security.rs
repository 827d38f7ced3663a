//! Who is calling, and running catalog work as the catalog's owner.

use pgrx::pg_sys;
use std::cell::Cell;
use std::ffi::CStr;

/// Name of the current role (`current_user`).
pub fn current_role_name() -> String {
    // SAFETY: GetUserId() is always a valid role inside a transaction.
    unsafe { role_name(pg_sys::GetUserId()) }
}

unsafe fn role_name(role: pg_sys::Oid) -> String {
    let name = pg_sys::GetUserNameFromId(role, true);
    if name.is_null() {
        format!("oid {}", role.to_u32())
    } else {
        CStr::from_ptr(name).to_string_lossy().into_owned()
    }
}

thread_local! {
    /// (role, whether row-level security applies to it) of the last role asked
    /// about: set_tenant asks on every call. Forgotten when pg_authid changes.
    static LAST_ROLE: Cell<Option<(pg_sys::Oid, Option<&'static str>)>> = const { Cell::new(None) };
}

pub fn init() {
    // SAFETY: called once per backend from _PG_init; the callback only resets a Cell.
    unsafe {
        pg_sys::CacheRegisterSyscacheCallback(
            pg_sys::SysCacheIdentifier::AUTHOID as i32,
            Some(on_role_change),
            0.into(),
        )
    };
}

#[pgrx::pg_guard]
unsafe extern "C-unwind" fn on_role_change(_arg: pg_sys::Datum, _cacheid: i32, _hash: u32) {
    LAST_ROLE.set(None);
}

/// Why row-level security would not apply to the current role, if it would not.
pub fn rls_bypass_reason() -> Option<&'static str> {
    // SAFETY: GetUserId() is always a valid role inside a transaction.
    let role = unsafe { pg_sys::GetUserId() };
    if let Some((cached, reason)) = LAST_ROLE.get() {
        if cached == role {
            return reason;
        }
    }
    // SAFETY: plain catalog lookups for the current role.
    let reason = unsafe {
        if pg_sys::superuser_arg(role) {
            Some("is a superuser")
        } else if pg_sys::has_bypassrls_privilege(role) {
            Some("has the BYPASSRLS attribute")
        } else {
            None
        }
    };
    LAST_ROLE.set(Some((role, reason)));
    reason
}

/// True inside BEGIN … COMMIT (explicit or implicit multi-statement block).
pub fn in_transaction_block() -> bool {
    unsafe { pg_sys::IsTransactionBlock() }
}

/// True when the session has an open cursor (any portal between fetches).
pub fn has_open_cursors() -> bool {
    // The portal running the current statement is PORTAL_ACTIVE, not ready.
    unsafe { !pg_sys::ThereAreNoReadyPortals() }
}

/// Run `f` as `owner` with `search_path` pinned to pg_catalog, like a
/// SECURITY DEFINER function with `SET search_path`: callers need no privilege
/// on the catalog, and objects on their search_path (operators, functions)
/// cannot be substituted into the extension's queries. If `f` raises, the
/// (sub)transaction abort restores both the user id and the setting.
pub fn as_owner<R>(owner: pg_sys::Oid, f: impl FnOnce() -> R) -> R {
    let mut saved_user = pg_sys::InvalidOid;
    let mut saved_context = 0;
    // SAFETY: the save/restore pair of PostgreSQL's own SECURITY DEFINER handling.
    unsafe {
        pg_sys::GetUserIdAndSecContext(&mut saved_user, &mut saved_context);
        pg_sys::SetUserIdAndSecContext(
            owner,
            saved_context | pg_sys::SECURITY_LOCAL_USERID_CHANGE as i32,
        );
    }
    let result = with_setting(c"search_path", "pg_catalog, pg_temp", f);
    unsafe { pg_sys::SetUserIdAndSecContext(saved_user, saved_context) };
    result
}

/// Run `f` with a setting changed, restored afterwards like a function's SET
/// clause (an error restores it through the (sub)transaction abort).
pub fn with_setting<R>(name: &CStr, value: &str, f: impl FnOnce() -> R) -> R {
    // SAFETY: a GUC nest level opened and closed around `f`, as fmgr does for SET clauses.
    let nest_level = unsafe { pg_sys::NewGUCNestLevel() };
    crate::postgres::gucs::save(name, value);
    let result = f();
    unsafe { pg_sys::AtEOXact_GUC(true, nest_level) };
    result
}
