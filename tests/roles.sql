-- Roles shared by every test layer; cluster-wide, created once per scratch cluster.
-- tenancy_app is what an application connects as: LOGIN, nothing else.
CREATE ROLE tenancy_app LOGIN;
-- tenancy_admin is granted the lifecycle functions explicitly (tests do the GRANT).
CREATE ROLE tenancy_admin LOGIN;
-- A role that bypasses row-level security must never get a tenant context.
CREATE ROLE tenancy_bypass LOGIN BYPASSRLS;
-- Owns the application's tables; cannot log in.
CREATE ROLE tenancy_owner NOLOGIN;
-- Owns the tenant schemas and runs the migrations there (set_migration_owner).
CREATE ROLE tenancy_migrator NOLOGIN;
