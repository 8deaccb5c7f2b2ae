//! The scikit-learn-like estimator: one generic [`Estimator`] for both tasks (the
//! [`TaskSpec`] says what differs: targets, predictions, score), with the user-facing names
//! [`NeuralNetClassifier`] and [`NeuralNetRegressor`], and [`Model`], either one as read from a
//! model file.

use std::marker::PhantomData;
use std::path::Path;

use ndarray::Array2;

use super::fit::{self, check_x, FitReport, Targets};
use super::metrics::{accuracy, argmax, r2};
use super::model_file::{parse_model, read_model, write_model, KIND_CLASSIFIER, KIND_REGRESSOR};
use super::network::SparseQuantNeuralNetwork;
use super::EstimatorParams;
use crate::data::{check_finite, Dataset, TrainingRows};
use crate::error::{Error, Result};
use crate::progress::{NoProgress, Progress};
use crate::task::Task;
use crate::train::quantize::QuantizedMlp;

mod sealed {
    /// Only [`Classify`](super::Classify) and [`Regress`](super::Regress) are tasks.
    pub trait Sealed {}
}

/// What distinguishes a classifier from a regressor: the target type, how targets are
/// checked and trained on, how the integer model's outputs become predictions, and the score.
/// Implemented by [`Classify`] and [`Regress`] only.
pub trait TaskSpec: sealed::Sealed + Clone + std::fmt::Debug {
    /// One row's target and prediction: a class index or a real value.
    type Target: Copy + PartialEq + std::fmt::Debug;
    /// The estimator's user-facing name (in error messages).
    const ESTIMATOR: &'static str;
    /// The `kind` of its model file.
    const KIND: &'static str;
    /// What one target is called in messages (`label`, `target`).
    const NOUN: &'static str;

    /// The task of a fit on bare targets (classification: classes named "0", "1", ...).
    fn task_of(y: &[Self::Target]) -> Task;
    /// The targets and task of a data set, or an [`Error::Input`] if it is of the other kind.
    fn of_dataset(ds: &Dataset) -> Result<(Vec<Self::Target>, Task)>;
    /// Checks the targets against the task (class indices in range and at least two distinct
    /// classes; finite values).
    fn check(y: &[Self::Target], task: &Task) -> Result<()>;
    /// The targets as the fitting loop takes them.
    fn targets<'a>(y: &'a [Self::Target], task: &Task) -> Targets<'a>;
    /// Predictions from the integer model's dequantized outputs (one row per sample).
    fn predictions(outputs: &Array2<f64>) -> Vec<Self::Target>;
    /// The score of predictions: accuracy or R².
    fn score(pred: &[Self::Target], y: &[Self::Target]) -> f64;
    /// The estimator of this task that `m` wraps, if it is one.
    fn from_model(m: Model) -> Option<Estimator<Self>>;
}

/// Classification with cross-entropy; targets are class indices.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Classify;

/// Regression with MSE on the standardized target; targets are real values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Regress;

impl sealed::Sealed for Classify {}
impl sealed::Sealed for Regress {}

impl TaskSpec for Classify {
    type Target = usize;
    const ESTIMATOR: &'static str = "NeuralNetClassifier";
    const KIND: &'static str = KIND_CLASSIFIER;
    const NOUN: &'static str = "label";

    fn task_of(y: &[usize]) -> Task {
        let k = y.iter().max().map_or(0, |m| m + 1);
        Task::Classify {
            classes: (0..k).map(|c| c.to_string()).collect(),
        }
    }

    fn of_dataset(ds: &Dataset) -> Result<(Vec<usize>, Task)> {
        match &ds.task {
            Task::Classify { .. } => Ok((
                crate::data::class_indices(&ds.name, &ds.y)?,
                ds.task.clone(),
            )),
            Task::Regress => Err(Error::Input(format!(
                "{}: is a regression data set; use NeuralNetRegressor",
                ds.name
            ))),
        }
    }

    fn check(y: &[usize], task: &Task) -> Result<()> {
        let n_classes = match task {
            Task::Classify { classes } => classes.len(),
            Task::Regress => 0,
        };
        if let Some(&bad) = y.iter().find(|&&l| l >= n_classes) {
            return Err(Error::Input(format!(
                "label {bad} but only {n_classes} classes are named"
            )));
        }
        let mut seen = vec![false; n_classes];
        y.iter().for_each(|&l| seen[l] = true);
        let distinct = seen.iter().filter(|&&s| s).count();
        if n_classes < 2 || distinct < 2 {
            return Err(Error::Input(format!(
                "the labels hold {distinct} distinct class(es); a classifier needs at least 2"
            )));
        }
        Ok(())
    }

