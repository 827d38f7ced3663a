//! The migration registry of schema tenants and how one script runs: a
//! migration is tried on the whole history in a scratch schema before it is
//! recorded, runs as the migration owner in a security-restricted operation,
//! and may not leave behind what would run with the owner's rights or let
//! other tenants in. Applying them to tenant schemas is schemas.rs.

use crate::api::{audit, citus, context, roles};
use crate::catalog;
use crate::error::OrRaise;
use crate::error::{required, TenancyError::*};
use crate::postgres::objects::{self, Kind, Location, Placement};
use crate::postgres::{query, relations, security};
use pgrx::prelude::*;
use pgrx::{PgBuiltInOids, PgOid};
use serde_json::json;
use uuid::Uuid;

/// Where a migration is tried before it is recorded.
pub(crate) const TRIAL_SCHEMA: &str = "tenancy_migration_check";

/// The migration name rule (also the catalog's migrations_name_format).
pub(crate) fn name_is_valid(name: &str) -> bool {
    (1..=128).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
}

/// Record a migration (a DDL script for every tenant schema) after trying it,
/// with the whole history, in a scratch schema that is dropped again. The
/// `add_migration` procedure calls this, commits, then migrates every schema.
#[pg_extern(volatile, parallel_unsafe, requires = ["catalog"])]
fn record_migration(name: Option<&str>, sql: Option<&str>) {
    let name = required(name, "name");
    let sql = required(sql, "sql");
    if !name_is_valid(name) {
        InvalidValue(
            format!("invalid migration name \"{name}\""),
            "A migration name has 1 to 128 characters: letters, digits, '_', '.' and '-' \
             (e.g. '0001-create-orders')."
                .into(),
        )
        .raise();
    }
    if sql.trim().is_empty() {
        InvalidValue(
            "a migration needs SQL".into(),
            "Pass the DDL script to apply in every tenant schema.".into(),
        )
        .raise();
    }
    let role = security::current_role_name();
    catalog::as_owner(|| {
        // One recorder at a time: ordinals stay dense and the dry run's schema is ours.
        query::run("LOCK TABLE tenancy.migrations IN SHARE ROW EXCLUSIVE MODE");
        let exists = Spi::get_one_with_args::<bool>(
            "SELECT EXISTS (SELECT FROM tenancy.migrations WHERE name = $1)",
            &[name.into()],
        )
        .or_raise("looking up the migration")
        .unwrap_or(false);
        if exists {
            DuplicateMigration(name.into()).raise();
        }
        // Dry run: the history plus the new script in a scratch schema, as the
        // migration owner, with the same checks as in a tenant's schema.
        let owner = roles::migration_owner();
        let scratch = TRIAL_SCHEMA;
        security::quietly(|| {
            query::run(&format!("DROP SCHEMA IF EXISTS {scratch} CASCADE"));
            citus::without_schema_sharding(|| {
                query::run(&format!(
                    "CREATE SCHEMA {scratch} AUTHORIZATION {}",
                    spi::quote_identifier(security::role_name(owner))
                ))
            });
        });
        run_scripts(owner, scratch, None, &pending(None));
        run_scripts(owner, scratch, None, &[(name.to_owned(), sql.to_owned())]);
        security::quietly(|| query::run(&format!("DROP SCHEMA {scratch} CASCADE")));
        Spi::run_with_args(
            "INSERT INTO tenancy.migrations (name, ordinal, sql) \
             SELECT $1, coalesce(max(ordinal), 0) + 1, $2 FROM tenancy.migrations",
            &[name.into(), sql.into()],
        )
        .or_raise("recording the migration");
        audit::record(&role, "migration", None, json!({"name": name}));
    })
}

/// First statement of migrate() and add_migration(): they commit as they go,
/// which PostgreSQL allows only when CALLed outside a transaction block.
#[pg_extern(volatile, parallel_unsafe)]
fn check_autocommit(procedure: &str) {
    if security::in_transaction_block() {
        InTransactionBlock(format!("tenancy.{procedure}()")).raise();
    }
}

