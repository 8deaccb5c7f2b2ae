//! The training module's configuration: [`ModuleConfig`] (Concrete ML's
//! `SparseQuantNeuralNetwork` constructor), the pruning modes and activation-range measures,
//! Ω = [`max_active_neurons`], and the validation shared with the estimator's parameters.

use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::EstimatorParams;
use crate::error::{Error, Result};
use crate::train::quantize::Activation;

/// The widest accumulator sqnn accepts (see [`ModuleConfig::validate`] for why).
pub const MAX_ACCUM_BITS: u32 = 24;

/// The widest weight or activation bit width accepted.
pub const MAX_BITS: u32 = 8;

/// How unstructured pruning chooses which weights to keep.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PruningMode {
    /// Every output neuron keeps at most Ω = `max_active_neurons` non-zero weights (largest
    /// `|w|`): each neuron's accumulator provably fits `n_accum_bits`.
    #[default]
    PerNeuron,
    /// Concrete ML's pruning: `l1_unstructured(amount = (fan_in - Ω) * fan_out)` over the whole
    /// weight matrix, once, on the initial weights. Only the *average* row keeps Ω weights; single
    /// neurons can exceed the accumulator budget.
    LayerGlobal,
    /// Accumulator-aware pruning (in the spirit of Brevitas' A2Q): a neuron reading inputs
    /// whose integer range spans `s` (`2^n_a_bits - 1` values apart, the layer's input
    /// quantizer) has an accumulator interval of width `s * sum |w|` over its integer weights,
    /// so every row keeps its largest `|w|` while `s * sum |w| <= 2^n_accum_bits - 1`. Weights
    /// of a row are rarely all at the largest magnitude, so this keeps more than Ω weights
    /// with the same proved width. The budget is enforced on the initial weights and again
    /// after every epoch on the integer weights as they stand (masks only shrink), so the
    /// kept epoch and the exported model satisfy it.
    AccumulatorAware,
}

impl PruningMode {
    /// Every mode, in declaration order.
    pub const ALL: [PruningMode; 3] = [
        PruningMode::PerNeuron,
        PruningMode::LayerGlobal,
        PruningMode::AccumulatorAware,
    ];

    /// The mode's name in model files, circuits and reports: its serde name (`per_neuron`,
    /// `layer_global`, `accumulator_aware`).
    pub fn name(self) -> &'static str {
        match self {
            PruningMode::PerNeuron => "per_neuron",
            PruningMode::LayerGlobal => "layer_global",
            PruningMode::AccumulatorAware => "accumulator_aware",
        }
    }
}

impl std::fmt::Display for PruningMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for PruningMode {
    type Err = Error;

    /// Parses a [`name`](PruningMode::name) (`-` may stand for `_`).
    ///
    /// ```
    /// use sqnn::train::PruningMode;
    /// assert_eq!("accumulator_aware".parse::<PruningMode>().unwrap(), PruningMode::AccumulatorAware);
    /// assert_eq!("per-neuron".parse::<PruningMode>().unwrap(), PruningMode::PerNeuron);
    /// ```
    fn from_str(s: &str) -> Result<PruningMode> {
        let snake = s.replace('-', "_");
        PruningMode::ALL
            .into_iter()
            .find(|m| m.name() == snake)
            .ok_or_else(|| {
                Error::param(
                    "pruning",
                    format!("{s:?} is not a pruning mode: use per_neuron, layer_global or accumulator_aware"),
                )
            })
    }
}

