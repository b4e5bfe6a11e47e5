//! The edge's side of missed-message recovery (ADR 0012): the history
//! stream kept in place, its epoch, and bounded reads of it. The topics
//! that use it are in `registry::recovery`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use herald_bus::Bus;
use herald_bus::history::{History as Store, HistoryError, Read, StreamSpec};
use herald_proto::subject::Subjects;
use tokio::sync::Semaphore;
use tokio_util::task::AbortOnDropHandle;

use crate::config::HistoryConfig;
use crate::edge::EdgeError;
use crate::registry::TopicKind;

/// How often the stream is checked, and recreated when it was deleted.
const CHECK_INTERVAL: Duration = Duration::from_secs(2);
/// Messages asked for in one Direct Get.
const READ_BATCH: usize = 256;

/// The history, as one edge uses it.
#[derive(Debug)]
pub(crate) struct History {
    store: Store,
    config: HistoryConfig,
    /// The stream's incarnation now; 0 while it is unknown or missing, when
    /// nothing can be recovered.
    epoch: AtomicU64,
    /// Bounds the reads this edge makes at once.
    reads: Semaphore,
}

impl History {
    /// The history for `config`, with the task that keeps its stream in
    /// place, once it has tried to put the stream in place a first time;
    /// `None` when history is off.
    pub(crate) async fn start(
        bus: &Bus,
        subjects: &Subjects,
        config: &HistoryConfig,
    ) -> Result<Option<(Arc<History>, AbortOnDropHandle<()>)>, EdgeError> {
        if !config.kinds.any() {
            return Ok(None);
        }
        let store = bus.history().ok_or(EdgeError::HistoryNeedsJetStream)?;
        let mut stored = Vec::new();
        if config.kinds.users {
            stored.push(subjects.users());
        }
        if config.kinds.groups {
            stored.push(subjects.groups());
        }
        if config.kinds.all {
            stored.push(subjects.all());
        }
        let spec = StreamSpec {
            name: config.stream.clone(),
            subjects: stored,
            republish: subjects.history_republish(),
            depth: config.depth,
            max_age: config.max_age,
            replicas: config.replicas,
        };
        let history = Arc::new(History {
            store,
            config: config.clone(),
            epoch: AtomicU64::new(0),
            reads: Semaphore::new(config.max_reads),
        });
        let ensured = history.check(&spec, false).await;
        let keeper = AbortOnDropHandle::new(tokio::spawn(history.clone().keep(spec, ensured)));
        Ok(Some((history, keeper)))
    }

    /// Checks the stream now and then, recreating it when it is gone (a new
    /// epoch).
    async fn keep(self: Arc<Self>, spec: StreamSpec, mut ensured: bool) {
        loop {
            tokio::time::sleep(CHECK_INTERVAL).await;
            ensured = self.check(&spec, ensured).await;
        }
    }

    /// Learns the stream's epoch, creating or updating the stream first
    /// when it was not `ensured` yet or is gone; whether it is in place.
    async fn check(&self, spec: &StreamSpec, ensured: bool) -> bool {
        let epoch = match ensured {
            true => self.store.epoch(&spec.name).await,
            false => Err(HistoryError::NoStream(spec.name.clone())),
        };
        let epoch = match epoch {
            Err(HistoryError::NoStream(_)) => self.store.ensure_stream(spec).await,
            other => other,
        };
        match epoch {
            Ok(epoch) => {
                if self.epoch.swap(epoch, Ordering::Relaxed) != epoch {
                    tracing::info!(stream = spec.name, epoch = format!("{epoch:x}"), "history stream in place");
                }
                true
            }
            Err(e) => {
                self.epoch.store(0, Ordering::Relaxed);
                tracing::warn!(error = %e, "history stream unavailable; nothing can be recovered meanwhile");
                ensured
            }
        }
    }

    pub fn covers(&self, kind: TopicKind) -> bool {
        match kind {
            TopicKind::User => self.config.kinds.users,
            TopicKind::Group => self.config.kinds.groups,
            TopicKind::All => self.config.kinds.all,
        }
    }

    pub fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Relaxed)
    }

    pub fn depth(&self) -> usize {
        self.config.depth as usize
    }

    pub fn max_age(&self) -> Duration {
        self.config.max_age
    }

    /// The last sequence stored on `subject` (0: none).
    pub async fn last_sequence(&self, subject: &str) -> Result<u64, HistoryError> {
        let _permit = self.reads.acquire().await.expect("the semaphore is never closed");
        self.store.last_sequence(&self.config.stream, subject).await
    }

    /// `subject`'s messages from `from` on: at most what the stream keeps
    /// per subject, and one batch more for what arrives meanwhile.
    pub async fn read(&self, subject: &str, from: u64) -> Result<Read, HistoryError> {
        let _permit = self.reads.acquire().await.expect("the semaphore is never closed");
        let limit = self.depth() + READ_BATCH;
        self.store.read(&self.config.stream, subject, from, limit, READ_BATCH.min(limit)).await
    }
}

/// Now, in Unix milliseconds: when a position is handed out.
pub(crate) fn unix_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}
