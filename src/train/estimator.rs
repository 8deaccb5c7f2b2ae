//! The scikit-learn-like estimators, their training loop, and the model file.

use std::path::Path;
use std::time::Instant;

use ndarray::{Array2, Axis};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::network::{Adam, Layer, SparseQuantNeuralNetwork};
use super::{validate_shared, ActRange, LrSchedule, ModuleConfig, PruningMode};
use crate::data::{check_finite, Dataset, Standardizer};
use crate::error::{Error, Result};
use crate::task::Task;
use crate::train::quantize::{Activation, QuantizedMlp};

/// The `format` field of a model file.
pub const MODEL_FORMAT: &str = "sqnn-model";
/// The `version` field of the model files this build writes (and the newest it reads).
pub const MODEL_VERSION: u32 = 1;

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
/// ([`EstimatorParams::concrete_ml`]). Exact 6-bit tables: `--n-w-bits 2 --n-a-bits 2
/// --n-accum-bits 6`.
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
    /// Show a progress bar (epoch, losses) on stderr.
    pub progress: bool,
    /// Learning-rate schedule (cosine decay in sqnn's presets). Model files written before
    /// this field existed read as [`LrSchedule::Constant`], what they were trained with.
    #[serde(default)]
    pub lr_schedule: LrSchedule,
    /// After pruning on the initial weights (`prune_warmup = 0`), re-scale each row's kept
    /// weights to the initialization variance of its actual fan-in (see the training recipe in
    /// [`crate::train`]). On in sqnn's presets, off in [`EstimatorParams::concrete_ml`] (and for
    /// model files written before this field existed).
    #[serde(default)]
    pub sparse_init: bool,
    /// How raw features are mapped before the first layer's input quantizer (client side, so
    /// free in FHE). Model files written before this field existed read as
    /// [`InputScaling::Standardize`].
    #[serde(default)]
    pub input_scaling: InputScaling,
    /// Decoupled (AdamW) weight decay of the weights (not biases or steps); 0 = Adam.
    #[serde(default)]
    pub weight_decay: f64,
}

/// The per-feature affine map applied to raw features before the first layer's (per-tensor)
/// input quantizer; the client applies it, so it costs nothing in FHE.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, clap::ValueEnum,
)]
#[serde(rename_all = "snake_case")]
pub enum InputScaling {
    /// `(x - mean) / std` (scikit-learn's `StandardScaler`).
    #[default]
    Standardize,
    /// Each feature's training range `[min, max]` onto `[-1, 1]`: every feature spans the
    /// whole input quantizer, instead of only the part its standardized range covers.
    MinMax,
}

