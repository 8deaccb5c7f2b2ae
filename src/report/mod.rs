//! Stage 6: reports. The compile-check report as text (for a person at a terminal), JSON (for
//! programs; fields documented in `docs/report.md`) and SVG (per layer, the distribution of
//! accumulator widths against the budget).

use std::fmt::Write as _;

use crate::analyze::{CompileReport, NeuronReport};

/// The report as readable text: a line per layer, a verdict, and the offending neurons.
pub fn render_text(r: &CompileReport) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "sqnn compile check: {}  ({} features, {} layers, {} pruning)",
        r.name,
        r.n_features,
        r.layers.len(),
        r.pruning.map_or("unrecorded", |p| p.name())
    );
    let _ = writeln!(
        s,
        "budget: n_accum_bits = {}   (weights {} bits, activations {} bits)",
        r.n_accum_bits, r.n_w_bits, r.n_a_bits
    );
    let _ = writeln!(s);
    let _ = writeln!(
        s,
        "layer  neurons  fan-in max  range bits  signed bits  rounded  table bits  PBS    Σw² max  over  widths (bits: neurons)"
    );
    for l in &r.layers {
        let hist: Vec<String> = l
            .range_bits_hist
            .iter()
            .enumerate()
            .filter(|(_, n)| **n > 0)
            .map(|(b, n)| format!("{b}:{n}"))
            .collect();
        let _ = writeln!(
            s,
            "{:<5}  {:>7}  {:>10}  {:>5} / {:<2}  {:>11}  {:>7}  {:>10}  {:>5}  {:>7}  {:>4}  {}",
            l.layer,
            l.neurons,
            l.fan_in_max,
            l.range_bits_max,
            r.n_accum_bits,
            l.signed_bits_max,
            if l.pbs == 0 {
                "-".to_string()
            } else if l.round_bits_min == l.round_bits_max {
                l.round_bits_min.to_string()
            } else {
                format!("{}..{}", l.round_bits_min, l.round_bits_max)
            },
            l.table_bits_max,
            l.pbs,
            l.sum_w2_max,
            l.over_budget,
            hist.join(" ")
        );
    }
    if let Some(rounding) = &r.rounding {
        let _ = writeln!(s, "rounding before tables: {rounding}");
    }
    let _ = writeln!(s);
    let verdict = if r.ok { "PASS" } else { "FAIL" };
    let _ = writeln!(
        s,
        "{verdict}: widest accumulator {} bits (signed {}) against a budget of {}; {} PBS per sample; widest table {} bits",
        r.max_range_bits, r.max_signed_bits, r.n_accum_bits, r.pbs_count, r.max_table_bits
    );
    if !r.ok {
        let _ = writeln!(
            s,
            "{} accumulators exceed the budget (proved worst case over all inputs):",
            r.neurons_over_budget.len()
        );
        for n in r.neurons_over_budget.iter().take(50) {
            let _ = writeln!(s, "  {}", neuron_line(n, r.n_accum_bits));
        }
        if r.neurons_over_budget.len() > 50 {
            let _ = writeln!(
                s,
                "  ... and {} more (see --json)",
                r.neurons_over_budget.len() - 50
            );
        }
        let _ = writeln!(
            s,
            "fix: retrain with per-neuron pruning (--pruning per-neuron, the default), or raise \
             --n-accum-bits, or lower --n-w-bits / --n-a-bits"
        );
    }
    s
}

fn neuron_line(n: &NeuronReport, budget: u32) -> String {
    format!(
        "layer {} neuron {} (node {}): fan-in {}, accumulator in [{}, {}] = {} bits > {budget}",
        n.layer, n.neuron, n.node, n.fan_in, n.lo, n.hi, n.range_bits
    )
}

/// The report as pretty JSON (stable field names, see `docs/report.md`).
pub fn render_json(r: &CompileReport) -> String {
    serde_json::to_string_pretty(r).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
}

