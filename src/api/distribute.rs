//! Making a Citus cluster one for tenancy, for superusers on the
//! coordinator: the catalog as reference tables and the cluster key on every
//! worker (`distribute()`), protected tables distributed by their tenant
//! column (`distribute_table()`), and the placements verify() checks. How
//! the context reaches the workers is citus.rs.

use crate::api::citus::active;
use crate::api::{audit, policies};
use crate::catalog;
use crate::error::OrRaise;
use crate::error::TenancyError::*;
use crate::postgres::security;
use pgrx::prelude::*;
use serde_json::json;

/// Make this Citus cluster one for tenancy (superusers, on the coordinator):
/// the tenant catalog, configuration and migrations become reference tables
/// (the same rows on every node), and every worker gets the coordinator's
/// cluster key. Idempotent.
#[pg_extern(volatile, parallel_unsafe, requires = ["catalog"])]
fn distribute() {
    if !security::is_superuser() {
        PermissionDenied(
            "only a superuser can distribute the tenancy catalog".into(),
            "It changes the catalog on every node of the cluster.".into(),
        )
        .raise();
    }
    if !active() {
        NotConfigured(
            "Citus is not installed in this database".into(),
            "Preload citus and CREATE EXTENSION citus first.".into(),
        )
        .raise();
    }
    let role = security::current_role_name();
    // Citus converts tables of the catalog (and those their foreign keys
    // reach) with DDL that auto-protect must not act on.
    policies::without_auto_protect(|| {
        catalog::as_owner(|| {
            // In foreign-key order; the catalog's triggers only invalidate
            // caches; the tables exist on the workers already (CREATE EXTENSION
            // was propagated), so no local table may be converted on the way.
            security::with_setting(
                c"citus.enable_local_reference_table_foreign_keys",
                "off",
                || {
                    security::with_setting(c"citus.enable_unsafe_triggers", "on", || {
                        for table in [
                            "tenants",
                            "config_defaults",
                            "tenant_config",
                            "migrations",
                            "schema_migrations",
                        ] {
                            Spi::run(&format!(
                    "SELECT pg_catalog.create_reference_table('tenancy.{table}') \
                     WHERE NOT EXISTS (SELECT FROM pg_catalog.pg_dist_partition \
                                       WHERE logicalrelid = 'tenancy.{table}'::pg_catalog.regclass)"
                ))
                            .or_raise(&format!("making tenancy.{table} a reference table"));
                        }
                    })
                },
            );
            // The key travels as a literal over Citus' connections as this
            // superuser: only superusers can see that statement's text.
            Spi::run(
                "SELECT pg_catalog.run_command_on_workers(pg_catalog.format( \
                 'UPDATE tenancy.cluster_key SET key = %L::bytea', key)) FROM tenancy.cluster_key",
            )
            .or_raise("sending the cluster key to the workers");
            let _ = audit::record(&role, "distribute", None, json!({}));
        })
    });
}

