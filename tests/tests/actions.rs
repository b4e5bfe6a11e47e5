//! What clients send: the system actions `$ping`, `$join`, `$leave`, and
//! other actions, which go to the routers by request/reply on
//! `herald.router.actions` (played here by a test-side responder).

use herald_tests::{BusSetup, Client, SILENCE, TestBus, TestEdge, Token, both_buses};
use serde_json::{Value, json};

both_buses!(ping_gets_pong_with_the_same_id);
async fn ping_gets_pong_with_the_same_id(setup: BusSetup) {
    let edge = TestEdge::start(&setup).await;
    let mut alice = edge.user("alice", &[]).await;

    alice.send_json(&json!({"action": "$ping", "id": "p-1"})).await;
    assert_eq!(alice.recv_action("$pong").await["id"], "p-1");
    alice.send_json(&json!({"action": "$ping", "id": 42})).await;
    assert_eq!(alice.recv_action("$pong").await["id"], 42);
    alice.send_json(&json!({"action": "$ping", "id": 1.5})).await;
    assert_eq!(alice.recv_action("$pong").await["id"], 1.5);
    alice.send_json(&json!({"action": "$ping"})).await;
    let pong = alice.recv_action("$pong").await;
    assert!(pong.get("id").is_none_or(Value::is_null), "no id in, no id out: {pong}");
    // Replies come in the order of the requests.
    for i in 0..20 {
        alice.send_json(&json!({"action": "$ping", "id": i})).await;
    }
    for i in 0..20 {
        assert_eq!(alice.recv_action("$pong").await["id"], i);
    }
    alice.expect_silence(SILENCE).await;
}

both_buses!(join_is_allowed_by_the_token_and_takes_effect_before_the_reply);
async fn join_is_allowed_by_the_token_and_takes_effect_before_the_reply(setup: BusSetup) {
    let bus = TestBus::connect(&setup).await;
    let edge = TestEdge::start(&setup).await;
    let token = Token::user("alice").groups(["lobby"]).join(["room:*", "vip"]).hs256();
    let mut alice = edge.client(&token).await;

    for (id, group) in [(1, "room:42"), (2, "room:"), (3, "vip"), (4, "lobby")] {
        alice.send_json(&json!({"action": "$join", "details": {"group": group}, "id": id})).await;
        let reply = alice.recv_action("$join").await;
        assert_eq!(reply["id"], id);
        assert_eq!(reply["details"], json!({"group": group}));
        // The reply comes once the subscription is live: no probing.
        let payload = json!({"action": "to/group", "details": group}).to_string();
        bus.to_group(group, &payload).await;
        assert_eq!(alice.recv_raw().await, payload, "group {group:?}");
    }
    alice.expect_silence(SILENCE).await;
}

both_buses!(join_without_permission_is_403_and_joins_nothing);
async fn join_without_permission_is_403_and_joins_nothing(setup: BusSetup) {
    let bus = TestBus::connect(&setup).await;
    let edge = TestEdge::start(&setup).await;
    let token = Token::user("alice").groups(["lobby"]).join(["room:*", "vip"]).hs256();
    let mut alice = edge.client(&token).await;

    let forbidden = ["admins", "room", "vip2", "vi", "lobby2", "Room:1", ""];
    let mut witness = edge.user("witness", &forbidden).await;
    for (id, group) in forbidden.iter().enumerate() {
        alice.send_json(&json!({"action": "$join", "details": {"group": group}, "id": id})).await;
        let error = alice.recv_error("$join", 403).await;
        assert_eq!(error["id"], id, "group {group:?}");
    }
    for group in forbidden {
        let payload = json!({"action": "to/group", "details": group}).to_string();
        bus.to_group(group, &payload).await;
        assert_eq!(witness.recv_raw().await, payload);
    }
    Client::all_silent(&mut [&mut alice, &mut witness]).await;
}

