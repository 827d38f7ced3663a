//! The SQL surface, one module per concept.

pub mod audit;
pub mod citus;
pub mod config;
pub mod context;
pub mod distribute;
pub mod keys;
pub mod lifecycle;
pub mod migrations;
pub mod policies;
pub mod roles;
pub mod schemas;
pub mod tokens;
