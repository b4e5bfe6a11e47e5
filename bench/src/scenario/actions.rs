//! `actions`: N connections send client actions at a fixed total rate, and
//! every answer is matched to its action by `id`. Measures the round trip
//! client → edge → router (NATS queue group) → handler (NATS request/reply)
//! and back, the rate achieved, error replies by code and timeouts.
//!
//! The rate is spread evenly: each worker sends its connections' share of
//! it, action `n` of a worker on its connection `n mod connections` (see
//! [`crate::act`]), so every connection sends `rate / N` actions a second,
//! evenly spaced.

use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::Args as ClapArgs;
use serde::Serialize;

use super::{Common, CpuProbe, MemoryProbe, settings};
use crate::act;
use crate::population::Population;
use crate::procs::ActionLoad;
use crate::report::{Actions, Connections, Report};

/// Longest action name the contract allows.
const MAX_ACTION_CHARS: usize = 128;

#[derive(Debug, ClapArgs, Serialize)]
pub struct Args {
    /// Connections sending actions, each its own user
    #[arg(long, value_name = "N")]
    pub connections: u64,
    /// The action sent; the routes file must route it to a handler that
    /// answers with a reply (the example `echo` handler does). `$ping` is
    /// answered by the edge itself: the baseline without router, handler
    /// and NATS
    #[arg(long, default_value = "echo")]
    pub action: String,
    /// Actions per second, over all connections
    #[arg(long, value_name = "ACTIONS", default_value_t = 1000.0)]
    pub rate: f64,
    /// Seconds of sending
    #[arg(long, value_name = "SECS", default_value_t = 10.0)]
    pub duration: f64,
    /// Seconds an action may wait for its answer before it counts as a
    /// timeout (keep it under the edge's action timeout to tell the two
    /// apart: the edge answers 504 at its own)
    #[arg(long, value_name = "SECS", default_value_t = 5.0)]
    pub timeout: f64,
    #[command(flatten)]
    #[serde(flatten)]
    pub common: Common,
}

impl Args {
    fn check(&self) -> Result<()> {
        if self.connections == 0 {
            bail!("--connections must be at least 1");
        }
        if self.action.is_empty() || self.action.chars().count() > MAX_ACTION_CHARS {
            bail!("--action must be 1 to {MAX_ACTION_CHARS} characters");
        }
        if self.action.starts_with('$') && self.action != act::PING {
            bail!(
                "--action {:?}: actions starting with $ are Herald's own; of those only {} is sent",
                self.action,
                act::PING
            );
        }
        for (name, value) in [("--rate", self.rate), ("--duration", self.duration)] {
            if !(value.is_finite() && value >= 0.0) {
                bail!("{name} must be a number of at least 0, not {value}");
            }
        }
        if !(self.timeout.is_finite() && self.timeout > 0.0) {
            bail!("--timeout must be a number of seconds above 0, not {}", self.timeout);
        }
        Ok(())
    }

    /// Actions sent in all.
    fn total(&self) -> u64 {
        (self.rate * self.duration).round() as u64
    }

    /// The timeout in whole milliseconds, at least one.
    fn timeout_ms(&self) -> u64 {
        let millis = Duration::try_from_secs_f64(self.timeout).map_or(u128::MAX, |t| t.as_millis());
        u64::try_from(millis).unwrap_or(u64::MAX).max(1)
    }

    /// What the worker with connections `start..end` sends: its share of
    /// the actions, at its share of the rate.
    fn load(&self, start: u64, end: u64) -> ActionLoad {
        ActionLoad {
            action: self.action.clone(),
            count: act::share(self.total(), self.connections, start, end),
            rate: self.rate * (end - start) as f64 / self.connections as f64,
            timeout_ms: self.timeout_ms(),
        }
    }
}

pub async fn run(args: &Args) -> Result<Report> {
    args.common.require_herald("actions")?;
    args.check()?;
    let common = &args.common;
    let probe = MemoryProbe::start(&common.server_pids)?;
    let (mut fleet, connected) = common.connect(args.connections, Population::Distinct { groups: Vec::new() }).await?;
    let memory = probe.finish(&connected)?;
    eprintln!(
        "sending {} {:?} actions/s for {} s ({:.3}/s per connection), timeout {} s",
        args.rate,
        args.action,
        args.duration,
        args.rate / args.connections as f64,
        args.timeout
    );
    let cpu = CpuProbe::start(common, Some(&fleet))?;
    let acted = fleet.act(|conns| args.load(conns.start, conns.end)).await.context("while sending actions")?;
    let (cpu, tool_cpu) = cpu.finish(&fleet)?;
    let held = fleet.finish(0).await?;
    Ok(Report {
        scenario: "actions",
        settings: settings(args),
        connections: Connections::new(args.connections, &connected, held.closed_early),
        memory,
        cpu,
        tool_cpu,
        delivery: None,
        actions: Some(Actions::new(&args.action, args.rate, args.timeout_ms(), &acted)),
    })
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::procs::split;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: Args,
    }

    fn args(extra: &[&str]) -> Args {
        let mut argv = vec!["herald-bench", "--token-secret", "s"];
        if !extra.contains(&"--connections") {
            argv.extend(["--connections", "500"]);
        }
        Cli::try_parse_from(argv.iter().chain(extra)).unwrap().args
    }

    #[test]
    fn defaults_send_echo_with_a_five_second_timeout() {
        let a = args(&[]);
        assert_eq!((a.action.as_str(), a.rate, a.duration, a.timeout_ms()), ("echo", 1000.0, 10.0, 5000));
        a.check().unwrap();
        assert_eq!(args(&["--timeout", "0.0001"]).timeout_ms(), 1);
        assert_eq!(args(&["--timeout", "1e30"]).timeout_ms(), u64::MAX);
    }

    #[test]
    fn every_worker_gets_its_share_of_actions_and_rate() {
        let a = args(&["--connections", "7", "--rate", "5000", "--duration", "20", "--procs", "3"]);
        let loads: Vec<ActionLoad> = split(7, 3).iter().map(|r| a.load(r.start, r.end)).collect();
        assert_eq!(loads.iter().map(|l| l.count).sum::<u64>(), 100_000);
        assert!((loads.iter().map(|l| l.rate).sum::<f64>() - 5000.0).abs() < 1e-9);
        // Same rate per connection everywhere: 5000 / 7.
        for (load, range) in loads.iter().zip(split(7, 3)) {
            let per_conn = load.rate / (range.end - range.start) as f64;
            assert!((per_conn - 5000.0 / 7.0).abs() < 1e-9);
        }
    }

    #[test]
    fn bad_settings_are_refused() {
        for bad in [
            &["--connections", "0"][..],
            &["--action", ""],
            &["--action", "$join"],
            &["--rate=-1"],
            &["--duration", "NaN"],
            &["--timeout", "0"],
        ] {
            assert!(args(bad).check().is_err(), "{bad:?}");
        }
        assert!(args(&["--action", &"a".repeat(129)]).check().is_err());
        args(&["--action", &"é".repeat(128)]).check().unwrap();
        args(&["--action", "$ping"]).check().unwrap();
    }
}