both_buses!(leave_stops_delivery_before_the_reply);
async fn leave_stops_delivery_before_the_reply(setup: BusSetup) {
    let bus = TestBus::connect(&setup).await;
    let edge = TestEdge::start(&setup).await;
    let token = Token::user("alice").groups(["lobby"]).join(["room:*"]).hs256();
    let mut alice = edge.client(&token).await;
    let mut witness = edge.user("witness", &["lobby", "room:1"]).await;

    alice.send_json(&json!({"action": "$join", "details": {"group": "room:1"}})).await;
    alice.recv_action("$join").await;
    for (id, group) in [("l1", "room:1"), ("l2", "lobby")] {
        alice.send_json(&json!({"action": "$leave", "details": {"group": group}, "id": id})).await;
        let reply = alice.recv_action("$leave").await;
        assert_eq!(reply["id"], id);
        assert_eq!(reply["details"], json!({"group": group}));
        let payload = json!({"action": "to/group", "details": group}).to_string();
        bus.to_group(group, &payload).await;
        // The witness on the same edge gets it, so the edge has it; alice
        // must not.
        assert_eq!(witness.recv_raw().await, payload);
        Client::all_silent(&mut [&mut alice, &mut witness]).await;
    }
    // Leaving a group one may not join: 403.
    alice.send_json(&json!({"action": "$leave", "details": {"group": "admins"}, "id": "l3"})).await;
    assert_eq!(alice.recv_error("$leave", 403).await["id"], "l3");
    // And joining again works.
    alice.send_json(&json!({"action": "$join", "details": {"group": "room:1"}})).await;
    alice.recv_action("$join").await;
    bus.to_group("room:1", r#"{"action":"back"}"#).await;
    assert_eq!(alice.recv_raw().await, r#"{"action":"back"}"#);
}

both_buses!(join_and_leave_with_bad_details_are_400);
async fn join_and_leave_with_bad_details_are_400(setup: BusSetup) {
    let edge = TestEdge::start(&setup).await;
    let mut alice = edge.client(&Token::user("alice").join(["*"]).hs256()).await;

    for action in ["$join", "$leave"] {
        for (id, details) in [
            (1, Value::Null),
            (2, json!({})),
            (3, json!({"group": 7})),
            (4, json!("room")),
            (5, json!({"groups": ["room"]})),
        ] {
            alice.send_json(&json!({"action": action, "details": details, "id": id})).await;
            let error = alice.recv_error(action, 400).await;
            assert_eq!(error["id"], id, "{action} with {details}");
        }
    }
    alice.ping("after").await;
}

both_buses!(an_action_without_a_router_is_503);
async fn an_action_without_a_router_is_503(setup: BusSetup) {
    let edge = TestEdge::start(&setup).await;
    let mut alice = edge.user("alice", &[]).await;

    alice.send_json(&json!({"action": "chat/send", "details": {"text": "hi"}, "id": "c1"})).await;
    let error = alice.recv_error("chat/send", 503).await;
    assert_eq!(error["id"], "c1");
    alice.ping("after").await;
}

both_buses!(a_handler_reply_goes_back_with_the_action_and_id);
async fn a_handler_reply_goes_back_with_the_action_and_id(setup: BusSetup) {
    let bus = TestBus::connect(&setup).await;
    let edge = TestEdge::start(&setup).await;
    let mut responder =
        bus.responder(|request| Some(json!({"details": {"echo": request["details"], "by": "handler"}}))).await;
    let mut alice = edge.client(&Token::user("alice").groups(["g"]).claim("plan", json!("pro")).hs256()).await;

    // Details with odd spacing: the handler must get the client's bytes.
    let details = r#"{"b": 1,   "a": ["é", 2.50]}"#;
    alice.send_text(&format!(r#"{{"action":"chat/send","details":{details},"id":"x1"}}"#)).await;
    let reply = alice.recv_action("chat/send").await;
    assert_eq!(reply["id"], "x1");
    assert_eq!(reply["details"], json!({"echo": {"b": 1, "a": ["é", 2.50]}, "by": "handler"}));

    let (raw, request) = responder.next_request().await;
    assert_eq!(request["action"], "chat/send");
    assert_eq!(request["id"], "x1");
    assert_eq!(request["conn"], alice.conn());
    assert_eq!(request["user"], "alice");
    assert_eq!(request["groups"], json!(["g"]));
    assert_eq!(request["claims"], json!({"plan": "pro"}));
    assert!(raw.contains(details), "the handler request must carry the details byte for byte: {raw}");

    // Without details and id: details null, no id in the reply.
    alice.send_json(&json!({"action": "chat/send"})).await;
    let reply = alice.recv_action("chat/send").await;
    assert!(reply.get("id").is_none_or(Value::is_null), "{reply}");
    let (_, request) = responder.next_request().await;
    assert_eq!(request["details"], Value::Null);
    alice.expect_silence(SILENCE).await;
}

both_buses!(a_handler_error_becomes_an_error_reply);
async fn a_handler_error_becomes_an_error_reply(setup: BusSetup) {
    let bus = TestBus::connect(&setup).await;
    let edge = TestEdge::start(&setup).await;
    let _responder = bus.responder(|_| Some(json!({"error": {"code": 418, "message": "x"}}))).await;
    let mut alice = edge.user("alice", &[]).await;

    alice.send_json(&json!({"action": "tea/brew", "id": 5})).await;
    let error = alice.recv_error("tea/brew", 418).await;
    assert_eq!(error["id"], 5);
    assert_eq!(error["details"]["message"], "x");
    alice.ping("after").await;
}

both_buses!(a_noreply_handler_sends_nothing_back);
async fn a_noreply_handler_sends_nothing_back(setup: BusSetup) {
    let bus = TestBus::connect(&setup).await;
    let edge = TestEdge::start(&setup).await;
    let mut responder = bus.responder(|_| Some(json!({"noreply": true}))).await;
    let mut alice = edge.user("alice", &[]).await;

    alice.send_json(&json!({"action": "typing", "id": 1})).await;
    responder.next_request().await;
    alice.expect_silence(SILENCE).await;
    alice.ping("after").await;
}

both_buses!(a_handler_that_never_answers_is_504_after_the_action_timeout);
async fn a_handler_that_never_answers_is_504_after_the_action_timeout(setup: BusSetup) {
    let bus = TestBus::connect(&setup).await;
    // Action timeout 600 ms in test edges.
    let edge = TestEdge::start(&setup).await;
    let mut responder = bus.responder(|_| None).await;
    let mut alice = edge.user("alice", &[]).await;

    alice.send_json(&json!({"action": "slow/op", "id": "s1"})).await;
    responder.next_request().await;
    let started = tokio::time::Instant::now();
    let error = alice.recv_error("slow/op", 504).await;
    assert_eq!(error["id"], "s1");
    assert!(started.elapsed() < std::time::Duration::from_secs(3), "504 took {:?}", started.elapsed());
    alice.ping("after").await;
}

both_buses!(handler_effects_join_and_leave_apply_to_the_requesting_connection);
async fn handler_effects_join_and_leave_apply_to_the_requesting_connection(setup: BusSetup) {
    let bus = TestBus::connect(&setup).await;
    let edge = TestEdge::start(&setup).await;
    let _responder = bus
        .responder(|request| match request["action"].as_str() {
            Some("room/enter") => Some(json!({"details": "in", "effects": [{"join": "room:7"}]})),
            Some("room/exit") => Some(json!({"details": "out", "effects": [{"leave": "room:7"}]})),
            _ => Some(json!({"error": {"code": 404, "message": "no"}})),
        })
        .await;
    let mut tab1 = edge.user("alice", &[]).await;
    let mut tab2 = edge.user("alice", &[]).await;
    let mut witness = edge.user("witness", &["room:7"]).await;
    let group = bus.subjects().group("room:7");

    tab1.send_json(&json!({"action": "room/enter", "id": 1})).await;
    assert_eq!(tab1.recv_action("room/enter").await["details"], "in");
    bus.await_delivery(&group, &mut [&mut tab1, &mut witness]).await;
    bus.to_group("room:7", r#"{"action":"r","details":1}"#).await;
    assert_eq!(tab1.recv_raw().await, r#"{"action":"r","details":1}"#);
    assert_eq!(witness.recv_raw().await, r#"{"action":"r","details":1}"#);
    // Only the requesting connection joined, not the user's other tab.
    Client::all_silent(&mut [&mut tab1, &mut tab2, &mut witness]).await;

    tab1.send_json(&json!({"action": "room/exit", "id": 2})).await;
    assert_eq!(tab1.recv_action("room/exit").await["details"], "out");
    bus.await_no_delivery(&group, &mut witness, &mut [&mut tab1]).await;
    bus.to_group("room:7", r#"{"action":"r","details":2}"#).await;
    assert_eq!(witness.recv_raw().await, r#"{"action":"r","details":2}"#);
    Client::all_silent(&mut [&mut tab1, &mut tab2, &mut witness]).await;
}

both_buses!(actions_from_two_connections_get_their_own_replies);
async fn actions_from_two_connections_get_their_own_replies(setup: BusSetup) {
    let bus = TestBus::connect(&setup).await;
    let edge = TestEdge::start(&setup).await;
    let _responder = bus.responder(|request| Some(json!({"details": request["conn"]}))).await;
    let mut a = edge.user("alice", &[]).await;
    let mut b = edge.user("alice", &[]).await;

    for i in 0..5 {
        a.send_json(&json!({"action": "who", "id": i})).await;
        b.send_json(&json!({"action": "who", "id": i})).await;
    }
    for client in [&mut a, &mut b] {
        let conn = client.conn().to_owned();
        let mut ids = Vec::new();
        for _ in 0..5 {
            let reply = client.recv_action("who").await;
            assert_eq!(reply["details"], conn.as_str());
            ids.push(reply["id"].as_u64().expect("numeric id"));
        }
        // Handlers may answer in any order; each id once.
        ids.sort();
        assert_eq!(ids, [0, 1, 2, 3, 4]);
    }
    Client::all_silent(&mut [&mut a, &mut b]).await;
}
