//! Topics with a history (ADR 0012): their pump reads the subject as the
//! history stream republishes it, with each message's sequence, and keeps
//! a cursor, the last sequence it handled. With it the pump
//!
//! - drops a message it already handled (a catch-up read got it first);
//! - fills a gap (`Nats-Last-Sequence` above the cursor) with a Direct Get
//!   before it delivers on;
//! - brings resuming sessions up to date: those that arrived while it was
//!   busy are served by one read from the oldest position; each is held
//!   out of live deliveries until its missed frames are queued, so it gets
//!   every frame once and in order.
//!
//! One task does all of it per topic, so the order per subject holds by
//! construction. Every frame carries its position (`offset`), written once
//! per message.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use herald_bus::history::{LAST_SEQUENCE_HEADER, SEQUENCE_HEADER};
use herald_bus::{BusMessage, Delivered};
use herald_proto::client::{self, action};
use herald_proto::history::{
    ALL_KEY, JoinedDetails, Position, RecoveredDetails, Resume, USER_KEY, group_key, with_offset,
};
use tokio::sync::{Notify, SetOnce, oneshot};
use tokio_tungstenite::tungstenite::Utf8Bytes;

use super::Registry;
use super::delivery::{Fanout, prefetched};
use super::readiness::Ready;
use super::topics::TopicKind;
use crate::handle::{Offer, SessionHandle};
use crate::history::{History, unix_ms};

/// A position on an empty subject counts as this much older than it is:
/// the clocks of edges and NATS, and messages in flight, differ by less.
const CLOCK_MARGIN: Duration = Duration::from_secs(1);
/// How long a session waits for its subjects to be recovered before it
/// says `recovered: false`. Only a safety net: every pump answers in
/// bounded time (each read it makes is bounded; a pump that ends drops its
/// joiners, which reads as not recovered). A reconnect storm is served at
/// the pace nats-server answers one connection's reads at (one at a time):
/// 10,000 sessions took about 4 minutes here (BENCHMARKS.md), and with a
/// 10 s wait all but the first ~500 were told `recovered: false` though
/// every message was stored.
const RECOVERY_TIMEOUT: Duration = Duration::from_secs(300);

/// Sessions that joined a topic with a history and wait for its pump.
#[derive(Debug, Default)]
pub(super) struct Joiners {
    queue: Mutex<Vec<Joiner>>,
    /// Wakes the pump when one is queued.
    arrived: Notify,
    /// Set once the pump is ready: what sessions wait on before they say
    /// they are reachable.
    pub subscribed: Arc<SetOnce<()>>,
}

/// One session the pump owes an answer.
#[derive(Debug)]
pub(super) struct Joiner {
    local: u64,
    handle: SessionHandle,
    /// Where the client says it is, when it resumes.
    from: From,
    outcome: oneshot::Sender<Outcome>,
}

/// Where a joining client is.
#[derive(Debug)]
pub(super) enum From {
    /// A new connection: it starts at the topic's cursor.
    Fresh,
    /// Resuming, without a position for this subject (or a bad one).
    Unknown,
    /// Resuming from this position; held out of live deliveries meanwhile.
    Resuming(Position),
}

impl From {
    /// What a connecting client says about one subject (`key`) in its
    /// `resume`.
    pub fn of(resume: Option<&Resume>, key: &str) -> From {
        match resume {
            None => From::Fresh,
            Some(resume) => match resume.get(key) {
                Some(position) => From::at(Some(position)),
                None => From::Unknown,
            },
        }
    }

    /// Where a client joining a group says it was: nowhere (a first join),
    /// or a position.
    pub fn at(position: Option<&str>) -> From {
        match position.map(str::parse) {
            None => From::Fresh,
            Some(Ok(position)) => From::Resuming(position),
            Some(Err(_)) => From::Unknown,
        }
    }
}

/// What the pump says about one subject of one session.
#[derive(Debug)]
pub(crate) struct Outcome {
    key: String,
    /// The session's position now; `None` while the history is unavailable.
    position: Option<Position>,
    /// Everything the client missed on the subject was queued.
    recovered: bool,
}

/// The reply to a `$join` on a group with a history, once its pump has
/// answered (or, after [`RECOVERY_TIMEOUT`], without it: not recovered).
pub(crate) async fn joined(group: String, outcome: oneshot::Receiver<Outcome>) -> JoinedDetails {
    let outcome = tokio::time::timeout(RECOVERY_TIMEOUT, outcome).await.ok().and_then(Result::ok);
    let mut joined = JoinedDetails { group, recovered: false, offsets: BTreeMap::new() };
    if let Some(Outcome { key, position, recovered }) = outcome {
        joined.recovered = recovered;
        joined.offsets.extend(position.map(|position| (key, position.to_string())));
    }
    joined
}

