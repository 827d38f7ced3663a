-- tenancy 0.1.0 → 0.2.0 (ALTER EXTENSION tenancy UPDATE)
\echo Use "ALTER EXTENSION tenancy UPDATE TO '0.2.0'" to load this file. \quit

-- 0.2.0 changes only the shared library (a cheaper set_tenant hot path): no
-- object of the extension changes. tests/upgrade checks that an updated
-- database equals a fresh 0.2.0 install.
