//! The append-only audit log and lifecycle events.

use crate::api::context;
use crate::catalog;
use crate::error::OrRaise;
use crate::error::{required, TenancyError::*};
use crate::postgres::jsonb::Jsonb;
use crate::postgres::{gucs, query, security};
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
    use pgrx::{PgBuiltInOids as Oids, PgOid::BuiltIn};
    // Kept: every lifecycle change, configuration change and audit() writes one.
    query::kept_mut(
        "INSERT INTO tenancy.audit_log (role, tenant_id, tenant_identifier, action, details) \
         VALUES ($1, $2, $3, $4, $5) RETURNING id",
        &[
            BuiltIn(Oids::TEXTOID),
            BuiltIn(Oids::UUIDOID),
            BuiltIn(Oids::TEXTOID),
            BuiltIn(Oids::TEXTOID),
            BuiltIn(Oids::JSONBOID),
        ],
        |client, statement| {
            let args = [
                role.into(),
                id.into(),
                identifier.into(),
                action.into(),
                pgrx::JsonB(details).into(),
            ];
            client
                .select(statement, None, &args)?
                .first()
                .get_one::<i64>()
        },
    )
    .or_raise("writing tenancy.audit_log")
    .unwrap_or_else(|| Internal("an audit row without an id".into()).raise())
}

/// NOTIFY `tenancy_events` (delivered at commit, dropped on rollback). Any
/// role may NOTIFY this channel too: `audit_id` names the audit row written
/// with the change, so a consumer can tell a real event from a forged one.
pub fn notify(action: &str, id: Uuid, identifier: &str, status: &str, audit_id: i64) {
    #[derive(serde::Serialize)]
    struct Event<'a> {
        action: &'a str,
        tenant_id: Uuid,
        identifier: &'a str,
        status: &'a str,
        audit_id: i64,
    }
    let payload = serde_json::to_string(&Event {
        action,
        tenant_id: id,
        identifier,
        status,
        audit_id,
    })
    .or_raise("encoding the event");
    use pgrx::{PgBuiltInOids as Oids, PgOid::BuiltIn};
    // Kept: one per lifecycle change (a bulk registration sends thousands).
    query::kept(
        "SELECT pg_catalog.pg_notify('tenancy_events', $1)",
        &[BuiltIn(Oids::TEXTOID)],
        |client, statement| client.select(statement, None, &[payload.into()]).map(drop),
    )
    .or_raise("sending tenancy_events");
}

/// The lifecycle actions whose events go to `tenancy_events`.
const LIFECYCLE: &[&str] = &[
    "register", "suspend", "activate", "update", "delete", "destroy",
];

/// Whether a `tenancy_events` payload is genuine and still current: the audit
/// row it names exists with the same action, tenant and identifier, no later
/// lifecycle change of that tenant was recorded, the status it gives is the
/// tenant's, and it has no field tenancy does not send. A forged event, or an
/// old one sent again after the tenant changed, is false: a consumer acts on
/// the tenant's state only when this is true (and re-reads it otherwise).
/// Executable by every role: it tells only what LISTEN tenancy_events told.
#[pg_extern(stable, parallel_safe, requires = ["catalog"])]
fn event_is_current(payload: Option<&str>) -> bool {
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Event {
        action: String,
        tenant_id: Uuid,
        identifier: String,
        status: String,
        audit_id: i64,
    }
    let payload = crate::error::required(payload, "payload");
    let Ok(event) = serde_json::from_str::<Event>(payload) else {
        return false;
    };
    if !LIFECYCLE.contains(&event.action.as_str()) {
        return false;
    }
    crate::catalog::as_owner(|| {
        Spi::get_one_with_args::<bool>(
            "SELECT EXISTS (SELECT FROM tenancy.audit_log \
                             WHERE id = $1 AND action = $2 AND tenant_id = $3 AND tenant_identifier = $4) \
                AND NOT EXISTS (SELECT FROM tenancy.audit_log \
                                 WHERE tenant_id = $3 AND id > $1 AND action = ANY ($5)) \
                AND coalesce((SELECT status FROM tenancy.tenants WHERE id = $3), 'destroyed') = $6",
            &[
                event.audit_id.into(),
                event.action.as_str().into(),
                to_sql(event.tenant_id).into(),
                event.identifier.as_str().into(),
                LIFECYCLE.to_vec().into(),
                event.status.as_str().into(),
            ],
        )
    })
    .or_raise("reading tenancy.audit_log")
    .unwrap_or(false)
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
        .or_raise("purging tenancy.audit_log")
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
    crate::error::TenancyError::AuditLogAppendOnly.raise()
}

thread_local! {
    /// Application audit events this transaction wrote (their rows carry the
    /// transaction's start time, so the count of the last second misses
    /// them once the transaction is older than a second).
    static AUDITS_IN_TRANSACTION: Cell<i64> = const { Cell::new(0) };
}

pub(crate) fn on_transaction_end() {
    AUDITS_IN_TRANSACTION.set(0);
}

/// Append the application's own event (invoice sent, user invited) to the
/// audit log, for the current tenant, in the caller's transaction. Its action
/// is stored as `app.<action>`, so it cannot pass for one of the extension's.
/// Executable by every role; raises without a tenant context.
#[pg_extern(volatile, parallel_unsafe, requires = ["catalog"])]
fn audit(action: Option<&str>, details: default!(Option<Jsonb>, "'{}'")) -> i64 {
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
    let size = details.to_string().len();
    if size > AUDIT_DETAILS_MAX {
        TooLarge(
            format!("audit details of {size} bytes are larger than {AUDIT_DETAILS_MAX}"),
            "Record what happened and a reference to the data (ids), not the data itself.".into(),
        )
        .raise();
    }
    let tenant = context::current().unwrap_or_else(|| TenantRequired.raise());
    let role = security::current_role_name();
    catalog::as_owner(|| {
        let rate = gucs::audit_rate();
        if rate > 0 {
            // The tenant's events of the last second (committed ones of every
            // backend, and this transaction's own), counted up to the limit.
            let recent = Spi::get_one_with_args::<i64>(
                "SELECT count(*) FROM (SELECT FROM tenancy.audit_log \
                  WHERE tenant_id = $1 AND at > clock_timestamp() - interval '1 second' \
                    AND action LIKE 'app.%' LIMIT $2) r",
                &[to_sql(tenant.id).into(), rate.into()],
            )
            .or_raise("counting the tenant's audit events")
            .unwrap_or(0)
            .max(AUDITS_IN_TRANSACTION.get());
            if recent >= rate {
                RateLimited(
                    format!(
                        "tenant \"{}\" has written {recent} audit events in the last second",
                        tenant.identifier
                    ),
                    format!(
                        "tenancy.audit_rate allows {rate} application events per tenant and \
                         second: batch what happened into one event, or ask an administrator \
                         to raise the limit."
                    ),
                )
                .raise();
            }
        }
        AUDITS_IN_TRANSACTION.set(AUDITS_IN_TRANSACTION.get() + 1);
        record(
            &role,
            &format!("app.{action}"),
            Some((tenant.id, &tenant.identifier)),
            details,
        )
    })
}

/// The largest `details` document of an application audit event, in bytes of JSON.
const AUDIT_DETAILS_MAX: usize = 8192;
