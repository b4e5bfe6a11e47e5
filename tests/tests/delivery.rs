//! Delivery from backends over the bus: `herald.user.<U>`,
//! `herald.group.<G>`, `herald.conn.<C>`, `herald.all`, the exclude header,
//! byte-for-byte payloads and names that need encoding, across two edges on
//! one bus; and the bus's deliveries, which hand the edge each message
//! with its headers (on NATS over a subscribe-only connection of their own,
//! one subscription per user or group).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use herald_bus::{Deliver, Delivered};
use herald_proto::conn_id::ConnId;
use herald_proto::published_at::PUBLISHED_AT_HEADER;
use herald_proto::subject::Subjects;
use herald_tests::{
    BusSetup, BusSource, Client, NatsServer, RECV_TIMEOUT, SILENCE, TestBus, TestEdge, Token, assert_eventually,
    both_buses,
};
use serde_json::json;
use tokio::sync::mpsc;

both_buses!(a_user_message_reaches_each_tab_on_each_edge_exactly_once);
async fn a_user_message_reaches_each_tab_on_each_edge_exactly_once(setup: BusSetup) {
    let bus = TestBus::connect(&setup).await;
    let edge1 = TestEdge::start(&setup).await;
    let edge2 = TestEdge::start(&setup).await;
    assert_ne!(edge1.id(), edge2.id(), "two edges must have different ids");

    let mut tab1 = edge1.user("alice", &[]).await;
    let mut tab2 = edge2.user("alice", &[]).await;
    let mut tab3 = edge1.user("alice", &[]).await;
    let mut bob1 = edge1.user("bob", &[]).await;
    let mut bob2 = edge2.user("bob", &[]).await;
    let conns = [tab1.conn(), tab2.conn(), tab3.conn(), bob1.conn(), bob2.conn()];
    let mut unique = conns.to_vec();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), 5, "connection ids must be unique: {conns:?}");

    let payload = r#"{"action":"note/new","details":{"text":"hi alice"}}"#;
    bus.to_user("alice", payload).await;
    for tab in [&mut tab1, &mut tab2, &mut tab3] {
        assert_eq!(tab.recv_raw().await, payload);
    }
    Client::all_silent(&mut [&mut tab1, &mut tab2, &mut tab3, &mut bob1, &mut bob2]).await;

    // And the other way round: bob's message reaches only bob's two tabs.
    let payload = r#"{"action":"note/new","details":{"text":"hi bob"}}"#;
    bus.to_user("bob", payload).await;
    assert_eq!(bob1.recv_raw().await, payload);
    assert_eq!(bob2.recv_raw().await, payload);
    Client::all_silent(&mut [&mut tab1, &mut tab2, &mut tab3, &mut bob1, &mut bob2]).await;
}

both_buses!(a_payload_is_forwarded_byte_for_byte);
async fn a_payload_is_forwarded_byte_for_byte(setup: BusSetup) {
    let bus = TestBus::connect(&setup).await;
    let edge = TestEdge::start(&setup).await;
    let mut alice = edge.user("alice", &["g"]).await;

    // Odd whitespace, key order, escapes, number forms and non-ASCII text
    // would all change if the edge parsed and re-encoded the frame.
    let payloads = [
        "{ \"details\" :\t{\"b\":1,  \"a\":[1.0e3, -0, 2.50]} ,\n \"action\":\"x/y\" }",
        r#"{"action":"x","details":"\u00e9t\u00e9 \ud83d\ude00 \"q\""}"#,
        r#"{"action":"x","details":"été 😀","id":null}"#,
    ];
    for payload in payloads {
        bus.to_user("alice", payload).await;
        assert_eq!(alice.recv_raw().await, payload);
        bus.to_group("g", payload).await;
        assert_eq!(alice.recv_raw().await, payload);
        bus.to_conn(alice.conn(), payload).await;
        assert_eq!(alice.recv_raw().await, payload);
        bus.to_all(payload).await;
        assert_eq!(alice.recv_raw().await, payload);
    }
    alice.expect_silence(SILENCE).await;
}

