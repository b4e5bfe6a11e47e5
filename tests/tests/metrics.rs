//! `/metrics` of an edge and of a router after real traffic: every page
//! passes `promtool check metrics` (Prometheus's own linter), and the
//! counters and histograms moved as the traffic says. The dashboard and
//! the alert rules in `k8s/components/monitoring/` name only series these pages have.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime};

use herald_handler::{Reply, Request};
use herald_proto::published_at::{self, PUBLISHED_AT_HEADER};
use herald_proto::pusher::app::{App, Apps};
use herald_tests::{Client, NatsHandler, NatsServer, TestBus, TestEdge, TestRouter, Token, assert_eventually};
use serde_json::{Value, json};

const ROUTES: &str = "[[routes]]\naction = \"echo\"\nnats = \"app.echo\"\n";

/// Runs `promtool check metrics` on a page; fails the test with its words.
fn promtool_check(what: &str, page: &str) {
    let mut promtool = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool (Debian's prometheus package) must be installed: scripts/test.sh installs it");
    promtool.stdin.take().expect("piped stdin").write_all(page.as_bytes()).expect("write to promtool");
    let output = promtool.wait_with_output().expect("promtool runs");
    let said = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success() && said.trim().is_empty(), "promtool on the {what}'s /metrics: {said}\n{page}");
}

/// The value of one series (name and labels, as written) on a page.
fn value(page: &str, series: &str) -> f64 {
    find(page, series).unwrap_or_else(|| panic!("no series {series} in:\n{page}"))
}

/// The value of one series on a page, 0 until it is there: for waiting on
/// a labelled series that appears when first counted.
fn value_or_0(page: &str, series: &str) -> f64 {
    find(page, series).unwrap_or(0.0)
}

