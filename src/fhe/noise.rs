//! The noise model: a Gaussian error at each read, its standard deviation from Σw² and the
//! set's measured constants, and the log2 probabilities of misreads (see `docs/fhe-noise.md`).

use super::catalogue::ParamSet;
use crate::train::ReadNoise;

/// Failure probabilities are floored here (log2), far below anything meaningful.
pub const LOG2_P_FLOOR: f64 = -1000.0;

impl ParamSet {
    /// Standard deviation of the error at the input of the bootstrap that follows a dot
    /// product of this Σw² (positions).
    pub fn bootstrap_std(&self, sum_w2: u64) -> f64 {
        (self.noise_base + self.noise_per_w2 * sum_w2 as f64).sqrt()
    }

    /// This set's read noise as noise-aware training injects it
    /// ([`EstimatorParams::read_noise`](crate::train::EstimatorParams::read_noise)): its
    /// polynomial size and noise constants, the space width left to training (the network's
    /// widest accumulator, as the planner's narrowest space), the predicted level (scale 1).
    /// Its [`sigma_units`](ReadNoise::sigma_units) is [`bootstrap_std`](Self::bootstrap_std)
    /// over [`box_positions`](Self::box_positions).
    pub fn read_noise(&self) -> ReadNoise {
        ReadNoise {
            set: self.id.name().to_string(),
            polynomial_size: u64::try_from(self.polynomial_size).unwrap_or(u64::MAX),
            noise_base: self.noise_base,
            noise_per_w2: self.noise_per_w2,
            space_bits: None,
            scale: 1.0,
        }
    }

    /// Standard deviation of an output accumulator's error when the client decrypts it (its
    /// terms read tables: bootstrap outputs).
    pub fn decrypt_std(&self, sum_w2: u64) -> f64 {
        (self.noise_per_w2 * sum_w2 as f64).sqrt()
    }

    /// Variance of a fresh encryption under the large (GLWE) key, as the client encrypts inputs,
    /// in the same units as [`noise_per_w2`](Self::noise_per_w2): `tfhe`'s TUniform bound `B`
    /// ([`glwe_noise_bound_log2`](Self::glwe_noise_bound_log2)) gives `(2^(2B+1) + 1) / 6` on
    /// the 2^64 torus, and one position is `2^64 / 2N` (about 10^-20 of a bootstrap output's on
    /// the 4-bit set).
    pub fn fresh_variance(&self) -> f64 {
        let b = crate::cast::exponent(self.glwe_noise_bound_log2.min(62));
        let var = (2f64.powi(2 * b + 1) + 1.0) / 6.0;
        let position = 2f64.powi(64) / (2.0 * self.polynomial_size.max(1) as f64);
        var / (position * position)
    }

    /// Standard deviation of an output accumulator's error when the client decrypts it and its
    /// terms read the inputs (fresh encryptions; a linear circuit's outputs).
    pub fn fresh_decrypt_std(&self, sum_w2: u64) -> f64 {
        (self.fresh_variance() * sum_w2 as f64).sqrt()
    }

    /// log2 of the probability that an error of standard deviation `std` leaves the set's own
    /// tolerance: `log2 erfc(t / (std·√2))`, floored at [`LOG2_P_FLOOR`].
    pub fn log2_p_fail_of_std(&self, std: f64) -> f64 {
        log2_erfc_ratio(self.tolerance(), std)
    }

    /// Predicted log2 failure probability of one bootstrap after a dot product of this Σw²,
    /// with the set's own encoding.
    pub fn bootstrap_log2_p_fail(&self, sum_w2: u64) -> f64 {
        self.log2_p_fail_of_std(self.bootstrap_std(sum_w2))
    }

    /// Predicted log2 probability that decrypting an output accumulator of this Σw² is wrong,
    /// with the set's own encoding.
    pub fn decrypt_log2_p_fail(&self, sum_w2: u64) -> f64 {
        self.log2_p_fail_of_std(self.decrypt_std(sum_w2))
    }

    /// The largest Σw² a neuron followed by a bootstrap may have for a failure probability of
    /// at most `2^target_log2` with the set's own encoding (0 when even Σw² = 0 misses it).
    pub fn max_sum_w2(&self, target_log2: f64) -> u64 {
        self.max_sum_w2_where(|w2| self.bootstrap_log2_p_fail(w2) <= target_log2)
    }

    /// The largest Σw² whose bootstrap reads a `space_bits`-bit space exactly with probability
    /// at least `1 - 2^target_log2` (0 when even Σw² = 0 misses it).
    pub fn max_sum_w2_exact(&self, space_bits: u32, target_log2: f64) -> u64 {
        let b = self.box_positions(space_bits);
        self.max_sum_w2_where(|w2| misread_log2(self.bootstrap_std(w2), b) <= target_log2)
    }

    /// The largest Σw² whose bootstrap stays within a margin of `margin` values of a
    /// `space_bits`-bit space with probability at least `1 - 2^target_log2`.
    pub fn max_sum_w2_catastrophic(&self, space_bits: u32, margin: u64, target_log2: f64) -> u64 {
        let b = self.box_positions(space_bits);
        self.max_sum_w2_where(|w2| {
            catastrophic_log2(self.bootstrap_std(w2), b, margin) <= target_log2
        })
    }

