//! How to reach NATS: the servers, credentials, TLS, timings and bounds.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use percent_encoding::percent_decode_str;
use url::{Host, Url};

use crate::Error;

/// nats-server's port when a URL names none.
const DEFAULT_PORT: u16 = 4222;

/// Something the connection tells its owner about: for logs, metrics and
/// readiness. Called on the connection's task; keep it short.
pub type EventHandler = Arc<dyn Fn(&Event) + Send + Sync>;

/// How to connect, and how hard to try.
#[derive(Clone)]
pub struct Config {
    /// Server URLs, tried in turn (from a random one, so that many clients
    /// with the same list spread out): `nats://host:port`, `tls://host:port`
    /// or `host:port`; `user:password@` or `token@` before the host
    /// authenticate to that server, over [`Config::auth`].
    pub servers: Vec<String>,
    /// Connection name, shown by NATS monitoring.
    pub name: String,
    /// Credentials for servers whose URL has none.
    pub auth: Auth,
    /// TLS settings, for `tls://` URLs and servers that require TLS. `None`:
    /// the platform's root certificates, loaded when first needed.
    pub tls: Option<Arc<rustls::ClientConfig>>,
    /// How often we ping the server. Nothing heard from it (no message,
    /// ping or pong) for two pings in a row means it is gone (a dead peer
    /// sends no FIN) and we reconnect: a server silent for two to three of
    /// these is left. Longer tolerates a slower server (nats-server seconds
    /// behind on a subscribe storm); shorter leaves a dead one sooner.
    pub ping_interval: Duration,
    /// Longest a connection attempt may take, TCP, TLS and handshake.
    pub connect_timeout: Duration,
    /// Longest pause between rounds of attempts over every server.
    pub max_reconnect_delay: Duration,
    /// Most bytes of `SUB`/`UNSUB`/`PING` waiting to be written. A
    /// subscription beyond it is refused with [`Error::Backlog`]: the server
    /// is not reading, and the keep-alive will soon reconnect (which starts
    /// again from the subscriptions themselves, not from this queue).
    pub max_pending_commands: usize,
    /// Told about connects, disconnects and server errors.
    pub on_event: Option<EventHandler>,
}

impl Config {
    /// A config for `servers` with the defaults: no credentials, the
    /// platform's roots, a ping every 2 s, 2 s to connect, at most 2 s
    /// between rounds of attempts, 4 MiB of pending commands.
    pub fn new(servers: Vec<String>, name: impl Into<String>) -> Config {
        Config {
            servers,
            name: name.into(),
            auth: Auth::None,
            tls: None,
            ping_interval: Duration::from_secs(2),
            connect_timeout: Duration::from_secs(2),
            max_reconnect_delay: Duration::from_secs(2),
            max_pending_commands: 4 * 1024 * 1024,
            on_event: None,
        }
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("servers", &self.servers.iter().map(|s| redact_userinfo(s)).collect::<Vec<_>>())
            .field("name", &self.name)
            .field("auth", &self.auth)
            .field("tls", &self.tls.as_ref().map(|_| "custom"))
            .field("ping_interval", &self.ping_interval)
            .field("connect_timeout", &self.connect_timeout)
            .field("max_reconnect_delay", &self.max_reconnect_delay)
            .field("max_pending_commands", &self.max_pending_commands)
            .finish_non_exhaustive()
    }
}

/// Credentials sent in `CONNECT`.
#[derive(Clone, PartialEq, Eq, Default)]
pub enum Auth {
    #[default]
    None,
    UserPassword {
        user: String,
        password: String,
    },
    Token(String),
}

impl fmt::Debug for Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Auth::None => f.write_str("None"),
            Auth::UserPassword { user, .. } => write!(f, "UserPassword({user:?}, <redacted>)"),
            Auth::Token(_) => f.write_str("Token(<redacted>)"),
        }
    }
}

/// Something the connection tells its owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Connected, handshake done, every subscription sent again.
    Connected { server: String },
    /// The connection is gone; messages published until the next
    /// `Connected` are not received.
    Disconnected { reason: String },
    /// A connection attempt failed.
    ConnectFailed { server: String, reason: String },
    /// `-ERR` from the server. Those about a subscription (a permissions
    /// violation) leave the connection up; the others close it.
    ServerError(String),
    /// The server is shutting down and will close the connection soon.
    LameDuck { server: String },
    /// A message that could not be read (its subject is not UTF-8, its
    /// header block is malformed) was dropped; the connection is fine.
    Dropped { reason: String },
}

