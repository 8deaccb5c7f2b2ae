//! Each read's predicted noise: a table's read of its dot (or exact rounding's extractions
//! and read), an output's decryption, and the `σ_units` a clear simulation draws from.

use super::catalogue::ParamSet;
use super::encoding::{aligned_margins, margins, read_scale_bits, rounding_scale, ScaledRead};
use super::extract::{extraction_chunks, rescale_variance};
use super::facts::{DotFacts, PlanFacts};
use super::noise::{log2_add, log2_erfc_ratio, misread_log2, LOG2_P_FLOOR};
use super::plan::{read_scale_target, FheMode, FhePlan, NeuronNoise};
use crate::ir::{IntGraph, NodeId, Op};

/// One dot's predicted errors on `set` in a `space_bits`-bit space with the failure target
/// `target` (log2; in approximate mode it bounds how far a table's read is scaled:
/// [`read_scale_bits`]);
/// `extract`: exact rounding,
/// its extractions on this set (the table set itself, or one of
/// [`extraction_sets`](super::extraction_sets)) in chunks of this many bits
/// ([`extraction_chunks`]).
pub(super) fn neuron_noise(
    set: &ParamSet,
    space_bits: u32,
    mode: FheMode,
    target: f64,
    extract: Option<(&ParamSet, u32)>,
    n: &DotFacts,
) -> NeuronNoise {
    let bootstrap = n.table_len > 0;
    if let Some(ext) = extract {
        if bootstrap && n.round_bits > 0 && mode == FheMode::Exact {
            return extraction_noise(set, ext, space_bits, n);
        }
    }
    if bootstrap {
        let scale = read_scale_target(mode, target).map_or(0, |t| {
            read_scale_bits(set, space_bits, extract.is_some(), t, n)
        });
        let read = ScaledRead::new(set, space_bits, n, scale);
        let margin = read.margins.map_or(0, |(a, b)| a.min(b));
        let std_box = (read.std, read.box_positions);
        let catastrophic = read.catastrophic_log2();
        return read_noise(n, mode, true, scale, std_box, margin, catastrophic);
    }
    // A decryption of a dot that reads only inputs (a linear circuit's output) has a fresh
    // encryption's noise.
    let std = if n.reads_inputs {
        set.fresh_decrypt_std(n.sum_w2)
    } else {
        set.decrypt_std(n.sum_w2)
    };
    let bx = set.box_positions(space_bits);
    let fits = margins(n.lo, n.hi, space_bits);
    let margin = fits.map_or(0, |(a, b)| a.min(b));
    let log2_p_catastrophic = match fits {
        None => 0.0,
        Some(_) => {
            // Decryption wraps only past half the padded space around the interval's centre.
            let w = (n.hi - n.lo + 1) as f64;
            let dist = 2f64.powi(crate::cast::exponent(space_bits)) - (w / 2.0).ceil() + 0.5;
            (log2_erfc_ratio(dist * bx, std) - 1.0).max(LOG2_P_FLOOR)
        }
    };
    read_noise(n, mode, false, 0, (std, bx), margin, log2_p_catastrophic)
}

/// One read's (or decryption's) predictions from its error `std` and box (positions per value)
/// in its space, its margin and the probability of reading past it.
fn read_noise(
    n: &DotFacts,
    mode: FheMode,
    bootstrap: bool,
    scale_bits: u32,
    (std, bx): (f64, f64),
    margin: u64,
    log2_p_catastrophic: f64,
) -> NeuronNoise {
    let log2_p_misread = misread_log2(std, bx);
    NeuronNoise {
        node: n.node,
        extractions: 0,
        scale_bits,
        layer: n.layer,
        neuron: n.neuron,
        sum_w2: n.sum_w2,
        bootstrap,
        std,
        sigma_units: if bx > 0.0 { std / bx } else { f64::INFINITY },
        margin,
        log2_p_misread,
        log2_p_catastrophic,
        log2_p_fail: match mode {
            FheMode::Exact => log2_p_misread,
            FheMode::Approximate => log2_p_catastrophic,
        },
    }
}

