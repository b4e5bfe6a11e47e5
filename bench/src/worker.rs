//! One worker process: opens its share of the connections and counts what
//! they receive until the parent says finish (see [`crate::procs`]).
//!
//! The design is compact on purpose: one task owns every connection of the
//! process. Open connections sit in a [`SelectAll`], which polls only the
//! sockets that woke up, and frames are counted in place in one [`Tally`],
//! so there is no task, channel or lock per connection and the load tool
//! costs little next to the server it measures. Pings from the edge are
//! answered by tungstenite as each socket is read.

use std::io::Write;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use futures_util::stream::{self, SelectAll, Stream};
use futures_util::{StreamExt, future};
use tokio::io::{AsyncBufReadExt, BufReader, Lines, Stdin};
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

use crate::conn::{Dialer, Ws};
use crate::procs::{Event, Order, WorkerPlan};
use crate::publish::unix_nanos;
use crate::tally::Tally;
use crate::token::Minter;

/// How often a worker reports progress to the parent.
const PROGRESS_EVERY: Duration = Duration::from_millis(250);

/// What a socket yields, then `None` once when it has ended.
type Item = Option<Result<Message, WsError>>;

/// Runs a worker until the parent says finish or goes away.
pub async fn run() -> Result<()> {
    let mut orders = BufReader::new(tokio::io::stdin()).lines();
    let plan = match next_order(&mut orders).await? {
        Some(Order::Start(plan)) => plan,
        _ => bail!("a worker must be started with a plan on standard input"),
    };
    let dialer = Dialer::new(&plan.urls, plan.source_ips).await?;
    let minter = Minter::new(&plan.token_secret);
    let count = usize::try_from(plan.conns.end - plan.conns.start).context("too many connections")?;
    let mut tally = Tally::new(plan.population.clone(), plan.conns.start, count, plan.urls.len());

    let opening = stream::iter(0..count)
        .map(|local| open(&plan, &dialer, &minter, local))
        .buffer_unordered(plan.connect_concurrency.max(1));
    let mut opening = std::pin::pin!(opening);
    let mut connecting = true;
    let mut live = SelectAll::new();
    let mut ticks = tokio::time::interval(PROGRESS_EVERY);
    loop {
        tokio::select! {
            opened = opening.next(), if connecting => match opened {
                Some((local, edge, Ok((ws, took)))) => {
                    tally.opened(local, edge, took);
                    live.push(tagged(local, ws));
                }
                Some((_, _, Err(kind))) => tally.failed(kind),
                None => {
                    connecting = false;
                    emit(&Event::Ready(tally.connect_stats()))?;
                }
            },
            Some((local, item)) = live.next() => match item {
                Some(Ok(Message::Text(text))) => tally.text(local, &text, unix_nanos()),
                Some(Ok(Message::Close(_)) | Err(_)) | None => tally.closed(local),
                // Pings are answered by tungstenite; nothing else is sent.
                Some(Ok(_)) => {}
            },
            _ = ticks.tick() => emit(&Event::Progress(tally.progress()))?,
            order = next_order(&mut orders) => match order? {
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
        let ws = dialer.open(conn, edge, &token).await.map_err(|e| e.kind())?;
        Ok((ws, start.elapsed()))
    };
    (local, edge, opened.await)
}

/// A socket's frames tagged with its local number, ending with one `None`;
/// it stops after its first error, as a failed socket has nothing more.
fn tagged(local: usize, ws: Ws) -> impl Stream<Item = (usize, Item)> {
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
