//! The router's backend HTTP API, for backends that cannot speak NATS:
//! publish to users, groups, connections or everyone (with and without
//! `exclude_conn`), move users and connections between groups, disconnect
//! them with a code and reason; and every bad request answered with a 4xx
//! and a JSON `{"error": "..."}` that says what is wrong, with no effect.

use herald_tests::{BusSetup, Client, SILENCE, TEST_API_KEY, TestBus, TestEdge, TestRouter, Token, both_buses};
use serde_json::{Value, json};

/// Each of `clients` receives `frame` next.
async fn all_receive(clients: &mut [&mut Client], frame: &Value) {
    for client in clients.iter_mut() {
        assert_eq!(&client.recv().await, frame, "{}", client.conn());
    }
}

/// Publishes `{"action": "api/test", "details": n}` to `to` through the API
/// (with `exclude_conn` when given) and checks how many subjects it says it
/// published to.
async fn publish(router: &TestRouter, n: u32, to: Value, exclude: Option<&str>, subjects: usize) -> Value {
    let mut body = json!({"to": to, "action": "api/test", "details": {"n": n}});
    if let Some(conn) = exclude {
        body["exclude_conn"] = json!(conn);
    }
    let answer = router.post_ok("/api/publish", &body).await;
    assert_eq!(answer, json!({"subjects": subjects}), "{body}");
    json!({"action": "api/test", "details": {"n": n}})
}

both_buses!(publish_reaches_exactly_the_clients_its_target_names);
async fn publish_reaches_exactly_the_clients_its_target_names(setup: BusSetup) {
    let router = TestRouter::start(&setup, "").await;
    let edge1 = TestEdge::start(&setup).await;
    let edge2 = TestEdge::start(&setup).await;
    let mut alice1 = edge1.user("alice", &["g"]).await;
    let mut alice2 = edge2.user("alice", &[]).await;
    let mut bob = edge2.user("bob", &["g"]).await;
    let mut carol = edge1.user("carol", &["h"]).await;
    let mut dave = edge2.user("dave.smith@example.com", &["team red"]).await;
    let (a1, b, c) = (alice1.conn().to_owned(), bob.conn().to_owned(), carol.conn().to_owned());

    // Users: every tab, on every edge.
    let frame = publish(&router, 1, json!({"users": ["alice"]}), None, 1).await;
    all_receive(&mut [&mut alice1, &mut alice2], &frame).await;
    Client::all_silent(&mut [&mut alice1, &mut alice2, &mut bob, &mut carol, &mut dave]).await;
    // Groups.
    let frame = publish(&router, 2, json!({"groups": ["g"]}), None, 1).await;
    all_receive(&mut [&mut alice1, &mut bob], &frame).await;
    Client::all_silent(&mut [&mut alice1, &mut alice2, &mut bob, &mut carol, &mut dave]).await;
    // Connections.
    let frame = publish(&router, 3, json!({"conns": [c, b]}), None, 2).await;
    all_receive(&mut [&mut carol, &mut bob], &frame).await;
    Client::all_silent(&mut [&mut alice1, &mut alice2, &mut bob, &mut carol, &mut dave]).await;
    // Everyone.
    let frame = publish(&router, 4, json!({"all": true}), None, 1).await;
    all_receive(&mut [&mut alice1, &mut alice2, &mut bob, &mut carol, &mut dave], &frame).await;
    Client::all_silent(&mut [&mut alice1, &mut alice2, &mut bob, &mut carol, &mut dave]).await;
    // Names that are not subject tokens as they are.
    let frame = publish(&router, 5, json!({"users": ["dave.smith@example.com"]}), None, 1).await;
    all_receive(&mut [&mut dave], &frame).await;
    let frame = publish(&router, 6, json!({"groups": ["team red"]}), None, 1).await;
    all_receive(&mut [&mut dave], &frame).await;
    Client::all_silent(&mut [&mut alice1, &mut alice2, &mut bob, &mut carol, &mut dave]).await;
    // Several kinds at once: the union (disjoint here).
    let frame = publish(&router, 7, json!({"users": ["carol"], "groups": ["g"]}), None, 2).await;
    all_receive(&mut [&mut carol, &mut alice1, &mut bob], &frame).await;
    Client::all_silent(&mut [&mut alice1, &mut alice2, &mut bob, &mut carol, &mut dave]).await;

    // exclude_conn skips exactly that connection, whatever the target.
    let frame = publish(&router, 8, json!({"users": ["alice"]}), Some(&a1), 1).await;
    all_receive(&mut [&mut alice2], &frame).await;
    Client::all_silent(&mut [&mut alice1, &mut alice2, &mut bob, &mut carol, &mut dave]).await;
    let frame = publish(&router, 9, json!({"groups": ["g"]}), Some(&b), 1).await;
    all_receive(&mut [&mut alice1], &frame).await;
    Client::all_silent(&mut [&mut alice1, &mut alice2, &mut bob, &mut carol, &mut dave]).await;
    let frame = publish(&router, 10, json!({"all": true}), Some(&c), 1).await;
    all_receive(&mut [&mut alice1, &mut alice2, &mut bob, &mut dave], &frame).await;
    Client::all_silent(&mut [&mut alice1, &mut alice2, &mut bob, &mut carol, &mut dave]).await;
    let frame = publish(&router, 11, json!({"conns": [c]}), Some(&c), 1).await;
    drop(frame);
    Client::all_silent(&mut [&mut alice1, &mut alice2, &mut bob, &mut carol, &mut dave]).await;
    // Excluding a connection the target does not name changes nothing.
    let frame = publish(&router, 12, json!({"groups": ["g"]}), Some(&c), 1).await;
    all_receive(&mut [&mut alice1, &mut bob], &frame).await;
    Client::all_silent(&mut [&mut alice1, &mut alice2, &mut bob, &mut carol, &mut dave]).await;

    // Details of any JSON type, and none.
    for (n, details) in [json!("text"), json!([1, {"a": null}]), json!(2.5), Value::Null].into_iter().enumerate() {
        let body = json!({"to": {"users": ["carol"]}, "action": format!("kind/{n}"), "details": details});
        router.post_ok("/api/publish", &body).await;
        let frame = carol.recv().await;
        assert_eq!((frame["action"].clone(), frame["details"].clone()), (json!(format!("kind/{n}")), details));
    }
    router.post_ok("/api/publish", &json!({"to": {"users": ["carol"]}, "action": "no/details"})).await;
    let frame = carol.recv_action("no/details").await;
    assert_eq!(frame["details"], Value::Null);
    Client::all_silent(&mut [&mut alice1, &mut alice2, &mut bob, &mut carol, &mut dave]).await;
}

