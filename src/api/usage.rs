//! Per-tenant usage: every client statement counted under the tenant that was
//! current when it started (`tenant_stats`), and which backends work for
//! which tenant now (`tenant_activity`). Both live in shared memory, so they
//! need `shared_preload_libraries = 'tenancy'`; the views raise without it.
//!
//! Administrators (who may read tenancy.tenants: superusers and grant_admin
//! roles) see every tenant; anyone else sees the current tenant's usage and
//! the activity of the roles whose privileges it has.

use crate::api::citus;
use crate::catalog;
use crate::error::TenancyError::*;
use crate::postgres::{gucs, measure, security, shared, BackendCell};
use crate::tenant::to_sql;
use pgrx::prelude::*;
use uuid::Uuid;

/// Whether the context being set (and kept until the transaction ends) is
/// transaction-scoped; told by `context` before it sets one (at every
/// set_tenant: see `BackendCell`).
static LOCAL_SCOPE: BackendCell<bool> = BackendCell::new(false);

/// From _PG_init: shared memory when preloading, the statement counting, and
/// the mirror of the context for `tenant_activity`.
pub(crate) fn init() {
    if shared::preloading() {
        shared::request(gucs::stats_max());
    }
    measure::init(measure::Callbacks {
        wanted: gucs::track_usage,
        key: statement_tenant,
        may_act: crate::api::limits::may_act,
        before: crate::api::limits::before_statement,
        fast_path: crate::api::limits::before_fast_path_call,
    });
    // (Only where there is shared memory to tell.)
    if shared::preloading() {
        gucs::on_tenant_change(|id| {
            shared::set_backend(
                id.map(Uuid::into_bytes),
                LOCAL_SCOPE.get(),
                security::session_role(),
            );
        });
    }
}

/// The scope of the context set next (see `context::change_context`).
pub(crate) fn context_scope(local: bool) {
    LOCAL_SCOPE.set(local);
}

/// The context changed: what the running statement used until now is its
/// tenant of then's; the rest, the new one's.
pub(crate) fn context_changed() {
    measure::key_changed();
}

pub(crate) fn on_transaction_end() {
    // A transaction-scoped context ends here; what PostgreSQL restores is
    // the session's.
    LOCAL_SCOPE.set(false);
}

/// The tenant a statement counts under: the context's (the zero key for
/// none), or on a Citus worker the coordinator's — None while its carrier
/// is not verified yet (the statement verifies it when it needs it, and is
/// asked again at its end). Never raises: it runs in every statement.
fn statement_tenant() -> Option<shared::Key> {
    if let Some(Ok(id)) = gucs::current_tenant_id() {
        return Some(id.into_bytes());
    }
    if gucs::with_context_setting(|_| ()).is_none() {
        return Some(shared::Key::default());
    }
    citus::verified_carried_id().map(Uuid::into_bytes)
}

fn require_shared_memory(view: &str) {
    if !shared::ready() {
        NotConfigured(
            format!("{view} needs tenancy loaded at server start"),
            "Add tenancy to shared_preload_libraries in postgresql.conf \
             (shared_preload_libraries = 'tenancy') and restart PostgreSQL."
                .into(),
        )
        .raise();
    }
}

fn is_administrator() -> bool {
    security::may_read(catalog::tenants_relation())
}

fn identifier_of(id: Uuid) -> Option<String> {
    catalog::find_by_id(id).map(|tenant| tenant.identifier.clone())
}

fn timestamp(at: i64) -> Option<TimestampWithTimeZone> {
    (at != 0)
        .then(|| TimestampWithTimeZone::try_from(at).ok())
        .flatten()
}

/// Rows of the tenancy.tenant_stats view (see the README, "Usage and limits").
#[pg_extern(volatile, parallel_restricted, requires = ["catalog"])]
#[allow(clippy::type_complexity)]
fn tenant_stats_entries() -> TableIterator<
    'static,
    (
        name!(tenant_id, Option<pgrx::Uuid>),
        name!(identifier, Option<String>),
        name!(calls, i64),
        name!(failed, i64),
        name!(total_time, f64),
        name!(max_time, f64),
        name!(rows, i64),
        name!(shared_blks_hit, i64),
        name!(shared_blks_read, i64),
        name!(shared_blks_dirtied, i64),
        name!(shared_blks_written, i64),
        name!(temp_blks_written, i64),
        name!(wal_bytes, i64),
        name!(first_statement, Option<TimestampWithTimeZone>),
        name!(last_statement, Option<TimestampWithTimeZone>),
    ),
