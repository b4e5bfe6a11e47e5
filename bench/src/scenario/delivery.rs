//! The run shared by the scenarios that publish: open the receivers,
//! publish at a fixed rate, let the last deliveries arrive, and count.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Args;
use serde::Serialize;

use super::{Common, CpuProbe, MemoryProbe};
use crate::conn;
use crate::population::Population;
use crate::protocol::{Protocol, pusher};
use crate::publish::{Outlet, Publisher, RestPublisher};
use crate::report::{Connections, Delivery, Report};

/// How often the end of deliveries is checked.
const DRAIN_POLL: Duration = Duration::from_millis(250);

/// How messages are published; the publishing scenarios take these.
#[derive(Debug, Clone, Args, Serialize)]
pub struct Publishing {
    /// Messages published per second
    #[arg(long, value_name = "MSGS", default_value_t = 100.0)]
    pub rate: f64,
    /// Seconds of publishing
    #[arg(long, value_name = "SECS", default_value_t = 10.0)]
    pub duration: f64,
    /// Size of each published frame, padding included
    #[arg(long, value_name = "BYTES", default_value_t = 128)]
    pub payload_bytes: usize,
    /// Longest wait for the last deliveries after publishing, in seconds
    #[arg(long, value_name = "SECS", default_value_t = 10.0)]
    pub drain: f64,
    /// Deliveries are over when their count has not moved for this many
    /// seconds (or at --drain): longer on a machine too busy for the
    /// workers to report every quarter second
    #[arg(long, value_name = "SECS", default_value_t = 1.0)]
    pub quiet: f64,
    /// Wait for every receiver to have every message (or --drain), however
    /// long the workers stay silent, instead of --quiet seconds of silence:
    /// for a broadcast on a machine too loaded to report on time
    #[arg(long)]
    pub until_all: bool,
    /// Seconds to hold the receivers idle once they are open, before the
    /// servers' memory is sampled and publishing starts: a broadcast to a
    /// settled population, as `idle` measures it
    #[arg(long, value_name = "SECS", default_value_t = 0.0)]
    pub hold: f64,
}

impl Publishing {
    fn check(&self) -> Result<()> {
        let checked = [
            ("--rate", self.rate),
            ("--duration", self.duration),
            ("--drain", self.drain),
            ("--hold", self.hold),
            ("--quiet", self.quiet),
        ];
        for (name, value) in checked {
            if !(value.is_finite() && value >= 0.0) {
                bail!("{name} must be a number of at least 0, not {value}");
            }
        }
        Ok(())
    }
}

/// Where a run's messages go.
pub struct Destination {
    /// On Herald: the NATS subject of message `seq`.
    pub subject: Box<dyn Fn(u64) -> String>,
    /// On a peer: the topic of every message (`all`, `group.<name>`), or
    /// `None` where the scenario has no peer equivalent.
    pub topic: Option<String>,
    /// Every message goes to every receiver (a broadcast): a run is then
    /// complete at receivers × messages deliveries (`--until-all`).
    pub every_receiver: bool,
}

impl Destination {
    /// The publisher's outlet for the server under test.
    async fn outlet(self, common: &Common) -> Result<Outlet> {
        let protocol = common.protocol;
        let first = common.urls.first().context("no --url")?;
        if protocol == Protocol::Pusher {
            let topic = self.topic.as_deref().context("this scenario publishes to Herald only")?;
            let channel = pusher::channel_of(topic).map_err(anyhow::Error::msg)?;
            return match common.pusher.publish {
                pusher::Publish::Nats => nats(common, self.subject).await,
                pusher::Publish::Rest => {
                    let api = common.pusher.api_url(first)?;
                    let key = pusher::app_key(first).map_err(anyhow::Error::msg)?;
                    let trigger =
                        pusher::Trigger::new(&api, &common.pusher.app_id, &key, &common.token_secret, channel);
                    Ok(Outlet::Rest(RestPublisher::new(trigger)?))
                }
            };
        }
        let peer = match &self.topic {
            Some(topic) => protocol.publisher_url(first, topic).map_err(anyhow::Error::msg)?,
            None if protocol == Protocol::Herald => None,
            None => bail!("this scenario publishes to Herald only"),
        };
        match peer {
            None => nats(common, self.subject).await,
            Some(url) => Ok(Outlet::WebSocket { ws: conn::open_publisher(&url, protocol).await?, protocol }),
        }
    }
}

/// A NATS outlet, message `seq` to `subject(seq)`.
async fn nats(common: &Common, subject: Box<dyn Fn(u64) -> String>) -> Result<Outlet> {
    let client = async_nats::connect(&common.nats)
        .await
        .with_context(|| format!("cannot connect to NATS at {}", common.nats))?;
    Ok(Outlet::Nats { client, subject })
}

/// One publishing run: `count` connections of `population`, messages to
/// `destination`.
pub async fn run(
    scenario: &'static str,
    settings: serde_json::Value,
    common: &Common,
    publishing: &Publishing,
    count: u64,
    population: Population,
    destination: Destination,
) -> Result<Report> {
    publishing.check()?;
    if publishing.until_all && !destination.every_receiver {
        bail!("--until-all is for broadcasts: here a message goes to some receivers only");
    }
    let mut outlet = destination.outlet(common).await?;
    // Memory is sampled once the receivers are open (and held), before
    // publishing: what the connections cost, not what queues hold in flight.
    let probe = MemoryProbe::start(&common.server_pids)?;
    let (fleet, connected) = common.connect(count, population).await?;
    if publishing.hold > 0.0 {
        eprintln!("holding them for {} s", publishing.hold);
        tokio::time::sleep(Duration::from_secs_f64(publishing.hold)).await;
    }
    let memory = probe.finish(&connected)?;

    eprintln!("publishing {} msg/s for {} s", publishing.rate, publishing.duration);
    let publisher = Publisher {
        rate: publishing.rate,
        duration: Duration::from_secs_f64(publishing.duration),
        payload_bytes: publishing.payload_bytes,
        counter: fleet.published_counter(),
    };
    let cpu = CpuProbe::start(common, Some(&fleet))?;
    let published = publisher.run(&mut outlet).await?;

    // Deliveries trail publishing by the latency: wait until they stop, or
    // until all have arrived. The workers' progress reports may be late;
    // the counts reported are their final ones, asked for below.
    let all = publishing.until_all.then(|| connected.opened * published.messages);
    let deadline = Instant::now() + Duration::from_secs_f64(publishing.drain);
    let (mut last, mut moved) = (fleet.received(), Instant::now());
    while Instant::now() < deadline {
        let over = match all {
            Some(all) => last >= all,
            None => moved.elapsed().as_secs_f64() >= publishing.quiet,
        };
        if over {
            break;
        }
        tokio::time::sleep(DRAIN_POLL).await;
        let received = fleet.received();
        if received != last {
            (last, moved) = (received, Instant::now());
        }
    }

    let (cpu, tool_cpu) = cpu.finish(&fleet)?;
    let delivered = fleet.finish(published.messages).await?;
    Ok(Report {
        scenario,
        settings,
        connections: Connections::new(count, &connected, delivered.closed_early),
        memory,
        cpu,
        tool_cpu,
        delivery: Some(Delivery::new(&published, &delivered)),
        actions: None,
    })
}