/// Retire a migration: no schema applies it from now on (those that did keep
/// what it made). The way out of a migration that can never apply, which would
/// block every new schema tenant: retire it and add a corrected one.
#[pg_extern(volatile, parallel_unsafe, requires = ["catalog"])]
fn retire_migration(name: Option<&str>) {
    let name = required(name, "name");
    let role = security::current_role_name();
    catalog::as_owner(|| {
        if !catalog::retire("migrations", "name", name) {
            UndefinedObject(
                format!("migration {name:?} does not exist"),
                "List the migrations with SELECT name, retired_at FROM tenancy.migrations.".into(),
            )
            .raise();
        }
        audit::record(
            &role,
            "migration",
            None,
            json!({"name": name, "event": "retired"}),
        );
    })
}

/// Migrations in order; with a tenant, only those it has not applied.
/// (Kept: every registration and every schema of migrate() asks.)
pub(crate) fn pending(tenant: Option<pgrx::Uuid>) -> Vec<(String, String)> {
    query::kept(
        "SELECT m.name, m.sql FROM tenancy.migrations m \
         WHERE m.retired_at IS NULL AND ($1::uuid IS NULL OR NOT EXISTS (SELECT FROM tenancy.schema_migrations s \
                                               WHERE s.tenant_id = $1 AND s.migration = m.name)) \
         ORDER BY m.ordinal",
        &[PgOid::BuiltIn(PgBuiltInOids::UUIDOID)],
        |client, statement| {
            Ok(client
                .select(statement, None, &[tenant.into()])?
                .map(|row| Ok((query::required(&row, 1)?, query::required(&row, 2)?)))
                .collect::<Result<Vec<_>, query::ReadError>>())
        },
    )
    .map_err(query::ReadError::from)
    .and_then(|rows| rows)
    .or_raise("listing the tenant's pending migrations")
}

