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
use crate::protocol::Protocol;

/// What one worker is to do.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WorkerPlan {
    pub urls: Vec<String>,
    /// How the servers behind `urls` are spoken to.
    pub protocol: Protocol,
    pub token_secret: String,
    /// The connections it opens, by global number.
    pub conns: Range<u64>,
    pub population: Population,
    pub source_ips: u8,
    /// Connections it opens at once.
    pub connect_concurrency: usize,
    /// Each connection's read buffer, in bytes (`Dialer::read_buffer`).
    pub read_buffer_bytes: usize,
}

/// Parent to worker, one JSON line each.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "order", rename_all = "snake_case")]
pub enum Order {
    /// The first line: what to open.
    Start(WorkerPlan),
    /// Start sending client actions on the open connections; answered by
    /// [`Event::Acted`] once they are all answered or timed out.
    Act(ActionLoad),
    /// Report the final counts and exit; `published` messages were sent.
    Finish { published: u64 },
}

/// The client actions one worker sends, spread evenly over its connections.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActionLoad {
    /// The action's name.
    pub action: String,
    /// Actions to send in all.
    pub count: u64,
    /// Actions per second, paced by elapsed time.
    pub rate: f64,
    /// How long a reply may take before it is counted as a timeout.
    pub timeout_ms: u64,
}

/// Worker to parent, one JSON line each.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    Progress(Progress),
    /// Every connection of the plan was opened or failed.
    Ready(ConnectStats),
    /// The answer to [`Order::Act`].
    Acted(ActionStats),
    /// The answer to [`Order::Finish`].
    Done(DeliveryStats),
}

/// Counters for progress lines.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Progress {
    pub open: u64,
    pub failed: u64,
    /// Benchmark frames, or replies to client actions, received so far.
    pub received: u64,
    /// Client actions sent so far.
    #[serde(default)]
    pub sent: u64,
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
    /// When the last benchmark frame arrived (Unix nanos; 0: none did).
    pub last_received_unix_nanos: u64,
}

/// What one worker's client actions came to.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ActionStats {
    /// Actions written to a socket.
    pub sent: u64,
    /// Actions not sent because their connection had closed or its write
    /// failed.
    pub unsent: u64,
    /// From the first action due to the last one sent, in seconds.
    pub sending_seconds: f64,
    /// Actions answered with a reply (not an error) in time.
    pub replied: u64,
    /// Actions answered with an `<action>:error` frame in time, as
    /// `[code, count]` pairs (an event is read through serde's buffered
    /// content, which does not turn a JSON key back into a number).
    pub errors: Vec<(u16, u64)>,
    /// Actions with no answer within the timeout.
    pub timeouts: u64,
    /// Answers that came after their action had timed out.
    pub late: u64,
    /// Answers with an id this connection is not waiting for (not sent,
    /// already answered, or sent on another connection).
    pub unmatched: u64,
    /// Other text frames (`$error`, `$reauth`, ...).
    pub other_frames: u64,
    /// Sending the action to reading its reply (errors included), in
    /// microseconds.
    pub rtt: Buckets,
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
        assert_eq!(progress, Progress { open: 1, failed: 0, received: 5, sent: 0 });
    }

    #[test]
    fn an_act_order_carries_its_load() {
        let load = ActionLoad { action: "echo".into(), count: 10, rate: 2.5, timeout_ms: 5000 };
        let line = serde_json::to_string(&Order::Act(load.clone())).unwrap();
        assert_eq!(line, r#"{"order":"act","action":"echo","count":10,"rate":2.5,"timeout_ms":5000}"#);
        let Order::Act(back) = serde_json::from_str(&line).unwrap() else { panic!("not act") };
        assert_eq!(back, load);
    }

    #[test]
    fn an_acted_event_with_error_codes_travels() {
        let stats = ActionStats { sent: 3, errors: vec![(404, 2), (504, 1)], ..Default::default() };
        let line = serde_json::to_string(&Event::Acted(stats)).unwrap();
        let Event::Acted(back) = serde_json::from_str(&line).unwrap() else { panic!("not acted") };
        assert_eq!((back.sent, back.errors), (3, vec![(404, 2), (504, 1)]));
    }
}