/// The answers a session waits for before it says `$recovered`.
#[derive(Debug, Default)]
pub(crate) struct Recovery {
    /// The client resumed (sent `resume`).
    resumed: bool,
    outcomes: Vec<oneshot::Receiver<Outcome>>,
}

impl Joiners {
    /// Queues a session for the pump; what it will say comes on the
    /// returned receiver.
    pub fn push(&self, local: u64, handle: &SessionHandle, from: From) -> oneshot::Receiver<Outcome> {
        let (outcome, receiver) = oneshot::channel();
        let joiner = Joiner { local, handle: handle.clone(), from, outcome };
        self.queue.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).push(joiner);
        self.arrived.notify_one();
        receiver
    }

    fn take(&self) -> Vec<Joiner> {
        std::mem::take(&mut *self.queue.lock().unwrap_or_else(|poisoned| poisoned.into_inner()))
    }

    /// Locals of resuming sessions still queued.
    fn resuming(&self) -> Vec<u64> {
        let queue = self.queue.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        queue.iter().filter(|joiner| matches!(joiner.from, From::Resuming(_))).map(|joiner| joiner.local).collect()
    }
}

impl Recovery {
    pub fn new(resumed: bool) -> Recovery {
        Recovery { resumed, outcomes: Vec::new() }
    }

    pub fn extend(&mut self, outcome: Option<oneshot::Receiver<Outcome>>) {
        self.outcomes.extend(outcome);
    }

    pub fn is_empty(&self) -> bool {
        self.outcomes.is_empty()
    }

    /// Waits for every subject's answer, then queues `$recovered` behind
    /// the frames recovered for the session.
    pub async fn report(self, registry: Arc<Registry>, handle: SessionHandle) {
        let mut details = RecoveredDetails { recovered: self.resumed, offsets: Default::default() };
        let answers = futures_util::future::join_all(self.outcomes);
        let answers = tokio::time::timeout(RECOVERY_TIMEOUT, answers).await.unwrap_or_default();
        if answers.is_empty() {
            details.recovered = false;
        }
        for answer in answers {
            match answer {
                Ok(outcome) => {
                    details.recovered &= outcome.recovered;
                    if let Some(position) = outcome.position {
                        details.offsets.insert(outcome.key, position.to_string());
                    }
                }
                Err(_) => details.recovered = false,
            }
        }
        if details.recovered { &registry.metrics.recoveries } else { &registry.metrics.recoveries_failed }.inc();
        registry.offer(&handle, Utf8Bytes::from(client::encode(action::RECOVERED, &details, None)));
    }
}

/// A pump's own state.
struct Pump {
    kind: TopicKind,
    name: Arc<str>,
    generation: u64,
    history: Arc<History>,
    /// `user` or `group:<G>`, as offsets name the subject.
    key: String,
    /// Where the stream stores the subject: what reads ask for.
    stored: String,
    /// The stream incarnation the cursor belongs to.
    epoch: u64,
    /// The last sequence of the subject this topic handled; `None` while
    /// unknown (the stream was unavailable).
    cursor: Option<u64>,
    /// Resuming sessions not yet given their missed frames: live frames
    /// skip them.
    held: HashSet<u64>,
    /// Sessions queued for [`Registry::welcome`]; those resuming are added
    /// to `held` at each delivery.
    joiners: Arc<Joiners>,
}

impl Registry {
    /// The pump of a topic with a history.
    pub(super) async fn pump_history(
        self: Arc<Self>,
        kind: TopicKind,
        name: Arc<str>,
        generation: u64,
        ready: Ready,
        joiners: Arc<Joiners>,
        history: Arc<History>,
    ) {
        let (live, stored, key) = match kind {
            TopicKind::User => (self.subjects.history_user(&name), self.subjects.user(&name), USER_KEY.to_owned()),
            TopicKind::Group => (self.subjects.history_group(&name), self.subjects.group(&name), group_key(&name)),
            TopicKind::All => (self.subjects.history_all(), self.subjects.all(), ALL_KEY.to_owned()),
        };
        let Some(mut messages) = Box::pin(self.subscribe_live(live)).await else { return };
        let mut pump = Pump {
            kind,
            name,
            generation,
            key,
            stored,
            epoch: 0,
            cursor: None,
            held: HashSet::new(),
            joiners: joiners.clone(),
            history,
        };
        // The cursor is known before sessions say they are connected: every
        // message after it reaches them.
        Box::pin(pump.sync_epoch()).await;
        drop(ready);
        loop {
            tokio::select! {
                biased;
                () = joiners.arrived.notified() => Box::pin(self.welcome(&mut pump, joiners.take())).await,
                message = messages.next() => match message {
                    Some(message) => Box::pin(self.on_live(&mut pump, message)).await,
                    None => return,
                },
            }
        }
    }

