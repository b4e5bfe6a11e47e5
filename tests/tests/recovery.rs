//! Missed-message recovery (ADR 0012, PROTOCOL 5.25) with real edges
//! (`herald edge` processes) on a real nats-server with JetStream: a client
//! whose edge is killed with SIGKILL resumes on the other edge and gets
//! every frame it missed exactly once and in order, or is told
//! `recovered: false` when that cannot be (beyond the depth, stream
//! deleted). Users, groups and broadcasts to everyone (`all`) keep a
//! history here.

use std::collections::BTreeMap;
use std::time::Duration;

use herald_tests::{Client, HeraldProcess, NatsServer, TestBus, Token, assert_eventually};
use serde_json::{Value, json};
use tokio::time::Instant;

const STREAM: &str = "HERALD_HISTORY";

/// A `herald edge` keeping a history of users, groups and `all`.
async fn edge(nats: &NatsServer, depth: u32) -> HeraldProcess {
    HeraldProcess::edge(nats)
        .env("HERALD_HISTORY", "users,groups,all")
        .env("HERALD_HISTORY_DEPTH", &depth.to_string())
        .spawn()
        .await
}

/// Whether the history stream exists now.
async fn stream_exists(bus: &TestBus) -> bool {
    let info = bus.bus().request(format!("$JS.API.STREAM.INFO.{STREAM}"), Default::default(), Duration::from_secs(2));
    match info.await {
        Ok(reply) => serde_json::from_slice::<Value>(&reply).is_ok_and(|info| info.get("error").is_none()),
        Err(_) => false,
    }
}

fn url(edge: &HeraldProcess, token: &str, resume: Option<&BTreeMap<String, String>>) -> String {
    let mut url = edge.ws_url(Some(token));
    if let Some(resume) = resume {
        let resume = serde_json::to_string(resume).unwrap();
        url.push_str("&resume=");
        url.extend(form_urlencoded::byte_serialize(resume.as_bytes()));
    }
    url
}

/// What a client saw: the numbers per subject key, in order, and its
/// positions.
#[derive(Debug, Default)]
struct Seen {
    numbers: BTreeMap<String, Vec<u64>>,
    positions: BTreeMap<String, String>,
    /// Each `$recovered`'s flag.
    recovered: Vec<bool>,
}

impl Seen {
    /// Takes one frame in; false for a frame that is not a number or
    /// `$recovered`.
    fn take(&mut self, frame: &Value) -> bool {
        match frame["action"].as_str() {
            Some("$recovered") => {
                self.recovered.push(frame["details"]["recovered"].as_bool().expect("recovered is a bool"));
                for (key, at) in frame["details"]["offsets"].as_object().expect("offsets is an object") {
                    self.positions.insert(key.clone(), at.as_str().expect("positions are strings").to_owned());
                }
                true
            }
            Some("n") => {
                let key = frame["offset"]["of"].as_str().unwrap_or_else(|| panic!("a frame without offset: {frame}"));
                self.positions.insert(key.to_owned(), frame["offset"]["at"].as_str().unwrap().to_owned());
                self.numbers.entry(key.to_owned()).or_default().push(frame["details"].as_u64().unwrap());
                true
            }
            _ => false,
        }
    }
}

/// Publishes `count` numbered frames to user alice, group room and
/// everyone, one each every `every`.
async fn publish_numbers(bus: TestBus, from: u64, count: u64, every: Duration) {
    for n in from..from + count {
        let frame = json!({"action": "n", "details": n}).to_string();
        bus.to_user("alice", &frame).await;
        bus.to_group("room", &frame).await;
        bus.to_all(&frame).await;
        tokio::time::sleep(every).await;
    }
}

/// Connects alice (in group room) and reads `$connected` and `$recovered`.
async fn connect(edge: &HeraldProcess, seen: &mut Seen, resume: bool) -> Client {
    let token = Token::user("alice").groups(["room"]).hs256();
    let resume = resume.then(|| seen.positions.clone());
    Client::open(&url(edge, &token, resume.as_ref())).await
}

/// Reads frames until `$recovered` arrives, taking every frame in.
async fn until_recovered(client: &mut Client, seen: &mut Seen) -> bool {
    let answers = seen.recovered.len();
    while seen.recovered.len() == answers {
        let frame = client.recv().await;
        assert!(seen.take(&frame), "unexpected frame {frame}");
    }
    *seen.recovered.last().unwrap()
}

