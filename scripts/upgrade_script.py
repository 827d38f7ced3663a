#!/usr/bin/env python3
"""Write the upgrade script between two releases of the extension.

Both versions are installed in scratch databases (OLD_DB from the previous
release's install script, NEW_DB from this build's), and their catalogs are
compared object by object, the way tests/upgrade/catalog.sql compares an
updated database with a fresh install. What PostgreSQL can print back is
generated from the new catalog: routines (pg_get_functiondef), views,
triggers, event triggers, comments and privileges. The routines written in
SQL (sql/policies.sql, sql/schemas.sql, sql/verify.sql) are not repeated:
tenancy.replace_routines() installs them from the library (api/routines.rs).
What the catalogs cannot tell (tables, columns, constraints, indexes,
policies, data) is written by hand between the two HAND_WRITTEN marker lines
of the script itself, which are kept from the script as it is (SCRIPT, which
may not exist yet); the differences they must cover are listed on stderr,
and the upgrade test (catalog equality) is the gate.

    upgrade_script.py OLD_VERSION NEW_VERSION OLD_DB NEW_DB SCRIPT > script

psql reaches the databases through PGHOST, PGPORT and PGUSER.
"""
import json
import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# The files whose routines tenancy.replace_routines() installs (api/routines.rs).
SOURCES = ["sql/policies.sql", "sql/schemas.sql", "sql/verify.sql"]
HAND_WRITTEN = ("-- >>> hand-written: tables, data, what the catalogs cannot tell (kept by the generator)",
                "-- <<< hand-written")

MEMBERS = """
WITH members AS (
    SELECT d.classid, d.objid FROM pg_depend d JOIN pg_extension e ON e.oid = d.refobjid
     WHERE d.refclassid = 'pg_extension'::regclass AND e.extname = 'tenancy' AND d.deptype = 'e')
"""

