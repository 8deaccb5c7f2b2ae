//! The hyper-parameters of the estimators, [`EstimatorParams`]: the one definition of every
//! training setting, with sqnn's defaults and the named presets (`sqnn`, `fast-fhe`,
//! `concrete-ml`). The command line maps its flags onto these fields.

use serde::{Deserialize, Serialize};

use super::config::{validate_act_range, validate_shared};
use super::{ActRange, Distill, ImageShifts, LrSchedule, ModuleConfig, PruningMode, ReadNoise};
use crate::error::{Error, Result};
use crate::train::quantize::Activation;

#[allow(unused_imports)] // used by doc links
use super::{NeuralNetClassifier, NeuralNetRegressor};

/// Hyper-parameters of [`NeuralNetClassifier`] and [`NeuralNetRegressor`]: the module's
/// constructor fields except `input_dim` / `n_outputs` (inferred at `fit`), plus training
/// settings.
///
/// The defaults are sqnn's own, chosen to be accurate *and* cheap in FHE: Concrete ML's network
/// (3 layers, hidden multiplier 4, 4-bit weights, 4-bit unsigned activations, ReLU) with
/// per-neuron pruning to 10-bit accumulators (Ω = 4 non-zero weights per neuron), so one
/// bootstrap of the 4-bit TFHE parameter set reads every hidden neuron's accumulator
/// (approximate reads, see `crate::fhe`); each feature's training range mapped onto the input
/// quantizer (min-max scaling), per-neuron weight scales, learned activation step sizes, kept
/// weights re-scaled for their fan-in, AdamW (lr 0.01 with cosine decay, weight decay 0.1),
/// batch 32, 100 epochs, one run on all training rows keeping the last epoch (no hold-out:
/// on small data sets the rows are worth more as training data than as a selector of epochs
/// and restarts; `validation_fraction` and `restarts` bring selection back). Presets
/// ([`EstimatorParams::preset`]): `sqnn` (these defaults), `fast-fhe`
/// ([`EstimatorParams::fast_fhe`], the same with power-of-two scales) and `concrete-ml`
/// ([`EstimatorParams::concrete_ml`]). Exact 6-bit tables: `n_w_bits = 2`,
/// `n_a_bits = 2`, `n_accum_bits = 6`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EstimatorParams {
    /// Number of linear layers.
    pub n_layers: usize,
    /// Hidden width = `floor(n_features * n_hidden_neurons_multiplier)`.
    pub n_hidden_neurons_multiplier: f64,
    /// Weight bits (2..=8).
    pub n_w_bits: u32,
    /// Activation bits (1..=8).
    pub n_a_bits: u32,
    /// Bits of the first layer's input quantizer (the encrypted features), at most `n_a_bits`;
    /// `None`: `n_a_bits` ([`ModuleConfig::n_input_bits`](super::ModuleConfig::n_input_bits)).
    #[serde(default)]
    pub n_input_bits: Option<u32>,
    /// Accumulator budget of every neuron (<= 24).
    pub n_accum_bits: u32,
    /// Fraction of hidden neurons removed by structured pruning, in `[0, 1)`.
    pub n_prune_neurons_percentage: f64,
    /// Activation after each hidden layer.
    pub activation_function: Activation,
    /// Narrow integer ranges (see [`ModuleConfig::quant_narrow`]).
    pub quant_narrow: bool,
    /// Signed activation quantizers (see [`ModuleConfig::quant_signed`]).
    pub quant_signed: bool,
    /// Power-of-two scales.
    pub power_of_two_scaling: bool,
    /// Unstructured pruning mode.
    pub pruning: PruningMode,
    /// Per-output-neuron weight scales.
    pub per_channel: bool,
    /// How activation ranges are measured (see [`ActRange`]).
    pub act_range: ActRange,
    /// Fraction of the epochs over which per-neuron pruning goes gradually from dense to Ω
    /// weights per row (0 = prune once on the initial weights, like Concrete ML). Ignored with
    /// [`PruningMode::LayerGlobal`], which always prunes once on the initial weights.
    pub prune_warmup: f64,
    /// Training epochs.
    pub epochs: usize,
    /// Adam learning rate.
    pub lr: f64,
    /// Mini-batch size.
    pub batch_size: usize,
    /// Seed of everything random (initialization, validation split, batch order).
    pub seed: u64,
    /// Fraction of the training rows held out (stratified for classes) to pick the best epoch;
    /// 0 keeps the last epoch.
    pub validation_fraction: f64,
    /// Independent trainings from derived seeds (`seed`, `seed + 1`, ...); the one with the
    /// best validation result is kept (needs `validation_fraction > 0`, otherwise 1 is used).
    /// Small data sets vary a lot from one initialization to the next; restarts make the
    /// result dependable at a cost linear in their number.
    pub restarts: usize,
    /// Learning-rate schedule (cosine decay in sqnn's presets, constant in
    /// [`EstimatorParams::concrete_ml`]).
    pub lr_schedule: LrSchedule,
    /// After pruning on the initial weights (`prune_warmup = 0`), re-scale each row's kept
    /// weights to the initialization variance of its actual fan-in (see the training recipe in
    /// [`crate::train`]). On in sqnn's presets, off in [`EstimatorParams::concrete_ml`].
    pub sparse_init: bool,
    /// How raw features are mapped before the first layer's input quantizer (client side, so
    /// free in FHE): min-max in sqnn's presets, standardization in
    /// [`EstimatorParams::concrete_ml`].
    pub input_scaling: InputScaling,
    /// Decoupled (AdamW) weight decay of the weights (not biases or steps); 0 = Adam.
    pub weight_decay: f64,
    /// Noise-aware training: during training, every hidden neuron's accumulator is moved by
    /// the read error this TFHE parameter set's bootstrap would make ([`ReadNoise`], seeded by
    /// `seed`); `None` (the default): exact reads. `crate::fhe`'s `ParamSetId::read_noise`
    /// gives the numbers of a set.
    #[serde(default)]
    pub read_noise: Option<ReadNoise>,
    /// Removal of hidden neurons that do not pay for their bootstrap: `Some(t)` tries, at
    /// [`REMOVE_NEURONS_AT`](super::REMOVE_NEURONS_AT) of the epochs, every hidden neuron
    /// that costs a table out of the network (least salient first) and leaves it out when the
    /// score on the validation rows (the training rows without validation; at most 1,000,
    /// evenly spaced) stays within `t`
    /// of the score with all of them (accuracy share, or R²); the remaining epochs fine-tune
    /// the rest. Removed neurons have no table in the circuit. `None`: off; the `sqnn` and
    /// `fast-fhe` presets use [`DEFAULT_REMOVE_NEURONS`] (a model file without the field was
    /// trained without removal and reads as `None`).
    #[serde(default)]
    pub remove_neurons: Option<f64>,
    /// Shift augmentation of image rows ([`ImageShifts`]): every epoch each training row is
    /// shifted by a fresh random offset of up to `max_shift` pixels per axis (validation rows
    /// are not). `None` (the default): rows as given.
    #[serde(default)]
    pub shift_augment: Option<ImageShifts>,
    /// Knowledge distillation from a teacher model ([`Distill`], classification): the loss
    /// mixes the labels' cross-entropy with the teacher's soft targets. `None` (the default):
    /// labels only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub distill: Option<Distill>,
}

