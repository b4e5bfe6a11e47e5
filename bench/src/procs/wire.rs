//! The JSON lines between the parent and its workers: [`Order`]s on a
//! worker's standard input, [`Event`]s on its standard output.
//!
//! Counts travel as plain numbers and histograms as their non-empty buckets
//! ([`Buckets`]), so the parent adds them up exactly.

use std::collections::BTreeMap;
use std::ops::Range;

use serde::{Deserialize, Serialize};

use crate::hist::Buckets;
use crate::population::Population;

/// What one worker is to do.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WorkerPlan {
    pub urls: Vec<String>,
    pub token_secret: String,
    /// The connections it opens, by global number.
    pub conns: Range<u64>,
    pub population: Population,
    pub source_ips: u8,
    /// Connections it opens at once.
    pub connect_concurrency: usize,
}

/// Parent to worker, one JSON line each.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "order", rename_all = "snake_case")]
pub enum Order {
    /// The first line: what to open.
    Start(WorkerPlan),
    /// Report the final counts and exit; `published` messages were sent.
    Finish { published: u64 },
}

/// Worker to parent, one JSON line each.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    Progress(Progress),
    /// Every connection of the plan was opened or failed.
    Ready(ConnectStats),
    /// The answer to [`Order::Finish`].
    Done(DeliveryStats),
}

/// Counters for progress lines.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Progress {
    pub open: u64,
    pub failed: u64,
    /// Benchmark frames received so far.
    pub received: u64,
}

/// How one worker's connections opened.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ConnectStats {
    pub opened: u64,
    /// Opened connections per edge URL, in URL order.
    pub opened_per_edge: Vec<u64>,
    pub failed: u64,
    /// Failures by kind.
    pub errors: BTreeMap<String, u64>,
    /// TCP connect to `$connected`, in microseconds.
    pub handshake: Buckets,
}

/// What one worker's connections received.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct DeliveryStats {
    /// Deliveries its opened connections should have had.
    pub expected: u64,
    /// Benchmark frames received, repeats included.
    pub received: u64,
    /// Expected frames received at least once.
    pub distinct: u64,
    /// Expected frames received again.
    pub duplicates: u64,
    /// Frames for another connection's user.
    pub unexpected: u64,
    /// Text frames that were not benchmark frames.
    pub other_frames: u64,
    /// Connections that closed before the end of the run.
    pub closed_early: u64,
    /// Publish to delivery, in microseconds.
    pub latency: Buckets,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn orders_and_events_are_tagged_json_lines() {
        let finish = serde_json::to_value(Order::Finish { published: 7 }).unwrap();
        assert_eq!(finish, serde_json::json!({"order": "finish", "published": 7}));
        let line = r#"{"event":"progress","open":1,"failed":0,"received":5}"#;
        let Event::Progress(progress) = serde_json::from_str(line).unwrap() else { panic!("not progress") };
        assert_eq!(progress, Progress { open: 1, failed: 0, received: 5 });
    }
}