QUERIES = {
    "routines": MEMBERS + """
SELECT coalesce(json_agg(json_build_object(
    'identity', p.oid::regprocedure::text, 'kind', p.prokind, 'language', l.lanname,
    'definition', pg_get_functiondef(p.oid), 'arguments', pg_get_function_arguments(p.oid),
    'result', pg_get_function_result(p.oid), 'acl', p.proacl::text,
    'grants', (SELECT coalesce(json_agg(json_build_array(
                   CASE a.grantee WHEN 0 THEN 'PUBLIC' ELSE quote_ident(a.grantee::regrole::text) END,
                   a.privilege_type, a.is_grantable) ORDER BY 1), '[]')
                 FROM aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) a
                WHERE a.grantee <> p.proowner),
    'comment', obj_description(p.oid, 'pg_proc'))), '[]')
  FROM members m JOIN pg_proc p ON p.oid = m.objid JOIN pg_language l ON l.oid = p.prolang
 WHERE m.classid = 'pg_proc'::regclass""",
    "views": MEMBERS + """
SELECT coalesce(json_agg(json_build_object(
    'name', c.oid::regclass::text, 'definition', pg_get_viewdef(c.oid, true),
    'columns', (SELECT string_agg(attname || ' ' || format_type(atttypid, atttypmod), ', ' ORDER BY attnum)
                  FROM pg_attribute WHERE attrelid = c.oid AND attnum > 0),
    'options', c.reloptions::text, 'comment', obj_description(c.oid, 'pg_class'),
    'acl', c.relacl::text,
    'grants', (SELECT coalesce(json_agg(json_build_array(
                   CASE a.grantee WHEN 0 THEN 'PUBLIC' ELSE quote_ident(a.grantee::regrole::text) END,
                   a.privilege_type, a.is_grantable) ORDER BY 1), '[]')
                 FROM aclexplode(coalesce(c.relacl, acldefault('r', c.relowner))) a
                WHERE a.grantee <> c.relowner))), '[]')
  FROM members m JOIN pg_class c ON c.oid = m.objid
 WHERE m.classid = 'pg_class'::regclass AND c.relkind = 'v'""",
    "triggers": MEMBERS + """
SELECT coalesce(json_agg(json_build_object(
    'name', t.tgname || ' on ' || t.tgrelid::regclass::text, 'trigger', t.tgname,
    'table', t.tgrelid::regclass::text, 'definition', pg_get_triggerdef(t.oid), 'enabled', t.tgenabled)), '[]')
  FROM members m JOIN pg_trigger t ON t.tgrelid = m.objid
 WHERE m.classid = 'pg_class'::regclass AND NOT t.tgisinternal""",
    "event_triggers": MEMBERS + """
SELECT coalesce(json_agg(json_build_object(
    'name', e.evtname, 'event', e.evtevent, 'function', e.evtfoid::regprocedure::text,
    'tags', e.evttags, 'enabled', e.evtenabled)), '[]')
  FROM members m JOIN pg_event_trigger e ON e.oid = m.objid
 WHERE m.classid = 'pg_event_trigger'::regclass""",
    # What only a hand-written step can change: one fact per line, as in
    # tests/upgrade/catalog.sql.
    "tables": MEMBERS + """, tables AS (
    SELECT c.oid FROM members m JOIN pg_class c ON c.oid = m.objid
     WHERE m.classid = 'pg_class'::regclass AND c.relkind <> 'v')
SELECT coalesce(json_agg(fact ORDER BY fact), '[]') FROM (
    SELECT format('relation %s kind=%s rls=%s force=%s acl=%s options=%s comment=%s', c.oid::regclass,
                  c.relkind, c.relrowsecurity, c.relforcerowsecurity, c.relacl, c.reloptions,
                  obj_description(c.oid, 'pg_class'))
      FROM tables t JOIN pg_class c ON c.oid = t.oid
    UNION ALL
    SELECT format('column %s.%s %s notnull=%s default=%s identity=%s generated=%s acl=%s',
                  a.attrelid::regclass, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,
                  pg_get_expr(ad.adbin, ad.adrelid), a.attidentity, a.attgenerated, a.attacl)
      FROM tables t JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum > 0 AND NOT a.attisdropped
      LEFT JOIN pg_attrdef ad ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum
    UNION ALL
    SELECT format('constraint %s.%s %s', conrelid::regclass, conname, pg_get_constraintdef(oid))
      FROM pg_constraint WHERE conrelid IN (SELECT oid FROM tables)
    UNION ALL
    SELECT 'index ' || pg_get_indexdef(indexrelid) FROM pg_index WHERE indrelid IN (SELECT oid FROM tables)
    UNION ALL
    SELECT format('policy %s.%s cmd=%s permissive=%s roles=%s using=%s check=%s', polrelid::regclass,
                  polname, polcmd, polpermissive, polroles::regrole[]::text,
                  pg_get_expr(polqual, polrelid), pg_get_expr(polwithcheck, polrelid))
      FROM pg_policy WHERE polrelid IN (SELECT oid FROM tables)
    UNION ALL
    SELECT format('configuration dump %s', unnest(extconfig)::regclass) FROM pg_extension WHERE extname = 'tenancy'
) facts(fact)""",
}


def catalog(db):
    result = {}
    for name, query in QUERIES.items():
        out = subprocess.run(["psql", "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-d", db, "-c", query],
                             check=True, capture_output=True, text=True).stdout
        result[name] = json.loads(out)
    return result


def by(key, rows):
    return {row[key]: row for row in rows}


def quote_literal(text):
    return "NULL" if text is None else "'" + text.replace("'", "''") + "'"


def grant_changes(was, now, on):
    """REVOKE what `was` grants and `now` does not, and GRANT the reverse, on
    `on` ("FUNCTION tenancy.f(text)", "tenancy.v")."""
    changes = [f"REVOKE {p} ON {on} FROM {g};" for g, p, _ in was if [g, p, False] not in now]
    changes += [f"GRANT {p} ON {on} TO {g};" for g, p, _ in now if [g, p, False] not in was]
    return changes


