//! `sqnn tune`: the accuracy-versus-latency front of a data set, its recommended model.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::builder::{EnumValueParser, TypedValueParser};
use clap::{Args, ValueEnum};
use serde_json::{json, Value};

use sqnn::fhe::ParamSetId;
use sqnn::progress::{NoProgress, Progress};
use sqnn::train::quantize::Activation;
use sqnn::train::{ImageShifts, InputScaling};
use sqnn::tune::{self, Assessment, Folds, Point, Refit, SearchSpace, TuneReport, TuneRequest};
use sqnn::{Dataset, Error, EstimatorParams, PruningMode, Result};

use crate::args::{load_split, SplitArgs};
use crate::progress::Bar;
use crate::train::{ActivationArg, InputScalingArg, PruningArg};

/// `sqnn tune` arguments.
#[derive(Args)]
pub struct TuneArgs {
    /// Built-in data set (iris, breast_cancer, diabetes, mnist) or a CSV file with a header row.
    #[arg(long)]
    pub data: String,
    /// Wall-clock budget of the search, seconds (checked between candidates; the refit of the
    /// front and the test scores come after it).
    #[arg(long, default_value_t = 300.0)]
    pub budget: f64,
    /// Judge at most this many candidates.
    #[arg(long)]
    pub max_candidates: Option<usize>,
    /// Write the recommended model here (for `sqnn compile`).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Draw the front as an SVG picture here.
    #[arg(long)]
    pub svg: Option<PathBuf>,
    /// The recommended point is the fastest whose validation accuracy (or R²) is at most this
    /// much below the best.
    #[arg(long, default_value_t = TuneRequest::DEFAULT_TOLERANCE)]
    pub tolerance: f64,
    /// Widen the tolerance to this many standard errors of the best point's validation score
    /// when that is more (1: the one-standard-error rule; small training sets, regression).
    #[arg(long, default_value_t = 0.0)]
    pub tolerance_se: f64,
    /// Validation folds held out in turn, of 5 cut from the training rows (5: cross-validation,
    /// 1: one hold-out fifth; default 5 up to 2,000 training rows, else 1).
    #[arg(long)]
    pub folds: Option<usize>,
    /// Cuts of the training rows into folds, each with its own training seed (default 3 up to
    /// 300 training rows, and for a regression up to 2,000; else 1).
    #[arg(long)]
    pub repeats: Option<usize>,
    /// Noise seeds of the simulated reads per point.
    #[arg(long, default_value_t = TuneRequest::DEFAULT_NOISE_SEEDS)]
    pub noise_seeds: u64,
    /// Only these parameter sets (comma-separated `tfhe` constant names; default: every
    /// selectable 2^-128 set).
    #[arg(long, value_delimiter = ',')]
    pub parameters: Vec<String>,
    /// Target probability per bootstrap of a read past a table's margin, as log2.
    #[arg(long, default_value_t = -40.0, allow_negative_numbers = true)]
    pub p_error: f64,
    /// Training epochs of every candidate.
    #[arg(long)]
    pub epochs: Option<usize>,
    /// Shift augmentation of every candidate's training rows (images): `WIDTHxHEIGHT[:SHIFT]`,
    /// as `sqnn train --shift-augment` (28x28 for MNIST).
    #[arg(long)]
    pub shift_augment: Option<ImageShifts>,
    /// Knowledge distillation of every candidate and of the refits, as `sqnn train`'s.
    #[command(flatten)]
    pub distill: crate::train::DistillArgs,
    /// Activation function of every candidate's hidden layers (default relu; gelu for a
    /// regression).
    #[arg(long, value_parser = EnumValueParser::<ActivationArg>::new().map(Activation::from))]
    pub activation: Option<Activation>,
    /// Decoupled (AdamW) weight decay of every candidate (default 0.1; 0.3 for a regression;
    /// 0 = plain Adam).
    #[arg(long)]
    pub weight_decay: Option<f64>,
    /// How every candidate's raw features are scaled (client side), as `sqnn train
    /// --input-scaling` (default min-max; unit-range for images whose background is the
    /// minimum, MNIST).
    #[arg(long, value_parser = EnumValueParser::<InputScalingArg>::new().map(InputScaling::from))]
    pub input_scaling: Option<InputScaling>,
    /// Bits of every candidate's first-layer input quantizer, as `sqnn train --n-input-bits`
    /// (at most each candidate's activation bits; default: the same as them).
    #[arg(long)]
    pub n_input_bits: Option<u32>,
    /// Seed of training, of the validation folds and of the order among equally cheap
    /// candidates.
    #[arg(long)]
    pub train_seed: Option<u64>,
    /// Which front points are trained again on all training rows and scored on the test rows
    /// (information only, after the choice): the whole front or the recommended point.
    #[arg(long, value_enum, default_value_t = RefitArg::Front)]
    pub refit: RefitArg,
    /// Print one JSON object as the last line of standard output.
    #[arg(long)]
    pub json: bool,
    /// Hide the progress bar.
    #[arg(long)]
    pub quiet: bool,
    /// The search space's layer counts (comma-separated, e.g. `2`; default 1,2,3: 1 is a
    /// linear model, no bootstrap).
    #[arg(long, value_delimiter = ',')]
    pub n_layers: Vec<usize>,
    /// Its hidden widths over input features (comma-separated, e.g. `0.125,0.25,0.5`; default
    /// 0.25 to 8, those that give 4 to 800 neurons).
    #[arg(long, value_delimiter = ',')]
    pub n_hidden_neurons_multiplier: Vec<f64>,
    /// Its weight/activation bits (comma-separated `W/A` pairs, e.g. `3/3,4/4`; the default).
    #[arg(long, value_delimiter = ',')]
    pub bits: Vec<String>,
    /// Its accumulator budgets (comma-separated, e.g. `10,11,12`; default 8 to 13).
    #[arg(long, value_delimiter = ',')]
    pub n_accum_bits: Vec<u32>,
    /// Wider bits that only linear candidates take: `off` or comma-separated `W/A/ACC`
    /// triples (default 6/6/16,8/8/20: a linear model has no table, so precision costs it no
    /// bootstrap).
    #[arg(long, value_delimiter = ',')]
    pub linear_bits: Vec<String>,
    /// Its pruning modes (comma-separated; default per-neuron,accumulator-aware).
    #[arg(long, value_delimiter = ',', value_parser = EnumValueParser::<PruningArg>::new().map(PruningMode::from))]
    pub pruning: Vec<PruningMode>,
    /// Its noise-aware training: `off` or a parameter set's name (comma-separated; default
    /// off and the 2-bit and 4-bit classic 2^-128 sets).
    #[arg(long, value_delimiter = ',')]
    pub noise_aware: Vec<String>,
    /// Its neuron removal: `off` or a tolerance (comma-separated; default off,0.003,0.01).
    #[arg(long, value_delimiter = ',')]
    pub remove_neurons: Vec<String>,
    #[command(flatten)]
    pub split: SplitArgs,
}

