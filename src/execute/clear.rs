//! The clear backend: integer arithmetic only, the operations the TFHE backend performs, over
//! batches of samples in parallel.

use rand::Rng;
use rand_distr::StandardNormal;
use rayon::prelude::*;

use super::simulate::Noise;
use super::{validate_inputs, Backend};
use crate::analyze::{Analyzed, CheckedGraph};
use crate::error::Result;
use crate::ir::Op;

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

/// Evaluates one chunk of samples exactly.
fn eval_chunk(an: &Analyzed, inputs: &[Vec<i64>]) -> Vec<i64> {
    eval_chunk_with(an, inputs, None)
}

/// Evaluates one chunk of samples node by node; with `noise`, reads are moved as
/// [`ClearBackend::simulate`] describes. Values are node-major: `vals[node * b + s]`.
pub(super) fn eval_chunk_with(
    an: &Analyzed,
    inputs: &[Vec<i64>],
    mut noise: Option<&mut Noise>,
) -> Vec<i64> {
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
                // Simulation: an output decrypted from a noisy ciphertext is off by
                // round(z · sigma) (not clamped: nothing reads it through a table).
                if let Some(n) = noise.as_deref_mut().filter(|n| n.sigma[id] > 0.0) {
                    for o in out.iter_mut() {
                        let z: f64 = n.rng.sample(StandardNormal);
                        let d = crate::cast::round_clamp(z * n.sigma[id], -(1 << 40), 1 << 40);
                        if d != 0 {
                            n.misreads[id] += 1;
                            n.changed[id] += 1;
                        }
                        *o += d;
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
                // In a simulation every read is clamped (an earlier noisy dot may have moved
                // this table's input); otherwise the analysis proves the index in range.
                match noise.as_deref_mut() {
                    None => {
                        for (o, &v) in out.iter_mut().zip(x) {
                            // In range by the analysis: index in [0, table.len()).
                            *o = table[crate::cast::index((v + offset) >> round_bits)];
                        }
                    }
                    Some(n) => {
                        // The read moves the accumulator, before the shift, as the ciphertext
                        // does (`docs/fhe-noise.md`): the margins repeat the edge entries, so
                        // the moved value is clamped to the dot's proved interval.
                        let iv = an.facts()[*input].interval;
                        let entry = |a: i64| table[crate::cast::index((a + offset) >> round_bits)];
                        for (o, &v) in out.iter_mut().zip(x) {
                            // A noisy input (an output dot given noise) may leave its interval.
                            let exact = v.clamp(iv.lo, iv.hi);
                            let d = if n.sigma[id] > 0.0 {
                                let z: f64 = n.rng.sample(StandardNormal);
                                crate::cast::round_clamp(z * n.sigma[id], -(1 << 40), 1 << 40)
                            } else {
                                0
                            };
                            let read = (exact + d).clamp(iv.lo, iv.hi);
                            let value = entry(read);
                            if read != exact {
                                n.misreads[id] += 1;
                                if value != entry(exact) {
                                    n.changed[id] += 1;
                                }
                            }
                            *o = value;
                        }
                    }
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
