//! `herald-bench soak`: an edge, a router, the example handlers and a real
//! nats-server under steady churn for a long time, sampling what would
//! grow if something leaked, and checking every answer and broadcast on
//! the way so that functional drift shows too.
//!
//! - [`churn`]: the connections: open, requests, close, again.
//! - [`streams`]: the numbered broadcasts and their bookkeeping.
//! - [`slow`]: a client that stops reading, now and then.
//! - [`sample`]: memory, open files, tasks and NATS subscriptions.
//! - [`trend`]: whether a figure trends upward once warmed up.
//! - [`stats`]: what the clients counted; [`plot`]: the PNG.
//!
//! The run fails when a judged figure trends upward, when any client check
//! failed, when a process exited, or when no slow consumer was closed
//! although one was due.

mod churn;
mod plot;
pub(crate) mod sample;
mod slow;
mod stats;
mod streams;
mod trend;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use clap::Args as ClapArgs;
use serde::Serialize;
use tokio::sync::watch;
use tokio::task::JoinSet;

use self::churn::Context;
use self::sample::{Http, Kind, Sample, Sampler, Watched};
use self::stats::{Counts, Stats};
use self::streams::Numbers;
use self::trend::Trend;
use crate::conn::Dialer;
use crate::protocol::Protocol;
use crate::publish::unix_nanos;
use crate::suite::servers::{self, Contender, Environment, Server};
use crate::token::Minter;

/// Subjects of the example handlers, as the routes name them.
const ECHO_SUBJECT: &str = "examples.echo";
const CHAT_SUBJECT: &str = "examples.chat";
/// How long the slots take to start, one after another: the first
/// connections do not all open at once, nor all close at once later.
const RAMP_UP: Duration = Duration::from_secs(8);
/// How long the connections may take to finish once the run is over.
const WIND_DOWN: Duration = Duration::from_secs(40);
/// Loopback source addresses the connections come from.
const SOURCE_IPS: u8 = 4;

#[derive(Debug, Clone, ClapArgs, Serialize)]
pub struct Args {
    /// Seconds of churn
    #[arg(long, value_name = "SECS", default_value_t = 3600.0)]
    pub duration: f64,
    /// Seconds between samples
    #[arg(long, value_name = "SECS", default_value_t = 60.0)]
    pub interval: f64,
    /// Connections open at any time, each replaced by a new one when it closes
    #[arg(long, value_name = "N", default_value_t = 100)]
    pub connections: u64,
    /// Seconds between slow consumers (0: none)
    #[arg(long, value_name = "SECS", default_value_t = 300.0)]
    pub slow_every: f64,
    /// Largest growth of a figure over the judged window (the second half),
    /// as a share of its mean; figures also have a floor in their own unit
    #[arg(long, value_name = "SHARE", default_value_t = 0.1)]
    pub max_growth: f64,
    /// Where soak.json, summary.md and soak.png are written
    #[arg(long, value_name = "DIR", default_value = "target/soak")]
    pub out: PathBuf,
    /// The herald binary; herald-examples must be beside it
    #[arg(long, value_name = "PATH", default_value = "target/release/herald")]
    pub herald: PathBuf,
}

impl Args {
    fn check(&self) -> Result<()> {
        if !(self.duration.is_finite() && self.duration > 0.0) {
            bail!("--duration must be a number of seconds above 0");
        }
        if !(self.interval.is_finite() && self.interval > 0.0 && self.interval * 6.0 <= self.duration) {
            bail!("--interval must be above 0 and leave at least 6 samples in --duration");
        }
        if self.connections == 0 {
            bail!("--connections must be at least 1");
        }
        if !(self.slow_every.is_finite() && self.slow_every >= 0.0) {
            bail!("--slow-every must be a number of seconds of at least 0");
        }
        for program in [self.herald.clone(), self.herald.with_file_name("herald-examples")] {
            if !program.is_file() {
                bail!(
                    "{} not found: build it first (cargo build --release -p herald -p herald-examples)",
                    program.display()
                );
            }
        }
        Ok(())
    }

    /// Slow consumers that must have been closed by the end: those started
    /// (every `slow_every`, from `slow_every` on) long enough before it.
    fn slow_consumers_due(&self) -> u64 {
        let last_start = self.duration - slow::TAKES_AT_MOST.as_secs_f64();
        if self.slow_every == 0.0 || last_start < self.slow_every { 0 } else { (last_start / self.slow_every) as u64 }
    }
}

