//! What one worker process counts: connections opened, failed and lost, and
//! for every delivered benchmark frame its latency and whether it was meant
//! for that connection and seen there before.
//!
//! Pure bookkeeping with no I/O, so the delivery rules (exactly once, only
//! to the right connections) are unit-tested directly.

use std::collections::BTreeMap;
use std::time::Duration;

use hdrhistogram::Histogram;

use crate::hist::{self, Buckets};
use crate::population::Population;
use crate::procs::{ConnectStats, DeliveryStats, Progress};
use crate::protocol::Frame;
use crate::publish::{BENCH_ACTION, Stamp};

/// Distinct failure descriptions kept per worker; later new ones are
/// counted under one "other" entry, so a storm of odd errors stays small.
const MAX_ERROR_KINDS: usize = 16;

/// Which messages one connection has seen: one bit per slot (see
/// [`Population::slot`]), grown as slots arrive.
#[derive(Debug, Default)]
struct Seen(Vec<u64>);

impl Seen {
    /// Marks `slot` seen; false if it already was.
    fn insert(&mut self, slot: u64) -> bool {
        let word = (slot / 64) as usize;
        let bit = 1u64 << (slot % 64);
        if word >= self.0.len() {
            self.0.resize(word + 1, 0);
        }
        let fresh = self.0[word] & bit == 0;
        self.0[word] |= bit;
        fresh
    }
}

/// The state of one connection of this worker.
#[derive(Debug, Default)]
struct Conn {
    /// Whether it was opened (failures stay false).
    opened: bool,
    /// Opened and not closed since.
    open: bool,
    seen: Seen,
}

/// Everything one worker counts.
#[derive(Debug)]
pub struct Tally {
    population: Population,
    /// Global number of the worker's first connection.
    first: u64,
    conns: Vec<Conn>,
    /// Connections opened per edge URL.
    opened_per_edge: Vec<u64>,
    open: u64,
    failed: u64,
    errors: BTreeMap<String, u64>,
    handshake: Histogram<u64>,
    closed_early: u64,
    received: u64,
    distinct: u64,
    duplicates: u64,
    unexpected: u64,
    other_frames: u64,
    latency: Histogram<u64>,
    /// When the latest benchmark frame arrived (Unix nanos).
    last_received: u64,
}

impl Tally {
    /// A tally for connections `first..first + count` over `edges` URLs.
    pub fn new(population: Population, first: u64, count: usize, edges: usize) -> Tally {
        Tally {
            population,
            first,
            conns: (0..count).map(|_| Conn::default()).collect(),
            opened_per_edge: vec![0; edges],
            open: 0,
            failed: 0,
            errors: BTreeMap::new(),
            handshake: hist::micros(),
            closed_early: 0,
            received: 0,
            distinct: 0,
            duplicates: 0,
            unexpected: 0,
            other_frames: 0,
            latency: hist::micros(),
            last_received: 0,
        }
    }

    /// Connection `local` (counted from the worker's first) is open on
    /// `edge`; it took `took` from TCP connect to `$connected`.
    pub fn opened(&mut self, local: usize, edge: usize, took: Duration) {
        let conn = &mut self.conns[local];
        conn.opened = true;
        conn.open = true;
        self.open += 1;
        self.opened_per_edge[edge] += 1;
        self.handshake.saturating_record(hist::duration_micros(took));
    }

    /// A connection could not be opened, for the reason `kind`.
    pub fn failed(&mut self, kind: String) {
        self.failed += 1;
        let key = if self.errors.len() < MAX_ERROR_KINDS || self.errors.contains_key(&kind) {
            kind
        } else {
            "other errors".to_owned()
        };
        *self.errors.entry(key).or_default() += 1;
    }

    /// Connection `local` closed or failed before the run finished.
    pub fn closed(&mut self, local: usize) {
        let conn = &mut self.conns[local];
        if conn.open {
            conn.open = false;
            self.open -= 1;
            self.closed_early += 1;
        }
    }