/// The per-feature affine map applied to raw features before the first layer's (per-tensor)
/// input quantizer; the client applies it, so it costs nothing in FHE.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InputScaling {
    /// `(x - mean) / std` (scikit-learn's `StandardScaler`).
    #[default]
    Standardize,
    /// Each feature's training range `[min, max]` onto `[-1, 1]`: every feature spans the
    /// whole input quantizer, instead of only the part its standardized range covers.
    MinMax,
    /// Each feature's training range `[min, max]` onto `[0, 2]`: [`MinMax`](Self::MinMax)'s
    /// length and step (the first layer's input quantizer is then unsigned, with as many
    /// levels), shifted so that a feature at its minimum is exactly 0 and adds nothing to an
    /// accumulator. For images whose background is the minimum (MNIST), with `[-1, 1]` every
    /// background pixel adds `-w` to every neuron, the same for every row: Adam's first steps
    /// move all those weights together and push most neurons' pre-activations below 0 for
    /// every row (dead ReLUs, whose outgoing weights then decay and export drops); at `[0, 2]`
    /// the background has no gradient.
    UnitRange,
}

/// The default tolerance of [`EstimatorParams::remove_neurons`]: a hidden neuron stays out when
/// the training score drops by at most 0.3 percentage points (R² 0.003) without it. Chosen over
/// repeated random 75/25 splits (`noise_sweep`: 96 on iris, 48 on breast_cancer and diabetes),
/// where against no removal it kept the simulated score of the planned circuits within 0.2
/// point (with `sqnn train`'s noise-aware default as well: the same or better) and cut their
/// bootstraps by 1.4 to 2.2 times.
pub const DEFAULT_REMOVE_NEURONS: f64 = 0.003;

