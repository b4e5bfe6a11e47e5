//! Tokens for the load's clients: HS256 JWTs signed with the edge's secret,
//! one per connection, so every connection is a real authenticated user.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use jsonwebtoken::{EncodingKey, Header};
use serde::Serialize;

/// Lifetime of a token: longer than any run, so no client is asked to
/// re-authenticate while it is measured.
const LIFETIME: Duration = Duration::from_secs(3600);

/// Signs tokens with one HS256 secret.
pub struct Minter {
    key: EncodingKey,
    header: Header,
    /// `exp` of every token: fixed when the minter is made, as the run is
    /// far shorter than the lifetime.
    expires_at: u64,
}

#[derive(Serialize)]
struct Claims<'a> {
    sub: &'a str,
    groups: &'a [String],
    /// Patterns of groups the client may `$join` itself.
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    join: &'a [String],
    exp: u64,
}

impl Minter {
    pub fn new(secret: &str) -> Minter {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
        Minter {
            key: EncodingKey::from_secret(secret.as_bytes()),
            header: Header::default(),
            expires_at: (now + LIFETIME).as_secs(),
        }
    }

    /// A token for `user`, joining `groups` at connect.
    pub fn mint(&self, user: &str, groups: &[String]) -> Result<String> {
        self.mint_until(user, groups, &[], self.expires_at)
    }

    /// A token for `user`, joining `groups` at connect, that may `$join`
    /// the groups matching `join` and expires at `expires_at` (Unix
    /// seconds): the soak refreshes tokens with `$auth`.
    pub fn mint_until(&self, user: &str, groups: &[String], join: &[String], expires_at: u64) -> Result<String> {
        let claims = Claims { sub: user, groups, join, exp: expires_at };
        jsonwebtoken::encode(&self.header, &claims, &self.key).context("cannot sign a token")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{Algorithm, DecodingKey, Validation};

    #[test]
    fn tokens_carry_user_groups_and_expiry() {
        let token = Minter::new("s3cret").mint("user-1", &["bench".to_owned()]).unwrap();
        let data = jsonwebtoken::decode::<serde_json::Value>(
            &token,
            &DecodingKey::from_secret(b"s3cret"),
            &Validation::new(Algorithm::HS256),
        )
        .unwrap();
        assert_eq!(data.claims["sub"], "user-1");
        assert_eq!(data.claims["groups"], serde_json::json!(["bench"]));
        assert!(data.claims.get("join").is_none());
    }

    #[test]
    fn refreshed_tokens_carry_join_patterns_and_their_own_expiry() {
        let token = Minter::new("s3cret").mint_until("u", &[], &["room:*".to_owned()], 4_102_444_800).unwrap();
        let data = jsonwebtoken::decode::<serde_json::Value>(
            &token,
            &DecodingKey::from_secret(b"s3cret"),
            &Validation::new(Algorithm::HS256),
        )
        .unwrap();
        assert_eq!(data.claims["join"], serde_json::json!(["room:*"]));
        assert_eq!(data.claims["exp"], 4_102_444_800u64);
    }
}
