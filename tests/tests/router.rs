//! Client actions through the whole chain: client → edge → NATS → router →
//! handler (NATS, written with the handler SDK, or HTTP) → router → edge →
//! client. Every outcome a handler call can have is asserted from the
//! client's side: replies with their id, each error code (404, 503, 504,
//! 409 from the handler, 502), `noreply`, effects, late and duplicate
//! answers, the per-connection cap on actions in flight, and the special
//! routes `$default`, `$join` and `$disconnect`.
//!
//! Routers share the actions through their queue group.
//!
//! `$connect`, webhook signatures and route reloads are in `connect.rs` and
//! `reload.rs`; `herald router` processes in `router_process.rs`.

use std::time::Duration;

use herald_handler::{Reply, Request, Target};
use herald_tests::{
    BusSetup, Client, HttpAnswer, HttpHandler, NatsHandler, RawHandler, Recorder, SILENCE, TEST_WEBHOOK_SECRET,
    TestBus, TestEdge, TestRouter, Token, assert_eventually, both_buses, closed_port_url,
};
use serde_json::{Value, json};
use tokio::time::Instant;

const CHAT: &str = "[[routes]]\naction = \"chat/*\"\nnats = \"app.chat\"\n";

/// An edge whose own action timeout (3 s) is well above the route timeouts
/// these tests use, so a 504 is the router's doing, not the edge's.
async fn patient_edge(setup: &BusSetup) -> TestEdge {
    TestEdge::builder(setup).timing(|t| t.action_timeout = Duration::from_secs(3)).spawn().await
}

/// An SDK handler that echoes what it was asked and records each request.
async fn echo_handler(setup: &BusSetup, subject: &str, seen: &Recorder<Request<Value>>) -> NatsHandler {
    let seen = seen.sender();
    let by = subject.to_owned();
    NatsHandler::serve(setup, subject, move |request: Request<Value>| {
        let seen = seen.clone();
        let by = by.clone();
        async move {
            let reply = Reply::details(json!({"echo": request.details, "by": by}));
            let _ = seen.send(request);
            reply
        }
    })
    .await
}

both_buses!(an_action_reaches_an_sdk_handler_and_the_reply_keeps_the_id);
async fn an_action_reaches_an_sdk_handler_and_the_reply_keeps_the_id(setup: BusSetup) {
    let _router = TestRouter::start(&setup, CHAT).await;
    let mut seen = Recorder::new();
    let _handler = echo_handler(&setup, "app.chat", &seen).await;
    let edge = TestEdge::start(&setup).await;
    let mut alice = edge.client(&Token::user("alice").groups(["lobby"]).claim("plan", json!("pro")).hs256()).await;

    for id in [json!("c-1"), json!(42), json!(-7), json!(1.5)] {
        alice.send_action("chat/send", json!({"text": "hi", "id": id}), id.clone()).await;
        let reply = alice.recv_action("chat/send").await;
        assert_eq!(reply["id"], id, "{reply}");
        assert_eq!(reply["details"], json!({"echo": {"text": "hi", "id": id}, "by": "app.chat"}));
        let request = seen.next().await;
        assert_eq!(request.action, "chat/send");
        assert_eq!(serde_json::to_value(&request.id).unwrap(), id);
        assert_eq!(request.conn, alice.conn());
        assert_eq!(request.user.as_deref(), Some("alice"));
        assert_eq!(request.groups, ["lobby"]);
        assert_eq!(Value::Object(request.claims), json!({"plan": "pro"}));
    }
    // No id in, no id out.
    alice.send_json(&json!({"action": "chat/typing"})).await;
    let reply = alice.recv_action("chat/typing").await;
    assert!(reply.get("id").is_none_or(Value::is_null), "{reply}");
    assert_eq!(seen.next().await.details, Value::Null);
    alice.expect_silence(SILENCE).await;
}

both_buses!(an_action_reaches_an_http_handler_and_the_reply_keeps_the_id);
async fn an_action_reaches_an_http_handler_and_the_reply_keeps_the_id(setup: BusSetup) {
    let mut handler = HttpHandler::start(|request| {
        let body = request.json();
        HttpAnswer::json(json!({"details": {"echo": body["details"], "user": body["user"]}}))
    })
    .await;
    let routes = format!("[[routes]]\naction = \"account/*\"\nhttp = \"{}\"\n", handler.url("/ws-handler.php"));
    let _router = TestRouter::start(&setup, &routes).await;
    let edge = TestEdge::start(&setup).await;
    let mut alice = edge.client(&Token::user("alice").groups(["g"]).claim("tier", json!(3)).hs256()).await;

    for id in [json!("a-1"), json!(7)] {
        alice.send_action("account/rename", json!({"name": "Al"}), id.clone()).await;
        let reply = alice.recv_action("account/rename").await;
        assert_eq!(reply["id"], id);
        assert_eq!(reply["details"], json!({"echo": {"name": "Al"}, "user": "alice"}));

        let request = handler.next_request().await;
        assert_eq!(request.method, "POST");
        assert_eq!(request.uri.path(), "/ws-handler.php");
        assert_eq!(request.header("content-type"), Some("application/json"));
        assert!(request.signed_with(TEST_WEBHOOK_SECRET), "bad Herald-Signature: {:?}", request.headers);
        let body = request.json();
        assert_eq!(body["action"], "account/rename");
        assert_eq!(body["details"], json!({"name": "Al"}));
        assert_eq!(body["id"], id);
        assert_eq!(body["conn"], alice.conn());
        assert_eq!(body["user"], "alice");
        assert_eq!(body["groups"], json!(["g"]));
        assert_eq!(body["claims"], json!({"tier": 3}));
    }
    alice.expect_silence(SILENCE).await;
}

both_buses!(an_action_without_a_route_is_404);
async fn an_action_without_a_route_is_404(setup: BusSetup) {
    let _router = TestRouter::start(&setup, CHAT).await;
    let seen = Recorder::new();
    let _handler = echo_handler(&setup, "app.chat", &seen).await;
    let edge = TestEdge::start(&setup).await;
    let mut alice = edge.user("alice", &[]).await;

    for (id, action) in [(1, "news/latest"), (2, "chat"), (3, "Chat/send"), (4, "x")] {
        alice.send_action(action, Value::Null, json!(id)).await;
        let error = alice.recv_error(action, 404).await;
        assert_eq!(error["id"], id);
    }
    alice.send_action("chat/ok", Value::Null, json!(5)).await;
    assert_eq!(alice.recv_action("chat/ok").await["id"], 5);
    alice.expect_silence(SILENCE).await;
}

