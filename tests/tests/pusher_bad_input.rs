//! Bad input on a Pusher connection (`/app/<key>`): each gets Pusher's
//! answer, the connection stays where Pusher keeps it, and the other
//! sessions (a Herald `/ws` client in the same group) are untouched. The
//! happy paths run with the real pusher-js and Laravel Echo in
//! `tests/pusher/` (node --test).

use herald_proto::pusher::app::{App, Apps};
use herald_tests::{BusSetup, Client, SILENCE, TestEdge, both_buses};
use serde_json::{Value, json};

const KEY: &str = "k";

async fn edge(setup: &BusSetup) -> TestEdge {
    let app = App { max_event_data_bytes: 100, ..App::new("1", KEY, "s3cret") };
    TestEdge::builder(setup)
        .max_message_bytes(4096)
        .config(|config| config.pusher_apps = Apps::new(vec![app]).unwrap())
        .spawn()
        .await
}

fn url(edge: &TestEdge, key: &str, query: &str) -> String {
    format!("ws://{}/app/{key}{query}", edge.addr())
}

/// A Pusher connection past `pusher:connection_established`.
async fn pusher(edge: &TestEdge) -> Client {
    let mut client = Client::connect(&url(edge, KEY, "?protocol=7&client=js&version=8.4.0")).await.unwrap();
    let established = client.recv().await;
    assert_eq!(established["event"], "pusher:connection_established", "{established}");
    client
}

fn data(frame: &Value) -> Value {
    match &frame["data"] {
        Value::String(text) => serde_json::from_str(text).unwrap_or(Value::String(text.clone())),
        other => other.clone(),
    }
}

/// Pings, and expects the pong: the connection is alive and well.
async fn still_alive(client: &mut Client) {
    client.send_json(&json!({"event": "pusher:ping", "data": {}})).await;
    assert_eq!(client.recv().await, json!({"event": "pusher:pong", "data": {}}));
}

both_buses!(refusals_at_connect_carry_pushers_codes);
async fn refusals_at_connect_carry_pushers_codes(setup: BusSetup) {
    let edge = edge(&setup).await;
    for (key, query, code) in [("nope", "?protocol=7", 4001), (KEY, "?protocol=6", 4007), (KEY, "?client=js", 4008)] {
        let mut client = Client::connect(&url(&edge, key, query)).await.unwrap();
        let error = client.recv().await;
        assert_eq!((error["event"].as_str(), error["data"]["code"].as_u64()), (Some("pusher:error"), Some(code)));
        assert_eq!(client.try_recv_or_close().await, Err(Some(code as u16)), "{key}{query}");
    }
    // Not an upgrade at all: a plain status.
    assert_eq!(edge.http("/app/k").await.0, 400);
}

both_buses!(no_app_means_no_pusher_path);
async fn no_app_means_no_pusher_path(setup: BusSetup) {
    let edge = TestEdge::start(&setup).await;
    assert_eq!(edge.http("/app/k?protocol=7").await.0, 404);
}

both_buses!(bad_frames_get_pusher_errors_and_the_connection_stays);
async fn bad_frames_get_pusher_errors_and_the_connection_stays(setup: BusSetup) {
    let edge = edge(&setup).await;
    let mut herald = edge.user("watcher", &["private-room"]).await;
    let mut client = pusher(&edge).await;
    for text in ["nope", "[1]", "{}", r#"{"event":"pusher:subscribe"}"#, r#"{"event":"hello","data":{}}"#] {
        client.send_text(text).await;
        let error = client.recv().await;
        assert_eq!(error["event"], "pusher:error", "{text}: {error}");
        assert!(error["data"]["message"].as_str().is_some_and(|m| !m.is_empty()), "{error}");
        still_alive(&mut client).await;
    }
    client.send_binary(vec![1, 2, 3]).await;
    assert_eq!(client.recv().await["event"], "pusher:error");
    // A client event needs a private or presence channel it is subscribed to.
    client.send_json(&json!({"event": "pusher:subscribe", "data": {"channel": "chat"}})).await;
    assert_eq!(client.recv().await["event"], "pusher_internal:subscription_succeeded");
    for channel in ["chat", "private-room"] {
        client.send_json(&json!({"event": "client-typing", "channel": channel, "data": {}})).await;
        assert_eq!(client.recv().await["event"], "pusher:error", "{channel}");
    }
    // Subscriptions: a bad name, a missing or forged signature.
    for (channel, auth, status) in [
        ("a b", None, 400),
        ("private-room", None, 401),
        ("private-room", Some("k:00ff"), 401),
        ("presence-x", Some("k:00"), 400),
    ] {
        let mut subscribe = json!({"event": "pusher:subscribe", "data": {"channel": channel}});
        if let Some(auth) = auth {
            subscribe["data"]["auth"] = json!(auth);
        }
        client.send_json(&subscribe).await;
        let refusal = client.recv().await;
        assert_eq!(refusal["event"], "pusher:subscription_error", "{channel}: {refusal}");
        assert_eq!(data(&refusal)["status"], status, "{channel}: {refusal}");
    }
    still_alive(&mut client).await;
    // The Herald client in the group saw none of it.
    herald.expect_silence(SILENCE).await;
}

both_buses!(a_frame_over_the_size_limit_closes_with_1009);
async fn a_frame_over_the_size_limit_closes_with_1009(setup: BusSetup) {
    let edge = edge(&setup).await;
    let mut client = pusher(&edge).await;
    let mut bystander = pusher(&edge).await;
    client.send_text(&format!(r#"{{"event":"pusher:ping","data":"{}"}}"#, "x".repeat(5000))).await;
    let error = client.recv().await;
    assert_eq!((error["event"].as_str(), error["data"]["code"].as_u64()), (Some("pusher:error"), Some(1009)));
    assert_eq!(client.try_recv_or_close().await, Err(Some(1009)));
    still_alive(&mut bystander).await;
}

both_buses!(a_failed_sign_in_closes_with_4009);
async fn a_failed_sign_in_closes_with_4009(setup: BusSetup) {
    let edge = edge(&setup).await;
    let mut client = pusher(&edge).await;
    client.send_json(&json!({"event": "pusher:signin", "data": {"auth": "k:00", "user_data": "{\"id\":\"1\"}"}})).await;
    let error = client.recv().await;
    assert_eq!((error["event"].as_str(), error["data"]["code"].as_u64()), (Some("pusher:error"), Some(4009)));
    assert_eq!(client.try_recv_or_close().await, Err(Some(4009)));
}
