//! Planning on one parameter set: every dot's predicted errors at a given space width, the
//! width each mode takes, latency and key sizes.

use super::catalogue::ParamSet;
use super::choose::{too_noisy, too_wide};
use super::encoding::{approximate_top, needed_bits, ScaledRead};
use super::extract::{extraction_sets, rounding_circuit_ms, Extractions, MAX_CHUNK_BITS};
use super::facts::PlanFacts;
use super::latency::{client_ms, linear_ms, pbs_per_layer};
use super::noise::{log2_add, LOG2_P_FLOOR};
use super::plan::{FheMode, FhePlan, NeuronNoise};
use super::profile::Costs;
use super::reads::neuron_noise;
use crate::error::{Error, Result};

/// The plan of `facts` on `set` with a `space_bits`-bit space, its errors counted as `mode`
/// counts them, with [exact rounding](FhePlan::exact_rounding) when `rounding` names the set
/// its extractions run on (`set` itself or one of [`extraction_sets`](super::extraction_sets);
/// exact mode only) and their chunk width. No checks: the plan may miss the target or not fit
/// the set.
pub(super) fn plan_on(
    facts: &PlanFacts,
    set: &ParamSet,
    space_bits: u32,
    mode: FheMode,
    rounding: Option<(&ParamSet, u32)>,
    target: f64,
    costs: &Costs,
) -> FhePlan {
    let chunk = rounding.map_or(1, |(_, c)| c.max(1));
    let rounding = rounding.map(|(e, _)| e);
    // The sets with the cost source's latency figures (their noise figures are the built-in
    // ones).
    let set = &costs.set(set);
    let rounding = rounding
        .filter(|_| mode == FheMode::Exact)
        .map(|e| costs.set(e));
    let rounding = rounding.as_ref();
    let extract = rounding.is_some();
    let other = rounding.filter(|e| e.id != set.id);
    let cores = costs.cores.max(1);
    let neurons: Vec<NeuronNoise> = facts
        .dots
        .iter()
        .map(|n| {
            neuron_noise(
                set,
                space_bits,
                mode,
                target,
                rounding.map(|e| (e, chunk)),
                n,
            )
        })
        .collect();
    let extractions: usize = neurons
        .iter()
        .map(|n| crate::cast::to_usize(n.extractions))
        .sum();
    // Exact rounding on classic sets: chains of extractions and a read per table; otherwise
    // layers of independent bootstraps.
    let (latency, latency_1_core) = match rounding.filter(|_| set.grouping_factor == 1) {
        Some(e) => (
            rounding_circuit_ms(set, e, facts, &neurons, cores),
            facts.pbs_count as f64 * set.pbs_ms_1_thread + extractions as f64 * e.pbs_ms_1_thread,
        ),
        None => (
            set.circuit_ms(&layers_with_extractions(facts, &neurons), cores),
            (facts.pbs_count + extractions) as f64 * set.pbs_ms_1_thread,
        ),
    };
    // The dot products and the inputs taken in, besides the bootstraps.
    let linear = linear_ms(set, facts, costs.scale());
    let (latency, latency_1_core) = (latency + linear, latency_1_core + linear);
    let pbs_count = facts.pbs_count + extractions;
    let tables = facts.pbs_count > 0;
    let worst = neurons
        .iter()
        .max_by(|a, b| a.log2_p_fail.total_cmp(&b.log2_p_fail))
        .cloned();
    let total = neurons
        .iter()
        .fold(f64::NEG_INFINITY, |acc, n| log2_add(acc, n.log2_p_fail));
    let expected = |bootstrap: bool| -> f64 {
        neurons
            .iter()
            .filter(|n| n.bootstrap == bootstrap)
            .map(|n| n.log2_p_misread.exp2())
            .fold(0.0, |a, b| a + b)
    };
    FhePlan {
        parameter_set: set.id,
        precision_bits: set.precision(),
        mode,
        space_bits,
        polynomial_size: set.polynomial_size,
        box_positions: set.box_positions(space_bits),
        needed_bits: needed_bits(facts),
        target_log2_p_fail: target,
        worst_log2_p_fail: worst.as_ref().map_or(LOG2_P_FLOOR, |w| w.log2_p_fail),
        worst,
        total_log2_p_fail: total.max(LOG2_P_FLOOR),
        expected_misreads_per_sample: expected(true),
        expected_output_misreads_per_sample: expected(false),
        worst_sigma_units: neurons
            .iter()
            .filter(|n| n.bootstrap)
            .map(|n| n.sigma_units)
            .fold(0.0, f64::max),
        exact_rounding: extract,
        extraction_parameter_set: other.map(|e| e.id),
        extraction_chunk_bits: if extract { chunk } else { 1 },
        pbs_count,
        cores,
        pbs_ms_1_thread: set.pbs_ms_1_thread,
        pbs_ms_together: set.together_ms(),
        extraction_pbs_ms_1_thread: other.map(|e| e.pbs_ms_1_thread),
        latency_ms_per_sample: latency,
        latency_ms_per_sample_1_core: latency_1_core,
        linear_ms_per_sample: linear,
        client_ms_per_sample: client_ms(set, facts, costs.scale()),
        // Without a table the server never bootstraps: keygen makes no server key.
        server_key_bytes: if tables {
            set.server_key_bytes + other.map_or(0, |e| e.server_key_bytes)
        } else {
            0
        },
        compressed_server_key_bytes: if tables {
            set.compressed_server_key_bytes + other.map_or(0, |e| e.compressed_server_key_bytes)
        } else {
            0
        },
        client_key_bytes: set.client_key_bytes
            + other.map_or(0, |e| 8 * crate::cast::to_u64(e.lwe_dimension)),
        keygen_seconds: if tables {
            set.keygen_seconds + other.map_or(0.0, |e| e.keygen_seconds)
        } else {
            0.0
        },
        max_sum_w2: max_sum_w2(set, space_bits, mode, facts, target),
        neurons,
        family: set.family(),
        candidates: Vec::new(),
        costs: costs.source(),
        recorded: None,
    }
}

