-- What an application gets from SQL besides isolation: its tenant in one
-- round trip, its own audit events, and JWTs checked the way auth servers
-- issue them.
\set SHOW_CONTEXT never
SET client_min_messages = warning;
SELECT (tenancy.register_tenant('app-one', 'App One', '{"plan": "pro"}')).identifier;
SET ROLE tenancy_app;
-- current_tenant_info(): no row without a tenant; the tenant's row with one.
SELECT count(*) AS rows_without_tenant FROM tenancy.current_tenant_info();
SELECT tenancy.set_tenant('app-one') IS NOT NULL AS as_app_one;
SELECT identifier, name, status, isolation, metadata, id = tenancy.current_tenant() AS same_id
  FROM tenancy.current_tenant_info();
-- audit(): the application's own events, for its tenant, stored as app.<action>.
SELECT tenancy.audit('invoice.sent', '{"invoice": 42}') > 0 AS audited;
SELECT tenancy.audit('Invoice Sent');
\echo :LAST_ERROR_SQLSTATE
SELECT tenancy.audit('user.invited', '[1]');
\echo :LAST_ERROR_SQLSTATE
BEGIN;
SELECT tenancy.audit('rolled.back') > 0 AS audited;
ROLLBACK;
SELECT tenancy.reset_tenant();
SELECT tenancy.audit('no.tenant');
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
SELECT action, tenant_identifier, details, role FROM tenancy.audit_log
 WHERE action LIKE 'app.%' ORDER BY id;

-- JWTs: audience, issuer and a maximum lifetime, when configured.
SELECT tenancy.add_signing_key('app-auth', decode(repeat('7b', 32), 'hex'));
SELECT decode(repeat('7b', 32), 'hex') AS secret, extract(epoch FROM now())::bigint AS now \gset
SET tenancy.jwt_audience = 'api';
SET tenancy.jwt_issuer = 'https://auth.example';
SET ROLE tenancy_app;
SELECT regress.try_jwt(regress.jwt('{"alg": "HS256"}', jsonb_build_object('tenant', 'app-one', 'iat', :now, 'exp', :now + 600,
       'aud', 'api', 'iss', 'https://auth.example'), :'secret')) AS matching;
SELECT regress.try_jwt(regress.jwt('{"alg": "HS256"}', jsonb_build_object('tenant', 'app-one', 'iat', :now, 'exp', :now + 600,
       'aud', jsonb_build_array('web', 'api'), 'iss', 'https://auth.example'), :'secret')) AS audience_in_list;
SELECT regress.try_jwt(regress.jwt('{"alg": "HS256"}', jsonb_build_object('tenant', 'app-one', 'iat', :now, 'exp', :now + 600,
       'aud', 'web', 'iss', 'https://auth.example'), :'secret')) AS wrong_audience;
SELECT regress.try_jwt(regress.jwt('{"alg": "HS256"}', jsonb_build_object('tenant', 'app-one', 'iat', :now, 'exp', :now + 600,
       'iss', 'https://auth.example'), :'secret')) AS no_audience;
SELECT regress.try_jwt(regress.jwt('{"alg": "HS256"}', jsonb_build_object('tenant', 'app-one', 'iat', :now, 'exp', :now + 600,
       'aud', 'api', 'iss', 'https://evil.example'), :'secret')) AS wrong_issuer;
RESET ROLE;
RESET tenancy.jwt_audience;
RESET tenancy.jwt_issuer;
SET tenancy.jwt_max_lifetime = '1h';
SET ROLE tenancy_app;
SELECT regress.try_jwt(regress.jwt('{"alg": "HS256"}', jsonb_build_object('tenant', 'app-one', 'iat', :now, 'exp', :now + 7200), :'secret')) AS two_hours;
SELECT regress.try_jwt(regress.jwt('{"alg": "HS256"}', jsonb_build_object('tenant', 'app-one', 'iat', :now, 'exp', :now + 3000), :'secret')) AS fifty_minutes;
SELECT tenancy.reset_tenant();
RESET ROLE;
RESET tenancy.jwt_max_lifetime;
SELECT tenancy.retire_signing_key('app-auth');

-- Each condition an application branches on has its own SQLSTATE:
-- unknown P0002 (404), suspended 55000 (403), deleted or destroyed 42704
-- (410), no tenant while one is required 0P000, invalid token 28000 (401).
SELECT (tenancy.register_tenant('app-paused', 'Paused')).identifier;
SELECT (tenancy.suspend_tenant('app-paused')).status;
SELECT (tenancy.register_tenant('app-gone', 'Gone')).identifier;
SELECT (tenancy.delete_tenant('app-gone')).status;
SELECT (tenancy.register_tenant('app-doomed', 'Doomed')).identifier;
SET ROLE tenancy_app;
\set VERBOSITY sqlstate
SELECT tenancy.set_tenant('app-nobody');
SELECT tenancy.set_tenant('app-paused');
SELECT tenancy.set_tenant('app-gone');
SELECT tenancy.set_tenant_token('tn1.k.x.1.y');
SELECT tenancy.set_tenant('app-doomed') IS NOT NULL AS as_doomed;
RESET ROLE;
SELECT (tenancy.delete_tenant('app-doomed', destroy_data => true)).identifier;
SET ROLE tenancy_app;
SELECT tenancy.current_tenant();
SELECT tenancy.reset_tenant();
RESET ROLE;
SET tenancy.require_tenant = on;
SET ROLE tenancy_app;
SELECT tenancy.current_tenant();
RESET ROLE;
RESET tenancy.require_tenant;
\set VERBOSITY default
