-- verify(): no rows on a clean setup, one row per planted problem.
\set SHOW_CONTEXT never
CREATE SCHEMA shop AUTHORIZATION tenancy_owner;
SET ROLE tenancy_owner;
CREATE TABLE shop.customers (tenant_id uuid NOT NULL, id uuid NOT NULL, name text,
                             PRIMARY KEY (tenant_id, id));
CREATE TABLE shop.invoices (tenant_id uuid NOT NULL, id int, customer_id uuid,
                            PRIMARY KEY (tenant_id, id),
                            FOREIGN KEY (tenant_id, customer_id) REFERENCES shop.customers);
RESET ROLE;
-- Clean, but for two findings of the test cluster itself: the tenancy_bypass
-- login role of tests/roles.sql, and the library not being preloaded.
SELECT * FROM tenancy.verify();

-- Plant one problem of each kind.
SET tenancy.auto_protect = off;
CREATE TABLE shop.unprotected (tenant_id uuid NOT NULL, x int);
RESET tenancy.auto_protect;
CREATE VIEW shop.customer_names AS SELECT name FROM shop.customers;
CREATE MATERIALIZED VIEW shop.customer_count AS SELECT count(*) FROM shop.customers;
CREATE FUNCTION shop.definer() RETURNS int LANGUAGE sql SECURITY DEFINER AS 'SELECT 1';
CREATE ROLE tenancy_verify_bypass LOGIN BYPASSRLS;
CREATE ROLE tenancy_verify_owner LOGIN;
ALTER TABLE shop.customers OWNER TO tenancy_verify_owner;
CREATE TABLE shop.single_fk (id int, customer_id uuid);
ALTER TABLE shop.customers ADD UNIQUE (id);
ALTER TABLE shop.single_fk ADD FOREIGN KEY (customer_id) REFERENCES shop.customers (id);
ALTER TABLE shop.invoices DROP CONSTRAINT invoices_pkey;
-- The owner's function, called by what a superuser's query or INSERT on the
-- table evaluates: an index expression, an index through an operator, the
-- default of a column's domain.
SET ROLE tenancy_owner;
CREATE FUNCTION shop.owned(int) RETURNS int LANGUAGE sql IMMUTABLE AS 'SELECT $1';
CREATE OPERATOR shop.#### (RIGHTARG = int, FUNCTION = shop.owned);
CREATE INDEX invoices_owned ON shop.invoices (shop.owned(id));
CREATE INDEX invoices_through_operator ON shop.invoices ((OPERATOR(shop.####) id));
CREATE DOMAIN shop.stamped AS int DEFAULT shop.owned(1);
ALTER TABLE shop.invoices ADD COLUMN stamp shop.stamped;
RESET ROLE;
-- (refused, protect.sql; a superuser can with the event triggers off)
SET session_replication_role = replica;
ALTER TABLE shop.invoices NO FORCE ROW LEVEL SECURITY;
CREATE POLICY everyone ON shop.customers USING (true);
RESET session_replication_role;
SELECT * FROM tenancy.verify();

-- Clean up the cluster-wide roles.
SET client_min_messages = warning;
DROP SCHEMA shop CASCADE;
DROP ROLE tenancy_verify_bypass, tenancy_verify_owner;
-- Dropped tables leave tenancy.protected_tables.
SELECT count(*) AS still_protected FROM tenancy.protected_tables;
