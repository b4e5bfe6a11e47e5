//! The results of a run: a table for people, JSON for tools and for
//! comparing runs over time.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result};
use serde::Serialize;

use crate::hist::{self, Quantiles};
use crate::procs::{Acted, Connected, Delivered};
use crate::publish::Published;

/// Everything a run measured.
#[derive(Debug, Serialize)]
pub struct Report {
    pub scenario: &'static str,
    /// The scenario's settings as given (secrets left out).
    pub settings: serde_json::Value,
    pub connections: Connections,
    /// One entry per `--server-pid`.
    pub memory: Vec<ServerMemory>,
    /// What the server's processes (each `--server-pid` and `--cpu-pid`)
    /// spent on the part of the run the scenario times: opening the
    /// connections (`idle`), publishing until the deliveries stopped, or
    /// sending the actions until they were answered.
    pub cpu: Vec<ServerCpu>,
    /// What the load tool itself (this process and its workers) spent on
    /// the same part of the run, in seconds: on a machine whose cores the
    /// tool shares with the server, what it reads per second follows what
    /// each frame costs it too.
    pub tool_cpu: Option<f64>,
    /// For scenarios that publish.
    pub delivery: Option<Delivery>,
    /// For scenarios that send client actions.
    pub actions: Option<Actions>,
}

/// How the connections opened and held.
#[derive(Debug, Serialize)]
pub struct Connections {
    pub requested: u64,
    pub opened: u64,
    pub failed: u64,
    /// Failures by kind.
    pub errors: BTreeMap<String, u64>,
    /// Opened connections that closed before the end of the run.
    pub closed_early: u64,
    /// From starting the workers to the last connection's `$connected`.
    pub seconds: f64,
    pub per_sec: f64,
    /// TCP connect to `$connected`, per connection.
    pub handshake_us: Quantiles,
}

impl Connections {
    pub fn new(requested: u64, connected: &Connected, closed_early: u64) -> Connections {
        let seconds = connected.elapsed.as_secs_f64();
        Connections {
            requested,
            opened: connected.opened,
            failed: connected.failed,
            errors: connected.errors.clone(),
            closed_early,
            seconds,
            per_sec: rate(connected.opened, connected.elapsed),
            handshake_us: Quantiles::from(&connected.handshake),
        }
    }
}

/// What one server process's memory grew by while it held the connections.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ServerMemory {
    pub pid: u32,
    /// Connections the growth is divided by.
    pub connections: u64,
    pub rss_before_bytes: u64,
    pub rss_after_bytes: u64,
    /// Negative when the server returned memory while it was measured.
    pub per_conn_bytes: f64,
    pub per_conn_kib: f64,
}

impl ServerMemory {
    pub fn new(pid: u32, connections: u64, rss_before_bytes: u64, rss_after_bytes: u64) -> ServerMemory {
        let growth = rss_after_bytes as f64 - rss_before_bytes as f64;
        let per_conn_bytes = if connections == 0 { 0.0 } else { growth / connections as f64 };
        ServerMemory {
            pid,
            connections,
            rss_before_bytes,
            rss_after_bytes,
            per_conn_bytes,
            per_conn_kib: per_conn_bytes / 1024.0,
        }
    }
}

/// One server process's CPU over the part of a run its scenario times.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ServerCpu {
    pub pid: u32,
    /// User and system seconds.
    pub seconds: f64,
}

/// What was published and what arrived.
#[derive(Debug, Serialize)]
pub struct Delivery {
    pub published: u64,
    pub publish_seconds: f64,
    pub publish_rate: f64,
    /// Deliveries the opened connections should have had.
    pub expected: u64,
    /// Benchmark frames received, repeats included.
    pub received: u64,
    /// Expected deliveries that arrived (once or more).
    pub distinct: u64,
    /// Expected deliveries that never arrived.
    pub lost: u64,
    pub duplicates: u64,
    /// Frames that reached a connection they were not meant for.
    pub unexpected: u64,
    /// Text frames other than benchmark frames (`$reauth`, errors).
    pub other_frames: u64,
    /// When the first message was handed to the outlet (Unix nanos), the
    /// stamp its receivers measure latency from.
    pub first_published_unix_nanos: u64,
    /// From the first publish to the last delivery.
    pub delivery_seconds: f64,
    /// Received frames per second, over `delivery_seconds`: what the
    /// server delivered, not what the publisher asked for.
    pub deliveries_per_sec: f64,
    /// Publish to delivery.
    pub latency_us: Quantiles,
    /// Publish to delivery at percentiles 0 to 100, as `[percentile,
    /// microseconds]` pairs, for plotting the distribution.
    pub latency_percentiles_us: Vec<(f64, u64)>,
}

