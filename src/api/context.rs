//! The tenant context: who the session (or transaction) acts for.
//!
//! `current_tenant()` is the accessor every policy calls. It is on the hot
//! path of every statement: while the setting holds the text it held on the
//! last call, a comparison of 36 bytes; after a change, a UUID parse and a
//! cache lookup.

use crate::api::{audit, citus, limits, usage};
use crate::cache;
use crate::catalog;
use crate::error::OrRaise;
use crate::error::{required, TenancyError, TenancyError::*};
use crate::postgres::{gucs, hooks, initplans, relations, security, BackendCell};
use crate::tenant::{to_sql, Tenant};
use crate::tenant_schema;
use pgrx::prelude::*;
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use uuid::Uuid;

/// A destroy's DELETE of the tenant's rows from one table (see `deleting_rows`).
struct Deleting {
    tenant: Rc<Tenant>,
    table: pg_sys::Oid,
    /// How many statements were running when it was issued.
    depth: usize,
    /// The DELETE, once the executor started it.
    statement: Option<usize>,
}

/// DELETING is set: read by every statement and every call of the accessor
/// (see `BackendCell`), which look no further while it is not.
static DELETING_NOW: BackendCell<bool> = BackendCell::new(false);

/// Whether a destroy is deleting rows (`deleting_rows`): the executor hook
/// looks at statements only then. Asked outside any error guard.
pub(crate) fn deleting() -> bool {
    DELETING_NOW.get()
}

thread_local! {
    static DELETING: RefCell<Option<Deleting>> = const { RefCell::new(None) };
    /// The tenant the extension itself acts for (see `acting_for`); no SQL can set it.
    static ACTING_FOR: Cell<Option<Uuid>> = const { Cell::new(None) };
    /// This transaction set a transaction-scoped context.
    static LOCAL_CONTEXT: Cell<bool> = const { Cell::new(false) };
}

/// Before `DECLARE name CURSOR WITH HOLD`: a held cursor keeps its rows after
/// COMMIT, so under a transaction-scoped context it would outlive the
/// context, and on a transaction-pooled connection reach the next client's
/// request.
pub(crate) fn on_hold_cursor(_name: &str) {
    if LOCAL_CONTEXT.get() {
        CursorOutlivesContext.raise();
    }
}

/// Run `f`, which issues one statement on `table` as the table's owner — the
/// `DELETE` of the destroyed tenant's rows, or the `SELECT` that checks none
/// is left: that statement, and only it, runs in the tenant's context (its
/// row-level security policy needs one). The triggers, rules and functions it
/// reaches run their own statements with no context at all, so the owner's
/// code cannot read the tenant's other rows.
pub(crate) fn deleting_rows<R>(tenant: Rc<Tenant>, table: pg_sys::Oid, f: impl FnOnce() -> R) -> R {
    struct Stop;
    impl Drop for Stop {
        fn drop(&mut self) {
            DELETING.set(None);
            DELETING_NOW.set(false);
        }
    }
    DELETING.set(Some(Deleting {
        tenant,
        table,
        depth: hooks::running_depth(),
        statement: None,
    }));
    DELETING_NOW.set(true);
    let _stop = Stop;
    f()
}

/// Before SET ROLE, RESET ROLE, SET SESSION AUTHORIZATION and RESET ALL: a
/// tenant's schema on search_path is for the role that chose the tenant.
/// Switching to a role that bypasses row-level security (a superuser that
/// acted as a tenant schema's owner, RESET ROLE) takes it off the path: the
/// schema's functions and operators, the migration author's code, would
/// otherwise be found (an exact type match wins over pg_catalog's) and run
/// with that role's rights. The context itself stays (row-level security
/// does not apply to such a role, and set_tenant refuses it).
pub(crate) fn on_role_change(role: Option<pg_sys::Oid>) {
    let role = role.unwrap_or_else(security::session_role);
    if gucs::with_search_path(tenant_schema::mentions_tenant_schema)
        && security::role_bypass_reason(role).is_some()
    {
        tenant_schema::follow_search_path(None, LOCAL_CONTEXT.get());
    }
}

