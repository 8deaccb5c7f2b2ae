//! The choice among the catalogue's sets: every selectable set planned, ranked by predicted
//! latency, and errors that name the accumulators or neurons that no set holds.

use super::accuracy::{Calibration, Simulated};
use super::catalogue::{catalogue, ParamSet};
use super::encoding::{approximate_top, needed_bits};
use super::extract::Extractions;
use super::facts::{DotFacts, PlanFacts};
use super::latency::{linear_ms, pbs_per_layer};
use super::noise::misread_log2;
use super::one_set::{check_target, plan_on, plan_with};
use super::plan::{Candidate, FheMode, FhePlan, NeuronNoise};
use super::profile::Costs;
use crate::error::{Error, Result};

/// The cheapest selectable parameter set that `allow` accepts (and its space width,
/// [`plan_with`]) that meets the mode's constraints at `2^target_log2_p_fail` per bootstrap.
///
/// Every selectable set of the catalogue is a candidate: classic and multi-bit bootstraps,
/// 2^-128 and 2^-64 families. Cheapest = lowest predicted latency per sample on `cores` cores
/// ([`ParamSet::circuit_ms`]: the circuit's layers of bootstraps one after another), then
/// smallest keys. The plan lists every candidate with its predicted latency
/// ([`FhePlan::candidates`]). When no set qualifies, an [`Error::Backend`] names the
/// accumulators that are too wide or the neurons whose Σw² is too large, and what to change.
pub(super) fn choose_among(
    facts: &PlanFacts,
    target_log2_p_fail: f64,
    costs: &Costs,
    mode: FheMode,
    allow: &dyn Fn(&ParamSet) -> bool,
    extractions: (Extractions, Option<u32>),
) -> Result<FhePlan> {
    let target = target_log2_p_fail;
    check_target(target)?;
    let needed = needed_bits(facts);
    let (plans, mut candidates) = ranked_plans(facts, mode, target, costs, allow, extractions);
    if let Some(i) = pick(&plans, &mut candidates, |_| Ok(())) {
        return Ok(FhePlan {
            candidates,
            ..plans[i].clone()
        });
    }
    let sets: Vec<&ParamSet> = catalogue()
        .iter()
        .filter(|p| p.selectable && allow(p))
        .collect();
    // Nothing fits: too wide for every set, or too noisy even for the most tolerant one.
    let widest = sets
        .iter()
        .map(|s| match mode {
            FheMode::Approximate => approximate_top(s, facts),
            FheMode::Exact if facts.dropped_bits.is_none() => approximate_top(s, facts),
            FheMode::Exact => capacity(s, mode, target, facts.pbs_count > 0),
        })
        .max()
        .unwrap_or(0);
    if needed > widest {
        return Err(too_wide(facts, needed, widest, mode, target));
    }
    let best = sets
        .iter()
        .filter(|s| needed <= approximate_top(s, facts))
        .map(|s| {
            let top = match mode {
                FheMode::Exact => needed,
                FheMode::Approximate => approximate_top(s, facts),
            };
            (needed..=top)
                .map(|p| plan_on(facts, s, p, mode, None, target, costs))
                .min_by(|a, b| a.worst_log2_p_fail.total_cmp(&b.worst_log2_p_fail))
                .expect("non-empty")
        })
        .min_by(|a, b| a.worst_log2_p_fail.total_cmp(&b.worst_log2_p_fail))
        .expect("some set holds the width");
    Err(too_noisy(&best, target))
}

