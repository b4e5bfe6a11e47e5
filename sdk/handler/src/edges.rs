//! The live edges, and asking all of them at once.
//!
//! Whatever an edge alone knows (its connections, its members of a Pusher
//! presence channel) is asked, not stored: a question goes to every edge at
//! once (scatter-gather) and each answers for itself, so nothing is counted
//! twice and an edge that died cannot answer. Edges announce themselves on
//! `<prefix>.edges.heartbeat`; knowing how many are alive, a question
//! returns as soon as all have answered. An edge that died without saying so
//! still counts as live for [`DEAD_AFTER_BEATS`] heartbeat intervals (3 s by
//! default): until then, questions wait the whole timeout for it, but never
//! count its answer. Herald presence ([`crate::Presence`]) and the router's
//! Pusher channel queries both ask through [`Edges`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use herald_bus::{Bus, BusError};
use herald_proto::presence::{EdgePresence, Heartbeat};
use herald_proto::pusher::cluster::{EdgeChannels, EdgeMembers};
use herald_proto::subject::Subjects;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::time::Instant;
use tokio_util::task::AbortOnDropHandle;

/// Missed heartbeats after which an edge is taken for dead.
pub const DEAD_AFTER_BEATS: u32 = 3;

/// How long an edge that left or died is remembered as gone; after that it
/// is an edge never heard from, which is gone too (see [`Edges::is_gone`]).
const REMEMBER_GONE: Duration = Duration::from_secs(60);

/// How long an edge never heard from may still be alive: every edge beats
/// at once when it starts, then every second.
const UNKNOWN_GRACE: Duration = Duration::from_secs(DEAD_AFTER_BEATS as u64);

/// An edge's answer to a question asked of every edge; it names its edge,
/// so that one answer per edge is kept.
pub trait EdgeAnswer: DeserializeOwned {
    fn edge(&self) -> &str;
}

impl EdgeAnswer for EdgePresence {
    fn edge(&self) -> &str {
        &self.edge
    }
}

impl EdgeAnswer for EdgeChannels {
    fn edge(&self) -> &str {
        &self.edge
    }
}

impl EdgeAnswer for EdgeMembers {
    fn edge(&self) -> &str {
        &self.edge
    }
}

/// Follows the edges' heartbeats and asks every live edge; cheap to clone.
#[derive(Debug, Clone)]
pub struct Edges {
    bus: Bus,
    /// How long a question waits for the edges' answers.
    timeout: Duration,
    directory: Arc<EdgeDirectory>,
    /// Keeps the directory up to date while any clone lives.
    _tracker: Arc<AbortOnDropHandle<()>>,
}

/// The edges heard from, and when each is taken for dead unless it beats
/// again (an edge that left or died stays listed, as gone, for
/// [`REMEMBER_GONE`]).
#[derive(Debug)]
struct EdgeDirectory {
    edges: Mutex<HashMap<String, Instant>>,
    /// When following began: an edge never heard from is gone once
    /// [`UNKNOWN_GRACE`] has passed since.
    since: Instant,
}

impl Default for EdgeDirectory {
    fn default() -> Self {
        EdgeDirectory { edges: Mutex::default(), since: Instant::now() }
    }
}

impl Edges {
    /// Starts following the edges' heartbeats.
    pub async fn start(bus: Bus, subjects: &Subjects, timeout: Duration) -> Result<Edges, BusError> {
        let mut heartbeats = bus.subscribe(subjects.edge_heartbeat()).await?;
        let directory = Arc::new(EdgeDirectory::default());
        let following = directory.clone();
        let tracker = AbortOnDropHandle::new(tokio::spawn(async move {
            while let Some(message) = heartbeats.next().await {
                match herald_proto::json::from_object::<Heartbeat>(&message.payload) {
                    Ok(heartbeat) => following.on_heartbeat(heartbeat),
                    Err(e) => tracing::warn!(error = %e, "ignored a malformed heartbeat"),
                }
            }
        }));
        Ok(Edges { bus, timeout, directory, _tracker: Arc::new(tracker) })
    }

    /// Edges alive now.
    pub fn live(&self) -> usize {
        self.directory.live()
    }

    /// Whether `edge` left, or missed [`DEAD_AFTER_BEATS`] heartbeats, or
    /// was never heard from although it would have been by now: what an
    /// edge keeping other edges' Pusher presence members removes them on.
    pub fn is_gone(&self, edge: &str) -> bool {
        self.directory.is_gone(edge)
    }

