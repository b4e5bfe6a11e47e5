//! `broadcast`: N receivers and one publisher at a fixed rate, to everyone
//! (`herald.all`) or to one group every receiver is in. Measures fan-out:
//! deliveries per second, loss and publish-to-delivery latency.

use anyhow::{Context, Result};
use clap::{Args as ClapArgs, ValueEnum};
use herald_proto::subject::Subjects;
use serde::Serialize;

use super::delivery::{self, Destination, Publishing};
use super::{Common, settings};
use crate::population::Population;
use crate::report::Report;

/// The group every receiver joins for `--target group`: on a Pusher server,
/// a public channel.
pub const GROUP: &str = "bench";
/// The group every receiver joins for `--target private`: on a Pusher
/// server, a private channel (each subscription signed).
const PRIVATE_GROUP: &str = "private-bench";

/// Where the publisher sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Target {
    /// `<prefix>.all`: every connection of every edge.
    All,
    /// `<prefix>.group.bench`: every receiver joins the group through its
    /// token's `groups` claim (on a Pusher server: subscribes to the public
    /// channel `bench`).
    Group,
    /// `<prefix>.group.private-bench`: the same with a group that is a
    /// private channel on a Pusher server, each subscription signed.
    Private,
}

#[derive(Debug, ClapArgs, Serialize)]
pub struct Args {
    /// Receiving connections, each its own user
    #[arg(long, value_name = "N")]
    pub receivers: u64,
    /// Where the messages go
    #[arg(long, value_enum, default_value_t = Target::All)]
    pub target: Target,
    #[command(flatten)]
    #[serde(flatten)]
    pub publishing: Publishing,
    #[command(flatten)]
    #[serde(flatten)]
    pub common: Common,
}

pub async fn run(args: &Args) -> Result<Report> {
    let subjects = Subjects::new(&args.common.subject_prefix).context("bad --subject-prefix")?;
    let (subject, topic, groups) = match args.target {
        Target::All => (subjects.all(), "all".to_owned(), Vec::new()),
        Target::Group | Target::Private => {
            let group = if args.target == Target::Group { GROUP } else { PRIVATE_GROUP };
            (subjects.group(group), format!("group.{group}"), vec![group.to_owned()])
        }
    };
    let population = Population::Distinct { groups };
    let destination =
        Destination { subject: Box::new(move |_| subject.clone()), topic: Some(topic), every_receiver: true };
    delivery::run("broadcast", settings(args), &args.common, &args.publishing, args.receivers, population, destination)
        .await
}
