//! The fitting loop: input and target scaling, the validation hold-out, initialization and
//! pruning schedule, mini-batch epochs with the losses (cross-entropy, MSE), per-epoch
//! evaluation and the choice of the kept epoch and restart, then the export. See the training
//! recipe in [`crate::train`].

use std::time::Instant;

use ndarray::{Array2, Axis};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::augment::Augmenter;
use super::distill::RunTeacher;
use super::metrics::{logits_accuracy, r2};
use super::network::{Layer, SparseQuantNeuralNetwork};
use super::neurons::Judge;
use super::noise::Injector;
use super::optim::Adam;
use super::{ActRange, EstimatorParams, InputScaling, PruningMode};
use crate::data::{check_finite, Standardizer};
use crate::error::{Error, Result};
use crate::progress::Progress;
use crate::task::Task;
use crate::train::quantize::QuantizedMlp;

#[allow(unused_imports)] // used by doc links
use super::{NeuralNetClassifier, NeuralNetRegressor};

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
    /// Hidden neurons removed by [`EstimatorParams::remove_neurons`].
    #[serde(default)]
    pub neurons_removed: usize,
    /// Wall-clock training time in seconds.
    pub seconds: f64,
}

/// The targets of one fit, as the fitting loop takes them.
#[derive(Clone, Copy, Debug)]
pub enum Targets<'a> {
    /// Class indices in `0..k`.
    Classes {
        /// One class index per row.
        labels: &'a [usize],
        /// Number of classes (outputs).
        k: usize,
    },
    /// Real values, one per row (standardized for training).
    Values(&'a [f64]),
}

/// The result of one training run.
pub(super) struct Fitted {
    pub(super) module: SparseQuantNeuralNetwork,
    pub(super) quantized: QuantizedMlp,
    pub(super) report: FitReport,
    /// Validation key of the kept epoch (lower is better), and its tie-breaker.
    key: (f64, f64),
}

/// Checks that training or prediction features have rows, columns and finite values.
pub(super) fn check_x(x: &Array2<f64>, what: &str) -> Result<()> {
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
    check_finite(x, what)?;
    match x
        .indexed_iter()
        .find(|(_, v)| v.abs() > crate::data::MAX_ABS_VALUE)
    {
        Some(((r, c), v)) => Err(Error::Input(format!(
            "{what}: row {r}, column {c} (0-based) is {v:e}, past the {:e} in magnitude that \
             training's variances can square; rescale the feature or drop the row",
            crate::data::MAX_ABS_VALUE
        ))),
        None => Ok(()),
    }
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
                    crate::cast::clamp_count((frac * c as f64).round(), c - 1)
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
            let m = crate::cast::clamp_count((frac * n as f64).round(), n - 1);
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

/// The whole training procedure with restarts; see the module documentation of
/// [`crate::train`]. `progress` sees one operation per training run (its epochs).
pub(super) fn fit(
    p: &EstimatorParams,
    x: &Array2<f64>,
    targets: Targets,
    task: Task,
    progress: &dyn Progress,
) -> Result<Fitted> {
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
            seed: p.seed.wrapping_add(crate::cast::to_u64(r)),
            ..p.clone()
        };
        let mut f = fit_once(&pr, x, targets, task.clone(), progress)?;
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

/// The feature scaling fitted on the training rows ([`InputScaling`]).
fn scale_inputs(p: &EstimatorParams, x: &Array2<f64>) -> Standardizer {
    let mut stdz = Standardizer::fit(x);
    if matches!(
        p.input_scaling,
        InputScaling::MinMax | InputScaling::UnitRange
    ) {
        // Features go onto [-c, c] (min-max) or [0, 2c] (unit range: the same step, 2c over the
        // 2^a - 1 steps of an unsigned quantizer). With power-of-two scales, c = 1 would put
        // the initial input step (2 / (2^a - 1)) just above a power of two, rounded up to
        // twice that: half the levels lost. c = 0.9 (2^a - 1) / 2^a keeps the step 10 % under
        // the power of two.
        let c = if p.power_of_two_scaling {
            let bits = p.n_input_bits.unwrap_or(p.n_a_bits);
            let n = ((1u64 << bits) - 1 - u64::from(p.quant_narrow)) as f64;
            0.9 * n / 2f64.powi(crate::cast::float_exponent(n.log2().ceil()))
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
                stdz.mean[j] = if p.input_scaling == InputScaling::UnitRange {
                    lo
                } else {
                    lo + half
                };
                stdz.std[j] = half / c;
            }
        }
    }
    stdz
}

