//! Who is calling, running catalog work as the catalog's owner, and running
//! code that another role wrote (and what that code may not reach).

use pgrx::pg_sys;
use pgrx::IntoDatum;
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

/// The role the session logged in as (or SET SESSION AUTHORIZATION's).
pub fn session_role() -> pg_sys::Oid {
    // SAFETY: GetSessionUserId() is always a valid role inside a transaction.
    unsafe { pg_sys::GetSessionUserId() }
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

/// Whether `role` has the CREATEROLE attribute (or is a superuser).
pub fn role_creates_roles(role: pg_sys::Oid) -> bool {
    // SAFETY: a catalog lookup (false for a role that is gone).
    unsafe { pg_sys::has_createrole_privilege(role) }
}

/// Whether `member` is a member of `role`, directly or not, whatever its
/// INHERIT (pg_has_role's MEMBER).
pub fn is_member_of(member: pg_sys::Oid, role: pg_sys::Oid) -> bool {
    // SAFETY: a catalog lookup, cached by PostgreSQL per role.
    unsafe { pg_sys::is_member_of_role(member, role) }
}

/// A role's oid by name, None when there is none.
pub fn existing_role_oid(name: &CStr) -> Option<pg_sys::Oid> {
    // SAFETY: a lookup by name, missing_ok.
    let oid = unsafe { pg_sys::get_role_oid(name.as_ptr(), true) };
    (oid != pg_sys::InvalidOid).then_some(oid)
}

pub fn role_is_superuser(role: pg_sys::Oid) -> bool {
    // SAFETY: a catalog lookup (false for a role that is gone).
    unsafe { pg_sys::superuser_arg(role) }
}

pub fn is_superuser() -> bool {
    // SAFETY: a catalog lookup for the current role.
    unsafe { pg_sys::superuser() }
}

/// `is_superuser`, for the statement hooks (hooks.rs), which ask on every
/// statement outside any error guard: PostgreSQL's superuser() called
/// directly, not through pgrx's guard (whose error would become a panic
/// there, and which costs more than the call). PostgreSQL keeps the last
/// role's answer; a new role's is a syscache read, which raises only as any
/// catalog read does, through frames that hold nothing to drop.
pub fn is_superuser_unguarded() -> bool {
    unsafe extern "C-unwind" {
        #[link_name = "superuser"]
        fn raw_superuser() -> bool;
    }
    // SAFETY: reads the current role's attribute (see above).
    unsafe { raw_superuser() }
}

/// Whether the current role may read the relation (a superuser may).
pub fn may_read(relid: pg_sys::Oid) -> bool {
    // SAFETY: a privilege check against the catalogs.
    unsafe {
        pg_sys::pg_class_aclcheck(relid, pg_sys::GetUserId(), pg_sys::ACL_SELECT as _)
            == pg_sys::AclResult::ACLCHECK_OK
    }
}

/// Whether the current role has the privileges of `role` (is it, or a member
/// that inherits them, or a superuser).
pub fn has_privileges_of(role: pg_sys::Oid) -> bool {
    role_has_privileges_of(current_role(), role)
}

/// Whether the row version whose xmin is `xid` was written by this
/// transaction or one of its subtransactions (a catalog row it made).
pub fn written_by_this_transaction(xid: u32) -> bool {
    // SAFETY: reads the transaction state.
    unsafe { pg_sys::TransactionIdIsCurrentTransactionId(xid.into()) }
}

/// Whether `member` has the privileges of `role` (is it, or a member that
/// inherits them, or a superuser).
pub fn role_has_privileges_of(member: pg_sys::Oid, role: pg_sys::Oid) -> bool {
    // SAFETY: a catalog lookup.
    unsafe { pg_sys::has_privs_of_role(member, role) }
}

/// In a transaction that failed and waits for its ROLLBACK: nothing may be
/// looked up.
pub fn in_failed_transaction() -> bool {
    // SAFETY: reads the transaction state.
    unsafe { pg_sys::IsAbortedTransactionBlockState() }
}

/// True inside BEGIN … COMMIT (explicit or implicit multi-statement block).
pub fn in_transaction_block() -> bool {
    // SAFETY: reads the transaction state.
    unsafe { pg_sys::IsTransactionBlock() }
}

/// Whether the session has a portal besides the one running this statement
/// (a cursor, a named portal of the extended protocol): a look at the
/// portals' memory contexts, cheap enough for every set_tenant.
pub fn other_portals_exist() -> bool {
    // SAFETY: PortalContext is the running portal's memory context, a child
    // of TopPortalContext like every portal's; the tree is only read.
    unsafe {
        let running = pg_sys::PortalContext;
        if running.is_null() || (*running).parent.is_null() {
            return true;
        }
        let first = (*(*running).parent).firstchild;
        !first.is_null() && !(*first).nextchild.is_null()
    }
}

/// True when the session has an open cursor (any portal between fetches).
/// Only where a true answer raises: PostgreSQL's ThereAreNoReadyPortals()
/// leaves its scan of the portal table open when it finds one, which a
/// transaction that goes on to commit reports as a leak.
pub fn has_open_cursors() -> bool {
    // The portal running the current statement is PORTAL_ACTIVE, not ready.
    // SAFETY: scans the session's portal table.
    other_portals_exist() && unsafe { !pg_sys::ThereAreNoReadyPortals() }
}

/// Close every held cursor that an earlier transaction left behind (not one
/// of this transaction, not running, not pinned by a procedure).
pub fn close_held_cursors_of_earlier_transactions() {
    let names: Vec<String> = pinned(|| {
        pgrx::Spi::connect(|client| {
            client
                .select("SELECT name FROM pg_cursors WHERE is_holdable", None, &[])?
                .filter_map(|row| row.get::<String>(1).transpose())
                .collect::<Result<_, pgrx::spi::Error>>()
        })
    })
    .unwrap_or_else(|e| {
        crate::error::TenancyError::Internal(format!("listing the session's cursors: {e}")).raise()
    });
    for name in names {
        let Ok(name) = std::ffi::CString::new(name) else {
            continue;
        };
        // SAFETY: the portal is looked up by name and dropped as CLOSE does.
        unsafe {
            let portal = pg_sys::GetPortalByName(name.as_ptr());
            if portal.is_null() {
                continue;
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
}

/// Run `f` as `owner` with `search_path` pinned to pg_catalog, like a
/// SECURITY DEFINER function with `SET search_path`: callers need no privilege
/// on the catalog, and objects on their search_path (operators, functions)
/// cannot be substituted into the extension's queries. Only for the
/// extension's own statements on its own catalog: never for statements that
/// reach user objects (see `run_user_code`).
pub fn as_owner<R>(owner: pg_sys::Oid, f: impl FnOnce() -> R) -> R {
    struct Leave(u32);
    impl Drop for Leave {
        fn drop(&mut self) {
            OWN_STATEMENTS.set(self.0);
        }
    }
    let _leave = Leave(OWN_STATEMENTS.replace(OWN_STATEMENTS.get() + 1));
    let saved = switch_user(owner, pg_sys::SECURITY_LOCAL_USERID_CHANGE);
    let result = pinned(f);
    restore_user(saved);
    result
}

/// How deep in `as_owner` the backend is. Read on every statement (see
/// `BackendCell`).
static OWN_STATEMENTS: super::BackendCell<u32> = super::BackendCell::new(0);

/// Whether the statements being run are the extension's own (`as_owner`),
/// not a caller's.
pub fn in_own_statements() -> bool {
    OWN_STATEMENTS.get() > 0
}

/// The search_path of every statement the extension runs itself: nothing a
/// caller can create in is searched (pg_temp last, never first).
pub const PINNED_PATH: &str = "pg_catalog, pg_temp";

/// Run `f`, the extension's own statements, with `search_path` pinned (for
/// the few that run with the caller's rights; `as_owner` pins it too).
pub fn pinned<R>(f: impl FnOnce() -> R) -> R {
    with_setting(c"search_path", PINNED_PATH, f)
}

/// How the extension runs code that another role wrote.
pub struct UserCode<'a> {
    /// Who it runs as: the table's owner, the migration owner.
    pub role: pg_sys::Oid,
    pub search_path: &'a str,
}

impl UserCode<'static> {
    /// Code of `role`'s, with the pinned search_path and row-level security
    /// as usual.
    pub fn of(role: pg_sys::Oid) -> Self {
        UserCode {
            role,
            search_path: PINNED_PATH,
        }
    }
}

/// Run `f`, which reaches code that another role wrote (triggers, rules,
/// defaults, migration scripts), the way PostgreSQL runs VACUUM, ANALYZE,
/// REFRESH MATERIALIZED VIEW and index builds as the table's owner: as
/// `code.role`, in a security-restricted operation (no SET ROLE, no
/// temporary tables, no WITH HOLD cursors, no deferred triggers, no PREPARE),
/// with `search_path` pinned, row-level security on, and no tenant context
/// (which the code cannot change: see `in_user_code`).
/// Every setting the code changes, with SET LOCAL, SET or set_config(), is
/// discarded when it returns (PostgreSQL's `AtEOXact_GUC(false, …)`): nothing
/// it does steers what the extension, or the caller's session, does next.
/// If it raises, the (sub)transaction abort restores the same.
pub fn run_user_code<R>(code: UserCode, f: impl FnOnce() -> R) -> R {
    // An open cursor of the caller's (pg_cursors names it) could be fetched
    // by the code, with what it reads as the caller.
    if has_open_cursors() {
        crate::error::TenancyError::CursorsOpenForUserCode.raise();
    }
    let flags = pg_sys::SECURITY_LOCAL_USERID_CHANGE | pg_sys::SECURITY_RESTRICTED_OPERATION;
    let saved = switch_user(code.role, flags);
    // SAFETY: a nest level closed below, or by the (sub)transaction abort.
    let nest_level = unsafe { pg_sys::NewGUCNestLevel() };
    crate::postgres::gucs::save(c"search_path", code.search_path);
    // pg_dump's row_security = off would make every statement on a FORCEd table fail.
    crate::postgres::gucs::save(c"row_security", "on");
    crate::postgres::gucs::save_no_context();
    let portals = portal_contexts();
    let own = OWN_STATEMENTS.replace(0);
    // (an error on the way reseeds at the (sub)transaction's abort)
    RESEED_PENDING.set(true);
    let result = {
        let _running = RunningUserCode::enter();
        f()
    };
    OWN_STATEMENTS.set(own);
    close_portals_opened_since(&portals);
    // SAFETY: discards every setting changed since the nest level began.
    unsafe { pg_sys::AtEOXact_GUC(false, nest_level) };
    restore_user(saved);
    reseed_random();
    result
}

thread_local! {
    /// User code ran, and random() has not been seeded afresh since.
    static RESEED_PENDING: Cell<bool> = const { Cell::new(false) };
}

/// At a (sub)transaction's abort: user code that raised may have seeded
/// random() before it did.
pub fn reseed_if_pending() {
    if RESEED_PENDING.get() {
        reseed_random();
    }
}

/// Seed the session's random() afresh, from the strong random source: code
/// that set `seed` (SET seed, set_config('seed', …)) seeded it, and
/// discarding the setting does not undo that.
fn reseed_random() {
    RESEED_PENDING.set(false);
    let mut bytes = [0u8; 8];
    // SAFETY: fills the buffer; the built-in setseed() takes one float8 in
    // [-1, 1] and only reseeds the generator.
    unsafe {
        if !pg_sys::pg_strong_random(bytes.as_mut_ptr().cast(), bytes.len()) {
            return;
        }
        let seed = (u64::from_ne_bytes(bytes) >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0;
        pgrx::direct_function_call::<pg_sys::Datum>(pg_sys::setseed, &[seed.into_datum()]);
    }
}

/// How deep in `run_user_code` the backend is (a plain static: every
/// function call's initialisation reads it, through the object access hook).
static USER_CODE: super::BackendCell<u32> = super::BackendCell::new(0);

/// Whether `run_user_code` is running (PostgreSQL's own restricted
/// operations do not count, unlike `in_user_code`).
pub fn running_user_code() -> bool {
    USER_CODE.get() > 0
}

/// Counts a `run_user_code` while it runs (also when it raises: the guard
/// drops as the error unwinds).
struct RunningUserCode;

impl RunningUserCode {
    fn enter() -> Self {
        USER_CODE.set(USER_CODE.get() + 1);
        RunningUserCode
    }
}

impl Drop for RunningUserCode {
    fn drop(&mut self) {
        USER_CODE.set(USER_CODE.get().saturating_sub(1));
    }
}

/// Whether code that another role wrote is running: a migration or a table
/// owner's triggers (`run_user_code`), or a tenant schema's function
/// (postgres/functions.rs).
pub fn running_others_code() -> bool {
    running_user_code() || super::functions::in_restricted_call()
}

/// Built-in functions that reach the caller's session rather than data, and
/// that such code may not call (by OID, so no wrapper, operator or aggregate
/// gets around it):
/// - those that use a large-object descriptor (`lo_open`'s result): a
///   descriptor belongs to the session, and PostgreSQL checks rights only
///   when it is opened, so the caller's open ones would be read and written
///   with the caller's rights (`lo_get`/`lo_put` check the code's own);
/// - `current_query()`: the caller's whole message, with any secret written
///   into another of its statements (pg_stat_activity hides it from a role
///   that is not the caller's);
/// - `pg_prepared_statement()` (the view pg_prepared_statements): the
///   caller's prepared statements' text, with any secret written into it;
/// - `setseed()`: the session's random() sequence, which would stay
///   predictable after the code returns;
/// - the advisory unlock functions: they release the caller's session locks
///   (another tool's mutual exclusion, a deploy lock);
/// - the activity of other sessions (pg_stat_activity's function and the
///   backend's query) and the functions that cancel or end them: a tenant
///   schema's function runs as the application, which sees and may end its
///   other connections — other tenants' requests.
const SESSION_FUNCTIONS: [(u32, &str); 21] = [
    (pg_sys::F_LOREAD, "large-object descriptors"),
    (pg_sys::F_LOWRITE, "large-object descriptors"),
    (pg_sys::F_LO_CLOSE, "large-object descriptors"),
    (pg_sys::F_LO_LSEEK, "large-object descriptors"),
    (pg_sys::F_LO_LSEEK64, "large-object descriptors"),
    (pg_sys::F_LO_TELL, "large-object descriptors"),
    (pg_sys::F_LO_TELL64, "large-object descriptors"),
    (pg_sys::F_LO_TRUNCATE, "large-object descriptors"),
    (pg_sys::F_LO_TRUNCATE64, "large-object descriptors"),
    (pg_sys::F_CURRENT_QUERY, "current_query()"),
    (
        pg_sys::F_PG_PREPARED_STATEMENT,
        "the session's prepared statements",
    ),
    (pg_sys::F_SETSEED, "setseed()"),
    (pg_sys::F_PG_ADVISORY_UNLOCK_INT8, "advisory unlocks"),
    (pg_sys::F_PG_ADVISORY_UNLOCK_INT4_INT4, "advisory unlocks"),
    (pg_sys::F_PG_ADVISORY_UNLOCK_SHARED_INT8, "advisory unlocks"),
    (
        pg_sys::F_PG_ADVISORY_UNLOCK_SHARED_INT4_INT4,
        "advisory unlocks",
    ),
    (pg_sys::F_PG_ADVISORY_UNLOCK_ALL, "advisory unlocks"),
    (pg_sys::F_PG_STAT_GET_ACTIVITY, "other sessions' activity"),
    (
        pg_sys::F_PG_STAT_GET_BACKEND_ACTIVITY,
        "other sessions' activity",
    ),
    (pg_sys::F_PG_CANCEL_BACKEND, "other sessions"),
    (pg_sys::F_PG_TERMINATE_BACKEND, "other sessions"),
];

/// Called for every function an expression is about to call (the object
/// access hook's OAT_FUNCTION_EXECUTE) while another role's code runs.
pub fn before_function_call(function: pg_sys::Oid) {
    if let Some((_, what)) = SESSION_FUNCTIONS
        .iter()
        .find(|(oid, _)| *oid == function.to_u32())
    {
        let advice = if what.starts_with("large") {
            " Use lo_get(), lo_put() and lo_from_bytea() with the large object's OID."
        } else {
            ""
        };
        refuse_in_others_code(what, advice);
    }
}

/// Refuse what code another role wrote may not use: it would reach the
/// caller's session (its large objects, its query, its random sequence, its
/// transaction's constraint checks).
pub fn refuse_in_others_code(what: &str, advice: &str) -> ! {
    crate::error::TenancyError::PermissionDenied(
        format!(
            "code that tenancy runs for another role (a migration, a table owner's triggers, a \
             tenant schema's function) cannot use {what}"
        ),
        format!("It would reach the session of whoever runs it, with that role's rights.{advice}"),
    )
    .raise()
}

/// The memory contexts of the session's portals (each portal has one, a
/// child of TopPortalContext named after it): a short list to walk.
fn portal_contexts() -> Vec<pg_sys::MemoryContext> {
    let mut contexts = Vec::new();
    // SAFETY: PortalContext is the running portal's memory context, a child
    // of TopPortalContext like every portal's; the tree is only read.
    unsafe {
        let running = pg_sys::PortalContext;
        if running.is_null() || (*running).parent.is_null() {
            return contexts;
        }
        let mut child = (*(*running).parent).firstchild;
        while !child.is_null() {
            contexts.push(child);
            child = (*child).nextchild;
        }
    }
    contexts
}

/// Close the cursors that user code opened and left open: a FETCH by the
/// caller later would run the code's query with the caller's rights.
fn close_portals_opened_since(before: &[pg_sys::MemoryContext]) {
    for context in portal_contexts() {
        if before.contains(&context) {
            continue;
        }
        // SAFETY: a portal context's identifier is its portal's name; the
        // portal is looked up by it and dropped as CLOSE does.
        unsafe {
            let name = (*context).ident;
            if name.is_null() {
                continue;
            }
            let portal = pg_sys::GetPortalByName(name);
            if !portal.is_null()
                && (*portal).portalContext == context
                && (*portal).status != pg_sys::PortalStatus::PORTAL_ACTIVE
                && !(*portal).portalPinned
            {
                pg_sys::PortalDrop(portal, false);
            }
        }
    }
}

/// The depth of trigger calls (PostgreSQL's `pg_trigger_depth()`): above 0
/// inside a trigger, code its table's owner (or a migration) wrote.
pub fn trigger_depth() -> i32 {
    unsafe extern "C-unwind" {
        fn pg_trigger_depth(fcinfo: pg_sys::FunctionCallInfo) -> pg_sys::Datum;
    }
    // SAFETY: the built-in returns a counter and reads nothing of its call
    // information (called directly: looking it up costs more than it does).
    unsafe {
        let mut call = std::mem::zeroed::<pg_sys::FunctionCallInfoBaseData>();
        pg_trigger_depth(&mut call).value() as i32
    }
}

/// Whether code that another role wrote is running (`run_user_code`): the
/// restricted operation's flag, which only PostgreSQL's own restricted
/// operations (index builds, VACUUM, REFRESH, …) set besides.
pub fn in_user_code() -> bool {
    // SAFETY: reads the security context.
    unsafe { pg_sys::InSecurityRestrictedOperation() }
}

/// Switch the user id, adding `flags` to the security context; returns what
/// to restore. If the caller raises, the (sub)transaction abort restores it.
fn switch_user(role: pg_sys::Oid, flags: u32) -> (pg_sys::Oid, i32) {
    let mut saved_user = pg_sys::InvalidOid;
    let mut saved_context = 0;
    // SAFETY: the save/restore pair of PostgreSQL's own SECURITY DEFINER handling.
    unsafe {
        pg_sys::GetUserIdAndSecContext(&mut saved_user, &mut saved_context);
        pg_sys::SetUserIdAndSecContext(role, saved_context | flags as i32);
    }
    (saved_user, saved_context)
}

fn restore_user((user, context): (pg_sys::Oid, i32)) {
    // SAFETY: restores what switch_user saved.
    unsafe { pg_sys::SetUserIdAndSecContext(user, context) };
}

/// Run `f` with a setting changed, restored afterwards like a function's SET
/// clause (an error restores it through the (sub)transaction abort). Only
/// around the extension's own statements: what they SET LOCAL stays.
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
