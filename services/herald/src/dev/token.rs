//! Dev tokens: `GET /dev/token?user=<name>` hands out a token the dev edge
//! accepts, so the demo page, and any client a developer writes, can sign in
//! as anyone without an identity provider. Only `herald dev` serves it: a
//! deployed edge verifies tokens and never mints them.

use std::sync::Arc;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use herald_edge::AuthConfig;
use herald_edge::auth::unix_now;
use http::StatusCode;
use jsonwebtoken::{EncodingKey, Header};
use serde::{Deserialize, Serialize};
use serde_json::json;

/// How long a dev token is valid, in seconds.
const LIFETIME_SECS: u64 = 3600;

/// Longest user name `/dev/token` takes, in characters.
const MAX_USER_CHARS: usize = 64;

/// Signs tokens as the dev edge verifies them: HS256 with its secret, and
/// with the audience and issuer it requires, if it requires any.
#[derive(Clone)]
pub struct Tokens {
    key: EncodingKey,
    audience: Option<String>,
    issuer: Option<String>,
}

/// What a dev token says: who, until when, and for whom.
#[derive(Serialize)]
struct Claims<'a> {
    sub: &'a str,
    exp: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    aud: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    iss: Option<&'a str>,
}

impl Tokens {
    /// Tokens for an edge configured with `auth`, whose key is the HS256
    /// `secret`.
    pub fn new(secret: &str, auth: &AuthConfig) -> Tokens {
        Tokens {
            key: EncodingKey::from_secret(secret.as_bytes()),
            audience: auth.audience.clone(),
            issuer: auth.issuer.clone(),
        }
    }

    /// A token for `user`, valid for an hour from now.
    pub fn mint(&self, user: &str) -> String {
        let claims = Claims {
            sub: user,
            exp: unix_now() + LIFETIME_SECS,
            aud: self.audience.as_deref(),
            iss: self.issuer.as_deref(),
        };
        // Signing with a secret cannot fail, and these claims always serialise.
        jsonwebtoken::encode(&Header::default(), &claims, &self.key).expect("HS256 signing does not fail")
    }
}

/// `GET /dev/token`.
pub fn routes(tokens: Tokens) -> Router {
    Router::new().route("/dev/token", get(issue)).with_state(Arc::new(tokens))
}

/// The query of `/dev/token`. A missing `user` is an empty one, refused
/// like any other bad name.
#[derive(Deserialize)]
struct TokenQuery {
    #[serde(default)]
    user: String,
}

/// `{"token", "user"}`, or a 400 `{"error"}` as the backend API answers.
async fn issue(State(tokens): State<Arc<Tokens>>, query: Result<Query<TokenQuery>, QueryRejection>) -> Response {
    let user = match query {
        Ok(Query(query)) => query.user,
        Err(rejection) => return bad_request(rejection.body_text()),
    };
    if !(1..=MAX_USER_CHARS).contains(&user.chars().count()) {
        return bad_request(format!("\"user\" must be 1 to {MAX_USER_CHARS} characters"));
    }
    Json(json!({"token": tokens.mint(&user), "user": user})).into_response()
}

fn bad_request(message: String) -> Response {
    (StatusCode::BAD_REQUEST, Json(json!({"error": message}))).into_response()
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use herald_edge::JwtKey;
    use herald_edge::auth::Verifier;
    use http::Request;
    use http_body_util::BodyExt;
    use serde_json::Value;
    use tower::ServiceExt;

    use super::*;

    const SECRET: &str = "dev-secret";

    fn auth(audience: Option<&str>, issuer: Option<&str>) -> AuthConfig {
        AuthConfig {
            key: Some(JwtKey::hs256(SECRET.as_bytes()).unwrap()),
            allow_anonymous: true,
            audience: audience.map(str::to_owned),
            issuer: issuer.map(str::to_owned),
        }
    }

    #[test]
    fn the_edge_accepts_what_is_minted_for_an_hour() {
        for auth in [auth(None, None), auth(Some("app"), Some("https://id.example.com"))] {
            let token = Tokens::new(SECRET, &auth).mint("ann ü.*");
            let identity = Verifier::new(&auth).verify(&token).unwrap();
            assert_eq!(identity.user.as_deref(), Some("ann ü.*"));
            let expires_in = identity.expires_at().unwrap() - unix_now();
            assert!((LIFETIME_SECS - 5..=LIFETIME_SECS).contains(&expires_in), "{expires_in}");
        }
        let other = Tokens::new("another secret", &auth(None, None)).mint("ann");
        assert!(Verifier::new(&auth(None, None)).verify(&other).is_err());
    }

    /// `GET uri` of the token route: the status and the JSON answer.
    async fn get(uri: &str) -> (StatusCode, Value) {
        let app = routes(Tokens::new(SECRET, &auth(None, None)));
        let response = app.oneshot(Request::get(uri).body(Body::empty()).unwrap()).await.unwrap();
        let status = response.status();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        (status, serde_json::from_slice(&body).unwrap())
    }

    #[tokio::test]
    async fn hands_out_a_token_for_the_named_user() {
        let (status, answer) = get("/dev/token?user=ann%20lee").await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(answer["user"], "ann lee");
        let identity = Verifier::new(&auth(None, None)).verify(answer["token"].as_str().unwrap()).unwrap();
        assert_eq!(identity.user.as_deref(), Some("ann lee"));
        // Characters, not bytes: 64 two-byte characters are a name.
        let longest = "%C3%A9".repeat(MAX_USER_CHARS);
        assert_eq!(get(&format!("/dev/token?user={longest}")).await.0, StatusCode::OK);
    }

    #[tokio::test]
    async fn refuses_a_missing_empty_or_too_long_name_in_json() {
        let too_long = format!("/dev/token?user={}", "a".repeat(MAX_USER_CHARS + 1));
        for uri in ["/dev/token", "/dev/token?user=", too_long.as_str()] {
            let (status, answer) = get(uri).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{uri}");
            assert_eq!(answer, json!({"error": "\"user\" must be 1 to 64 characters"}), "{uri}");
        }
        let (status, answer) = get("/dev/token?user=ann&user=bob").await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(answer["error"].as_str().unwrap().contains("duplicate field"), "{answer}");
    }
}
