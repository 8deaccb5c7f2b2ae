//! The plan types and planning on one parameter set: the read mode, every dot's predicted
//! errors, the space width, latency and key sizes.

use serde::{Deserialize, Serialize};

use super::catalogue::{parameter_set, ParamSet, PARAMETER_SETS};
use super::choose::{too_noisy, too_wide};
use super::encoding::{approximate_top, needed_bits};
use super::latency::pbs_per_layer;
use super::noise::{log2_add, LOG2_P_FLOOR};
use super::reads::neuron_noise;
use crate::analyze::CompileReport;
use crate::error::{Error, Result};

/// How a circuit's tables read their accumulators (`docs/fhe-noise.md`, "Two modes").
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FheMode {
    /// Every read exact with probability `>= 1 - 2^target` per bootstrap: bit-identical to the
    /// clear backend.
    #[default]
    Exact,
    /// One bootstrap of the cheapest set whose polynomial holds the space; reads may be off by a
    /// few units (predicted per neuron); only a read past the margin must meet the target.
    Approximate,
}

impl FheMode {
    /// `"exact"` or `"approximate"`.
    pub fn name(&self) -> &'static str {
        match self {
            FheMode::Exact => "exact",
            FheMode::Approximate => "approximate",
        }
    }
}

impl std::str::FromStr for FheMode {
    type Err = Error;
    fn from_str(s: &str) -> Result<FheMode> {
        match s {
            "exact" => Ok(FheMode::Exact),
            "approximate" | "approx" => Ok(FheMode::Approximate),
            other => Err(Error::param(
                "mode",
                format!("{other:?} is not a TFHE read mode: give exact or approximate"),
            )),
        }
    }
}

impl std::fmt::Display for FheMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// One noisy operation of the circuit: a hidden neuron's bootstrap (the table's read of its
/// dot), or an output's decryption.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NeuronNoise {
    /// The dot node (a table reads it, or it is an output).
    pub node: usize,
    /// Exact rounding: bootstraps that clear the table's dropped bits one by one before the
    /// table reads the rest ([`FhePlan::exact_rounding`]); 0 otherwise.
    #[serde(default)]
    pub extractions: u32,
    /// Linear layer.
    pub layer: usize,
    /// Neuron index within the layer.
    pub neuron: usize,
    /// Σ w² of its integer weights.
    pub sum_w2: u64,
    /// Whether a bootstrap (table) follows; `false` for output accumulators (decrypted).
    pub bootstrap: bool,
    /// Predicted standard deviation of the error, in positions (modulus-switch units, `2N`).
    pub std: f64,
    /// The same in accumulator units: `std / box`; a read is off by `floor(z·σ_units + 1/2)`.
    #[serde(default)]
    pub sigma_units: f64,
    /// Values between the dot's interval and the edge of the space, on its narrower side.
    #[serde(default)]
    pub margin: u64,
    /// Predicted log2 probability that the read (or decryption) is off by at least one unit.
    #[serde(default)]
    pub log2_p_misread: f64,
    /// Predicted log2 probability that the read goes past the margin, for the worst value
    /// (a bootstrap then returns a wrong, negated entry; a decryption wraps).
    #[serde(default)]
    pub log2_p_catastrophic: f64,
    /// What the plan's mode counts as a failure: the misread (exact) or the catastrophic read
    /// (approximate), log2.
    pub log2_p_fail: f64,
}