/// What a migration may not create or change in a tenant schema (the first
/// found, described), given what it created or changed: $1 functions, $2
/// relations created, $3 triggers, $4 relations created or altered, $5 rules,
/// $6 policies, $7/$8 every object (catalog, oid), $9 the migrated schema.
/// (Column defaults are reported on their table: `made` adds them.)
///
/// The last check: an index (its expressions and predicate), a column default
/// or generated column, a constraint (of a table or a domain), a policy, a
/// view or a partition key that calls a function that runs code no superuser
/// wrote, or that only some roles may run, or that acts beyond its result:
/// another role's, one PUBLIC may not execute, a volatile one other than a
/// random id or the time (set_config, pg_notify, tenancy.set_tenant_jwt, …),
/// or one of PostgreSQL's that run SQL given as text (tenancy.calls_forbidden).
/// And procedures: a CALL could commit in the middle of the caller's work. PostgreSQL evaluates these as whoever uses the table,
/// and an immutable one already while planning a query on it: a superuser's
/// SELECT would run the migration author's code, and a policy's would run as
/// every tenant's requests. (Functions and triggers are left out: functions
/// run when called by name, and the guard refuses a superuser's writes
/// before any trigger. A function a superuser made may be called from
/// anywhere.)
///
/// Every catalog row is reached from what was made, through an index, by
/// correlated sub-selects and LATERAL ones the planner cannot turn into
/// joins: no scan of pg_depend, pg_namespace or pg_attrdef, which grow with
/// every tenant schema (a hash join over pg_depend cost more than the DDL it
/// checked), so that the check costs the same at 10,000 schemas as at 10.
/// And expressions_of() is called only for the classes whose objects hold
/// expressions (a migration's types and sequences have none).
const FORBIDDEN: &str = "WITH made(classid, objid) AS ( \
            SELECT * FROM unnest($7::oid[], $8::oid[]) \
            UNION ALL \
            SELECT 'pg_attrdef'::regclass, unnest(ARRAY(SELECT d.oid FROM pg_attrdef d \
                                                          WHERE d.adrelid = r.relid)) \
              FROM unnest($4::oid[]) r(relid)), \
        deps AS ( \
            SELECT o.classid, o.objid, d.objsubid, d.refclassid, d.refobjid, d.refobjsubid, d.deptype \
              FROM made o, LATERAL (SELECT * FROM pg_depend d \
                                     WHERE d.classid = o.classid AND d.objid = o.objid OFFSET 0) d) \
        SELECT coalesce( \
                (SELECT format('function %s is SECURITY DEFINER', p.oid::regprocedure) \
                   FROM pg_proc p WHERE p.oid = ANY ($1) AND p.prosecdef LIMIT 1), \
                (SELECT format('%s is a materialized view', c.oid::regclass) \
                   FROM pg_class c WHERE c.oid = ANY ($2) AND c.relkind = 'm' LIMIT 1), \
                (SELECT format('trigger %I on %s calls SECURITY DEFINER function %s', \
                               t.tgname, t.tgrelid::regclass, p.oid::regprocedure) \
                   FROM pg_trigger t JOIN pg_proc p ON p.oid = t.tgfoid \
                  WHERE t.oid = ANY ($3) AND p.prosecdef LIMIT 1), \
                (SELECT format('column %I of %s takes its default from a sequence', \
                               a.attname, d.adrelid::regclass) \
                   FROM made o JOIN pg_attrdef d ON d.oid = o.objid \
                   JOIN pg_attribute a ON a.attrelid = d.adrelid AND a.attnum = d.adnum \
                  WHERE o.classid = 'pg_attrdef'::regclass \
                    AND pg_get_expr(d.adbin, d.adrelid) LIKE 'nextval(%' LIMIT 1), \
                (SELECT format('statement trigger %I on %s would fire before tenancy_schema_guard, or replace it', \
                               t.tgname, t.tgrelid::regclass) \
                   FROM pg_trigger t \
                  WHERE t.oid = ANY ($3) AND t.tgtype::int & 3 = 2 \
                    AND t.tgname <= 'tenancy_schema_guard' COLLATE \"C\" LIMIT 1), \
                (SELECT format('trigger %I on view %s runs instead of its writes, before any guard', \
                               t.tgname, t.tgrelid::regclass) \
                   FROM pg_trigger t WHERE t.oid = ANY ($3) \
                    AND (SELECT c.relkind FROM pg_class c WHERE c.oid = t.tgrelid) = 'v' LIMIT 1), \
                (SELECT format('trigger %I on %s fires in replication (ENABLE %s)', t.tgname, \
                               t.tgrelid::regclass, CASE t.tgenabled WHEN 'A' THEN 'ALWAYS' ELSE 'REPLICA' END) \
                   FROM pg_trigger t WHERE t.oid = ANY ($3) AND t.tgenabled IN ('A', 'R') LIMIT 1), \
                (SELECT format('rule %I on %s rewrites its writes', r.rulename, r.ev_class::regclass) \
                   FROM pg_rewrite r WHERE r.oid = ANY ($5) AND r.ev_type <> '1' LIMIT 1), \
                (SELECT format('policy %I on %s is permissive, or is tenancy''s own', p.polname, p.polrelid::regclass) \
                   FROM pg_policy p WHERE p.oid = ANY ($6) \
                    AND (p.polpermissive OR p.polname = 'tenancy_schema_isolation') LIMIT 1), \
                (SELECT format('%s depends on %s, in another tenant''s schema', \
                               pg_describe_object(d.classid, d.objid, d.objsubid), \
                               pg_describe_object(d.refclassid, d.refobjid, d.refobjsubid)) \
                   FROM deps d, \
                   LATERAL (SELECT CASE d.refclassid \
                        WHEN 'pg_class'::regclass THEN (SELECT relnamespace FROM pg_class WHERE oid = d.refobjid) \
                        WHEN 'pg_proc'::regclass THEN (SELECT pronamespace FROM pg_proc WHERE oid = d.refobjid) \
                        WHEN 'pg_type'::regclass THEN (SELECT typnamespace FROM pg_type WHERE oid = d.refobjid) \
                        WHEN 'pg_operator'::regclass THEN (SELECT oprnamespace FROM pg_operator WHERE oid = d.refobjid) \
                        WHEN 'pg_namespace'::regclass THEN d.refobjid END) r(namespace) \
                  WHERE r.namespace <> $9 \
                    AND (SELECT nspname FROM pg_namespace WHERE oid = r.namespace) ~ '^tenant_[0-9a-f]{32}$' \
                  LIMIT 1), \
                (SELECT format('%s calls %s, which runs code no superuser wrote: PostgreSQL runs it \
                                when anyone (a superuser too) plans or runs a query on the table', \
                               pg_describe_object(d.classid, d.objid, d.objsubid), \
                               pg_describe_object(d.refclassid, d.refobjid, 0)) \
                   FROM deps d, \
                   LATERAL (SELECT CASE d.refclassid WHEN 'pg_proc'::regclass THEN d.refobjid \
                                WHEN 'pg_operator'::regclass \
                                THEN (SELECT oprcode::oid FROM pg_operator WHERE oid = d.refobjid) END) c(fn), \
                   LATERAL (SELECT * FROM pg_proc f WHERE f.oid = c.fn OFFSET 0) f \
                  WHERE d.classid NOT IN ('pg_proc'::regclass, 'pg_trigger'::regclass) AND d.deptype = 'n' \
                    AND (NOT EXISTS (SELECT FROM pg_roles r WHERE r.oid = f.proowner AND r.rolsuper) \
                         OR NOT has_function_privilege('public', f.oid, 'EXECUTE') \
                         OR (f.provolatile = 'v' AND NOT tenancy.volatile_but_harmless(f.oid))) \
                  LIMIT 1), \
                (SELECT format('%s is a procedure: a CALL could commit or roll back in the middle of \
                                the caller''s work (use a function)', p.oid::regprocedure) \
                   FROM pg_proc p WHERE p.oid = ANY ($1) AND p.prokind = 'p' LIMIT 1), \
                (SELECT format('%s calls one of PostgreSQL''s functions that run SQL given as text, \
                                or that only some roles may run, as whoever queries the table', \
                               pg_describe_object(o.classid, o.objid, 0)) \
                   FROM made o \
                  WHERE o.classid IN ('pg_class'::regclass, 'pg_attrdef'::regclass, 'pg_constraint'::regclass, \
                                      'pg_policy'::regclass, 'pg_rewrite'::regclass, 'pg_statistic_ext'::regclass) \
                    AND tenancy.calls_forbidden(tenancy.expressions_of(o.classid, o.objid)) \
                  LIMIT 1))";
