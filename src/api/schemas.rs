//! Schema-per-tenant isolation: a tenant registered with `isolation => 'schema'`
//! gets its own schema, built from an ordered registry of migrations.
//!
//! The schema's name derives from the tenant's id (see tenant_schema.rs):
//! never truncated, never colliding, never from user input; always quoted.
//! Every table a migration creates there gets row-level security pinned to the
//! tenant's id, so another tenant's context (or none) reaches no row even with
//! schema-qualified names; views there are made security_invoker.
//! `migrate()` / `add_migration()` are PL/pgSQL procedures (sql/schemas.sql)
//! that commit per schema around `migrate_tenant()`.

use crate::api::{audit, citus, context, migrations, policies, roles};
use crate::catalog;
use crate::error::OrRaise;
use crate::error::{required, TenancyError::*};
use crate::postgres::security::{self, UserCode};
use crate::postgres::{gucs, query, relations};
use crate::tenant::{from_sql, to_sql, Status};
use crate::tenant_schema;
use pgrx::prelude::*;
use pgrx::{PgBuiltInOids, PgOid};
use serde_json::json;
use uuid::Uuid;

const POLICY: &str = "tenancy_schema_isolation";
/// The statement trigger that decides who may write to a tenant schema's table.
pub(crate) const GUARD: &str = "tenancy_schema_guard";
/// Room for a quoted schema-qualified name of at most 63 + 63 bytes.
const POLICY_TARGET_WIDTH: usize = 2 * (63 * 2 + 2) + 1;

/// Bring one schema tenant up to date, in the current transaction; returns
/// how many migrations were applied. `migrate()` calls it once per schema.
#[pg_extern(volatile, parallel_unsafe, requires = ["catalog"])]
fn migrate_tenant(identifier: Option<&str>) -> i32 {
    let identifier = required(identifier, "identifier");
    let role = security::current_role_name();
    catalog::as_owner(|| {
        // Locking the tenant's row serializes migrations of one schema.
        // (Kept: migrate() runs it once per schema.)
        let row = query::kept_mut(
            "SELECT id, status, schema_name::text FROM tenancy.tenants WHERE identifier = $1 FOR UPDATE",
            &[PgOid::BuiltIn(PgBuiltInOids::TEXTOID)],
            |client, statement| {
                client
                    .select(statement, Some(1), &[identifier.into()])?
                    .first()
                    .get_three::<pgrx::Uuid, String, String>()
            },
        )
        .unwrap_or((None, None, None));
        let (Some(id), Some(status)) = (row.0, row.1) else {
            UnknownTenant(identifier.into()).raise()
        };
        let Some(schema) = row.2 else {
            InvalidValue(
                format!("tenant \"{identifier}\" has no schema of its own"),
                "Only tenants registered with isolation => 'schema' are migrated.".into(),
            )
            .raise()
        };
        if Status::parse(&status) == Status::Deleted {
            IllegalTransition(
                format!("tenant \"{identifier}\" is deleted: its schema is kept untouched"),
                "Destroy it with tenancy.delete_tenant(identifier, destroy_data => true).".into(),
            )
            .raise();
        }
        let id = from_sql(id);
        // With nothing to apply, pin every table of the schema again (what
        // verify() suggests after a change made outside the migrations).
        let applied = apply_pending(roles::migration_owner(), id, &schema, true);
        if !applied.is_empty() {
            audit::record(
                &role,
                "migrate",
                Some((id, identifier)),
                json!({"applied": applied}),
            );
        }
        applied.len() as i32
    })
}

