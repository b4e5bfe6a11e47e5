//! Presence through the router's API (`GET /api/presence/users/<U>`,
//! `/api/presence/groups/<G>`), asked of every live edge: each tab counted
//! once across edges, the distinct users of a group, and what happens when
//! an edge process dies (SIGKILL: its connections drop out within the
//! documented bound) or stops gracefully (SIGTERM: at once). Presence of
//! in-process edges runs on both buses; edge processes need NATS.

use std::time::Duration;

use herald_tests::{
    BusSetup, Client, HeraldProcess, NatsServer, TestEdge, TestRouter, Token, assert_eventually, both_buses,
};
use serde_json::{Value, json};
use tokio::time::Instant;

const LIVE_EDGES: &str = "herald_router_live_edges";

async fn user(router: &TestRouter, user: &str) -> Value {
    let (status, answer) = router.get(&format!("/api/presence/users/{user}")).await;
    assert_eq!(status, 200, "presence of user {user}: {answer}");
    answer
}

async fn group(router: &TestRouter, group: &str) -> Value {
    let (status, answer) = router.get(&format!("/api/presence/groups/{group}")).await;
    assert_eq!(status, 200, "presence of group {group}: {answer}");
    answer
}

async fn open(edge: &HeraldProcess, user: &str, groups: &[&str]) -> Client {
    let token = Token::user(user).groups(groups.iter().copied()).hs256();
    let client = Client::open(&edge.ws_url(Some(&token))).await;
    assert_eq!(client.info().user.as_deref(), Some(user));
    client
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presence_counts_tabs_across_edges_and_drops_a_dead_edges_connections() {
    let nats = NatsServer::start().await;
    let router = TestRouter::start(&nats, "").await;
    let mut edge_a = HeraldProcess::edge(&nats).spawn().await;
    let mut edge_b = HeraldProcess::edge(&nats).spawn().await;
    let edge_c = TestEdge::start(&nats).await;
    // The router knows every edge (from their heartbeats), so it waits for
    // all three answers.
    assert_eventually!(router.metric(LIVE_EDGES).await == 3, Duration::from_secs(5));

    let mut u1_a1 = open(&edge_a, "u1", &["g"]).await;
    let _u1_a2 = open(&edge_a, "u1", &[]).await;
    let mut u1_b = open(&edge_b, "u1", &["g"]).await;
    let mut u2_b = open(&edge_b, "u2", &["g", "h"]).await;
    let _u1_c = edge_c.user("u1", &[]).await;
    let _u3_c = edge_c.user("u3", &["g"]).await;

    assert_eq!(user(&router, "u1").await, json!({"online": true, "conns": 4}));
    assert_eq!(user(&router, "u2").await, json!({"online": true, "conns": 1}));
    assert_eq!(user(&router, "u3").await, json!({"online": true, "conns": 1}));
    assert_eq!(user(&router, "nobody").await, json!({"online": false, "conns": 0}));
    assert_eq!(group(&router, "g").await, json!({"conns": 4, "users": ["u1", "u2", "u3"]}));
    assert_eq!(group(&router, "h").await, json!({"conns": 1, "users": ["u2"]}));
    assert_eq!(group(&router, "empty").await, json!({"conns": 0, "users": []}));

    // Edge A dies without a word.
    edge_a.sigkill().await;
    assert!(u1_a1.expect_disconnected().await.is_none(), "a killed edge sends no close frame");
    // Its connections drop out within 3 heartbeat intervals (3 s), to the
    // right values.
    let killed = Instant::now();
    assert_eventually!(user(&router, "u1").await == json!({"online": true, "conns": 2}), Duration::from_secs(5));
    assert_eventually!(
        group(&router, "g").await == json!({"conns": 3, "users": ["u1", "u2", "u3"]}),
        Duration::from_secs(5)
    );
    assert_eq!(user(&router, "u2").await, json!({"online": true, "conns": 1}));
    // And the router takes it for dead within the bound.
    assert_eventually!(router.metric(LIVE_EDGES).await == 2, Duration::from_secs(5));
    assert!(killed.elapsed() < Duration::from_secs(5), "took {:?}", killed.elapsed());

    // Edge B stops gracefully: its connections drop out at once.
    edge_b.sigterm();
    u1_b.expect_close(1012).await;
    u2_b.expect_close(1012).await;
    let status = edge_b.wait(Duration::from_secs(15)).await;
    assert_eq!(status.code(), Some(0), "{}", edge_b.output());
    assert_eq!(user(&router, "u1").await, json!({"online": true, "conns": 1}));
    assert_eq!(user(&router, "u2").await, json!({"online": false, "conns": 0}));
    assert_eq!(group(&router, "g").await, json!({"conns": 1, "users": ["u3"]}));
    assert_eq!(group(&router, "h").await, json!({"conns": 0, "users": []}));
    // It said it was leaving, so the router stops waiting for it at once.
    assert_eventually!(router.metric(LIVE_EDGES).await == 1, Duration::from_millis(500));
}

both_buses!(presence_follows_connects_disconnects_and_group_changes);
async fn presence_follows_connects_disconnects_and_group_changes(setup: BusSetup) {
    let router = TestRouter::start(&setup, "").await;
    let edge1 = TestEdge::builder(&setup).anonymous(true).spawn().await;
    let edge2 = TestEdge::start(&setup).await;
    assert_eventually!(router.metric(LIVE_EDGES).await == 2, Duration::from_secs(5));

    // Names that need encoding, in the URL path and on the bus.
    let mut dave1 = edge1.user("dave.smith@example.com", &["team red"]).await;
    let mut dave2 = edge2.user("dave.smith@example.com", &[]).await;
    assert_eq!(user(&router, "dave.smith%40example.com").await, json!({"online": true, "conns": 2}));
    assert_eq!(group(&router, "team%20red").await, json!({"conns": 1, "users": ["dave.smith@example.com"]}));
    // A look-alike name is someone else.
    assert_eq!(user(&router, "dave.smith").await, json!({"online": false, "conns": 0}));

    // An anonymous connection counts in a group's conns, with no user.
    let mut anonymous = Client::open(&edge1.ws_url(None)).await;
    assert_eq!(anonymous.info().user, None);
    router.post_ok("/api/groups/join", &json!({"group": "team red", "conns": [anonymous.conn()]})).await;
    assert_eventually!(
        group(&router, "team%20red").await == json!({"conns": 2, "users": ["dave.smith@example.com"]}),
        Duration::from_secs(5)
    );
    router.post_ok("/api/groups/join", &json!({"group": "team red", "users": ["dave.smith@example.com"]})).await;
    assert_eventually!(
        group(&router, "team%20red").await == json!({"conns": 3, "users": ["dave.smith@example.com"]}),
        Duration::from_secs(5)
    );

    // Closing tabs, and leaving.
    dave1.close(1000, "bye").await;
    dave1.expect_close(1000).await;
    assert_eventually!(
        user(&router, "dave.smith%40example.com").await == json!({"online": true, "conns": 1}),
        Duration::from_secs(5)
    );
    router.post_ok("/api/groups/leave", &json!({"group": "team red", "conns": [dave2.conn()]})).await;
    assert_eventually!(group(&router, "team%20red").await == json!({"conns": 1, "users": []}), Duration::from_secs(5));
    anonymous.close(1000, "").await;
    anonymous.expect_close(1000).await;
    dave2.close(1000, "").await;
    dave2.expect_close(1000).await;
    assert_eventually!(group(&router, "team%20red").await == json!({"conns": 0, "users": []}), Duration::from_secs(5));
    assert_eq!(user(&router, "dave.smith%40example.com").await, json!({"online": false, "conns": 0}));
}
