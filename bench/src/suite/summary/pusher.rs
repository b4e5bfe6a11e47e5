//! The Pusher servers side by side: Herald's Pusher path, soketi and
//! sockudo, with Herald's native path in the same shapes; each Herald path
//! ÷ each Pusher peer, and Herald's Pusher path ÷ its native path.

use std::fmt::Write as _;

use super::{
    Figure, best_clean_rate_to, contenders, cpu_per_frame_at_the_top, figures_table, is_reference_at,
    kib_per_connection, report,
};
use crate::report::{Delivery, Report};
use crate::scenario::broadcast::Target;
use crate::suite::Results;
use crate::suite::plan::{Measure, PUSHER_SUBSCRIBERS, REFERENCE_RECEIVERS};
use crate::suite::servers::Contender;

/// Herald's paths, whose figures are divided by the peers'.
const HERALD: [Contender; 3] = [Contender::HeraldPusher, Contender::HeraldPusherRest, Contender::Herald];
/// The Pusher servers Herald is compared with.
const PEERS: [Contender; 2] = [Contender::Soketi, Contender::Sockudo];

/// The section, when the run had any Pusher server in it. Columns are the
/// gateways with at least one measured step (skipped ones are listed at
/// the end of the summary, with the reason).
pub fn section(out: &mut String, results: &Results) {
    let ran = contenders(results);
    if !ran.iter().any(|c| c.speaks_pusher()) {
        return;
    }
    let measured = |c: &Contender| results.outcomes.iter().any(|o| o.step.contender == *c && o.report.is_some());
    let columns: Vec<Contender> =
        ran.iter().copied().filter(|c| c.speaks_pusher() || *c == Contender::Herald).filter(measured).collect();
    let mut ratios = Vec::new();
    for &herald in HERALD.iter().filter(|c| columns.contains(c)) {
        for &peer in PEERS.iter().filter(|c| columns.contains(c)) {
            ratios.push((herald, peer));
        }
    }
    if columns.contains(&Contender::HeraldPusher) && columns.contains(&Contender::Herald) {
        ratios.push((Contender::HeraldPusher, Contender::Herald));
    }

    let _ = writeln!(out, "\n## Pusher protocol\n");
    let _ = writeln!(
        out,
        "Subscribers of one channel (`bench`) on each Pusher server, published to through the app's HTTP API \
         (`POST /apps/<id>/events`); {} is published to on NATS (the group `bench`), {} through a router's \
         HTTP API. {} is Herald's own protocol in the same shapes (every connection in the group `bench`; \
         its best rate and its CPU per frame are over broadcasts to everyone and to the group). Where a \
         server falls behind, its deliveries per second are what the load tool reads on the cores it \
         shares, and a Pusher event (its data a JSON string inside the frame) costs the tool more to read \
         than a Herald frame: the server's CPU per delivered frame is the server's own cost.\n",
        Contender::HeraldPusher.name(),
        Contender::HeraldPusherRest.name(),
        Contender::Herald.name(),
    );
    if columns.is_empty() {
        let _ = writeln!(out, "Nothing measured (see Skipped).");
        return;
    }
    figures_table(out, &columns, &ratios, &figures(results));
}

/// Memory per idle subscriber of the channel with `count` subscribers.
fn memory(results: &Results, contender: Contender, count: u64) -> Option<f64> {
    let subscribers = |m: &Measure| matches!(m, Measure::Subscribers { connections, .. } if *connections == count);
    report(results, contender, subscribers).and_then(kib_per_connection)
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
            "server CPU per delivered frame, 10k subscribers, most offered (ns, lower is better)",
            Box::new(move |c| cpu_per_frame_at_the_top(results, c, large, &to_channel, Report::cpu_per_unit)),
            |v| format!("{v:.0}"),
        ),
        (
            "load tool CPU per delivered frame, 10k subscribers, most offered (ns, lower is better)",
            Box::new(move |c| cpu_per_frame_at_the_top(results, c, large, &to_channel, Report::tool_cpu_per_unit)),
            |v| format!("{v:.0}"),
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