/// Create a new schema tenant's schema, owned by the migration owner, and
/// replay every migration (called by register_tenant, inside its transaction,
/// as the catalog owner).
pub(crate) fn provision(id: Uuid, schema: &str) {
    let quoted = spi::quote_identifier(schema);
    let owner = roles::migration_owner();
    let create = || {
        citus::without_schema_sharding(|| {
            query::run(&format!(
                "CREATE SCHEMA {quoted} AUTHORIZATION {}",
                spi::quote_identifier(security::role_name(owner))
            ));
            query::run(&format!("GRANT USAGE ON SCHEMA {quoted} TO PUBLIC"));
        })
    };
    if citus::shards_schemas() {
        // On Citus, as the migration owner: it distributes the schema once
        // its tables exist (apply_pending), over its own connections to the
        // workers, which must see the schema this transaction creates.
        security::as_owner(owner, create);
    } else {
        create();
    }
    apply_pending(owner, id, schema, false);
}

/// Drop a destroyed tenant's schema and everything in it, as the schema's owner.
pub(crate) fn drop_schema(schema: &str) {
    let owner = Spi::get_one_with_args::<pg_sys::Oid>(
        "SELECT nspowner FROM pg_catalog.pg_namespace WHERE nspname = $1",
        &[schema.into()],
    )
    .or_raise("reading the schema's owner");
    let Some(owner) = owner else { return };
    security::run_user_code(UserCode::of(owner), || {
        security::quietly(|| {
            query::run(&format!(
                "DROP SCHEMA {} CASCADE",
                spi::quote_identifier(schema)
            ))
        })
    });
}

/// Apply the migrations `schema` lacks, in order, then pin to the tenant the
/// relations they made or changed (or, with `repair` and nothing to apply,
/// every relation of the schema), as `owner`, the migration owner its caller
/// looked up and checked. Returns the names applied.
fn apply_pending(owner: pg_sys::Oid, id: Uuid, schema: &str, repair: bool) -> Vec<String> {
    let tenant = to_sql(id);
    let pending = migrations::pending(Some(tenant));
    let touched = migrations::run_scripts(owner, schema, Some(id), &pending);
    if !pending.is_empty() {
        // One statement for the whole history (a new tenant replays it all).
        let names: Vec<&str> = pending.iter().map(|(name, _)| name.as_str()).collect();
        query::kept_mut(
            "INSERT INTO tenancy.schema_migrations (tenant_id, migration) \
             SELECT $1, m FROM unnest($2::text[]) WITH ORDINALITY u(m, i) ORDER BY i",
            &[
                PgOid::BuiltIn(PgBuiltInOids::UUIDOID),
                PgOid::BuiltIn(PgBuiltInOids::TEXTARRAYOID),
            ],
            |client, statement| {
                client.select(statement, None, &[tenant.into(), names.into()])?;
                Ok(())
            },
        )
        .or_raise("recording the migrations");
    }
    let on_citus = citus::shards_schemas();
    let scope = touched
        .as_deref()
        .filter(|_| !repair || !pending.is_empty());
    isolate_schema(id, schema, on_citus, scope);
    if on_citus {
        // Citus' own statements, as the migration owner (who must be able to
        // log in to the workers: Citus connects as the current user).
        security::as_owner(owner, || citus::distribute_schema(schema));
    }
    pending.into_iter().map(|(name, _)| name).collect()
}