impl Delivery {
    pub fn new(published: &Published, delivered: &Delivered) -> Delivery {
        let until_last = delivered.last_received_unix_nanos.saturating_sub(published.started_unix_nanos);
        // Deliveries never take less time than publishing did.
        let delivering = Duration::from_nanos(until_last).max(published.elapsed);
        Delivery {
            published: published.messages,
            publish_seconds: published.elapsed.as_secs_f64(),
            publish_rate: rate(published.messages, published.elapsed),
            expected: delivered.expected,
            received: delivered.received,
            distinct: delivered.distinct,
            lost: delivered.expected.saturating_sub(delivered.distinct),
            duplicates: delivered.duplicates,
            unexpected: delivered.unexpected,
            other_frames: delivered.other_frames,
            first_published_unix_nanos: published.first_unix_nanos,
            delivery_seconds: delivering.as_secs_f64(),
            deliveries_per_sec: rate(delivered.received, delivering),
            latency_us: Quantiles::from(&delivered.latency),
            latency_percentiles_us: hist::percentiles(&delivered.latency),
        }
    }
}

/// Client actions sent and how they were answered.
#[derive(Debug, Serialize)]
pub struct Actions {
    pub action: String,
    /// Actions per second asked for.
    pub requested_rate: f64,
    /// Actions written to a socket.
    pub sent: u64,
    /// Actions not sent: their connection had closed.
    pub unsent: u64,
    /// How long the slowest worker took to send its share.
    pub send_seconds: f64,
    /// Actions sent per second of sending: the rate achieved.
    pub send_rate: f64,
    /// Answered with a reply in time.
    pub replied: u64,
    /// Answered with `<action>:error` in time, by code (0: no code).
    pub errors: BTreeMap<u16, u64>,
    /// No answer within `timeout_ms`.
    pub timeouts: u64,
    pub timeout_ms: u64,
    /// Answers that came after their action timed out.
    pub late: u64,
    /// Answers to no action of their connection, or repeated.
    pub unmatched: u64,
    /// Other text frames (`$error`, `$reauth`, ...).
    pub other_frames: u64,
    /// Sending an action to reading its answer (replies and errors).
    pub rtt_us: Quantiles,
}

impl Actions {
    pub fn new(action: &str, requested_rate: f64, timeout_ms: u64, acted: &Acted) -> Actions {
        Actions {
            action: action.to_owned(),
            requested_rate,
            sent: acted.sent,
            unsent: acted.unsent,
            send_seconds: acted.sending.as_secs_f64(),
            send_rate: rate(acted.sent, acted.sending),
            replied: acted.replied,
            errors: acted.errors.clone(),
            timeouts: acted.timeouts,
            timeout_ms,
            late: acted.late,
            unmatched: acted.unmatched,
            other_frames: acted.other_frames,
            rtt_us: Quantiles::from(&acted.rtt),
        }
    }
}

/// Writes a run's results as `<dir>/<name>.json` and its tables as
/// `<dir>/<name>.md`, and prints the tables.
pub fn write_run(dir: &Path, name: &str, results: &impl Serialize, tables: &str) -> Result<()> {
    let json = serde_json::to_string_pretty(results).expect("results serialize");
    let path = dir.join(format!("{name}.json"));
    std::fs::write(&path, json + "\n").with_context(|| format!("cannot write {}", path.display()))?;
    let path = dir.join(format!("{name}.md"));
    std::fs::write(&path, tables).with_context(|| format!("cannot write {}", path.display()))?;
    print!("{tables}");
    Ok(())
}