both_buses!(groups_join_and_leave_move_users_and_connections);
async fn groups_join_and_leave_move_users_and_connections(setup: BusSetup) {
    let bus = TestBus::connect(&setup).await;
    let router = TestRouter::start(&setup, "").await;
    let edge1 = TestEdge::start(&setup).await;
    let edge2 = TestEdge::start(&setup).await;
    let mut witness = edge1.user("witness", &["news"]).await;
    let mut bob1 = edge1.user("bob", &[]).await;
    let mut bob2 = edge2.user("bob", &[]).await;
    let mut alice1 = edge1.user("alice", &[]).await;
    let mut alice2 = edge2.user("alice", &[]).await;
    let news = bus.subjects().group("news");

    // Users: every connection of the user, on every edge.
    let answer = router.post_ok("/api/groups/join", &json!({"group": "news", "users": ["bob"]})).await;
    assert_eq!(answer, json!({"subjects": 1}));
    // A backend's join applies asynchronously (ARCHITECTURE.md).
    bus.await_delivery(&news, &mut [&mut witness, &mut bob1, &mut bob2]).await;
    let frame = publish(&router, 1, json!({"groups": ["news"]}), None, 1).await;
    all_receive(&mut [&mut witness, &mut bob1, &mut bob2], &frame).await;
    Client::all_silent(&mut [&mut witness, &mut bob1, &mut bob2, &mut alice1, &mut alice2]).await;

    // Connections: only that one.
    let a2 = alice2.conn().to_owned();
    let answer = router.post_ok("/api/groups/join", &json!({"group": "news", "conns": [a2]})).await;
    assert_eq!(answer, json!({"subjects": 1}));
    bus.await_delivery(&news, &mut [&mut witness, &mut bob1, &mut bob2, &mut alice2]).await;
    let frame = publish(&router, 2, json!({"groups": ["news"]}), None, 1).await;
    all_receive(&mut [&mut witness, &mut bob1, &mut bob2, &mut alice2], &frame).await;
    Client::all_silent(&mut [&mut witness, &mut bob1, &mut bob2, &mut alice1, &mut alice2]).await;

    // Leave, for a user and for a connection, in one call.
    let body = json!({"group": "news", "users": ["bob"], "conns": [a2]});
    assert_eq!(router.post_ok("/api/groups/leave", &body).await, json!({"subjects": 2}));
    bus.await_no_delivery(&news, &mut witness, &mut [&mut bob1, &mut bob2, &mut alice2]).await;
    let frame = publish(&router, 3, json!({"groups": ["news"]}), None, 1).await;
    all_receive(&mut [&mut witness], &frame).await;
    Client::all_silent(&mut [&mut witness, &mut bob1, &mut bob2, &mut alice1, &mut alice2]).await;
}

