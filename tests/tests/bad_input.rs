//! Frames a client should not send. Each gets its error code and the
//! session stays open, proven by a `$ping` answered afterwards.

use herald_tests::{BusSetup, Client, SILENCE, TestEdge, both_buses};
use serde_json::{Value, json};

async fn client(setup: &BusSetup) -> (TestEdge, Client) {
    let edge = TestEdge::start(setup).await;
    let client = edge.user("alice", &[]).await;
    (edge, client)
}

both_buses!(text_that_is_not_json_is_400_and_the_session_goes_on);
async fn text_that_is_not_json_is_400_and_the_session_goes_on(setup: BusSetup) {
    let (_edge, mut alice) = client(&setup).await;
    for (i, text) in
        ["nope", "{", "", " ", "{\"action\":\"$ping\"", "\u{feff}{}", "{'action':'$ping'}"].iter().enumerate()
    {
        alice.send_text(text).await;
        let error = alice.recv_system_error(400).await;
        assert!(error.get("id").is_none_or(Value::is_null), "{error}");
        alice.ping(&format!("after-{i}")).await;
    }
    alice.expect_silence(SILENCE).await;
}

both_buses!(json_that_is_not_a_frame_is_400);
async fn json_that_is_not_a_frame_is_400(setup: BusSetup) {
    let (_edge, mut alice) = client(&setup).await;
    for (i, text) in [
        "[1,2]",
        "42",
        "\"$ping\"",
        "null",
        "{}",
        r#"{"details":{"a":1}}"#,
        r#"{"action":5}"#,
        r#"{"action":null}"#,
        r#"{"action":["$ping"]}"#,
        r#"{"action":""}"#,
        r#"{"action":"$ping","id":[1]}"#,
        r#"{"action":"$ping","id":{"a":1}}"#,
    ]
    .iter()
    .enumerate()
    {
        alice.send_text(text).await;
        let error = alice.recv_system_error(400).await;
        assert!(error["details"]["message"].as_str().is_some_and(|m| !m.is_empty()), "{text}: {error}");
        alice.ping(&format!("after-{i}")).await;
    }
}

both_buses!(an_error_reply_carries_the_id_when_it_can_be_read);
async fn an_error_reply_carries_the_id_when_it_can_be_read(setup: BusSetup) {
    let (_edge, mut alice) = client(&setup).await;
    alice.send_text(r#"{"id":"x1","details":1}"#).await;
    let error = alice.recv_system_error(400).await;
    assert_eq!(error["id"], "x1");
    alice.send_text(r#"{"action":7,"id":8}"#).await;
    let error = alice.recv_system_error(400).await;
    assert_eq!(error["id"], 8);
}

both_buses!(an_action_longer_than_128_characters_is_400);
async fn an_action_longer_than_128_characters_is_400(setup: BusSetup) {
    let (_edge, mut alice) = client(&setup).await;
    // 128 characters (not bytes) is fine: it reaches routing (503, no router).
    let longest = "é".repeat(128);
    alice.send_json(&json!({"action": longest, "id": 1})).await;
    let error = alice.recv_error(&longest, 503).await;
    assert_eq!(error["id"], 1);
    // 129 is not.
    alice.send_json(&json!({"action": "a".repeat(129), "id": 2})).await;
    let error = alice.recv_system_error(400).await;
    assert_eq!(error["id"], 2);
    alice.ping("after").await;
}

both_buses!(a_binary_frame_is_400);
async fn a_binary_frame_is_400(setup: BusSetup) {
    let (_edge, mut alice) = client(&setup).await;
    alice.send_binary(br#"{"action":"$ping","id":"b"}"#.to_vec()).await;
    alice.recv_system_error(400).await;
    alice.send_binary(vec![0xff, 0x00, 0x13]).await;
    alice.recv_system_error(400).await;
    alice.ping("after").await;
}

both_buses!(unknown_and_server_only_system_actions_are_400);
async fn unknown_and_server_only_system_actions_are_400(setup: BusSetup) {
    let (_edge, mut alice) = client(&setup).await;
    for (i, action) in
        ["$foo", "$", "$PING", "$pong", "$connected", "$reauth", "$error", "$connect", "$disconnect", "$default"]
            .iter()
            .enumerate()
    {
        alice.send_json(&json!({"action": action, "details": {"x": 1}, "id": i})).await;
        let error = alice.recv_error(action, 400).await;
        assert_eq!(error["id"], i, "{action}");
        alice.ping(&format!("after-{action}")).await;
    }
}

both_buses!(auth_without_a_token_is_400);
async fn auth_without_a_token_is_400(setup: BusSetup) {
    let (_edge, mut alice) = client(&setup).await;
    for (id, details) in [(1, Value::Null), (2, json!({})), (3, json!({"token": 5})), (4, json!("tok"))] {
        alice.send_json(&json!({"action": "$auth", "details": details, "id": id})).await;
        let error = alice.recv_error("$auth", 400).await;
        assert_eq!(error["id"], id, "{details}");
    }
    alice.ping("after").await;
}
