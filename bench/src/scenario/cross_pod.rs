//! `cross-pod`: users with several tabs each, the tabs spread over several
//! edges, and messages to single users (`herald.user.<U>`). Checks the
//! contract that a user's message reaches every connection of that user on
//! every edge exactly once and no one else, and measures its latency.

use anyhow::{Context, Result, bail};
use clap::Args as ClapArgs;
use herald_proto::subject::Subjects;
use serde::Serialize;

use super::delivery::{self, Destination, Publishing};
use super::{Common, settings};
use crate::population::Population;
use crate::report::Report;

#[derive(Debug, ClapArgs, Serialize)]
pub struct Args {
    /// Users; message n goes to user n mod U
    #[arg(long, value_name = "U")]
    pub users: u64,
    /// Connections per user, spread round-robin over the --url edges
    #[arg(long, value_name = "T", default_value_t = 2)]
    pub tabs: u64,
    #[command(flatten)]
    #[serde(flatten)]
    pub publishing: Publishing,
    #[command(flatten)]
    #[serde(flatten)]
    pub common: Common,
}

pub async fn run(args: &Args) -> Result<Report> {
    args.common.require_herald("cross-pod")?;
    if args.users == 0 || args.tabs == 0 {
        bail!("--users and --tabs must be at least 1");
    }
    if args.common.urls.len() < 2 {
        eprintln!("warning: one --url only: every tab is on the same edge, nothing crosses pods");
    }
    let connections = args.users.checked_mul(args.tabs).context("--users × --tabs is too large")?;
    let population = Population::Tabs { users: args.users, tabs: args.tabs };
    let subjects = Subjects::new(&args.common.subject_prefix).context("bad --subject-prefix")?;
    // The subject of every user, named after its first tab (connection u × tabs).
    let by_user: Vec<String> = (0..args.users).map(|user| subjects.user(&population.user(user * args.tabs))).collect();
    let users = args.users;
    let subject = Box::new(move |seq: u64| by_user[(seq % users) as usize].clone());
    let destination = Destination { subject, topic: None, every_receiver: false };
    delivery::run("cross-pod", settings(args), &args.common, &args.publishing, connections, population, destination)
        .await
}
