//! Reading rows of a table through one of its b-tree indexes, without the
//! executor: for the reads where starting a plan costs more than the read
//! itself (a tenant cache miss), and for a row PostgreSQL has just written,
//! which the command's snapshot does not see yet (as sepgsql reads new
//! objects: with SnapshotSelf). Only for the extension's own tables and
//! PostgreSQL's catalogs: no privilege, no row-level security is checked.

use pgrx::pg_sys;
use pgrx::FromDatum;

/// Which rows a read sees.
#[derive(Clone, Copy)]
pub enum Seen {
    /// The active snapshot's (what a statement would see; the
    /// transaction's where none is active).
    Active,
    /// Also what the running command has written so far.
    OwnWrites,
}

/// A row being read (valid inside the callback only).
pub struct Row {
    tuple: pg_sys::HeapTuple,
    descriptor: pg_sys::TupleDesc,
}

impl Row {
    /// Column `attnum` (1-based), None when NULL.
    pub fn datum(&self, attnum: i16) -> Option<pg_sys::Datum> {
        let mut null = false;
        // SAFETY: a row of the relation the descriptor describes, read while
        // its scan is open.
        let value =
            unsafe { pg_sys::heap_getattr(self.tuple, attnum.into(), self.descriptor, &mut null) };
        (!null).then_some(value)
    }

    /// Column `attnum`, of type `name`, None when NULL.
    pub fn name(&self, attnum: i16) -> Option<String> {
        // SAFETY: a `name` datum points at its NameData, NUL-terminated.
        self.datum(attnum).map(|name| unsafe {
            std::ffi::CStr::from_ptr(name.cast_mut_ptr::<std::ffi::c_char>())
                .to_string_lossy()
                .into_owned()
        })
    }

    /// Column `attnum` converted (copied out of the row), None when NULL.
    pub fn get<T: FromDatum>(&self, attnum: i16) -> Option<T> {
        // SAFETY: pgrx's conversion of a datum of the column's type, which
        // the caller names with T.
        self.datum(attnum)
            .and_then(|value| unsafe { T::from_datum(value, false) })
    }
}

/// The number of the column `name` of `relation` (0 when there is none).
pub fn column(relation: pg_sys::Oid, name: &std::ffi::CStr) -> i16 {
    // SAFETY: a syscache lookup.
    unsafe { pg_sys::get_attnum(relation, name.as_ptr()) }
}

/// A b-tree index, and the collation its first column is ordered by.
#[derive(Clone, Copy)]
pub struct Index {
    pub oid: pg_sys::Oid,
    pub collation: pg_sys::Oid,
}

/// A valid b-tree index of `table` whose first column is the column
/// `attnum`, if there is one.
pub fn index_on(table: pg_sys::Oid, attnum: i16) -> Option<Index> {
    // SAFETY: the table and each index are opened and closed here; the
    // index list is the relcache's copy.
    unsafe {
        let relation = pg_sys::table_open(table, pg_sys::AccessShareLock as i32);
        let list = pg_sys::RelationGetIndexList(relation);
        let found = super::cells(list).iter().find_map(|cell| {
            let index = pg_sys::index_open(cell.oid_value, pg_sys::AccessShareLock as i32);
            let form = &*(*index).rd_index;
            let fits = (*(*index).rd_rel).relam == pg_sys::BTREE_AM_OID
                && form.indisvalid
                && form.indnkeyatts >= 1
                && *form.indkey.values.as_ptr() == attnum;
            let collation = *(*index).rd_indcollation;
            pg_sys::index_close(index, pg_sys::AccessShareLock as i32);
            fits.then_some(Index {
                oid: cell.oid_value,
                collation,
            })
        });
        pg_sys::list_free(list);
        pg_sys::table_close(relation, pg_sys::AccessShareLock as i32);
        found
    }
}

/// Each row of `table` whose column `attnum` equals `value` (`equal`: the
/// equality function of the column's type, e.g. `F_TEXTEQ`), found through
/// `index` (whose first column it is), until `each` returns false. The
/// table stays locked until the transaction ends, as the executor leaves
/// what it read.
pub fn each_equal(
    table: pg_sys::Oid,
    index: Index,
    attnum: i16,
    equal: u32,
    value: pg_sys::Datum,
    seen: Seen,
    mut each: impl FnMut(&Row) -> bool,
) {
    // SAFETY: the table and the index are opened, scanned and closed here
    // (an error closes them with the transaction); the key compares with
    // the index's own collation, as the index is ordered.
    unsafe {
        let relation = pg_sys::table_open(table, pg_sys::AccessShareLock as i32);
        let mut key = pg_sys::ScanKeyData::default();
        pg_sys::ScanKeyEntryInitialize(
            &mut key,
            0,
            attnum,
            pg_sys::BTEqualStrategyNumber as u16,
            pg_sys::InvalidOid,
            index.collation,
            pg_sys::Oid::from(equal),
            value,
        );
        let snapshot = match seen {
            Seen::Active if pg_sys::ActiveSnapshotSet() => pg_sys::GetActiveSnapshot(),
            Seen::Active => pg_sys::GetTransactionSnapshot(),
            Seen::OwnWrites => &raw mut pg_sys::SnapshotSelfData,
        };
        let scan = pg_sys::systable_beginscan(relation, index.oid, true, snapshot, 1, &mut key);
        let descriptor = (*relation).rd_att;
        loop {
            let tuple = pg_sys::systable_getnext(scan);
            if tuple.is_null() || !each(&Row { tuple, descriptor }) {
                break;
            }
        }
        pg_sys::systable_endscan(scan);
        pg_sys::table_close(relation, pg_sys::NoLock as i32);
    }
}
