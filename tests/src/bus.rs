//! The backends' side of the bus, played by the test: a plain NATS client on
//! the test's `nats-server` that publishes to Herald's subjects, sends
//! control operations, watches lifecycle events and answers client actions
//! the way a router would.
//!
//! Subject names always come from [`herald_proto::subject::Subjects`], so
//! the tests exercise the same encoding the edge uses.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use herald_proto::subject::{EXCLUDE_CONN_HEADER, Subjects};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::RECV_TIMEOUT;
use crate::client::Client;
use crate::nats::NatsServer;

/// A NATS client on the test server.
#[derive(Debug, Clone)]
pub struct TestBus {
    client: async_nats::Client,
    subjects: Subjects,
}

impl TestBus {
    pub async fn connect(nats: &NatsServer) -> TestBus {
        let client = async_nats::ConnectOptions::new()
            .name("herald-tests")
            .max_reconnects(None)
            .connect(nats.url())
            .await
            .unwrap_or_else(|e| panic!("cannot connect to {}: {e}", nats.url()));
        TestBus { client, subjects: Subjects::default() }
    }

    pub fn subjects(&self) -> &Subjects {
        &self.subjects
    }

    /// The underlying client, for anything the helpers do not cover.
    pub fn nats(&self) -> &async_nats::Client {
        &self.client
    }

    pub fn is_connected(&self) -> bool {
        self.client.connection_state() == async_nats::connection::State::Connected
    }

    /// Publishes and waits until the server has it.
    pub async fn publish(&self, subject: String, payload: impl Into<Bytes>) {
        self.client
            .publish(subject.clone(), payload.into())
            .await
            .unwrap_or_else(|e| panic!("publish to {subject}: {e}"));
        self.flush().await;
    }

    /// Publishes with `Herald-Exclude-Conn: <conn>`.
    pub async fn publish_excluding(&self, subject: String, exclude_conn: &str, payload: impl Into<Bytes>) {
        let mut headers = async_nats::HeaderMap::new();
        headers.insert(EXCLUDE_CONN_HEADER, exclude_conn);
        self.client
            .publish_with_headers(subject.clone(), headers, payload.into())
            .await
            .unwrap_or_else(|e| panic!("publish to {subject}: {e}"));
        self.flush().await;
    }

    /// Publishes without waiting for the server (for use during an outage,
    /// when a flush would block until the reconnect).
    pub async fn publish_no_flush(&self, subject: String, payload: impl Into<Bytes>) {
        let _ = self.client.publish(subject, payload.into()).await;
    }

    pub async fn flush(&self) {
        tokio::time::timeout(RECV_TIMEOUT, self.client.flush())
            .await
            .unwrap_or_else(|_| panic!("NATS flush took more than {RECV_TIMEOUT:?}"))
            .unwrap_or_else(|e| panic!("NATS flush: {e}"));
    }

    pub async fn to_user(&self, user: &str, payload: &str) {
        self.publish(self.subjects.user(user), payload.to_owned()).await;
    }

    pub async fn to_group(&self, group: &str, payload: &str) {
        self.publish(self.subjects.group(group), payload.to_owned()).await;
    }

    pub async fn to_conn(&self, conn: &str, payload: &str) {
        self.publish(self.conn_subject(conn), payload.to_owned()).await;
    }

    pub async fn to_all(&self, payload: &str) {
        self.publish(self.subjects.all(), payload.to_owned()).await;
    }

    /// `herald.conn.<conn>`.
    pub fn conn_subject(&self, conn: &str) -> String {
        self.subjects.conn(&conn.parse().unwrap_or_else(|e| panic!("{e}")))
    }

    /// A control operation on `herald.ctl.user.<user>`.
    pub async fn control_user(&self, user: &str, op: Value) {
        self.publish(self.subjects.ctl_user(user), op.to_string()).await;
    }

    /// A control operation on `herald.ctl.conn.<conn>`.
    pub async fn control_conn(&self, conn: &str, op: Value) {
        let subject = self.subjects.ctl_conn(&conn.parse().unwrap_or_else(|e| panic!("{e}")));
        self.publish(subject, op.to_string()).await;
    }