/// Before the executor starts a statement: recognises `deleting_rows`'s
/// statement. It runs in the tenant's context: if the table's policies or rules
/// make it read another relation (a sub-select in the owner's own policy),
/// that relation's rows of the tenant would be read by the owner's code, so
/// it is refused.
pub(crate) fn on_executor_start(statement: &hooks::Statement) {
    let read = DELETING.with_borrow_mut(|deleting| {
        let d = deleting.as_mut()?;
        if d.statement.is_some()
            || hooks::running_depth() != d.depth
            || (statement.deletes_from() != Some(d.table) && !statement.selects_from(d.table))
        {
            return None;
        }
        d.statement = Some(statement.id());
        Some(d.table)
    });
    // (The lookup runs a statement of its own: not while DELETING is borrowed.)
    let read = read.and_then(|table| {
        let own = relations::and_descendants(table);
        let other = statement
            .relation_oids()
            .into_iter()
            .find(|r| !own.contains(r))?;
        Some((table, other))
    });
    if let Some((table, other)) = read {
        IllegalTransition(
            format!(
                "deleting the tenant's rows from {} would read {}",
                relations::name(table),
                relations::name(other)
            ),
            "A destroy deletes a table's rows of the tenant as the table's owner, in the tenant's \
             context: a policy or rule of the table that reads another relation would read that \
             relation's rows of the tenant. Drop it (or make it read nothing else) before \
             destroying the tenant's data."
                .into(),
        )
        .raise();
    }
}

/// Whether the context was set for this transaction (and ends with it).
pub(crate) fn transaction_scoped() -> bool {
    LOCAL_CONTEXT.get()
}

pub(crate) fn on_transaction_end(_committed: bool) {
    LOCAL_CONTEXT.set(false);
    usage::on_transaction_end();
    limits::on_transaction_end();
    audit::on_transaction_end();
    citus::on_transaction_end();
    super::policies::on_transaction_end();
}

/// Run `f` with `id` as the context whatever the tenant's status: a migration
/// in a tenant's schema runs in that tenant's context (whatever its status),
/// so that the rows it seeds pass the schema's pinned policy. The context is
/// restored when `f` returns, or by the (sub)transaction abort if it raises.
pub(crate) fn acting_for<R>(id: Uuid, f: impl FnOnce() -> R) -> R {
    struct Restore(Option<Uuid>);
    impl Drop for Restore {
        fn drop(&mut self) {
            ACTING_FOR.set(self.0);
        }
    }
    let _restore = Restore(ACTING_FOR.replace(Some(id)));
    security::with_nest_level(|| {
        gucs::save_tenant_id(id);
        f()
    })
}

/// `set_tenant(identifier)`: for the session. One function per arity rather
/// than a parameter DEFAULT: PostgreSQL reads a function's defaults from
/// their stored text whenever it parses a call, about 8,000 instructions of
/// every request that names a tenant (docs/benchmarks.md).
#[pg_extern(volatile, parallel_unsafe, name = "set_tenant")]
fn set_tenant_for_session(identifier: Option<&str>) -> pgrx::Uuid {
    set_tenant(identifier, Some(false))
}

/// Validate that `identifier` is an active tenant and make it the context.
/// `is_local => true` lasts until the end of the transaction (for
/// transaction-mode poolers) and is an error outside a transaction block.
#[pg_extern(volatile, parallel_unsafe)]
fn set_tenant(identifier: Option<&str>, is_local: Option<bool>) -> pgrx::Uuid {
    let identifier = required(identifier, "identifier");
    let local = required(is_local, "is_local");
    if gucs::require_token() && !may_issue_tokens() {
        refuse(identifier, TokenRequired(security::current_role_name()));
    }
    enter(identifier, local, || {
        catalog::find_by_identifier(identifier)
    })
}

/// May the current role choose a tenant by name while require_token is on?
/// Only a role that could issue itself a token anyway (EXECUTE on issue_token).
fn may_issue_tokens() -> bool {
    // The current role, read before switching to the catalog owner.
    let role = security::current_role();
    catalog::as_owner(|| {
        Spi::get_one_with_args::<bool>(
            "SELECT has_function_privilege($1, 'tenancy.issue_token(text, interval)', 'EXECUTE')",
            &[role.into()],
        )
    })
    .or_raise("checking the privilege to issue tokens")
    .unwrap_or(false)
}

