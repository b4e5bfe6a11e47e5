//! Who a connection is: JWT verification and the identity it yields.
//!
//! The algorithm is pinned by the key the edge is configured with (HS256 for
//! a shared secret, RS256 or ES256 for a public key), so `alg: none` and
//! algorithm confusion (an RS256 public key used as an HS256 secret) are
//! refused by construction.

use std::fmt;
use std::num::NonZeroU64;
use std::sync::{Arc, LazyLock};
use std::time::{SystemTime, UNIX_EPOCH};

use herald_proto::handler::{Claims, HandlerResponse};
use herald_proto::pattern::Pattern;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use thiserror::Error;

/// Who may connect.
#[derive(Debug, Clone)]
pub struct AuthConfig {
    /// Verifies tokens; `None` when the edge takes anonymous clients only.
    pub key: Option<JwtKey>,
    /// Whether a client without a token is let in, as nobody.
    pub allow_anonymous: bool,
    /// Required `aud` claim, when set.
    pub audience: Option<String>,
    /// Required `iss` claim, when set.
    pub issuer: Option<String>,
}

/// A key that verifies tokens, with the one algorithm it accepts.
#[derive(Clone)]
pub struct JwtKey {
    algorithm: Algorithm,
    key: DecodingKey,
}

impl fmt::Debug for JwtKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "JwtKey({:?})", self.algorithm)
    }
}

/// A key that cannot be used.
#[derive(Debug, Error)]
pub enum KeyError {
    #[error("the HS256 secret is empty")]
    EmptySecret,
    #[error("not an RSA or P-256 EC public key in PEM form: {0}")]
    BadPem(String),
}

impl JwtKey {
    /// A shared HS256 secret.
    pub fn hs256(secret: &[u8]) -> Result<JwtKey, KeyError> {
        if secret.is_empty() {
            return Err(KeyError::EmptySecret);
        }
        Ok(JwtKey { algorithm: Algorithm::HS256, key: DecodingKey::from_secret(secret) })
    }

    /// A PEM public key: RSA keys verify RS256, EC keys ES256.
    pub fn public_key_pem(pem: &[u8]) -> Result<JwtKey, KeyError> {
        if let Ok(key) = DecodingKey::from_ec_pem(pem) {
            return Ok(JwtKey { algorithm: Algorithm::ES256, key });
        }
        DecodingKey::from_rsa_pem(pem)
            .map(|key| JwtKey { algorithm: Algorithm::RS256, key })
            .map_err(|e| KeyError::BadPem(e.to_string()))
    }
}

/// Who a connection is and what its token lets it do.
///
/// Every session keeps one for its whole life, in its task (ADR 0027): laid
/// out for that, 64 bytes where plain `String`s, `Vec`s, a map and an
/// `Option<u64>` took 112, and nothing is allocated for what a token does
/// not carry.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Identity {
    /// The `sub` claim; `None` for an anonymous connection. Shared: the
    /// edge's registry keys the user's subscription with the same text.
    pub user: Option<Arc<str>>,
    /// Groups joined at connect (the `groups` claim).
    pub groups: Box<[String]>,
    /// Patterns of groups the client may `$join` itself (the `join` claim),
    /// besides the ones in `groups`.
    pub joinable: Box<[Pattern]>,
    /// Every other claim, passed to handlers; boxed, and only when there
    /// are some: most tokens carry none, and a map is 24 bytes.
    claims: Option<Box<Claims>>,
    /// Token expiry, seconds since the Unix epoch; `None` for anonymous.
    expires_at: Option<Expiry>,
}

/// A token's expiry in 8 bytes, where an `Option<u64>` takes 16: seconds
/// since the Unix epoch, never 0 (an `exp` of 0 is kept as 1, as long past).
#[derive(Debug, Clone, Copy, PartialEq)]
struct Expiry(NonZeroU64);

impl Identity {
    /// Whether the client may join or leave `group` on its own.
    pub fn may_join(&self, group: &str) -> bool {
        self.groups.iter().any(|g| g == group) || self.joinable.iter().any(|p| p.matches(group))
    }

    /// The claims handlers are given (empty for none).
    pub fn claims(&self) -> &Claims {
        static NONE: LazyLock<Claims> = LazyLock::new(Claims::new);
        self.claims.as_deref().unwrap_or(&NONE)
    }

    /// Token expiry, seconds since the Unix epoch; `None` for an identity
    /// that never expires.
    pub fn expires_at(&self) -> Option<u64> {
        self.expires_at.map(|exp| exp.0.get())
    }
}

/// Why a token was refused; the message is safe to show the client.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum AuthError {
    #[error("a token is required")]
    Missing,
    #[error("this server accepts no tokens")]
    NoKey,
    #[error("invalid token: {0}")]
    Invalid(String),
}

