//! Which catalog objects a stretch of code creates, alters or drops, and in
//! which schema they live: PostgreSQL's object access hook (as sepgsql uses
//! it), recording only while `watch` runs. The same hook tells security.rs
//! which function an expression is about to call, and a feature each
//! foreign key PostgreSQL records, before PostgreSQL validates it.

use super::rows;
use pgrx::pg_sys;
use pgrx::prelude::*;
use std::ffi::CStr;

/// Where an object lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    /// In a schema: namespaced objects, and triggers, policies, rules and
    /// column defaults in their table's schema; a schema is its own.
    Schema(pg_sys::Oid),
    /// Outside every schema (roles, casts, languages, event triggers, default
    /// privileges for every schema, …).
    Global,
    /// Made by PostgreSQL for another object (a foreign key's triggers), or
    /// a column default (its column's change is reported on the table).
    Internal,
    /// No longer exists.
    Gone,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Created,
    Altered,
    Dropped,
}

/// Where an object lives, and the relation it is or belongs to (a table, a
/// view or a sequence; the table of a trigger, policy or rule).
#[derive(Debug, Clone, Copy)]
pub struct Location {
    pub placement: Placement,
    pub relation: Option<pg_sys::Oid>,
}

/// One change of a catalog object (of catalog `class`): where it was when it
/// changed (altered and dropped objects) and where it is when `watch` returns.
#[derive(Debug, Clone)]
pub struct Change {
    pub kind: Kind,
    pub class: pg_sys::Oid,
    pub object: pg_sys::Oid,
    pub before: Option<(Location, String)>,
    pub after: Location,
    sub: i32,
}

impl Change {
    /// What PostgreSQL calls the object ("function f(integer)", "table s.t"),
    /// as it is now, or as it was.
    pub fn description(&self) -> String {
        describe(self.class, self.object, self.sub)
            .or_else(|| self.before.as_ref().map(|(_, d)| d.clone()))
            .unwrap_or_else(|| format!("object {} of catalog {}", self.object, self.class))
    }
}

struct Seen {
    kind: Kind,
    before: Option<(Location, String)>,
    class: pg_sys::Oid,
    object: pg_sys::Oid,
    sub: i32,
}

/// Read at every function call's initialisation: plain statics (see
/// `BackendCell`).
static PREVIOUS: super::BackendCell<pg_sys::object_access_hook_type> =
    super::BackendCell::new(None);
/// What `watch` has seen so far, while it runs.
static WATCHING: super::BackendRefCell<Option<Vec<Seen>>> = super::BackendRefCell::new(None);

/// A foreign key as PostgreSQL records it.
pub struct ForeignKey {
    /// The key (its pg_constraint row).
    pub constraint: pg_sys::Oid,
    /// The referencing table.
    pub relation: pg_sys::Oid,
    /// The referenced table.
    pub referenced: pg_sys::Oid,
}

/// What a feature checks of each new foreign key (see `init`).
static ON_FOREIGN_KEY: super::BackendCell<Option<fn(&ForeignKey)>> = super::BackendCell::new(None);

/// Once per backend, from _PG_init. `on_foreign_key` sees every foreign key
/// as PostgreSQL records it (also one it clones to a partition or rebuilds
/// after a column's type changed), before it validates the key against
/// existing rows: raising there refuses the key before any of its checks
/// runs.
pub fn init(on_foreign_key: fn(&ForeignKey)) {
    ON_FOREIGN_KEY.set(Some(on_foreign_key));
    // SAFETY: chaining the hook as every extension does, once per backend.
    unsafe {
        PREVIOUS.set(pg_sys::object_access_hook);
        pg_sys::object_access_hook = Some(object_access);
    }
}

/// Run `f` and return every catalog object it created, altered or dropped
/// (what PostgreSQL did on its own for another object, such as a table's
/// row type, is left out).
pub fn watch<R>(f: impl FnOnce() -> R) -> (R, Vec<Change>) {
    struct Stop;
    impl Drop for Stop {
        fn drop(&mut self) {
            WATCHING.with_borrow_mut(|w| *w = None);
        }
    }
    WATCHING.with_borrow_mut(|w| *w = Some(Vec::new()));
    let stop = Stop;
    let result = f();
    let seen = WATCHING.with_borrow_mut(|w| w.take()).unwrap_or_default();
    drop(stop);
    // SAFETY: makes what `f` created visible to the lookups below.
    unsafe { pg_sys::CommandCounterIncrement() };
    let changes = seen
        .into_iter()
        .map(|s| Change {
            kind: s.kind,
            after: locate(s.class, s.object),
            before: s.before,
            class: s.class,
            object: s.object,
            sub: s.sub,
        })
        .collect();
    (result, changes)
}

