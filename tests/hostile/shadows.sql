-- Schema `hostile`, owned by a role without privileges, first on every
-- role's search_path in the hostile-environment layer (tests/hostile/run.sh).
-- It shadows PostgreSQL's operators and functions wherever PostgreSQL's own
-- is not an exact match for the argument types (a polymorphic, variadic or
-- coerced candidate): there an exact match on the path wins even though
-- pg_catalog is searched first, so whatever resolves one of them through the
-- caller's search_path runs the shadow instead.
--
-- A shadow called by a client's own statement does what PostgreSQL's would
-- (the test suites run unchanged). Called from anything nested (the
-- extension's SQL, a statement its code runs, a function), it writes a line
-- to the server log, which fails the layer even if the error is caught, and
-- raises. Functions the tests define themselves pin their search_path.
-- (Role tenancy_hostile, without privileges, owns it: tests/hostile/run.sh.)
CREATE SCHEMA hostile AUTHORIZATION tenancy_hostile;
GRANT USAGE ON SCHEMA hostile TO PUBLIC;
SET ROLE tenancy_hostile;
CREATE FUNCTION hostile.nested(what text) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    stack text;
BEGIN
    GET DIAGNOSTICS stack = PG_CONTEXT;
    -- This function, the PERFORM that called it, and the shadow: a fourth
    -- line means the shadow was not called by a client's statement itself.
    IF array_length(string_to_array(stack, E'\n'), 1) > 3 THEN
        RAISE LOG 'tenancy-hostile: % ran as % (session %): %', what, current_user, session_user, stack;
        RAISE EXCEPTION 'tenancy-hostile: % ran as %', what, current_user;
    END IF;
END $$;
DO $$
DECLARE
    types text[] := ARRAY['text', 'name', 'uuid', 'oid', 'regclass', 'regnamespace', 'regrole',
        'regprocedure', 'regtype', '"char"', 'int2', 'int4', 'int8', 'numeric', 'bool', 'jsonb',
        'timestamptz', 'interval', 'bytea', 'xid8', 'inet', 'text[]', 'name[]', 'oid[]', 'uuid[]'];
    operators text[] := ARRAY['=', '<>', '<', '>', '<=', '>=', '||', '~', '~*', '~~', '@>', '->',
        '->>', '+', '-', '*'];
    unary_functions text[] := ARRAY['lower', 'upper', 'quote_ident', 'quote_literal', 'length',
        'btrim', 'to_regclass', 'jsonb_typeof', 'floor', 'cardinality', 'md5', 'format', 'concat',
        'array_length', 'pg_get_userbyid'];
    binary_functions text[] := ARRAY['format', 'array_to_string', 'array_append', 'pg_notify',
        'split_part', 'replace', 'has_table_privilege', 'has_function_privilege', 'pg_has_role',
        'pg_get_expr', 'string_to_array', 'concat_ws', 'left', 'right', 'starts_with', 'strpos'];
    t1 text;
    t2 text;
    op text;
    fn text;
    result_type text;
    n integer := 0;
BEGIN
    FOREACH op IN ARRAY operators LOOP
        FOREACH t1 IN ARRAY types LOOP
            FOREACH t2 IN ARRAY types LOOP
                CONTINUE WHEN EXISTS (SELECT FROM pg_operator
                                       WHERE oprname = op AND oprleft = t1::regtype AND oprright = t2::regtype
                                         AND oprnamespace = 'pg_catalog'::regnamespace);
                BEGIN   -- what PostgreSQL's own operator gives for these types, if any
                    EXECUTE format('SELECT pg_typeof(NULL::%s OPERATOR(pg_catalog.%s) NULL::%s)::text', t1, op, t2)
                       INTO result_type;
                EXCEPTION WHEN OTHERS THEN
                    CONTINUE;
                END;
                n := n + 1;
                EXECUTE format('CREATE FUNCTION hostile.op%s(a %s, b %s) RETURNS %s LANGUAGE plpgsql '
                               'SET search_path = pg_catalog, pg_temp AS '
                               '$f$BEGIN PERFORM hostile.nested(%L); RETURN a OPERATOR(pg_catalog.%s) b; END$f$',
                               n, t1, t2, result_type, format('operator %s(%s, %s)', op, t1, t2), op);
                EXECUTE format('CREATE OPERATOR hostile.%s (FUNCTION = hostile.op%s, LEFTARG = %s, RIGHTARG = %s)',
                               op, n, t1, t2);
            END LOOP;
        END LOOP;
    END LOOP;
    FOREACH fn IN ARRAY unary_functions LOOP
        FOREACH t1 IN ARRAY types LOOP
            CONTINUE WHEN EXISTS (SELECT FROM pg_proc
                                   WHERE proname = fn AND pronamespace = 'pg_catalog'::regnamespace
                                     AND proargtypes::oid[] = ARRAY[t1::regtype::oid]);
            BEGIN
                EXECUTE format('SELECT pg_typeof(pg_catalog.%I(NULL::%s))::text', fn, t1) INTO result_type;
            EXCEPTION WHEN OTHERS THEN
                CONTINUE;
            END;
            EXECUTE format('CREATE FUNCTION hostile.%I(a %s) RETURNS %s LANGUAGE plpgsql '
                           'SET search_path = pg_catalog, pg_temp AS '
                           '$f$BEGIN PERFORM hostile.nested(%L); RETURN pg_catalog.%I(a); END$f$',
                           fn, t1, result_type, format('function %s(%s)', fn, t1), fn);
        END LOOP;
    END LOOP;
    FOREACH fn IN ARRAY binary_functions LOOP
        FOREACH t1 IN ARRAY types LOOP
            FOREACH t2 IN ARRAY types LOOP
                CONTINUE WHEN EXISTS (SELECT FROM pg_proc
                                       WHERE proname = fn AND pronamespace = 'pg_catalog'::regnamespace
                                         AND proargtypes::oid[] = ARRAY[t1::regtype::oid, t2::regtype::oid]);
                BEGIN
                    EXECUTE format('SELECT pg_typeof(pg_catalog.%I(NULL::%s, NULL::%s))::text', fn, t1, t2)
                       INTO result_type;
                EXCEPTION WHEN OTHERS THEN
                    CONTINUE;
                END;
                EXECUTE format('CREATE FUNCTION hostile.%I(a %s, b %s) RETURNS %s LANGUAGE plpgsql '
                               'SET search_path = pg_catalog, pg_temp AS '
                               '$f$BEGIN PERFORM hostile.nested(%L); RETURN pg_catalog.%I(a, b); END$f$',
                               fn, t1, t2, result_type, format('function %s(%s, %s)', fn, t1, t2), fn);
            END LOOP;
        END LOOP;
    END LOOP;
END $$;
RESET ROLE;
