//! The `herald router` process: SIGHUP reloads its routes file (a broken
//! one is refused and the old table keeps serving; a request in flight
//! completes), routers share the load through their queue group, one killed
//! with SIGKILL costs no later request, and SIGTERM drains.

use std::time::Duration;

use herald_handler::{Reply, Request};
use herald_tests::{
    Client, HeraldProcess, NatsHandler, NatsServer, Recorder, RoutesFile, SILENCE, TEST_API_KEY, TestEdge,
    assert_eventually,
};
use serde_json::{Value, json};

const CHAT: &str = "[[routes]]\naction = \"chat/*\"\nnats = \"app.chat\"\n";
const REQUESTS: &str = "herald_router_requests_total";

async fn router(nats: &NatsServer, routes: &RoutesFile) -> HeraldProcess {
    let router = HeraldProcess::router(nats, TEST_API_KEY).env("HERALD_ROUTES_FILE", routes.path_str()).spawn().await;
    assert_eq!(router.http("/healthz").await.0, 200);
    assert_eventually!(router.http("/readyz").await.0 == 200, Duration::from_secs(10));
    router
}

/// An SDK handler on `subject` that answers with its subject and the
/// request's details.
async fn echo(nats: &NatsServer, subject: &'static str) -> NatsHandler {
    NatsHandler::serve(nats, subject, move |request: Request<Value>| async move {
        Reply::details(json!({"by": subject, "echo": request.details}))
    })
    .await
}

/// Sends `action` with `id` and expects the reply of `handler`.
async fn answered_by(client: &mut Client, action: &str, id: Value, handler: &str) {
    client.send_action(action, id.clone(), id.clone()).await;
    let reply = client.recv().await;
    assert_eq!(reply["action"], action, "{action} {id}: expected a reply, got {reply}");
    assert_eq!(reply["id"], id);
    assert_eq!(reply["details"], json!({"by": handler, "echo": id}));
}