/// One server to try.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ServerAddr {
    /// Host name or IP address (an IPv6 one without brackets).
    pub host: String,
    pub port: u16,
    /// The URL said `tls://`: TLS whatever the server says.
    pub tls: bool,
    /// Credentials from the URL, over [`Config::auth`].
    pub auth: Option<Auth>,
}

impl ServerAddr {
    /// Reads `nats://`, `tls://` or scheme-less URLs.
    pub fn parse(text: &str) -> Result<ServerAddr, Error> {
        let bad = |reason: &str| Error::BadUrl { url: redact_userinfo(text), reason: reason.to_owned() };
        let text = text.trim();
        let url = if text.contains("://") { Url::parse(text) } else { Url::parse(&format!("nats://{text}")) }
            .map_err(|e| bad(&e.to_string()))?;
        let tls = match url.scheme() {
            "nats" => false,
            "tls" => true,
            other => return Err(bad(&format!("scheme {other}:// is not nats:// or tls://"))),
        };
        let host = match url.host() {
            Some(Host::Domain(domain)) => domain.to_owned(),
            Some(Host::Ipv4(ip)) => ip.to_string(),
            Some(Host::Ipv6(ip)) => ip.to_string(),
            None => return Err(bad("no host")),
        };
        let decode = |part: &str| percent_decode_str(part).decode_utf8().map(|s| s.into_owned());
        let user = decode(url.username()).map_err(|_| bad("user is not UTF-8"))?;
        let password = url.password().map(decode).transpose().map_err(|_| bad("password is not UTF-8"))?;
        let auth = match (user.is_empty(), password) {
            (true, None) => None,
            (true, Some(_)) => return Err(bad("a password without a user")),
            (false, None) => Some(Auth::Token(user)),
            (false, Some(password)) => Some(Auth::UserPassword { user, password }),
        };
        Ok(ServerAddr { host, port: url.port().unwrap_or(DEFAULT_PORT), tls, auth })
    }

    /// `host:port`, for logs and events.
    pub fn label(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

/// A URL with any `user:password@` replaced, fit for logs.
fn redact_userinfo(url: &str) -> String {
    let (prefix, rest) = match url.find("://") {
        Some(scheme_end) => url.split_at(scheme_end + 3),
        None => ("", url),
    };
    let authority = &rest[..rest.find('/').unwrap_or(rest.len())];
    match authority.rfind('@') {
        Some(at) => format!("{prefix}<redacted>{}", &rest[at..]),
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(text: &str) -> ServerAddr {
        ServerAddr::parse(text).unwrap()
    }

    #[test]
    fn reads_the_urls_nats_clients_take() {
        assert_eq!(
            addr("nats://127.0.0.1:4333"),
            ServerAddr { host: "127.0.0.1".into(), port: 4333, tls: false, auth: None }
        );
        assert_eq!(addr("localhost"), ServerAddr { host: "localhost".into(), port: 4222, tls: false, auth: None });
        assert_eq!(addr("10.0.0.2:4223").port, 4223);
        assert!(addr("tls://nats.example.com").tls);
        assert_eq!(addr("nats://[::1]:4222").host, "::1");
        assert_eq!(addr("nats://[::1]:4222").label(), "[::1]:4222");
        assert_eq!(addr(" nats://a:1 ").label(), "a:1");
    }

    #[test]
    fn reads_credentials_from_the_url() {
        assert_eq!(
            addr("nats://herald:p%40ss@a:4222").auth,
            Some(Auth::UserPassword { user: "herald".into(), password: "p@ss".into() })
        );
        assert_eq!(addr("nats://s3cr3t@a:4222").auth, Some(Auth::Token("s3cr3t".into())));
    }

    #[test]
    fn refuses_other_schemes_and_says_why_without_the_secret() {
        let error = ServerAddr::parse("http://u:secret@x").unwrap_err().to_string();
        assert_eq!(error, r#"bad NATS URL "http://<redacted>@x": scheme http:// is not nats:// or tls://"#);
        assert!(ServerAddr::parse("nats://").is_err());
        assert!(ServerAddr::parse("nats://:pw@a").is_err());
    }

    #[test]
    fn secrets_stay_out_of_debug_output() {
        let mut config = Config::new(vec!["nats://u:secret@a".into(), "b:1".into()], "n");
        config.auth = Auth::Token("token".into());
        let shown = format!("{config:?}");
        assert!(!shown.contains("secret") && !shown.contains("\"token\""), "{shown}");
        assert!(shown.contains("nats://<redacted>@a") && shown.contains("b:1"), "{shown}");
    }
}
