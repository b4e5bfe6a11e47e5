//! Tokens for tests: valid ones signed with HS256 ([`TEST_SECRET`]), RS256
//! or ES256 (the test-only key pairs in `tests/fixtures/`), and the
//! forgeries an edge must refuse (`alg: none`, algorithm confusion).
//!
//! ```ignore
//! let token = Token::user("alice").groups(["room:1"]).join(["room:*"]).hs256();
//! ```

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use herald_edge::auth::{JwtKey, unix_now};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Map, Value, json};

/// The HS256 secret test edges are configured with by default.
pub const TEST_SECRET: &[u8] = b"herald integration tests: a test-only HS256 secret";

/// Test-only RSA key pair (RS256).
pub const RS256_PRIVATE_PEM: &[u8] = include_bytes!("../fixtures/test-only-rs256-private.pem");
pub const RS256_PUBLIC_PEM: &[u8] = include_bytes!("../fixtures/test-only-rs256-public.pem");
/// Test-only P-256 key pair (ES256).
pub const ES256_PRIVATE_PEM: &[u8] = include_bytes!("../fixtures/test-only-es256-private.pem");
pub const ES256_PUBLIC_PEM: &[u8] = include_bytes!("../fixtures/test-only-es256-public.pem");

/// Path of a fixture, for configurations that read keys from files.
pub fn fixture_path(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures").join(name)
}

/// The edge key matching [`Token::hs256`].
pub fn hs256_key() -> JwtKey {
    JwtKey::hs256(TEST_SECRET).expect("test secret")
}

/// The edge key matching [`Token::rs256`].
pub fn rs256_key() -> JwtKey {
    JwtKey::public_key_pem(RS256_PUBLIC_PEM).expect("test RS256 public key")
}

/// The edge key matching [`Token::es256`].
pub fn es256_key() -> JwtKey {
    JwtKey::public_key_pem(ES256_PUBLIC_PEM).expect("test ES256 public key")
}

/// The claims of one token, to sign in one of several ways.
#[derive(Debug, Clone)]
pub struct Token {
    claims: Map<String, Value>,
}

impl Token {
    /// A token for user `sub`, valid for an hour, with no groups.
    pub fn user(sub: &str) -> Token {
        let mut claims = Map::new();
        claims.insert("sub".into(), json!(sub));
        claims.insert("exp".into(), json!(unix_now() + 3600));
        Token { claims }
    }

    /// Groups joined at connect (`groups` claim).
    pub fn groups<I, S>(self, groups: I) -> Token
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let groups: Vec<String> = groups.into_iter().map(Into::into).collect();
        self.claim("groups", json!(groups))
    }

    /// Patterns of groups the client may `$join` (`join` claim).
    pub fn join<I, S>(self, patterns: I) -> Token
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let patterns: Vec<String> = patterns.into_iter().map(Into::into).collect();
        self.claim("join", json!(patterns))
    }

    /// Expires `after` from now (rounded down to the second, as `exp` is).
    pub fn expires_in(self, after: Duration) -> Token {
        self.claim("exp", json!(unix_now() + after.as_secs()))
    }

    /// Expired a minute ago.
    pub fn expired(self) -> Token {
        self.claim("exp", json!(unix_now() - 60))
    }

    /// `exp`, seconds since the Unix epoch.
    pub fn exp(&self) -> u64 {
        self.claims.get("exp").and_then(Value::as_u64).expect("token has no numeric exp")
    }

    /// Sets any claim (`aud`, `iss`, or one passed to handlers).
    pub fn claim(mut self, name: &str, value: Value) -> Token {
        self.claims.insert(name.into(), value);
        self
    }

    /// Removes a claim.
    pub fn without(mut self, name: &str) -> Token {
        self.claims.remove(name);
        self
    }

    pub fn claims(&self) -> &Map<String, Value> {
        &self.claims
    }

    /// Signed with [`TEST_SECRET`].
    pub fn hs256(&self) -> String {
        self.hs256_with(TEST_SECRET)
    }

    /// Signed with another HS256 secret.
    pub fn hs256_with(&self, secret: &[u8]) -> String {
        self.sign(Algorithm::HS256, &EncodingKey::from_secret(secret))
    }

    /// Signed with the test-only RSA key.
    pub fn rs256(&self) -> String {
        let key = EncodingKey::from_rsa_pem(RS256_PRIVATE_PEM).expect("test RS256 private key");
        self.sign(Algorithm::RS256, &key)
    }

    /// Signed with the test-only P-256 key.
    pub fn es256(&self) -> String {
        let key = EncodingKey::from_ec_pem(ES256_PRIVATE_PEM).expect("test ES256 private key");
        self.sign(Algorithm::ES256, &key)
    }

    /// `{"alg":"none"}` and no signature: must never be accepted.
    pub fn unsigned_alg_none(&self) -> String {
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
        let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&self.claims).unwrap());
        format!("{header}.{payload}.")
    }

    /// Algorithm confusion: HS256 with the RS256 *public* key's PEM bytes as
    /// the secret. An edge that lets the token pick the algorithm would
    /// accept it; one that pins RS256 refuses it.
    pub fn confused_hs256_with_rs256_public_key(&self) -> String {
        self.hs256_with(RS256_PUBLIC_PEM)
    }

    fn sign(&self, algorithm: Algorithm, key: &EncodingKey) -> String {
        jsonwebtoken::encode(&Header::new(algorithm), &self.claims, key).expect("sign test token")
    }
}
