//! A handler that blocks holds up the reader, so the server's buffer for
//! the connection fills. nats-server then cuts it as a slow consumer (what
//! was buffered is lost); the subscriber reconnects, subscribes again, and
//! deliveries resume.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use herald_nats_sub::{Delivery, Event};
use herald_tests::NatsServer;
use tokio::sync::mpsc;

use crate::support::{TempDir, WAIT, config, connect, publish, publisher};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_held_up_is_cut_by_the_server_and_comes_back() {
    let dir = TempDir::new("slow");
    // A small buffer per client (no smaller than a message may be), and a
    // short wait for a blocked write.
    let conf = dir.write("server.conf", "max_payload: 65536\nmax_pending: 262144\nwrite_deadline: \"500ms\"\n");
    let server = NatsServer::start_with_args(&["-c".to_owned(), conf]).await;
    let sub = connect(config(&[server.url()]));
    let blocking = Arc::new(AtomicBool::new(true));
    let (sender, mut received) = mpsc::unbounded_channel();
    let handler = {
        let blocking = blocking.clone();
        move |delivery: Delivery<'_>| {
            // Holds up the reader, as a handler must never do.
            if delivery.payload.len() > 1 && blocking.swap(false, Ordering::Relaxed) {
                std::thread::sleep(Duration::from_secs(2));
            }
            let _ = sender.send(delivery.payload);
        }
    };
    let _s = sub.subscriber.subscribe("flood", Arc::new(handler)).unwrap();
    sub.sync().await;

    // 4 MiB while the reader sleeps: far over the server's 256 KiB.
    let publisher = publisher(&server.url()).await;
    let chunk = vec![b'x'; 32 * 1024];
    for _ in 0..128 {
        publisher.publish("flood", chunk.clone().into()).await.unwrap();
    }
    publisher.flush().await.unwrap();
    herald_tests::assert_eventually!(
        sub.count(|e| matches!(e, Event::Disconnected { .. })) == 1 && sub.subscriber.is_connected(),
        WAIT
    );
    sub.sync().await;
    publish(&publisher, "flood", "!").await;
    // Whatever of the flood survived comes first; then the new message.
    let until_marker = async {
        let mut survived = 0;
        while received.recv().await.expect("handler alive") != "!" {
            survived += 1;
        }
        survived
    };
    let survived = tokio::time::timeout(WAIT, until_marker).await.expect("deliveries resume after the reconnect");
    assert!(survived < 128, "the server did not cut the slow reader: all {survived} arrived");
}
