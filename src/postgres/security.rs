//! Who is calling, and running catalog work as the catalog's owner.

use pgrx::pg_sys;
use std::cell::Cell;
use std::ffi::CStr;

/// Name of the current role (`current_user`).
pub fn current_role_name() -> String {
    role_name(current_role())
}

/// A role's name, or "oid N" for a role that no longer exists.
pub fn role_name(role: pg_sys::Oid) -> String {
    // SAFETY: noerr lookup; the name is copied at once.
    unsafe {
        let name = pg_sys::GetUserNameFromId(role, true);
        if name.is_null() {
            format!("oid {}", role.to_u32())
        } else {
            CStr::from_ptr(name).to_string_lossy().into_owned()
        }
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
    let reason = role_bypass_reason(role);
    LAST_ROLE.set(Some((role, reason)));
    reason
}

/// Why row-level security would not apply to `role`, if it would not.
pub fn role_bypass_reason(role: pg_sys::Oid) -> Option<&'static str> {
    // SAFETY: plain catalog lookups; an unknown role is neither.
    unsafe {
        if pg_sys::superuser_arg(role) {
            Some("is a superuser")
        } else if pg_sys::has_bypassrls_privilege(role) {
            Some("has the BYPASSRLS attribute")
        } else {
            None
        }
    }
}

/// The current role (`current_user`).
pub fn current_role() -> pg_sys::Oid {
    // SAFETY: GetUserId() is always a valid role inside a transaction.
    unsafe { pg_sys::GetUserId() }
}

/// The role of the session outside security-definer functions (SET ROLE's),
/// e.g. who ran the DDL that fired an event trigger.
pub fn outer_role_name() -> String {
    // SAFETY: GetOuterUserId() is always a valid role inside a transaction.
    role_name(unsafe { pg_sys::GetOuterUserId() })
}

/// The role named `name` (raises 42704 if there is none).
pub fn role_oid(name: &str) -> pg_sys::Oid {
    let name = std::ffi::CString::new(name).unwrap_or_default();
    // SAFETY: a syscache lookup that raises for an unknown role.
    unsafe { pg_sys::get_role_oid(name.as_ptr(), false) }
}

pub fn role_exists(role: pg_sys::Oid) -> bool {
    // SAFETY: a syscache probe.
    unsafe {
        pg_sys::SearchSysCacheExists(
            pg_sys::SysCacheIdentifier::AUTHOID as i32,
            role.into(),
            0.into(),
            0.into(),
            0.into(),
        )
    }
}

pub fn is_superuser() -> bool {
    // SAFETY: a catalog lookup for the current role.
    unsafe { pg_sys::superuser() }
}

/// True inside BEGIN … COMMIT (explicit or implicit multi-statement block).
pub fn in_transaction_block() -> bool {
    // SAFETY: reads the transaction state.
    unsafe { pg_sys::IsTransactionBlock() }
}

/// True when the session has an open cursor (any portal between fetches).
pub fn has_open_cursors() -> bool {
    // The portal running the current statement is PORTAL_ACTIVE, not ready.
    // SAFETY: scans the session's portal table.
    unsafe { !pg_sys::ThereAreNoReadyPortals() }
}

/// Close the cursor `name` if it is a held cursor of an earlier transaction
/// (not one of this transaction, not running, not pinned by a procedure).
pub fn close_held_cursor(name: &str) {
    let Ok(name) = std::ffi::CString::new(name) else {
        return;
    };
    // SAFETY: the portal is looked up by name and dropped as CLOSE does.
    unsafe {
        let portal = pg_sys::GetPortalByName(name.as_ptr());
        if portal.is_null() {
            return;
        }
        let p = &*portal;
        if p.cursorOptions & pg_sys::CURSOR_OPT_HOLD as i32 != 0
            && p.createSubid == 0 // InvalidSubTransactionId: persisted at an earlier commit
            && p.status == pg_sys::PortalStatus::PORTAL_READY
            && !p.portalPinned
        {
            pg_sys::PortalDrop(portal, false);
        }
    }
}

/// Run `f` as `owner` with `search_path` pinned to pg_catalog, like a
/// SECURITY DEFINER function with `SET search_path`: callers need no privilege
/// on the catalog, and objects on their search_path (operators, functions)
/// cannot be substituted into the extension's queries. Only for the
/// extension's own statements on its own catalog: never for statements that
/// reach user objects (see `as_restricted`).
pub fn as_owner<R>(owner: pg_sys::Oid, f: impl FnOnce() -> R) -> R {
    switch_user(
        owner,
        pg_sys::SECURITY_LOCAL_USERID_CHANGE,
        "pg_catalog, pg_temp",
        f,
    )
}

/// Run `f` as `role` in a security-restricted operation, the way PostgreSQL
/// runs VACUUM, ANALYZE, REFRESH MATERIALIZED VIEW and index builds as the
/// table's owner: whatever `f` reaches that a user wrote (triggers, rules,
/// defaults, index expressions, migration scripts) runs with `role`'s rights,
/// never the caller's or the catalog owner's, and cannot SET ROLE, create
/// temporary objects or leave WITH HOLD cursors behind. Row-level security
/// is on whatever the caller's session says (pg_dump's row_security = off
/// would make every statement on a FORCEd table fail).
pub fn as_restricted<R>(role: pg_sys::Oid, search_path: &str, f: impl FnOnce() -> R) -> R {
    switch_user(
        role,
        pg_sys::SECURITY_LOCAL_USERID_CHANGE | pg_sys::SECURITY_RESTRICTED_OPERATION,
        search_path,
        || with_setting(c"row_security", "on", f),
    )
}

/// The user id switch of both: if `f` raises, the (sub)transaction abort
/// restores the user id, the security context and the setting.
fn switch_user<R>(role: pg_sys::Oid, flags: u32, search_path: &str, f: impl FnOnce() -> R) -> R {
    let mut saved_user = pg_sys::InvalidOid;
    let mut saved_context = 0;
    // SAFETY: the save/restore pair of PostgreSQL's own SECURITY DEFINER handling.
    unsafe {
        pg_sys::GetUserIdAndSecContext(&mut saved_user, &mut saved_context);
        pg_sys::SetUserIdAndSecContext(role, saved_context | flags as i32);
    }
    let result = with_setting(c"search_path", search_path, f);
    // SAFETY: restores what was saved above.
    unsafe { pg_sys::SetUserIdAndSecContext(saved_user, saved_context) };
    result
}

/// Run `f` with a setting changed, restored afterwards like a function's SET
/// clause (an error restores it through the (sub)transaction abort).
pub fn with_setting<R>(name: &CStr, value: &str, f: impl FnOnce() -> R) -> R {
    with_nest_level(|| {
        crate::postgres::gucs::save(name, value);
        f()
    })
}

/// Run `f` without the NOTICEs of its statements (DROP … CASCADE, DROP … IF EXISTS).
pub fn quietly<R>(f: impl FnOnce() -> R) -> R {
    with_setting(c"client_min_messages", "warning", f)
}

/// Run `f` in a GUC nest level: settings it saves (GUC_ACTION_SAVE) are
/// restored when it returns, as fmgr does for a function's SET clauses.
pub fn with_nest_level<R>(f: impl FnOnce() -> R) -> R {
    // SAFETY: a nest level opened and closed around `f`; an error closes it
    // through the (sub)transaction abort.
    let nest_level = unsafe { pg_sys::NewGUCNestLevel() };
    let result = f();
    // SAFETY: closes the nest level opened above.
    unsafe { pg_sys::AtEOXact_GUC(true, nest_level) };
    result
}
