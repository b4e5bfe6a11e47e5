//! The examples on the in-process bus, as `herald dev` runs them.

use herald_bus::Bus;
use herald_examples::{Example, chat, echo, expiry};
use herald_proto::subject::Subjects;
use serde_json::json;

use crate::support::{Running, action, next, request, subscribe};

#[tokio::test]
async fn every_example_serves_on_the_in_process_bus() {
    let bus = Bus::local();
    let running = Example::ALL.map(|example| Running::start(example, bus.clone(), Subjects::default()));
    let mut frames = subscribe(&bus, "herald.user.ann").await;

    let answer = request(&bus, echo::SUBJECT, action("echo", json!("hi"), Some("ann"), &[])).await;
    assert_eq!(answer, r#"{"details":"hi"}"#);

    let answer = request(&bus, chat::SUBJECT, action("chat/send", json!({"room": "x", "text": "hi"}), None, &[])).await;
    assert_eq!(answer, r#"{"error":{"code":403,"message":"sign in to chat"}}"#);

    assert_eq!(request(&bus, expiry::SUBJECT, r#"{"user": "ann"}"#).await, r#"{"notified":true}"#);
    assert_eq!(
        next(&mut frames).await,
        (
            "herald.user.ann".to_owned(),
            r#"{"action":"session/expired","details":{"reason":"session expired"}}"#.to_owned()
        )
    );

    for example in running {
        example.stop().await;
    }
}
