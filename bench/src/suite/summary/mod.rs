//! The suite's tables, in Markdown: memory and connect rate, broadcast
//! throughput and latency, Herald's own steps, and the headline figures
//! with every peer's as a ratio Herald ÷ peer; the Pusher servers' in
//! [`pusher`].

mod pusher;

use std::fmt::Write as _;

use super::plan::{Extent, Measure, REFERENCE_CONNECTIONS, REFERENCE_DELIVERIES, REFERENCE_RECEIVERS};
use super::servers::Contender;
use super::{Outcome, Results};
use crate::report::{Delivery, Report};
use crate::scenario::broadcast::Target;

/// The contenders a run measured, in the order they ran.
pub fn contenders(results: &Results) -> Vec<Contender> {
    let mut seen: Vec<Contender> = Vec::new();
    for outcome in &results.outcomes {
        if !seen.contains(&outcome.step.contender) {
            seen.push(outcome.step.contender);
        }
    }
    seen
}

/// The report of `contender`'s step whose measure `matches`.
pub fn report(results: &Results, contender: Contender, matches: impl Fn(&Measure) -> bool) -> Option<&Report> {
    results
        .outcomes
        .iter()
        .filter(|o| o.step.contender == contender && matches(&o.step.measure))
        .find_map(|o| o.report.as_ref())
}

/// Memory per connection over every server process of a report, in KiB.
pub fn kib_per_connection(report: &Report) -> Option<f64> {
    let connections: u64 = report.memory.iter().map(|m| m.connections).sum();
    let growth: f64 = report.memory.iter().map(|m| m.rss_after_bytes as f64 - m.rss_before_bytes as f64).sum();
    (connections > 0).then(|| growth / connections as f64 / 1024.0)
}

/// Whether every expected message arrived exactly once, on connections
/// that all stayed open.
pub fn clean(report: &Report, delivery: &Delivery) -> bool {
    delivery.lost == 0 && delivery.duplicates == 0 && delivery.unexpected == 0 && report.connections.closed_early == 0
}

/// Deliveries per second of `contender`'s best clean broadcast to
/// everyone with `receivers` receivers.
pub fn best_clean_rate(results: &Results, contender: Contender, receivers: u64) -> Option<f64> {
    best_clean_rate_to(results, contender, receivers, &[Target::All])
}

/// Deliveries per second of `contender`'s best clean broadcast to any of
/// `targets` with `receivers` receivers.
fn best_clean_rate_to(results: &Results, contender: Contender, receivers: u64, targets: &[Target]) -> Option<f64> {
    results
        .outcomes
        .iter()
        .filter(|o| o.step.contender == contender)
        .filter(|o| targets.iter().any(|&target| is_broadcast(&o.step.measure, receivers, target)))
        .filter_map(|o| o.report.as_ref())
        .filter_map(|r| r.delivery.as_ref().filter(|d| clean(r, d)).map(|d| d.deliveries_per_sec))
        .reduce(f64::max)
}

/// The CPU per delivered frame `cpu` reads (the server's, or the load
/// tool's), in nanoseconds, in `contender`'s broadcast to one of `targets`
/// with `receivers` receivers that offered the most: where the server is
/// busiest, and the figure moves less than the deliveries per second,
/// which depend on the CPU the server and the tool leave each other.
fn cpu_per_frame_at_the_top(
    results: &Results,
    contender: Contender,
    receivers: u64,
    targets: &[Target],
    cpu: fn(&Report) -> Option<f64>,
) -> Option<f64> {
    results
        .outcomes
        .iter()
        .filter(|o| o.step.contender == contender)
        .filter(|o| targets.iter().any(|&target| is_broadcast(&o.step.measure, receivers, target)))
        .filter_map(|o| match (&o.step.measure, &o.report) {
            (Measure::Broadcast { rate, .. }, Some(report)) => Some((*rate, report)),
            _ => None,
        })
        .max_by(|(a, _), (b, _)| a.total_cmp(b))
        .and_then(|(_, report)| cpu(report))
        .map(|seconds| seconds * 1e9)
}

/// The broadcast step whose latencies every gateway is compared on.
pub fn is_reference(measure: &Measure, target: Target) -> bool {
    is_reference_at(measure, REFERENCE_RECEIVERS, target)
}

/// The broadcast to `target` with `receivers` receivers that offers the
/// reference deliveries a second.
fn is_reference_at(measure: &Measure, count: u64, target: Target) -> bool {
    matches!(measure, Measure::Broadcast { receivers, rate, target: t }
        if *receivers == count && *t == target && *rate * count as f64 == REFERENCE_DELIVERIES)
}

