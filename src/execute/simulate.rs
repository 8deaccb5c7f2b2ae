//! Approximate bootstraps simulated in clear: the clear backend with each table read (and each
//! noisy output) moved by seeded Gaussian noise of the level the TFHE noise model predicts.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use super::clear::{eval_chunk_with, ClearBackend};
use super::validate_inputs;
use crate::analyze::Analyzed;
use crate::error::{Error, Result};

/// What a simulated run saw: per table, how many reads the injected noise moved.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SimStats {
    /// Samples simulated.
    pub samples: usize,
    /// `misreads[node]`: reads of that table whose accumulator the noise moved (after clamping
    /// to the dot's interval; for an output dot, decryptions the noise moved; 0 elsewhere).
    pub misreads: Vec<u64>,
    /// `changed[node]`: of those, the reads whose table output changed.
    pub changed: Vec<u64>,
}

impl ClearBackend {
    /// Simulates approximate bootstraps in clear, as the ciphertexts read them
    /// (`docs/fhe-noise.md`, "The read"): a table reading a dot of value `v` in `[lo, hi]` reads
    /// `table[(clamp(v + d, lo, hi) + offset) >> round_bits]` with `d = round(z · sigma[node])`,
    /// `z` standard normal: the noise moves the *accumulator*, before the table drops its low
    /// bits (the encrypted test vector reads the whole accumulator; its margins repeat the edge
    /// entries). A `Dot` with `sigma > 0` (an output decrypted from a noisy ciphertext) is moved
    /// likewise, unclamped. `sigma[node]` is in accumulator units, as the TFHE noise model
    /// predicts it ([`crate::fhe::sigma_units_by_node`]); 0 means exact. Seeded: the same seed
    /// gives the same run.
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
                        seed ^ crate::cast::to_u64(k).wrapping_mul(0x9E37_79B9_7F4A_7C15),
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
pub(super) struct Noise<'a> {
    /// Per node, the read noise's deviation in accumulator units (0: exact).
    pub(super) sigma: &'a [f64],
    /// The seeded generator.
    pub(super) rng: ChaCha8Rng,
    /// Per node, reads the noise moved.
    pub(super) misreads: Vec<u64>,
    /// Per node, moved reads whose output changed.
    pub(super) changed: Vec<u64>,
}
