//! Outages: a server restarted, a cluster member killed or frozen. After
//! each, every live subscription is back, and only those.

use std::process::Command;
use std::time::Duration;

use herald_nats_sub::Event;
use herald_tests::NatsServer;
use herald_tests::nats::free_port;

use crate::support::{WAIT, config, connect, inbox, next, publish, publisher};

#[tokio::test]
async fn a_restarted_server_gets_every_live_subscription_again() {
    let mut server = NatsServer::start().await;
    let sub = connect(config(&[server.url()]));
    let (kept, mut kept_rx) = inbox();
    let (dropped, mut dropped_rx) = inbox();
    let (added, mut added_rx) = inbox();
    let _kept = sub.subscriber.subscribe("kept", kept).unwrap();
    let gone = sub.subscriber.subscribe("dropped", dropped).unwrap();
    sub.sync().await;

    server.stop();
    herald_tests::assert_eventually!(!sub.subscriber.is_connected(), WAIT);
    // While disconnected: one subscription goes, one comes; a sync waits
    // for the next connection.
    drop(gone);
    let _added = sub.subscriber.subscribe("added", added).unwrap();
    let syncing = tokio::spawn({
        let subscriber = sub.subscriber.clone();
        async move { subscriber.sync().await }
    });
    server.start_again().await;
    tokio::time::timeout(WAIT, syncing).await.expect("sync after the outage").unwrap();
    assert!(sub.subscriber.is_connected());

    let publisher = publisher(&server.url()).await;
    for subject in ["dropped", "kept", "added"] {
        publish(&publisher, subject, subject).await;
    }
    assert_eq!(next(&mut kept_rx).await.payload, "kept");
    assert_eq!(next(&mut added_rx).await.payload, "added");
    assert!(dropped_rx.try_recv().is_err());
    let events = sub.events();
    let connects = events.iter().filter(|e| matches!(e, Event::Connected { .. })).count();
    let disconnects = events.iter().filter(|e| matches!(e, Event::Disconnected { .. })).count();
    assert_eq!((connects, disconnects), (2, 1), "{events:?}");
}

/// Two servers in a cluster.
async fn cluster() -> (NatsServer, NatsServer) {
    let (route_a, route_b) = (free_port(), free_port());
    let args = |own: u16, other: u16| {
        vec![
            "--cluster_name".to_owned(),
            "nats-sub-test".to_owned(),
            "--cluster".to_owned(),
            format!("nats://127.0.0.1:{own}"),
            "--routes".to_owned(),
            format!("nats://127.0.0.1:{other}"),
        ]
    };
    let a = NatsServer::start_with_args(&args(route_a, route_b)).await;
    let b = NatsServer::start_with_args(&args(route_b, route_a)).await;
    (a, b)
}

/// The port of the server the subscriber last connected to.
fn connected_port(events: &[Event]) -> u16 {
    let server = events
        .iter()
        .rev()
        .find_map(|e| match e {
            Event::Connected { server } => Some(server.clone()),
            _ => None,
        })
        .expect("connected");
    let port = server.split(':').nth(1).and_then(|rest| rest.split(' ').next()).expect("host:port");
    port.parse().expect("a port")
}

#[tokio::test]
async fn a_killed_cluster_member_is_failed_over() {
    let (a, b) = cluster().await;
    let sub = connect(config(&[a.url(), b.url()]));
    let (_s, mut rx) = sub.subscribed("news").await;
    let first = connected_port(&sub.events());
    let (mut doomed, survivor) = if first == a.port() { (a, b) } else { (b, a) };

    doomed.stop();
    herald_tests::assert_eventually!(
        sub.count(|e| matches!(e, Event::Connected { .. })) == 2 && sub.subscriber.is_connected(),
        WAIT
    );
    sub.sync().await;
    assert_eq!(connected_port(&sub.events()), survivor.port());
    let publisher = publisher(&survivor.url()).await;
    publish(&publisher, "news", "after failover").await;
    assert_eq!(next(&mut rx).await.payload, "after failover");
}

