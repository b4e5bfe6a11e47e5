//! Client actions as one worker sends them: the frames, which connection
//! sends which action, and matching each reply to its action for the
//! round-trip time, error codes and timeouts.
//!
//! An action is `{"action":"<name>","details":{"t":<unix nanos>},"id":<n>}`,
//! `n` counted from 0 in the worker; action `n` goes out on the worker's
//! connection `n mod connections`, so with actions paced evenly in time each
//! connection sends at the same even rate. The reply carries the same `id`
//! (the contract), on the same connection: the time from writing the action
//! to reading its reply is the round trip client → edge → router → handler
//! and back. `t` is only there so a handler (or a capture) can tell when
//! the action left the client.
//!
//! One system action may be sent too: `$ping`, which the edge answers
//! itself with `$pong` (same details and id). Its round trip is the edge's
//! share of an action's, with no router, handler or NATS: the baseline the
//! rest of the path adds to.
//!
//! Pure bookkeeping with no I/O (the worker does the sending), so matching,
//! timeouts and late answers are unit-tested directly.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde::Deserialize;

use crate::hist::{self, Buckets};
use crate::procs::ActionStats;
use crate::protocol::Frame;

/// What the contract appends to an action's name for its error reply.
const ERROR_SUFFIX: &str = ":error";
/// The system action a load may send, and the edge's answer to it.
pub const PING: &str = "$ping";
const PONG: &str = "$pong";

/// The action that answers `action`: itself, except for `$ping`.
fn reply_action(action: &str) -> &str {
    if action == PING { PONG } else { action }
}

