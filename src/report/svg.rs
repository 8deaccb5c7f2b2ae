//! The compile-check report as an SVG picture of accumulator widths against the budget.

use std::fmt::Write as _;

use crate::analyze::{CompileReport, LayerReport};

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
        let f = Panel {
            x0,
            y0: 50.0,
            plot_w: panel_w - 60.0,
            plot_h: panel_h - 50.0,
            bar_w: (panel_w - 60.0) / f64::from(max_bits),
        };
        panel_frame(&mut s, r, l, &f);
        panel_bars(&mut s, r, l, &f);
        panel_budget(&mut s, r, &f);
        panel_axes(&mut s, &f, max_bits);
    }
    let _ = writeln!(
        s,
        r##"<text x="10" y="{:.0}" fill="#555">bars: neurons per proved worst-case accumulator width; red = over budget; dashed line = n_accum_bits</text>"##,
        height - 12.0
    );
    s.push_str("</svg>\n");
    s
}

/// Where one layer's panel draws: its plot's corner and size, and the width of one bit's bar.
struct Panel {
    x0: f64,
    y0: f64,
    plot_w: f64,
    plot_h: f64,
    bar_w: f64,
}

/// The panel's title, background, and the region over budget shaded.
fn panel_frame(s: &mut String, r: &CompileReport, l: &LayerReport, f: &Panel) {
    let Panel {
        x0,
        y0,
        plot_w,
        plot_h,
        bar_w,
    } = *f;
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
}

/// One bar per accumulator width, with its count above it.
fn panel_bars(s: &mut String, r: &CompileReport, l: &LayerReport, f: &Panel) {
    let Panel {
        x0,
        y0,
        plot_w: _,
        plot_h,
        bar_w,
    } = *f;
    let ymax = l.range_bits_hist.iter().copied().max().unwrap_or(1).max(1) as f64;
    for (b, &count) in l.range_bits_hist.iter().enumerate() {
        if count == 0 {
            continue;
        }
        let h = 0.85 * plot_h * count as f64 / ymax;
        let over = b > crate::cast::to_usize(r.n_accum_bits);
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
}

/// The budget as a dashed line at the right edge of the budget's bar.
fn panel_budget(s: &mut String, r: &CompileReport, f: &Panel) {
    let Panel {
        x0,
        y0,
        plot_w: _,
        plot_h,
        bar_w,
    } = *f;
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
}

/// Bit labels under the bars and the axis titles.
fn panel_axes(s: &mut String, f: &Panel, max_bits: u32) {
    let Panel {
        x0,
        y0,
        plot_w,
        plot_h,
        bar_w,
    } = *f;
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