/// Concrete ML's `max_active_neurons`: the number of non-zero weights a neuron may keep so that
/// its accumulator fits `n_accum_bits`,
/// `floor((2^n_accum_bits - 1) / (2^n_w_bits - 1) / (2^n_a_bits - 1))`.
///
/// Returns `u64::MAX` when a bit width is 0 (no product can then be non-zero) and saturates at
/// `u64::MAX` for huge accumulators; such widths are rejected by [`ModuleConfig::validate`].
///
/// ```
/// use sqnn::train::max_active_neurons;
/// assert_eq!(max_active_neurons(8, 3, 3), 5);
/// assert_eq!(max_active_neurons(7, 2, 2), 14);
/// assert_eq!(max_active_neurons(16, 4, 4), 291);
/// assert_eq!(max_active_neurons(6, 2, 2), 7);
/// ```
pub fn max_active_neurons(n_accum_bits: u32, n_w_bits: u32, n_a_bits: u32) -> u64 {
    if n_w_bits == 0 || n_a_bits == 0 {
        return u64::MAX;
    }
    let pow = |b: u32| -> u128 {
        if b >= 127 {
            u128::MAX
        } else {
            (1u128 << b) - 1
        }
    };
    let omega = pow(n_accum_bits) / pow(n_w_bits) / pow(n_a_bits);
    u64::try_from(omega).unwrap_or(u64::MAX)
}

/// The smallest `n_accum_bits` for which [`max_active_neurons`] is at least 1.
fn smallest_accum_bits(n_w_bits: u32, n_a_bits: u32) -> u32 {
    (1..=127)
        .find(|&b| max_active_neurons(b, n_w_bits, n_a_bits) >= 1)
        .unwrap_or(127)
}

/// The constructor of [`SparseQuantNeuralNetwork`](super::SparseQuantNeuralNetwork): Concrete ML's
/// `SparseQuantNeuralNetwork(input_dim, n_layers, n_outputs, n_hidden_neurons_multiplier,
/// n_w_bits, n_a_bits, n_accum_bits, n_prune_neurons_percentage, activation_function,
/// quant_narrow, quant_signed, power_of_two_scaling)`, plus the pruning mode and the weight
/// scale granularity.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModuleConfig {
    /// Number of input features.
    pub input_dim: usize,
    /// Number of linear layers (1 = a quantized linear model).
    pub n_layers: usize,
    /// Number of outputs (classes, or 1 for regression).
    pub n_outputs: usize,
    /// Hidden width = `floor(input_dim * n_hidden_neurons_multiplier)`; fractional values are
    /// allowed (Concrete ML's MNIST example passes 0.5), the width must come out >= 1.
    pub n_hidden_neurons_multiplier: f64,
    /// Weight bit width (2..=8); weights are symmetric integers in `[-2^(w-1), 2^(w-1) - 1]`.
    pub n_w_bits: u32,
    /// Activation (and input) bit width (1..=8 unsigned, 2..=8 signed).
    pub n_a_bits: u32,
    /// Bit width of the first layer's input quantizer (the features the client encrypts), if
    /// narrower than `n_a_bits`; `None`: `n_a_bits`. At most `n_a_bits`, so every bound
    /// computed from `n_a_bits` (Ω) still holds. A narrower input span lets an
    /// accumulator-aware first layer keep more weights in the same `n_accum_bits`
    /// (`span * sum |w|` must fit): 2-bit pixels span 3 instead of 7.
    #[serde(default)]
    pub n_input_bits: Option<u32>,
    /// Accumulator budget every neuron must fit (<= 24).
    pub n_accum_bits: u32,
    /// Fraction of hidden neurons removed by structured pruning, in `[0, 1)`.
    pub n_prune_neurons_percentage: f64,
    /// Activation after every hidden layer.
    pub activation_function: Activation,
    /// Narrow integer ranges: weights (and signed activations) in `[-(2^(b-1) - 1), 2^(b-1) - 1]`
    /// with scale `max / (2^(b-1) - 1)`; otherwise `[-2^(b-1), 2^(b-1) - 1]` with scale
    /// `max / 2^(b-1)` (Brevitas' convention, which Concrete ML uses).
    pub quant_narrow: bool,
    /// Signed activation quantizers (symmetric, zero point 0); unsigned ones are affine over
    /// `[0, 2^a - 1]` with an integer zero point (0 after ReLU).
    pub quant_signed: bool,
    /// Round every scale (weights and activations) up to a power of two.
    pub power_of_two_scaling: bool,
    /// How unstructured pruning picks the kept weights.
    pub pruning: PruningMode,
    /// One weight scale per output neuron (`true`) or one per layer (`false`, Concrete ML's).
    pub per_channel: bool,
    /// How each batch's activation range is measured before the running average.
    pub act_range: ActRange,
}

