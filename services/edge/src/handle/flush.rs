//! The flusher: tasks that write what deliveries corked, session by
//! session, so that an idle session is not woken for a delivery.
//!
//! Deliveries hand it each session the first time they cork a frame for it
//! ([`Offer::Corked`](super::Offer::Corked)); it takes the sessions handed
//! over since its last round and writes each one's frames in one `send`
//! (gathered into one buffer: `socket.rs`). While it works, deliveries go
//! on corking: the frames of a burst wait for its next round and leave
//! together, which is how it keeps up when messages come faster than one
//! `send` per frame would allow.
//!
//! One task by default (`HERALD_FLUSHERS`, ADR 0036): a broadcast's
//! `send`s take one core at a time and leave the others to the fan-out,
//! the sessions' reads and connects, and the NATS connection. When one
//! core cannot keep up, the flusher falls behind and pauses (below), and
//! each `send` carries more frames, so a frame costs less as the load
//! rises. A task per core kept up on every core at once, with fewer frames
//! per `send` and six times the context switches, and spent about 1.4×
//! the CPU per frame (ADR 0036). With more tasks, each has its share of
//! the sessions, and a session always goes to the same task: its frames
//! wait for that one task's next round (handed to whichever task came
//! next, they often went to one whose round was about to start, and left
//! in smaller batches), and only that task writes its lines (ADR 0030).
//!
//! A flusher that finds itself behind pauses between turns (ADR 0032):
//! when its sessions average two frames or more each, messages are coming
//! faster than it visits them, and a `send` costs about the same whatever
//! it carries; waiting lets every session gather more frames for its next
//! one, which leaves the CPU to the rest of the machine.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use prometheus_client::metrics::counter::Counter;
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};
use tokio::time::Instant;

use super::SessionHandle;

/// Sessions flushed before the flusher lets the runtime's other tasks run.
const SESSIONS_PER_TURN: usize = 1024;

/// Frames a turn's sessions average when the flusher is behind: more than
/// the one message a flusher keeping up finds waiting for each.
const BEHIND_FRAMES_PER_SESSION: usize = 2;

/// The longest pause after a turn that was behind: what it may add to a
/// delivery's wait per turn.
const MAX_PAUSE: Duration = Duration::from_millis(5);

/// The shortest pause taken: tokio's timer counts in milliseconds, so a
/// shorter one would last a whole tick anyway, long after a short turn.
const MIN_PAUSE: Duration = Duration::from_millis(1);

/// Where deliveries hand over the sessions they corked frames for.
#[derive(Debug)]
pub(crate) struct Flusher {
    /// One queue per flushing task.
    shards: Vec<UnboundedSender<SessionHandle>>,
}

impl Flusher {
    /// Starts `tasks` flushing tasks (at least one) on the current runtime;
    /// they end when this is dropped. Unbounded, as a session is handed
    /// over at most once until it is flushed: the queues never hold more
    /// than the sessions the edge holds. They count the frames they write
    /// in `frames_sent`, and the time they pause in `paused`.
    pub fn start(tasks: usize, frames_sent: Counter, paused: Counter<f64, AtomicU64>) -> Flusher {
        let shards = (0..tasks.max(1))
            .map(|_| {
                let (corked, to_flush) = unbounded_channel();
                tokio::spawn(flush(to_flush, frames_sent.clone(), paused.clone()));
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

async fn flush(mut to_flush: UnboundedReceiver<SessionHandle>, frames_sent: Counter, paused: Counter<f64, AtomicU64>) {
    let mut sessions = Vec::with_capacity(SESSIONS_PER_TURN);
    while to_flush.recv_many(&mut sessions, SESSIONS_PER_TURN).await > 0 {
        let started = Instant::now();
        let visited = sessions.len();
        let written: usize = sessions.drain(..).map(|session| session.shared.flush()).sum();
        frames_sent.inc_by(written as u64);
        match pause_after(started.elapsed(), visited, written) {
            Some(pause) => {
                // Counted as slept: the timer rounds up to its tick.
                let asleep = Instant::now();
                tokio::time::sleep(pause).await;
                paused.inc_by(herald_metrics::seconds(asleep.elapsed()));
            }
            // A broadcast to many sessions is a long round: let timers,
            // accepts and the sessions' own work in between.
            None => tokio::task::yield_now().await,
        }
    }
}

/// How long the flusher asks to sleep after a turn that took `turn` to
/// write `written` frames to `visited` sessions: half the turn when it was
/// behind (about the whole turn once tokio's timer has rounded it up and
/// fired, ADR 0032), so that it writes about half the time and each
/// session's next `send` carries about twice the frames; nothing when it
/// was keeping up, or when the pause would be shorter than the timer's
/// tick.
fn pause_after(turn: Duration, visited: usize, written: usize) -> Option<Duration> {
    let behind = written >= BEHIND_FRAMES_PER_SESSION * visited.max(1);
    let pause = (turn / 2).min(MAX_PAUSE);
    (behind && pause >= MIN_PAUSE).then_some(pause)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::handle::Wire;

    #[test]
    fn only_a_long_turn_that_was_behind_is_followed_by_a_pause() {
        let ms = Duration::from_millis;
        assert_eq!(pause_after(ms(8), 1000, 2000), Some(ms(4)), "behind: half the turn");
        assert_eq!(pause_after(ms(30), 1000, 9000), Some(MAX_PAUSE), "never longer than the bound");
        assert_eq!(pause_after(ms(8), 1000, 1999), None, "keeping up: fewer frames than that per session");
        assert_eq!(pause_after(ms(8), 1000, 1000), None, "one frame each: a broadcast, not a backlog");
        assert_eq!(pause_after(Duration::from_micros(1500), 50, 400), None, "shorter than a tick");
        assert_eq!(pause_after(ms(2), 0, 0), None, "nothing to write");
    }

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