impl Default for EstimatorParams {
    fn default() -> Self {
        EstimatorParams {
            n_layers: 3,
            n_hidden_neurons_multiplier: 4.0,
            n_w_bits: 4,
            n_a_bits: 4,
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
            progress: false,
            lr_schedule: LrSchedule::Cosine,
            sparse_init: true,
            input_scaling: InputScaling::MinMax,
            weight_decay: 0.1,
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
            progress: false,
            lr_schedule: LrSchedule::Constant,
            sparse_init: false,
            input_scaling: InputScaling::Standardize,
            weight_decay: 0.0,
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

    /// Ω for these bit widths ([`super::max_active_neurons`]).
    pub fn max_active_neurons(&self) -> u64 {
        super::max_active_neurons(self.n_accum_bits, self.n_w_bits, self.n_a_bits)
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
        super::validate_act_range(self.act_range)?;
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

/// What [`NeuralNetClassifier::fit`] and [`NeuralNetRegressor::fit`] report.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FitReport {
    /// Epochs trained.
    pub epochs_run: usize,
    /// The (0-based) epoch whose weights were kept: best validation result among the epochs
    /// trained with the final pruning masks (the last epoch without validation).
    pub best_epoch: usize,
    /// First (0-based) epoch trained with the final pruning masks.
    pub final_masks_epoch: usize,
    /// Mean training loss per epoch (cross-entropy, or MSE on the standardized target).
    pub train_loss: Vec<f64>,
    /// Validation loss per epoch (empty without validation).
    pub val_loss: Vec<f64>,
    /// Validation accuracy (classifier) or R² (regressor) of the fake-quantized network per
    /// epoch (empty without validation).
    pub val_score: Vec<f64>,
    /// Training rows used for gradient steps.
    pub n_train: usize,
    /// Rows held out for validation.
    pub n_val: usize,
    /// Which of the `restarts` trainings was kept (0-based; its seed is `seed + restart`).
    pub restart: usize,
    /// Wall-clock training time in seconds.
    pub seconds: f64,
}

/// Targets of one fit.
enum Targets<'a> {
    Classes { labels: &'a [usize], k: usize },
    Values(Vec<f64>),
}

struct Fitted {
    module: SparseQuantNeuralNetwork,
    quantized: QuantizedMlp,
    report: FitReport,
    /// Validation key of the kept epoch (lower is better), and its tie-breaker.
    key: (f64, f64),
}

fn check_x(x: &Array2<f64>, what: &str) -> Result<()> {
    if x.nrows() == 0 {
        return Err(Error::Input(format!(
            "{what}: no rows; pass at least one sample"
        )));
    }
    if x.ncols() == 0 {
        return Err(Error::Input(format!(
            "{what}: no feature columns; pass at least one feature"
        )));
    }
    check_finite(x, what)
}

/// Seeded validation split: stratified by class for classification.
fn validation_split(
    n: usize,
    labels: Option<&[usize]>,
    frac: f64,
    rng: &mut ChaCha8Rng,
) -> (Vec<usize>, Vec<usize>) {
    if frac <= 0.0 || n < 2 {
        return ((0..n).collect(), Vec::new());
    }
    let (mut train, mut val) = (Vec::new(), Vec::new());
    match labels {
        Some(labels) => {
            let k = labels.iter().max().map_or(0, |m| m + 1);
            let mut by_class: Vec<Vec<usize>> = vec![Vec::new(); k];
            for (i, &l) in labels.iter().enumerate() {
                by_class[l].push(i);
            }
            for rows in &mut by_class {
                rows.shuffle(rng);
                let c = rows.len();
                let m = if c >= 2 {
                    ((frac * c as f64).round() as usize).min(c - 1)
                } else {
                    0
                };
                val.extend_from_slice(&rows[..m]);
                train.extend_from_slice(&rows[m..]);
            }
        }
        None => {
            let mut idx: Vec<usize> = (0..n).collect();
            idx.shuffle(rng);
            let m = ((frac * n as f64).round() as usize).min(n - 1);
            val.extend_from_slice(&idx[..m]);
            train.extend_from_slice(&idx[m..]);
        }
    }
    train.sort_unstable();
    val.sort_unstable();
    (train, val)
}

/// Mean cross-entropy of logits `z` against `labels`, and its gradient.
fn cross_entropy(z: &Array2<f64>, labels: &[usize]) -> (f64, Array2<f64>) {
    let n = z.nrows() as f64;
    let mut g = Array2::zeros(z.raw_dim());
    let mut loss = 0.0;
    for (i, (row, mut grow)) in z.rows().into_iter().zip(g.rows_mut()).enumerate() {
        let m = row.iter().fold(f64::NEG_INFINITY, |a, &b| a.max(b));
        let sum: f64 = row.iter().map(|v| (v - m).exp()).sum();
        let y = labels[i];
        loss += -(row[y] - m - sum.ln());
        for (k, gk) in grow.iter_mut().enumerate() {
            let p = (row[k] - m).exp() / sum;
            *gk = (p - f64::from(u8::from(k == y))) / n;
        }
    }
    (loss / n, g)
}

/// Mean squared error of `z` (`n x 1`) against `t`, and its gradient.
fn mse(z: &Array2<f64>, t: &[f64]) -> (f64, Array2<f64>) {
    let n = z.nrows() as f64;
    let mut g = Array2::zeros(z.raw_dim());
    let mut loss = 0.0;
    for (i, ti) in t.iter().enumerate() {
        let e = z[[i, 0]] - ti;
        loss += e * e;
        g[[i, 0]] = 2.0 * e / n;
    }
    (loss / n, g)
}

fn argmax(row: ndarray::ArrayView1<f64>) -> usize {
    let mut best = 0;
    for (k, &v) in row.iter().enumerate() {
        if v > row[best] {
            best = k;
        }
    }
    best
}

fn accuracy(z: &Array2<f64>, labels: &[usize]) -> f64 {
    let hits = z
        .rows()
        .into_iter()
        .zip(labels)
        .filter(|(r, &y)| argmax(*r) == y)
        .count();
    hits as f64 / labels.len().max(1) as f64
}

/// R² of predictions against targets (0 when the targets are constant and the fit is not
/// exact).
pub(crate) fn r2(pred: &[f64], y: &[f64]) -> f64 {
    let n = y.len().max(1) as f64;
    let mean = y.iter().sum::<f64>() / n;
    let ss_tot: f64 = y.iter().map(|v| (v - mean) * (v - mean)).sum();
    let ss_res: f64 = pred.iter().zip(y).map(|(p, v)| (p - v) * (p - v)).sum();
    if ss_tot == 0.0 {
        return if ss_res == 0.0 { 1.0 } else { 0.0 };
    }
    1.0 - ss_res / ss_tot
}

/// The whole training procedure with restarts; see the module documentation of
/// [`crate::train`].
fn fit_core(p: &EstimatorParams, x: &Array2<f64>, targets: Targets, task: Task) -> Result<Fitted> {
    let start = Instant::now();
    p.validate()?;
    let runs = if p.validation_fraction > 0.0 {
        p.restarts
    } else {
        1
    };
    let mut best: Option<Fitted> = None;
    for r in 0..runs {
        let pr = EstimatorParams {
            seed: p.seed.wrapping_add(r as u64),
            ..p.clone()
        };
        let mut f = fit_once(&pr, x, &targets, task.clone())?;
        f.report.restart = r;
        let better = best
            .as_ref()
            .is_none_or(|b| f.key.0 < b.key.0 || (f.key.0 == b.key.0 && f.key.1 < b.key.1));
        if better {
            best = Some(f);
        }
    }
    let mut best = best.expect("at least one run");
    best.report.seconds = start.elapsed().as_secs_f64();
    Ok(best)
}

/// One training run.
fn fit_once(p: &EstimatorParams, x: &Array2<f64>, targets: &Targets, task: Task) -> Result<Fitted> {
    let start = Instant::now();
    let n = x.nrows();
    let d = x.ncols();
    let (n_outputs, labels) = match targets {
        Targets::Classes { labels, k } => (*k, Some(*labels)),
        Targets::Values(_) => (1, None),
    };
    let cfg = p.module_config(d, n_outputs);
    let mut net = SparseQuantNeuralNetwork::new(cfg, p.seed)?;

    let mut stdz = Standardizer::fit(x);
    if p.input_scaling == InputScaling::MinMax {
        // Features go onto [-c, c]. With power-of-two scales, c = 1 would put the initial input
        // step (2 / (2^a - 1)) just above a power of two, rounded up to twice that: half the
        // levels lost. c = 0.9 (2^a - 1) / 2^a keeps the step 10 % under the power of two.
        let c = if p.power_of_two_scaling {
            let n = ((1u64 << p.n_a_bits) - 1 - u64::from(p.quant_narrow)) as f64;
            0.9 * n / 2f64.powi(n.log2().ceil() as i32)
        } else {
            1.0
        };
        for (j, col) in x.columns().into_iter().enumerate() {
            let (lo, hi) = col
                .iter()
                .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| {
                    (a.min(v), b.max(v))
                });
            let half = (hi - lo) / 2.0;
            if half.is_finite() && half > 10.0 * f64::EPSILON * lo.abs().max(hi.abs()).max(1.0) {
                stdz.mean[j] = lo + half;
                stdz.std[j] = half / c;
            }
        }
    }
    let xs = stdz.transform(x);
    let (t_mean, t_std, tvals) = match targets {
        Targets::Values(y) => {
            let m = y.iter().sum::<f64>() / n as f64;
            let var = y.iter().map(|v| (v - m) * (v - m)).sum::<f64>() / n as f64;
            let s = var.sqrt();
            let s = if s.is_finite() && s > 10.0 * f64::EPSILON * m.abs().max(1.0) {
                s
            } else {
                1.0
            };
            (m, s, y.iter().map(|v| (v - m) / s).collect::<Vec<f64>>())
        }
        Targets::Classes { .. } => (0.0, 1.0, Vec::new()),
    };

    let mut rng = ChaCha8Rng::seed_from_u64(p.seed);
    rng.set_stream(1);
    let (tr, va) = validation_split(n, labels, p.validation_fraction, &mut rng);
    let xt = xs.select(Axis(0), &tr);
    let xv = xs.select(Axis(0), &va);
    let lab_t: Vec<usize> = labels.map_or(Vec::new(), |l| tr.iter().map(|&i| l[i]).collect());
    let lab_v: Vec<usize> = labels.map_or(Vec::new(), |l| va.iter().map(|&i| l[i]).collect());
    let val_t: Vec<f64> = if labels.is_none() {
        tr.iter().map(|&i| tvals[i]).collect()
    } else {
        Vec::new()
    };
    let val_v: Vec<f64> = if labels.is_none() {
        va.iter().map(|&i| tvals[i]).collect()
    } else {
        Vec::new()
    };

    let loss_of = |z: &Array2<f64>, rows: &[usize], val: bool| -> (f64, Array2<f64>) {
        match labels {
            Some(_) => {
                let l: Vec<usize> = rows
                    .iter()
                    .map(|&i| if val { lab_v[i] } else { lab_t[i] })
                    .collect();
                cross_entropy(z, &l)
            }
            None => {
                let t: Vec<f64> = rows
                    .iter()
                    .map(|&i| if val { val_v[i] } else { val_t[i] })
                    .collect();
                mse(z, &t)
            }
        }
    };

    // Pruning schedule: gradual per-neuron pruning over the first `warm` epochs.
    let epochs = p.epochs;
    let warm = if p.pruning == PruningMode::PerNeuron {
        ((p.prune_warmup * epochs as f64).round() as usize).min(epochs - 1)
    } else {
        0
    };
    if warm == 0 {
        net.enable_pruning();
        if p.sparse_init {
            net.rescale_kept_weights();
        }
    }

    let bar = p.progress.then(|| {
        let b = indicatif::ProgressBar::with_draw_target(
            Some(epochs as u64),
            indicatif::ProgressDrawTarget::stderr(),
        );
        if let Ok(style) =
            indicatif::ProgressStyle::with_template("{bar:30} epoch {pos}/{len} {msg} [{elapsed}]")
        {
            b.set_style(style);
        }
        b
    });

    let mut adam = Adam::new(&net, p.lr);
    adam.weight_decay = p.weight_decay;
    let bs = p.batch_size.min(tr.len()).max(1);
    let mut order: Vec<usize> = (0..tr.len()).collect();
    let all_val: Vec<usize> = (0..va.len()).collect();
    let mut report = FitReport {
        epochs_run: 0,
        best_epoch: 0,
        final_masks_epoch: warm,
        train_loss: Vec::with_capacity(epochs),
        val_loss: Vec::new(),
        val_score: Vec::new(),
        n_train: tr.len(),
        n_val: va.len(),
        restart: 0,
        seconds: 0.0,
    };
    let mut best: Option<(f64, f64, Vec<Layer>)> = None;
    for epoch in 0..epochs {
        if warm > 0 && epoch >= 1 && epoch <= warm {
            if epoch == warm {
                net.enable_pruning();
            } else {
                net.prune_gradual(epoch as f64 / warm as f64);
            }
        }
        if epoch == 1 && p.act_range == ActRange::Learned {
            net.init_learned_steps();
        }
        order.shuffle(&mut rng);
        let mut loss_sum = 0.0;
        let n_batches = tr.len().div_ceil(bs);
        for (b, chunk) in order.chunks(bs).enumerate() {
            let done = (epoch * n_batches + b) as f64 / (epochs * n_batches) as f64;
            adam.set_lr(match p.lr_schedule {
                LrSchedule::Constant => p.lr,
                LrSchedule::Cosine => p.lr * 0.5 * (1.0 + (std::f64::consts::PI * done).cos()),
            });
            let xb = xt.select(Axis(0), chunk);
            let (out, cache) = net.forward_train(&xb);
            let (loss, dout) = loss_of(&out, chunk, false);
            let g = net.backward(&cache, dout);
            adam.step(&mut net, &g);
            loss_sum += loss * chunk.len() as f64;
        }
        net.enforce_accumulator_budget();
        let train_loss = loss_sum / tr.len() as f64;
        report.train_loss.push(train_loss);
        report.epochs_run = epoch + 1;
        let (key, tie) = if va.is_empty() {
            (0.0, 0.0)
        } else {
            let z = net.forward(&xv);
            let (vl, _) = loss_of(&z, &all_val, true);
            let score = match labels {
                Some(_) => accuracy(&z, &lab_v),
                None => r2(&z.column(0).to_vec(), &val_v),
            };
            report.val_loss.push(vl);
            report.val_score.push(score);
            match labels {
                Some(_) => (-score, vl),
                None => (vl, 0.0),
            }
        };
        if epoch >= warm {
            let better = match &best {
                None => true,
                Some(_) if va.is_empty() => true,
                Some((k, t, _)) => key < *k || (key == *k && tie < *t),
            };
            if better {
                best = Some((key, tie, net.layers.clone()));
                report.best_epoch = epoch;
            }
        }
        if let Some(b) = &bar {
            let msg = match report.val_loss.last() {
                Some(vl) => format!("loss {train_loss:.4} val {vl:.4}"),
                None => format!("loss {train_loss:.4}"),
            };
            b.set_message(msg);
            b.inc(1);
        }
    }
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    let mut key = (0.0, 0.0);
    if let Some((k, t, layers)) = best {
        net.layers = layers;
        key = (k, t);
    }
    net.make_pruning_permanent();
    net.enforce_accumulator_budget();
    let quantized = net.to_quantized(task, stdz.mean, stdz.std, t_mean, t_std)?;
    report.seconds = start.elapsed().as_secs_f64();
    Ok(Fitted {
        module: net,
        quantized,
        report,
        key,
    })
}

/// Runs the integer model on raw rows: quantize (client), `forward_int`, dequantize.
fn int_outputs(q: &QuantizedMlp, x: &Array2<f64>) -> Result<Array2<f64>> {
    if x.ncols() != q.input_dim() {
        return Err(Error::Input(format!(
            "features have {} columns but the model was trained on {} features; pass the same \
             columns in the same order",
            x.ncols(),
            q.input_dim()
        )));
    }
    check_finite(x, "features")?;
    let k = q.layers.last().map_or(0, |l| l.out_dim());
    let mut out = Array2::zeros((x.nrows(), k));
    for (row, mut o) in x.rows().into_iter().zip(out.rows_mut()) {
        let raw: Vec<f64> = row.to_vec();
        let acc = q.forward_int(&q.quantize_input(&raw));
        for (dst, v) in o.iter_mut().zip(q.dequantize_output(&acc)) {
            *dst = v;
        }
    }
    Ok(out)
}

fn not_fitted() -> Error {
    Error::Model("not fitted: call fit first".into())
}

#[derive(Serialize, Deserialize)]
struct ModelFile {
    format: String,
    version: u32,
    kind: String,
    params: EstimatorParams,
    feature_names: Option<Vec<String>>,
    data_name: Option<String>,
    model: QuantizedMlp,
    /// Every float of `model` as its IEEE-754 bit pattern, in the order of [`for_each_float`]:
    /// serde_json's default float parser is not correctly rounded, and a loaded model must be
    /// bit-identical to the saved one (predictions, lowering and encrypted execution must
    /// agree exactly).
    exact_floats: Vec<u64>,
}

/// Visits every float of a model in a fixed order.
fn for_each_float(q: &mut QuantizedMlp, f: &mut impl FnMut(&mut f64)) {
    q.feature_mean.iter_mut().for_each(&mut *f);
    q.feature_std.iter_mut().for_each(&mut *f);
    f(&mut q.target_mean);
    f(&mut q.target_std);
    for layer in &mut q.layers {
        f(&mut layer.input_quant.scale);
        layer.weight_scale.iter_mut().for_each(&mut *f);
        layer.bias.iter_mut().for_each(&mut *f);
    }
}

/// Replaces the parsed floats by their exact bit patterns, checking they agree.
fn restore_exact_floats(q: &mut QuantizedMlp, bits: &[u64]) -> std::result::Result<(), String> {
    let mut k = 0;
    let mut bad = None;
    for_each_float(q, &mut |v| {
        match bits.get(k) {
            Some(&b) => {
                let exact = f64::from_bits(b);
                let close = exact == *v || (exact - *v).abs() <= 1e-12 * exact.abs().max(v.abs());
                if !close && bad.is_none() {
                    bad = Some(format!(
                        "value {k} is {} in the text but {exact} in exact_floats",
                        *v
                    ));
                }
                *v = exact;
            }
            None => {
                if bad.is_none() {
                    bad = Some("exact_floats is shorter than the model".into());
                }
            }
        }
        k += 1;
    });
    if let Some(b) = bad {
        return Err(b);
    }
    if k != bits.len() {
        return Err(format!(
            "exact_floats holds {} values for a model with {k}",
            bits.len()
        ));
    }
    Ok(())
}

const KIND_CLASSIFIER: &str = "classifier";
const KIND_REGRESSOR: &str = "regressor";

fn write_model(
    path: &Path,
    kind: &str,
    params: &EstimatorParams,
    names: (&Option<Vec<String>>, &Option<String>),
    model: Option<&QuantizedMlp>,
) -> Result<()> {
    let model = model.ok_or_else(not_fitted)?;
    let mut exact_floats = Vec::new();
    for_each_float(&mut model.clone(), &mut |v| exact_floats.push(v.to_bits()));
    let file = ModelFile {
        format: MODEL_FORMAT.into(),
        version: MODEL_VERSION,
        kind: kind.into(),
        params: params.clone(),
        feature_names: names.0.clone(),
        data_name: names.1.clone(),
        model: model.clone(),
        exact_floats,
    };
    let mut bytes = serde_json::to_vec(&file)
        .map_err(|e| Error::Model(format!("cannot serialize the model: {e}")))?;
    bytes.push(b'\n');
    std::fs::write(path, bytes).map_err(|e| Error::io(path, e))
}

fn read_model(path: &Path) -> Result<ModelFile> {
    let shown = path.display();
    let fix = "pass a model file written by sqnn's `save` (e.g. `sqnn train --save model.json`)";
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let v: serde_json::Value = serde_json::from_slice(&bytes).map_err(|e| {
        Error::Model(format!(
            "{shown}: not a sqnn model file (not JSON: {e}); {fix}"
        ))
    })?;
    match v.get("format").and_then(|f| f.as_str()) {
        Some(MODEL_FORMAT) => {}
        Some(other) => {
            return Err(Error::Model(format!(
                "{shown}: is a {other:?} file, not a sqnn model (format \"{MODEL_FORMAT}\"); {fix}"
            )))
        }
        None => {
            return Err(Error::Model(format!(
                "{shown}: not a sqnn model file (no \"format\": \"{MODEL_FORMAT}\" field); {fix}"
            )))
        }
    }
    match v.get("version").and_then(|x| x.as_u64()) {
        Some(ver) if ver == u64::from(MODEL_VERSION) => {}
        Some(ver) if ver > u64::from(MODEL_VERSION) => {
            return Err(Error::Model(format!(
                "{shown}: model file version {ver} was written by a newer sqnn (this one reads \
                 version {MODEL_VERSION}); upgrade sqnn or re-train with this version"
            )))
        }
        other => {
            return Err(Error::Model(format!(
                "{shown}: unsupported model file version {other:?} (this sqnn reads version \
                 {MODEL_VERSION}); re-train and save the model again"
            )))
        }
    }
    let mut f: ModelFile = serde_json::from_value(v).map_err(|e| {
        Error::Model(format!(
            "{shown}: damaged sqnn model file ({e}); re-train and save the model again"
        ))
    })?;
    let bits = std::mem::take(&mut f.exact_floats);
    restore_exact_floats(&mut f.model, &bits).map_err(|m| {
        Error::Model(format!(
            "{shown}: inconsistent sqnn model file ({m}); re-train and save the model again"
        ))
    })?;
    let kind_ok = f.kind == KIND_CLASSIFIER || f.kind == KIND_REGRESSOR;
    let checked = if kind_ok {
        check_model(&f)
    } else {
        Err(format!(
            "unknown model kind {:?} (expected \"classifier\" or \"regressor\")",
            f.kind
        ))
    };
    checked.map_err(|m| {
        Error::Model(format!(
            "{shown}: inconsistent sqnn model file ({m}); re-train and save the model again"
        ))
    })?;
    Ok(f)
}

/// Checks everything `predict` relies on, so that a loaded model can never panic.
fn check_model(f: &ModelFile) -> std::result::Result<(), String> {
    f.params.validate().map_err(|e| e.to_string())?;
    let q = &f.model;
    if q.n_w_bits != f.params.n_w_bits
        || q.n_a_bits != f.params.n_a_bits
        || q.n_accum_bits != f.params.n_accum_bits
    {
        return Err("model bit widths differ from its parameters".into());
    }
    let d = q.feature_mean.len();
    if d == 0 || q.feature_std.len() != d {
        return Err("feature statistics are empty or of different lengths".into());
    }
    if let Some(names) = &f.feature_names {
        if names.len() != d {
            return Err(format!("{} feature names for {d} features", names.len()));
        }
    }
    let finite_nonzero = |v: f64| v.is_finite() && v != 0.0;
    if q.feature_mean.iter().any(|v| !v.is_finite())
        || !q.feature_std.iter().all(|&v| finite_nonzero(v))
        || !q.target_mean.is_finite()
        || !finite_nonzero(q.target_std)
    {
        return Err("standardization statistics are not finite or have a zero std".into());
    }
    if q.layers.is_empty() {
        return Err("no layers".into());
    }
    let wmax = 1i64 << (q.n_w_bits - 1);
    let n = q.layers.len();
    let mut in_dim = d;
    for (l, layer) in q.layers.iter().enumerate() {
        let iq = &layer.input_quant;
        if !(iq.scale.is_finite() && iq.scale > 0.0) || iq.lo > iq.hi || iq.lo < -256 || iq.hi > 256
        {
            return Err(format!("layer {l}: invalid input quantizer"));
        }
        if layer.in_dim != in_dim {
            return Err(format!(
                "layer {l} reads {} inputs but {in_dim} come in",
                layer.in_dim
            ));
        }
        let out = layer.rows.len();
        if out == 0 || layer.weight_scale.len() != out || layer.bias.len() != out {
            return Err(format!("layer {l}: rows, scales and biases disagree"));
        }
        if !layer.weight_scale.iter().all(|&s| s.is_finite() && s > 0.0)
            || layer.bias.iter().any(|b| !b.is_finite())
        {
            return Err(format!("layer {l}: non-finite scale or bias"));
        }
        for row in &layer.rows {
            let mut prev: Option<usize> = None;
            for &(j, w) in row {
                if j >= in_dim || prev.is_some_and(|p| p >= j) {
                    return Err(format!("layer {l}: a row's input indices are out of order"));
                }
                if w == 0 || w < -wmax || w >= wmax {
                    return Err(format!(
                        "layer {l}: weight {w} outside the {}-bit range",
                        q.n_w_bits
                    ));
                }
                prev = Some(j);
            }
        }
        if layer.activation.is_some() != (l + 1 < n) {
            return Err(format!("layer {l}: activation placement"));
        }
        in_dim = out;
    }
    let outputs = q.layers[n - 1].rows.len();
    match (&q.task, f.kind.as_str()) {
        (Task::Classify { classes }, KIND_CLASSIFIER)
            if classes.len() == outputs && outputs >= 2 =>
        {
            Ok(())
        }
        (Task::Regress, KIND_REGRESSOR) if outputs == 1 => Ok(()),
        _ => Err("task, kind and output count disagree".into()),
    }
}

/// A quantized MLP classifier (cross-entropy), Concrete ML's `NeuralNetClassifier` re-thought.
///
/// ```
/// use ndarray::Array2;
/// use sqnn::train::{EstimatorParams, NeuralNetClassifier};
/// // Two well separated blobs.
/// let x = Array2::from_shape_fn((40, 2), |(i, j)| (i % 2) as f64 * 4.0 + (i * 7 + j) as f64 % 3.0 * 0.1);
/// let y: Vec<usize> = (0..40).map(|i| i % 2).collect();
/// let mut clf = NeuralNetClassifier::new(EstimatorParams { epochs: 20, ..Default::default() })?;
/// clf.fit(&x, &y)?;
/// assert!(clf.score(&x, &y)? > 0.9);
/// # Ok::<(), sqnn::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct NeuralNetClassifier {
    params: EstimatorParams,
    module: Option<SparseQuantNeuralNetwork>,
    quantized: Option<QuantizedMlp>,
    feature_names: Option<Vec<String>>,
    data_name: Option<String>,
}

impl NeuralNetClassifier {
    /// Validates `params` ([`EstimatorParams::validate`]); the network is built at `fit`.
    pub fn new(params: EstimatorParams) -> Result<Self> {
        params.validate()?;
        Ok(NeuralNetClassifier {
            params,
            module: None,
            quantized: None,
            feature_names: None,
            data_name: None,
        })
    }

