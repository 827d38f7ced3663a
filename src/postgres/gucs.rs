//! Every setting of the extension, in one place.

use pgrx::guc::{GucContext, GucFlags, GucRegistry, GucSetting};
use pgrx::pg_sys;
use std::ffi::{c_char, c_void, CStr, CString};

const TENANT_GUC: &CStr = c"tenancy.tenant";
const CONTEXT_GUC: &CStr = c"tenancy.context";

/// The current tenant's id ('' or unset = none). PGC_SUSET: a plain role's
/// `SET`, `set_config()`, `ALTER ROLE … SET` and `-c` options are refused;
/// only the extension's functions set it, after validating the tenant.
static TENANT: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);
static CACHE_SIZE: GucSetting<i32> = GucSetting::<i32>::new(1024);
static REQUIRE_TENANT: GucSetting<bool> = GucSetting::<bool>::new(false);
static AUTO_PROTECT: GucSetting<bool> = GucSetting::<bool>::new(true);
static REQUIRE_TOKEN: GucSetting<bool> = GucSetting::<bool>::new(false);
static JWT_CLAIM: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(Some(c"tenant"));
static JWT_AUDIENCE: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);
static JWT_ISSUER: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);
static JWT_MAX_LIFETIME: GucSetting<i32> = GucSetting::<i32>::new(86_400);
static TOKEN_MAX_LIFETIME: GucSetting<i32> = GucSetting::<i32>::new(86_400);
static AUDIT_RATE: GucSetting<i32> = GucSetting::<i32>::new(100);
static TRACK_USAGE: GucSetting<bool> = GucSetting::<bool>::new(true);
static STATS_MAX: GucSetting<i32> = GucSetting::<i32>::new(10_000);
/// On a Citus worker: the coordinator's tenant context, signed for one
/// distributed transaction (see api/citus.rs). Anyone may set it: it opens
/// nothing unless it verifies.
static CONTEXT: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);

/// Told the context's new value (None: no tenant).
type TenantChange = fn(Option<uuid::Uuid>);

thread_local! {
    /// The tenancy.* settings a client gave as connection options without the
    /// right to set them, found when the library loaded (see `shadowed_by_client`).
    static FROM_CLIENT: std::cell::RefCell<Vec<String>> = const { std::cell::RefCell::new(Vec::new()) };
    /// Told every value the context takes, also when PostgreSQL restores one
    /// at a transaction's or a function's end.
    static ON_TENANT_CHANGE: std::cell::Cell<Option<TenantChange>> = const { std::cell::Cell::new(None) };
}

pub fn track_usage() -> bool {
    TRACK_USAGE.get()
}

pub fn stats_max() -> usize {
    STATS_MAX.get().max(1) as usize
}

/// Call `f` with every value the context takes from now on.
pub fn on_tenant_change(f: fn(Option<uuid::Uuid>)) {
    ON_TENANT_CHANGE.set(Some(f));
}

pub fn cache_size() -> usize {
    CACHE_SIZE.get().max(1) as usize
}

pub fn require_tenant() -> bool {
    REQUIRE_TENANT.get()
}

pub fn auto_protect() -> bool {
    AUTO_PROTECT.get()
}

pub fn require_token() -> bool {
    REQUIRE_TOKEN.get()
}

fn text(setting: &GucSetting<Option<CString>>) -> Option<String> {
    setting
        .get()
        .map(|value| value.to_string_lossy().into_owned())
        .filter(|value| !value.is_empty())
}

/// The JWT claim naming the tenant ('' when unset).
pub fn jwt_claim() -> String {
    text(&JWT_CLAIM).unwrap_or_default()
}

pub fn jwt_audience() -> Option<String> {
    text(&JWT_AUDIENCE)
}

pub fn jwt_issuer() -> Option<String> {
    text(&JWT_ISSUER)
}

/// Seconds; 0 for no limit.
pub fn jwt_max_lifetime() -> i64 {
    JWT_MAX_LIFETIME.get() as i64
}

/// Seconds: the longest lifetime of a tenancy token (issued or presented).
pub fn token_max_lifetime() -> i64 {
    TOKEN_MAX_LIFETIME.get() as i64
}

/// Application audit events per tenant and second; 0 for no limit.
pub fn audit_rate() -> i64 {
    AUDIT_RATE.get() as i64
}