/// The target's mean and standard deviation (0 and 1 for classes) and the standardized
/// regression targets (empty for classes).
fn scale_targets(targets: Targets) -> (f64, f64, Vec<f64>) {
    match targets {
        Targets::Values(y) => {
            let n = y.len() as f64;
            let m = y.iter().sum::<f64>() / n;
            let var = y.iter().map(|v| (v - m) * (v - m)).sum::<f64>() / n;
            let s = var.sqrt();
            let s = if s.is_finite() && s > 10.0 * f64::EPSILON * m.abs().max(1.0) {
                s
            } else {
                1.0
            };
            (m, s, y.iter().map(|v| (v - m) / s).collect())
        }
        Targets::Classes { .. } => (0.0, 1.0, Vec::new()),
    }
}

/// The scaled rows of one part of the data (training or validation) with their targets.
struct Part {
    x: Array2<f64>,
    /// Class indices (classification; empty otherwise).
    labels: Vec<usize>,
    /// Standardized targets (regression; empty otherwise).
    values: Vec<f64>,
    classify: bool,
}

impl Part {
    /// The rows `rows` of the scaled features `xs` with their targets.
    fn select(xs: &Array2<f64>, rows: &[usize], labels: Option<&[usize]>, values: &[f64]) -> Part {
        Part {
            x: xs.select(Axis(0), rows),
            labels: labels.map_or(Vec::new(), |l| rows.iter().map(|&i| l[i]).collect()),
            values: if labels.is_none() {
                rows.iter().map(|&i| values[i]).collect()
            } else {
                Vec::new()
            },
            classify: labels.is_some(),
        }
    }

    fn len(&self) -> usize {
        self.x.nrows()
    }

    /// The loss of outputs `z` for the part's rows `rows` (cross-entropy or MSE), and its
    /// gradient.
    fn loss(&self, z: &Array2<f64>, rows: &[usize]) -> (f64, Array2<f64>) {
        if self.classify {
            let l: Vec<usize> = rows.iter().map(|&i| self.labels[i]).collect();
            cross_entropy(z, &l)
        } else {
            let t: Vec<f64> = rows.iter().map(|&i| self.values[i]).collect();
            mse(z, &t)
        }
    }
}

/// The number of epochs of gradual pruning (0: the masks are chosen on the initial weights,
/// which happens here, with the kept weights re-scaled when `sparse_init` is on).
fn init_pruning(net: &mut SparseQuantNeuralNetwork, p: &EstimatorParams) -> usize {
    let epochs = p.epochs;
    let warm = if p.pruning == PruningMode::PerNeuron {
        crate::cast::clamp_count((p.prune_warmup * epochs as f64).round(), epochs - 1)
    } else {
        0
    };
    if warm == 0 {
        net.enable_pruning();
        if p.sparse_init {
            net.rescale_kept_weights();
        }
    }
    warm
}

/// The most rows idle-neuron removal judges on (evenly spaced over the validation or training
/// rows): every trial is a forward pass over them.
const JUDGE_ROWS: usize = 1000;

/// The state of one training run between epochs.
struct Run<'a> {
    p: &'a EstimatorParams,
    net: SparseQuantNeuralNetwork,
    adam: Adam,
    rng: ChaCha8Rng,
    /// The draws of noise-aware training (its own stream, so that the batch order does not
    /// depend on whether noise is injected).
    noise_rng: ChaCha8Rng,
    train: Part,
    val: Part,
    /// Epochs of gradual pruning.
    warm: usize,
    /// The epoch at whose start idle neurons are removed, if asked.
    removal: Option<usize>,
    /// The shuffled order of the training rows.
    order: Vec<usize>,
    /// Shift augmentation of the training batches, if asked.
    augment: Option<Augmenter>,
    /// The teacher of distillation, if asked.
    distill: Option<RunTeacher>,
    report: FitReport,
    /// Validation key, tie-breaker and layers of the best epoch so far.
    best: Option<(f64, f64, Vec<Layer>)>,
}