/// Every selectable set's plan that meets the target, cheapest first (predicted latency, then
/// server key size), and every selectable set as a [`Candidate`] in the same order (those that
/// qualify first).
fn ranked_plans(
    facts: &PlanFacts,
    mode: FheMode,
    target: f64,
    costs: &Costs,
    allow: &dyn Fn(&ParamSet) -> bool,
    extractions: (Extractions, Option<u32>),
) -> (Vec<FhePlan>, Vec<Candidate>) {
    let layers = pbs_per_layer(facts);
    let needed = needed_bits(facts);
    let mut rows: Vec<(Option<FhePlan>, Candidate, u64)> = catalogue()
        .iter()
        .filter(|p| p.selectable && allow(p))
        .map(|s| {
            let plan = plan_with(facts, s, mode, target, costs, extractions).ok();
            let top = match mode {
                FheMode::Exact if facts.dropped_bits.is_none() => approximate_top(s, facts),
                FheMode::Exact => capacity(s, mode, target, facts.pbs_count > 0),
                FheMode::Approximate => approximate_top(s, facts),
            };
            let note = match &plan {
                Some(p) => match p.extraction_parameter_set {
                    Some(e) => format!("meets 2^{target}, extractions on {e}"),
                    None => format!("meets 2^{target}"),
                },
                None if needed > top => match mode {
                    FheMode::Exact => format!("reads at most {top} bits exactly"),
                    FheMode::Approximate => format!("reads at most {top} bits"),
                },
                None => format!("misses 2^{target}"),
            };
            let c = Candidate {
                parameter_set: s.id,
                family: s.family(),
                precision_bits: s.precision(),
                latency_ms_per_sample: plan.as_ref().map_or_else(
                    || {
                        let set = costs.set(s);
                        set.circuit_ms(&layers, costs.cores) + linear_ms(&set, facts, costs.scale())
                    },
                    |p| p.latency_ms_per_sample,
                ),
                server_key_bytes: if facts.pbs_count > 0 {
                    s.server_key_bytes
                } else {
                    0
                },
                space_bits: plan.as_ref().map(|p| p.space_bits),
                extraction_parameter_set: plan.as_ref().and_then(|p| p.extraction_parameter_set),
                worst_log2_p_fail: plan.as_ref().map(|p| p.worst_log2_p_fail),
                note,
                simulated: None,
            };
            (plan, c, s.server_key_bytes)
        })
        .collect();
    // Ties go to the smaller key of the set, even where the circuit needs none (a linear
    // circuit): the same choice as when every circuit shipped one.
    rows.sort_by(|(pa, a, ka), (pb, b, kb)| {
        pb.is_some()
            .cmp(&pa.is_some())
            .then(a.latency_ms_per_sample.total_cmp(&b.latency_ms_per_sample))
            .then(ka.cmp(kb))
    });
    let candidates = rows.iter().map(|(_, c, _)| c.clone()).collect();
    let plans = rows.into_iter().filter_map(|(p, _, _)| p).collect();
    (plans, candidates)
}

/// How much faster than the fastest acceptable 2^-128 plan a 2^-64 plan must be to be taken:
/// tfhe-rs keeps the 2^-64 sets for compatibility and recommends 2^-128.
pub const FAIL64_MIN_GAIN: f64 = 0.15;

