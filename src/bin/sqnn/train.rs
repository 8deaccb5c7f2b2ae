//! `sqnn train`: module flags named after Concrete ML's constructor, in kebab case.

use std::path::{Path, PathBuf};

use clap::builder::{EnumValueParser, TypedValueParser};
use clap::{Args, ValueEnum};
use serde_json::json;

use sqnn::analyze::analyze;
use sqnn::data::Dataset;
use sqnn::fhe::{FheMode, ParamSetId, PlanFacts, PlanRequest};
use sqnn::progress::{NoProgress, Progress};
use sqnn::train::quantize::Activation;
use sqnn::train::{
    ActRange, Distill, EstimatorParams, ImageShifts, InputScaling, Model, PruningMode,
    DISTILL_TEMPERATURE, DISTILL_WEIGHT,
};
use sqnn::Result;

use crate::args::{load_split, SplitArgs};
use crate::progress::Bar;

/// `sqnn train` arguments. Every module flag defaults to sqnn's defaults
/// (`EstimatorParams::default()`), or to Concrete ML 1.9's with `--preset concrete-ml`.
#[derive(Args, Clone)]
pub struct TrainArgs {
    /// Built-in data set (iris, breast_cancer, diabetes, mnist) or a CSV file with a header row.
    #[arg(long)]
    pub data: String,
    /// Where to write the model file.
    #[arg(long)]
    pub out: PathBuf,
    /// Start from these defaults: `sqnn` (Concrete ML's 4/4-bit network with per-neuron
    /// pruning to 10-bit accumulators, read by one cheap approximate bootstrap), `fast-fhe`
    /// (the same with power-of-two scales) or `concrete-ml` (its 1.9 defaults: 4/4 bits, 3
    /// layers, multiplier 4, layer-global pruning).
    #[arg(long, default_value = "sqnn")]
    pub preset: String,
    /// Number of linear layers.
    #[arg(long)]
    pub n_layers: Option<usize>,
    /// Hidden width = input features × this (fractions allowed).
    #[arg(long)]
    pub n_hidden_neurons_multiplier: Option<f64>,
    /// Weight bits (signed, symmetric).
    #[arg(long)]
    pub n_w_bits: Option<u32>,
    /// Activation bits.
    #[arg(long)]
    pub n_a_bits: Option<u32>,
    /// Bits of the first layer's input quantizer (the encrypted features), at most
    /// --n-a-bits (default: the same): e.g. 2 for MNIST's pixels, whose narrower span lets an
    /// accumulator-aware first layer keep more weights in the same accumulator budget.
    #[arg(long)]
    pub n_input_bits: Option<u32>,
    /// Accumulator budget: every neuron's worst case must fit this many bits.
    #[arg(long)]
    pub n_accum_bits: Option<u32>,
    /// Fraction of hidden neurons removed by structured pruning (by L2 norm).
    #[arg(long)]
    pub n_prune_neurons_percentage: Option<f64>,
    /// Activation function.
    #[arg(long, value_parser = EnumValueParser::<ActivationArg>::new().map(Activation::from))]
    pub activation: Option<Activation>,
    /// Narrow quantization ranges (symmetric: -(2^(b-1)-1) .. 2^(b-1)-1).
    #[arg(long, num_args = 0..=1, default_missing_value = "true")]
    pub quant_narrow: Option<bool>,
    /// Signed activation quantization.
    #[arg(long, num_args = 0..=1, default_missing_value = "true")]
    pub quant_signed: Option<bool>,
    /// Power-of-two quantization scales.
    #[arg(long, num_args = 0..=1, default_missing_value = "true")]
    pub power_of_two_scaling: Option<bool>,
    /// Per-neuron weight scales (free in FHE: each neuron has its own table).
    #[arg(long, num_args = 0..=1, default_missing_value = "true")]
    pub per_channel: Option<bool>,
    /// Pruning: per-neuron (at most Ω weights per neuron: every accumulator bounded),
    /// accumulator-aware (every neuron keeps weights while its proved interval fits
    /// n_accum_bits: more than Ω, still bounded) or layer-global (Concrete ML's, unbounded).
    #[arg(long, value_parser = EnumValueParser::<PruningArg>::new().map(PruningMode::from))]
    pub pruning: Option<PruningMode>,
    /// How raw features are scaled before the input quantizer (client side): `min-max` maps
    /// each feature's training range onto [-1, 1], `unit-range` onto [0, 2] (the minimum at 0:
    /// images whose background is the minimum, MNIST), `standardize` is (x - mean) / std.
    #[arg(long, value_parser = EnumValueParser::<InputScalingArg>::new().map(InputScaling::from))]
    pub input_scaling: Option<InputScaling>,
    /// Decoupled (AdamW) weight decay of the weights (0 = plain Adam).
    #[arg(long)]
    pub weight_decay: Option<f64>,
    /// Training epochs.
    #[arg(long)]
    pub epochs: Option<usize>,
    /// Adam learning rate.
    #[arg(long)]
    pub lr: Option<f64>,
    /// Mini-batch size.
    #[arg(long)]
    pub batch_size: Option<usize>,
    /// Seed of initialization, shuffling and the validation split (not of the test split).
    #[arg(long)]
    pub train_seed: Option<u64>,
    /// How activation ranges are set: `learned` (trained step size), `minmax`, `mse`, or
    /// `percentile:P` (clip to the (100-P)th..Pth percentiles, P in (50, 100]).
    #[arg(long, value_parser = parse_act_range)]
    pub act_range: Option<ActRange>,
    /// Fraction of the training rows held out to pick the best epoch and restart (0, the
    /// default: train on all rows and keep the last epoch).
    #[arg(long)]
    pub validation_fraction: Option<f64>,
    /// Independent trainings from different seeds; the best on validation is kept (needs
    /// --validation-fraction > 0, otherwise one run).
    #[arg(long)]
    pub restarts: Option<usize>,
    /// Noise-aware training: add to every hidden neuron's accumulator, during training, the
    /// read error of this TFHE parameter set's approximate bootstrap (a `tfhe` constant name,
    /// as `--parameters`), or `auto`: the set the planner takes by latency and failure target
    /// alone for the model trained without noise (one extra training), the bootstrap you pay
    /// for; `off`: exact reads. Default: auto (the `sqnn` and `fast-fhe` presets), off
    /// (`concrete-ml`, and a network without hidden layer).
    #[arg(long)]
    pub noise_aware: Option<String>,
    /// With --noise-aware: multiply the injected noise's standard deviation by this (1: the
    /// predicted noise).
    #[arg(long)]
    pub noise_scale: Option<f64>,
    /// Remove hidden neurons that do not pay for their bootstrap: halfway through training,
    /// each is tried out (least salient first) and stays out if the score on the validation
    /// rows (the training rows without --validation-fraction) drops by at most this (accuracy
    /// share or R²); the rest fine-tune. 0 keeps the score; `off` keeps every neuron. Default:
    /// 0.003 (the `sqnn` and `fast-fhe` presets), off (`concrete-ml`).
    #[arg(long, value_parser = parse_removal)]
    pub remove_neurons: Option<Removal>,
    /// Shift augmentation for image rows: `WIDTHxHEIGHT` (pixels, row-major; 28x28 for MNIST)
    /// or `WIDTHxHEIGHT:SHIFT`. Every epoch each training row is shifted by a random offset of
    /// up to SHIFT pixels (default 1) per axis.
    #[arg(long)]
    pub shift_augment: Option<ImageShifts>,
    #[command(flatten)]
    pub distill: DistillArgs,
    /// Print one JSON object as the last line of standard output.
    #[arg(long)]
    pub json: bool,
    /// Hide the progress bar.
    #[arg(long)]
    pub quiet: bool,
    #[command(flatten)]
    pub split: SplitArgs,
}

