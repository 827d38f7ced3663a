//! A tenant's own schema (isolation 'schema'): its name, and following the
//! context on search_path. Below the SQL surface: the context core uses it
//! on every set_tenant, the schema features to name schemas.
//!
//! The name derives from the tenant's id (`tenant_<32 hex digits>`): never
//! truncated, never colliding, never from user input; always quoted.

use crate::postgres::gucs;
use pgrx::prelude::*;
use uuid::Uuid;

const PREFIX: &str = "tenant_";

pub fn name(id: Uuid) -> String {
    format!("{PREFIX}{}", id.simple())
}

pub fn is_tenant_schema(name: &str) -> bool {
    is_tenant_schema_name(name.as_bytes())
}

/// `is_tenant_schema` of a name as PostgreSQL stores it.
pub fn is_tenant_schema_name(name: &[u8]) -> bool {
    name.strip_prefix(PREFIX.as_bytes()).is_some_and(|hex| {
        hex.len() == 32
            && hex
                .iter()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
    })
}

/// Whether a search_path (as its bytes) may name a tenant schema.
pub fn mentions_tenant_schema(path: &[u8]) -> bool {
    path.windows(PREFIX.len()).any(|w| w == PREFIX.as_bytes())
}

/// Put the tenant's schema first on search_path and pg_temp last (or take
/// tenant schemas off it), with the same scope as the context. A no-op for shared tenants whose
/// search_path holds no tenant schema: the hot path stays a string scan.
pub fn follow_search_path(schema: Option<&str>, local: bool) {
    let holds_tenant_schema = gucs::with_search_path(mentions_tenant_schema);
    if schema.is_none() && !holds_tenant_schema {
        return;
    }
    let current = gucs::setting(c"search_path").unwrap_or_default();
    let mut entries: Vec<String> = schema.map(spi::quote_identifier).into_iter().collect();
    entries.extend(
        split_search_path(&current)
            .into_iter()
            .filter(|entry| !is_tenant_schema(entry.trim_matches('"')))
            .filter(|entry| schema.is_none() || entry != "pg_temp"),
    );
    // With a tenant's schema, pg_temp comes last (it is searched first for
    // tables otherwise): a temporary table left by an earlier request on the
    // same connection must not take the place of the schema's own.
    // (Leaving, the pg_temp put last on entering goes again.)
    if schema.is_some() {
        entries.push("pg_temp".into());
    } else if entries.last().is_some_and(|entry| entry == "pg_temp") {
        entries.pop();
    }
    let path = entries.join(", ");
    if path != current {
        gucs::set_search_path(&path, local);
    }
}

/// Split a search_path value at commas outside double quotes.
fn split_search_path(path: &str) -> Vec<String> {
    let (mut entries, mut entry, mut quoted) = (Vec::new(), String::new(), false);
    for c in path.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                entry.push(c);
            }
            ',' if !quoted => entries.push(std::mem::take(&mut entry)),
            _ => entry.push(c),
        }
    }
    entries.push(entry);
    entries
        .into_iter()
        .map(|e| e.trim().to_string())
        .filter(|e| !e.is_empty())
        .collect()
}

#[cfg(any(test, feature = "pg_test"))]
#[pgrx::pg_schema]
mod tests {
    use super::*;

    #[pgrx::pg_test]
    fn schema_names_come_from_the_id() {
        let id = Uuid::from_u128(0x0123_4567_89ab_cdef_0123_4567_89ab_cdef);
        assert_eq!(name(id), "tenant_0123456789abcdef0123456789abcdef");
        assert_eq!(name(id).len(), 39, "well below the 63-byte limit");
        assert!(is_tenant_schema(&name(id)));
        assert!(!is_tenant_schema("tenant_orders"));
        assert!(!is_tenant_schema("public"));
    }

    #[pgrx::pg_test]
    fn search_path_entries_split_outside_quotes() {
        assert_eq!(
            split_search_path("\"$user\", public"),
            ["\"$user\"", "public"]
        );
        assert_eq!(split_search_path("\"a,b\" ,c"), ["\"a,b\"", "c"]);
        assert_eq!(split_search_path(""), Vec::<String>::new());
    }
}