/// `--refit` values.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RefitArg {
    /// Every point of the front.
    Front,
    /// The recommended point only.
    Recommended,
}

impl TuneArgs {
    /// The library request these flags ask for on `train`.
    fn request(&self, train: &Dataset) -> Result<TuneRequest> {
        let mut req = TuneRequest::new(train);
        if !(self.budget.is_finite() && self.budget >= 0.0) {
            return Err(Error::param(
                "budget",
                format!("{} is not a number of seconds: give e.g. 300", self.budget),
            ));
        }
        req.budget = Some(Duration::from_secs_f64(self.budget));
        req.max_candidates = self.max_candidates;
        req.tolerance = self.tolerance;
        req.tolerance_se = self.tolerance_se;
        req.noise_seeds = self.noise_seeds;
        req.target_log2_p_fail = self.p_error;
        req.profile = crate::args::cost_profile();
        if let Some(e) = self.epochs {
            req.base.epochs = e;
        }
        if self.shift_augment.is_some() {
            req.base.shift_augment = self.shift_augment;
        }
        req.base.distill = self.distill.distill()?;
        if let Some(a) = self.activation {
            req.base.activation_function = a;
        }
        if let Some(w) = self.weight_decay {
            req.base.weight_decay = w;
        }
        if let Some(i) = self.input_scaling {
            req.base.input_scaling = i;
        }
        if self.n_input_bits.is_some() {
            req.base.n_input_bits = self.n_input_bits;
        }
        if let Some(s) = self.train_seed {
            req.base.seed = s;
            req.folds.seed = s;
            req.seed = s;
        }
        if let Some(used) = self.folds {
            req.folds = Folds { used, ..req.folds };
        }
        if let Some(repeats) = self.repeats {
            req.folds = Folds {
                repeats,
                ..req.folds
            };
        }
        self.narrow_space(&mut req.space)?;
        if !self.parameters.is_empty() {
            req.space.sets = self
                .parameters
                .iter()
                .map(|n| n.trim().parse::<ParamSetId>())
                .collect::<Result<Vec<_>>>()?;
        }
        req.validate()?;
        req.folds.validate(train.n_samples())?;
        Ok(req)
    }
}