/// The relations of schema $1 that isolate_schema() has work on: tables not
/// yet pinned (row-level security on, forced, and policy $2) or guarded, or
/// on which another role than the owner holds a privilege that reaches
/// beyond row-level security (TRIGGER, REFERENCES, TRUNCATE, MAINTAIN; or
/// REFERENCES on a column, which the REVOKE on the table takes back too);
/// views that are not security_invoker; sequences that others may use.
/// Also: whether a policy or triggers of tenancy's names are there already
/// (to be dropped first), and who holds those privileges. The policy and the
/// guard are looked up by each relation (LATERAL … OFFSET 0, through their
/// indexes): a join would hash every guard trigger of every tenant schema,
/// once for each schema migrated.
macro_rules! schema_objects {
    () => {
        "SELECT * FROM ( \
           SELECT c.oid::pg_catalog.regclass::pg_catalog.text AS name, c.relkind::pg_catalog.text AS kind, \
                  c.relrowsecurity AND c.relforcerowsecurity AND p.polname IS NOT NULL AS pinned, \
                  coalesce(g.tgenabled IN ('O', 'A') \
                           AND g.tgfoid = 'tenancy.schema_guard()'::pg_catalog.regprocedure, false) AS guarded, \
                  c.relowner, p.polname IS NOT NULL AS policy_named, g.tgname IS NOT NULL AS guard_named, \
                  coalesce(c.reloptions, '{}') @> '{security_invoker=true}' AS invoker, \
                  EXISTS (SELECT FROM pg_catalog.pg_trigger t WHERE t.tgrelid = c.oid \
                             AND t.tgname = 'tenancy_no_truncate' OFFSET 0) AS old_trigger, \
                  (SELECT pg_catalog.array_agg(DISTINCT CASE a.grantee WHEN 0 THEN 'PUBLIC' \
                          ELSE pg_catalog.quote_ident(a.grantee::pg_catalog.regrole::pg_catalog.text) END) \
                     FROM (SELECT * FROM pg_catalog.aclexplode(c.relacl) \
                           UNION ALL \
                           SELECT x.* FROM pg_catalog.pg_attribute att, pg_catalog.aclexplode(att.attacl) x \
                            WHERE att.attrelid OPERATOR(pg_catalog.=) c.oid AND att.attacl IS NOT NULL) a \
                    WHERE a.grantee OPERATOR(pg_catalog.<>) c.relowner \
                      AND (c.relkind = 'S' OR a.privilege_type IN ('TRIGGER', 'REFERENCES', 'TRUNCATE', 'MAINTAIN'))) \
                      AS grantees \
             FROM pg_catalog.pg_class c \
             LEFT JOIN LATERAL (SELECT p.polname FROM pg_catalog.pg_policy p \
                                 WHERE p.polrelid = c.oid AND p.polname = $2 OFFSET 0) p ON true \
             LEFT JOIN LATERAL (SELECT g.tgname, g.tgenabled, g.tgfoid FROM pg_catalog.pg_trigger g \
                                 WHERE g.tgrelid = c.oid AND g.tgname = 'tenancy_schema_guard' OFFSET 0) g ON true \
            WHERE c.relnamespace = $1 AND c.relkind IN ('r', 'p', 'v', 'S')"
    };
}
/// What is left to do, of the relations above.
macro_rules! with_work {
    () => {
        ") o WHERE grantees IS NOT NULL OR kind = 'v' AND NOT invoker \
                     OR kind IN ('r', 'p') AND NOT (pinned AND guarded)"
    };
}
const SCHEMA_OBJECTS: &str = concat!(schema_objects!(), with_work!());
/// The same among relations $3 (found by oid: no scan of pg_class).
const SCHEMA_OBJECTS_AMONG: &str =
    concat!(schema_objects!(), " AND c.oid = ANY ($3)", with_work!());

/// A relation of a tenant schema that isolate_schema() has work on.
struct SchemaObject {
    name: String,
    kind: String,
    /// Row-level security on, forced, and the pinned policy there.
    pinned: bool,
    /// The guard trigger there and enabled.
    guarded: bool,
    owner: pg_sys::Oid,
    /// A policy, a trigger of tenancy's names already there (dropped first).
    policy_named: bool,
    guard_named: bool,
    /// A view that runs with its caller's rights.
    invoker: bool,
    old_trigger: bool,
    /// Who else holds what must be the owner's only (PUBLIC or a quoted role).
    grantees: Vec<String>,
}

