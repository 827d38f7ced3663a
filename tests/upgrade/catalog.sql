-- Everything the extension puts in a database, one row per fact, without
-- OIDs, in a stable order: run on an updated and on a freshly installed
-- database, the two outputs must be identical.
WITH ext AS (
    SELECT oid FROM pg_extension WHERE extname = 'tenancy'
), members AS (
    SELECT d.classid, d.objid
    FROM pg_depend d, ext
    WHERE d.refclassid = 'pg_extension'::regclass AND d.refobjid = ext.oid AND d.deptype = 'e'
), tables AS (
    SELECT objid AS oid FROM members WHERE classid = 'pg_class'::regclass
)
SELECT fact FROM (
    -- the extension itself: version, schema, configuration tables for pg_dump
    SELECT format('extension %s %s schema=%s config=%s conditions=%s', e.extname, e.extversion,
                  e.extnamespace::regnamespace, e.extconfig::regclass[]::text, e.extcondition)
    FROM pg_extension e WHERE e.extname = 'tenancy'
    UNION ALL
    -- every member object
    SELECT 'member ' || pg_describe_object(classid, objid, 0) FROM members
    UNION ALL
    -- functions and procedures: full definition (volatility, SET, SECURITY DEFINER, body) and grants
    SELECT format('function %s acl=%s comment=%s', pg_get_functiondef(p.oid), p.proacl,
                  obj_description(p.oid, 'pg_proc'))
    FROM members m JOIN pg_proc p ON p.oid = m.objid WHERE m.classid = 'pg_proc'::regclass
    UNION ALL
    -- relations: kind, row-level security flags, grants, options
    SELECT format('relation %s kind=%s rls=%s force=%s acl=%s options=%s comment=%s', c.oid::regclass,
                  c.relkind, c.relrowsecurity, c.relforcerowsecurity, c.relacl, c.reloptions,
                  obj_description(c.oid, 'pg_class'))
    FROM tables t JOIN pg_class c ON c.oid = t.oid
    UNION ALL
    -- columns: type, nullability, default, identity, generation
    SELECT format('column %s.%s %s notnull=%s default=%s identity=%s generated=%s acl=%s',
                  a.attrelid::regclass, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,
                  pg_get_expr(ad.adbin, ad.adrelid), a.attidentity, a.attgenerated, a.attacl)
    FROM tables t JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum > 0 AND NOT a.attisdropped
    LEFT JOIN pg_attrdef ad ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum
    UNION ALL
    -- constraints, indexes, triggers and policies of the member tables
    SELECT format('constraint %s.%s %s', conrelid::regclass, conname, pg_get_constraintdef(oid))
    FROM pg_constraint WHERE conrelid IN (SELECT oid FROM tables)
    UNION ALL
    SELECT 'index ' || pg_get_indexdef(indexrelid) FROM pg_index WHERE indrelid IN (SELECT oid FROM tables)
    UNION ALL
    SELECT 'trigger ' || pg_get_triggerdef(oid) FROM pg_trigger WHERE tgrelid IN (SELECT oid FROM tables) AND NOT tgisinternal
    UNION ALL
    SELECT format('policy %s.%s cmd=%s permissive=%s roles=%s using=%s check=%s', polrelid::regclass,
                  polname, polcmd, polpermissive, polroles::regrole[]::text,
                  pg_get_expr(polqual, polrelid), pg_get_expr(polwithcheck, polrelid))
    FROM pg_policy WHERE polrelid IN (SELECT oid FROM tables)
    UNION ALL
    -- sequences' parameters
    SELECT format('sequence %s %s start=%s increment=%s min=%s max=%s cycle=%s', seqrelid::regclass,
                  format_type(seqtypid, NULL), seqstart, seqincrement, seqmin, seqmax, seqcycle)
    FROM pg_sequence WHERE seqrelid IN (SELECT oid FROM tables)
    UNION ALL
    -- event triggers: event, function, tags, enabled
    SELECT format('event trigger %s on %s %s tags=%s enabled=%s', evtname, evtevent,
                  evtfoid::regprocedure, evttags, evtenabled)
    FROM members m JOIN pg_event_trigger e ON e.oid = m.objid WHERE m.classid = 'pg_event_trigger'::regclass
    UNION ALL
    -- the schema's grants, and initial privileges recorded for pg_dump
    SELECT format('schema %s acl=%s', nspname, nspacl) FROM pg_namespace WHERE nspname = 'tenancy'
    UNION ALL
    SELECT format('init privs %s %s', pg_describe_object(classoid, objoid, objsubid), initprivs)
    FROM pg_init_privs WHERE (classoid, objoid) IN (SELECT classid, objid FROM members)
    UNION ALL
    -- anything in the schema that does not belong to the extension
    SELECT 'stray relation ' || oid::regclass FROM pg_class
    WHERE relnamespace = 'tenancy'::regnamespace
      AND oid NOT IN (SELECT oid FROM tables)
      AND relkind NOT IN ('i', 't')
    UNION ALL
    SELECT 'stray function ' || oid::regprocedure FROM pg_proc
    WHERE pronamespace = 'tenancy'::regnamespace
      AND oid NOT IN (SELECT objid FROM members WHERE classid = 'pg_proc'::regclass)
) facts(fact)
ORDER BY fact COLLATE "C";