/// The plan to take among `plans` (those that meet the target, cheapest first; `candidates`
/// lists them first, in the same order): the cheapest that `accept` takes of the 2^-128
/// family, unless a 2^-64 one that it takes is at least [`FAIL64_MIN_GAIN`] faster (or no
/// 2^-128 one qualifies). `accept` runs in order of latency, and not on plans dearer than the
/// fastest accepted 2^-128 one. Writes each candidate's reason into its note.
pub(super) fn pick(
    plans: &[FhePlan],
    candidates: &mut [Candidate],
    mut accept: impl FnMut(&FhePlan) -> std::result::Result<(), String>,
) -> Option<usize> {
    let secure = |p: &FhePlan| p.set().family_log2_p_fail <= -128;
    let (mut best128, mut best64) = (None, None);
    for (i, p) in plans.iter().enumerate() {
        if best128.is_some() {
            candidates[i].note = format!(
                "meets 2^{}; slower than the chosen set",
                p.target_log2_p_fail
            );
            continue;
        }
        if !secure(p) && best64.is_some() {
            candidates[i].note = format!(
                "meets 2^{}; a faster 2^-64 set qualifies",
                p.target_log2_p_fail
            );
            continue;
        }
        match accept(p) {
            Ok(()) if secure(p) => best128 = Some(i),
            Ok(()) => best64 = Some(i),
            Err(why) => candidates[i].note = why,
        }
    }
    let chosen = match (best128, best64) {
        (Some(a), Some(b)) => {
            let gain = 1.0 - plans[b].latency_ms_per_sample / plans[a].latency_ms_per_sample;
            let pct = 100.0 * gain;
            if gain >= FAIL64_MIN_GAIN {
                candidates[b].note = format!(
                    "chosen: a 2^-64 set, {pct:.0} % faster than the fastest 2^-128 set (at \
                     least {:.0} % needed)",
                    100.0 * FAIL64_MIN_GAIN
                );
                candidates[a].note = "meets the target; a 2^-64 set is much faster".into();
                b
            } else {
                candidates[b].note = format!(
                    "qualifies, but a 2^-64 set is taken only when at least {:.0} % faster \
                     than 2^-128 ({pct:.0} % here)",
                    100.0 * FAIL64_MIN_GAIN
                );
                a
            }
        }
        (Some(a), None) => a,
        (None, Some(b)) => {
            candidates[b].note = "chosen: a 2^-64 set, no 2^-128 set qualifies".into();
            b
        }
        (None, None) => return None,
    };
    if !candidates[chosen].note.starts_with("chosen") {
        let why = &candidates[chosen].note;
        candidates[chosen].note = format!("chosen: {why}");
    }
    Some(chosen)
}

/// The widest space a set reads in `mode` at the target for a neuron without weights: exact,
/// the largest `P` whose read at Σw² = 0 is exact at the target; approximate, `log2 N`.
pub(super) fn capacity(set: &ParamSet, mode: FheMode, target: f64, bootstraps: bool) -> u32 {
    match mode {
        FheMode::Approximate => set.max_space_bits(),
        FheMode::Exact if !bootstraps => set.max_space_bits().saturating_sub(1),
        FheMode::Exact => (1..set.max_space_bits())
            .rev()
            .find(|&p| misread_log2(set.bootstrap_std(0), set.box_positions(p)) <= target)
            .unwrap_or(0),
    }
}

/// Approximate mode with an accuracy guard: the cheapest plan (as
/// [`choose_among`] ranks sets: predicted latency, then key size) whose worst read noise is at most `max_sigma_units`
/// accumulator units. Without the guard the cheapest set can be one whose reads are off by
/// several units (the 2-bit set reads a 9-bit space with σ ≈ 4.6 units, the 4-bit set with
/// σ ≈ 1.3). `f64::INFINITY` disables the guard.
pub(super) fn choose_approximate(
    facts: &PlanFacts,
    target_log2_p_fail: f64,
    costs: &Costs,
    max_sigma_units: f64,
    allow: &dyn Fn(&ParamSet) -> bool,
) -> Result<FhePlan> {
    check_target(target_log2_p_fail)?;
    if max_sigma_units.is_nan() || max_sigma_units <= 0.0 {
        return Err(Error::param(
            "max_sigma",
            format!("{max_sigma_units} must be a positive number of accumulator units"),
        ));
    }
    let (plans, mut candidates) = ranked_plans(
        facts,
        FheMode::Approximate,
        target_log2_p_fail,
        costs,
        allow,
        (Extractions::TableSet, None),
    );
    let guard = |p: &FhePlan| {
        if p.worst_sigma_units > max_sigma_units {
            Err(format!(
                "σ {:.2} units > max σ {max_sigma_units}",
                p.worst_sigma_units
            ))
        } else {
            Ok(())
        }
    };
    if let Some(i) = pick(&plans, &mut candidates, guard) {
        return Ok(FhePlan {
            candidates,
            ..plans[i].clone()
        });
    }
    match plans
        .iter()
        .min_by(|a, b| a.worst_sigma_units.total_cmp(&b.worst_sigma_units))
    {
        Some(best) => Err(Error::Backend(format!(
            "no parameter set reads this circuit's tables with noise within {max_sigma_units} \
             units (the best, {}, has σ = {:.2} units): raise `max_sigma`, prune more (smaller \
             Σw²), or use fewer accumulator bits",
            best.parameter_set, best.worst_sigma_units
        ))),
        None => choose_among(
            facts,
            target_log2_p_fail,
            costs,
            FheMode::Approximate,
            allow,
            (Extractions::TableSet, None),
        ),
    }
}

