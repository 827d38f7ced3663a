-- What pg_upgrade must carry over, one row per fact, in a stable order: every
-- row of every table (the extension's catalog and audit log, the protected
-- table, the schema tenant's tables), the sequences' positions, what
-- tenancy made on the tables and schemas (row-level security, policies,
-- triggers, owners, grants) and the roles' settings. Run as a superuser on
-- the old cluster before and on the new one after: the outputs must be equal.
\set ON_ERROR_STOP 1
SET TimeZone = 'UTC';
SET DateStyle = 'ISO, YMD';
SET IntervalStyle = 'postgres';
SELECT format('SELECT r FROM (SELECT %L || '' '' || t::text AS r FROM %s t) rows ORDER BY r COLLATE "C"',
              c.oid::regclass, c.oid::regclass)
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')
ORDER BY c.oid::regclass::text COLLATE "C"
\gexec
SELECT fact FROM (
    SELECT format('sequence %s last=%s', c.oid::regclass, pg_sequence_last_value(c.oid))
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE c.relkind = 'S' AND n.nspname NOT IN ('pg_catalog', 'information_schema')
    UNION ALL
    -- Grants as privileges, the owner's default ones included, but for
    -- MAINTAIN, which PostgreSQL 17 added to an owner's default privileges.
    SELECT format('relation %s kind=%s owner=%s rls=%s force=%s grants=%s', c.oid::regclass, c.relkind,
                  c.relowner::regrole, c.relrowsecurity, c.relforcerowsecurity,
                  (SELECT string_agg(format('%s:%s:%s', a.grantee::regrole, a.privilege_type, a.is_grantable), ','
                                     ORDER BY a.grantee::regrole::text, a.privilege_type)
                   FROM aclexplode(coalesce(c.relacl, acldefault(CASE c.relkind WHEN 'S' THEN 's' ELSE 'r' END::"char",
                                                                 c.relowner))) a
                   WHERE a.privilege_type <> 'MAINTAIN'))
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S') AND n.nspname NOT IN ('pg_catalog', 'information_schema')
    UNION ALL
    SELECT format('policy %s.%s cmd=%s permissive=%s roles=%s using=%s check=%s', polrelid::regclass,
                  polname, polcmd, polpermissive, polroles::regrole[]::text,
                  pg_get_expr(polqual, polrelid), pg_get_expr(polwithcheck, polrelid))
    FROM pg_policy
    UNION ALL
    SELECT format('trigger %s enabled=%s', pg_get_triggerdef(oid), tgenabled) FROM pg_trigger WHERE NOT tgisinternal
    UNION ALL
    SELECT format('event trigger %s on %s %s tags=%s enabled=%s', evtname, evtevent, evtfoid::regprocedure,
                  evttags, evtenabled)
    FROM pg_event_trigger
    UNION ALL
    SELECT format('schema %s owner=%s acl=%s', nspname, nspowner::regrole, nspacl) FROM pg_namespace
    WHERE nspname NOT LIKE 'pg\_%' AND nspname <> 'information_schema'
    UNION ALL
    SELECT format('role %s login=%s bypassrls=%s createrole=%s', rolname, rolcanlogin, rolbypassrls,
                  rolcreaterole)
    FROM pg_roles WHERE rolname LIKE 'tenancy%'
    UNION ALL
    SELECT format('role setting %s in %s: %s', r.rolname, d.datname, s.setconfig)
    FROM pg_db_role_setting s LEFT JOIN pg_roles r ON r.oid = s.setrole LEFT JOIN pg_database d ON d.oid = s.setdatabase
) facts(fact)
ORDER BY fact COLLATE "C";
