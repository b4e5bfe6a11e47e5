//! The router's Workerman-style push port: a line with a `uid` is published
//! to that user and answered `ok` when the user is online on any edge,
//! `fail` when not; bad lines are answered `error <reason>` and the
//! connection stays open; connections beyond the limit are refused; and the
//! router's API and actions are untouched by any of it. On both buses.
//! (Real `php` pushing to it, as Workerman's example does: `php.rs`.)

use std::net::SocketAddr;
use std::time::Duration;

use herald_router::PushPortConfig;
use herald_tests::{BusSetup, PushClient, SILENCE, TestEdge, TestRouter, assert_eventually, both_buses};
use serde_json::json;

both_buses!(
    pushes_reach_the_user_on_any_edge_and_say_whether_they_were_online,
    bad_lines_are_answered_and_never_fatal,
    a_stopping_router_closes_every_push_connection
);

const LIVE_EDGES: &str = "herald_router_live_edges";

/// A router with a push port taking `max_connections`, and lines of up to
/// 1024 bytes.
async fn router(setup: &BusSetup, max_connections: usize) -> TestRouter {
    TestRouter::builder(setup)
        .config(move |config| {
            config.max_body_bytes = 1024;
            config.push_port = Some(PushPortConfig {
                listen: SocketAddr::from(([127, 0, 0, 1], 0)),
                max_connections,
                max_line_bytes: config.max_body_bytes,
            });
        })
        .spawn()
        .await
}