const OIDS: PgOid = PgOid::BuiltIn(PgBuiltInOids::OIDARRAYOID);
const OID: PgOid = PgOid::BuiltIn(PgBuiltInOids::OIDOID);

/// Run migration scripts in order, each as the migration owner in a
/// security-restricted operation, with the schema first on search_path
/// (pg_catalog is implicit, pg_temp last; shared objects must be
/// schema-qualified) and, in a tenant's schema, the tenant as the context (so
/// seed rows pass its pinned policy). Refuse a script that created, changed
/// or dropped anything outside that schema (the migration owner owns every
/// tenant schema: a script must not reach the others), at once; then,
/// checked once for all of them (a schema tenant replays the whole history),
/// what they left that would run with the owner's rights or let other
/// tenants in. Returns the relations of the schema that the scripts created
/// or changed, or whose triggers, policies or rules they did: the ones to pin
/// to the tenant again.
///
/// Only what the scripts changed is looked at, never the whole catalog: the
/// cost of a migration in one schema does not grow with the number of schemas.
/// But a GRANT changes no object that PostgreSQL reports: after one, every
/// relation of the schema is to be pinned again (None), so that no privilege
/// granted on a table pinned before outlives the migration.
pub(crate) fn run_scripts(
    owner: pg_sys::Oid,
    schema: &str,
    tenant: Option<Uuid>,
    scripts: &[(String, String)],
) -> Option<Vec<pg_sys::Oid>> {
    GRANTED.set(false);
    let mut changes = Vec::new();
    for (name, script) in scripts {
        changes.extend(run_one(owner, schema, tenant, name, script));
    }
    if !changes.is_empty() {
        let names = match scripts {
            [(name, _)] => format!("migration {name} creates"),
            _ => format!(
                "migrations {} create",
                scripts
                    .iter()
                    .map(|(name, _)| name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        };
        refuse_forbidden(&changes, relations::schema(schema), &names);
    }
    (!GRANTED.replace(false)).then(|| touched_by(&changes))
}

fn run_one(
    owner: pg_sys::Oid,
    schema: &str,
    tenant: Option<Uuid>,
    name: &str,
    script: &str,
) -> Vec<objects::Change> {
    let path = format!("{}, pg_temp", spi::quote_identifier(schema));
    let code = security::UserCode {
        search_path: &path,
        ..security::UserCode::of(owner)
    };
    let ((), changes) = objects::watch(|| {
        migrating(schema, || {
            security::run_user_code(code, || {
                let apply =
                    || Spi::run(script).or_raise(&format!("migration {name} in schema {schema}"));
                match tenant {
                    Some(id) => context::acting_for(id, apply),
                    None => apply(),
                }
            })
        })
    });
    let own = relations::schema(schema);
    let inside = |location: Location| match location.placement {
        Placement::Schema(oid) => Some(oid) == own || oid == pg_sys::PG_TOAST_NAMESPACE.into(),
        Placement::Internal | Placement::Gone => true,
        Placement::Global => false,
    };
    let outside = changes.iter().find(|change| {
        !inside(change.after)
            || change
                .before
                .as_ref()
                .is_some_and(|(before, _)| !inside(*before))
    });
    if let Some(change) = outside {
        let verb = match change.kind {
            Kind::Created => "creates",
            Kind::Altered => "changes",
            Kind::Dropped => "drops",
        };
        ForbiddenObject(
            format!(
                "migration {name} {verb} {} outside the schema it migrates",
                change.description()
            ),
            "A migration runs once in every tenant schema and may create, change and drop \
             objects only there (the migration owner owns every tenant schema, so it must not \
             reach the others). Shared objects are an administrator's: create them outside \
             tenancy's migrations, and name them schema-qualified in the migration."
                .into(),
        )
        .raise();
    }
    changes
}

/// Refuse what the migrations `names` made or changed in the schema `own`
/// that a tenant schema must not hold: one query over all of them (the end
/// state is what other tenants' requests meet).
fn refuse_forbidden(changes: &[objects::Change], own: Option<pg_sys::Oid>, names: &str) {
    let of = |class: pg_sys::Oid, kinds: &[Kind]| -> Vec<pg_sys::Oid> {
        changes
            .iter()
            .filter(|c| c.class == class && kinds.contains(&c.kind))
            .map(|c| c.object)
            .collect()
    };
    let made = [Kind::Created, Kind::Altered];
    let (classes, objects): (Vec<pg_sys::Oid>, Vec<pg_sys::Oid>) = changes
        .iter()
        .filter(|c| made.contains(&c.kind))
        .map(|c| (c.class, c.object))
        .unzip();
    let forbidden = if classes.is_empty() {
        None
    } else {
        let args = [
            of(pg_sys::ProcedureRelationId, &made).into(),
            of(pg_sys::RelationRelationId, &[Kind::Created]).into(),
            of(pg_sys::TriggerRelationId, &made).into(),
            // Column defaults come with their table's creation or change.
            of(pg_sys::RelationRelationId, &made).into(),
            of(objects::REWRITE, &made).into(),
            of(objects::POLICY, &made).into(),
            classes.into(),
            objects.into(),
            own.unwrap_or(pg_sys::InvalidOid).into(),
        ];
        query::kept_one::<String>(
            FORBIDDEN,
            &[OIDS, OIDS, OIDS, OIDS, OIDS, OIDS, OIDS, OIDS, OID],
            &args,
        )
        .or_raise("checking what the migration created")
    };
    if let Some(first) = forbidden {
        ForbiddenObject(
            format!("{names} what a tenant schema must not hold: {first}"),
            "In a tenant schema, SECURITY DEFINER functions (also as triggers) and materialized \
             views would run or store with the migration owner's rights for every caller, and a \
             sequence default needs a sequence privilege that would let other tenants read and \
             advance it: use SECURITY INVOKER functions, views, and identity columns \
             (GENERATED BY DEFAULT AS IDENTITY) instead of serial. Statement triggers must sort \
             after tenancy_schema_guard (which decides who may write), rules may not rewrite \
             writes, triggers fire in normal operation only, row-level security is tenancy's \
             (restrictive policies may be added), and nothing may refer to another tenant's schema."
                .into(),
        )
        .raise();
    }
}

/// The relations of the schema that the changes created or changed, or
/// whose triggers, policies or rules they did: the ones to pin again.
fn touched_by(changes: &[objects::Change]) -> Vec<pg_sys::Oid> {
    let mut touched: Vec<pg_sys::Oid> = changes
        .iter()
        .flat_map(|c| {
            [
                c.after.relation,
                c.before.as_ref().and_then(|(b, _)| b.relation),
            ]
        })
        .flatten()
        .collect();
    touched.sort_unstable_by_key(|relation| relation.to_u32());
    touched.dedup();
    touched
}

thread_local! {
    /// The schema a migration script is running in (see `on_grant`).
    static MIGRATING: std::cell::RefCell<Option<String>> = const { std::cell::RefCell::new(None) };
    /// Whether the scripts `run_scripts` runs granted or revoked privileges.
    static GRANTED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

fn migrating<R>(schema: &str, f: impl FnOnce() -> R) -> R {
    struct Stop;
    impl Drop for Stop {
        fn drop(&mut self) {
            MIGRATING.set(None);
        }
    }
    MIGRATING.set(Some(schema.to_owned()));
    let _stop = Stop;
    f()
}

/// Whether a migration script is running (as the migration owner).
pub(crate) fn in_migration() -> bool {
    MIGRATING.with_borrow(Option::is_some)
}

/// Before GRANT or REVOKE: a migration script may grant only on objects of
/// the schema it migrates (PostgreSQL reports no privilege change to the
/// object access hook that watches the rest). Granting on another tenant's
/// schema (CREATE on it, a sequence there) would let roles into it. What it
/// grants on its own schema's relations is taken back where it reaches
/// beyond row-level security, when the schema is pinned again (every
/// relation of it, see `run_scripts`).
pub(crate) fn on_grant(schemas: &[Option<String>], global: bool, on_schema: bool) {
    MIGRATING.with_borrow(|migrating| {
        let Some(own) = migrating else { return };
        // Every tenant's schema runs the same migration: CREATE granted on
        // its own schema would let a role add objects to every tenant's.
        if on_schema {
            ForbiddenObject(
                "a migration may not grant or revoke privileges on a schema, its own included"
                    .into(),
                "tenancy keeps a tenant schema's privileges: USAGE for every role (row-level \
                 security and the tables' own grants decide the rest), CREATE for the migration \
                 owner alone. Grant on the objects the migration creates instead."
                    .into(),
            )
            .raise();
        }
        if global || schemas.iter().flatten().any(|schema| schema != own) {
            ForbiddenObject(
                "a migration may grant and revoke privileges only on objects of the schema it migrates"
                    .into(),
                "Name the objects unqualified (the migrated schema comes first on search_path); \
                 privileges on shared objects, databases and roles are an administrator's, \
                 outside tenancy's migrations."
                    .into(),
            )
            .raise();
        }
        GRANTED.set(true);
    });
}
