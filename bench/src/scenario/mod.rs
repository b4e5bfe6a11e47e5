//! The scenarios, and what they share: the target options, starting the
//! workers and sampling server memory.
//!
//! A scenario is a subcommand with its own `Args` (which flatten
//! [`Common`]) and a `run` that returns a [`Report`]. Adding one is a module
//! and a variant of [`Scenario`].

pub mod actions;
pub mod broadcast;
pub mod cross_pod;
pub mod delivery;
pub mod idle;

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::builder::TypedValueParser as _;
use clap::{Args, Subcommand};
use serde::Serialize;
use tokio_tungstenite::tungstenite::http::Uri;

use crate::conn::{self, MAX_SOURCE_IPS};
use crate::population::Population;
use crate::procs::{self, Connected, Fleet, WorkerPlan};
use crate::protocol::{Protocol, pusher};
use crate::report::{Report, ServerCpu, ServerMemory};
use crate::{proc_cpu, proc_mem};

/// A load scenario.
#[derive(Debug, Subcommand)]
pub enum Scenario {
    /// Open N authenticated connections, hold them, and measure the connect
    /// rate and the servers' memory per connection.
    Idle(idle::Args),
    /// N receivers, one publisher on NATS at a fixed rate to everyone or to
    /// one group: deliveries per second, loss and latency.
    Broadcast(broadcast::Args),
    /// Users with several tabs spread over several edges, messages to each
    /// user: every tab must get every message of its user exactly once.
    CrossPod(cross_pod::Args),
    /// N connections send client actions at a fixed total rate through the
    /// routers to a handler: round-trip latency, rate achieved, errors and
    /// timeouts.
    Actions(actions::Args),
}

impl Scenario {
    pub async fn run(&self) -> Result<Report> {
        match self {
            Scenario::Idle(args) => idle::run(args).await,
            Scenario::Broadcast(args) => broadcast::run(args).await,
            Scenario::CrossPod(args) => cross_pod::run(args).await,
            Scenario::Actions(args) => actions::run(args).await,
        }
    }

    pub fn common(&self) -> &Common {
        match self {
            Scenario::Idle(args) => &args.common,
            Scenario::Broadcast(args) => &args.common,
            Scenario::CrossPod(args) => &args.common,
            Scenario::Actions(args) => &args.common,
        }
    }
}

/// Where the load goes and how it is spread; every scenario takes these.
#[derive(Debug, Clone, Args, Serialize)]
pub struct Common {
    /// Edge WebSocket URL; repeat for several edges (connections go
    /// round-robin over them)
    #[arg(long = "url", value_name = "URL", default_value = "ws://127.0.0.1:8080/ws")]
    pub urls: Vec<String>,
    /// The server under test: a Herald edge, or a peer from bench/peers
    /// (publishing then goes over a WebSocket to the first --url's server
    /// instead of NATS)
    #[arg(long, value_enum, default_value_t = Protocol::Herald)]
    pub protocol: Protocol,
    /// HS256 secret the edges verify tokens with; with --protocol pusher,
    /// the Pusher app's secret (signs private channels and API calls)
    #[arg(long, value_name = "SECRET", env = "HERALD_BENCH_TOKEN_SECRET", hide_env_values = true)]
    #[serde(skip)]
    pub token_secret: String,
    /// NATS server the publisher uses
    #[arg(long, value_name = "URL", default_value = "nats://127.0.0.1:4222")]
    pub nats: String,
    /// First token(s) of Herald's NATS subjects, as the edges are set up
    #[arg(long, value_name = "PREFIX", default_value = "herald")]
    pub subject_prefix: String,
    /// Server process whose resident memory (VmRSS) is sampled before and
    /// after; repeat for several. Given once per --url, in the same order,
    /// each pid's growth is divided by its own URL's connections; otherwise
    /// by all connections
    #[arg(long = "server-pid", value_name = "PID")]
    pub server_pids: Vec<u32>,
    /// Another process whose CPU counts as the server's, beside each
    /// --server-pid (whose CPU is measured too): nats-server behind Herald
    /// edges, a Herald router. Repeat for several
    #[arg(long = "cpu-pid", value_name = "PID")]
    pub cpu_pids: Vec<u32>,
    /// Worker processes the connections are split over; each has its own
    /// open-file limit and one core's worth of runtime
    #[arg(long, value_name = "K", default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..))]
    pub procs: u16,
    /// Source addresses 127.0.0.2, 127.0.0.3, ... connections are bound to,
    /// round-robin (each allows about 28k connections per edge)
    #[arg(long, value_name = "N", default_value_t = 16, value_parser = clap::value_parser!(u8).range(1..=i64::from(MAX_SOURCE_IPS)))]
    pub source_ips: u8,
    /// Connections each worker opens at once. Keep this times --procs under
    /// the edges' listen backlog: past it the accept queue overflows and
    /// each dropped SYN costs its connection a one-second retransmit
    #[arg(long, value_name = "N", default_value_t = 32, value_parser = clap::value_parser!(u16).range(1..))]
    pub connect_concurrency: u16,
    /// Each connection's read buffer in the load tool, in bytes: most of
    /// what a held connection costs the tool; larger reads more frames per
    /// `read` when they pile up
    #[arg(long, value_name = "BYTES", default_value_t = conn::READ_BUFFER_BYTES, value_parser = clap::value_parser!(u64).range(64..).map(|bytes| bytes as usize))]
    pub read_buffer_bytes: usize,
    /// Niceness the workers take once their connections are open (0: as
    /// they started). Higher leaves the CPU to the servers while the
    /// workers read what they are sent; the workers' latencies then
    /// include their own wait for the CPU
    #[arg(long, value_name = "N", default_value_t = 0, value_parser = clap::value_parser!(i32).range(0..=19))]
    pub worker_nice: i32,
    /// Also write the results as JSON to this file
    #[arg(long, value_name = "PATH")]
    pub json: Option<PathBuf>,
    #[command(flatten)]
    #[serde(flatten)]
    pub pusher: PusherOptions,
}