impl TuneArgs {
    /// Replaces the axes of `space` that a flag names (ordered axes sorted, repeats dropped).
    fn narrow_space(&self, space: &mut SearchSpace) -> Result<()> {
        fn set<T: Clone + PartialOrd>(axis: &mut Vec<T>, given: &[T]) {
            if !given.is_empty() {
                let mut v = given.to_vec();
                v.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
                v.dedup_by(|a, b| a == b);
                *axis = v;
            }
        }
        set(&mut space.n_layers, &self.n_layers);
        set(&mut space.multipliers, &self.n_hidden_neurons_multiplier);
        let bits = self
            .bits
            .iter()
            .map(|b| parse_bits(b))
            .collect::<Result<Vec<_>>>()?;
        set(&mut space.bits, &bits);
        set(&mut space.n_accum_bits, &self.n_accum_bits);
        if !self.linear_bits.is_empty() {
            let wide = self
                .linear_bits
                .iter()
                .filter(|v| v.trim() != "off")
                .map(|v| parse_linear_bits(v))
                .collect::<Result<Vec<_>>>()?;
            space.linear_bits = Vec::new();
            set(&mut space.linear_bits, &wide);
        }
        if !self.pruning.is_empty() {
            let mut p = self.pruning.clone();
            p.dedup();
            space.pruning = p;
        }
        if !self.noise_aware.is_empty() {
            let mut n = self
                .noise_aware
                .iter()
                .map(|v| match v.trim() {
                    "off" => Ok(None),
                    name => name.parse::<ParamSetId>().map(Some),
                })
                .collect::<Result<Vec<_>>>()?;
            n.dedup();
            space.noise_aware = n;
        }
        let removal = self
            .remove_neurons
            .iter()
            .map(|v| {
                crate::train::parse_removal(v)
                    .map(|r| r.0)
                    .map_err(|m| Error::param("remove_neurons", m))
            })
            .collect::<Result<Vec<_>>>()?;
        set(&mut space.remove_neurons, &removal);
        Ok(())
    }
}

/// `W/A` (e.g. `3/3`): weight and activation bits.
fn parse_bits(text: &str) -> Result<(u32, u32)> {
    let parsed = text
        .trim()
        .split_once('/')
        .and_then(|(w, a)| Some((w.trim().parse().ok()?, a.trim().parse().ok()?)));
    parsed.ok_or_else(|| {
        Error::param(
            "bits",
            format!("`{text}` is not a weight/activation pair such as 3/3 or 4/4"),
        )
    })
}

