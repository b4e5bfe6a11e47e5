//! The vectors the PHP SDK checks too (`proto/vectors/sdk-vectors.json`,
//! read by `sdk/php/tests/unit/VectorsTest.php`): Herald's webhook
//! signatures, subject tokens and HS256 tokens give, in Rust, exactly what
//! the file says, so the same inputs give the same outputs in both
//! languages.

use herald_edge::auth::Verifier;
use herald_edge::{AuthConfig, JwtKey};
use herald_proto::subject::encode_token;
use herald_proto::webhook;
use serde_json::{Value, json};

fn vectors() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../proto/vectors/sdk-vectors.json");
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).expect("the vectors are JSON")
}

fn text<'a>(vector: &'a Value, name: &str) -> &'a str {
    vector[name].as_str().unwrap_or_else(|| panic!("{name} of {vector}"))
}

fn list(name: &str) -> Vec<Value> {
    let list = vectors()[name].as_array().unwrap_or_else(|| panic!("no {name} in the vectors")).clone();
    assert!(!list.is_empty(), "{name} is empty");
    list
}

#[test]
fn webhook_signatures() {
    for vector in list("webhook_signatures") {
        let signature = webhook::sign(
            text(&vector, "secret").as_bytes(),
            text(&vector, "timestamp"),
            text(&vector, "body").as_bytes(),
        );
        assert_eq!(signature, text(&vector, "signature"), "{vector}");
    }
}

#[test]
fn webhook_verifications() {
    for vector in list("webhook_verifications") {
        let valid = webhook::verify(
            text(&vector, "secret").as_bytes(),
            text(&vector, "timestamp"),
            text(&vector, "body").as_bytes(),
            text(&vector, "signature"),
            vector["now"].as_u64().unwrap(),
            vector["tolerance"].as_u64().unwrap(),
        );
        assert_eq!(valid, vector["valid"].as_bool().unwrap(), "{}: {vector}", text(&vector, "why"));
    }
}

#[test]
fn subject_tokens() {
    for vector in list("subject_tokens") {
        assert_eq!(encode_token(text(&vector, "name")), text(&vector, "token"), "{vector}");
    }
}

#[test]
fn hs256_tokens_are_taken_by_the_edge() {
    for vector in list("hs256_tokens") {
        let key = JwtKey::hs256(text(&vector, "secret").as_bytes()).unwrap();
        let config = AuthConfig { key: Some(key), allow_anonymous: false, audience: None, issuer: None };
        let identity = Verifier::new(&config).verify(text(&vector, "jwt")).unwrap_or_else(|e| panic!("{vector}: {e}"));
        assert_eq!(identity.user.as_deref(), Some(text(&vector, "user")));
        assert_eq!(json!(identity.groups), vector["groups"]);
        let exp = vector["now"].as_u64().unwrap() + vector["ttl"].as_u64().unwrap();
        assert_eq!(identity.expires_at(), Some(exp));
        let mut claims = vector["claims"].as_object().unwrap().clone();
        // `join` becomes what the identity may join; the rest are claims.
        if let Some(patterns) = claims.remove("join") {
            for pattern in patterns.as_array().unwrap() {
                let group = pattern.as_str().unwrap().replace('*', "any");
                assert!(identity.may_join(&group), "{vector}: may not join {group}");
            }
        }
        assert_eq!(Value::Object(identity.claims().clone()), Value::Object(claims), "{vector}");
    }
}
