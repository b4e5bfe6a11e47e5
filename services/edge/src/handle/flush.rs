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
//! A session always goes to the same task: its frames wait for that one
//! task's next round (handed to whichever task came next, they often went
//! to one whose round was about to start, and left in smaller batches),
//! and only that task writes its lines (ADR 0030).

use std::sync::Arc;

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
        Flusher { shards }
    }

    /// `session` has frames corked: its flusher writes them soon.
    pub fn add(&self, session: SessionHandle) {
        let shard = &self.shards[shard_of(&session, self.shards.len())];
        // Fails only once the task is gone (the edge is stopping), when
        // nothing is written anyway.
        let _ = shard.send(session);
    }
}

/// The flushing task, of `shards`, that writes `session`'s frames: the
/// same one for the session's whole life, from the address of its shared
/// part (stable while any handle lives), mixed so that consecutive
/// allocations spread evenly.
fn shard_of(session: &SessionHandle, shards: usize) -> usize {
    let address = Arc::as_ptr(&session.shared) as u64;
    // Fibonacci hashing: the high bits of the product depend on every bit
    // of the address.
    (address.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32) as usize % shards
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::handle::Wire;

    #[test]
    fn a_session_always_goes_to_the_same_flusher_and_sessions_share_them_evenly() {
        let sessions: Vec<SessionHandle> = (0..2000).map(|_| SessionHandle::new(1, Wire::Herald).0).collect();
        for shards in [1, 2, 3, 8] {
            let mut counts = vec![0usize; shards];
            for session in &sessions {
                let shard = shard_of(session, shards);
                assert_eq!(shard_of(&session.clone(), shards), shard, "a clone is the same session");
                counts[shard] += 1;
            }
            let even = sessions.len() / shards;
            for count in counts {
                assert!(count.abs_diff(even) < even / 5, "{shards} flushers, one has {count} of {}", sessions.len());
            }
        }
    }
}
