//! `tfhe`'s public noise formulas (`tfhe::core_crypto::commons::noise_formulas`, 1.8.2),
//! ported without the `tfhe` dependency: the variance a keyswitch, a modulus switch and a
//! classic bootstrap add, on the unit torus (ciphertext modulus `q = 2^64`), for TUniform
//! encryption noise. A test (`tests/tfhe`) checks this port against `tfhe`'s own functions.
//!
//! Terms (`V(b)` the variance of TUniform noise of bound `2^b` on the unit torus,
//! `(2^(2b+1) + 1) / 6 / q²`, plus `tfhe`'s floor `2^4.44 / q²`; `B` a decomposition base,
//! `ℓ` its levels):
//! * keyswitch from dimension `n_in` to `n_out`: `ℓ·n_in·V(b_out)·(B²/12 + 1/6)` (the key's
//!   noise, times the digits) `+ n_in·(1/(48 q²) + 1/(24 B^(2ℓ)))` (the decomposition's
//!   rounding error, uniform in `±B^-ℓ / 2` times a binary key bit);
//! * modulus switch of an `n`-dimensional ciphertext to `2N`: each mask element is rounded to
//!   a multiple of `1/2N`, an error uniform in `±1/(4N)` (variance `1/(12 (2N)²)`) times a
//!   binary key bit (mean ½): `n·(1/(24 (2N)²) + …)` for plain rounding; `tfhe`'s centred-mean
//!   switch subtracts the mean, leaving `n/(48 (2N)²)`;
//! * classic bootstrap of an `n`-dimensional input into `k`, `N`: `n` external products, each
//!   adding the FFT's error `0.00705·2^(2·11)·B²/q²·ℓ^1.018·k^1.22·N^2.22·(k+1)^1.018` (f64
//!   has 53 of 64 bits), the key's noise `ℓ·N·(k+1)·V(b_glwe)·(B²/12 + 1/6)` and the
//!   decomposition error `(k·N/2 + 1)/(24 B^(2ℓ))`.
//!
//! sqnn's constants are in squared positions of the modulus switch: `a` = (keyswitch +
//! modulus switch)·(2N)², `b` = bootstrap·(2N)².

use super::catalogue::{ModulusSwitch, ParamSet};

/// `log2 q`: the native 64-bit ciphertext modulus.
const LOG2_Q: f64 = 64.0;
/// Mantissa bits of the f64 FFT.
const MANTISSA: f64 = 53.0;

/// Variance of TUniform noise of bound `2^bound_log2` on the unit torus, with `tfhe`'s floor.
fn tuniform_variance(bound_log2: u32) -> f64 {
    let q2 = (2.0 * LOG2_Q).exp2();
    (4.44 - 2.0 * LOG2_Q).exp2() + (f64::from(2 * bound_log2).exp2() + 0.5) / (3.0 * q2)
}

/// `keyswitch_additive_variance_132_bits_security_tuniform`: the variance a keyswitch from
/// `n_in` to `n_out` (whose key encrypts with TUniform bound `2^bound_log2_out`) adds.
pub fn keyswitch_variance(n_in: usize, bound_log2_out: u32, base_log: usize, level: usize) -> f64 {
    let q2 = (2.0 * LOG2_Q).exp2();
    let base = (base_log as f64).exp2();
    let (n_in, level) = (n_in as f64, level as f64);
    level * n_in * tuniform_variance(bound_log2_out) * (base * base / 12.0 + 1.0 / 6.0)
        + n_in * (1.0 / (48.0 * q2) + base.powf(-2.0 * level) / 24.0)
}

/// The modulus switch of an `n`-dimensional ciphertext to `2N` (`modulus_switch_additive_variance`
/// or, centred, `centered_binary_shifted_modulus_switch_additive_variance`).
pub fn modulus_switch_variance(n: usize, polynomial_size: usize, switch: ModulusSwitch) -> f64 {
    let q2 = (2.0 * LOG2_Q).exp2();
    let m2 = (2.0 * polynomial_size as f64).powi(2);
    let n = n as f64;
    match switch {
        ModulusSwitch::Centered => n * (1.0 / (24.0 * q2) + 1.0 / (48.0 * m2)),
        ModulusSwitch::Rounded => {
            n * (1.0 / (48.0 * q2) + 1.0 / (24.0 * m2)) - 1.0 / (12.0 * q2) + 1.0 / (12.0 * m2)
        }
    }
}

/// `pbs_variance_132_bits_security_tuniform_fft_mul`: a classic bootstrap's output variance
/// (input dimension `n`, output GLWE `k`, `N` with TUniform bound `2^bound_log2_glwe`).
pub fn bootstrap_variance(
    n: usize,
    k: usize,
    polynomial_size: usize,
    bound_log2_glwe: u32,
    base_log: usize,
    level: usize,
) -> f64 {
    let q2 = (2.0 * LOG2_Q).exp2();
    let base = (base_log as f64).exp2();
    let (n, k, big_n, level) = (n as f64, k as f64, polynomial_size as f64, level as f64);
    let fft = 0.00705
        * (2.0 * (LOG2_Q - MANTISSA).max(0.0) + 2.0 * base.log2() - 2.0 * LOG2_Q).exp2()
        * level.powf(1.01827)
        * k.powf(1.22003)
        * big_n.powf(2.22003)
        * (k + 1.0).powf(1.01827);
    let key = level
        * big_n
        * tuniform_variance(bound_log2_glwe)
        * (base * base / 12.0 + 1.0 / 6.0)
        * (k + 1.0);
    let decomposition = -1.0 / (24.0 * q2)
        + 0.5 * k * big_n * (1.0 / (48.0 * q2) + base.powf(-2.0 * level) / 24.0)
        + base.powf(-2.0 * level) / 24.0;
    n * (fft + key + decomposition)
}

impl ParamSet {
    /// The noise constants `(a, b)` of `tfhe`'s formulas for this set, in squared positions of
    /// the modulus switch to `2N`: `a` = keyswitch (from `k·N` to `n`) + modulus switch, `b` =
    /// a bootstrap's output. `None` for multi-bit bootstraps (not modelled here).
    pub fn formula_noise(&self) -> Option<(f64, f64)> {
        if self.grouping_factor != 1 {
            return None;
        }
        let d = &self.decomposition;
        let big = self.glwe_dimension * self.polynomial_size;
        let units = (2.0 * self.polynomial_size as f64).powi(2);
        let ks = keyswitch_variance(big, self.lwe_noise_bound_log2, d.ks_base_log, d.ks_level);
        let ms = modulus_switch_variance(
            self.lwe_dimension,
            self.polynomial_size,
            self.modulus_switch,
        );
        let pbs = bootstrap_variance(
            self.lwe_dimension,
            self.glwe_dimension,
            self.polynomial_size,
            self.glwe_noise_bound_log2,
            d.pbs_base_log,
            d.pbs_level,
        );
        Some(((ks + ms) * units, pbs * units))
    }
}
