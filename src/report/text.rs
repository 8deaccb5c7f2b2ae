//! The compile-check report as text: a line per layer, the rounding summary, a verdict, and the
//! accumulators over budget.

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