/// Not guarded: an error raised by the next hook passes through unchanged
/// (this frame owns nothing to drop).
unsafe extern "C-unwind" fn object_access(
    access: pg_sys::ObjectAccessType::Type,
    class: pg_sys::Oid,
    object: pg_sys::Oid,
    sub: i32,
    arg: *mut std::ffi::c_void,
) {
    // Every expression's function passes here: only user code pays more.
    if access == pg_sys::ObjectAccessType::OAT_FUNCTION_EXECUTE
        && crate::postgres::security::running_others_code()
    {
        // SAFETY: guarded; raises, never unwinds into PostgreSQL.
        unsafe { function_execute(object) };
    }
    if access == pg_sys::ObjectAccessType::OAT_FUNCTION_EXECUTE
        && crate::postgres::hooks::is_fast_path_call()
    {
        // SAFETY: guarded; raises, never unwinds into PostgreSQL.
        unsafe { fast_path_call() };
    }
    if access == pg_sys::ObjectAccessType::OAT_POST_CREATE && class == CONSTRAINT {
        // SAFETY: guarded; raises, never unwinds into PostgreSQL.
        unsafe { constraint_created(object) };
    }
    // Never panics here (no guard): a failed borrow counts as not watching.
    if WATCHING.with(|w| w.try_borrow().is_ok_and(|w| w.is_some())) {
        // SAFETY: PostgreSQL passes the argument struct of the access type.
        unsafe { record(access, class, object, sub, arg) };
    }
    if let Some(next) = PREVIOUS.get() {
        // SAFETY: the arguments as received.
        unsafe { next(access, class, object, sub, arg) };
    }
}

#[pg_guard]
unsafe extern "C-unwind" fn function_execute(function: pg_sys::Oid) {
    crate::postgres::security::before_function_call(function);
}

#[pg_guard]
unsafe extern "C-unwind" fn fast_path_call() {
    crate::postgres::measure::fast_path_call();
}

#[pg_guard]
unsafe extern "C-unwind" fn constraint_created(constraint: pg_sys::Oid) {
    let Some(check) = ON_FOREIGN_KEY.get() else {
        return;
    };
    if let Some(key) = new_foreign_key(constraint) {
        check(&key);
    }
}

/// The constraint `constraint` that the running command has just recorded,
/// if it is a foreign key (pg_constraint's columns found by name: their
/// numbers move between majors).
fn new_foreign_key(constraint: pg_sys::Oid) -> Option<ForeignKey> {
    let column = |name| rows::column(CONSTRAINT, name);
    let mut key = None;
    rows::each_equal(
        CONSTRAINT,
        CONSTRAINT_OID_INDEX,
        column(c"oid"),
        pg_sys::F_OIDEQ,
        constraint.into(),
        rows::Seen::OwnWrites,
        |row| {
            let contype = row.datum(column(c"contype")).map_or(0, |v| v.value() as u8);
            key = (contype == b'f').then(|| ForeignKey {
                constraint,
                relation: row.get(column(c"conrelid")).unwrap_or_default(),
                referenced: row.get(column(c"confrelid")).unwrap_or_default(),
            });
            false
        },
    );
    key
}