    /// The hyper-parameters.
    pub fn params(&self) -> &EstimatorParams {
        &self.params
    }

    /// Trains on raw features `x` (`n x d`, standardized internally with their statistics)
    /// and class indices `y` (`0..k`; the classes are named "0", "1", ...). Replaces any previous
    /// fit.
    ///
    /// Errors: [`Error::Input`] for an empty `x`, non-finite values, `y.len() != x.nrows()` or
    /// fewer than 2 classes; [`Error::InvalidParameter`] for a hidden width of 0.
    pub fn fit(&mut self, x: &Array2<f64>, y: &[usize]) -> Result<FitReport> {
        let k = y.iter().max().map_or(0, |m| m + 1);
        let classes = (0..k).map(|c| c.to_string()).collect();
        self.fit_named(x, y, classes, None)
    }

    /// Trains on a classification [`Dataset`], keeping its class and feature names.
    pub fn fit_dataset(&mut self, ds: &Dataset) -> Result<FitReport> {
        let (Some(labels), Task::Classify { classes }) = (ds.labels(), &ds.task) else {
            return Err(Error::Input(format!(
                "{}: is a regression data set; use NeuralNetRegressor",
                ds.name
            )));
        };
        let report = self.fit_named(
            &ds.x,
            &labels,
            classes.clone(),
            Some(ds.feature_names.clone()),
        )?;
        self.data_name = Some(ds.name.clone());
        Ok(report)
    }

