//! `herald-bench compare`: two suite runs step by step, each figure as the
//! first run's ÷ the second's: what a change (or a setting, such as
//! `--traces`) moved. Steps are matched by their label; a step only one
//! run has is left out.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde_json::Value;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The first run's results.json (the numerator)
    pub first: PathBuf,
    /// The second run's results.json (the denominator)
    pub second: PathBuf,
}

/// The figures compared, where a step's report has them: where in the
/// report, and how they read.
const FIGURES: [(&str, &str); 5] = [
    ("/delivery/deliveries_per_sec", "deliveries/s"),
    ("/delivery/latency_us/p50", "delivery p50 (µs)"),
    ("/delivery/latency_us/p99", "delivery p99 (µs)"),
    ("/actions/rtt_us/p50", "action p50 (µs)"),
    ("/actions/rtt_us/p99", "action p99 (µs)"),
];

pub fn run(args: &Args) -> Result<()> {
    print!("{}", table(&read(&args.first)?, &read(&args.second)?));
    Ok(())
}

fn read(path: &Path) -> Result<Value> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{} is not a suite's results.json", path.display()))
}

/// The markdown table of the figures both runs measured.
fn table(first: &Value, second: &Value) -> String {
    let mut out =
        String::from("| step | figure | first | second | first ÷ second |\n| --- | --- | ---: | ---: | ---: |\n");
    let outcomes = |run: &Value| run["outcomes"].as_array().cloned().unwrap_or_default();
    let second = outcomes(second);
    for step in outcomes(first) {
        let label = step["label"].as_str().unwrap_or_default();
        let Some(other) = second.iter().find(|other| other["label"] == step["label"]) else { continue };
        for (pointer, figure) in FIGURES {
            let value = |outcome: &Value| outcome["report"].pointer(pointer).and_then(Value::as_f64);
            if let (Some(a), Some(b)) = (value(&step), value(other)) {
                let ratio = if b == 0.0 { "–".to_owned() } else { format!("{:.2}×", a / b) };
                let _ = writeln!(out, "| {label} | {figure} | {a:.0} | {b:.0} | {ratio} |");
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn figures_of_the_same_step_are_divided() {
        let run = |per_sec: f64, p99: u64| {
            json!({"outcomes": [
                {"label": "Herald: broadcast", "report": {"delivery": {"deliveries_per_sec": per_sec,
                    "latency_us": {"p50": 100, "p99": p99}}}},
                {"label": "only here", "report": {"delivery": {"deliveries_per_sec": 1.0}}}
            ]})
        };
        let table = table(&run(90_000.0, 800), &json!({"outcomes": [run(100_000.0, 400)["outcomes"][0]]}));
        assert!(table.contains("| Herald: broadcast | deliveries/s | 90000 | 100000 | 0.90× |"), "{table}");
        assert!(table.contains("| Herald: broadcast | delivery p99 (µs) | 800 | 400 | 2.00× |"), "{table}");
        assert!(!table.contains("only here"), "{table}");
    }
}