#[pg_guard]
unsafe extern "C-unwind" fn record(
    access: pg_sys::ObjectAccessType::Type,
    class: pg_sys::Oid,
    object: pg_sys::Oid,
    sub: i32,
    arg: *mut std::ffi::c_void,
) {
    use pg_sys::ObjectAccessType::*;
    // SAFETY: `arg` is the struct PostgreSQL documents for each access type (or NULL).
    let (kind, internal) = unsafe {
        match access {
            OAT_POST_CREATE => (
                Kind::Created,
                arg.cast::<pg_sys::ObjectAccessPostCreate>()
                    .as_ref()
                    .is_some_and(|a| a.is_internal),
            ),
            OAT_POST_ALTER => (
                Kind::Altered,
                arg.cast::<pg_sys::ObjectAccessPostAlter>()
                    .as_ref()
                    .is_some_and(|a| a.is_internal),
            ),
            OAT_DROP => (
                Kind::Dropped,
                arg.cast::<pg_sys::ObjectAccessDrop>()
                    .as_ref()
                    .is_some_and(|a| a.dropflags & pg_sys::PERFORM_DELETION_INTERNAL as i32 != 0),
            ),
            _ => return,
        }
    };
    if internal {
        return;
    }
    // Changes that PostgreSQL reports on a catalog of their own are changes of
    // the relation (an inheritance link, an index's or a foreign table's row).
    let class = if [INHERITS, INDEX, FOREIGN_TABLE].contains(&class) {
        pg_sys::RelationRelationId
    } else {
        class
    };
    // A new object is not visible to catalog lookups before the command ends
    // (placed when `watch` returns); one that changes is placed as it was.
    let before = (kind != Kind::Created).then(|| {
        (
            locate(class, object),
            describe(class, object, sub).unwrap_or_default(),
        )
    });
    WATCHING.with_borrow_mut(|w| {
        if let Some(seen) = w {
            seen.push(Seen {
                kind,
                before,
                class,
                object,
                sub,
            })
        }
    });
}

fn describe(class: pg_sys::Oid, object: pg_sys::Oid, sub: i32) -> Option<String> {
    // The only other catalog the hooks report on, which PostgreSQL cannot describe.
    if class == DB_ROLE_SETTING {
        return Some("the settings of a role or database".into());
    }
    let address = pg_sys::ObjectAddress {
        classId: class,
        objectId: object,
        objectSubId: sub,
    };
    // SAFETY: missing_ok; a palloc'd string or NULL, copied at once.
    unsafe {
        let text = pg_sys::getObjectDescription(&address, true);
        (!text.is_null()).then(|| CStr::from_ptr(text).to_string_lossy().into_owned())
    }
}

// Catalogs whose rows belong to a table (the first columns of their rows,
// which have the same layout from PostgreSQL 12 on). pgrx binds pg_trigger's.
pub const POLICY: pg_sys::Oid = pg_sys::Oid::from_u32(3256);
pub const REWRITE: pg_sys::Oid = pg_sys::Oid::from_u32(2618);
const ATTRDEF: pg_sys::Oid = pg_sys::Oid::from_u32(2604);
const DEFAULT_ACL: pg_sys::Oid = pg_sys::Oid::from_u32(826);
const INHERITS: pg_sys::Oid = pg_sys::Oid::from_u32(2611);
const INDEX: pg_sys::Oid = pg_sys::Oid::from_u32(2610);
const FOREIGN_TABLE: pg_sys::Oid = pg_sys::Oid::from_u32(3118);
const DB_ROLE_SETTING: pg_sys::Oid = pg_sys::Oid::from_u32(2964);
const CONSTRAINT: pg_sys::Oid = pg_sys::Oid::from_u32(2606);
const CONSTRAINT_OID_INDEX: rows::Index = rows::Index {
    oid: pg_sys::Oid::from_u32(2667),
    collation: pg_sys::InvalidOid,
};

/// pg_policy and pg_rewrite: oid, name, the table's oid.
#[repr(C)]
struct NamedOnTable {
    _oid: pg_sys::Oid,
    _name: pg_sys::NameData,
    table: pg_sys::Oid,
}

/// pg_default_acl: oid, role, schema.
#[repr(C)]
struct DefaultAcl {
    _oid: pg_sys::Oid,
    _role: pg_sys::Oid,
    schema: pg_sys::Oid,
}

/// Catalogs whose rows carry their schema and can be found by oid (pgrx
/// does not bind every catalog's oid: the others are PostgreSQL's fixed ones).
const NAMESPACED: &[pg_sys::Oid] = &[
    pg_sys::RelationRelationId,
    pg_sys::ProcedureRelationId,
    pg_sys::TypeRelationId,
    pg_sys::OperatorRelationId,
    pg_sys::OperatorClassRelationId,
    pg_sys::OperatorFamilyRelationId,
    pg_sys::CollationRelationId,
    pg_sys::Oid::from_u32(2607), // ConversionRelationId
    pg_sys::Oid::from_u32(3381), // StatisticExtRelationId
    pg_sys::Oid::from_u32(3602), // TSConfigRelationId
    pg_sys::Oid::from_u32(3600), // TSDictionaryRelationId
    pg_sys::Oid::from_u32(3601), // TSParserRelationId
    pg_sys::Oid::from_u32(3764), // TSTemplateRelationId
    CONSTRAINT,
];

