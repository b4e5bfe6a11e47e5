//! Messages JetStream re-publishes (a stream's `republish`, what recovery
//! subscribes to for live deliveries, ADR 0012) reach the handler with the
//! stream positions the edge needs: `Nats-Sequence`, and
//! `Nats-Last-Sequence`, the previous sequence on the same subject.

use std::time::Duration;

use herald_tests::NatsServer;

use crate::support::{config, connect, next, publish, publisher};

#[tokio::test]
async fn republished_messages_carry_their_positions() {
    let server = NatsServer::start_jetstream().await;
    let publisher = publisher(&server.url()).await;
    let stream = serde_json::json!({
        "name": "HISTORY", "subjects": ["herald.group.*"], "storage": "memory",
        "republish": {"src": "herald.>", "dest": "herald.history.>"},
    });
    let created =
        publisher.request("$JS.API.STREAM.CREATE.HISTORY", stream.to_string().into()).await.expect("JetStream answers");
    let created: serde_json::Value = serde_json::from_slice(&created.payload).unwrap();
    assert!(created.get("error").is_none(), "{created}");

    let sub = connect(config(&[server.url()]));
    let (_g, mut rx) = sub.subscribed("herald.history.group.g").await;
    publish(&publisher, "herald.group.g", "one").await;
    publish(&publisher, "herald.group.h", "elsewhere").await;
    publish(&publisher, "herald.group.g", "two").await;

    let positions = |headers: &[(String, String)]| {
        let header = |name: &str| headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone());
        (header("Nats-Sequence"), header("Nats-Last-Sequence"))
    };
    let one = next(&mut rx).await;
    assert_eq!((one.subject.as_str(), &one.payload[..]), ("herald.history.group.g", &b"one"[..]));
    assert_eq!(positions(&one.headers), (Some("1".to_owned()), Some("0".to_owned())), "{:?}", one.headers);
    let two = next(&mut rx).await;
    assert_eq!(&two.payload[..], b"two");
    assert_eq!(positions(&two.headers), (Some("3".to_owned()), Some("1".to_owned())), "{:?}", two.headers);
    let nothing_else = tokio::time::timeout(Duration::from_millis(200), rx.recv()).await;
    assert!(nothing_else.is_err(), "only g's messages: {nothing_else:?}");
}