fn rate(count: u64, elapsed: Duration) -> f64 {
    let seconds = elapsed.as_secs_f64();
    if seconds > 0.0 { count as f64 / seconds } else { 0.0 }
}

impl Report {
    /// The CPU seconds all the server's processes spent on the timed part
    /// of the run; `None` when none was measured.
    pub fn cpu_seconds(&self) -> Option<f64> {
        (!self.cpu.is_empty()).then(|| self.cpu.iter().map(|process| process.seconds).sum())
    }

    /// What the timed part of the run did, which its CPU is divided by:
    /// deliveries received, answers, or connections opened; its name, and
    /// the unit and scale one of them is shown in.
    fn timed(&self) -> (u64, &'static str, &'static str, f64) {
        match (&self.delivery, &self.actions) {
            (Some(d), _) => (d.received, "delivery", "ns", 1e9),
            (None, Some(a)) => (a.replied, "answer", "µs", 1e6),
            (None, None) => (self.connections.opened, "connection", "µs", 1e6),
        }
    }

    /// The server's CPU seconds per delivery, answer or connection
    /// ([`Report::timed`]); `None` when none was measured or none happened.
    pub fn cpu_per_unit(&self) -> Option<f64> {
        self.per_unit(self.cpu_seconds())
    }

    /// The load tool's CPU seconds per delivery, answer or connection.
    pub fn tool_cpu_per_unit(&self) -> Option<f64> {
        self.per_unit(self.tool_cpu)
    }

    fn per_unit(&self, seconds: Option<f64>) -> Option<f64> {
        let (count, ..) = self.timed();
        seconds.filter(|_| count > 0).map(|seconds| seconds / count as f64)
    }

    /// The human summary: one aligned table.
    pub fn summary(&self) -> String {
        let mut rows: Vec<(String, String)> = Vec::new();
        let mut row = |name: &str, value: String| rows.push((name.to_owned(), value));
        let c = &self.connections;
        row("scenario", self.scenario.to_owned());
        row(
            "connections",
            format!("{} opened of {}, {} failed, {} closed early", c.opened, c.requested, c.failed, c.closed_early),
        );
        for (kind, count) in &c.errors {
            row("  failure", format!("{count} × {kind}"));
        }
        row("connect rate", format!("{:.0} conn/s ({:.2} s)", c.per_sec, c.seconds));
        row("handshake", latency(&c.handshake_us));
        for m in &self.memory {
            row(
                &format!("server {} RSS", m.pid),
                format!(
                    "{:.1} → {:.1} MiB: {:.0} B = {:.2} KiB per connection ({} conns)",
                    mib(m.rss_before_bytes),
                    mib(m.rss_after_bytes),
                    m.per_conn_bytes,
                    m.per_conn_kib,
                    m.connections
                ),
            );
        }
        let (_, what, unit, scale) = self.timed();
        for (name, seconds, each) in [
            ("server CPU", self.cpu_seconds(), self.cpu_per_unit()),
            ("load tool CPU", self.tool_cpu, self.tool_cpu_per_unit()),
        ] {
            if let Some(seconds) = seconds {
                let each = each.unwrap_or(0.0) * scale;
                row(name, format!("{seconds:.2} s: {each:.0} {unit} per {what}"));
            }
        }
        if let Some(d) = &self.delivery {
            row(
                "published",
                format!("{} msgs in {:.2} s ({:.1} msg/s)", d.published, d.publish_seconds, d.publish_rate),
            );
            row(
                "deliveries",
                format!("{} received of {} expected ({:.0}/s)", d.received, d.expected, d.deliveries_per_sec),
            );
            row("lost", format!("{} ({:.3}%)", d.lost, percent(d.lost, d.expected)));
            row("duplicates", d.duplicates.to_string());
            row("misdelivered", d.unexpected.to_string());
            if d.other_frames > 0 {
                row("other frames", d.other_frames.to_string());
            }
            row("latency", latency(&d.latency_us));
        }
        if let Some(a) = &self.actions {
            row(
                "actions",
                format!(
                    "{} {:?} sent in {:.2} s ({:.1}/s of {}/s asked), {} unsent",
                    a.sent, a.action, a.send_seconds, a.send_rate, a.requested_rate, a.unsent
                ),
            );
            let errors: u64 = a.errors.values().sum();
            row(
                "answers",
                format!(
                    "{} replies, {} errors, {} timeouts (none in {} ms), {} late",
                    a.replied, errors, a.timeouts, a.timeout_ms, a.late
                ),
            );
            for (code, count) in &a.errors {
                row("  error", format!("{count} × {code}"));
            }
            if a.unmatched > 0 {
                row("unmatched", a.unmatched.to_string());
            }
            if a.other_frames > 0 {
                row("other frames", a.other_frames.to_string());
            }
            row("round trip", latency(&a.rtt_us));
        }
        let width = rows.iter().map(|(name, _)| name.chars().count()).max().unwrap_or(0);
        let mut table = String::new();
        for (name, value) in rows {
            let _ = writeln!(table, "{name:<width$}  {value}");
        }
        table
    }