fn is_broadcast(measure: &Measure, count: u64, target: Target) -> bool {
    matches!(measure, Measure::Broadcast { receivers, target: t, .. } if *receivers == count && *t == target)
}

/// The whole summary.
pub fn markdown(results: &Results) -> String {
    let mut out = String::new();
    let m = &results.machine;
    let extent = match results.extent {
        Extent::Full => "",
        Extent::Quick => " (quick)",
        Extent::Guard => " (guard)",
    };
    let _ = writeln!(out, "# herald-bench suite{extent}\n");
    let _ = writeln!(
        out,
        "{} × {}, {:.0} GiB, Linux {}, {} open files per process; {:.0} s in all.\n",
        m.cpus, m.cpu, m.memory_gib, m.kernel, m.open_files, results.seconds
    );
    for (name, version) in &m.versions {
        let _ = writeln!(out, "- {name}: {version}");
    }
    if let Some(spans) = results.spans_exported {
        let _ = writeln!(out, "\nTraces on (`--traces`): Herald's processes exported {spans} spans over OTLP.");
    }
    headline(&mut out, results);
    idle(&mut out, results);
    broadcast(&mut out, results);
    herald_only(&mut out, results);
    pusher::section(&mut out, results);
    failures(&mut out, results);
    skipped(&mut out, results);
    out
}

/// A figure in a table cell: the value, or a dash when it was not measured.
fn cell(value: Option<f64>, format: impl Fn(f64) -> String) -> String {
    value.map_or_else(|| "–".to_owned(), format)
}

fn ratio(herald: Option<f64>, peer: Option<f64>) -> String {
    match (herald, peer) {
        (Some(h), Some(p)) if p != 0.0 => format!("{:.2}×", h / p),
        _ => "–".to_owned(),
    }
}

fn ms(us: u64) -> String {
    format!("{:.2} ms", us as f64 / 1000.0)
}

/// A row of a figures table: its name, each gateway's value, and how a
/// value is written.
type Figure<'a> = (&'a str, Box<dyn Fn(Contender) -> Option<f64> + 'a>, fn(f64) -> String);

