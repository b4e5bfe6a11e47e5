//! What the soak samples every interval: each process's resident memory
//! and open files (from `/proc`), the tokio tasks alive in the edge and
//! the router (their `/metrics`), NATS subscriptions (nats-server's
//! monitoring endpoint `/subsz`) and, for the plot, the sessions the edge
//! holds.

use std::time::Duration;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::proc_mem;

/// How long one monitoring request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// A sampled figure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// Resident memory, MiB.
    RssMib,
    OpenFiles,
    /// Tokio tasks alive.
    Tasks,
    /// Subscriptions nats-server holds, over all its clients.
    Subscriptions,
    /// Sessions the edge holds: the load, plotted, not judged.
    Sessions,
}

impl Kind {
    pub fn label(self) -> &'static str {
        match self {
            Kind::RssMib => "resident memory (MiB)",
            Kind::OpenFiles => "open files",
            Kind::Tasks => "tokio tasks",
            Kind::Subscriptions => "NATS subscriptions",
            Kind::Sessions => "sessions",
        }
    }

    /// The least growth over the judged window that counts as a trend, in
    /// the figure's unit (see [`super::trend`]); `None` for a figure that is
    /// not judged. The floors sit above the noise a steady run shows: a few
    /// MiB of allocator slack, a few sockets and tasks of connections
    /// opening or closing at the moment of the sample.
    pub fn floor(self) -> Option<f64> {
        match self {
            Kind::RssMib => Some(4.0),
            Kind::OpenFiles => Some(8.0),
            Kind::Tasks => Some(16.0),
            Kind::Subscriptions => Some(16.0),
            Kind::Sessions => None,
        }
    }
}

/// One figure of one process at one time.
#[derive(Debug, Clone, Serialize)]
pub struct Reading {
    /// The process: `edge`, `router`, `handlers` or `nats-server`.
    pub source: &'static str,
    pub kind: Kind,
    pub value: f64,
}

/// Every reading taken at one time.
#[derive(Debug, Clone, Serialize)]
pub struct Sample {
    /// Seconds since the churn started.
    pub t: f64,
    pub readings: Vec<Reading>,
}

/// A process whose figures are sampled.
#[derive(Debug, Clone)]
pub struct Watched {
    pub source: &'static str,
    pub pid: u32,
    /// Its `/metrics` URL and the gauges read from it.
    pub metrics: Option<(String, Vec<(&'static str, Kind)>)>,
}

/// Plain HTTP GETs of monitoring endpoints.
#[derive(Debug, Clone)]
pub struct Http(reqwest::Client);

impl Http {
    pub fn new() -> Result<Http> {
        Http::with_timeout(REQUEST_TIMEOUT)
    }

    /// A client whose requests may take up to `timeout` each.
    pub fn with_timeout(timeout: Duration) -> Result<Http> {
        // reqwest is built with rustls and no crypto provider of its own.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = reqwest::Client::builder().timeout(timeout).build().context("cannot build an HTTP client")?;
        Ok(Http(client))
    }

    /// The body of a successful GET of `url`.
    pub async fn get(&self, url: &str) -> Result<String> {
        let response = self.0.get(url).send().await.with_context(|| format!("cannot get {url}"))?;
        let response = response.error_for_status().with_context(|| format!("{url} answered with an error"))?;
        response.text().await.with_context(|| format!("cannot read {url}"))
    }
}

/// Takes samples.
#[derive(Debug)]
pub struct Sampler {
    http: Http,
    watched: Vec<Watched>,
    /// nats-server's `/subsz` URL.
    subsz: String,
}

#[derive(Deserialize)]
struct Subsz {
    num_subscriptions: u64,
}

impl Sampler {
    pub fn new(http: Http, watched: Vec<Watched>, subsz: String) -> Sampler {
        Sampler { http, watched, subsz }
    }

    /// Reads every figure now, `t` seconds into the run.
    pub async fn sample(&self, t: f64) -> Result<Sample> {
        let mut readings = Vec::new();
        for watched in &self.watched {
            let source = watched.source;
            let rss = proc_mem::resident_bytes(watched.pid)? as f64 / (1024.0 * 1024.0);
            readings.push(Reading { source, kind: Kind::RssMib, value: rss });
            let open = proc_mem::open_files(watched.pid)? as f64;
            readings.push(Reading { source, kind: Kind::OpenFiles, value: open });
            if let Some((url, gauges)) = &watched.metrics {
                let text = self.http.get(url).await?;
                for &(name, kind) in gauges {
                    let value = gauge(&text, name).with_context(|| format!("{url} has no gauge {name}"))?;
                    readings.push(Reading { source, kind, value });
                }
            }
        }
        let subsz: Subsz = serde_json::from_str(&self.http.get(&self.subsz).await?)
            .with_context(|| format!("{} is not nats-server's /subsz", self.subsz))?;
        readings.push(Reading {
            source: "nats-server",
            kind: Kind::Subscriptions,
            value: subsz.num_subscriptions as f64,
        });
        Ok(Sample { t, readings })
    }
}

/// The value of gauge `name` in a Prometheus text exposition.
pub fn gauge(text: &str, name: &str) -> Option<f64> {
    text.lines().find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_gauge_by_its_exact_name() {
        let text = "# HELP herald_edge_tasks Tokio tasks.\n# TYPE herald_edge_tasks gauge\nherald_edge_tasks_total 9\nherald_edge_tasks 42\n";
        assert_eq!(gauge(text, "herald_edge_tasks"), Some(42.0));
        assert_eq!(gauge(text, "herald_edge_sessions"), None);
    }

    #[test]
    fn reads_nats_subsz() {
        let subsz: Subsz = serde_json::from_str(r#"{"server_id":"x","num_subscriptions":57,"num_cache":3}"#).unwrap();
        assert_eq!(subsz.num_subscriptions, 57);
    }

    #[test]
    fn the_load_is_plotted_but_not_judged() {
        assert_eq!(Kind::Sessions.floor(), None);
        assert!(Kind::Tasks.floor().is_some() && Kind::RssMib.floor().is_some());
    }
}