    fn targets<'a>(y: &'a [usize], task: &Task) -> Targets<'a> {
        let k = match task {
            Task::Classify { classes } => classes.len(),
            Task::Regress => 0,
        };
        Targets::Classes { labels: y, k }
    }

    fn predictions(outputs: &Array2<f64>) -> Vec<usize> {
        outputs.rows().into_iter().map(argmax).collect()
    }

    fn score(pred: &[usize], y: &[usize]) -> f64 {
        accuracy(pred, y)
    }

    fn from_model(m: Model) -> Option<Estimator<Classify>> {
        match m {
            Model::Classifier(c) => Some(c),
            Model::Regressor(_) => None,
        }
    }
}

impl TaskSpec for Regress {
    type Target = f64;
    const ESTIMATOR: &'static str = "NeuralNetRegressor";
    const KIND: &'static str = KIND_REGRESSOR;
    const NOUN: &'static str = "target";

    fn task_of(_: &[f64]) -> Task {
        Task::Regress
    }

    fn of_dataset(ds: &Dataset) -> Result<(Vec<f64>, Task)> {
        if ds.task != Task::Regress {
            return Err(Error::Input(format!(
                "{}: is a classification data set; use NeuralNetRegressor",
                ds.name
            )));
        }
        Ok((ds.y.clone(), Task::Regress))
    }

    fn check(y: &[f64], _: &Task) -> Result<()> {
        match y
            .iter()
            .position(|v| !v.is_finite() || v.abs() > crate::data::MAX_ABS_VALUE)
        {
            Some(i) => Err(Error::Input(format!(
                "target {i} (0-based) is {:e}; targets must be finite and at most {:e} in \
                 magnitude (training squares them); rescale the target or drop the row",
                y[i],
                crate::data::MAX_ABS_VALUE
            ))),
            None => Ok(()),
        }
    }

    fn targets<'a>(y: &'a [f64], _: &Task) -> Targets<'a> {
        Targets::Values(y)
    }

    fn predictions(outputs: &Array2<f64>) -> Vec<f64> {
        outputs.column(0).to_vec()
    }

    fn score(pred: &[f64], y: &[f64]) -> f64 {
        r2(pred, y)
    }

    fn from_model(m: Model) -> Option<Estimator<Regress>> {
        match m {
            Model::Regressor(r) => Some(r),
            Model::Classifier(_) => None,
        }
    }
}

/// A quantized MLP estimator, Concrete ML's `NeuralNetClassifier` / `NeuralNetRegressor`
/// re-thought: `fit`, `predict`, `score`, `save` / `load`. Prediction always goes through the
/// integer model ([`QuantizedMlp::forward_int`]). Use it as [`NeuralNetClassifier`] or
/// [`NeuralNetRegressor`].
#[derive(Clone, Debug)]
pub struct Estimator<T: TaskSpec> {
    params: EstimatorParams,
    module: Option<SparseQuantNeuralNetwork>,
    quantized: Option<QuantizedMlp>,
    feature_names: Option<Vec<String>>,
    data_name: Option<String>,
    training_rows: Option<TrainingRows>,
    task: PhantomData<T>,
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
pub type NeuralNetClassifier = Estimator<Classify>;

/// A quantized MLP regressor (MSE on the standardized target), Concrete ML's
/// `NeuralNetRegressor` re-thought.
pub type NeuralNetRegressor = Estimator<Regress>;

impl<T: TaskSpec> Estimator<T> {
    /// Validates `params` ([`EstimatorParams::validate`]); the network is built at `fit`.
    pub fn new(params: EstimatorParams) -> Result<Self> {
        params.validate()?;
        Ok(Estimator {
            params,
            module: None,
            quantized: None,
            feature_names: None,
            data_name: None,
            training_rows: None,
            task: PhantomData,
        })
    }

    /// The hyper-parameters.
    pub fn params(&self) -> &EstimatorParams {
        &self.params
    }

    /// Trains on raw features `x` (`n x d`, scaled internally with their statistics) and
    /// targets `y`: class indices `0..k` (the classes are named "0", "1", ...) or real values
    /// (standardized internally). Replaces any previous fit.
    ///
    /// Errors: [`Error::Input`] for an empty `x`, non-finite values, `y.len() != x.nrows()`,
    /// fewer than 2 classes or non-finite targets; [`Error::InvalidParameter`] for a hidden
    /// width of 0.
    pub fn fit(&mut self, x: &Array2<f64>, y: &[T::Target]) -> Result<FitReport> {
        self.fit_with_progress(x, y, &NoProgress)
    }

    /// [`fit`](Self::fit), reporting each training run's epochs to `progress`.
    pub fn fit_with_progress(
        &mut self,
        x: &Array2<f64>,
        y: &[T::Target],
        progress: &dyn Progress,
    ) -> Result<FitReport> {
        self.fit_named(x, y, T::task_of(y), None, progress)
    }