/// The largest Σw² a hidden neuron may have at the target: for an exact read, or (approximate)
/// to stay within the narrowest margin of a table's unscaled read (a scaled read's scale backs
/// off as its noise grows, down to the unscaled read: [`read_scale_bits`](super::read_scale_bits)).
fn max_sum_w2(
    set: &ParamSet,
    space_bits: u32,
    mode: FheMode,
    facts: &PlanFacts,
    target: f64,
) -> u64 {
    let min_margin = facts
        .dots
        .iter()
        .filter(|n| n.table_len > 0)
        .map(|n| {
            ScaledRead::new(set, space_bits, n, 0)
                .margins
                .map_or(0, |(a, b)| a.min(b))
        })
        .min();
    match (mode, min_margin) {
        (FheMode::Approximate, Some(m)) => set.max_sum_w2_catastrophic(space_bits, m, target),
        _ => set.max_sum_w2_exact(space_bits, target),
    }
}

/// Bootstraps per layer, exact rounding's extractions included: they run in their tables'
/// layers (their sequential depth within a neuron is not modelled: with more tables than cores
/// it hides behind the others).
fn layers_with_extractions(facts: &PlanFacts, neurons: &[NeuronNoise]) -> Vec<usize> {
    let mut layers = pbs_per_layer(facts);
    for n in neurons.iter().filter(|n| n.extractions > 0) {
        let slot = if layers.len() == 1 { 0 } else { n.layer };
        if let Some(l) = layers.get_mut(slot) {
            *l += crate::cast::to_usize(n.extractions);
        }
    }
    layers
}

/// The sets exact rounding on `set` may run its extractions on, as `extractions` asks: `set`
/// first.
pub(super) fn extraction_choices(
    set: &ParamSet,
    extractions: Extractions,
) -> Result<Vec<&'static ParamSet>> {
    let own = set.id.set();
    Ok(match extractions {
        Extractions::TableSet => vec![own],
        Extractions::Cheapest => std::iter::once(own).chain(extraction_sets(set)).collect(),
        Extractions::On(id) if id == set.id => vec![own],
        Extractions::On(id) => {
            let e = id.set();
            if !e.shares_glwe_key_with(set) {
                return Err(Error::param(
                    "extractions",
                    format!(
                        "{id} cannot run the extractions of tables read on {}: the two sets \
                         must both be classic, of one failure family, with the same GLWE key \
                         size k·N and GLWE noise (one key serves both); use one of {}",
                        set.name,
                        extraction_names(set)
                    ),
                ));
            }
            vec![e]
        }
    })
}

