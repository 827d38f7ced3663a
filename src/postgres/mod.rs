//! The boundary with PostgreSQL internals: the only place with `unsafe`.

pub mod citus;
pub mod functions;
pub mod gucs;
pub mod hooks;
pub mod invalidation;
pub mod jsonb;
pub mod objects;
pub mod query;
pub mod relations;
pub mod security;
pub mod system;

/// What a feature tells the boundary about an object: which relations'
/// changes invalidate, which functions run restricted.
pub type OidTest = fn(pgrx::pg_sys::Oid) -> bool;
