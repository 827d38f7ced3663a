-- tenancy 0.1.0 → 0.2.0 (ALTER EXTENSION tenancy UPDATE)
\echo Use "ALTER EXTENSION tenancy UPDATE TO '0.2.0'" to load this file. \quit
