//! Running an edge: health and readiness, a NATS outage in the middle of a
//! test, shutdown and drain (1012), and the `herald edge` process itself
//! (SIGTERM, bad settings). Health and shutdown run on both buses; the
//! outage and the process need a real `nats-server`.

use std::time::Duration;

use herald_bus::{Bus, BusConfig};
use herald_tests::{
    BusSetup, Client, HeraldProcess, HttpAnswer, HttpHandler, NatsServer, SILENCE, TestBus, TestEdge, TestRouter,
    Token, assert_eventually, both_buses,
};
use serde_json::json;
use tokio::time::Instant;

both_buses!(healthz_and_readyz_answer_200_when_connected);
async fn healthz_and_readyz_answer_200_when_connected(setup: BusSetup) {
    let edge = TestEdge::start(&setup).await;
    assert_eq!(edge.http("/healthz").await.0, 200);
    // The bus connects in the background; readiness follows it.
    assert_eventually!(edge.http("/readyz").await.0 == 200, Duration::from_secs(5));
    assert_eq!(edge.http("/no-such-path").await.0, 404);
}

/// A server that stops answering without closing its sockets (its machine
/// gone) is left for another one of the configured servers in seconds, not
/// the minutes the NATS client's default pings would take.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bus_leaves_a_server_that_stopped_answering_for_another() {
    let servers = [NatsServer::start_monitored().await, NatsServer::start_monitored().await];
    let config = BusConfig::new(servers.iter().map(NatsServer::url).collect(), "frozen-test");
    let bus = Bus::connect(&config).await.unwrap();
    assert_eventually!(bus.is_connected());
    let counts = [servers[0].connections().await, servers[1].connections().await];
    assert_eq!(counts.iter().sum::<u64>(), 1, "connected to exactly one server: {counts:?}");
    let (frozen, other) = if counts[0] == 1 { (&servers[0], &servers[1]) } else { (&servers[1], &servers[0]) };

    frozen.freeze();
    // About three pings of 2 s; the NATS client's default would take three minutes.
    assert_eventually!(other.connections().await == 1, Duration::from_secs(15));
    bus.sync().await.expect("a round trip through the server it moved to");
}

