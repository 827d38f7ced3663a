//! SQL text split into statements by PostgreSQL's own parser, and whether
//! the extension's own script is running.

use pgrx::pg_sys;
use std::ffi::{CStr, CString};

/// A CREATE FUNCTION or CREATE PROCEDURE statement of a script.
pub struct RoutineDefinition<'a> {
    /// The name as written, qualified as it is ("tenancy.verify").
    pub name: String,
    /// Whether it says CREATE OR REPLACE.
    pub replace: bool,
    /// The statement's text, without its semicolon.
    pub text: &'a str,
}

/// The routine definitions of `sql`, in their order; other statements are
/// skipped. A syntax error is PostgreSQL's, raised as for any statement.
pub fn routine_definitions(sql: &str) -> Result<Vec<RoutineDefinition<'_>>, &'static str> {
    let text = CString::new(sql).map_err(|_| "a NUL byte in SQL text")?;
    let mut definitions = Vec::new();
    // SAFETY: raw_parser reads the NUL-terminated text and returns a list of
    // RawStmt (in the current memory context); nodes are read by their tags
    // and names copied at once.
    unsafe {
        let list = pg_sys::raw_parser(text.as_ptr(), pg_sys::RawParseMode::RAW_PARSE_DEFAULT);
        for cell in super::cells(list) {
            let raw = &*cell.ptr_value.cast::<pg_sys::RawStmt>();
            if raw.stmt.is_null() || (*raw.stmt).type_ != pg_sys::NodeTag::T_CreateFunctionStmt {
                continue;
            }
            let stmt = &*raw.stmt.cast::<pg_sys::CreateFunctionStmt>();
            let name = super::cells(stmt.funcname)
                .iter()
                .map(|part| {
                    let s = &*part.ptr_value.cast::<pg_sys::String>();
                    CStr::from_ptr(s.sval).to_string_lossy().into_owned()
                })
                .collect::<Vec<_>>()
                .join(".");
            // Byte offsets; a length of 0 means "to the end of the text".
            let start = raw.stmt_location as usize;
            let end = if raw.stmt_len == 0 {
                sql.len()
            } else {
                start + raw.stmt_len as usize
            };
            definitions.push(RoutineDefinition {
                name,
                replace: stmt.replace,
                text: &sql[start..end],
            });
        }
    }
    Ok(definitions)
}

/// Whether the script of `extension` (CREATE or ALTER EXTENSION) is running
/// now, in this backend.
pub fn in_extension_script(extension: &CStr) -> bool {
    // SAFETY: reads the backend's state; the lookup returns InvalidOid for
    // an extension that does not exist.
    unsafe {
        pg_sys::creating_extension
            && pg_sys::CurrentExtensionObject != pg_sys::InvalidOid
            && pg_sys::CurrentExtensionObject == pg_sys::get_extension_oid(extension.as_ptr(), true)
    }
}
