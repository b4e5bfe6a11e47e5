//! `herald dev`'s own settings: where it listens, and the defaults that
//! make it usable at once (anything may connect, keys made up at each
//! start). Sessions and the router are tuned with [`edge::SESSIONS`] and
//! [`router::TUNING`].
//!
//! [`edge::SESSIONS`]: crate::edge::SESSIONS
//! [`router::TUNING`]: crate::router::TUNING

use std::net::SocketAddr;

use crate::setting::settings;
use crate::value::{boolean, socket_addr};

settings! {
    /// `herald dev`'s own settings.
    SETTINGS;
    /// Address to serve everything on: /ws, the demo page, /sdk/*,
    /// /dev/token, /api/*, /healthz, /readyz, /metrics.
    LISTEN: SocketAddr = new("ADDR", "127.0.0.1:8080", socket_addr);
    /// Shared secret signing /dev/token's tokens and verifying HS256 tokens;
    /// random at each start when unset.
    JWT_SECRET: String = secret("SECRET");
    /// Let clients in without a token.
    ALLOW_ANONYMOUS: bool = new("BOOL", "true", boolean);
    /// Key for /api/* (`Authorization: Bearer <key>`); random at each start
    /// when unset.
    API_KEY: String = secret("KEY");
}