/// The TFHE plan for one circuit: parameter set, encoding, predicted errors and cost.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FhePlan {
    /// The `tfhe::shortint::parameters` constant name.
    pub parameter_set: String,
    /// Precision of the set's own encoding (message + carry bits).
    pub precision_bits: u32,
    /// How tables read their accumulators.
    #[serde(default)]
    pub mode: FheMode,
    /// `P`: every ciphertext of the circuit holds a value of `[0, 2^P)` (plus a padding bit),
    /// encoded as `Δ_P = 2^63 / 2^P`.
    #[serde(default)]
    pub space_bits: u32,
    /// Polynomial size `N` of the set.
    #[serde(default)]
    pub polynomial_size: usize,
    /// Positions (of `2N`) per value: `N / 2^P`.
    #[serde(default)]
    pub box_positions: f64,
    /// Precision the circuit needs: widest accumulator, input or table value.
    pub needed_bits: u32,
    /// The failure target per bootstrap (log2).
    pub target_log2_p_fail: f64,
    /// Worst predicted failure (as the mode counts it) of one bootstrap or output decryption.
    pub worst_log2_p_fail: f64,
    /// Where the worst is.
    pub worst: Option<NeuronNoise>,
    /// Predicted probability that some bootstrap or decryption of one sample fails (as the mode
    /// counts it): log2 of the sum over the circuit.
    pub total_log2_p_fail: f64,
    /// Expected number of table reads off by at least one unit, per sample.
    #[serde(default)]
    pub expected_misreads_per_sample: f64,
    /// Expected number of output decryptions off by at least one unit, per sample.
    #[serde(default)]
    pub expected_output_misreads_per_sample: f64,
    /// Largest `σ_units` of a table read.
    #[serde(default)]
    pub worst_sigma_units: f64,
    /// Exact rounding: every table that drops low bits first clears them with one 1-bit
    /// bootstrap per bit (each reads one bit, with a quarter of the torus as tolerance), then
    /// reads the cleared accumulator, whose values are `2^round_bits` apart (see
    /// [`crate::tfhe`]). Bit-identical to the clear backend; costs `round_bits` extra
    /// bootstraps per table.
    #[serde(default)]
    pub exact_rounding: bool,
    /// Bootstraps per sample (extractions included).
    pub pbs_count: usize,
    /// Cores the latency figures assume.
    pub cores: usize,
    /// One bootstrap on one thread (ms).
    pub pbs_ms_1_thread: f64,
    /// Predicted evaluation latency per sample on `cores` cores (ms): the layers one after
    /// another, each [`ParamSet::layer_ms`] (at least `bootstraps × pbs_ms_1_thread ÷ cores`).
    pub latency_ms_per_sample: f64,
    /// The same on one core (ms).
    pub latency_ms_per_sample_1_core: f64,
    /// Server key in memory (bytes).
    pub server_key_bytes: u64,
    /// Server key as saved, compressed (bytes).
    pub compressed_server_key_bytes: u64,
    /// Client key (bytes).
    pub client_key_bytes: u64,
    /// Expected key generation time (s).
    pub keygen_seconds: f64,
    /// Largest Σw² a hidden neuron may have at the target with this set and encoding (exact:
    /// for an exact read; approximate: to stay within the narrowest margin).
    pub max_sum_w2: u64,
    /// Every dot product's predicted errors, in node order.
    pub neurons: Vec<NeuronNoise>,
    /// The set's family ([`ParamSet::family`]), e.g. `classic, 2^-128`.
    #[serde(default)]
    pub family: String,
    /// Every selectable set the choice considered, cheapest predicted latency first (empty for
    /// a plan on a given set).
    #[serde(default)]
    pub candidates: Vec<Candidate>,
}

/// One parameter set the choice considered.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Candidate {
    /// The `tfhe` constant name.
    pub parameter_set: String,
    /// [`ParamSet::family`].
    pub family: String,
    /// Message + carry bits.
    pub precision_bits: u32,
    /// Predicted latency per sample on the plan's cores (ms), [`ParamSet::circuit_ms`].
    pub latency_ms_per_sample: f64,
    /// Server key in memory (bytes).
    pub server_key_bytes: u64,
    /// The space its plan would use, when it holds the circuit at the target.
    pub space_bits: Option<u32>,
    /// Its plan's worst failure (log2), when it holds the circuit at the target.
    pub worst_log2_p_fail: Option<f64>,
    /// Why it qualifies or not, e.g. `meets 2^-40` or `reads at most 5 bits exactly`.
    pub note: String,
}