    /// Trains on a [`Dataset`] of the estimator's task, keeping its class and feature names.
    pub fn fit_dataset(&mut self, ds: &Dataset) -> Result<FitReport> {
        self.fit_dataset_with_progress(ds, &NoProgress)
    }

    /// [`fit_dataset`](Self::fit_dataset), reporting each training run's epochs to `progress`.
    pub fn fit_dataset_with_progress(
        &mut self,
        ds: &Dataset,
        progress: &dyn Progress,
    ) -> Result<FitReport> {
        let (y, task) = T::of_dataset(ds)?;
        let names = Some(ds.feature_names.clone());
        let report = self.fit_named(&ds.x, &y, task, names, progress)?;
        self.data_name = Some(ds.name.clone());
        Ok(report)
    }

    fn fit_named(
        &mut self,
        x: &Array2<f64>,
        y: &[T::Target],
        task: Task,
        feature_names: Option<Vec<String>>,
        progress: &dyn Progress,
    ) -> Result<FitReport> {
        check_x(x, "training features")?;
        if y.len() != x.nrows() {
            return Err(Error::Input(format!(
                "{} {}s for {} rows of features; pass one {} per row",
                y.len(),
                T::NOUN,
                x.nrows(),
                T::NOUN
            )));
        }
        T::check(y, &task)?;
        let targets = T::targets(y, &task);
        let fitted = fit::fit(&self.params, x, targets, task, progress)?;
        self.module = Some(fitted.module);
        self.quantized = Some(fitted.quantized);
        self.feature_names = feature_names;
        self.data_name = None;
        self.training_rows = None;
        Ok(fitted.report)
    }

    /// Predictions of the integer model: class indices (argmax of the dequantized logits;
    /// ties go to the lower index) or de-standardized values.
    pub fn predict(&self, x: &Array2<f64>) -> Result<Vec<T::Target>> {
        let z = int_outputs(self.quantized.as_ref().ok_or_else(not_fitted)?, x)?;
        Ok(T::predictions(&z))
    }

    /// Accuracy (classifier) or R² (regressor) of [`predict`](Self::predict) against `y`.
    pub fn score(&self, x: &Array2<f64>, y: &[T::Target]) -> Result<f64> {
        if y.len() != x.nrows() {
            return Err(Error::Input(format!(
                "{} {}s for {} rows of features",
                y.len(),
                T::NOUN,
                x.nrows()
            )));
        }
        Ok(T::score(&self.predict(x)?, y))
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

    /// Feature names, when trained with [`fit_dataset`](Self::fit_dataset).
    pub fn feature_names(&self) -> Option<&[String]> {
        self.feature_names.as_deref()
    }

    /// The data set's name, when trained with [`fit_dataset`](Self::fit_dataset).
    pub fn data_name(&self) -> Option<&str> {
        self.data_name.as_deref()
    }

    /// The split it was trained on, when recorded ([`set_training_rows`](Self::set_training_rows)).
    pub fn training_rows(&self) -> Option<&TrainingRows> {
        self.training_rows.as_ref()
    }

    /// Records the split it was trained on (saved with the model, carried into circuits), so
    /// that evaluating on the same data set uses its test rows.
    pub fn set_training_rows(&mut self, rows: Option<TrainingRows>) {
        self.training_rows = rows;
    }

    /// Writes the versioned JSON model file (`{"format":"sqnn-model","version":1,...}`).
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        write_model(
            path.as_ref(),
            T::KIND,
            &self.params,
            (&self.feature_names, &self.data_name, &self.training_rows),
            self.quantized.as_ref().ok_or_else(not_fitted)?,
        )
    }