> {
    require_shared_memory("tenancy.tenant_stats");
    let everyone = is_administrator();
    let current = gucs::current_tenant_id().and_then(Result::ok);
    let rows = shared::entries()
        .unwrap_or_default()
        .into_iter()
        .map(|(key, usage)| (Uuid::from_bytes(key), usage))
        .filter(|(id, _)| everyone || (!id.is_nil() && Some(*id) == current))
        .map(|(id, usage)| {
            let n = |i: usize| i64::try_from(usage.sums[i]).unwrap_or(i64::MAX);
            let ms = |ns: u64| ns as f64 / 1e6;
            (
                (!id.is_nil()).then(|| to_sql(id)),
                (!id.is_nil()).then(|| identifier_of(id)).flatten(),
                n(0),
                n(1),
                ms(usage.sums[2]),
                ms(usage.max_ns),
                n(3),
                n(4),
                n(5),
                n(6),
                n(7),
                n(8),
                n(9),
                timestamp(usage.first),
                timestamp(usage.last),
            )
        })
        .collect::<Vec<_>>();
    TableIterator::new(rows)
}

/// Forget one tenant's usage (by identifier), or with NULL every tenant's.
/// Administrators only.
#[pg_extern(volatile, parallel_unsafe, requires = ["catalog"])]
fn tenant_stats_reset(identifier: default!(Option<&str>, "NULL")) {
    require_shared_memory("tenancy.tenant_stats_reset()");
    let key = identifier.map(|identifier| {
        catalog::find_by_identifier(identifier)
            .unwrap_or_else(|| UnknownTenant(identifier.into()).raise())
            .id
            .into_bytes()
    });
    shared::reset(key);
}

/// The row of the tenancy.tenant_stats_info view.
#[pg_extern(volatile, parallel_restricted, requires = ["catalog"])]
fn tenant_stats_information() -> TableIterator<
    'static,
    (
        name!(stats_max, i64),
        name!(entries, i64),
        name!(dealloc, i64),
        name!(stats_reset, Option<TimestampWithTimeZone>),
        name!(shared_memory_bytes, i64),
    ),
> {
    require_shared_memory("tenancy.tenant_stats_info");
    let (max, dealloc, reset, bytes) = shared::info().unwrap_or_default();
    let entries = shared::entries().map_or(0, |e| e.len());
    TableIterator::once((
        max as i64,
        entries as i64,
        dealloc as i64,
        timestamp(reset),
        bytes as i64,
    ))
}

/// Rows of the tenancy.tenant_activity view: the backends in a tenant context.
#[pg_extern(volatile, parallel_restricted, requires = ["catalog"])]
fn tenant_activity_entries() -> TableIterator<
    'static,
    (
        name!(pid, i32),
        name!(tenant_id, pgrx::Uuid),
        name!(identifier, Option<String>),
        name!(scope, String),
    ),
> {
    require_shared_memory("tenancy.tenant_activity");
    let everyone = is_administrator();
    let rows = shared::working()
        .into_iter()
        .filter(|&(_, _, _, role)| everyone || security::has_privileges_of(role))
        .map(|(pid, key, local, _)| {
            let id = Uuid::from_bytes(key);
            let scope = if local { "transaction" } else { "session" };
            (pid, to_sql(id), identifier_of(id), scope.to_string())
        })
        .collect::<Vec<_>>();
    TableIterator::new(rows)
}

extension_sql!(
    r#"
CREATE VIEW tenancy.tenant_stats AS
    SELECT identifier, tenant_id, calls, failed, total_time,
           CASE WHEN calls > 0 THEN total_time / calls END AS mean_time, max_time,
           rows, shared_blks_hit, shared_blks_read, shared_blks_dirtied,
           shared_blks_written, temp_blks_written, wal_bytes,
           first_statement, last_statement
    FROM tenancy.tenant_stats_entries();
COMMENT ON VIEW tenancy.tenant_stats IS
    'Statements per tenant since the last reset (times in milliseconds); tenant_id NULL: statements without a tenant.';
CREATE VIEW tenancy.tenant_stats_info AS
    SELECT * FROM tenancy.tenant_stats_information();
CREATE VIEW tenancy.tenant_activity AS
    SELECT e.pid, e.identifier, e.tenant_id, e.scope, a.usename, a.application_name,
           a.state, a.query_start, a.wait_event_type, a.wait_event
    FROM tenancy.tenant_activity_entries() e
    JOIN pg_catalog.pg_stat_activity a ON a.pid = e.pid;
COMMENT ON VIEW tenancy.tenant_activity IS
    'The backends working in a tenant context now.';
GRANT SELECT ON tenancy.tenant_stats, tenancy.tenant_stats_info, tenancy.tenant_activity TO PUBLIC;
"#,
    name = "usage_views",
    requires = [
        tenant_stats_entries,
        tenant_stats_information,
        tenant_activity_entries
    ]
);
