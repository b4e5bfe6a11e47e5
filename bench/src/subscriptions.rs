//! `subscriptions`: what one NATS subscription costs a process, for each
//! way the edge could hold one per user (ADR 0006).
//!
//! Each way runs in a fresh child process (no heap left over from another):
//! it makes `--count` subscriptions to distinct subjects, waits until the
//! server has them all, and reports its growth in resident memory divided
//! by the count.

use std::collections::HashSet;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::{Args as ClapArgs, ValueEnum};
use herald_nats_sub::{Config, Delivery, Subscriber};

use crate::proc_mem::resident_bytes;

/// One way of holding a subscription per user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Way {
    /// async-nats, one `Subscriber` per subject (what the edge does today,
    /// without its pump task).
    AsyncNats,
    /// async-nats as the edge uses it today: a `Subscriber` and a task
    /// reading it per subject.
    AsyncNatsPumped,
    /// The lean subscriber: a map entry and a handler per subject.
    Lean,
    /// One async-nats wildcard for every user, filtered locally by a set of
    /// the names held (receives every user's messages: not interest-based).
    Wildcard,
    /// A tokio channel per subject holding `Box<async_nats::Message>`: what
    /// a subscription would cost if async-nats boxed its messages upstream.
    BoxedChannel,
}

#[derive(Debug, ClapArgs)]
pub struct Args {
    /// NATS server to subscribe on
    #[arg(long, value_name = "URL", default_value = "nats://127.0.0.1:4222")]
    pub nats: String,
    /// Subscriptions to make
    #[arg(long, default_value_t = 10_000)]
    pub count: usize,
    /// Only this way, in this process (the parent runs each in a child)
    #[arg(long, value_enum)]
    pub way: Option<Way>,
}

/// Runs one way here, or every way in a child each, and prints the table.
pub async fn run(args: &Args) -> Result<()> {
    if let Some(way) = args.way {
        let per_subscription = measure(way, &args.nats, args.count).await?;
        println!("{per_subscription}");
        return Ok(());
    }
    println!("| way | bytes per subscription ({} subscriptions) |\n| --- | ---: |", args.count);
    for way in Way::value_variants() {
        let name = way.to_possible_value().context("every way has a name")?.get_name().to_owned();
        let output = Command::new(std::env::current_exe()?)
            .args(["subscriptions", "--nats", &args.nats, "--count", &args.count.to_string(), "--way", &name])
            .output()
            .context("cannot run a child")?;
        if !output.status.success() {
            bail!("{name}: {}", String::from_utf8_lossy(&output.stderr));
        }
        println!("| {name} | {} |", String::from_utf8_lossy(&output.stdout).trim());
    }
    Ok(())
}

/// Bytes of resident memory per subscription made `way`.
async fn measure(way: Way, url: &str, count: usize) -> Result<u64> {
    let subject = |n: usize| format!("herald.user.bench-user-{n}");
    // Connections and their buffers come before the first sample.
    let nats = async_nats::connect(url).await.context("cannot connect to NATS")?;
    let lean: Subscriber = Subscriber::connect(Config::new(vec![url.to_owned()], "herald-bench"))?;
    tokio::time::timeout(Duration::from_secs(10), lean.sync()).await.context("lean subscriber did not connect")?;
    settle().await;
    let before = resident_bytes(std::process::id())?;
    let mut held: Vec<Box<dyn Send>> = Vec::with_capacity(count);
    match way {
        Way::AsyncNats | Way::AsyncNatsPumped => {
            for n in 0..count {
                let mut subscriber = nats.subscribe(subject(n)).await?;
                if way == Way::AsyncNatsPumped {
                    held.push(Box::new(tokio::spawn(async move {
                        use futures_util::StreamExt;
                        while subscriber.next().await.is_some() {}
                    })));
                } else {
                    held.push(Box::new(subscriber));
                }
            }
            nats.flush().await?;
        }
        Way::Lean => {
            for n in 0..count {
                // A handler of its own per subscription, as each topic has.
                let handler = Arc::new(move |delivery: Delivery<'_>| drop(delivery.payload));
                held.push(Box::new(lean.subscribe(&subject(n), handler)?));
            }
            tokio::time::timeout(Duration::from_secs(30), lean.sync()).await.context("lean subscriptions")?;
        }
        Way::Wildcard => {
            held.push(Box::new(nats.subscribe("herald.user.*").await?));
            let names: HashSet<Box<str>> = (0..count).map(|n| subject(n).into_boxed_str()).collect();
            held.push(Box::new(names));
            nats.flush().await?;
        }
        Way::BoxedChannel => {
            for _ in 0..count {
                // async-nats's default subscription capacity.
                let (sender, receiver) = tokio::sync::mpsc::channel::<Box<async_nats::Message>>(65_536);
                held.push(Box::new((sender, receiver)));
            }
        }
    }
    settle().await;
    let after = resident_bytes(std::process::id())?;
    drop(held);
    Ok(after.saturating_sub(before) / count as u64)
}

/// Lets background tasks finish what they started.
async fn settle() {
    tokio::time::sleep(Duration::from_millis(500)).await;
}