    /// Subscribes and makes sure the server knows before returning.
    pub async fn subscribe(&self, subject: String) -> async_nats::Subscriber {
        let subscriber =
            self.client.subscribe(subject.clone()).await.unwrap_or_else(|e| panic!("subscribe to {subject}: {e}"));
        self.flush().await;
        subscriber
    }

    /// Lifecycle events, from now on.
    pub async fn events(&self) -> Events {
        let subject = format!("{}.events.>", self.subjects.prefix());
        Events { subscriber: self.subscribe(subject).await, subjects: self.subjects.clone(), pending: VecDeque::new() }
    }

    /// Answers every request on `herald.router.actions` with what `handler`
    /// returns for it (`None`: never answer), and records the requests.
    pub async fn responder<F>(&self, handler: F) -> Responder
    where
        F: Fn(&Value) -> Option<Value> + Send + 'static,
    {
        let mut subscriber = self.subscribe(self.subjects.router_actions()).await;
        let client = self.client.clone();
        let (tx, requests) = mpsc::unbounded_channel();
        let task = tokio::spawn(async move {
            while let Some(message) = subscriber.next().await {
                let raw = String::from_utf8_lossy(&message.payload).into_owned();
                let request: Value = serde_json::from_str(&raw).unwrap_or(Value::Null);
                let answer = handler(&request);
                let _ = tx.send(raw);
                if let (Some(answer), Some(reply)) = (answer, message.reply) {
                    let _ = client.publish(reply, answer.to_string().into()).await;
                    let _ = client.flush().await;
                }
            }
        });
        Responder { requests, task }
    }

    /// Makes sure messages on `subject` reach every one of `clients`, after
    /// a change that takes effect asynchronously (a control operation, a
    /// reconnect): publishes probes until each client has received one,
    /// then a fence, and drops every probe before the fence. Afterwards the
    /// clients' next frames are whatever the test publishes next.
    pub async fn await_delivery(&self, subject: &str, clients: &mut [&mut Client]) {
        let deadline = Instant::now() + Duration::from_secs(15);
        let mut reached = vec![false; clients.len()];
        let mut n = 0u64;
        while reached.contains(&false) {
            assert!(
                Instant::now() < deadline,
                "messages on {subject} did not reach {} of the clients within 15 s",
                reached.iter().filter(|r| !**r).count()
            );
            n += 1;
            // During an outage the publish is lost or buffered: no flush.
            let probe = json!({"action": "test/probe", "details": n}).to_string();
            let _ =
                tokio::time::timeout(Duration::from_millis(200), self.client.publish(subject.to_owned(), probe.into()))
                    .await;
            for (client, reached) in clients.iter_mut().zip(reached.iter_mut()) {
                if *reached {
                    continue;
                }
                if let Some(frame) = client.try_recv(Duration::from_millis(100)).await {
                    assert_eq!(frame["action"], "test/probe", "unexpected frame while probing {subject}: {frame}");
                    *reached = true;
                }
            }
        }
        let fence = format!("test/fence/{}", unique());
        self.publish(subject.to_owned(), json!({"action": fence}).to_string()).await;
        for client in clients.iter_mut() {
            loop {
                let frame = client.recv().await;
                if frame["action"] == fence.as_str() {
                    break;
                }
                assert_eq!(frame["action"], "test/probe", "unexpected frame before the fence on {subject}: {frame}");
            }
        }
    }
}

impl TestBus {
    /// The mirror of [`TestBus::await_delivery`], after a change that makes
    /// `clients` stop receiving `subject` asynchronously (a control
    /// `leave`): publishes probes, which `witness` (who keeps receiving
    /// them) must get, until one probe reaches none of `clients` within
    /// [`SILENCE`](crate::SILENCE). Probes that did reach them meanwhile are
    /// consumed.
    pub async fn await_no_delivery(&self, subject: &str, witness: &mut Client, clients: &mut [&mut Client]) {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            assert!(Instant::now() < deadline, "messages on {subject} still reach the clients after 15 s");
            let probe = json!({"action": "test/probe", "details": unique()});
            self.publish(subject.to_owned(), probe.to_string()).await;
            assert_eq!(witness.recv().await, probe, "the witness must receive every probe on {subject}");
            let mut reached = false;
            for client in clients.iter_mut() {
                while let Some(frame) = client.try_recv(crate::SILENCE).await {
                    assert_eq!(frame["action"], "test/probe", "unexpected frame while probing {subject}: {frame}");
                    reached = true;
                }
            }
            if !reached {
                return;
            }
        }
    }
}

