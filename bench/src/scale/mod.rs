//! `herald-bench scale`: as many authenticated idle connections as one
//! machine holds, then a broadcast to all of them.
//!
//! One process may hold only as many sockets as its open-file limit, so
//! the connections are spread over many edges (`--per-edge` each) on one
//! nats-server, and over as many load-tool workers as that limit asks for,
//! bound to many loopback source addresses. The connections are held
//! (`--hold`), then `--messages` are published to `all`: the report says
//! the connect rate, each edge's memory per connection at the hold, the
//! time from each publish to its last delivery and how many arrived, and
//! what the whole machine held (every edge, nats-server, the kernel's slab
//! and TCP buffers) at its worst. Memory is watched every second; below
//! `--min-available-mib` the run stops, so a machine is never pushed into
//! the OOM killer.
//!
//! Writes `scale.json` and `scale.md` into `--out`.

mod kernel;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::Args as ClapArgs;
use clap::builder::TypedValueParser as _;
use serde::Serialize;

use self::kernel::Sample;
use crate::procs;
use crate::publish::unix_nanos;
use crate::report::{self, Report};
use crate::scenario::broadcast::{self, Target};
use crate::scenario::delivery::Publishing;
use crate::suite::servers::{self, Contender, Environment};
use crate::suite::{self, Gateways};

/// How often the machine is sampled (and its free memory checked).
const SAMPLE_EVERY: Duration = Duration::from_secs(1);
/// Deliveries are over when their count has not moved for this long: on
/// a machine this loaded, workers report late.
const QUIET_SECS: f64 = 15.0;
/// The load tool's read buffer per connection here: a frame of the
/// broadcast (~200 bytes) fits, and an idle connection costs the tool
/// ~1.5 KiB in all instead of ~3 KiB at the scenarios' 2 KiB.
const SCALE_READ_BUFFER_BYTES: usize = 512;

#[derive(Debug, ClapArgs, Serialize)]
pub struct Args {
    /// Connections to hold, each its own user
    #[arg(long, value_name = "N")]
    pub connections: u64,
    /// Connections per edge process: under its open-file limit, with room
    /// for its NATS connections and listener
    #[arg(long, value_name = "N", default_value_t = 16_667, value_parser = clap::value_parser!(u64).range(1..))]
    pub per_edge: u64,
    /// Seconds the connections are held before the edges' memory is
    /// sampled and the first message is published
    #[arg(long, value_name = "SECS", default_value_t = 30.0)]
    pub hold: f64,
    /// Messages published to everyone (`all`), one every --every seconds
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..))]
    pub messages: u64,
    /// Seconds between two messages: longer than one broadcast takes to
    /// deliver, so each message's last delivery is its own
    #[arg(long, value_name = "SECS", default_value_t = 10.0)]
    pub every: f64,
    /// Longest wait for the last deliveries after the last publish, in
    /// seconds (deliveries end sooner once none arrives for a second)
    #[arg(long, value_name = "SECS", default_value_t = 120.0)]
    pub drain: f64,
    /// Loopback source addresses the connections are bound to (each gives
    /// about 28k ports towards each edge)
    #[arg(long, value_name = "N", default_value_t = 64)]
    pub source_ips: u8,
    /// Connections each load-tool worker opens at once. Low on purpose:
    /// with dozens of edges and workers on a few cores, a faster storm
    /// starves the edges' NATS connections (nats-server then takes seconds
    /// to read their subscriptions, and closes them as slow consumers)
    #[arg(long, value_name = "N", default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..))]
    pub connect_concurrency: u16,
    /// Each connection's read buffer in the load tool, in bytes. Small: the
    /// connections sit idle and get one frame each, and at a million it is
    /// the tool's memory that decides whether they fit
    #[arg(long, value_name = "BYTES", default_value_t = SCALE_READ_BUFFER_BYTES, value_parser = clap::value_parser!(u64).range(64..).map(|bytes| bytes as usize))]
    pub read_buffer_bytes: usize,
    /// A setting every edge gets, as its environment variable
    /// (`HERALD_PING_INTERVAL_MS=120000`); repeat for several
    #[arg(long = "edge-env", value_name = "NAME=VALUE", value_parser = edge_env)]
    pub edge_env: Vec<(String, String)>,
    /// The run stops (and says so) when the machine's available memory
    /// falls below this
    #[arg(long, value_name = "MIB", default_value_t = 3072)]
    pub min_available_mib: u64,
    /// Where scale.json and scale.md are written
    #[arg(long, value_name = "DIR", default_value = "target/bench-scale")]
    #[serde(skip)]
    pub out: PathBuf,
    /// The herald binary
    #[arg(long, value_name = "PATH", default_value = "target/release/herald")]
    #[serde(skip)]
    pub herald: PathBuf,
}

