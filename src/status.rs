//! A tenant's status and its state machine (a leaf: no other module of the crate).

/// A tenant's status, and the changes between them:
/// active ⇄ suspended, active | suspended → deleted; deleted is terminal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Active,
    Suspended,
    Deleted,
}

impl Status {
    /// The catalog's CHECK constraint admits these three only.
    pub fn parse(status: &str) -> Status {
        match status {
            "active" => Status::Active,
            "suspended" => Status::Suspended,
            _ => Status::Deleted,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Active => "active",
            Status::Suspended => "suspended",
            Status::Deleted => "deleted",
        }
    }

    /// The state machine's transition table.
    pub fn can_become(self, to: Status) -> bool {
        use Status::*;
        matches!(
            (self, to),
            (Active, Suspended) | (Suspended, Active) | (Active | Suspended, Deleted)
        )
    }

    /// The catalog columns a change to this status sets (besides the status;
    /// $2 is the reason).
    pub fn columns_set(self) -> &'static str {
        match self {
            Status::Active => "status_reason = $2, suspended_at = NULL",
            Status::Suspended => "status_reason = $2, suspended_at = now()",
            Status::Deleted => "status_reason = $2, deleted_at = now()",
        }
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(any(test, feature = "pg_test"))]
#[pgrx::pg_schema]
mod tests {
    use super::*;

    #[pgrx::pg_test]
    fn the_transition_table() {
        use Status::*;
        for (from, to, allowed) in [
            (Active, Suspended, true),
            (Suspended, Active, true),
            (Active, Deleted, true),
            (Suspended, Deleted, true),
            (Deleted, Active, false),
            (Deleted, Suspended, false),
            (Active, Active, false),
            (Suspended, Suspended, false),
        ] {
            assert_eq!(from.can_become(to), allowed, "{from} -> {to}");
        }
        for status in [Active, Suspended, Deleted] {
            assert_eq!(Status::parse(status.as_str()), status);
        }
    }
}