/// As each object's owner (the migration owner, for what migrations made):
/// row-level security pinned to the tenant on every table of its schema, a
/// statement guard that refuses every other tenant's writes before any
/// trigger of the migration fires, no privilege for others that reaches
/// beyond row-level security (TRIGGER, REFERENCES, TRUNCATE, MAINTAIN),
/// views run with the caller's rights, and sequences usable by their owner
/// only (identity columns need no privilege on theirs).
///
/// On Citus the guard trigger is declared safe for Citus.
///
/// `scope`: the relations to look at (those a migration made or changed);
/// None for every relation of the schema (a scan of pg_class, which grows
/// with the number of schemas: only on demand).
fn isolate_schema(id: Uuid, schema: &str, on_citus: bool, scope: Option<&[pg_sys::Oid]>) {
    if scope.is_some_and(|relations| relations.is_empty()) {
        return;
    }
    let namespace = relations::schema(schema).unwrap_or(pg_sys::InvalidOid);
    let read = |rows: pgrx::spi::SpiTupleTable| {
        rows.map(|row| {
            Ok(SchemaObject {
                name: row.get(1)?.unwrap_or_default(),
                kind: row.get(2)?.unwrap_or_default(),
                pinned: row.get(3)?.unwrap_or(false),
                guarded: row.get(4)?.unwrap_or(false),
                owner: row.get(5)?.unwrap_or(pg_sys::InvalidOid),
                policy_named: row.get(6)?.unwrap_or(false),
                guard_named: row.get(7)?.unwrap_or(false),
                invoker: row.get(8)?.unwrap_or(false),
                old_trigger: row.get(9)?.unwrap_or(false),
                grantees: row.get(10)?.unwrap_or_default(),
            })
        })
        .collect::<Result<Vec<_>, pgrx::spi::Error>>()
    };
    let objects = match scope {
        // What a migration made: kept, planned once (it runs for every schema).
        Some(relations) => query::kept(
            SCHEMA_OBJECTS_AMONG,
            &[
                PgOid::BuiltIn(PgBuiltInOids::OIDOID),
                PgOid::BuiltIn(PgBuiltInOids::TEXTOID),
                PgOid::BuiltIn(PgBuiltInOids::OIDARRAYOID),
            ],
            |client, statement| {
                let args = [namespace.into(), POLICY.into(), relations.to_vec().into()];
                read(client.select(statement, None, &args)?)
            },
        ),
        None => Spi::connect(|client| {
            read(client.select(SCHEMA_OBJECTS, None, &[namespace.into(), POLICY.into()])?)
        }),
    }
    .or_raise("reading the objects of a tenant schema");
    // No column in it: PostgreSQL evaluates it once per statement (a gating
    // "One-Time Filter"), without the sub-select that protect()'s policy
    // needs for that and that costs planning time (and Citus refuses).
    let check = format!("tenancy.current_tenant() = '{id}'::uuid");
    for object in objects {
        security::run_user_code(UserCode::of(object.owner), || {
            if on_citus {
                security::with_setting(c"citus.enable_unsafe_triggers", "on", || {
                    isolate_object(id, &object, &check)
                })
            } else {
                isolate_object(id, &object, &check)
            }
        });
    }
}

/// The privileges of a table that reach beyond row-level security.
#[cfg(any(feature = "pg17", feature = "pg18"))]
const BEYOND_RLS: &str = "TRIGGER, REFERENCES, TRUNCATE, MAINTAIN";
#[cfg(not(any(feature = "pg17", feature = "pg18")))]
const BEYOND_RLS: &str = "TRIGGER, REFERENCES, TRUNCATE";

