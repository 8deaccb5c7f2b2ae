//! Stage 5: execution. The [`Backend`] trait, and the clear backend: a bit-exact model of what
//! the TFHE ciphertexts hold, batched over samples.
//!
//! A backend takes quantized inputs (one integer per feature per sample, as
//! [`IntGraph::quantize_inputs`](crate::ir::IntGraph::quantize_inputs) makes them) and returns
//! the output accumulators, which the client dequantizes.

pub mod calibrate;

pub use calibrate::{calibrate, CalibratedNeuron, Calibration};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;
use rayon::prelude::*;

use crate::analyze::{Analyzed, CheckedGraph};
use crate::error::{Error, Result};
use crate::ir::Op;

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

/// What a simulated run saw: per table, how many reads the injected noise moved.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SimStats {
    /// Samples simulated.
    pub samples: usize,
    /// `misreads[node]`: reads of that table whose index the noise moved (0 for other nodes).
    pub misreads: Vec<u64>,
    /// `changed[node]`: of those, the reads whose table output changed.
    pub changed: Vec<u64>,
}

impl ClearBackend {
    /// Simulates approximate bootstraps in clear: before each table lookup, the index is moved
    /// by `round(z · sigma[node])` with `z` standard normal, then clamped to the table (the
    /// encrypted tables clamp their margins the same way); a `Dot` with `sigma > 0` (an output
    /// decrypted from a noisy ciphertext) is moved likewise, unclamped. `sigma[node]` is in
    /// accumulator units, as the TFHE noise model predicts it
    /// ([`crate::fhe::sigma_units_by_node`]); 0 means exact. Seeded: the same seed gives the
    /// same run. (Tables with `round_bits > 0` are read after the shift here; lowering does not
    /// produce them.)
    pub fn simulate(
        &self,
        an: &Analyzed,
        inputs: &[Vec<i64>],
        sigma: &[f64],
        seed: u64,
    ) -> Result<(Vec<Vec<i64>>, SimStats)> {
        validate_inputs(an, inputs)?;
        let g = an.graph();
        if sigma.len() != g.nodes.len() || sigma.iter().any(|s| !s.is_finite() || *s < 0.0) {
            return Err(Error::Input(format!(
                "simulation needs one finite, non-negative noise level per node ({} nodes, {} given)",
                g.nodes.len(),
                sigma.len()
            )));
        }
        let chunk = self.chunk.max(1);
        let parts: Vec<ChunkResult> = inputs
            .par_chunks(chunk)
            .enumerate()
            .map(|(k, c)| {
                let mut noise = Noise {
                    sigma,
                    rng: ChaCha8Rng::seed_from_u64(
                        seed ^ (k as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15),
                    ),
                    misreads: vec![0; g.nodes.len()],
                    changed: vec![0; g.nodes.len()],
                };
                let vals = eval_chunk_with(an, c, Some(&mut noise));
                (vals, c.len(), noise.misreads, noise.changed)
            })
            .collect();
        let outputs = &g.outputs;
        let mut out = Vec::with_capacity(inputs.len());
        let mut stats = SimStats {
            samples: inputs.len(),
            misreads: vec![0; g.nodes.len()],
            changed: vec![0; g.nodes.len()],
        };
        for (vals, b, m, ch) in parts {
            for s in 0..b {
                out.push(outputs.iter().map(|&o| vals[o * b + s]).collect());
            }
            for (t, v) in stats.misreads.iter_mut().zip(m) {
                *t += v;
            }
            for (t, v) in stats.changed.iter_mut().zip(ch) {
                *t += v;
            }
        }
        Ok((out, stats))
    }
}

/// One chunk's values (node-major), its size, and its misread counts.
type ChunkResult = (Vec<i64>, usize, Vec<u64>, Vec<u64>);

/// Injected read noise for [`ClearBackend::simulate`].
struct Noise<'a> {
    sigma: &'a [f64],
    rng: ChaCha8Rng,
    misreads: Vec<u64>,
    changed: Vec<u64>,
}

fn eval_chunk(an: &Analyzed, inputs: &[Vec<i64>]) -> Vec<i64> {
    eval_chunk_with(an, inputs, None)
}

fn eval_chunk_with(an: &Analyzed, inputs: &[Vec<i64>], mut noise: Option<&mut Noise>) -> Vec<i64> {
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
                        let last = table.len() - 1;
                        for (o, &v) in out.iter_mut().zip(x) {
                            // A noisy input (a hidden dot given noise) may leave the
                            // table: clamp, as the encrypted tables' margins do.
                            let exact = crate::cast::index(
                                ((v + offset) >> round_bits)
                                    .clamp(0, i64::try_from(last).unwrap_or(0)),
                            );
                            let shift = if n.sigma[id] > 0.0 {
                                let z: f64 = n.rng.sample(StandardNormal);
                                crate::cast::round_clamp(z * n.sigma[id], -(1 << 40), 1 << 40)
                            } else {
                                0
                            };
                            let read = crate::cast::index(
                                (i64::try_from(exact).unwrap_or(0) + shift)
                                    .clamp(0, i64::try_from(last).unwrap_or(0)),
                            );
                            if read != exact {
                                n.misreads[id] += 1;
                                if table[read] != table[exact] {
                                    n.changed[id] += 1;
                                }
                            }
                            *o = table[read];
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