/// How an activation quantizer's range is taken from a batch; the quantizer uses the
/// exponential moving average (momentum 0.1) of these batch ranges.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActRange {
    /// The batch's min and max (PyTorch's `MovingAverageMinMaxObserver`).
    MinMax,
    /// The `(100 - p)`-th and `p`-th percentiles, `p` in `(50, 100]`; values outside are
    /// clipped.
    Percentile(f64),
    /// The range `[r_lo min, r_hi max]`, ratios searched on a grid from 1 to 0.2, whose
    /// quantizer has the smallest mean squared error on the batch: clips outliers where that
    /// pays, keeps the full range where it does not.
    Mse,
    /// Learned step size (LSQ, Esser et al. 2020, as Brevitas' "parameter from statistics"
    /// scaling that Concrete ML uses): min / max running statistics during the first epoch
    /// fix the integer range and the initial scale, then the scale is trained by gradient
    /// descent on the task loss.
    Learned,
}

impl ModuleConfig {
    /// A configuration with sqnn's default hyper-parameters (those of
    /// [`EstimatorParams::default`]) for the given shape.
    pub fn new(input_dim: usize, n_layers: usize, n_outputs: usize) -> ModuleConfig {
        let mut c = EstimatorParams::default().module_config(input_dim, n_outputs);
        c.n_layers = n_layers;
        c
    }

    /// The hidden width, `floor(input_dim * n_hidden_neurons_multiplier)` (0 if that is not a
    /// finite non-negative number).
    pub fn hidden_width(&self) -> usize {
        let w = (self.input_dim as f64 * self.n_hidden_neurons_multiplier).floor();
        if w.is_finite() {
            crate::cast::clamp_count(w, usize::MAX)
        } else {
            0
        }
    }

    /// `(in, out)` of every linear layer, input to output (before structured pruning).
    pub fn layer_dims(&self) -> Vec<(usize, usize)> {
        let h = self.hidden_width();
        (0..self.n_layers)
            .map(|l| {
                let i = if l == 0 { self.input_dim } else { h };
                let o = if l + 1 == self.n_layers {
                    self.n_outputs
                } else {
                    h
                };
                (i, o)
            })
            .collect()
    }

    /// Ω for this configuration; see [`max_active_neurons`].
    pub fn max_active_neurons(&self) -> u64 {
        max_active_neurons(self.n_accum_bits, self.n_w_bits, self.n_a_bits)
    }

    /// The bit width of layer `layer`'s input quantizer: [`n_input_bits`](Self::n_input_bits)
    /// (or `n_a_bits`) for the first layer, `n_a_bits` for the others.
    pub fn input_bits(&self, layer: usize) -> u32 {
        match self.n_input_bits {
            Some(b) if layer == 0 => b,
            _ => self.n_a_bits,
        }
    }

