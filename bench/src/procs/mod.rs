//! Fan-out over worker processes, and aggregation of what they report.
//!
//! A process may hold at most as many sockets as its open-file limit
//! (20,000 here, and it cannot be raised), so a run's connections are split
//! over `--procs` children, each running `herald-bench worker` with its own
//! limit. Each child also gets its own single-threaded runtime: on a small
//! machine, K children use K cores with no locks between them.
//!
//! The parent talks to a child in JSON lines: an [`Order`] on its standard
//! input (the plan, perhaps an order to send client actions, later the order
//! to finish), an [`Event`] on its standard output (progress every quarter
//! second, "ready" once its connections are open, "acted" once its actions
//! are answered, "done" with its counts and histograms). Children inherit
//! standard error for their diagnostics. A child whose standard input closes
//! exits, so no child outlives its parent.

use std::collections::BTreeMap;
use std::ops::Range;
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use hdrhistogram::Histogram;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};
use tokio::sync::mpsc;
use tokio_util::task::AbortOnDropHandle;

pub use self::wire::{ActionLoad, ActionStats, ConnectStats, DeliveryStats, Event, Order, Progress, WorkerPlan};
use crate::hist;

mod wire;

/// File descriptors a worker keeps for itself (stdio, the runtime's epoll
/// and wakers, DNS): what is left of its limit is for connections.
const RESERVED_FDS: u64 = 64;
/// How often the parent prints a progress line.
const PROGRESS_EVERY: Duration = Duration::from_secs(1);
/// How long children may take to exit once they reported "done".
const EXIT_TIMEOUT: Duration = Duration::from_secs(10);

/// Every worker's [`ConnectStats`], added up.
#[derive(Debug)]
pub struct Connected {
    pub opened: u64,
    pub opened_per_edge: Vec<u64>,
    pub failed: u64,
    pub errors: BTreeMap<String, u64>,
    pub handshake: Histogram<u64>,
    /// From starting the workers to the last of them being ready.
    pub elapsed: Duration,
}

impl Connected {
    fn merge(parts: &[ConnectStats], elapsed: Duration) -> Connected {
        let mut total = Connected {
            opened: 0,
            opened_per_edge: Vec::new(),
            failed: 0,
            errors: BTreeMap::new(),
            handshake: hist::micros(),
            elapsed,
        };
        for part in parts {
            total.opened += part.opened;
            total.failed += part.failed;
            if total.opened_per_edge.len() < part.opened_per_edge.len() {
                total.opened_per_edge.resize(part.opened_per_edge.len(), 0);
            }
            for (sum, opened) in total.opened_per_edge.iter_mut().zip(&part.opened_per_edge) {
                *sum += opened;
            }
            for (kind, count) in &part.errors {
                *total.errors.entry(kind.clone()).or_default() += count;
            }
            part.handshake.add_to(&mut total.handshake);
        }
        total
    }
}

/// Every worker's [`DeliveryStats`], added up.
#[derive(Debug)]
pub struct Delivered {
    pub expected: u64,
    pub received: u64,
    pub distinct: u64,
    pub duplicates: u64,
    pub unexpected: u64,
    pub other_frames: u64,
    pub closed_early: u64,
    pub latency: Histogram<u64>,
    /// When the last benchmark frame arrived at any worker (Unix nanos).
    pub last_received_unix_nanos: u64,
}

impl Delivered {
    fn merge(parts: &[DeliveryStats]) -> Delivered {
        let sum = |field: fn(&DeliveryStats) -> u64| parts.iter().map(field).sum();
        let mut latency = hist::micros();
        for part in parts {
            part.latency.add_to(&mut latency);
        }
        Delivered {
            expected: sum(|p| p.expected),
            received: sum(|p| p.received),
            distinct: sum(|p| p.distinct),
            duplicates: sum(|p| p.duplicates),
            unexpected: sum(|p| p.unexpected),
            other_frames: sum(|p| p.other_frames),
            closed_early: sum(|p| p.closed_early),
            latency,
            last_received_unix_nanos: parts.iter().map(|p| p.last_received_unix_nanos).max().unwrap_or(0),
        }
    }
}

/// Every worker's [`ActionStats`], added up.
#[derive(Debug)]
pub struct Acted {
    pub sent: u64,
    pub unsent: u64,
    /// The longest any worker took to send its share.
    pub sending: Duration,
    pub replied: u64,
    pub errors: BTreeMap<u16, u64>,
    pub timeouts: u64,
    pub late: u64,
    pub unmatched: u64,
    pub other_frames: u64,
    pub rtt: Histogram<u64>,
}

