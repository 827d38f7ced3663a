//! Looking up relations by name, and their owners, in the system caches.

use pgrx::pg_sys;
use std::ffi::CStr;

/// The relation `schema.name`, or None when there is none.
pub fn relid(schema: &CStr, name: &CStr) -> Option<pg_sys::Oid> {
    // SAFETY: syscache lookups by name; missing_ok for the schema.
    let relid = unsafe {
        let namespace = pg_sys::get_namespace_oid(schema.as_ptr(), true);
        if namespace == pg_sys::InvalidOid {
            return None;
        }
        pg_sys::get_relname_relid(name.as_ptr(), namespace)
    };
    (relid != pg_sys::InvalidOid).then_some(relid)
}

/// The schema named `name` (unquoted), or None when there is none.
pub fn schema(name: &str) -> Option<pg_sys::Oid> {
    let name = std::ffi::CString::new(name).ok()?;
    // SAFETY: a syscache lookup by name, missing_ok.
    let oid = unsafe { pg_sys::get_namespace_oid(name.as_ptr(), true) };
    (oid != pg_sys::InvalidOid).then_some(oid)
}

/// The owner of the relation `relid`, which exists.
pub fn owner(relid: pg_sys::Oid) -> pg_sys::Oid {
    // SAFETY: the relcache entry is opened and released right away.
    unsafe {
        let relation = pg_sys::RelationIdGetRelation(relid);
        let owner = (*(*relation).rd_rel).relowner;
        pg_sys::RelationClose(relation);
        owner
    }
}

/// The name of the relation's schema, and whether that schema is this
/// session's temporary one; None for a relation that is gone.
pub fn schema_of(relid: pg_sys::Oid) -> Option<(String, bool)> {
    // SAFETY: syscache lookups; InvalidOid or NULL for what is gone.
    unsafe {
        let namespace = pg_sys::get_rel_namespace(relid);
        if namespace == pg_sys::InvalidOid {
            return None;
        }
        let name = pg_sys::get_namespace_name(namespace);
        (!name.is_null()).then(|| {
            (
                CStr::from_ptr(name).to_string_lossy().into_owned(),
                pg_sys::isTempNamespace(namespace),
            )
        })
    }
}

/// The relation and every table that inherits from it (partitions too).
pub fn and_descendants(relid: pg_sys::Oid) -> Vec<pg_sys::Oid> {
    use crate::error::OrRaise;
    pgrx::Spi::connect(|client| {
        client
            .select(
                "WITH RECURSIVE d(relid) AS (SELECT $1::pg_catalog.oid UNION \
                 SELECT i.inhrelid FROM pg_catalog.pg_inherits i JOIN d \
                     ON i.inhparent OPERATOR(pg_catalog.=) d.relid) \
                 SELECT relid FROM d",
                None,
                &[relid.into()],
            )?
            .map(|row| {
                row.get::<pg_sys::Oid>(1)
                    .map(|relid| relid.unwrap_or_default())
            })
            .collect::<Result<Vec<_>, _>>()
    })
    .or_raise("reading pg_inherits")
}

/// Whether the relation is a sequence (reading one runs no code).
pub fn is_sequence(relid: pg_sys::Oid) -> bool {
    // SAFETY: a syscache lookup; '\0' for a relation that is gone.
    unsafe { pg_sys::get_rel_relkind(relid) as u8 == pg_sys::RELKIND_SEQUENCE }
}

/// The relation's schema-qualified, quoted name; "oid N" for one that is gone.
pub fn name(relid: pg_sys::Oid) -> String {
    // SAFETY: a syscache lookup; NULL when the relation is gone.
    unsafe {
        let name = pg_sys::get_rel_name(relid);
        let schema = pg_sys::get_namespace_name(pg_sys::get_rel_namespace(relid));
        if name.is_null() || schema.is_null() {
            return format!("oid {}", relid.to_u32());
        }
        let quote = |s: *mut std::ffi::c_char| {
            pgrx::spi::quote_identifier(CStr::from_ptr(s).to_string_lossy())
        };
        format!("{}.{}", quote(schema), quote(name))
    }
}