both_buses!(disconnect_closes_users_and_connections_with_the_code_and_reason);
async fn disconnect_closes_users_and_connections_with_the_code_and_reason(setup: BusSetup) {
    let router = TestRouter::start(&setup, "").await;
    let edge1 = TestEdge::start(&setup).await;
    let edge2 = TestEdge::start(&setup).await;
    let mut bob1 = edge1.user("bob", &[]).await;
    let mut bob2 = edge2.user("bob", &[]).await;
    let mut alice1 = edge1.user("alice", &[]).await;
    let mut alice2 = edge2.user("alice", &[]).await;
    let mut carol = edge2.user("carol", &[]).await;
    let mut dave = edge1.user("dave", &[]).await;

    let body = json!({"users": ["bob"], "code": 4100, "reason": "maintenance"});
    assert_eq!(router.post_ok("/api/disconnect", &body).await, json!({"subjects": 1}));
    assert_eq!(bob1.expect_close(4100).await, "maintenance");
    assert_eq!(bob2.expect_close(4100).await, "maintenance");

    // Without a code: 4000 and no reason.
    let a1 = alice1.conn().to_owned();
    assert_eq!(router.post_ok("/api/disconnect", &json!({"conns": [a1]})).await, json!({"subjects": 1}));
    assert_eq!(alice1.expect_close(4000).await, "");
    alice2.ping("alice's other tab is still open").await;

    // 1000 and 3000..=4999 are allowed; users and conns in one call.
    let body = json!({"users": ["carol"], "conns": [dave.conn()], "code": 1000, "reason": "bye"});
    assert_eq!(router.post_ok("/api/disconnect", &body).await, json!({"subjects": 2}));
    assert_eq!(carol.expect_close(1000).await, "bye");
    assert_eq!(dave.expect_close(1000).await, "bye");
    let body = json!({"conns": [alice2.conn()], "code": 3000, "reason": "r".repeat(123)});
    router.post_ok("/api/disconnect", &body).await;
    assert_eq!(alice2.expect_close(3000).await, "r".repeat(123));
}