impl Run<'_> {
    /// Pruning and quantizer steps due at the start of `epoch`.
    fn start_epoch(&mut self, epoch: usize) {
        let warm = self.warm;
        if warm > 0 && epoch >= 1 && epoch <= warm {
            if epoch == warm {
                self.net.enable_pruning();
            } else {
                self.net.prune_gradual(epoch as f64 / warm as f64);
            }
        }
        if epoch == 1 && self.p.act_range == ActRange::Learned {
            self.net.init_learned_steps();
        }
        if let (Some(at), Some(tolerance)) = (self.removal, self.p.remove_neurons) {
            if epoch == at {
                let part = if self.val.len() > 0 {
                    &self.val
                } else {
                    &self.train
                };
                // Every trial is a forward pass: at most JUDGE_ROWS rows, evenly spaced.
                let step = part.len().div_ceil(JUDGE_ROWS).max(1);
                let rows: Vec<usize> = (0..part.len()).step_by(step).collect();
                let x = part.x.select(Axis(0), &rows);
                let pick = |v: &[usize]| rows.iter().filter_map(|&i| v.get(i).copied()).collect();
                let labels: Vec<usize> = pick(&part.labels);
                let values: Vec<f64> = rows
                    .iter()
                    .filter_map(|&i| part.values.get(i))
                    .copied()
                    .collect();
                let judge = Judge {
                    x: &x,
                    labels: &labels,
                    values: &values,
                    noise: self.p.read_noise.as_ref(),
                    seed: self.p.seed,
                };
                self.report.neurons_removed += self.net.remove_idle_neurons(&judge, tolerance);
            }
        }
    }

    /// One pass over the shuffled training rows in mini-batches; returns the mean loss.
    fn train_epoch(&mut self, epoch: usize) -> f64 {
        let p = self.p;
        let bs = p.batch_size.min(self.train.len()).max(1);
        self.order.shuffle(&mut self.rng);
        let mut loss_sum = 0.0;
        let n_batches = self.train.len().div_ceil(bs);
        for (b, chunk) in self.order.chunks(bs).enumerate() {
            let done = (epoch * n_batches + b) as f64 / (p.epochs * n_batches) as f64;
            self.adam.set_lr(p.lr_schedule.at(p.lr, done));
            let (xb, raw) = match &mut self.augment {
                Some(a) if self.distill.is_some() => {
                    let raw = a.batch_raw(chunk);
                    (a.scale(&raw), Some(raw))
                }
                Some(a) => (a.batch(chunk), None),
                None => (self.train.x.select(Axis(0), chunk), None),
            };
            let mut injector = p.read_noise.as_ref().map(|noise| Injector {
                noise,
                rng: &mut self.noise_rng,
            });
            let (out, cache) = self.net.forward_train(&xb, injector.as_mut());
            let mut step = self.train.loss(&out, chunk);
            if let Some(d) = &self.distill {
                let teacher = d.logits(chunk, raw.as_ref());
                step = d.mix(&out, &teacher, step);
            }
            let (loss, dout) = step;
            let g = self.net.backward(&cache, dout);
            self.adam.step(&mut self.net, &g);
            loss_sum += loss * chunk.len() as f64;
        }
        self.net.enforce_accumulator_budget();
        loss_sum / self.train.len() as f64
    }

    /// Validation loss and score of the network as it stands (recorded in the report), as a
    /// key to minimize and its tie-breaker; `(0, 0)` without validation rows.
    fn evaluate(&mut self) -> (f64, f64) {
        if self.val.len() == 0 {
            return (0.0, 0.0);
        }
        let z = self.net.forward(&self.val.x);
        let all: Vec<usize> = (0..self.val.len()).collect();
        let (vl, _) = self.val.loss(&z, &all);
        let score = if self.val.classify {
            logits_accuracy(&z, &self.val.labels)
        } else {
            r2(&z.column(0).to_vec(), &self.val.values)
        };
        self.report.val_loss.push(vl);
        self.report.val_score.push(score);
        if self.val.classify {
            (-score, vl)
        } else {
            (vl, 0.0)
        }
    }

    /// Keeps the network of `epoch` if it is the best so far among the epochs trained with
    /// the final masks (always the latest one without validation).
    fn keep_if_best(&mut self, epoch: usize, key: f64, tie: f64) {
        if epoch < self.warm.max(self.removal.unwrap_or(0)) {
            return;
        }
        let better = match &self.best {
            None => true,
            Some(_) if self.val.len() == 0 => true,
            Some((k, t, _)) => key < *k || (key == *k && tie < *t),
        };
        if better {
            self.best = Some((key, tie, self.net.layers.clone()));
            self.report.best_epoch = epoch;
        }
    }
}

/// Feature scaling and target standardization of one run, saved in the exported model.
struct Scaling {
    inputs: Standardizer,
    target_mean: f64,
    target_std: f64,
}