/// Where the object `object` of catalog `class` lives now.
fn locate(class: pg_sys::Oid, object: pg_sys::Oid) -> Location {
    let (placement, relation) = placement(class, object);
    Location {
        placement,
        relation,
    }
}

fn placement(class: pg_sys::Oid, object: pg_sys::Oid) -> (Placement, Option<pg_sys::Oid>) {
    let address = pg_sys::ObjectAddress {
        classId: class,
        objectId: object,
        objectSubId: 0,
    };
    if class == ATTRDEF {
        return (Placement::Internal, None);
    }
    if class == pg_sys::NamespaceRelationId {
        let placement =
            exists(class, object).map_or(Placement::Gone, |_| Placement::Schema(object));
        return (placement, None);
    }
    if NAMESPACED.contains(&class) {
        let relation = (class == pg_sys::RelationRelationId).then_some(object);
        // SAFETY: a syscache probe, then the namespace of an object that exists.
        return match exists(class, object) {
            Some(()) => (
                Placement::Schema(unsafe { pg_sys::get_object_namespace(&address) }),
                relation,
            ),
            None => (Placement::Gone, None),
        };
    }
    let owning_table = |tuple: pg_sys::HeapTuple| -> (bool, pg_sys::Oid) {
        // SAFETY: a catalog row of `class`, whose leading columns these structs describe.
        unsafe {
            if class == pg_sys::TriggerRelationId {
                let trigger = &*pg_sys::heap_tuple_get_struct::<pg_sys::FormData_pg_trigger>(tuple);
                (trigger.tgisinternal, trigger.tgrelid)
            } else {
                (
                    false,
                    (*pg_sys::heap_tuple_get_struct::<NamedOnTable>(tuple)).table,
                )
            }
        }
    };
    if [pg_sys::TriggerRelationId, POLICY, REWRITE].contains(&class) {
        return match catalog_row(class, object, owning_table) {
            None => (Placement::Gone, None),
            Some((true, _)) => (Placement::Internal, None),
            // SAFETY: a syscache lookup; InvalidOid for a table that is gone.
            Some((false, table)) => match unsafe { pg_sys::get_rel_namespace(table) } {
                pg_sys::InvalidOid => (Placement::Gone, None),
                schema => (Placement::Schema(schema), Some(table)),
            },
        };
    }
    if class == DEFAULT_ACL {
        // SAFETY: a pg_default_acl row: oid, role, schema (0: every schema).
        let schema = catalog_row(class, object, |tuple| unsafe {
            (*pg_sys::heap_tuple_get_struct::<DefaultAcl>(tuple)).schema
        });
        let placement = match schema {
            None => Placement::Gone,
            Some(pg_sys::InvalidOid) => Placement::Global,
            Some(schema) => Placement::Schema(schema),
        };
        return (placement, None);
    }
    (Placement::Global, None)
}

/// Whether a namespaced object or a schema exists, by its syscache.
fn exists(class: pg_sys::Oid, object: pg_sys::Oid) -> Option<()> {
    // SAFETY: the catalog's oid syscache (every class of NAMESPACED and
    // pg_namespace has one), probed by oid.
    unsafe {
        let cache = pg_sys::get_object_catcache_oid(class);
        pg_sys::SearchSysCacheExists(cache, object.into(), 0.into(), 0.into(), 0.into())
    }
    .then_some(())
}

/// Read a field of the row `object` of catalog `class`, if it exists.
fn catalog_row<T>(
    class: pg_sys::Oid,
    object: pg_sys::Oid,
    read: impl FnOnce(pg_sys::HeapTuple) -> T,
) -> Option<T> {
    // SAFETY: the catalog is opened and closed here; the row returned is a copy.
    unsafe {
        let catalog = pg_sys::table_open(class, pg_sys::AccessShareLock as i32);
        let tuple = pg_sys::get_catalog_object_by_oid(
            catalog,
            pg_sys::get_object_attnum_oid(class),
            object,
        );
        let value = (!tuple.is_null()).then(|| read(tuple));
        pg_sys::table_close(catalog, pg_sys::AccessShareLock as i32);
        value
    }
}
