//! The clock and the random numbers, PostgreSQL's.

use pgrx::pg_sys;

/// Seconds since 1970-01-01 UTC, from PostgreSQL's clock.
pub fn unix_now() -> i64 {
    // PostgreSQL timestamps count microseconds from 2000-01-01.
    const POSTGRES_EPOCH_IN_UNIX_SECONDS: i64 = 946_684_800;
    // SAFETY: reads the clock.
    (unsafe { pg_sys::GetCurrentTimestamp() }) / 1_000_000 + POSTGRES_EPOCH_IN_UNIX_SECONDS
}

/// `len` bytes from PostgreSQL's cryptographically strong source, or None
/// when it fails.
pub fn strong_random(len: usize) -> Option<Vec<u8>> {
    let mut bytes = vec![0u8; len];
    // SAFETY: writes exactly bytes.len() bytes into the buffer.
    unsafe { pg_sys::pg_strong_random(bytes.as_mut_ptr().cast(), bytes.len()) }.then_some(bytes)
}
