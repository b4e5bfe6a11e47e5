//! Queue groups: members share a subject's messages, and a member that
//! drains leaves without losing one.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use herald_nats_sub::{Deliver, Delivery};
use herald_tests::NatsServer;

use crate::support::{WAIT, config, connect, publisher};

/// Messages published in the test, numbered from 0.
const MESSAGES: u32 = 20_000;

/// A handler that keeps the number each message carries.
fn numbers() -> (Arc<dyn Deliver>, Arc<Mutex<Vec<u32>>>) {
    let kept: Arc<Mutex<Vec<u32>>> = Arc::default();
    let keeping = kept.clone();
    let handler = move |delivery: Delivery<'_>| {
        let n = std::str::from_utf8(&delivery.payload).unwrap().parse().unwrap();
        keeping.lock().unwrap().push(n);
    };
    (Arc::new(handler), kept)
}

fn count(kept: &Mutex<Vec<u32>>) -> usize {
    kept.lock().unwrap().len()
}

/// A burst of messages keeps many of them on the wire to the draining
/// member while the server takes its `UNSUB`: each must still reach it,
/// and every later one the member that stays. (async-nats 0.51's `drain`
/// lost thousands of such a burst: ADR 0033.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_that_drains_mid_burst_loses_nothing_and_the_others_get_the_rest() {
    let server = NatsServer::start().await;
    let (leaving, staying) = (connect(config(&[server.url()])), connect(config(&[server.url()])));
    let (to_leaving, left) = numbers();
    let (to_staying, stayed) = numbers();
    let member = leaving.subscriber.queue_subscribe("work", "workers", to_leaving).unwrap();
    let _other = staying.subscriber.queue_subscribe("work", "workers", to_staying).unwrap();
    leaving.sync().await;
    staying.sync().await;

    let publisher = publisher(&server.url()).await;
    let publishing = tokio::spawn(async move {
        for n in 0..MESSAGES {
            publisher.publish("work", n.to_string().into()).await.unwrap();
        }
        publisher.flush().await.unwrap();
    });
    tokio::time::timeout(WAIT, async {
        while count(&left) < 500 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    })
    .await
    .expect("the first messages reach the member that will leave");
    tokio::time::timeout(WAIT, member.drain()).await.expect("a drain ends once the server has answered");
    let left_at_drain = count(&left);
    publishing.await.unwrap();

    tokio::time::timeout(WAIT, async {
        while count(&left) + count(&stayed) < MESSAGES as usize {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .unwrap_or_else(|_| {
        panic!("lost: {} of {MESSAGES} arrived ({} at the drained member)", count(&left) + count(&stayed), count(&left))
    });
    assert_eq!(count(&left), left_at_drain, "the drained member got a message after its drain ended");
    assert!(count(&stayed) > 0, "the member that stayed got the rest");
    let mut all: Vec<u32> = left.lock().unwrap().iter().chain(stayed.lock().unwrap().iter()).copied().collect();
    all.sort_unstable();
    assert!(all.iter().copied().eq(0..MESSAGES), "each message reached exactly one member");
}

/// A member answers by its own connection, headers and all, and the
/// requester (async-nats) gets the answer.
#[tokio::test]
async fn a_member_answers_a_request_by_its_own_connection() {
    let server = NatsServer::start().await;
    let member = connect(config(&[server.url()]));
    let (to_member, mut requests) = crate::support::inbox();
    let _member = member.subscriber.queue_subscribe("svc", "workers", to_member).unwrap();
    member.sync().await;
    let requester = publisher(&server.url()).await;
    let asking = tokio::spawn(async move { requester.request("svc", "question".into()).await });

    let request = crate::support::next(&mut requests).await;
    assert_eq!(request.payload, "question");
    let reply = request.reply.expect("a request says where to answer");
    member.subscriber.publish(&reply, &[("Herald-Answer", "yes")], b"answer").unwrap();
    let answer = tokio::time::timeout(WAIT, asking).await.expect("answered in time").unwrap().unwrap();
    assert_eq!(answer.payload, "answer");
    assert_eq!(answer.headers.unwrap().get("Herald-Answer").map(|v| v.as_str()), Some("yes"));

    let refused = member.subscriber.publish("svc.*", &[], b"").unwrap_err();
    assert!(refused.to_string().contains("a wildcard"), "{refused}");
}