/// Approximate mode by accuracy: the plans that meet the target in order of predicted latency
/// (2^-128 first, as [`pick`] prefers), each simulated on the calibration rows until one keeps
/// its predictions within the tolerance; with `max_sigma`, sets whose worst read noise exceeds
/// it are skipped unsimulated. When none is within the tolerance, the one that loses least.
pub(super) fn choose_by_accuracy(
    facts: &PlanFacts,
    target_log2_p_fail: f64,
    costs: &Costs,
    cal: &Calibration,
    max_sigma: Option<f64>,
    allow: &dyn Fn(&ParamSet) -> bool,
) -> Result<FhePlan> {
    check_target(target_log2_p_fail)?;
    if let Some(s) = max_sigma {
        if s.is_nan() || s <= 0.0 {
            return Err(Error::param(
                "max_sigma",
                format!("{s} must be a positive number of accumulator units"),
            ));
        }
    }
    let (plans, mut candidates) = ranked_plans(
        facts,
        FheMode::Approximate,
        target_log2_p_fail,
        costs,
        allow,
        (Extractions::TableSet, None),
    );
    let mut sims: Vec<Option<Simulated>> = vec![None; plans.len()];
    let mut failure = None;
    let accept = |p: &FhePlan| -> std::result::Result<(), String> {
        if let Some(s) = max_sigma.filter(|s| p.worst_sigma_units > *s) {
            return Err(format!("σ {:.2} units > max σ {s}", p.worst_sigma_units));
        }
        let i = plans
            .iter()
            .position(|q| std::ptr::eq(q, p))
            .expect("one of the plans");
        let sim = match cal.simulate_to_decide(p) {
            Ok(sim) => sim,
            Err(e) => {
                failure = Some(e);
                return Err("not simulated".into());
            }
        };
        sims[i] = Some(sim);
        if cal.accepts(&sim) {
            Ok(())
        } else if sim.regression {
            Err(format!(
                "loses {:.4} of R² > {} allowed",
                sim.loss(),
                cal.tolerance
            ))
        } else {
            Err(format!(
                "changes {:.2} % of predictions > {:.2} % allowed",
                100.0 * sim.loss(),
                100.0 * cal.tolerance
            ))
        }
    };
    let chosen = pick(&plans, &mut candidates, accept);
    if let Some(e) = failure {
        return Err(e);
    }
    for (c, s) in candidates.iter_mut().zip(&sims) {
        c.simulated = *s;
    }
    let chosen = match chosen {
        Some(i) => i,
        None => {
            let Some((i, _)) = sims
                .iter()
                .enumerate()
                .filter_map(|(i, s)| s.map(|s| (i, s.loss())))
                .min_by(|a, b| a.1.total_cmp(&b.1))
            else {
                return choose_among(
                    facts,
                    target_log2_p_fail,
                    costs,
                    FheMode::Approximate,
                    allow,
                    (Extractions::TableSet, None),
                );
            };
            let why = candidates[i].note.clone();
            candidates[i].note =
                format!("chosen: none is within the tolerance, this one loses least ({why})");
            i
        }
    };
    if cal.accepts(&sims[chosen].expect("simulated")) {
        candidates[chosen].note.push_str(", within the tolerance");
    }
    Ok(FhePlan {
        candidates,
        ..plans[chosen].clone()
    })
}