impl TrainArgs {
    /// The demo's arguments: the defaults on a built-in data set.
    pub fn defaults_for(data: &str, out: &Path) -> TrainArgs {
        TrainArgs {
            data: data.to_string(),
            out: out.to_path_buf(),
            preset: "sqnn".into(),
            n_layers: None,
            n_hidden_neurons_multiplier: None,
            n_w_bits: None,
            n_a_bits: None,
            n_input_bits: None,
            n_accum_bits: None,
            n_prune_neurons_percentage: None,
            activation: None,
            quant_narrow: None,
            quant_signed: None,
            power_of_two_scaling: None,
            per_channel: None,
            pruning: None,
            input_scaling: None,
            weight_decay: None,
            epochs: None,
            lr: None,
            batch_size: None,
            train_seed: None,
            validation_fraction: None,
            restarts: None,
            act_range: None,
            noise_aware: None,
            noise_scale: None,
            remove_neurons: None,
            shift_augment: None,
            distill: DistillArgs::default(),
            json: false,
            quiet: false,
            split: SplitArgs {
                test_size: None,
                seed: None,
                split: "auto".into(),
                target: None,
                task: None,
            },
        }
    }

    /// The noise-aware training these flags ask for: a set's name, `auto`, or `None` (off).
    /// Without `--noise-aware`, the `sqnn` and `fast-fhe` presets train for the set their plan
    /// takes (`auto`; a network without hidden layer has no read to train for) and
    /// `concrete-ml` without noise.
    pub fn noise_aware(&self) -> Option<&str> {
        match self.noise_aware.as_deref().map(str::trim) {
            Some("off") => None,
            Some(name) => Some(name),
            None if self.preset.starts_with("concrete") => None,
            None if self.n_layers == Some(1) => None,
            None => Some("auto"),
        }
    }

