-- Migrations across tenant schemas. Procedures (not functions) so that each
-- schema commits on its own: thousands of schemas never share one transaction
-- (and its lock table entries), a failing schema leaves the others migrated,
-- and a run interrupted by a crash resumes where it stopped.

-- Schema tenants that lack migrations, with how many.
CREATE OR REPLACE FUNCTION tenancy.pending_migrations()
RETURNS TABLE (identifier text, schema_name name, pending integer)
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT t.identifier, t.schema_name, count(*)::integer
      FROM tenancy.tenants t CROSS JOIN tenancy.migrations m
     WHERE t.isolation = 'schema' AND t.status <> 'deleted' AND m.retired_at IS NULL
       AND NOT EXISTS (SELECT FROM tenancy.schema_migrations s
                        WHERE s.tenant_id = t.id AND s.migration = m.name)
     GROUP BY t.identifier, t.schema_name
     ORDER BY t.identifier
$$;

-- Bring every schema tenant up to date, committing after each schema.
-- CALL it outside a transaction block. When a schema fails, the others go on
-- (and stay committed); at the end the call raises the first failure's
-- SQLSTATE, naming the failed tenants: a WARNING alone is dropped by most
-- drivers, and the failure would look like a success.
--
-- The two procedures run with the caller's search_path (a SET clause would
-- forbid COMMIT): every function, operator and type in them is
-- schema-qualified, so nothing in a schema on the caller's path (a function,
-- or a domain whose CHECK calls one) can stand in for one.
CREATE OR REPLACE PROCEDURE tenancy.migrate()
LANGUAGE plpgsql AS $$
DECLARE
    pending pg_catalog.text[];
    tenant pg_catalog.text;
    done pg_catalog.int4 := 0;
    failed pg_catalog.text[] := '{}';
    total pg_catalog.int4;
    first_state pg_catalog.text;
    first_error pg_catalog.text;
BEGIN
    PERFORM tenancy.check_autocommit('migrate');
    -- The list, not a cursor over it: a migration runs as another role, and
    -- no cursor may be open then (it could fetch it).
    SELECT COALESCE(pg_catalog.array_agg(p.identifier), '{}') INTO pending
      FROM tenancy.pending_migrations() p;
    total := pg_catalog.cardinality(pending);
    FOREACH tenant IN ARRAY pending LOOP
        BEGIN
            PERFORM tenancy.migrate_tenant(tenant);
            done := done OPERATOR(pg_catalog.+) 1;
            RAISE NOTICE 'tenancy: migrated % (%/%)', tenant,
                done OPERATOR(pg_catalog.+) pg_catalog.cardinality(failed), total;
        EXCEPTION WHEN OTHERS THEN
            failed := pg_catalog.array_append(failed, tenant);
            IF first_state IS NULL THEN
                first_state := SQLSTATE;
                first_error := pg_catalog.format('%s: %s', tenant, SQLERRM);
            END IF;
            RAISE WARNING 'tenancy: migrating % failed (%/%): %', tenant,
                done OPERATOR(pg_catalog.+) pg_catalog.cardinality(failed), total, SQLERRM
                USING HINT = 'The schema is unchanged; fix the cause and CALL tenancy.migrate() again.';
        END;
        COMMIT;
    END LOOP;
    IF pg_catalog.cardinality(failed) OPERATOR(pg_catalog.>) 0 THEN
        RAISE EXCEPTION 'tenancy: % of % schemas migrated; failed: %', done, total,
                pg_catalog.array_to_string(failed, ', ')
            USING ERRCODE = first_state,
                  DETAIL = pg_catalog.format('First error: %s', first_error),
                  HINT = 'The migrated schemas are committed. Fix the cause and CALL tenancy.migrate() again, '
                         'or retire a migration that cannot apply with tenancy.retire_migration(name).';
    END IF;
    RAISE NOTICE 'tenancy: % of % schemas migrated', done, total;
END
$$;

-- Record a migration (tried first in a scratch schema), commit, migrate every schema.
CREATE OR REPLACE PROCEDURE tenancy.add_migration(name pg_catalog.text, sql pg_catalog.text)
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM tenancy.check_autocommit('add_migration');
    PERFORM tenancy.record_migration(name, sql);
    COMMIT;
    CALL tenancy.migrate();
END
$$;
