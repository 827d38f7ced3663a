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
use crate::postgres::{gucs, invalidation, security, shared};
use crate::tenant::Tenant;
use serde_json::Value;
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::{Duration, Instant};
use uuid::Uuid;

const CAP: &str = "limits.max_concurrent_statements";
const QUEUE_TIMEOUT: &str = "limits.queue_timeout";
const DEFAULT_QUEUE_TIMEOUT_MS: i32 = 1000;

#[derive(Default, PartialEq)]
struct Limits {
    /// A cap for each of SETTINGS, in its base unit.
    settings: [Option<i32>; 3],
    cap: Option<u32>,
    queue_timeout_ms: i32,
}

impl Limits {
    fn none(&self) -> bool {
        self.settings.iter().all(Option::is_none) && self.cap.is_none()
    }
}

thread_local! {
    /// The last tenant's limits, while the catalog has not changed.
    static MEMO: RefCell<Option<(Uuid, u64, Rc<Limits>)>> = const { RefCell::new(None) };
    /// The session's values before a session-scoped context capped them.
    static SESSION_BEFORE: Cell<Option<[i32; 3]>> = const { Cell::new(None) };
    /// The values when this transaction's first transaction-scoped context
    /// capped them (PostgreSQL restores them itself at its end).
    static TRANSACTION_BEFORE: Cell<Option<[i32; 3]>> = const { Cell::new(None) };
}

fn setting_key(setting: Setting) -> &'static str {
    match setting {
        Setting::StatementTimeout => "limits.statement_timeout",
        Setting::WorkMem => "limits.work_mem",
        Setting::TempFileLimit => "limits.temp_file_limit",
    }
}

/// A `limits.*` value, or why it is not one.
fn parse(key: &str, value: &Value) -> Result<i32, String> {
    let time = key == QUEUE_TIMEOUT || key == setting_key(Setting::StatementTimeout);
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
        .find(|s| setting_key(**s) == key)
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
        SETTINGS.iter().any(|s| setting_key(*s) == key) || key == CAP || key == QUEUE_TIMEOUT;
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

fn limits_of(id: Uuid) -> Rc<Limits> {
    let epoch = invalidation::epoch();
    if let Some(limits) = MEMO.with_borrow(|m| {
        m.as_ref()
            .filter(|(memo, at, _)| *memo == id && *at == epoch)
            .map(|(_, _, limits)| limits.clone())
    }) {
        return limits;
    }
    // (A superuser may set the context where the extension is not installed.)
    let installed = crate::catalog::installed();
    let value = |key: &str| {
        installed
            .then(|| config::effective(id, key))
            .flatten()
            .and_then(|v| parse(key, &v).ok())
    };
    let limits = Rc::new(Limits {
        settings: SETTINGS.map(|s| value(setting_key(s))),
        cap: value(CAP).and_then(|n| u32::try_from(n).ok()),
        queue_timeout_ms: value(QUEUE_TIMEOUT).unwrap_or(DEFAULT_QUEUE_TIMEOUT_MS),
    });
    MEMO.set(Some((id, epoch, limits.clone())));
    limits
}

/// The context changed to `tenant` (None: no tenant) with this scope: cap
/// the settings to its limits, or give back what they were before.
pub(crate) fn on_context(tenant: Option<&Tenant>, local: bool) {
    let limits = tenant.map(|t| limits_of(t.id)).unwrap_or_default();
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
/// True when it took one.
pub(crate) fn before_statement(admits: bool) -> bool {
    if security::in_failed_transaction() {
        return false;
    }
    let Some(Ok(id)) = gucs::current_tenant_id() else {
        return false;
    };
    let limits = limits_of(id);
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
    match limits.cap {
        Some(cap) if admits && shared::ready() => {
            wait_for_place(id, cap, limits.queue_timeout_ms);
            true
        }
        _ => false,
    }
}

fn wait_for_place(id: Uuid, cap: u32, timeout_ms: i32) {
    let deadline = Instant::now() + Duration::from_millis(timeout_ms.max(0) as u64);
    while !shared::try_enter(id.into_bytes(), cap) {
        if Instant::now() >= deadline {
            let identifier = crate::catalog::find_by_id(id)
                .map_or_else(|| id.to_string(), |t| t.identifier.clone());
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