pub(super) fn too_wide(
    facts: &PlanFacts,
    needed: u32,
    widest: u32,
    mode: FheMode,
    target: f64,
) -> Error {
    let mut blame: Vec<&DotFacts> = facts
        .dots
        .iter()
        .filter(|n| n.range_bits.max(n.table_bits) > widest)
        .collect();
    blame.sort_by_key(|n| std::cmp::Reverse(n.range_bits));
    let mut msg = match mode {
        FheMode::Exact => format!(
            "the circuit needs {needed}-bit ciphertexts, but exact table reads at 2^{target} per \
             bootstrap hold at most {widest} bits with the practical 128-bit parameter sets here \
             (a wider space shrinks each value's box below the bootstrap noise; the 8-bit set \
             needs 11 GB of keys and about 1 s per bootstrap)"
        ),
        FheMode::Approximate => format!(
            "the circuit needs {needed}-bit ciphertexts, but one bootstrap of the practical \
             128-bit parameter sets here reads at most {widest} bits (one position of its \
             polynomial per value)"
        ),
    };
    if blame.is_empty() {
        msg.push_str(&format!(
            "; its inputs and tables use n_a_bits = {} bits",
            facts.n_a_bits
        ));
    } else {
        msg.push_str(&format!(
            "; {} accumulator(s) are too wide: {}",
            blame.len(),
            list(blame.iter().map(|n| format!(
                "layer {} neuron {} ([{}, {}], {} bits)",
                n.layer, n.neuron, n.lo, n.hi, n.range_bits
            )))
        ));
    }
    msg.push_str(&format!(
        ". To fix: retrain with `n_accum_bits` {widest} or less (per-neuron pruning then keeps \
         every accumulator within it), prune more, or use fewer weight/activation bits"
    ));
    if mode == FheMode::Exact {
        msg.push_str(
            "; or lower with `max_table_bits` 4 for exact rounding (each table first clears \
             its dropped bits, two bootstraps per chunk of bits, then reads on a quiet set: \
             bit-exact, about three times the bootstraps); or accept approximate reads (one bootstrap reads up to 11 bits \
             on the 4-bit set, off by a few units near a table's steps)",
        );
    }
    Error::Backend(msg)
}

pub(super) fn too_noisy(best: &FhePlan, target: f64) -> Error {
    let mut blame: Vec<&NeuronNoise> = best
        .neurons
        .iter()
        .filter(|n| n.log2_p_fail > target)
        .collect();
    blame.sort_by(|a, b| b.log2_p_fail.total_cmp(&a.log2_p_fail));
    let worst = best.worst_log2_p_fail.ceil();
    let relax = if worst <= super::one_set::LOOSEST_TARGET_LOG2 {
        format!(", or relax the target (`p_error` {worst})")
    } else {
        String::new()
    };
    let what = match best.mode {
        FheMode::Exact => "an inexact read",
        FheMode::Approximate => "a read past the margin",
    };
    Error::Backend(format!(
        "no 128-bit parameter set meets the failure target 2^{target} per bootstrap ({what}, \
         {} mode): even with the most tolerant set that holds the circuit's {}-bit values ({}, \
         {}-bit space, {} positions per value), {} neuron(s) exceed it: {}. To fix: prune more or \
         train with fewer weight bits so that every hidden neuron has Σw² <= {} (its \
         dot-product noise grows as sqrt(Σw²)){relax}",
        best.mode,
        best.needed_bits,
        best.parameter_set,
        best.space_bits,
        best.box_positions,
        blame.len(),
        list(blame.iter().map(|n| format!(
            "layer {} neuron {} (Σw² {}, {}: 2^{:.1})",
            n.layer,
            n.neuron,
            n.sum_w2,
            if n.bootstrap {
                "bootstrap"
            } else {
                "output decryption"
            },
            n.log2_p_fail
        ))),
        best.max_sum_w2,
    ))
}

/// At most 8 items, then "and N more".
fn list(items: impl Iterator<Item = String>) -> String {
    let all: Vec<String> = items.collect();
    let mut s = all.iter().take(8).cloned().collect::<Vec<_>>().join("; ");
    if all.len() > 8 {
        s.push_str(&format!("; and {} more", all.len() - 8));
    }
    s
}
