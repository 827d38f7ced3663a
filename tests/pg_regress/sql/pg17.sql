-- Statement forms new in PostgreSQL 17 that reach protected tables
-- (threat-model row 38), run as the application role with two tenants.
-- scripts/test.sh adds this file to the schedule on PostgreSQL 17 and later
-- (pg18.sql has the forms new in 18).
\set SHOW_CONTEXT never
DO $$ BEGIN
    PERFORM tenancy.register_tenant('v17', 'Victim');
    PERFORM tenancy.register_tenant('a17', 'Attacker');
END $$;
SELECT id AS victim FROM tenancy.tenants WHERE identifier = 'v17' \gset
CREATE SCHEMA s17 AUTHORIZATION tenancy_owner;
GRANT USAGE ON SCHEMA s17 TO tenancy_app;
SET ROLE tenancy_owner;
CREATE TABLE s17.notes (tenant_id uuid NOT NULL, id int NOT NULL, body text, PRIMARY KEY (tenant_id, id));
-- An auto-updatable view: MERGE into views is new in 17.
CREATE VIEW s17.notes_view AS SELECT tenant_id, id, body FROM s17.notes;
GRANT SELECT, INSERT, UPDATE, DELETE ON s17.notes, s17.notes_view TO tenancy_app;
RESET ROLE;
SELECT tenancy.protect('s17.notes');
SET ROLE tenancy_app;
SELECT tenancy.set_tenant('v17') IS NOT NULL AS as_victim;
INSERT INTO s17.notes (id, body) VALUES (1, 'victim one'), (2, 'victim two'), (5, 'victim five');
SELECT tenancy.set_tenant('a17') IS NOT NULL AS as_attacker;
INSERT INTO s17.notes (id, body) VALUES (1, 'attacker one'), (3, 'attacker three');

-- MERGE … RETURNING: the target is filtered before matching, so the
-- victim's rows are neither matched, updated nor returned (id 2 is the
-- victim's: for the attacker it is not matched, and the insert is its own).
-- (In WITH, new in 17 too, to order what it returns.)
WITH m AS (
    MERGE INTO s17.notes n
    USING (VALUES (1), (2)) AS src(id) ON n.id = src.id
    WHEN MATCHED THEN UPDATE SET body = 'merged'
    WHEN NOT MATCHED THEN INSERT (id, body) VALUES (src.id, 'new')
    RETURNING merge_action() AS action, n.id, n.body, n.tenant_id = tenancy.current_tenant() AS own
) SELECT * FROM m ORDER BY id;
-- WHEN NOT MATCHED BY SOURCE: the victim's rows are not the source's
-- "unmatched" rows either: only the attacker's own are deleted (it has no
-- id 5, the victim's stays) or updated.
WITH m AS (
    MERGE INTO s17.notes n USING (VALUES (1)) AS src(id) ON n.id = src.id
    WHEN NOT MATCHED BY SOURCE AND n.id = 5 THEN DELETE
    WHEN NOT MATCHED BY SOURCE THEN UPDATE SET body = 'not in source'
    RETURNING merge_action() AS action, n.id, n.body
) SELECT * FROM m ORDER BY id;
-- … and it cannot move them to the victim: WITH CHECK refuses.
MERGE INTO s17.notes n USING (VALUES (1)) AS src(id) ON n.id = src.id
WHEN NOT MATCHED BY SOURCE THEN UPDATE SET tenant_id = :'victim';
\echo :LAST_ERROR_SQLSTATE
-- A MERGE that inserts a row for the victim: refused.
MERGE INTO s17.notes n USING (VALUES (7)) AS src(id) ON n.id = src.id
WHEN NOT MATCHED THEN INSERT (tenant_id, id, body) VALUES (:'victim', 7, 'planted');
\echo :LAST_ERROR_SQLSTATE

-- MERGE into a view: the table's policy applies through it as well.
WITH m AS (
    MERGE INTO s17.notes_view v USING (VALUES (1), (5)) AS src(id) ON v.id = src.id
    WHEN MATCHED THEN UPDATE SET body = 'through the view'
    WHEN NOT MATCHED THEN INSERT (id, body) VALUES (src.id, 'inserted through the view')
    RETURNING merge_action() AS action, v.id, v.body
) SELECT * FROM m ORDER BY id;
MERGE INTO s17.notes_view v USING (VALUES (8)) AS src(id) ON v.id = src.id
WHEN NOT MATCHED THEN INSERT (tenant_id, id, body) VALUES (:'victim', 8, 'planted');
\echo :LAST_ERROR_SQLSTATE

-- COPY FROM with ON_ERROR ignore (new in 17) is refused under row-level
-- security like any COPY FROM.
COPY s17.notes (tenant_id, id, body) FROM STDIN (ON_ERROR ignore);
00000000-0000-0000-0000-000000000000	9	planted
\.
\echo :LAST_ERROR_SQLSTATE
SELECT id, body FROM s17.notes ORDER BY id;

-- The victim's rows are untouched.
SELECT tenancy.set_tenant('v17') IS NOT NULL AS as_victim;
SELECT id, body FROM s17.notes ORDER BY id;
RESET ROLE;
SELECT tenancy.reset_tenant();

SET client_min_messages = warning;
SELECT tenancy.unprotect('s17.notes');
DROP SCHEMA s17 CASCADE;