async fn two_edges(nats: &NatsServer, depth: u32) -> (HeraldProcess, HeraldProcess, TestBus) {
    let first = edge(nats, depth).await;
    let second = edge(nats, depth).await;
    let bus = TestBus::connect(nats).await;
    assert_eventually!(stream_exists(&bus).await, Duration::from_secs(10));
    (first, second, bus)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_whose_edge_is_killed_gets_every_number_once_in_order_on_the_other_edge() {
    let nats = NatsServer::start_jetstream().await;
    let (mut first, second, bus) = two_edges(&nats, 1000).await;
    let mut seen = Seen::default();
    let mut client = connect(&first, &mut seen, false).await;
    assert!(!until_recovered(&mut client, &mut seen).await, "a fresh connection recovers nothing");
    assert_eq!(seen.positions.keys().collect::<Vec<_>>(), ["all", "group:room", "user"]);

    const COUNT: u64 = 400;
    let publisher = tokio::spawn(publish_numbers(bus.clone(), 0, COUNT, Duration::from_millis(5)));
    // Read until a good part has arrived, then kill the edge mid-stream.
    while seen.numbers.get("user").map_or(0, Vec::len) < 100 {
        let frame = client.recv().await;
        assert!(seen.take(&frame), "unexpected frame {frame}");
    }
    first.sigkill().await;
    while let Ok(frame) = client.try_recv_or_close().await {
        assert!(seen.take(&frame), "unexpected frame {frame}");
    }
    let before = seen.numbers["user"].len();
    // Offline for a while, as a client backing off would be.
    tokio::time::sleep(Duration::from_millis(300)).await;

    let mut client = connect(&second, &mut seen, true).await;
    assert!(until_recovered(&mut client, &mut seen).await, "resumed within the history: recovered");
    publisher.await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while seen.numbers.values().any(|numbers| numbers.len() < COUNT as usize) && Instant::now() < deadline {
        if let Some(frame) = client.try_recv(Duration::from_millis(500)).await {
            assert!(seen.take(&frame), "unexpected frame {frame}");
        }
    }
    let expected: Vec<u64> = (0..COUNT).collect();
    assert_eq!(seen.numbers["user"], expected, "user: every number once, in order");
    assert_eq!(seen.numbers["group:room"], expected, "group: every number once, in order");
    assert_eq!(seen.numbers["all"], expected, "all: every number once, in order");
    assert!(before < COUNT as usize, "the edge was killed while numbers were still coming ({before})");
    client.expect_silence(Duration::from_millis(300)).await;
}

/// After a client on the first of two edges saw numbers on its user and
/// group, and that edge was SIGKILLed.
struct Killed {
    second: HeraldProcess,
    bus: TestBus,
    seen: Seen,
    /// Last, so the edges stop before it.
    _nats: NatsServer,
}

/// Two edges keeping `depth` messages per subject; a client on the first
/// sees numbers 0..`count`, then its edge is SIGKILLed.
async fn numbers_then_kill(depth: u32, count: u64) -> Killed {
    let nats = NatsServer::start_jetstream().await;
    let (mut first, second, bus) = two_edges(&nats, depth).await;
    let mut seen = Seen::default();
    let mut client = connect(&first, &mut seen, false).await;
    until_recovered(&mut client, &mut seen).await;
    publish_numbers(bus.clone(), 0, count, Duration::ZERO).await;
    for _ in 0..3 * count {
        assert!(seen.take(&client.recv().await));
    }
    first.sigkill().await;
    client.expect_disconnected().await;
    Killed { second, bus, seen, _nats: nats }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_missed_more_than_the_depth_is_told_recovered_false() {
    let Killed { second, bus, mut seen, _nats } = numbers_then_kill(10, 3).await;

    // Within the depth on the group and all, beyond it on the user.
    publish_numbers(bus.clone(), 3, 5, Duration::ZERO).await;
    for n in 8..20 {
        bus.to_user("alice", &json!({"action": "n", "details": n}).to_string()).await;
    }
    let mut client = connect(&second, &mut seen, true).await;
    let recovered = until_recovered(&mut client, &mut seen).await;
    assert!(!recovered, "12 missed on a subject that keeps 10: recovered false");
    // Nothing replayed: the app reloads its state instead.
    assert_eq!(seen.numbers["user"], [0, 1, 2]);
    // The positions it was given are good for the next time.
    bus.to_user("alice", r#"{"action":"n","details":20}"#).await;
    assert!(seen.take(&client.recv().await));
    assert_eq!(seen.numbers["user"], [0, 1, 2, 20]);
    drop(client);
    let mut client = connect(&second, &mut seen, true).await;
    assert!(until_recovered(&mut client, &mut seen).await, "nothing missed since: recovered");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_resuming_after_the_stream_was_deleted_is_told_recovered_false() {
    let Killed { second, bus, mut seen, _nats } = numbers_then_kill(100, 2).await;

    let deleted =
        bus.bus().request(format!("$JS.API.STREAM.DELETE.{STREAM}"), Default::default(), Duration::from_secs(2));
    let deleted: Value = serde_json::from_slice(&deleted.await.unwrap()).unwrap();
    assert_eq!(deleted["success"], true, "{deleted}");
    // The edges put a new stream in place.
    assert_eventually!(stream_exists(&bus).await, Duration::from_secs(10));
    publish_numbers(bus.clone(), 2, 2, Duration::ZERO).await;

    let mut client = connect(&second, &mut seen, true).await;
    assert!(!until_recovered(&mut client, &mut seen).await, "another stream: recovered false");
    assert_eq!(seen.numbers["user"], [0, 1]);
    // Deliveries flow on the new stream.
    publish_numbers(bus.clone(), 4, 1, Duration::ZERO).await;
    let mut fresh = Seen::default();
    for _ in 0..3 {
        assert!(fresh.take(&client.recv().await));
    }
    assert_eq!(fresh.numbers["user"], [4]);
    assert_eq!(fresh.numbers["group:room"], [4]);
    assert_eq!(fresh.numbers["all"], [4]);
}

/// Joins `group` with `$join`, from where `seen` says the client was in it
/// (if anywhere), reading every frame before the reply in; the reply's
/// `recovered`.
async fn join(client: &mut Client, seen: &mut Seen, group: &str) -> bool {
    let key = format!("group:{group}");
    let details = match seen.positions.get(&key) {
        Some(at) => json!({"group": group, "resume": at}),
        None => json!({"group": group}),
    };
    client.send_action("$join", details, json!("j")).await;
    loop {
        let frame = client.recv().await;
        if frame["action"] == "$join" {
            let at = frame["details"]["offsets"][&key].as_str().expect("a position in the group");
            seen.positions.insert(key, at.to_owned());
            return frame["details"]["recovered"].as_bool().expect("recovered is a bool");
        }
        assert!(seen.take(&frame), "unexpected frame {frame}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_joined_after_connecting_is_recovered_when_joined_again_from_its_position() {
    let nats = NatsServer::start_jetstream().await;
    let (mut first, second, bus) = two_edges(&nats, 1000).await;
    let token = Token::user("bob").join(["lobby"]).hs256();
    let mut seen = Seen::default();
    let mut client = Client::open(&url(&first, &token, None)).await;
    until_recovered(&mut client, &mut seen).await;
    assert!(!join(&mut client, &mut seen, "lobby").await, "a first join recovers nothing");

    const COUNT: u64 = 300;
    let publishing = {
        let bus = bus.clone();
        tokio::spawn(async move {
            for n in 0..COUNT {
                bus.to_group("lobby", &json!({"action": "n", "details": n}).to_string()).await;
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
    };
    while seen.numbers.get("group:lobby").map_or(0, Vec::len) < 60 {
        let frame = client.recv().await;
        assert!(seen.take(&frame), "unexpected frame {frame}");
    }
    first.sigkill().await;
    while let Ok(frame) = client.try_recv_or_close().await {
        assert!(seen.take(&frame), "unexpected frame {frame}");
    }
    tokio::time::sleep(Duration::from_millis(300)).await;

    let mut client = Client::open(&url(&second, &token, Some(&seen.positions.clone()))).await;
    until_recovered(&mut client, &mut seen).await;
    assert!(join(&mut client, &mut seen, "lobby").await, "joined again within the history: recovered");
    publishing.await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while seen.numbers["group:lobby"].len() < COUNT as usize && Instant::now() < deadline {
        if let Some(frame) = client.try_recv(Duration::from_millis(500)).await {
            assert!(seen.take(&frame), "unexpected frame {frame}");
        }
    }
    assert_eq!(seen.numbers["group:lobby"], (0..COUNT).collect::<Vec<_>>(), "every number once, in order");

    // A position from another group's stream, or none that reads: not recovered, nothing replayed.
    let mut other = Client::open(&url(&second, &token, None)).await;
    let mut fresh = Seen { positions: BTreeMap::from([("group:lobby".to_owned(), "x".to_owned())]), ..Seen::default() };
    until_recovered(&mut other, &mut fresh).await;
    assert!(!join(&mut other, &mut fresh, "lobby").await, "a bad position: recovered false");
    assert!(fresh.numbers.is_empty(), "nothing replayed: {:?}", fresh.numbers);
}
