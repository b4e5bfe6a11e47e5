//! Every edge's `/metrics`, read four times a second through a scale run,
//! and what they say of the broadcast: when each edge had written its
//! share.
//!
//! An edge counts a frame in `frames_sent` once it has handed it whole to
//! the kernel. One small frame fits in any client socket's receive buffer,
//! so an edge's writes do not wait for the load tool to read: the moment
//! every edge's count has grown by its sessions × the messages is the edge
//! side's publish → last delivery, whatever the starved workers make of
//! it. The reads also say whether an edge's NATS connections (the bus and
//! the deliveries' subscriber, counted together) were lost or reconnected.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Result;
use serde::Serialize;
use tokio::time::MissedTickBehavior;
use tokio_util::task::AbortOnDropHandle;

use crate::publish::unix_nanos;
use crate::soak::sample::{Http, gauge};

/// How often each edge is read: the edges' time is known to within this
/// and the time a read takes to be answered.
const READ_EVERY: Duration = Duration::from_millis(250);
/// How long one read may take: an edge busy with a broadcast on a machine
/// at load 150 answers late, and a late answer still counts.
const READ_TIMEOUT: Duration = Duration::from_secs(30);

/// The series read, as the edge names them.
const FRAMES_SENT: &str = "herald_edge_frames_sent_total";
const SESSIONS: &str = "herald_edge_sessions{protocol=\"herald\"}";
const RECONNECTS: &str = "herald_edge_bus_reconnects_total";
const CONNECTED: &str = "herald_edge_bus_connected";
const SLOW_CONSUMERS: &str = "herald_edge_slow_consumers_total";
const MAILBOX_FULL: &str = "herald_edge_frames_dropped_total{reason=\"mailbox_full\"}";

/// One edge's counters at one read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Counters {
    /// Frames handed whole to the kernel (`$connected` included).
    pub frames_sent: u64,
    /// Herald sessions open.
    pub sessions: u64,
    /// Reconnections of its NATS connections (the bus and the deliveries'
    /// subscriber, one counter) after the first connect.
    pub reconnects: u64,
    /// Whether both NATS connections were up.
    pub connected: bool,
    /// Sessions closed for not reading.
    pub slow_consumers: u64,
    /// Deliveries dropped at a full mailbox.
    pub mailbox_full: u64,
}

impl Counters {
    /// The counters in a `/metrics` text, or the first one missing.
    fn parse(text: &str) -> Result<Counters, &'static str> {
        let value = |name: &'static str| gauge(text, name).map(|value| value as u64).ok_or(name);
        Ok(Counters {
            frames_sent: value(FRAMES_SENT)?,
            sessions: value(SESSIONS)?,
            reconnects: value(RECONNECTS)?,
            connected: value(CONNECTED)? == 1,
            slow_consumers: value(SLOW_CONSUMERS)?,
            mailbox_full: value(MAILBOX_FULL)?,
        })
    }
}

/// One read of one edge: the counters were read between the request
/// going out and its answer coming in (Unix nanos).
#[derive(Debug, Clone, Copy)]
struct Read {
    asked: u64,
    answered: u64,
    counters: Counters,
}

/// Everything read from one edge.
#[derive(Debug, Default)]
struct Timeline {
    reads: Vec<Read>,
    /// Reads that failed or timed out.
    failed: u64,
    /// Why the last one failed.
    last_error: Option<String>,
}

/// The edges' latest counters, added up.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Totals {
    pub frames_sent: u64,
    pub sessions: u64,
    pub reconnects: u64,
    /// Edges whose latest read found a NATS connection down.
    pub disconnected: usize,
    /// Edges not read yet.
    pub unread: usize,
}

/// Reads every edge every [`READ_EVERY`], each on its own (a slow edge does not
/// hold up the others' reads), until dropped or finished.
#[derive(Debug)]
pub struct EdgeWatch {
    timelines: Arc<Mutex<Vec<Timeline>>>,
    _readers: Vec<AbortOnDropHandle<()>>,
}

