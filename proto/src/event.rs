//! Lifecycle events edges publish on `<prefix>.events.connect` and
//! `<prefix>.events.disconnect`.

use serde::{Deserialize, Serialize};

use crate::handler::Claims;

/// One event. `code` and `reason` are present on disconnect only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LifecycleEvent {
    pub conn: String,
    pub user: Option<String>,
    pub groups: Vec<String>,
    /// The connection's claims, as handlers get them (a `$disconnect`
    /// handler needs them as much as any); absent when there are none.
    #[serde(default, skip_serializing_if = "Claims::is_empty")]
    pub claims: Claims,
    /// The id of the edge that held the connection.
    pub edge: String,
    /// RFC 3339 UTC time with milliseconds.
    pub at: String,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub close: Option<CloseInfo>,
}

/// How a connection ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CloseInfo {
    pub code: u16,
    pub reason: String,
}
