//! The two JSON objects of the handshake: the server's `INFO` and our
//! `CONNECT`.

use serde::{Deserialize, Serialize};

/// nats-server's default `max_payload`, for a server that does not say.
const DEFAULT_MAX_PAYLOAD: usize = 1024 * 1024;

/// What we read from the server's `INFO`; every other field is ignored.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct ServerInfo {
    /// Named in logs and events, to tell the servers of a cluster apart.
    pub server_name: String,
    /// Largest message the server passes on: our bound on what we buffer.
    pub max_payload: usize,
    /// The server speaks TLS only: upgrade even for a `nats://` URL.
    pub tls_required: bool,
    /// The server takes TLS from clients that ask (`tls://`) and plain TCP
    /// from the others.
    pub tls_available: bool,
    /// Other servers of the cluster, added to those we try on reconnect.
    pub connect_urls: Vec<String>,
    /// The server is shutting down gracefully ("lame duck mode"); it will
    /// close the connection soon, and we reconnect elsewhere then.
    #[serde(rename = "ldm")]
    pub lame_duck: bool,
}

impl ServerInfo {
    /// Reads the JSON object of an `INFO` (an object only: serde would
    /// also read a struct from an array).
    pub fn parse(json: &[u8]) -> Result<ServerInfo, serde_json::Error> {
        if json.trim_ascii_start().first() != Some(&b'{') {
            return Err(serde::de::Error::custom("INFO is not a JSON object"));
        }
        let mut info: ServerInfo = serde_json::from_slice(json)?;
        if info.max_payload == 0 {
            info.max_payload = DEFAULT_MAX_PAYLOAD;
        }
        Ok(info)
    }
}

/// Our `CONNECT`: who we are, what we understand, and our credentials.
#[derive(Debug, Serialize)]
pub(crate) struct Connect<'a> {
    /// No `+OK` after every command.
    pub verbose: bool,
    /// The server need not check our subjects strictly: we check them.
    pub pedantic: bool,
    /// Whether we asked for TLS (the URL's `tls://`).
    pub tls_required: bool,
    /// Shown by NATS monitoring.
    pub name: &'a str,
    pub lang: &'static str,
    pub version: &'static str,
    /// 1: we understand `INFO` updates after the handshake (cluster URLs,
    /// lame duck mode).
    pub protocol: u8,
    /// We read `HMSG` (headers carry `Herald-Exclude-Conn` and JetStream's
    /// sequence numbers).
    pub headers: bool,
    /// Asked of every client that sets `headers`; this connection makes no
    /// requests, so it never gets one.
    pub no_responders: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pass: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth_token: Option<&'a str>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_a_server_says_and_ignores_the_rest() {
        let info = ServerInfo::parse(
            br#"{"server_id":"N1","server_name":"a","version":"2.10.0","proto":1,"headers":true,"max_payload":8,"tls_required":true,"connect_urls":["10.0.0.2:4222"],"ldm":true,"nonce":"x"}"#,
        )
        .unwrap();
        assert_eq!(info.server_name, "a");
        assert_eq!(info.max_payload, 8);
        assert!(info.tls_required && info.lame_duck);
        assert_eq!(info.connect_urls, ["10.0.0.2:4222"]);
        assert_eq!(ServerInfo::parse(b"{}").unwrap().max_payload, DEFAULT_MAX_PAYLOAD);
        assert!(ServerInfo::parse(b"[]").is_err());
    }

    #[test]
    fn connect_leaves_out_credentials_it_does_not_have() {
        let connect = Connect {
            verbose: false,
            pedantic: false,
            tls_required: false,
            name: "edge",
            lang: "rust",
            version: "1",
            protocol: 1,
            headers: true,
            no_responders: true,
            user: None,
            pass: None,
            auth_token: Some("t"),
        };
        assert_eq!(
            serde_json::to_string(&connect).unwrap(),
            r#"{"verbose":false,"pedantic":false,"tls_required":false,"name":"edge","lang":"rust","version":"1","protocol":1,"headers":true,"no_responders":true,"auth_token":"t"}"#
        );
    }
}
