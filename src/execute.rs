//! Stage 5: execution. The [`Backend`] trait, and the clear backend: a bit-exact model of what
//! the TFHE ciphertexts hold, batched over samples.
//!
//! A backend takes quantized inputs (one integer per feature per sample, as
//! [`IntGraph::quantize_inputs`](crate::graph::IntGraph::quantize_inputs) makes them) and returns
//! the output accumulators, which the client dequantizes.

use rayon::prelude::*;

use crate::analyze::{Analyzed, CheckedGraph};
use crate::error::{Error, Result};
use crate::graph::Op;

/// Something that executes a checked integer graph.
pub trait Backend {
    /// Short name for reports (`"clear"`, `"tfhe"`).
    fn name(&self) -> &'static str;

    /// Runs the graph on a batch of quantized inputs; returns each sample's output accumulators.
    fn run(&self, graph: &CheckedGraph, inputs: &[Vec<i64>]) -> Result<Vec<Vec<i64>>>;
}

/// The clear backend: integer arithmetic only, the same operations the TFHE backend performs.
///
/// Overflow is impossible by construction: it runs only analyzed graphs, whose every value is
/// proved to lie in an `i64` interval; debug builds check each value against its interval.
#[derive(Clone, Debug)]
pub struct ClearBackend {
    /// Samples per batch (each batch is evaluated node by node; batches run in parallel).
    pub chunk: usize,
}

impl Default for ClearBackend {
    fn default() -> Self {
        ClearBackend { chunk: 256 }
    }
}

impl Backend for ClearBackend {
    fn name(&self) -> &'static str {
        "clear"
    }

    fn run(&self, graph: &CheckedGraph, inputs: &[Vec<i64>]) -> Result<Vec<Vec<i64>>> {
        self.evaluate(graph.analyzed(), inputs)
    }
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

impl ClearBackend {
    /// Runs any analyzed graph (also one that failed the budget check: in clear, values that
    /// exceed `n_accum_bits` are still exact) and returns the output accumulators.
    pub fn evaluate(&self, an: &Analyzed, inputs: &[Vec<i64>]) -> Result<Vec<Vec<i64>>> {
        let outputs = &an.graph().outputs;
        let traces = self.trace_chunks(an, inputs)?;
        let mut out = Vec::with_capacity(inputs.len());
        for (vals, b) in traces {
            for s in 0..b {
                out.push(outputs.iter().map(|&o| vals[o * b + s]).collect());
            }
        }
        Ok(out)
    }

    /// Every node's value for every sample: `result[node][sample]`.
    pub fn trace(&self, an: &Analyzed, inputs: &[Vec<i64>]) -> Result<Vec<Vec<i64>>> {
        let n = an.graph().nodes.len();
        let mut all = vec![Vec::with_capacity(inputs.len()); n];
        for (vals, b) in self.trace_chunks(an, inputs)? {
            for (node, col) in all.iter_mut().enumerate() {
                col.extend_from_slice(&vals[node * b..(node + 1) * b]);
            }
        }
        Ok(all)
    }

    /// Evaluates chunks in parallel; each chunk's values are node-major: `vals[node * b + s]`.
    fn trace_chunks(&self, an: &Analyzed, inputs: &[Vec<i64>]) -> Result<Vec<(Vec<i64>, usize)>> {
        validate_inputs(an, inputs)?;
        let chunk = self.chunk.max(1);
        Ok(inputs
            .par_chunks(chunk)
            .map(|c| (eval_chunk(an, c), c.len()))
            .collect())
    }
}

fn eval_chunk(an: &Analyzed, inputs: &[Vec<i64>]) -> Vec<i64> {
    let g = an.graph();
    let b = inputs.len();
    let mut vals = vec![0i64; g.nodes.len() * b];
    for (id, node) in g.nodes.iter().enumerate() {
        let (done, rest) = vals.split_at_mut(id * b);
        let out = &mut rest[..b];
        match &node.op {
            Op::Input { feature, .. } => {
                for (o, x) in out.iter_mut().zip(inputs) {
                    *o = x[*feature];
                }
            }
            Op::Dot { terms, constant } => {
                out.fill(*constant);
                for &(src, w) in terms {
                    let x = &done[src * b..(src + 1) * b];
                    for (o, &v) in out.iter_mut().zip(x) {
                        *o += w * v;
                    }
                }
            }
            Op::Lut {
                input,
                offset,
                round_bits,
                table,
                ..
            } => {
                let x = &done[*input * b..(*input + 1) * b];
                for (o, &v) in out.iter_mut().zip(x) {
                    // In range by the analysis: index in [0, table.len()).
                    *o = table[crate::cast::index((v + offset) >> round_bits)];
                }
            }
        }
        if cfg!(debug_assertions) {
            let iv = an.facts()[id].interval;
            debug_assert!(
                out.iter().all(|v| *v >= iv.lo && *v <= iv.hi),
                "node {id} left its proved interval"
            );
        }
    }
    vals
}