/// How a Pusher server is published to, for `--protocol pusher`. The app's
/// key is in the receivers' URL (`/app/<key>`), its secret is
/// `--token-secret`.
#[derive(Debug, Clone, Args, Serialize)]
pub struct PusherOptions {
    /// The Pusher app's id, in the HTTP API's paths (`/apps/<id>/events`)
    #[arg(long = "pusher-app-id", value_name = "ID", default_value = "bench")]
    pub app_id: String,
    /// How messages are published: the app's HTTP API, or NATS to the
    /// channel's group (Herald only)
    #[arg(long = "pusher-publish", value_enum, default_value_t = pusher::Publish::Rest)]
    pub publish: pusher::Publish,
    /// The HTTP API's base URL (http://host:port) when it is not served
    /// by the receivers' server (Herald: a router)
    #[arg(long = "pusher-api", value_name = "URL")]
    pub api: Option<String>,
}

impl PusherOptions {
    /// The HTTP API's base URL: `--pusher-api`, or the server of receiver
    /// URL `url`.
    fn api_url(&self, url: &str) -> Result<String> {
        if let Some(api) = &self.api {
            return Ok(api.clone());
        }
        let uri: Uri = url.parse().with_context(|| format!("bad URL {url}"))?;
        let authority = uri.authority().with_context(|| format!("{url} has no host"))?;
        Ok(format!("http://{authority}"))
    }
}

impl Common {
    /// Fails unless the server under test is Herald, for what only Herald
    /// does (routers, users over several edges).
    fn require_herald(&self, scenario: &str) -> Result<()> {
        if self.protocol != Protocol::Herald {
            bail!("{scenario} needs Herald (--protocol herald): the peers hold connections and broadcast only");
        }
        Ok(())
    }