/// `W/A/ACC` (e.g. `8/8/20`): weight, activation and accumulator bits of a linear candidate.
fn parse_linear_bits(text: &str) -> Result<(u32, u32, u32)> {
    let parts: Vec<Option<u32>> = text
        .trim()
        .split('/')
        .map(|p| p.trim().parse().ok())
        .collect();
    match parts[..] {
        [Some(w), Some(a), Some(acc)] => Ok((w, a, acc)),
        _ => Err(Error::param(
            "linear_bits",
            format!(
                "`{text}` is neither `off` nor a weight/activation/accumulator triple such as \
                 8/8/20"
            ),
        )),
    }
}

/// A front point with, when refitted, the model trained on all rows and its test score.
struct Row<'a> {
    point: &'a Point,
    index: usize,
    refit: Option<(Refit, Assessment)>,
}

pub fn tune(a: &TuneArgs) -> Result<ExitCode> {
    let data_file = (!Dataset::BUILTIN.contains(&a.data.as_str())).then(|| Path::new(&a.data));
    let split_file = match a.split.spec() {
        sqnn::data::SplitSpec::File(p) => Some(p),
        _ => None,
    };
    let teacher = a.distill.distill_from.as_deref();
    let inputs: Vec<&Path> = [data_file, split_file.as_deref(), teacher]
        .into_iter()
        .flatten()
        .collect();
    for (path, name) in [(&a.out, "out"), (&a.svg, "svg")] {
        if let Some(p) = path {
            sqnn::fsio::check_output(p, name, &inputs)?;
        }
    }
    if let (Some(out), Some(svg)) = (&a.out, &a.svg) {
        if sqnn::fsio::same_file(out, svg) {
            return Err(Error::param(
                "svg",
                format!(
                    "{} is also --out's path: the picture would overwrite the recommended \
                     model; choose another path",
                    svg.display()
                ),
            ));
        }
    }
    let (ds, split) = load_split(&a.data, &a.split)?;
    let (train, test) = (ds.subset(&split.train), ds.subset(&split.test));
    let req = a.request(&train)?;
    if let Some(d) = &req.base.distill {
        d.check_rows(&sqnn::data::TrainingRows::new(&ds, &a.split.spec(), &split))?;
        if !a.json {
            println!(
                "distilling every candidate from {} (temperature {}, weight {}); the teacher \
                 learned from every training row, so the validation folds' scores are optimistic",
                d.teacher_path, d.temperature, d.weight
            );
        }
    }
    let bar = Bar::new();
    let progress: &dyn Progress = if a.quiet || a.json { &NoProgress } else { &bar };
    let report = tune::tune(&train, &req, progress)?;
    let t = Instant::now();
    let rows = refit_front(&report, &req, &train, &test, a.refit, progress)?;
    let refit_seconds = t.elapsed().as_secs_f64();
    let rec = rows
        .iter()
        .find(|r| r.index == report.recommended)
        .and_then(|r| r.refit.as_ref());
    if let (Some(out), Some((refit, _))) = (&a.out, rec) {
        let mut model = refit.model.clone();
        model.set_training_rows(Some(sqnn::data::TrainingRows::new(
            &ds,
            &a.split.spec(),
            &split,
        )));
        model.save(out)?;
    }
    if let Some(svg) = &a.svg {
        let picture = tune::render_svg(&report)?;
        sqnn::fsio::write_atomic(svg, picture.as_bytes(), sqnn::fsio::Secrecy::Public)?;
    }
    if a.json {
        println!("{}", to_json(&report, &rows, a, refit_seconds));
    } else {
        print_table(&report, &rows, test.n_samples(), refit_seconds);
        print_recommendation(&report, rec, a);
    }
    Ok(ExitCode::SUCCESS)
}