/// Everything a run measured.
#[derive(Debug, Serialize)]
pub struct Results {
    pub settings: serde_json::Value,
    /// Unix seconds at the start.
    pub started: u64,
    /// The 1-minute load average before the run, from `/proc/loadavg`.
    pub load_before: String,
    /// The kernel settings that bound the run (`sysctl` name, value).
    pub kernel: Vec<(String, String)>,
    pub edges: usize,
    pub workers: u16,
    /// The machine before any connection (edges and nats-server started).
    pub before: Sample,
    /// The machine at its worst during the run, field by field.
    pub worst: Sample,
    /// The broadcast run: connections, each edge's memory at the hold,
    /// deliveries and their latency. `None` when the run was stopped.
    pub report: Option<Report>,
    /// Why the run stopped early, when it did.
    pub stopped: Option<String>,
}

pub async fn run(args: &Args) -> Result<()> {
    if !args.herald.is_file() {
        bail!("missing {} (cargo build --release -p herald)", args.herald.display());
    }
    if !(args.hold.is_finite() && args.hold >= 0.0 && args.every.is_finite() && args.every > 0.0) {
        bail!("--hold must be at least 0 and --every above 0");
    }
    let per_process = procs::connections_per_process()?;
    let workers = u16::try_from(args.connections.div_ceil(per_process.max(1))).context("too many connections")?;
    let edges = usize::try_from(args.connections.div_ceil(args.per_edge)).context("too many edges")?;
    std::fs::create_dir_all(&args.out).with_context(|| format!("cannot create {}", args.out.display()))?;
    let load_before = std::fs::read_to_string("/proc/loadavg").unwrap_or_default().trim().to_owned();
    let started = unix_nanos() / 1_000_000_000;

    let (nats, nats_url) = servers::nats().await?;
    let env = Environment::herald_only(&args.herald, nats_url, std::env::temp_dir(), "scale");
    eprintln!("starting {edges} edges for {} connections ({workers} load-tool workers)", args.connections);
    let settings: Vec<(&str, &str)> =
        args.edge_env.iter().map(|(name, value)| (name.as_str(), value.as_str())).collect();
    let measured = match Gateways::herald_edges(&env, edges, &settings).await {
        Ok(gateways) => {
            let measured = hold_and_broadcast(args, &env, &gateways, nats.pid, workers).await;
            gateways.stop().await;
            measured
        }
        Err(e) => Err(e),
    };
    nats.stop().await;
    let (before, worst, report, stopped) = measured?;

    let results = Results {
        settings: serde_json::to_value(args).expect("settings serialize"),
        started,
        load_before,
        kernel: kernel::settings(),
        edges,
        workers,
        before,
        worst,
        report,
        stopped,
    };
    report::write_run(&args.out, "scale", &results, &markdown(&results))?;
    match &results.stopped {
        Some(why) => bail!("stopped: {why}"),
        None => Ok(()),
    }
}

/// `NAME=VALUE` of `--edge-env`.
fn edge_env(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((name, value)) if name.starts_with("HERALD_") => Ok((name.to_owned(), value.to_owned())),
        _ => Err(format!("expected HERALD_NAME=VALUE, not {text:?}")),
    }
}

/// What [`hold_and_broadcast`] found: the machine before and at its worst,
/// the broadcast's report, or why it was stopped.
type Measured = (Sample, Sample, Option<Report>, Option<String>);