/// Everything a soak found, as written to `soak.json`.
#[derive(Debug, Serialize)]
struct Results {
    settings: Args,
    started_unix: u64,
    seconds: f64,
    samples: Vec<Sample>,
    /// The verdict on every judged figure, by `<process> <figure>`.
    trends: BTreeMap<String, Trend>,
    counts: Counts,
    /// Processes that exited during the run.
    exited: Vec<String>,
    /// Sampling times at which a figure could not be read (a `/metrics`
    /// that did not answer in time on a loaded machine, say): skipped, and
    /// a failure when more than a tenth of the run's samples are missing.
    missed_samples: Vec<String>,
    /// Why the run failed; empty when it passed.
    failures: Vec<String>,
}

/// The processes under test.
struct Servers {
    nats: Server,
    monitor: String,
    handlers: Server,
    router: (Server, std::net::SocketAddr),
    edge: (Server, std::net::SocketAddr),
    /// The routes file, removed at the end.
    routes: PathBuf,
}

impl Servers {
    async fn start(env: &Environment, nats: (Server, String, String), out: &Path) -> Result<Servers> {
        let (nats, _, monitor) = nats;
        let handlers = servers::examples(env, &["echo", "chat"], ECHO_SUBJECT).await?;
        let routes = out.join("routes.toml");
        let table = format!(
            "[[routes]]\naction = \"echo\"\nnats = \"{ECHO_SUBJECT}\"\n\n\
             [[routes]]\naction = \"chat/*\"\nnats = \"{CHAT_SUBJECT}\"\n\n\
             [[routes]]\naction = \"$disconnect\"\nnats = \"{CHAT_SUBJECT}\"\n"
        );
        std::fs::write(&routes, table).with_context(|| format!("cannot write {}", routes.display()))?;
        let router = servers::router(env, &routes).await?;
        let edge = servers::gateway(Contender::Herald, env).await?;
        Ok(Servers { nats, monitor, handlers, router, edge, routes })
    }

    fn watched(&self) -> Vec<Watched> {
        let (edge, router) = (self.edge.1, self.router.1);
        vec![
            Watched {
                source: "edge",
                pid: self.edge.0.pid,
                metrics: Some((
                    format!("http://{edge}/metrics"),
                    vec![
                        ("herald_edge_tasks", Kind::Tasks),
                        ("herald_edge_sessions{protocol=\"herald\"}", Kind::Sessions),
                    ],
                )),
            },
            Watched {
                source: "router",
                pid: self.router.0.pid,
                metrics: Some((format!("http://{router}/metrics"), vec![("herald_router_tasks", Kind::Tasks)])),
            },
            Watched { source: "handlers", pid: self.handlers.pid, metrics: None },
        ]
    }

    /// Processes that have exited.
    fn exited(&mut self) -> Vec<String> {
        [&mut self.edge.0, &mut self.router.0, &mut self.handlers, &mut self.nats]
            .into_iter()
            .filter_map(Server::exited)
            .collect()
    }

    async fn stop(self) {
        self.edge.0.stop().await;
        self.router.0.stop().await;
        self.handlers.stop().await;
        self.nats.stop().await;
        let _ = std::fs::remove_file(&self.routes);
    }
}

pub async fn run(args: &Args) -> Result<()> {
    args.check()?;
    std::fs::create_dir_all(&args.out).with_context(|| format!("cannot create {}", args.out.display()))?;
    let nats = servers::nats_monitored().await?;
    // The soak runs Herald only: no peers, no Pusher servers.
    let env = Environment::herald_only(&args.herald, nats.1.clone(), PathBuf::new(), "soak");
    let mut servers = Servers::start(&env, nats, &args.out).await?;
    let outcome = soak(args, &env, &mut servers).await;
    servers.stop().await;
    let results = outcome?;

    let json = args.out.join("soak.json");
    std::fs::write(&json, serde_json::to_vec_pretty(&results)?)
        .with_context(|| format!("cannot write {}", json.display()))?;
    let title = format!("Soak: {} connections of churn for {}", args.connections, minutes(results.seconds));
    plot::draw(&results.samples, results.seconds, &title, &args.out.join("soak.png"))?;
    let summary = summary(&results);
    std::fs::write(args.out.join("summary.md"), &summary).context("cannot write summary.md")?;
    print!("{summary}");
    eprintln!("results written to {}", args.out.display());
    if !results.failures.is_empty() {
        bail!("the soak failed: {}", results.failures.join("; "));
    }
    Ok(())
}

