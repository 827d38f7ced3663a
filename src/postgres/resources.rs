//! PostgreSQL's resource settings that a tenant's limits cap, the statement
//! timer, and waiting for a place under a cap.

use pgrx::pg_sys;
use std::ffi::{CStr, CString};

/// A setting a limit caps, in its base unit (ms or kB; thousandths for
/// hash_mem_multiplier, which multiplies work_mem for hashes).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Setting {
    StatementTimeout,
    WorkMem,
    TempFileLimit,
    HashMemMultiplier,
}

pub const SETTINGS: [Setting; 4] = [
    Setting::StatementTimeout,
    Setting::WorkMem,
    Setting::TempFileLimit,
    Setting::HashMemMultiplier,
];

impl Setting {
    pub fn name(self) -> &'static CStr {
        match self {
            Setting::StatementTimeout => c"statement_timeout",
            Setting::WorkMem => c"work_mem",
            Setting::TempFileLimit => c"temp_file_limit",
            Setting::HashMemMultiplier => c"hash_mem_multiplier",
        }
    }

    /// The smallest value a limit may have (PostgreSQL's own minimum for
    /// work_mem; a timeout or a file limit of 0 would mean "none").
    pub fn minimum(self) -> i32 {
        match self {
            Setting::WorkMem => 64,
            _ => 1,
        }
    }

    /// The value in effect now.
    pub fn current(self) -> i32 {
        // SAFETY: this backend's setting variables.
        unsafe {
            match self {
                Setting::StatementTimeout => pg_sys::StatementTimeout,
                Setting::WorkMem => pg_sys::work_mem,
                Setting::TempFileLimit => pg_sys::temp_file_limit,
                Setting::HashMemMultiplier => (pg_sys::hash_mem_multiplier * 1000.0).round() as i32,
            }
        }
    }

    /// Whether `value` is above `limit`: larger, or none at all (0 for the
    /// timeout, -1 for the file limit).
    pub fn exceeds(self, value: i32, limit: i32) -> bool {
        match self {
            Setting::StatementTimeout => value == 0 || value > limit,
            Setting::TempFileLimit => value < 0 || value > limit,
            Setting::WorkMem | Setting::HashMemMultiplier => value > limit,
        }
    }

    /// Set it for the session or (`local`) the transaction.
    pub fn set(self, value: i32, local: bool) {
        let text = match self {
            Setting::HashMemMultiplier => format!("{}", f64::from(value) / 1000.0),
            _ => value.to_string(),
        };
        let text = CString::new(text).unwrap_or_default();
        let action = if local {
            pg_sys::GucAction::GUC_ACTION_LOCAL
        } else {
            pg_sys::GucAction::GUC_ACTION_SET
        };
        // SAFETY: valid C strings; temp_file_limit is PGC_SUSET, which the
        // extension sets for the role it caps. Errors are raised.
        unsafe {
            pg_sys::set_config_option(
                self.name().as_ptr(),
                text.as_ptr(),
                pg_sys::GucContext::PGC_SUSET,
                pg_sys::GucSource::PGC_S_SESSION,
                action,
                true,
                pg_sys::PGERROR as i32,
                false,
            );
        }
    }
}

/// A value with PostgreSQL's units ("200ms", "5s", "64MB"; a bare number is
/// in the base unit), in ms (`time`) or kB.
pub fn parse(text: &str, time: bool) -> Result<i32, String> {
    let flags = if time {
        pg_sys::GUC_UNIT_MS
    } else {
        pg_sys::GUC_UNIT_KB
    } as i32;
    let value = CString::new(text).map_err(|_| "it contains a NUL byte".to_string())?;
    let mut result = 0;
    let mut hint: *const std::ffi::c_char = std::ptr::null();
    // SAFETY: parse_int reads the string and writes the two out-parameters.
    let parsed = unsafe { pg_sys::parse_int(value.as_ptr(), &mut result, flags, &mut hint) };
    if parsed {
        Ok(result)
    } else if hint.is_null() {
        Err("it is not a number with a unit".into())
    } else {
        // SAFETY: a static message of PostgreSQL's.
        Err(unsafe { CStr::from_ptr(hint) }
            .to_string_lossy()
            .into_owned())
    }
}

unsafe extern "C-unwind" {
    fn enable_timeout_after(id: u32, delay_ms: i32);
    fn disable_timeout(id: u32, keep_indicator: bool);
    fn get_timeout_active(id: u32) -> bool;
    fn get_timeout_finish_time(id: u32) -> pg_sys::TimestampTz;
}

/// STATEMENT_TIMEOUT, the fourth of PostgreSQL's TimeoutId (15 to 18).
const STATEMENT_TIMEOUT: u32 = 3;

/// The statement timer was set here (not by PostgreSQL at a statement's
/// start), and must not outlive the transaction (read by `disarm`).
static ARMED_HERE: super::BackendCell<bool> = super::BackendCell::new(false);

/// Cancel the running statement after `ms` (57014), as statement_timeout
/// does; for a statement whose timer PostgreSQL set from a higher value,
/// or did not set (a cursor WITH HOLD runs its query at commit, after
/// PostgreSQL took its timer away).
pub fn cancel_statement_after(ms: i32) {
    // SAFETY: re-arms PostgreSQL's own statement timer.
    unsafe { enable_timeout_after(STATEMENT_TIMEOUT, ms) };
    ARMED_HERE.set(true);
}

/// Whether the statement timer runs. Raises nothing.
pub fn statement_timer_active() -> bool {
    // SAFETY: reads PostgreSQL's timer table.
    unsafe { get_timeout_active(STATEMENT_TIMEOUT) }
}

/// At a transaction's end: a timer set here goes (PostgreSQL would keep a
/// running one for the next statement, with this one's deadline).
pub fn disarm() {
    if ARMED_HERE.replace(false) && statement_timer_active() {
        // SAFETY: PostgreSQL's own statement timer.
        unsafe { disable_timeout(STATEMENT_TIMEOUT, false) };
    }
}

/// Cancel the running statement within `ms` from now: its timer is set
/// unless it already ends sooner.
pub fn cancel_statement_within(ms: i32) {
    // SAFETY: reads PostgreSQL's timer and clock.
    let sooner = unsafe {
        get_timeout_active(STATEMENT_TIMEOUT)
            && get_timeout_finish_time(STATEMENT_TIMEOUT)
                <= pg_sys::GetCurrentTimestamp() + i64::from(ms) * 1000
    };
    if !sooner {
        cancel_statement_after(ms);
    }
}

/// Sleep up to 10 ms (seen as the wait event "Extension"), then raise if the
/// statement was cancelled or the backend terminated meanwhile.
pub fn wait_briefly() {
    // SAFETY: waits on this backend's latch, as extensions do.
    unsafe {
        pg_sys::WaitLatch(
            pg_sys::MyLatch,
            (pg_sys::WL_LATCH_SET | pg_sys::WL_TIMEOUT | pg_sys::WL_EXIT_ON_PM_DEATH) as i32,
            10,
            pg_sys::PG_WAIT_EXTENSION,
        );
        pg_sys::ResetLatch(pg_sys::MyLatch);
    }
    pgrx::check_for_interrupts!();
}
