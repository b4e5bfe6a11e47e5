//! Subscribing, unsubscribing, headers, payload sizes, and messages or
//! server errors that must cost nothing but themselves.

use std::sync::Arc;

use bytes::Bytes;
use herald_nats_sub::{Delivery, Event};
use herald_tests::NatsServer;
use tokio::io::AsyncWriteExt;

use crate::support::{TempDir, WAIT, config, connect, inbox, next, publish, publisher};

#[tokio::test]
async fn each_subscription_gets_what_matches_it_until_it_is_dropped() {
    let server = NatsServer::start().await;
    let sub = connect(config(&[server.url()]));
    let (exact, mut exact_rx) = inbox();
    let (wild, mut wild_rx) = inbox();
    let a = sub.subscriber.subscribe("herald.user.a", exact).unwrap();
    let _b = sub.subscriber.subscribe("herald.group.*", wild).unwrap();
    assert_eq!(sub.subscriber.subscriptions(), 2);
    sub.sync().await;
    assert!(sub.subscriber.is_connected());

    let publisher = publisher(&server.url()).await;
    publish(&publisher, "herald.user.b", "not for anyone").await;
    publish(&publisher, "herald.user.a", "to a").await;
    publish(&publisher, "herald.group.g", "to g").await;
    let got = next(&mut exact_rx).await;
    assert_eq!((got.subject.as_str(), &got.payload[..]), ("herald.user.a", &b"to a"[..]));
    assert_eq!(got.headers, []);
    let got = next(&mut wild_rx).await;
    assert_eq!((got.subject.as_str(), &got.payload[..]), ("herald.group.g", &b"to g"[..]));

    drop(a);
    assert_eq!(sub.subscriber.subscriptions(), 1);
    sub.sync().await;
    publish(&publisher, "herald.user.a", "after unsubscribe").await;
    publish(&publisher, "herald.group.h", "marker").await;
    // One publisher's messages reach a subscriber in order: once the marker
    // is here, the message before it would have been too.
    assert_eq!(next(&mut wild_rx).await.payload, "marker");
    assert!(exact_rx.try_recv().is_err(), "a dropped subscription got a message");
}

#[tokio::test]
async fn headers_reach_the_handler_as_sent() {
    let server = NatsServer::start().await;
    let sub = connect(config(&[server.url()]));
    let (_s, mut rx) = sub.subscribed("s").await;
    let publisher = publisher(&server.url()).await;
    let mut headers = async_nats::HeaderMap::new();
    headers.insert("Nats-Sequence", "42");
    headers.insert("Herald-Exclude-Conn", "edge-1.7");
    headers.append("Multi", "one");
    headers.append("Multi", "two");
    publisher.publish_with_reply_and_headers("s", "reply.here", headers, Bytes::from_static(b"body")).await.unwrap();
    publisher.flush().await.unwrap();
    let got = next(&mut rx).await;
    assert_eq!(got.reply.as_deref(), Some("reply.here"));
    assert_eq!(got.payload, "body");
    let mut fields = got.headers.clone();
    fields.sort();
    assert_eq!(
        fields,
        [("Herald-Exclude-Conn", "edge-1.7"), ("Multi", "one"), ("Multi", "two"), ("Nats-Sequence", "42")]
            .map(|(n, v)| (n.to_owned(), v.to_owned()))
    );
}

#[tokio::test]
async fn payloads_up_to_max_payload_arrive_whole() {
    let dir = TempDir::new("max-payload");
    let max = 4 * 1024 * 1024;
    let conf = dir.write("server.conf", &format!("max_payload: {max}\n"));
    let server = NatsServer::start_with_args(&["-c".to_owned(), conf]).await;
    let sub = connect(config(&[server.url()]));
    let (_s, mut rx) = sub.subscribed("big").await;
    let publisher = publisher(&server.url()).await;
    // Every size class: empty, one read, many reads, exactly the limit;
    // with bytes that look like protocol inside.
    for size in [0, 1, 100_000, max] {
        let payload: Vec<u8> = b"\r\nMSG x 1 3\r\n".iter().copied().cycle().take(size).collect();
        publish(&publisher, "big", payload.clone()).await;
        let got = next(&mut rx).await;
        assert_eq!(got.payload.len(), size);
        assert!(got.payload == payload, "payload of {size} bytes changed on the way");
    }
    // Headers count against the limit too: exactly at it, with headers.
    let mut headers = async_nats::HeaderMap::new();
    headers.insert("Nats-Sequence", "1");
    let header_bytes = "NATS/1.0\r\nNats-Sequence: 1\r\n\r\n".len();
    let payload = Bytes::from(vec![7u8; max - header_bytes]);
    publisher.publish_with_headers("big", headers, payload.clone()).await.unwrap();
    publisher.flush().await.unwrap();
    let got = next(&mut rx).await;
    assert_eq!(got.payload, payload);
    assert_eq!(sub.count(|e| matches!(e, Event::Disconnected { .. })), 0, "{:?}", sub.events());
}

