//! `herald-bench recovery`: what missed-message recovery (ADR 0012) costs.
//!
//! On one nats-server with JetStream (its store in a temporary directory):
//!
//! - the same broadcasts with history off and on (`HERALD_HISTORY` off,
//!   then `users,groups,all`), each on a fresh edge, as Herald ÷ Herald
//!   ratios of deliveries per second and latency;
//! - a reconnect storm ([`storm`]): many clients, each its own user, lose
//!   their edge to SIGKILL, miss messages, and all resume at once on
//!   another edge; the time until every one is told `recovered: true`,
//!   and nats-server's CPU meanwhile.
//!
//! Writes `recovery.json` and `recovery.md` into `--out`.

mod cpu;
mod storm;

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::Args as ClapArgs;
use serde::Serialize;

use crate::publish::unix_nanos;
use crate::report::{self, Report};
use crate::scenario::broadcast::{self, Target};
use crate::scenario::delivery::Publishing;
use crate::suite;
use crate::suite::servers::{self, Contender, Environment};

/// The history settings of the "on" steps: every kind of subject.
const HISTORY_ON: &str = "users,groups,all";

#[derive(Debug, ClapArgs)]
pub struct Args {
    /// Receivers of the broadcast steps
    #[arg(long, value_name = "N", default_value_t = 1_000)]
    pub receivers: u64,
    /// Deliveries a second offered in the broadcast steps (messages a
    /// second × receivers); repeat for several
    #[arg(long = "deliveries", value_name = "N", default_values_t = [100_000.0, 500_000.0])]
    pub deliveries: Vec<f64>,
    /// Seconds of publishing in each broadcast step
    #[arg(long, value_name = "SECS", default_value_t = 3.0)]
    pub duration: f64,
    /// Clients in the reconnect storm, each its own user
    #[arg(long, value_name = "N", default_value_t = 10_000)]
    pub clients: u64,
    /// Messages each storm client misses while it is away
    #[arg(long, value_name = "N", default_value_t = 50)]
    pub missed: u64,
    /// Where recovery.json and recovery.md are written
    #[arg(long, value_name = "DIR", default_value = "target/bench-recovery")]
    pub out: PathBuf,
    /// The herald binary
    #[arg(long, value_name = "PATH", default_value = "target/release/herald")]
    pub herald: PathBuf,
}

/// One broadcast, with history off and on.
#[derive(Debug, Serialize)]
pub struct Pair {
    pub target: Target,
    pub receivers: u64,
    pub rate: f64,
    pub off: Report,
    pub on: Report,
}

/// Everything a run measured.
#[derive(Debug, Serialize)]
pub struct Results {
    /// Unix seconds at the start.
    pub started: u64,
    /// The 1-minute load average before the run, from `/proc/loadavg`:
    /// other work on the machine shows in every figure.
    pub load_before: String,
    pub pairs: Vec<Pair>,
    pub storm: Option<storm::Storm>,
    /// Why the storm could not be measured, when it could not.
    pub storm_error: Option<String>,
}

pub async fn run(args: &Args) -> Result<()> {
    if !args.herald.is_file() {
        bail!("missing {} (cargo build --release -p herald)", args.herald.display());
    }
    std::fs::create_dir_all(&args.out).with_context(|| format!("cannot create {}", args.out.display()))?;
    let scratch = std::env::temp_dir().join(format!("herald-bench-recovery-{}", std::process::id()));
    std::fs::create_dir_all(&scratch).with_context(|| format!("cannot create {}", scratch.display()))?;
    let load_before = std::fs::read_to_string("/proc/loadavg").unwrap_or_default().trim().to_owned();
    let started = unix_nanos() / 1_000_000_000;
    let (nats, nats_url) = servers::nats_jetstream(&scratch.join("jetstream")).await?;
    let env = Environment::herald_only(&args.herald, nats_url, scratch.clone(), "recovery");
    let pairs = broadcasts(args, &env).await;
    let storm = storm::run(&env, nats.pid, args.clients, args.missed).await;
    nats.stop().await;
    let _ = std::fs::remove_dir_all(&scratch);
    let pairs = pairs?;
    let (storm, storm_error) = match storm {
        Ok(storm) => (Some(storm), None),
        Err(e) => {
            eprintln!("the storm failed: {e:#}");
            (None, Some(format!("{e:#}")))
        }
    };
    let results = Results { started, load_before, pairs, storm, storm_error };
    report::write_run(&args.out, "recovery", &results, &markdown(&results))
}

/// Every broadcast with history off, then on, each on a fresh edge.
async fn broadcasts(args: &Args, env: &Environment) -> Result<Vec<Pair>> {
    let mut pairs = Vec::new();
    for target in [Target::All, Target::Group] {
        for &deliveries in &args.deliveries {
            let rate = deliveries / args.receivers as f64;
            let off = broadcast_with(args, env, target, rate, "off").await?;
            let on = broadcast_with(args, env, target, rate, HISTORY_ON).await?;
            pairs.push(Pair { target, receivers: args.receivers, rate, off, on });
        }
    }
    Ok(pairs)
}

async fn broadcast_with(args: &Args, env: &Environment, target: Target, rate: f64, history: &str) -> Result<Report> {
    eprintln!("\n=== broadcast to {target:?}, {} receivers, {rate} msg/s, HERALD_HISTORY={history}", args.receivers);
    let (edge, addr) = servers::herald_edge_with(env, &[("HERALD_HISTORY", history)]).await?;
    let common = suite::common(Contender::Herald, env, vec![Contender::Herald.url(addr)], vec![edge.pid], 2);
    let publishing = Publishing {
        rate,
        duration: args.duration,
        payload_bytes: suite::PAYLOAD_BYTES,
        drain: 10.0,
        quiet: 1.0,
        until_all: false,
        hold: 0.0,
    };
    let report = broadcast::run(&broadcast::Args { receivers: args.receivers, target, publishing, common }).await;
    edge.stop().await;
    report
}

/// The tables of BENCHMARKS.md's recovery section.
fn markdown(results: &Results) -> String {
    let mut out = format!("Load average before the run: {}\n\n", results.load_before);
    out.push_str("| to | receivers | msg/s | delivered/s off | on | on ÷ off | p50 ms off | on | p99 ms off | on | on ÷ off | lost on |\n");
    out.push_str("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for pair in &results.pairs {
        let (Some(off), Some(on)) = (&pair.off.delivery, &pair.on.delivery) else { continue };
        let ms = |us: u64| us as f64 / 1000.0;
        out.push_str(&format!(
            "| {:?} | {} | {:.0} | {:.0} | {:.0} | {:.2} | {:.1} | {:.1} | {:.1} | {:.1} | {:.2} | {} |\n",
            pair.target,
            pair.receivers,
            pair.rate,
            off.deliveries_per_sec,
            on.deliveries_per_sec,
            on.deliveries_per_sec / off.deliveries_per_sec,
            ms(off.latency_us.p50),
            ms(on.latency_us.p50),
            ms(off.latency_us.p99),
            ms(on.latency_us.p99),
            on.latency_us.p99 as f64 / off.latency_us.p99.max(1) as f64,
            on.lost,
        ));
    }
    match (&results.storm, &results.storm_error) {
        (Some(storm), _) => out.push_str(&storm.markdown()),
        (None, Some(error)) => out.push_str(&format!("\nThe reconnect storm failed: {error}\n")),
        (None, None) => {}
    }
    out
}
