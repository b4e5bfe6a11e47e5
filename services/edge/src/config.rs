//! Everything an edge can be told, already validated and typed.
//!
//! The `herald` binary reads settings (flags, `HERALD_*` variables, a TOML
//! file) into this; tests build it directly, so no test ever touches the
//! process environment. The defaults are the settings' own
//! ([`herald_settings::edge`]), written once there.

use std::net::SocketAddr;
use std::time::Duration;

use herald_proto::pusher::app::Apps;
use herald_proto::subject::Subjects;
use herald_settings::edge as settings;
use herald_settings::history::{self, HistoryKinds};

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
    /// The Pusher apps whose clients connect on `/app/<key>`; none turns
    /// the Pusher protocol off.
    pub pusher_apps: Apps,
    /// Missed-message recovery; off unless asked for.
    pub history: HistoryConfig,
    /// Tasks that write deliveries to idle sessions (ADR 0036): each takes
    /// one core at a time while a broadcast is written.
    pub flushers: usize,
}

/// Missed-message recovery on JetStream (ADR 0012): which subjects keep a
/// history, how much of it, and how hard a reconnect storm may read it.
/// Defaults are [`herald_settings::history`]'s.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryConfig {
    /// Which subjects keep a history; none turns recovery off.
    pub kinds: HistoryKinds,
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

impl Default for HistoryConfig {
    fn default() -> Self {
        HistoryConfig {
            kinds: history::HISTORY.default_value(),
            stream: history::HISTORY_STREAM.default_value(),
            depth: history::HISTORY_DEPTH.default_value(),
            max_age: history::HISTORY_MAX_AGE_MS.default_value(),
            replicas: history::HISTORY_REPLICAS.default_value(),
            max_reads: history::HISTORY_MAX_READS.default_value(),
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

impl From<Option<Vec<String>>> for OriginPolicy {
    /// The policy `HERALD_ALLOWED_ORIGINS` reads as: `None` (`*`) for any
    /// origin, else the list.
    fn from(origins: Option<Vec<String>>) -> OriginPolicy {
        origins.map_or(OriginPolicy::Any, OriginPolicy::List)
    }
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
            max_message_bytes: settings::MAX_MESSAGE_BYTES.default_value(),
            mailbox_capacity: settings::MAILBOX_CAPACITY.default_value(),
            rate_per_sec: settings::RATE_LIMIT_PER_SEC.default_value(),
            rate_burst: settings::RATE_LIMIT_BURST.default_value(),
            rate_strikes: settings::RATE_LIMIT_STRIKES.default_value(),
            max_inflight_actions: settings::MAX_INFLIGHT_ACTIONS.default_value(),
        }
    }
}

impl Default for Timing {
    fn default() -> Self {
        Timing {
            ping_interval: settings::PING_INTERVAL_MS.default_value(),
            pong_timeout: settings::PONG_TIMEOUT_MS.default_value(),
            reauth_grace: settings::REAUTH_GRACE_MS.default_value(),
            slow_consumer_grace: settings::SLOW_CONSUMER_GRACE_MS.default_value(),
            drain_timeout: settings::DRAIN_TIMEOUT_MS.default_value(),
            action_timeout: settings::ACTION_TIMEOUT_MS.default_value(),
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
            auth: AuthConfig {
                key,
                allow_anonymous: settings::ALLOW_ANONYMOUS.default_value(),
                audience: None,
                issuer: None,
            },
            origins: settings::ALLOWED_ORIGINS.default_value().into(),
            limits: Limits::default(),
            timing: Timing::default(),
            pusher_apps: Apps::default(),
            history: HistoryConfig::default(),
            flushers: settings::FLUSHERS.default_value(),
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
