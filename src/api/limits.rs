//! Per-tenant limits, from the tenant configuration (`limits.*` keys; an
//! application-wide default applies to every tenant):
//!
//! - `limits.statement_timeout`, `limits.work_mem`, `limits.temp_file_limit`
//!   cap PostgreSQL's settings of the same name. Applied when the tenant
//!   becomes the context (with its scope) and checked again at the start of
//!   every client statement, so a `SET` above the cap lasts until the next
//!   statement only, which runs capped (its timer set again). A lower value
//!   the session chose is kept. Leaving the context restores what the
//!   session had before.
//! - `limits.max_concurrent_statements`: how many statements of the tenant
//!   may run at once across all backends (needs the library preloaded); one
//!   over it waits up to `limits.queue_timeout` (default 1 s), then fails
//!   with 53400.

use crate::api::{config, context};
use crate::error::TenancyError::*;
use crate::postgres::resources::{self, Setting, SETTINGS};
use crate::postgres::{gucs, invalidation, measure, security, shared, BackendCell};
use crate::tenant::Tenant;
use serde_json::{Map, Value};
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::time::{Duration, Instant};
use uuid::Uuid;

const CAP: &str = "limits.max_concurrent_statements";
const QUEUE_TIMEOUT: &str = "limits.queue_timeout";
/// The keys that make limits (queue_timeout alone makes none).
const LIMIT_KEYS: [&str; 4] = [
    "limits.statement_timeout",
    "limits.work_mem",
    "limits.temp_file_limit",
    CAP,
];
const DEFAULT_QUEUE_TIMEOUT_MS: i32 = 1000;

#[derive(Default, PartialEq)]
struct Limits {
    /// A cap for each of SETTINGS, in its base unit.
    settings: [Option<i32>; 4],
    cap: Option<u32>,
    queue_timeout_ms: i32,
}

impl Limits {
    fn none(&self) -> bool {
        self.settings.iter().all(Option::is_none) && self.cap.is_none()
    }

    /// Whether a setting is above its cap now.
    fn exceeded(&self) -> bool {
        SETTINGS
            .iter()
            .zip(self.settings)
            .any(|(setting, limit)| limit.is_some_and(|l| setting.exceeds(setting.current(), l)))
    }
}

/// The session's values before a session-scoped context capped them (read
/// at every set_tenant: see `BackendCell`).
static SESSION_BEFORE: BackendCell<Option<[i32; 4]>> = BackendCell::new(None);
/// The values when this transaction's first transaction-scoped context
/// capped them (PostgreSQL restores them itself at its end).
static TRANSACTION_BEFORE: BackendCell<Option<[i32; 4]>> = BackendCell::new(None);

/// Whether any tenant has limits (a default, or a tenant's own), and the
/// epoch it was read at: without any, nothing below runs per statement
/// (read on every statement: see `BackendCell`).
static ANYWHERE: BackendCell<Option<(u64, bool)>> = BackendCell::new(None);

/// The current tenant's limits, by the context setting's text (a UUID's 36
/// characters) and the epoch they were read at.
struct Current {
    setting: [u8; 36],
    epoch: u64,
    id: Uuid,
    limits: Rc<Limits>,
}

/// Hashes a tenant id by its last 8 bytes, random in every UUID version the
/// extension makes (v7's first bytes are a timestamp): no SipHash per
/// `set_tenant`.
#[derive(Default)]
struct IdHasher(u64);

impl std::hash::Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes.iter().rev().take(8) {
            self.0 = (self.0 << 8) | u64::from(b);
        }
    }
}

type ById = HashMap<Uuid, Rc<Limits>, std::hash::BuildHasherDefault<IdHasher>>;

thread_local! {
    /// Each tenant's limits, while the catalog has not changed (the epoch
    /// they were read at).
    static BY_TENANT: RefCell<(u64, ById)> = RefCell::new((0, ById::default()));
    /// The current tenant's, by the text of the context setting: every
    /// statement asks, and comparing it costs less than parsing it.
    static CURRENT: RefCell<Option<Current>> = const { RefCell::new(None) };
}