    /// Starts the workers for `count` connections of `population` and waits
    /// until all are open (or failed).
    async fn connect(&self, count: u64, population: Population) -> Result<(Fleet, Connected)> {
        let per_process = procs::connections_per_process()?;
        let ranges = procs::split(count, self.procs.into());
        let largest = ranges.iter().map(|range| range.end - range.start).max().unwrap_or(0);
        if largest > per_process {
            let needed = count.div_ceil(per_process.max(1));
            bail!(
                "{largest} connections in one worker process is over the {per_process} a process can hold \
                 (its open-file limit less a reserve); use --procs {needed} or more"
            );
        }
        let plans = ranges
            .into_iter()
            .map(|conns| WorkerPlan {
                urls: self.urls.clone(),
                protocol: self.protocol,
                token_secret: self.token_secret.clone(),
                conns,
                population: population.clone(),
                source_ips: self.source_ips,
                connect_concurrency: self.connect_concurrency.into(),
                read_buffer_bytes: self.read_buffer_bytes,
            })
            .collect();
        eprintln!("opening {count} connections to {} over {} worker process(es)", self.urls.join(", "), self.procs);
        let mut fleet = Fleet::spawn(plans).await?;
        let connected = fleet.ready().await?;
        if self.worker_nice > 0 {
            fleet.renice(self.worker_nice)?;
            eprintln!("workers at nice {} from now on", self.worker_nice);
        }
        eprintln!(
            "{} connections open in {:.2} s, {} failed",
            connected.opened,
            connected.elapsed.as_secs_f64(),
            connected.failed
        );
        Ok((fleet, connected))
    }
}

/// Server memory sampled before the connections open, to compare with
/// later.
struct MemoryProbe {
    before: Vec<(u32, u64)>,
}

impl MemoryProbe {
    fn start(pids: &[u32]) -> Result<MemoryProbe> {
        let before = pids.iter().map(|&pid| Ok((pid, proc_mem::resident_bytes(pid)?))).collect::<Result<_>>()?;
        Ok(MemoryProbe { before })
    }

    /// Samples again and divides each server's growth by its connections:
    /// those of its own URL when there is one pid per URL, else all.
    fn finish(&self, connected: &Connected) -> Result<Vec<ServerMemory>> {
        let one_per_edge = self.before.len() == connected.opened_per_edge.len();
        self.before
            .iter()
            .enumerate()
            .map(|(i, &(pid, before))| {
                let connections = if one_per_edge { connected.opened_per_edge[i] } else { connected.opened };
                Ok(ServerMemory::new(pid, connections, before, proc_mem::resident_bytes(pid)?))
            })
            .collect()
    }
}

/// The server's processes' CPU time when the part of a run a scenario
/// times begins, to compare with its end; and the load tool's own.
struct CpuProbe {
    before: Vec<(u32, f64)>,
    /// This process's and its workers' (when they are running yet).
    tool_before: Option<f64>,
}

impl CpuProbe {
    /// Reads the CPU time of every `--server-pid` and `--cpu-pid`, and the
    /// tool's: this process and the `workers` running, if any (workers
    /// that start later count from zero).
    fn start(common: &Common, workers: Option<&Fleet>) -> Result<CpuProbe> {
        let pids = common.server_pids.iter().chain(&common.cpu_pids);
        let before = pids
            .map(|&pid| proc_cpu::cpu_seconds(pid).map(|seconds| (pid, seconds)))
            .collect::<Option<_>>()
            .context("cannot read a server process's CPU time from /proc/<pid>/stat")?;
        Ok(CpuProbe { before, tool_before: tool_cpu(workers.into_iter().flat_map(Fleet::pids)) })
    }

    /// What each server process spent since [`CpuProbe::start`], and what
    /// the tool did with `workers` (`None` if a process's time could not
    /// be read: the server's figures are the ones a run must have).
    fn finish(&self, workers: &Fleet) -> Result<(Vec<ServerCpu>, Option<f64>)> {
        let servers = self
            .before
            .iter()
            .map(|&(pid, before)| {
                let now = proc_cpu::cpu_seconds(pid)
                    .with_context(|| format!("server process {pid} is gone: its CPU time cannot be read"))?;
                Ok(ServerCpu { pid, seconds: now - before })
            })
            .collect::<Result<_>>()?;
        let tool = self.tool_before.zip(tool_cpu(workers.pids())).map(|(before, now)| now - before);
        Ok((servers, tool))
    }
}

/// This process's CPU time and that of `workers`.
fn tool_cpu(workers: impl Iterator<Item = u32>) -> Option<f64> {
    std::iter::once(std::process::id()).chain(workers).map(proc_cpu::cpu_seconds).sum()
}

/// A scenario's settings for the report.
fn settings(args: &impl Serialize) -> serde_json::Value {
    serde_json::to_value(args).expect("settings serialize")
}
