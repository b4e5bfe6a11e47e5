//! The edge's settings. [`SETTINGS`] are `herald edge`'s own (`herald dev`
//! has its own versions of them); [`SESSIONS`] are read by every role that
//! runs an edge, and are `herald-edge`'s defaults.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::setting::settings;
use crate::value::{boolean, comma_list, millis, path, socket_addr, text, whole};

settings! {
    /// Where `herald edge` listens and how it finds the key for tokens.
    SETTINGS;
    /// Address to serve /ws, /healthz, /readyz and /metrics on.
    LISTEN: SocketAddr = new("ADDR", "0.0.0.0:8080", socket_addr);
    /// Shared secret verifying HS256 tokens.
    JWT_SECRET: String = secret("SECRET");
    /// PEM public key verifying RS256 (RSA) or ES256 (P-256) tokens.
    JWT_PUBLIC_KEY_FILE: PathBuf = optional("PATH", path);
    /// Let clients in without a token.
    ALLOW_ANONYMOUS: bool = new("BOOL", "false", boolean);
}

settings! {
    /// How sessions are held: token rules, origins, limits and timers.
    SESSIONS;
    /// Required aud claim of tokens.
    JWT_AUDIENCE: String = optional("AUD", text);
    /// Required iss claim of tokens.
    JWT_ISSUER: String = optional("ISS", text);
    /// Origins that may open a WebSocket, comma-separated, or * for any.
    ALLOWED_ORIGINS: Option<Vec<String>> = new("ORIGINS", "*", origins);
    /// Largest client frame; a bigger one closes the connection with 1009.
    MAX_MESSAGE_BYTES: usize = new("BYTES", "65536", whole::<usize, 256>);
    /// Frames queued for one client before it counts as slow.
    MAILBOX_CAPACITY: usize = new("FRAMES", "256", whole::<usize, 1>);
    /// Client frames per second one connection may send on average.
    RATE_LIMIT_PER_SEC: u32 = new("N", "100", whole::<u32, 1>);
    /// Client frames one connection may send in a burst.
    RATE_LIMIT_BURST: u32 = new("N", "200", whole::<u32, 1>);
    /// Frames over the rate limit before the connection is closed with 1008.
    RATE_LIMIT_STRIKES: u32 = new("N", "50", whole::<u32, 1>);
    /// Client actions one connection may have waiting on handlers.
    MAX_INFLIGHT_ACTIONS: usize = new("N", "32", whole::<usize, 1>);
    /// Client silence after which the edge pings it.
    PING_INTERVAL_MS: Duration = new("MS", "25000", millis::<1>);
    /// Further silence after a ping before the client is dropped.
    PONG_TIMEOUT_MS: Duration = new("MS", "10000", millis::<1>);
    /// Time a client has to send $auth after $reauth before 4001.
    REAUTH_GRACE_MS: Duration = new("MS", "30000", millis::<1>);
    /// Time a client's queue may stay full before 1013.
    SLOW_CONSUMER_GRACE_MS: Duration = new("MS", "5000", millis::<1>);
    /// Tasks writing deliveries to idle clients, each on one core at a
    /// time while a broadcast is written; the other cores read, connect
    /// and answer meanwhile.
    FLUSHERS: usize = new("N", "1", whole::<usize, 1>);
    /// Time the drain on shutdown may take before the edge stops anyway;
    /// 0 closes every session at once.
    DRAIN_TIMEOUT_MS: Duration = new("MS", "10000", millis::<0>);
    /// Time a client action may wait for its answer before 504.
    ACTION_TIMEOUT_MS: Duration = new("MS", "10000", millis::<1>);
}

/// `*` (or nothing) for any origin, read as `None`; else a comma list of
/// origins such as `https://app.example.com`. An origin without a scheme
/// would never match what a browser sends, so it is refused rather than
/// silently locking every browser out.
fn origins(value: &str) -> Result<Option<Vec<String>>, String> {
    let origins = comma_list(value);
    if origins.is_empty() || origins == ["*"] {
        return Ok(None);
    }
    match origins.iter().find(|origin| !origin.contains("://") || origin.contains('*')) {
        Some(bad) => Err(format!(
            "{bad:?} is not an origin: expected * or origins like https://app.example.com, comma-separated"
        )),
        None => Ok(Some(origins)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origin_lists() {
        assert_eq!(origins(""), Ok(None));
        assert_eq!(origins(" * "), Ok(None));
        assert_eq!(
            origins("https://a.example.com,http://localhost:3000"),
            Ok(Some(vec!["https://a.example.com".into(), "http://localhost:3000".into()]))
        );
        assert!(origins("app.example.com").unwrap_err().starts_with(r#""app.example.com" is not an origin"#));
        assert!(origins("https://*.example.com").is_err());
        assert!(origins("*, https://a.example.com").is_err());
    }
}