    fn fit_named(
        &mut self,
        x: &Array2<f64>,
        y: &[usize],
        classes: Vec<String>,
        feature_names: Option<Vec<String>>,
    ) -> Result<FitReport> {
        check_x(x, "training features")?;
        if y.len() != x.nrows() {
            return Err(Error::Input(format!(
                "{} labels for {} rows of features; pass one label per row",
                y.len(),
                x.nrows()
            )));
        }
        if let Some(&bad) = y.iter().find(|&&l| l >= classes.len()) {
            return Err(Error::Input(format!(
                "label {bad} but only {} classes are named",
                classes.len()
            )));
        }
        let distinct = {
            let mut seen = vec![false; classes.len()];
            y.iter().for_each(|&l| seen[l] = true);
            seen.iter().filter(|&&s| s).count()
        };
        if classes.len() < 2 || distinct < 2 {
            return Err(Error::Input(format!(
                "the labels hold {distinct} distinct class(es); a classifier needs at least 2"
            )));
        }
        let fitted = fit_core(
            &self.params,
            x,
            Targets::Classes {
                labels: y,
                k: classes.len(),
            },
            Task::Classify { classes },
        )?;
        self.module = Some(fitted.module);
        self.quantized = Some(fitted.quantized);
        self.feature_names = feature_names;
        self.data_name = None;
        Ok(fitted.report)
    }