impl Default for EstimatorParams {
    fn default() -> Self {
        EstimatorParams {
            n_layers: 3,
            n_hidden_neurons_multiplier: 4.0,
            n_w_bits: 4,
            n_a_bits: 4,
            n_input_bits: None,
            n_accum_bits: 10,
            n_prune_neurons_percentage: 0.0,
            activation_function: Activation::Relu,
            quant_narrow: false,
            quant_signed: false,
            power_of_two_scaling: false,
            pruning: PruningMode::PerNeuron,
            per_channel: true,
            act_range: ActRange::Learned,
            prune_warmup: 0.0,
            epochs: 100,
            lr: 0.01,
            batch_size: 32,
            seed: 42,
            validation_fraction: 0.0,
            restarts: 1,
            lr_schedule: LrSchedule::Cosine,
            sparse_init: true,
            input_scaling: InputScaling::MinMax,
            weight_decay: 0.1,
            read_noise: None,
            remove_neurons: Some(DEFAULT_REMOVE_NEURONS),
            shift_augment: None,
            distill: None,
        }
    }
}

impl EstimatorParams {
    /// The names [`preset`](Self::preset) accepts.
    pub const PRESETS: [&'static str; 3] = ["sqnn", "fast-fhe", "concrete-ml"];

    /// A preset by name: `sqnn` ([`Default`]), `fast-fhe` ([`fast_fhe`](Self::fast_fhe)) or
    /// `concrete-ml` ([`concrete_ml`](Self::concrete_ml)); anything else is an
    /// [`Error::InvalidParameter`] for `preset` listing them.
    pub fn preset(name: &str) -> Result<Self> {
        match name {
            "sqnn" => Ok(EstimatorParams::default()),
            "fast-fhe" | "fast_fhe" => Ok(EstimatorParams::fast_fhe()),
            "concrete-ml" | "concrete_ml" => Ok(EstimatorParams::concrete_ml()),
            other => Err(Error::param(
                "preset",
                format!(
                    "{other:?} is not a preset: use one of {}",
                    Self::PRESETS.join(", ")
                ),
            )),
        }
    }

    /// Concrete ML's network (3 layers, hidden multiplier 4, 4-bit weights, 4-bit unsigned
    /// activations, ReLU, power-of-two scales) with sqnn's per-neuron pruning to 10-bit
    /// accumulators (Ω = 4 non-zero weights per neuron: every hidden neuron's proved
    /// accumulator range fits 10 bits, which one bootstrap of the rounded-accumulator FHE path
    /// reads) and sqnn's training (the defaults': min-max input scaling, per-neuron weight
    /// scales, learned activation steps, kept weights re-scaled for their fan-in, AdamW lr 0.01
    /// with cosine decay and weight decay 0.1, batch 32, 100 epochs on all training rows).
    ///
    /// With Ω = 4 most of the `4 n_features` hidden neurons of a layer end up read by nobody
    /// and are dropped at export, so the circuit is smaller than the nominal width suggests.
    pub fn fast_fhe() -> Self {
        EstimatorParams {
            n_hidden_neurons_multiplier: 4.0,
            n_w_bits: 4,
            n_a_bits: 4,
            n_accum_bits: 10,
            power_of_two_scaling: true,
            ..EstimatorParams::default()
        }
    }

    /// Concrete ML 1.9's defaults (4-bit weights and activations, multiplier 4, ReLU, signed,
    /// not narrow, power-of-two scales, per-tensor weight scales, layer-global pruning once on
    /// the initial weights, Adam lr 0.01, batch 128, 20 % validation), 3 layers and 100 epochs as
    /// measured in its comparison, except `n_accum_bits`: 24 (the largest sqnn accepts) instead
    /// of 32, which also leaves pruning off for any realistic fan-in (Ω = 74 565).
    pub fn concrete_ml() -> Self {
        EstimatorParams {
            n_layers: 3,
            n_hidden_neurons_multiplier: 4.0,
            n_w_bits: 4,
            n_a_bits: 4,
            n_input_bits: None,
            n_accum_bits: 24,
            n_prune_neurons_percentage: 0.0,
            activation_function: Activation::Relu,
            quant_narrow: false,
            quant_signed: true,
            power_of_two_scaling: true,
            pruning: PruningMode::LayerGlobal,
            per_channel: false,
            act_range: ActRange::Learned,
            prune_warmup: 0.0,
            epochs: 100,
            lr: 0.01,
            batch_size: 128,
            seed: 42,
            validation_fraction: 0.2,
            restarts: 1,
            lr_schedule: LrSchedule::Constant,
            sparse_init: false,
            input_scaling: InputScaling::Standardize,
            weight_decay: 0.0,
            read_noise: None,
            remove_neurons: None,
            shift_augment: None,
            distill: None,
        }
    }

    /// The module configuration for data with `input_dim` features and `n_outputs` outputs.
    pub fn module_config(&self, input_dim: usize, n_outputs: usize) -> ModuleConfig {
        ModuleConfig {
            input_dim,
            n_layers: self.n_layers,
            n_outputs,
            n_hidden_neurons_multiplier: self.n_hidden_neurons_multiplier,
            n_w_bits: self.n_w_bits,
            n_a_bits: self.n_a_bits,
            n_input_bits: self.n_input_bits,
            n_accum_bits: self.n_accum_bits,
            n_prune_neurons_percentage: self.n_prune_neurons_percentage,
            activation_function: self.activation_function,
            quant_narrow: self.quant_narrow,
            quant_signed: self.quant_signed,
            power_of_two_scaling: self.power_of_two_scaling,
            pruning: self.pruning,
            per_channel: self.per_channel,
            act_range: self.act_range,
        }
    }

    /// Ω for these bit widths ([`max_active_neurons`](super::max_active_neurons)).
    pub fn max_active_neurons(&self) -> u64 {
        super::config::max_active_neurons(self.n_accum_bits, self.n_w_bits, self.n_a_bits)
    }

    /// Checks every parameter that does not depend on the data (the hidden width is checked at
    /// `fit`, once the feature count is known).
    pub fn validate(&self) -> Result<()> {
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
        super::config::validate_input_bits(
            self.n_input_bits,
            self.n_a_bits,
            self.quant_signed,
            self.quant_narrow,
        )?;
        if self.epochs == 0 {
            return Err(Error::param("epochs", "is 0; train for at least 1 epoch"));
        }
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return Err(Error::param(
                "lr",
                format!("is {}; use a positive learning rate such as 0.01", self.lr),
            ));
        }
        if self.restarts == 0 {
            return Err(Error::param(
                "restarts",
                "is 0; use at least 1 training run",
            ));
        }
        if self.batch_size == 0 {
            return Err(Error::param(
                "batch_size",
                "is 0; use a positive mini-batch size such as 32",
            ));
        }
        if !(0.0..1.0).contains(&self.validation_fraction) {
            return Err(Error::param(
                "validation_fraction",
                format!(
                    "is {}; use a fraction in [0, 1) (0.2 holds out 20 %, 0 disables validation)",
                    self.validation_fraction
                ),
            ));
        }
        if !(self.weight_decay.is_finite() && self.weight_decay >= 0.0) {
            return Err(Error::param(
                "weight_decay",
                format!(
                    "is {}; use a non-negative decay such as 0.1 (0 disables it)",
                    self.weight_decay
                ),
            ));
        }
        if let Some(noise) = &self.read_noise {
            noise.validate()?;
        }
        if let Some(d) = &self.distill {
            d.validate()?;
        }
        if let Some(t) = self.remove_neurons {
            if !(0.0..1.0).contains(&t) {
                return Err(Error::param(
                    "remove_neurons",
                    format!(
                        "tolerance {t} must be in [0, 1): the score (accuracy or R²) a removal \
                         may cost, e.g. 0 to keep it"
                    ),
                ));
            }
        }
        if !(0.0..1.0).contains(&self.prune_warmup) {
            return Err(Error::param(
                "prune_warmup",
                format!(
                    "is {}; use a fraction of the epochs in [0, 1) (0 prunes once on the initial \
                     weights)",
                    self.prune_warmup
                ),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::NeuralNetClassifier;

    #[test]
    fn params_validation() {
        let ok = EstimatorParams::default();
        ok.validate().unwrap();
        EstimatorParams::concrete_ml().validate().unwrap();
        EstimatorParams::fast_fhe().validate().unwrap();
        for name in EstimatorParams::PRESETS {
            EstimatorParams::preset(name).unwrap().validate().unwrap();
        }
        assert_eq!(EstimatorParams::fast_fhe().max_active_neurons(), 4);
        match EstimatorParams::preset("fast") {
            Err(Error::InvalidParameter { name, message }) => {
                assert_eq!(name, "preset");
                assert!(message.contains("fast-fhe"), "{message}");
            }
            other => panic!("{other:?}"),
        }
        let cases: Vec<(&str, EstimatorParams)> = vec![
            (
                "epochs",
                EstimatorParams {
                    epochs: 0,
                    ..ok.clone()
                },
            ),
            (
                "lr",
                EstimatorParams {
                    lr: -1.0,
                    ..ok.clone()
                },
            ),
            (
                "lr",
                EstimatorParams {
                    lr: f64::NAN,
                    ..ok.clone()
                },
            ),
            (
                "batch_size",
                EstimatorParams {
                    batch_size: 0,
                    ..ok.clone()
                },
            ),
            (
                "validation_fraction",
                EstimatorParams {
                    validation_fraction: 1.0,
                    ..ok.clone()
                },
            ),
            (
                "prune_warmup",
                EstimatorParams {
                    prune_warmup: 1.0,
                    ..ok.clone()
                },
            ),
            (
                "weight_decay",
                EstimatorParams {
                    weight_decay: -0.1,
                    ..ok.clone()
                },
            ),
            (
                "n_layers",
                EstimatorParams {
                    n_layers: 0,
                    ..ok.clone()
                },
            ),
            (
                "n_accum_bits",
                EstimatorParams {
                    n_accum_bits: 32,
                    ..ok.clone()
                },
            ),
        ];
        for (name, p) in cases {
            match NeuralNetClassifier::new(p) {
                Err(Error::InvalidParameter { name: n, .. }) => assert_eq!(n, name),
                other => panic!("{name}: {other:?}"),
            }
        }
    }
}
