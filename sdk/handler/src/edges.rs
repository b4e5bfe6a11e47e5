//! The live edges, and asking all of them at once.
//!
//! Whatever an edge alone knows (its connections, its members of a Pusher
//! presence channel) is asked, not stored: a question goes to every edge at
//! once (scatter-gather) and each answers for itself, so nothing is counted
//! twice and an edge that died cannot answer. Edges announce themselves on
//! `<prefix>.edges.heartbeat`; knowing how many are alive, a question
//! returns as soon as all have answered. Whoever starts following them
//! calls the roll (`<prefix>.edges.rollcall`) and every edge beats at once,
//! so a new follower knows the edges within a round trip, not a heartbeat
//! interval. A [`Standing`] question keeps its inbox, so an answer that
//! comes after the wait (an edge not yet heard from) is still read. An edge that died without saying so
//! still counts as live for [`DEAD_AFTER_BEATS`] heartbeat intervals (3 s by
//! default): until then, questions wait the whole timeout for it, but never
//! count its answer. Herald presence ([`crate::Presence`]) and the router's
//! Pusher channel queries both ask through [`Edges`].

use std::collections::HashMap;
use std::marker::PhantomData;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use herald_bus::{Bus, BusError, Subscription};
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
    /// Starts following the edges' heartbeats, and calls the roll.
    pub async fn start(bus: Bus, subjects: &Subjects, timeout: Duration) -> Result<Edges, BusError> {
        let mut heartbeats = bus.subscribe(subjects.edge_heartbeat()).await?;
        // Heard by the server before the roll call, so every beat it
        // prompts reaches this subscription.
        if let Err(e) = bus.sync().await {
            tracing::warn!(error = %e, "could not confirm the heartbeat subscription with NATS");
        }
        if let Err(e) = bus.publish(subjects.edge_roll_call(), Bytes::new()).await {
            tracing::warn!(error = %e, "could not call the edges' roll; they will be heard within a heartbeat");
        }
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
        let answers = self.bus.scatter(subject, question(query), self.expected(), self.timeout).await?;
        let mut by_edge: HashMap<String, A> = HashMap::new();
        for answer in answers.iter().filter_map(|answer| read::<A>(answer)) {
            by_edge.entry(answer.edge().to_owned()).or_insert(answer);
        }
        Ok(by_edge.into_values().collect())
    }

    /// A question to ask every edge, as often as needed, whose answers keep
    /// coming to one inbox while it is kept.
    pub async fn standing<A: EdgeAnswer>(
        &self,
        subject: String,
        query: &impl Serialize,
    ) -> Result<Standing<A>, BusError> {
        let inbox = self.bus.new_inbox();
        let answers = self.bus.subscribe(inbox.clone()).await?;
        Ok(Standing { edges: self.clone(), subject, question: question(query), inbox, answers, answer: PhantomData })
    }

    /// How many answers a question waits for: one per live edge; knowing no
    /// edge yet (just started), all that come within the timeout.
    fn expected(&self) -> usize {
        match self.live() {
            0 => usize::MAX,
            live => live,
        }
    }
}

/// A question put to every edge whose answers all come to one inbox for as
/// long as it is kept: an answer that comes after [`Standing::ask`] stopped
/// waiting (from an edge the asker had not heard from yet, or a slow one)
/// is read by [`Standing::late`] instead of being lost. What keeps a Pusher
/// presence channel's members complete from an edge's first second.
#[derive(Debug)]
pub struct Standing<A> {
    edges: Edges,
    subject: String,
    /// Serialised once, sent at each ask.
    question: Bytes,
    /// Where every answer to every ask comes.
    inbox: String,
    answers: Subscription,
    answer: PhantomData<fn() -> A>,
}

impl<A: EdgeAnswer> Standing<A> {
    /// Asks every edge and returns the answers that came while waiting for
    /// one per live edge (at most the timeout), in the order they came; an
    /// answer to an earlier ask may be among them.
    pub async fn ask(&mut self) -> Result<Vec<A>, BusError> {
        self.edges.bus.ask(self.subject.clone(), self.inbox.clone(), self.question.clone()).await?;
        let deadline = Instant::now() + self.edges.timeout;
        let answers = self.answers.gather(self.edges.expected(), deadline).await;
        Ok(answers.iter().filter_map(|answer| read(answer)).collect())
    }

    /// The next answer that comes after an ask stopped waiting, whenever it
    /// comes; `None` once the inbox's subscription has ended.
    pub async fn late(&mut self) -> Option<A> {
        loop {
            let message = self.answers.next().await?;
            if let Some(answer) = read(&message.payload) {
                return Some(answer);
            }
        }
    }
}

fn question(query: &impl Serialize) -> Bytes {
    Bytes::from(serde_json::to_vec(query).expect("a question to the edges always serialises"))
}

/// An edge's answer, or `None` (logged) when it does not read as `A`.
fn read<A: EdgeAnswer>(answer: &[u8]) -> Option<A> {
    herald_proto::json::from_object::<A>(answer)
        .inspect_err(|e| tracing::warn!(error = %e, "ignored a malformed answer from an edge"))
        .ok()
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

    /// An answer that comes after an ask stopped waiting (its edge was not
    /// heard from yet, so not waited for) is read late, not lost.
    #[tokio::test]
    async fn a_standing_question_reads_answers_that_come_after_the_wait() {
        let bus = Bus::local();
        let subjects = Subjects::default();
        let edges = Edges::start(bus.clone(), &subjects, Duration::from_secs(30)).await.unwrap();
        let heartbeat = serde_json::to_vec(&beat("a", 60_000, false)).unwrap();
        bus.publish(subjects.edge_heartbeat(), heartbeat.into()).await.unwrap();
        while edges.live() < 1 {
            tokio::task::yield_now().await;
        }
        // "a" answers at once; "b", never heard from, once told to.
        let (tell_b, mut b_may_answer) = tokio::sync::mpsc::channel::<()>(1);
        let mut questions = bus.subscribe("q".into()).await.unwrap();
        let answering = bus.clone();
        tokio::spawn(async move {
            while let Some(question) = questions.next().await {
                let reply = question.reply().expect("a question has an inbox").to_owned();
                let answer = |edge: &str| serde_json::to_vec(&EdgeMembers { edge: edge.into(), ..Default::default() });
                answering.publish(reply.clone(), answer("a").unwrap().into()).await.unwrap();
                b_may_answer.recv().await;
                answering.publish(reply, answer("b").unwrap().into()).await.unwrap();
            }
        });
        let mut question = edges.standing::<EdgeMembers>("q".into(), &PresenceQuery::User("u".into())).await.unwrap();
        let answers = question.ask().await.unwrap();
        assert_eq!(answers.iter().map(|a| a.edge.as_str()).collect::<Vec<_>>(), ["a"], "one live edge, no 30 s wait");
        tell_b.send(()).await.unwrap();
        let late = tokio::time::timeout(Duration::from_secs(5), question.late()).await.expect("b's answer is read");
        assert_eq!(late.map(|a| a.edge), Some("b".to_owned()));
    }

    #[tokio::test]
    async fn following_the_edges_calls_the_roll() {
        let bus = Bus::local();
        let subjects = Subjects::default();
        let mut roll_calls = bus.subscribe(subjects.edge_roll_call()).await.unwrap();
        let _edges = Edges::start(bus.clone(), &subjects, Duration::from_secs(1)).await.unwrap();
        let call = tokio::time::timeout(Duration::from_secs(5), roll_calls.next()).await;
        assert!(matches!(call, Ok(Some(_))), "a roll call on {}", subjects.edge_roll_call());
    }
}