/// Escapes text for SVG.
fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// An SVG picture: one panel per layer, a bar per accumulator width (how many neurons have it),
/// bars within the budget in teal, over it in red, and the budget as a dashed line.
pub fn render_svg(r: &CompileReport) -> String {
    let max_bits = r
        .layers
        .iter()
        .map(|l| l.range_bits_max)
        .max()
        .unwrap_or(0)
        .max(r.n_accum_bits)
        + 1;
    let panel_w = 70.0 + 22.0 * f64::from(max_bits);
    let panel_h = 220.0;
    let n = r.layers.len().max(1);
    let width = 20.0 + panel_w * n as f64;
    let height = panel_h + 90.0;
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0}" height="{height:.0}" viewBox="0 0 {width:.0} {height:.0}" font-family="sans-serif" font-size="11">"#
    );
    let _ = writeln!(s, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let verdict = if r.ok { "PASS" } else { "FAIL" };
    let _ = writeln!(
        s,
        r#"<text x="10" y="20" font-size="14" font-weight="bold">{}: accumulator widths against n_accum_bits = {} ({verdict}, {} PBS)</text>"#,
        esc(&r.name),
        r.n_accum_bits,
        r.pbs_count
    );
    for (p, l) in r.layers.iter().enumerate() {
        let x0 = 10.0 + panel_w * p as f64 + 40.0;
        let y0 = 50.0;
        let plot_w = panel_w - 60.0;
        let plot_h = panel_h - 50.0;
        let ymax = l.range_bits_hist.iter().copied().max().unwrap_or(1).max(1) as f64;
        let bar_w = plot_w / f64::from(max_bits);
        let _ = writeln!(
            s,
            r#"<text x="{x0:.1}" y="{:.1}" font-weight="bold">layer {} ({} neurons, fan-in ≤ {})</text>"#,
            y0 - 8.0,
            l.layer,
            l.neurons,
            l.fan_in_max
        );
        let _ = writeln!(
            s,
            r##"<rect x="{x0:.1}" y="{y0:.1}" width="{plot_w:.1}" height="{plot_h:.1}" fill="#f7f7f7" stroke="#bbb"/>"##
        );
        // The region over budget, lightly shaded.
        let over_x = x0 + bar_w * (f64::from(r.n_accum_bits) + 1.0);
        if over_x < x0 + plot_w {
            let _ = writeln!(
                s,
                r##"<rect x="{over_x:.1}" y="{y0:.1}" width="{:.1}" height="{plot_h:.1}" fill="#fde0e0"/>"##,
                x0 + plot_w - over_x
            );
        }
        for (b, &count) in l.range_bits_hist.iter().enumerate() {
            if count == 0 {
                continue;
            }
            let h = 0.85 * plot_h * count as f64 / ymax;
            let over = b as u32 > r.n_accum_bits;
            let color = if over { "#d62728" } else { "#17a398" };
            let x = x0 + bar_w * b as f64 + 2.0;
            let _ = writeln!(
                s,
                r#"<rect x="{x:.1}" y="{:.1}" width="{:.1}" height="{h:.1}" fill="{color}"><title>{count} neurons with {b}-bit accumulators</title></rect>"#,
                y0 + plot_h - h,
                bar_w - 4.0
            );
            let _ = writeln!(
                s,
                r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">{count}</text>"#,
                x + (bar_w - 4.0) / 2.0,
                y0 + plot_h - h - 3.0
            );
        }
        // Budget line at the right edge of the budget's bar.
        let bx = x0 + bar_w * (f64::from(r.n_accum_bits) + 1.0);
        let _ = writeln!(
            s,
            r##"<line x1="{bx:.1}" y1="{:.1}" x2="{bx:.1}" y2="{:.1}" stroke="#333" stroke-dasharray="4 3" stroke-width="1.5"/>"##,
            y0 - 2.0,
            y0 + plot_h
        );
        let _ = writeln!(
            s,
            r#"<text x="{:.1}" y="{:.1}" font-size="10" text-anchor="end">budget {}</text>"#,
            bx - 3.0,
            y0 + 11.0,
            r.n_accum_bits
        );
        for b in 0..max_bits {
            let _ = writeln!(
                s,
                r#"<text x="{:.1}" y="{:.1}" text-anchor="middle" font-size="10">{b}</text>"#,
                x0 + bar_w * f64::from(b) + bar_w / 2.0,
                y0 + plot_h + 13.0
            );
        }
        let _ = writeln!(
            s,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">accumulator range width (bits)</text>"#,
            x0 + plot_w / 2.0,
            y0 + plot_h + 28.0
        );
        let _ = writeln!(
            s,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="middle" transform="rotate(-90 {:.1} {:.1})">neurons</text>"#,
            x0 - 12.0,
            y0 + plot_h / 2.0,
            x0 - 12.0,
            y0 + plot_h / 2.0
        );
    }
    let _ = writeln!(
        s,
        r##"<text x="10" y="{:.0}" fill="#555">bars: neurons per proved worst-case accumulator width; red = over budget; dashed line = n_accum_bits</text>"##,
        height - 12.0
    );
    s.push_str("</svg>\n");
    s
}
