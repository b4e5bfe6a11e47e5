//! An in-process bus for `herald dev` and unit tests.
//!
//! It behaves like NATS core for everything Herald relies on:
//!
//! - subjects are dot-separated tokens; subscriptions may use `*` (one
//!   token) and `>` (one or more trailing tokens); publishing to a subject
//!   with wildcards, empty tokens or whitespace is refused;
//! - a message goes to every plain subscription that matches and to one
//!   member of each matching queue group, picked at random;
//! - a request with nobody listening fails at once with "no responders";
//! - messages keep their publisher's order per subscription;
//! - a subscriber that does not keep up loses messages rather than slowing
//!   the publisher (NATS's slow-consumer rule), and draining a subscription
//!   stops new messages while those already queued are still read.
//!
//! The integration tests run against this bus and against a real
//! `nats-server`, so the two cannot drift apart unnoticed.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock, Weak};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use tokio::sync::mpsc;

use crate::{BusError, BusMessage, RequestError};

/// Messages waiting for one subscriber before newer ones are dropped; the
/// NATS client's default.
const SUBSCRIPTION_CAPACITY: usize = 65_536;

/// Largest payload: nats-server's default `max_payload`.
const MAX_PAYLOAD: usize = 1024 * 1024;

/// An in-process bus; clones share it.
#[derive(Clone, Debug, Default)]
pub struct LocalBus {
    inner: Arc<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    subscriptions: RwLock<HashMap<u64, Entry>>,
    /// Source of subscription ids and inbox names.
    next_id: AtomicU64,
    /// Draws of the queue-group member picks ([`pick`]).
    next_pick: AtomicU64,
}

/// One subscription's place in the bus.
#[derive(Debug)]
struct Entry {
    pattern: Vec<String>,
    queue: Option<String>,
    sender: mpsc::Sender<BusMessage>,
}

/// The receiving end of a local subscription.
#[derive(Debug)]
pub struct LocalSubscription {
    id: u64,
    bus: Weak<Inner>,
    receiver: mpsc::Receiver<BusMessage>,
}

impl LocalBus {
    pub(crate) fn new_inbox(&self) -> String {
        format!("_INBOX.local.{}", self.inner.next_id.fetch_add(1, Ordering::Relaxed))
    }

    pub(crate) fn subscribe(&self, subject: String, queue: Option<String>) -> Result<LocalSubscription, BusError> {
        let pattern = parse_pattern(&subject).ok_or_else(|| BusError::Subscribe {
            reason: "not a valid subject pattern".into(),
            subject: subject.clone(),
        })?;
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        let (sender, receiver) = mpsc::channel(SUBSCRIPTION_CAPACITY);
        self.inner.write().insert(id, Entry { pattern, queue, sender });
        Ok(LocalSubscription { id, bus: Arc::downgrade(&self.inner), receiver })
    }

    /// Delivers a message and says to how many subscriptions.
    pub(crate) fn publish(
        &self,
        subject: String,
        reply: Option<String>,
        headers: Option<async_nats::HeaderMap>,
        payload: Bytes,
    ) -> Result<usize, BusError> {
        if !is_valid_subject(&subject) {
            return Err(BusError::Publish { subject, reason: "not a valid subject".into() });
        }
        if payload.len() > MAX_PAYLOAD {
            return Err(BusError::Publish { subject, reason: "maximum payload exceeded".into() });
        }
        let tokens: Vec<&str> = subject.split('.').collect();
        let message = BusMessage {
            subject: async_nats::Subject::from(subject.as_str()),
            reply: reply.map(async_nats::Subject::from),
            payload,
            headers,
        };
        let subscriptions = self.inner.read();
        let mut queues: HashMap<&str, Vec<&Entry>> = HashMap::new();
        let mut delivered = 0;
        for entry in subscriptions.values().filter(|entry| matches(&entry.pattern, &tokens)) {
            match &entry.queue {
                Some(queue) => queues.entry(queue.as_str()).or_default().push(entry),
                None => delivered += usize::from(offer(entry, &message)),
            }
        }
        for members in queues.values() {
            let draw = self.inner.next_pick.fetch_add(1, Ordering::Relaxed);
            delivered += usize::from(offer(members[pick(draw, members.len())], &message));
        }
        Ok(delivered)
    }

    pub(crate) async fn request(
        &self,
        subject: String,
        headers: Option<async_nats::HeaderMap>,
        payload: Bytes,
        timeout: Duration,
    ) -> Result<Bytes, RequestError> {
        let failed = |e: BusError| RequestError::Failed { subject: subject.clone(), reason: e.into() };
        let inbox = self.new_inbox();
        let mut answers = self.subscribe(inbox.clone(), None).map_err(failed)?;
        if self.publish(subject.clone(), Some(inbox), headers, payload).map_err(failed)? == 0 {
            return Err(RequestError::NoResponders(subject));
        }
        match tokio::time::timeout(timeout, answers.next()).await {
            Ok(Some(answer)) => Ok(answer.payload),
            Ok(None) | Err(_) => Err(RequestError::TimedOut(subject)),
        }
    }
}