def default_privileges(identity):
    """Back to PostgreSQL's default privileges (no ACL, as a fresh install
    leaves a routine executable by PUBLIC), which GRANT cannot express: the
    catalog row and the extension's initial privileges."""
    regprocedure = f"{quote_literal(identity)}::pg_catalog.regprocedure"
    return [
        f"UPDATE pg_catalog.pg_proc SET proacl = NULL\n WHERE oid OPERATOR(pg_catalog.=) {regprocedure};",
        "DELETE FROM pg_catalog.pg_init_privs\n"
        " WHERE classoid OPERATOR(pg_catalog.=) 'pg_catalog.pg_proc'::pg_catalog.regclass\n"
        f"   AND objoid OPERATOR(pg_catalog.=) {regprocedure};",
    ]


def source_routines():
    """The names of the routines that sql/ defines (CREATE OR REPLACE …)."""
    names = set()
    for source in SOURCES:
        with open(os.path.join(ROOT, source)) as f:
            names.update(re.findall(r"^CREATE OR REPLACE (?:FUNCTION|PROCEDURE) (tenancy\.\w+)\(", f.read(), re.M))
    return names


def hand_written(script):
    """The hand-written part of the script as it is (empty for a new one)."""
    if not os.path.exists(script):
        return ""
    with open(script) as f:
        text = f.read()
    start, end = text.find(HAND_WRITTEN[0]), text.find(HAND_WRITTEN[1])
    if start < 0 or end < start:
        sys.exit(f"{script}: the hand-written part's marker lines are missing")
    return text[start + len(HAND_WRITTEN[0]):end].strip()


