//! Decomposition variants: a shipped `tfhe` 128-bit set with another bootstrap or keyswitch
//! decomposition (base log and level), and the measurement that must validate its noise
//! formula before the planner may pick it.
//!
//! # Why a variant has the shipped set's security
//! The security of a keyswitch-then-bootstrap parameter set is that of the LWE and GLWE
//! problems its keys and ciphertexts are instances of: it is fixed by the LWE dimension `n`,
//! the GLWE dimension `k` and polynomial size `N` (through `k·N`), the ciphertext modulus
//! (2^64), the secret-key distribution (uniform binary) and the encryption noise distributions
//! (TUniform with the set's bounds). `tfhe` checks its sets with the lattice estimator against
//! exactly these. The decomposition parameters only say how a key encrypts the *digits* of the
//! key it switches or bootstraps from: more levels of a smaller base make more (and less noisy)
//! digits, so less noise growth at more cost; every ciphertext of the key is still an LWE/GLWE
//! sample of the same dimension, modulus, key and noise. A variant keeps every
//! security-defining field of its base and changes only these four numbers; the key files
//! store the full parameters and loading refuses any set whose security-defining fields are
//! not those of a shipped set (`crate::tfhe`).
//!
//! # Validation
//! A variant's noise comes from `tfhe`'s public formulas ([`ParamSet::formula_noise`]). Its
//! measured noise (`src/fhe/measured.json`, from the calibration with the secret key) must
//! agree: both constants within [`VARIANCE_TOLERANCE`] of the formula, and both error
//! distributions Gaussian in shape (excess kurtosis within [`KURTOSIS_SIGMAS`] standard errors
//! of 0; a uniform error would have -1.2). The catalogue uses the larger of formula and
//! measurement, and lets the planner pick a variant only if it passed.

use serde::Serialize;

use super::catalogue::{ParamSet, ParamSetId};
use super::measured::Measured;

/// A set's bootstrap and keyswitch decomposition: base `2^base_log`, `level` digits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Decomposition {
    /// Levels of the bootstrapping key's gadget decomposition.
    pub pbs_level: usize,
    /// log2 of its base.
    pub pbs_base_log: usize,
    /// Levels of the keyswitching key's decomposition.
    pub ks_level: usize,
    /// log2 of its base.
    pub ks_base_log: usize,
}

impl Decomposition {
    /// What differs from `base`, e.g. `PBS level 1 → 2, base 2^23 → 2^15`.
    pub fn changes_from(&self, base: &Decomposition) -> String {
        let mut parts = Vec::new();
        if (self.pbs_level, self.pbs_base_log) != (base.pbs_level, base.pbs_base_log) {
            parts.push(format!(
                "bootstrap level {} → {}, base 2^{} → 2^{}",
                base.pbs_level, self.pbs_level, base.pbs_base_log, self.pbs_base_log
            ));
        }
        if (self.ks_level, self.ks_base_log) != (base.ks_level, base.ks_base_log) {
            parts.push(format!(
                "keyswitch level {} → {}, base 2^{} → 2^{}",
                base.ks_level, self.ks_level, base.ks_base_log, self.ks_base_log
            ));
        }
        parts.join("; ")
    }
}

/// One decomposition variant of the catalogue.
pub(super) struct VariantDef {
    pub(super) id: ParamSetId,
    /// The shipped set it derives from.
    pub(super) base: ParamSetId,
    pub(super) decomposition: Decomposition,
    /// The 2-norm the base set is designed for (its `max_noise_level`), for the variant's
    /// designed failure probability with the set's own encoding.
    pub(super) design_norm: u32,
}