impl Inner {
    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<u64, Entry>> {
        self.subscriptions.read().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<u64, Entry>> {
        self.subscriptions.write().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The member of a queue group of `members` that draw number `draw` picks:
/// as good as random, like NATS's pick. (The draw number modulo the members
/// would not do: draws are shared by every queue group, so when each
/// message to a group is followed by one to another (a router's request to
/// a handler), the group's draws advance by two and a group of two always
/// picks the same member.)
fn pick(draw: u64, members: usize) -> usize {
    // SplitMix64's output function: consecutive draws give unrelated bits.
    let mut z = draw.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z % members as u64) as usize
}

/// Queues a message for one subscription; a full one loses it, as a slow
/// consumer does on NATS.
fn offer(entry: &Entry, message: &BusMessage) -> bool {
    match entry.sender.try_send(message.clone()) {
        Ok(()) => true,
        Err(mpsc::error::TrySendError::Full(_)) => {
            tracing::warn!(subject = message.subject(), "slow consumer on the local bus: message dropped");
            true
        }
        Err(mpsc::error::TrySendError::Closed(_)) => false,
    }
}

impl LocalSubscription {
    /// Leaves the bus; what is already queued can still be read.
    pub(crate) fn drain(&mut self) {
        if let Some(bus) = self.bus.upgrade() {
            bus.write().remove(&self.id);
        }
    }
}

impl Drop for LocalSubscription {
    fn drop(&mut self) {
        self.drain();
    }
}

impl Stream for LocalSubscription {
    type Item = BusMessage;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<BusMessage>> {
        self.receiver.poll_recv(cx)
    }
}

/// The tokens of a subscription pattern: non-empty, no whitespace, `*`
/// anywhere as a whole token, `>` only as the whole last token.
fn parse_pattern(subject: &str) -> Option<Vec<String>> {
    let tokens: Vec<&str> = subject.split('.').collect();
    let last = tokens.len() - 1;
    let valid = tokens.iter().enumerate().all(|(i, token)| {
        valid_token(token)
            && (!token.contains('>') || (*token == ">" && i == last))
            && (!token.contains('*') || *token == "*")
    });
    valid.then(|| tokens.into_iter().map(str::to_owned).collect())
}

/// A subject one may publish to: valid tokens and no wildcards.
fn is_valid_subject(subject: &str) -> bool {
    subject.split('.').all(|token| valid_token(token) && token != "*" && token != ">")
}

fn valid_token(token: &str) -> bool {
    !token.is_empty() && !token.contains(char::is_whitespace)
}

fn matches(pattern: &[String], subject: &[&str]) -> bool {
    let mut i = 0;
    for token in pattern {
        match token.as_str() {
            ">" => return subject.len() > i,
            "*" if i < subject.len() => {}
            literal if i < subject.len() && literal == subject[i] => {}
            _ => return false,
        }
        i += 1;
    }
    i == subject.len()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Bus, QueueSubscription, Subscription};

    fn pattern(p: &str) -> Vec<String> {
        parse_pattern(p).unwrap()
    }

    fn tokens(s: &str) -> Vec<&str> {
        s.split('.').collect()
    }

    /// Messages waiting on a local subscription, taken (without polling:
    /// tokio's task budget would end a long count early).
    fn count(local: &mut LocalSubscription) -> usize {
        std::iter::from_fn(|| local.receiver.try_recv().ok()).count()
    }

    fn local(subscription: Subscription) -> LocalSubscription {
        let Subscription::Local(local) = subscription else { panic!("not a local subscription") };
        local
    }

    fn local_member(subscription: QueueSubscription) -> LocalSubscription {
        let QueueSubscription::Local(local) = subscription else { panic!("not a local subscription") };
        local
    }

    #[test]
    fn wildcards_match_like_nats() {
        assert!(matches(&pattern("a.b"), &tokens("a.b")));
        assert!(!matches(&pattern("a.b"), &tokens("a.b.c")));
        assert!(matches(&pattern("a.*"), &tokens("a.b")));
        assert!(!matches(&pattern("a.*"), &tokens("a.b.c")));
        assert!(!matches(&pattern("a.*"), &tokens("a")));
        assert!(matches(&pattern("a.>"), &tokens("a.b.c")));
        assert!(!matches(&pattern("a.>"), &tokens("a")));
        assert!(matches(&pattern("*.b.>"), &tokens("x.b.c")));
    }

    #[test]
    fn bad_subjects_are_refused() {
        for bad in ["", "a..b", "a.>.b", "a.b*", "a b", "a.>x"] {
            assert!(parse_pattern(bad).is_none(), "{bad:?}");
        }
        for bad in ["a.*", "a.>", "a..b", "a b", ""] {
            assert!(!is_valid_subject(bad), "{bad:?}");
        }
        assert!(is_valid_subject("herald.user.~YS5i"));
    }

    #[tokio::test]
    async fn plain_subscribers_all_get_it_and_a_queue_group_one_member() {
        let bus = Bus::local();
        let mut a = local(bus.subscribe("x.*".into()).await.unwrap());
        let mut b = local(bus.subscribe("x.y".into()).await.unwrap());
        let mut q1 = local_member(bus.queue_subscribe("x.y".into(), "q".into()).await.unwrap());
        let mut q2 = local_member(bus.queue_subscribe("x.y".into(), "q".into()).await.unwrap());
        for _ in 0..10 {
            bus.publish("x.y".into(), Bytes::from_static(b"m")).await.unwrap();
        }
        assert_eq!((count(&mut a), count(&mut b)), (10, 10));
        let (n1, n2) = (count(&mut q1), count(&mut q2));
        assert_eq!(n1 + n2, 10);
        assert!(n1 > 0 && n2 > 0, "the queue group shares the load");
    }

    #[tokio::test]
    async fn a_queue_group_spreads_its_messages_whatever_else_goes_to_queue_groups() {
        // As when a router, one of two in a queue group, takes each action
        // and passes it to a handler in a queue group of its own: every
        // other pick is the handler's. Both routers must still get their
        // share.
        let bus = Bus::local();
        let mut routers = Vec::new();
        for _ in 0..2 {
            routers.push(local_member(bus.queue_subscribe("actions".into(), "routers".into()).await.unwrap()));
        }
        let mut handler = local_member(bus.queue_subscribe("app".into(), "app".into()).await.unwrap());
        for _ in 0..100 {
            bus.publish("actions".into(), Bytes::from_static(b"action")).await.unwrap();
            bus.publish("app".into(), Bytes::from_static(b"request")).await.unwrap();
        }
        let counts: Vec<usize> = routers.iter_mut().map(count).collect();
        assert_eq!((counts[0] + counts[1], count(&mut handler)), (100, 100), "{counts:?}");
        assert!(counts.iter().all(|n| *n >= 25), "a router was starved: {counts:?}");
    }

    #[tokio::test]
    async fn requests_get_an_answer_or_no_responders() {
        let bus = Bus::local();
        let err = bus.request("svc".into(), Bytes::new(), Duration::from_secs(1)).await.unwrap_err();
        assert!(matches!(&err, RequestError::NoResponders(subject) if subject == "svc"), "{err:?}");
        let mut service = bus.queue_subscribe("svc".into(), "svc".into()).await.unwrap();
        let answering = bus.clone();
        tokio::spawn(async move {
            let request = service.next().await.unwrap();
            let reply = request.reply().unwrap().to_owned();
            answering.publish(reply, Bytes::from_static(b"pong")).await.unwrap();
        });
        let answer = bus.request("svc".into(), Bytes::new(), Duration::from_secs(1)).await.unwrap();
        assert_eq!(answer, "pong");
        let silent = bus.subscribe("quiet".into()).await.unwrap();
        let err = bus.request("quiet".into(), Bytes::new(), Duration::from_millis(20)).await.unwrap_err();
        assert!(matches!(&err, RequestError::TimedOut(subject) if subject == "quiet"), "{err:?}");
        drop(silent);
    }

    #[tokio::test]
    async fn a_failed_request_keeps_its_cause_as_the_source() {
        use std::error::Error;

        let bus = Bus::local();
        let err = bus.request("a..b".into(), Bytes::new(), Duration::from_secs(1)).await.unwrap_err();
        assert_eq!(err.to_string(), "request to a..b failed: cannot publish to a..b: not a valid subject");
        let cause = err.source().and_then(|source| source.downcast_ref::<BusError>()).expect("the bus error");
        assert!(matches!(cause, BusError::Publish { subject, .. } if subject == "a..b"), "{cause:?}");
        assert_eq!(cause.source().map(ToString::to_string).as_deref(), Some("not a valid subject"));
    }

    #[tokio::test]
    async fn headers_travel_and_draining_keeps_what_is_queued() {
        let bus = Bus::local();
        let mut sub = bus.queue_subscribe("h".into(), "h".into()).await.unwrap();
        bus.publish_with_header("h".into(), ("Herald-Exclude-Conn", "e.1"), Bytes::new()).await.unwrap();
        sub.drain().await;
        bus.publish("h".into(), Bytes::new()).await.unwrap();
        let first = sub.next().await.unwrap();
        assert_eq!(first.header("Herald-Exclude-Conn"), Some("e.1"));
        assert!(sub.next().await.is_none(), "nothing after the drain");
    }

    #[tokio::test]
    async fn payloads_over_the_nats_default_are_refused() {
        let bus = Bus::local();
        let _sub = bus.subscribe("big".into()).await.unwrap();
        assert!(bus.publish("big".into(), Bytes::from(vec![b'x'; MAX_PAYLOAD])).await.is_ok());
        assert!(bus.publish("big".into(), Bytes::from(vec![b'x'; MAX_PAYLOAD + 1])).await.is_err());
    }

    #[tokio::test]
    async fn dropping_a_subscription_unsubscribes() {
        let bus = Bus::local();
        let sub = bus.subscribe("gone".into()).await.unwrap();
        drop(sub);
        let err = bus.request("gone".into(), Bytes::new(), Duration::from_secs(1)).await.unwrap_err();
        assert!(matches!(err, RequestError::NoResponders(_)));
    }
}