    /// Dequantized logits of the integer model, `n x n_classes`.
    pub fn decision_function(&self, x: &Array2<f64>) -> Result<Array2<f64>> {
        int_outputs(self.quantized.as_ref().ok_or_else(not_fitted)?, x)
    }

    /// Predicted class indices (argmax of the integer model's dequantized logits; ties go to
    /// the lower index).
    pub fn predict(&self, x: &Array2<f64>) -> Result<Vec<usize>> {
        let z = self.decision_function(x)?;
        Ok(z.rows().into_iter().map(argmax).collect())
    }

    /// Class probabilities: softmax of the integer model's dequantized logits.
    pub fn predict_proba(&self, x: &Array2<f64>) -> Result<Array2<f64>> {
        let mut z = self.decision_function(x)?;
        for mut row in z.rows_mut() {
            let m = row.iter().fold(f64::NEG_INFINITY, |a, &b| a.max(b));
            row.mapv_inplace(|v| (v - m).exp());
            let s = row.sum();
            row.mapv_inplace(|v| v / s);
        }
        Ok(z)
    }

    /// Accuracy of [`predict`](Self::predict) against `y`.
    pub fn score(&self, x: &Array2<f64>, y: &[usize]) -> Result<f64> {
        if y.len() != x.nrows() {
            return Err(Error::Input(format!(
                "{} labels for {} rows of features",
                y.len(),
                x.nrows()
            )));
        }
        let p = self.predict(x)?;
        Ok(p.iter().zip(y).filter(|(a, b)| a == b).count() as f64 / y.len().max(1) as f64)
    }