/// Names of the tenancy.* settings given as connection options (-c,
/// PGOPTIONS, a DSN's options) by a client without the right to set them, or
/// None. PostgreSQL refuses such a value when the library defines the setting,
/// but the client's value had already replaced, for the whole session, what an
/// administrator configured for the role or database (`ALTER ROLE … SET`): the
/// session runs with the default instead (e.g. require_token off). Entry points
/// into a tenant context refuse such a session.
pub fn shadowed_by_client() -> Option<String> {
    FROM_CLIENT.with_borrow(|names| (!names.is_empty()).then(|| names.join(", ")))
}

/// Before the definitions replace them: placeholders of ours whose value (or
/// default for the session) came from the client's startup packet, set by a
/// role that is not a superuser (PGC_BACKEND; a superuser's is PGC_SU_BACKEND
/// and legitimately applied).
fn find_client_placeholders() -> Vec<String> {
    use pg_sys::{GucContext::PGC_SU_BACKEND, GucSource::PGC_S_CLIENT};
    let mut names = Vec::new();
    // SAFETY: PostgreSQL's array of settings, read (not changed) in this backend.
    unsafe {
        #[cfg(any(feature = "pg13", feature = "pg14", feature = "pg15"))]
        let (vars, count) = (pg_sys::get_guc_variables(), pg_sys::GetNumConfigOptions());
        #[cfg(not(any(feature = "pg13", feature = "pg14", feature = "pg15")))]
        let (vars, count) = {
            let mut count = 0;
            (pg_sys::get_guc_variables(&mut count), count)
        };
        for i in 0..count as usize {
            let var = &**vars.add(i);
            let name = CStr::from_ptr(var.name).to_string_lossy();
            let from_client = |source, context| source == PGC_S_CLIENT && context != PGC_SU_BACKEND;
            // PostgreSQL matches setting names without regard to case:
            // -c TENANCY.require_token=off replaces tenancy.require_token.
            let ours = name
                .get(..8)
                .is_some_and(|prefix| prefix.eq_ignore_ascii_case("tenancy."));
            if ours
                && var.flags & pg_sys::GUC_CUSTOM_PLACEHOLDER as i32 != 0
                && (from_client(var.source, var.scontext)
                    || from_client(var.reset_source, var.reset_scontext))
            {
                names.push(name.into_owned());
            }
        }
    }
    names
}