    /// Checks every parameter; each error is an [`Error::InvalidParameter`] naming the parameter
    /// and the fix.
    ///
    /// `n_accum_bits` is limited to [`MAX_ACCUM_BITS`] = 24: each hidden neuron becomes one table
    /// indexed by its accumulator, so a table has up to `2^n_accum_bits` entries (16.7 million
    /// at 24, already 128 MiB of `i64` for one neuron in the clear backend), and a TFHE
    /// bootstrap reads at most 8 bits of message and carry; wider accumulators could be neither
    /// tabulated nor bootstrapped exactly.
    pub fn validate(&self) -> Result<()> {
        if self.input_dim == 0 {
            return Err(Error::param(
                "input_dim",
                "is 0; the network needs at least one input feature (pass data with columns)",
            ));
        }
        if self.n_outputs == 0 {
            return Err(Error::param(
                "n_outputs",
                "is 0; use the number of classes (>= 2) for classification or 1 for regression",
            ));
        }
        validate_shared(
            self.n_layers,
            self.n_hidden_neurons_multiplier,
            self.n_w_bits,
            self.n_a_bits,
            self.n_accum_bits,
            self.n_prune_neurons_percentage,
            self.quant_signed,
            self.quant_narrow,
        )?;
        validate_act_range(self.act_range)?;
        validate_input_bits(
            self.n_input_bits,
            self.n_a_bits,
            self.quant_signed,
            self.quant_narrow,
        )?;
        if self.n_layers >= 2 {
            let width = self.hidden_width();
            if width == 0 {
                return Err(Error::param(
                    "n_hidden_neurons_multiplier",
                    format!(
                        "hidden width floor(input_dim * multiplier) = floor({} * {}) = 0; use \
                         n_hidden_neurons_multiplier >= 1/input_dim = {} (or n_layers = 1)",
                        self.input_dim,
                        self.n_hidden_neurons_multiplier,
                        1.0 / self.input_dim as f64
                    ),
                ));
            }
            const MAX_WEIGHTS: usize = 1 << 27;
            let weights = self.layer_dims().iter().fold(0usize, |acc, &(i, o)| {
                acc.saturating_add(i.saturating_mul(o))
            });
            if width > (1 << 20) || weights > MAX_WEIGHTS {
                return Err(Error::param(
                    "n_hidden_neurons_multiplier",
                    format!(
                        "hidden width {width} gives {weights} weights, more than the {MAX_WEIGHTS} \
                         sqnn trains in memory; use a smaller multiplier"
                    ),
                ));
            }
        }
        Ok(())
    }
}

/// `n_input_bits`, if given, in `1..=n_a_bits` (2 or more for signed or narrow quantizers).
pub(super) fn validate_input_bits(
    n_input_bits: Option<u32>,
    n_a_bits: u32,
    quant_signed: bool,
    quant_narrow: bool,
) -> Result<()> {
    let Some(b) = n_input_bits else {
        return Ok(());
    };
    let least = if quant_signed || quant_narrow { 2 } else { 1 };
    if b < least || b > n_a_bits {
        return Err(Error::param(
            "n_input_bits",
            format!(
                "is {b}; use an input bit width from {least} to n_a_bits = {n_a_bits} (fewer \
                 bits for the features than for the activations, e.g. 2 for images), or leave \
                 it unset"
            ),
        ));
    }
    Ok(())
}

/// `ActRange::Percentile(p)` needs `p` in `(50, 100]`.
pub(super) fn validate_act_range(r: ActRange) -> Result<()> {
    match r {
        ActRange::Percentile(p) if !(p > 50.0 && p <= 100.0) => Err(Error::param(
            "act_range",
            format!("percentile {p} is outside (50, 100]; use e.g. 99 (100 = min / max)"),
        )),
        _ => Ok(()),
    }
}

/// The checks that do not need the data's shape (shared by [`ModuleConfig::validate`] and
/// [`EstimatorParams::validate`]).
#[allow(clippy::too_many_arguments)]
pub(super) fn validate_shared(
    n_layers: usize,
    multiplier: f64,
    n_w_bits: u32,
    n_a_bits: u32,
    n_accum_bits: u32,
    prune_pct: f64,
    quant_signed: bool,
    quant_narrow: bool,
) -> Result<()> {
    validate_layers(n_layers)?;
    validate_bits(n_w_bits, n_a_bits, n_accum_bits, quant_signed, quant_narrow)?;
    validate_shape(n_layers, multiplier, prune_pct)
}