impl EdgeWatch {
    /// Starts reading the edges listening on `addrs`.
    pub fn start(addrs: &[SocketAddr]) -> Result<EdgeWatch> {
        let http = Http::with_timeout(READ_TIMEOUT)?;
        let timelines: Arc<Mutex<Vec<Timeline>>> =
            Arc::new(Mutex::new(addrs.iter().map(|_| Timeline::default()).collect()));
        let readers = addrs
            .iter()
            .enumerate()
            .map(|(edge, addr)| {
                let (http, timelines, url) = (http.clone(), timelines.clone(), format!("http://{addr}/metrics"));
                AbortOnDropHandle::new(tokio::spawn(async move {
                    let mut ticks = tokio::time::interval(READ_EVERY);
                    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
                    loop {
                        ticks.tick().await;
                        let asked = unix_nanos();
                        let read = http.get(&url).await.and_then(|text| {
                            Counters::parse(&text).map_err(|name| anyhow::anyhow!("{url} has no {name}"))
                        });
                        let answered = unix_nanos();
                        let mut timelines = timelines.lock().expect("edge timelines poisoned");
                        let timeline = &mut timelines[edge];
                        match read {
                            Ok(counters) => timeline.reads.push(Read { asked, answered, counters }),
                            Err(e) => {
                                timeline.failed += 1;
                                timeline.last_error = Some(format!("{e:#}"));
                            }
                        }
                    }
                }))
            })
            .collect();
        Ok(EdgeWatch { timelines, _readers: readers })
    }

    /// The edges' latest counters, added up.
    pub fn totals(&self) -> Totals {
        let timelines = self.timelines.lock().expect("edge timelines poisoned");
        timelines.iter().fold(Totals::default(), |sum, timeline| match timeline.reads.last() {
            Some(read) => Totals {
                frames_sent: sum.frames_sent + read.counters.frames_sent,
                sessions: sum.sessions + read.counters.sessions,
                reconnects: sum.reconnects + read.counters.reconnects,
                disconnected: sum.disconnected + usize::from(!read.counters.connected),
                ..sum
            },
            None => Totals { unread: sum.unread + 1, ..sum },
        })
    }

    /// Stops reading, and says what the reads show of `messages` messages
    /// to everyone, the first published at `published` (Unix nanos).
    pub fn finish(self, published: u64, messages: u64) -> EdgeSide {
        drop(self._readers);
        let timelines = std::mem::take(&mut *self.timelines.lock().expect("edge timelines poisoned"));
        EdgeSide::new(&timelines, published, messages)
    }
}

/// What one edge's reads say of the broadcast.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Share {
    /// Sessions at the last read before the publish.
    sessions: u64,
    /// Frames written from that read to the last read.
    written: u64,
    /// Seconds from the publish after which it had not written its share
    /// yet (its last read short of it was asked then).
    after_s: f64,
    /// Seconds from the publish by which it had (the answer to its first
    /// read that found it done); `None` if no read did.
    by_s: Option<f64>,
}

/// Seconds from `published` to `at` (Unix nanos), 0 for earlier.
fn since(published: u64, at: u64) -> f64 {
    at.saturating_sub(published) as f64 / 1e9
}

impl Share {
    /// The share of an edge read as `reads`; `None` when no read answered
    /// before the publish (nothing to count from).
    fn of(reads: &[Read], published: u64, messages: u64) -> Option<Share> {
        let start = reads.iter().rposition(|read| read.answered < published)?;
        let base = reads[start].counters;
        let target = base.frames_sent + base.sessions * messages;
        let later = &reads[start + 1..];
        let done = later.iter().position(|read| read.counters.frames_sent >= target);
        // The reads short of it after the publish: all before the first
        // done, or all.
        let short = &later[..done.unwrap_or(later.len())];
        let last = later.last().map_or(base, |read| read.counters);
        Some(Share {
            sessions: base.sessions,
            written: last.frames_sent.saturating_sub(base.frames_sent),
            after_s: short.last().map_or(0.0, |read| since(published, read.asked)),
            by_s: done.map(|i| since(published, later[i].answered)),
        })
    }
}

