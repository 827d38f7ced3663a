//! Reading the result of the extension's own SELECTs (pgrx's `get_one`
//! reports an empty result as an error, which must not be confused with a
//! failed statement), and keeping the plans of those it runs again and again.

use pgrx::datum::DatumWithOid;
use pgrx::prelude::*;
use pgrx::spi::OwnedPreparedStatement;
use pgrx::PgOid;
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

/// The first column of the first row of a SELECT, None when it returns no
/// row (or NULL); Err only when the statement fails.
pub fn optional_one<T: FromDatum + IntoDatum>(
    query: &str,
    args: &[DatumWithOid],
) -> Result<Option<T>, pgrx::spi::Error> {
    Spi::connect(|client| {
        let rows = client.select(query, Some(1), args)?;
        if rows.is_empty() {
            return Ok(None);
        }
        rows.first().get_one::<T>()
    })
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
    thread_local! {
        static KEPT: RefCell<HashMap<&'static str, Rc<OwnedPreparedStatement>>> = RefCell::default();
    }
    Spi::connect(|client| {
        let statement = match KEPT.with_borrow(|kept| kept.get(sql).cloned()) {
            Some(statement) => statement,
            None => {
                let statement = Rc::new(client.prepare(sql, types)?.keep());
                KEPT.with_borrow_mut(|kept| kept.insert(sql, statement.clone()));
                statement
            }
        };
        // A generic plan, planned once: with its parameters folded in, a
        // custom plan would look cheaper and be planned again every time.
        crate::postgres::security::with_setting(c"plan_cache_mode", "force_generic_plan", || {
            f(&client, &statement)
        })
    })
}
