//! Reading the result of the extension's own SELECTs (pgrx's `get_one`
//! reports an empty result as an error, which must not be confused with a
//! failed statement).

use pgrx::datum::DatumWithOid;
use pgrx::prelude::*;

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