/// What the edges' reads say of the broadcast, and of their NATS
/// connections over the whole run.
#[derive(Debug, Clone, Serialize)]
pub struct EdgeSide {
    pub edges: usize,
    /// Edges read before the publish: those the figures below count.
    pub edges_counted: usize,
    /// Edges that wrote their whole share within the run.
    pub edges_done: usize,
    /// Sessions at the publish, added up: each had every message to get.
    pub sessions: u64,
    /// Frames written from the publish to the last read, added up.
    pub written: u64,
    /// Seconds from the publish to the answer of the read that found the
    /// last edge done: the edge side's publish → last delivery, at most.
    /// `None` unless every edge counted was found done.
    pub all_written_by_s: Option<f64>,
    /// Seconds from the publish at which some edge was still short: the
    /// edge side's time is at least this.
    pub all_written_after_s: f64,
    /// Each edge's `by_s`, in edge order (`None`: not done, or not counted).
    pub per_edge_by_s: Vec<Option<f64>>,
    /// NATS reconnections over the run (first read to last), added up.
    pub reconnects: u64,
    /// Edges found with a NATS connection down at some read.
    pub edges_seen_disconnected: usize,
    /// Sessions closed for not reading over the run, added up.
    pub slow_consumers: u64,
    /// Deliveries dropped at a full mailbox over the run, added up.
    pub mailbox_full: u64,
    /// Reads that failed or timed out, added up, and the last reason.
    pub failed_reads: u64,
    pub last_read_error: Option<String>,
}