/// Claims Herald reads itself; everything else goes to handlers.
const HERALD_CLAIMS: [&str; 6] = ["sub", "groups", "join", "exp", "aud", "iss"];

/// Verifies tokens against one configuration.
#[derive(Debug, Clone)]
pub struct Verifier {
    key: Option<JwtKey>,
    validation: Validation,
    allow_anonymous: bool,
}

impl Verifier {
    pub fn new(config: &AuthConfig) -> Verifier {
        let algorithm = config.key.as_ref().map_or(Algorithm::HS256, |k| k.algorithm);
        let mut validation = Validation::new(algorithm);
        validation.leeway = 0;
        validation.validate_nbf = true;
        let mut required = vec!["exp", "sub"];
        validation.validate_aud = config.audience.is_some();
        if let Some(audience) = &config.audience {
            validation.set_audience(&[audience]);
            required.push("aud");
        }
        if let Some(issuer) = &config.issuer {
            validation.set_issuer(&[issuer]);
            required.push("iss");
        }
        validation.set_required_spec_claims(&required);
        Verifier { key: config.key.clone(), validation, allow_anonymous: config.allow_anonymous }
    }

    /// The identity of a connection that presents `token`, or none.
    pub fn connect(&self, token: Option<&str>) -> Result<Identity, AuthError> {
        match token {
            Some(token) => self.verify(token),
            None if self.allow_anonymous => Ok(Identity::default()),
            None => Err(AuthError::Missing),
        }
    }

    /// Checks a token and reads the identity it carries.
    pub fn verify(&self, token: &str) -> Result<Identity, AuthError> {
        let key = self.key.as_ref().ok_or(AuthError::NoKey)?;
        let data = jsonwebtoken::decode::<Claims>(token, &key.key, &self.validation)
            .map_err(|e| AuthError::Invalid(e.to_string()))?;
        identity_from_claims(data.claims)
    }
}

impl Identity {
    /// The identity a `$connect` handler gave: its user (none: anonymous),
    /// groups and claims, where a `join` claim lists joinable groups as in a
    /// token. It never expires.
    pub fn from_connect(response: HandlerResponse) -> Identity {
        let mut claims = response.claims.unwrap_or_default();
        let joinable = match claims.remove("join") {
            Some(serde_json::Value::Array(patterns)) => {
                patterns.iter().filter_map(serde_json::Value::as_str).map(Pattern::new).collect()
            }
            _ => Box::default(),
        };
        Identity {
            user: response.user.flatten().map(Arc::from),
            groups: response.groups.unwrap_or_default().into(),
            joinable,
            claims: boxed(claims),
            expires_at: None,
        }
    }
}

fn identity_from_claims(mut claims: Claims) -> Result<Identity, AuthError> {
    let invalid = |what: &str| AuthError::Invalid(what.to_owned());
    // Herald's own claims are taken out of the map, not copied: the session
    // keeps only the others.
    let Some(serde_json::Value::String(user)) = claims.remove("sub") else {
        return Err(invalid("\"sub\" must be a string"));
    };
    let mut strings = |name: &str| -> Result<Vec<String>, AuthError> {
        match claims.remove(name) {
            None => Ok(Vec::new()),
            Some(value) => serde_json::from_value(value)
                .map_err(|_| AuthError::Invalid(format!("\"{name}\" must be an array of strings"))),
        }
    };
    let groups = strings("groups")?.into();
    let joinable = strings("join")?.iter().map(|p| Pattern::new(p)).collect();
    let expires_at = claims.get("exp").and_then(numeric_date).ok_or_else(|| invalid("\"exp\" must be a number"))?;
    for name in HERALD_CLAIMS {
        claims.remove(name);
    }
    Ok(Identity {
        user: Some(user.into()),
        groups,
        joinable,
        claims: boxed(claims),
        expires_at: Some(Expiry(NonZeroU64::new(expires_at).unwrap_or(NonZeroU64::MIN))),
    })
}

/// A NumericDate claim in whole seconds. RFC 7519 lets it be fractional, and
/// jsonwebtoken accepts that; the session expires at the second it starts.
fn numeric_date(value: &serde_json::Value) -> Option<u64> {
    value.as_u64().or_else(|| value.as_f64().filter(|s| s.is_finite() && *s >= 0.0).map(|s| s.floor() as u64))
}

/// The claims a session keeps for as long as it lives: none when there are
/// none, where a map emptied by removals still holds its first node (632
/// bytes).
fn boxed(claims: Claims) -> Option<Box<Claims>> {
    (!claims.is_empty()).then(|| Box::new(claims))
}