    /// Largest Σw² with `ok(Σw²)`, for a predicate that holds up to some Σw² and not beyond
    /// (0 when `ok(0)` fails, `u64::MAX` when it holds at 2^60).
    fn max_sum_w2_where(&self, ok: impl Fn(u64) -> bool) -> u64 {
        if !ok(0) {
            return 0;
        }
        let (mut lo, mut hi) = (0u64, 1u64 << 60);
        if ok(hi) {
            return u64::MAX;
        }
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2;
            if ok(mid) {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        lo
    }
}

/// `log2 erfc(dist / (std·√2))`: the probability that a centred Gaussian error of standard
/// deviation `std` reaches `|e| >= dist`; floored at [`LOG2_P_FLOOR`], 0 (certain) when
/// `dist <= 0`.
pub fn log2_erfc_ratio(dist: f64, std: f64) -> f64 {
    if dist <= 0.0 {
        return 0.0;
    }
    if std <= 0.0 || std.is_nan() {
        return LOG2_P_FLOOR;
    }
    let z = dist / (std * std::f64::consts::SQRT_2);
    (ln_erfc(z) / std::f64::consts::LN_2).clamp(LOG2_P_FLOOR, 0.0)
}

/// log2 probability that a read with error `std` (positions) in boxes of `box_positions` is off
/// by at least one unit: `erfc((box/2) / (std·√2))`.
pub fn misread_log2(std: f64, box_positions: f64) -> f64 {
    log2_erfc_ratio(box_positions / 2.0, std)
}

/// log2 probability that a read is off by at least `k >= 1` units in either direction:
/// `erfc(((k - 1/2)·box) / (std·√2))`.
pub fn offset_at_least_log2(std: f64, box_positions: f64, k: u64) -> f64 {
    log2_erfc_ratio((k as f64 - 0.5) * box_positions, std)
}

/// log2 probability that a read of the value at the edge of a margin of `margin` values goes
/// past it (one side): `½ erfc(((margin + 1/2)·box) / (std·√2))`.
pub fn catastrophic_log2(std: f64, box_positions: f64, margin: u64) -> f64 {
    (log2_erfc_ratio((margin as f64 + 0.5) * box_positions, std) - 1.0).max(LOG2_P_FLOOR)
}

/// The read offset `d = floor(z·σ_units + 1/2)` for a standard normal draw `z`: what a clear
/// simulation adds to a value before clamping it into its interval (`docs/fhe-noise.md`).
pub fn read_offset(sigma_units: f64, z: f64) -> i64 {
    let d = (z * sigma_units + 0.5).floor();
    if d.is_nan() {
        0
    } else {
        crate::cast::round_clamp(d, -(1 << 53), 1 << 53) // d is whole: round is the identity
    }
}

/// Probability that a read with noise `sigma_units` (accumulator units) is off by exactly `k`
/// units: `P(floor(z·σ_units + 1/2) = k)` for a standard normal `z` ([`read_offset`]), i.e.
/// `Φ((k + 1/2)/σ) - Φ((k - 1/2)/σ)`, computed from the tails so that small probabilities keep
/// their precision. `σ_units = 0` gives 1 at `k = 0`, 0 elsewhere.
///
/// ```
/// use sqnn::fhe::read_offset_probability;
/// let total: f64 = (-20..=20).map(|k| read_offset_probability(1.3, k)).sum();
/// assert!((total - 1.0).abs() < 1e-12);
/// assert_eq!(read_offset_probability(1.3, 2), read_offset_probability(1.3, -2));
/// ```
pub fn read_offset_probability(sigma_units: f64, k: i64) -> f64 {
    if sigma_units.is_nan() || sigma_units <= 0.0 {
        return if k == 0 { 1.0 } else { 0.0 };
    }
    let s = sigma_units * std::f64::consts::SQRT_2;
    // The upper tail P(z·σ >= t).
    let tail = |t: f64| 0.5 * ln_erfc(t / s).exp();
    let k = k.unsigned_abs() as f64;
    if k == 0.0 {
        1.0 - 2.0 * tail(0.5)
    } else {
        (tail(k - 0.5) - tail(k + 0.5)).max(0.0)
    }
}

/// `ln(erfc(x))` for `x >= 0`, accurate to about 1e-12 relative, without underflow for any `x`.
pub fn ln_erfc(x: f64) -> f64 {
    if x.is_nan() {
        return f64::NAN;
    }
    if x < 0.0 {
        return (2.0 - ln_erfc(-x).exp()).ln();
    }
    let ln_sqrt_pi = 0.5 * std::f64::consts::PI.ln();
    if x < 2.5 {
        // erf(x) = 2/√π · e^{-x²} · Σ 2^n x^{2n+1} / (1·3·…·(2n+1)): positive terms only.
        let mut term = x;
        let mut sum = x;
        let x2 = x * x;
        let mut n = 0.0;
        while term > sum * 1e-17 {
            n += 1.0;
            term *= 2.0 * x2 / (2.0 * n + 1.0);
            sum += term;
        }
        let erf = (2.0 / std::f64::consts::PI.sqrt()) * (-x2).exp() * sum;
        (1.0 - erf).ln()
    } else {
        // Continued fraction: erfc(x) = e^{-x²}/√π · 1/(x + (1/2)/(x + 1/(x + (3/2)/(x + …)))).
        let mut k = x;
        for n in (1..=80).rev() {
            k = x + (f64::from(n) / 2.0) / k;
        }
        -x * x - ln_sqrt_pi - k.ln()
    }
}

/// `log2(2^a + 2^b)` without overflow or underflow.
pub fn log2_add(a: f64, b: f64) -> f64 {
    let (hi, lo) = if a >= b { (a, b) } else { (b, a) };
    if lo == f64::NEG_INFINITY {
        return hi;
    }
    hi + (1.0 + (lo - hi).exp2()).log2()
}