impl Acted {
    fn merge(parts: &[ActionStats]) -> Acted {
        let sum = |field: fn(&ActionStats) -> u64| parts.iter().map(field).sum();
        let mut rtt = hist::micros();
        let mut errors = BTreeMap::new();
        for part in parts {
            part.rtt.add_to(&mut rtt);
            for &(code, count) in &part.errors {
                *errors.entry(code).or_default() += count;
            }
        }
        let sending = parts.iter().map(|p| p.sending_seconds).fold(0.0, f64::max);
        Acted {
            sent: sum(|p| p.sent),
            unsent: sum(|p| p.unsent),
            sending: Duration::try_from_secs_f64(sending).unwrap_or_default(),
            replied: sum(|p| p.replied),
            errors,
            timeouts: sum(|p| p.timeouts),
            late: sum(|p| p.late),
            unmatched: sum(|p| p.unmatched),
            other_frames: sum(|p| p.other_frames),
            rtt,
        }
    }
}

/// `total` connections split into at most `procs` contiguous, non-empty
/// ranges whose sizes differ by at most one.
pub fn split(total: u64, procs: usize) -> Vec<Range<u64>> {
    let procs = (procs.max(1) as u64).min(total.max(1));
    let (base, extra) = (total / procs, total % procs);
    let mut start = 0;
    (0..procs)
        .map(|i| {
            let len = base + u64::from(i < extra);
            let range = start..start + len;
            start += len;
            range
        })
        .filter(|range| !range.is_empty())
        .collect()
}

/// Connections one process can hold: its open-file limit, less a reserve.
/// Children inherit the parent's limit.
pub fn connections_per_process() -> Result<u64> {
    Ok(open_file_limit()?.saturating_sub(RESERVED_FDS))
}

/// The open files this process may have (its soft limit).
#[allow(unsafe_code, reason = "getrlimit(2) has no wrapper in std")]
pub fn open_file_limit() -> Result<u64> {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: `limit` is a live, writable `rlimit` for the kernel to fill.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return Err(std::io::Error::last_os_error()).context("cannot read the open-file limit");
    }
    Ok(limit.rlim_cur)
}

/// The latest progress of every worker, and the publisher's count, for
/// progress lines and for noticing when deliveries stop.
#[derive(Debug)]
struct Board {
    started: Instant,
    workers: Mutex<Vec<Progress>>,
    published: AtomicU64,
}

impl Board {
    fn total(&self) -> Progress {
        let workers = self.workers.lock().expect("progress board poisoned");
        workers.iter().fold(Progress::default(), |sum, p| Progress {
            open: sum.open + p.open,
            failed: sum.failed + p.failed,
            received: sum.received + p.received,
            sent: sum.sent + p.sent,
        })
    }

    fn line(&self) -> String {
        let total = self.total();
        let published = self.published.load(Ordering::Relaxed);
        // Workers send client actions, or a publisher publishes: one or
        // the other moves.
        let (what, count) = if total.sent > 0 { ("sent", total.sent) } else { ("published", published) };
        format!(
            "[{:>4}s] open {:>7}  failed {:>5}  received {:>10}  {what} {:>8}",
            self.started.elapsed().as_secs(),
            total.open,
            total.failed,
            total.received,
            count,
        )
    }
}

/// What the parent hears from worker `i`: an event, or why it stopped
/// hearing anything.
type Heard = (usize, Result<Event, String>);

/// The running workers of one run.
#[derive(Debug)]
pub struct Fleet {
    children: Vec<Child>,
    inputs: Vec<ChildStdin>,
    heard: mpsc::UnboundedReceiver<Heard>,
    board: Arc<Board>,
    /// Each worker's connections, by global number.
    conns: Vec<Range<u64>>,
    _tasks: Vec<AbortOnDropHandle<()>>,
}

