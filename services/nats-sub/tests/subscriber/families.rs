//! Families: subscriptions the subscriber keeps nothing of, which their
//! owner says again at each connection (ADR 0026).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use herald_nats_sub::{Event, Family, Owner, Resubscribing, Subscriber};
use herald_tests::NatsServer;

use crate::support::{WAIT, config, connect, inbox, next, publish, publisher};

/// An owner as the edge's registry is one: the subscriptions under its own
/// lock, said again `says` times each when asked.
struct Topics {
    subjects: Mutex<BTreeMap<u64, String>>,
    says: usize,
}

impl Owner for Topics {
    fn resubscribe(&self, resubscribing: &Resubscribing<'_>) {
        for (sid, subject) in self.subjects.lock().unwrap().iter() {
            for _ in 0..self.says {
                resubscribing.sub(subject, *sid);
            }
        }
    }
}

impl Topics {
    fn subscribe(&self, subscriber: &Subscriber, family: Family, subject: &str) -> u64 {
        let mut subjects = self.subjects.lock().unwrap();
        let sid = subscriber.subscribe_in(family, subject).expect("a good subject");
        subjects.insert(sid, subject.to_owned());
        sid
    }

    fn unsubscribe(&self, subscriber: &Subscriber, sid: u64) {
        let mut subjects = self.subjects.lock().unwrap();
        subjects.remove(&sid);
        subscriber.unsubscribe(sid);
    }
}

/// Each subscription is said twice on the new connection, as one made
/// while its owner is asked may be: the server keeps one (a `SUB` for an
/// id it has is ignored), so each message arrives once.
#[tokio::test]
async fn a_restarted_server_gets_every_live_subscription_of_a_family_again_once() {
    let mut server = NatsServer::start_monitored().await;
    let sub = connect(config(&[server.url()]));
    let (handler, mut received) = inbox();
    let topics = Arc::new(Topics { subjects: Mutex::default(), says: 2 });
    let family = sub.subscriber.family(handler, topics.clone());
    let sids: Vec<u64> = (0..100).map(|n| topics.subscribe(&sub.subscriber, family, &format!("user.{n}"))).collect();
    sub.sync().await;
    assert_eq!(sub.subscriber.subscriptions(), 0, "a family's subscriptions are not kept by the subscriber");

    server.stop();
    herald_tests::assert_eventually!(!sub.subscriber.is_connected(), WAIT);
    // While disconnected: one goes, one comes; a sync waits for the next
    // connection.
    topics.unsubscribe(&sub.subscriber, sids[0]);
    topics.subscribe(&sub.subscriber, family, "user.added");
    let syncing = tokio::spawn({
        let subscriber = sub.subscriber.clone();
        async move { subscriber.sync().await }
    });
    server.start_again().await;
    tokio::time::timeout(WAIT, syncing).await.expect("sync after the outage").unwrap();

    let mut live: Vec<String> = (1..100).map(|n| format!("user.{n}")).chain(["user.added".to_owned()]).collect();
    live.sort();
    let mut held = server.subscriptions_of("nats-sub-test").await;
    held.sort();
    assert_eq!(held, live, "the server holds each live subscription once");

    // An UNSUB for an id the server does not have is ignored too.
    sub.subscriber.unsubscribe(sids[0]);
    let publisher = publisher(&server.url()).await;
    for subject in (0..100).map(|n| format!("user.{n}")).chain(["user.added".to_owned(), "user.1".to_owned()]) {
        publish(&publisher, &subject, subject.clone()).await;
    }
    let mut seen = Vec::new();
    for _ in 0..live.len() + 1 {
        seen.push(next(&mut received).await.subject);
    }
    assert_eq!(seen.pop().as_deref(), Some("user.1"), "the last one published, once each before it");
    seen.sort();
    assert_eq!(seen, live);
    assert!(received.try_recv().is_err());
    let errors = sub.count(|e| matches!(e, Event::ServerError(_)));
    let connects = sub.count(|e| matches!(e, Event::Connected { .. }));
    assert_eq!((errors, connects), (0, 2), "{:?}", sub.events());
}
