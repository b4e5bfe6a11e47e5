//! `idle`: open N authenticated connections and hold them. Measures how
//! fast an edge takes connections and what one idle connection costs it.

use std::time::Duration;

use anyhow::Result;
use clap::Args as ClapArgs;
use serde::Serialize;

use super::{Common, CpuProbe, MemoryProbe, settings};
use crate::population::Population;
use crate::report::{Connections, Report};

#[derive(Debug, ClapArgs, Serialize)]
pub struct Args {
    /// Connections to open, each its own user unless --users says otherwise
    #[arg(long, value_name = "N")]
    pub connections: u64,
    /// Users the connections share: connection i is user i ÷ ⌈N ÷ U⌉, so
    /// every user has ⌈N ÷ U⌉ connections (U users when U divides N; the
    /// last user has fewer otherwise). What a connection costs when its
    /// user's subscription is already held: tabs of one user, or one user
    /// everywhere
    #[arg(long, value_name = "U", conflicts_with = "groups", value_parser = clap::value_parser!(u64).range(1..))]
    pub users: Option<u64>,
    /// Seconds to hold the connections before the servers' memory is
    /// sampled again (lets the servers settle, and spans edge pings)
    #[arg(long, value_name = "SECS", default_value_t = 10)]
    pub hold: u64,
    /// A group every connection joins (on a Pusher server: a channel it
    /// subscribes to); repeat for several
    #[arg(long = "group", value_name = "GROUP")]
    pub groups: Vec<String>,
    #[command(flatten)]
    #[serde(flatten)]
    pub common: Common,
}

pub async fn run(args: &Args) -> Result<Report> {
    let common = &args.common;
    let probe = MemoryProbe::start(&common.server_pids)?;
    let population = match args.users {
        Some(users) => {
            let tabs = args.connections.div_ceil(users).max(1);
            Population::Tabs { users: args.connections.div_ceil(tabs), tabs }
        }
        None => Population::Distinct { groups: args.groups.clone() },
    };
    let cpu = CpuProbe::start(common, None)?;
    let (fleet, connected) = common.connect(args.connections, population).await?;
    let (cpu, tool_cpu) = cpu.finish(&fleet)?;
    eprintln!("holding them for {} s", args.hold);
    tokio::time::sleep(Duration::from_secs(args.hold)).await;
    let memory = probe.finish(&connected)?;
    let held = fleet.finish(0).await?;
    Ok(Report {
        scenario: "idle",
        settings: settings(args),
        connections: Connections::new(args.connections, &connected, held.closed_early),
        memory,
        cpu,
        tool_cpu,
        delivery: None,
        actions: None,
    })
}
