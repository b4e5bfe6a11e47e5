//! Handler responses and `$connect` answers: what handlers (any language,
//! any bug) answer, as the router checks it and the edge applies it.
//!
//! - Reading and checking never panic; a bad answer is an error value
//!   (which the router turns into a 502 for the client).
//! - What the router lets through, the edge reads: no answer passes the
//!   router's check only to fail at the edge.
//! - Encode → decode: a response reads back from its own encoding, and
//!   encodes to the same bytes again (handler SDKs write responses with
//!   the same types).
//! - Applying it never panics: the reply or error reply the client gets
//!   is JSON, publish targets become subjects or a refusal, and a
//!   `$connect` answer becomes an identity.

use herald_edge::Identity;
use herald_proto::client;
use herald_proto::handler::{Effect, HandlerResponse};
use herald_proto::json::from_object;
use herald_proto::subject::Subjects;
use serde_json::value::RawValue;

pub fn run(data: &[u8]) {
    let checked = herald_router::check_answer(data);
    let read = from_object::<HandlerResponse>(data);
    if let Err(e) = &read {
        assert!(checked.is_err(), "the router let through an answer the edge refuses: {e}");
    }
    let Ok(response) = read else { return };

    let encoded = serde_json::to_vec(&response).expect("a response encodes");
    let back: HandlerResponse = from_object(&encoded).expect("an encoded response reads back");
    assert_eq!(serde_json::to_vec(&back).unwrap(), encoded, "{}", String::from_utf8_lossy(&encoded));

    // The edge's reply to the client.
    let reply = match &response.error {
        Some(error) => client::encode_error(Some("fuzz/action"), error.code, &error.message, None),
        None => client::encode("fuzz/action", &response.details, None),
    };
    is_json(&reply);

    // Its effects.
    let subjects = Subjects::default();
    for effect in &response.effects {
        if let Effect::Publish(publish) = effect {
            if let Ok(targets) = subjects.for_target(&publish.to) {
                assert!(targets.iter().all(|s| !s.contains(['*', '>', ' '])), "{targets:?}");
            }
            let frame = client::encode(&publish.action, &publish.details, None);
            is_json(&frame);
        }
    }

    // As a `$connect` answer.
    let identity = Identity::from_connect(response);
    assert!(!identity.claims().contains_key("join"), "join patterns are not passed on as claims");
    assert_eq!(identity.expires_at(), None);
    let _ = identity.may_join("room:1");
}

/// `text` is JSON. Read as raw JSON, not as a `Value`: a number beyond
/// f64's range (`44e443`) is valid JSON that a `Value` cannot hold, and
/// Herald passes a handler's details on as written (found by fuzzing: the
/// target, not Herald, was wrong).
fn is_json(text: &str) {
    if let Err(e) = serde_json::from_str::<&RawValue>(text) {
        panic!("not JSON ({e}): {text}");
    }
}