def main():
    old_version, new_version, old_db, new_db, script = sys.argv[1:6]
    old, new = catalog(old_db), catalog(new_db)
    drops, creates, after = [], [], []

    # Event triggers and triggers go first: they depend on routines.
    old_events, new_events = by("name", old["event_triggers"]), by("name", new["event_triggers"])
    for name, event in new_events.items():
        if old_events.get(name) != event:
            if name in old_events:
                drops.append(f"DROP EVENT TRIGGER {name};")
            when = ""
            if event["tags"]:
                when = " WHEN TAG IN (" + ", ".join(quote_literal(t) for t in event["tags"]) + ")"
            function = event["function"].split("(")[0]
            after.append(f"CREATE EVENT TRIGGER {name} ON {event['event']}{when}\n    EXECUTE FUNCTION {function}();")
            enable = {"A": "ENABLE ALWAYS", "R": "ENABLE REPLICA", "D": "DISABLE"}.get(event["enabled"])
            if enable:
                after.append(f"ALTER EVENT TRIGGER {name} {enable};")
    drops += [f"DROP EVENT TRIGGER {name};" for name in old_events if name not in new_events]

    old_triggers, new_triggers = by("name", old["triggers"]), by("name", new["triggers"])
    for name, trigger in new_triggers.items():
        previous = old_triggers.get(name)
        if previous is None or previous["definition"] != trigger["definition"]:
            after.append(trigger["definition"].replace("CREATE TRIGGER", "CREATE OR REPLACE TRIGGER", 1) + ";")
        if (previous or {}).get("enabled", "O") != trigger["enabled"]:
            enable = {"O": "ENABLE", "A": "ENABLE ALWAYS", "R": "ENABLE REPLICA", "D": "DISABLE"}[trigger["enabled"]]
            after.append(f"ALTER TABLE {trigger['table']} {enable} TRIGGER {trigger['trigger']};")
    drops += [f"DROP TRIGGER {t['trigger']} ON {t['table']};" for n, t in old_triggers.items() if n not in new_triggers]

    # Views: replaced in place when their columns only grow; else dropped first.
    old_views, new_views = by("name", old["views"]), by("name", new["views"])
    for name, view in new_views.items():
        previous = old_views.get(name)
        if previous and not view["columns"].startswith(previous["columns"]):
            drops.append(f"DROP VIEW {name};")
            previous = None
        if previous is None or previous["definition"] != view["definition"]:
            verb = "CREATE OR REPLACE VIEW" if previous else "CREATE VIEW"
            options = f" WITH ({view['options'].strip('{}')})" if view["options"] else ""
            after.append(f"{verb} {name}{options} AS\n{view['definition'].rstrip(';')};")
        if (previous or {}).get("comment") != view["comment"]:
            after.append(f"COMMENT ON VIEW {name} IS {quote_literal(view['comment'])};")
        after += grant_changes(previous.get("grants", []) if previous else [], view["grants"], name)
    drops += [f"DROP VIEW {name};" for name in old_views if name not in new_views]

    # Routines: a new identity is created, a changed one replaced (dropped
    # first when CREATE OR REPLACE cannot change it: result, argument names
    # or defaults), a gone one dropped. SQL-language bodies are checked when
    # created: those come after the others.
    old_routines, new_routines = by("identity", old["routines"]), by("identity", new["routines"])
    routines = sorted(new_routines.values(), key=lambda r: (r["language"] == "sql", r["identity"]))
    from_sources = source_routines()
    privileges = []
    for routine in routines:
        identity, previous = routine["identity"], old_routines.get(routine["identity"])
        kind = "PROCEDURE" if routine["kind"] == "p" else "FUNCTION"
        if previous and (previous["result"], previous["arguments"]) != (routine["result"], routine["arguments"]):
            drops.append(f"DROP {kind} {identity};")
            previous = None
        changed = previous is None or previous["definition"] != routine["definition"]
        if changed and identity.split("(")[0] not in from_sources:
            creates.append(routine["definition"].strip() + ";")
        was = previous["grants"] if previous else [["PUBLIC", "EXECUTE", False]]
        if previous is not None and previous["acl"] is not None and routine["acl"] is None:
            privileges += default_privileges(identity)
        elif previous is None or previous["acl"] != routine["acl"]:
            privileges += grant_changes(was, routine["grants"], f"{kind} {identity}")
        if (previous or {}).get("comment") != routine["comment"]:
            privileges.append(f"COMMENT ON {kind} {identity} IS {quote_literal(routine['comment'])};")
    for identity, routine in old_routines.items():
        if identity not in new_routines:
            drops.append(f"DROP {'PROCEDURE' if routine['kind'] == 'p' else 'FUNCTION'} {identity};")

    # Every routine of sql/, as this library has it: the older steps of a
    # chain may have left any earlier version.
    creates.append("SELECT tenancy.replace_routines();")

    # What only a hand-written step can change.
    missing = sorted(set(new["tables"]) - set(old["tables"]))
    gone = sorted(set(old["tables"]) - set(new["tables"]))
    if missing or gone:
        print(f"The hand-written part of {script} must make these changes:", file=sys.stderr)
        for fact in gone:
            print(f"  - {fact}", file=sys.stderr)
        for fact in missing:
            print(f"  + {fact}", file=sys.stderr)

    hand = hand_written(script)
    sections = [
        (f"-- tenancy {old_version} → {new_version} (ALTER EXTENSION tenancy UPDATE).\n"
         f"-- Generated by scripts/upgrade-script.sh from the catalogs of both releases: change\n"
         f"-- the sources and run it again; edit only the hand-written part, between its\n"
         f"-- two marker lines below (it runs before the generated routines, views and triggers).\n"
         f"\\echo Use \"ALTER EXTENSION tenancy UPDATE TO '{new_version}'\" to load this file. \\quit"),
        ("-- What depends on routines that change, and what is gone.", drops),
        (HAND_WRITTEN[0], [hand + "\n" + HAND_WRITTEN[1]] if hand else [HAND_WRITTEN[1]]),
        ("-- Routines, new and changed.", creates),
        ("-- Views, triggers and event triggers, new and changed.", after),
        ("-- Privileges and comments.", privileges),
    ]
    parts = [sections[0]]
    for title, statements in sections[1:]:
        if statements:
            parts.append(title + "\n" + "\n\n".join(statements))
    print("\n\n".join(parts))


if __name__ == "__main__":
    main()