/// Whether any tenant has limits; None when that is not known since the
/// last invalidation and `known` forbids reading the catalog (before a
/// utility statement: then what was known before, if anything).
fn anywhere(known: bool) -> Option<bool> {
    let epoch = invalidation::epoch();
    match ANYWHERE.get() {
        Some((at, any)) if at == epoch || known => Some(any),
        _ if known => None,
        _ => {
            let any = crate::catalog::installed() && config::configured_anywhere(&LIMIT_KEYS);
            // (Kept only if no invalidation overtook the read.)
            if invalidation::epoch() == epoch {
                ANYWHERE.set(Some((epoch, any)));
            }
            Some(any)
        }
    }
}

/// Whether a tenant may have limits of its own: false only while none has
/// any, nor a default (as of the last invalidation). A cache miss then
/// leaves tenancy.tenant_config unread (see catalog::init).
pub(crate) fn possible() -> bool {
    anywhere(false) != Some(false)
}

/// The key of the limit on `setting`; None for hash_mem_multiplier, which
/// `limits.work_mem` caps at PostgreSQL's default (2: a hash may use twice
/// work_mem), so that raising it cannot multiply the limit.
fn setting_key(setting: Setting) -> Option<&'static str> {
    match setting {
        Setting::StatementTimeout => Some("limits.statement_timeout"),
        Setting::WorkMem => Some("limits.work_mem"),
        Setting::TempFileLimit => Some("limits.temp_file_limit"),
        Setting::HashMemMultiplier => None,
    }
}

/// hash_mem_multiplier's cap under a work_mem limit, in thousandths.
const HASH_MEM_MULTIPLIER: i32 = 2000;

/// A `limits.*` value, or why it is not one.
fn parse(key: &str, value: &Value) -> Result<i32, String> {
    let time = key == QUEUE_TIMEOUT || Some(key) == setting_key(Setting::StatementTimeout);
    let (number, minimum) = match value {
        Value::Number(n) => (
            n.as_i64()
                .and_then(|n| i32::try_from(n).ok())
                .ok_or("it is not a whole number in range")?,
            0,
        ),
        Value::String(text) if key != CAP => (resources::parse(text, time)?, 0),
        _ if key == CAP => return Err("it is not a number".into()),
        _ => return Err("it is not a string with a unit (\"200ms\", \"64MB\") or a number".into()),
    };
    let minimum = SETTINGS
        .iter()
        .find(|s| setting_key(**s) == Some(key))
        .map_or(if key == CAP { 1 } else { minimum }, |s| s.minimum());
    if number < minimum {
        return Err(format!("it is below {minimum}"));
    }
    Ok(number)
}

/// Refuse a value of a limit's key that is not a limit: set_*_config call it.
/// (Other keys under `limits.` are the application's, as they were before.)
pub(crate) fn check(key: &str, value: &Value) {
    let known =
        SETTINGS.iter().any(|s| setting_key(*s) == Some(key)) || key == CAP || key == QUEUE_TIMEOUT;
    if !known {
        return;
    }
    if let Err(why) = parse(key, value) {
        InvalidValue(
            format!("invalid value for {key}: {value} ({why})"),
            "Give times and sizes as JSON strings in PostgreSQL's units (\"200ms\", \"5s\", \
             \"64MB\") or as numbers in ms or kB; limits.max_concurrent_statements is a \
             number from 1."
                .into(),
        )
        .raise();
    }
    if key == CAP && !shared::ready() {
        NotConfigured(
            "limits.max_concurrent_statements needs tenancy loaded at server start".into(),
            "Add tenancy to shared_preload_libraries (shared_preload_libraries = 'tenancy') and \
             restart PostgreSQL; the cap is counted in shared memory."
                .into(),
        )
        .raise();
    }
}