    /// Connection `local` got text frame `text` at `now_nanos` (Unix time).
    pub fn text(&mut self, local: usize, text: &str, now_nanos: u64) {
        match serde_json::from_str::<Frame<'_>>(text) {
            Ok(Frame { action, details: Some(details), .. }) => self.event(local, &action, details.get(), now_nanos),
            _ => self.other_frames += 1,
        }
    }

    /// Connection `local` got an event `name` with `data` (a JSON text) at
    /// `now_nanos` (Unix time): a Herald frame's action and details, or a
    /// Pusher event's name and data.
    pub fn event(&mut self, local: usize, name: &str, data: &str, now_nanos: u64) {
        let stamp = (name == BENCH_ACTION).then(|| serde_json::from_str::<Stamp>(data).ok()).flatten();
        let Some(stamp) = stamp else {
            self.other_frames += 1;
            return;
        };
        self.received += 1;
        self.last_received = self.last_received.max(now_nanos);
        self.latency.saturating_record(now_nanos.saturating_sub(stamp.t) / 1000);
        match self.population.slot(self.first + local as u64, stamp.seq) {
            None => self.unexpected += 1,
            Some(slot) if self.conns[local].seen.insert(slot) => self.distinct += 1,
            Some(_) => self.duplicates += 1,
        }
    }

    pub fn progress(&self) -> Progress {
        Progress { open: self.open, failed: self.failed, received: self.received, sent: 0 }
    }

    pub fn connect_stats(&self) -> ConnectStats {
        ConnectStats {
            opened: self.conns.iter().filter(|conn| conn.opened).count() as u64,
            opened_per_edge: self.opened_per_edge.clone(),
            failed: self.failed,
            errors: self.errors.clone(),
            handshake: Buckets::from(&self.handshake),
        }
    }

    /// The final counts, once `published` messages have been published.
    pub fn delivery_stats(&self, published: u64) -> DeliveryStats {
        let expected = (self.first..)
            .zip(&self.conns)
            .filter(|(_, conn)| conn.opened)
            .map(|(global, _)| self.population.expected(global, published))
            .sum();
        DeliveryStats {
            expected,
            received: self.received,
            distinct: self.distinct,
            duplicates: self.duplicates,
            unexpected: self.unexpected,
            other_frames: self.other_frames,
            closed_early: self.closed_early,
            latency: Buckets::from(&self.latency),
            last_received_unix_nanos: self.last_received,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::publish;

    fn frame(seq: u64, t: u64) -> String {
        String::from_utf8(publish::frame(seq, t, 0).to_vec()).unwrap()
    }

    fn tally(population: Population, count: usize) -> Tally {
        let mut tally = Tally::new(population, 10, count, 2);
        for local in 0..count {
            tally.opened(local, local % 2, Duration::from_millis(3));
        }
        tally
    }

    #[test]
    fn counts_distinct_duplicate_and_latency() {
        let mut t = tally(Population::Distinct { groups: vec![] }, 2);
        t.text(0, &frame(0, 1_000_000), 3_000_000);
        t.text(0, &frame(1, 1_000_000), 3_000_000);
        t.text(0, &frame(1, 1_000_000), 3_000_000);
        t.text(1, &frame(0, 1_000_000), 3_000_000);
        t.text(1, r#"{"action":"$reauth","details":null}"#, 3_000_000);
        let stats = t.delivery_stats(2);
        assert_eq!((stats.expected, stats.received, stats.distinct, stats.duplicates), (4, 4, 3, 1));
        assert_eq!((stats.unexpected, stats.other_frames), (0, 1));
        assert_eq!(stats.last_received_unix_nanos, 3_000_000);
        let mut latency = hist::micros();
        stats.latency.add_to(&mut latency);
        assert_eq!(latency.len(), 4);
        assert_eq!(latency.value_at_quantile(0.5), 2000);
    }

    #[test]
    fn pusher_events_count_like_frames() {
        let mut t = tally(Population::Distinct { groups: vec!["bench".into()] }, 1);
        t.event(0, BENCH_ACTION, r#"{"t":1000000,"seq":0,"pad":""}"#, 2_000_000);
        t.event(0, BENCH_ACTION, r#"{"t":1000000,"seq":0,"pad":""}"#, 2_000_000);
        t.event(0, "pusher_internal:subscription_succeeded", "null", 2_000_000);
        t.event(0, BENCH_ACTION, "not a stamp", 2_000_000);
        let stats = t.delivery_stats(1);
        assert_eq!((stats.expected, stats.received, stats.distinct, stats.duplicates), (1, 2, 1, 1));
        assert_eq!(stats.other_frames, 2);
    }

    #[test]
    fn a_message_for_another_user_is_unexpected() {
        // Connections 10..14 are tabs 0 and 1 of users 5 and 6 (of 7).
        let mut t = tally(Population::Tabs { users: 7, tabs: 2 }, 4);
        t.text(0, &frame(5, 0), 1);
        t.text(1, &frame(5, 0), 1);
        t.text(2, &frame(5, 0), 1);
        let stats = t.delivery_stats(7);
        assert_eq!((stats.expected, stats.distinct, stats.unexpected), (4, 2, 1));
    }

    #[test]
    fn closing_and_failing_are_counted_once() {
        let mut t = Tally::new(Population::Distinct { groups: vec![] }, 0, 3, 1);
        t.opened(0, 0, Duration::ZERO);
        t.opened(1, 0, Duration::ZERO);
        t.failed("tcp: refused".into());
        t.closed(1);
        t.closed(1);
        assert_eq!(t.progress(), Progress { open: 1, failed: 1, received: 0, sent: 0 });
        let connect = t.connect_stats();
        assert_eq!((connect.opened, connect.opened_per_edge.as_slice()), (2, &[2][..]));
        assert_eq!(t.delivery_stats(5).expected, 10);
        assert_eq!(t.delivery_stats(5).closed_early, 1);
    }

    #[test]
    fn error_kinds_are_bounded() {
        let mut t = Tally::new(Population::Distinct { groups: vec![] }, 0, 0, 1);
        for i in 0..100 {
            t.failed(format!("kind {}", i % 40));
        }
        let errors = t.connect_stats().errors;
        assert_eq!(errors.len(), MAX_ERROR_KINDS + 1);
        assert_eq!(errors.values().sum::<u64>(), 100);
    }

    #[test]
    fn seen_grows_and_detects_repeats() {
        let mut seen = Seen::default();
        assert!(seen.insert(1000));
        assert!(seen.insert(3));
        assert!(!seen.insert(1000));
        assert_eq!(seen.0.len(), 16);
    }
}
