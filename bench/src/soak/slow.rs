//! A slow consumer now and then: a client that stops reading while frames
//! keep coming for it. The edge must close it with 1013 (and count it in
//! `herald_edge_slow_consumers_total`) within its grace, and nobody else
//! may notice.
//!
//! The client's socket has a small receive buffer, as on a slow link, so
//! the kernel's buffers fill after little traffic. Frames for it are
//! published on its own subject (`herald.conn.<C>`) until the edge's
//! counter moves; then it reads again and must find its connection ended.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use futures_util::StreamExt;
use serde::Deserialize;
use tokio::net::TcpSocket;
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::Message;

use super::churn::Context;
use super::sample::{self, Http};
use crate::protocol::Frame;
use crate::publish::unix_nanos;

/// The slow client's receive buffer, in bytes (the kernel doubles it).
const RECEIVE_BUFFER: u32 = 4096;
/// Frames published to it at a time, every [`FLOOD_PAUSE`].
const FLOOD_BATCH: usize = 50;
const FLOOD_PAUSE: Duration = Duration::from_millis(100);
/// Size of each frame.
const FLOOD_FRAME_BYTES: usize = 4096;
/// How long the edge may take to give up on it: its grace (5 s by
/// default) and the time to fill the buffers, with room to spare.
const GIVE_UP_WITHIN: Duration = Duration::from_secs(60);
/// How long reading what was buffered may take.
const DRAIN_WITHIN: Duration = Duration::from_secs(15);
/// The edge's counter of slow consumers it closed.
const COUNTER: &str = "herald_edge_slow_consumers_total";

/// How long one slow consumer takes at most, from its connecting to its
/// end: the soak counts one due only if it started that long before the end.
pub const TAKES_AT_MOST: Duration = GIVE_UP_WITHIN.saturating_add(DRAIN_WITHIN);

/// Starts a slow consumer every `every` (the first after `every`), until
/// the soak ends.
pub async fn every(ctx: Arc<Context>, http: Http, edge: SocketAddr, every: Duration) {
    let mut stop = ctx.stop.clone();
    let mut starts = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    starts.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = starts.tick() => {}
            _ = stop.changed() => return,
        }
        match one(&ctx, &http, edge, &mut stop).await {
            Ok(true) => ctx.stats.slow_consumer(),
            Ok(false) => return,
            Err(e) => ctx.stats.fail(&format!("slow consumer: {e:#}")),
        }
    }
}

#[derive(Deserialize)]
struct Connected {
    conn: String,
}

/// One slow consumer; `false` when the soak ended meanwhile.
async fn one(ctx: &Context, http: &Http, edge: SocketAddr, stop: &mut watch::Receiver<bool>) -> Result<bool> {
    let metrics = format!("http://{edge}/metrics");
    let closed_before = slow_consumers(http, &metrics).await?;

    let socket = TcpSocket::new_v4()?;
    socket.set_recv_buffer_size(RECEIVE_BUFFER)?;
    let stream = socket.connect(edge).await.context("cannot connect")?;
    let expires_at = unix_nanos() / 1_000_000_000 + 600;
    let token = ctx.minter.mint_until("soak-slow", &[], &[], expires_at)?;
    let (mut ws, _) = tokio_tungstenite::client_async(format!("ws://{edge}/ws?token={token}"), stream)
        .await
        .context("cannot upgrade")?;
    let conn = match ws.next().await {
        Some(Ok(Message::Text(text))) => {
            let frame: Frame<'_> = serde_json::from_str(text.as_str()).context("unreadable first frame")?;
            let details = frame.details.map(|d| d.get()).unwrap_or("null");
            if frame.action != "$connected" {
                bail!("first frame is {text}, not $connected");
            }
            serde_json::from_str::<Connected>(details).context("bad $connected")?.conn
        }
        other => bail!("no $connected: {other:?}"),
    };

    // It stops reading; its frames keep coming.
    let subject = format!("herald.conn.{conn}");
    let pad = "x".repeat(FLOOD_FRAME_BYTES);
    let started = Instant::now();
    let mut sent = 0u64;
    loop {
        for _ in 0..FLOOD_BATCH {
            let frame = format!(r#"{{"action":"soak/flood","details":{{"n":{sent},"pad":"{pad}"}}}}"#);
            ctx.nats.publish(subject.clone(), frame.into()).await.context("cannot publish")?;
            sent += 1;
        }
        tokio::select! {
            _ = tokio::time::sleep(FLOOD_PAUSE) => {}
            _ = stop.changed() => return Ok(false),
        }
        if sent.is_multiple_of(FLOOD_BATCH as u64 * 10) && slow_consumers(http, &metrics).await? > closed_before {
            break;
        }
        if started.elapsed() > GIVE_UP_WITHIN {
            bail!("not closed after {sent} frames in {} s", GIVE_UP_WITHIN.as_secs());
        }
    }
    eprintln!(
        "slow consumer {conn}: closed by the edge after {sent} frames in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    // It reads again: what was buffered, then the end.
    let deadline = Instant::now() + DRAIN_WITHIN;
    loop {
        let frame = tokio::select! {
            _ = tokio::time::sleep_until(deadline.into()) => bail!("still open {} s after the edge closed it", DRAIN_WITHIN.as_secs()),
            frame = ws.next() => frame,
        };
        match frame {
            Some(Ok(Message::Close(Some(close)))) if u16::from(close.code) == 1013 => return Ok(true),
            Some(Ok(Message::Close(close))) => bail!("closed with {close:?}, not 1013"),
            Some(Ok(_)) => {}
            // Closed while its socket was full: the close frame could not be
            // written, so the connection just ends.
            Some(Err(_)) | None => return Ok(true),
        }
    }
}

async fn slow_consumers(http: &Http, metrics: &str) -> Result<f64> {
    let text = http.get(metrics).await?;
    sample::gauge(&text, COUNTER).with_context(|| format!("{metrics} has no {COUNTER}"))
}
