//! The append-only audit log and lifecycle events.

use crate::postgres::jsonb::Jsonb;
use crate::tenant::to_sql;
use pgrx::prelude::*;
use serde_json::{json, Value};
use std::cell::Cell;
use uuid::Uuid;

/// Write one audit row (same transaction as the change) as the catalog owner;
/// returns its id. `role` is the caller's role, captured before switching to the owner.
pub fn record(role: &str, action: &str, tenant: Option<(Uuid, &str)>, details: Value) -> i64 {
    let (id, identifier) = match tenant {
        Some((id, identifier)) => (Some(to_sql(id)), Some(identifier)),
        None => (None, None),
    };
    Spi::get_one_with_args::<i64>(
        "INSERT INTO tenancy.audit_log (role, tenant_id, tenant_identifier, action, details) \
         VALUES ($1, $2, $3, $4, $5) RETURNING id",
        &[
            role.into(),
            id.into(),
            identifier.into(),
            action.into(),
            pgrx::JsonB(details).into(),
        ],
    )
    .unwrap_or_else(|e| error!("writing tenancy.audit_log failed: {e}"))
    .expect("RETURNING id")
}

/// NOTIFY `tenancy_events` (delivered at commit, dropped on rollback). Any
/// role may NOTIFY this channel too: `audit_id` names the audit row written
/// with the change, so a consumer can tell a real event from a forged one.
pub fn notify(action: &str, id: Uuid, identifier: &str, status: &str, audit_id: i64) {
    let payload = json!({"action": action, "tenant_id": id, "identifier": identifier,
                         "status": status, "audit_id": audit_id});
    Spi::run_with_args(
        "SELECT pg_notify('tenancy_events', $1)",
        &[payload.to_string().into()],
    )
    .unwrap_or_else(|e| error!("sending tenancy_events failed: {e}"));
}

/// Append the application's own event (invoice sent, user invited) to the
/// audit log, for the current tenant, in the caller's transaction. Its action
/// is stored as `app.<action>`, so it cannot pass for one of the extension's.
/// Executable by every role; raises without a tenant context.
#[pg_extern(volatile, parallel_unsafe, requires = ["catalog"])]
fn audit(action: Option<&str>, details: default!(Option<Jsonb>, "'{}'")) -> i64 {
    use crate::error::{required, TenancyError::*};
    let action = required(action, "action");
    let Jsonb(details) = required(details, "details");
    let valid = (1..=63).contains(&action.len())
        && action.starts_with(|c: char| c.is_ascii_lowercase())
        && action
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "_.-".contains(c));
    if !valid {
        InvalidValue(
            format!("invalid audit action {action:?}"),
            "An action has 1 to 63 characters: lowercase letters, digits, '_', '.' and '-', \
             starting with a letter (e.g. 'invoice.sent'); it is stored as app.<action>."
                .into(),
        )
        .raise();
    }
    if !details.is_object() {
        InvalidValue(
            "audit details must be a JSON object".into(),
            "Pass an object such as '{\"invoice\": 42}'::jsonb.".into(),
        )
        .raise();
    }
    let tenant = crate::api::context::current().unwrap_or_else(|| TenantRequired.raise());
    let role = crate::postgres::security::current_role_name();
    crate::catalog::as_owner(|| {
        record(
            &role,
            &format!("app.{action}"),
            Some((tenant.id, &tenant.identifier)),
            details,
        )
    })
}

thread_local! {
    /// Set only while purge_audit_log() deletes: no SQL can set it.
    static PURGING: Cell<bool> = const { Cell::new(false) };
}

/// Delete audit entries older than `older_than`; the purge is itself audited.
#[pg_extern(volatile, parallel_unsafe)]
fn purge_audit_log(older_than: Option<pgrx::datum::Interval>) -> i64 {
    let older_than = crate::error::required(older_than, "older_than");
    if older_than.months() < 0 || older_than.days() < 0 || older_than.micros() < 0 {
        crate::error::TenancyError::InvalidValue(
            format!("the retention interval must not be negative, not {older_than}"),
            "Pass how old the entries to delete are, e.g. '1 year'.".into(),
        )
        .raise();
    }
    let role = crate::postgres::security::current_role_name();
    crate::catalog::as_owner(|| {
        struct Reset;
        impl Drop for Reset {
            fn drop(&mut self) {
                PURGING.set(false);
            }
        }
        PURGING.set(true);
        let _reset = Reset;
        let deleted = Spi::get_one_with_args::<i64>(
            "WITH gone AS (DELETE FROM tenancy.audit_log WHERE at < now() - $1 RETURNING 1) \
             SELECT count(*) FROM gone",
            &[older_than.into()],
        )
        .unwrap_or_else(|e| error!("purging tenancy.audit_log failed: {e}"))
        .unwrap_or(0);
        drop(_reset);
        let _ = record(
            &role,
            "purge_audit",
            None,
            json!({"older_than": older_than.to_string(), "deleted": deleted}),
        );
        deleted
    })
}

/// Trigger on `tenancy.audit_log`: UPDATE, DELETE and TRUNCATE raise, for
/// superusers too (the trigger is ENABLE ALWAYS), except inside purge_audit_log().
#[pg_trigger]
fn audit_log_append_only<'a>(
    trigger: &'a pgrx::PgTrigger<'a>,
) -> Result<Option<PgHeapTuple<'a, AllocatedByPostgres>>, std::convert::Infallible> {
    if PURGING.get() && trigger.event().fired_by_delete() {
        return Ok(trigger.old());
    }
    pgrx::pg_sys::panic::ErrorReport::new(
        PgSqlErrorCode::ERRCODE_INSUFFICIENT_PRIVILEGE,
        "tenancy.audit_log is append-only",
        "tenancy",
    )
    .set_hint("Remove old entries with tenancy.purge_audit_log(older_than interval).")
    .report(PgLogLevel::ERROR);
    unreachable!("ERROR does not return")
}
