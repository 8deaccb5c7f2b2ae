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
//! Files: `catalogue` (the sets), `noise` (Gaussian maths), `latency` (layers on cores),
//! `encoding` (margins, alignment), `reads` (each read's noise), `plan` (plan types, planning on
//! one set), `choose` (the choice among sets), `render` (the plan as text).

mod catalogue;
mod choose;
mod encoding;
mod latency;
mod noise;
mod plan;
mod reads;
mod render;
#[cfg(test)]
mod tests;

pub use catalogue::{parameter_set, ModulusSwitch, ParamSet, PARAMETER_SETS};
pub use choose::{
    choose_approximate, choose_parameters, choose_parameters_among, choose_parameters_with,
};
pub use encoding::{aligned_margins, margins, needed_bits, read_align_bits};
pub use latency::pbs_per_layer;
pub use noise::{
    catastrophic_log2, ln_erfc, log2_add, log2_erfc_ratio, misread_log2, offset_at_least_log2,
    read_offset, LOG2_P_FLOOR,
};
pub use plan::{
    plan_for, plan_on, plan_on_with, plan_with, Candidate, FheMode, FhePlan, NeuronNoise,
};
pub use reads::{read_sigma_units, sigma_units_by_node};
pub use render::render_plan;