    async fn on_live(&self, pump: &mut Pump, message: BusMessage) {
        let message = Delivered::from(&message);
        let sequence = |name| message.header(name).and_then(|value| value.parse::<u64>().ok());
        let (Some(seq), last) = (sequence(SEQUENCE_HEADER), sequence(LAST_SEQUENCE_HEADER).unwrap_or(0)) else {
            // Not from the stream (published straight to the history
            // subject): delivered as it is.
            return self.fan_out(pump, &message, None);
        };
        Box::pin(pump.sync_epoch()).await;
        match pump.cursor {
            Some(cursor) if seq <= cursor => {
                self.metrics.history_duplicates.inc();
            }
            Some(cursor) if last > cursor => {
                self.metrics.history_gaps.inc();
                if Box::pin(self.catch_up(pump, cursor + 1)).await.is_err() || pump.cursor < Some(seq) {
                    self.fan_out(pump, &message, Some(seq));
                }
            }
            _ => self.fan_out(pump, &message, Some(seq)),
        }
    }

    /// Delivers a message to the topic's live members, Herald sessions with
    /// its offset, and moves the cursor to it.
    fn fan_out(&self, pump: &mut Pump, message: &Delivered<'_>, seq: Option<u64>) {
        let Some(frame) = self.frame_of(message) else { return };
        let excluded = self.excluded_local(message);
        let mut fanout = Fanout::new(frame.clone(), pump.kind.addressee(&pump.name), message);
        if let Some(seq) = seq {
            pump.cursor = Some(seq);
            fanout = fanout.for_herald(pump.with_offset(frame, seq));
        }
        let state = self.read();
        // Read under the registry's lock, under which `register` makes a
        // session a member and queues it: a resuming member is either
        // queued or already welcomed (and held). Read before the lock, a
        // session registered in between got this frame live and again in
        // its replay (the failure suite's edge kill with recovery saw it).
        let resuming = pump.joiners.resuming();
        pump.held.extend(resuming);
        let topics = state.topics(pump.kind);
        let Some(topic) = topics.get(&pump.name).filter(|topic| topic.generation == pump.generation) else { return };
        for (local, handle) in prefetched(topic.members.iter(), |(_, handle)| handle) {
            if Some(local) != excluded
                && !pump.held.contains(&local)
                && let Some(frame) = fanout.frame_for(handle.wire())
            {
                self.offer(handle, frame);
            }
        }
    }

    /// Reads the subject from `from` on; what is past the cursor goes to the
    /// live members (a gap). Returns what was read, for resuming joiners.
    async fn catch_up(&self, pump: &mut Pump, from: u64) -> Result<Vec<BusMessage>, ()> {
        let read = match pump.history.read(&pump.stored, from).await {
            Ok(read) => read,
            Err(e) => {
                tracing::warn!(error = %e, subject = pump.stored, "history read failed");
                self.metrics.history_read_failures.inc();
                return Err(());
            }
        };
        for message in &read.messages {
            let seq = sequence_of(message);
            match pump.cursor {
                Some(cursor) if seq > cursor => self.fan_out(pump, &Delivered::from(message), Some(seq)),
                Some(_) => {}
                // Unknown cursor: nothing is owed to live members.
                None => pump.cursor = Some(seq),
            }
        }
        Ok(read.messages)
    }

    /// Answers sessions that joined: a fresh one learns its position, a
    /// resuming one gets what it missed first.
    async fn welcome(&self, pump: &mut Pump, joiners: Vec<Joiner>) {
        if joiners.is_empty() {
            return;
        }
        pump.sync_epoch().await;
        let now_ms = unix_ms();
        let (resuming, others): (Vec<Joiner>, Vec<Joiner>) =
            joiners.into_iter().partition(|joiner| match &joiner.from {
                From::Resuming(position) => pump.can_recover(position, now_ms),
                _ => false,
            });
        pump.held.extend(resuming.iter().map(|joiner| joiner.local));
        let oldest = resuming.iter().filter_map(|joiner| joiner.position()).map(|p| p.seq.max(1)).min();
        let from = match (oldest, pump.cursor) {
            (Some(oldest), Some(cursor)) => Some(oldest.min(cursor + 1)),
            (oldest, _) => oldest,
        };
        let read = match from {
            Some(from) => self.catch_up(pump, from).await.ok(),
            None => Some(Vec::new()),
        };
        // When the read was done: it may have waited long behind others.
        let read_ms = unix_ms();
        for joiner in others {
            pump.held.remove(&joiner.local);
            pump.answer(joiner, false);
        }
        // Each missed message is framed once, whoever of them missed it.
        let missed = read.map(|read| self.framed(pump, read));
        for joiner in resuming {
            // A session that stopped waiting (it closed, or was told
            // `recovered: false` at the deadline) gets nothing replayed:
            // frames after that answer would be duplicates to its app.
            let waiting = !joiner.outcome.is_closed();
            let recovered =
                waiting && missed.as_deref().is_some_and(|missed| self.replay(pump, &joiner, missed, read_ms));
            pump.held.remove(&joiner.local);
            pump.answer(joiner, recovered);
        }
    }

