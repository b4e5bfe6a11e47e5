//! The Pusher servers side by side: Herald's Pusher path, soketi and
//! sockudo, with Herald's native path in the same shapes and uWS and ws
//! for context; Herald's Pusher path ÷ each.

use std::fmt::Write as _;

use super::{Figure, best_clean_rate_to, contenders, figures_table, is_reference_at, kib_per_connection, report};
use crate::report::Delivery;
use crate::scenario::broadcast::Target;
use crate::suite::Results;
use crate::suite::plan::{Measure, PUSHER_SUBSCRIBERS, REFERENCE_RECEIVERS};
use crate::suite::servers::Contender;

/// Herald's Pusher paths, whose figures are divided by the others'.
const HERALD_PUSHER: [Contender; 2] = [Contender::HeraldPusher, Contender::HeraldPusherRest];
/// The native gateways shown for context.
const CONTEXT: [Contender; 3] = [Contender::Herald, Contender::Uws, Contender::Ws];

/// The section, when the run measured (or skipped) any Pusher server.
pub fn section(out: &mut String, results: &Results) {
    let ran = contenders(results);
    let pusher: Vec<Contender> = ran.iter().copied().filter(|c| c.speaks_pusher()).collect();
    if pusher.is_empty() {
        return;
    }
    let context: Vec<Contender> = CONTEXT.iter().copied().filter(|c| ran.contains(c)).collect();
    let columns: Vec<Contender> = pusher.iter().chain(&context).copied().collect();
    let mut ratios = Vec::new();
    for &herald in HERALD_PUSHER.iter().filter(|c| pusher.contains(c)) {
        for &other in pusher.iter().filter(|c| !HERALD_PUSHER.contains(c)) {
            ratios.push((herald, other));
        }
    }
    if pusher.contains(&Contender::HeraldPusher) && context.contains(&Contender::Herald) {
        ratios.push((Contender::HeraldPusher, Contender::Herald));
    }

    let _ = writeln!(out, "\n## Pusher protocol\n");
    let _ = writeln!(
        out,
        "Subscribers of one channel (`bench`) on each Pusher server, published to through the app's HTTP API \
         (`POST /apps/<id>/events`); {} is published to on NATS (the group `bench`), {} through a router's \
         HTTP API. {} is Herald's own protocol in the same shapes (every connection in the group `bench`; \
         its best rate is over broadcasts to everyone and to the group). {} and {} are for context: idle \
         connections in no group, broadcasts to everyone, their group broadcast for the latencies at 1k.\n",
        Contender::HeraldPusher.name(),
        Contender::HeraldPusherRest.name(),
        Contender::Herald.name(),
        Contender::Uws.name(),
        Contender::Ws.name(),
    );
    figures_table(out, &columns, &ratios, &figures(results));
    for &contender in &pusher {
        if let Some(why) =
            results.outcomes.iter().find(|o| o.step.contender == contender).and_then(|o| o.skipped.as_ref())
        {
            let _ = writeln!(out, "\n{}: not measured. {why}", contender.name());
        }
    }
}

/// Memory per idle connection with `count` connections: subscribers of
/// the channel (the Pusher servers, Herald native), or plain idle
/// connections (the context).
fn memory(results: &Results, contender: Contender, count: u64) -> Option<f64> {
    let subscribers = |m: &Measure| matches!(m, Measure::Subscribers { connections, .. } if *connections == count);
    let idle = |m: &Measure| matches!(m, Measure::Idle { connections } if *connections == count);
    report(results, contender, subscribers).or_else(|| report(results, contender, idle)).and_then(kib_per_connection)
}

/// A latency of the broadcast to `target` offering the reference
/// deliveries a second to `receivers`.
fn latency_ms(
    results: &Results,
    contender: Contender,
    receivers: u64,
    target: Target,
    pick: fn(&Delivery) -> u64,
) -> Option<f64> {
    report(results, contender, |m| is_reference_at(m, receivers, target))
        .and_then(|r| r.delivery.as_ref())
        .map(|d| pick(d) as f64 / 1000.0)
}

fn figures(results: &Results) -> Vec<Figure<'_>> {
    fn kib(v: f64) -> String {
        format!("{v:.1}")
    }
    fn rate(v: f64) -> String {
        format!("{v:.0}")
    }
    fn ms(v: f64) -> String {
        format!("{v:.2} ms")
    }
    let [small, large] = PUSHER_SUBSCRIBERS;
    let to_channel = [Target::All, Target::Group];
    vec![
        ("memory per idle subscriber, 1k (KiB, lower is better)", Box::new(move |c| memory(results, c, small)), kib),
        ("memory per idle subscriber, 10k (KiB, lower is better)", Box::new(move |c| memory(results, c, large)), kib),
        (
            "best deliveries/s without loss, 1k subscribers",
            Box::new(move |c| best_clean_rate_to(results, c, small, &to_channel)),
            rate,
        ),
        (
            "best deliveries/s without loss, 10k subscribers",
            Box::new(move |c| best_clean_rate_to(results, c, large, &to_channel)),
            rate,
        ),
        (
            "p50 at 100k deliveries/s, 1k subscribers (lower is better)",
            Box::new(move |c| latency_ms(results, c, REFERENCE_RECEIVERS, Target::Group, |d| d.latency_us.p50)),
            ms,
        ),
        (
            "p99 at 100k deliveries/s, 1k subscribers (lower is better)",
            Box::new(move |c| latency_ms(results, c, REFERENCE_RECEIVERS, Target::Group, |d| d.latency_us.p99)),
            ms,
        ),
        (
            "p99 at 100k deliveries/s, 10k subscribers (lower is better)",
            Box::new(move |c| latency_ms(results, c, large, Target::Group, |d| d.latency_us.p99)),
            ms,
        ),
        (
            "p99 at 100k deliveries/s, 1k subscribers of a private channel (lower is better)",
            Box::new(move |c| latency_ms(results, c, REFERENCE_RECEIVERS, Target::Private, |d| d.latency_us.p99)),
            ms,
        ),
    ]
}
