//! The backends' side of the bus, played by the test: a client of the bus
//! under test (its own NATS connection, or the shared in-process bus; see
//! [`crate::setup`]) that publishes to Herald's subjects, sends control
//! operations, watches lifecycle events and answers client actions the way
//! a router would.
//!
//! Subject names always come from [`herald_proto::subject::Subjects`], so
//! the tests exercise the same encoding the edge uses.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use herald_bus::{Bus, BusMessage, Subscription};
use herald_proto::subject::{EXCLUDE_CONN_HEADER, Subjects};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::task::AbortOnDropHandle;

use crate::RECV_TIMEOUT;
use crate::background::next_within;
use crate::client::Client;
use crate::setup::BusSource;

/// The test's own client of the bus under test.
#[derive(Debug, Clone)]
pub struct TestBus {
    bus: Bus,
    subjects: Subjects,
}

impl TestBus {
    /// Connects to the bus (a NATS server, or the shared in-process bus)
    /// and waits until it is connected.
    pub async fn connect(source: impl Into<BusSource>) -> TestBus {
        let bus = source.into().connect("herald-tests").await;
        tokio::time::timeout(RECV_TIMEOUT, bus.sync())
            .await
            .unwrap_or_else(|_| panic!("the test's bus did not connect within {RECV_TIMEOUT:?}"))
            .unwrap_or_else(|e| panic!("the test's bus did not connect: {e}"));
        TestBus { bus, subjects: Subjects::default() }
    }

    pub fn subjects(&self) -> &Subjects {
        &self.subjects
    }

    /// The underlying bus, for anything the helpers do not cover.
    pub fn bus(&self) -> &Bus {
        &self.bus
    }

    pub fn is_connected(&self) -> bool {
        self.bus.is_connected()
    }

    /// Publishes and waits until the bus has it.
    pub async fn publish(&self, subject: String, payload: impl Into<Bytes>) {
        self.bus.publish(subject.clone(), payload.into()).await.unwrap_or_else(|e| panic!("publish to {subject}: {e}"));
        self.flush().await;
    }

    /// Publishes with `Herald-Exclude-Conn: <conn>`.
    pub async fn publish_excluding(&self, subject: String, exclude_conn: &str, payload: impl Into<Bytes>) {
        self.bus
            .publish_with_header(subject.clone(), (EXCLUDE_CONN_HEADER, exclude_conn), payload.into())
            .await
            .unwrap_or_else(|e| panic!("publish to {subject}: {e}"));
        self.flush().await;
    }

    /// Publishes without waiting for the server (for use during an outage,
    /// when a flush would block until the reconnect).
    pub async fn publish_no_flush(&self, subject: String, payload: impl Into<Bytes>) {
        let _ = self.bus.publish(subject, payload.into()).await;
    }

    /// Waits until everything published so far is on its way (written to
    /// the NATS server's socket; the in-process bus delivers at once).
    pub async fn flush(&self) {
        tokio::time::timeout(RECV_TIMEOUT, self.bus.flush())
            .await
            .unwrap_or_else(|_| panic!("bus flush took more than {RECV_TIMEOUT:?}"))
            .unwrap_or_else(|e| panic!("bus flush: {e}"));
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

    /// Subscribes, and returns once the subscription is live for every
    /// publisher ([`Bus::sync`]).
    pub async fn subscribe(&self, subject: String) -> Subscription {
        let subscription =
            self.bus.subscribe(subject.clone()).await.unwrap_or_else(|e| panic!("subscribe to {subject}: {e}"));
        tokio::time::timeout(RECV_TIMEOUT, self.bus.sync())
            .await
            .unwrap_or_else(|_| panic!("subscription to {subject} not confirmed within {RECV_TIMEOUT:?}"))
            .unwrap_or_else(|e| panic!("subscription to {subject} not confirmed: {e}"));
        subscription
    }

    /// Lifecycle events, from now on.
    pub async fn events(&self) -> Events {
        let subject = format!("{}.events.>", self.subjects.prefix());
        Events {
            subscription: self.subscribe(subject).await,
            subjects: self.subjects.clone(),
            pending: VecDeque::new(),
        }
    }

    /// Answers every request on `herald.router.actions` with what `handler`
    /// returns for it (`None`: never answer), and records the requests.
    pub async fn responder<F>(&self, handler: F) -> Responder
    where
        F: Fn(&Value) -> Option<Value> + Send + 'static,
    {
        let mut subscription = self.subscribe(self.subjects.router_actions()).await;
        let bus = self.bus.clone();
        let (tx, requests) = mpsc::unbounded_channel();
        let task = AbortOnDropHandle::new(tokio::spawn(async move {
            while let Some(message) = subscription.next().await {
                let raw = String::from_utf8_lossy(&message.payload).into_owned();
                let request: Value = serde_json::from_str(&raw).unwrap_or(Value::Null);
                let answer = handler(&request);
                let _ = tx.send(raw);
                if let (Some(answer), Some(reply)) = (answer, message.reply()) {
                    let _ = bus.publish(reply.to_owned(), answer.to_string().into()).await;
                    let _ = bus.flush().await;
                }
            }
        }));
        Responder { requests, _task: task }
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
                tokio::time::timeout(Duration::from_millis(200), self.bus.publish(subject.to_owned(), probe.into()))
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
    subscription: Subscription,
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
        let message = tokio::time::timeout(RECV_TIMEOUT, self.subscription.next())
            .await
            .unwrap_or_else(|_| panic!("no lifecycle event within {RECV_TIMEOUT:?}"))
            .expect("event subscription ended");
        self.read(message)
    }

    fn read(&self, message: BusMessage) -> (EventKind, Value) {
        let kind = if message.subject() == self.subjects.event_connect() {
            EventKind::Connect
        } else if message.subject() == self.subjects.event_disconnect() {
            EventKind::Disconnect
        } else {
            panic!("unexpected event subject {}", message.subject())
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
            let Some(message) = tokio::time::timeout_at(deadline, self.subscription.next()).await.ok().flatten() else {
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
    /// Answers until the responder is dropped.
    _task: AbortOnDropHandle<()>,
}

impl Responder {
    /// The next request it received, raw and parsed.
    pub async fn next_request(&mut self) -> (String, Value) {
        let raw = next_within(&mut self.requests, "handler request").await;
        let value = serde_json::from_str(&raw).unwrap_or_else(|e| panic!("handler request is not JSON ({e}): {raw}"));
        (raw, value)
    }
}
