-- Auto-protect: every new table with a tenant_id uuid NOT NULL column, and every
-- new partition of a protected table (a partition queried directly would
-- bypass its parent's policy), is protected when it is created or attached.
-- And a protected table may not inherit from a table that is not protected:
-- queried through that parent, its rows fall under the parent's row-level
-- security (none). SECURITY DEFINER so that the role running the DDL needs
-- no EXECUTE on protect().
CREATE OR REPLACE FUNCTION tenancy.auto_protect() RETURNS event_trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    t record;
    everything boolean;
    tbls regclass[];
    cols name[];
    usable boolean[];
BEGIN
    -- Off while protect() or the extension's own DDL runs, and on Citus
    -- workers (auto-protect is also off while row_security is off:
    -- pg_dump, pg_restore keep what was dumped). Asked first: a function
    -- call, before any query.
    IF NOT tenancy.ddl_checks_enabled() THEN
        RETURN;
    END IF;
    -- Nothing to do for a table without a tenant_id column that inherits
    -- from nothing and that nothing inherits from: answered from PostgreSQL's
    -- catalogs alone, so that other DDL pays little and reads (and locks)
    -- nothing of tenancy's.
    IF NOT EXISTS (SELECT FROM pg_event_trigger_ddl_commands() cmd
                    WHERE cmd.object_type = 'table'
                      AND (EXISTS (SELECT FROM pg_attribute a
                                    WHERE a.attrelid = cmd.objid AND a.attname = 'tenant_id'
                                      AND NOT a.attisdropped)
                           OR EXISTS (SELECT FROM pg_inherits i
                                       WHERE cmd.objid IN (i.inhrelid, i.inhparent)))) THEN
        RETURN;
    END IF;
    -- While the session itself has turned row_security off (a restore),
    -- auto-protect stands aside, but for the partitions and children of a
    -- table that is protected already: a restore protects its tables later,
    -- and nothing else may add an unprotected partition to a protected table.
    everything := tenancy.auto_protect_enabled();
    IF everything OR current_setting('tenancy.auto_protect') = 'on' THEN
        -- Read whole, not through a cursor: protecting runs the table owner's
        -- code, and no cursor may be open then (it could fetch it).
        SELECT array_agg(q.tbl), array_agg(q.col), array_agg(q.usable) INTO tbls, cols, usable
          FROM (
            WITH cmd AS (
                SELECT objid, command_tag FROM pg_event_trigger_ddl_commands()
                 WHERE object_type = 'table'
            ), candidate AS (
                -- Tables just created ...
                SELECT objid AS relid FROM cmd WHERE command_tag <> 'ALTER TABLE'
                UNION
                -- ... partitions of an altered table (ATTACH PARTITION reports the parent) ...
                SELECT i.inhrelid FROM pg_inherits i JOIN cmd ON i.inhparent = cmd.objid
                 WHERE cmd.command_tag = 'ALTER TABLE'
                UNION
                -- ... and an altered table that now inherits (ALTER TABLE … INHERIT
                -- reports the child): queried through its parent, its rows are the parent's.
                SELECT i.inhrelid FROM pg_inherits i JOIN cmd ON i.inhrelid = cmd.objid
                 WHERE cmd.command_tag = 'ALTER TABLE'
            )
            SELECT c.oid::regclass AS tbl, col.name AS col,
                   a.atttypid = 'uuid'::regtype AND a.attnotnull AND a.attgenerated = '' AS usable
              FROM candidate
              -- Never temporary tables: no event reports their end, and they are
              -- their session's own. Never tables of tenant schemas (or of the
              -- migrations' trial schema): the migrations pin them to their tenant.
              JOIN pg_class c ON c.oid = candidate.relid AND c.relkind IN ('r', 'p')
                             AND c.relpersistence <> 't'
              JOIN pg_namespace n ON n.oid = c.relnamespace
                             AND n.nspname NOT IN ('tenancy', 'tenancy_migration_check')
                             AND n.nspname NOT IN (SELECT schema_name FROM tenancy.tenants
                                                    WHERE schema_name IS NOT NULL)
              -- A partition or child uses its protected parent's column; a new table, tenant_id.
              CROSS JOIN LATERAL (
                    SELECT coalesce((SELECT p.tenant_column FROM pg_inherits i
                                       JOIN tenancy.protected_tables p ON p.relid = i.inhparent
                                      WHERE i.inhrelid = c.oid LIMIT 1),
                                    CASE WHEN c.relispartition THEN NULL ELSE 'tenant_id' END) AS name
              ) col
              JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = col.name AND NOT a.attisdropped
             WHERE c.oid NOT IN (SELECT relid FROM tenancy.protected_tables)
               AND (everything OR EXISTS (SELECT FROM pg_inherits i
                                           JOIN tenancy.protected_tables p ON p.relid = i.inhparent
                                          WHERE i.inhrelid = c.oid))) q;
        FOR i IN 1 .. coalesce(cardinality(tbls), 0) LOOP
            IF usable[i] THEN
                PERFORM tenancy.auto_protect_table(tbls[i], cols[i]);
            ELSE
                RAISE WARNING 'table % has a column "%" but was not protected: it is not a plain uuid NOT NULL column', tbls[i], cols[i]
                    USING HINT = format('Fix the column, then run SELECT tenancy.protect(%L);', tbls[i]);
            END IF;
        END LOOP;
    END IF;
    FOR t IN
        SELECT i.inhrelid::regclass AS child, i.inhparent::regclass AS parent
          FROM pg_event_trigger_ddl_commands() cmd
          JOIN pg_inherits i ON cmd.objid IN (i.inhrelid, i.inhparent)
         WHERE cmd.object_type = 'table'
           AND i.inhrelid IN (SELECT relid FROM tenancy.protected_tables)
           AND i.inhparent NOT IN (SELECT relid FROM tenancy.protected_tables)
    LOOP
        RAISE EXCEPTION 'protected table % cannot inherit from %, which is not protected', t.child, t.parent
            USING ERRCODE = 'invalid_table_definition',
                  HINT = format('Queried through %s, the rows of %s would be read under the row-level '
                                'security of %s: every tenant''s. Protect %s first (it needs the tenant '
                                'column), or do not make it a parent of a protected table.',
                                t.parent, t.child, t.parent, t.parent);
    END LOOP;
END
$$;
-- (CREATE SCHEMA: the tables it makes as its elements, a partition of a
-- protected table among them, come with the schema's command.)
CREATE EVENT TRIGGER tenancy_auto_protect ON ddl_command_end
    WHEN TAG IN ('CREATE TABLE', 'CREATE TABLE AS', 'SELECT INTO', 'ALTER TABLE', 'CREATE SCHEMA')
    EXECUTE FUNCTION tenancy.auto_protect();

-- Only a relation's owner (or a superuser) may add a trigger to it, and only a
-- table's owner a foreign key with an action that reaches another table from
-- it: both run in every writer's tenant context (see refuse_foreign_triggers()).
-- Not SECURITY
-- DEFINER: it checks the role that ran CREATE TRIGGER.
CREATE OR REPLACE FUNCTION tenancy.guard_triggers() RETURNS event_trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM tenancy.refuse_foreign_triggers();
END
$$;
CREATE EVENT TRIGGER tenancy_guard_triggers ON ddl_command_end
    WHEN TAG IN ('CREATE TRIGGER', 'CREATE SCHEMA', 'CREATE TABLE', 'ALTER TABLE', 'ALTER TYPE', 'CREATE CAST')
    EXECUTE FUNCTION tenancy.guard_triggers();

-- Protection is removed by tenancy.unprotect() alone: a schema tool that sees
-- the policy, row-level security or the TRUNCATE guard as drift to undo
-- (drizzle-kit push, autogenerated migrations) is refused, not obeyed
-- silently. What each command takes away is read from the command itself
-- (protection_removed_by()), not from where the catalogs end up: a restore
-- enables row-level security before it creates the policy. Only commands that
-- take something away read tenancy.protected_tables. SECURITY DEFINER to read
-- it; it only reads and raises.
CREATE OR REPLACE FUNCTION tenancy.protection_removed_by(pg_ddl_command) RETURNS text
    LANGUAGE c STRICT VOLATILE AS 'MODULE_PATHNAME', 'protection_removed_by_wrapper';
CREATE OR REPLACE FUNCTION tenancy.keep_protection() RETURNS event_trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    t record;
    tables oid[];
    changes text[];
BEGIN
    -- Not for the extension's own DDL (protect(), a tenant schema pinned).
    IF NOT tenancy.ddl_checks_enabled() THEN
        RETURN;
    END IF;
    -- First what the command took away, from PostgreSQL's catalogs alone
    -- (most DDL takes nothing away and reads, or locks, nothing of tenancy's).
    IF TG_EVENT = 'sql_drop' THEN
        -- A policy or trigger dropped with its table (or its schema) leaves
        -- no table behind: only one dropped from a table that stays counts.
        SELECT array_agg(to_regclass(quote_ident(d.address_names[1]) || '.' || quote_ident(d.address_names[2]))::oid),
               array_agg(format('drop %s %s', d.object_type, d.address_names[3]))
          INTO tables, changes
          FROM pg_event_trigger_dropped_objects() d
         WHERE d.object_type IN ('policy', 'trigger') AND cardinality(d.address_names) = 3
           AND d.address_names[3] IN ('tenancy_isolation', 'tenancy_no_truncate');
    ELSE
        SELECT array_agg(x.relid), array_agg(x.change) INTO tables, changes
          FROM (SELECT CASE cmd.classid
                           WHEN 'pg_class'::regclass THEN cmd.objid
                           WHEN 'pg_policy'::regclass THEN (SELECT polrelid FROM pg_policy WHERE oid = cmd.objid)
                           WHEN 'pg_trigger'::regclass THEN (SELECT tgrelid FROM pg_trigger WHERE oid = cmd.objid)
                       END AS relid,
                       tenancy.protection_removed_by(cmd.command) AS change
                  FROM pg_event_trigger_ddl_commands() cmd) x
         WHERE x.change IS NOT NULL;
    END IF;
    IF tables IS NULL THEN
        RETURN;
    END IF;
    SELECT x.change, x.relid::regclass AS tbl INTO t
      FROM unnest(tables, changes) AS x(relid, change)
     WHERE x.relid IN (SELECT relid FROM tenancy.protected_tables)
     LIMIT 1;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    RAISE EXCEPTION 'cannot %: table % is protected by tenancy', t.change, t.tbl
        USING ERRCODE = 'object_not_in_prerequisite_state',
              HINT = format('Only tenancy.unprotect(%L) removes its protection (every tenant''s rows '
                            'would be readable otherwise). A schema tool that sees the policy as drift '
                            'must be told about it: see the README''s "Schema tools".', t.tbl);
END
$$;
CREATE EVENT TRIGGER tenancy_keep_protection ON ddl_command_end
    WHEN TAG IN ('ALTER TABLE', 'CREATE POLICY', 'ALTER POLICY', 'ALTER TRIGGER')
    EXECUTE FUNCTION tenancy.keep_protection();
CREATE EVENT TRIGGER tenancy_keep_protection_on_drop ON sql_drop
    WHEN TAG IN ('DROP POLICY', 'DROP TRIGGER', 'ALTER TABLE')
    EXECUTE FUNCTION tenancy.keep_protection();

-- A dropped table is no longer protected: forget it (destroy_data and verify()
-- iterate tenancy.protected_tables).
CREATE OR REPLACE FUNCTION tenancy.forget_dropped_tables() RETURNS event_trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    DELETE FROM tenancy.protected_tables
     WHERE relid::oid IN (SELECT objid FROM pg_event_trigger_dropped_objects()
                           WHERE object_type IN ('table', 'partitioned table'));
END
$$;
CREATE EVENT TRIGGER tenancy_forget_dropped_tables ON sql_drop
    EXECUTE FUNCTION tenancy.forget_dropped_tables();