/// Make the tenant that `find` returns the context, after the checks every
/// way in shares: the role obeys row-level security, a local scope has a
/// transaction, the tenant exists and is active. `label` names it in errors.
pub(crate) fn enter(
    label: &str,
    local: bool,
    find: impl FnOnce() -> Option<std::rc::Rc<Tenant>>,
) -> pgrx::Uuid {
    if let Some(why) = security::rls_bypass_reason() {
        refuse(label, PrivilegedRole(security::current_role_name(), why));
    }
    if let Some(names) = gucs::shadowed_by_client() {
        refuse(label, ConnectionOptions(names));
    }
    if local && !security::in_transaction_block() {
        refuse(label, NoTransactionBlock);
    }
    let tenant = find().unwrap_or_else(|| refuse(label, UnknownTenant(label.into())));
    if !tenant.is_active() {
        refuse(
            label,
            TenantNotActive(tenant.identifier.clone(), tenant.status),
        );
    }
    change_context(Some(&tenant), local);
    to_sql(tenant.id)
}

/// No tenant for the rest of this request: for the transaction inside a
/// transaction block (PostgREST's), else for the session.
pub(crate) fn clear_for_request() {
    change_context(None, security::in_transaction_block());
}

/// Clear the session's context (policies then match no row).
#[pg_extern(volatile, parallel_unsafe)]
fn reset_tenant() {
    change_context(None, false);
}

/// The accessor, as the planner finds it: its calls in row-level security
/// policies become InitPlans, evaluated once per statement (see
/// postgres/initplans.rs).
pub(crate) const ACCESSOR: initplans::Function = initplans::Function {
    schema: c"tenancy",
    name: c"current_tenant",
    symbol: c"current_tenant_wrapper",
};

/// The current tenant's id, or NULL when none is set (policies then match no
/// row). Raises if that tenant has since been suspended or deleted, and when
/// none is set while `tenancy.require_tenant` is on.
#[pg_extern(stable, parallel_safe)]
pub fn current_tenant() -> Option<pgrx::Uuid> {
    let id = current()?.id;
    Some(to_sql(id))
}

#[pg_extern(stable, parallel_safe)]
fn current_tenant_identifier() -> Option<String> {
    current().map(|tenant| tenant.identifier.clone())
}

#[pg_extern(volatile, parallel_safe)]
fn cache_stats() -> TableIterator<
    'static,
    (
        name!(hits, i64),
        name!(misses, i64),
        name!(evictions, i64),
        name!(invalidations, i64),
        name!(entries, i64),
        name!(capacity, i64),
    ),
> {
    let (stats, entries, capacity) = cache::stats();
    TableIterator::once((
        stats.hits,
        stats.misses,
        stats.evictions,
        stats.invalidations,
        entries as i64,
        capacity as i64,
    ))
}

/// The current tenant, validated (see `current_tenant`).
pub(crate) fn current() -> Option<std::rc::Rc<Tenant>> {
    if let Some(deleting) = DELETING_NOW
        .get()
        .then(|| {
            DELETING.with_borrow(|d| {
                d.as_ref().map(|d| {
                    (d.statement.is_some() && hooks::running_statement() == d.statement)
                        .then(|| d.tenant.clone())
                })
            })
        })
        .flatten()
    {
        return deleting;
    }
    // Every statement of a protected query asks: while the setting holds the
    // same text, the cache answers without parsing it or hashing an id.
    let tenant = match gucs::with_tenant_setting(cache::get_by_setting) {
        None => {
            // On a Citus worker, the coordinator's signed context.
            if let Some(tenant) = citus::carried_tenant() {
                return Some(tenant);
            }
            if gucs::require_tenant() {
                TenantRequired.raise();
            }
            return None;
        }
        Some(Some(tenant)) => tenant,
        Some(None) => {
            // The setting's check hook admits only UUIDs.
            let id = gucs::current_tenant_id()
                .and_then(Result::ok)
                .unwrap_or_else(|| {
                    Internal("tenancy.tenant does not hold a tenant id".into()).raise()
                });
            let tenant =
                catalog::find_by_id(id).unwrap_or_else(|| refuse(&id.to_string(), StaleContext));
            gucs::with_tenant_setting(|setting| cache::remember_setting(setting, &tenant));
            tenant
        }
    };
    if !tenant.is_active() && ACTING_FOR.get() != Some(tenant.id) {
        refuse(
            &tenant.identifier,
            TenantNotActive(tenant.identifier.clone(), tenant.status),
        );
    }
    Some(tenant)
}

