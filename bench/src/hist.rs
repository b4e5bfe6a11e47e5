//! Latency histograms: how they are made, carried from a worker process to
//! the parent, merged and summarised.
//!
//! Every histogram counts microseconds with three significant digits, so
//! histograms from different processes have the same buckets and merge
//! exactly. A worker sends only its non-empty buckets as `[value, count]`
//! pairs: a few hundred pairs for a typical run, plain JSON, no codec.

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

/// Highest latency recorded: ten minutes (one broadcast to 500,000 on one
/// loaded machine takes two). Anything slower is clamped to it.
const MAX_MICROS: u64 = 600_000_000;
const SIGNIFICANT_DIGITS: u8 = 3;

/// An empty microsecond histogram with the tool's bucket layout.
pub fn micros() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_MICROS, SIGNIFICANT_DIGITS).expect("constant histogram bounds are valid")
}

/// The non-empty buckets of a histogram, as `[value, count]` pairs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Buckets(Vec<(u64, u64)>);

impl From<&Histogram<u64>> for Buckets {
    fn from(histogram: &Histogram<u64>) -> Buckets {
        let pairs = histogram.iter_recorded().map(|bucket| (bucket.value_iterated_to(), bucket.count_at_value()));
        Buckets(pairs.collect())
    }
}

impl Buckets {
    /// Adds these counts to `histogram`. Each value is the top of its bucket
    /// in the shared layout, so it lands in the same bucket again.
    pub fn add_to(&self, histogram: &mut Histogram<u64>) {
        for &(value, count) in &self.0 {
            histogram.saturating_record_n(value, count);
        }
    }
}

/// The quantiles a report shows, in microseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Quantiles {
    pub count: u64,
    pub mean: f64,
    pub p50: u64,
    pub p90: u64,
    pub p99: u64,
    pub p999: u64,
    pub max: u64,
}

impl From<&Histogram<u64>> for Quantiles {
    fn from(histogram: &Histogram<u64>) -> Quantiles {
        if histogram.is_empty() {
            return Quantiles::default();
        }
        Quantiles {
            count: histogram.len(),
            mean: histogram.mean(),
            p50: histogram.value_at_quantile(0.50),
            p90: histogram.value_at_quantile(0.90),
            p99: histogram.value_at_quantile(0.99),
            p999: histogram.value_at_quantile(0.999),
            max: histogram.max(),
        }
    }
}

/// The percentiles a latency distribution is drawn through: dense in the
/// tail, where servers differ.
const CURVE_PERCENTILES: [f64; 14] =
    [0.0, 10.0, 25.0, 50.0, 75.0, 90.0, 95.0, 99.0, 99.5, 99.9, 99.95, 99.99, 99.999, 100.0];

/// `[percentile, value]` pairs through the distribution; empty for an
/// empty histogram.
pub fn percentiles(histogram: &Histogram<u64>) -> Vec<(f64, u64)> {
    if histogram.is_empty() {
        return Vec::new();
    }
    CURVE_PERCENTILES.iter().map(|&p| (p, histogram.value_at_percentile(p))).collect()
}

/// A duration in whole microseconds, the histograms' unit.
pub fn duration_micros(duration: std::time::Duration) -> u64 {
    u64::try_from(duration.as_micros()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recorded(values: impl IntoIterator<Item = u64>) -> Histogram<u64> {
        let mut histogram = micros();
        for value in values {
            histogram.saturating_record(value);
        }
        histogram
    }

    #[test]
    fn merged_buckets_equal_one_histogram_of_everything() {
        let a: Vec<u64> = (1..5_000).map(|i| i * 7).collect();
        let b: Vec<u64> = (1..3_000).map(|i| i * i).collect();
        let mut merged = micros();
        for part in [recorded(a.clone()), recorded(b.clone())] {
            let wire = serde_json::to_string(&Buckets::from(&part)).unwrap();
            serde_json::from_str::<Buckets>(&wire).unwrap().add_to(&mut merged);
        }
        let direct = recorded(a.into_iter().chain(b));
        assert_eq!(merged.len(), direct.len());
        assert_eq!(Quantiles::from(&merged).p99, Quantiles::from(&direct).p99);
        assert_eq!(Buckets::from(&merged), Buckets::from(&direct));
    }

    #[test]
    fn buckets_travel_as_pairs() {
        let wire = serde_json::to_value(Buckets::from(&recorded([10, 10, 20]))).unwrap();
        assert_eq!(wire, serde_json::json!([[10, 2], [20, 1]]));
    }

    #[test]
    fn percentiles_run_from_min_to_max() {
        let curve = percentiles(&recorded(1..=1000));
        assert_eq!(curve.first(), Some(&(0.0, 1)));
        assert_eq!(curve.last(), Some(&(100.0, 1000)));
        assert!(curve.windows(2).all(|w| w[0].1 <= w[1].1));
        assert!(percentiles(&micros()).is_empty());
    }

    #[test]
    fn quantiles_of_nothing_are_zero() {
        assert_eq!(Quantiles::from(&micros()), Quantiles::default());
    }

    #[test]
    fn out_of_range_values_are_clamped() {
        let q = Quantiles::from(&recorded([0, 10 * MAX_MICROS]));
        assert_eq!(q.count, 2);
        assert!(q.max >= MAX_MICROS);
    }
}
