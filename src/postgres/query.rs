//! Reading the result of the extension's own SELECTs (pgrx's `get_one`
//! reports an empty result as an error, which must not be confused with a
//! failed statement), and keeping the plans of those it runs again and again.

use crate::error::OrRaise;
use pgrx::datum::DatumWithOid;
use pgrx::pg_sys;
use pgrx::prelude::*;
use pgrx::spi::OwnedPreparedStatement;
use pgrx::PgOid;
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

/// Run one of the extension's own statements (the DDL it generates); a
/// failure reported by SPI names the statement.
pub fn run(sql: &str) {
    let shown: String = sql.chars().take(120).collect();
    Spi::run(sql).or_raise(&format!("running {shown}"));
}

/// Run `f`'s read-only statements on the latest committed state (a snapshot
/// taken now, as PostgreSQL reads its own catalogs) instead of the
/// transaction's, for what fills a cache: a REPEATABLE READ transaction, or
/// one that imported a snapshot, would otherwise read a state older than the
/// invalidations this backend already processed, and keep it after them. The
/// flag says whether it did (not in parallel mode, which cannot take one):
/// only then may the result be kept.
pub fn on_latest_snapshot<R>(f: impl FnOnce() -> R) -> (R, bool) {
    // SAFETY: reads the backend's state.
    if unsafe { pg_sys::IsInParallelMode() } {
        return (f(), false);
    }
    // SAFETY: pushed here and popped below; an error pops it through the
    // (sub)transaction abort. SPI's read-only statements run on the active
    // snapshot.
    unsafe { pg_sys::PushActiveSnapshot(pg_sys::GetLatestSnapshot()) };
    let result = f();
    // SAFETY: pops the snapshot pushed above.
    unsafe { pg_sys::PopActiveSnapshot() };
    (result, true)
}

/// The first column of the first row of a SELECT, None when it returns no
/// row (or NULL); Err only when the statement fails. (Not read-only: a
/// SELECT … FOR UPDATE locks its row.)
pub fn optional_one<T: FromDatum + IntoDatum>(
    query: &str,
    args: &[DatumWithOid],
) -> Result<Option<T>, pgrx::spi::Error> {
    Spi::connect_mut(|client| first(client.update(query, Some(1), args)?))
}

/// The first column of the first row, None when there is none (or NULL).
fn first<T: FromDatum + IntoDatum>(
    rows: pgrx::spi::SpiTupleTable,
) -> pgrx::spi::SpiResult<Option<T>> {
    if rows.is_empty() {
        return Ok(None);
    }
    rows.first().get_one::<T>()
}

/// Run `f` with the statement `sql` parsed and planned once per backend and
/// kept (SPI_keepplan), for the statements the extension runs again and again
/// (per schema, per migration): planning them each time cost more than
/// running them. It runs with a generic plan; PostgreSQL plans it again when
/// what it reads changes, or the search_path does. `types`: its parameters'
/// types.
pub fn kept<R>(
    sql: &'static str,
    types: &[PgOid],
    f: impl FnOnce(&pgrx::spi::SpiClient, &OwnedPreparedStatement) -> pgrx::spi::SpiResult<R>,
) -> pgrx::spi::SpiResult<R> {
    keep(sql, types, false, f)
}

/// `optional_one` on a kept plan (see `kept`): the first column of the first
/// row, None when there is none (or NULL).
pub fn kept_one<T: FromDatum + IntoDatum>(
    sql: &'static str,
    types: &[PgOid],
    args: &[DatumWithOid],
) -> pgrx::spi::SpiResult<Option<T>> {
    kept(sql, types, |client, statement| {
        first(client.select(statement, Some(1), args)?)
    })
}

/// `kept` for a statement that writes (INSERT, UPDATE, DELETE).
pub fn kept_mut<R>(
    sql: &'static str,
    types: &[PgOid],
    f: impl FnOnce(&pgrx::spi::SpiClient, &OwnedPreparedStatement) -> pgrx::spi::SpiResult<R>,
) -> pgrx::spi::SpiResult<R> {
    keep(sql, types, true, f)
}

fn keep<R>(
    sql: &'static str,
    types: &[PgOid],
    writes: bool,
    f: impl FnOnce(&pgrx::spi::SpiClient, &OwnedPreparedStatement) -> pgrx::spi::SpiResult<R>,
) -> pgrx::spi::SpiResult<R> {
    thread_local! {
        static KEPT: RefCell<HashMap<&'static str, Rc<OwnedPreparedStatement>>> = RefCell::default();
    }
    Spi::connect(|client| {
        let statement = match KEPT.with_borrow(|kept| kept.get(sql).cloned()) {
            Some(statement) => statement,
            None => {
                let prepared = if writes {
                    client.prepare_mut(sql, types)?
                } else {
                    client.prepare(sql, types)?
                };
                let statement = Rc::new(prepared.keep());
                KEPT.with_borrow_mut(|kept| kept.insert(sql, statement.clone()));
                statement
            }
        };
        // A generic plan, planned once: with its parameters folded in, a
        // custom plan would look cheaper and be planned again every time.
        // Not where Citus is loaded: it plans a statement on its tables with
        // the parameters' values (a generic plan cannot run there), and
        // makes PostgreSQL choose custom plans itself.
        if crate::postgres::citus::loaded() {
            return f(client, &statement);
        }
        // And without JIT: a generic plan's estimates (a set-returning
        // function taken for a thousand rows) can pass jit_above_cost, and
        // compiling costs more than any catalog read these statements make
        // (20 ms at the end of every DDL statement, for the trigger guard).
        crate::postgres::security::with_nest_level(|| {
            crate::postgres::gucs::save(c"plan_cache_mode", "force_generic_plan");
            crate::postgres::gucs::save(c"jit", "off");
            f(client, &statement)
        })
    })
}

/// Reading a row failed: the statement did, or a column that cannot be NULL
/// (a NOT NULL column, a count) was.
#[derive(Debug)]
pub enum ReadError {
    Spi(pgrx::spi::Error),
    Null(usize),
}

impl From<pgrx::spi::Error> for ReadError {
    fn from(error: pgrx::spi::Error) -> Self {
        ReadError::Spi(error)
    }
}

impl std::fmt::Display for ReadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReadError::Spi(error) => write!(f, "{error}"),
            ReadError::Null(column) => write!(f, "column {column} is NULL where it cannot be"),
        }
    }
}

/// A row of a result: one of an iteration, or the one a table is positioned on.
pub trait Row {
    fn column<T: FromDatum + IntoDatum>(&self, n: usize) -> Result<Option<T>, pgrx::spi::Error>;
}

impl Row for pgrx::spi::SpiHeapTupleData<'_> {
    fn column<T: FromDatum + IntoDatum>(&self, n: usize) -> Result<Option<T>, pgrx::spi::Error> {
        self.get::<T>(n)
    }
}

impl Row for pgrx::spi::SpiTupleTable<'_> {
    fn column<T: FromDatum + IntoDatum>(&self, n: usize) -> Result<Option<T>, pgrx::spi::Error> {
        self.get::<T>(n)
    }
}

/// Column `n` (from 1) of a row, which the statement cannot return NULL for:
/// a NULL is a failure of the statement (reported with it, never a panic).
pub fn required<T: FromDatum + IntoDatum>(row: &impl Row, n: usize) -> Result<T, ReadError> {
    row.column::<T>(n)?.ok_or(ReadError::Null(n))
}