    /// Reads an estimator of this task written by [`save`](Self::save). Every problem (not
    /// JSON, another format or version, the other task, inconsistent contents) is an
    /// [`Error::Model`] naming the file and the fix; a missing file is an [`Error::Io`].
    pub fn load(path: impl AsRef<Path>) -> Result<Self> {
        let model = Model::load(path.as_ref())?;
        let (kind, estimator) = (model.kind(), model.estimator_name());
        T::from_model(model).ok_or_else(|| {
            Error::Model(format!(
                "{}: is a {kind} model; load it with {estimator}::load or Model::load",
                path.as_ref().display()
            ))
        })
    }
}

impl Estimator<Classify> {
    /// Dequantized logits of the integer model, `n x n_classes`.
    pub fn decision_function(&self, x: &Array2<f64>) -> Result<Array2<f64>> {
        int_outputs(self.quantized.as_ref().ok_or_else(not_fitted)?, x)
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

    /// Class names (`None` before `fit`).
    pub fn classes(&self) -> Option<&[String]> {
        match self.quantized.as_ref().map(|q| &q.task) {
            Some(Task::Classify { classes }) => Some(classes),
            _ => None,
        }
    }
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

/// Either estimator, as read from a model file whose kind is not known in advance.
#[derive(Clone, Debug)]
pub enum Model {
    /// A [`NeuralNetClassifier`].
    Classifier(NeuralNetClassifier),
    /// A [`NeuralNetRegressor`].
    Regressor(NeuralNetRegressor),
}

impl From<NeuralNetClassifier> for Model {
    fn from(c: NeuralNetClassifier) -> Model {
        Model::Classifier(c)
    }
}

impl From<NeuralNetRegressor> for Model {
    fn from(r: NeuralNetRegressor) -> Model {
        Model::Regressor(r)
    }
}

impl Model {
    /// Trains the estimator `train`'s task calls for (a classifier for class labels, a
    /// regressor for real targets) on every row of `train`, reporting epochs to `progress`
    /// ([`NoProgress`] for none).
    pub fn fit(
        params: EstimatorParams,
        train: &Dataset,
        progress: &dyn Progress,
    ) -> Result<(Model, FitReport)> {
        Ok(match train.task {
            Task::Classify { .. } => {
                let mut m = NeuralNetClassifier::new(params)?;
                let r = m.fit_dataset_with_progress(train, progress)?;
                (Model::Classifier(m), r)
            }
            Task::Regress => {
                let mut m = NeuralNetRegressor::new(params)?;
                let r = m.fit_dataset_with_progress(train, progress)?;
                (Model::Regressor(m), r)
            }
        })
    }

    /// Reads any sqnn model file; see [`Estimator::load`] for the errors.
    pub fn load(path: impl AsRef<Path>) -> Result<Model> {
        Ok(Model::of_file(read_model(path.as_ref())?))
    }

    /// The model in `bytes`, the contents of the model file `path` (named in errors), checked
    /// as [`load`](Self::load) checks a file.
    pub(super) fn from_bytes(path: &Path, bytes: &[u8]) -> Result<Model> {
        Ok(Model::of_file(parse_model(path, bytes)?))
    }

    fn of_file(f: super::model_file::ModelFile) -> Model {
        fn fitted<T: TaskSpec>(f: super::model_file::ModelFile) -> Estimator<T> {
            Estimator {
                params: f.params,
                module: None,
                quantized: Some(f.model),
                feature_names: f.feature_names,
                data_name: f.data_name,
                training_rows: f.training_rows,
                task: PhantomData,
            }
        }
        if f.kind == KIND_CLASSIFIER {
            Model::Classifier(fitted(f))
        } else {
            Model::Regressor(fitted(f))
        }
    }

    /// Writes the model file.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        match self {
            Model::Classifier(c) => c.save(path),
            Model::Regressor(r) => r.save(path),
        }
    }

    /// The model file's kind: `classifier` or `regressor`.
    pub fn kind(&self) -> &'static str {
        match self {
            Model::Classifier(_) => Classify::KIND,
            Model::Regressor(_) => Regress::KIND,
        }
    }

    /// The estimator's name: `NeuralNetClassifier` or `NeuralNetRegressor`.
    fn estimator_name(&self) -> &'static str {
        match self {
            Model::Classifier(_) => Classify::ESTIMATOR,
            Model::Regressor(_) => Regress::ESTIMATOR,
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
            Model::Classifier(c) => c.data_name(),
            Model::Regressor(r) => r.data_name(),
        };
        n.unwrap_or("model")
    }

    /// The pruning mode's name (`per_neuron`, `layer_global` or `accumulator_aware`).
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

    /// The split it was trained on, when recorded.
    pub fn training_rows(&self) -> Option<&TrainingRows> {
        match self {
            Model::Classifier(c) => c.training_rows(),
            Model::Regressor(r) => r.training_rows(),
        }
    }

    /// Records the split it was trained on ([`Estimator::set_training_rows`]).
    pub fn set_training_rows(&mut self, rows: Option<TrainingRows>) {
        match self {
            Model::Classifier(c) => c.set_training_rows(rows),
            Model::Regressor(r) => r.set_training_rows(rows),
        }
    }

    /// Feature names, if known.
    pub fn feature_names(&self) -> Option<&[String]> {
        match self {
            Model::Classifier(c) => c.feature_names(),
            Model::Regressor(r) => r.feature_names(),
        }
    }

    /// What the model expects of its data: its feature names (if recorded) and its task with
    /// class labels; match data to it with [`crate::data::Schema::conform`].
    pub fn schema(&self) -> crate::data::Schema {
        crate::data::Schema {
            feature_names: self.feature_names().map(<[String]>::to_vec),
            task: self.quantized().task.clone(),
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
                let labels = crate::data::class_indices("the labels", y)?;
                c.score(x, &labels)
            }
            Model::Regressor(r) => r.score(x, y),
        }
    }
}