fn limits_of(tenant: &Tenant) -> Rc<Limits> {
    let epoch = invalidation::epoch();
    if let Some(limits) = BY_TENANT.with_borrow(|(at, map)| {
        (*at == epoch)
            .then(|| map.get(&tenant.id).cloned())
            .flatten()
    }) {
        return limits;
    }
    // The tenant's own, read with it; else the application's default.
    let own: Map<String, Value> = tenant
        .limits
        .as_deref()
        .and_then(|text| serde_json::from_str(text).ok())
        .unwrap_or_default();
    let value = |key: &str| {
        own.get(key)
            .cloned()
            .or_else(|| config::default_value(key))
            .and_then(|v| parse(key, &v).ok())
    };
    let mut settings = SETTINGS.map(|s| setting_key(s).and_then(value));
    settings[3] = settings[1].map(|_| HASH_MEM_MULTIPLIER);
    let limits = Rc::new(Limits {
        settings,
        cap: value(CAP).and_then(|n| u32::try_from(n).ok()),
        queue_timeout_ms: value(QUEUE_TIMEOUT).unwrap_or(DEFAULT_QUEUE_TIMEOUT_MS),
    });
    BY_TENANT.with_borrow_mut(|(at, map)| {
        if *at != epoch || map.len() >= gucs::cache_size() {
            map.clear();
            *at = epoch;
        }
        map.insert(tenant.id, limits.clone());
    });
    limits
}

/// The current tenant and its limits (None without a context). `known`:
/// only what is known without reading the catalog — since the last
/// invalidation, or (when it was not read since) before it.
fn current_limits(known: bool) -> Option<(Uuid, Rc<Limits>)> {
    let found = remembered(known)?;
    if found.is_some() || known {
        return found;
    }
    let Some(Ok(id)) = gucs::current_tenant_id() else {
        return None;
    };
    // (A superuser may set the context where the extension is not installed.)
    let tenant = crate::catalog::installed()
        .then(|| crate::catalog::find_by_id(id))
        .flatten()?;
    let limits = limits_of(&tenant);
    remember_current(id, &limits);
    Some((id, limits))
}

/// The current tenant's limits, for the statements to come.
fn remember_current(id: Uuid, limits: &Rc<Limits>) {
    let epoch = invalidation::epoch();
    gucs::with_tenant_setting(|text| {
        if let Ok(setting) = <[u8; 36]>::try_from(text) {
            CURRENT.set(Some(Current {
                setting,
                epoch,
                id,
                limits: limits.clone(),
            }));
        }
    });
}

/// None without a context; else the remembered limits of the current
/// tenant, if any (`known`: also from before the last invalidation). Calls
/// no PostgreSQL function.
fn remembered(known: bool) -> Option<Option<(Uuid, Rc<Limits>)>> {
    let epoch = invalidation::epoch();
    gucs::with_tenant_setting(|text| {
        CURRENT.with_borrow(|c| {
            c.as_ref()
                .filter(|c| c.setting == text && (known || c.epoch == epoch))
                .map(|c| (c.id, c.limits.clone()))
        })
    })
}

/// Whether `before_statement` may have anything to do (see
/// `measure::Callbacks`): a context whose limits are unknown, or not none.
pub(crate) fn may_act(utility: bool) -> bool {
    // Nothing anywhere (as of the last read): nothing to do.
    if ANYWHERE
        .get()
        .is_some_and(|(at, any)| !any && (utility || at == invalidation::epoch()))
    {
        return false;
    }
    match remembered(utility) {
        // No context: one entered inside the statement must find its run
        // recorded (for its cap), where any tenant has limits.
        None => ANYWHERE.get().is_some_and(|(_, any)| any),
        Some(None) => !utility,
        // Something to cap, a place to take, or a timer PostgreSQL did not
        // set (a cursor WITH HOLD runs its query at commit, without one).
        Some(Some((_, limits))) => {
            limits.cap.is_some()
                || limits.exceeded()
                || (!utility
                    && limits.settings[0].is_some()
                    && !resources::statement_timer_active())
        }
    }
}