/// Action number `id`, sent at `t` (Unix nanos). The name is written as a
/// JSON string, so any name makes a valid frame.
pub fn frame(action: &str, id: u64, t: u64) -> String {
    let name = serde_json::to_string(action).expect("a string serializes");
    format!(r#"{{"action":{name},"details":{{"t":{t}}},"id":{id}}}"#)
}

/// The share of `total` actions that goes to the connections `start..end`
/// of `all`: proportional to their number, the shares of contiguous ranges
/// adding up to `total` exactly.
pub fn share(total: u64, all: u64, start: u64, end: u64) -> u64 {
    if all == 0 {
        return 0;
    }
    let upto = |conn: u64| (u128::from(total) * u128::from(conn.min(all)) / u128::from(all)) as u64;
    upto(end) - upto(start)
}

/// What a frame from the edge says about an action.
#[derive(Debug, PartialEq, Eq)]
enum Answer {
    /// A reply to action `id`.
    Reply(u64),
    /// An error reply to action `id`, with its code.
    Error(u64, u16),
    /// Any other frame.
    Other,
}

#[derive(Deserialize)]
struct ErrorDetails {
    code: u16,
}

/// Reads `text` as an answer to an action named `action`.
fn answer(action: &str, text: &str) -> Answer {
    let reply = reply_action(action);
    let Ok(frame) = serde_json::from_str::<Frame<'_>>(text) else { return Answer::Other };
    // The ids this tool sends are plain numbers; anything else is not ours.
    let Some(id) = frame.id.and_then(|id| id.get().parse::<u64>().ok()) else { return Answer::Other };
    if frame.action == reply {
        return Answer::Reply(id);
    }
    if frame.action.strip_suffix(ERROR_SUFFIX) == Some(action) {
        let code = frame.details.and_then(|details| serde_json::from_str::<ErrorDetails>(details.get()).ok());
        // An error without a readable code still answers the action.
        return Answer::Error(id, code.map_or(0, |details| details.code));
    }
    Answer::Other
}

/// An action waiting for its answer.
#[derive(Debug, Clone, Copy)]
struct Waiting {
    local: usize,
    sent_at: Instant,
}

/// The actions waiting for an answer, by id. Ids are handed out in order
/// and time out in the same order, so they sit in a ring from the oldest
/// id still tracked: sending, answering and timing out are each O(1).
#[derive(Debug, Default)]
struct Inflight {
    /// Id of the ring's front.
    base: u64,
    /// `None` for an action already answered, timed out or never sent.
    slots: VecDeque<Option<Waiting>>,
    /// Actions in `slots` still waiting.
    waiting: usize,
}

impl Inflight {
    /// Tracks action `id`, the next id after the last one tracked.
    fn push(&mut self, id: u64, waiting: Option<Waiting>) {
        debug_assert_eq!(id, self.base + self.slots.len() as u64, "ids are tracked in order");
        self.waiting += usize::from(waiting.is_some());
        self.slots.push_back(waiting);
    }

    /// Action `id`, if it is waiting (not answered, timed out, or never
    /// sent).
    fn get(&self, id: u64) -> Option<Waiting> {
        let index = usize::try_from(id.checked_sub(self.base)?).ok()?;
        *self.slots.get(index)?
    }

    /// Stops waiting for action `id`, if it was.
    fn remove(&mut self, id: u64) {
        let Some(index) = id.checked_sub(self.base).and_then(|index| usize::try_from(index).ok()) else { return };
        if self.slots.get_mut(index).and_then(Option::take).is_some() {
            self.waiting -= 1;
            self.trim();
        }
    }

    /// Drops the answered front of the ring.
    fn trim(&mut self) {
        while let Some(None) = self.slots.front() {
            self.slots.pop_front();
            self.base += 1;
        }
    }

    /// Stops waiting for every action sent at or before `deadline`, and
    /// hands their ids to `expired`.
    fn expire(&mut self, deadline: Instant, mut expired: impl FnMut(u64)) {
        while let Some(front) = self.slots.front() {
            match front {
                Some(waiting) if waiting.sent_at > deadline => break,
                Some(_) => {
                    expired(self.base);
                    self.waiting -= 1;
                }
                None => {}
            }
            self.slots.pop_front();
            self.base += 1;
        }
    }
}

/// Everything one worker counts about its actions.
#[derive(Debug)]
pub struct ActionTally {
    action: String,
    timeout: Duration,
    /// Id of the next action.
    next: u64,
    inflight: Inflight,
    /// Ids that timed out, for telling a late answer from a stray one
    /// (timeouts are rare; in a run where they are not, this is still only
    /// a few bytes per action).
    timed_out: BTreeSet<u64>,
    sent: u64,
    unsent: u64,
    replied: u64,
    errors: BTreeMap<u16, u64>,
    timeouts: u64,
    late: u64,
    unmatched: u64,
    other_frames: u64,
    rtt: Histogram<u64>,
}

impl ActionTally {
    pub fn new(action: &str, timeout: Duration) -> ActionTally {
        ActionTally {
            action: action.to_owned(),
            timeout,
            next: 0,
            inflight: Inflight::default(),
            timed_out: BTreeSet::new(),
            sent: 0,
            unsent: 0,
            replied: 0,
            errors: BTreeMap::new(),
            timeouts: 0,
            late: 0,
            unmatched: 0,
            other_frames: 0,
            rtt: hist::micros(),
        }
    }

    /// The next action to send: its id and the local connection it goes
    /// out on, of `connections`.
    pub fn next(&self, connections: usize) -> (u64, usize) {
        (self.next, (self.next % connections.max(1) as u64) as usize)
    }

    /// The action [`next`](Self::next) named was written on `local` at
    /// `now`, or could not be (`sent` false: its connection is gone).
    pub fn sent(&mut self, local: usize, now: Instant, sent: bool) {
        let id = self.next;
        self.next += 1;
        if sent {
            self.sent += 1;
            self.inflight.push(id, Some(Waiting { local, sent_at: now }));
        } else {
            self.unsent += 1;
            self.inflight.push(id, None);
            self.inflight.trim();
        }
    }

    /// Connection `local` got text frame `text` at `now`.
    pub fn text(&mut self, local: usize, text: &str, now: Instant) {
        let (id, code) = match answer(&self.action, text) {
            Answer::Reply(id) => (id, None),
            Answer::Error(id, code) => (id, Some(code)),
            Answer::Other => {
                self.other_frames += 1;
                return;
            }
        };
        match self.inflight.get(id) {
            Some(waiting) if waiting.local == local => {
                self.inflight.remove(id);
                self.rtt.saturating_record(hist::duration_micros(now.saturating_duration_since(waiting.sent_at)));
                match code {
                    None => self.replied += 1,
                    Some(code) => *self.errors.entry(code).or_default() += 1,
                }
            }
            // Answered on another connection: not an answer, as the
            // contract sends it on the action's own; that one still waits.
            Some(_) => self.unmatched += 1,
            None if self.timed_out.remove(&id) => self.late += 1,
            None => self.unmatched += 1,
        }
    }

    /// Counts every action still waiting past the timeout at `now`.
    pub fn expire(&mut self, now: Instant) {
        let Some(deadline) = now.checked_sub(self.timeout) else { return };
        let (timeouts, timed_out) = (&mut self.timeouts, &mut self.timed_out);
        self.inflight.expire(deadline, |id| {
            *timeouts += 1;
            timed_out.insert(id);
        });
    }

    /// Actions sent or given up on so far: the id of the next.
    pub fn issued(&self) -> u64 {
        self.next
    }

    /// Actions still waiting for an answer.
    pub fn waiting(&self) -> usize {
        self.inflight.waiting
    }

    /// Actions sent so far, and answers received (errors included).
    pub fn progress(&self) -> (u64, u64) {
        (self.sent, self.replied + self.errors.values().sum::<u64>())
    }

    /// The counts, once sending took `sending` (from the first action due
    /// to the last one sent).
    pub fn stats(&self, sending: Duration) -> ActionStats {
        ActionStats {
            sent: self.sent,
            unsent: self.unsent,
            sending_seconds: sending.as_secs_f64(),
            replied: self.replied,
            errors: self.errors.iter().map(|(&code, &count)| (code, count)).collect(),
            timeouts: self.timeouts,
            late: self.late,
            unmatched: self.unmatched,
            other_frames: self.other_frames,
            rtt: Buckets::from(&self.rtt),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TIMEOUT: Duration = Duration::from_secs(5);

    fn reply(id: u64) -> String {
        format!(r#"{{"action":"echo","details":{{"t":1}},"id":{id}}}"#)
    }

    fn error(id: u64, code: u16) -> String {
        format!(r#"{{"action":"echo:error","details":{{"code":{code},"message":"no"}},"id":{id}}}"#)
    }

    /// A tally that sent `count` actions over `conns` connections, one
    /// millisecond apart from `start`.
    fn sent(count: u64, conns: usize, start: Instant) -> ActionTally {
        let mut t = ActionTally::new("echo", TIMEOUT);
        for i in 0..count {
            let (_, local) = t.next(conns);
            t.sent(local, start + Duration::from_millis(i), true);
        }
        t
    }

    #[test]
    fn a_frame_is_a_client_action_with_a_numeric_id() {
        let text = frame("echo", 7, 1_700_000_000_000_000_000);
        assert_eq!(text, r#"{"action":"echo","details":{"t":1700000000000000000},"id":7}"#);
        let value: serde_json::Value = serde_json::from_str(&frame(r#"a"b"#, 0, 0)).unwrap();
        assert_eq!(value["action"], r#"a"b"#);
    }

    #[test]
    fn an_echoed_action_answers_it() {
        assert_eq!(answer("echo", &frame("echo", 7, 1)), Answer::Reply(7));
    }

    #[test]
    fn a_ping_is_answered_by_a_pong() {
        let pong = r#"{"action":"$pong","details":{"t":1},"id":4}"#;
        assert_eq!(answer(PING, pong), Answer::Reply(4));
        assert_eq!(answer(PING, &frame(PING, 4, 1)), Answer::Other);
        assert_eq!(answer("echo", pong), Answer::Other);
    }

    #[test]
    fn answers_are_told_apart() {
        assert_eq!(answer("echo", &reply(3)), Answer::Reply(3));
        assert_eq!(answer("echo", &error(3, 504)), Answer::Error(3, 504));
        assert_eq!(answer("echo", r#"{"action":"echo:error","details":null,"id":3}"#), Answer::Error(3, 0));
        for other in [
            r#"{"action":"$error","details":{"code":400,"message":"bad"}}"#,
            r#"{"action":"echo","details":null}"#,
            r#"{"action":"echo","details":null,"id":"3"}"#,
            r#"{"action":"echo2","details":null,"id":3}"#,
            r#"{"action":"bench","details":{"t":1,"seq":0}}"#,
            "not json",
        ] {
            assert_eq!(answer("echo", other), Answer::Other, "{other}");
        }
    }

    #[test]
    fn shares_are_proportional_and_add_up() {
        assert_eq!(share(100_000, 500, 0, 250), 50_000);
        assert_eq!(share(100_000, 500, 250, 500), 50_000);
        let ranges = crate::procs::split(7, 3);
        let shares: Vec<u64> = ranges.iter().map(|r| share(10, 7, r.start, r.end)).collect();
        assert_eq!(shares.iter().sum::<u64>(), 10);
        assert_eq!(shares, [4, 3, 3]);
        assert_eq!(share(10, 0, 0, 0), 0);
        assert_eq!(share(u64::MAX, 3, 0, 3), u64::MAX);
    }

    #[test]
    fn actions_go_round_robin_over_the_connections() {
        let mut t = ActionTally::new("echo", TIMEOUT);
        let now = Instant::now();
        let mut locals = Vec::new();
        for _ in 0..7 {
            let (_, local) = t.next(3);
            locals.push(local);
            t.sent(local, now, true);
        }
        assert_eq!(locals, [0, 1, 2, 0, 1, 2, 0]);
        assert_eq!(t.next(3), (7, 1));
    }

    #[test]
    fn replies_and_errors_give_round_trip_times() {
        let start = Instant::now();
        let mut t = sent(3, 3, start);
        t.text(1, &reply(1), start + Duration::from_millis(3));
        t.text(0, &reply(0), start + Duration::from_millis(2));
        t.text(2, &error(2, 504), start + Duration::from_millis(12));
        assert_eq!(t.waiting(), 0);
        assert_eq!(t.progress(), (3, 3));
        let stats = t.stats(Duration::from_secs(1));
        assert_eq!((stats.sent, stats.replied, stats.timeouts, stats.unmatched), (3, 2, 0, 0));
        assert_eq!(stats.errors, [(504, 1)]);
        let mut rtt = hist::micros();
        stats.rtt.add_to(&mut rtt);
        assert_eq!(rtt.len(), 3);
        assert_eq!((rtt.min(), rtt.max()), (2000, 10_007));
    }

    #[test]
    fn a_repeated_or_stray_answer_is_unmatched() {
        let start = Instant::now();
        let mut t = sent(2, 2, start);
        t.text(0, &reply(0), start);
        t.text(0, &reply(0), start);
        t.text(0, &reply(99), start);
        t.text(0, r#"{"action":"$reauth","details":null}"#, start);
        let stats = t.stats(Duration::ZERO);
        assert_eq!((stats.replied, stats.unmatched, stats.other_frames), (1, 2, 1));
        assert_eq!(t.waiting(), 1);
    }

    #[test]
    fn an_answer_on_another_connection_does_not_count() {
        let start = Instant::now();
        let mut t = sent(3, 3, start);
        t.text(0, &reply(0), start);
        t.text(2, &reply(1), start);
        assert_eq!(t.waiting(), 2);
        t.text(1, &reply(1), start);
        let stats = t.stats(Duration::ZERO);
        assert_eq!((stats.replied, stats.unmatched), (2, 1));
        assert_eq!(t.waiting(), 1);
    }

    #[test]
    fn unanswered_actions_time_out_in_order_and_answer_late() {
        let start = Instant::now();
        let mut t = sent(5, 1, start);
        t.text(0, &reply(1), start + Duration::from_millis(1));
        // Actions 0..=2 were sent at 0, 1 and 2 ms: 0 and 2 are over 5 s
        // old at 5.002 s, 3 and 4 are not yet.
        t.expire(start + TIMEOUT + Duration::from_millis(2));
        assert_eq!((t.stats(Duration::ZERO).timeouts, t.waiting()), (2, 2));
        t.text(0, &reply(2), start + TIMEOUT * 2);
        t.text(0, &reply(3), start + TIMEOUT * 2);
        t.expire(start + TIMEOUT * 3);
        let stats = t.stats(Duration::ZERO);
        assert_eq!((stats.replied, stats.timeouts, stats.late, stats.unmatched), (2, 3, 1, 0));
        assert_eq!(t.waiting(), 0);
        assert!(t.inflight.slots.is_empty());
    }

    #[test]
    fn unsent_actions_are_counted_and_never_wait() {
        let start = Instant::now();
        let mut t = ActionTally::new("echo", TIMEOUT);
        t.sent(0, start, false);
        t.sent(1, start, true);
        t.sent(0, start, false);
        assert_eq!(t.waiting(), 1);
        t.text(1, &reply(1), start);
        assert!(t.inflight.slots.is_empty());
        let stats = t.stats(Duration::ZERO);
        assert_eq!((stats.sent, stats.unsent, stats.replied), (1, 2, 1));
    }

    #[test]
    fn the_ring_stays_as_short_as_the_oldest_waiting_action() {
        let start = Instant::now();
        let mut t = sent(1000, 10, start);
        for id in 1..1000 {
            t.text((id % 10) as usize, &reply(id), start);
        }
        // Action 0 still waits, and holds the ring open behind it.
        assert_eq!((t.inflight.base, t.inflight.slots.len(), t.waiting()), (0, 1000, 1));
        t.text(0, &reply(0), start);
        assert!(t.inflight.slots.is_empty());
        assert_eq!(t.inflight.base, 1000);
        assert_eq!(t.stats(Duration::ZERO).replied, 1000);
    }
}