/// nats-server passes a publisher's header block on as it is. One that
/// cannot be read is dropped and reported; the connection and every other
/// message are untouched.
#[tokio::test]
async fn a_malformed_header_block_costs_only_its_own_message() {
    let server = NatsServer::start().await;
    let sub = connect(config(&[server.url()]));
    let (_s, mut rx) = sub.subscribed("h").await;

    // A publisher that writes its own header block: "BAD" is not NATS/1.0.
    let mut raw = tokio::net::TcpStream::connect(server.addr()).await.unwrap();
    raw.write_all(b"CONNECT {\"headers\":true,\"verbose\":false}\r\nHPUB h 7 9\r\nBAD\r\n\r\nhi\r\nPING\r\n")
        .await
        .unwrap();
    let publisher = publisher(&server.url()).await;
    tokio::time::timeout(WAIT, async {
        while sub.count(|e| matches!(e, Event::Dropped { .. })) == 0 {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the malformed message was not reported as dropped");
    publish(&publisher, "h", "fine").await;
    assert_eq!(next(&mut rx).await.payload, "fine");
    assert!(rx.try_recv().is_err());
    let dropped: Vec<Event> = sub.events().into_iter().filter(|e| matches!(e, Event::Dropped { .. })).collect();
    assert_eq!(dropped.len(), 1);
    assert!(format!("{dropped:?}").contains("NATS/1.0"), "{dropped:?}");
    assert_eq!(sub.count(|e| matches!(e, Event::Disconnected { .. })), 0, "{:?}", sub.events());
}

#[tokio::test]
async fn a_handler_that_panics_loses_its_message_only() {
    let server = NatsServer::start().await;
    let sub = connect(config(&[server.url()]));
    let panicking = Arc::new(|delivery: Delivery<'_>| {
        assert_ne!(delivery.payload, "boom", "this handler panics on purpose");
    });
    let (handler, mut rx) = inbox();
    let _p = sub.subscriber.subscribe("p", panicking).unwrap();
    let _s = sub.subscriber.subscribe("s", handler).unwrap();
    sub.sync().await;
    let publisher = publisher(&server.url()).await;
    publish(&publisher, "p", "boom").await;
    publish(&publisher, "s", "still here").await;
    assert_eq!(next(&mut rx).await.payload, "still here");
    assert_eq!(sub.count(|e| matches!(e, Event::Dropped { reason } if reason.contains("panicked"))), 1);
    assert_eq!(sub.count(|e| matches!(e, Event::Disconnected { .. })), 0);
}

/// A subscription the server refuses (`-ERR 'Permissions Violation ...'`)
/// is reported; the connection and the other subscriptions carry on.
#[tokio::test]
async fn a_server_error_about_one_subscription_leaves_the_others_alone() {
    let dir = TempDir::new("permissions");
    let conf = dir.write(
        "server.conf",
        r#"authorization {
  users = [
    { user: edge, password: edgepass, permissions: { subscribe: { deny: "secret.>" } } }
    { user: backend, password: backendpass }
  ]
}
"#,
    );
    let server = NatsServer::start_with_args(&["-c".to_owned(), conf]).await;
    let url = |user: &str, pass: &str| format!("nats://{user}:{pass}@127.0.0.1:{}", server.port());
    let sub = connect(config(&[url("edge", "edgepass")]));
    let (allowed, mut allowed_rx) = inbox();
    let (denied, mut denied_rx) = inbox();
    let _denied = sub.subscriber.subscribe("secret.plans", denied).unwrap();
    let _allowed = sub.subscriber.subscribe("public.news", allowed).unwrap();
    sub.sync().await;
    let errors: Vec<Event> = sub.events().into_iter().filter(|e| matches!(e, Event::ServerError(_))).collect();
    assert_eq!(errors.len(), 1, "{:?}", sub.events());
    assert!(
        format!("{errors:?}").contains("Permissions Violation for Subscription to \\\"secret.plans\\\""),
        "{errors:?}"
    );

    let publisher = crate::support::publisher_with(
        &server.url(),
        async_nats::ConnectOptions::with_user_and_password("backend".into(), "backendpass".into()),
    )
    .await;
    publish(&publisher, "secret.plans", "no").await;
    publish(&publisher, "public.news", "yes").await;
    assert_eq!(next(&mut allowed_rx).await.payload, "yes");
    assert!(denied_rx.try_recv().is_err());
    assert_eq!(sub.count(|e| matches!(e, Event::Disconnected { .. })), 0, "{:?}", sub.events());
}

#[tokio::test]
async fn a_subject_that_would_inject_a_command_is_refused() {
    let server = NatsServer::start().await;
    let sub = connect(config(&[server.url()]));
    let (handler, _rx) = inbox();
    let error = sub.subscriber.subscribe("a\r\nUNSUB 1", handler).unwrap_err();
    assert!(error.to_string().contains("whitespace"), "{error}");
    assert_eq!(sub.subscriber.subscriptions(), 0);
}
