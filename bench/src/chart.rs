//! The SVG chart: P1 and P3 latency distributions (one line per operator
//! and the floor) and the burst timeline (Jobs existing over time). Text is
//! written as SVG `<text>` (plotters without a font backend), so no system
//! font is needed to draw it.

use std::collections::BTreeMap;
use std::path::Path;

use plotters::prelude::*;

use crate::error::{BenchError, Result};
use crate::report::Report;
use crate::stats::Summary;

const PALETTE: [RGBColor; 6] = [
    RGBColor(0x1f, 0x77, 0xb4),
    RGBColor(0xd6, 0x27, 0x28),
    RGBColor(0x2c, 0xa0, 0x2c),
    RGBColor(0x94, 0x67, 0xbd),
    RGBColor(0xff, 0x7f, 0x0e),
    RGBColor(0x8c, 0x56, 0x4b),
];

/// Black for the floor, grey for floor (b), then one colour per operator
/// in the order of the series (the same in every panel).
fn colors(series: &BTreeMap<String, Vec<f64>>) -> Vec<RGBColor> {
    let mut next = 0;
    series
        .keys()
        .map(|name| match name.as_str() {
            s if s.starts_with("floor (b)") => RGBColor(0x88, 0x88, 0x88),
            s if s.starts_with("floor") => BLACK,
            _ => {
                next += 1;
                PALETTE[(next - 1) % PALETTE.len()]
            }
        })
        .collect()
}

pub fn draw(report: &Report, path: &Path) -> Result<()> {
    let root = SVGBackend::new(path, (1500, 460)).into_drawing_area();
    root.fill(&WHITE).map_err(chart_error)?;
    let panels = root.split_evenly((1, 3));
    cdf(&panels[0], "P1: create → Job exists (ms)", &report.p1)?;
    cdf(&panels[1], "P3: Job complete → run Finished (ms)", &report.p3)?;
    timeline(&panels[2], "P2: burst, Jobs existing over time (s)", &report.bursts)?;
    root.present().map_err(chart_error)?;
    Ok(())
}

fn chart_error(e: impl std::fmt::Display) -> BenchError {
    BenchError::Chart(e.to_string())
}

/// Cumulative distribution: x the latency, y the share of samples at or
/// below it; x is cut at the largest p99 so one outlier cannot flatten it.
fn cdf(
    area: &DrawingArea<SVGBackend<'_>, plotters::coord::Shift>,
    title: &str,
    series: &BTreeMap<String, Vec<f64>>,
) -> Result<()> {
    let p99 = |values: &Vec<f64>| Summary::of(values).map_or(1.0, |s| s.p99);
    let x_max = series.values().map(p99).fold(1.0_f64, f64::max) * 1.1;
    let x_min = series.values().flatten().copied().fold(0.0_f64, f64::min).min(0.0);
    let mut chart = ChartBuilder::on(area)
        .caption(title, ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(48)
        .build_cartesian_2d(x_min..x_max, 0.0..1.0_f64)
        .map_err(chart_error)?;
    chart
        .configure_mesh()
        .x_desc("ms")
        .y_desc("share of runs")
        .label_style(("sans-serif", 12))
        .draw()
        .map_err(chart_error)?;
    for ((name, values), style) in series.iter().zip(colors(series)) {
        let mut sorted = values.clone();
        sorted.sort_by(f64::total_cmp);
        let n = sorted.len().max(1) as f64;
        let points: Vec<(f64, f64)> =
            sorted.iter().enumerate().map(|(i, v)| (v.min(x_max), (i + 1) as f64 / n)).collect();
        chart
            .draw_series(LineSeries::new(points, style.stroke_width(2)))
            .map_err(chart_error)?
            .label(name.clone())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], style.stroke_width(2)));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .label_font(("sans-serif", 12))
        .draw()
        .map_err(chart_error)?;
    Ok(())
}

fn timeline(
    area: &DrawingArea<SVGBackend<'_>, plotters::coord::Shift>,
    title: &str,
    series: &BTreeMap<String, Vec<f64>>,
) -> Result<()> {
    let x_max = series.values().flatten().copied().fold(0.1_f64, f64::max) * 1.05;
    let y_max = series.values().map(Vec::len).max().unwrap_or(1).max(1) as f64;
    let mut chart = ChartBuilder::on(area)
        .caption(title, ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(56)
        .build_cartesian_2d(0.0..x_max, 0.0..y_max * 1.02)
        .map_err(chart_error)?;
    chart
        .configure_mesh()
        .x_desc("s since the first create")
        .y_desc("Jobs existing")
        .y_label_formatter(&|v| format!("{v:.0}"))
        .label_style(("sans-serif", 12))
        .draw()
        .map_err(chart_error)?;
    for ((name, times), style) in series.iter().zip(colors(series)) {
        let points: Vec<(f64, f64)> =
            std::iter::once((0.0, 0.0)).chain(times.iter().enumerate().map(|(i, t)| (*t, (i + 1) as f64))).collect();
        chart
            .draw_series(LineSeries::new(points, style.stroke_width(2)))
            .map_err(chart_error)?
            .label(name.clone())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], style.stroke_width(2)));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .label_font(("sans-serif", 12))
        .draw()
        .map_err(chart_error)?;
    Ok(())
}
