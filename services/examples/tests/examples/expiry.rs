use bytes::Bytes;
use herald_examples::Example;
use herald_examples::expiry::SUBJECT;
use herald_proto::subject::Subjects;

use crate::support::{Nats, Running, assert_nothing_came, next, request, subscribe};

/// `ann.smith@example.com` as a subject token: it has a `.`, so it is
/// encoded.
const ANN: &str = "~YW5uLnNtaXRoQGV4YW1wbGUuY29t";

#[tokio::test]
async fn tells_every_tab_then_disconnects_with_4001() {
    let nats = Nats::start().await;
    let expiry = Running::start(Example::Expiry, nats.bus().await, Subjects::new("acme.rt").unwrap());
    let bus = nats.bus().await;
    let mut frames = subscribe(&bus, &format!("acme.rt.user.{ANN}")).await;
    let mut controls = subscribe(&bus, &format!("acme.rt.ctl.user.{ANN}")).await;

    let notice = r#"{"user": "ann.smith@example.com", "reason": "signed out elsewhere", "disconnect": true}"#;
    assert_eq!(request(&bus, SUBJECT, notice).await, r#"{"notified":true}"#);

    assert_eq!(
        next(&mut frames).await,
        (
            format!("acme.rt.user.{ANN}"),
            r#"{"action":"session/expired","details":{"reason":"signed out elsewhere"}}"#.to_owned()
        )
    );
    assert_eq!(
        next(&mut controls).await,
        (
            format!("acme.rt.ctl.user.{ANN}"),
            r#"{"op":"disconnect","code":4001,"reason":"signed out elsewhere"}"#.to_owned()
        )
    );

    expiry.stop().await;
}

#[tokio::test]
async fn without_disconnect_only_tells() {
    let nats = Nats::start().await;
    let expiry = Running::start(Example::Expiry, nats.bus().await, Subjects::default());
    let bus = nats.bus().await;
    let mut frames = subscribe(&bus, "herald.user.bob").await;
    let mut controls = subscribe(&bus, "herald.ctl.user.>").await;

    assert_eq!(request(&bus, SUBJECT, r#"{"user": "bob"}"#).await, r#"{"notified":true}"#);

    assert_eq!(
        next(&mut frames).await,
        (
            "herald.user.bob".to_owned(),
            r#"{"action":"session/expired","details":{"reason":"session expired"}}"#.to_owned()
        )
    );
    assert_nothing_came(&bus, &mut controls, "herald.ctl.user.marker").await;

    expiry.stop().await;
}

#[tokio::test]
async fn takes_fire_and_forget_notices() {
    let nats = Nats::start().await;
    let expiry = Running::start(Example::Expiry, nats.bus().await, Subjects::default());
    let bus = nats.bus().await;
    let mut frames = subscribe(&bus, "herald.user.bob").await;
    let mut controls = subscribe(&bus, "herald.ctl.user.bob").await;
    // A request first, to know the notifier listens before publishing.
    assert_eq!(request(&bus, SUBJECT, r#"{"user": "carol"}"#).await, r#"{"notified":true}"#);

    let notice = Bytes::from_static(br#"{"user": "bob", "disconnect": true}"#);
    bus.publish(SUBJECT.to_owned(), notice).await.unwrap();

    assert_eq!(
        next(&mut frames).await,
        (
            "herald.user.bob".to_owned(),
            r#"{"action":"session/expired","details":{"reason":"session expired"}}"#.to_owned()
        )
    );
    assert_eq!(
        next(&mut controls).await,
        ("herald.ctl.user.bob".to_owned(), r#"{"op":"disconnect","code":4001,"reason":"session expired"}"#.to_owned())
    );

    expiry.stop().await;
}

#[tokio::test]
async fn bad_notices_are_answered_with_an_error_and_push_nothing() {
    let nats = Nats::start().await;
    let expiry = Running::start(Example::Expiry, nats.bus().await, Subjects::default());
    let bus = nats.bus().await;
    let mut pushed = subscribe(&bus, "herald.>").await;

    let cases = [
        (r#"{"user": ""}"#, r#"{"error":"\"user\" must not be empty"}"#),
        (r#"{"reason": "x"}"#, r#"{"error":"not a session-expiry notice: missing field `user` at line 1 column 15"}"#),
        (
            r#"{"user": "bob", "disconect": true}"#,
            r#"{"error":"not a session-expiry notice: unknown field `disconect`, expected one of `user`, `reason`, `disconnect` at line 1 column 27"}"#,
        ),
        (
            r#"{"user": null}"#,
            r#"{"error":"not a session-expiry notice: invalid type: null, expected a string at line 1 column 13"}"#,
        ),
        (r#"["bob"]"#, r#"{"error":"not a session-expiry notice: expected a JSON object"}"#),
        ("bob", r#"{"error":"not a session-expiry notice: expected a JSON object"}"#),
    ];
    for (notice, error) in cases {
        assert_eq!(request(&bus, SUBJECT, notice).await, error, "{notice}");
    }
    assert_nothing_came(&bus, &mut pushed, "herald.marker").await;

    expiry.stop().await;
}