fn isolate_object(id: Uuid, object: &SchemaObject, check: &str) {
    let name = &object.name;
    let grantees = object.grantees.join(", ");
    // One statement at a time: Citus propagates DDL statement by statement.
    let mut statements = Vec::new();
    match object.kind.as_str() {
        "S" => statements.push(format!("REVOKE ALL ON SEQUENCE {name} FROM {grantees}")),
        "v" if !object.invoker => {
            statements.push(format!("ALTER VIEW {name} SET (security_invoker = true)"))
        }
        "v" => {}
        _ => {
            if !object.pinned {
                statements.push(format!(
                    "ALTER TABLE {name} ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY"
                ));
                if object.policy_named {
                    statements.push(format!("DROP POLICY {POLICY} ON {name}"));
                }
                // The expression starts at the same offset whatever the
                // table's name (its length padded out): the stored policy is
                // then the same text on every table of the schema, and
                // verify() deparses it once per schema, not once per table.
                statements.push(format!(
                    "CREATE POLICY {POLICY} ON {name:<POLICY_TARGET_WIDTH$} AS PERMISSIVE FOR ALL \
                     TO PUBLIC USING ({check}) WITH CHECK ({check})"
                ));
            }
            if !object.guarded {
                if object.old_trigger {
                    statements.push(format!("DROP TRIGGER tenancy_no_truncate ON {name}"));
                }
                if object.guard_named {
                    statements.push(format!("DROP TRIGGER {GUARD} ON {name}"));
                }
                statements.push(format!(
                    "CREATE TRIGGER {GUARD} \
                     BEFORE INSERT OR UPDATE OR DELETE OR TRUNCATE ON {name} \
                     FOR EACH STATEMENT EXECUTE FUNCTION tenancy.schema_guard('{id}')"
                ));
            }
        }
    }
    if object.kind != "S" && !object.grantees.is_empty() {
        statements.push(format!("REVOKE {BEYOND_RLS} ON {name} FROM {grantees}"));
    }
    // The extension's own DDL: the event triggers' checks stand aside, as
    // for protect() (no code of another role runs in these statements).
    policies::without_auto_protect(|| statements.iter().for_each(|s| query::run(s)));
}

/// Statement trigger on every table of a tenant schema (argument: the
/// tenant's id): writes and TRUNCATE are refused in any other tenant's
/// context, or none, before the rows are touched and before any row trigger
/// of the migration sees them. Migrations may not add a statement trigger
/// that fires before it (see migrations.rs), so no code of the migration
/// author's runs before it decides.
///
/// Superusers are refused too: the table's triggers are the migration
/// author's code, which would run with superuser rights. (Migrations may not
/// make defaults, constraints, indexes or views that call the author's
/// functions: see migrations.rs.)
#[pg_trigger]
fn schema_guard<'a>(
    trigger: &'a pgrx::PgTrigger<'a>,
) -> Result<Option<PgHeapTuple<'a, AllocatedByPostgres>>, std::convert::Infallible> {
    let relation = trigger.relation().ok();
    let table = relation
        .as_ref()
        .map(|r| r.name().to_string())
        .unwrap_or_default();
    if security::is_superuser() {
        let relid = relation.map_or(pg_sys::InvalidOid, |r| r.oid());
        superuser_refused(&format!("write to table \"{table}\""), relid);
    }
    let pinned = trigger
        .extra_args()
        .ok()
        .and_then(|args| args.first().and_then(|a| Uuid::try_parse(a).ok()));
    let current = context::current().map(|t| t.id);
    if pinned.is_some() && current == pinned {
        return Ok(None);
    }
    PermissionDenied(
        format!("table \"{table}\" belongs to another tenant's schema"),
        "A tenant schema's tables can be changed only in that tenant's context \
         (tenancy.set_tenant()); other tenants' contexts read no row there either."
            .into(),
    )
    .raise()
}

/// Whether the statement about to be looked at is a superuser's (and not
/// one of the extension's own): the others are not looked at at all. Asked
/// by the hooks on every statement, outside any error guard.
pub(crate) fn superuser_statement() -> bool {
    !security::in_own_statements() && security::is_superuser_unguarded()
}