fn find(page: &str, series: &str) -> Option<f64> {
    page.lines().find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

/// The `herald_*` names a dashboard or rules file uses.
fn herald_names(text: &str) -> Vec<&str> {
    let is_name = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_';
    let mut names: Vec<&str> = text
        .match_indices("herald_")
        .filter(|(at, _)| !text[..*at].ends_with(is_name))
        .map(|(at, _)| text[at..].split(|c: char| !is_name(c)).next().unwrap_or_default())
        .collect();
    names.sort_unstable();
    names.dedup();
    names
}

/// Whether a page has a series or a family named `name`.
fn has_series(page: &str, name: &str) -> bool {
    page.lines().any(|line| {
        let line = line.strip_prefix("# TYPE ").unwrap_or(line);
        line.strip_prefix(name).is_some_and(|rest| rest.starts_with([' ', '{']))
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edge_and_router_metrics_pass_promtool_and_follow_the_traffic() {
    let mut nats = NatsServer::start().await;
    let router = TestRouter::start(&nats, ROUTES).await;
    let _handler =
        NatsHandler::serve(&nats, "app.echo", |request: Request<Value>| async move { Reply::details(request.details) })
            .await;
    let edge = TestEdge::start(&nats).await;

    // Traffic: one refused upgrade, a routed action, an unrouted one, a
    // publish through the API, a presence query, a too-large frame.
    assert!(edge.connect("not-a-token").await.is_err());
    let mut alice = edge.client(&Token::user("alice").groups(["room"]).hs256()).await;
    alice.send_action("echo", json!({"n": 1}), json!(1)).await;
    alice.recv_action("echo").await;
    alice.send_action("nowhere", json!({}), json!(2)).await;
    alice.recv_error("nowhere", 404).await;
    router.post_ok("/api/publish", &json!({"to": {"groups": ["room"]}, "action": "news", "details": 1})).await;
    alice.recv_action("news").await;
    let (status, _) = router.get("/api/presence/groups/room").await;
    assert_eq!(status, 200);
    let mut bob = edge.user("bob", &[]).await;

    let edge_page = edge.http("/metrics").await.1;
    promtool_check("edge", &edge_page);
    assert_eq!(value(&edge_page, "herald_edge_upgrades_refused_total{reason=\"unauthorized\"}"), 1.0);
    assert_eq!(value(&edge_page, "herald_edge_connections_total{protocol=\"herald\"}"), 2.0);
    assert_eq!(value(&edge_page, "herald_edge_action_duration_seconds_count{outcome=\"ok\"}"), 1.0);
    assert_eq!(value(&edge_page, "herald_edge_action_duration_seconds_count{outcome=\"refused\"}"), 1.0);
    assert_eq!(value(&edge_page, "herald_edge_bus_connected"), 1.0);
    assert_eq!(value(&edge_page, "herald_edge_subscriptions"), 3.0, "users alice and bob, group room");
    // alice: $connected, two replies, the publish; bob: $connected.
    // (Counted once written: the client may have read the last one first.)
    assert_eventually!(
        value(&edge.http("/metrics").await.1, "herald_edge_frames_sent_total") == 5.0,
        Duration::from_secs(5)
    );
    assert_eq!(value(&edge_page, "herald_edge_frames_received_total"), 2.0);
    assert_eq!(value(&edge_page, "herald_edge_bus_messages_total"), 1.0);
    assert_eq!(value(&edge_page, "herald_edge_sessions{protocol=\"herald\"}"), 2.0);
    // The API's publish carried its publish time: one lag observed (before
    // alice got the frame), well under the 10 s bucket.
    assert_eq!(value(&edge_page, "herald_edge_publish_lag_seconds_count"), 1.0);
    assert_eq!(value(&edge_page, "herald_edge_publish_lag_seconds_bucket{le=\"10.0\"}"), 1.0);
    bob.close(1000, "bye").await;
    assert_eventually!(
        value_or_0(
            &edge.http("/metrics").await.1,
            "herald_edge_sessions_closed_total{protocol=\"herald\",code=\"1000\"}"
        ) == 1.0,
        Duration::from_secs(5)
    );
    assert_eventually!(
        value(&edge.http("/metrics").await.1, "herald_edge_sessions{protocol=\"herald\"}") == 1.0,
        Duration::from_secs(5)
    );

    let router_page = router.http("/metrics").await.1;
    promtool_check("router", &router_page);
    assert_eq!(value(&router_page, "herald_router_requests_total"), 2.0);
    let ok = "herald_router_action_duration_seconds_count{route=\"echo\",outcome=\"ok\"}";
    assert_eq!(value(&router_page, ok), 1.0);
    let unrouted = "herald_router_action_duration_seconds_count{route=\"none\",outcome=\"refused\"}";
    assert_eq!(value(&router_page, unrouted), 1.0);
    let handler = "herald_router_handler_duration_seconds_count{route=\"echo\",transport=\"nats\"}";
    assert_eq!(value(&router_page, handler), 1.0);
    let within_10s = "herald_router_handler_duration_seconds_bucket{le=\"10.0\",route=\"echo\",transport=\"nats\"}";
    assert_eq!(value(&router_page, within_10s), 1.0);
    assert_eq!(value(&router_page, "herald_router_api_requests_total"), 2.0);
    assert_eq!(value(&router_page, "herald_router_presence_query_duration_seconds_count"), 1.0);

    publish_lag_is_once_per_stamped_message(&nats, &edge, &mut alice).await;

    // Fetched again: it has the closes now.
    let edge_page = edge.http("/metrics").await.1;
    let monitoring = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../k8s/components/monitoring");
    for file in ["herald-dashboard.json", "herald-alerts.yaml"] {
        let text = std::fs::read_to_string(monitoring.join(file)).expect("k8s/components/monitoring files");
        let names = herald_names(&text);
        assert!(names.len() >= 5, "{file} names {names:?}");
        for name in names {
            assert!(
                has_series(&edge_page, name) || has_series(&router_page, name),
                "{file} uses {name}, served by no one"
            );
        }
    }

    // A too-large frame is dropped and its session closed with 1009.
    let mut carol = TestEdge::builder(&nats).max_message_bytes(64).spawn().await;
    let mut big = carol.user("carol", &[]).await;
    big.send_text(&format!("{{\"action\":\"echo\",\"details\":\"{}\"}}", "x".repeat(100))).await;
    big.expect_close(1009).await;
    let page = carol.http("/metrics").await.1;
    assert_eq!(value(&page, "herald_edge_frames_dropped_total{reason=\"too_large\"}"), 1.0);
    carol.shutdown().await;

    // A NATS outage: the edge and the router count their reconnection.
    // Each has two NATS connections, each counted once: the bus, and a
    // subscribe-only one (the edge's deliveries, the router's queue-group
    // members).
    nats.stop();
    assert_eventually!(
        value(&edge.http("/metrics").await.1, "herald_edge_bus_connected") == 0.0,
        Duration::from_secs(10)
    );
    nats.start_again().await;
    assert_eventually!(
        value(&edge.http("/metrics").await.1, "herald_edge_bus_reconnects_total") == 2.0,
        Duration::from_secs(15)
    );
    assert_eventually!(
        value(&router.http("/metrics").await.1, "herald_router_bus_reconnects_total") == 2.0,
        Duration::from_secs(15)
    );
}

/// A backend's own NATS publish is measured when it carries
/// `Herald-Published-At`, once per message however many sessions get it;
/// a stamp ahead of the edge's clock counts as no lag, and a message
/// without one is not counted.
async fn publish_lag_is_once_per_stamped_message(nats: &NatsServer, edge: &TestEdge, alice: &mut Client) {
    let _alice_too = edge.user("alice", &[]).await;
    let bus = TestBus::connect(nats).await;
    let lag = |page: &str, series: &str| value(page, &format!("herald_edge_publish_lag_seconds_{series}"));
    let before = edge.http("/metrics").await.1;
    let ahead = published_at::stamp(SystemTime::now() + Duration::from_secs(60));
    let frame = r#"{"action":"ahead","details":null}"#;
    bus.bus()
        .publish_with_header(bus.subjects().user("alice"), (PUBLISHED_AT_HEADER, &ahead), frame.into())
        .await
        .unwrap();
    bus.to_user("alice", r#"{"action":"unstamped","details":null}"#).await;
    alice.recv_action("ahead").await;
    alice.recv_action("unstamped").await;
    let after = edge.http("/metrics").await.1;
    promtool_check("edge", &after);
    assert_eq!(lag(&after, "count"), lag(&before, "count") + 1.0, "two sessions, one stamped message");
    let first_bucket = "bucket{le=\"0.0005\"}";
    assert_eq!(lag(&after, first_bucket), lag(&before, first_bucket) + 1.0, "a clock ahead is 0");
    assert_eq!(value(&after, "herald_edge_bus_messages_total"), value(&before, "herald_edge_bus_messages_total") + 2.0);
}

/// The Pusher paths are counted as such: sessions by protocol on the edge,
/// a refused key as an upgrade refused, Pusher API calls on the router.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pusher_sessions_and_api_calls_are_counted() {
    let nats = NatsServer::start().await;
    let apps = Apps::new(vec![App::new("1", "key", "s3cret")]).unwrap();
    let edge_apps = apps.clone();
    let edge = TestEdge::builder(&nats).config(move |config| config.pusher_apps = edge_apps).spawn().await;
    let router = TestRouter::builder(&nats).config(move |config| config.pusher_apps = apps).spawn().await;

    let mut pusher = Client::connect(&format!("ws://{}/app/key?protocol=7", edge.addr())).await.unwrap();
    assert_eq!(pusher.recv().await["event"], "pusher:connection_established");
    let mut stranger = Client::connect(&format!("ws://{}/app/nope?protocol=7", edge.addr())).await.unwrap();
    assert_eq!(stranger.recv().await["event"], "pusher:error");
    let _native = edge.user("ann", &[]).await;

    let page = edge.http("/metrics").await.1;
    promtool_check("edge", &page);
    assert_eq!(value(&page, "herald_edge_sessions{protocol=\"pusher\"}"), 1.0);
    assert_eq!(value(&page, "herald_edge_sessions{protocol=\"herald\"}"), 1.0);
    assert_eq!(value(&page, "herald_edge_connections_total{protocol=\"pusher\"}"), 1.0);
    assert_eq!(value(&page, "herald_edge_upgrades_refused_total{reason=\"unknown_app\"}"), 1.0);
    pusher.close(1000, "bye").await;
    assert_eventually!(
        value_or_0(
            &edge.http("/metrics").await.1,
            "herald_edge_sessions_closed_total{protocol=\"pusher\",code=\"1000\"}"
        ) == 1.0,
        Duration::from_secs(5)
    );

    // An unsigned trigger: read, refused, both counted.
    let body = br#"{"name":"e","channel":"c","data":"{}"}"#;
    let answer = herald_tests::http::exchange(router.addr(), "POST", "/apps/1/events", &[], body).await;
    assert_eq!(answer.status, 401, "{}", answer.body);
    let page = router.http("/metrics").await.1;
    promtool_check("router", &page);
    assert_eq!(value(&page, "herald_router_pusher_api_requests_total"), 1.0);
    assert_eq!(value(&page, "herald_router_pusher_api_refusals_total"), 1.0);
    assert_eq!(value(&page, "herald_router_pusher_events_published_total"), 0.0);
}
