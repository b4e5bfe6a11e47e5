//! The reconnect storm: `clients` Herald clients, each its own user, on
//! one edge with a history of users; that edge is SIGKILLed, every user is
//! sent `missed` messages, and every client resumes at once on a second
//! edge from the position it last had. Measured: the time from the first
//! reconnect until the last client is told `$recovered`, each client's
//! time, whether each got exactly its missed messages in order with
//! `recovered: true`, and nats-server's (and the edge's) CPU meanwhile.
//!
//! Each client is its own user, so each resume is a read of its own
//! subject: the worst case for NATS (clients sharing a group are served
//! by one read per edge).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use futures_util::{StreamExt, stream};
use hdrhistogram::Histogram;
use herald_proto::subject::Subjects;
use serde::Serialize;
use serde_json::Value;
use tokio_tungstenite::tungstenite::Message;

use super::cpu::{Cpu, Sampler};
use crate::conn::{Dialer, Ws};
use crate::hist::Quantiles;
use crate::protocol::Protocol;
use crate::suite::servers::{self, Contender, Environment};
use crate::token::Minter;

/// The stream of the storm's edges, apart from the broadcast steps'.
const STREAM: &str = "HERALD_STORM";
/// The broadcast steps' stream (the edges' default).
const BROADCAST_STREAM: &str = "HERALD_HISTORY";
/// Source addresses the clients are spread over.
const SOURCE_IPS: u8 = 16;
/// Connections opened at once before the storm.
const CONNECT_CONCURRENCY: usize = 64;
/// Reconnects in flight at once in the storm: half the edge's listen
/// backlog (1024), so no SYN is dropped (each drop would cost its client a
/// one-second retransmit, measuring TCP instead of recovery).
const STORM_CONCURRENCY: usize = 512;
/// How long one client may take to be recovered.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(120);
/// How long the stream may take to store every missed message.
const STORE_TIMEOUT: Duration = Duration::from_secs(120);
/// Publishes between flushes, each followed by a wait until the stream
/// has stored them.
const PUBLISH_BATCH: u64 = 2_000;

/// What a storm measured.
#[derive(Debug, Serialize)]
pub struct Storm {
    pub clients: u64,
    pub missed: u64,
    /// Messages published while the clients were away, and stored.
    pub published: u64,
    pub stored: u64,
    pub publish_seconds: f64,
    /// Clients that reconnected and were told `$recovered`.
    pub answered: u64,
    /// ... with `recovered: true` and exactly their missed messages, in order.
    pub recovered: u64,
    /// ... with `recovered: false`, or the wrong messages.
    pub not_recovered: u64,
    /// Of those: told `recovered: false` (beyond the history's depth or
    /// age, or not answered by the edge's deadline).
    pub told_not_recovered: u64,
    /// Of those: told `recovered: true` with other messages than their
    /// missed ones in order (a loss or a duplicate: a defect).
    pub wrong_messages: u64,
    /// Clients that could not reconnect or were not answered in time, by why.
    pub failed: BTreeMap<String, u64>,
    /// From the first reconnect to the last `$recovered`.
    pub seconds: f64,
    /// Each client's time from the storm's start to its `$recovered`, ms.
    pub client_ms: Quantiles,
    pub nats_cpu: Cpu,
    pub edge_cpu: Cpu,
}

impl Storm {
    pub fn markdown(&self) -> String {
        format!(
            "\n| clients | missed each | stored | all recovered in | per client p50 / p99 / max | recovered: true | not (told false / wrong messages) | failed | nats-server CPU (mean / peak, % of a core) | CPU s | edge CPU mean |\n\
             |---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n\
             | {} | {} | {} | {:.2} s | {} / {} / {} ms | {} | {} ({} / {}) | {} | {:.0}% / {:.0}% | {:.2} | {:.0}% |\n",
            self.clients,
            self.missed,
            self.stored,
            self.seconds,
            self.client_ms.p50,
            self.client_ms.p99,
            self.client_ms.max,
            self.recovered,
            self.not_recovered,
            self.told_not_recovered,
            self.wrong_messages,
            self.failed.values().sum::<u64>(),
            self.nats_cpu.mean_percent,
            self.nats_cpu.peak_percent,
            self.nats_cpu.seconds,
            self.edge_cpu.mean_percent,
        )
    }
}