pub fn init() {
    FROM_CLIENT.set(find_client_placeholders());
    // SAFETY: the check hook is a #[pg_guard] function with the signature PostgreSQL expects.
    unsafe {
        GucRegistry::define_string_guc_with_hooks(
            TENANT_GUC,
            c"Id of the current tenant (set it with tenancy.set_tenant()).",
            c"Superuser-only: ordinary roles change it through tenancy.set_tenant(), \
              which validates the tenant first.",
            &TENANT,
            GucContext::Suset,
            GucFlags::DISALLOW_IN_FILE | GucFlags::DISALLOW_IN_AUTO_FILE,
            Some(check_tenant),
            // Told only where there is shared memory to tell (see
            // `on_tenant_change`): elsewhere set_tenant pays nothing for it.
            super::shared::preloading().then_some(assign_tenant as _),
            None,
        );
    }
    GucRegistry::define_int_guc(
        c"tenancy.cache_size",
        c"Number of tenants each backend keeps in its cache.",
        c"An LRU cache per backend, emptied in every backend when the catalog changes.",
        &CACHE_SIZE,
        1,
        1_000_000,
        GucContext::Suset,
        GucFlags::default(),
    );
    GucRegistry::define_bool_guc(
        c"tenancy.require_tenant",
        c"Raise an error, instead of matching no rows, when no tenant context is set.",
        c"With it off (the default), a statement without a tenant sees no rows of protected tables.",
        &REQUIRE_TENANT,
        GucContext::Suset,
        GucFlags::default(),
    );
    GucRegistry::define_bool_guc(
        c"tenancy.auto_protect",
        c"Protect new tables that have a tenant_id uuid NOT NULL column, and new partitions of protected tables.",
        c"An event trigger runs tenancy.protect() for them; off while row_security is off (pg_dump, pg_restore).",
        &AUTO_PROTECT,
        GucContext::Suset,
        GucFlags::default(),
    );
    GucRegistry::define_bool_guc(
        c"tenancy.require_token",
        c"Refuse set_tenant() by name for roles that cannot issue tokens: they must present a signed token.",
        c"Set it for the application role (ALTER ROLE … SET); a connection option cannot switch it off.",
        &REQUIRE_TOKEN,
        GucContext::Suset,
        GucFlags::default(),
    );
    GucRegistry::define_string_guc(
        c"tenancy.jwt_claim",
        c"JWT claim that names the tenant (its identifier or id).",
        c"Read by set_tenant_jwt() and postgrest_pre_request().",
        &JWT_CLAIM,
        GucContext::Suset,
        GucFlags::default(),
    );
    GucRegistry::define_string_guc(
        c"tenancy.jwt_audience",
        c"When set, a JWT's aud claim must be (or contain) this value.",
        c"Empty: the audience is not checked.",
        &JWT_AUDIENCE,
        GucContext::Suset,
        GucFlags::default(),
    );
    GucRegistry::define_string_guc(
        c"tenancy.jwt_issuer",
        c"When set, a JWT's iss claim must be this value.",
        c"Empty: the issuer is not checked.",
        &JWT_ISSUER,
        GucContext::Suset,
        GucFlags::default(),
    );
    GucRegistry::define_int_guc(
        c"tenancy.jwt_max_lifetime",
        c"Longest accepted JWT lifetime in seconds (exp - iat, or exp - now without iat); 0: no limit.",
        c"A JWT that lives longer is refused, however it is signed.",
        &JWT_MAX_LIFETIME,
        0,
        i32::MAX,
        GucContext::Suset,
        GucFlags::UNIT_S,
    );
    GucRegistry::define_int_guc(
        c"tenancy.token_max_lifetime",
        c"Longest lifetime of a tenancy token in seconds, when issued and when presented.",
        c"issue_token() refuses a longer ttl, and set_tenant_token() a token that expires later than this from now.",
        &TOKEN_MAX_LIFETIME,
        1,
        i32::MAX,
        GucContext::Suset,
        GucFlags::UNIT_S,
    );
    GucRegistry::define_int_guc(
        c"tenancy.audit_rate",
        c"Application audit events (tenancy.audit()) accepted per tenant and second; 0: no limit.",
        c"Counted over the committed events of every backend and this transaction's own.",
        &AUDIT_RATE,
        0,
        i32::MAX,
        GucContext::Suset,
        GucFlags::default(),
    );
    GucRegistry::define_bool_guc(
        c"tenancy.track_usage",
        c"Count each statement's use in tenancy.tenant_stats, under its tenant.",
        c"Needs tenancy in shared_preload_libraries.",
        &TRACK_USAGE,
        GucContext::Suset,
        GucFlags::default(),
    );
    // A server-start setting can only be defined while the server starts.
    if super::shared::preloading() {
        GucRegistry::define_int_guc(
            c"tenancy.stats_max",
            c"Number of tenants tenancy.tenant_stats keeps; the least-used are evicted beyond it.",
            c"Shared memory, taken at server start.",
            &STATS_MAX,
            100,
            i32::MAX / 1024,
            GucContext::Postmaster,
            GucFlags::default(),
        );
    }
    GucRegistry::define_string_guc(
        CONTEXT_GUC,
        c"The coordinator's tenant context on a Citus worker, signed for one distributed transaction.",
        c"Set by the coordinator through Citus (SET LOCAL); a value that does not verify is an error.",
        &CONTEXT,
        GucContext::Userset,
        GucFlags::NO_SHOW_ALL | GucFlags::DISALLOW_IN_FILE | GucFlags::DISALLOW_IN_AUTO_FILE,
    );
    // Placeholders such as a `SET tenancy.tenant` made before the library was
    // loaded are discarded by the definitions above; reserving the prefix
    // refuses new ones for the rest of the session.
    // SAFETY: a static NUL-terminated name, from _PG_init (the only caller),
    // where PostgreSQL expects extensions to define and reserve settings.
    unsafe { pg_sys::MarkGUCPrefixReserved(c"tenancy".as_ptr()) };
}

