//! `herald-bench scale`: as many authenticated idle connections as one
//! machine holds, then a broadcast to all of them.
//!
//! One process may hold only as many sockets as its open-file limit, so
//! the connections are spread over many edges (`--per-edge` each) on one
//! nats-server, and over as many load-tool workers as that limit asks for,
//! bound to many loopback source addresses. The connections are held
//! (`--hold`), then `--messages` are published to `all`: the report says
//! the connect rate, each edge's memory per connection at the hold, the
//! time from the publish to the last delivery twice — on the edges (every
//! edge has written its share to the kernel, from their `/metrics`,
//! [`edges`]) and in the load tool (every worker's final count) — and
//! what the whole machine held (every edge, nats-server, the kernel's slab
//! and TCP buffers) at its worst. The machine and the edges are sampled
//! every second, into a series; below `--min-available-mib` the run stops,
//! so a machine is never pushed into the OOM killer.
//!
//! Writes `scale.json` and `scale.md` into `--out`.

mod edges;
mod kernel;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Args as ClapArgs;
use clap::builder::TypedValueParser as _;
use serde::Serialize;

use self::edges::{EdgeSide, EdgeWatch, Totals};
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
    /// seconds: the wait ends sooner once the workers have counted every
    /// message on every connection, however late they report (at load 157
    /// a wait for silence ended while deliveries were still being read)
    #[arg(long, value_name = "SECS", default_value_t = 600.0)]
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
    /// Niceness of the load tool's workers once their connections are
    /// open (0: none). High by default: it leaves the CPU to the edges and
    /// NATS during the broadcast (at 0, the 500,000 run's edges answered
    /// almost nothing for tens of seconds); the tool's own count then
    /// includes its wait for the CPU, and the edges' figure is the one to
    /// read
    #[arg(long, value_name = "N", default_value_t = 19, value_parser = clap::value_parser!(i32).range(0..=19))]
    pub worker_nice: i32,
    /// A setting every edge gets, as its environment variable; repeat for
    /// several. Any given replaces the defaults, which keep the
    /// keep-alives out of the way: clients pinged every 30 minutes (at the
    /// edge's 25 s, the pings took the CPU the connects needed and a run
    /// stalled at ~200,000), and the edges' NATS keep-alive at 30 s, longer
    /// than nats-server's read loop takes on a machine this loaded (up to
    /// 30 s seen: a shorter one turned the subscription storm into a
    /// reconnection storm, and a 1,000,000 run stopped at 634,087)
    #[arg(
        long = "edge-env",
        value_name = "NAME=VALUE",
        value_parser = edge_env,
        default_values = ["HERALD_PING_INTERVAL_MS=1800000", "HERALD_NATS_PING_INTERVAL_MS=30000"]
    )]
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
    /// deliveries and their latency as the load tool counted them. `None`
    /// when the run was stopped.
    pub report: Option<Report>,
    /// The broadcast as the edges' `/metrics` tell it, and their NATS
    /// connections. `None` when the run was stopped.
    pub edge_side: Option<EdgeSide>,
    /// Seconds from the first sample to the first publish.
    pub published_at_s: Option<f64>,
    /// The machine and the edges, every second of the run.
    pub series: Vec<Tick>,
    /// Why the run stopped early, when it did.
    pub stopped: Option<String>,
}

/// The machine and the edges at one second of the run.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Tick {
    /// Seconds since the first sample (the edges and nats-server up, no
    /// connection yet).
    pub t: f64,
    pub machine: Sample,
    /// The edges' latest counters, added up.
    pub edges: Totals,
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
    let Measured { before, worst, report, edge_side, published_at_s, series, stopped } = measured?;

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
        edge_side,
        published_at_s,
        series,
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

/// What [`hold_and_broadcast`] found.
struct Measured {
    before: Sample,
    worst: Sample,
    report: Option<Report>,
    edge_side: Option<EdgeSide>,
    published_at_s: Option<f64>,
    series: Vec<Tick>,
    stopped: Option<String>,
}