async fn not_routed(client: &mut Client, action: &str) {
    client.send_action(action, Value::Null, json!(action)).await;
    assert_eq!(client.recv_error(action, 404).await["id"], action);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_the_routes_file_and_a_broken_one_keeps_the_old_table() {
    let nats = NatsServer::start().await;
    let routes = RoutesFile::new(CHAT);
    let mut router = router(&nats, &routes).await;
    let _chat = echo(&nats, "app.chat").await;
    let _news = echo(&nats, "app.news").await;
    let mut started = Recorder::new();
    let tx = started.sender();
    let _slow = NatsHandler::serve(&nats, "app.slow", move |request: Request<Value>| {
        let _ = tx.send(request.details.clone());
        async move {
            tokio::time::sleep(Duration::from_millis(800)).await;
            Reply::details(json!({"by": "app.slow", "echo": request.details}))
        }
    })
    .await;
    let edge = TestEdge::builder(&nats).timing(|t| t.action_timeout = Duration::from_secs(5)).spawn().await;
    let mut alice = edge.user("alice", &[]).await;

    answered_by(&mut alice, "chat/send", json!(1), "app.chat").await;
    not_routed(&mut alice, "news/latest").await;

    // A new route answers once the reload is done.
    routes.write(&format!(
        "{CHAT}\n[[routes]]\naction = \"news/*\"\nnats = \"app.news\"\n\n\
         [[routes]]\naction = \"slow/*\"\nnats = \"app.slow\"\ntimeout_ms = 5000\n"
    ));
    router.sighup();
    assert_eventually!(router.metric("herald_router_route_reloads_total").await == 1, Duration::from_secs(5));
    // The log line follows the metric.
    assert_eventually!(router.lines_containing("routes reloaded") == 1, Duration::from_secs(5));
    answered_by(&mut alice, "news/latest", json!(2), "app.news").await;
    answered_by(&mut alice, "chat/send", json!(3), "app.chat").await;

    // A broken file is refused, said so, and changes nothing.
    routes.write("[[routes]]\naction = \"news/*\"\nnats = \"app.news\"\ntimeout_ms = 0\n");
    router.sighup();
    assert_eventually!(router.metric("herald_router_route_reload_failures_total").await == 1, Duration::from_secs(5));
    assert_eventually!(router.lines_containing("routes reload refused") == 1, Duration::from_secs(5));
    answered_by(&mut alice, "chat/send", json!(4), "app.chat").await;
    answered_by(&mut alice, "news/latest", json!(5), "app.news").await;
    routes.write("this is [not TOML");
    router.sighup();
    assert_eventually!(router.metric("herald_router_route_reload_failures_total").await == 2, Duration::from_secs(5));
    answered_by(&mut alice, "chat/send", json!(6), "app.chat").await;

    // A request in flight during a reload completes, though the new table
    // drops its route.
    alice.send_action("slow/op", json!(7), json!(7)).await;
    assert_eq!(started.next().await, 7);
    routes.write(CHAT);
    router.sighup();
    assert_eventually!(router.metric("herald_router_route_reloads_total").await == 2, Duration::from_secs(5));
    let reply = alice.recv_action("slow/op").await;
    assert_eq!((reply["id"].clone(), reply["details"].clone()), (json!(7), json!({"by": "app.slow", "echo": 7})));
    not_routed(&mut alice, "news/latest").await;
    not_routed(&mut alice, "slow/op").await;
    alice.expect_silence(SILENCE).await;

    assert_eq!(router.metric("herald_router_route_reloads_total").await, 2, "{}", router.output());
    router.sigterm();
    let status = router.wait(Duration::from_secs(15)).await;
    assert_eq!(status.code(), Some(0), "herald router must exit 0 after SIGTERM; output:\n{}", router.output());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_routers_share_the_load_and_one_killed_with_sigkill_costs_no_later_request() {
    let nats = NatsServer::start_monitored().await;
    let routes = RoutesFile::new(CHAT);
    let first = router(&nats, &routes).await;
    let before_second = nats.connections().await;
    let mut second = router(&nats, &routes).await;
    // Ready means connected: the bus's connection and the queue members'.
    let its_connections = nats.connections().await - before_second;
    let _chat = echo(&nats, "app.chat").await;
    let edge = TestEdge::start(&nats).await;
    let mut alice = edge.user("alice", &[]).await;

    const SHARED: u64 = 40;
    for i in 0..SHARED {
        answered_by(&mut alice, "chat/send", json!(i), "app.chat").await;
    }
    let (a, b) = (first.metric(REQUESTS).await, second.metric(REQUESTS).await);
    assert_eq!(a + b, SHARED, "every request was handled by exactly one router");
    // The queue group picks at random: 40 requests all on one of two
    // routers happens once in 2^39.
    assert!(a > 0 && b > 0, "the load was not shared: {a} and {b}");

    let connections = nats.connections().await;
    second.sigkill().await;
    // Gone for NATS too (the kernel closed its socket), so the queue group
    // no longer has it.
    assert_eventually!(nats.connections().await == connections - its_connections, Duration::from_secs(5));
    const AFTER: u64 = 100;
    for i in 0..AFTER {
        answered_by(&mut alice, "chat/send", json!(format!("after-{i}")), "app.chat").await;
    }
    assert_eq!(first.metric(REQUESTS).await, a + AFTER, "the survivor handled every later request");
    alice.expect_silence(SILENCE).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_a_router_the_requests_it_has_complete_and_the_others_take_new_ones() {
    let nats = NatsServer::start().await;
    let routes = RoutesFile::new("[[routes]]\naction = \"slow/*\"\nnats = \"app.slow\"\ntimeout_ms = 5000\n");
    let mut started = Recorder::new();
    let tx = started.sender();
    let _slow = NatsHandler::serve(&nats, "app.slow", move |request: Request<Value>| {
        let _ = tx.send(request.details.clone());
        async move {
            let wait = request.details["wait_ms"].as_u64().unwrap_or(0);
            tokio::time::sleep(Duration::from_millis(wait)).await;
            Reply::details(json!({"by": "app.slow", "echo": request.details}))
        }
    })
    .await;
    let edge = TestEdge::builder(&nats).timing(|t| t.action_timeout = Duration::from_secs(5)).spawn().await;
    let mut alice = edge.user("alice", &[]).await;

    // Each round drains the only router while a request is in flight on
    // it, with a new router started to take over: the request in flight
    // must be answered, and so must every request sent meanwhile. Several
    // rounds, because a lost answer is a race with the process's exit.
    let mut draining = router(&nats, &routes).await;
    for round in 0..5 {
        let inflight = format!("inflight-{round}");
        let slow = json!({"wait_ms": 500, "round": round});
        alice.send_action("slow/op", slow.clone(), json!(inflight)).await;
        assert_eq!(started.next().await, slow);
        let next = router(&nats, &routes).await;

        draining.sigterm();
        let mut inflight_answered = false;
        let check_inflight = |reply: &Value, answered: &mut bool| {
            assert_eq!(reply["action"], "slow/op", "round {round}: the request in flight failed: {reply}");
            assert_eq!(reply["details"]["echo"], slow, "{reply}");
            assert!(!*answered, "the request in flight was answered twice");
            *answered = true;
        };
        for i in 0..10 {
            let details = json!({"wait_ms": 0, "round": round, "n": i});
            alice.send_action("slow/op", details.clone(), json!(i)).await;
            loop {
                let reply = alice.recv().await;
                if reply["id"] == inflight.as_str() {
                    check_inflight(&reply, &mut inflight_answered);
                    continue;
                }
                assert_eq!(reply["action"], "slow/op", "round {round}: a request during the drain failed: {reply}");
                assert_eq!((reply["id"].clone(), reply["details"]["echo"].clone()), (json!(i), details));
                break;
            }
            started.next().await;
        }
        let status = draining.wait(Duration::from_secs(15)).await;
        assert_eq!(status.code(), Some(0), "herald router must exit 0 after a drain; output:\n{}", draining.output());
        if !inflight_answered {
            let reply = alice.recv().await;
            assert_eq!(reply["id"], inflight.as_str(), "{reply}");
            check_inflight(&reply, &mut inflight_answered);
        }
        draining = next;
    }
    alice.ping("after").await;
    alice.expect_silence(SILENCE).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn herald_router_serves_the_backend_api_with_its_key() {
    let nats = NatsServer::start().await;
    let router = HeraldProcess::router(&nats, "a-key-from-the-environment").spawn().await;
    assert_eventually!(router.http("/readyz").await.0 == 200, Duration::from_secs(10));
    let edge = TestEdge::start(&nats).await;
    let mut alice = edge.user("alice", &["g"]).await;

    let publish = json!({"to": {"groups": ["g"]}, "action": "news", "details": {"n": 1}});
    let (status, answer) = router.api("POST", "/api/publish", Some(&publish), Some("a-key-from-the-environment")).await;
    assert_eq!((status, answer), (200, json!({"subjects": 1})));
    assert_eq!(alice.recv().await, json!({"action": "news", "details": {"n": 1}}));
    let (status, answer) = router.api("POST", "/api/publish", Some(&publish), Some(TEST_API_KEY)).await;
    assert_eq!(status, 401, "{answer}");
    let (status, answer) = router.api("POST", "/api/publish", Some(&publish), None).await;
    assert_eq!(status, 401, "{answer}");
    let (status, answer) =
        router.api("GET", "/api/presence/users/alice", None, Some("a-key-from-the-environment")).await;
    assert_eq!((status, answer), (200, json!({"online": true, "conns": 1})));
    // Without a routes file, every action is 404.
    alice.send_action("chat/send", Value::Null, json!(1)).await;
    assert_eq!(alice.recv_error("chat/send", 404).await["id"], 1);
    // Counted: the two calls that got past the key check.
    assert_eq!(router.metric("herald_router_api_requests_total").await, 2);
    alice.expect_silence(SILENCE).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_a_router_at_once_while_nats_is_away() {
    let mut nats = NatsServer::start().await;
    let routes = RoutesFile::new(CHAT);
    let mut router = router(&nats, &routes).await;
    nats.stop();
    assert_eventually!(router.http("/readyz").await.0 == 503, Duration::from_secs(10));
    // Nothing can be drained or flushed with NATS away: the drain and the
    // last answers' flush end at once, not at their bounds.
    let asked = tokio::time::Instant::now();
    router.sigterm();
    let status = router.wait(Duration::from_secs(15)).await;
    assert_eq!(status.code(), Some(0), "herald router must exit 0 after SIGTERM; output:\n{}", router.output());
    let took = asked.elapsed();
    assert!(took < Duration::from_secs(1), "the router took {took:?} to stop; output:\n{}", router.output());
}
