//! Presence across every edge, by scatter-gather.
//!
//! Why not a shared store (e.g. a JetStream KV bucket of connections)? Every
//! connect and disconnect would become a replicated write, and the entries of
//! an edge that was killed would linger until their TTL. Asking the edges
//! instead costs nothing until someone asks, counts each connection exactly
//! once (only its edge answers for it), and a killed edge simply cannot
//! answer: its connections drop out of presence the moment it dies.
//!
//! Routers learn which edges are alive from their heartbeats, so a query
//! returns as soon as every live edge has answered. An edge that died without
//! saying so still counts as live for [`DEAD_AFTER_BEATS`] heartbeat
//! intervals (3 s by default); until then queries wait the full presence
//! timeout for it, but never count its connections.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use bytes::Bytes;
use herald_bus::{Bus, BusError};
use herald_proto::presence::{EdgePresence, Heartbeat, PresenceQuery};
use herald_proto::subject::Subjects;
use tokio::time::Instant;

/// Missed heartbeats after which an edge is taken for dead.
pub const DEAD_AFTER_BEATS: u32 = 3;

/// The edges this router has heard from.
#[derive(Debug, Default)]
pub(crate) struct EdgeDirectory {
    /// Edge id → when it is taken for dead unless it beats again.
    edges: Mutex<HashMap<String, Instant>>,
}

impl EdgeDirectory {
    pub fn on_heartbeat(&self, heartbeat: Heartbeat) {
        let mut edges = self.edges.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if heartbeat.leaving {
            edges.remove(&heartbeat.edge);
        } else {
            let interval = Duration::from_millis(heartbeat.interval_ms);
            edges.insert(heartbeat.edge, Instant::now() + interval * DEAD_AFTER_BEATS);
        }
    }

    /// Edges alive now.
    pub fn live(&self) -> usize {
        let now = Instant::now();
        let mut edges = self.edges.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        edges.retain(|_, dead_at| *dead_at > now);
        edges.len()
    }
}

/// Asks every edge and returns their answers, one per edge.
pub(crate) async fn ask(
    bus: &Bus,
    subjects: &Subjects,
    directory: &EdgeDirectory,
    query: &PresenceQuery,
    timeout: Duration,
) -> Result<Vec<EdgePresence>, BusError> {
    let payload = Bytes::from(serde_json::to_vec(query).expect("a presence query always serialises"));
    // Knowing no edge yet (a router just started), wait the whole timeout.
    let expected = match directory.live() {
        0 => usize::MAX,
        live => live,
    };
    let answers = bus.scatter(subjects.presence_query(), payload, expected, timeout).await?;
    let mut by_edge: HashMap<String, EdgePresence> = HashMap::new();
    for answer in answers {
        match herald_proto::json::from_object::<EdgePresence>(&answer) {
            Ok(presence) => {
                by_edge.insert(presence.edge.clone(), presence);
            }
            Err(e) => tracing::warn!(error = %e, "ignored a malformed presence answer"),
        }
    }
    Ok(by_edge.into_values().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn beat(edge: &str, interval_ms: u64, leaving: bool) -> Heartbeat {
        Heartbeat { edge: edge.into(), interval_ms, leaving }
    }

    #[tokio::test(start_paused = true)]
    async fn edges_are_live_until_they_miss_three_beats_or_leave() {
        let directory = EdgeDirectory::default();
        directory.on_heartbeat(beat("a", 1000, false));
        directory.on_heartbeat(beat("b", 1000, false));
        assert_eq!(directory.live(), 2);
        tokio::time::advance(Duration::from_millis(2900)).await;
        directory.on_heartbeat(beat("b", 1000, false));
        assert_eq!(directory.live(), 2);
        tokio::time::advance(Duration::from_millis(200)).await;
        assert_eq!(directory.live(), 1, "a missed three beats");
        directory.on_heartbeat(beat("b", 1000, true));
        assert_eq!(directory.live(), 0, "b said it was leaving");
    }
}
