-- Signed tenant context: tokens and JWTs that an injected query cannot forge.
\set SHOW_CONTEXT never
-- JWTs are crafted here with regress.hmac_sha256 (setup.sql), independently
-- of the extension's own signer.
DO $$ BEGIN
    PERFORM tenancy.register_tenant('tok-a', 'A');
    PERFORM tenancy.register_tenant('tok-b', 'B');
    PERFORM tenancy.register_tenant('tok-c', 'C');
END $$;

-- Keys: none yet, then a generated one and one shared with an auth server.
SELECT tenancy.issue_token('tok-a');
\echo :LAST_ERROR_SQLSTATE
SELECT tenancy.add_signing_key('k1');
SELECT tenancy.add_signing_key('authserver', decode(repeat('5a', 32), 'hex'));
SELECT tenancy.add_signing_key('short', '\x0102');
\echo :LAST_ERROR_SQLSTATE
SELECT tenancy.add_signing_key('Bad Kid');
SELECT kid, length(secret) AS secret_bytes, retired_at FROM tenancy.signing_keys ORDER BY kid;

-- The application role can neither read the keys nor issue tokens.
SET ROLE tenancy_app;
SELECT * FROM tenancy.signing_keys;
\echo :LAST_ERROR_SQLSTATE
SELECT tenancy.issue_token('tok-a');
RESET ROLE;

-- A gateway role is granted issue_token and signs with the newest key.
GRANT EXECUTE ON FUNCTION tenancy.issue_token(text, interval) TO tenancy_admin;
SET ROLE tenancy_admin;
SELECT tenancy.issue_token('tok-a', '10 minutes') AS tok_a \gset
SELECT tenancy.issue_token('tok-b') AS tok_b \gset
SELECT tenancy.issue_token('tok-c') AS tok_c \gset
SELECT tenancy.issue_token('tok-a', '0 seconds');
\echo :LAST_ERROR_SQLSTATE
SELECT tenancy.issue_token('nobody');
RESET ROLE;
SELECT :'tok_a' ~ '^tn1\.authserver\.[A-Za-z0-9_-]{22}\.[0-9]+\.[A-Za-z0-9_-]{43}$' AS well_formed;

-- The application presents it.
SET ROLE tenancy_app;
SELECT tenancy.set_tenant_token(:'tok_a') IS NOT NULL AS set;
SELECT tenancy.current_tenant_identifier();
BEGIN;
SELECT tenancy.set_tenant_token(:'tok_b', is_local => true) IS NOT NULL AS set_local;
SELECT tenancy.current_tenant_identifier();
COMMIT;
SELECT tenancy.current_tenant_identifier() AS back_to_session;