/// Only '' or a UUID: a superuser's `ALTER ROLE … SET` typo fails loudly.
#[pgrx::pg_guard]
unsafe extern "C-unwind" fn check_tenant(
    newval: *mut *mut c_char,
    _extra: *mut *mut c_void,
    _source: pg_sys::GucSource::Type,
) -> bool {
    let value = if newval.is_null() || (*newval).is_null() {
        return true;
    } else {
        CStr::from_ptr(*newval).to_bytes()
    };
    value.is_empty() || uuid::Uuid::try_parse_ascii(value).is_ok()
}

#[pgrx::pg_guard]
unsafe extern "C-unwind" fn assign_tenant(newval: *const c_char, _extra: *mut c_void) {
    if let Some(f) = ON_TENANT_CHANGE.get() {
        // SAFETY: the value being assigned, checked by check_tenant: '' or a UUID.
        let value = (!newval.is_null()).then(|| unsafe { CStr::from_ptr(newval) }.to_bytes());
        f(value.and_then(|v| uuid::Uuid::try_parse_ascii(v).ok()));
    }
}

/// The tenant id held by the context, without copying the string.
pub fn current_tenant_id() -> Option<Result<uuid::Uuid, ()>> {
    with_tenant_setting(|value| uuid::Uuid::try_parse_ascii(value).map_err(|_| ()))
}

/// Look at the context setting's text in place; None when it is unset or ''.
pub fn with_tenant_setting<R>(f: impl FnOnce(&[u8]) -> R) -> Option<R> {
    with_text(&TENANT, f)
}

/// Look at the Citus context carrier's text in place; None when unset or ''.
pub fn with_context_setting<R>(f: impl FnOnce(&[u8]) -> R) -> Option<R> {
    with_text(&CONTEXT, f)
}

fn with_text<R>(setting: &GucSetting<Option<CString>>, f: impl FnOnce(&[u8]) -> R) -> Option<R> {
    // SAFETY: PostgreSQL owns the string and keeps it valid until the setting
    // changes, which cannot happen while `f` runs.
    let value = unsafe {
        let ptr = *setting.as_ptr();
        if ptr.is_null() {
            return None;
        }
        CStr::from_ptr(ptr).to_bytes()
    };
    (!value.is_empty()).then(|| f(value))
}

/// PostgreSQL's row_security setting (off while pg_dump and pg_restore run).
pub fn row_security() -> bool {
    // SAFETY: reads a setting variable of this backend.
    unsafe { pg_sys::row_security }
}

/// Whether row_security is off because this session turned it off (SET, as
/// pg_dump and pg_restore do), not by a default that another role chose for
/// it (ALTER DATABASE or ALTER ROLE … SET, the configuration file): RESET
/// would turn it on again.
pub fn row_security_off_in_session() -> bool {
    // SAFETY: reads a setting; the reset value is a string the GUC machinery
    // keeps (never NULL for a known setting).
    !row_security()
        && unsafe {
            let reset = pg_sys::GetConfigOptionResetString(c"row_security".as_ptr());
            !reset.is_null() && CStr::from_ptr(reset).to_bytes() == b"on"
        }
}

/// Look at `search_path` in place, through the variable PostgreSQL keeps it
/// in (no lookup of the setting by name: this runs on every set_tenant).
pub fn with_search_path<R>(f: impl FnOnce(&[u8]) -> R) -> R {
    // SAFETY: the GUC machinery keeps namespace_search_path a valid string
    // (boot value "$user", public); it cannot change while `f` runs.
    let path = unsafe { CStr::from_ptr(pg_sys::namespace_search_path) };
    f(path.to_bytes())
}

/// The first schema of search_path, as PostgreSQL resolves it now (`$user`
/// expanded, schemas that do not exist left out), whose name passes `test`.
pub fn schema_on_search_path(test: impl Fn(&[u8]) -> bool) -> Option<String> {
    let mut schemas = vec![pg_sys::InvalidOid; 16];
    loop {
        // SAFETY: fills at most `len` entries and returns how many the path
        // has; it may look the catalog up (a transaction is open).
        let count =
            unsafe { pg_sys::fetch_search_path_array(schemas.as_mut_ptr(), schemas.len() as i32) }
                as usize;
        if count <= schemas.len() {
            schemas.truncate(count);
            break;
        }
        schemas.resize(count, pg_sys::InvalidOid);
    }
    schemas.into_iter().find_map(|schema| {
        // SAFETY: a syscache lookup; NULL for a schema that is gone. The
        // name is a palloc'd copy, freed with the memory context.
        let name = unsafe { pg_sys::get_namespace_name(schema) };
        if name.is_null() {
            return None;
        }
        // SAFETY: a valid C string, from above.
        let name = unsafe { CStr::from_ptr(name) };
        test(name.to_bytes()).then(|| name.to_string_lossy().into_owned())
    })
}

