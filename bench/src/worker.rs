//! One worker process: opens its share of the connections and counts what
//! they receive until the parent says finish (see [`crate::procs`]); when
//! told to act, it also sends client actions at a fixed rate and matches
//! their replies (see [`crate::act`]).
//!
//! The design is compact on purpose: one task owns every connection of the
//! process. Open connections sit in a [`SelectAll`], which polls only the
//! sockets that woke up, and frames are counted in place in one [`Tally`],
//! so there is no task, channel or lock per connection and the load tool
//! costs little next to the server it measures. WebSocket pings are
//! answered by tungstenite as each socket is read, a Socket.IO server's
//! Engine.IO pings and a Pusher server's `pusher:ping` here. Each socket is split in two: its reading half sits
//! in the [`SelectAll`], its writing half in a list by connection, for the
//! actions and the pongs.

use std::io::Write;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use futures_util::stream::{self, SelectAll, SplitSink, Stream};
use futures_util::{SinkExt, StreamExt, future};
use tokio::io::{AsyncBufReadExt, BufReader, Lines, Stdin};
use tokio::time::MissedTickBehavior;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

use crate::act::{self, ActionTally};
use crate::conn::{Dialer, Ws};
use crate::procs::{ActionLoad, ActionStats, Event, Order, Progress, WorkerPlan};
use crate::protocol::Inbound;
use crate::publish::{self, unix_nanos};
use crate::tally::Tally;
use crate::token::Minter;

/// How often a worker reports progress to the parent.
const PROGRESS_EVERY: Duration = Duration::from_millis(250);
/// How often a worker sends the actions due, and counts timeouts.
const ACT_TICK: Duration = Duration::from_millis(1);

/// The writing half of a connection.
type Sink = SplitSink<Ws, Message>;

/// What a socket yields, then `None` once when it has ended.
type Item = Option<Result<Message, WsError>>;

/// Runs a worker until the parent says finish or goes away.
pub async fn run() -> Result<()> {
    let mut orders = BufReader::new(tokio::io::stdin()).lines();
    let Some(Order::Start(plan)) = next_order(&mut orders).await? else {
        bail!("a worker must be started with a plan on standard input");
    };
    let dialer = Dialer::new(&plan.urls, plan.protocol, plan.source_ips, &plan.token_secret)
        .await?
        .read_buffer(plan.read_buffer_bytes);
    let minter = Minter::new(&plan.token_secret);
    let count = usize::try_from(plan.conns.end - plan.conns.start).context("too many connections")?;
    let mut tally = Tally::new(plan.population.clone(), plan.conns.start, count, plan.urls.len());

    let opening = stream::iter(0..count)
        .map(|local| open(&plan, &dialer, &minter, local))
        .buffer_unordered(plan.connect_concurrency.max(1));
    let mut opening = std::pin::pin!(opening);
    let mut connecting = true;
    let mut live = SelectAll::new();
    let mut sinks: Vec<Option<Sink>> = (0..count).map(|_| None).collect();
    let mut acting: Option<Acting> = None;
    let mut ticks = tokio::time::interval(PROGRESS_EVERY);
    let mut act_ticks = tokio::time::interval(ACT_TICK);
    act_ticks.set_missed_tick_behavior(MissedTickBehavior::Skip);
    loop {
        tokio::select! {
            opened = opening.next(), if connecting => match opened {
                Some((local, edge, Ok((ws, took)))) => {
                    tally.opened(local, edge, took);
                    let (sink, stream) = ws.split();
                    sinks[local] = Some(sink);
                    live.push(tagged(local, stream));
                }
                Some((_, _, Err(kind))) => tally.failed(kind),
                None => {
                    connecting = false;
                    emit(&Event::Ready(tally.connect_stats()))?;
                }
            },
            Some((local, item)) = live.next() => match item {
                Some(Ok(Message::Text(text))) => match (plan.protocol.inbound(&text), &mut acting) {
                    (Inbound::Frame(frame), Some(acting)) => acting.tally.text(local, frame, Instant::now()),
                    (Inbound::Frame(frame), None) => tally.text(local, frame, unix_nanos()),
                    (Inbound::Event { name, data }, None) => tally.event(local, &name, &data, unix_nanos()),
                    // Client actions are Herald's: a Pusher event has no reply to match.
                    (Inbound::Event { .. }, Some(_)) => {}
                    (Inbound::Ping, _) => {
                        write(&mut sinks[local], plan.protocol.pong()).await;
                    }
                    (Inbound::Other, _) => {}
                },
                Some(Ok(Message::Close(_)) | Err(_)) | None => {
                    sinks[local] = None;
                    tally.closed(local);
                }
                // Pings are answered by tungstenite; nothing else is sent.
                Some(Ok(_)) => {}
            },
            _ = act_ticks.tick(), if acting.as_ref().is_some_and(|acting| !acting.reported) => {
                let acting = acting.as_mut().expect("acting");
                acting.send_due(&mut sinks).await;
                acting.tally.expire(Instant::now());
                if let Some(stats) = acting.over() {
                    acting.reported = true;
                    emit(&Event::Acted(stats))?;
                }
            },
            _ = ticks.tick() => emit(&Event::Progress(progress(&tally, acting.as_ref())))?,
            order = next_order(&mut orders) => match order? {
                Some(Order::Act(load)) if acting.is_none() => {
                    acting = Some(Acting::new(load));
                    act_ticks.reset_immediately();
                }
                Some(Order::Act(_)) => bail!("a worker acts once"),
                Some(Order::Finish { published }) => {
                    // The connections are dropped with the process, not
                    // closed one by one: the edge sees each TCP close at
                    // once, and a closing handshake per connection would
                    // only slow the end of the run.
                    return emit(&Event::Done(tally.delivery_stats(published)));
                }
                Some(Order::Start(_)) => bail!("a worker takes one plan"),
                // The parent is gone: so is the run.
                None => return Ok(()),
            },
        }
    }
}