both_buses!(an_action_with_a_router_but_no_routes_is_404);
async fn an_action_with_a_router_but_no_routes_is_404(setup: BusSetup) {
    let _router = TestRouter::start(&setup, "").await;
    let edge = TestEdge::start(&setup).await;
    let mut alice = edge.user("alice", &[]).await;

    alice.send_action("chat/send", Value::Null, json!("n1")).await;
    assert_eq!(alice.recv_error("chat/send", 404).await["id"], "n1");
    alice.ping("after").await;
}

both_buses!(a_nats_route_without_a_handler_is_503);
async fn a_nats_route_without_a_handler_is_503(setup: BusSetup) {
    let _router = TestRouter::start(&setup, "[[routes]]\naction = \"chat/*\"\nnats = \"app.nobody\"\n").await;
    let edge = TestEdge::start(&setup).await;
    let mut alice = edge.user("alice", &[]).await;

    let started = Instant::now();
    alice.send_action("chat/send", Value::Null, json!("u1")).await;
    let error = alice.recv_error("chat/send", 503).await;
    assert_eq!(error["id"], "u1");
    // NATS says "no responders" at once: no waiting for a timeout.
    assert!(started.elapsed() < Duration::from_millis(500), "503 took {:?}", started.elapsed());
    alice.ping("after").await;
}

both_buses!(an_http_route_whose_handler_refuses_connections_is_503);
async fn an_http_route_whose_handler_refuses_connections_is_503(setup: BusSetup) {
    let routes = format!("[[routes]]\naction = \"account/*\"\nhttp = \"{}\"\n", closed_port_url("/h.php"));
    let _router = TestRouter::start(&setup, &routes).await;
    let edge = TestEdge::start(&setup).await;
    let mut alice = edge.user("alice", &[]).await;

    alice.send_action("account/get", Value::Null, json!(9)).await;
    let error = alice.recv_error("account/get", 503).await;
    assert_eq!(error["id"], 9);
    alice.ping("after").await;
}

both_buses!(a_handler_slower_than_its_route_timeout_is_504);
/// A router with routes `slow/nats` and `slow/http` allowing `timeout_ms`,
/// to a NATS handler and an HTTP handler that both answer after `delay`.
async fn slow_routes(setup: &BusSetup, timeout_ms: u64, delay: Duration) -> (HttpHandler, TestRouter, NatsHandler) {
    let http = HttpHandler::start(move |_| HttpAnswer::json(json!({"details": "too late"})).after(delay)).await;
    let routes = format!(
        "[[routes]]\naction = \"slow/nats\"\nnats = \"app.slow\"\ntimeout_ms = {timeout_ms}\n\n\
         [[routes]]\naction = \"slow/http\"\nhttp = \"{}\"\ntimeout_ms = {timeout_ms}\n",
        http.url("/slow")
    );
    let router = TestRouter::start(setup, &routes).await;
    let handler = NatsHandler::serve(setup, "app.slow", move |_: Request<Value>| async move {
        tokio::time::sleep(delay).await;
        Reply::details("too late")
    })
    .await;
    (http, router, handler)
}

async fn a_handler_slower_than_its_route_timeout_is_504(setup: BusSetup) {
    let (_http, _router, _handler) = slow_routes(&setup, 150, Duration::from_secs(2)).await;
    let edge = patient_edge(&setup).await;
    let mut alice = edge.user("alice", &[]).await;

    for action in ["slow/nats", "slow/http"] {
        let started = Instant::now();
        alice.send_action(action, Value::Null, json!(action)).await;
        let error = alice.recv_error(action, 504).await;
        assert_eq!(error["id"], action);
        // The route's 150 ms, not the edge's 3 s.
        assert!(started.elapsed() < Duration::from_millis(1500), "{action}: 504 took {:?}", started.elapsed());
        alice.ping(action).await;
    }
}

both_buses!(a_route_timeout_beyond_the_edges_action_timeout_is_cut_to_it_and_the_504_says_so);
/// A route may allow its handler longer than the edge waits for an answer.
/// The request carries the edge's action timeout, the router cuts the
/// route's to it, and the client's 504 names the limit that was hit (the
/// router logs it for the operator) rather than coming silently from the
/// edge.
async fn a_route_timeout_beyond_the_edges_action_timeout_is_cut_to_it_and_the_504_says_so(setup: BusSetup) {
    let (mut http, _router, _handler) = slow_routes(&setup, 30_000, Duration::from_secs(3)).await;
    // The test edges' action timeout: 600 ms.
    let edge = TestEdge::start(&setup).await;
    let mut alice = edge.user("alice", &[]).await;

    for action in ["slow/nats", "slow/http"] {
        let started = Instant::now();
        alice.send_action(action, Value::Null, json!(action)).await;
        let error = alice.recv_error(action, 504).await;
        assert_eq!(error["id"], action);
        assert_eq!(
            error["details"]["message"],
            "the handler did not answer within the edge's action timeout (600 ms; the route allows 30000 ms)",
            "{action}"
        );
        assert!(started.elapsed() < Duration::from_millis(2500), "{action}: 504 took {:?}", started.elapsed());
    }
    // What the handler was told it has.
    assert_eq!(http.next_request().await.json()["timeout_ms"], 600);
    alice.expect_silence(SILENCE).await;
}

