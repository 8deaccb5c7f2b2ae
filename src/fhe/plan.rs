//! The plan types: the read mode, every dot's predicted errors, the parameter set and space
//! width, latency and key sizes, and the sets the choice considered.

use serde::{Deserialize, Serialize};

use super::catalogue::{ParamSet, ParamSetId};
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
    pub extractions: u32,
    /// Bits its dot is scaled by before its table reads it ([`read_scale_bits`](super::read_scale_bits)):
    /// the read is in the dot's own `P - scale_bits`-bit space; 0 for outputs and exact
    /// rounding's reads.
    #[serde(default)]
    pub scale_bits: u32,
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
    /// The same in accumulator units: `std / box`, the box of the dot's own space (`N /
    /// 2^(P - scale_bits)` positions); a read is off by `floor(z·σ_units + 1/2)`.
    /// 0 for exact rounding's reads, which are off only by a whole bucket (at
    /// [`log2_p_misread`](Self::log2_p_misread), below the target): a clear simulation injects
    /// nothing there.
    pub sigma_units: f64,
    /// Values between the dot's interval and the edge of its (own) space, on its narrower side.
    pub margin: u64,
    /// Predicted log2 probability that the read (or decryption) is off by at least one unit.
    pub log2_p_misread: f64,
    /// Predicted log2 probability that the read goes past the margin, for the worst value
    /// (a bootstrap then returns a wrong, negated entry; a decryption wraps).
    pub log2_p_catastrophic: f64,
    /// What the plan's mode counts as a failure: the misread (exact) or the catastrophic read
    /// (approximate), log2.
    pub log2_p_fail: f64,
}

/// The failure target that bounds the tables' read scales of a plan in `mode` with the target
/// `target` (log2): `target` in approximate mode, `None` (unscaled) in exact mode.
pub(super) fn read_scale_target(mode: FheMode, target: f64) -> Option<f64> {
    (mode == FheMode::Approximate).then_some(target)
}

/// The TFHE plan for one circuit: parameter set, encoding, predicted errors and cost.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FhePlan {
    /// The parameter set (serialized as its `tfhe::shortint::parameters` constant name).
    pub parameter_set: ParamSetId,
    /// Precision of the set's own encoding (message + carry bits).
    pub precision_bits: u32,
    /// How tables read their accumulators.
    pub mode: FheMode,
    /// `P`: every ciphertext of the circuit holds a value of `[0, 2^P)` (plus a padding bit),
    /// encoded as `Δ_P = 2^63 / 2^P`.
    pub space_bits: u32,
    /// Polynomial size `N` of the set.
    pub polynomial_size: usize,
    /// Positions (of `2N`) per value: `N / 2^P`.
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
    pub expected_misreads_per_sample: f64,
    /// Expected number of output decryptions off by at least one unit, per sample.
    pub expected_output_misreads_per_sample: f64,
    /// Largest `σ_units` of a table read.
    pub worst_sigma_units: f64,
    /// Exact rounding: every table that drops low bits first clears them, in chunks of
    /// [`extraction_chunk_bits`](Self::extraction_chunk_bits) bits (one or two bootstraps per
    /// chunk), then reads the cleared accumulator, whose values are `2^round_bits` apart (see
    /// [`crate::tfhe`]). Bit-identical to the clear backend; costs
    /// [`extraction_bootstraps`](super::extraction_bootstraps) extra bootstraps per table.
    pub exact_rounding: bool,
    /// Exact rounding: the set the extractions run on when it is not the table set
    /// ([`extraction_sets`](super::extraction_sets)): one shared GLWE key, a keyswitching and
    /// a bootstrapping key per set. `None`: every bootstrap on [`parameter_set`](Self::parameter_set).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extraction_parameter_set: Option<ParamSetId>,
    /// Exact rounding: the width of the chunks its extractions clear the dropped bits in
    /// ([`extraction_chunks`](super::extraction_chunks): one bootstrap for a one-bit chunk,
    /// two for a wider one); the widest that meets the target. 1 otherwise (and in plans
    /// written before chunks).
    #[serde(default = "one", skip_serializing_if = "is_one")]
    pub extraction_chunk_bits: u32,
    /// Bootstraps per sample (extractions included).
    pub pbs_count: usize,
    /// Cores the latency figures assume.
    pub cores: usize,
    /// One bootstrap on one thread (ms).
    pub pbs_ms_1_thread: f64,
    /// One bootstrap's wall time while every core runs one (ms), [`ParamSet::together_ms`]; 0
    /// in plans written before it was recorded.
    #[serde(default)]
    pub pbs_ms_together: f64,
    /// One bootstrap of the extraction set on one thread (ms), from the same cost source as
    /// [`pbs_ms_1_thread`](Self::pbs_ms_1_thread); `None` without a separate extraction set.
    #[serde(default)]
    pub extraction_pbs_ms_1_thread: Option<f64>,
    /// Predicted evaluation latency per sample on `cores` cores (ms), on the server: the
    /// layers of bootstraps one after another, each [`ParamSet::layer_ms`] (rounds of one
    /// bootstrap per core), plus the work outside bootstraps
    /// ([`linear_ms_per_sample`](Self::linear_ms_per_sample)).
    pub latency_ms_per_sample: f64,
    /// The same on one core (ms).
    pub latency_ms_per_sample_1_core: f64,
    /// The part of [`latency_ms_per_sample`](Self::latency_ms_per_sample) outside bootstraps
    /// (ms): the inputs taken in and the dot products (all a linear circuit's server does).
    /// 0 in plans written before it was counted.
    #[serde(default)]
    pub linear_ms_per_sample: f64,
    /// The client's work per sample (ms), not in the latency: encrypting the inputs and
    /// decrypting the outputs. 0 in plans written before it was predicted.
    #[serde(default)]
    pub client_ms_per_sample: f64,
    /// Server key in memory (bytes); 0 for a circuit without tables, which needs none.
    pub server_key_bytes: u64,
    /// Server key as saved, compressed (bytes); 0 for a circuit without tables.
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
    pub family: String,
    /// Every selectable set the choice considered, cheapest predicted latency first (empty for
    /// a plan on a given set).
    pub candidates: Vec<Candidate>,
    /// Which latency and noise figures the plan used, and when they were measured (empty in
    /// plans written before it was recorded).
    #[serde(default)]
    pub costs: String,
    /// How the plan was chosen when it is the one recorded in the circuit at compile time
    /// ([`recorded_plan`](super::recorded_plan)); `None` for a plan made now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recorded: Option<String>,
}