/// Exact rounding of one table ([`FhePlan::exact_rounding`]): its `r = round_bits` dropped
/// bits cleared in chunks of `chunk` bits ([`extraction_chunks`]), then the table's read. A
/// chunk `(b, c)` multiplies the partly cleared accumulator (noise variance
/// `b_set·Σw² + k·b_ext` in positions: its dot plus the `k` extraction outputs so far) by
/// `2^(P - b - c + 1)`, which puts the chunk at the top of the torus; each of its bootstraps
/// (one for `c = 1`, two otherwise) fails if the amplified noise plus the keyswitch and modulus
/// switch reach `N_ext / 2^c` positions (a quarter of the torus for one bit; half a position
/// less for wider chunks, the centred modulus switch's floor). The table then reads the
/// cleared value rescaled by `2^s` ([`rounding_scale`]): buckets `2^(r+s)` values apart,
/// tolerance `2^(r+s-1)·box`, noise `a + (b_set·Σw² + e·b_ext)·4^s` (`e` extraction
/// bootstraps; the rescaling multiplies the cleared value's noise, not the read's own).
/// Failure = any of these misreads.
///
/// With the extractions on another set `ext` ([`super::extract`]): they read in `ext`'s
/// positions (its `a` and `N`), and each extraction output adds `ext`'s `b` (converted to the
/// table set's positions) instead of the table set's.
fn extraction_noise(
    set: &ParamSet,
    (ext, chunk): (&ParamSet, u32),
    space_bits: u32,
    n: &DotFacts,
) -> NeuronNoise {
    let r = n.round_bits;
    let bx = set.box_positions(space_bits);
    let out_var = rescale_variance(ext.noise_per_w2, ext, set);
    let mut fail = f64::NEG_INFINITY;
    let mut outputs = 0u32;
    for (b, c) in extraction_chunks(r, chunk) {
        let tolerance =
            ext.polynomial_size as f64 / f64::from(1u32 << c) - if c > 1 { 0.5 } else { 0.0 };
        let amp = 4f64.powi(crate::cast::exponent(
            (space_bits + 1).saturating_sub(b + c),
        ));
        for _ in 0..(if c == 1 { 1 } else { 2 }) {
            let dot_var = set.noise_per_w2 * n.sum_w2 as f64 + out_var * f64::from(outputs);
            let std = (ext.noise_base + rescale_variance(dot_var * amp, set, ext)).sqrt();
            fail = log2_add(fail, log2_erfc_ratio(tolerance, std).max(LOG2_P_FLOOR));
            outputs += 1;
        }
    }
    // The cleared bits must be the index's: the margin below is aligned to the table's phase
    // modulo 2^r; a space too tight for that cannot hold the encoding at all.
    let phase = n.lo.wrapping_add(n.table_offset);
    let aligned = aligned_margins(n.lo, n.hi, space_bits, r, phase);
    let scale = rounding_scale(n.lo, n.hi, space_bits, r, phase).map_or(0, |(_, s, _)| s);
    let cleared_var = set.noise_per_w2 * n.sum_w2 as f64 + out_var * f64::from(outputs);
    let std = (set.noise_base + cleared_var * 4f64.powi(crate::cast::exponent(scale))).sqrt();
    let tol = 2f64.powi(crate::cast::exponent(r + scale) - 1) * bx;
    let read = log2_erfc_ratio(tol, std).max(LOG2_P_FLOOR);
    let fail = match aligned {
        Some(_) => log2_add(fail, read).max(LOG2_P_FLOOR),
        None => 0.0,
    };
    let margin = aligned.map_or(0, |(a, b)| a.min(b));
    NeuronNoise {
        node: n.node,
        extractions: outputs,
        scale_bits: 0,
        layer: n.layer,
        neuron: n.neuron,
        sum_w2: n.sum_w2,
        bootstrap: true,
        std,
        // The cleared value sits in the middle of a bucket 2^(r+s) values wide: the read is
        // off only by whole buckets, at `fail` (below the target), never by a few units near
        // the bucket's edge as a simulated offset would be. Nothing to simulate.
        sigma_units: 0.0,
        margin,
        log2_p_misread: fail,
        log2_p_catastrophic: fail,
        log2_p_fail: fail,
    }
}

/// Per neuron, `σ_units` of its read: for a dot followed by a table, the table's read of the
/// dot's value; for an output dot, its decryption. Keyed by the dot's node id (the table that
/// reads dot `d` is the unique `Lut` whose input is `d`). A simulation draws
/// `d = floor(z·σ_units + 1/2)` ([`read_offset`](super::read_offset)) and reads `clamp(v + d, lo, hi)` through the
/// table, or decrypts `v + d` for an output.
pub fn read_sigma_units(plan: &FhePlan, facts: &PlanFacts) -> Vec<(NodeId, f64)> {
    let set = plan.set();
    facts
        .dots
        .iter()
        .map(|n| {
            let ext = plan
                .exact_rounding
                .then(|| (plan.extraction_set(), plan.extraction_chunk_bits));
            let s = neuron_noise(
                set,
                plan.space_bits,
                plan.mode,
                plan.target_log2_p_fail,
                ext,
                n,
            );
            (n.node, s.sigma_units)
        })
        .collect()
}

/// `σ_units` per node of `graph`, indexed by node id, for a clear simulation: at a `Lut` node
/// the read of its input dot, at an output `Dot` its decryption, 0 elsewhere (inputs, hidden
/// dots, nodes the plan does not cover). `plan` must come from `graph`'s facts.
///
/// The offset `d = floor(z·σ_units + 1/2)` is in accumulator units: a table that drops
/// `round_bits` low bits reads `table[(clamp(v + d, lo, hi) + offset) >> round_bits]` (the
/// encrypted test vector reads the whole accumulator), which is not the same as moving the
/// table index by `d` when `round_bits > 0`.
pub fn sigma_units_by_node(plan: &FhePlan, graph: &IntGraph) -> Vec<f64> {
    let mut by_dot = vec![None; graph.nodes.len()];
    for n in &plan.neurons {
        if let Some(slot) = by_dot.get_mut(n.node) {
            *slot = Some(n.sigma_units);
        }
    }
    let mut sigma = vec![0.0; graph.nodes.len()];
    for (id, node) in graph.nodes.iter().enumerate() {
        if let Op::Lut { input, .. } = node.op {
            sigma[id] = by_dot.get(input).copied().flatten().unwrap_or(0.0);
        }
    }
    for &o in &graph.outputs {
        if let Some(s) = by_dot.get(o).copied().flatten() {
            sigma[o] = s;
        }
    }
    sigma
}
