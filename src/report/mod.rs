//! Stage 6: reports. The compile-check report as text (for a person at a terminal), JSON (for
//! programs; fields documented in `docs/report.md`) and SVG (per layer, the distribution of
//! accumulator widths against the budget).

mod svg;
mod text;

pub use svg::render_svg;
pub use text::render_text;

use crate::analyze::CompileReport;

/// The report as pretty JSON (stable field names, see `docs/report.md`).
pub fn render_json(r: &CompileReport) -> String {
    serde_json::to_string_pretty(r).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
}