    /// Asks every edge `query` on `subject`: one answer per edge, the first
    /// each sent; answers that do not read as `A` are logged and left out.
    pub async fn ask<A: EdgeAnswer>(&self, subject: String, query: &impl Serialize) -> Result<Vec<A>, BusError> {
        let payload = Bytes::from(serde_json::to_vec(query).expect("a question to the edges always serialises"));
        // Knowing no edge yet (just started), wait the whole timeout.
        let expected = match self.live() {
            0 => usize::MAX,
            live => live,
        };
        let answers = self.bus.scatter(subject, payload, expected, self.timeout).await?;
        let mut by_edge: HashMap<String, A> = HashMap::new();
        for answer in answers {
            match herald_proto::json::from_object::<A>(&answer) {
                Ok(answer) => {
                    by_edge.entry(answer.edge().to_owned()).or_insert(answer);
                }
                Err(e) => tracing::warn!(error = %e, "ignored a malformed answer from an edge"),
            }
        }
        Ok(by_edge.into_values().collect())
    }
}

impl EdgeDirectory {
    fn on_heartbeat(&self, heartbeat: Heartbeat) {
        let now = Instant::now();
        let dead_at = match heartbeat.leaving {
            true => now,
            false => now + Duration::from_millis(heartbeat.interval_ms) * DEAD_AFTER_BEATS,
        };
        self.lock().insert(heartbeat.edge, dead_at);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Instant>> {
        self.edges.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn live(&self) -> usize {
        let now = Instant::now();
        let mut edges = self.lock();
        edges.retain(|_, dead_at| *dead_at + REMEMBER_GONE > now);
        edges.values().filter(|dead_at| **dead_at > now).count()
    }

    fn is_gone(&self, edge: &str) -> bool {
        let now = Instant::now();
        match self.lock().get(edge) {
            Some(dead_at) => *dead_at <= now,
            None => now.duration_since(self.since) >= UNKNOWN_GRACE,
        }
    }
}

#[cfg(test)]
mod tests {
    use herald_proto::presence::PresenceQuery;

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
        assert!(directory.is_gone("a") && directory.is_gone("b"));
    }

    #[tokio::test(start_paused = true)]
    async fn an_edge_never_heard_from_is_gone_once_it_would_have_been_heard() {
        let directory = EdgeDirectory::default();
        directory.on_heartbeat(beat("a", 1000, false));
        assert!(!directory.is_gone("a") && !directory.is_gone("new"));
        tokio::time::advance(UNKNOWN_GRACE).await;
        directory.on_heartbeat(beat("a", 1000, false));
        assert!(!directory.is_gone("a") && directory.is_gone("new"));
        // Long gone and forgotten: still gone.
        directory.on_heartbeat(beat("a", 1000, true));
        tokio::time::advance(REMEMBER_GONE * 2).await;
        assert_eq!(directory.live(), 0);
        assert!(directory.is_gone("a"));
    }

    #[tokio::test]
    async fn one_answer_per_edge_and_no_waiting_once_every_live_edge_answered() {
        let bus = Bus::local();
        let subjects = Subjects::default();
        let edges = Edges::start(bus.clone(), &subjects, Duration::from_secs(30)).await.unwrap();
        let mut questions = bus.subscribe("q".into()).await.unwrap();
        let answering = bus.clone();
        tokio::spawn(async move {
            while let Some(question) = questions.next().await {
                let reply = question.reply().expect("a question has an inbox").to_owned();
                for (edge, conns) in [("a", 1), ("a", 7), ("b", 2)] {
                    let answer = serde_json::to_vec(&EdgePresence { edge: edge.into(), conns, users: vec![] });
                    answering.publish(reply.clone(), answer.unwrap().into()).await.unwrap();
                }
                answering.publish(reply, Bytes::from_static(b"[1]")).await.unwrap();
            }
        });
        for edge in ["a", "b", "c"] {
            let heartbeat = serde_json::to_vec(&beat(edge, 60_000, false)).unwrap();
            bus.publish(subjects.edge_heartbeat(), heartbeat.into()).await.unwrap();
        }
        let heard = async {
            while edges.live() < 3 {
                tokio::task::yield_now().await;
            }
        };
        tokio::time::timeout(Duration::from_secs(5), heard).await.expect("the three heartbeats are heard");
        // Three live edges, and three answers (one malformed): all in, no
        // 30 s wait.
        let mut answers: Vec<EdgePresence> = edges.ask("q".into(), &PresenceQuery::User("u".into())).await.unwrap();
        answers.sort_by(|x, y| x.edge.cmp(&y.edge));
        let got: Vec<(&str, usize)> = answers.iter().map(|a| (a.edge.as_str(), a.conns)).collect();
        assert_eq!(got, [("a", 1), ("b", 2)], "the first answer of each edge");
    }
}
