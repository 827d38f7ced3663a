//! The boundary with PostgreSQL internals: the only place with `unsafe`.

pub mod gucs;
pub mod invalidation;
pub mod security;
