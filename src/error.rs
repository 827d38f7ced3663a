//! Every error the extension raises, mapped to its SQLSTATE in one place.

use crate::status::Status;
use pgrx::pg_sys::errcodes::PgSqlErrorCode;
use pgrx::pg_sys::panic::ErrorReport;
use pgrx::PgLogLevel;

pub enum TenancyError {
    /// A required argument was NULL.
    NullArgument(&'static str),
    /// A value failed validation: (message, hint).
    InvalidValue(String, String),
    DuplicateIdentifier(String),
    DuplicateMigration(String),
    /// A signing key id that exists: (kid, hint).
    DuplicateKey(String, String),
    UnknownTenant(String),
    /// A lifecycle change the state machine forbids: (message, hint).
    IllegalTransition(String, String),
    /// The tenant column of a table is missing: (message, hint).
    UndefinedColumn(String, String),
    /// The tenant column of a table is unusable: (message, hint).
    BadTenantColumn(String, String),
    /// The tenant exists but may not be used as a context: (identifier, status).
    TenantNotActive(String, Status),
    /// The current role bypasses row-level security: (role, reason).
    PrivilegedRole(String, &'static str),
    NoTransactionBlock,
    /// A procedure that commits as it goes was called inside a transaction block.
    InTransactionBlock(String),
    /// A token or JWT failed verification: the reason (never the token).
    InvalidToken(String),
    /// tenancy.require_token is on and the role may not pick a tenant by name.
    TokenRequired(String),
    OpenCursors,
    /// Code another role wrote would run while the caller has cursors open.
    CursorsOpenForUserCode,
    /// A Citus worker got a tenancy.context that does not verify: the reason.
    InvalidContext(String),
    /// A session-scoped context where Citus runs protected tables on workers.
    SessionScopeOnCitus,
    /// DECLARE … WITH HOLD under a transaction-scoped context.
    CursorOutlivesContext,
    TenantRequired,
    /// The context holds a tenant that no longer exists.
    StaleContext,
    /// The caller lacks a right the operation needs: (message, hint).
    PermissionDenied(String, String),
    /// Something an administrator must set up first is missing: (message, hint).
    NotConfigured(String, String),
    /// A migration script created something a tenant schema must not hold: (message, hint).
    ForbiddenObject(String, String),
    /// A statement of the extension's own failed where it cannot (a bug):
    /// what failed, where, and why.
    Internal(String),
    /// An object an administrator named does not exist: (message, hint).
    UndefinedObject(String, String),
    /// TRUNCATE on a protected table: the table.
    TruncateRefused(String),
    /// UPDATE, DELETE or TRUNCATE of the audit log.
    AuditLogAppendOnly,
    /// A protected table would have a parent that is not: (table, parent).
    UnprotectedParent(String, String),
    /// A value beyond a fixed limit: (message, hint).
    TooLarge(String, String),
    /// More requests in a period than a setting allows: (message, hint).
    RateLimited(String, String),
    /// tenancy.* settings were given as connection options: their names.
    ConnectionOptions(String),
    /// A fast-path function call in the context of a tenant with limits:
    /// the tenant.
    FastPathWithLimits(String),
}

use TenancyError::*;

impl TenancyError {
    fn sqlstate(&self) -> PgSqlErrorCode {
        use PgSqlErrorCode::*;
        match self {
            NullArgument(_) => ERRCODE_NULL_VALUE_NOT_ALLOWED,
            UndefinedColumn(..) => ERRCODE_UNDEFINED_COLUMN,
            BadTenantColumn(..) => ERRCODE_DATATYPE_MISMATCH,
            InvalidValue(..) => ERRCODE_INVALID_PARAMETER_VALUE,
            DuplicateIdentifier(_) | DuplicateMigration(_) | DuplicateKey(..) => {
                ERRCODE_UNIQUE_VIOLATION
            }
            // What an application branches on has a code of its own:
            // unknown P0002 (404), suspended 55000 (403), deleted or
            // destroyed 42704 (410), no tenant 0P000, token 28000 (401).
            UnknownTenant(_) => ERRCODE_NO_DATA_FOUND,
            TenantNotActive(_, Status::Deleted) => ERRCODE_UNDEFINED_OBJECT,
            StaleContext => ERRCODE_UNDEFINED_OBJECT,
            TenantRequired => ERRCODE_INVALID_ROLE_SPECIFICATION,
            IllegalTransition(..) | TenantNotActive(..) => ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
            PrivilegedRole(..) => ERRCODE_INSUFFICIENT_PRIVILEGE,
            NoTransactionBlock => ERRCODE_NO_ACTIVE_SQL_TRANSACTION,
            InTransactionBlock(_) => ERRCODE_ACTIVE_SQL_TRANSACTION,
            InvalidToken(_) => ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION,
            TokenRequired(_) => ERRCODE_INSUFFICIENT_PRIVILEGE,
            OpenCursors | CursorsOpenForUserCode => ERRCODE_INVALID_CURSOR_STATE,
            CursorOutlivesContext => ERRCODE_INVALID_CURSOR_DEFINITION,
            SessionScopeOnCitus | FastPathWithLimits(_) => ERRCODE_FEATURE_NOT_SUPPORTED,
            InvalidContext(_) => ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION,
            Internal(_) => ERRCODE_INTERNAL_ERROR,
            UndefinedObject(..) => ERRCODE_UNDEFINED_OBJECT,
            TruncateRefused(_) | AuditLogAppendOnly => ERRCODE_INSUFFICIENT_PRIVILEGE,
            PermissionDenied(..) | ConnectionOptions(_) => ERRCODE_INSUFFICIENT_PRIVILEGE,
            NotConfigured(..) => ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
            ForbiddenObject(..) => ERRCODE_FEATURE_NOT_SUPPORTED,
            TooLarge(..) => ERRCODE_PROGRAM_LIMIT_EXCEEDED,
            UnprotectedParent(..) => ERRCODE_INVALID_TABLE_DEFINITION,
            RateLimited(..) => ERRCODE_CONFIGURATION_LIMIT_EXCEEDED,
        }
    }

    fn message_and_hint(&self) -> (String, String) {
        match self {
            NullArgument(arg) => (
                format!("argument \"{arg}\" must not be NULL"),
                format!("Pass a value for \"{arg}\"."),
            ),
            InvalidValue(message, hint)
            | IllegalTransition(message, hint)
            | UndefinedColumn(message, hint)
            | BadTenantColumn(message, hint)
            | PermissionDenied(message, hint)
            | NotConfigured(message, hint)
            | ForbiddenObject(message, hint)
            | TooLarge(message, hint)
            | RateLimited(message, hint)
            | UndefinedObject(message, hint) => (message.clone(), hint.clone()),
            Internal(what) => (
                format!("tenancy: {what}"),
                "A statement of the extension failed where it should not: please report it, \
                 with the statement that caused it."
                    .into(),
            ),
            TruncateRefused(table) => (
                format!("TRUNCATE is not allowed on tenant-protected table \"{table}\""),
                "TRUNCATE bypasses row-level security and would remove every tenant's rows; \
                 use DELETE in a tenant context."
                    .into(),
            ),
            UnprotectedParent(table, parent) => (
                format!("protected table {table} cannot have {parent} as a parent, which is not protected"),
                format!(
                    "Queried through {parent}, the rows of {table} would be read under the \
                     row-level security of {parent}: every tenant's. Protect {parent} first (it \
                     needs the tenant column), or detach {table} from it \
                     (ALTER TABLE {table} NO INHERIT {parent}, or DETACH PARTITION)."
                ),
            ),
            AuditLogAppendOnly => (
                "tenancy.audit_log is append-only".into(),
                "Remove old entries with tenancy.purge_audit_log(older_than interval).".into(),
            ),
            ConnectionOptions(names) => (
                format!("{names} cannot be given as a connection option"),
                "PostgreSQL refuses a tenancy setting from a client that may not set it, and the \
                 value an administrator configured for the role or database is lost with it, so \
                 this session may not enter a tenant context. Remove the option (-c, PGOPTIONS, \
                 the DSN's options) and reconnect; preloading tenancy (shared_preload_libraries) \
                 refuses such connections at once."
                    .into(),
            ),
            FastPathWithLimits(tenant) => (
                format!(
                    "a fast-path function call cannot run in the context of tenant \"{tenant}\", \
                     which has limits"
                ),
                "A function called through the protocol's fast path (libpq's PQfn, a driver's \
                 large-object calls) runs outside any statement, where the tenant's \
                 statement_timeout, max_concurrent_statements and usage counting cannot apply. \
                 Call it in a statement (SELECT f(…)), or outside the tenant's context."
                    .into(),
            ),
            DuplicateIdentifier(ident) => (
                format!("tenant \"{ident}\" already exists"),
                "Tenant identifiers are unique, including those of soft-deleted tenants; \
                 choose another identifier or destroy the old tenant with \
                 tenancy.delete_tenant(identifier, destroy_data => true)."
                    .into(),
            ),
            DuplicateKey(kid, hint) => (format!("signing key {kid:?} already exists"), hint.clone()),
            DuplicateMigration(name) => (
                format!("migration \"{name}\" already exists"),
                "Migrations are append-only: add a new one that changes what the old one did."
                    .into(),
            ),
            UnknownTenant(ident) => (
                format!("tenant \"{ident}\" does not exist"),
                "No tenant has this identifier: for an application, not found (HTTP 404); \
                 check how it resolves tenants. Administrators list them in tenancy.tenants."
                    .into(),
            ),
            TenantNotActive(ident, Status::Deleted) => (
                format!("tenant \"{ident}\" is deleted"),
                "For an application, gone (HTTP 410). The identifier stays reserved until an \
                 administrator destroys the tenant (delete_tenant(…, destroy_data => true))."
                    .into(),
            ),
            TenantNotActive(ident, status) => (
                format!("tenant \"{ident}\" is {status}"),
                "For an application, forbidden (HTTP 403). An administrator reinstates a \
                 suspended tenant with tenancy.activate_tenant()."
                    .into(),
            ),
            PrivilegedRole(role, why) => (
                format!("role \"{role}\" cannot use a tenant context: it {why}"),
                "Row-level security does not apply to this role, so the session would look \
                 isolated without being isolated. Connect as an application role without \
                 SUPERUSER and BYPASSRLS."
                    .into(),
            ),
            NoTransactionBlock => (
                "a transaction-scoped tenant context requires a transaction block".into(),
                "Run it inside the request's transaction: BEGIN, then \
                 tenancy.set_tenant(identifier, is_local => true), then the request's statements, \
                 then COMMIT (with a driver, in its transaction block). Outside a transaction the \
                 context would outlive the statement: on a pooled connection it would reach the \
                 next request."
                    .into(),
            ),
            InTransactionBlock(procedure) => (
                format!("CALL {procedure} cannot run inside a transaction block"),
                "It commits after every tenant schema. Run the CALL on its own (autocommit); \
                 from a migration tool's transaction, record the migration with \
                 SELECT tenancy.record_migration(name, sql) and run CALL tenancy.migrate() \
                 after that transaction has committed."
                    .into(),
            ),
            InvalidToken(reason) => (
                format!("invalid tenant token: {reason}"),
                "For an application, unauthenticated (HTTP 401): get a new token from the \
                 gateway (tenancy.issue_token()) or a new JWT from the auth server."
                    .into(),
            ),
            TokenRequired(role) => (
                format!("role \"{role}\" must present a signed tenant token"),
                "tenancy.require_token is on: use tenancy.set_tenant_token(token) or \
                 tenancy.set_tenant_jwt(jwt) with a token issued by the gateway."
                    .into(),
            ),
            OpenCursors => (
                "cannot change the tenant context while cursors are open".into(),
                "Close the session's cursors (CLOSE ALL) first: a cursor keeps returning \
                 the rows of the tenant it was opened for."
                    .into(),
            ),
            CursorsOpenForUserCode => (
                "cannot run another role's code (a migration, a table owner's triggers) while \
                 cursors are open"
                    .into(),
                "That code could fetch the session's cursors (pg_cursors names them) and read \
                 what they return with the caller's rights: close them (CLOSE ALL) first."
                    .into(),
            ),
            InvalidContext(reason) => (
                format!("invalid tenant context from the coordinator: {reason}"),
                "tenancy.context is set by a Citus coordinator for one distributed transaction \
                 (tenancy.set_tenant(…, is_local => true) there); it cannot be set by hand, \
                 replayed, or used on a connection to a worker."
                    .into(),
            ),
            SessionScopeOnCitus => (
                "a session-scoped tenant context does not reach the Citus workers".into(),
                "Protected tables are distributed: call tenancy.set_tenant(…, is_local => true) \
                 (or the token and JWT forms) at the start of every transaction; Citus carries \
                 only transaction-scoped settings to the workers."
                    .into(),
            ),
            CursorOutlivesContext => (
                "a cursor WITH HOLD cannot outlive a transaction-scoped tenant context".into(),
                "A held cursor keeps its rows after COMMIT, when the context of \
                 tenancy.set_tenant(…, is_local => true) has ended (and on a pooled connection \
                 the next client's request begins): declare it without WITH HOLD and read it \
                 before COMMIT, or use a session-scoped context."
                    .into(),
            ),
            TenantRequired => (
                "no tenant context is set".into(),
                "Set the request's tenant first: tenancy.set_tenant(identifier, is_local => true) \
                 (or its token or JWT form) at the start of the transaction."
                    .into(),
            ),
            StaleContext => (
                "the tenant of this context no longer exists".into(),
                "For an application, gone (HTTP 410): the tenant was destroyed. Set another \
                 context with tenancy.set_tenant() or clear it with tenancy.reset_tenant()."
                    .into(),
            ),
        }
    }

    pub fn message(&self) -> String {
        self.message_and_hint().0
    }

    /// Raise as a PostgreSQL ERROR; the transaction aborts, so nothing partial stays.
    pub fn raise(self) -> ! {
        let (message, hint) = self.message_and_hint();
        ErrorReport::new(self.sqlstate(), message, "tenancy")
            .set_hint(hint)
            .report(PgLogLevel::ERROR);
        unreachable!("ERROR does not return")
    }
}

/// Results of the extension's own statements (SPI): a failure is raised as
/// an internal error that says what failed and where.
pub trait OrRaise<T> {
    fn or_raise(self, what: &str) -> T;
}

impl<T, E: std::fmt::Display> OrRaise<T> for Result<T, E> {
    #[track_caller]
    fn or_raise(self, what: &str) -> T {
        let at = std::panic::Location::caller();
        self.unwrap_or_else(|e| {
            Internal(format!("{what} failed ({}:{}): {e}", at.file(), at.line())).raise()
        })
    }
}

/// Unwrap a required argument, raising 22004 for NULL.
pub fn required<T>(value: Option<T>, arg: &'static str) -> T {
    value.unwrap_or_else(|| NullArgument(arg).raise())
}