    /// The estimator parameters these flags ask for: the preset, with every given flag
    /// overriding its field.
    pub fn params(&self) -> Result<EstimatorParams> {
        let mut p = EstimatorParams::preset(&self.preset)?;
        macro_rules! set {
            ($($field:ident <- $flag:ident),* $(,)?) => {
                $(if let Some(v) = self.$flag { p.$field = v; })*
            };
        }
        set!(
            n_layers <- n_layers,
            n_hidden_neurons_multiplier <- n_hidden_neurons_multiplier,
            n_w_bits <- n_w_bits,
            n_a_bits <- n_a_bits,
            n_accum_bits <- n_accum_bits,
            n_prune_neurons_percentage <- n_prune_neurons_percentage,
            activation_function <- activation,
            quant_narrow <- quant_narrow,
            quant_signed <- quant_signed,
            power_of_two_scaling <- power_of_two_scaling,
            per_channel <- per_channel,
            pruning <- pruning,
            input_scaling <- input_scaling,
            weight_decay <- weight_decay,
            epochs <- epochs,
            lr <- lr,
            batch_size <- batch_size,
            seed <- train_seed,
            validation_fraction <- validation_fraction,
            restarts <- restarts,
            act_range <- act_range,
        );
        if self.n_input_bits.is_some() {
            p.n_input_bits = self.n_input_bits;
        }
        if let Some(Removal(r)) = self.remove_neurons {
            p.remove_neurons = r;
        }
        if self.shift_augment.is_some() {
            p.shift_augment = self.shift_augment;
        }
        p.distill = self.distill.distill()?;
        if let Some(name) = self.noise_aware().filter(|n| *n != "auto") {
            let set = name.parse::<ParamSetId>().map_err(|_| {
                let names: Vec<&str> = ParamSetId::ALL.iter().map(|id| id.name()).collect();
                sqnn::Error::param(
                    "read_noise",
                    format!(
                        "{name:?} is not a parameter set: use auto, off or one of {}",
                        names.join(", ")
                    ),
                )
            })?;
            p.read_noise = Some(set.set().read_noise());
        }
        if let Some(scale) = self.noise_scale {
            match &mut p.read_noise {
                Some(n) => n.scale = scale,
                None if self.noise_aware().is_none() => {
                    return Err(sqnn::Error::param(
                        "noise_scale",
                        "scales the noise of noise-aware training, which is off: give \
                         --noise-aware SET|auto too",
                    ))
                }
                None => {}
            }
        }
        p.validate()?;
        Ok(p)
    }
}

