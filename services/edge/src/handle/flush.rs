//! The flusher: tasks that write what deliveries corked, session by
//! session, so that an idle session is not woken for a delivery.
//!
//! Deliveries hand it each session the first time they cork a frame for it
//! ([`Offer::Corked`](super::Offer::Corked)); it takes the sessions handed
//! over since its last round and writes each one's frames in one vectored
//! `send`. While it works, deliveries go on corking: the frames of a burst
//! wait for its next round and leave together, which is how it keeps up
//! when messages come faster than one `send` per frame would allow.
//!
//! One task per runtime thread, each with its share of the sessions: a
//! broadcast's `send`s use every core, as the sessions' own writes did.

use std::sync::atomic::{AtomicUsize, Ordering};

use prometheus_client::metrics::counter::Counter;
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};

use super::SessionHandle;

/// Sessions flushed before the flusher lets the runtime's other tasks run.
const SESSIONS_PER_TURN: usize = 1024;

/// Where deliveries hand over the sessions they corked frames for.
#[derive(Debug)]
pub(crate) struct Flusher {
    /// One queue per flushing task.
    shards: Vec<UnboundedSender<SessionHandle>>,
    /// The shard the next session goes to, in turn: an even share each.
    next: AtomicUsize,
}

impl Flusher {
    /// Starts the flushing tasks, one per thread of the current runtime;
    /// they end when this is dropped. Unbounded, as a session is handed
    /// over at most once until it is flushed: the queues never hold more
    /// than the sessions the edge holds.
    pub fn start(frames_sent: Counter) -> Flusher {
        let tasks = tokio::runtime::Handle::current().metrics().num_workers().max(1);
        let shards = (0..tasks)
            .map(|_| {
                let (corked, to_flush) = unbounded_channel();
                tokio::spawn(flush(to_flush, frames_sent.clone()));
                corked
            })
            .collect();
        Flusher { shards, next: AtomicUsize::new(0) }
    }

    /// `session` has frames corked: a flusher writes them soon.
    pub fn add(&self, session: SessionHandle) {
        // Any task will do: the session's lock keeps its frames whole and
        // in order whoever writes them.
        let shard = &self.shards[self.next.fetch_add(1, Ordering::Relaxed) % self.shards.len()];
        // Fails only once the task is gone (the edge is stopping), when
        // nothing is written anyway.
        let _ = shard.send(session);
    }
}

async fn flush(mut to_flush: UnboundedReceiver<SessionHandle>, frames_sent: Counter) {
    let mut sessions = Vec::with_capacity(SESSIONS_PER_TURN);
    while to_flush.recv_many(&mut sessions, SESSIONS_PER_TURN).await > 0 {
        let written: usize = sessions.drain(..).map(|session| session.shared.flush()).sum();
        frames_sent.inc_by(written as u64);
        // A broadcast to many sessions is a long round: let timers,
        // accepts and the sessions' own work in between.
        tokio::task::yield_now().await;
    }
}
