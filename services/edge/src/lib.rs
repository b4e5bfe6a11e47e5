//! Herald's edge (work in progress).
pub mod auth;
pub mod config;
