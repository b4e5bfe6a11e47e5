//! Control operations from backends (`herald.ctl.user.<U>`,
//! `herald.ctl.conn.<C>`: join, leave, disconnect) and the lifecycle events
//! edges publish (`herald.events.connect`, `herald.events.disconnect`).
//!
//! A control operation takes effect asynchronously (nothing tells the
//! backend when it is applied), so joins and leaves are observed with
//! probes (`TestBus::await_delivery`, `TestBus::await_no_delivery`), then
//! asserted exactly with one real message.

use std::time::{SystemTime, UNIX_EPOCH};

use herald_tests::{BusSetup, Client, SILENCE, TestBus, TestEdge, Token, both_buses};
use serde_json::{Value, json};

both_buses!(join_and_leave_for_a_user_apply_to_each_tab_on_each_edge);
async fn join_and_leave_for_a_user_apply_to_each_tab_on_each_edge(setup: BusSetup) {
    let bus = TestBus::connect(&setup).await;
    let edge1 = TestEdge::start(&setup).await;
    let edge2 = TestEdge::start(&setup).await;

    let mut tab1 = edge1.user("alice", &[]).await;
    let mut tab2 = edge2.user("alice", &[]).await;
    let mut bob = edge1.user("bob", &[]).await;
    let mut carol = edge2.user("carol", &["team"]).await;
    let group = bus.subjects().group("team");

    bus.control_user("alice", json!({"op": "join", "group": "team"})).await;
    bus.await_delivery(&group, &mut [&mut tab1, &mut tab2, &mut carol]).await;
    let payload = r#"{"action":"team/news","details":1}"#;
    bus.to_group("team", payload).await;
    for client in [&mut tab1, &mut tab2, &mut carol] {
        assert_eq!(client.recv_raw().await, payload);
    }
    Client::all_silent(&mut [&mut tab1, &mut tab2, &mut carol, &mut bob]).await;

    bus.control_user("alice", json!({"op": "leave", "group": "team"})).await;
    bus.await_no_delivery(&group, &mut carol, &mut [&mut tab1, &mut tab2]).await;
    let payload = r#"{"action":"team/news","details":2}"#;
    bus.to_group("team", payload).await;
    assert_eq!(carol.recv_raw().await, payload);
    Client::all_silent(&mut [&mut tab1, &mut tab2, &mut carol, &mut bob]).await;

    // Leaving a group changes nothing else: the user subject still works.
    bus.to_user("alice", r#"{"action":"u"}"#).await;
    assert_eq!(tab1.recv_raw().await, r#"{"action":"u"}"#);
    assert_eq!(tab2.recv_raw().await, r#"{"action":"u"}"#);
}

both_buses!(leaving_a_group_from_the_token_by_control);
async fn leaving_a_group_from_the_token_by_control(setup: BusSetup) {
    let bus = TestBus::connect(&setup).await;
    let edge = TestEdge::start(&setup).await;
    let mut alice = edge.user("alice", &["room"]).await;
    let mut witness = edge.user("witness", &["room"]).await;
    let group = bus.subjects().group("room");

    bus.control_user("alice", json!({"op": "leave", "group": "room"})).await;
    bus.await_no_delivery(&group, &mut witness, &mut [&mut alice]).await;
    bus.to_group("room", r#"{"action":"r"}"#).await;
    assert_eq!(witness.recv_raw().await, r#"{"action":"r"}"#);
    Client::all_silent(&mut [&mut alice, &mut witness]).await;
}

both_buses!(control_for_one_conn_applies_to_that_conn_only);
async fn control_for_one_conn_applies_to_that_conn_only(setup: BusSetup) {
    let bus = TestBus::connect(&setup).await;
    let edge = TestEdge::start(&setup).await;
    let mut tab1 = edge.user("alice", &[]).await;
    let mut tab2 = edge.user("alice", &[]).await;

    bus.control_conn(tab1.conn(), json!({"op": "join", "group": "side"})).await;
    bus.await_delivery(&bus.subjects().group("side"), &mut [&mut tab1]).await;
    bus.to_group("side", r#"{"action":"s"}"#).await;
    assert_eq!(tab1.recv_raw().await, r#"{"action":"s"}"#);
    Client::all_silent(&mut [&mut tab1, &mut tab2]).await;

    bus.control_conn(tab2.conn(), json!({"op": "disconnect", "code": 4003, "reason": "kicked"})).await;
    assert_eq!(tab2.expect_close(4003).await, "kicked");
    tab1.ping("still-here").await;
    bus.to_user("alice", r#"{"action":"u"}"#).await;
    assert_eq!(tab1.recv_raw().await, r#"{"action":"u"}"#);
    tab1.expect_silence(SILENCE).await;
}

both_buses!(disconnect_closes_every_tab_of_the_user_with_the_code_and_reason);
async fn disconnect_closes_every_tab_of_the_user_with_the_code_and_reason(setup: BusSetup) {
    let bus = TestBus::connect(&setup).await;
    let edge1 = TestEdge::start(&setup).await;
    let edge2 = TestEdge::start(&setup).await;
    let mut tab1 = edge1.user("alice", &["g"]).await;
    let mut tab2 = edge2.user("alice", &["g"]).await;
    let mut bob = edge1.user("bob", &["g"]).await;
    let mut carol = edge2.user("carol", &[]).await;

    bus.control_user("alice", json!({"op": "disconnect", "code": 4000, "reason": "banned"})).await;
    assert_eq!(tab1.expect_close(4000).await, "banned");
    assert_eq!(tab2.expect_close(4000).await, "banned");

    // Without a code, 4000.
    bus.control_user("carol", json!({"op": "disconnect"})).await;
    carol.expect_close(4000).await;

    bob.ping("alive").await;
    bus.to_group("g", r#"{"action":"g"}"#).await;
    assert_eq!(bob.recv_raw().await, r#"{"action":"g"}"#);
    bob.expect_silence(SILENCE).await;
}

both_buses!(malformed_control_operations_change_nothing);
async fn malformed_control_operations_change_nothing(setup: BusSetup) {
    let bus = TestBus::connect(&setup).await;
    let edge = TestEdge::start(&setup).await;
    let mut alice = edge.user("alice", &[]).await;
    let subject = bus.subjects().ctl_user("alice");

    for bad in [
        "not json",
        "{}",
        r#"{"op":"explode"}"#,
        r#"{"op":"join"}"#,
        r#"{"op":"join","group":7}"#,
        r#"{"op":"disconnect","code":"x"}"#,
        "[]",
    ] {
        bus.publish(subject.clone(), bad.to_owned()).await;
    }
    // Still connected, nothing sent to the client, and a good operation
    // after the bad ones still works.
    alice.expect_silence(SILENCE).await;
    alice.ping("after-bad-ops").await;
    bus.control_user("alice", json!({"op": "join", "group": "ok"})).await;
    bus.await_delivery(&bus.subjects().group("ok"), &mut [&mut alice]).await;
}

/// Milliseconds since the Unix epoch of an RFC 3339 UTC time with
/// milliseconds (`2026-01-02T03:04:05.678Z`), or `None` if it is not one.
fn rfc3339_millis(text: &str) -> Option<u64> {
    let b = text.as_bytes();
    if b.len() != 24
        || b[4] != b'-'
        || b[7] != b'-'
        || b[10] != b'T'
        || b[13] != b':'
        || b[16] != b':'
        || b[19] != b'.'
        || b[23] != b'Z'
    {
        return None;
    }
    let num = |range: std::ops::Range<usize>| text.get(range)?.parse::<u64>().ok();
    let (y, m, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hh, mm, ss, ms) = (num(11..13)?, num(14..16)?, num(17..19)?, num(20..23)?);
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) || hh > 23 || mm > 59 || ss > 60 {
        return None;
    }
    // Days from civil (Howard Hinnant's algorithm).
    let (y, m) = (y as i64 - i64::from(m <= 2), m as i64);
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(((days as u64 * 86_400 + hh * 3600 + mm * 60 + ss) * 1000) + ms)
}

fn assert_recent(event: &Value) {
    let at = event["at"].as_str().unwrap_or_else(|| panic!("event without `at`: {event}"));
    let millis = rfc3339_millis(at).unwrap_or_else(|| panic!("`at` is not RFC 3339 UTC with milliseconds: {at:?}"));
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as u64;
    assert!(now.abs_diff(millis) < 60_000, "`at` {at} is not now");
}

#[test]
fn rfc3339_reader_works() {
    assert_eq!(rfc3339_millis("1970-01-01T00:00:00.000Z"), Some(0));
    assert_eq!(rfc3339_millis("2000-03-01T00:00:01.002Z"), Some(951_868_801_002));
    assert_eq!(rfc3339_millis("2000-03-01T00:00:01Z"), None);
    assert_eq!(rfc3339_millis("2000-03-01 00:00:01.002Z"), None);
}

both_buses!(connect_and_disconnect_events_describe_the_connection);
async fn connect_and_disconnect_events_describe_the_connection(setup: BusSetup) {
    let bus = TestBus::connect(&setup).await;
    let edge = TestEdge::builder(&setup).anonymous(true).spawn().await;
    let mut events = bus.events().await;

    let mut alice = edge.user("alice", &["a", "b"]).await;
    let connect = events.connect_of(alice.conn()).await;
    assert_eq!(connect["user"], "alice");
    assert_eq!(connect["groups"], json!(["a", "b"]));
    assert_eq!(connect["edge"], edge.id());
    assert!(connect.get("code").is_none(), "a connect event has no code: {connect}");
    assert_recent(&connect);

    bus.control_conn(alice.conn(), json!({"op": "disconnect", "code": 4003, "reason": "bye"})).await;
    alice.expect_close(4003).await;
    let disconnect = events.disconnect_of(alice.conn()).await;
    assert_eq!(disconnect["user"], "alice");
    assert_eq!(disconnect["groups"], json!(["a", "b"]));
    assert_eq!(disconnect["edge"], edge.id());
    assert_eq!(disconnect["code"], 4003);
    assert_eq!(disconnect["reason"], "bye");
    assert_recent(&disconnect);

    // A client that closes itself: its own code.
    let mut bob = edge.user("bob", &[]).await;
    events.connect_of(bob.conn()).await;
    bob.close(1000, "done").await;
    assert_eq!(bob.expect_disconnected().await, Some(1000));
    let disconnect = events.disconnect_of(bob.conn()).await;
    assert_eq!(disconnect["code"], 1000);
    assert!(disconnect["reason"].is_string(), "disconnect without a reason string: {disconnect}");

    // Anonymous: user null.
    let mut nobody = Client::open(&edge.ws_url(None)).await;
    let connect = events.connect_of(nobody.conn()).await;
    assert_eq!(connect["user"], Value::Null);
    assert_eq!(connect["groups"], json!([]));
    nobody.close(1000, "").await;
    nobody.expect_disconnected().await;
    assert_eq!(events.disconnect_of(nobody.conn()).await["user"], Value::Null);
}

both_buses!(events_report_groups_joined_since_connect);
async fn events_report_groups_joined_since_connect(setup: BusSetup) {
    let bus = TestBus::connect(&setup).await;
    let edge = TestEdge::start(&setup).await;
    let mut events = bus.events().await;

    let token = Token::user("alice").groups(["a"]).join(["room:*"]).hs256();
    let mut alice = edge.client(&token).await;
    events.connect_of(alice.conn()).await;
    alice.send_json(&json!({"action": "$join", "details": {"group": "room:1"}})).await;
    alice.recv_action("$join").await;
    bus.control_conn(alice.conn(), json!({"op": "disconnect", "code": 4000, "reason": "x"})).await;
    alice.expect_close(4000).await;
    let disconnect = events.disconnect_of(alice.conn()).await;
    let mut groups: Vec<String> = serde_json::from_value(disconnect["groups"].clone()).unwrap();
    groups.sort();
    assert_eq!(groups, ["a", "room:1"], "the groups the connection was in when it ended: {disconnect}");
}