    /// The integer model (`None` before `fit`).
    pub fn quantized(&self) -> Option<&QuantizedMlp> {
        self.quantized.as_ref()
    }

    /// The trained float module (`None` before `fit` and after `load`: files hold the
    /// quantized model only).
    pub fn module(&self) -> Option<&SparseQuantNeuralNetwork> {
        self.module.as_ref()
    }

    /// Class names (`None` before `fit`).
    pub fn classes(&self) -> Option<&[String]> {
        match self.quantized.as_ref().map(|q| &q.task) {
            Some(Task::Classify { classes }) => Some(classes),
            _ => None,
        }
    }

    /// Feature names, when trained with [`fit_dataset`](Self::fit_dataset).
    pub fn feature_names(&self) -> Option<&[String]> {
        self.feature_names.as_deref()
    }

    /// The data set's name, when trained with [`fit_dataset`](Self::fit_dataset).
    pub fn data_name(&self) -> Option<&str> {
        self.data_name.as_deref()
    }

    /// Writes the versioned JSON model file (`{"format":"sqnn-model","version":1,...}`).
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        write_model(
            path.as_ref(),
            KIND_CLASSIFIER,
            &self.params,
            (&self.feature_names, &self.data_name),
            self.quantized.as_ref(),
        )
    }

    /// Reads a classifier written by [`save`](Self::save). Every problem (not JSON, another
    /// format or version, a regressor, inconsistent contents) is an [`Error::Model`] naming
    /// the file and the fix; a missing file is an [`Error::Io`].
    pub fn load(path: impl AsRef<Path>) -> Result<Self> {
        match Model::load(path.as_ref())? {
            Model::Classifier(c) => Ok(c),
            Model::Regressor(_) => Err(Error::Model(format!(
                "{}: is a regressor model; load it with NeuralNetRegressor::load or Model::load",
                path.as_ref().display()
            ))),
        }
    }
}