both_buses!(bad_requests_get_a_4xx_with_a_json_error_and_change_nothing);
async fn bad_requests_get_a_4xx_with_a_json_error_and_change_nothing(setup: BusSetup) {
    let router = TestRouter::start(&setup, "").await;
    let edge = TestEdge::start(&setup).await;
    let mut alice = edge.client(&Token::user("alice").groups(["g"]).hs256()).await;
    let conn = alice.conn().to_owned();
    let long_action = "a".repeat(129);
    let long_reason = "r".repeat(124);

    let cases: &[(&str, &str, u16, &str)] = &[
        // Bad JSON.
        ("/api/publish", r#"{"to": {"all": true}, "action": "#, 400, "invalid JSON"),
        ("/api/publish", "", 400, "invalid JSON"),
        ("/api/publish", "not json", 400, "invalid JSON"),
        ("/api/publish", r#"[{"to": {"all": true}, "action": "a"}]"#, 400, "object"),
        ("/api/publish", r#"{"to": {"all": true}, "action": "a"} trailing"#, 400, "invalid JSON"),
        // Unknown or missing fields, wrong types.
        ("/api/publish", r#"{"to": {"all": true}, "action": "a", "detail": 1}"#, 400, "unknown field `detail`"),
        ("/api/publish", r#"{"target": {"all": true}, "action": "a"}"#, 400, "unknown field `target`"),
        ("/api/publish", r#"{"to": {"user": ["alice"]}, "action": "a"}"#, 400, "unknown field `user`"),
        ("/api/publish", r#"{"to": {"all": true}}"#, 400, "missing field `action`"),
        ("/api/publish", r#"{"action": "a"}"#, 400, "missing field `to`"),
        ("/api/publish", r#"{"to": {"users": "alice"}, "action": "a"}"#, 400, "invalid JSON"),
        ("/api/publish", r#"{"to": {"all": "yes"}, "action": "a"}"#, 400, "invalid JSON"),
        // Empty target, bad action.
        ("/api/publish", r#"{"to": {}, "action": "a"}"#, 400, "names nobody"),
        ("/api/publish", r#"{"to": {"all": false, "users": []}, "action": "a"}"#, 400, "names nobody"),
        ("/api/publish", r#"{"to": {"all": true}, "action": ""}"#, 400, "action"),
        // Bad connection ids.
        ("/api/publish", r#"{"to": {"conns": ["nope"]}, "action": "a"}"#, 400, "not a connection id"),
        ("/api/publish", r#"{"to": {"all": true}, "action": "a", "exclude_conn": "x.y"}"#, 400, "connection id"),
        ("/api/groups/join", r#"{"group": "g2", "conns": ["alice"]}"#, 400, "not a connection id"),
        ("/api/disconnect", r#"{"conns": ["1234"]}"#, 400, "not a connection id"),
        // Groups: no group, nobody named, unknown field.
        ("/api/groups/join", r#"{"users": ["alice"]}"#, 400, "missing field `group`"),
        ("/api/groups/join", r#"{"group": "g2"}"#, 400, "users"),
        ("/api/groups/leave", r#"{"group": "g", "users": [], "conns": []}"#, 400, "users"),
        ("/api/groups/join", r#"{"group": "g2", "user": ["alice"]}"#, 400, "unknown field `user`"),
        // Disconnect: bad close codes and reasons, nobody named.
        ("/api/disconnect", r#"{"users": ["alice"], "code": 999}"#, 400, "code"),
        ("/api/disconnect", r#"{"users": ["alice"], "code": 1001}"#, 400, "code"),
        ("/api/disconnect", r#"{"users": ["alice"], "code": 1006}"#, 400, "code"),
        ("/api/disconnect", r#"{"users": ["alice"], "code": 2999}"#, 400, "code"),
        ("/api/disconnect", r#"{"users": ["alice"], "code": 5000}"#, 400, "code"),
        ("/api/disconnect", r#"{"users": ["alice"], "code": -1}"#, 400, "invalid JSON"),
        ("/api/disconnect", r#"{"users": ["alice"], "code": 70000}"#, 400, "invalid JSON"),
        ("/api/disconnect", r#"{"users": ["alice"], "code": "4000"}"#, 400, "invalid JSON"),
        ("/api/disconnect", r#"{"code": 4000}"#, 400, "users"),
        ("/api/disconnect", r#"{"users": ["alice"], "why": "x"}"#, 400, "unknown field `why`"),
    ];
    for (path, body, status, says) in cases {
        let headers = [("Authorization", format!("Bearer {TEST_API_KEY}"))];
        let headers: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
        let (got, text) = herald_tests::http::request(router.addr(), "POST", path, &headers, body.as_bytes()).await;
        assert_eq!(got, *status, "POST {path} {body}: {text}");
        let error = json_error(&text);
        assert!(error.contains(says), "POST {path} {body}: error {error:?} does not say {says:?}");
    }
    let computed = [
        ("/api/publish", json!({"to": {"all": true}, "action": long_action}), "action"),
        ("/api/publish", json!({"to": {"conns": [format!("{conn}x")]}, "action": "a"}), "connection id"),
        ("/api/disconnect", json!({"conns": [conn], "reason": long_reason}), "reason"),
    ];
    for (path, body, says) in computed {
        let (status, answer) = router.post(path, &body).await;
        assert_eq!(status, 400, "POST {path} {body}: {answer}");
        let error = answer["error"].as_str().unwrap_or_else(|| panic!("no error string: {answer}"));
        assert!(error.contains(says), "POST {path}: error {error:?} does not say {says:?}");
    }

    // Keys.
    let good = json!({"to": {"all": true}, "action": "a"});
    for key in [Some("wrong-key"), Some(""), Some(&format!("{TEST_API_KEY}x")[..]), None] {
        for (method, path, body) in [
            ("POST", "/api/publish", Some(&good)),
            ("POST", "/api/disconnect", Some(&json!({"users": ["alice"]}))),
            ("POST", "/api/groups/join", Some(&json!({"group": "g2", "users": ["alice"]}))),
            ("GET", "/api/presence/users/alice", None),
            ("GET", "/api/presence/groups/g", None),
        ] {
            let (status, answer) = router.api(method, path, body, key).await;
            assert_eq!(status, 401, "{method} {path} with key {key:?}: {answer}");
            assert!(answer["error"].as_str().is_some_and(|e| e.contains("key")), "{answer}");
        }
    }
    for authorization in [format!("Basic {TEST_API_KEY}"), TEST_API_KEY.to_owned(), "Bearer".to_owned()] {
        let (status, text) = herald_tests::http::request(
            router.addr(),
            "POST",
            "/api/publish",
            &[("Authorization", &authorization)],
            good.to_string().as_bytes(),
        )
        .await;
        assert_eq!(status, 401, "Authorization: {authorization}: {text}");
        json_error(&text);
    }

    // A body over the limit (1 MiB by default).
    let huge = json!({"to": {"all": true}, "action": "a", "details": "x".repeat(2 * 1024 * 1024)});
    let (status, answer) = router.post("/api/publish", &huge).await;
    assert_eq!(status, 413, "{answer}");
    assert!(answer["error"].is_string(), "{answer}");

    // Unknown endpoints, with or without a key.
    for path in ["/api/nope", "/api/publish/all", "/api/presence/users/", "/api/presence", "/", "/api"] {
        for key in [Some(TEST_API_KEY), None] {
            let (status, answer) = router.api("GET", path, None, key).await;
            assert_eq!(status, 404, "GET {path}: {answer}");
            assert!(answer["error"].is_string(), "{answer}");
            let (status, answer) = router.api("POST", path, Some(&good), key).await;
            assert_eq!(status, 404, "POST {path}: {answer}");
            assert!(answer["error"].is_string(), "{answer}");
        }
    }

    // None of it had any effect.
    alice.expect_silence(SILENCE).await;
    alice.ping("still connected").await;
    // And a good request works.
    router.post_ok("/api/publish", &json!({"to": {"users": ["alice"]}, "action": "ok"})).await;
    alice.recv_action("ok").await;
}

both_buses!(a_wrong_method_is_405_with_a_json_error);
async fn a_wrong_method_is_405_with_a_json_error(setup: BusSetup) {
    let router = TestRouter::start(&setup, "").await;
    for (method, path) in [
        ("GET", "/api/publish"),
        ("PUT", "/api/groups/join"),
        ("DELETE", "/api/disconnect"),
        ("POST", "/api/presence/users/alice"),
    ] {
        let auth = format!("Bearer {TEST_API_KEY}");
        let (status, text) =
            herald_tests::http::request(router.addr(), method, path, &[("Authorization", &auth)], b"").await;
        assert_eq!(status, 405, "{method} {path}: {text}");
        json_error(&text);
    }
}

/// The `error` of a JSON error answer, which must be a non-empty string.
fn json_error(text: &str) -> String {
    let answer: Value =
        serde_json::from_str(text).unwrap_or_else(|e| panic!("an error answer must be JSON ({e}): {text:?}"));
    let error = answer["error"].as_str().unwrap_or_else(|| panic!("no \"error\" string in {answer}"));
    assert!(!error.is_empty(), "empty error message: {answer}");
    error.to_owned()
}
