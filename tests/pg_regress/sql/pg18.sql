-- Statement forms new in PostgreSQL 17 and 18 that reach protected tables
-- (threat-model row 38), run as the application role with two tenants.
-- scripts/test.sh adds this file to the schedule on PostgreSQL 18 and later.
\set SHOW_CONTEXT never
-- (uuid in a WITHOUT OVERLAPS key needs btree_gist's operator classes.)
CREATE EXTENSION btree_gist;
DO $$ BEGIN
    PERFORM tenancy.register_tenant('v18', 'Victim');
    PERFORM tenancy.register_tenant('a18', 'Attacker');
END $$;
SELECT id AS victim FROM tenancy.tenants WHERE identifier = 'v18' \gset
CREATE SCHEMA s18 AUTHORIZATION tenancy_owner;
GRANT USAGE ON SCHEMA s18 TO tenancy_app;
SET ROLE tenancy_owner;
-- A virtual generated column and a temporal primary key (both new in 18).
CREATE TABLE s18.bookings (tenant_id uuid NOT NULL, room int NOT NULL, during tstzrange NOT NULL,
                           note text, shout text GENERATED ALWAYS AS (upper(note)) VIRTUAL,
                           PRIMARY KEY (tenant_id, room, during WITHOUT OVERLAPS));
GRANT SELECT, INSERT, UPDATE, DELETE ON s18.bookings TO tenancy_app;
RESET ROLE;
SELECT tenancy.protect('s18.bookings');
SET ROLE tenancy_app;
SELECT tenancy.set_tenant('v18') IS NOT NULL AS as_victim;
INSERT INTO s18.bookings (room, during, note)
VALUES (1, '[2026-01-01,2026-01-02)', 'victim secret'), (2, '[2026-01-01,2026-01-02)', 'victim other');
SELECT tenancy.set_tenant('a18') IS NOT NULL AS as_attacker;
INSERT INTO s18.bookings (room, during, note) VALUES (1, '[2026-01-01,2026-01-02)', 'attacker');

-- MERGE … RETURNING (17): the target is filtered before matching, so the
-- victim's rows are neither matched, updated nor returned; NOT MATCHED BY
-- SOURCE (17) deletes only the attacker's own unmatched rows.
MERGE INTO s18.bookings b
USING (VALUES (1), (2)) AS src(room) ON b.room = src.room
WHEN MATCHED THEN UPDATE SET note = 'merged'
WHEN NOT MATCHED THEN INSERT (room, during, note) VALUES (src.room, '[2026-02-01,2026-02-02)', 'new')
RETURNING merge_action(), b.room, b.note, b.tenant_id = tenancy.current_tenant() AS own;
MERGE INTO s18.bookings b USING (VALUES (99)) AS src(room) ON b.room = src.room
WHEN NOT MATCHED BY SOURCE THEN DELETE
RETURNING merge_action(), b.room;
-- MERGE that inserts a row for the victim: WITH CHECK refuses it.
MERGE INTO s18.bookings b USING (VALUES (7)) AS src(room) ON b.room = src.room
WHEN NOT MATCHED THEN INSERT (tenant_id, room, during) VALUES (:'victim', 7, '[2026-01-01,2026-01-02)');
\echo :LAST_ERROR_SQLSTATE

-- RETURNING old/new (18): moving a row to the victim is refused, and old.*
-- of the victim's rows is never reachable.
INSERT INTO s18.bookings (room, during, note) VALUES (3, '[2026-01-01,2026-01-02)', 'mine');
UPDATE s18.bookings SET tenant_id = :'victim' WHERE room = 3 RETURNING old.note, new.tenant_id;
\echo :LAST_ERROR_SQLSTATE
UPDATE s18.bookings SET note = 'x' RETURNING old.note, old.shout, new.shout;

-- Virtual generated columns (18) are computed from the visible row only.
SELECT room, note, shout FROM s18.bookings ORDER BY room;

-- WITHOUT OVERLAPS (18) with the tenant in the key: the victim's booking of
-- the same room and period is no conflict, so it cannot be probed for.
INSERT INTO s18.bookings (room, during, note) VALUES (2, '[2026-01-01,2026-01-02)', 'probe');
SELECT count(*) AS attacker_rows FROM s18.bookings;

-- The victim's rows are untouched.
SELECT tenancy.set_tenant('v18') IS NOT NULL AS as_victim;
SELECT room, note, shout FROM s18.bookings ORDER BY room;
RESET ROLE;
SELECT tenancy.reset_tenant();

-- A virtual generated tenant column (18) can neither take the current
-- tenant as its default nor be indexed: creating the table only warns,
-- protect() refuses before anything changes.
SET ROLE tenancy_owner;
CREATE TABLE s18.derived (k uuid NOT NULL, tenant_id uuid NOT NULL GENERATED ALWAYS AS (k) VIRTUAL);
RESET ROLE;
SELECT tenancy.protect('s18.derived');
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) AS policies FROM pg_policy WHERE polrelid = 's18.derived'::regclass;

SET client_min_messages = warning;
SELECT tenancy.unprotect('s18.bookings');
DROP SCHEMA s18 CASCADE;
DROP EXTENSION btree_gist;