both_buses!(a_handler_error_becomes_an_error_reply_with_its_code_and_message);
async fn a_handler_error_becomes_an_error_reply_with_its_code_and_message(setup: BusSetup) {
    let http =
        HttpHandler::start(|_| HttpAnswer::json(json!({"error": {"code": 409, "message": "name taken (http)"}}))).await;
    let routes = format!(
        "[[routes]]\naction = \"nats/*\"\nnats = \"app.conflict\"\n\n[[routes]]\naction = \"http/*\"\nhttp = \"{}\"\n",
        http.url("/")
    );
    let _router = TestRouter::start(&setup, &routes).await;
    let _handler =
        NatsHandler::serve(&setup, "app.conflict", |_: Request<Value>| async { Reply::error(409, "name taken") }).await;
    let edge = TestEdge::start(&setup).await;
    let mut alice = edge.user("alice", &[]).await;

    alice.send_action("nats/rename", json!({"name": "x"}), json!("e1")).await;
    let error = alice.recv_error("nats/rename", 409).await;
    assert_eq!(error["id"], "e1");
    assert_eq!(error["details"], json!({"code": 409, "message": "name taken"}));

    alice.send_action("http/rename", json!({"name": "x"}), json!(2)).await;
    let error = alice.recv_error("http/rename", 409).await;
    assert_eq!(error["id"], 2);
    assert_eq!(error["details"], json!({"code": 409, "message": "name taken (http)"}));
    alice.expect_silence(SILENCE).await;
}