/// No tenant context, and no carried one, until the GUC nest level opened by
/// the caller ends (see `security::run_user_code`).
pub fn save_no_context() {
    use pg_sys::GucAction::GUC_ACTION_SAVE;
    set_cstr(
        TENANT_GUC,
        c"",
        pg_sys::GucContext::PGC_SUSET,
        GUC_ACTION_SAVE,
    );
    set_cstr(
        CONTEXT_GUC,
        c"",
        pg_sys::GucContext::PGC_USERSET,
        GUC_ACTION_SAVE,
    );
}

/// Set (or with `None`, clear) the context, with session or transaction scope.
/// The single place that writes the setting (Citus will need it issued as a
/// propagatable `SET LOCAL` later).
pub fn set_tenant_id(id: Option<uuid::Uuid>, local: bool) {
    write_tenant_id(id, scope(local));
}

/// Set the context until the GUC nest level opened by the caller ends (see `save`).
pub fn save_tenant_id(id: uuid::Uuid) {
    write_tenant_id(Some(id), pg_sys::GucAction::GUC_ACTION_SAVE);
}

fn write_tenant_id(id: Option<uuid::Uuid>, action: pg_sys::GucAction::Type) {
    // 36 characters and a NUL, on the stack: this runs on every set_tenant.
    let mut buf = [0u8; uuid::fmt::Hyphenated::LENGTH + 1];
    let value = match id {
        Some(id) => {
            id.hyphenated().encode_lower(&mut buf);
            CStr::from_bytes_with_nul(&buf).expect("a uuid has no NUL byte")
        }
        None => c"",
    };
    // PGC_SUSET: the extension sets its superuser-only setting for any role.
    set_cstr(TENANT_GUC, value, pg_sys::GucContext::PGC_SUSET, action);
}

/// Set `search_path` for the session or the transaction.
pub fn set_search_path(value: &str, local: bool) {
    set(
        c"search_path",
        value,
        pg_sys::GucContext::PGC_USERSET,
        scope(local),
    );
}

/// Set a user setting until the GUC nest level opened by the caller ends (like
/// a function's `SET` clause; also allowed in parallel mode).
pub fn save(name: &CStr, value: &str) {
    set(
        name,
        value,
        pg_sys::GucContext::PGC_USERSET,
        pg_sys::GucAction::GUC_ACTION_SAVE,
    );
}

fn scope(local: bool) -> pg_sys::GucAction::Type {
    if local {
        pg_sys::GucAction::GUC_ACTION_LOCAL
    } else {
        pg_sys::GucAction::GUC_ACTION_SET
    }
}

fn set(
    name: &CStr,
    value: &str,
    context: pg_sys::GucContext::Type,
    action: pg_sys::GucAction::Type,
) {
    // The values are the extension's constants and names read from the
    // catalogs (PostgreSQL text has no NUL byte): this cannot fail.
    let value = CString::new(value).expect("setting values have no NUL byte");
    set_cstr(name, &value, context, action);
}

fn set_cstr(
    name: &CStr,
    value: &CStr,
    context: pg_sys::GucContext::Type,
    action: pg_sys::GucAction::Type,
) {
    // SAFETY: valid C strings; errors are raised (ERROR) rather than returned.
    unsafe {
        pg_sys::set_config_option(
            name.as_ptr(),
            value.as_ptr(),
            context,
            pg_sys::GucSource::PGC_S_SESSION,
            action,
            true,
            pg_sys::PGERROR as i32,
            false,
        );
    }
}

/// A setting's current value, or None when it does not exist (e.g. an unset
/// placeholder such as PostgREST's `request.headers`).
pub fn setting(name: &CStr) -> Option<String> {
    // SAFETY: returns NULL when missing (missing_ok), else a valid string, copied at once.
    let value = unsafe { pg_sys::GetConfigOption(name.as_ptr(), true, false) };
    (!value.is_null()).then(|| {
        unsafe { CStr::from_ptr(value) }
            .to_string_lossy()
            .into_owned()
    })
}
