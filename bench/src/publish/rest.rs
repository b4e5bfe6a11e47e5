//! Publishing through a Pusher server's HTTP API: one signed
//! `POST /apps/<id>/events` per message, several in flight at once.
//!
//! A publisher that waited for each answer before the next call would
//! measure the server's request latency, not its fan-out: at 1,000 calls a
//! second an answer may take up to 1 ms. Calls are therefore sent without
//! waiting, up to [`MAX_IN_FLIGHT`] at once over the client's keep-alive
//! connections; past that the publisher waits for an answer, and falls
//! behind its rate where the server does (the achieved rate is reported).
//! Every answer is read and must be a success.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;

use crate::protocol::pusher::Trigger;

/// Calls sent and not yet answered, at most.
const MAX_IN_FLIGHT: usize = 64;
/// How long one call may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// The HTTP client of Pusher API calls: keep-alive connections enough for
/// every call in flight.
pub fn http_client() -> Result<reqwest::Client> {
    // reqwest is built with rustls and no default provider; plain http://
    // needs none, but the builder wants one installed.
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .timeout(CALL_TIMEOUT)
        .pool_max_idle_per_host(MAX_IN_FLIGHT)
        .build()
        .context("cannot build an HTTP client")
}

/// One call's answer: fine, or why not.
type Call = Pin<Box<dyn Future<Output = Result<()>> + Send>>;

/// A publisher on a Pusher HTTP API.
pub struct RestPublisher {
    http: reqwest::Client,
    trigger: Trigger,
    in_flight: FuturesUnordered<Call>,
}

impl RestPublisher {
    pub fn new(trigger: Trigger) -> Result<RestPublisher> {
        Ok(RestPublisher { http: http_client()?, trigger, in_flight: FuturesUnordered::new() })
    }

    /// Sends benchmark frame `frame` as an event, once fewer than
    /// [`MAX_IN_FLIGHT`] calls are unanswered.
    pub async fn send(&mut self, frame: &str, now_secs: u64) -> Result<()> {
        while self.in_flight.len() >= MAX_IN_FLIGHT {
            self.answered().await?;
        }
        let body = self.trigger.body(frame).map_err(anyhow::Error::msg)?;
        let url = self.trigger.signed_url(&body, now_secs);
        let request = self.http.post(url).header("content-type", "application/json").body(body);
        self.in_flight.push(Box::pin(async move {
            let response = request.send().await.context("the Pusher API call failed")?;
            let status = response.status();
            let answer = response.bytes().await.context("the Pusher API's answer could not be read")?;
            if !status.is_success() {
                bail!("the Pusher API answered {status}: {}", String::from_utf8_lossy(&answer));
            }
            Ok(())
        }));
        Ok(())
    }

    /// Waits for the next answer; never returns while none is awaited.
    pub async fn answered(&mut self) -> Result<()> {
        match self.in_flight.next().await {
            Some(answer) => answer,
            None => std::future::pending().await,
        }
    }

    /// Waits for every call sent to be answered.
    pub async fn settle(&mut self) -> Result<()> {
        while let Some(answer) = self.in_flight.next().await {
            answer?;
        }
        Ok(())
    }
}