/// How one client's resume went.
enum Resumed {
    /// Told `$recovered`, this long after the storm began; whether it was
    /// recovered with exactly its missed messages.
    Answered {
        after: Duration,
        complete: bool,
        /// What the edge said (`recovered`).
        told: bool,
        _ws: Box<Ws>,
    },
    Failed(String),
}

pub async fn run(env: &Environment, nats_pid: u32, clients: u64, missed: u64) -> Result<Storm> {
    eprintln!("\n=== reconnect storm: {clients} clients, {missed} missed each");
    // The broadcast steps' stream stores users' subjects too, and JetStream
    // refuses a second stream over the same subjects.
    let nats = async_nats::connect(&env.nats_url).await.context("cannot connect to NATS")?;
    let _ = nats.request(format!("$JS.API.STREAM.DELETE.{BROADCAST_STREAM}"), bytes::Bytes::new()).await;
    let depth = (2 * missed).max(100).to_string();
    let settings = [("HERALD_HISTORY", "users"), ("HERALD_HISTORY_DEPTH", &depth), ("HERALD_HISTORY_STREAM", STREAM)];
    let (first, first_addr) = servers::herald_edge_with(env, &settings).await?;
    let (second, second_addr) = servers::herald_edge_with(env, &settings).await?;
    let urls = [Contender::Herald.url(first_addr), Contender::Herald.url(second_addr)];
    let dialer = Dialer::new(&urls, Protocol::Herald, SOURCE_IPS, &env.token_secret).await?;
    let minter = Minter::new(&env.token_secret);
    let tokens: Vec<String> = (0..clients).map(|i| minter.mint(&user(i), &[])).collect::<Result<_>>()?;

    // Everyone on the first edge, with a position on their user.
    let positions: Vec<(Ws, String)> = stream::iter(0..clients)
        .map(|i| {
            let (dialer, token) = (&dialer, &tokens[i as usize]);
            async move {
                let mut ws = dialer.open(i, 0, token, &[]).await.map_err(|e| anyhow::anyhow!(e.kind()))?;
                let (recovered, _) = until_recovered(&mut ws).await?;
                let at = recovered["offsets"]["user"].as_str().context("no position on the user")?.to_owned();
                Ok::<_, anyhow::Error>((ws, at))
            }
        })
        .buffered(CONNECT_CONCURRENCY)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<_>>()
        .context("a client could not connect to the first edge")?;
    eprintln!("{clients} clients on the first edge; SIGKILL it");
    first.kill().await;
    let positions: Vec<String> = positions.into_iter().map(|(_, at)| at).collect();

    // What they miss.
    let subjects = Subjects::default();
    let publishing = Instant::now();
    let mut published = 0;
    for n in 0..missed {
        let frame = bytes::Bytes::from(format!(r#"{{"action":"n","details":{n}}}"#));
        for i in 0..clients {
            nats.publish(subjects.user(&user(i)), frame.clone()).await?;
            published += 1;
            if published % PUBLISH_BATCH == 0 {
                // No faster than the stream stores: core publishes beyond
                // its pace would be dropped.
                nats.flush().await?;
                wait_stored(&nats, published).await?;
            }
        }
    }
    nats.flush().await?;
    let stored = wait_stored(&nats, published).await?;
    let publish_seconds = publishing.elapsed().as_secs_f64();
    eprintln!("{published} published, {stored} stored in {publish_seconds:.1} s; every client resumes at once");

    // The storm.
    let nats_cpu = Sampler::start(nats_pid);
    let edge_cpu = Sampler::start(second.pid);
    let started = Instant::now();
    let outcomes: Vec<Resumed> = stream::iter(0..clients)
        .map(|i| {
            let (dialer, token, at) = (&dialer, &tokens[i as usize], &positions[i as usize]);
            resume(dialer, i, token, at, missed, started)
        })
        .buffer_unordered(STORM_CONCURRENCY)
        .collect()
        .await;
    let seconds = started.elapsed().as_secs_f64();
    let (nats_cpu, edge_cpu) = (nats_cpu.finish().await, edge_cpu.finish().await);
    second.stop().await;

    let mut client_ms = Histogram::<u64>::new_with_bounds(1, 3_600_000, 3).expect("valid bounds");
    let (mut answered, mut recovered, mut told_not_recovered, mut failed) = (0, 0, 0, BTreeMap::new());
    let mut last = Duration::ZERO;
    for outcome in &outcomes {
        match outcome {
            Resumed::Answered { after, complete, told, .. } => {
                answered += 1;
                recovered += u64::from(*complete);
                told_not_recovered += u64::from(!*told);
                last = last.max(*after);
                client_ms.saturating_record(after.as_millis() as u64);
            }
            Resumed::Failed(why) => *failed.entry(why.clone()).or_insert(0) += 1,
        }
    }
    drop(outcomes);
    Ok(Storm {
        clients,
        missed,
        published,
        stored,
        publish_seconds,
        answered,
        recovered,
        not_recovered: answered - recovered,
        told_not_recovered,
        wrong_messages: answered - recovered - told_not_recovered,
        failed,
        seconds: if answered > 0 { last.as_secs_f64() } else { seconds },
        client_ms: Quantiles::from(&client_ms),
        nats_cpu,
        edge_cpu,
    })
}

fn user(i: u64) -> String {
    format!("storm-{i}")
}

/// Client `i` resumes on the second edge from `at`.
async fn resume(dialer: &Dialer, i: u64, token: &str, at: &str, missed: u64, started: Instant) -> Resumed {
    let resume = serde_json::json!({ "user": at }).to_string();
    let query: String = form_urlencoded::Serializer::new(String::new()).append_pair("resume", &resume).finish();
    let mut ws = match dialer.open_with_query(i, 1, token, &[], &query).await {
        Ok(ws) => ws,
        Err(e) => return Resumed::Failed(e.kind()),
    };
    match tokio::time::timeout(CLIENT_TIMEOUT, until_recovered(&mut ws)).await {
        Ok(Ok((details, numbers))) => {
            let in_order = numbers.iter().copied().eq(0..missed);
            let told = details["recovered"] == true;
            if told && !in_order {
                eprintln!("client {i}: recovered: true with {} numbers: {numbers:?}", numbers.len());
            }
            Resumed::Answered { after: started.elapsed(), complete: told && in_order, told, _ws: Box::new(ws) }
        }
        Ok(Err(e)) => Resumed::Failed(format!("{e:#}")),
        Err(_) => Resumed::Failed(format!("not answered within {} s", CLIENT_TIMEOUT.as_secs())),
    }
}

/// Reads frames until `$recovered`: its details, and the numbers that came
/// before it.
async fn until_recovered(ws: &mut Ws) -> Result<(Value, Vec<u64>)> {
    let mut numbers = Vec::new();
    while let Some(message) = ws.next().await {
        let Message::Text(text) = message.context("the connection failed")? else { continue };
        let frame: Value = serde_json::from_str(&text).context("a frame that is not JSON")?;
        match frame["action"].as_str() {
            Some("$recovered") => return Ok((frame["details"].clone(), numbers)),
            Some("n") => numbers.push(frame["details"].as_u64().context("a number")?),
            _ => {}
        }
    }
    bail!("closed before $recovered")
}

/// Waits until the storm's stream holds `expected` messages; what it holds.
async fn wait_stored(nats: &async_nats::Client, expected: u64) -> Result<u64> {
    let deadline = Instant::now() + STORE_TIMEOUT;
    loop {
        let info = nats.request(format!("$JS.API.STREAM.INFO.{STREAM}"), bytes::Bytes::new()).await?;
        let info: Value = serde_json::from_slice(&info.payload).context("stream info is not JSON")?;
        let stored = info["state"]["messages"].as_u64().context("no message count in the stream info")?;
        if stored >= expected || Instant::now() > deadline {
            return Ok(stored);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
