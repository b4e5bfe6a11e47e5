//! The soak's plot: one PNG, one panel per kind of figure (memory, open
//! files, tasks, NATS subscriptions and sessions), one line per process,
//! against minutes into the run. The judged window (the second half) is
//! shaded.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result};
use plotters::coord::Shift;
use plotters::prelude::*;

use super::sample::{Kind, Sample};
use crate::suite::plot::{FAMILY, load_font};

const SIZE: (u32, u32) = (1200, 900);
const PANELS: [Kind; 4] = [Kind::RssMib, Kind::OpenFiles, Kind::Tasks, Kind::Subscriptions];

/// A process's color, the same in every panel.
fn color(source: &str) -> RGBColor {
    match source {
        "edge" => RGBColor(214, 39, 40),
        "router" => RGBColor(31, 119, 180),
        "handlers" => RGBColor(44, 160, 44),
        _ => RGBColor(148, 103, 189),
    }
}

/// Every line of one kind: (process, points in minutes).
fn lines(samples: &[Sample], kinds: &[Kind]) -> BTreeMap<String, Vec<(f64, f64)>> {
    let mut lines: BTreeMap<String, Vec<(f64, f64)>> = BTreeMap::new();
    for sample in samples {
        for reading in sample.readings.iter().filter(|r| kinds.contains(&r.kind)) {
            let name = match reading.kind {
                Kind::Sessions => format!("{} sessions", reading.source),
                _ => reading.source.to_owned(),
            };
            lines.entry(name).or_default().push((sample.t / 60.0, reading.value));
        }
    }
    lines
}

/// Draws the samples of a run of `run_seconds` into `path`.
pub fn draw(samples: &[Sample], run_seconds: f64, title: &str, path: &Path) -> Result<()> {
    load_font()?;
    let root = BitMapBackend::new(path, SIZE).into_drawing_area();
    root.fill(&WHITE)?;
    let root = root.titled(title, (FAMILY, 24))?;
    for (area, kind) in root.split_evenly((2, 2)).iter().zip(PANELS) {
        // Sessions share the subscriptions' panel: both are counts that
        // follow the load.
        let kinds: &[Kind] = if kind == Kind::Subscriptions { &[Kind::Subscriptions, Kind::Sessions] } else { &[kind] };
        panel(area, kind.label(), &lines(samples, kinds), run_seconds / 60.0)?;
    }
    root.present().with_context(|| format!("cannot write {}", path.display()))
}

fn panel(
    area: &DrawingArea<BitMapBackend<'_>, Shift>,
    label: &str,
    lines: &BTreeMap<String, Vec<(f64, f64)>>,
    minutes: f64,
) -> Result<()> {
    let y_max = lines.values().flatten().map(|p| p.1).fold(1.0, f64::max) * 1.15;
    let mut chart = ChartBuilder::on(area)
        .caption(label, (FAMILY, 18))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(60)
        .build_cartesian_2d(0.0..minutes.max(1e-3), 0.0..y_max)?;
    let judged = [(minutes / 2.0, 0.0), (minutes, y_max)];
    chart.draw_series(std::iter::once(Rectangle::new(judged, RGBColor(238, 238, 238).filled())))?;
    let decimals = if minutes < 10.0 { 1 } else { 0 };
    chart
        .configure_mesh()
        .x_desc("minutes (the judged second half shaded)")
        .x_label_formatter(&|x| format!("{x:.decimals$}"))
        .y_label_formatter(&|y| format!("{y:.0}"))
        .label_style((FAMILY, 13))
        .draw()?;
    for (name, points) in lines {
        let source = name.split(' ').next().unwrap_or_default();
        let style =
            if name.ends_with("sessions") { color(source).stroke_width(1) } else { color(source).stroke_width(2) };
        chart
            .draw_series(LineSeries::new(points.iter().copied(), style))?
            .label(name.as_str())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], style));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .label_font((FAMILY, 13))
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()?;
    Ok(())
}