/// The context changed to `tenant` (None: no tenant) with this scope: cap
/// the settings to its limits, or give back what they were before.
pub(crate) fn on_context(tenant: Option<&Tenant>, local: bool) {
    let nothing_to_undo = SESSION_BEFORE.get().is_none() && TRANSACTION_BEFORE.get().is_none();
    if nothing_to_undo && anywhere(false) == Some(false) {
        return;
    }
    let limits = tenant.map(limits_of).unwrap_or_default();
    if let Some(tenant) = tenant {
        remember_current(tenant.id, &limits);
        // Entered inside a statement (a DO block, a SELECT that goes on):
        // the rest of it runs under the tenant's timeout and cap.
        if let Some(ms) = limits.settings[0] {
            resources::cancel_statement_within(ms);
        }
        // (It is always inside a statement: a client's SELECT, CALL or DO.)
        if let (Some(cap), true) = (limits.cap, shared::ready()) {
            if wait_for_place(tenant.id, cap, limits.queue_timeout_ms) {
                measure::hold_place();
            }
        }
    }
    let capped = limits.settings.iter().any(Option::is_some);
    // What the session had before any cap (of this transaction, first).
    let base = TRANSACTION_BEFORE.get().or(SESSION_BEFORE.get());
    let Some(before) = base.or(capped.then(|| SETTINGS.map(Setting::current))) else {
        return;
    };
    for (i, setting) in SETTINGS.into_iter().enumerate() {
        let value = match limits.settings[i] {
            Some(limit) if setting.exceeds(before[i], limit) => limit,
            _ => before[i],
        };
        if value != setting.current() {
            setting.set(value, local);
        }
    }
    if local {
        // Kept until the transaction ends, when PostgreSQL restores the rest.
        TRANSACTION_BEFORE.set(Some(before));
    } else {
        SESSION_BEFORE.set(capped.then_some(before));
    }
}

pub(crate) fn on_transaction_end() {
    TRANSACTION_BEFORE.set(None);
}

/// Before each client statement: cap what a `SET` raised since, and take
/// a place under the tenant's cap (`admits`: the statement may wait).
/// True when it took one. Before a utility statement, with what is known
/// without reading the catalog (see `measure::Callbacks`).
pub(crate) fn before_statement(utility: bool, admits: bool) -> bool {
    if security::in_failed_transaction() {
        return false;
    }
    if anywhere(utility) != Some(true) {
        return false;
    }
    let Some((id, limits)) = current_limits(utility) else {
        return false;
    };
    if limits.none() {
        return false;
    }
    for (i, setting) in SETTINGS.into_iter().enumerate() {
        if let Some(limit) = limits.settings[i] {
            if setting.exceeds(setting.current(), limit) {
                setting.set(limit, context::transaction_scoped());
                if setting == Setting::StatementTimeout {
                    resources::cancel_statement_after(limit);
                }
            }
        }
    }
    if let (Some(ms), false) = (limits.settings[0], utility) {
        resources::cancel_statement_within(ms);
    }
    match limits.cap {
        Some(cap) if admits && shared::ready() => wait_for_place(id, cap, limits.queue_timeout_ms),
        _ => false,
    }
}

/// Before a function the client calls through the protocol's fast path: in
/// the context of a tenant with limits it is refused, since it would run
/// outside every statement, where no timeout is set again, no place is
/// taken and no use is measured.
pub(crate) fn before_fast_path_call() {
    if anywhere(false) != Some(true) {
        return;
    }
    let Some((id, limits)) = current_limits(false) else {
        return;
    };
    if limits.none() {
        return;
    }
    FastPathWithLimits(identifier_of(id)).raise();
}

/// A tenant's identifier, for a message (its id if it is gone).
fn identifier_of(id: Uuid) -> String {
    crate::catalog::find_by_id(id).map_or_else(|| id.to_string(), |t| t.identifier.clone())
}

/// Wait for a place of tenant `id` under its cap; true when one was taken
/// (to give back), false when this backend holds one already.
fn wait_for_place(id: Uuid, cap: u32, timeout_ms: i32) -> bool {
    let deadline = Instant::now() + Duration::from_millis(timeout_ms.max(0) as u64);
    loop {
        match shared::try_enter(id.into_bytes(), cap) {
            shared::Place::Taken => return true,
            shared::Place::Held => return false,
            shared::Place::Full => {}
        }
        if Instant::now() >= deadline {
            let identifier = identifier_of(id);
            RateLimited(
                format!(
                    "tenant \"{identifier}\" already runs {cap} statements, its \
                     limits.max_concurrent_statements"
                ),
                format!(
                    "The statement waited {timeout_ms} ms (limits.queue_timeout) for one of them \
                     to end. Retry later, or raise the tenant's limit."
                ),
            )
            .raise();
        }
        resources::wait_briefly();
    }
}
