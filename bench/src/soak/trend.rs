//! The trend test: does a sampled figure keep growing once warmed up?
//!
//! Over the samples of the second half of the run (the first half is the
//! warm-up: allocator arenas, caches and pools fill, topics for every user
//! and room come into being), fit `y = a + b·t` by least squares. The
//! figure *trends upward* when the growth the line predicts across that
//! window, `b · (t_last − t_first)`, is more than
//! `max(relative × mean(y), floor)`: a share of the figure's own size, or
//! a floor in its own unit for figures whose noise is a few units (open
//! files, tasks).
//!
//! A steady figure's fitted growth is noise, a fraction of its spread; a
//! leak's grows with the window, so a longer run only makes it clearer.

use serde::Serialize;

/// Samples needed in the judged window for a verdict: a line through two
/// points is only their difference.
pub const MIN_SAMPLES: usize = 3;

/// What the trend test found for one figure.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Trend {
    /// Samples in the judged window (the second half of the run).
    pub samples: usize,
    /// Mean of the figure over the window.
    pub mean: f64,
    /// Least-squares slope, in the figure's unit per hour.
    pub slope_per_hour: f64,
    /// Growth the slope predicts across the window.
    pub growth: f64,
    /// The most growth allowed: `max(relative × mean, floor)`.
    pub allowed: f64,
    /// Whether `growth > allowed`.
    pub upward: bool,
}

/// Least-squares slope of `points` (x, y); `None` for fewer than two
/// distinct x.
pub fn slope(points: &[(f64, f64)]) -> Option<f64> {
    let n = points.len() as f64;
    let mean_x = points.iter().map(|p| p.0).sum::<f64>() / n;
    let mean_y = points.iter().map(|p| p.1).sum::<f64>() / n;
    let sxx: f64 = points.iter().map(|p| (p.0 - mean_x).powi(2)).sum();
    let sxy: f64 = points.iter().map(|p| (p.0 - mean_x) * (p.1 - mean_y)).sum();
    (sxx > 0.0).then(|| sxy / sxx)
}

/// Judges the samples `(seconds since start, value)` of a run that lasted
/// `run_seconds`; `None` when the second half holds fewer than
/// [`MIN_SAMPLES`].
pub fn judge(samples: &[(f64, f64)], run_seconds: f64, relative: f64, floor: f64) -> Option<Trend> {
    let window: Vec<(f64, f64)> = samples.iter().copied().filter(|&(t, _)| t >= run_seconds / 2.0).collect();
    if window.len() < MIN_SAMPLES {
        return None;
    }
    let slope = slope(&window)?;
    let span = window.last()?.0 - window.first()?.0;
    let mean = window.iter().map(|p| p.1).sum::<f64>() / window.len() as f64;
    let growth = slope * span;
    let allowed = (relative * mean.abs()).max(floor);
    Some(Trend {
        samples: window.len(),
        mean,
        slope_per_hour: slope * 3600.0,
        growth,
        allowed,
        upward: growth > allowed,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One sample a minute for an hour, of `value(minute)`.
    fn hour(value: impl Fn(f64) -> f64) -> Vec<(f64, f64)> {
        (0..=60).map(|m| (m as f64 * 60.0, value(m as f64))).collect()
    }

    #[test]
    fn the_slope_of_a_line_is_its_slope() {
        let line: Vec<(f64, f64)> = (0..10).map(|x| (x as f64, 3.0 + 2.0 * x as f64)).collect();
        assert!((slope(&line).unwrap() - 2.0).abs() < 1e-12);
        assert_eq!(slope(&[(1.0, 5.0), (1.0, 7.0)]), None);
    }

    #[test]
    fn a_flat_figure_does_not_trend() {
        let trend = judge(&hour(|_| 100.0), 3600.0, 0.05, 1.0).unwrap();
        assert_eq!(trend.samples, 31, "minutes 30 to 60");
        assert_eq!((trend.growth, trend.upward), (0.0, false));
    }

    #[test]
    fn warm_up_growth_in_the_first_half_is_forgiven() {
        // Grows by 50 in the first half hour, then stays.
        let trend = judge(&hour(|m| 100.0 + 50.0 * (m / 30.0).min(1.0)), 3600.0, 0.05, 1.0).unwrap();
        assert!(!trend.upward, "{trend:?}");
    }

    #[test]
    fn a_leak_trends_upward() {
        // One unit a minute on 1000: 30 over the judged half hour, 3 %.
        let trend = judge(&hour(|m| 1000.0 + m), 3600.0, 0.02, 1.0).unwrap();
        assert!((trend.growth - 30.0).abs() < 1e-9 && (trend.slope_per_hour - 60.0).abs() < 1e-9, "{trend:?}");
        assert!(trend.upward);
        // The same leak within a looser bound.
        assert!(!judge(&hour(|m| 1000.0 + m), 3600.0, 0.05, 1.0).unwrap().upward);
    }

    #[test]
    fn noise_stays_within_the_bound() {
        // ±3 around 200, alternating: no trend.
        let trend =
            judge(&hour(|m| 200.0 + if (m as u64).is_multiple_of(2) { 3.0 } else { -3.0 }), 3600.0, 0.02, 4.0).unwrap();
        assert!(trend.growth.abs() < 1.0 && !trend.upward, "{trend:?}");
    }

    #[test]
    fn small_counts_are_judged_against_the_floor() {
        // 10 open files growing by 2 over the window: 20 %, but within a
        // floor of 4 files.
        let samples = hour(|m| 10.0 + (m - 30.0).max(0.0) / 15.0);
        let trend = judge(&samples, 3600.0, 0.05, 4.0).unwrap();
        assert!((trend.growth - 2.0).abs() < 1e-9 && !trend.upward, "{trend:?}");
        assert!(judge(&samples, 3600.0, 0.05, 1.0).unwrap().upward);
    }

    #[test]
    fn a_figure_that_falls_does_not_trend_upward() {
        assert!(!judge(&hour(|m| 1000.0 - 10.0 * m), 3600.0, 0.01, 0.0).unwrap().upward);
    }

    #[test]
    fn too_few_samples_give_no_verdict() {
        let samples = [(0.0, 1.0), (40.0, 2.0), (50.0, 3.0), (60.0, 4.0)];
        assert_eq!(judge(&samples[..3], 60.0, 0.05, 1.0), None);
        assert!(judge(&samples, 60.0, 0.05, 1.0).unwrap().upward);
    }
}
