//! Tenant lifecycle: register, suspend, activate, update, delete.
//!
//! Each function validates first, then changes the catalog, writes the audit
//! row and queues the event in one transaction: an error anywhere leaves nothing.
//! They run their SQL as the catalog's owner; EXECUTE is what grants the power.

use crate::api::{audit, context, schemas};
use crate::catalog;
use crate::error::OrRaise;
use crate::error::{required, TenancyError::*};
use crate::postgres::jsonb::Jsonb;
use crate::postgres::query;
use crate::postgres::security::{self, UserCode};
use crate::tenant::{
    from_sql, to_sql, validate_identifier, validate_metadata, validate_name, Status, Tenant,
};
use crate::tenant_schema;
use pgrx::pg_sys::errcodes::PgSqlErrorCode;
use pgrx::pg_sys::panic::CaughtError;
use pgrx::prelude::*;
use pgrx::JsonB;
use serde_json::{json, Value};
use std::rc::Rc;
use uuid::Uuid;

type TenantRow = PgHeapTuple<'static, AllocatedByRust>;

thread_local! {
    /// The identifiers this transaction's destroys freed (see
    /// `register_tenant`), forgotten when it ends.
    static FREED_NOW: std::cell::RefCell<Vec<String>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// The transaction ended (committed or not).
pub(crate) fn on_transaction_end() {
    FREED_NOW.with_borrow_mut(Vec::clear);
}

/// A changed row as `tenancy.tenants`, column by column: on Citus the catalog
/// is a reference table, whose statements run on a placement with a row
/// type of its own (a whole-row `RETURNING t` would not cast back).
macro_rules! row {
    () => {
        "ROW(t.id, t.identifier, t.name, t.status, t.isolation, t.schema_name, \
         t.metadata, t.status_reason, t.created_at, t.updated_at, t.suspended_at, \
         t.deleted_at)::tenancy.tenants"
    };
}
const ROW: &str = row!();

/// A time-ordered (version 7) UUID: the default for `tenancy.tenants.id`.
#[pg_extern(volatile, parallel_safe)]
pub fn uuid_v7() -> pgrx::Uuid {
    to_sql(Uuid::now_v7())
}

#[pg_extern(volatile, parallel_unsafe, requires = ["catalog"])]
fn register_tenant(
    identifier: Option<&str>,
    name: Option<&str>,
    metadata: default!(Option<Jsonb>, "'{}'"),
    isolation: default!(Option<&str>, "'shared'"),
) -> pgrx::composite_type!('static, "tenancy.tenants") {
    let identifier = required(identifier, "identifier");
    let name = required(name, "name");
    let Jsonb(metadata) = required(metadata, "metadata");
    let isolation = required(isolation, "isolation");
    validate_identifier(identifier).unwrap_or_else(|e| e.raise());
    validate_name(name).unwrap_or_else(|e| e.raise());
    validate_metadata(&metadata).unwrap_or_else(|e| e.raise());
    if !matches!(isolation, "shared" | "schema") {
        InvalidValue(
            format!("invalid isolation \"{isolation}\""),
            "Use 'shared' (rows in shared tables under row-level security) or 'schema' \
             (a schema of its own, built from tenancy.migrations)."
                .into(),
        )
        .raise();
    }
    let id = Uuid::now_v7();
    let schema = (isolation == "schema").then(|| tenant_schema::name(id));

    let role = security::current_role_name();
    catalog::as_owner(|| {
        // An identifier being destroyed is waited for (the lock), so that the
        // new tenant's registration time, read after that, is later than
        // anything issued for the old one: a JWT naming the identifier must be
        // younger. One that exists is taken.
        // Both statements are kept (planned once per backend): registering
        // many tenants in a row is a bulk load.
        use pgrx::{PgBuiltInOids as Oids, PgOid::BuiltIn};
        let taken = query::kept_mut(
            "SELECT count(*) > 0 FROM (SELECT FROM tenancy.tenants WHERE identifier = $1 FOR UPDATE) t",
            &[BuiltIn(Oids::TEXTOID)],
            |client, statement| client.select(statement, None, &[identifier.into()])?.first().get_one::<bool>(),
        )
        .or_raise("reading tenancy.tenants");
        if taken == Some(true) {
            DuplicateIdentifier(identifier.into()).raise();
        }
        // Until this transaction commits, the destroyed tenant is the
        // committed one: a JWT issued for it meanwhile would be younger than
        // the new tenant, and open it.
        if FREED_NOW.with_borrow(|freed| freed.iter().any(|f| f == identifier)) {
            IllegalTransition(
                format!("tenant \"{identifier}\" was destroyed in this transaction"),
                "Register the identifier again in a transaction of its own, after this one has \
                 committed: until then the destroyed tenant is the one other sessions see, and a \
                 JWT issued for it meanwhile would open the new one."
                    .into(),
            )
            .raise();
        }
        // ON CONFLICT waits for a concurrent registration of the same identifier
        // and then yields no row: exactly one of them wins, the others get 23505.
        let args = [
            to_sql(id).into(),
            identifier.into(),
            name.into(),
            JsonB(metadata.clone()).into(),
            isolation.into(),
            schema.as_deref().into(),
        ];
        let row = query::kept_mut(
            concat!(
                "INSERT INTO tenancy.tenants AS t \
                 (id, identifier, name, metadata, isolation, schema_name, created_at, updated_at) \
                 SELECT $1, $2, $3, $4, $5, $6, c.at, c.at FROM (SELECT clock_timestamp() AS at) c \
                 ON CONFLICT (identifier) DO NOTHING RETURNING ",
                row!()
            ),
            &[
                BuiltIn(Oids::UUIDOID),
                BuiltIn(Oids::TEXTOID),
                BuiltIn(Oids::TEXTOID),
                BuiltIn(Oids::JSONBOID),
                BuiltIn(Oids::TEXTOID),
                BuiltIn(Oids::TEXTOID),
            ],
            |client, statement| first_row(client.select(statement, None, &args)?),
        )
        .or_raise("inserting into tenancy.tenants")
        .unwrap_or_else(|| DuplicateIdentifier(identifier.into()).raise());
        let mut details = json!({"name": name, "metadata": metadata, "isolation": isolation});
        if let Some(schema) = &schema {
            schemas::provision(id, schema);
            details["schema"] = Value::from(schema.as_str());
        }
        let audit_id = audit::record(&role, "register", Some((id, identifier)), details);
        audit::notify("register", id, identifier, "active", audit_id);
        row
    })
}

#[pg_extern(volatile, parallel_unsafe, requires = ["catalog"])]
fn suspend_tenant(
    identifier: Option<&str>,
    reason: default!(Option<&str>, "NULL"),
) -> pgrx::composite_type!('static, "tenancy.tenants") {
    let identifier = required(identifier, "identifier");
    transition(identifier, "suspend", Status::Suspended, reason)
}

#[pg_extern(volatile, parallel_unsafe, requires = ["catalog"])]
fn activate_tenant(identifier: Option<&str>) -> pgrx::composite_type!('static, "tenancy.tenants") {
    let identifier = required(identifier, "identifier");
    transition(identifier, "activate", Status::Active, None)
}

#[pg_extern(volatile, parallel_unsafe, requires = ["catalog"])]
fn update_tenant(
    identifier: Option<&str>,
    name: default!(Option<&str>, "NULL"),
    metadata: default!(Option<Jsonb>, "NULL"),
) -> pgrx::composite_type!('static, "tenancy.tenants") {
    let identifier = required(identifier, "identifier");
    if let Some(name) = name {
        validate_name(name).unwrap_or_else(|e| e.raise());
    }
    let metadata = metadata.map(|Jsonb(m)| m);
    if let Some(metadata) = &metadata {
        validate_metadata(metadata).unwrap_or_else(|e| e.raise());
    }
    let role = security::current_role_name();
    catalog::as_owner(|| {
        let status = lock_status(identifier);
        if status == Status::Deleted {
            IllegalTransition(
                format!("tenant \"{identifier}\" is deleted and cannot be updated"),
                "A deleted tenant is kept only to reserve its identifier.".into(),
            )
            .raise();
        }
        let row = fetch_row(
            &format!(
                "UPDATE tenancy.tenants AS t SET name = coalesce($2, name), \
             metadata = coalesce($3, metadata), updated_at = now() \
             WHERE identifier = $1 RETURNING {ROW}"
            ),
            &[
                identifier.into(),
                name.into(),
                metadata.clone().map(JsonB).into(),
            ],
        )
        .unwrap_or_else(|| Internal("the tenant's row, locked above, is gone".into()).raise());
        let id = row_id(&row);
        let audit_id = audit::record(
            &role,
            "update",
            Some((id, identifier)),
            json!({"name": name, "metadata": metadata}),
        );
        audit::notify("update", id, identifier, status.as_str(), audit_id);
        row
    })
}

#[pg_extern(volatile, parallel_unsafe, requires = ["catalog"])]
fn delete_tenant(
    identifier: Option<&str>,
    destroy_data: default!(Option<bool>, false),
) -> pgrx::composite_type!('static, "tenancy.tenants") {
    let identifier = required(identifier, "identifier");
    if !required(destroy_data, "destroy_data") {
        return transition(identifier, "delete", Status::Deleted, None);
    }
    let role = security::current_role_name();
    catalog::as_owner(|| {
        let status = lock_status(identifier);
        let id = tenant_id(identifier);
        let rows_deleted = destroy_rows(id);
        let schema = query::optional_one::<String>(
            "SELECT schema_name::text FROM tenancy.tenants WHERE id = $1",
            &[to_sql(id).into()],
        )
        .or_raise("a catalog lookup");
        let mut details = json!({"previous_status": status.as_str(), "rows_deleted": rows_deleted});
        if let Some(schema) = &schema {
            schemas::drop_schema(schema);
            details["schema_dropped"] = Value::from(schema.as_str());
        }
        let row = fetch_row(
            &format!("DELETE FROM tenancy.tenants AS t WHERE identifier = $1 RETURNING {ROW}"),
            &[identifier.into()],
        )
        .unwrap_or_else(|| Internal("the tenant's row, locked above, is gone".into()).raise());
        // A credential naming the identifier must be younger than its next tenant.
        Spi::run_with_args(
            "INSERT INTO tenancy.freed_identifiers (identifier, freed_at) VALUES ($1, clock_timestamp()) \
             ON CONFLICT (identifier) DO UPDATE SET freed_at = EXCLUDED.freed_at",
            &[identifier.into()],
        )
        .or_raise("recording the freed identifier");
        FREED_NOW.with_borrow_mut(|freed| freed.push(identifier.to_string()));
        let audit_id = audit::record(&role, "destroy", Some((id, identifier)), details);
        audit::notify("destroy", id, identifier, "destroyed", audit_id);
        row
    })
}

/// Move `identifier` to `to` if the state machine allows it (Status::can_become).
fn transition(identifier: &str, action: &str, to: Status, reason: Option<&str>) -> TenantRow {
    let role = security::current_role_name();
    catalog::as_owner(|| {
        let from = lock_status(identifier);
        if !from.can_become(to) {
            let hint = match from {
                Status::Deleted => "A deleted tenant cannot change state; remove it for good with \
                                    tenancy.delete_tenant(identifier, destroy_data => true)."
                    .to_string(),
                _ => format!("The tenant is already {from}."),
            };
            IllegalTransition(
                format!("cannot {action} tenant \"{identifier}\": it is {from}"),
                hint,
            )
            .raise();
        }
        let row = fetch_row(
            &format!(
                "UPDATE tenancy.tenants AS t SET status = '{to}', {}, updated_at = now() \
                 WHERE identifier = $1 RETURNING {ROW}",
                to.columns_set()
            ),
            &[identifier.into(), reason.into()],
        )
        .unwrap_or_else(|| Internal("the tenant's row, locked above, is gone".into()).raise());
        let id = row_id(&row);
        let mut details = json!({"from": from.as_str(), "to": to.as_str()});
        if let Some(reason) = reason {
            details["reason"] = Value::from(reason);
        }
        let audit_id = audit::record(&role, action, Some((id, identifier)), details);
        audit::notify(action, id, identifier, to.as_str(), audit_id);
        row
    })
}

/// Lock the tenant's row for the rest of the transaction and return its status.
fn lock_status(identifier: &str) -> Status {
    query::optional_one::<String>(
        "SELECT status FROM tenancy.tenants WHERE identifier = $1 FOR UPDATE",
        &[identifier.into()],
    )
    .or_raise("a catalog lookup")
    .map(|status| Status::parse(&status))
    .unwrap_or_else(|| UnknownTenant(identifier.into()).raise())
}

fn tenant_id(identifier: &str) -> Uuid {
    let id = query::optional_one::<pgrx::Uuid>(
        "SELECT id FROM tenancy.tenants WHERE identifier = $1",
        &[identifier.into()],
    )
    .or_raise("a catalog lookup")
    .unwrap_or_else(|| UnknownTenant(identifier.into()).raise());
    from_sql(id)
}

/// Delete the tenant's rows from every protected table, each as the table's
/// owner in a security-restricted operation. The DELETE alone runs in the
/// destroyed tenant's context (its policy needs one): the owner's triggers,
/// rules and the functions they call run their statements with no context,
/// so they see none of the tenant's other rows, and only the owner's rights.
/// A trigger may put rows of the tenant back (an audit copy into another
/// protected table): passes repeat until one deletes nothing. Tables of
/// tenant schemas are not visited (the schema goes as a whole). Entries whose
/// table is gone are forgotten on the way.
fn destroy_rows(id: Uuid) -> i64 {
    const PASSES: usize = 3;
    Spi::run(
        "DELETE FROM tenancy.protected_tables p \
         WHERE NOT EXISTS (SELECT FROM pg_catalog.pg_class c WHERE c.oid = p.relid)",
    )
    .or_raise("forgetting dropped tables");
    let tables: Vec<(pg_sys::Oid, String, String, pg_sys::Oid, Option<String>)> =
        Spi::connect(|client| {
            client
                .select(
                    "SELECT p.relid, p.relid::text, p.tenant_column::text, c.relowner, \
                        (SELECT r.rulename::text FROM pg_catalog.pg_rewrite r \
                          WHERE r.ev_class = c.oid AND r.ev_type = '4' AND r.is_instead \
                            AND r.ev_enabled <> 'D' LIMIT 1) \
                 FROM tenancy.protected_tables p JOIN pg_catalog.pg_class c ON c.oid = p.relid \
                 WHERE NOT EXISTS (SELECT FROM tenancy.tenants t JOIN pg_catalog.pg_namespace n \
                                     ON n.nspname = t.schema_name \
                                    WHERE n.oid = c.relnamespace) \
                 ORDER BY p.relid",
                    None,
                    &[],
                )?
                .map(|row| {
                    Ok((
                        query::required(&row, 1)?,
                        query::required(&row, 2)?,
                        query::required(&row, 3)?,
                        query::required(&row, 4)?,
                        row.get(5)?,
                    ))
                })
                .collect::<Result<_, query::ReadError>>()
        })
        .or_raise("reading tenancy.protected_tables");
    if let Some((_, table, _, _, Some(rule))) = tables.iter().find(|t| t.4.is_some()) {
        IllegalTransition(
            format!(
                "rule \"{rule}\" on table {table} replaces DELETE: the tenant's rows would stay"
            ),
            "Drop or disable the rule (ALTER TABLE … DISABLE RULE), or make it DO ALSO, \
             before destroying the tenant's data."
                .into(),
        )
        .raise();
    }
    let tenant = catalog::find_by_id(id).unwrap_or_else(|| UnknownTenant(id.to_string()).raise());
    let pass = || -> i64 {
        tables
            .iter()
            .map(|(relid, table, column, owner, _)| {
                let query = format!("DELETE FROM {table} WHERE {} = $1", spi::quote_identifier(column));
                let delete = std::panic::AssertUnwindSafe(|| {
                    security::run_user_code(UserCode::of(*owner), || {
                        context::deleting_rows(tenant.clone(), *relid, || {
                            Spi::connect_mut(|client| {
                                client.update(&query, None, &[to_sql(id).into()]).map(|t| t.len())
                            })
                            .or_raise(&format!("deleting the tenant's rows from {table}"))
                        })
                    })
                });
                // The owner's triggers run with no context: a write of the
                // tenant's rows into a protected table fails its policy.
                PgTryBuilder::new(delete)
                    .catch_when(PgSqlErrorCode::ERRCODE_INSUFFICIENT_PRIVILEGE, |error| {
                        let message = match &error {
                            CaughtError::PostgresError(report) | CaughtError::ErrorReport(report) => {
                                report.message().to_string()
                            }
                            CaughtError::RustPanic { .. } => error.rethrow(),
                        };
                        PermissionDenied(
                            format!("deleting the tenant's rows from {table}: {message}"),
                            "A destroy runs the triggers and rules of a protected table as its owner \
                             and with no tenant context, so that they see none of the tenant's other \
                             rows; a trigger that writes rows of the tenant into a protected table is \
                             refused by that table's policy. Its owner can disable such a trigger \
                             around the destroy (ALTER TABLE … DISABLE TRIGGER …, then ENABLE TRIGGER …)."
                                .into(),
                        )
                        .raise()
                    })
                    .execute() as i64
            })
            .sum()
    };
    let mut total = 0;
    for _ in 0..PASSES {
        let deleted = pass();
        if deleted == 0 {
            refuse_rows_left(&tables, &tenant);
            return total;
        }
        total += deleted;
    }
    IllegalTransition(
        format!(
            "rows of the tenant keep coming back after {PASSES} passes over the protected tables"
        ),
        "A trigger or rule on a protected table writes rows of the tenant being destroyed into \
         another protected table; change it so that it does not copy the rows it deletes."
            .into(),
    )
    .raise()
}

/// After the passes: none of the tenant's rows may be left behind (a BEFORE
/// DELETE trigger that returns NULL skips the row it was given). Read like
/// the DELETE, as the table's owner in a security-restricted operation with
/// the tenant's context for that statement alone: a superuser's read would
/// plan the query with the owner's index expressions and predicates, and run
/// what they call with superuser rights.
fn refuse_rows_left(
    tables: &[(pg_sys::Oid, String, String, pg_sys::Oid, Option<String>)],
    tenant: &Rc<Tenant>,
) {
    for (relid, table, column, owner, _) in tables {
        let query = format!(
            "SELECT EXISTS (SELECT FROM {table} WHERE {} OPERATOR(pg_catalog.=) $1)",
            spi::quote_identifier(column)
        );
        let left = security::run_user_code(UserCode::of(*owner), || {
            context::deleting_rows(tenant.clone(), *relid, || {
                query::optional_one::<bool>(&query, &[to_sql(tenant.id).into()])
            })
        })
        .or_raise(&format!(
            "checking that no row of the tenant is left in {table}"
        ));
        if left == Some(true) {
            IllegalTransition(
                format!("rows of the tenant are left in table {table} after the destroy's DELETE"),
                "A BEFORE DELETE trigger of the table skipped them (it returned NULL): the owner \
                 can disable it around the destroy (ALTER TABLE … DISABLE TRIGGER …, then ENABLE \
                 TRIGGER …)."
                    .into(),
            )
            .raise();
        }
    }
}

/// Run a catalog statement returning at most one `tenancy.tenants` row.
fn fetch_row(query: &str, args: &[pgrx::datum::DatumWithOid]) -> Option<TenantRow> {
    // No row limit: SPI's limit stops a DML statement early, before its
    // AFTER STATEMENT triggers (the cache invalidation) fire.
    Spi::connect_mut(|client| first_row(client.update(query, None, args)?))
        .or_raise("tenancy catalog statement")
}

/// The row a statement `RETURNING` the changed row as `tenancy.tenants` returned.
fn first_row(rows: pgrx::spi::SpiTupleTable) -> pgrx::spi::SpiResult<Option<TenantRow>> {
    if rows.is_empty() {
        return Ok(None);
    }
    rows.first().get::<TenantRow>(1)
}

fn row_id(row: &TenantRow) -> Uuid {
    let id: pgrx::Uuid = row
        .get_by_name("id")
        .or_raise("reading a tenant's id")
        .unwrap_or_else(|| Internal("a tenant row without an id".into()).raise());
    from_sql(id)
}
