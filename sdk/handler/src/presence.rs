//! Who is online, across every edge: the same answer the router's presence
//! API gives, for handlers and backends on NATS.
//!
//! Presence is asked, not stored: every live edge answers for its own
//! connections (scatter-gather on `<prefix>.presence.query`), so each
//! connection is counted exactly once, and an edge that died cannot answer,
//! so its connections drop out the moment it dies. Edges announce themselves
//! on `<prefix>.edges.heartbeat`; knowing how many are alive, a query returns
//! as soon as all have answered. An edge that died without saying so still
//! counts as live for [`DEAD_AFTER_BEATS`] heartbeat intervals (3 s by
//! default): until then, queries wait the whole timeout for it, but never
//! count its connections. See ARCHITECTURE.md for why not a shared store.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use herald_bus::{Bus, BusError};
use herald_proto::presence::{EdgePresence, Heartbeat, PresenceQuery};
use herald_proto::subject::Subjects;
use tokio::time::Instant;
use tokio_util::task::AbortOnDropHandle;

/// Missed heartbeats after which an edge is taken for dead.
pub const DEAD_AFTER_BEATS: u32 = 3;

/// A user's connections across every edge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UserPresence {
    pub online: bool,
    pub conns: usize,
}

/// A group's connections across every edge, and their distinct users
/// (anonymous connections count in `conns` only).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupPresence {
    pub conns: usize,
    pub users: Vec<String>,
}

/// Asks the edges who is online; cheap to clone.
#[derive(Debug, Clone)]
pub struct Presence {
    bus: Bus,
    subjects: Subjects,
    /// How long a query waits for the edges' answers.
    timeout: Duration,
    edges: Arc<EdgeDirectory>,
    /// Keeps the directory up to date while any clone lives.
    _tracker: Arc<AbortOnDropHandle<()>>,
}

/// The edges heard from, and when each is taken for dead unless it beats
/// again.
#[derive(Debug, Default)]
struct EdgeDirectory {
    edges: Mutex<HashMap<String, Instant>>,
}

impl Presence {
    /// Starts following the edges' heartbeats.
    pub async fn start(bus: Bus, subjects: Subjects, timeout: Duration) -> Result<Presence, BusError> {
        let mut heartbeats = bus.subscribe(subjects.edge_heartbeat()).await?;
        let edges = Arc::new(EdgeDirectory::default());
        let directory = edges.clone();
        let tracker = AbortOnDropHandle::new(tokio::spawn(async move {
            while let Some(message) = heartbeats.next().await {
                match herald_proto::json::from_object::<Heartbeat>(&message.payload) {
                    Ok(heartbeat) => directory.on_heartbeat(heartbeat),
                    Err(e) => tracing::warn!(error = %e, "ignored a malformed heartbeat"),
                }
            }
        }));
        Ok(Presence { bus, subjects, timeout, edges, _tracker: Arc::new(tracker) })
    }

    /// Edges alive now.
    pub fn live_edges(&self) -> usize {
        self.edges.live()
    }

    pub async fn user(&self, user: &str) -> Result<UserPresence, BusError> {
        let answers = self.ask(&PresenceQuery::User(user.to_owned())).await?;
        let conns = answers.iter().map(|edge| edge.conns).sum();
        Ok(UserPresence { online: conns > 0, conns })
    }

    pub async fn group(&self, group: &str) -> Result<GroupPresence, BusError> {
        let answers = self.ask(&PresenceQuery::Group(group.to_owned())).await?;
        let conns = answers.iter().map(|edge| edge.conns).sum();
        let mut users: Vec<String> = answers.into_iter().flat_map(|edge| edge.users).collect();
        users.sort();
        users.dedup();
        Ok(GroupPresence { conns, users })
    }

    /// Asks every edge; one answer per edge.
    async fn ask(&self, query: &PresenceQuery) -> Result<Vec<EdgePresence>, BusError> {
        let payload = Bytes::from(serde_json::to_vec(query).expect("a presence query always serialises"));
        // Knowing no edge yet (just started), wait the whole timeout.
        let expected = match self.edges.live() {
            0 => usize::MAX,
            live => live,
        };
        let answers = self.bus.scatter(self.subjects.presence_query(), payload, expected, self.timeout).await?;
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
}

impl EdgeDirectory {
    fn on_heartbeat(&self, heartbeat: Heartbeat) {
        let mut edges = self.edges.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if heartbeat.leaving {
            edges.remove(&heartbeat.edge);
        } else {
            let interval = Duration::from_millis(heartbeat.interval_ms);
            edges.insert(heartbeat.edge, Instant::now() + interval * DEAD_AFTER_BEATS);
        }
    }

    fn live(&self) -> usize {
        let now = Instant::now();
        let mut edges = self.edges.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        edges.retain(|_, dead_at| *dead_at > now);
        edges.len()
    }
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
