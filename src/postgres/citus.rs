//! The boundary with Citus, when its library is loaded (it must be preloaded,
//! so that does not change during a backend's life): whether it is, whether
//! this database has the extension, and starting its coordinated transaction.

use crate::error::OrRaise;
use crate::postgres::query;
use pgrx::pg_sys;
use std::cell::OnceCell;

thread_local! {
    static LOADED: OnceCell<bool> = const { OnceCell::new() };
}

/// The Citus library is loaded in this backend.
pub fn loaded() -> bool {
    LOADED.with(|loaded| {
        *loaded.get_or_init(|| {
            // SAFETY: a lookup by name; NULL when the setting does not exist.
            !unsafe {
                pg_sys::GetConfigOption(c"citus.propagate_set_commands".as_ptr(), true, false)
            }
            .is_null()
        })
    })
}

/// This database has the citus extension (and the library is loaded).
pub fn installed() -> bool {
    // SAFETY: a catalog lookup that returns InvalidOid when missing.
    loaded() && unsafe { pg_sys::get_extension_oid(c"citus".as_ptr(), true) } != pg_sys::InvalidOid
}

/// Make `relid`, a new table of a distributed (tenant) schema, one of the
/// schema's tables, as Citus does for a top-level CREATE TABLE there (it
/// does not for tables created by a statement run from a function).
pub fn create_tenant_schema_table(relid: pg_sys::Oid) {
    // SAFETY: Citus exports `void CreateTenantSchemaTable(Oid)`; it raises on error.
    let function: extern "C-unwind" fn(pg_sys::Oid) =
        unsafe { std::mem::transmute(function(c"CreateTenantSchemaTable")) };
    function(relid);
}

/// Make the current transaction a coordinated one, which assigns its
/// distributed transaction id now rather than at its first distributed
/// statement (Citus' UseCoordinatedTransaction(); a no-op when it already is).
pub fn use_coordinated_transaction() {
    // SAFETY: Citus exports `void UseCoordinatedTransaction(void)`; it raises
    // an ERROR (never returns garbage) in a wrong state.
    let function: extern "C-unwind" fn() =
        unsafe { std::mem::transmute(function(c"UseCoordinatedTransaction")) };
    function();
}

/// A function exported by the Citus library, which the caller checked is
/// loaded (`load_external_function` raises if the symbol is missing).
fn function(name: &std::ffi::CStr) -> *mut std::ffi::c_void {
    // SAFETY: valid C strings; the library is already loaded in this backend.
    unsafe {
        pg_sys::load_external_function(
            c"$libdir/citus".as_ptr(),
            name.as_ptr(),
            true,
            std::ptr::null_mut(),
        )
    }
}

/// Whether `relid` is a Citus table, and whether its tenant column is its
/// distribution column (Citus refuses to change that column's default).
pub fn table_kind(relid: pg_sys::Oid, column: &str) -> Option<bool> {
    if !installed() {
        return None;
    }
    query::optional_one::<bool>(
        "SELECT coalesce(column_to_column_name(logicalrelid, partkey) = $2, false) \
         FROM pg_catalog.pg_dist_partition WHERE logicalrelid = $1",
        &[relid.into(), column.into()],
    )
    .or_raise("a catalog lookup")
}

/// A Citus worker (not the coordinator): its tables are the coordinator's.
pub fn is_worker() -> bool {
    installed()
        && !query::optional_one::<bool>("SELECT pg_catalog.citus_is_coordinator()", &[])
            .or_raise("a catalog lookup")
            .unwrap_or(true)
}

/// A shard of a Citus table (placed on this node), which its table's
/// protection covers.
pub fn is_shard(relid: pg_sys::Oid) -> bool {
    installed()
        && query::optional_one::<bool>(
            "SELECT pg_catalog.relation_is_a_known_shard($1)",
            &[relid.into()],
        )
        .or_raise("a catalog lookup")
        .unwrap_or(false)
}
