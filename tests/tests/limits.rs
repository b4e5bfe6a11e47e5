//! What one connection may cost: the frame size limit (1009), the rate
//! limit (429, then 1008), slow consumers (1013) and clients that stop
//! answering pings (dropped, reported as 1006).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use herald_tests::client::ConnectOptions;
use herald_tests::{BusSetup, Client, SILENCE, TestBus, TestEdge, Token, both_buses};
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

/// A `$ping` frame of exactly `size` bytes.
fn ping_of_size(size: usize) -> String {
    let empty = r#"{"action":"$ping","id":""}"#;
    assert!(size >= empty.len());
    format!(r#"{{"action":"$ping","id":"{}"}}"#, "x".repeat(size - empty.len()))
}

both_buses!(a_frame_at_the_limit_is_fine_and_one_byte_more_closes_with_1009);
async fn a_frame_at_the_limit_is_fine_and_one_byte_more_closes_with_1009(setup: BusSetup) {
    let bus = TestBus::connect(&setup).await;
    let edge = TestEdge::builder(&setup).max_message_bytes(1024).spawn().await;
    let mut events = bus.events().await;
    let mut alice = edge.user("alice", &[]).await;

    let at_limit = ping_of_size(1024);
    assert_eq!(at_limit.len(), 1024);
    alice.send_text(&at_limit).await;
    alice.recv_action("$pong").await;

    alice.send_text(&ping_of_size(1025)).await;
    alice.expect_close(1009).await;
    assert_eq!(events.disconnect_of(alice.conn()).await["code"], 1009);
}

both_buses!(oversized_text_or_binary_frames_close_with_1009_and_spare_others);
async fn oversized_text_or_binary_frames_close_with_1009_and_spare_others(setup: BusSetup) {
    let bus = TestBus::connect(&setup).await;
    let edge = TestEdge::builder(&setup).max_message_bytes(1024).spawn().await;
    let mut text = edge.user("alice", &[]).await;
    let mut binary = edge.user("bob", &[]).await;
    let mut bystander = edge.user("carol", &[]).await;

    let _ = text.try_send(Message::text(ping_of_size(4000))).await;
    text.expect_close(1009).await;
    let _ = binary.try_send(Message::binary(vec![b'x'; 4000])).await;
    binary.expect_close(1009).await;

    bystander.ping("fine").await;
    bus.to_user("carol", r#"{"action":"u"}"#).await;
    assert_eq!(bystander.recv_raw().await, r#"{"action":"u"}"#);
    // Frames from the server are not limited by the client frame limit.
    let big = json!({"action": "big", "details": "y".repeat(10_000)}).to_string();
    bus.to_user("carol", &big).await;
    assert_eq!(bystander.recv_raw().await, big);
}

both_buses!(flooding_gets_429_then_closes_with_1008);
async fn flooding_gets_429_then_closes_with_1008(setup: BusSetup) {
    let bus = TestBus::connect(&setup).await;
    let (per_sec, burst, strikes) = (2, 3, 3);
    let edge = TestEdge::builder(&setup).rate(per_sec, burst, strikes).spawn().await;
    let mut events = bus.events().await;
    let mut alice = edge.user("alice", &[]).await;
    let conn = alice.conn().to_owned();

    let mut sent = 0u64;
    for i in 0..40u64 {
        let frame = json!({"action": "$ping", "id": i}).to_string();
        if alice.try_send(Message::text(frame)).await.is_err() {
            break;
        }
        sent += 1;
    }
    assert!(sent > u64::from(burst + strikes), "the flood was cut short after {sent} frames");

    // Replies in order: some pongs (the burst), then 429s, then 1008.
    let mut pongs = 0u64;
    let mut refusals = 0u64;
    let mut next_id = 0u64;
    loop {
        let frame = match alice.try_recv_or_close().await {
            Ok(frame) => frame,
            Err(code) => {
                assert_eq!(code, Some(1008), "the flood must end with close 1008");
                break;
            }
        };
        let id = frame["id"].as_u64().unwrap_or_else(|| panic!("reply without the ping's id: {frame}"));
        assert!(id >= next_id, "replies out of order: {frame}");
        next_id = id + 1;
        match frame["action"].as_str() {
            Some("$pong") => {
                assert_eq!(refusals, 0, "a pong after a refusal, without backing off: {frame}");
                pongs += 1;
            }
            Some("$ping:error") => {
                assert_eq!(frame["details"]["code"], 429, "{frame}");
                refusals += 1;
            }
            _ => panic!("unexpected frame during a flood: {frame}"),
        }
    }
    assert!(pongs >= 1, "the burst must be served");
    assert!(pongs <= u64::from(burst + per_sec), "{pongs} pongs: the limit was not applied");
    assert!(refusals >= 1, "a refused frame gets a 429 reply");
    assert!(refusals <= u64::from(strikes), "{refusals} refusals: closed only after {strikes} strikes");
    assert_eq!(events.disconnect_of(&conn).await["code"], 1008);
}

both_buses!(a_client_under_the_rate_limit_is_never_refused);
async fn a_client_under_the_rate_limit_is_never_refused(setup: BusSetup) {
    let edge = TestEdge::builder(&setup).rate(20, 5, 3).spawn().await;
    let mut alice = edge.user("alice", &[]).await;
    for i in 0..15 {
        alice.ping(&format!("steady-{i}")).await;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Two clients in group "feed" on one edge with a 32-frame mailbox: "fast"
/// reads all the time, "slow" stops reading (with a small socket buffer,
/// so the edge's queue for it fills quickly). A live feed of 8 KiB
/// messages every 5 ms (1.6 MB/s, which a reading client takes in its
/// stride) runs until the edge drops "slow"; its disconnect event must say
/// 1013. Returns both clients and how many messages were published.
async fn slow_consumer_dropped(edge: &TestEdge, bus: &TestBus) -> (Client, Client, u64) {
    let mut events = bus.events().await;
    let fast = edge.user("fast", &["feed"]).await;
    let token = Token::user("slow").groups(["feed"]).hs256();
    let options = ConnectOptions::default().recv_buffer(4096);
    let mut slow = Client::connect_with(&edge.ws_url(Some(&token)), options).await.expect("slow client");
    slow.connected().await;
    let slow_conn = slow.conn().to_owned();
    events.connect_of(fast.conn()).await;
    events.connect_of(&slow_conn).await;
    slow.pause();

    let published = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let feed = {
        let (bus, published, stop) = (bus.clone(), published.clone(), stop.clone());
        tokio::spawn(async move {
            let subject = bus.subjects().group("feed");
            let filler = "z".repeat(8 * 1024);
            let mut tick = tokio::time::interval(Duration::from_millis(5));
            for i in 0..4000u64 {
                tick.tick().await;
                if stop.load(Ordering::SeqCst) {
                    break;
                }
                let frame = json!({"action": "feed", "details": {"n": i, "filler": filler}}).to_string();
                bus.publish(subject.clone(), frame).await;
                published.store(i + 1, Ordering::SeqCst);
            }
        })
    };
    let dropped = events.disconnect_of(&slow_conn).await;
    assert_eq!(dropped["code"], 1013, "{dropped}");
    stop.store(true, Ordering::SeqCst);
    feed.await.unwrap();
    let total = published.load(Ordering::SeqCst);
    assert!(total > 32, "only {total} messages before the slow client was dropped");
    (fast, slow, total)
}

fn slow_consumer_edge(setup: &BusSetup) -> herald_tests::TestEdgeBuilder {
    TestEdge::builder(setup)
        .mailbox_capacity(32)
        // Pings off the table: the slow client answers none while paused.
        .timing(|t| t.ping_interval = Duration::from_secs(60))
}

both_buses!(a_slow_consumer_is_dropped_with_1013_and_others_get_everything);
async fn a_slow_consumer_is_dropped_with_1013_and_others_get_everything(setup: BusSetup) {
    let bus = TestBus::connect(&setup).await;
    let edge = slow_consumer_edge(&setup).spawn().await;
    let (mut fast, _slow, total) = slow_consumer_dropped(&edge, &bus).await;

    for n in 0..total {
        let frame = fast.recv().await;
        assert_eq!(frame["action"], "feed");
        assert_eq!(frame["details"]["n"], n, "the fast client must get every message, in order");
    }
    fast.expect_silence(SILENCE).await;
    fast.ping("still-fast").await;
}

both_buses!(a_slow_consumer_that_reads_again_finds_close_1013_after_its_backlog);
async fn a_slow_consumer_that_reads_again_finds_close_1013_after_its_backlog(setup: BusSetup) {
    let bus = TestBus::connect(&setup).await;
    let edge = slow_consumer_edge(&setup).spawn().await;
    let (_fast, mut slow, _total) = slow_consumer_dropped(&edge, &bus).await;

    // It reads again as soon as the drop is announced: behind what was
    // already on its way, the close frame says why (try again later).
    slow.resume();
    slow.expect_close(1013).await;
}

both_buses!(a_client_that_stops_answering_pings_is_dropped);
async fn a_client_that_stops_answering_pings_is_dropped(setup: BusSetup) {
    let bus = TestBus::connect(&setup).await;
    let edge = TestEdge::builder(&setup)
        .timing(|t| {
            t.ping_interval = Duration::from_millis(100);
            t.pong_timeout = Duration::from_millis(300);
        })
        .spawn()
        .await;
    let mut events = bus.events().await;
    let mut live = edge.user("live", &[]).await;
    let mut silent = edge.user("silent", &[]).await;
    silent.pause();

    let dropped = events.disconnect_of(silent.conn()).await;
    // proto::close::ABNORMAL: the peer vanished, reported, never sent.
    assert_eq!(dropped["code"], 1006, "{dropped}");

    // The live client idled just as long, was pinged, answered, and stays.
    assert!(live.pings_seen() >= 1, "the edge never pinged an idle client");
    live.ping("alive").await;
    let payload = r#"{"action":"u"}"#;
    bus.to_user("live", payload).await;
    assert_eq!(live.recv_raw().await, payload);

    silent.resume();
    silent.expect_disconnected().await;
}

both_buses!(pings_keep_an_idle_but_responsive_client_connected);
async fn pings_keep_an_idle_but_responsive_client_connected(setup: BusSetup) {
    let bus = TestBus::connect(&setup).await;
    let edge = TestEdge::builder(&setup)
        .timing(|t| {
            t.ping_interval = Duration::from_millis(100);
            t.pong_timeout = Duration::from_millis(400);
        })
        .spawn()
        .await;
    let mut alice = edge.user("alice", &[]).await;
    // Many ping intervals and pong timeouts of application silence.
    alice.expect_silence(Duration::from_millis(2000)).await;
    assert!(alice.pings_seen() >= 3, "expected pings while idle, saw {}", alice.pings_seen());
    bus.to_user("alice", r#"{"action":"u"}"#).await;
    assert_eq!(alice.recv_raw().await, r#"{"action":"u"}"#);
}
