//! Everything an edge can be told, already validated and typed.
//!
//! The `herald` binary reads settings (flags, `HERALD_*` variables, a TOML
//! file) into this; tests build it directly, so no test ever touches the
//! process environment.

use std::net::SocketAddr;
use std::time::Duration;

use herald_proto::subject::Subjects;

pub use crate::auth::AuthConfig;
use crate::auth::JwtKey;

/// An edge's configuration.
#[derive(Debug, Clone)]
pub struct EdgeConfig {
    /// Address to serve `/ws`, `/healthz`, `/readyz` and `/metrics` on.
    pub listen: SocketAddr,
    /// Subject names, under the configured prefix.
    pub subjects: Subjects,
    pub auth: AuthConfig,
    /// Origins allowed to open a WebSocket; see [`OriginPolicy`].
    pub origins: OriginPolicy,
    pub limits: Limits,
    pub timing: Timing,
    /// Missed-message recovery; off unless asked for.
    pub history: HistoryConfig,
}

/// Missed-message recovery on JetStream (ADR 0006): which subjects keep a
/// history, how much of it, and how hard a reconnect storm may read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryConfig {
    /// Users' subjects keep a history.
    pub users: bool,
    /// Groups' subjects keep a history.
    pub groups: bool,
    /// The JetStream stream that stores it.
    pub stream: String,
    /// Messages kept per subject: a client that missed more is told
    /// `recovered: false`.
    pub depth: u32,
    /// How long a message is kept.
    pub max_age: Duration,
    /// Replicas of the stream (1 on a single server, 3 on a cluster).
    pub replicas: u32,
    /// History reads one edge makes at once, whatever the reconnect storm.
    pub max_reads: usize,
}

impl HistoryConfig {
    /// Whether any subject keeps a history.
    pub fn is_on(&self) -> bool {
        self.users || self.groups
    }
}

impl Default for HistoryConfig {
    fn default() -> Self {
        HistoryConfig {
            users: false,
            groups: false,
            stream: "HERALD_HISTORY".to_owned(),
            depth: 100,
            max_age: Duration::from_secs(300),
            replicas: 1,
            max_reads: 32,
        }
    }
}

/// Which `Origin` headers may open a WebSocket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OriginPolicy {
    /// Any origin, and requests with none (non-browser clients).
    Any,
    /// Only these origins (`https://app.example.com`, compared without case);
    /// requests without an `Origin` header are non-browser clients and pass.
    List(Vec<String>),
}

impl OriginPolicy {
    pub fn allows(&self, origin: Option<&str>) -> bool {
        match (self, origin) {
            (OriginPolicy::Any, _) | (OriginPolicy::List(_), None) => true,
            (OriginPolicy::List(allowed), Some(origin)) => {
                let origin = origin.trim_end_matches('/');
                allowed.iter().any(|a| a.trim_end_matches('/').eq_ignore_ascii_case(origin))
            }
        }
    }
}

/// Bounds on what one connection may cost.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest client frame; bigger ones close the connection with 1009.
    pub max_message_bytes: usize,
    /// Frames waiting to be written to one client. When it stays full for
    /// [`Timing::slow_consumer_grace`], the client is closed with 1013.
    pub mailbox_capacity: usize,
    /// Client frames per second a connection may send on average.
    pub rate_per_sec: u32,
    /// Client frames a connection may send in a burst above the average.
    pub rate_burst: u32,
    /// Frames refused by the rate limit, without backing off, before the
    /// connection is closed with 1008.
    pub rate_strikes: u32,
    /// Client actions one connection may have waiting on handlers at once.
    pub max_inflight_actions: usize,
}

/// Timers.
#[derive(Debug, Clone)]
pub struct Timing {
    /// Silence from a client after which the edge pings it.
    pub ping_interval: Duration,
    /// Further silence after a ping after which the client is dropped.
    pub pong_timeout: Duration,
    /// Time a client has to send `$auth` after `$reauth`; then 4001.
    pub reauth_grace: Duration,
    /// How long the outbound queue may stay full before 1013.
    pub slow_consumer_grace: Duration,
    /// How long a drain may take before the edge stops regardless.
    pub drain_timeout: Duration,
    /// How long a client action may wait for its answer before 504.
    pub action_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_message_bytes: 64 * 1024,
            mailbox_capacity: 256,
            rate_per_sec: 100,
            rate_burst: 200,
            rate_strikes: 50,
            max_inflight_actions: 32,
        }
    }
}

impl Default for Timing {
    fn default() -> Self {
        Timing {
            ping_interval: Duration::from_secs(25),
            pong_timeout: Duration::from_secs(10),
            reauth_grace: Duration::from_secs(30),
            slow_consumer_grace: Duration::from_secs(5),
            drain_timeout: Duration::from_secs(10),
            action_timeout: Duration::from_secs(10),
        }
    }
}

impl EdgeConfig {
    /// A configuration with every default, listening on `listen`, that lets
    /// clients in with tokens signed by `key` (and anonymously when
    /// [`AuthConfig::allow_anonymous`] is set later).
    pub fn new(listen: SocketAddr, key: Option<JwtKey>) -> EdgeConfig {
        EdgeConfig {
            listen,
            subjects: Subjects::default(),
            auth: AuthConfig { key, allow_anonymous: false, audience: None, issuer: None },
            origins: OriginPolicy::Any,
            limits: Limits::default(),
            timing: Timing::default(),
            history: HistoryConfig::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origin_list_compares_without_case_or_trailing_slash() {
        let policy = OriginPolicy::List(vec!["https://App.example.com".into()]);
        assert!(policy.allows(Some("https://app.example.com/")));
        assert!(policy.allows(None));
        assert!(!policy.allows(Some("https://evil.example.com")));
        assert!(!policy.allows(Some("https://app.example.com.evil.net")));
    }
}
