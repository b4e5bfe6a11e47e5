//! Presence: routers ask every live edge (scatter-gather on
//! `<prefix>.presence.query`) and add up the answers; edges announce
//! themselves on `<prefix>.edges.heartbeat` so routers know how many answers
//! to wait for.
//!
//! An edge counts only its own connections, so each connection is counted
//! once; an edge that died cannot answer, so its connections are never
//! counted after it is gone.

use serde::{Deserialize, Serialize};

/// What a router asks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", deny_unknown_fields)]
pub enum PresenceQuery {
    User(String),
    Group(String),
}

/// One edge's answer.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EdgePresence {
    pub edge: String,
    /// Connections of the user, or in the group, on this edge.
    pub conns: usize,
    /// Group queries: the distinct users of those connections (anonymous
    /// connections are counted in `conns` but have no user).
    #[serde(default)]
    pub users: Vec<String>,
}

/// An edge saying it is alive, every `interval_ms`; `leaving` when it stops.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Heartbeat {
    pub edge: String,
    pub interval_ms: u64,
    #[serde(default)]
    pub leaving: bool,
}
