//! `--traces`: every Herald process of the run (edges, routers) exports
//! its spans over OTLP/HTTP to a receiver the suite runs, as it would to a
//! collector, so a run with traces on measures their cost. The receiver
//! decodes each export and counts its spans: the run says how many were
//! exported, and a run that exported none is not taken for one with
//! traces on.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::{Context, Result};
use axum::body::Bytes;
use axum::extract::State;
use axum::routing::post;
use http::StatusCode;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;
use tokio::net::TcpListener;
use tokio::process::Command;
use tokio_util::task::AbortOnDropHandle;

/// An OTLP/HTTP trace receiver on a free loopback port.
#[derive(Debug)]
pub struct Receiver {
    /// What `OTEL_EXPORTER_OTLP_ENDPOINT` says.
    url: String,
    /// Spans received so far.
    spans: Arc<AtomicU64>,
    /// Serves until the receiver is dropped.
    _serving: AbortOnDropHandle<()>,
}

impl Receiver {
    pub async fn start() -> Result<Receiver> {
        let spans = Arc::new(AtomicU64::new(0));
        let app = axum::Router::new().route("/v1/traces", post(receive)).with_state(spans.clone());
        let listener = TcpListener::bind("127.0.0.1:0").await.context("cannot bind the OTLP receiver")?;
        let url = format!("http://{}", listener.local_addr()?);
        let serving = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                eprintln!("the OTLP receiver stopped: {e}");
            }
        });
        Ok(Receiver { url, spans, _serving: AbortOnDropHandle::new(serving) })
    }

    /// Makes a Herald process export every span here (sampler
    /// `always_on`), in batches sent every 100 ms instead of the SDK's
    /// 5 s: a short step's spans arrive before its process is stopped, and
    /// the batch queue (2,048 spans) does not overflow and drop spans at
    /// thousands of actions a second, which would make traces look
    /// cheaper than they are.
    pub fn export_from(&self, command: &mut Command) {
        command
            .env("OTEL_EXPORTER_OTLP_ENDPOINT", &self.url)
            .env("OTEL_TRACES_SAMPLER", "always_on")
            .env("OTEL_BSP_SCHEDULE_DELAY", "100");
    }

    pub fn spans(&self) -> u64 {
        self.spans.load(Ordering::Relaxed)
    }
}

async fn receive(State(spans): State<Arc<AtomicU64>>, body: Bytes) -> StatusCode {
    let Ok(request) = ExportTraceServiceRequest::decode(body) else { return StatusCode::BAD_REQUEST };
    let count = request.resource_spans.iter().flat_map(|r| &r.scope_spans).map(|s| s.spans.len() as u64).sum();
    spans.fetch_add(count, Ordering::Relaxed);
    StatusCode::OK
}
