//! Noise-aware training: the approximate-read noise of a TFHE parameter set ([`ReadNoise`]),
//! added during training to every hidden neuron's accumulator before its table, as the
//! ciphertext's bootstrap reads it.
//!
//! `train` sits upstream of `fhe`, so it holds the noise as plain numbers (a set's polynomial
//! size and its two measured noise constants) and the one formula that turns them into a
//! read's standard deviation in accumulator units; `crate::fhe` fills them from its catalogue
//! (`ParamSetId::read_noise`), and a test there checks that this formula gives the planner's
//! `σ_units` for the same Σw² and space width.

use ndarray::Array2;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;
use serde::{Deserialize, Serialize};

use super::network::SparseQuantNeuralNetwork;
use crate::error::{Error, Result};

/// The read noise of one TFHE parameter set, as noise-aware training injects it.
///
/// A hidden neuron whose integer weights have `Σw²` is read by a bootstrap whose error at its
/// input is Gaussian with variance `noise_base + noise_per_w2 · Σw²` (positions); a `P`-bit
/// space has `N / 2^P` positions per accumulator value, so the read is off by
/// `d = floor(z · σ_units + 1/2)` values (`z` standard normal) with
/// `σ_units = sqrt(noise_base + noise_per_w2 · Σw²) · 2^P / N` ([`sigma_units`](Self::sigma_units)),
/// and the table reads `clamp(acc + d, lo, hi)` over the neuron's proved interval.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReadNoise {
    /// The parameter set's name (for the record).
    pub set: String,
    /// Its polynomial size `N`.
    pub polynomial_size: u64,
    /// Read variance at Σw² = 0 (positions²: keyswitch and modulus switch).
    pub noise_base: f64,
    /// Read variance added per unit of the neuron's integer Σw² (positions²).
    pub noise_per_w2: f64,
    /// The space width `P` the reads assume; `None` (the default): the width the planner takes
    /// for the network as it stands, its widest proved accumulator (outputs included) or
    /// `n_a_bits` if wider, recomputed at every mini-batch.
    #[serde(default)]
    pub space_bits: Option<u32>,
    /// Multiplies the injected noise's standard deviation (1: the predicted noise).
    #[serde(default = "one")]
    pub scale: f64,
}

fn one() -> f64 {
    1.0
}

impl ReadNoise {
    /// The standard deviation of a read, in accumulator units, for a neuron of this `Σw²` in
    /// a `space_bits`-bit space (before [`scale`](Self::scale)).
    pub fn sigma_units(&self, sum_w2: u64, space_bits: u32) -> f64 {
        let std = (self.noise_base + self.noise_per_w2 * sum_w2 as f64).sqrt();
        std * 2f64.powi(crate::cast::exponent(space_bits.min(1023))) / self.polynomial_size as f64
    }

    /// Checks the numbers: `N` a power of two, non-negative finite variances, a positive
    /// finite scale and, when given, a space width of 1 to 62 bits.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(Error::param("read_noise", m));
        if !self.polynomial_size.is_power_of_two() {
            return bad(format!(
                "polynomial size {} is not a power of two; take the numbers from a parameter set \
                 (sqnn::fhe::ParamSetId::read_noise)",
                self.polynomial_size
            ));
        }
        let ok = |v: f64| v.is_finite() && v >= 0.0;
        if !(ok(self.noise_base) && ok(self.noise_per_w2)) {
            return bad(format!(
                "variances {} and {} must be finite and non-negative",
                self.noise_base, self.noise_per_w2
            ));
        }
        if !(self.scale.is_finite() && self.scale > 0.0) {
            return Err(Error::param(
                "noise_scale",
                format!(
                    "the read noise's scale is {}; use a positive factor (1 injects the \
                     predicted noise)",
                    self.scale
                ),
            ));
        }
        if let Some(p) = self.space_bits {
            if !(1..=62).contains(&p) {
                return bad(format!("space width {p} must be 1 to 62 bits"));
            }
        }
        Ok(())
    }
}

/// What one training forward pass needs to inject the noise into hidden layer `l`: per neuron,
/// its proved accumulator interval and its read's `σ_units` (scaled).
pub(super) struct NoisePlan {
    /// `layers[l][r] = (lo, hi, sigma_units)` for every hidden layer.
    pub(super) layers: Vec<Vec<(i64, i64, f64)>>,
}

/// The seeded source of noise-aware training's draws.
pub(super) struct Injector<'a> {
    pub(super) noise: &'a ReadNoise,
    pub(super) rng: &'a mut ChaCha8Rng,
}

/// `ceil(log2(hi - lo + 1))`, 0 for a single value (as `crate::ir::Interval::range_bits`).
fn range_bits(lo: i64, hi: i64) -> u32 {
    let n = (i128::from(hi) - i128::from(lo) + 1).max(1).unsigned_abs();
    if n <= 1 {
        0
    } else {
        128 - (n - 1).leading_zeros()
    }
}

