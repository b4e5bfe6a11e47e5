//! Route reloads in a running router (what SIGHUP does in `herald router`;
//! the process itself is in `router_process.rs`): a new route answers at
//! once, a broken routes file is refused as a whole and the old table keeps
//! serving, and a request in flight during a reload completes.

use std::time::Duration;

use herald_handler::{Reply, Request};
use herald_router::RouterError;
use herald_tests::{BusSetup, Client, NatsHandler, Recorder, SILENCE, TestEdge, TestRouter, both_buses};
use serde_json::{Value, json};

const CHAT: &str = "[[routes]]\naction = \"chat/*\"\nnats = \"app.chat\"\n";
const CHAT_AND_NEWS: &str =
    "[[routes]]\naction = \"chat/*\"\nnats = \"app.chat\"\n\n[[routes]]\naction = \"news/*\"\nnats = \"app.news\"\n";

/// An SDK handler on `subject` that answers with its subject.
async fn named_handler(setup: &BusSetup, subject: &'static str) -> NatsHandler {
    NatsHandler::serve(setup, subject, move |_: Request<Value>| async move { Reply::details(subject) }).await
}

/// Sends `action` and expects the reply of `handler`.
async fn answered_by(client: &mut Client, action: &str, handler: &str) {
    client.send_action(action, Value::Null, json!(action)).await;
    let reply = client.recv_action(action).await;
    assert_eq!((reply["id"].clone(), reply["details"].clone()), (json!(action), json!(handler)), "{action}");
}

async fn not_routed(client: &mut Client, action: &str) {
    client.send_action(action, Value::Null, json!(action)).await;
    assert_eq!(client.recv_error(action, 404).await["id"], action);
}

both_buses!(a_reload_adds_a_route_that_answers_at_once);
async fn a_reload_adds_a_route_that_answers_at_once(setup: BusSetup) {
    let router = TestRouter::start(&setup, CHAT).await;
    let _chat = named_handler(&setup, "app.chat").await;
    let _news = named_handler(&setup, "app.news").await;
    let edge = TestEdge::start(&setup).await;
    let mut alice = edge.user("alice", &[]).await;

    answered_by(&mut alice, "chat/send", "app.chat").await;
    not_routed(&mut alice, "news/latest").await;

    router.write_routes(CHAT_AND_NEWS);
    router.reload().expect("a good routes file reloads");
    answered_by(&mut alice, "news/latest", "app.news").await;
    answered_by(&mut alice, "chat/send", "app.chat").await;
    assert_eq!(router.metric("herald_router_route_reloads_total").await, 1);
    assert_eq!(router.metric("herald_router_route_reload_failures_total").await, 0);

    // And a reload can take a route away again.
    router.write_routes(CHAT);
    router.reload().expect("reload");
    not_routed(&mut alice, "news/latest").await;
    answered_by(&mut alice, "chat/send", "app.chat").await;
    alice.expect_silence(SILENCE).await;
}

both_buses!(a_broken_routes_file_is_refused_and_the_old_table_keeps_serving);
async fn a_broken_routes_file_is_refused_and_the_old_table_keeps_serving(setup: BusSetup) {
    // No webhook secret: a file with an HTTP route must be refused too.
    let router = TestRouter::builder(&setup).routes(CHAT).no_webhook_secret().spawn().await;
    let _chat = named_handler(&setup, "app.chat").await;
    let _news = named_handler(&setup, "app.news").await;
    let edge = TestEdge::start(&setup).await;
    let mut alice = edge.user("alice", &[]).await;

    // Each broken file also has a good news route: a bad file never
    // half-loads.
    let news = "[[routes]]\naction = \"news/*\"\nnats = \"app.news\"\n";
    let broken = [
        (format!("{news}[[routes]]\naction = = \"x\"\n"), "not valid TOML"),
        (format!("{news}[[routes]]\naction = \"x\"\nnats = \"app.x\"\ntimeout = 5\n"), "not valid TOML"),
        (format!("{news}[[routes]]\naction = \"x\"\nnats = \"app.x\"\ntimeout_ms = 0\n"), "timeout_ms"),
        (format!("{news}[[routes]]\naction = \"a*b\"\nnats = \"app.x\"\n"), "may only end a pattern"),
        (format!("{news}[[routes]]\naction = \"x\"\nnats = \"app.>\"\n"), "not a NATS subject"),
        (format!("{news}[[routes]]\naction = \"x\"\n"), "give a handler"),
        (format!("{news}[[routes]]\naction = \"$ping\"\nnats = \"app.x\"\n"), "special routes"),
        (format!("{news}[[routes]]\naction = \"x\"\nhttp = \"http://127.0.0.1:1/h\"\n"), "HERALD_WEBHOOK_SECRET"),
    ];
    for (n, (text, why)) in broken.iter().enumerate() {
        router.write_routes(text);
        let error = router.reload().expect_err("a broken routes file must be refused");
        assert!(error.to_string().contains(why), "file {n}: {error} (expected it to say {why:?})");
        answered_by(&mut alice, "chat/send", "app.chat").await;
        not_routed(&mut alice, "news/latest").await;
    }
    // A missing file too.
    std::fs::remove_file(router.routes_file().path()).unwrap();
    let error = router.reload().expect_err("a missing routes file must be refused");
    assert!(matches!(error, RouterError::Routes(_)), "{error:?}");
    assert!(error.to_string().contains("cannot read routes file"), "{error}");
    answered_by(&mut alice, "chat/send", "app.chat").await;
    let failures = router.metric("herald_router_route_reload_failures_total").await;
    assert_eq!(failures, broken.len() as u64 + 1);
    assert_eq!(router.metric("herald_router_route_reloads_total").await, 0);

    // A good file is taken again afterwards.
    router.write_routes(CHAT_AND_NEWS);
    router.reload().expect("reload");
    answered_by(&mut alice, "news/latest", "app.news").await;
    alice.expect_silence(SILENCE).await;
}

both_buses!(a_request_in_flight_during_a_reload_completes);
async fn a_request_in_flight_during_a_reload_completes(setup: BusSetup) {
    let router =
        TestRouter::start(&setup, "[[routes]]\naction = \"slow/*\"\nnats = \"app.slow\"\ntimeout_ms = 5000\n").await;
    let mut started = Recorder::new();
    let tx = started.sender();
    let _slow = NatsHandler::serve(&setup, "app.slow", move |request: Request<Value>| {
        let _ = tx.send(request.details.clone());
        async move {
            tokio::time::sleep(Duration::from_millis(700)).await;
            Reply::details(json!({"done": request.details}))
        }
    })
    .await;
    let _news = named_handler(&setup, "app.news").await;
    let edge = TestEdge::builder(&setup).timing(|t| t.action_timeout = Duration::from_secs(5)).spawn().await;
    let mut alice = edge.user("alice", &[]).await;

    alice.send_action("slow/op", json!(1), json!("inflight")).await;
    assert_eq!(started.next().await, 1, "the handler has the request");
    // The new table drops the route the request is on.
    router.write_routes("[[routes]]\naction = \"news/*\"\nnats = \"app.news\"\n");
    router.reload().expect("reload");
    let reply = alice.recv_action("slow/op").await;
    assert_eq!((reply["id"].clone(), reply["details"].clone()), (json!("inflight"), json!({"done": 1})));
    // New requests use the new table.
    not_routed(&mut alice, "slow/op").await;
    answered_by(&mut alice, "news/latest", "app.news").await;
    started.expect_nothing(SILENCE).await;
    alice.expect_silence(SILENCE).await;
}