impl Fleet {
    /// Starts one worker per plan and sends it its plan. Progress lines go
    /// to standard error every second until the fleet is dropped.
    pub async fn spawn(plans: Vec<WorkerPlan>) -> Result<Fleet> {
        let exe = std::env::current_exe().context("cannot find the herald-bench executable")?;
        let board = Arc::new(Board {
            started: Instant::now(),
            workers: Mutex::new(vec![Progress::default(); plans.len()]),
            published: AtomicU64::new(0),
        });
        let (tx, heard) = mpsc::unbounded_channel();
        let mut fleet = Fleet {
            children: Vec::new(),
            inputs: Vec::new(),
            heard,
            board: board.clone(),
            conns: plans.iter().map(|plan| plan.conns.clone()).collect(),
            _tasks: Vec::new(),
        };
        for (i, plan) in plans.into_iter().enumerate() {
            let mut child = Command::new(&exe)
                .arg("worker")
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .kill_on_drop(true)
                .spawn()
                .context("cannot start a worker process")?;
            let stdout = child.stdout.take().expect("stdout is piped");
            let stdin = child.stdin.take().expect("stdin is piped");
            fleet._tasks.push(AbortOnDropHandle::new(tokio::spawn(listen(i, stdout, board.clone(), tx.clone()))));
            fleet.children.push(child);
            fleet.inputs.push(stdin);
            fleet.send(i, &Order::Start(plan)).await?;
        }
        fleet._tasks.push(AbortOnDropHandle::new(tokio::spawn(async move {
            let mut ticks = tokio::time::interval(PROGRESS_EVERY);
            ticks.tick().await;
            loop {
                ticks.tick().await;
                eprintln!("{}", board.line());
            }
        })));
        Ok(fleet)
    }

    /// Waits until every worker has opened its connections.
    pub async fn ready(&mut self) -> Result<Connected> {
        let parts =
            self.collect("ready", |event| if let Event::Ready(stats) = event { Some(stats) } else { None }).await?;
        Ok(Connected::merge(&parts, self.board.started.elapsed()))
    }

    /// Tells every worker to send client actions, `load(conns)` for the
    /// worker with connections `conns`, and waits until every action is
    /// answered or timed out.
    pub async fn act(&mut self, load: impl Fn(&Range<u64>) -> ActionLoad) -> Result<Acted> {
        for i in 0..self.inputs.len() {
            let order = Order::Act(load(&self.conns[i]));
            self.send(i, &order).await?;
        }
        let parts =
            self.collect("acted", |event| if let Event::Acted(stats) = event { Some(stats) } else { None }).await?;
        Ok(Acted::merge(&parts))
    }

    /// Gives every worker niceness `nice`. A worker runs on its main
    /// thread, whose id is the process's, so that is what is reniced.
    #[allow(unsafe_code, reason = "setpriority(2) has no wrapper in std")]
    pub fn renice(&self, nice: i32) -> Result<()> {
        for child in &self.children {
            let Some(pid) = child.id() else { continue };
            // SAFETY: plain integers; the kernel checks the pid.
            if unsafe { libc::setpriority(libc::PRIO_PROCESS, pid, nice) } != 0 {
                return Err(std::io::Error::last_os_error()).with_context(|| format!("cannot renice worker {pid}"));
            }
        }
        Ok(())
    }

    /// The workers' process ids (those still running).
    pub fn pids(&self) -> impl Iterator<Item = u32> + '_ {
        self.children.iter().filter_map(Child::id)
    }

    /// Where the publisher counts its messages, for progress lines.
    pub fn published_counter(&self) -> &AtomicU64 {
        &self.board.published
    }

    /// Benchmark frames received so far by all workers (as of their last
    /// progress report).
    pub fn received(&self) -> u64 {
        self.board.total().received
    }

    /// Tells every worker to finish, gathers their counts and waits for
    /// them to exit.
    pub async fn finish(mut self, published: u64) -> Result<Delivered> {
        for i in 0..self.inputs.len() {
            self.send(i, &Order::Finish { published }).await?;
        }
        let parts =
            self.collect("done", |event| if let Event::Done(stats) = event { Some(stats) } else { None }).await?;
        for child in &mut self.children {
            // A straggler is killed when the fleet is dropped.
            let _ = tokio::time::timeout(EXIT_TIMEOUT, child.wait()).await;
        }
        Ok(Delivered::merge(&parts))
    }

    async fn send(&mut self, worker: usize, order: &Order) -> Result<()> {
        let mut line = serde_json::to_vec(order).expect("orders serialize");
        line.push(b'\n');
        let input = &mut self.inputs[worker];
        input.write_all(&line).await.with_context(|| format!("worker {worker} is gone"))?;
        input.flush().await.with_context(|| format!("worker {worker} is gone"))
    }

    /// Waits for one event that `pick` takes from every worker, in worker
    /// order.
    async fn collect<T>(&mut self, what: &str, pick: impl Fn(Event) -> Option<T>) -> Result<Vec<T>> {
        let mut got: Vec<Option<T>> = self.children.iter().map(|_| None).collect();
        while got.iter().any(Option::is_none) {
            let Some((worker, heard)) = self.heard.recv().await else {
                bail!("lost every worker before it was {what}");
            };
            match heard {
                Ok(event) => {
                    if let Some(value) = pick(event) {
                        got[worker] = Some(value);
                    }
                }
                // A worker that has answered may exit (after "done") before
                // the others have.
                Err(_) if got[worker].is_some() => {}
                Err(why) => bail!("worker {worker} {why} before it was {what}"),
            }
        }
        Ok(got.into_iter().flatten().collect())
    }
}

