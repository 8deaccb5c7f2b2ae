//! Stage 5: execution. The [`Backend`] trait; the clear backend ([`ClearBackend`]), a bit-exact
//! model of what the TFHE ciphertexts hold, batched over samples; its simulation of approximate
//! reads ([`ClearBackend::simulate`]); and calibration against the proof ([`calibrate()`]).
//!
//! A backend takes quantized inputs (one integer per feature per sample, as
//! [`IntGraph::quantize_inputs`](crate::ir::IntGraph::quantize_inputs) makes them) and returns
//! the output accumulators, which the client dequantizes.

pub mod calibrate;
mod clear;
mod simulate;

pub use calibrate::{calibrate, CalibratedNeuron, Calibration};
pub use clear::ClearBackend;
pub use simulate::SimStats;

use crate::analyze::{Analyzed, CheckedGraph};
use crate::error::{Error, Result};

/// Something that executes a checked integer graph.
pub trait Backend {
    /// Short name for reports (`"clear"`, `"tfhe"`).
    fn name(&self) -> &'static str;

    /// Runs the graph on a batch of quantized inputs; returns each sample's output accumulators.
    fn run(&self, graph: &CheckedGraph, inputs: &[Vec<i64>]) -> Result<Vec<Vec<i64>>>;
}

/// Checks feature counts and that every input lies in its declared interval.
pub fn validate_inputs(an: &Analyzed, inputs: &[Vec<i64>]) -> Result<()> {
    let g = an.graph();
    let ids = g.input_nodes();
    for (s, x) in inputs.iter().enumerate() {
        if x.len() != ids.len() {
            return Err(Error::Input(format!(
                "sample {s} has {} values, the circuit {:?} expects {} features",
                x.len(),
                g.name,
                ids.len()
            )));
        }
        for (j, (&v, &id)) in x.iter().zip(&ids).enumerate() {
            let iv = an.facts()[id].interval;
            if v < iv.lo || v > iv.hi {
                return Err(Error::Input(format!(
                    "sample {s}, feature {j}: quantized value {v} is outside [{}, {}]; quantize \
                     raw features with the circuit's client spec",
                    iv.lo, iv.hi
                )));
            }
        }
    }
    Ok(())
}