/// Builds and initializes the network, scales the data and holds out the validation rows.
fn start_run<'a>(
    p: &'a EstimatorParams,
    x: &Array2<f64>,
    targets: Targets,
    task: &Task,
) -> Result<(Run<'a>, Scaling)> {
    let (n_outputs, labels) = match targets {
        Targets::Classes { labels, k } => (k, Some(labels)),
        Targets::Values(_) => (1, None),
    };
    let cfg = p.module_config(x.ncols(), n_outputs);
    let mut net = SparseQuantNeuralNetwork::new(cfg, p.seed)?;
    let inputs = scale_inputs(p, x);
    let xs = inputs.transform(x);
    let (target_mean, target_std, values) = scale_targets(targets);
    let mut rng = ChaCha8Rng::seed_from_u64(p.seed);
    rng.set_stream(1);
    let mut noise_rng = ChaCha8Rng::seed_from_u64(p.seed);
    noise_rng.set_stream(2);
    let (tr, va) = validation_split(x.nrows(), labels, p.validation_fraction, &mut rng);
    let augment = match p.shift_augment {
        Some(shifts) => {
            let mut rng = ChaCha8Rng::seed_from_u64(p.seed);
            rng.set_stream(3);
            let raw = x.select(Axis(0), &tr);
            Some(Augmenter::new(shifts, raw, inputs.clone(), rng)?)
        }
        None => None,
    };
    let distill = match &p.distill {
        Some(d) => {
            let teacher = d.loaded()?.clone();
            teacher.check_fit(x.ncols(), task)?;
            // Without shifts the rows never change: the teacher reads them once.
            let fixed = augment
                .is_none()
                .then(|| teacher.logits(&x.select(Axis(0), &tr)));
            Some(RunTeacher {
                teacher,
                temperature: d.temperature,
                weight: d.weight,
                fixed,
            })
        }
        None => None,
    };
    let train = Part::select(&xs, &tr, labels, &values);
    let val = Part::select(&xs, &va, labels, &values);
    let warm = init_pruning(&mut net, p);
    let mut adam = Adam::new(&net, p.lr);
    adam.weight_decay = p.weight_decay;
    let report = FitReport {
        epochs_run: 0,
        best_epoch: 0,
        final_masks_epoch: warm,
        train_loss: Vec::with_capacity(p.epochs),
        val_loss: Vec::new(),
        val_score: Vec::new(),
        n_train: tr.len(),
        n_val: va.len(),
        restart: 0,
        neurons_removed: 0,
        seconds: 0.0,
    };
    let run = Run {
        p,
        net,
        adam,
        rng,
        noise_rng,
        train,
        val,
        warm,
        removal: p.remove_neurons.map(|_| {
            let at = crate::cast::clamp_count(
                (super::REMOVE_NEURONS_AT * p.epochs as f64).round(),
                p.epochs,
            );
            at.max(warm).max(1)
        }),
        order: (0..tr.len()).collect(),
        augment,
        distill,
        report,
        best: None,
    };
    let scaling = Scaling {
        inputs,
        target_mean,
        target_std,
    };
    Ok((run, scaling))
}

/// Restores the kept epoch, makes pruning permanent and exports the quantized model.
fn finish_run(run: Run, task: Task, scaling: Scaling, start: Instant) -> Result<Fitted> {
    let Run {
        mut net,
        best,
        mut report,
        ..
    } = run;
    let mut key = (0.0, 0.0);
    if let Some((k, t, layers)) = best {
        net.layers = layers;
        key = (k, t);
    }
    net.make_pruning_permanent();
    net.enforce_accumulator_budget();
    let quantized = net.to_quantized(
        task,
        scaling.inputs.mean,
        scaling.inputs.std,
        scaling.target_mean,
        scaling.target_std,
    )?;
    report.seconds = start.elapsed().as_secs_f64();
    Ok(Fitted {
        module: net,
        quantized,
        report,
        key,
    })
}

/// One training run: `progress` sees its epochs.
fn fit_once(
    p: &EstimatorParams,
    x: &Array2<f64>,
    targets: Targets,
    task: Task,
    progress: &dyn Progress,
) -> Result<Fitted> {
    let start = Instant::now();
    let (mut run, scaling) = start_run(p, x, targets, &task)?;
    progress.start("epoch", crate::cast::to_u64(p.epochs));
    for epoch in 0..p.epochs {
        run.start_epoch(epoch);
        let loss = run.train_epoch(epoch);
        run.report.train_loss.push(loss);
        run.report.epochs_run = epoch + 1;
        let (key, tie) = run.evaluate();
        run.keep_if_best(epoch, key, tie);
        progress.advance(1);
    }
    progress.finish();
    finish_run(run, task, scaling, start)
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
}
