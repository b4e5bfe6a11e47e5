//! The PHP SDK's NATS publisher, from real `php`, on a real nats-server:
//! what it publishes reaches clients through an edge (headers included,
//! its publish time among them), its control operations apply, it
//! authenticates with a user and password or a token, it speaks TLS, and a server that is down, gone or too small
//! for a message is a clear exception, never a silent loss of the next one.

use std::time::Duration;

use futures_util::StreamExt;
use herald_tests::{NatsServer, Php, PhpDriver, SILENCE, TestEdge, assert_eventually};
use serde_json::{Value, json};

const PUBLISHER: &str = "Herald\\Nats\\Publisher";
const NATS_EXCEPTION: &str = "Herald\\Exception\\NatsException";

fn message(error: &Value) -> &str {
    assert_eq!(error["class"], NATS_EXCEPTION, "{error}");
    error["message"].as_str().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publishes_and_control_operations_reach_clients_and_an_outage_is_an_exception() {
    let mut nats = NatsServer::start().await;
    let edge = TestEdge::start(&nats).await;
    let mut ann1 = edge.user("ann", &["news"]).await;
    let mut ann2 = edge.user("ann", &["news"]).await;
    let mut bob = edge.user("bob", &["news"]).await;
    let mut php = PhpDriver::start(Php::Minimal);
    php.new_object("nats", PUBLISHER, json!([nats.url()])).await;

    assert_eq!(php.ok_call("nats", "publishToUsers", json!([["ann"], "news", {"text": "é/"}])).await, 1);
    php.ok_call("nats", "flush", json!([])).await;
    for ann in [&mut ann1, &mut ann2] {
        assert_eq!(ann.recv_raw().await, r#"{"action":"news","details":{"text":"é/"}}"#);
    }
    // Stamped with its publish time: the edge measured its lag once.
    let page = edge.http("/metrics").await.1;
    assert!(page.contains("\nherald_edge_publish_lag_seconds_count 1\n"), "{page}");
    // Herald-Exclude-Conn, as a NATS header.
    php.ok_call("nats", "publishToGroups", json!([["news"], "group", 1, ann2.conn()])).await;
    assert_eq!(ann1.recv().await, json!({"action": "group", "details": 1}));
    assert_eq!(bob.recv().await, json!({"action": "group", "details": 1}));
    php.ok_call("nats", "publishToConns", json!([[bob.conn()], "conn"])).await;
    assert_eq!(bob.recv().await, json!({"action": "conn", "details": null}));
    php.ok_call("nats", "publishToAll", json!(["all", [], bob.conn()])).await;
    assert_eq!(ann1.recv().await, json!({"action": "all", "details": []}));
    assert_eq!(ann2.recv().await, json!({"action": "all", "details": []}));
    bob.expect_silence(SILENCE).await;
    ann2.expect_silence(SILENCE).await;

    // Control operations: join (applied asynchronously), leave, disconnect.
    assert_eq!(php.ok_call("nats", "joinGroup", json!(["room", ["bob"]])).await, 1);
    php.ok_call("nats", "flush", json!([])).await;
    assert_eventually!(
        {
            php.ok_call("nats", "publishToGroups", json!([["room"], "room"])).await;
            bob.try_recv(Duration::from_millis(100)).await.is_some()
        },
        Duration::from_secs(5)
    );
    php.ok_call("nats", "leaveGroup", json!(["room", [], [bob.conn()]])).await;
    php.ok_call("nats", "disconnect", json!({"conns": [bob.conn()], "code": 4003, "reason": "banned"})).await;
    // Frames still in flight to bob before the close are fine.
    loop {
        match bob.try_recv_or_close().await {
            Ok(frame) => assert_eq!(frame["action"], "room", "{frame}"),
            Err(code) => {
                assert_eq!(code, Some(4003));
                break;
            }
        }
    }

    // A message over the server's max_payload (1 MiB) is refused before it
    // is sent, and the connection stays good for the next.
    let refused = php.error_call("nats", "publishToUsers", json!([["ann"], "big", "x".repeat(1_100_000)])).await;
    assert!(message(&refused).contains("over the 1048576 bytes the NATS server at"), "{refused}");
    php.ok_call("nats", "publishToUsers", json!([["ann"], "small"])).await;
    assert_eq!(ann1.recv_action("small").await["details"], Value::Null);

    // NATS goes away: the next publish says so; once it is back, the same
    // publisher publishes again.
    nats.stop();
    let down = php.error_call("nats", "publishToUsers", json!([["ann"], "lost"])).await;
    assert!(
        message(&down).starts_with(&format!("cannot connect to NATS: nats://127.0.0.1:{}: ", nats.port())),
        "{down}"
    );
    nats.start_again().await;
    assert_eventually!(
        {
            let sent = php.call("nats", "publishToUsers", json!([["ann"], "back"])).await.get("ok").is_some();
            sent && ann1.try_recv(Duration::from_millis(100)).await.is_some()
        },
        Duration::from_secs(10)
    );

    // No NATS at all.
    php.new_object("nowhere", PUBLISHER, json!(["nats://127.0.0.1:1", {"timeout": 0.5}])).await;
    let nowhere = php.error_call("nowhere", "flush", json!([])).await;
    assert!(message(&nowhere).starts_with("cannot connect to NATS: nats://127.0.0.1:1: "), "{nowhere}");
}

/// What a subscriber on `server`, authenticated by `options`, receives on
/// `herald.user.ann` once `publisher` published to ann: the payload and
/// its `Herald-Exclude-Conn` header.
async fn received_by_ann(
    server: &NatsServer,
    options: async_nats::ConnectOptions,
    php: &mut PhpDriver,
    publisher: &str,
) -> (String, Option<String>) {
    let subscriber = options.connect(server.url()).await.expect("the subscriber connects");
    let mut messages = subscriber.subscribe("herald.user.ann").await.unwrap();
    subscriber.flush().await.unwrap();
    php.ok_call(publisher, "publishToUsers", json!([["ann"], "hello", "you", "0123456789abcdef.7"])).await;
    let message = tokio::time::timeout(Duration::from_secs(5), messages.next()).await.expect("a message").unwrap();
    let header = message.headers.as_ref().and_then(|headers| headers.get("Herald-Exclude-Conn"));
    (String::from_utf8(message.payload.to_vec()).unwrap(), header.map(|value| value.as_str().to_owned()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authenticates_with_a_user_and_password_or_a_token_and_speaks_tls() {
    let expected = (r#"{"action":"hello","details":"you"}"#.to_owned(), Some("0123456789abcdef.7".to_owned()));
    let mut php = PhpDriver::start(Php::Full);

    let users = NatsServer::start_with_args(&["--user", "herald", "--pass", "s3cret"]).await;
    let port = users.port();
    let user = || async_nats::ConnectOptions::with_user_and_password("herald".into(), "s3cret".into());
    php.new_object("by-options", PUBLISHER, json!([users.url(), {"user": "herald", "pass": "s3cret"}])).await;
    assert_eq!(received_by_ann(&users, user(), &mut php, "by-options").await, expected);
    php.new_object("in-url", PUBLISHER, json!([format!("nats://herald:s3cret@127.0.0.1:{port}")])).await;
    assert_eq!(received_by_ann(&users, user(), &mut php, "in-url").await, expected);
    php.new_object("wrong", PUBLISHER, json!([format!("nats://herald:guess@127.0.0.1:{port}")])).await;
    let refused = php.error_call("wrong", "flush", json!([])).await;
    assert!(message(&refused).contains("Authorization Violation"), "{refused}");

    let tokens = NatsServer::start_with_args(&["--auth", "t0ken"]).await;
    let token = || async_nats::ConnectOptions::with_token("t0ken".into());
    php.new_object("by-option", PUBLISHER, json!([tokens.url(), {"token": "t0ken"}])).await;
    assert_eq!(received_by_ann(&tokens, token(), &mut php, "by-option").await, expected);
    php.new_object("token-url", PUBLISHER, json!([format!("nats://t0ken@127.0.0.1:{}", tokens.port())])).await;
    assert_eq!(received_by_ann(&tokens, token(), &mut php, "token-url").await, expected);
    php.new_object("no-token", PUBLISHER, json!([tokens.url()])).await;
    assert!(message(&php.error_call("no-token", "flush", json!([])).await).contains("Authorization Violation"));

    // TLS: the server requires it; the publisher trusts the test CA.
    let fixture = |name: &str| format!("{}/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    let (cert, key) = (fixture("test-only-tls-cert.pem"), fixture("test-only-tls-key.pem"));
    let tls = NatsServer::start_with_args(&["--tls", "--tlscert", &cert, "--tlskey", &key]).await;
    php.new_object("tls", PUBLISHER, json!([tls.url(), {"tls": {"cafile": cert}}])).await;
    php.ok_call("tls", "publishToUsers", json!([["ann"], "over", "tls", "0123456789abcdef.7"])).await;
    // The server answers the round trip only once it has read the publish.
    assert_eq!(php.ok_call("tls", "flush", json!([])).await, Value::Null);
    php.new_object("tls-url", PUBLISHER, json!([format!("tls://127.0.0.1:{}", tls.port()), {"tls": {"cafile": cert}}]))
        .await;
    php.ok_call("tls-url", "flush", json!([])).await;
    php.new_object("untrusted", PUBLISHER, json!([tls.url()])).await;
    let untrusted = php.error_call("untrusted", "flush", json!([])).await;
    assert!(message(&untrusted).contains("TLS handshake failed"), "{untrusted}");
    // A tls:// URL to a server without TLS is refused, not sent in clear.
    php.new_object("clear", PUBLISHER, json!([format!("tls://127.0.0.1:{port}")])).await;
    assert!(message(&php.error_call("clear", "flush", json!([])).await).contains("does not offer TLS"));
}
