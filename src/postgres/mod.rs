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