/// A server that takes the connection and never greets (a frozen process,
/// whose machine still accepts) costs a connection attempt 2 s, not the
/// NATS client's default 5 s, before the next one.
#[tokio::test]
async fn a_server_that_never_greets_is_given_up_on_within_two_seconds() {
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("nats://{}", silent.local_addr().unwrap());
    let _bus = Bus::connect(&BusConfig::new(vec![url], "silent-test")).await.unwrap();
    // The sockets are held open and silent until the test ends.
    let _first = silent.accept().await.unwrap();
    let second = tokio::time::timeout(Duration::from_secs(4), silent.accept()).await;
    assert!(second.is_ok(), "no second connection attempt within 4 s of the first");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nats_outage_closes_no_session_and_delivery_resumes_after_it() {
    let mut nats = NatsServer::start().await;
    let bus = TestBus::connect(&nats).await;
    let edge1 = TestEdge::start(&nats).await;
    let edge2 = TestEdge::start(&nats).await;
    let mut events = bus.events().await;
    let mut alice = edge1.user("alice", &["room"]).await;
    let mut bob = edge2.user("bob", &["room"]).await;
    events.connect_of(alice.conn()).await;
    events.connect_of(bob.conn()).await;
    bus.to_group("room", r#"{"action":"before"}"#).await;
    assert_eq!(alice.recv_raw().await, r#"{"action":"before"}"#);
    assert_eq!(bob.recv_raw().await, r#"{"action":"before"}"#);
    assert_eq!(edge1.http("/readyz").await.0, 200);

    nats.stop();
    assert_eventually!(edge1.http("/readyz").await.0 == 503, Duration::from_secs(10));
    assert_eq!(edge1.http("/healthz").await.0, 200, "alive while NATS is down, only not ready");
    // Sessions stay open and answer what needs no bus.
    alice.ping("during-outage").await;
    bob.ping("during-outage").await;

    nats.start_again().await;
    assert_eventually!(edge1.http("/readyz").await.0 == 200, Duration::from_secs(15));
    assert_eventually!(edge2.http("/readyz").await.0 == 200, Duration::from_secs(15));
    assert_eventually!(bus.is_connected(), Duration::from_secs(15));

    // Every kind of subscription is restored, on both edges.
    let subjects = bus.subjects().clone();
    bus.await_delivery(&subjects.user("alice"), &mut [&mut alice]).await;
    bus.await_delivery(&subjects.group("room"), &mut [&mut alice, &mut bob]).await;
    bus.await_delivery(&bus.conn_subject(bob.conn()), &mut [&mut bob]).await;
    bus.await_delivery(&subjects.all(), &mut [&mut alice, &mut bob]).await;
    bus.to_group("room", r#"{"action":"after"}"#).await;
    assert_eq!(alice.recv_raw().await, r#"{"action":"after"}"#);
    assert_eq!(bob.recv_raw().await, r#"{"action":"after"}"#);
    alice.expect_silence(SILENCE).await;

    // Control operations work again too.
    bus.control_user("bob", json!({"op": "disconnect", "code": 4000, "reason": "after outage"})).await;
    bob.expect_close(4000).await;

    // And new connections.
    let mut carol = edge2.user("carol", &[]).await;
    bus.to_user("carol", r#"{"action":"hi"}"#).await;
    assert_eq!(carol.recv_raw().await, r#"{"action":"hi"}"#);
}

both_buses!(shutdown_closes_every_session_with_1012);
async fn shutdown_closes_every_session_with_1012(setup: BusSetup) {
    let bus = TestBus::connect(&setup).await;
    let mut edge = TestEdge::start(&setup).await;
    let other = TestEdge::start(&setup).await;
    let mut alice = edge.user("alice", &[]).await;
    let mut bob = edge.user("bob", &["g"]).await;
    let mut carol = other.user("carol", &["g"]).await;

    edge.shutdown().await;
    alice.expect_close(1012).await;
    bob.expect_close(1012).await;

    // The other edge is unaffected.
    bus.to_group("g", r#"{"action":"g"}"#).await;
    assert_eq!(carol.recv_raw().await, r#"{"action":"g"}"#);
    carol.expect_silence(SILENCE).await;
}

both_buses!(a_drain_waits_for_an_upgrade_on_its_way_and_ends_once_it_is_gone);
/// An upgrade still waiting on a slow `$connect` handler when the drain
/// begins is part of the drain: it is refused before its `101` (or closed
/// with 1012), and the drain ends as soon as it is gone, not at its
/// deadline.
async fn a_drain_waits_for_an_upgrade_on_its_way_and_ends_once_it_is_gone(setup: BusSetup) {
    const CONNECT_TAKES: Duration = Duration::from_secs(1);
    const DRAIN_TIMEOUT: Duration = Duration::from_secs(6);
    let mut php =
        HttpHandler::start(|_| HttpAnswer::json(json!({"user": "slow", "groups": []})).after(CONNECT_TAKES)).await;
    let routes = format!("[[routes]]\naction = \"$connect\"\nhttp = \"{}\"\n", php.url("/connect.php"));
    let _router = TestRouter::start(&setup, &routes).await;
    let mut edge = TestEdge::builder(&setup)
        .anonymous(false)
        .timing(|t| {
            t.drain_timeout = DRAIN_TIMEOUT;
            t.action_timeout = Duration::from_secs(3);
        })
        .spawn()
        .await;
    let url = edge.ws_url(None);
    let upgrading = tokio::spawn(async move { Client::connect(&url).await });
    // The upgrade now waits on the handler.
    php.next_request().await;

    let started = Instant::now();
    edge.shutdown().await;
    let took = started.elapsed();
    match upgrading.await.expect("the upgrading task") {
        Err(refused) => assert_eq!(refused.status(), Some(503), "{refused}"),
        Ok(mut slow) => {
            slow.expect_close(1012).await;
        }
    }
    assert!(took < DRAIN_TIMEOUT - Duration::from_secs(2), "the drain took {took:?}: it waited for its deadline");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn herald_edge_serves_and_sigterm_closes_sessions_with_1012_then_exits_0() {
    let nats = NatsServer::start().await;
    let bus = TestBus::connect(&nats).await;
    let mut herald = HeraldProcess::edge(&nats).spawn().await;
    assert_eq!(herald.http("/healthz").await.0, 200);
    assert_eventually!(herald.http("/readyz").await.0 == 200, Duration::from_secs(10));

    let token = Token::user("alice").groups(["g"]).hs256();
    let mut alice = Client::open(&herald.ws_url(Some(&token))).await;
    assert_eq!(alice.info().user.as_deref(), Some("alice"));
    let mut bob = Client::open(&herald.ws_url(Some(&Token::user("bob").hs256()))).await;
    bus.to_user("alice", r#"{"action":"u"}"#).await;
    assert_eq!(alice.recv_raw().await, r#"{"action":"u"}"#);
    bus.to_group("g", r#"{"action":"g"}"#).await;
    assert_eq!(alice.recv_raw().await, r#"{"action":"g"}"#);
    refuses_bad_token(&herald.ws_url(Some("garbage"))).await;

    herald.sigterm();
    alice.expect_close(1012).await;
    bob.expect_close(1012).await;
    let status = herald.wait(Duration::from_secs(15)).await;
    assert_eq!(status.code(), Some(0), "herald edge must exit 0 after SIGTERM; output:\n{}", herald.output());
}

async fn refuses_bad_token(url: &str) {
    match Client::connect(url).await {
        Ok(_) => panic!("a bad token was let in"),
        Err(e) => assert_eq!(e.status(), Some(401), "{e}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_setting_stops_herald_edge_with_one_line_naming_it() {
    let nats = NatsServer::start().await;
    let (status, stderr, _stdout) =
        HeraldProcess::edge(&nats).env("HERALD_MAX_MESSAGE_BYTES", "abc").run_to_exit(Duration::from_secs(15)).await;
    assert!(!status.success(), "herald edge started with HERALD_MAX_MESSAGE_BYTES=abc");
    let lines: Vec<&String> = stderr.iter().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "expected one line on stderr, got {lines:#?}");
    let line = lines[0].to_ascii_lowercase();
    assert!(
        line.contains("herald_max_message_bytes")
            || line.contains("max-message-bytes")
            || line.contains("max_message_bytes"),
        "the line must name the setting: {:?}",
        lines[0]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn herald_edge_rejects_a_token_signed_for_another_secret() {
    // The secret comes from HERALD_JWT_SECRET on the child only.
    let nats = NatsServer::start().await;
    let herald = HeraldProcess::edge(&nats).spawn().await;
    let other = Token::user("alice").hs256_with(b"not the configured secret");
    refuses_bad_token(&herald.ws_url(Some(&other))).await;
    refuses_bad_token(&herald.ws_url(None)).await;
}
