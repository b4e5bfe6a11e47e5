//! A `nats-server` per test, an example serving on it, and the requests and
//! subscriptions the tests use.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use herald_bus::{Bus, BusConfig, BusError, RequestError, Subscription};
use herald_examples::Example;
use herald_proto::subject::Subjects;
use serde_json::{Value, json};
use tokio::task::JoinHandle;
use tokio::time::{Instant, sleep, timeout};
use tokio_util::sync::CancellationToken;

/// How long anything the tests wait for may take.
const PATIENCE: Duration = Duration::from_secs(5);

/// The connection every test request comes from.
pub const CONN: &str = "0123456789abcdef.1";

/// A `nats-server` child process on a free port of 127.0.0.1, killed on drop.
pub struct Nats {
    child: Child,
    url: String,
}

impl Nats {
    /// Starts `nats-server` (from `PATH`) and waits until it accepts
    /// connections.
    pub async fn start() -> Nats {
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let child = Command::new("nats-server")
            .args(["-a", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nats-server must be on PATH");
        let nats = Nats { child, url: format!("nats://127.0.0.1:{port}") };
        let deadline = Instant::now() + PATIENCE;
        while tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_err() {
            assert!(Instant::now() < deadline, "nats-server did not start on port {port}");
            sleep(Duration::from_millis(20)).await;
        }
        nats
    }

    /// `nats://127.0.0.1:<port>`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// A new connection to the server.
    pub async fn bus(&self) -> Bus {
        Bus::connect(&BusConfig::new(vec![self.url.clone()], "herald-examples-test")).await.unwrap()
    }
}

impl Drop for Nats {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An example serving in the background.
pub struct Running {
    stop: CancellationToken,
    task: JoinHandle<Result<(), BusError>>,
}

impl Running {
    pub fn start(example: Example, bus: Bus, subjects: Subjects) -> Running {
        let stop = CancellationToken::new();
        let stopped = stop.clone().cancelled_owned();
        let task = tokio::spawn(async move { example.serve(&bus, &subjects, stopped).await });
        Running { stop, task }
    }

    /// Stops the example and checks that it drains and returns cleanly.
    pub async fn stop(self) {
        self.stop.cancel();
        let outcome = timeout(PATIENCE, self.task).await.expect("the example did not stop");
        outcome.expect("the example panicked").expect("the example failed");
    }
}

/// A handler request for `action`, as the router sends it: from [`CONN`],
/// with the connection's `user` and `groups`.
pub fn action(action: &str, details: Value, user: Option<&str>, groups: &[&str]) -> String {
    json!({
        "action": action,
        "details": details,
        "id": 7,
        "conn": CONN,
        "user": user,
        "groups": groups,
        "claims": {"plan": "pro"},
    })
    .to_string()
}

/// Sends a request and returns the answer's text. Retries while nobody
/// listens: an example subscribes only once it is running.
pub async fn request(bus: &Bus, subject: &str, payload: impl Into<String>) -> String {
    let payload = Bytes::from(payload.into());
    let deadline = Instant::now() + PATIENCE;
    loop {
        match bus.request(subject.to_owned(), payload.clone(), PATIENCE).await {
            Ok(answer) => return String::from_utf8(answer.to_vec()).expect("answers are text"),
            Err(RequestError::NoResponders(_)) if Instant::now() < deadline => sleep(Duration::from_millis(20)).await,
            Err(e) => panic!("no answer: {e}"),
        }
    }
}

/// [`request`], with the answer read as JSON.
pub async fn request_json(bus: &Bus, subject: &str, payload: impl Into<String>) -> Value {
    serde_json::from_str(&request(bus, subject, payload).await).expect("answers are JSON")
}

/// Subscribes to `subject`, live on the server once this returns.
pub async fn subscribe(bus: &Bus, subject: &str) -> Subscription {
    let subscription = bus.subscribe(subject.to_owned()).await.unwrap();
    bus.flush().await.unwrap();
    subscription
}

/// The next message on `subscription`: its subject and its payload's text.
pub async fn next(subscription: &mut Subscription) -> (String, String) {
    let message = timeout(PATIENCE, subscription.next()).await.expect("no message came").expect("subscription ended");
    (message.subject().to_owned(), String::from_utf8(message.payload.to_vec()).expect("payloads are text"))
}

/// Checks that nothing came on `subscription` before the answer `bus` last
/// got from an example: publishes a marker on `marker_subject`, which the
/// subscription matches, and expects it to be the next message. An example
/// publishes before it answers, and NATS delivers to one connection in order,
/// so anything it published would come before the marker.
pub async fn assert_nothing_came(bus: &Bus, subscription: &mut Subscription, marker_subject: &str) {
    bus.publish(marker_subject.to_owned(), Bytes::from_static(b"marker")).await.unwrap();
    assert_eq!(next(subscription).await, (marker_subject.to_owned(), "marker".to_owned()));
}