/// Trains the front's points (or the recommended one) again on all training rows and scores
/// them on the test rows.
fn refit_front<'a>(
    report: &'a TuneReport,
    req: &TuneRequest,
    train: &Dataset,
    test: &Dataset,
    which: RefitArg,
    progress: &dyn Progress,
) -> Result<Vec<Row<'a>>> {
    let chosen = |i: usize| which == RefitArg::Front || i == report.recommended;
    let n = report.front.iter().filter(|&&i| chosen(i)).count();
    progress.start("refit on all training rows", sqnn::cast::to_u64(n));
    let mut rows = Vec::new();
    for &i in &report.front {
        let point = &report.points[i];
        let refit = if chosen(i) {
            progress.message(&point.config.describe());
            let r = tune::refit(train, req, point)?;
            let s = tune::assess(&r, test, req.noise_seeds)?;
            progress.advance(1);
            Some((r, s))
        } else {
            None
        };
        rows.push(Row {
            point,
            index: i,
            refit,
        });
    }
    progress.finish();
    Ok(rows)
}

fn print_table(r: &TuneReport, rows: &[Row<'_>], n_test: usize, refit_seconds: f64) {
    let m = if r.metric == "r2" { "R²" } else { "acc" };
    let folds = r.folds.describe();
    println!(
        "{}: {} of {} candidates judged in {:.0} s{} ({} training rows, {folds}, {} noise seeds, \
         latency on {} cores); Pareto front of {} points, fastest first:",
        r.data,
        r.evaluated.len(),
        r.space_size,
        r.seconds,
        if r.stopped_early {
            ", stopped by the budget"
        } else {
            ""
        },
        r.rows,
        r.noise_seeds,
        r.cores,
        r.front.len()
    );
    println!(
        "  {:>9} {:>6} {:<28} {:>15} | {:>9} {:>6} {:>15}  candidate",
        "ms/sample",
        "PBS",
        "parameter set",
        format!("val {m} sim/clr"),
        "ms (all)",
        "PBS",
        format!("test {m} sim/clr"),
    );
    for row in rows {
        let p = row.point;
        let mark = if row.index == r.recommended { "*" } else { " " };
        let (ms, pbs, test) = match &row.refit {
            Some((f, s)) => (
                format!("{:.1}", f.plan.latency_ms_per_sample),
                f.plan.pbs_count.to_string(),
                format!("{:.4}/{:.4}", s.metric, s.clear_metric),
            ),
            None => ("-".into(), "-".into(), "-".into()),
        };
        println!(
            "{mark} {:>9.1} {:>6.1} {:<28} {:>15} | {ms:>9} {pbs:>6} {test:>15}  {}",
            p.latency_ms,
            p.pbs_count,
            p.set_label,
            format!("{:.4}/{:.4}", p.metric, p.clear_metric),
            p.config.describe()
        );
    }
    println!(
        "left of |: judged on the validation folds (means over the folds' circuits); right: \
         trained again on all {} training rows ({refit_seconds:.0} s), scored on the {n_test} \
         test rows after the choice (information only)",
        r.rows
    );
}

fn print_recommendation(r: &TuneReport, rec: Option<&(Refit, Assessment)>, a: &TuneArgs) {
    let p = r.recommended_point();
    let m = if r.metric == "r2" { "R²" } else { "accuracy" };
    println!(
        "* recommended: the fastest point within {} of the best validation {m} ({:.4}): {} on \
         {} ({:.4} validation, {:.1} ms per sample predicted)",
        r.tolerance,
        r.best_metric(),
        p.config.describe(),
        p.set_label,
        p.metric,
        p.latency_ms
    );
    if r.tolerance > a.tolerance {
        println!(
            "  (the tolerance is {} standard errors of the best point's validation {m}, more \
             than --tolerance {})",
            r.tolerance_se, a.tolerance
        );
    }
    println!(
        "  train it: sqnn train --data {}{} {}{} --out MODEL.json",
        crate::args::shell_word(&a.data),
        a.split.flags(),
        p.config.train_flags(),
        base_flags(&r.base)
    );
    if let (Some(out), Some((f, s))) = (&a.out, rec) {
        println!(
            "wrote {} ({} bootstraps, {:.1} ms per sample predicted on {}; test {m} {:.4} \
             simulated, {:.4} clear); compile it on that set with `sqnn compile {} --out C.circuit.json \
             --parameters {}`, then `sqnn run C.circuit.json --data {} --backend tfhe`",
            out.display(),
            f.plan.pbs_count,
            f.plan.latency_ms_per_sample,
            p.parameter_set,
            s.metric,
            s.clear_metric,
            out.display(),
            p.parameter_set,
            a.data
        );
    }
    if let Some(svg) = &a.svg {
        println!("picture: {}", svg.display());
    }
}

/// A unit enum's serde name as its command-line value (`snake_case` to `kebab-case`), as the
/// flags' value enums spell it.
fn flag_value<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(|n| n.replace('_', "-")))
        .unwrap_or_default()
}

