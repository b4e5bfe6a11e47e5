//! The suite's plots, as PNG files: deliveries per second against
//! receivers, the latency distribution of the reference broadcast, and
//! server memory against connections. One line per gateway, the same color
//! for a gateway in every plot.
//!
//! Text needs a TrueType font; plotters reads it through `ab_glyph`, so the
//! tool needs no system font libraries, only a font file (DejaVu Sans, from
//! Debian's `fonts-dejavu-core`, or Liberation Sans).

use std::path::Path;

use anyhow::{Context, Result, anyhow};
use plotters::coord::Shift;
use plotters::coord::ranged1d::{AsRangedCoord, ValueFormatter};
use plotters::prelude::*;
use plotters::style::{FontStyle, register_font};

use super::Results;
use super::plan::Measure;
use super::servers::Contender;
use super::summary::{best_clean_rate, contenders, is_reference, kib_per_connection, report};
use crate::scenario::broadcast::Target;

/// Font files tried in order.
const FONTS: [&str; 2] = [
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
];
pub(crate) const FAMILY: &str = "sans-serif";
const SIZE: (u32, u32) = (960, 600);
/// Latency percentiles are drawn on a "nines" axis: x = -log10(1 - p), so
/// 90, 99, 99.9 and 99.99 are evenly spaced; the curve stops at 99.999.
const MAX_NINES: f64 = 5.0;

/// A gateway's color, the same in every plot.
fn color(contender: Contender) -> RGBColor {
    match contender {
        Contender::Herald => RGBColor(214, 39, 40),
        Contender::Uws => RGBColor(31, 119, 180),
        Contender::Ws => RGBColor(44, 160, 44),
        Contender::SocketIo => RGBColor(148, 103, 189),
        Contender::HeraldSocketIo => RGBColor(227, 119, 194),
        Contender::HeraldPusher => RGBColor(255, 127, 14),
        Contender::HeraldPusherRest => RGBColor(140, 86, 75),
        Contender::Soketi => RGBColor(23, 190, 207),
        Contender::Sockudo => RGBColor(188, 189, 34),
    }
}

/// Writes every plot into `dir`.
pub fn all(results: &Results, dir: &Path) -> Result<()> {
    load_font()?;
    deliveries(results, &dir.join("deliveries.png"))?;
    latency(results, &dir.join("latency.png"))?;
    memory(results, &dir.join("memory.png"))
}

/// Reads the font and registers it with plotters, for every plot the tool
/// draws.
pub(crate) fn load_font() -> Result<()> {
    let bytes = FONTS
        .iter()
        .find_map(|path| std::fs::read(path).ok())
        .with_context(|| format!("no font for the plots: install fonts-dejavu-core ({} not found)", FONTS[0]))?;
    // Plotters keeps fonts for the life of the process.
    register_font(FAMILY, FontStyle::Normal, Vec::leak(bytes)).map_err(|_| anyhow!("{} is not a usable font", FONTS[0]))
}

/// One gateway's points.
struct Series {
    contender: Contender,
    points: Vec<(f64, f64)>,
}

/// The points of every gateway that has any, `point(contender)` each.
fn series(results: &Results, point: impl Fn(Contender) -> Vec<(f64, f64)>) -> Vec<Series> {
    contenders(results)
        .into_iter()
        .map(|contender| Series { contender, points: point(contender) })
        .filter(|s| !s.points.is_empty())
        .collect()
}

/// Best clean deliveries per second against receivers.
fn deliveries(results: &Results, path: &Path) -> Result<()> {
    let mut receivers: Vec<u64> = results
        .outcomes
        .iter()
        .filter_map(|o| match o.step.measure {
            Measure::Broadcast { receivers, target: Target::All, .. } => Some(receivers),
            _ => None,
        })
        .collect();
    receivers.sort_unstable();
    receivers.dedup();
    let lines = series(results, |c| {
        receivers.iter().filter_map(|&n| Some((n as f64, best_clean_rate(results, c, n)?))).collect()
    });
    let chart = Chart {
        title: "Broadcast: deliveries per second without loss",
        x: "receivers",
        y: "deliveries / s (best of the offered rates)",
        x_log: false,
        y_log: false,
        x_tick: |x| format!("{x:.0}"),
        y_tick: thousands,
        legend: SeriesLabelPosition::UpperRight,
    };
    chart.draw(path, &lines)
}

/// Latency percentiles of the reference broadcast.
fn latency(results: &Results, path: &Path) -> Result<()> {
    let lines = series(results, |c| {
        let Some(delivery) = report(results, c, |m| is_reference(m, Target::All)).and_then(|r| r.delivery.as_ref())
        else {
            return Vec::new();
        };
        let to_nines = |p: f64| -(1.0 - p / 100.0).log10();
        delivery
            .latency_percentiles_us
            .iter()
            .filter(|&&(p, _)| p > 0.0 && to_nines(p) <= MAX_NINES)
            .map(|&(p, us)| (to_nines(p), (us.max(1) as f64) / 1000.0))
            .collect()
    });
    let chart = Chart {
        title: "Publish → delivery latency, 1,000 receivers at 100,000 deliveries/s",
        x: "percentile",
        y: "latency (ms)",
        x_log: false,
        y_log: true,
        x_tick: nines_label,
        y_tick: |y| format!("{y}"),
        legend: SeriesLabelPosition::LowerRight,
    };
    chart.draw(path, &lines)
}