-- Tampering with any single character, at every position, is refused.
CREATE FUNCTION pg_temp.try_token(t text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    PERFORM tenancy.set_tenant_token(t);
    RETURN 'accepted';
EXCEPTION WHEN OTHERS THEN
    RETURN SQLSTATE;
END $$;
SELECT count(*) = length(:'tok_a') AS every_position, count(*) FILTER (WHERE r = 'accepted') AS accepted,
       array_agg(DISTINCT r) AS outcomes
  FROM (SELECT pg_temp.try_token(overlay(:'tok_a' PLACING
               CASE WHEN substr(:'tok_a', i, 1) = 'x' THEN 'y' ELSE 'x' END FROM i FOR 1)) AS r
          FROM generate_series(1, length(:'tok_a')) i) t;
-- Truncated, extended, swapped parts, another key's id, garbage.
SELECT pg_temp.try_token(left(:'tok_a', -1)) AS truncated,
       pg_temp.try_token(:'tok_a' || 'A') AS extended,
       pg_temp.try_token(replace(:'tok_a', 'authserver', 'k1')) AS other_kid,
       pg_temp.try_token(replace(:'tok_a', 'authserver', 'nokey')) AS unknown_kid,
       pg_temp.try_token('') AS empty, pg_temp.try_token('tn1.a.b.c.d') AS garbage;
SELECT tenancy.set_tenant_token(replace(:'tok_a', 'authserver', 'nokey'));
\echo :LAST_ERROR_SQLSTATE
-- A token's tenant id cannot be swapped for another's (the signature covers it).
SELECT pg_temp.try_token(split_part(:'tok_a', '.', 1) || '.' || split_part(:'tok_a', '.', 2) || '.' ||
       split_part(:'tok_b', '.', 3) || '.' || split_part(:'tok_a', '.', 4) || '.' ||
       split_part(:'tok_a', '.', 5)) AS swapped_tenant;
SELECT tenancy.current_tenant_identifier() AS unchanged;
RESET ROLE;

-- Expired.
SET ROLE tenancy_admin;
SELECT tenancy.issue_token('tok-a', '1 second') AS short_lived \gset
RESET ROLE;
SELECT pg_sleep(1.2);
SET ROLE tenancy_app;
SELECT tenancy.set_tenant_token(:'short_lived');
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;

-- Suspended and destroyed tenants are refused even with a valid token.
SELECT status FROM tenancy.suspend_tenant('tok-c');
SELECT status FROM tenancy.delete_tenant('tok-b', destroy_data => true);
SET ROLE tenancy_app;
SELECT tenancy.set_tenant_token(:'tok_c');
\echo :LAST_ERROR_SQLSTATE
SELECT pg_temp.try_token(:'tok_b') AS destroyed_tenant;
RESET ROLE;

-- require_token: the application role can no longer pick a tenant by name;
-- the gateway role (it may issue tokens) still can.
SET tenancy.require_token = on;
SET ROLE tenancy_app;
SELECT tenancy.set_tenant('tok-a');
\echo :LAST_ERROR_SQLSTATE
SELECT tenancy.set_tenant_token(:'tok_a') IS NOT NULL AS token_still_works;
SET tenancy.require_token = off;
RESET ROLE;
SET ROLE tenancy_admin;
SELECT tenancy.set_tenant('tok-a') IS NOT NULL AS gateway_by_name;
RESET ROLE;
RESET tenancy.require_token;

-- JWT (HS256) from an auth server sharing the 'authserver' key.
SELECT decode(repeat('5a', 32), 'hex') AS secret, extract(epoch FROM now())::bigint AS now \gset
SELECT id AS tok_a_id FROM tenancy.tenants WHERE identifier = 'tok-a' \gset
SET ROLE tenancy_app;
SELECT regress.try_jwt(regress.jwt('{"alg": "HS256", "typ": "JWT", "kid": "authserver"}',
                                   jsonb_build_object('tenant', 'tok-a', 'exp', :now + 600, 'iat', :now), :'secret')) AS with_kid;
SELECT tenancy.current_tenant_identifier();
SELECT regress.try_jwt(regress.jwt('{"alg": "HS256"}',
                                   jsonb_build_object('tenant', :'tok_a_id', 'exp', :now + 600, 'iat', :now), :'secret')) AS by_id_without_kid;
SELECT regress.try_jwt(regress.jwt('{"alg": "HS256"}',
                                   jsonb_build_object('tenant', 'tok-a', 'exp', :now + 600, 'iat', :now), '\x00000000000000000000000000000000')) AS wrong_secret;
SELECT regress.try_jwt(regress.b64url(convert_to('{"alg": "none"}', 'utf8')) || '.' ||
                       regress.b64url(convert_to('{"tenant": "tok-a", "exp": 9999999999}', 'utf8')) || '.') AS alg_none;
SELECT regress.try_jwt(regress.jwt('{"alg": "RS256"}',
                                   jsonb_build_object('tenant', 'tok-a', 'exp', :now + 600, 'iat', :now), :'secret')) AS alg_rs256;
SELECT regress.try_jwt(regress.jwt('{"alg": "HS256"}',
                                   jsonb_build_object('tenant', 'tok-a', 'exp', :now - 10, 'iat', :now - 700), :'secret')) AS expired;
SELECT regress.try_jwt(regress.jwt('{"alg": "HS256"}', '{"tenant": "tok-a"}', :'secret')) AS no_exp;
SELECT regress.try_jwt(regress.jwt('{"alg": "HS256"}',
                                   jsonb_build_object('tenant', 'tok-a', 'exp', :now + 600, 'nbf', :now + 300, 'iat', :now), :'secret')) AS not_yet;
SELECT regress.try_jwt(regress.jwt('{"alg": "HS256"}', jsonb_build_object('sub', 'x', 'exp', :now + 600, 'iat', :now), :'secret')) AS no_claim;
SELECT regress.try_jwt(regress.jwt('{"alg": "HS256"}',
                                   jsonb_build_object('tenant', 'tok-c', 'exp', :now + 600, 'iat', :now), :'secret')) AS suspended_tenant;

-- A JWT that names a tenant by identifier carries iat and does not predate
-- the tenant; time claims are numbers; a kid that is no key id is not echoed.
SELECT regress.try_jwt(regress.jwt('{"alg": "HS256"}',
                                   jsonb_build_object('tenant', 'tok-a', 'exp', :now + 600), :'secret')) AS no_iat;
SELECT regress.try_jwt(regress.jwt('{"alg": "HS256"}',
                                   jsonb_build_object('tenant', 'tok-a', 'exp', :now + 600, 'iat', :now - 3600), :'secret')) AS issued_before_tenant;
SELECT regress.try_jwt(regress.jwt('{"alg": "HS256"}',
                                   jsonb_build_object('tenant', 'tok-a', 'exp', :now + 600, 'iat', :now, 'nbf', 'tomorrow'), :'secret')) AS nbf_not_a_number;
SELECT regress.try_jwt(regress.jwt('{"alg": "HS256"}',
                                   jsonb_build_object('tenant', 'tok-a', 'exp', (:now + 600)::text, 'iat', :now), :'secret')) AS exp_not_a_number;
SELECT regress.try_jwt(regress.jwt(jsonb_build_object('alg', 'HS256', 'kid', E'k1\nLOG:  forged line'),
                                   jsonb_build_object('tenant', 'tok-a', 'exp', :now + 600, 'iat', :now), :'secret')) AS kid_with_newline;
RESET ROLE;
-- A JWT issued for a destroyed tenant does not open the tenant registered
-- later under the same identifier.
SELECT (tenancy.register_tenant('reborn', 'Reborn')).identifier AS registered;
SELECT floor(extract(epoch FROM created_at))::bigint AS reborn_at FROM tenancy.tenants WHERE identifier = 'reborn' \gset
SELECT regress.jwt('{"alg": "HS256"}', jsonb_build_object('tenant', 'reborn', 'exp', :now + 600, 'iat', :reborn_at), :'secret') AS old_jwt \gset
SET ROLE tenancy_app;
SELECT regress.try_jwt(:'old_jwt') AS opens_its_tenant;
SELECT tenancy.reset_tenant();
RESET ROLE;
-- Not in the transaction that destroyed it: until that one commits, the
-- destroyed tenant is the one other sessions see, and a JWT issued for it
-- meanwhile would be younger than the new one (threat-model row 112).
BEGIN;
SELECT identifier FROM tenancy.delete_tenant('reborn', destroy_data => true);
SELECT identifier FROM tenancy.register_tenant('reborn', 'Reborn at once');
ROLLBACK;
SELECT identifier FROM tenancy.delete_tenant('reborn', destroy_data => true);
SELECT pg_sleep(1.1);
SELECT (tenancy.register_tenant('reborn', 'Reborn again')).identifier AS registered_again;
SET ROLE tenancy_app;
SELECT regress.try_jwt(:'old_jwt') AS opens_the_successor;

-- PostgREST: db-pre-request verifies the Authorization header's JWT itself,
-- so a forged request.jwt.claims cannot choose a tenant.
SELECT regress.jwt('{"alg": "HS256"}', jsonb_build_object('tenant', 'tok-a', 'exp', :now + 600, 'iat', :now), :'secret') AS jwt \gset
SELECT tenancy.reset_tenant();
BEGIN;
SELECT set_config('request.headers', json_build_object('authorization', 'Bearer ' || :'jwt')::text, true) IS NOT NULL AS header;
SELECT set_config('request.jwt.claims', '{"tenant": "tok-c"}', true) IS NOT NULL AS forged_claims;
SELECT tenancy.postgrest_pre_request();
SELECT tenancy.current_tenant_identifier();
COMMIT;
SELECT tenancy.current_tenant() IS NULL AS request_scoped;
BEGIN;
SELECT set_config('request.headers', '{"authorization": "Bearer forged.jwt.value"}', true) IS NOT NULL AS header;
SELECT tenancy.postgrest_pre_request();
ROLLBACK;
BEGIN;
SELECT set_config('request.headers', '{}', true) IS NOT NULL AS no_header;
SELECT tenancy.postgrest_pre_request();
SELECT tenancy.current_tenant() IS NULL AS anonymous_request_has_no_tenant;
COMMIT;
-- No header: no tenant, even when the session held one before the request.
SELECT tenancy.set_tenant('tok-a') IS NOT NULL AS session_tenant;
BEGIN;
SELECT set_config('request.headers', '{}', true) IS NOT NULL AS no_header;
SELECT tenancy.postgrest_pre_request();
SELECT tenancy.current_tenant() IS NULL AS earlier_tenant_not_kept;
COMMIT;
SELECT tenancy.reset_tenant();
RESET ROLE;

-- A custom claim name.
SET tenancy.jwt_claim = 'org';
SET ROLE tenancy_app;
SELECT regress.try_jwt(regress.jwt('{"alg": "HS256"}', jsonb_build_object('org', 'tok-a', 'exp', :now + 600, 'iat', :now), :'secret')) AS org_claim;
RESET ROLE;
RESET tenancy.jwt_claim;

-- Rotation: retiring a key refuses its tokens; new tokens use the newest active key.
SELECT tenancy.retire_signing_key('authserver');
SELECT tenancy.retire_signing_key('nokey');
SET ROLE tenancy_app;
SELECT tenancy.set_tenant_token(:'tok_a');
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
SET ROLE tenancy_admin;
SELECT split_part(tenancy.issue_token('tok-a'), '.', 2) AS signed_with;
SELECT tenancy.issue_token('tok-a') AS tok_k1 \gset
RESET ROLE;
SET ROLE tenancy_app;
SELECT tenancy.set_tenant_token(:'tok_k1') IS NOT NULL AS new_key_works;
RESET ROLE;

-- Key changes are audited (never the secret).
SELECT action, details FROM tenancy.audit_log WHERE action = 'key' ORDER BY id;
REVOKE EXECUTE ON FUNCTION tenancy.issue_token(text, interval) FROM tenancy_admin;
