//! What a tenant is: its cached shape and the rules for its identifier and name.

use crate::error::TenancyError::{self, InvalidValue};
pub use crate::status::Status;
use uuid::Uuid;

/// The columns of `tenancy.tenants` that the context needs on every statement.
#[derive(Debug, Clone, PartialEq)]
pub struct Tenant {
    pub id: Uuid,
    pub identifier: String,
    pub status: Status,
    /// The tenant's own schema (isolation 'schema'), None for shared tenants.
    pub schema: Option<String>,
    /// When it was registered, in microseconds since 1970 (after any destroy
    /// of an earlier tenant with its identifier had committed).
    pub created_at: i64,
    /// Its own `limits.*` configuration (a JSON object's text), None when it
    /// has none: read with the tenant, so that entering a context needs no
    /// statement more to know its limits (see api/limits.rs); not read while
    /// no tenant has any.
    pub limits: Option<String>,
}

impl Tenant {
    pub fn is_active(&self) -> bool {
        self.status == Status::Active
    }
}

/// SQL's uuid (pgrx) to the uuid crate's, which the extension uses inside.
pub fn from_sql(id: pgrx::Uuid) -> Uuid {
    Uuid::from_bytes(*id.as_bytes())
}

pub fn to_sql(id: Uuid) -> pgrx::Uuid {
    pgrx::Uuid::from_bytes(*id.as_bytes())
}

pub const IDENTIFIER_RULE: &str = "3 to 63 characters: lowercase ASCII letters, digits and single \
     hyphens, starting with a letter and not ending with a hyphen (e.g. 'acme-corp')";

/// The identifier rule of the README; the same rule is a CHECK constraint on the catalog.
pub fn validate_identifier(identifier: &str) -> Result<(), TenancyError> {
    let problem = if !(3..=63).contains(&identifier.len()) {
        Some(format!(
            "must be 3 to 63 characters long, not {}",
            identifier.chars().count()
        ))
    } else if !identifier.starts_with(|c: char| c.is_ascii_lowercase()) {
        Some("must start with a lowercase letter".to_string())
    } else if let Some(c) = identifier
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-'))
    {
        Some(format!("contains the character {c:?}"))
    } else if identifier.ends_with('-') {
        Some("must not end with a hyphen".to_string())
    } else if identifier.contains("--") {
        Some("must not contain two hyphens in a row".to_string())
    } else if Uuid::try_parse(identifier).is_ok() {
        // A JWT claim holding it would be read as a tenant id.
        Some("has the form of a tenant id (a UUID)".to_string())
    } else {
        None
    };
    match problem {
        None => Ok(()),
        Some(problem) => Err(InvalidValue(
            format!("invalid tenant identifier \"{identifier}\": it {problem}"),
            format!("A tenant identifier has {IDENTIFIER_RULE}."),
        )),
    }
}

pub fn validate_name(name: &str) -> Result<(), TenancyError> {
    let chars = name.chars().count();
    if (1..=200).contains(&chars) && !name.trim().is_empty() {
        return Ok(());
    }
    Err(InvalidValue(
        format!(
            "invalid tenant name: it has {chars} characters and must have 1 to 200, not all blank"
        ),
        "Give the tenant a display name such as 'ACME Corporation'.".into(),
    ))
}

pub fn validate_metadata(metadata: &serde_json::Value) -> Result<(), TenancyError> {
    if metadata.is_object() {
        return Ok(());
    }
    Err(InvalidValue(
        format!("invalid tenant metadata: expected a JSON object, got {metadata}"),
        "Pass an object such as '{\"plan\": \"pro\"}'::jsonb (or '{}').".into(),
    ))
}

#[cfg(any(test, feature = "pg_test"))]
#[pgrx::pg_schema]
mod tests {
    use super::*;

    #[pgrx::pg_test]
    fn identifiers_follow_the_slug_rules() {
        for ok in ["abc", "acme-corp", "a1-b2-c3", &"a".repeat(63)] {
            assert!(validate_identifier(ok).is_ok(), "{ok} should be valid");
        }
        for bad in [
            "ab",
            &"a".repeat(64),
            "",
            "1abc",
            "-abc",
            "abc-",
            "ab--c",
            "Acme",
            "acme_corp",
            "acme corp",
            "acmé",
            "acme;drop",
            "abcdef0123456789abcdef0123456789",
            "abcdef01-2345-6789-abcd-ef0123456789",
        ] {
            assert!(validate_identifier(bad).is_err(), "{bad} should be invalid");
        }
    }

    #[pgrx::pg_test]
    fn names_and_metadata() {
        assert!(validate_name("A").is_ok());
        assert!(validate_name(&"é".repeat(200)).is_ok());
        assert!(validate_name(&"é".repeat(201)).is_err());
        assert!(validate_name("").is_err());
        assert!(validate_name("   ").is_err());
        assert!(validate_metadata(&serde_json::json!({"plan": "pro"})).is_ok());
        assert!(validate_metadata(&serde_json::json!([1])).is_err());
        assert!(validate_metadata(&serde_json::json!("x")).is_err());
    }
}