/// A number no other call in this process gets.
pub fn unique() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// Lifecycle events on `herald.events.>`.
#[derive(Debug)]
pub struct Events {
    subscriber: async_nats::Subscriber,
    subjects: Subjects,
    /// Events read while looking for another connection's.
    pending: VecDeque<(EventKind, Value)>,
}

/// Which lifecycle event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    Connect,
    Disconnect,
}

impl Events {
    /// The next event of any connection (not counting ones kept by
    /// [`Events::next_for`]).
    pub async fn next(&mut self) -> (EventKind, Value) {
        let message = tokio::time::timeout(RECV_TIMEOUT, self.subscriber.next())
            .await
            .unwrap_or_else(|_| panic!("no lifecycle event within {RECV_TIMEOUT:?}"))
            .expect("event subscription ended");
        self.read(message)
    }

    fn read(&self, message: async_nats::Message) -> (EventKind, Value) {
        let kind = if message.subject.as_str() == self.subjects.event_connect() {
            EventKind::Connect
        } else if message.subject.as_str() == self.subjects.event_disconnect() {
            EventKind::Disconnect
        } else {
            panic!("unexpected event subject {}", message.subject)
        };
        let event = serde_json::from_slice(&message.payload)
            .unwrap_or_else(|e| panic!("event is not JSON ({e}): {:?}", message.payload));
        (kind, event)
    }

    /// The next event about `conn`. Other connections' events that arrive
    /// first are kept for their own `next_for`: events of two edges arrive
    /// in any order.
    pub async fn next_for(&mut self, conn: &str) -> (EventKind, Value) {
        if let Some(at) = self.pending.iter().position(|(_, event)| event["conn"] == conn) {
            return self.pending.remove(at).expect("position is in range");
        }
        let deadline = Instant::now() + RECV_TIMEOUT;
        loop {
            let Some(message) = tokio::time::timeout_at(deadline, self.subscriber.next()).await.ok().flatten() else {
                panic!("no lifecycle event for {conn} within {RECV_TIMEOUT:?}; events of others: {:?}", self.pending)
            };
            let (kind, event) = self.read(message);
            if event["conn"] == conn {
                return (kind, event);
            }
            self.pending.push_back((kind, event));
        }
    }

    /// The next event about `conn`, which must be its connect event.
    pub async fn connect_of(&mut self, conn: &str) -> Value {
        let (kind, event) = self.next_for(conn).await;
        assert_eq!(kind, EventKind::Connect, "expected the connect event of {conn}, got {event}");
        event
    }

    /// The disconnect event of `conn`: the next event about it, after its
    /// connect event if that was not read yet.
    pub async fn disconnect_of(&mut self, conn: &str) -> Value {
        let (mut kind, mut event) = self.next_for(conn).await;
        if kind == EventKind::Connect {
            (kind, event) = self.next_for(conn).await;
        }
        assert_eq!(kind, EventKind::Disconnect, "expected the disconnect event of {conn}, got {event}");
        event
    }
}

/// A test-side router: answers `herald.router.actions`.
#[derive(Debug)]
pub struct Responder {
    requests: mpsc::UnboundedReceiver<String>,
    task: JoinHandle<()>,
}

impl Responder {
    /// The next request it received, raw and parsed.
    pub async fn next_request(&mut self) -> (String, Value) {
        let raw = tokio::time::timeout(RECV_TIMEOUT, self.requests.recv())
            .await
            .unwrap_or_else(|_| panic!("no handler request within {RECV_TIMEOUT:?}"))
            .expect("responder stopped");
        let value = serde_json::from_str(&raw).unwrap_or_else(|e| panic!("handler request is not JSON ({e}): {raw}"));
        (raw, value)
    }
}

impl Drop for Responder {
    fn drop(&mut self) {
        self.task.abort();
    }
}