impl FhePlan {
    /// The parameter set named by the plan.
    pub fn set(&self) -> Result<&'static ParamSet> {
        parameter_set(&self.parameter_set).ok_or_else(|| {
            Error::Backend(format!(
                "unknown parameter set {:?}: this sqnn knows {}",
                self.parameter_set,
                PARAMETER_SETS
                    .iter()
                    .map(|p| p.name)
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        })
    }
}

/// The exact-mode plan of `report` on `set` with `P = needed_bits` (no checks).
pub fn plan_for(report: &CompileReport, set: &ParamSet, target: f64, cores: usize) -> FhePlan {
    plan_on(
        report,
        set,
        needed_bits(report),
        FheMode::Exact,
        target,
        cores,
    )
}

/// The plan of `report` on `set` with a `space_bits`-bit space, its errors counted as `mode`
/// counts them (no checks: the plan may miss the target or not fit the set).
pub fn plan_on(
    report: &CompileReport,
    set: &ParamSet,
    space_bits: u32,
    mode: FheMode,
    target: f64,
    cores: usize,
) -> FhePlan {
    plan_on_with(report, set, space_bits, mode, false, target, cores)
}

/// [`plan_on`], with [exact rounding](FhePlan::exact_rounding) when `exact_rounding` (exact
/// mode only).
pub fn plan_on_with(
    report: &CompileReport,
    set: &ParamSet,
    space_bits: u32,
    mode: FheMode,
    exact_rounding: bool,
    target: f64,
    cores: usize,
) -> FhePlan {
    let extract = exact_rounding && mode == FheMode::Exact;
    let neurons: Vec<NeuronNoise> = report
        .neurons
        .iter()
        .map(|n| neuron_noise(set, space_bits, mode, extract, n))
        .collect();
    let pbs_count = report.pbs_count
        + neurons
            .iter()
            .map(|n| n.extractions as usize)
            .sum::<usize>();
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
            .sum()
    };
    let min_margin = neurons
        .iter()
        .filter(|n| n.bootstrap)
        .map(|n| n.margin)
        .min();
    let max_sum_w2 = match (mode, min_margin) {
        (FheMode::Approximate, Some(m)) => set.max_sum_w2_catastrophic(space_bits, m, target),
        _ => set.max_sum_w2_exact(space_bits, target),
    };
    let cores = cores.max(1);
    let lat1 = pbs_count as f64 * set.pbs_ms_1_thread;
    // Exact rounding's extractions run in their tables' layers (their sequential depth within
    // a neuron is not modelled: with more tables than cores it hides behind the others).
    let mut layers = pbs_per_layer(report);
    for n in neurons.iter().filter(|n| n.extractions > 0) {
        let slot = if layers.len() == 1 { 0 } else { n.layer };
        if let Some(l) = layers.get_mut(slot) {
            *l += n.extractions as usize;
        }
    }
    let latency = set.circuit_ms(&layers, cores);
    FhePlan {
        parameter_set: set.name.to_string(),
        precision_bits: set.precision(),
        mode,
        space_bits,
        polynomial_size: set.polynomial_size,
        box_positions: set.box_positions(space_bits),
        needed_bits: needed_bits(report),
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
        pbs_count,
        cores,
        pbs_ms_1_thread: set.pbs_ms_1_thread,
        latency_ms_per_sample: latency,
        latency_ms_per_sample_1_core: lat1,
        server_key_bytes: set.server_key_bytes,
        compressed_server_key_bytes: set.compressed_server_key_bytes,
        client_key_bytes: set.client_key_bytes,
        keygen_seconds: set.keygen_seconds,
        max_sum_w2,
        neurons,
        family: set.family(),
        candidates: Vec::new(),
    }
}

pub(super) fn check_target(target: f64) -> Result<()> {
    if !(LOG2_P_FLOOR..0.0).contains(&target) {
        return Err(Error::param(
            "p_error",
            format!(
                "{target} is not a log2 probability in [{LOG2_P_FLOOR}, 0): give e.g. -40 for 2^-40"
            ),
        ));
    }
    Ok(())
}

/// The plan of `report` on `set` in `mode`, with the mode's space width: exact,
/// `P = needed_bits`; approximate, the narrowest `P >= needed_bits` (at most `log2 N`) whose
/// margins keep every bootstrap's catastrophic probability within the target.
///
/// Errors when the space does not fit the set's polynomial (`P > log2 N`, or `P >= log2 N`
/// for exact reads, which need half a box of at least one position) or the mode's failures
/// miss `2^target_log2_p_fail`; the message names the neurons and what to change.
pub fn plan_with(
    report: &CompileReport,
    set: &ParamSet,
    mode: FheMode,
    target_log2_p_fail: f64,
    cores: usize,
) -> Result<FhePlan> {
    let target = target_log2_p_fail;
    check_target(target)?;
    let needed = needed_bits(report);
    let top = match mode {
        FheMode::Exact => set.max_space_bits().saturating_sub(1),
        FheMode::Approximate => approximate_top(set, report),
    };
    if needed > top {
        return Err(too_wide(report, needed, top, mode, target));
    }
    let widths = match mode {
        FheMode::Exact => needed..=needed,
        FheMode::Approximate => needed..=top,
    };
    let mut last = None;
    for p in widths {
        let plan = plan_on(report, set, p, mode, target, cores);
        if plan.worst_log2_p_fail <= target {
            return Ok(plan);
        }
        last = Some(plan);
    }
    // Exact reads of the whole accumulator miss the target: clear the dropped bits first.
    let rounds = report
        .neurons
        .iter()
        .any(|n| n.table_len > 0 && n.round_bits > 0);
    if mode == FheMode::Exact && rounds {
        // The narrowest space that holds the aligned encoding and meets the target.
        for p in needed..=top {
            let plan = plan_on_with(report, set, p, mode, true, target, cores);
            if plan.worst_log2_p_fail <= target {
                return Ok(plan);
            }
        }
    }
    Err(too_noisy(&last.expect("at least one width"), target))
}