/// Runs the churn and samples until the end; the results, judged.
async fn soak(args: &Args, env: &Environment, servers: &mut Servers) -> Result<Results> {
    let started_unix = unix_nanos() / 1_000_000_000;
    let url = Contender::Herald.url(servers.edge.1);
    let users = (args.connections as usize / 2).max(1);
    let (stop_tx, stop) = watch::channel(false);
    let ctx = Arc::new(Context {
        dialer: Dialer::new(&[url], Protocol::Herald, SOURCE_IPS, &env.token_secret).await?,
        minter: Minter::new(&env.token_secret),
        nats: async_nats::connect(&env.nats_url).await.context("cannot connect to NATS")?,
        numbers: Arc::new(Numbers::new(users)),
        stats: Arc::new(Stats::default()),
        users,
        stop,
    });
    let http = Http::new()?;
    let sampler = Sampler::new(http.clone(), servers.watched(), format!("{}/subsz", servers.monitor));

    let started = Instant::now();
    let mut tasks = JoinSet::new();
    tasks.spawn(streams::publish(ctx.nats.clone(), ctx.numbers.clone(), users, ctx.stats.clone(), ctx.stop.clone()));
    if args.slow_every > 0.0 {
        tasks.spawn(slow::every(ctx.clone(), http, servers.edge.1, Duration::from_secs_f64(args.slow_every)));
    }
    for slot in 0..args.connections {
        let ctx = ctx.clone();
        let delay = RAMP_UP.mul_f64(slot as f64 / args.connections as f64);
        tasks.spawn(async move {
            tokio::time::sleep(delay).await;
            churn::slot(ctx, slot).await;
        });
    }

    let mut samples = Vec::new();
    let mut missed_samples = Vec::new();
    let mut exited = Vec::new();
    let interval = Duration::from_secs_f64(args.interval);
    let end = started + Duration::from_secs_f64(args.duration);
    let mut next = started;
    while next <= end {
        tokio::time::sleep_until(next.into()).await;
        exited = servers.exited();
        if !exited.is_empty() {
            break;
        }
        let t = started.elapsed().as_secs_f64();
        match sampler.sample(t).await {
            Ok(sample) => {
                eprintln!("{}", progress(&sample, &ctx.stats.snapshot()));
                samples.push(sample);
            }
            Err(e) => {
                eprintln!("[{}] no sample: {e:#}", minutes(t));
                missed_samples.push(format!("{}: {e:#}", minutes(t)));
            }
        }
        next += interval;
    }
    let seconds = started.elapsed().as_secs_f64();

    let _ = stop_tx.send(true);
    let wound_down = tokio::time::timeout(WIND_DOWN, async { while tasks.join_next().await.is_some() {} }).await;
    let counts = ctx.stats.snapshot();
    let trends = judge(&samples, seconds, args.max_growth);

    let mut failures = exited.clone();
    if wound_down.is_err() {
        failures.push(format!("connections still open {} s after the end", WIND_DOWN.as_secs()));
    }
    for (figure, trend) in &trends {
        if trend.upward {
            failures.push(format!(
                "{figure} trends upward: {:+.1} over the judged window (at most {:.1})",
                trend.growth, trend.allowed
            ));
        }
    }
    if missed_samples.len() * 10 > samples.len() + missed_samples.len() {
        failures.push(format!("{} samples could not be taken", missed_samples.len()));
    }
    if counts.failures > 0 {
        failures.push(format!("{} client checks failed", counts.failures));
    }
    if counts.slow_consumers < args.slow_consumers_due() {
        failures.push(format!("{} of {} slow consumers closed", counts.slow_consumers, args.slow_consumers_due()));
    }
    Ok(Results {
        settings: args.clone(),
        started_unix,
        seconds,
        samples,
        trends,
        counts,
        exited,
        missed_samples,
        failures,
    })
}

/// Judges every figure that has a floor, by `<process> <figure>`.
fn judge(samples: &[Sample], seconds: f64, max_growth: f64) -> BTreeMap<String, Trend> {
    let mut series: BTreeMap<(&str, Kind), Vec<(f64, f64)>> = BTreeMap::new();
    for sample in samples {
        for reading in &sample.readings {
            series.entry((reading.source, reading.kind)).or_default().push((sample.t, reading.value));
        }
    }
    series
        .into_iter()
        .filter_map(|((source, kind), points)| {
            let trend = trend::judge(&points, seconds, max_growth, kind.floor()?)?;
            Some((format!("{source} {}", kind.label()), trend))
        })
        .collect()
}

/// One line of progress per sample.
fn progress(sample: &Sample, counts: &Counts) -> String {
    let mut line = format!("[{}]", minutes(sample.t));
    for reading in &sample.readings {
        let _ = write!(line, " {} {}={:.1}", reading.source, short(reading.kind), reading.value);
    }
    let connections: u64 = counts.connections.values().sum();
    let _ = write!(
        line,
        " | connections {connections}, requests {}, broadcasts {}, slow consumers {}, failures {}",
        counts.requests, counts.broadcasts_received, counts.slow_consumers, counts.failures
    );
    line
}

fn short(kind: Kind) -> &'static str {
    match kind {
        Kind::RssMib => "rss_mib",
        Kind::OpenFiles => "fds",
        Kind::Tasks => "tasks",
        Kind::Subscriptions => "subs",
        Kind::Sessions => "sessions",
    }
}

