//! A handler that blocks holds up the reader, so the server's buffer for
//! the connection fills. nats-server then cuts it as a slow consumer (what
//! was buffered is lost); the subscriber reconnects, subscribes again, and
//! deliveries resume.

use std::sync::{Arc, Mutex, mpsc as blocking};

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
    // The first chunk of the flood holds up the reader, as a handler must
    // never do, until the server has taken the whole flood in: a fixed
    // sleep could end before a loaded machine had published it all.
    let (release, held) = blocking::channel::<()>();
    let held = Mutex::new(Some(held));
    let (sender, mut received) = mpsc::unbounded_channel();
    let handler = move |delivery: Delivery<'_>| {
        if delivery.payload.len() > 1
            && let Some(held) = held.lock().unwrap().take()
        {
            let _ = held.recv_timeout(3 * WAIT);
        }
        let _ = sender.send(delivery.payload);
    };
    let _s = sub.subscriber.subscribe("flood", Arc::new(handler)).unwrap();
    sub.sync().await;

    // 16 MiB while the reader is held: over the server's 256 KiB even after
    // the kernel's socket buffers (at most 4 MiB to send here, and what the
    // reader's receive window had grown to) took their share. Once the
    // publisher's flush returns, the server has queued every chunk for the
    // reader, so it has cut it. The flood is published from a runtime of
    // its own: a task of this one may be parked behind the held worker
    // (tokio never steals a worker's next-to-run task).
    const CHUNKS: usize = 512;
    let url = server.url();
    tokio::task::spawn_blocking(move || {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(async {
            let publisher = publisher(&url).await;
            let chunk = bytes::Bytes::from(vec![b'x'; 32 * 1024]);
            for _ in 0..CHUNKS {
                publisher.publish("flood", chunk.clone()).await.unwrap();
            }
            publisher.flush().await.unwrap();
        });
    })
    .await
    .unwrap();
    release.send(()).unwrap();
    herald_tests::assert_eventually!(
        sub.count(|e| matches!(e, Event::Disconnected { .. })) == 1 && sub.subscriber.is_connected(),
        WAIT,
        "one cut and connected again; events: {:?}",
        sub.events()
    );
    sub.sync().await;
    publish(&publisher(&server.url()).await, "flood", "!").await;
    // Whatever of the flood survived comes first; then the new message.
    let until_marker = async {
        let mut survived = 0;
        while received.recv().await.expect("handler alive") != "!" {
            survived += 1;
        }
        survived
    };
    let survived = tokio::time::timeout(WAIT, until_marker).await.expect("deliveries resume after the reconnect");
    assert!(survived < CHUNKS, "the server did not cut the slow reader: all {survived} arrived");
}