/// Distribute a protected table by its tenant column, or make it a
/// reference table (Citus refuses to distribute a table with triggers, and
/// policies with a sub-select): its protection is lifted, the table
/// distributed as the caller (who must own it, as Citus requires) and
/// protected again, in one transaction.
#[pg_extern(volatile, parallel_unsafe, requires = ["catalog"])]
fn distribute_table(
    tbl: Option<pgrx::PgRelation>,
    colocate_with: default!(Option<&str>, "'default'"),
    reference: default!(Option<bool>, false),
) {
    // The relation is let go at once: it is altered below.
    let relid = crate::error::required(tbl, "tbl").oid();
    let colocate_with = crate::error::required(colocate_with, "colocate_with");
    let reference = crate::error::required(reference, "reference");
    // Its owner (Citus requires the caller to own the table), or an
    // administrator who does: the table's protection is lifted and restored
    // in this one call, never left off.
    let owner = crate::postgres::relations::owner(relid);
    if !security::has_privileges_of(owner) && !security::may_read(catalog::tenants_relation()) {
        PermissionDenied(
            "only the table's owner or an administrator can distribute it".into(),
            "Call it as the table's owner (Citus requires the caller to own it), or as a \
             role given tenancy.grant_admin() that does."
                .into(),
        )
        .raise();
    }
    if !active() {
        NotConfigured(
            "Citus is not installed in this database".into(),
            "Preload citus and CREATE EXTENSION citus first.".into(),
        )
        .raise();
    }
    let column = catalog::as_owner(|| policies::protected_column(relid))
        .unwrap_or_else(|| "tenant_id".into());
    // Citus creates the shards over connections to the workers as the
    // table's owner: one that cannot log in fails there, with a connection
    // error that names neither the table nor what to do.
    let (table, owner, can_login) = security::pinned(|| {
        Spi::get_three_with_args::<String, String, bool>(
            "SELECT pg_catalog.quote_ident(n.nspname) OPERATOR(pg_catalog.||) '.' \
                    OPERATOR(pg_catalog.||) pg_catalog.quote_ident(c.relname), \
                    r.rolname::text, r.rolcanlogin \
             FROM pg_catalog.pg_class c \
             JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace \
             JOIN pg_catalog.pg_roles r ON r.oid OPERATOR(pg_catalog.=) c.relowner \
             WHERE c.oid OPERATOR(pg_catalog.=) $1",
            &[relid.into()],
        )
    })
    .or_raise("reading the table's owner");
    let (table, owner) = (table.unwrap_or_default(), owner.unwrap_or_default());
    if can_login == Some(false) {
        NotConfigured(
            format!(
                "Citus creates the shards of {table} on the workers as its owner, {owner}, \
                 which cannot log in"
            ),
            format!(
                "Let {owner} log in to every node from the coordinator (ALTER ROLE {owner} \
                 LOGIN, and a password the coordinator's connections use), or make a role \
                 that can log in the table's owner."
            ),
        )
        .raise();
    }
    let role = security::current_role_name();
    policies::unprotect_tree(relid, &role);
    if !reference {
        // Citus does not let a distribution column's default change once
        // the table is distributed, but keeps one set before: inserts then
        // need not name their tenant (the coordinator evaluates the default
        // to route the row, WITH CHECK still refuses another tenant's).
        policies::without_auto_protect(|| {
            security::pinned(|| {
                Spi::run(&format!(
                    "ALTER TABLE {table} ALTER COLUMN {} SET DEFAULT tenancy.current_tenant()",
                    pgrx::spi::quote_identifier(&column)
                ))
            })
        })
        .or_raise("setting the tenant column's default");
    }
    let distribute = if reference {
        Spi::run_with_args(
            "SELECT pg_catalog.create_reference_table($1)",
            &[relid.into()],
        )
    } else {
        Spi::run_with_args(
            "SELECT pg_catalog.create_distributed_table($1, $2, colocate_with => $3)",
            &[relid.into(), column.as_str().into(), colocate_with.into()],
        )
    };
    distribute.or_raise("distributing the table");
    policies::protect_tree(relid, &column, &role, false);
}

/// For verify(): shard placements of protected Citus tables whose
/// row-level security is not what protect() made (a shard created by a
/// rebalance, a split or isolate_tenant_to_new_shard, or changed on a worker).
#[pg_extern(volatile, parallel_unsafe, requires = ["catalog"])]
fn citus_placement_problems() -> TableIterator<
    'static,
    (
        name!(severity, String),
        name!(object, String),
        name!(problem, String),
        name!(fix, String),
    ),
> {
    if !active() {
        return TableIterator::new(Vec::new());
    }
    let rows: Vec<(String, String, String, String)> = catalog::as_owner(|| {
        Spi::connect(|client| {
            client
                .select(
                    "SELECT 'error', pg_catalog.format('shard %s of %s on %s:%s', r.shardid, p.relid, r.nodename, r.nodeport), \
                            pg_catalog.format('shard placement without the row-level security of its table (%s)', r.result), \
                            pg_catalog.format('SELECT tenancy.protect(%L, %L);', p.relid::text, p.tenant_column) \
                     FROM tenancy.protected_tables p \
                     JOIN pg_catalog.pg_dist_partition d ON d.logicalrelid = p.relid::oid \
                     CROSS JOIN LATERAL pg_catalog.run_command_on_placements(p.relid, \
                         $$SELECT coalesce((SELECT (c.relrowsecurity AND c.relforcerowsecurity \
                                  AND EXISTS (SELECT FROM pg_catalog.pg_policy pol \
                                              WHERE pol.polrelid = c.oid AND pol.polname = 'tenancy_isolation'))::text \
                                  FROM pg_catalog.pg_class c WHERE c.oid = pg_catalog.to_regclass('%s')), 'missing')$$) r \
                     WHERE r.result IS DISTINCT FROM 'true'",
                    None,
                    &[],
                )?
                .map(|row| {
                    Ok((
                        row.get(1)?.unwrap_or_default(),
                        row.get(2)?.unwrap_or_default(),
                        row.get(3)?.unwrap_or_default(),
                        row.get(4)?.unwrap_or_default(),
                    ))
                })
                .collect::<Result<_, pgrx::spi::Error>>()
        })
    })
    .or_raise("checking the shard placements");
    TableIterator::new(rows)
}