/// A quantized MLP regressor (MSE on the standardized target), Concrete ML's
/// `NeuralNetRegressor` re-thought.
#[derive(Clone, Debug)]
pub struct NeuralNetRegressor {
    params: EstimatorParams,
    module: Option<SparseQuantNeuralNetwork>,
    quantized: Option<QuantizedMlp>,
    feature_names: Option<Vec<String>>,
    data_name: Option<String>,
}

impl NeuralNetRegressor {
    /// Validates `params` ([`EstimatorParams::validate`]); the network is built at `fit`.
    pub fn new(params: EstimatorParams) -> Result<Self> {
        params.validate()?;
        Ok(NeuralNetRegressor {
            params,
            module: None,
            quantized: None,
            feature_names: None,
            data_name: None,
        })
    }

    /// The hyper-parameters.
    pub fn params(&self) -> &EstimatorParams {
        &self.params
    }

    /// Trains on raw features `x` and targets `y` (both standardized internally with their
    /// statistics). Replaces any previous fit.
    ///
    /// Errors: [`Error::Input`] for an empty `x`, non-finite values or `y.len() != x.nrows()`;
    /// [`Error::InvalidParameter`] for a hidden width of 0.
    pub fn fit(&mut self, x: &Array2<f64>, y: &[f64]) -> Result<FitReport> {
        self.fit_named(x, y, None)
    }

    /// Trains on a regression [`Dataset`], keeping its feature names.
    pub fn fit_dataset(&mut self, ds: &Dataset) -> Result<FitReport> {
        if ds.task != Task::Regress {
            return Err(Error::Input(format!(
                "{}: is a classification data set; use NeuralNetClassifier",
                ds.name
            )));
        }
        let report = self.fit_named(&ds.x, &ds.y, Some(ds.feature_names.clone()))?;
        self.data_name = Some(ds.name.clone());
        Ok(report)
    }

    fn fit_named(
        &mut self,
        x: &Array2<f64>,
        y: &[f64],
        feature_names: Option<Vec<String>>,
    ) -> Result<FitReport> {
        check_x(x, "training features")?;
        if y.len() != x.nrows() {
            return Err(Error::Input(format!(
                "{} targets for {} rows of features; pass one target per row",
                y.len(),
                x.nrows()
            )));
        }
        if let Some(i) = y.iter().position(|v| !v.is_finite()) {
            return Err(Error::Input(format!(
                "target {i} (0-based) is {}; targets must be finite",
                y[i]
            )));
        }
        let fitted = fit_core(&self.params, x, Targets::Values(y.to_vec()), Task::Regress)?;
        self.module = Some(fitted.module);
        self.quantized = Some(fitted.quantized);
        self.feature_names = feature_names;
        self.data_name = None;
        Ok(fitted.report)
    }

    /// Predictions of the integer model, de-standardized.
    pub fn predict(&self, x: &Array2<f64>) -> Result<Vec<f64>> {
        let z = int_outputs(self.quantized.as_ref().ok_or_else(not_fitted)?, x)?;
        Ok(z.column(0).to_vec())
    }

    /// R² of [`predict`](Self::predict) against `y`.
    pub fn score(&self, x: &Array2<f64>, y: &[f64]) -> Result<f64> {
        if y.len() != x.nrows() {
            return Err(Error::Input(format!(
                "{} targets for {} rows of features",
                y.len(),
                x.nrows()
            )));
        }
        Ok(r2(&self.predict(x)?, y))
    }

    /// The integer model (`None` before `fit`).
    pub fn quantized(&self) -> Option<&QuantizedMlp> {
        self.quantized.as_ref()
    }

    /// The trained float module (`None` before `fit` and after `load`).
    pub fn module(&self) -> Option<&SparseQuantNeuralNetwork> {
        self.module.as_ref()
    }

    /// Feature names, when trained with [`fit_dataset`](Self::fit_dataset).
    pub fn feature_names(&self) -> Option<&[String]> {
        self.feature_names.as_deref()
    }