    /// Writes the report as pretty JSON to `path`.
    pub fn write_json(&self, path: &Path) -> Result<()> {
        let json = serde_json::to_string_pretty(self).expect("reports serialize");
        std::fs::write(path, json + "\n").with_context(|| format!("cannot write {}", path.display()))
    }
}

fn latency(q: &Quantiles) -> String {
    if q.count == 0 {
        return "no samples".to_owned();
    }
    format!(
        "p50 {}  p90 {}  p99 {}  p99.9 {}  max {}  ({} samples)",
        micros(q.p50),
        micros(q.p90),
        micros(q.p99),
        micros(q.p999),
        micros(q.max),
        q.count
    )
}

/// Microseconds in a readable unit.
fn micros(us: u64) -> String {
    match us {
        0..1_000 => format!("{us} µs"),
        1_000..1_000_000 => format!("{:.2} ms", us as f64 / 1e3),
        _ => format!("{:.2} s", us as f64 / 1e6),
    }
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

fn percent(part: u64, whole: u64) -> f64 {
    if whole == 0 { 0.0 } else { 100.0 * part as f64 / whole as f64 }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report() -> Report {
        let mut latency = hist::micros();
        latency.saturating_record(1_500);
        let connected = Connected {
            opened: 9,
            opened_per_edge: vec![9],
            failed: 1,
            errors: BTreeMap::from([("tcp: refused".to_owned(), 1)]),
            handshake: latency.clone(),
            elapsed: Duration::from_secs(3),
        };
        let delivered = Delivered {
            expected: 90,
            received: 89,
            distinct: 88,
            duplicates: 1,
            unexpected: 0,
            other_frames: 0,
            closed_early: 0,
            latency,
            last_received_unix_nanos: 5_000_000_000,
        };
        let published = Published {
            messages: 10,
            elapsed: Duration::from_secs(1),
            started_unix_nanos: 3_000_000_000,
            first_unix_nanos: 3_000_000_000,
        };
        Report {
            scenario: "broadcast",
            settings: serde_json::json!({"receivers": 10}),
            connections: Connections::new(10, &connected, 0),
            memory: vec![ServerMemory::new(42, 9, 1024 * 1024, 1024 * 1024 + 9 * 2048)],
            cpu: vec![ServerCpu { pid: 42, seconds: 0.0006 }, ServerCpu { pid: 43, seconds: 0.0002 }],
            tool_cpu: Some(0.0016),
            delivery: Some(Delivery::new(&published, &delivered)),
            actions: None,
        }
    }

    fn actions_report() -> Report {
        let mut rtt = hist::micros();
        for us in [700, 900, 1_200, 4_000] {
            rtt.saturating_record(us);
        }
        let acted = Acted {
            sent: 4,
            unsent: 0,
            sending: Duration::from_secs(2),
            replied: 3,
            errors: BTreeMap::from([(504, 1)]),
            timeouts: 1,
            late: 0,
            unmatched: 0,
            other_frames: 0,
            rtt,
        };
        Report {
            scenario: "actions",
            delivery: None,
            actions: Some(Actions::new("echo", 2.5, 5000, &acted)),
            ..report()
        }
    }

    #[test]
    fn json_has_the_documented_shape() {
        let json = serde_json::to_value(report()).unwrap();
        assert_eq!(json["scenario"], "broadcast");
        assert_eq!(json["settings"]["receivers"], 10);
        let connections = &json["connections"];
        assert_eq!(connections["opened"], 9);
        assert_eq!(connections["per_sec"], 3.0);
        assert_eq!(connections["errors"]["tcp: refused"], 1);
        assert_eq!(connections["handshake_us"]["count"], 1);
        assert_eq!(json["cpu"][1]["pid"], 43);
        assert_eq!(json["cpu"][1]["seconds"], 0.0002);
        let memory = &json["memory"][0];
        assert_eq!(memory["pid"], 42);
        assert_eq!(memory["per_conn_bytes"], 2048.0);
        assert_eq!(memory["per_conn_kib"], 2.0);
        let delivery = &json["delivery"];
        assert_eq!(delivery["lost"], 2);
        assert_eq!(delivery["delivery_seconds"], 2.0);
        assert_eq!(delivery["deliveries_per_sec"], 44.5);
        assert_eq!(delivery["publish_rate"], 10.0);
        assert_eq!(delivery["latency_percentiles_us"][0], serde_json::json!([0.0, 1500]));
        for key in ["count", "mean", "p50", "p90", "p99", "p999", "max"] {
            assert!(delivery["latency_us"].get(key).is_some(), "latency_us.{key}");
        }
    }

    #[test]
    fn scenarios_without_delivery_have_null_delivery() {
        let report = Report { delivery: None, ..report() };
        assert!(serde_json::to_value(report).unwrap()["delivery"].is_null());
    }

    #[test]
    fn the_summary_names_every_measure() {
        let summary = report().summary();
        for needle in ["connect rate", "3 conn/s", "2048 B = 2.00 KiB", "lost", "p99", "1.50 ms"] {
            assert!(summary.contains(needle), "{needle:?} missing from\n{summary}");
        }
    }

    /// The server's CPU is summed over its processes and divided by what
    /// the scenario times: 0.8 ms over 89 deliveries, 3 answers or 9
    /// connections.
    #[test]
    fn the_server_cpu_is_per_delivery_per_answer_or_per_connection() {
        assert!(report().summary().contains(": 8989 ns per delivery"), "{}", report().summary());
        assert!(actions_report().summary().contains(": 267 µs per answer"));
        let idle = Report { delivery: None, ..report() };
        assert!(idle.summary().contains(": 89 µs per connection"));
        let unmeasured = Report { cpu: Vec::new(), tool_cpu: None, ..report() };
        assert_eq!(unmeasured.cpu_seconds(), None);
        assert!(!unmeasured.summary().contains("server CPU"));
        assert!(!unmeasured.summary().contains("load tool CPU"));
        assert!(report().summary().contains("load tool CPU  0.00 s: 17978 ns per delivery"), "{}", report().summary());
    }

    #[test]
    fn actions_report_rate_errors_and_round_trips() {
        assert!(serde_json::to_value(report()).unwrap()["actions"].is_null());
        let report = actions_report();
        let json = serde_json::to_value(&report).unwrap();
        let actions = &json["actions"];
        assert_eq!(actions["send_rate"], 2.0);
        assert_eq!(actions["errors"]["504"], 1);
        assert_eq!(actions["timeouts"], 1);
        assert_eq!(actions["rtt_us"]["count"], 4);
        let summary = report.summary();
        for needle in ["2.0/s of 2.5/s", "3 replies, 1 errors, 1 timeouts", "1 × 504", "round trip", "p50 900 µs"] {
            assert!(
                summary.contains(needle),
                "{needle:?} missing from
{summary}"
            );
        }
    }

    #[test]
    fn memory_per_connection_handles_zero_and_shrinking() {
        assert_eq!(ServerMemory::new(1, 0, 10, 20).per_conn_bytes, 0.0);
        assert_eq!(ServerMemory::new(1, 2, 20, 10).per_conn_bytes, -5.0);
    }
}
