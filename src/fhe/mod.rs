//! TFHE parameters without TFHE: the catalogue of 128-bit parameter sets sqnn may use, the noise
//! model that turns a neuron's Σw² into predicted read errors, the encoding of a circuit's values
//! in a `P`-bit space, and the plan for a checked circuit (the set, the space, the predicted
//! errors and cost). This module does not depend on the `tfhe` crate, so a build without the
//! `tfhe-backend` feature still reports what a circuit would cost under TFHE, and the clear
//! backend can simulate its errors.
//!
//! The derivation of the noise model, of the read and of the two [`FheMode`]s is in
//! `docs/fhe-noise.md`.
//!
//! One call plans a circuit: [`plan`]`(&`[`PlanFacts`]`, &`[`PlanRequest`]`)`, with the facts
//! taken from the analysis (`PlanFacts::from(&checked)`) and the request saying forced set or
//! choice, mode, target and cores. The sets are [`ParamSetId`]s; their measured figures live in
//! the dated data file `src/fhe/measured.json`.
//!
//! Files: `accuracy` (the choice by simulated accuracy on calibration rows), `catalogue` (the
//! sets), `variants` (decomposition variants of shipped sets and their validation), `extract`
//! (a cheaper set for exact rounding's extractions), `formulas`
//! (`tfhe`'s noise formulas), `measured` (the data file), `noise` (Gaussian maths),
//! `latency` (layers on cores), `encoding` (margins, alignment, the dropped-bits rule, each table's read scale), `facts`
//! (what the planner reads), `reads` (each read's noise), `plan` (plan types), `profile` (the
//! cost source: built-in figures or this machine's [`CostProfile`]), `one_set`
//! (planning on one set), `choose` (the choice among sets), `request` (the planner call),
//! `render` (the plan as text).

mod accuracy;
mod catalogue;
mod choose;
mod encoding;
mod extract;
mod facts;
mod formulas;
mod latency;
mod measured;
mod noise;
mod one_set;
mod plan;
mod profile;
mod reads;
mod render;
mod request;
#[cfg(test)]
mod tests;
mod variants;

pub use accuracy::{Calibration, Simulated};
pub use catalogue::{catalogue, ModulusSwitch, ParamSet, ParamSetId};
pub use choose::FAIL64_MIN_GAIN;
pub use encoding::{
    aligned_margins, margins, needed_bits, read_align_bits, read_scale_bits, rounding_scale,
    widest_read_bits, widest_space_bits, ScaledRead, MAX_EXTRA_READ_BITS,
};
pub use extract::{
    chains_ms, extraction_bootstraps, extraction_chunks, extraction_pairs, extraction_sets,
    Extractions, MAX_CHUNK_BITS,
};
pub use facts::{DotFacts, PlanFacts};
pub use formulas::{bootstrap_variance, keyswitch_variance, modulus_switch_variance};
pub use latency::pbs_per_layer;
pub use noise::{
    catastrophic_log2, ln_erfc, log2_add, log2_erfc_ratio, misread_log2, offset_at_least_log2,
    read_offset, read_offset_probability, LOG2_P_FLOOR,
};
pub use one_set::LOOSEST_TARGET_LOG2;
pub use plan::{Candidate, FheMode, FhePlan, NeuronNoise};
pub use profile::{
    builtin_cores, builtin_date, CostProfile, SetCost, CACHE_DIR_ENV, MAX_PROFILE_BYTES,
    PROFILE_FILE, PROFILE_FORMAT, PROFILE_VERSION,
};
pub use reads::{read_sigma_units, sigma_units_by_node};
pub use render::render_plan;
pub use request::{plan, recorded_plan, PlanRequest, FALLBACK_MAX_SIGMA};
pub use variants::{Decomposition, NoiseValidation, KURTOSIS_SIGMAS, VARIANCE_TOLERANCE};