both_buses!(a_group_message_reaches_the_members_from_their_tokens_only);
async fn a_group_message_reaches_the_members_from_their_tokens_only(setup: BusSetup) {
    let bus = TestBus::connect(&setup).await;
    let edge1 = TestEdge::start(&setup).await;
    let edge2 = TestEdge::start(&setup).await;

    let mut alice = edge1.user("alice", &["room:1", "lobby"]).await;
    let mut groups = alice.info().groups.clone();
    groups.sort();
    assert_eq!(groups, ["lobby", "room:1"], "$connected lists the token's groups");
    let mut carol = edge2.user("carol", &["room:1"]).await;
    let mut bob = edge1.user("bob", &["room:2"]).await;
    let mut dave = edge2.user("dave", &[]).await;

    let payload = r#"{"action":"chat/msg","details":"to room 1"}"#;
    bus.to_group("room:1", payload).await;
    assert_eq!(alice.recv_raw().await, payload);
    assert_eq!(carol.recv_raw().await, payload);
    Client::all_silent(&mut [&mut alice, &mut carol, &mut bob, &mut dave]).await;

    let payload = r#"{"action":"chat/msg","details":"to room 2"}"#;
    bus.to_group("room:2", payload).await;
    assert_eq!(bob.recv_raw().await, payload);
    Client::all_silent(&mut [&mut alice, &mut carol, &mut bob, &mut dave]).await;

    // A group nobody is in reaches nobody.
    bus.to_group("room:3", r#"{"action":"chat/msg"}"#).await;
    Client::all_silent(&mut [&mut alice, &mut carol, &mut bob, &mut dave]).await;
}

both_buses!(a_conn_message_reaches_that_one_connection);
async fn a_conn_message_reaches_that_one_connection(setup: BusSetup) {
    let bus = TestBus::connect(&setup).await;
    let edge1 = TestEdge::start(&setup).await;
    let edge2 = TestEdge::start(&setup).await;

    let mut tab1 = edge1.user("alice", &["g"]).await;
    let mut tab2 = edge1.user("alice", &["g"]).await;
    let mut tab3 = edge2.user("alice", &["g"]).await;

    for target in 0..3 {
        let conn = [tab1.conn(), tab2.conn(), tab3.conn()][target].to_owned();
        let payload = json!({"action": "only/you", "details": conn}).to_string();
        bus.to_conn(&conn, &payload).await;
        let mut tabs = [&mut tab1, &mut tab2, &mut tab3];
        assert_eq!(tabs[target].recv_raw().await, payload);
        Client::all_silent(&mut tabs).await;
    }

    // Ids nobody holds, on a live edge and on no edge, reach nobody and
    // break nothing.
    let local = tab2.info().conn_id().local();
    bus.to_conn(&ConnId::new(edge1.id(), local + 1000).to_string(), r#"{"action":"x"}"#).await;
    bus.to_conn("nosuchedge.1", r#"{"action":"x"}"#).await;
    Client::all_silent(&mut [&mut tab1, &mut tab2, &mut tab3]).await;
    let payload = r#"{"action":"still/works"}"#;
    bus.to_conn(tab1.conn(), payload).await;
    assert_eq!(tab1.recv_raw().await, payload);
}

both_buses!(an_all_message_reaches_everyone_once);
async fn an_all_message_reaches_everyone_once(setup: BusSetup) {
    let bus = TestBus::connect(&setup).await;
    let edge1 = TestEdge::builder(&setup).anonymous(true).spawn().await;
    let edge2 = TestEdge::start(&setup).await;

    let mut alice = edge1.user("alice", &["g"]).await;
    let mut alice2 = edge2.user("alice", &[]).await;
    let mut bob = edge2.user("bob", &[]).await;
    let mut nobody = Client::open(&edge1.ws_url(None)).await;
    assert_eq!(nobody.info().user, None);

    let payload = r#"{"action":"maintenance","details":{"in":"5m"}}"#;
    bus.to_all(payload).await;
    for client in [&mut alice, &mut alice2, &mut bob, &mut nobody] {
        assert_eq!(client.recv_raw().await, payload);
    }
    Client::all_silent(&mut [&mut alice, &mut alice2, &mut bob, &mut nobody]).await;
}

both_buses!(the_exclude_header_skips_that_one_connection);
async fn the_exclude_header_skips_that_one_connection(setup: BusSetup) {
    let bus = TestBus::connect(&setup).await;
    let edge1 = TestEdge::start(&setup).await;
    let edge2 = TestEdge::start(&setup).await;

    let mut tab1 = edge1.user("alice", &["room"]).await;
    let mut tab2 = edge2.user("alice", &["room"]).await;
    let mut tab3 = edge1.user("alice", &["room"]).await;
    let mut bob = edge2.user("bob", &["room"]).await;
    let subjects = bus.subjects().clone();

    // A user message, skipping the tab that sent the original action.
    let payload = r#"{"action":"sync","details":1}"#;
    bus.publish_excluding(subjects.user("alice"), tab1.conn(), payload.to_owned()).await;
    assert_eq!(tab2.recv_raw().await, payload);
    assert_eq!(tab3.recv_raw().await, payload);
    Client::all_silent(&mut [&mut tab1, &mut tab2, &mut tab3, &mut bob]).await;

    // A group message, skipping a connection on the other edge.
    let payload = r#"{"action":"sync","details":2}"#;
    bus.publish_excluding(subjects.group("room"), bob.conn(), payload.to_owned()).await;
    for tab in [&mut tab1, &mut tab2, &mut tab3] {
        assert_eq!(tab.recv_raw().await, payload);
    }
    Client::all_silent(&mut [&mut tab1, &mut tab2, &mut tab3, &mut bob]).await;

    // Everyone but one.
    let payload = r#"{"action":"sync","details":3}"#;
    bus.publish_excluding(subjects.all(), tab2.conn(), payload.to_owned()).await;
    for client in [&mut tab1, &mut tab3, &mut bob] {
        assert_eq!(client.recv_raw().await, payload);
    }
    Client::all_silent(&mut [&mut tab1, &mut tab2, &mut tab3, &mut bob]).await;

    // A connection's own message, excluding it: nobody.
    let conn_subject = bus.conn_subject(tab3.conn());
    bus.publish_excluding(conn_subject, tab3.conn(), r#"{"action":"sync","details":4}"#.to_owned()).await;
    Client::all_silent(&mut [&mut tab1, &mut tab2, &mut tab3, &mut bob]).await;

    // Excluding an id nobody holds skips nobody.
    let payload = r#"{"action":"sync","details":5}"#;
    bus.publish_excluding(subjects.user("alice"), "nosuchedge.7", payload.to_owned()).await;
    for tab in [&mut tab1, &mut tab2, &mut tab3] {
        assert_eq!(tab.recv_raw().await, payload);
    }
    Client::all_silent(&mut [&mut tab1, &mut tab2, &mut tab3, &mut bob]).await;
}

/// Names with subject syntax in them (`.`, `*`, `>`), spaces, non-ASCII,
/// the encoding mark `~`, an encoded-looking plain name and the empty name:
/// each one's messages reach it and nobody else.
const TRICKY_NAMES: [&str; 15] =
    ["a", "a.b", "a*", "*", ">", "a.>", "a.*", "a b", "é", "", "~", "~YS5i", "YS5i", "a\u{0}b", "user:42@x"];

/// Whose names [`names_never_cross_deliver`] tries.
#[derive(Debug, Clone, Copy)]
enum Named {
    User,
    Group,
}

/// One client per name in [`TRICKY_NAMES`] (a user of that name, or a
/// member of a group of that name), over two edges; then one message per
/// name, all at once: each client's only frame is its own, then silence
/// everywhere.
async fn names_never_cross_deliver(setup: &BusSetup, named: Named) {
    let bus = TestBus::connect(setup).await;
    let edge1 = TestEdge::start(setup).await;
    let edge2 = TestEdge::start(setup).await;

    let mut clients = Vec::new();
    for (i, name) in TRICKY_NAMES.iter().enumerate() {
        let edge = if i % 2 == 0 { &edge1 } else { &edge2 };
        let client = match named {
            Named::User => edge.user(name, &[]).await,
            Named::Group => {
                let client = edge.client(&Token::user(&format!("member{i}")).groups([*name]).hs256()).await;
                assert_eq!(client.info().groups, [*name]);
                client
            }
        };
        clients.push(client);
    }
    let frame = |name: &str| json!({"action": format!("for/{named:?}"), "details": name}).to_string();
    for name in TRICKY_NAMES {
        let subject = match named {
            Named::User => bus.subjects().user(name),
            Named::Group => bus.subjects().group(name),
        };
        bus.publish(subject, frame(name)).await;
    }
    for (client, name) in clients.iter_mut().zip(TRICKY_NAMES) {
        assert_eq!(client.recv_raw().await, frame(name), "{named:?} {name:?}");
    }
    let mut all: Vec<&mut Client> = clients.iter_mut().collect();
    Client::all_silent(&mut all).await;
}

both_buses!(user_names_with_dots_wildcards_spaces_and_unicode_never_cross_deliver);
async fn user_names_with_dots_wildcards_spaces_and_unicode_never_cross_deliver(setup: BusSetup) {
    names_never_cross_deliver(&setup, Named::User).await;
}

both_buses!(group_names_with_dots_wildcards_spaces_and_unicode_never_cross_deliver);
async fn group_names_with_dots_wildcards_spaces_and_unicode_never_cross_deliver(setup: BusSetup) {
    names_never_cross_deliver(&setup, Named::Group).await;
}

both_buses!(users_and_groups_of_the_same_name_stay_apart);
async fn users_and_groups_of_the_same_name_stay_apart(setup: BusSetup) {
    let bus = TestBus::connect(&setup).await;
    let edge = TestEdge::start(&setup).await;

    // User "x" is in no group; a member of group "x" is another user.
    let mut user_x = edge.user("x", &[]).await;
    let mut group_x = edge.user("y", &["x"]).await;

    bus.to_user("x", r#"{"action":"u"}"#).await;
    assert_eq!(user_x.recv_raw().await, r#"{"action":"u"}"#);
    bus.to_group("x", r#"{"action":"g"}"#).await;
    assert_eq!(group_x.recv_raw().await, r#"{"action":"g"}"#);
    Client::all_silent(&mut [&mut user_x, &mut group_x]).await;
}

both_buses!(messages_on_one_subject_arrive_in_order);
async fn messages_on_one_subject_arrive_in_order(setup: BusSetup) {
    let bus = TestBus::connect(&setup).await;
    let edge = TestEdge::start(&setup).await;
    let mut alice = edge.user("alice", &[]).await;

    let subject = bus.subjects().user("alice");
    for i in 0..200 {
        bus.publish_no_flush(subject.clone(), json!({"action": "seq", "details": i}).to_string()).await;
    }
    bus.flush().await;
    for i in 0..200 {
        let frame = alice.recv().await;
        assert_eq!(frame, json!({"action": "seq", "details": i}));
    }
    alice.expect_silence(SILENCE).await;
}

both_buses!(with_several_flushers_a_group_gets_every_message_in_order);
async fn with_several_flushers_a_group_gets_every_message_in_order(setup: BusSetup) {
    // One flusher is the default (ADR 0036); an operator may start more,
    // and then the sessions are shared among them (ADR 0030). No pings:
    // a session they woke would write what a flusher left behind.
    let bus = TestBus::connect(&setup).await;
    let edge = TestEdge::builder(&setup)
        .config(|config| config.flushers = 3)
        .timing(|timing| timing.ping_interval = Duration::from_secs(60))
        .spawn()
        .await;
    let mut members = Vec::new();
    for n in 0..24 {
        members.push(edge.user(&format!("member-{n}"), &["room"]).await);
    }

    let subject = bus.subjects().group("room");
    for i in 0..100 {
        bus.publish_no_flush(subject.clone(), json!({"action": "seq", "details": i}).to_string()).await;
    }
    bus.flush().await;
    for (n, member) in members.iter_mut().enumerate() {
        for i in 0..100 {
            assert_eq!(member.recv().await, json!({"action": "seq", "details": i}), "member {n}");
        }
    }
    Client::all_silent(&mut members.iter_mut().collect::<Vec<_>>()).await;
}

both_buses!(delivery_starts_as_soon_as_connected_is_read);
async fn delivery_starts_as_soon_as_connected_is_read(setup: BusSetup) {
    // `$connected` is sent only once the connection's subscriptions are
    // live, so a publish right after it is never lost. Repeated, with fresh
    // users and groups (each needing a new NATS subscription), to catch a
    // race rather than to pass by luck.
    let bus = TestBus::connect(&setup).await;
    let edge1 = TestEdge::start(&setup).await;
    let edge2 = TestEdge::start(&setup).await;
    for i in 0..300 {
        let edge = if i % 2 == 0 { &edge1 } else { &edge2 };
        let user = format!("fresh-user-{i}");
        let group = format!("fresh-group-{i}");
        let mut client = edge.user(&user, &[&group]).await;
        bus.to_user(&user, r#"{"action":"u"}"#).await;
        bus.to_group(&group, r#"{"action":"g"}"#).await;
        bus.to_conn(client.conn(), r#"{"action":"c"}"#).await;
        // Three subjects: no order between them is promised.
        let mut got = Vec::new();
        while got.len() < 3 {
            match client.try_recv(RECV_TIMEOUT).await {
                Some(frame) => got.push(frame["action"].as_str().expect("action").to_owned()),
                None => break,
            }
        }
        got.sort();
        assert_eq!(
            got,
            ["c", "g", "u"],
            "round {i} on edge {}: published to user (u), group (g) and conn (c) right after $connected",
            edge.id()
        );
    }
}

both_buses!(a_closed_connection_stops_receiving_and_others_keep_receiving);
async fn a_closed_connection_stops_receiving_and_others_keep_receiving(setup: BusSetup) {
    let bus = TestBus::connect(&setup).await;
    let edge = TestEdge::start(&setup).await;
    let mut events = bus.events().await;

    let mut tab1 = edge.user("alice", &["g"]).await;
    let mut tab2 = edge.user("alice", &["g"]).await;
    events.connect_of(tab1.conn()).await;
    events.connect_of(tab2.conn()).await;
    let tab1_conn = tab1.conn().to_owned();
    tab1.close(1000, "bye").await;
    assert_eq!(tab1.expect_disconnected().await, Some(1000));
    events.disconnect_of(&tab1_conn).await;

    // The user's and group's shared subscriptions must survive one of
    // their sessions leaving.
    bus.to_user("alice", r#"{"action":"u"}"#).await;
    assert_eq!(tab2.recv_raw().await, r#"{"action":"u"}"#);
    bus.to_group("g", r#"{"action":"g"}"#).await;
    assert_eq!(tab2.recv_raw().await, r#"{"action":"g"}"#);
    tab2.expect_silence(SILENCE).await;
}

/// What a [`Record`] saw of one message: subject, payload, and its
/// `Herald-Published-At` and `Nats-Sequence` headers.
type Seen = (String, String, Option<String>, Option<String>);

/// A deliveries handler that passes on what it is handed.
struct Record(mpsc::UnboundedSender<Seen>);

impl Deliver for Record {
    fn deliver(&self, message: Delivered<'_>) {
        let header = |name| message.header(name).map(str::to_owned);
        let payload = String::from_utf8_lossy(&message.payload).into_owned();
        let _ =
            self.0.send((message.subject.to_owned(), payload, header(PUBLISHED_AT_HEADER), header("Nats-Sequence")));
    }
}

async fn next_seen(seen: &mut mpsc::UnboundedReceiver<Seen>) -> Option<Seen> {
    tokio::time::timeout(RECV_TIMEOUT, seen.recv()).await.expect("a delivery within RECV_TIMEOUT")
}

both_buses!(deliveries_hand_each_message_with_its_headers_to_its_handler_until_dropped);
async fn deliveries_hand_each_message_with_its_headers_to_its_handler_until_dropped(setup: BusSetup) {
    let publisher = TestBus::connect(&setup).await;
    let deliveries = BusSource::from(&setup).connect("herald-tests-deliveries").await.deliveries().unwrap();
    let (record, mut seen) = mpsc::unbounded_channel();
    let first = deliveries.subscribe("t.*", Arc::new(Record(record))).unwrap();
    tokio::time::timeout(RECV_TIMEOUT, deliveries.sync()).await.expect("subscribed within RECV_TIMEOUT");

    let headers = [(PUBLISHED_AT_HEADER, "1764460800000000000"), ("Nats-Sequence", "7")];
    publisher.bus().publish_with_headers("t.a".into(), &headers, Bytes::from_static(b"one")).await.unwrap();
    publisher.bus().publish("t.b".into(), Bytes::from_static(b"two")).await.unwrap();
    let with_headers = ("t.a".into(), "one".into(), Some("1764460800000000000".into()), Some("7".into()));
    assert_eq!(next_seen(&mut seen).await, Some(with_headers));
    assert_eq!(next_seen(&mut seen).await, Some(("t.b".into(), "two".into(), None, None)));

    // Dropped, it gets nothing more: a second subscription on the same
    // connection gets the next message, and the first's handler is gone
    // without having been handed it.
    drop(first);
    let (record, mut seen_again) = mpsc::unbounded_channel();
    let _second = deliveries.subscribe("t.*", Arc::new(Record(record))).unwrap();
    tokio::time::timeout(RECV_TIMEOUT, deliveries.sync()).await.expect("subscribed within RECV_TIMEOUT");
    publisher.bus().publish("t.c".into(), Bytes::from_static(b"three")).await.unwrap();
    assert_eq!(next_seen(&mut seen_again).await, Some(("t.c".into(), "three".into(), None, None)));
    assert_eq!(next_seen(&mut seen).await, None, "the dropped subscription's handler got a message");
}

/// On NATS a user's or group's topic is one subscription on the edge's
/// deliveries connection (ADR 0006), live before `$connected`, none on its
/// bus connection; it goes when the topic's last session leaves.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topics_are_one_subscription_each_on_the_deliveries_connection() {
    let nats = NatsServer::start_monitored().await;
    let edge = TestEdge::start(&nats).await;
    let subjects = Subjects::default();
    let _tab1 = edge.user("alice", &["g"]).await;
    let _tab2 = edge.user("alice", &["g"]).await;
    let mut bob = edge.user("bob", &[]).await;

    let (alice_subject, bob_subject, group_subject) =
        (subjects.user("alice"), subjects.user("bob"), subjects.group("g"));
    let on_deliveries = nats.subscriptions_of("herald-tests-edge deliveries").await;
    for subject in [&alice_subject, &bob_subject, &group_subject, &subjects.all()] {
        assert_eq!(on_deliveries.iter().filter(|s| *s == subject).count(), 1, "{subject} in {on_deliveries:?}");
    }
    let on_bus = nats.subscriptions_of("herald-tests-edge").await;
    assert!(!on_bus.iter().any(|s| [&alice_subject, &bob_subject, &group_subject].contains(&s)), "{on_bus:?}");

    bob.close(1000, "bye").await;
    assert_eq!(bob.expect_disconnected().await, Some(1000));
    assert_eventually!(!nats.subscriptions_of("herald-tests-edge deliveries").await.contains(&bob_subject));
    assert!(nats.subscriptions_of("herald-tests-edge deliveries").await.contains(&alice_subject));
}