both_buses!(malformed_handler_answers_are_502);
async fn malformed_handler_answers_are_502(setup: BusSetup) {
    let bus = TestBus::connect(&setup).await;
    let answers = [
        ("not-json", "<html>oops</html>"),
        ("truncated", r#"{"details":"#),
        ("unknown-field", r#"{"detail":{"a":1}}"#),
        ("unknown-effect", r#"{"effects":[{"explode":1}]}"#),
        ("code-0", r#"{"error":{"code":0,"message":"x"}}"#),
        ("code-5000", r#"{"error":{"code":5000,"message":"x"}}"#),
        ("code-text", r#"{"error":{"code":"409","message":"x"}}"#),
        ("array", r#"[{"details":1}]"#),
        ("string", r#""ok""#),
    ];
    let _raw = RawHandler::start(&bus, "app.bad", move |request| {
        let answer = answers.iter().find(|(kind, _)| request["details"] == *kind).map_or("{}", |(_, a)| *a);
        vec![(Duration::ZERO, answer.to_owned())]
    })
    .await;
    let http = HttpHandler::start(|request| match request.json()["details"].as_str() {
        Some("html") => HttpAnswer::raw(200, "<html>oops</html>"),
        Some("unknown-field") => HttpAnswer::raw(200, r#"{"detials":1}"#),
        Some("code-0") => HttpAnswer::raw(200, r#"{"error":{"code":0,"message":"x"}}"#),
        Some("status-500") => HttpAnswer::raw(500, r#"{"details":"fine, but HTTP 500"}"#),
        Some("status-302") => HttpAnswer::raw(302, r#"{"details":"fine, but HTTP 302"}"#),
        _ => HttpAnswer::json(json!({"details": "well formed"})),
    })
    .await;
    let routes = format!(
        "[[routes]]\naction = \"bad/*\"\nnats = \"app.bad\"\n\n[[routes]]\naction = \"badhttp/*\"\nhttp = \"{}\"\n",
        http.url("/")
    );
    let _router = TestRouter::start(&setup, &routes).await;
    let edge = TestEdge::start(&setup).await;
    let mut alice = edge.user("alice", &[]).await;

    for (i, (kind, _)) in answers.iter().enumerate() {
        alice.send_action("bad/x", json!(kind), json!(i)).await;
        let error = alice.recv_error("bad/x", 502).await;
        assert_eq!(error["id"], i, "answer {kind}: {error}");
    }
    for kind in ["html", "unknown-field", "code-0", "status-500", "status-302"] {
        alice.send_action("badhttp/x", json!(kind), json!(kind)).await;
        let error = alice.recv_error("badhttp/x", 502).await;
        assert_eq!(error["id"], kind, "{error}");
    }
    // The same routes still answer well-formed answers.
    alice.send_action("bad/x", json!("fine"), json!("ok")).await;
    let reply = alice.recv_action("bad/x").await;
    assert_eq!(reply["id"], "ok");
    alice.send_action("badhttp/x", json!("fine"), json!("ok")).await;
    assert_eq!(alice.recv_action("badhttp/x").await["details"], "well formed");
    alice.expect_silence(SILENCE).await;
}

both_buses!(php_empty_arrays_read_as_empty_objects_in_handler_answers);
/// PHP's `json_encode([])` is `[]`: an empty answer, an empty `disconnect`
/// effect, an empty target. Any other array is still malformed.
async fn php_empty_arrays_read_as_empty_objects_in_handler_answers(setup: BusSetup) {
    let bus = TestBus::connect(&setup).await;
    let http = HttpHandler::start(|request| match request.json()["action"].as_str() {
        Some("php/empty") => HttpAnswer::raw(200, "[]"),
        Some("php/nobody") => {
            HttpAnswer::raw(200, r#"{"details":"sent","effects":[{"publish":{"to":[],"action":"a"}}]}"#)
        }
        Some("php/bye") => HttpAnswer::raw(200, r#"{"details":"bye","effects":[{"disconnect":[]}]}"#),
        _ => HttpAnswer::raw(200, "[1]"),
    })
    .await;
    let _raw = RawHandler::start(&bus, "app.php", |_| vec![(Duration::ZERO, " [ ] ".to_owned())]).await;
    let routes = format!(
        "[[routes]]\naction = \"php/*\"\nhttp = \"{}\"\n\n[[routes]]\naction = \"nats/*\"\nnats = \"app.php\"\n",
        http.url("/handler.php")
    );
    let _router = TestRouter::start(&setup, &routes).await;
    let edge = TestEdge::start(&setup).await;
    let mut alice = edge.user("alice", &[]).await;

    for (id, action) in [(1, "php/empty"), (2, "nats/empty")] {
        alice.send_action(action, Value::Null, json!(id)).await;
        let reply = alice.recv_action(action).await;
        assert_eq!((reply["id"].clone(), reply["details"].clone()), (json!(id), Value::Null), "{reply}");
    }
    alice.send_action("php/nobody", Value::Null, json!(3)).await;
    assert_eq!(alice.recv_action("php/nobody").await["details"], "sent");
    alice.send_action("php/positional", Value::Null, json!(4)).await;
    assert_eq!(alice.recv_error("php/positional", 502).await["id"], 4);
    alice.send_action("php/bye", Value::Null, json!(5)).await;
    assert_eq!(alice.recv_action("php/bye").await["details"], "bye");
    alice.expect_close(4000).await;
}

both_buses!(an_http_handler_refusing_with_a_4xx_status_gives_the_client_that_code);
/// A PHP script answers 403 or 422 when it refuses: the client gets that
/// code, with the body's `error.message` when it has one. A 5xx is the
/// handler failing: 502.
async fn an_http_handler_refusing_with_a_4xx_status_gives_the_client_that_code(setup: BusSetup) {
    let http = HttpHandler::start(|request| match request.json()["details"].as_str() {
        Some("forbidden") => HttpAnswer::raw(403, r#"{"error":{"code":403,"message":"you are muted"}}"#),
        Some("invalid") => HttpAnswer::raw(422, r#"{"message":"The given data was invalid."}"#),
        Some("gone") => HttpAnswer::raw(404, "<html>Not Found</html>"),
        Some("conflict") => HttpAnswer::raw(409, r#"{"error":{"code":400,"message":"name taken"}}"#),
        _ => HttpAnswer::raw(500, r#"{"error":{"code":500,"message":"PHP Fatal error"}}"#),
    })
    .await;
    let routes = format!("[[routes]]\naction = \"php/*\"\nhttp = \"{}\"\n", http.url("/handler.php"));
    let _router = TestRouter::start(&setup, &routes).await;
    let edge = TestEdge::start(&setup).await;
    let mut alice = edge.user("alice", &[]).await;

    let cases = [
        ("forbidden", 403, "you are muted"),
        ("invalid", 422, "the handler answered HTTP 422 Unprocessable Entity"),
        ("gone", 404, "the handler answered HTTP 404 Not Found"),
        // The status is the code; the body only says why.
        ("conflict", 409, "name taken"),
        ("crashed", 502, "the handler answered HTTP 500 Internal Server Error"),
    ];
    for (n, (kind, code, message)) in cases.into_iter().enumerate() {
        alice.send_action("php/x", json!(kind), json!(n)).await;
        let error = alice.recv_error("php/x", code).await;
        assert_eq!((error["id"].clone(), error["details"]["message"].clone()), (json!(n), json!(message)), "{kind}");
    }
    alice.expect_silence(SILENCE).await;
}

both_buses!(a_noreply_answer_sends_nothing_back);
async fn a_noreply_answer_sends_nothing_back(setup: BusSetup) {
    let _router = TestRouter::start(&setup, "[[routes]]\naction = \"typing\"\nnats = \"app.typing\"\n").await;
    let mut seen = Recorder::new();
    let tx = seen.sender();
    let _handler = NatsHandler::serve(&setup, "app.typing", move |request: Request<Value>| {
        let _ = tx.send(request.id);
        async { Reply::noreply() }
    })
    .await;
    let edge = TestEdge::start(&setup).await;
    let mut alice = edge.user("alice", &[]).await;

    for id in [json!("t1"), json!(2)] {
        alice.send_action("typing", json!({"on": true}), id.clone()).await;
        assert_eq!(serde_json::to_value(seen.next().await).unwrap(), id);
        alice.expect_silence(SILENCE).await;
        // The session is fine and the next frame is the pong: nothing for
        // the action was queued behind the silence.
        alice.ping(&format!("after-{id}")).await;
    }
}

both_buses!(join_and_leave_effects_apply_before_the_reply);
async fn join_and_leave_effects_apply_before_the_reply(setup: BusSetup) {
    let bus = TestBus::connect(&setup).await;
    let _router = TestRouter::start(&setup, "[[routes]]\naction = \"room/*\"\nnats = \"app.room\"\n").await;
    let _handler = NatsHandler::serve(&setup, "app.room", |request: Request<Value>| async move {
        let room = request.details["room"].as_str().unwrap_or_default().to_owned();
        match request.action.as_str() {
            "room/enter" => Reply::details("in").join(room),
            "room/exit" => Reply::details("out").leave(room),
            _ => Reply::error(404, "no such room action"),
        }
    })
    .await;
    let edge = TestEdge::start(&setup).await;
    let mut tab1 = edge.user("alice", &[]).await;
    let mut tab2 = edge.user("alice", &[]).await;
    let mut witness = edge.user("witness", &["room:7"]).await;

    tab1.send_action("room/enter", json!({"room": "room:7"}), json!(1)).await;
    let reply = tab1.recv_action("room/enter").await;
    assert_eq!((reply["id"].clone(), reply["details"].clone()), (json!(1), json!("in")));
    // Joined by the time of the reply: the very next publish arrives.
    bus.to_group("room:7", r#"{"action":"r","details":1}"#).await;
    assert_eq!(tab1.recv_raw().await, r#"{"action":"r","details":1}"#);
    assert_eq!(witness.recv_raw().await, r#"{"action":"r","details":1}"#);
    // Only the requesting connection joined, not the user's other tab.
    Client::all_silent(&mut [&mut tab1, &mut tab2, &mut witness]).await;

    tab1.send_action("room/exit", json!({"room": "room:7"}), json!(2)).await;
    assert_eq!(tab1.recv_action("room/exit").await["details"], "out");
    bus.to_group("room:7", r#"{"action":"r","details":2}"#).await;
    assert_eq!(witness.recv_raw().await, r#"{"action":"r","details":2}"#);
    Client::all_silent(&mut [&mut tab1, &mut tab2, &mut witness]).await;
}

both_buses!(effects_apply_in_order_so_a_publish_after_a_join_reaches_the_joiner);
/// The most common chat handler: join the room, then say hello to it. The
/// requesting connection gets the reply, then the hello, on every bus.
async fn effects_apply_in_order_so_a_publish_after_a_join_reaches_the_joiner(setup: BusSetup) {
    let _router = TestRouter::start(&setup, "[[routes]]\naction = \"room/*\"\nnats = \"app.room\"\n").await;
    let _handler = NatsHandler::serve(&setup, "app.room", |request: Request<Value>| async move {
        let room = request.details["room"].as_str().unwrap_or_default().to_owned();
        let to_room = Target { groups: vec![room.clone()], ..Target::default() };
        Reply::details("joined").join(room.clone()).publish(to_room, "room/hello", json!({"room": room}))
    })
    .await;
    let edge = TestEdge::start(&setup).await;
    let elsewhere = TestEdge::start(&setup).await;
    let mut alice = edge.user("alice", &[]).await;
    // Many rounds: the hello races the reply on every one (it comes back
    // through the bus while the reply is being written).
    let rooms: Vec<String> = (0..40).map(|n| format!("r{n}")).collect();
    let mut witness = elsewhere.user("witness", &rooms.iter().map(String::as_str).collect::<Vec<_>>()).await;

    // Each room is new to alice's edge: its subscription is made by the join.
    for n in 0..rooms.len() {
        let room = format!("r{n}");
        alice.send_action("room/enter", json!({"room": room}), json!(n)).await;
        let reply = alice.recv().await;
        assert_eq!((reply["action"].clone(), reply["id"].clone()), (json!("room/enter"), json!(n)), "{reply}");
        let hello = alice.recv().await;
        assert_eq!((hello["action"].clone(), hello["details"].clone()), (json!("room/hello"), json!({"room": room})));
        assert_eq!(witness.recv_action("room/hello").await["details"], json!({"room": room}));
    }
    Client::all_silent(&mut [&mut alice, &mut witness]).await;
}

both_buses!(a_publish_effect_reaches_groups_and_users_on_other_edges);
async fn a_publish_effect_reaches_groups_and_users_on_other_edges(setup: BusSetup) {
    let _router = TestRouter::start(&setup, CHAT).await;
    let _handler = NatsHandler::serve(&setup, "app.chat", |request: Request<Value>| async move {
        let from = request.user.clone().unwrap_or_default();
        let to_room = Target { groups: vec!["room:1".into()], ..Target::default() };
        let to_carol = Target { users: vec!["carol".into()], ..Target::default() };
        Reply::details("sent")
            .publish(to_room, "chat/msg", json!({"from": from, "text": request.details["text"]}))
            .publish(to_carol, "chat/dm", json!({"from": from}))
    })
    .await;
    let edge1 = TestEdge::start(&setup).await;
    let edge2 = TestEdge::start(&setup).await;
    let mut alice = edge1.user("alice", &[]).await;
    let mut bob = edge2.user("bob", &["room:1"]).await;
    let mut bob_here = edge1.user("bob", &["room:1"]).await;
    let mut carol = edge2.user("carol", &[]).await;
    let mut dave = edge2.user("dave", &["room:2"]).await;

    alice.send_action("chat/send", json!({"text": "hello"}), json!("m1")).await;
    let reply = alice.recv_action("chat/send").await;
    assert_eq!((reply["id"].clone(), reply["details"].clone()), (json!("m1"), json!("sent")));
    for member in [&mut bob, &mut bob_here] {
        let frame = member.recv_action("chat/msg").await;
        assert_eq!(frame["details"], json!({"from": "alice", "text": "hello"}));
        assert!(frame.get("id").is_none(), "a published frame has no id: {frame}");
    }
    assert_eq!(carol.recv_action("chat/dm").await["details"], json!({"from": "alice"}));
    Client::all_silent(&mut [&mut alice, &mut bob, &mut bob_here, &mut carol, &mut dave]).await;
}

both_buses!(a_disconnect_effect_closes_the_connection_after_the_reply);
async fn a_disconnect_effect_closes_the_connection_after_the_reply(setup: BusSetup) {
    let _router = TestRouter::start(&setup, "[[routes]]\naction = \"account/*\"\nnats = \"app.account\"\n").await;
    let _handler = NatsHandler::serve(&setup, "app.account", |request: Request<Value>| async move {
        match request.action.as_str() {
            "account/delete" => Reply::details("deleted").disconnect(4009, "account deleted"),
            _ => Reply::details("fine"),
        }
    })
    .await;
    let edge = TestEdge::start(&setup).await;
    let mut alice = edge.user("alice", &[]).await;
    let mut other_tab = edge.user("alice", &[]).await;

    alice.send_action("account/delete", Value::Null, json!("d1")).await;
    let reply = alice.recv_action("account/delete").await;
    assert_eq!((reply["id"].clone(), reply["details"].clone()), (json!("d1"), json!("deleted")));
    assert_eq!(alice.expect_close(4009).await, "account deleted");
    // Only the requesting connection.
    other_tab.send_action("account/get", Value::Null, json!(1)).await;
    assert_eq!(other_tab.recv_action("account/get").await["details"], "fine");
    other_tab.expect_silence(SILENCE).await;
}

both_buses!(an_answer_after_the_route_timeout_is_dropped);
async fn an_answer_after_the_route_timeout_is_dropped(setup: BusSetup) {
    let bus = TestBus::connect(&setup).await;
    let _router =
        TestRouter::start(&setup, "[[routes]]\naction = \"late/*\"\nnats = \"app.late\"\ntimeout_ms = 150\n").await;
    let mut raw =
        RawHandler::start(&bus, "app.late", |_| vec![(Duration::from_millis(600), r#"{"details":"late"}"#.into())])
            .await;
    let edge = patient_edge(&setup).await;
    let mut alice = edge.user("alice", &[]).await;

    alice.send_action("late/x", Value::Null, json!("l1")).await;
    raw.next_request().await;
    assert_eq!(alice.recv_error("late/x", 504).await["id"], "l1");
    // The late answer is sent, and goes nowhere.
    assert_eventually!(raw.answers_sent() == 1, Duration::from_secs(5));
    alice.expect_silence(SILENCE).await;
    alice.ping("after").await;
    alice.expect_silence(SILENCE).await;
}

both_buses!(a_second_answer_to_the_same_request_is_dropped);
async fn a_second_answer_to_the_same_request_is_dropped(setup: BusSetup) {
    let bus = TestBus::connect(&setup).await;
    let _router = TestRouter::start(&setup, "[[routes]]\naction = \"dup/*\"\nnats = \"app.dup\"\n").await;
    let raw = RawHandler::start(&bus, "app.dup", |request| {
        let first = json!({"details": {"answer": 1, "echo": request["details"]}}).to_string();
        let second = json!({"details": {"answer": 2, "echo": request["details"]}}).to_string();
        vec![(Duration::ZERO, first), (Duration::from_millis(20), second)]
    })
    .await;
    let edge = TestEdge::start(&setup).await;
    let mut alice = edge.user("alice", &[]).await;

    for (n, id) in [json!("x"), json!(7)].into_iter().enumerate() {
        alice.send_action("dup/x", json!(n), id.clone()).await;
        let reply = alice.recv_action("dup/x").await;
        assert_eq!(reply["id"], id);
        assert_eq!(reply["details"], json!({"answer": 1, "echo": n}));
        assert_eventually!(raw.answers_sent() == 2 * (n + 1), Duration::from_secs(5));
        alice.expect_silence(SILENCE).await;
    }
    alice.ping("after").await;
    alice.expect_silence(SILENCE).await;
}

both_buses!(routers_share_the_actions_through_their_queue_group_and_a_stopped_one_costs_no_request);
async fn routers_share_the_actions_through_their_queue_group_and_a_stopped_one_costs_no_request(setup: BusSetup) {
    const REQUESTS: &str = "herald_router_requests_total";
    let mut first = TestRouter::start(&setup, CHAT).await;
    let second = TestRouter::start(&setup, CHAT).await;
    let seen = Recorder::new();
    let _chat = echo_handler(&setup, "app.chat", &seen).await;
    let edge = TestEdge::start(&setup).await;
    let mut alice = edge.user("alice", &[]).await;

    const SHARED: u64 = 40;
    for id in 0..SHARED {
        alice.send_action("chat/send", json!(id), json!(id)).await;
        assert_eq!(alice.recv_action("chat/send").await["details"], json!({"echo": id, "by": "app.chat"}));
    }
    let (a, b) = (first.metric(REQUESTS).await, second.metric(REQUESTS).await);
    assert_eq!(a + b, SHARED, "every action was handled by exactly one router");
    // A queue group gives each message to a member picked at random: 40
    // actions all on one of two routers happens once in 2^39.
    assert!(a > 0 && b > 0, "the routers did not share the actions: {a} and {b}");

    // A router that stops leaves the queue group: the other takes every
    // later action.
    first.shutdown().await;
    const AFTER: u64 = 20;
    for id in SHARED..SHARED + AFTER {
        alice.send_action("chat/send", json!(id), json!(id)).await;
        assert_eq!(alice.recv_action("chat/send").await["id"], id);
    }
    assert_eq!(second.metric(REQUESTS).await, b + AFTER, "the router left handled every later action");
    alice.expect_silence(SILENCE).await;
}

both_buses!(actions_beyond_the_per_connection_cap_get_429_and_other_connections_are_unaffected);
async fn actions_beyond_the_per_connection_cap_get_429_and_other_connections_are_unaffected(setup: BusSetup) {
    let _router =
        TestRouter::start(&setup, "[[routes]]\naction = \"slow/*\"\nnats = \"app.slow\"\ntimeout_ms = 5000\n").await;
    let _handler = NatsHandler::serve(&setup, "app.slow", |request: Request<Value>| async move {
        tokio::time::sleep(Duration::from_millis(800)).await;
        Reply::details(request.details)
    })
    .await;
    let edge = TestEdge::builder(&setup)
        .limits(|l| l.max_inflight_actions = 2)
        .timing(|t| t.action_timeout = Duration::from_secs(5))
        .spawn()
        .await;
    let mut alice = edge.user("alice", &[]).await;
    let mut bob = edge.user("bob", &[]).await;

    for id in 1..=3 {
        alice.send_action("slow/op", json!(id), json!(id)).await;
    }
    // The third is refused at once, ahead of the two answers.
    let refused = alice.recv_error("slow/op", 429).await;
    assert_eq!(refused["id"], 3);
    // Another connection's actions are not counted against alice's.
    bob.send_action("slow/op", json!("b1"), json!("b1")).await;
    bob.send_action("slow/op", json!("b2"), json!("b2")).await;
    let mut bob_ids = Vec::new();
    for _ in 0..2 {
        let reply = bob.recv_action("slow/op").await;
        assert_eq!(reply["details"], reply["id"]);
        bob_ids.push(reply["id"].as_str().unwrap().to_owned());
    }
    bob_ids.sort();
    assert_eq!(bob_ids, ["b1", "b2"]);
    let mut ids = Vec::new();
    for _ in 0..2 {
        let reply = alice.recv_action("slow/op").await;
        assert_eq!(reply["details"], reply["id"]);
        ids.push(reply["id"].as_u64().unwrap());
    }
    ids.sort();
    assert_eq!(ids, [1, 2]);
    // Once answered, the slots are free again.
    alice.send_action("slow/op", json!(4), json!(4)).await;
    assert_eq!(alice.recv_action("slow/op").await["id"], 4);
    Client::all_silent(&mut [&mut alice, &mut bob]).await;
}

both_buses!(the_default_route_takes_every_action_no_other_route_matches);
async fn the_default_route_takes_every_action_no_other_route_matches(setup: BusSetup) {
    let routes = "[[routes]]\naction = \"chat/*\"\nnats = \"app.chat\"\n\n\
                  [[routes]]\naction = \"$default\"\nnats = \"app.fallback\"\n";
    let _router = TestRouter::start(&setup, routes).await;
    let mut chat_seen = Recorder::new();
    let mut fallback_seen = Recorder::new();
    let _chat = echo_handler(&setup, "app.chat", &chat_seen).await;
    let _fallback = echo_handler(&setup, "app.fallback", &fallback_seen).await;
    let edge = TestEdge::start(&setup).await;
    let mut alice = edge.user("alice", &[]).await;

    alice.send_action("chat/send", json!(1), json!(1)).await;
    assert_eq!(alice.recv_action("chat/send").await["details"]["by"], "app.chat");
    assert_eq!(chat_seen.next().await.action, "chat/send");
    for (id, action) in [(2, "news/latest"), (3, "chat"), (4, "anything at all")] {
        alice.send_action(action, json!(id), json!(id)).await;
        let reply = alice.recv_action(action).await;
        assert_eq!(reply["id"], id);
        assert_eq!(reply["details"], json!({"echo": id, "by": "app.fallback"}));
        assert_eq!(fallback_seen.next().await.action, action);
    }
    // System actions are never routed, not even to $default.
    alice.send_action("$whatever", Value::Null, json!(5)).await;
    alice.recv_error("$whatever", 400).await;
    chat_seen.expect_nothing(SILENCE).await;
    fallback_seen.expect_nothing(Duration::ZERO).await;
    alice.expect_silence(SILENCE).await;
}

both_buses!(the_join_route_approves_and_denies_joins_the_token_does_not_allow);
async fn the_join_route_approves_and_denies_joins_the_token_does_not_allow(setup: BusSetup) {
    let bus = TestBus::connect(&setup).await;
    let mut router = TestRouter::start(&setup, "[[routes]]\naction = \"$join\"\nnats = \"auth.join\"\n").await;
    let mut seen = Recorder::new();
    let tx = seen.sender();
    // Approves the rooms that are open, denies the others.
    let _approver = NatsHandler::serve(&setup, "auth.join", move |request: Request<Value>| {
        let _ = tx.send(request.clone());
        async move {
            match request.details["group"].as_str() {
                Some(group) if group.starts_with("open:") => Reply::empty(),
                _ => Reply::error(403, "that room is closed"),
            }
        }
    })
    .await;
    let _denier =
        NatsHandler::serve(&setup, "auth.join.strict", |_: Request<Value>| async { Reply::error(403, "no") }).await;
    let edge = TestEdge::start(&setup).await;
    let mut alice = edge.client(&Token::user("alice").groups(["lobby"]).join(["mine:*"]).hs256()).await;
    let mut witness = edge.user("witness", &["open:1", "closed:1", "mine:1"]).await;

    // Allowed by the token: the handler is not asked.
    alice.send_action("$join", json!({"group": "mine:1"}), json!("j0")).await;
    assert_eq!(alice.recv_action("$join").await["details"], json!({"group": "mine:1"}));
    // Not allowed by the token, approved by the handler.
    alice.send_action("$join", json!({"group": "open:1"}), json!("j1")).await;
    let reply = alice.recv_action("$join").await;
    assert_eq!((reply["id"].clone(), reply["details"].clone()), (json!("j1"), json!({"group": "open:1"})));
    let request = seen.next().await;
    assert_eq!(request.action, "$join");
    assert_eq!(request.details, json!({"group": "open:1"}));
    assert_eq!(request.user.as_deref(), Some("alice"));
    assert_eq!(request.conn, alice.conn());
    // Denied by the handler, with its code.
    alice.send_action("$join", json!({"group": "closed:1"}), json!("j2")).await;
    let error = alice.recv_error("$join", 403).await;
    assert_eq!(error["id"], "j2");
    assert_eq!(seen.next().await.details, json!({"group": "closed:1"}));

    for group in ["open:1", "mine:1"] {
        bus.to_group(group, &json!({"action": "g", "details": group}).to_string()).await;
        assert_eq!(alice.recv_action("g").await["details"], group);
        assert_eq!(witness.recv_action("g").await["details"], group);
    }
    bus.to_group("closed:1", r#"{"action":"g","details":"closed:1"}"#).await;
    assert_eq!(witness.recv_action("g").await["details"], "closed:1");
    Client::all_silent(&mut [&mut alice, &mut witness]).await;

    // $leave of a group the token does not name goes to the same route.
    alice.send_action("$leave", json!({"group": "open:1"}), json!("l1")).await;
    assert_eq!(alice.recv_action("$leave").await["details"], json!({"group": "open:1"}));
    let request = seen.next().await;
    assert_eq!((request.action.as_str(), request.details.clone()), ("$leave", json!({"group": "open:1"})));
    bus.to_group("open:1", r#"{"action":"g","details":"after leave"}"#).await;
    assert_eq!(witness.recv_action("g").await["details"], "after leave");
    Client::all_silent(&mut [&mut alice, &mut witness]).await;

    // Another handler on the route denies what the first approved.
    router.write_routes("[[routes]]\naction = \"$join\"\nnats = \"auth.join.strict\"\n");
    router.reload().expect("reload");
    alice.send_action("$join", json!({"group": "open:1"}), json!("j3")).await;
    assert_eq!(alice.recv_error("$join", 403).await["id"], "j3");
    seen.expect_nothing(SILENCE).await;
    bus.to_group("open:1", r#"{"action":"g","details":"denied"}"#).await;
    assert_eq!(witness.recv_action("g").await["details"], "denied");
    Client::all_silent(&mut [&mut alice, &mut witness]).await;
    router.shutdown().await;
}

both_buses!(without_a_join_route_a_join_the_token_does_not_allow_is_403);
async fn without_a_join_route_a_join_the_token_does_not_allow_is_403(setup: BusSetup) {
    let bus = TestBus::connect(&setup).await;
    let _router = TestRouter::start(&setup, "[[routes]]\naction = \"$default\"\nnats = \"app.fallback\"\n").await;
    let mut seen = Recorder::new();
    let _fallback = echo_handler(&setup, "app.fallback", &seen).await;
    let edge = TestEdge::start(&setup).await;
    let mut alice = edge.client(&Token::user("alice").join(["mine:*"]).hs256()).await;
    let mut witness = edge.user("witness", &["admins"]).await;

    alice.send_action("$join", json!({"group": "admins"}), json!(1)).await;
    assert_eq!(alice.recv_error("$join", 403).await["id"], 1);
    alice.send_action("$leave", json!({"group": "admins"}), json!(2)).await;
    assert_eq!(alice.recv_error("$leave", 403).await["id"], 2);
    // $default does not stand in for $join.
    seen.expect_nothing(SILENCE).await;
    bus.to_group("admins", r#"{"action":"secret"}"#).await;
    assert_eq!(witness.recv_raw().await, r#"{"action":"secret"}"#);
    Client::all_silent(&mut [&mut alice, &mut witness]).await;
    // What the token allows still works.
    alice.send_action("$join", json!({"group": "mine:2"}), json!(3)).await;
    assert_eq!(alice.recv_action("$join").await["id"], 3);
}

both_buses!(disconnect_notices_reach_the_disconnect_handler);
async fn disconnect_notices_reach_the_disconnect_handler(setup: BusSetup) {
    let bus = TestBus::connect(&setup).await;
    let _router = TestRouter::start(&setup, "[[routes]]\naction = \"$disconnect\"\nnats = \"app.gone\"\n").await;
    let mut seen = Recorder::new();
    let tx = seen.sender();
    let _handler = NatsHandler::serve(&setup, "app.gone", move |request: Request<Value>| {
        let _ = tx.send(request);
        async { Reply::empty() }
    })
    .await;
    let edge = TestEdge::start(&setup).await;
    let mut alice = edge.user("alice", &["room:1", "lobby"]).await;
    let mut bob = edge.user("bob", &[]).await;

    alice.close(1000, "see you").await;
    let notice = seen.next().await;
    assert_eq!(notice.action, "$disconnect");
    assert_eq!(notice.details, json!({"code": 1000, "reason": "see you"}));
    assert_eq!(notice.conn, alice.conn());
    assert_eq!(notice.user.as_deref(), Some("alice"));
    let mut groups = notice.groups.clone();
    groups.sort();
    assert_eq!(groups, ["lobby", "room:1"]);
    assert!(notice.id.is_none());

    // A backend's disconnect, with its code and reason.
    bus.control_conn(bob.conn(), json!({"op": "disconnect", "code": 4005, "reason": "kicked"})).await;
    bob.expect_close(4005).await;
    let notice = seen.next().await;
    assert_eq!(notice.details, json!({"code": 4005, "reason": "kicked"}));
    assert_eq!((notice.conn.as_str(), notice.user.as_deref()), (bob.conn(), Some("bob")));
    seen.expect_nothing(SILENCE).await;
}

both_buses!(disconnect_notices_carry_the_connections_claims);
/// A `$disconnect` handler gets the claims every other handler gets (to log
/// out a PHP session, say), from a token or from `$connect`.
async fn disconnect_notices_carry_the_connections_claims(setup: BusSetup) {
    let php = HttpHandler::start(|_| HttpAnswer::json(json!({"user": "u1", "claims": {"session": "sess-u1"}}))).await;
    let routes = format!(
        "[[routes]]\naction = \"$disconnect\"\nnats = \"app.gone\"\n\n\
         [[routes]]\naction = \"$connect\"\nhttp = \"{}\"\n",
        php.url("/connect.php")
    );
    let _router = TestRouter::start(&setup, &routes).await;
    let mut seen = Recorder::new();
    let tx = seen.sender();
    let _handler = NatsHandler::serve(&setup, "app.gone", move |request: Request<Value>| {
        let _ = tx.send(request);
        async { Reply::empty() }
    })
    .await;
    let edge = TestEdge::start(&setup).await;
    let mut alice = edge.client(&Token::user("alice").claim("plan", json!("pro")).hs256()).await;
    let mut u1 = Client::open(&edge.ws_url(None)).await;

    alice.close(1000, "bye").await;
    let notice = seen.next().await;
    assert_eq!((notice.conn.as_str(), notice.user.as_deref()), (alice.conn(), Some("alice")));
    assert_eq!(Value::Object(notice.claims), json!({"plan": "pro"}));
    u1.close(1000, "bye").await;
    let notice = seen.next().await;
    assert_eq!((notice.conn.as_str(), notice.user.as_deref()), (u1.conn(), Some("u1")));
    assert_eq!(Value::Object(notice.claims), json!({"session": "sess-u1"}));
    seen.expect_nothing(SILENCE).await;
}

both_buses!(disconnect_notices_beyond_the_routers_bound_are_dropped_and_counted);
/// A router works on at most `max_inflight` `$disconnect` notices at once;
/// one more ending connection gets none, and `/metrics` counts it.
async fn disconnect_notices_beyond_the_routers_bound_are_dropped_and_counted(setup: BusSetup) {
    const DROPPED: &str = "herald_router_disconnect_notices_dropped_total";
    let router = TestRouter::builder(&setup)
        .routes("[[routes]]\naction = \"$disconnect\"\nnats = \"app.gone\"\n")
        .config(|config| config.max_inflight = 1)
        .spawn()
        .await;
    let mut seen = Recorder::new();
    let tx = seen.sender();
    // Holds the one notice the router may have on its way.
    let _handler = NatsHandler::serve(&setup, "app.gone", move |request: Request<Value>| {
        let _ = tx.send(request.conn);
        async {
            tokio::time::sleep(Duration::from_secs(2)).await;
            Reply::empty()
        }
    })
    .await;
    let edge = TestEdge::start(&setup).await;
    let mut clients = Vec::new();
    for user in ["a", "b", "c"] {
        clients.push(edge.user(user, &[]).await);
    }
    assert_eq!(router.metric(DROPPED).await, 0);

    for client in &mut clients {
        client.close(1000, "bye").await;
    }
    let noticed = seen.next().await;
    assert!(clients.iter().any(|client| client.conn() == noticed), "a notice for {noticed}");
    assert_eventually!(router.metric(DROPPED).await == 2, Duration::from_secs(5));
    assert_eq!(router.metric("herald_router_disconnect_notices_total").await, 1);
    seen.expect_nothing(Duration::from_secs(3)).await;
}

both_buses!(an_sdk_handler_that_stops_mid_burst_answers_every_request_it_was_given);
/// A handler that stops leaves its queue group, and the requests already on
/// their way to it are answered, not left to time out: a burst keeps many
/// on the wire while the bus takes its leaving (async-nats 0.51's drain
/// dropped those: ADR 0033). The other copy answers the rest.
async fn an_sdk_handler_that_stops_mid_burst_answers_every_request_it_was_given(setup: BusSetup) {
    const BURST: usize = 2_000;
    let answer = |_: Request<Value>| async { Reply::details(Value::Null) };
    let mut leaving = NatsHandler::serve(&setup, "app.burst", answer).await;
    let _staying = NatsHandler::serve(&setup, "app.burst", answer).await;
    let bus = TestBus::connect(&setup).await;
    // The SDK answers a payload that is not a handler request with a 400
    // of its own: an answer all the same, through the same drain.
    let mut requests = tokio::task::JoinSet::new();
    for _ in 0..BURST {
        let bus = bus.bus().clone();
        requests.spawn(async move {
            bus.request("app.burst".to_owned(), "not a handler request".into(), Duration::from_secs(5)).await
        });
    }
    leaving.stop().await;
    let mut unanswered = Vec::new();
    while let Some(answer) = requests.join_next().await {
        if let Err(e) = answer.unwrap() {
            unanswered.push(e.to_string());
        }
    }
    assert!(
        unanswered.is_empty(),
        "{} of {BURST} requests unanswered, e.g. {:?}",
        unanswered.len(),
        unanswered.first()
    );
}