async fn pushes_reach_the_user_on_any_edge_and_say_whether_they_were_online(setup: BusSetup) {
    let router = router(&setup, 16).await;
    let (edge_a, edge_b) = (TestEdge::start(&setup).await, TestEdge::start(&setup).await);
    assert_eventually!(router.metric(LIVE_EDGES).await == 2, Duration::from_secs(5));
    let mut ann_a = edge_a.user("ann", &[]).await;
    let mut ann_b = edge_b.user("ann", &[]).await;
    let mut numeric = edge_b.user("42", &[]).await;
    let mut odd = edge_a.user("o.d d", &[]).await;
    let mut push = PushClient::connect(router.push_port()).await;

    // Workerman's example: the object without its uid is the details.
    assert_eq!(push.push(r#"{"uid":"ann","content":"hello","percent":"20%"}"#).await, "ok");
    for ann in [&mut ann_a, &mut ann_b] {
        assert_eq!(ann.recv().await, json!({"action": "push", "details": {"content": "hello", "percent": "20%"}}));
    }
    // With an action, the frame is that action and its details.
    assert_eq!(push.push(r#"{"uid":42,"action":"news","details":{"n":1},"other":true}"#).await, "ok");
    assert_eq!(numeric.recv().await, json!({"action": "news", "details": {"n": 1}}));
    assert_eq!(push.push(r#"{"uid":"o.d d","action":"x"}"#).await, "ok");
    assert_eq!(odd.recv().await, json!({"action": "x", "details": null}));

    // Nobody of that name is online anywhere: published all the same, and
    // answered fail.
    assert_eq!(push.push(r#"{"uid":"bob","content":"hi"}"#).await, "fail");
    // Lines written at once are answered in order.
    push.write(b"{\"uid\":\"ann\",\"n\":1}\r\n{\"uid\":\"bob\"}\n{\"uid\":\"ann\",\"n\":2}\n").await;
    assert_eq!([push.answer().await, push.answer().await, push.answer().await], ["ok", "fail", "ok"]);
    for n in [1, 2] {
        assert_eq!(ann_a.recv().await["details"]["n"], n);
        assert_eq!(ann_b.recv().await["details"]["n"], n);
    }

    // Once ann's last connection is gone, she is offline on every edge.
    drop((ann_a, ann_b));
    assert_eventually!(push.push(r#"{"uid":"ann"}"#).await == "fail", Duration::from_secs(5));
    for client in [&mut numeric, &mut odd] {
        client.expect_silence(SILENCE).await;
    }
}

async fn bad_lines_are_answered_and_never_fatal(setup: BusSetup) {
    let router = router(&setup, 2).await;
    let edge = TestEdge::start(&setup).await;
    assert_eventually!(router.metric(LIVE_EDGES).await == 1, Duration::from_secs(5));
    let mut ann = edge.user("ann", &[]).await;
    let mut push = PushClient::connect(router.push_port()).await;

    for (line, answer) in [
        ("hello", "error not JSON: expected value at line 1 column 1"),
        ("", "error empty line"),
        (r#"{"content":"hi"}"#, "error no uid"),
        (r#"{"uid":""}"#, "error uid must be a non-empty string or an integer"),
        (r#"{"uid":1.5}"#, "error uid must be a non-empty string or an integer"),
        (r#"{"uid":"ann","action":""}"#, "error action must be a string of 1 to 128 characters"),
    ] {
        assert_eq!(push.push(line).await, answer, "{line}");
    }
    // An array, and a line that is not UTF-8.
    for line in [&br#"[{"uid":"ann"}]"#[..], b"{\"uid\":\"\xff\"}"] {
        push.write(&[line, b"\n"].concat()).await;
        let answer = push.answer().await;
        assert!(answer.starts_with("error not JSON: "), "{answer}");
    }
    // Too long, in one piece and dribbled without a newline: answered once
    // each, and what follows still works.
    let long = format!(r#"{{"uid":"ann","pad":"{}"}}"#, "x".repeat(1100));
    assert_eq!(push.push(&long).await, "error line too long (the limit is 1024 bytes)");
    for _ in 0..4 {
        push.write("y".repeat(600).as_bytes()).await;
    }
    assert_eq!(push.answer().await, "error line too long (the limit is 1024 bytes)");
    // The rest of that line is dropped unanswered.
    push.write(b"tail of the long line\n").await;
    assert_eq!(push.push(r#"{"uid":"ann","ok":true}"#).await, "ok");
    assert_eq!(ann.recv().await, json!({"action": "push", "details": {"ok": true}}));
    ann.expect_silence(SILENCE).await;

    // Two connections are the limit: a third is told so and closed; once
    // one goes, a new one is taken.
    let mut second = PushClient::connect(router.push_port()).await;
    assert_eq!(second.push(r#"{"uid":"bob"}"#).await, "fail");
    let mut third = PushClient::connect(router.push_port()).await;
    assert_eq!(third.next_line().await.as_deref(), Some("error too many connections"));
    assert_eq!(third.next_line().await, None);
    drop(second);
    assert_eventually!(
        {
            let mut client = PushClient::connect(router.push_port()).await;
            client.write(b"{\"uid\":\"bob\"}\n").await;
            client.answer().await == "fail"
        },
        Duration::from_secs(5)
    );

    // The first connection lived through all of it, and so did the API.
    assert_eq!(push.push(r#"{"uid":"ann","still":"here"}"#).await, "ok");
    assert_eq!(ann.recv().await["details"], json!({"still": "here"}));
    let (status, _) = router.get("/api/presence/users/ann").await;
    assert_eq!(status, 200);
}

async fn a_stopping_router_closes_every_push_connection(setup: BusSetup) {
    let mut router = router(&setup, 4).await;
    let mut idle = PushClient::connect(router.push_port()).await;
    let mut answered = PushClient::connect(router.push_port()).await;
    assert_eq!(answered.push(r#"{"uid":"ann"}"#).await, "fail");
    // Half a line, never finished: the stop does not wait for the rest.
    let mut halfway = PushClient::connect(router.push_port()).await;
    halfway.write(br#"{"uid":"an"#).await;

    // The router's run returns (shutdown waits for it) with every
    // connection's task finished: each connection sees its end.
    router.shutdown().await;
    for client in [&mut idle, &mut answered, &mut halfway] {
        assert_eq!(client.next_line().await, None);
    }
}