/// The one place that changes the context (and, for schema tenants, the
/// search_path). A cursor keeps the rows of the tenant it was opened for, so
/// the value may not change while one is open.
///
/// A transaction-scoped context starts a request (on a transaction-pooled
/// connection, maybe another client's): held cursors that earlier
/// transactions left behind belong to earlier requests and are closed, so
/// they neither reach this request nor block it.
fn change_context(tenant: Option<&Tenant>, local: bool) {
    let id = tenant.map(|t| t.id);
    if security::in_user_code() || security::trigger_depth() > 0 || hooks::running_others_code() {
        refuse(
            &id.map(|id| id.to_string()).unwrap_or_default(),
            PermissionDenied(
                "the tenant context can change only in a client's SELECT (or CALL, or DO) that \
                 reads and writes no relation, outside triggers and code that tenancy runs for \
                 another role"
                    .into(),
                "What the owners of relations attach to them (triggers, column defaults, \
                 constraints, rules, views, policies, the operators of their columns' types) runs \
                 in the caller's session, and a migration runs in the context of the tenant it \
                 migrates, and PostgreSQL runs some of them while it plans a statement or binds \
                 its parameters: none of them may choose a tenant. Call set_tenant in a statement \
                 of its own (SELECT tenancy.set_tenant($1), as a query or a prepared \
                 statement); look the tenant up before it."
                    .into(),
            ),
        );
    }
    let current = gucs::current_tenant_id().and_then(Result::ok);
    if local && security::other_portals_exist() {
        // Also those declared before the library was loaded in this backend.
        security::close_held_cursors_of_earlier_transactions();
    }
    if current != id && security::has_open_cursors() {
        refuse(
            &id.map(|id| id.to_string()).unwrap_or_default(),
            OpenCursors,
        );
    }
    let on_citus = citus::active();
    if on_citus && !local && id.is_some() {
        citus::check_session_scope();
    }
    if local {
        LOCAL_CONTEXT.set(true);
    }
    usage::context_scope(local);
    gucs::set_tenant_id(id, local);
    usage::context_changed();
    limits::on_context(tenant, local);
    if on_citus && local {
        citus::carry(tenant);
    }
    tenant_schema::follow_search_path(tenant.and_then(|t| t.schema.as_deref()), local);
}

thread_local! {
    /// When this backend last logged a refusal (Unix seconds), and how many
    /// it has not logged since.
    static LAST_REFUSAL_LOG: Cell<(i64, u64)> = const { Cell::new((i64::MIN, 0)) };
}

/// Log a refused context attempt (the failed transaction keeps no trace),
/// then raise. At most one line per backend and second: a client that keeps
/// presenting bad tenants or tokens cannot write the log without bound, and
/// the next line says how many were left out.
pub(crate) fn refuse(tenant: &str, error: TenancyError) -> ! {
    let now = crate::postgres::system::unix_now();
    let (last, suppressed) = LAST_REFUSAL_LOG.get();
    if now > last {
        let more = match suppressed {
            0 => String::new(),
            n => format!(" ({n} more refused in this session since the last line)"),
        };
        log!(
            "tenancy: refused tenant context \"{tenant}\" for role \"{}\": {}{more}",
            security::current_role_name(),
            error.message()
        );
        LAST_REFUSAL_LOG.set((now, 0));
    } else {
        LAST_REFUSAL_LOG.set((last, suppressed + 1));
    }
    error.raise()
}

/// The current tenant as the application sees it, in one round trip: id,
/// identifier, name, status, isolation and metadata; no row without a tenant.
/// Executable by every role (it reads the catalog as its owner, and only the
/// row of the context's tenant).
#[pg_extern(stable, parallel_safe, requires = ["catalog"])]
fn current_tenant_info() -> TableIterator<
    'static,
    (
        name!(id, pgrx::Uuid),
        name!(identifier, String),
        name!(name, String),
        name!(status, String),
        name!(isolation, String),
        name!(metadata, pgrx::JsonB),
    ),
> {
    let Some(tenant) = current() else {
        return TableIterator::new(Vec::new());
    };
    let row = catalog::as_owner(|| {
        Spi::get_three_with_args::<String, String, pgrx::JsonB>(
            "SELECT name, isolation, metadata FROM tenancy.tenants WHERE id = $1",
            &[to_sql(tenant.id).into()],
        )
    })
    .or_raise("reading tenancy.tenants");
    let (Some(name), Some(isolation), Some(metadata)) = row else {
        refuse(&tenant.id.to_string(), StaleContext)
    };
    TableIterator::once((
        to_sql(tenant.id),
        tenant.identifier.clone(),
        name,
        tenant.status.as_str().to_string(),
        isolation,
        metadata,
    ))
}