    /// The data set's name, when trained with [`fit_dataset`](Self::fit_dataset).
    pub fn data_name(&self) -> Option<&str> {
        self.data_name.as_deref()
    }

    /// Writes the versioned JSON model file.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        write_model(
            path.as_ref(),
            KIND_REGRESSOR,
            &self.params,
            (&self.feature_names, &self.data_name),
            self.quantized.as_ref(),
        )
    }

    /// Reads a regressor written by [`save`](Self::save); errors as
    /// [`NeuralNetClassifier::load`].
    pub fn load(path: impl AsRef<Path>) -> Result<Self> {
        match Model::load(path.as_ref())? {
            Model::Regressor(r) => Ok(r),
            Model::Classifier(_) => Err(Error::Model(format!(
                "{}: is a classifier model; load it with NeuralNetClassifier::load or Model::load",
                path.as_ref().display()
            ))),
        }
    }
}

/// Either estimator, as read from a model file whose kind is not known in advance.
#[derive(Clone, Debug)]
pub enum Model {
    /// A [`NeuralNetClassifier`].
    Classifier(NeuralNetClassifier),
    /// A [`NeuralNetRegressor`].
    Regressor(NeuralNetRegressor),
}

impl Model {
    /// Reads any sqnn model file; see [`NeuralNetClassifier::load`] for the errors.
    pub fn load(path: impl AsRef<Path>) -> Result<Model> {
        let f = read_model(path.as_ref())?;
        Ok(if f.kind == KIND_CLASSIFIER {
            Model::Classifier(NeuralNetClassifier {
                params: f.params,
                module: None,
                quantized: Some(f.model),
                feature_names: f.feature_names,
                data_name: f.data_name,
            })
        } else {
            Model::Regressor(NeuralNetRegressor {
                params: f.params,
                module: None,
                quantized: Some(f.model),
                feature_names: f.feature_names,
                data_name: f.data_name,
            })
        })
    }

    /// Writes the model file.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        match self {
            Model::Classifier(c) => c.save(path),
            Model::Regressor(r) => r.save(path),
        }
    }

    /// The integer model.
    ///
    /// # Panics
    /// If the wrapped estimator was never fitted (a `Model` from [`Model::load`] always is).
    pub fn quantized(&self) -> &QuantizedMlp {
        let q = match self {
            Model::Classifier(c) => c.quantized(),
            Model::Regressor(r) => r.quantized(),
        };
        q.expect("Model wraps a fitted estimator")
    }

    /// The name of the data set the model was trained on ([`Dataset::name`] with `fit_dataset`),
    /// or `"model"` when trained on bare arrays.
    pub fn data_name(&self) -> &str {
        let n = match self {
            Model::Classifier(c) => c.data_name.as_deref(),
            Model::Regressor(r) => r.data_name.as_deref(),
        };
        n.unwrap_or("model")
    }

    /// The pruning mode's name (`per_neuron` or `layer_global`).
    pub fn pruning_name(&self) -> &'static str {
        self.params().pruning.name()
    }

    /// The hyper-parameters.
    pub fn params(&self) -> &EstimatorParams {
        match self {
            Model::Classifier(c) => c.params(),
            Model::Regressor(r) => r.params(),
        }
    }

    /// Feature names, if known.
    pub fn feature_names(&self) -> Option<&[String]> {
        match self {
            Model::Classifier(c) => c.feature_names(),
            Model::Regressor(r) => r.feature_names(),
        }
    }

    /// Predictions as numbers: the class index (as `f64`) or the regression value.
    pub fn predict(&self, x: &Array2<f64>) -> Result<Vec<f64>> {
        match self {
            Model::Classifier(c) => Ok(c.predict(x)?.into_iter().map(|k| k as f64).collect()),
            Model::Regressor(r) => r.predict(x),
        }
    }

    /// Accuracy (classifier; `y` holds class indices as `f64`) or R² (regressor).
    pub fn score(&self, x: &Array2<f64>, y: &[f64]) -> Result<f64> {
        match self {
            Model::Classifier(c) => {
                let labels: Vec<usize> = y.iter().map(|&v| v as usize).collect();
                c.score(x, &labels)
            }
            Model::Regressor(r) => r.score(x, y),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_split_is_stratified_and_seeded() {
        let labels: Vec<usize> = (0..50).map(|i| usize::from(i >= 40)).collect();
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let (t, v) = validation_split(50, Some(&labels), 0.2, &mut rng);
        assert_eq!(t.len() + v.len(), 50);
        assert_eq!(v.iter().filter(|&&i| labels[i] == 1).count(), 2);
        assert_eq!(v.iter().filter(|&&i| labels[i] == 0).count(), 8);
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        assert_eq!(validation_split(50, Some(&labels), 0.2, &mut rng).1, v);
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let (t, v) = validation_split(10, None, 0.0, &mut rng);
        assert_eq!((t.len(), v.len()), (10, 0));
    }

    #[test]
    fn losses_and_gradients() {
        let z = Array2::from_shape_vec((2, 2), vec![0.0, 0.0, 1.0, -1.0]).unwrap();
        let (l, g) = cross_entropy(&z, &[0, 1]);
        let expect = (2f64.ln() + (1.0 + 2f64.exp()).ln()) / 2.0;
        assert!((l - expect).abs() < 1e-12);
        assert!((g[[0, 0]] + 0.25).abs() < 1e-12);
        let z = Array2::from_shape_vec((2, 1), vec![1.0, 3.0]).unwrap();
        let (l, g) = mse(&z, &[0.0, 1.0]);
        assert!((l - 2.5).abs() < 1e-12);
        assert_eq!(g[[1, 0]], 2.0);
        assert!((r2(&[1.0, 2.0, 3.0], &[1.0, 2.0, 3.0]) - 1.0).abs() < 1e-12);
    }

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