/// A "nines" tick as a percentile (1 → 90, 3 → 99.9), blank between
/// whole nines.
fn nines_label(nines: f64) -> String {
    let whole = nines.round();
    if (nines - whole).abs() > 1e-6 || whole < 0.0 {
        return String::new();
    }
    let decimals = (whole as usize).saturating_sub(2);
    format!("{:.decimals$}", 100.0 - 100.0 * 10f64.powf(-whole))
}

/// A count in thousands: 250000 → "250k".
fn thousands(value: f64) -> String {
    format!("{:.0}k", value / 1000.0)
}

/// Server memory growth against idle connections.
fn memory(results: &Results, path: &Path) -> Result<()> {
    let lines = series(results, |c| {
        let mut points: Vec<(f64, f64)> = results
            .outcomes
            .iter()
            .filter(|o| o.step.contender == c)
            .filter_map(|o| match (&o.step.measure, &o.report) {
                (Measure::Idle { connections }, Some(r)) => {
                    Some((*connections as f64, kib_per_connection(r)? * *connections as f64 / 1024.0))
                }
                _ => None,
            })
            .collect();
        points.sort_by(|a, b| a.0.total_cmp(&b.0));
        points
    });
    let chart = Chart {
        title: "Server memory held by idle connections (RSS growth)",
        x: "connections",
        y: "MiB",
        x_log: false,
        y_log: false,
        x_tick: |x| format!("{x:.0}"),
        y_tick: |y| format!("{y:.0}"),
        legend: SeriesLabelPosition::UpperLeft,
    };
    chart.draw(path, &lines)
}

/// A line chart's labels and axes.
struct Chart {
    title: &'static str,
    x: &'static str,
    y: &'static str,
    x_log: bool,
    y_log: bool,
    x_tick: fn(f64) -> String,
    y_tick: fn(f64) -> String,
    /// Where the legend covers the least.
    legend: SeriesLabelPosition,
}

impl Chart {
    fn draw(&self, path: &Path, lines: &[Series]) -> Result<()> {
        let root = BitMapBackend::new(path, SIZE).into_drawing_area();
        root.fill(&WHITE)?;
        let all = lines.iter().flat_map(|s| s.points.iter());
        let (mut x_max, mut y_max, mut x_min, mut y_min) = (1.0f64, 1.0f64, f64::MAX, f64::MAX);
        for &(x, y) in all {
            (x_max, y_max, x_min, y_min) = (x_max.max(x), y_max.max(y), x_min.min(x), y_min.min(y));
        }
        let x_range = if self.x_log { x_min.min(x_max) / 2.0..x_max * 2.0 } else { 0.0..x_max * 1.08 };
        let y_range = if self.y_log { (y_min.min(y_max) / 2.0).max(1e-3)..y_max * 2.0 } else { 0.0..y_max * 1.15 };
        match (self.x_log, self.y_log) {
            (false, false) => self.lines(&root, x_range, y_range, lines),
            (true, false) => self.lines(&root, x_range.log_scale(), y_range, lines),
            (false, true) => self.lines(&root, x_range, y_range.log_scale(), lines),
            (true, true) => self.lines(&root, x_range.log_scale(), y_range.log_scale(), lines),
        }?;
        root.present().with_context(|| format!("cannot write {}", path.display()))
    }

    fn lines<X, Y>(&self, root: &DrawingArea<BitMapBackend<'_>, Shift>, x: X, y: Y, lines: &[Series]) -> Result<()>
    where
        X: AsRangedCoord<Value = f64>,
        Y: AsRangedCoord<Value = f64>,
        X::CoordDescType: ValueFormatter<f64>,
        Y::CoordDescType: ValueFormatter<f64>,
    {
        let mut chart = ChartBuilder::on(root)
            .caption(self.title, (FAMILY, 22))
            .margin(18)
            .x_label_area_size(48)
            .y_label_area_size(80)
            .build_cartesian_2d(x, y)?;
        chart
            .configure_mesh()
            .x_desc(self.x)
            .y_desc(self.y)
            .x_label_formatter(&|x| (self.x_tick)(*x))
            .y_label_formatter(&|y| (self.y_tick)(*y))
            .label_style((FAMILY, 14))
            .draw()?;
        for line in lines {
            let color = color(line.contender);
            chart
                .draw_series(LineSeries::new(line.points.iter().copied(), color.stroke_width(2)))?
                .label(line.contender.name())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 24, y)], color.stroke_width(3)));
            chart.draw_series(line.points.iter().map(|&point| Circle::new(point, 4, color.filled())))?;
        }
        chart
            .configure_series_labels()
            .position(self.legend.clone())
            .label_font((FAMILY, 15))
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nines_are_labelled_as_percentiles() {
        let labels: Vec<String> = [0.0, 1.0, 1.5, 2.0, 3.0, 4.0].into_iter().map(nines_label).collect();
        assert_eq!(labels, ["0", "90", "", "99", "99.9", "99.99"]);
    }

    #[test]
    fn counts_are_labelled_in_thousands() {
        assert_eq!(thousands(250_000.0), "250k");
        assert_eq!(thousands(0.0), "0k");
    }
}
