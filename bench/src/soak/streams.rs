//! Broadcasts during the soak, and checking that each connection gets
//! every one it should.
//!
//! Three numbered streams run all the time, each on its own subject, so
//! each takes its own path through the edge: `soak/group` to the group
//! every connection's token puts it in (a group topic), `soak/all` to
//! `herald.all` (the edge-wide subscription), and `soak/user` to one user
//! at a time, round-robin (user topics, which come and go with the
//! connections and are shared by a user's two tabs).
//!
//! A connection expects every number of a stream taken after it was
//! greeted (`$connected` means its subscriptions are live) up to the last
//! one taken when it starts to close, in order, once each. It waits for
//! that last one before closing, so nothing is expected that could still
//! be on its way: no timing is assumed beyond a generous deadline.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Deserialize;
use tokio::sync::watch;
use tokio::time::MissedTickBehavior;

use super::churn::{GROUP, user_name};
use super::stats::Stats;

/// How often each stream publishes: `soak/group` and `soak/user` every
/// tick, `soak/all` every [`ALL_EVERY`] ticks.
const TICK: Duration = Duration::from_millis(250);
const ALL_EVERY: u64 = 4;

/// One numbered stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Group,
    All,
    /// The stream of user number `n`.
    User(usize),
}

impl Stream {
    /// The action of the stream's frames.
    pub fn action(self) -> &'static str {
        match self {
            Stream::Group => "soak/group",
            Stream::All => "soak/all",
            Stream::User(_) => "soak/user",
        }
    }
}

/// `details` of a stream's frame.
#[derive(Debug, Deserialize)]
pub struct Numbered {
    pub seq: u64,
}

/// The frame with number `seq` of `stream`.
pub fn frame(stream: Stream, seq: u64) -> String {
    format!(r#"{{"action":"{}","details":{{"seq":{seq}}}}}"#, stream.action())
}

/// The next number of every stream, shared by the publisher (which takes
/// them) and the connections (which read where they stand).
#[derive(Debug)]
pub struct Numbers {
    next: Mutex<Next>,
}

#[derive(Debug)]
struct Next {
    group: u64,
    all: u64,
    users: Vec<u64>,
}

impl Next {
    fn of(&mut self, stream: Stream) -> &mut u64 {
        match stream {
            Stream::Group => &mut self.group,
            Stream::All => &mut self.all,
            Stream::User(n) => &mut self.users[n],
        }
    }
}

impl Numbers {
    pub fn new(users: usize) -> Numbers {
        Numbers { next: Mutex::new(Next { group: 0, all: 0, users: vec![0; users] }) }
    }

    /// Takes the next number of `stream`, to publish.
    pub fn take(&self, stream: Stream) -> u64 {
        let mut next = self.next.lock().expect("never poisoned");
        let number = next.of(stream);
        *number += 1;
        *number - 1
    }

    /// The number `stream` will take next.
    pub fn next(&self, stream: Stream) -> u64 {
        *self.next.lock().expect("never poisoned").of(stream)
    }
}

/// What one connection has of one stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tracker {
    /// The first number the connection must get.
    from: u64,
    /// The number it expects next.
    next: u64,
    /// Numbers skipped: expected, and then a later one came first.
    pub missed: u64,
    /// Numbers that came again, or out of order.
    pub repeated: u64,
    /// Frames of the stream that arrived, owed or not.
    pub received: u64,
}

impl Tracker {
    /// Expects every number from `from` on.
    pub fn new(from: u64) -> Tracker {
        Tracker { from, next: from, missed: 0, repeated: 0, received: 0 }
    }

    /// Number `seq` arrived.
    pub fn receive(&mut self, seq: u64) {
        self.received += 1;
        if seq < self.from {
            // Taken before the connection was greeted: it may come or not.
        } else if seq >= self.next {
            self.missed += seq - self.next;
            self.next = seq + 1;
        } else {
            self.repeated += 1;
        }
    }

    /// Whether every number up to `last` arrived or was counted missed.
    pub fn reached(&self, last: Option<u64>) -> bool {
        last.is_none_or(|last| last < self.next)
    }

    /// Numbers from `from` to `last` not (yet) arrived.
    pub fn outstanding(&self, last: Option<u64>) -> u64 {
        last.map_or(0, |last| (last + 1).saturating_sub(self.next))
    }
}

/// Publishes the streams until `stop` turns true.
pub async fn publish(
    nats: async_nats::Client,
    numbers: Arc<Numbers>,
    users: usize,
    stats: Arc<Stats>,
    mut stop: watch::Receiver<bool>,
) {
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    for round in 0u64.. {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => return,
        }
        let user = (round % users as u64) as usize;
        let mut due = vec![(Stream::Group, format!("herald.group.{GROUP}"))];
        due.push((Stream::User(user), format!("herald.user.{}", user_name(user))));
        if round % ALL_EVERY == 0 {
            due.push((Stream::All, "herald.all".to_owned()));
        }
        for (stream, subject) in due {
            let frame = frame(stream, numbers.take(stream));
            match nats.publish(subject, frame.into()).await {
                Ok(()) => stats.published(),
                Err(e) => stats.fail(&format!("cannot publish {}: {e}", stream.action())),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_taken_in_order_per_stream() {
        let numbers = Numbers::new(2);
        assert_eq!((numbers.take(Stream::Group), numbers.take(Stream::Group)), (0, 1));
        assert_eq!(numbers.take(Stream::User(1)), 0);
        assert_eq!((numbers.next(Stream::Group), numbers.next(Stream::All), numbers.next(Stream::User(1))), (2, 0, 1));
    }

    #[test]
    fn frames_carry_their_number() {
        assert_eq!(frame(Stream::All, 7), r#"{"action":"soak/all","details":{"seq":7}}"#);
        let details: Numbered = serde_json::from_str(r#"{"seq":7}"#).unwrap();
        assert_eq!(details.seq, 7);
    }

    #[test]
    fn every_number_in_order_is_clean() {
        let mut t = Tracker::new(5);
        for seq in [3, 4, 5, 6, 7] {
            t.receive(seq);
        }
        assert!(t.reached(Some(7)) && !t.reached(Some(8)));
        assert_eq!((t.missed, t.repeated, t.outstanding(Some(9))), (0, 0, 2));
        assert!(t.reached(None), "nothing taken yet: nothing to wait for");
    }

    #[test]
    fn gaps_repeats_and_disorder_are_counted() {
        let mut t = Tracker::new(0);
        for seq in [0, 2, 3, 3, 1, 6] {
            t.receive(seq);
        }
        // 1 skipped (then late: a repeat), 4 and 5 skipped, 3 twice.
        assert_eq!((t.missed, t.repeated), (3, 2));
        assert!(t.reached(Some(6)));
    }
}