/// A server that is frozen keeps its sockets open and answers nothing: only
/// our pings find out. The subscriber leaves it for the other member.
#[tokio::test]
async fn a_server_that_stops_answering_is_left_for_another() {
    let (a, b) = cluster().await;
    let mut config = config(&[a.url(), b.url()]);
    config.connect_timeout = Duration::from_millis(500);
    let sub = connect(config);
    let (_s, mut rx) = sub.subscribed("news").await;
    let first = connected_port(&sub.events());
    let (frozen, survivor) = if first == a.port() { (&a, &b) } else { (&b, &a) };

    let thawed = freeze(frozen);
    herald_tests::assert_eventually!(
        sub.subscriber.is_connected() && connected_port(&sub.events()) == survivor.port(),
        WAIT
    );
    let stale = sub.count(|e| matches!(e, Event::Disconnected { reason } if reason.contains("stale")));
    assert_eq!(stale, 1, "{:?}", sub.events());
    sub.sync().await;
    let publisher = publisher(&survivor.url()).await;
    publish(&publisher, "news", "from the survivor").await;
    assert_eq!(next(&mut rx).await.payload, "from the survivor");
    drop(thawed);
}

/// A silence shorter than the keep-alive's bound (two to three pings) is a
/// slow server, not a dead one: the subscriber keeps its connection, and
/// what was published meanwhile (on the other member, which routes it to
/// the frozen one) arrives when the server wakes, none of it lost.
#[tokio::test]
async fn a_server_frozen_for_less_than_two_pings_is_kept_and_loses_nothing() {
    let (a, b) = cluster().await;
    let mut config = config(&[a.url(), b.url()]);
    // Silence tolerated: 6 to 9 s; the freeze below lasts about 1 s.
    config.ping_interval = Duration::from_secs(3);
    let sub = connect(config);
    let (_s, mut rx) = sub.subscribed("news").await;
    let first = connected_port(&sub.events());
    let (frozen, other) = if first == a.port() { (&a, &b) } else { (&b, &a) };
    let publisher = publisher(&other.url()).await;
    // The other member learns of the subscription over the route, a little
    // after the subscriber's own server has it.
    herald_tests::assert_eventually!(
        {
            publish(&publisher, "news", "probe").await;
            rx.try_recv().is_ok()
        },
        WAIT
    );

    let thawed = freeze(frozen);
    for n in 0..100 {
        publish(&publisher, "news", format!("{n}")).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    drop(thawed);

    let mut received = Vec::new();
    while received.len() < 100 {
        let message = next(&mut rx).await;
        if message.payload != "probe" {
            received.push(String::from_utf8(message.payload.to_vec()).unwrap());
        }
    }
    assert_eq!(received, (0..100).map(|n| n.to_string()).collect::<Vec<_>>());
    sub.sync().await;
    let disconnects = sub.count(|e| matches!(e, Event::Disconnected { .. }));
    assert_eq!(disconnects, 0, "{:?}", sub.events());
}

/// A silence longer than the bound is a dead server: the subscriber leaves
/// it, and when it answers again every subscription is sent again.
#[tokio::test]
async fn a_server_frozen_past_two_pings_is_left_and_gets_every_subscription_again() {
    let server = NatsServer::start().await;
    let mut config = config(&[server.url()]);
    config.ping_interval = Duration::from_millis(300);
    config.connect_timeout = Duration::from_millis(500);
    let sub = connect(config);
    let (_one, mut one) = sub.subscribed("one").await;
    let (_two, mut two) = sub.subscribed("two.*").await;

    let thawed = freeze(&server);
    herald_tests::assert_eventually!(
        sub.count(|e| matches!(e, Event::Disconnected { reason } if reason.contains("stale"))) >= 1,
        WAIT
    );
    drop(thawed);
    herald_tests::assert_eventually!(
        sub.count(|e| matches!(e, Event::Connected { .. })) >= 2 && sub.subscriber.is_connected(),
        WAIT
    );
    sub.sync().await;
    let publisher = publisher(&server.url()).await;
    publish(&publisher, "one", "again").await;
    publish(&publisher, "two.x", "again").await;
    assert_eq!(next(&mut one).await.payload, "again");
    assert_eq!(next(&mut two).await.payload, "again");
}

/// Freezes `server` (SIGSTOP) until the returned guard is dropped (SIGCONT),
/// even when the test fails before.
fn freeze(server: &NatsServer) -> impl Drop {
    let pid = server.pid().expect("running").to_string();
    let signal = move |name: &str| {
        let status = Command::new("kill").args([name, &pid]).status().expect("kill runs");
        assert!(status.success(), "kill {name} {pid}");
    };
    signal("-STOP");
    scopeguard(move || signal("-CONT"))
}

/// Runs `f` when dropped, even when the test fails before.
fn scopeguard(f: impl FnOnce()) -> impl Drop {
    struct Guard<F: FnOnce()>(Option<F>);
    impl<F: FnOnce()> Drop for Guard<F> {
        fn drop(&mut self) {
            if let Some(f) = self.0.take() {
                f();
            }
        }
    }
    Guard(Some(f))
}