/// Knowledge distillation's flags (`train` and `tune`).
#[derive(Args, Clone, Default)]
pub struct DistillArgs {
    /// Knowledge distillation: a sqnn classifier's model file trained on the same data and
    /// split (typically wider, with more bits). The loss mixes the labels' cross-entropy with
    /// the teacher's soft targets (its logits in the clear, on the rows the student sees).
    /// With `tune`, the teacher has seen the validation folds' labels: the folds' scores of
    /// distilled candidates are optimistic (the test rows stay unseen).
    #[arg(long)]
    pub distill_from: Option<PathBuf>,
    /// With --distill-from: softmax temperature of the teacher's soft targets (default 3).
    #[arg(long)]
    pub distill_temperature: Option<f64>,
    /// With --distill-from: share of the teacher's term in the loss, in [0, 1] (default 0.7).
    #[arg(long)]
    pub distill_weight: Option<f64>,
}

impl DistillArgs {
    /// The distillation these flags ask for.
    pub fn distill(&self) -> Result<Option<Distill>> {
        match &self.distill_from {
            Some(path) => Ok(Some(Distill::from_file(
                path,
                self.distill_temperature.unwrap_or(DISTILL_TEMPERATURE),
                self.distill_weight.unwrap_or(DISTILL_WEIGHT),
            )?)),
            None if self.distill_temperature.is_some() || self.distill_weight.is_some() => {
                Err(sqnn::Error::param(
                    "distill",
                    "--distill-temperature and --distill-weight tune distillation: give the \
                     teacher with --distill-from MODEL too",
                ))
            }
            None => Ok(None),
        }
    }
}

/// Counts weights: (all connections of the dense layers, non-zero ones kept).
fn weight_counts(model: &Model) -> (usize, usize) {
    let q = model.quantized();
    let dense: usize = q
        .layers
        .iter()
        .map(|l| l.in_dim * l.out_dim() + l.out_dim())
        .sum();
    let nz: usize = q
        .layers
        .iter()
        .map(|l| l.rows.iter().map(Vec::len).sum::<usize>())
        .sum();
    (dense, nz)
}