/// A table with one figure per row: the value of each of `columns`, then
/// each ratio `(a, b)` as a ÷ b.
fn figures_table(out: &mut String, columns: &[Contender], ratios: &[(Contender, Contender)], figures: &[Figure<'_>]) {
    let mut header = "| figure |".to_owned();
    let mut rule = "| --- |".to_owned();
    for c in columns {
        let _ = write!(header, " {} |", c.name());
        rule.push_str(" ---: |");
    }
    for (a, b) in ratios {
        let _ = write!(header, " {} ÷ {} |", a.name(), b.name());
        rule.push_str(" ---: |");
    }
    let _ = writeln!(out, "{header}\n{rule}");
    // A figure no gateway has (a step the run did not take, as in the
    // guard) is left out rather than shown as a row of dashes.
    for (name, value, format) in figures.iter().filter(|(_, value, _)| columns.iter().any(|&c| value(c).is_some())) {
        let mut row = format!("| {name} |");
        for &c in columns {
            let _ = write!(row, " {} |", cell(value(c), format));
        }
        for &(a, b) in ratios {
            let _ = write!(row, " {} |", ratio(value(a), value(b)));
        }
        let _ = writeln!(out, "{row}");
    }
}

/// One headline figure per row, every gateway's value and Herald ÷ peer
/// (the Pusher servers have their own, in [`pusher`]).
fn headline(out: &mut String, results: &Results) {
    let contenders: Vec<Contender> = contenders(results).into_iter().filter(|c| !c.speaks_pusher()).collect();
    let latency = |pick: fn(&Delivery) -> u64| {
        move |c| {
            report(results, c, |m| is_reference(m, Target::All))
                .and_then(|r| r.delivery.as_ref())
                .map(|d| pick(d) as f64)
        }
    };
    // The idle step at the reference size, which the first three rows read.
    let idle =
        |c| report(results, c, |m| matches!(m, Measure::Idle { connections } if *connections == REFERENCE_CONNECTIONS));
    let figures: Vec<Figure<'_>> = vec![
        (
            "memory per idle connection, 10k connections (KiB, lower is better)",
            Box::new(move |c| idle(c).and_then(kib_per_connection)),
            |v| format!("{v:.1}"),
        ),
        ("connect rate, 10k connections (conn/s)", Box::new(move |c| idle(c).map(|r| r.connections.per_sec)), |v| {
            format!("{v:.0}")
        }),
        (
            "server CPU per connect, 10k connections (µs, lower is better)",
            Box::new(move |c| idle(c).and_then(Report::cpu_per_unit).map(|seconds| seconds * 1e6)),
            |v| format!("{v:.1}"),
        ),
        (
            "best deliveries/s without loss, 1k receivers",
            Box::new(|c| best_clean_rate(results, c, REFERENCE_RECEIVERS)),
            |v| format!("{v:.0}"),
        ),
        ("best deliveries/s without loss, 10k receivers", Box::new(|c| best_clean_rate(results, c, 10_000)), |v| {
            format!("{v:.0}")
        }),
        (
            "server CPU per delivered frame, 10k receivers, most offered (ns, lower is better)",
            Box::new(|c| cpu_per_frame_at_the_top(results, c, 10_000, &[Target::All], Report::cpu_per_unit)),
            |v| format!("{v:.0}"),
        ),
        (
            "load tool CPU per delivered frame, 10k receivers, most offered (ns, lower is better)",
            Box::new(|c| cpu_per_frame_at_the_top(results, c, 10_000, &[Target::All], Report::tool_cpu_per_unit)),
            |v| format!("{v:.0}"),
        ),
        ("p50 latency at 100k deliveries/s (µs, lower is better)", Box::new(latency(|d| d.latency_us.p50)), |v| {
            format!("{v:.0}")
        }),
        ("p99 latency at 100k deliveries/s (µs, lower is better)", Box::new(latency(|d| d.latency_us.p99)), |v| {
            format!("{v:.0}")
        }),
        ("p99.9 latency at 100k deliveries/s (µs, lower is better)", Box::new(latency(|d| d.latency_us.p999)), |v| {
            format!("{v:.0}")
        }),
    ];
    let mut ratios: Vec<(Contender, Contender)> = if contenders.contains(&Contender::Herald) {
        let peers = contenders.iter().filter(|&&c| !matches!(c, Contender::Herald | Contender::HeraldSocketIo));
        peers.map(|&p| (Contender::Herald, p)).collect()
    } else {
        Vec::new()
    };
    // Socket.IO clients on Herald against the Socket.IO server they leave.
    if contenders.contains(&Contender::HeraldSocketIo) && contenders.contains(&Contender::SocketIo) {
        ratios.push((Contender::HeraldSocketIo, Contender::SocketIo));
    }
    if contenders.is_empty() {
        return;
    }
    let _ = writeln!(out, "\n## Side by side\n");
    figures_table(out, &contenders, &ratios, &figures);
    let _ = writeln!(
        out,
        "\nServer CPU: user and system time of the server's processes (Herald's: its edges and nats-server) while \
         the connections opened, or from the first publish until deliveries stopped; on a machine shared with the \
         load tool it moves less than the rates, which are the CPU the server leaves the tool. The load tool's \
         CPU (this process and its workers) over the same time says what each frame costs the tool: a gateway \
         whose frames cost it more is read more slowly."
    );
}

fn idle(out: &mut String, results: &Results) {
    let _ = writeln!(out, "\n## Idle connections\n");
    let _ = writeln!(
        out,
        "| gateway | connections | opened | connect rate | handshake p99 | RSS before → after | per connection |"
    );
    let _ = writeln!(out, "| --- | ---: | ---: | ---: | ---: | ---: | ---: |");
    for outcome in &results.outcomes {
        let (Measure::Idle { connections }
        | Measure::ManyEdges { connections, .. }
        | Measure::Subscribers { connections, .. }) = outcome.step.measure
        else {
            continue;
        };
        let Some(r) = &outcome.report else { continue };
        let before: u64 = r.memory.iter().map(|m| m.rss_before_bytes).sum();
        let after: u64 = r.memory.iter().map(|m| m.rss_after_bytes).sum();
        let gateway = match outcome.step.measure {
            Measure::ManyEdges { edges, .. } => format!("{} ({edges} edges)", outcome.step.contender.name()),
            Measure::Subscribers { group, .. } => format!("{} (each in {group})", outcome.step.contender.name()),
            _ => outcome.step.contender.name().to_owned(),
        };
        let _ = writeln!(
            out,
            "| {gateway} | {connections} | {} | {:.0}/s | {} | {:.1} → {:.1} MiB | {} KiB |",
            r.connections.opened,
            r.connections.per_sec,
            ms(r.connections.handshake_us.p99),
            before as f64 / 1048576.0,
            after as f64 / 1048576.0,
            cell(kib_per_connection(r), |v| format!("{v:.2}")),
        );
    }
}