    /// What a read found, as Herald frames with their offsets, by sequence.
    fn framed(&self, pump: &Pump, read: Vec<BusMessage>) -> Vec<(u64, Option<Utf8Bytes>)> {
        read.iter()
            .map(|message| {
                let seq = sequence_of(message);
                (seq, self.text_of(&Delivered::from(message)).map(|frame| pump.with_offset(frame, seq)))
            })
            .collect()
    }

    /// Queues for one resuming session what it missed (`read`, from the
    /// oldest position asked, done by `read_ms`); whether that was
    /// everything.
    fn replay(&self, pump: &Pump, joiner: &Joiner, read: &[(u64, Option<Utf8Bytes>)], read_ms: u64) -> bool {
        let Some(position) = joiner.position() else { return false };
        let missed = read.iter().filter(|(seq, _)| *seq > position.seq);
        let complete = if position.seq > 0 {
            // Its last message is still stored, so nothing after it was
            // discarded (oldest first, per subject and by age).
            read.iter().any(|(seq, _)| *seq == position.seq)
        } else {
            // Nothing published after the position had reached the
            // maximum age when the read was done (checked again here: in a
            // storm the read may come long after the session arrived, and
            // the oldest missed message may have expired meanwhile), and
            // fewer than the depth followed.
            pump.can_recover(position, read_ms) && missed.clone().count() < pump.history.depth()
        };
        if !complete {
            return false;
        }
        missed.filter_map(|(_, frame)| frame.clone()).all(|frame| {
            self.metrics.history_replayed.inc();
            matches!(self.offer(&joiner.handle, frame), Offer::Corked | Offer::Queued)
        })
    }
}

impl Joiner {
    fn position(&self) -> Option<&Position> {
        match &self.from {
            From::Resuming(position) => Some(position),
            _ => None,
        }
    }
}

impl Pump {
    /// `frame` with its offset spliced in, once per message; as it is when
    /// the stream's incarnation is unknown or the frame is no JSON object.
    fn with_offset(&self, frame: Utf8Bytes, seq: u64) -> Utf8Bytes {
        if self.epoch == 0 {
            return frame;
        }
        let position = Position { epoch: self.epoch, seq, at_ms: unix_ms() };
        match with_offset(frame.as_bytes(), &self.key, &position) {
            Some(framed) => Utf8Bytes::try_from(bytes::Bytes::from(framed)).expect("JSON stays UTF-8"),
            None => frame,
        }
    }

    /// Follows the stream's incarnation: a new one starts a new cursor,
    /// learnt from the stream.
    async fn sync_epoch(&mut self) {
        let epoch = self.history.epoch();
        if epoch != self.epoch {
            self.epoch = epoch;
            self.cursor = None;
        }
        if self.cursor.is_none() && epoch != 0 {
            match self.history.last_sequence(&self.stored).await {
                Ok(seq) => self.cursor = Some(seq),
                Err(e) => tracing::warn!(error = %e, subject = self.stored, "history unavailable"),
            }
        }
    }

    /// Whether a position can still be recovered from: same incarnation,
    /// and (for an empty subject's position) younger than the stream's
    /// maximum age.
    fn can_recover(&self, position: &Position, now_ms: u64) -> bool {
        let young =
            Duration::from_millis(now_ms.saturating_sub(position.at_ms)) + CLOCK_MARGIN < self.history.max_age();
        self.epoch != 0 && position.epoch == self.epoch && (position.seq > 0 || young)
    }

    fn answer(&self, joiner: Joiner, recovered: bool) {
        let position = self.cursor.map(|seq| {
            let seq = joiner.position().filter(|_| recovered).map_or(seq, |p| p.seq.max(seq));
            Position { epoch: self.epoch, seq, at_ms: unix_ms() }
        });
        let _ = joiner.outcome.send(Outcome { key: self.key.clone(), position, recovered });
    }
}

fn sequence_of(message: &BusMessage) -> u64 {
    message.header(SEQUENCE_HEADER).and_then(|value| value.parse().ok()).unwrap_or(0)
}