/// Holds the connections and broadcasts to them while the machine and the
/// edges are sampled every second; stops the run when memory runs low.
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
    common.worker_nice = args.worker_nice;
    let publishing = Publishing {
        rate: 1.0 / args.every,
        duration: args.messages as f64 * args.every,
        payload_bytes: suite::PAYLOAD_BYTES,
        drain: args.drain,
        // Not waited for: the run waits until all have arrived.
        quiet: args.drain,
        until_all: true,
        hold: args.hold,
    };
    let broadcast = broadcast::Args { receivers: args.connections, target: Target::All, publishing, common };
    let floor = args.min_available_mib * 1024 * 1024;

    let watch = EdgeWatch::start(&gateways.addrs())?;
    let first = Instant::now();
    let first_unix_nanos = unix_nanos();
    let before = Sample::read(&pids, nats)?;
    let mut worst = before;
    let mut series = Vec::new();
    let run = broadcast::run(&broadcast);
    let mut run = std::pin::pin!(run);
    let mut ticks = tokio::time::interval(SAMPLE_EVERY);
    loop {
        tokio::select! {
            report = &mut run => {
                worst = worst.worst(Sample::read(&pids, nats)?);
                let report = report?;
                let published = report.delivery.as_ref().map_or(0, |delivery| delivery.first_published_unix_nanos);
                let edge_side = watch.finish(published, args.messages);
                let published_at_s = (published > 0)
                    .then(|| published.saturating_sub(first_unix_nanos) as f64 / 1e9);
                return Ok(Measured {
                    before,
                    worst,
                    report: Some(report),
                    edge_side: Some(edge_side),
                    published_at_s,
                    series,
                    stopped: None,
                });
            }
            _ = ticks.tick() => {
                let now = Sample::read(&pids, nats)?;
                worst = worst.worst(now);
                series.push(Tick { t: first.elapsed().as_secs_f64(), machine: now, edges: watch.totals() });
                if now.available_bytes < floor {
                    // Dropping the run kills its workers, which frees their
                    // connections at once.
                    let why = format!(
                        "available memory fell to {} MiB, under --min-available-mib {}",
                        now.available_bytes / (1024 * 1024),
                        args.min_available_mib
                    );
                    eprintln!("{why}; stopping");
                    let stopped = Some(why);
                    return Ok(Measured { before, worst, report: None, edge_side: None, published_at_s: None, series, stopped });
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
    let nice = match results.settings["worker_nice"].as_i64() {
        Some(nice) if nice > 0 => format!(", at nice {nice} once connected"),
        _ => String::new(),
    };
    let edge_env = match results.settings["edge_env"].as_array() {
        Some(settings) => settings
            .iter()
            .filter_map(|pair| Some(format!("`{}={}`", pair[0].as_str()?, pair[1].as_str()?)))
            .collect::<Vec<_>>()
            .join(", "),
        None => String::new(),
    };
    let mut out = format!(
        "Load average before the run: {}\n\n{} edges ({edge_env}), {} load-tool workers{nice}\n\n",
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
    out.push_str(&load(results));
    if let Some(side) = &results.edge_side {
        out.push_str(&edge_side(side, results));
    }
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
                    "In the load tool (the workers' final counts): publish → last delivery {:.2} s (the slowest \
                     message); {} of {} delivered\n\n",
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

/// The load average before the run, and at its highest before and after
/// the publish.
fn load(results: &Results) -> String {
    let peak = |ticks: &mut dyn Iterator<Item = &Tick>| ticks.map(|tick| tick.machine.load1).fold(0.0, f64::max);
    match results.published_at_s {
        Some(at) => format!(
            "Load average (1 min): {:.1} at the start, at most {:.1} until the publish (connecting, holding), \
             at most {:.1} from the publish to the end\n\n",
            results.before.load1,
            peak(&mut results.series.iter().filter(|tick| tick.t < at)),
            peak(&mut results.series.iter().filter(|tick| tick.t >= at)),
        ),
        None => format!(
            "Load average (1 min): {:.1} at the start, at most {:.1}\n\n",
            results.before.load1,
            peak(&mut results.series.iter())
        ),
    }
}

/// The broadcast as the edges' `/metrics` tell it, with the series from
/// just before the publish.
fn edge_side(side: &EdgeSide, results: &Results) -> String {
    let messages = results.settings["messages"].as_u64().unwrap_or(1);
    let mut out = format!(
        "On the edges (each edge's `/metrics` read four times a second): {} sessions at the publish over {} of {} \
         edges; {} frames written since, of {} due.\n",
        side.sessions,
        side.edges_counted,
        side.edges,
        side.written,
        side.sessions * messages
    );
    match side.all_written_by_s {
        Some(by) => out.push_str(&format!(
            "**Every edge had handed its whole share to the kernel {:.1}–{by:.1} s after the publish** (the \
             last read short of it, the first that found it done)\n",
            side.all_written_after_s
        )),
        None => out.push_str(&format!(
            "Not every edge wrote its share within the run: {} of {} done; some edge was still short {:.1} s \
             after the publish\n",
            side.edges_done, side.edges_counted, side.all_written_after_s
        )),
    }
    out.push_str(&format!(
        "NATS: {} reconnections over the run, {} edges seen with a NATS connection down; {} sessions closed \
         as slow consumers, {} deliveries dropped at a full mailbox; {} failed reads of `/metrics`{}\n\n",
        side.reconnects,
        side.edges_seen_disconnected,
        side.slow_consumers,
        side.mailbox_full,
        side.failed_reads,
        side.last_read_error.as_ref().map_or(String::new(), |why| format!(" (last: {why})")),
    ));
    let Some(at) = results.published_at_s else { return out };
    let Some(base) = results.series.iter().rev().find(|tick| tick.t < at) else { return out };
    let after: Vec<&Tick> = results.series.iter().filter(|tick| tick.t >= at - 1.0).collect();
    let span = after.last().map_or(0.0, |tick| tick.t - at);
    let step = if span <= 150.0 { 5.0 } else { 10.0 };
    out.push_str(
        "| s after the publish | frames written since | sessions | load (1 min) | TCP buffers (MiB) | \
         NATS reconnections | edges with NATS down |\n|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    let mut next = 0.0;
    for (i, tick) in after.iter().enumerate() {
        let since = tick.t - at;
        if since + 0.5 < next && i + 1 < after.len() {
            continue;
        }
        next = (since / step).floor() * step + step;
        out.push_str(&format!(
            "| {since:.1} | {} | {} | {:.1} | {:.0} | {} | {} |\n",
            tick.edges.frames_sent.saturating_sub(base.edges.frames_sent),
            tick.edges.sessions,
            tick.machine.load1,
            tick.machine.tcp_buffer_bytes as f64 / (1024.0 * 1024.0),
            tick.edges.reconnects,
            tick.edges.disconnected,
        ));
    }
    out.push('\n');
    out
}
