//! The publisher: benchmark frames at a fixed rate, on NATS for Herald,
//! over a publisher WebSocket for a peer, or through a Pusher server's HTTP
//! API ([`rest`]).
//!
//! A frame is a client frame, as backends publish them:
//! `{"action":"bench","details":{"t":<unix nanos>,"seq":<n>,"pad":"..."}}`.
//! `t` is taken just before the frame is handed to the NATS client (or the
//! WebSocket), so the latency a receiver measures is publish → NATS → edge
//! → WebSocket → client (for a peer: publisher → server → client); every
//! process runs on one machine and reads the same clock.
//!
//! The rate is held by elapsed time, not by a timer per message: on every
//! tick the publisher sends whatever is due by then, so the average rate is
//! exact over the run whatever the timer's resolution, and a late tick is
//! caught up rather than lost.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use tokio::time::MissedTickBehavior;
use tokio_tungstenite::tungstenite::Message;

pub use self::rest::{RestPublisher, http_client};
use crate::conn::Ws;
use crate::protocol::{Inbound, Protocol};

mod rest;

/// The action of benchmark frames.
pub const BENCH_ACTION: &str = "bench";
/// How often the publisher wakes up to send what is due.
const TICK: Duration = Duration::from_millis(1);

/// What a receiver reads back from a benchmark frame's `details`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub struct Stamp {
    /// Unix time of publishing, in nanoseconds.
    pub t: u64,
    /// Number of the message in the run, from 0.
    pub seq: u64,
}

/// Frame number `seq` published at `t` (Unix nanos), padded to
/// `payload_bytes` when that is longer than the frame without padding.
pub fn frame(seq: u64, t: u64, payload_bytes: usize) -> Bytes {
    let head = format!(r#"{{"action":"{BENCH_ACTION}","details":{{"t":{t},"seq":{seq},"pad":""#);
    let tail = r#""}}"#;
    let pad = payload_bytes.saturating_sub(head.len() + tail.len());
    let mut frame = String::with_capacity(head.len() + pad + tail.len());
    frame.push_str(&head);
    frame.extend(std::iter::repeat_n('x', pad));
    frame.push_str(tail);
    Bytes::from(frame)
}

/// Messages due `elapsed` into a run at `rate` per second, never more than
/// `total`.
pub fn due(elapsed: Duration, rate: f64, total: u64) -> u64 {
    ((elapsed.as_secs_f64() * rate) as u64).min(total)
}

/// Unix time now, in nanoseconds.
pub fn unix_nanos() -> u64 {
    let since_epoch = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    u64::try_from(since_epoch.as_nanos()).unwrap_or(u64::MAX)
}

/// What a publishing run did.
#[derive(Debug, Clone, Copy)]
pub struct Published {
    pub messages: u64,
    pub elapsed: Duration,
    /// When publishing started (Unix nanos).
    pub started_unix_nanos: u64,
    /// The stamp of the first frame, taken as it was handed over (Unix
    /// nanos; 0 when none was): the publish that delivery times start from.
    pub first_unix_nanos: u64,
}

/// Where published frames go.
pub enum Outlet {
    /// A Herald deployment: NATS, message `seq` to `subject(seq)`.
    Nats { client: async_nats::Client, subject: Box<dyn Fn(u64) -> String> },
    /// A peer: its publisher WebSocket, for one topic.
    WebSocket { ws: Ws, protocol: Protocol },
    /// A Pusher server: its HTTP API, for one channel.
    Rest(RestPublisher),
}

impl Outlet {
    /// Hands frame `seq` to the NATS client or the socket, unflushed.
    async fn send(&mut self, seq: u64, frame: Bytes) -> Result<()> {
        match self {
            Outlet::Nats { client, subject } => {
                client.publish(subject(seq), frame).await.context("cannot publish to NATS")
            }
            Outlet::WebSocket { ws, protocol } => {
                let text = std::str::from_utf8(&frame).expect("benchmark frames are ASCII");
                ws.feed(protocol.published(text)).await.context("cannot publish to the peer")
            }
            Outlet::Rest(rest) => {
                let text = std::str::from_utf8(&frame).expect("benchmark frames are ASCII");
                rest.send(text, unix_nanos() / 1_000_000_000).await
            }
        }
    }

    async fn flush(&mut self) -> Result<()> {
        match self {
            Outlet::Nats { client, .. } => client.flush().await.context("cannot flush to NATS"),
            Outlet::WebSocket { ws, .. } => ws.flush().await.context("cannot publish to the peer"),
            // Each call is on its way once sent.
            Outlet::Rest(_) => Ok(()),
        }
    }

    /// Waits until everything sent has been taken: the HTTP API's answers.
    async fn settle(&mut self) -> Result<()> {
        match self {
            Outlet::Rest(rest) => rest.settle().await,
            Outlet::Nats { .. } | Outlet::WebSocket { .. } => Ok(()),
        }
    }

    /// Waits for something from a peer's publisher socket and answers it
    /// when it is a ping, or for an answer of the HTTP API; never returns
    /// for NATS, which keeps itself alive.
    async fn serve(&mut self) -> Result<()> {
        let (ws, protocol) = match self {
            Outlet::WebSocket { ws, protocol } => (ws, protocol),
            Outlet::Rest(rest) => return rest.answered().await,
            Outlet::Nats { .. } => return std::future::pending().await,
        };
        match ws.next().await {
            Some(Ok(Message::Text(text))) if protocol.inbound(&text) == Inbound::Ping => {
                ws.send(protocol.pong()).await.context("cannot answer the peer's ping")
            }
            Some(Ok(Message::Close(_))) | None => bail!("the peer closed the publisher connection"),
            Some(Ok(_)) => Ok(()),
            Some(Err(e)) => bail!("the publisher connection failed: {e}"),
        }
    }
}

/// A paced publishing run.
pub struct Publisher<'a> {
    pub rate: f64,
    pub duration: Duration,
    pub payload_bytes: usize,
    /// Messages published so far, for progress lines.
    pub counter: &'a AtomicU64,
}