/// The `sqnn train` flags of the settings in which `base` differs from the defaults (epochs,
/// seed, activation, weight decay, input scaling and bits, shift augmentation: what `tune` changes for every
/// candidate), each with a
/// leading space; next to a point's own flags they train the same model.
fn base_flags(base: &EstimatorParams) -> String {
    let d = EstimatorParams::default();
    let mut out = String::new();
    if base.epochs != d.epochs {
        out.push_str(&format!(" --epochs {}", base.epochs));
    }
    if base.seed != d.seed {
        out.push_str(&format!(" --train-seed {}", base.seed));
    }
    if base.activation_function != d.activation_function {
        let name = flag_value(&base.activation_function);
        out.push_str(&format!(" --activation {name}"));
    }
    if base.weight_decay != d.weight_decay {
        out.push_str(&format!(" --weight-decay {}", base.weight_decay));
    }
    if base.input_scaling != d.input_scaling {
        let name = flag_value(&base.input_scaling);
        out.push_str(&format!(" --input-scaling {name}"));
    }
    if let Some(b) = base.n_input_bits {
        out.push_str(&format!(" --n-input-bits {b}"));
    }
    if let Some(s) = base.shift_augment {
        out.push_str(&format!(" --shift-augment {s}"));
    }
    if let Some(t) = &base.distill {
        out.push_str(&format!(
            " --distill-from {} --distill-temperature {} --distill-weight {}",
            t.teacher_path, t.temperature, t.weight
        ));
    }
    out
}

fn to_json(r: &TuneReport, rows: &[Row<'_>], a: &TuneArgs, refit_seconds: f64) -> Value {
    let front: Vec<Value> = rows
        .iter()
        .map(|row| {
            let mut v = json!(row.point);
            v["recommended"] = json!(row.index == r.recommended);
            if let Some((f, s)) = &row.refit {
                v["refit"] = json!({
                    "pbs_count": f.plan.pbs_count,
                    "latency_ms": f.plan.latency_ms_per_sample,
                    "test": s,
                });
            }
            v
        })
        .collect();
    json!({
        "data": r.data,
        "metric": r.metric,
        "rows": r.rows,
        "folds": r.folds,
        "noise_seeds": r.noise_seeds,
        "tolerance": r.tolerance,
        "tolerance_se": r.tolerance_se,
        "cores": r.cores,
        "candidates": r.evaluated.len(),
        "space_size": r.space_size,
        "seconds": r.seconds,
        "refit_seconds": refit_seconds,
        "stopped_early": r.stopped_early,
        "best_metric": r.best_metric(),
        "report": r,
        "front": front,
        "recommended": r.recommended_point(),
        "train_flags": format!("{}{}", r.recommended_point().config.train_flags(), base_flags(&r.base)),
        "model": a.out.as_ref().map(|p| p.display().to_string()),
        "svg": a.svg.as_ref().map(|p| p.display().to_string()),
    })
}