/// A superuser's statement, once its names are resolved and before it is
/// planned (or before each run of a cursor or a prepared statement): a
/// tenant schema's objects are the migration author's code, which
/// PostgreSQL evaluates for whoever uses them, while planning too. Refused
/// (42501): a statement naming a relation of a tenant schema, or a temporary
/// relation that a role without superuser rights created in this session
/// (code run under SET ROLE can leave one, named like a catalog view), and
/// any statement while a tenant schema is on search_path (its functions and
/// operators would be found, and an exact type match beats pg_catalog's).
/// The extension's own statements are not a caller's and pass. Reading and
/// working in a tenant schema is for a role without superuser rights: one
/// granted the migration owner's role, logged in on its own.
pub(crate) fn on_superuser_statement(relations: &[pg_sys::Oid], session_only: bool) {
    if session_only && relations.is_empty() {
        return;
    }
    // (SET search_path and RESET, the ways out, resolve no name.) A schema
    // that does not exist resolves nothing; one that only looks like a
    // tenant's is a schema like any other (no migration author's code).
    if !session_only && gucs::with_search_path(tenant_schema::mentions_tenant_schema) {
        let registered = |name: &[u8]| {
            tenant_schema::is_tenant_schema_name(name)
                && std::str::from_utf8(name).is_ok_and(catalog::is_registered_schema)
        };
        if let Some(schema) = gucs::schema_on_search_path(registered) {
            superuser_refused_statement(format!("tenant schema {schema} is on search_path"));
        }
    }
    for relid in relations {
        let Some((schema, temporary)) = relations::schema_of(*relid) else {
            continue;
        };
        // Reading a sequence runs no code (pg_dump reads each one's state).
        if tenant_schema::is_tenant_schema(&schema) && !relations::is_sequence(*relid) {
            superuser_refused_statement(format!("it names a relation of tenant schema {schema}"));
        }
        if temporary && !security::role_is_superuser(relations::owner(*relid)) {
            superuser_refused_statement(format!(
                "it names temporary relation {} of role {}, not a superuser",
                relations::name(*relid),
                security::role_name(relations::owner(*relid))
            ));
        }
    }
}

/// Whether a function is a tenant schema's (or the migrations' trial
/// schema's): the migration author's code, which PostgreSQL runs for whoever
/// uses it — the application in every tenant's request, through an
/// aggregate or an operator that outmatches pg_catalog's too. Each call runs
/// as a security-restricted operation (postgres/functions.rs): it cannot
/// choose another tenant (set_tenant refuses), change a role, leave
/// temporary objects, held cursors or settings behind.
pub(crate) fn is_tenant_schema_function(function: pg_sys::Oid) -> bool {
    crate::postgres::functions::schema_name_is(function, |schema| {
        tenant_schema::is_tenant_schema_name(schema)
            || schema == migrations::TRIAL_SCHEMA.as_bytes()
    })
}

/// A tenant schema's function (running restricted, as whoever called it)
/// runs a statement that would leave something behind: a function of the
/// caller's that the author could call later with the caller's rights, a
/// grant, a default privilege. Its calls may read and write data, nothing
/// more. (A migration's own calls run as the migration owner, and what they
/// make is checked like the rest of the migration.)
pub(crate) fn on_restricted_utility(command: &str) {
    if migrations::in_migration() {
        return;
    }
    ForbiddenObject(
        format!("a tenant schema's function may not run {command}"),
        "Its calls run as whoever calls it (the application, in every tenant's request): what it \
         made would be theirs and outlive the call. Make objects in a migration instead."
            .into(),
    )
    .raise();
}

/// A superuser calls a tenant schema's function (directly, or through an
/// operator, a view or a shared table's expression): refused like a
/// statement naming its relations.
pub(crate) fn on_superuser_call(function: pg_sys::Oid) {
    superuser_refused_statement(format!(
        "it calls {}, a tenant schema's function",
        crate::postgres::functions::name(function)
    ));
}

