//! `herald-bench`: a load tool for Herald edges.
//!
//! Many WebSocket clients, each a real authenticated user, spread over
//! several worker processes (one process can hold only as many sockets as
//! its open-file limit) and over several loopback source addresses (one
//! address can reach one edge only as many times as there are ephemeral
//! ports); publishers on NATS; latency histograms merged across processes;
//! the servers' memory per connection from `/proc`.
//!
//! # Layout
//!
//! - `main.rs`: the command line.
//! - [`scenario`]: one module per scenario (`idle`, `broadcast`,
//!   `cross_pod`, `actions`), what they share, and the publishing run.
//! - [`procs`]: worker processes, the JSON lines between them and the
//!   parent, and adding up their counts.
//! - [`worker`]: what a worker process does; [`tally`]: what it counts of
//!   deliveries, [`act`]: of client actions (the frames, matching replies).
//! - [`conn`]: opening one connection from a spread source address;
//!   [`protocol`]: how Herald and each peer are spoken to (the Pusher
//!   protocol in [`protocol::pusher`]).
//! - [`population`]: each connection's user, groups, edge and expected
//!   messages, from its number alone.
//! - [`publish`]: the benchmark frame and the paced publisher.
//! - [`suite`]: Herald and the peers side by side, servers started by the
//!   tool, tables and plots.
//! - [`soak`]: an edge, a router and handlers under hours of churn, checked
//!   for growth and for wrong answers.
//! - [`recovery`]: what missed-message recovery costs: broadcasts with
//!   history off and on, and a reconnect storm.
//! - [`scale`]: as many idle connections as one machine holds, over
//!   many edges, then a broadcast to all of them.
//! - [`subscriptions`]: what one NATS subscription costs, each way the
//!   edge could hold one per user.
//! - [`token`]: JWTs for the clients; [`hist`]: latency histograms;
//!   [`proc_mem`]: resident memory of server processes; [`report`]: the
//!   summary table and JSON.

mod act;
mod compare;
mod conn;
mod hist;
mod population;
mod proc_cpu;
mod proc_mem;
mod procs;
mod protocol;
mod publish;
mod recovery;
mod report;
mod scale;
mod scenario;
mod soak;
mod subscriptions;
mod suite;
mod tally;
mod token;
mod worker;

use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};

use crate::scenario::Scenario;

/// Load tool for Herald edges: connections, fan-out, cross-pod delivery,
/// client actions through routers and handlers.
///
/// Progress goes to standard error every second; the summary to standard
/// output; the full results to --json.
#[derive(Parser)]
#[command(name = "herald-bench", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    #[command(flatten)]
    Scenario(Box<Scenario>),
    /// Herald and its peers (uWebSockets.js, ws, Socket.IO; soketi and
    /// sockudo for the Pusher protocol) side by side: starts every server
    /// itself, runs every scenario against each, and writes results.json,
    /// summary.md and PNG plots
    Suite(suite::Args),
    /// An edge, a router, the example handlers and NATS under steady churn
    /// for a long time: samples memory, open files, tasks and NATS
    /// subscriptions, fails when one trends upward or a client check fails;
    /// writes soak.json, summary.md and soak.png
    Soak(soak::Args),
    /// Missed-message recovery's cost: the same broadcasts with history off
    /// and on (Herald ÷ Herald), and a reconnect storm of clients resuming
    /// at once (time until all are recovered, nats-server's CPU); writes
    /// recovery.json and recovery.md
    Recovery(recovery::Args),
    /// As many authenticated idle connections as this machine holds, over
    /// many edges on one nats-server, then a broadcast to all of them:
    /// connect rate, memory in all (edges, nats-server, the kernel), time
    /// from publish to the last delivery; writes scale.json and scale.md
    Scale(scale::Args),
    /// Two suite runs' results.json step by step, each figure as the
    /// first's ÷ the second's (e.g. `--traces` against a run without)
    Compare(compare::Args),
    /// Memory per NATS subscription, for each way of holding one per user
    /// (async-nats, the lean subscriber, a wildcard, ...), each in a fresh
    /// process
    Subscriptions(subscriptions::Args),
    /// One worker process of a run, started by the tool itself; takes its
    /// orders as JSON lines on standard input.
    #[command(hide = true)]
    Worker,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("herald-bench: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Runs a command on a single-threaded runtime: a worker uses one core,
/// and a run uses more by having more workers.
fn run(command: Command) -> Result<()> {
    let runtime =
        tokio::runtime::Builder::new_current_thread().enable_all().build().context("cannot start the async runtime")?;
    match command {
        Command::Worker => runtime.block_on(worker::run()),
        Command::Scenario(scenario) => runtime.block_on(run_scenario(&scenario)),
        Command::Suite(args) => runtime.block_on(suite::run(&args)),
        Command::Soak(args) => runtime.block_on(soak::run(&args)),
        Command::Recovery(args) => runtime.block_on(recovery::run(&args)),
        Command::Scale(args) => runtime.block_on(scale::run(&args)),
        Command::Subscriptions(args) => runtime.block_on(subscriptions::run(&args)),
        Command::Compare(args) => compare::run(&args),
    }
}

async fn run_scenario(scenario: &Scenario) -> Result<()> {
    let report = scenario.run().await?;
    print!("{}", report.summary());
    if let Some(path) = &scenario.common().json {
        report.write_json(path)?;
        eprintln!("results written to {}", path.display());
    }
    Ok(())
}