fn broadcast(out: &mut String, results: &Results) {
    let _ = writeln!(out, "\n## Broadcast\n");
    let _ = writeln!(
        out,
        "Offered: publish rate × receivers. Not delivered: expected deliveries that had not arrived when the \
         deliveries stopped (a backlog the server dropped or was still working through). Latency: publish → \
         delivery.\n"
    );
    let _ = writeln!(
        out,
        "| gateway | to | receivers | offered/s | delivered/s | not delivered | closed early | p50 | p99 | p99.9 | max |"
    );
    let _ = writeln!(out, "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    for outcome in &results.outcomes {
        let Measure::Broadcast { receivers, rate, target } = outcome.step.measure else { continue };
        let Some(r) = &outcome.report else { continue };
        let Some(d) = &r.delivery else { continue };
        let to = match target {
            Target::All => "all",
            Target::Group => "group",
            Target::Private => "private",
        };
        let lost = if d.expected == 0 { 0.0 } else { 100.0 * d.lost as f64 / d.expected as f64 };
        let q = &d.latency_us;
        let _ = writeln!(
            out,
            "| {} | {to} | {receivers} | {:.0} | {:.0} | {lost:.2}% | {} | {} | {} | {} | {} |",
            outcome.step.contender.name(),
            rate * receivers as f64,
            d.deliveries_per_sec,
            r.connections.closed_early,
            ms(q.p50),
            ms(q.p99),
            ms(q.p999),
            ms(q.max),
        );
    }
}

fn herald_only(out: &mut String, results: &Results) {
    let mut rows = Vec::new();
    for outcome in results.outcomes.iter().filter(|o| o.step.contender == Contender::Herald) {
        let Some(r) = &outcome.report else { continue };
        match (&outcome.step.measure, &r.delivery, &r.actions) {
            (Measure::CrossPod { .. }, Some(d), _) => rows.push(format!(
                "| {} | {} of {} delivered, {} lost, {} duplicates, {} misdelivered | {} | {} |",
                outcome.label,
                d.distinct,
                d.expected,
                d.lost,
                d.duplicates,
                d.unexpected,
                ms(d.latency_us.p50),
                ms(d.latency_us.p99)
            )),
            (Measure::Actions { .. }, _, Some(a)) => rows.push(format!(
                "| {} | {} replies of {} sent at {:.0}/s, {} errors, {} timeouts | {} | {} |",
                outcome.label,
                a.replied,
                a.sent,
                a.send_rate,
                a.errors.values().sum::<u64>(),
                a.timeouts,
                ms(a.rtt_us.p50),
                ms(a.rtt_us.p99)
            )),
            _ => {}
        }
    }
    if rows.is_empty() {
        return;
    }
    let _ = writeln!(out, "\n## Herald only\n\n| step | result | p50 | p99 |\n| --- | --- | ---: | ---: |");
    for row in rows {
        let _ = writeln!(out, "{row}");
    }
}

/// The steps not run, one line per gateway with the reason.
fn skipped(out: &mut String, results: &Results) {
    let mut seen: Vec<Contender> = Vec::new();
    for outcome in &results.outcomes {
        let Some(why) = &outcome.skipped else { continue };
        if seen.contains(&outcome.step.contender) {
            continue;
        }
        if seen.is_empty() {
            let _ = writeln!(out, "\n## Skipped\n");
        }
        seen.push(outcome.step.contender);
        let steps = results.outcomes.iter().filter(|o| o.step.contender == outcome.step.contender).count();
        let _ = writeln!(out, "- {} ({steps} steps): {why}", outcome.step.contender.name());
    }
}

fn failures(out: &mut String, results: &Results) {
    let failed: Vec<&Outcome> = results.outcomes.iter().filter(|o| o.error.is_some()).collect();
    if failed.is_empty() {
        return;
    }
    let _ = writeln!(out, "\n## Failed steps\n");
    for outcome in failed {
        let _ = writeln!(out, "- {}: {}", outcome.label, outcome.error.as_deref().unwrap_or_default());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_figure_no_gateway_has_is_left_out() {
        let figures: Vec<Figure<'_>> = vec![
            ("measured", Box::new(|c| (c == Contender::Herald).then_some(2.0)), |v| format!("{v:.0}")),
            ("not measured", Box::new(|_| None), |v| format!("{v:.0}")),
        ];
        let mut out = String::new();
        figures_table(&mut out, &[Contender::Herald, Contender::Uws], &[(Contender::Herald, Contender::Uws)], &figures);
        assert!(out.contains("| measured | 2 | – | – |"), "{out}");
        assert!(!out.contains("not measured"), "{out}");
    }
}
