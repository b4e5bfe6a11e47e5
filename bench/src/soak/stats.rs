//! What the soak's clients counted: connections and how they ended,
//! requests answered right, broadcasts, slow consumers, and every failure
//! with what happened (the first few in full).

use std::collections::BTreeMap;
use std::sync::Mutex;

use serde::Serialize;

/// Failures kept in full; the rest are only counted.
const EXAMPLES_KEPT: usize = 20;

/// How one connection went, when it went right.
#[derive(Debug)]
pub struct Outcome {
    /// Requests sent and answered as expected.
    pub requests: u64,
    /// Numbered broadcasts received.
    pub broadcasts: u64,
    /// How it was closed.
    pub ending: &'static str,
}

/// The counts so far; shared by every task of the soak.
#[derive(Debug, Default)]
pub struct Stats {
    counts: Mutex<Counts>,
}

#[derive(Debug, Default, Clone, Serialize)]
pub struct Counts {
    /// Connections that lived and closed as planned, by how they closed.
    pub connections: BTreeMap<&'static str, u64>,
    pub requests: u64,
    pub broadcasts_received: u64,
    pub broadcasts_published: u64,
    /// Slow consumers the edge closed as it should.
    pub slow_consumers: u64,
    pub failures: u64,
    /// The first failures, in full.
    pub failure_examples: Vec<String>,
}

impl Stats {
    fn with<T>(&self, f: impl FnOnce(&mut Counts) -> T) -> T {
        f(&mut self.counts.lock().expect("never poisoned"))
    }

    pub fn record(&self, outcome: Outcome) {
        self.with(|c| {
            *c.connections.entry(outcome.ending).or_default() += 1;
            c.requests += outcome.requests;
            c.broadcasts_received += outcome.broadcasts;
        });
    }

    pub fn published(&self) {
        self.with(|c| c.broadcasts_published += 1);
    }

    pub fn slow_consumer(&self) {
        self.with(|c| c.slow_consumers += 1);
    }

    pub fn fail(&self, what: &str) {
        eprintln!("soak failure: {what}");
        self.with(|c| {
            c.failures += 1;
            if c.failure_examples.len() < EXAMPLES_KEPT {
                c.failure_examples.push(what.to_owned());
            }
        });
    }

    pub fn snapshot(&self) -> Counts {
        self.with(|c| c.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_outcomes_and_keeps_the_first_failures() {
        let stats = Stats::default();
        stats.record(Outcome { requests: 5, broadcasts: 40, ending: "dropped" });
        stats.record(Outcome { requests: 2, broadcasts: 10, ending: "dropped" });
        for i in 0..EXAMPLES_KEPT + 5 {
            stats.fail(&format!("failure {i}"));
        }
        let counts = stats.snapshot();
        assert_eq!(counts.connections["dropped"], 2);
        assert_eq!((counts.requests, counts.broadcasts_received), (7, 50));
        assert_eq!(counts.failures, EXAMPLES_KEPT as u64 + 5);
        assert_eq!(counts.failure_examples.len(), EXAMPLES_KEPT);
        assert_eq!(counts.failure_examples[0], "failure 0");
    }
}