fn superuser_refused_statement(why: String) -> ! {
    PermissionDenied(
        format!("a superuser's statement is refused: {why}"),
        "A tenant schema's objects (views, indexes, constraints, triggers, functions) are the \
         migration author's code, which PostgreSQL runs for whoever uses them: work there as a \
         role without superuser rights that is granted the migration owner's role, logged in on \
         its own (not SET ROLE in a superuser's session, where that code could leave settings, \
         temporary objects or cursors behind). RESET search_path, or start a new session."
            .into(),
    )
    .raise()
}

fn superuser_refused(what: &str, relid: pg_sys::Oid) -> ! {
    PermissionDenied(
        format!(
            "superuser \"{}\" may not {what} of a tenant's schema",
            security::current_role_name()
        ),
        format!(
            "Its triggers are the migration author's code, which would run with superuser \
             rights. Work there as a role without superuser rights that is granted {}, logged \
             in on its own (not SET ROLE in a superuser's session), in the tenant's context \
             (tenancy.set_tenant()); to load data, pg_restore --disable-triggers.",
            spi::quote_identifier(security::role_name(relations::owner(relid)))
        ),
    )
    .raise()
}

/// Before `LOCK TABLE`: a tenant schema's tables may be locked only in that
/// tenant's context (superusers excepted). Row-level security keeps other
/// tenants' rows out of reach, but not their locks: an ACCESS EXCLUSIVE lock
/// taken from another tenant's context would stall the victim and migrate().
/// LOCK also locks a view's tables and a table's inheritance children, so
/// those are checked as well; REINDEX, CLUSTER, VACUUM and ANALYZE of named
/// relations lock them too (a role with MAINTAIN may run them).
pub(crate) fn on_lock(named: &[pg_sys::Oid]) {
    if security::is_superuser() || named.is_empty() {
        return;
    }
    let own = context::current().and_then(|tenant| tenant.schema.clone());
    let locked: Vec<(String, String)> = security::pinned(|| {
        Spi::connect(|client| {
            client
                .select(
                    "WITH RECURSIVE locked(relid) AS ( \
                         SELECT pg_catalog.unnest($1::pg_catalog.oid[]) \
                         UNION \
                         SELECT under.relid FROM locked, LATERAL ( \
                             SELECT d.refobjid FROM pg_catalog.pg_rewrite w \
                               JOIN pg_catalog.pg_depend d \
                                 ON d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_rewrite'::pg_catalog.regclass \
                                AND d.objid OPERATOR(pg_catalog.=) w.oid \
                                AND d.refclassid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass \
                              WHERE w.ev_class OPERATOR(pg_catalog.=) locked.relid \
                                AND d.refobjid OPERATOR(pg_catalog.<>) locked.relid \
                             UNION ALL \
                             SELECT i.inhrelid FROM pg_catalog.pg_inherits i \
                              WHERE i.inhparent OPERATOR(pg_catalog.=) locked.relid) AS under(relid)) \
                     SELECT n.nspname::pg_catalog.text, c.oid::pg_catalog.regclass::pg_catalog.text \
                       FROM locked JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) locked.relid \
                       JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace",
                    None,
                    &[named.to_vec().into()],
                )?
                .map(|row| Ok((query::required(&row, 1)?, query::required(&row, 2)?)))
                .collect::<Result<_, query::ReadError>>()
        })
    })
    .or_raise("finding the relations LOCK would lock");
    for (schema, name) in locked {
        if tenant_schema::is_tenant_schema(&schema) && own.as_deref() != Some(schema.as_str()) {
            PermissionDenied(
                format!("cannot lock table {name}: it belongs to another tenant's schema"),
                "A tenant schema's tables can be locked only in that tenant's context \
                 (tenancy.set_tenant()), also through a view or an inheritance parent, and by \
                 REINDEX, CLUSTER, VACUUM and ANALYZE; row-level security hides other tenants' \
                 rows, and their locks are refused too."
                    .into(),
            )
            .raise();
        }
    }
}