/// The sets that may run `set`'s extractions, by name (for messages).
fn extraction_names(set: &ParamSet) -> String {
    let names: Vec<&str> = extraction_sets(set).iter().map(|e| e.name).collect();
    if names.is_empty() {
        "none (only the table set itself)".into()
    } else {
        names.join(", ")
    }
}

/// The loosest failure target per bootstrap a plan may have (log2): a looser one would make
/// failures a matter of course, not of bad luck.
pub const LOOSEST_TARGET_LOG2: f64 = -20.0;

/// Errors unless `target` is a log2 probability in `[LOG2_P_FLOOR, LOOSEST_TARGET_LOG2]`.
pub(super) fn check_target(target: f64) -> Result<()> {
    if !(LOG2_P_FLOOR..=LOOSEST_TARGET_LOG2).contains(&target) {
        return Err(Error::param(
            "p_error",
            format!(
                "{target} is not a log2 failure probability in [{LOG2_P_FLOOR}, \
                 {LOOSEST_TARGET_LOG2}]: give e.g. -40 for 2^-40 (targets looser than 2^-20 \
                 are refused)"
            ),
        ));
    }
    Ok(())
}

/// The plan of `facts` on `set` in `mode`, with the mode's space width: exact,
/// `P = needed_bits`; approximate, the narrowest `P >= needed_bits` (at most `log2 N`) whose
/// margins keep every bootstrap's catastrophic probability within the target.
///
/// Errors when the space does not fit the set's polynomial (`P > log2 N`, or `P >= log2 N`
/// for exact reads, which need half a box of at least one position) or the mode's failures
/// miss `2^target_log2_p_fail`; the message names the neurons and what to change.
pub(super) fn plan_with(
    facts: &PlanFacts,
    set: &ParamSet,
    mode: FheMode,
    target_log2_p_fail: f64,
    costs: &Costs,
    (extractions, chunk_bits): (Extractions, Option<u32>),
) -> Result<FhePlan> {
    let target = target_log2_p_fail;
    check_target(target)?;
    let needed = needed_bits(facts);
    let top = match mode {
        FheMode::Exact if facts.dropped_bits.is_some() => set.max_space_bits().saturating_sub(1),
        // Without tables every mode is a decryption: as wide as approximate mode.
        FheMode::Exact | FheMode::Approximate => approximate_top(set, facts),
    };
    if needed > top {
        return Err(too_wide(facts, needed, top, mode, target));
    }
    let widths = match mode {
        FheMode::Exact => needed..=needed,
        FheMode::Approximate => needed..=top,
    };
    let mut last = None;
    for p in widths {
        let plan = plan_on(facts, set, p, mode, None, target, costs);
        if plan.worst_log2_p_fail <= target {
            return Ok(plan);
        }
        last = Some(plan);
    }
    // Exact reads of the whole accumulator miss the target: clear the dropped bits first.
    let rounds = facts.dropped_bits.is_some_and(|(_, most)| most > 0);
    if mode == FheMode::Exact && rounds {
        // The narrowest space that holds the aligned encoding and meets the target, with the
        // extractions on the set and in the chunks that are cheapest there.
        let ext_sets = extraction_choices(set, extractions)?;
        for p in needed..=top {
            let best = ext_sets
                .iter()
                .flat_map(|e| chunk_widths(chunk_bits).map(move |c| (*e, c)))
                .map(|ec| plan_on(facts, set, p, mode, Some(ec), target, costs));
            if let Some(plan) = cheapest_meeting(best, target) {
                return Ok(plan);
            }
        }
    }
    Err(too_noisy(&last.expect("at least one width"), target))
}

/// The chunk widths exact rounding may clear dropped bits in: the one asked for, else 1 to
/// [`MAX_CHUNK_BITS`].
pub(super) fn chunk_widths(asked: Option<u32>) -> std::ops::RangeInclusive<u32> {
    asked.map_or(1..=MAX_CHUNK_BITS, |c| c..=c)
}

/// The fastest of `plans` that meets `target`, the narrowest chunk width on a tie; `None` when
/// none meets it.
pub(super) fn cheapest_meeting(
    plans: impl Iterator<Item = FhePlan>,
    target: f64,
) -> Option<FhePlan> {
    plans
        .filter(|plan| plan.worst_log2_p_fail <= target)
        .min_by(|a, b| {
            a.latency_ms_per_sample
                .total_cmp(&b.latency_ms_per_sample)
                .then(a.extraction_chunk_bits.cmp(&b.extraction_chunk_bits))
        })
}