/// Reads worker `i`'s events: progress goes to the board, the rest to the
/// fleet, and the end of its output as an error.
async fn listen(i: usize, stdout: ChildStdout, board: Arc<Board>, tx: mpsc::UnboundedSender<Heard>) {
    let mut lines = BufReader::new(stdout).lines();
    let why = loop {
        match lines.next_line().await {
            Ok(Some(line)) => match serde_json::from_str::<Event>(&line) {
                Ok(Event::Progress(progress)) => board.workers.lock().expect("progress board poisoned")[i] = progress,
                Ok(event) => {
                    let _ = tx.send((i, Ok(event)));
                }
                Err(e) => break format!("sent a bad line ({e}): {line}"),
            },
            Ok(None) => break "exited".to_owned(),
            Err(e) => break format!("could not be read ({e})"),
        }
    };
    let _ = tx.send((i, Err(why)));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hist::Buckets;

    #[test]
    fn connections_split_evenly_without_empty_workers() {
        assert_eq!(split(10, 3), [0..4, 4..7, 7..10]);
        assert_eq!(split(2, 4), [0..1, 1..2]);
        let whole = 0..5;
        assert_eq!(split(5, 1), vec![whole]);
        assert_eq!(split(0, 2), Vec::<Range<u64>>::new());
        let ranges = split(100_003, 7);
        assert_eq!(ranges.iter().map(|r| r.end - r.start).sum::<u64>(), 100_003);
        assert!(ranges.windows(2).all(|w| w[0].end == w[1].start));
    }

    #[test]
    fn connect_stats_add_up() {
        let mut handshake = hist::micros();
        handshake.saturating_record(500);
        let a = ConnectStats {
            opened: 3,
            opened_per_edge: vec![2, 1],
            failed: 1,
            errors: BTreeMap::from([("tcp: refused".to_owned(), 1)]),
            handshake: Buckets::from(&handshake),
        };
        let b = ConnectStats {
            opened: 2,
            opened_per_edge: vec![1, 1],
            failed: 2,
            errors: BTreeMap::from([("tcp: refused".to_owned(), 2)]),
            ..a.clone()
        };
        let total = Connected::merge(&[a, b], Duration::from_secs(1));
        assert_eq!((total.opened, total.failed), (5, 3));
        assert_eq!(total.opened_per_edge, [3, 2]);
        assert_eq!(total.errors["tcp: refused"], 3);
        assert_eq!(total.handshake.len(), 2);
    }

    #[test]
    fn delivery_stats_add_up() {
        let mut latency = hist::micros();
        latency.saturating_record(1_000);
        let part = DeliveryStats {
            expected: 10,
            received: 9,
            distinct: 8,
            duplicates: 1,
            closed_early: 1,
            latency: Buckets::from(&latency),
            last_received_unix_nanos: 7,
            ..Default::default()
        };
        let later = DeliveryStats { last_received_unix_nanos: 9, ..part.clone() };
        let total = Delivered::merge(&[part, later]);
        assert_eq!(
            (total.expected, total.received, total.distinct, total.duplicates, total.closed_early),
            (20, 18, 16, 2, 2)
        );
        assert_eq!(total.latency.len(), 2);
        assert_eq!(total.last_received_unix_nanos, 9);
    }

    #[test]
    fn action_stats_add_up() {
        let mut rtt = hist::micros();
        rtt.saturating_record(800);
        let part = ActionStats {
            sent: 10,
            unsent: 1,
            sending_seconds: 2.0,
            replied: 7,
            errors: vec![(503, 1), (504, 1)],
            timeouts: 1,
            late: 1,
            unmatched: 2,
            other_frames: 3,
            rtt: Buckets::from(&rtt),
        };
        let slower = ActionStats { sending_seconds: 2.5, errors: vec![(504, 2)], ..part.clone() };
        let total = Acted::merge(&[part, slower]);
        assert_eq!((total.sent, total.unsent, total.replied, total.timeouts), (20, 2, 14, 2));
        assert_eq!((total.late, total.unmatched, total.other_frames), (2, 4, 6));
        assert_eq!(total.errors, BTreeMap::from([(503, 1), (504, 3)]));
        assert_eq!(total.sending, Duration::from_millis(2500));
        assert_eq!(total.rtt.len(), 2);
    }
}