impl SparseQuantNeuralNetwork {
    /// The noise plan of the network as it stands: every neuron's proved accumulator interval
    /// (inputs in each layer's integer input range: the features' quantizer for layer 0, the
    /// previous layer's table outputs after; exact for monotone activations), and the σ of
    /// hidden reads. `None` before every layer has an input quantizer.
    pub(super) fn noise_plan(&self, noise: &ReadNoise) -> Option<NoisePlan> {
        let n = self.layers.len();
        let qs: Vec<_> = (0..n)
            .map(|l| self.input_quantizer(l))
            .collect::<Option<_>>()?;
        let act = self.cfg.activation_function;
        let mut inputs: Vec<(i64, i64)> = vec![(qs[0].lo, qs[0].hi); self.cfg.input_dim];
        let mut widest = self.cfg.n_a_bits;
        let mut per_layer: Vec<Vec<(i64, i64, u64)>> = Vec::with_capacity(n);
        for l in 0..n {
            let (w, scales) = self.quantized_weights(l);
            let mut rows = Vec::with_capacity(w.nrows());
            let mut next_inputs = Vec::with_capacity(w.nrows());
            for (r, row) in w.rows().into_iter().enumerate() {
                let (mut lo, mut hi, mut w2) = (0i64, 0i64, 0u64);
                for (&wj, &(a, b)) in row.iter().zip(&inputs) {
                    if wj == 0 {
                        continue;
                    }
                    let (x, y) = (wj * a, wj * b);
                    lo += x.min(y);
                    hi += x.max(y);
                    w2 += wj.unsigned_abs() * wj.unsigned_abs();
                }
                widest = widest.max(range_bits(lo, hi));
                rows.push((lo, hi, w2));
                if l + 1 < n {
                    let layer = &self.layers[l];
                    let f = |acc: i64| {
                        let z = acc as f64 * scales[r] * qs[l].scale + layer.b[r];
                        qs[l + 1].quantize(act.apply(z))
                    };
                    let (a, b) = (f(lo), f(hi));
                    next_inputs.push((a.min(b), a.max(b)));
                }
            }
            per_layer.push(rows);
            inputs = next_inputs;
        }
        let space_bits = noise.space_bits.unwrap_or(widest);
        let layers = per_layer
            .into_iter()
            .take(n.saturating_sub(1))
            .map(|rows| {
                rows.into_iter()
                    .map(|(lo, hi, w2)| (lo, hi, noise.scale * noise.sigma_units(w2, space_bits)))
                    .collect()
            })
            .collect();
        Some(NoisePlan { layers })
    }
}

/// Moves every accumulator of hidden layer pre-activations `z` (`batch x out`) by a seeded
/// read offset: `acc = round((z - b) / (s_r · s_x))` becomes `clamp(acc + d, lo, hi)`, and `z`
/// moves by the difference times the scale. `row_scale[r] = s_r · s_x`.
pub(super) fn inject(
    z: &mut Array2<f64>,
    bias: &[f64],
    row_scale: &[f64],
    rows: &[(i64, i64, f64)],
    rng: &mut ChaCha8Rng,
) {
    for mut sample in z.rows_mut() {
        for (r, v) in sample.iter_mut().enumerate() {
            let (lo, hi, sigma) = rows[r];
            if sigma <= 0.0 || row_scale[r] <= 0.0 {
                continue;
            }
            let e: f64 = rng.sample(StandardNormal);
            let d = (e * sigma + 0.5).floor();
            let acc = ((*v - bias[r]) / row_scale[r]).round();
            let moved = (acc + d).clamp(lo as f64, hi as f64);
            *v += (moved - acc) * row_scale[r];
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn noise() -> ReadNoise {
        ReadNoise {
            set: "test".into(),
            polynomial_size: 2048,
            noise_base: 24.0,
            noise_per_w2: 0.021,
            space_bits: None,
            scale: 1.0,
        }
    }

    #[test]
    fn sigma_units_follows_the_space_width() {
        let n = noise();
        // sqrt(24 + 0.021 * 100) = 5.109, 4 positions per value at 9 bits.
        assert!((n.sigma_units(100, 9) - 26.1f64.sqrt() / 4.0).abs() < 1e-12);
        assert!((n.sigma_units(100, 10) - 2.0 * n.sigma_units(100, 9)).abs() < 1e-12);
        n.validate().unwrap();
        for bad in [
            ReadNoise {
                polynomial_size: 1000,
                ..noise()
            },
            ReadNoise {
                noise_base: -1.0,
                ..noise()
            },
            ReadNoise {
                scale: 0.0,
                ..noise()
            },
            ReadNoise {
                space_bits: Some(0),
                ..noise()
            },
        ] {
            assert!(bad.validate().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn injection_moves_whole_units_within_the_interval() {
        use rand::SeedableRng;
        let mut z = Array2::from_elem((200, 2), 0.0);
        // Accumulator 3 at scale 0.5 and bias 1: z = 2.5; the second neuron is exact.
        z.column_mut(0).fill(2.5);
        z.column_mut(1).fill(1.0);
        let rows = [(0, 5, 2.0), (-4, 4, 0.0)];
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        inject(&mut z, &[1.0, 1.0], &[0.5, 0.5], &rows, &mut rng);
        let accs: Vec<f64> = z.column(0).iter().map(|v| (v - 1.0) / 0.5).collect();
        assert!(accs
            .iter()
            .all(|a| a.fract() == 0.0 && (0.0..=5.0).contains(a)));
        assert!(accs.iter().any(|&a| a != 3.0) && accs.contains(&0.0) && accs.contains(&5.0));
        assert!(z.column(1).iter().all(|&v| v == 1.0));
        let mut again = Array2::from_elem((200, 2), 0.0);
        again.column_mut(0).fill(2.5);
        again.column_mut(1).fill(1.0);
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        inject(&mut again, &[1.0, 1.0], &[0.5, 0.5], &rows, &mut rng);
        assert_eq!(z, again);
    }
}