/// The grid: the 4-bit set with a two-level bootstrap (base 2^15: the base that minimizes the
/// formula's output noise at two levels) and its shipped or a three-level keyswitch, and the
/// 2-bit set with the same two-level bootstrap. One bootstrap level cannot be made quiet
/// enough for exact rounding (the FFT term grows as base² · N^2.2), three levels cost more than
/// two for noise far below what any read needs.
pub(super) const VARIANTS: [VariantDef; 3] = [
    VariantDef {
        id: ParamSetId::ClassicMsg2Carry2Pbs2B15,
        base: ParamSetId::ClassicMsg2Carry2,
        decomposition: Decomposition {
            pbs_level: 2,
            pbs_base_log: 15,
            ks_level: 4,
            ks_base_log: 4,
        },
        design_norm: 5,
    },
    VariantDef {
        id: ParamSetId::ClassicMsg2Carry2Pbs2B15Ks3B5,
        base: ParamSetId::ClassicMsg2Carry2,
        decomposition: Decomposition {
            pbs_level: 2,
            pbs_base_log: 15,
            ks_level: 3,
            ks_base_log: 5,
        },
        design_norm: 5,
    },
    VariantDef {
        id: ParamSetId::ClassicMsg1Carry1Pbs2B15,
        base: ParamSetId::ClassicMsg1Carry1,
        decomposition: Decomposition {
            pbs_level: 2,
            pbs_base_log: 15,
            ks_level: 3,
            ks_base_log: 5,
        },
        design_norm: 3,
    },
];

/// The variant definition of `id` (`None` for a shipped set).
pub(super) fn variant(id: ParamSetId) -> Option<&'static VariantDef> {
    VARIANTS.iter().find(|v| v.id == id)
}

/// Largest relative difference between a measured noise constant and the formula's:
/// `|measured / formula - 1| <= 0.25`. The sample variances of the calibration (3000 and 1000
/// samples) have relative standard errors of about 2.6 % and 4.5 %; the shipped sets measured
/// 4 to 9 % above the formula.
pub const VARIANCE_TOLERANCE: f64 = 0.25;

/// A Gaussian's sample excess kurtosis has standard error `sqrt(24 / n)`; the shape passes
/// within this many of them of 0.
pub const KURTOSIS_SIGMAS: f64 = 5.0;

/// A variant's measured noise against `tfhe`'s formula.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct NoiseValidation {
    /// Measured / formula for `a` (keyswitch and modulus switch).
    pub a_ratio: f64,
    /// Measured / formula for `b` (a bootstrap output's variance).
    pub b_ratio: f64,
    /// Samples of the `a` measurement.
    pub a_samples: u64,
    /// Their excess kurtosis (0 for a Gaussian).
    pub a_excess_kurtosis: f64,
    /// Samples of the `b` measurement.
    pub b_samples: u64,
    /// Their excess kurtosis.
    pub b_excess_kurtosis: f64,
    /// Both ratios within [`VARIANCE_TOLERANCE`] and both shapes Gaussian within
    /// [`KURTOSIS_SIGMAS`].
    pub passed: bool,
}

impl NoiseValidation {
    /// The verdict on `measured` (whose `validation` holds the shape statistics; none: failed)
    /// against the formula's `(a, b)`.
    pub(super) fn new(formula: (f64, f64), measured: &Measured) -> NoiseValidation {
        let shape = measured.validation.unwrap_or_default();
        let a_ratio = measured.noise_base / formula.0;
        let b_ratio = measured.noise_per_w2 / formula.1;
        let gaussian =
            |k: f64, n: u64| n >= 100 && k.abs() <= KURTOSIS_SIGMAS * (24.0 / n as f64).sqrt();
        let close = |r: f64| (r - 1.0).abs() <= VARIANCE_TOLERANCE;
        NoiseValidation {
            a_ratio,
            b_ratio,
            a_samples: shape.a_samples,
            a_excess_kurtosis: shape.a_excess_kurtosis,
            b_samples: shape.b_samples,
            b_excess_kurtosis: shape.b_excess_kurtosis,
            passed: close(a_ratio)
                && close(b_ratio)
                && gaussian(shape.a_excess_kurtosis, shape.a_samples)
                && gaussian(shape.b_excess_kurtosis, shape.b_samples),
        }
    }
}

impl ParamSet {
    /// For a decomposition variant, what it changes from the shipped set it derives from, e.g.
    /// `bootstrap level 1 → 2, base 2^23 → 2^15` (`None` for a shipped set).
    pub fn variant_changes(&self) -> Option<String> {
        let base = self.derives_from?.set();
        Some(self.decomposition.changes_from(&base.decomposition))
    }
}