impl Publisher<'_> {
    /// Publishes `rate × duration` frames to `outlet`.
    pub async fn run(&self, outlet: &mut Outlet) -> Result<Published> {
        let total = (self.rate * self.duration.as_secs_f64()).round() as u64;
        let mut ticks = tokio::time::interval(TICK);
        ticks.set_missed_tick_behavior(MissedTickBehavior::Skip);
        let (start, started_unix_nanos) = (Instant::now(), unix_nanos());
        let (mut sent, mut first_unix_nanos) = (0, 0);
        while sent < total {
            let ticked = tokio::select! {
                _ = ticks.tick() => true,
                served = outlet.serve() => served.map(|()| false)?,
            };
            if !ticked {
                continue;
            }
            let now_due = due(start.elapsed(), self.rate, total);
            for seq in sent..now_due {
                let stamp = unix_nanos();
                if seq == 0 {
                    first_unix_nanos = stamp;
                }
                outlet.send(seq, frame(seq, stamp, self.payload_bytes)).await?;
            }
            if now_due > sent {
                outlet.flush().await?;
                sent = now_due;
                self.counter.store(sent, Ordering::Relaxed);
            }
        }
        let elapsed = start.elapsed();
        outlet.settle().await?;
        Ok(Published { messages: sent, elapsed, started_unix_nanos, first_unix_nanos })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_frame_is_a_padded_client_frame() {
        let bytes = frame(42, 1_700_000_000_000_000_000, 256);
        assert_eq!(bytes.len(), 256);
        let value: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(value["action"], BENCH_ACTION);
        let stamp: Stamp = serde_json::from_value(value["details"].clone()).unwrap();
        assert_eq!(stamp, Stamp { t: 1_700_000_000_000_000_000, seq: 42 });
    }

    #[test]
    fn a_small_payload_size_means_no_padding() {
        let bytes = frame(1, 2, 0);
        assert_eq!(&bytes[..], br#"{"action":"bench","details":{"t":2,"seq":1,"pad":""}}"#);
    }

    #[test]
    fn the_rate_is_held_by_elapsed_time() {
        assert_eq!(due(Duration::ZERO, 100.0, 1000), 0);
        assert_eq!(due(Duration::from_millis(15), 100.0, 1000), 1);
        assert_eq!(due(Duration::from_millis(2500), 100.0, 1000), 250);
        assert_eq!(due(Duration::from_secs(60), 100.0, 1000), 1000);
        assert_eq!(due(Duration::from_millis(1), 50_000.0, 1_000_000), 50);
    }
}