fn minutes(seconds: f64) -> String {
    format!("{}:{:02}", (seconds / 60.0).floor() as u64, (seconds % 60.0).floor() as u64)
}

/// The Markdown summary: the verdicts and the counts.
fn summary(results: &Results) -> String {
    let mut out = String::new();
    let verdict = if results.failures.is_empty() { "passed" } else { "FAILED" };
    let _ =
        writeln!(out, "# Soak {verdict}: {} of churn, {} samples\n", minutes(results.seconds), results.samples.len());
    let _ =
        writeln!(out, "| figure | mean (second half) | slope per hour | growth over the window | allowed | trend |");
    let _ = writeln!(out, "| --- | ---: | ---: | ---: | ---: | --- |");
    for (figure, t) in &results.trends {
        let verdict = if t.upward { "**upward**" } else { "flat" };
        let _ = writeln!(
            out,
            "| {figure} | {:.1} | {:+.2} | {:+.2} | {:.1} | {verdict} |",
            t.mean, t.slope_per_hour, t.growth, t.allowed
        );
    }
    let c = &results.counts;
    let _ = writeln!(out, "\nConnections opened and closed as planned: {}", c.connections.values().sum::<u64>());
    for (ending, count) in &c.connections {
        let _ = writeln!(out, "- {ending}: {count}");
    }
    let _ = writeln!(out, "\nRequests answered right: {}", c.requests);
    let _ = writeln!(out, "Broadcasts published: {}, received: {}", c.broadcasts_published, c.broadcasts_received);
    let _ = writeln!(out, "Slow consumers closed with 1013: {}", c.slow_consumers);
    let _ = writeln!(out, "Samples missed: {}", results.missed_samples.len());
    let _ = writeln!(out, "Client check failures: {}", c.failures);
    for example in &c.failure_examples {
        let _ = writeln!(out, "- {example}");
    }
    for failure in &results.failures {
        let _ = writeln!(out, "\nFAILED: {failure}");
    }
    out
}

/// A small deterministic random source (SplitMix64): each slot its own,
/// seeded by its number, so a run's choices can be replayed.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0xD1B5_4A32_D192_ED03)
    }

    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`0` when `n` is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next() % n }
    }

    /// A duration in `low..high`.
    pub fn between(&mut self, low: Duration, high: Duration) -> Duration {
        let span = high.saturating_sub(low).as_millis() as u64;
        low + Duration::from_millis(self.below(span.max(1)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::soak::sample::Reading;

    #[test]
    fn random_numbers_stay_in_range_and_replay() {
        let mut a = Rng::new(7);
        let mut b = Rng::new(7);
        for _ in 0..1000 {
            assert!(a.below(10) < 10);
            let d = a.between(Duration::from_secs(2), Duration::from_secs(3));
            assert!(d >= Duration::from_secs(2) && d < Duration::from_secs(3));
            b.below(10);
            b.between(Duration::from_secs(2), Duration::from_secs(3));
        }
        assert_eq!(a.next(), b.next());
        assert_ne!(Rng::new(1).next(), Rng::new(2).next());
    }

    #[test]
    fn every_judged_figure_of_every_process_is_judged() {
        let samples: Vec<Sample> = (0..10)
            .map(|i| Sample {
                t: i as f64 * 60.0,
                readings: vec![
                    Reading { source: "edge", kind: Kind::Tasks, value: 100.0 + 10.0 * i as f64 },
                    Reading { source: "edge", kind: Kind::Sessions, value: 50.0 },
                    Reading { source: "router", kind: Kind::RssMib, value: 20.0 },
                ],
            })
            .collect();
        let trends = judge(&samples, 540.0, 0.1);
        assert_eq!(trends.keys().collect::<Vec<_>>(), ["edge tokio tasks", "router resident memory (MiB)"]);
        assert!(trends["edge tokio tasks"].upward);
        assert!(!trends["router resident memory (MiB)"].upward);
    }

    #[test]
    fn slow_consumers_due_are_whole_periods() {
        let args = |duration, slow_every| Args {
            duration,
            interval: 1.0,
            connections: 1,
            slow_every,
            max_growth: 0.1,
            out: PathBuf::new(),
            herald: PathBuf::new(),
        };
        // The last may take 75 s: 11 of the 12 started in an hour are due.
        assert_eq!(args(3600.0, 300.0).slow_consumers_due(), 11);
        assert_eq!(args(120.0, 30.0).slow_consumers_due(), 1);
        assert_eq!(args(120.0, 60.0).slow_consumers_due(), 0);
        assert_eq!(args(120.0, 0.0).slow_consumers_due(), 0);
    }
}