/// Opens local connection `local` of the plan: which edge it went to, and
/// the socket with how long it took, or the kind of failure.
async fn open(
    plan: &WorkerPlan,
    dialer: &Dialer,
    minter: &Minter,
    local: usize,
) -> (usize, usize, Result<(Ws, Duration), String>) {
    let conn = plan.conns.start + local as u64;
    let edge = plan.population.edge(conn, plan.urls.len());
    let opened = async {
        let token = minter.mint(&plan.population.user(conn), plan.population.groups()).map_err(|e| format!("{e:#}"))?;
        let start = Instant::now();
        let ws = dialer.open(conn, edge, &token, plan.population.groups()).await.map_err(|e| e.kind())?;
        Ok((ws, start.elapsed()))
    };
    (local, edge, opened.await)
}

/// Client actions being sent, or sent and being answered.
struct Acting {
    load: ActionLoad,
    tally: ActionTally,
    started: Instant,
    /// How long sending took, once every action is sent.
    sending: Option<Duration>,
    /// Whether [`Event::Acted`] has been sent.
    reported: bool,
}

impl Acting {
    fn new(load: ActionLoad) -> Acting {
        let tally = ActionTally::new(&load.action, Duration::from_millis(load.timeout_ms));
        Acting { load, tally, started: Instant::now(), sending: None, reported: false }
    }

    /// Sends the actions due by now on their connections, in order. A
    /// write waits for the socket: on loopback with small frames it does
    /// not in practice, and if it does the load is as fast as the edge
    /// reads, which a report of the achieved rate shows.
    async fn send_due(&mut self, sinks: &mut [Option<Sink>]) {
        let due = publish::due(self.started.elapsed(), self.load.rate, self.load.count);
        for _ in self.tally.issued()..due {
            let (id, local) = self.tally.next(sinks.len());
            let text = act::frame(&self.load.action, id, unix_nanos());
            let now = Instant::now();
            let written = match sinks.get_mut(local) {
                Some(sink) => write(sink, Message::text(text)).await,
                None => false,
            };
            self.tally.sent(local, now, written);
        }
        if due == self.load.count && self.sending.is_none() {
            self.sending = Some(self.started.elapsed());
        }
    }

    /// The counts once every action is sent and answered or timed out.
    fn over(&self) -> Option<ActionStats> {
        let sending = self.sending?;
        (self.tally.waiting() == 0).then(|| self.tally.stats(sending))
    }
}

/// Writes `message` on a connection, if it is still open; a connection
/// whose write fails is taken as closed.
async fn write(sink: &mut Option<Sink>, message: Message) -> bool {
    let Some(open) = sink else { return false };
    let written = open.send(message).await.is_ok();
    if !written {
        *sink = None;
    }
    written
}

/// What a progress line shows: connections, and frames received or, once
/// acting, actions sent and answered.
fn progress(tally: &Tally, acting: Option<&Acting>) -> Progress {
    let mut progress = tally.progress();
    if let Some(acting) = acting {
        (progress.sent, progress.received) = acting.tally.progress();
    }
    progress
}

/// A socket's frames tagged with its local number, ending with one `None`;
/// it stops after its first error, as a failed socket has nothing more.
fn tagged(local: usize, ws: impl Stream<Item = Result<Message, WsError>>) -> impl Stream<Item = (usize, Item)> {
    let until_error = ws.scan(false, |failed, item| {
        let stop = *failed;
        *failed = item.is_err();
        future::ready((!stop).then_some(item))
    });
    until_error.map(Some).chain(stream::once(future::ready(None))).map(move |item| (local, item))
}

async fn next_order(orders: &mut Lines<BufReader<Stdin>>) -> Result<Option<Order>> {
    match orders.next_line().await.context("cannot read orders")? {
        Some(line) => serde_json::from_str(&line).map(Some).with_context(|| format!("bad order: {line}")),
        None => Ok(None),
    }
}

/// Sends one event to the parent.
fn emit(event: &Event) -> Result<()> {
    let mut out = std::io::stdout().lock();
    serde_json::to_writer(&mut out, event).context("cannot encode an event")?;
    out.write_all(b"\n").and_then(|()| out.flush()).context("the parent is gone")
}