/// Seconds since the Unix epoch, the unit of `exp`.
pub fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{EncodingKey, Header, encode};
    use serde_json::json;

    const SECRET: &[u8] = b"a test secret that is long enough";

    fn config() -> AuthConfig {
        AuthConfig { key: Some(JwtKey::hs256(SECRET).unwrap()), allow_anonymous: false, audience: None, issuer: None }
    }

    fn token(claims: serde_json::Value) -> String {
        encode(&Header::default(), &claims, &EncodingKey::from_secret(SECRET)).unwrap()
    }

    fn in_an_hour() -> u64 {
        unix_now() + 3600
    }

    #[test]
    fn reads_identity_and_keeps_other_claims() {
        let id = Verifier::new(&config())
            .verify(&token(json!({"sub":"alice","groups":["a","b"],"join":["room:*"],"exp":in_an_hour(),"plan":"pro"})))
            .unwrap();
        assert_eq!(id.user.as_deref(), Some("alice"));
        assert_eq!(*id.groups, ["a", "b"]);
        assert!(id.may_join("room:7") && id.may_join("a") && !id.may_join("admins"));
        assert_eq!(id.claims(), json!({"plan":"pro"}).as_object().unwrap());
        let bare = Verifier::new(&config()).verify(&token(json!({"sub":"bob","exp":in_an_hour()}))).unwrap();
        assert!(bare.claims.is_none() && bare.claims().is_empty());
    }

    #[test]
    fn refuses_expired_unsigned_and_malformed_tokens() {
        let verifier = Verifier::new(&config());
        let expired = token(json!({"sub":"a","exp":unix_now() - 1}));
        assert!(matches!(verifier.verify(&expired), Err(AuthError::Invalid(_))));
        let no_exp = token(json!({"sub":"a"}));
        assert!(verifier.verify(&no_exp).is_err());
        let bad_groups = token(json!({"sub":"a","exp":in_an_hour(),"groups":"a"}));
        assert!(verifier.verify(&bad_groups).is_err());
        // alg "none": header {"alg":"none","typ":"JWT"}, no signature.
        let none = "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJzdWIiOiJhIiwiZXhwIjo0MTAyNDQ0ODAwfQ.";
        assert!(verifier.verify(none).is_err());
        let wrong_key = encode(
            &Header::default(),
            &json!({"sub":"a","exp":in_an_hour()}),
            &EncodingKey::from_secret(b"another secret"),
        )
        .unwrap();
        assert!(verifier.verify(&wrong_key).is_err());
    }

    #[test]
    fn a_fractional_expiry_still_expires() {
        // Found by the `jwt` fuzz target: jsonwebtoken accepts a fractional
        // `exp`, as RFC 7519 allows, but the identity read only integers, so
        // such a session had no expiry and was never asked to `$auth` again.
        let exp = in_an_hour();
        let id = Verifier::new(&config()).verify(&token(json!({"sub":"a","exp":exp as f64 + 0.75}))).unwrap();
        assert_eq!(id.expires_at(), Some(exp));
        assert_eq!(numeric_date(&json!(12.0)), Some(12));
        assert_eq!(numeric_date(&json!(-1.5)), None);
        assert_eq!(numeric_date(&json!("12")), None);
    }

    #[test]
    fn audience_and_issuer_are_required_when_configured() {
        let mut cfg = config();
        cfg.audience = Some("herald".into());
        cfg.issuer = Some("https://id.example".into());
        let verifier = Verifier::new(&cfg);
        let exp = in_an_hour();
        assert!(verifier.verify(&token(json!({"sub":"a","exp":exp}))).is_err());
        assert!(
            verifier.verify(&token(json!({"sub":"a","exp":exp,"aud":"other","iss":"https://id.example"}))).is_err()
        );
        assert!(
            verifier.verify(&token(json!({"sub":"a","exp":exp,"aud":"herald","iss":"https://id.example"}))).is_ok()
        );
    }

    #[test]
    fn anonymous_only_when_enabled() {
        assert_eq!(Verifier::new(&config()).connect(None), Err(AuthError::Missing));
        let mut cfg = config();
        cfg.allow_anonymous = true;
        assert_eq!(Verifier::new(&cfg).connect(None).unwrap().user, None);
    }

    /// Every session keeps its identity in its task (ADR 0027).
    #[test]
    fn an_identity_is_64_bytes() {
        assert_eq!(size_of::<Identity>(), 64);
    }

    #[test]
    fn empty_secret_is_refused() {
        assert!(matches!(JwtKey::hs256(b""), Err(KeyError::EmptySecret)));
        assert!(matches!(JwtKey::public_key_pem(b"not a key"), Err(KeyError::BadPem(_))));
    }
}