/// Trains, prints metrics, saves the model. Returns the model.
pub fn train(a: &TrainArgs) -> Result<Model> {
    let mut params = a.params()?;
    let split_file = match a.split.spec() {
        sqnn::data::SplitSpec::File(p) => Some(p),
        _ => None,
    };
    let data_file =
        (!sqnn::Dataset::BUILTIN.contains(&a.data.as_str())).then(|| Path::new(&a.data));
    let teacher = a.distill.distill_from.as_deref();
    let inputs: Vec<&Path> = [data_file, split_file.as_deref(), teacher]
        .into_iter()
        .flatten()
        .collect();
    sqnn::fsio::check_output(&a.out, "out", &inputs)?;
    let (ds, split) = load_split(&a.data, &a.split)?;
    // Checked before `--noise-aware auto`'s first training, whose failure message would
    // otherwise carry it.
    if let Some(shifts) = params.shift_augment {
        shifts.validate(ds.n_features())?;
    }
    let train = ds.subset(&split.train);
    let test = ds.subset(&split.test);
    let omega = params.max_active_neurons();
    if !a.json {
        println!(
            "training on {} ({} train / {} test samples, {} features): {} layers, {}/{}/{} bits (w/a/accum), Ω = {omega} per neuron, {} pruning",
            ds.name,
            train.n_samples(),
            test.n_samples(),
            ds.n_features(),
            params.n_layers,
            params.n_w_bits,
            params.n_a_bits,
            params.n_accum_bits,
            params.pruning.name()
        );
    }
    let bar = Bar::new();
    let progress: &dyn Progress = if a.quiet || a.json { &NoProgress } else { &bar };
    if a.noise_aware() == Some("auto") && params.n_layers > 1 {
        let set = auto_noise_set(&params, &train, &ds.name, progress).map_err(|e| match e {
            // Broken input is said as it is: it is not the noise-aware choice's doing.
            e @ (sqnn::Error::InvalidParameter { .. }
            | sqnn::Error::Data { .. }
            | sqnn::Error::Input(_)
            | sqnn::Error::Io { .. }) => e,
            e => sqnn::Error::Model(format!(
                "not writing {}: `--noise-aware auto` could not plan the model trained without \
                 noise ({e}); give --noise-aware SET or off, or train again (a NaN or infinite \
                 value usually means the learning rate is too high)",
                a.out.display()
            )),
        })?;
        let mut noise = set.set().read_noise();
        noise.scale = a.noise_scale.unwrap_or(1.0);
        params.read_noise = Some(noise);
        if !a.json {
            println!("noise-aware: the planner takes {set} for the model trained without noise");
        }
    }
    let rows = sqnn::data::TrainingRows::new(&ds, &a.split.spec(), &split);
    if let Some(d) = &params.distill {
        d.check_rows(&rows)?;
        if !a.json {
            println!(
                "distilling from {} (temperature {}, weight {})",
                d.teacher_path, d.temperature, d.weight
            );
        }
    }
    let (mut model, fit) = Model::fit(params.clone(), &train, progress)?;
    model.set_training_rows(Some(rows));
    model.save(&a.out)?;
    let (n_params, nonzero) = weight_counts(&model);
    let graph = sqnn::lower::lower(model.quantized(), &ds.name, model.params().pruning)?;
    let report = analyze(graph)?.report().clone();
    let mut out = json!({
        "data": ds.name,
        "n_params": n_params,
        "nonzero_weights": nonzero,
        "max_active_neurons": omega,
        "train_seconds": fit.seconds,
        "epochs": fit.epochs_run,
        "best_epoch": fit.best_epoch,
        "max_range_bits": report.max_range_bits,
        "n_accum_bits": report.n_accum_bits,
        "neurons_over_budget": report.neurons_over_budget.len(),
        "pbs_count": report.pbs_count,
        "noise_aware": params.read_noise.as_ref().map(|n| n.set.clone()),
        "neurons_removed": fit.neurons_removed,
        "validation_score": fit.val_score.get(fit.best_epoch),
        "distill": params.distill.as_ref().map(|d| json!({
            "teacher": d.teacher_path,
            "teacher_sha256": d.teacher_sha256,
            "temperature": d.temperature,
            "weight": d.weight,
        })),
        "model": a.out.display().to_string(),
    });
    match &model {
        Model::Classifier(_) => {
            let tr = model.score(&train.x, &train.y)?;
            let te = model.score(&test.x, &test.y)?;
            out["train_accuracy"] = json!(tr);
            out["test_accuracy"] = json!(te);
            if !a.json {
                println!(
                    "train accuracy {tr:.4}, test accuracy {te:.4} (quantized model, in clear)"
                );
            }
        }
        Model::Regressor(_) => {
            let tr = model.score(&train.x, &train.y)?;
            let te = model.score(&test.x, &test.y)?;
            let pred = model.predict(&test.x)?;
            let mse = pred
                .iter()
                .zip(&test.y)
                .map(|(p, t)| (p - t).powi(2))
                .sum::<f64>()
                / test.n_samples().max(1) as f64;
            out["train_r2"] = json!(tr);
            out["test_r2"] = json!(te);
            out["test_mse"] = json!(mse);
            if !a.json {
                println!("train R² {tr:.4}, test R² {te:.4}, test MSE {mse:.2} (quantized model, in clear)");
            }
        }
    }
    if a.json {
        println!("{out}");
    } else {
        println!(
            "{nonzero} of {n_params} weights kept; widest accumulator {} bits of {} ({} over budget); {} PBS per sample; trained in {:.2} s ({} epochs, best {})",
            report.max_range_bits,
            report.n_accum_bits,
            report.neurons_over_budget.len(),
            report.pbs_count,
            fit.seconds,
            fit.epochs_run,
            fit.best_epoch
        );
        println!("wrote {}", a.out.display());
    }
    Ok(model)
}

/// `--noise-aware auto`: the set the planner takes by latency and failure target alone
/// (approximate reads, 2^-40, this machine's cost profile or the built-in figures) for the model `params` trains without
/// noise on `train`.
fn auto_noise_set(
    params: &EstimatorParams,
    train: &Dataset,
    name: &str,
    progress: &dyn Progress,
) -> Result<ParamSetId> {
    let plain = EstimatorParams {
        read_noise: None,
        ..params.clone()
    };
    let (model, _) = Model::fit(plain, train, progress)?;
    let graph = sqnn::lower::lower(model.quantized(), name, model.params().pruning)?;
    let an = analyze(graph)?;
    let base = PlanRequest::new(FheMode::Approximate);
    let req = match crate::args::cost_profile() {
        Some(p) => base.profile(p),
        None => base.cores(sqnn::fhe::builtin_cores()),
    };
    Ok(sqnn::fhe::plan(&PlanFacts::new(&an), &req)?.parameter_set)
}