fn one() -> u32 {
    1
}

fn is_one(c: &u32) -> bool {
    *c == 1
}

/// One parameter set the choice considered.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Candidate {
    /// The parameter set (serialized as its `tfhe` constant name).
    pub parameter_set: ParamSetId,
    /// [`ParamSet::family`].
    pub family: String,
    /// Message + carry bits.
    pub precision_bits: u32,
    /// Predicted latency per sample on the plan's cores (ms), [`ParamSet::circuit_ms`].
    pub latency_ms_per_sample: f64,
    /// Server key in memory (bytes); 0 for a circuit without tables.
    pub server_key_bytes: u64,
    /// The space its plan would use, when it holds the circuit at the target.
    pub space_bits: Option<u32>,
    /// Exact rounding: the set its plan runs the extractions on, when not this one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extraction_parameter_set: Option<ParamSetId>,
    /// Its plan's worst failure (log2), when it holds the circuit at the target.
    pub worst_log2_p_fail: Option<f64>,
    /// Why it qualifies or not, e.g. `meets 2^-40` or `reads at most 5 bits exactly`.
    pub note: String,
    /// Its reads simulated on the calibration rows (the choice by accuracy; absent when not
    /// simulated).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub simulated: Option<super::accuracy::Simulated>,
}

impl FhePlan {
    /// The failure target (log2) that bounds how far each table's read is scaled
    /// ([`read_scale_bits`](super::read_scale_bits)): the plan's target in approximate mode;
    /// `None` in exact mode, whose reads stay unscaled (the keys record it with the encoding).
    pub fn read_scale_target(&self) -> Option<f64> {
        read_scale_target(self.mode, self.target_log2_p_fail)
    }

    /// The plan's parameter set (its tables' reads, and every bootstrap of a plan without an
    /// [`extraction_parameter_set`](Self::extraction_parameter_set)).
    pub fn set(&self) -> &'static ParamSet {
        self.parameter_set.set()
    }

    /// The set exact rounding's extractions run on: the
    /// [`extraction_parameter_set`](Self::extraction_parameter_set), else the table set.
    pub fn extraction_set(&self) -> &'static ParamSet {
        self.extraction_parameter_set
            .unwrap_or(self.parameter_set)
            .set()
    }

    /// How the set was chosen, in one sentence: by accuracy (with the simulated agreement), by
    /// predicted latency (with the reason the chosen candidate gave), or on a given set.
    pub fn describe_choice(&self) -> String {
        if let Some(r) = &self.recorded {
            return r.clone();
        }
        let Some(c) = self
            .candidates
            .iter()
            .find(|c| c.parameter_set == self.parameter_set)
        else {
            return "on a given parameter set (no choice)".into();
        };
        match &c.simulated {
            Some(s) => format!(
                "by accuracy, reads simulated on {} calibration rows × {} noise seeds: {} ({})",
                s.rows,
                s.seeds,
                s.describe(),
                c.note
            ),
            None => format!("by predicted latency ({})", c.note),
        }
    }

    /// The plan as the circuit file records it ([`crate::ir::PlanRecord`]).
    pub fn record(&self) -> crate::ir::PlanRecord {
        crate::ir::PlanRecord {
            parameter_set: self.parameter_set.name().into(),
            mode: self.mode.name().into(),
            target_log2_p_fail: self.target_log2_p_fail,
            latency_ms_per_sample: self.latency_ms_per_sample,
            cores: self.cores,
            costs: self.costs.clone(),
            chosen_by: self.describe_choice(),
            extraction_parameter_set: self
                .exact_rounding
                .then(|| self.extraction_set().name.to_string()),
            extraction_chunk_bits: self.exact_rounding.then_some(self.extraction_chunk_bits),
        }
    }
}