/// Holds the connections and broadcasts to them while the machine is
/// sampled every second; stops the run when memory runs low.
async fn hold_and_broadcast(
    args: &Args,
    env: &Environment,
    gateways: &Gateways,
    nats: u32,
    workers: u16,
) -> Result<Measured> {
    let pids = gateways.pids();
    let mut common = suite::common(Contender::Herald, env, gateways.urls(Contender::Herald), pids.clone(), workers);
    common.source_ips = args.source_ips;
    common.connect_concurrency = args.connect_concurrency;
    common.read_buffer_bytes = args.read_buffer_bytes;
    let publishing = Publishing {
        rate: 1.0 / args.every,
        duration: args.messages as f64 * args.every,
        payload_bytes: suite::PAYLOAD_BYTES,
        drain: args.drain,
        quiet: QUIET_SECS,
        hold: args.hold,
    };
    let broadcast = broadcast::Args { receivers: args.connections, target: Target::All, publishing, common };
    let floor = args.min_available_mib * 1024 * 1024;

    let before = Sample::read(&pids, nats)?;
    let mut worst = before;
    let run = broadcast::run(&broadcast);
    let mut run = std::pin::pin!(run);
    let mut ticks = tokio::time::interval(SAMPLE_EVERY);
    loop {
        tokio::select! {
            report = &mut run => {
                worst = worst.worst(Sample::read(&pids, nats)?);
                return Ok((before, worst, Some(report?), None));
            }
            _ = ticks.tick() => {
                let now = Sample::read(&pids, nats)?;
                worst = worst.worst(now);
                if now.available_bytes < floor {
                    // Dropping the run kills its workers, which frees their
                    // connections at once.
                    let why = format!(
                        "available memory fell to {} MiB, under --min-available-mib {}",
                        now.available_bytes / (1024 * 1024),
                        args.min_available_mib
                    );
                    eprintln!("{why}; stopping");
                    return Ok((before, worst, None, Some(why)));
                }
            }
        }
    }
}

/// The run as a table for BENCHMARKS.md, and the broadcast's own summary.
fn markdown(results: &Results) -> String {
    let mib = |bytes: u64| bytes as f64 / (1024.0 * 1024.0);
    let growth = |before: u64, worst: u64| mib(worst.saturating_sub(before));
    let (b, w) = (&results.before, &results.worst);
    let mut out = format!(
        "Load average before the run: {}\n\n{} edges, {} load-tool workers\n\n",
        results.load_before, results.edges, results.workers
    );
    out.push_str("| kernel setting | value |\n|---|---|\n");
    for (name, value) in &results.kernel {
        out.push_str(&format!("| {name} | {value} |\n"));
    }
    out.push_str("\n| held (worst sample of the run) | before | worst | growth (MiB) |\n|---|---:|---:|---:|\n");
    for (what, before, worst) in [
        ("every edge's RSS, added up (MiB)", b.edges_rss_bytes, w.edges_rss_bytes),
        ("nats-server RSS (MiB)", b.nats_rss_bytes, w.nats_rss_bytes),
        ("the load tool's RSS, workers included (MiB)", b.tool_rss_bytes, w.tool_rss_bytes),
        ("kernel slab (MiB)", b.slab_bytes, w.slab_bytes),
        ("TCP buffers (MiB)", b.tcp_buffer_bytes, w.tcp_buffer_bytes),
    ] {
        out.push_str(&format!("| {what} | {:.0} | {:.0} | {:.0} |\n", mib(before), mib(worst), growth(before, worst)));
    }
    out.push_str(&format!(
        "| available memory, least (MiB; the load tool's use included) | {:.0} | {:.0} | {:.0} |\n",
        mib(b.available_bytes),
        mib(w.available_bytes),
        -growth(w.available_bytes, b.available_bytes),
    ));
    out.push_str(&format!("| TCP sockets in use | {} | {} | |\n\n", b.tcp_sockets, w.tcp_sockets));
    match (&results.report, &results.stopped) {
        (Some(report), _) => {
            let (before, after): (u64, u64) =
                report.memory.iter().fold((0, 0), |(b, a), m| (b + m.rss_before_bytes, a + m.rss_after_bytes));
            let held = report.connections.opened.max(1) as f64;
            out.push_str(&format!(
                "Edges at the end of the hold: {:.0} → {:.0} MiB, {:.2} KiB per connection\n",
                mib(before),
                mib(after),
                (after as f64 - before as f64) / held / 1024.0
            ));
            if let Some(delivery) = &report.delivery {
                out.push_str(&format!(
                    "Publish → last delivery: {:.2} s (the slowest message); {} of {} delivered\n\n",
                    delivery.latency_us.max as f64 / 1e6,
                    delivery.distinct,
                    delivery.expected
                ));
            }
            out.push_str(&report.summary());
        }
        (None, Some(why)) => out.push_str(&format!("Stopped: {why}\n")),
        (None, None) => {}
    }
    out
}