/// A `--remove-neurons` value: `off` (`None`) or a tolerance.
#[derive(Clone, Copy, Debug)]
pub struct Removal(pub Option<f64>);

/// Parses a `--remove-neurons` value (`train`'s, and each of `tune`'s): `off` or a tolerance
/// (checked against the range with the other parameters).
pub fn parse_removal(s: &str) -> std::result::Result<Removal, String> {
    match s.trim() {
        "off" => Ok(Removal(None)),
        t => t.parse::<f64>().map(|v| Removal(Some(v))).map_err(|_| {
            format!("`{t}` is neither `off` nor a tolerance such as 0.003 (0 keeps the score)")
        }),
    }
}

/// Parses `--act-range` ([`ActRange`]'s `FromStr`).
fn parse_act_range(s: &str) -> std::result::Result<ActRange, String> {
    s.parse().map_err(|e| match e {
        sqnn::Error::InvalidParameter { message, .. } => message,
        other => other.to_string(),
    })
}

/// `--activation` values ([`Activation`]).
#[derive(Clone, Copy, ValueEnum)]
pub enum ActivationArg {
    /// max(0, x)
    Relu,
    /// min(max(0, x), 6)
    Relu6,
    /// x if x > 0 else 0.01 x
    LeakyRelu,
    /// 1 / (1 + e^-x)
    Sigmoid,
    /// tanh(x)
    Tanh,
    /// Scaled exponential linear unit.
    Selu,
    /// Gaussian error linear unit (tanh approximation, as PyTorch's `approximate="tanh"`).
    Gelu,
    /// x
    Identity,
}

impl From<ActivationArg> for Activation {
    fn from(a: ActivationArg) -> Activation {
        match a {
            ActivationArg::Relu => Activation::Relu,
            ActivationArg::Relu6 => Activation::Relu6,
            ActivationArg::LeakyRelu => Activation::LeakyRelu,
            ActivationArg::Sigmoid => Activation::Sigmoid,
            ActivationArg::Tanh => Activation::Tanh,
            ActivationArg::Selu => Activation::Selu,
            ActivationArg::Gelu => Activation::Gelu,
            ActivationArg::Identity => Activation::Identity,
        }
    }
}

/// `--pruning` values ([`PruningMode`]).
#[derive(Clone, Copy, ValueEnum)]
pub enum PruningArg {
    /// Every output neuron keeps at most Ω = `max_active_neurons` non-zero weights (largest
    /// `|w|`): each neuron's accumulator provably fits `n_accum_bits`.
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

impl From<PruningArg> for PruningMode {
    fn from(a: PruningArg) -> PruningMode {
        match a {
            PruningArg::PerNeuron => PruningMode::PerNeuron,
            PruningArg::LayerGlobal => PruningMode::LayerGlobal,
            PruningArg::AccumulatorAware => PruningMode::AccumulatorAware,
        }
    }
}

/// `--input-scaling` values ([`InputScaling`]).
#[derive(Clone, Copy, ValueEnum)]
pub enum InputScalingArg {
    /// `(x - mean) / std` (scikit-learn's `StandardScaler`).
    Standardize,
    /// Each feature's training range `[min, max]` onto `[-1, 1]`: every feature spans the
    /// whole input quantizer, instead of only the part its standardized range covers.
    MinMax,
    /// Each feature's training range `[min, max]` onto `[0, 2]`: a feature at its minimum
    /// (an image's background) is 0 and adds nothing to a neuron, so it cannot push every
    /// neuron's input below 0 together during training (dead ReLUs).
    UnitRange,
}

impl From<InputScalingArg> for InputScaling {
    fn from(a: InputScalingArg) -> InputScaling {
        match a {
            InputScalingArg::Standardize => InputScaling::Standardize,
            InputScalingArg::MinMax => InputScaling::MinMax,
            InputScalingArg::UnitRange => InputScaling::UnitRange,
        }
    }
}
