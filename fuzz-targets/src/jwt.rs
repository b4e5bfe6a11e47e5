//! JWT verification on arbitrary tokens: `?token=`, `Authorization:
//! Bearer` and `$auth` all reach it from any client.
//!
//! The first byte picks what the rest is:
//!
//! - 0: a token as a client sends it, verified with an HS256 secret, an
//!   ES256 and an RS256 public key. Never panics; always refused with
//!   `Invalid` (forging a signature is not the fuzzer's job).
//! - 1: header and claims bytes (split at the first `\n`), correctly signed
//!   with HS256, so the claim checks behind the signature are reached.
//!   Never panics; accepted only with `alg` HS256, and an accepted token
//!   gives a user, an expiry in the future, and claims without Herald's own.
//! - 2: claims as JSON, signed with the standard HS256 header. Besides the
//!   above, the verdict is the one the contract gives: a string `sub`, an
//!   integer `exp` well in the future, `groups` and `join` arrays of
//!   strings, and no `nbf`, `aud` or `iss` is accepted; an `exp` well in
//!   the past is refused.

use std::sync::LazyLock;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use herald_edge::auth::{AuthError, Identity, Verifier, unix_now};
use herald_edge::{AuthConfig, JwtKey};
use jsonwebtoken::{Algorithm, EncodingKey};
use serde_json::{Value, json};

/// The secret of the HS256 verifier and of the tokens the target signs;
/// `fuzz/seed.py` signs the seed tokens with it too.
const SECRET: &[u8] = b"herald-fuzz-only-secret";
/// Claims Herald reads itself and does not pass to handlers.
const HERALD_CLAIMS: [&str; 6] = ["sub", "groups", "join", "exp", "aud", "iss"];
/// How far from now an `exp` must be for the verdict not to depend on when
/// the target runs.
const CLEAR_OF_NOW: u64 = 3600;

fn verifier(key: JwtKey) -> Verifier {
    Verifier::new(&AuthConfig { key: Some(key), allow_anonymous: false, audience: None, issuer: None })
}

static HS256: LazyLock<Verifier> = LazyLock::new(|| verifier(JwtKey::hs256(SECRET).unwrap()));
static PUBLIC_KEYS: LazyLock<[Verifier; 2]> = LazyLock::new(|| {
    let es256 = include_bytes!("../../tests/fixtures/test-only-es256-public.pem");
    let rs256 = include_bytes!("../../tests/fixtures/test-only-rs256-public.pem");
    [verifier(JwtKey::public_key_pem(es256).unwrap()), verifier(JwtKey::public_key_pem(rs256).unwrap())]
});

pub fn run(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else { return };
    match mode {
        0 => as_sent(rest),
        1 => {
            let (header, claims) = match rest.iter().position(|&b| b == b'\n') {
                Some(at) => (&rest[..at], &rest[at + 1..]),
                None => (rest, &[][..]),
            };
            let _ = signed(header, claims);
        }
        2 => claims(rest),
        _ => {}
    }
}

fn as_sent(data: &[u8]) {
    let Ok(token) = std::str::from_utf8(data) else { return };
    for verifier in [&*HS256, &PUBLIC_KEYS[0], &PUBLIC_KEYS[1]] {
        match verifier.verify(token) {
            Err(AuthError::Invalid(message)) => assert!(!message.is_empty()),
            other => panic!("an unsigned token got {other:?}"),
        }
    }
}

/// Signs `header` and `claims` as they are and verifies the token.
fn signed(header: &[u8], claims: &[u8]) -> Result<Identity, AuthError> {
    let message = format!("{}.{}", URL_SAFE_NO_PAD.encode(header), URL_SAFE_NO_PAD.encode(claims));
    let signature = jsonwebtoken::crypto::sign(message.as_bytes(), &EncodingKey::from_secret(SECRET), Algorithm::HS256)
        .expect("HMAC signs anything");
    let verdict = HS256.verify(&format!("{message}.{signature}"));
    match &verdict {
        Ok(identity) => {
            let header: Value = serde_json::from_slice(header).expect("an accepted header is JSON");
            assert_eq!(header["alg"], "HS256", "accepted with another algorithm");
            assert!(identity.user.is_some());
            // A second may have passed since the check.
            assert!(identity.expires_at().is_some_and(|exp| exp.saturating_add(1) >= unix_now()), "{identity:?}");
            assert!(HERALD_CLAIMS.iter().all(|name| !identity.claims().contains_key(*name)), "{identity:?}");
        }
        Err(AuthError::Invalid(message)) => assert!(!message.is_empty()),
        Err(other) => panic!("a signed token got {other:?}"),
    }
    verdict
}

fn claims(data: &[u8]) {
    // Read and written again, so the claims have no duplicate keys (which
    // `serde_json` reads, last one wins, and the verifier refuses).
    let Ok(Value::Object(claims)) = serde_json::from_slice::<Value>(data) else { return };
    let header = json!({"alg": "HS256", "typ": "JWT"}).to_string();
    let verdict = signed(header.as_bytes(), Value::Object(claims.clone()).to_string().as_bytes());

    let now = unix_now();
    let strings =
        |name: &str| claims.get(name).is_none_or(|v| v.as_array().is_some_and(|a| a.iter().all(Value::is_string)));
    let exp = claims.get("exp").and_then(Value::as_u64);
    let valid = claims.get("sub").is_some_and(Value::is_string)
        && exp.is_some_and(|exp| exp > now + CLEAR_OF_NOW)
        && strings("groups")
        && strings("join")
        && ["nbf", "aud", "iss"].iter().all(|name| !claims.contains_key(*name));
    if valid {
        let identity = verdict.as_ref().unwrap_or_else(|e| panic!("valid claims refused: {e}"));
        assert_eq!(identity.user.as_deref(), claims["sub"].as_str());
        assert_eq!(identity.expires_at(), exp);
    }
    if exp.is_some_and(|exp| exp.saturating_add(CLEAR_OF_NOW) < now) {
        assert!(verdict.is_err(), "an expired token was accepted");
    }
}