/// `n_layers` in `1..=64`.
fn validate_layers(n_layers: usize) -> Result<()> {
    if n_layers == 0 {
        return Err(Error::param(
            "n_layers",
            "is 0; use at least 1 (1 = a quantized linear model, 3 = Concrete ML's usual choice)",
        ));
    }
    if n_layers > 64 {
        return Err(Error::param(
            "n_layers",
            format!("is {n_layers}; use at most 64 layers"),
        ));
    }
    Ok(())
}

/// Weight and activation bit widths, and an accumulator that is executable and keeps Ω >= 1.
fn validate_bits(
    n_w_bits: u32,
    n_a_bits: u32,
    n_accum_bits: u32,
    quant_signed: bool,
    quant_narrow: bool,
) -> Result<()> {
    if n_w_bits == 0 || n_w_bits > MAX_BITS {
        return Err(Error::param(
            "n_w_bits",
            format!(
                "is {n_w_bits}; use a weight bit width from 2 to {MAX_BITS} (2 to 4 is typical)"
            ),
        ));
    }
    if n_w_bits == 1 {
        return Err(Error::param(
            "n_w_bits",
            "is 1, but weights are symmetric with zero point 0 and 1-bit signed integers are \
             only {-1, 0}; use n_w_bits >= 2 (2 bits give ternary weights -1, 0, 1)",
        ));
    }
    if n_a_bits == 0 || n_a_bits > MAX_BITS {
        return Err(Error::param(
            "n_a_bits",
            format!(
                "is {n_a_bits}; use an activation bit width from 1 to {MAX_BITS} (2 to 4 is typical)"
            ),
        ));
    }
    if n_a_bits == 1 && (quant_signed || quant_narrow) {
        return Err(Error::param(
            "n_a_bits",
            "is 1 with signed or narrow activation quantizers, whose 1-bit range has a single \
             useful value; use n_a_bits >= 2, or unsigned, non-narrow quantizers (quant_signed = \
             false, quant_narrow = false) for binary activations",
        ));
    }
    if n_accum_bits > MAX_ACCUM_BITS {
        return Err(Error::param(
            "n_accum_bits",
            format!(
                "is {n_accum_bits}, above the limit of {MAX_ACCUM_BITS}: every hidden neuron becomes \
                 a table indexed by its accumulator (2^{n_accum_bits} entries; the clear backend \
                 stores them in memory and a TFHE bootstrap reads at most 8 bits of message space), \
                 so such a network could not be executed. To turn pruning off as Concrete ML's \
                 default n_accum_bits = 32 does, use 24 (Ω = {} for {n_w_bits}/{n_a_bits} bits, more \
                 than any layer's fan-in); for fast FHE use 6 to 8",
                max_active_neurons(MAX_ACCUM_BITS, n_w_bits, n_a_bits)
            ),
        ));
    }
    if max_active_neurons(n_accum_bits, n_w_bits, n_a_bits) == 0 {
        return Err(Error::param(
            "n_accum_bits",
            format!(
                "is {n_accum_bits}, so max_active_neurons = floor((2^{n_accum_bits} - 1) / \
                 (2^{n_w_bits} - 1) / (2^{n_a_bits} - 1)) = 0 and no weight could be kept; use \
                 n_accum_bits >= {} (Ω = 1), or fewer weight / activation bits",
                smallest_accum_bits(n_w_bits, n_a_bits)
            ),
        ));
    }
    Ok(())
}

/// The structured-pruning fraction and the hidden-width multiplier.
fn validate_shape(n_layers: usize, multiplier: f64, prune_pct: f64) -> Result<()> {
    if !(0.0..1.0).contains(&prune_pct) {
        return Err(Error::param(
            "n_prune_neurons_percentage",
            format!(
                "is {prune_pct}; it is the fraction of hidden neurons to remove and must be in \
                 [0, 1) (0 = no structured pruning, 0.5 = remove half)"
            ),
        ));
    }
    if n_layers >= 2 && !(multiplier.is_finite() && multiplier > 0.0) {
        return Err(Error::param(
            "n_hidden_neurons_multiplier",
            format!(
                "is {multiplier}; the hidden width is floor(input_dim * multiplier), so use a \
                 positive finite number (4 is Concrete ML's default, 0.5 is allowed)"
            ),
        ));
    }
    Ok(())
}

