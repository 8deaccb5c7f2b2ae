//! The front as an SVG picture (plotters' SVG backend): every point judged, the Pareto front,
//! the tolerance below the best score and the recommended point.

use plotters::prelude::*;

use super::TuneReport;
use crate::error::{Error, Result};

/// Picture size (pixels).
const SIZE: (u32, u32) = (900, 560);

/// The score axis spans at most this much below the best score; points under it are counted
/// in the legend, not drawn.
const SPAN: f64 = 0.15;

/// Judged points closer than this many pixels (in both directions) are drawn as one circle
/// (radius 3: they would overlap anyway).
const CELL: i32 = 2;

fn plot_error(e: impl std::fmt::Display) -> Error {
    Error::Backend(format!("drawing the front: {e}"))
}

/// The report's points as an SVG picture: predicted encrypted latency per sample (log scale)
/// against the simulated validation score; grey: every point judged, blue: the Pareto front
/// (each labelled with its bootstraps and parameter set), dashed: the best score less the
/// tolerance, red: the recommended point.
pub fn render_svg(r: &TuneReport) -> Result<String> {
    let mut buf = String::new();
    draw(r, &mut buf).map_err(plot_error)?;
    Ok(buf)
}

fn draw(r: &TuneReport, buf: &mut String) -> std::result::Result<(), Box<dyn std::error::Error>> {
    let metric = if r.metric == "r2" { "R²" } else { "accuracy" };
    let best = r.best_metric();
    let floor = (best - SPAN).max(
        r.points
            .iter()
            .map(|p| p.metric)
            .fold(f64::INFINITY, f64::min),
    );
    let shown: Vec<&super::Point> = r.points.iter().filter(|p| p.metric >= floor).collect();
    let (lo, hi) = shown.iter().fold((f64::INFINITY, 0.0f64), |(lo, hi), p| {
        (lo.min(p.latency_ms), hi.max(p.latency_ms))
    });
    let (x0, x1) = (lo / 1.3, hi * 1.3);
    let pad = ((best - floor) * 0.08).max(0.005);
    let (y0, y1) = (floor - pad, best + pad);

    let root = SVGBackend::with_string(buf, SIZE).into_drawing_area();
    root.fill(&WHITE)?;
    let folds = r.folds.describe();
    let mut chart = ChartBuilder::on(&root)
        .caption(
            format!(
                "{}: simulated FHE {metric} on validation rows vs predicted latency",
                r.data
            ),
            ("sans-serif", 20),
        )
        .margin(16)
        .x_label_area_size(52)
        .y_label_area_size(70)
        .build_cartesian_2d((x0..x1).log_scale(), y0..y1)?;
    chart
        .configure_mesh()
        .x_desc(format!(
            "predicted encrypted latency per sample (ms, {} core{}, log scale)",
            r.cores,
            if r.cores == 1 { "" } else { "s" }
        ))
        .y_desc(format!(
            "validation {metric} ({folds}, {} noise seeds)",
            r.noise_seeds
        ))
        .x_labels(12)
        .x_label_formatter(&|v| {
            if *v < 1.0 {
                format!("{v:.1}")
            } else {
                format!("{v:.0}")
            }
        })
        .y_label_formatter(&|v| format!("{v:.3}"))
        .light_line_style(WHITE.mix(0.0))
        .draw()?;

    let grey = RGBColor(170, 170, 170);
    let blue = RGBColor(31, 97, 170);
    // A whole-space search judges thousands of points, most of them on top of one another:
    // one circle per cell of `CELL` pixels draws the same picture with far fewer circles
    // (iris's whole space: 2,465 of 13,175, a quarter of the file).
    let mut drawn = std::collections::HashSet::new();
    let cells: Vec<&super::Point> = shown
        .iter()
        .copied()
        .filter(|p| {
            let (px, py) = chart.backend_coord(&(p.latency_ms, p.metric));
            drawn.insert((px.div_euclid(CELL), py.div_euclid(CELL)))
        })
        .collect();
    chart
        .draw_series(
            cells
                .iter()
                .map(|p| Circle::new((p.latency_ms, p.metric), 3, grey.filled())),
        )?
        .label(match r.points.len() - shown.len() {
            0 => format!("candidate × parameter set ({} points)", r.points.len()),
            hidden => format!(
                "candidate × parameter set ({} points, {hidden} below {floor:.2} not shown)",
                r.points.len()
            ),
        })
        .legend(move |(x, y)| Circle::new((x, y), 3, grey.filled()));

    let cut = best - r.tolerance;
    chart
        .draw_series(DashedLineSeries::new(
            [(x0, cut), (x1, cut)],
            6,
            4,
            RGBColor(120, 120, 120).stroke_width(1),
        ))?
        .label(format!("best {metric} − tolerance {}", r.tolerance))
        .legend(|(x, y)| PathElement::new([(x, y), (x + 16, y)], RGBColor(120, 120, 120)));

    let on_front: Vec<&super::Point> = r
        .front
        .iter()
        .map(|&i| &r.points[i])
        .filter(|p| p.metric >= floor)
        .collect();
    let front: Vec<(f64, f64)> = on_front.iter().map(|p| (p.latency_ms, p.metric)).collect();
    chart
        .draw_series(LineSeries::new(front.clone(), blue.stroke_width(2)))?
        .label("Pareto front")
        .legend(move |(x, y)| PathElement::new([(x, y), (x + 16, y)], blue.stroke_width(2)));
    chart.draw_series(front.iter().map(|&xy| Circle::new(xy, 5, blue.filled())))?;
    // Labels below and right of their point, skipping any that would overlap the last drawn.
    let mut last: Option<(i32, i32)> = None;
    let mut labels = Vec::new();
    for p in &on_front {
        let (px, py) = chart.backend_coord(&(p.latency_ms, p.metric));
        if last.is_some_and(|(lx, ly)| (px - lx).abs() < 90 && (py - ly).abs() < 14) {
            continue;
        }
        last = Some((px, py));
        let bits = p.set_label.split(' ').next().unwrap_or("");
        labels.push(
            EmptyElement::at((p.latency_ms, p.metric))
                + Text::new(
                    format!("{:.0} PBS, {bits}", p.pbs_count),
                    (7, 3),
                    ("sans-serif", 12).into_font().color(&blue),
                ),
        );
    }
    chart.draw_series(labels)?;

    let rec = r.recommended_point();
    chart
        .draw_series([Circle::new(
            (rec.latency_ms, rec.metric),
            9,
            RED.stroke_width(3),
        )])?
        .label(format!(
            "recommended: {:.0} ms, {metric} {:.3}",
            rec.latency_ms, rec.metric
        ))
        .legend(|(x, y)| Circle::new((x + 8, y), 5, RED.stroke_width(2)));
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .draw()?;
    root.present()?;
    Ok(())
}