impl EdgeSide {
    fn new(timelines: &[Timeline], published: u64, messages: u64) -> EdgeSide {
        let shares: Vec<Option<Share>> =
            timelines.iter().map(|timeline| Share::of(&timeline.reads, published, messages)).collect();
        let counted: Vec<Share> = shares.iter().flatten().copied().collect();
        let by: Vec<Option<f64>> = counted.iter().map(|share| share.by_s).collect();
        let growth = |field: fn(&Counters) -> u64| -> u64 {
            timelines
                .iter()
                .filter_map(|timeline| {
                    let (first, last) = (timeline.reads.first()?, timeline.reads.last()?);
                    Some(field(&last.counters).saturating_sub(field(&first.counters)))
                })
                .sum()
        };
        EdgeSide {
            edges: timelines.len(),
            edges_counted: counted.len(),
            edges_done: by.iter().flatten().count(),
            sessions: counted.iter().map(|share| share.sessions).sum(),
            written: counted.iter().map(|share| share.written).sum(),
            all_written_by_s: if counted.len() == timelines.len() {
                by.iter().try_fold(0.0, |latest: f64, by| by.map(|by| latest.max(by)))
            } else {
                None
            },
            all_written_after_s: counted.iter().map(|share| share.after_s).fold(0.0, f64::max),
            per_edge_by_s: shares.iter().map(|share| share.and_then(|share| share.by_s)).collect(),
            reconnects: growth(|counters| counters.reconnects),
            edges_seen_disconnected: timelines
                .iter()
                .filter(|timeline| timeline.reads.iter().any(|read| !read.counters.connected))
                .count(),
            slow_consumers: growth(|counters| counters.slow_consumers),
            mailbox_full: growth(|counters| counters.mailbox_full),
            failed_reads: timelines.iter().map(|timeline| timeline.failed).sum(),
            last_read_error: timelines.iter().rev().find_map(|timeline| timeline.last_error.clone()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXPOSITION: &str = "# TYPE herald_edge_sessions gauge\n\
        herald_edge_sessions{protocol=\"herald\"} 3\n\
        herald_edge_sessions{protocol=\"pusher\"} 0\n\
        herald_edge_frames_sent_total 7\n\
        herald_edge_frames_dropped_total{reason=\"mailbox_full\"} 1\n\
        herald_edge_slow_consumers_total 0\n\
        herald_edge_bus_connected 1\n\
        herald_edge_bus_reconnects_total 2\n";

    #[test]
    fn an_edges_metrics_give_its_counters() {
        let counters = Counters::parse(EXPOSITION).unwrap();
        let expected = Counters {
            frames_sent: 7,
            sessions: 3,
            reconnects: 2,
            connected: true,
            slow_consumers: 0,
            mailbox_full: 1,
        };
        assert_eq!(counters, expected);
        let without = EXPOSITION.replace("herald_edge_bus_connected 1\n", "");
        assert_eq!(Counters::parse(&without), Err(CONNECTED));
    }

    /// A read asked at `at_ms`, answered 500 ms later, with `frames` sent
    /// of `sessions`.
    fn read(at_ms: u64, frames: u64, sessions: u64) -> Read {
        let asked = at_ms * 1_000_000;
        let counters = Counters { frames_sent: frames, sessions, connected: true, ..Counters::default() };
        Read { asked, answered: asked + 500_000_000, counters }
    }

    const PUBLISHED: u64 = 10_000_000_000;

    #[test]
    fn a_share_is_done_between_the_last_read_short_and_the_first_read_done() {
        // 100 sessions, 100 frames ($connected) before the publish at 10 s.
        let reads = [read(8000, 100, 100), read(9000, 100, 100), read(11000, 150, 100), read(12000, 200, 100)];
        let share = Share::of(&reads, PUBLISHED, 1).unwrap();
        assert_eq!(share, Share { sessions: 100, written: 100, after_s: 1.0, by_s: Some(2.5) });
        // Two messages: not done by the last read.
        let share = Share::of(&reads, PUBLISHED, 2).unwrap();
        assert_eq!(share, Share { sessions: 100, written: 100, after_s: 2.0, by_s: None });
    }

    #[test]
    fn a_share_done_at_the_first_read_after_the_publish_is_at_least_zero() {
        // The read asked at 9.8 s is answered after the publish: not a base.
        let reads = [read(9000, 10, 10), read(9800, 20, 10)];
        let share = Share::of(&reads, PUBLISHED, 1).unwrap();
        assert_eq!((share.after_s, share.by_s), (0.0, Some(0.3)));
        assert_eq!(Share::of(&reads[1..], PUBLISHED, 1), None, "no read before the publish");
    }

    #[test]
    fn the_edges_are_done_when_the_last_is() {
        let done_late = Timeline {
            reads: vec![read(9000, 10, 10), read(11000, 15, 10), read(20000, 20, 10)],
            ..Timeline::default()
        };
        let done_early = Timeline { reads: vec![read(9000, 5, 5), read(10000, 10, 5)], ..Timeline::default() };
        let side = EdgeSide::new(&[done_late, done_early], PUBLISHED, 1);
        assert_eq!((side.edges, side.edges_counted, side.edges_done), (2, 2, 2));
        assert_eq!((side.sessions, side.written), (15, 15));
        assert_eq!(side.all_written_by_s, Some(10.5));
        assert_eq!(side.all_written_after_s, 1.0);
        assert_eq!(side.per_edge_by_s, [Some(10.5), Some(0.5)]);

        let never_read = Timeline { failed: 3, last_error: Some("timed out".into()), ..Timeline::default() };
        let short = Timeline { reads: vec![read(9000, 5, 5), read(30000, 8, 5)], ..Timeline::default() };
        let side = EdgeSide::new(&[short, never_read], PUBLISHED, 1);
        assert_eq!((side.edges_counted, side.edges_done, side.written), (1, 0, 3));
        assert_eq!(side.all_written_by_s, None);
        assert_eq!(side.all_written_after_s, 20.0);
        assert_eq!((side.failed_reads, side.last_read_error.as_deref()), (3, Some("timed out")));
    }

    #[test]
    fn reconnects_and_lost_connections_are_counted_over_the_run() {
        let mut lost = read(11000, 10, 10);
        lost.counters.connected = false;
        let mut back = read(12000, 20, 10);
        back.counters.reconnects = 2;
        let timeline = Timeline { reads: vec![read(9000, 10, 10), lost, back], ..Timeline::default() };
        let side = EdgeSide::new(&[timeline], PUBLISHED, 1);
        assert_eq!((side.reconnects, side.edges_seen_disconnected), (2, 1));
    }
}