impl FromStr for ActRange {
    type Err = Error;

    /// Parses `learned`, `minmax`, `mse` or `percentile:P` (the range is checked by
    /// [`ModuleConfig::validate`]).
    ///
    /// ```
    /// use sqnn::train::ActRange;
    /// assert_eq!("percentile:99.9".parse::<ActRange>().unwrap(), ActRange::Percentile(99.9));
    /// assert!("max".parse::<ActRange>().is_err());
    /// ```
    fn from_str(s: &str) -> Result<ActRange> {
        match s {
            "learned" => Ok(ActRange::Learned),
            "minmax" => Ok(ActRange::MinMax),
            "mse" => Ok(ActRange::Mse),
            _ => match s.strip_prefix("percentile:").map(str::parse::<f64>) {
                Some(Ok(p)) => Ok(ActRange::Percentile(p)),
                _ => Err(Error::param(
                    "act_range",
                    format!(
                        "{s:?}: use learned, minmax, mse or percentile:P (for example \
                         percentile:99.9)"
                    ),
                )),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::SparseQuantNeuralNetwork;

    fn cfg() -> ModuleConfig {
        let mut c = ModuleConfig::new(10, 3, 2);
        c.n_w_bits = 2;
        c.n_a_bits = 2;
        c.n_accum_bits = 6;
        c
    }

    fn param_name(c: &ModuleConfig) -> (&'static str, String) {
        match c.validate() {
            Err(Error::InvalidParameter { name, message }) => (name, message),
            other => panic!("expected InvalidParameter, got {other:?}"),
        }
    }

    fn net_err(c: ModuleConfig) -> (&'static str, String) {
        match SparseQuantNeuralNetwork::new(c, 0) {
            Err(Error::InvalidParameter { name, message }) => (name, message),
            Err(e) => panic!("expected InvalidParameter, got {e}"),
            Ok(_) => panic!("expected an error"),
        }
    }

    #[test]
    fn omega_formula_matches_concrete_ml() {
        assert_eq!(max_active_neurons(8, 3, 3), 5);
        assert_eq!(max_active_neurons(7, 2, 2), 14);
        assert_eq!(max_active_neurons(16, 4, 4), 291);
        assert_eq!(max_active_neurons(6, 2, 2), 7);
        assert_eq!(max_active_neurons(32, 4, 4), 19_088_743);
        assert_eq!(max_active_neurons(3, 2, 2), 0);
        assert_eq!(max_active_neurons(8, 0, 3), u64::MAX);
        assert_eq!(max_active_neurons(200, 2, 2), u64::MAX);
        assert_eq!(smallest_accum_bits(3, 3), 6);
        assert_eq!(smallest_accum_bits(2, 2), 4);
        let c = cfg();
        assert_eq!(c.max_active_neurons(), 7);
        let net = SparseQuantNeuralNetwork::new(c, 1).unwrap();
        assert_eq!(net.max_active_neurons(), 7);
    }

    #[test]
    fn valid_default_config() {
        cfg().validate().unwrap();
        ModuleConfig::new(4, 3, 3).validate().unwrap();
    }

    #[test]
    fn rejects_zero_layers() {
        let mut c = cfg();
        c.n_layers = 0;
        assert_eq!(param_name(&c).0, "n_layers");
        assert_eq!(net_err(c).0, "n_layers");
    }

    #[test]
    fn rejects_bad_weight_bits() {
        for b in [0, 1, 9, 32] {
            let mut c = cfg();
            c.n_w_bits = b;
            let (name, msg) = net_err(c);
            assert_eq!(name, "n_w_bits", "{b}");
            assert!(msg.contains("2"), "{msg}");
        }
    }

    #[test]
    fn rejects_bad_activation_bits() {
        for b in [0, 9, 16] {
            let mut c = cfg();
            c.n_a_bits = b;
            assert_eq!(net_err(c).0, "n_a_bits", "{b}");
        }
        let mut c = cfg();
        c.n_a_bits = 1;
        c.quant_signed = true;
        let (name, msg) = net_err(c.clone());
        assert_eq!(name, "n_a_bits");
        assert!(msg.contains("quant_signed = false"), "{msg}");
        c.quant_signed = false;
        c.quant_narrow = false;
        c.n_accum_bits = 8;
        SparseQuantNeuralNetwork::new(c, 0).unwrap();
    }

    #[test]
    fn rejects_bad_prune_percentage() {
        for p in [-0.1, 1.0, 1.5, f64::NAN, f64::INFINITY] {
            let mut c = cfg();
            c.n_prune_neurons_percentage = p;
            let (name, msg) = net_err(c);
            assert_eq!(name, "n_prune_neurons_percentage", "{p}");
            assert!(msg.contains("[0, 1)"), "{msg}");
        }
    }

    #[test]
    fn rejects_zero_omega_and_names_smallest_accumulator() {
        let mut c = cfg();
        c.n_w_bits = 3;
        c.n_a_bits = 3;
        c.n_accum_bits = 5;
        let (name, msg) = net_err(c);
        assert_eq!(name, "n_accum_bits");
        assert!(msg.contains("n_accum_bits >= 6"), "{msg}");
        assert!(msg.contains("max_active_neurons"), "{msg}");
    }

    #[test]
    fn rejects_zero_hidden_width_and_names_smallest_multiplier() {
        let mut c = cfg();
        c.n_hidden_neurons_multiplier = 0.05;
        let (name, msg) = net_err(c.clone());
        assert_eq!(name, "n_hidden_neurons_multiplier");
        assert!(msg.contains(">= 1/input_dim = 0.1"), "{msg}");
        for m in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            c.n_hidden_neurons_multiplier = m;
            assert_eq!(net_err(c.clone()).0, "n_hidden_neurons_multiplier", "{m}");
        }
        // A fractional multiplier is fine when the width stays >= 1.
        c.n_hidden_neurons_multiplier = 0.5;
        assert_eq!(c.hidden_width(), 5);
        SparseQuantNeuralNetwork::new(c.clone(), 0).unwrap();
        // With one layer there is no hidden width to check.
        c.n_layers = 1;
        c.n_hidden_neurons_multiplier = 0.01;
        SparseQuantNeuralNetwork::new(c, 0).unwrap();
    }

    #[test]
    fn rejects_huge_hidden_width() {
        let mut c = cfg();
        c.n_hidden_neurons_multiplier = 1e12;
        assert_eq!(net_err(c).0, "n_hidden_neurons_multiplier");
    }

    #[test]
    fn rejects_zero_input_dim() {
        let mut c = cfg();
        c.input_dim = 0;
        assert_eq!(net_err(c).0, "input_dim");
    }

    #[test]
    fn rejects_zero_outputs() {
        let mut c = cfg();
        c.n_outputs = 0;
        assert_eq!(net_err(c).0, "n_outputs");
    }

    #[test]
    fn rejects_unexecutable_accumulator_and_explains() {
        let mut c = cfg();
        c.n_w_bits = 4;
        c.n_a_bits = 4;
        c.n_accum_bits = 32;
        let (name, msg) = net_err(c.clone());
        assert_eq!(name, "n_accum_bits");
        assert!(msg.contains("24"), "{msg}");
        assert!(msg.contains("table"), "{msg}");
        assert!(msg.contains("use 24"), "{msg}");
        c.n_accum_bits = 25;
        assert_eq!(net_err(c.clone()).0, "n_accum_bits");
        c.n_accum_bits = 24;
        SparseQuantNeuralNetwork::new(c, 0).unwrap();
    }
}
