//! Knowledge distillation ([`Distill`]): a small student learns from the soft targets of a
//! larger sqnn model (the teacher) trained on the same rows, as well as from the labels. The
//! teacher's logits come from its quantized model in the clear (the integer forward pass, on
//! the rows each batch shows the student: shifted rows with shift augmentation).

use std::path::Path;
use std::sync::Arc;

use ndarray::{Array1, Array2, Axis};
use serde::{Deserialize, Serialize};

use super::Model;
use crate::data::TrainingRows;
use crate::error::{Error, Result};
use crate::task::Task;
use crate::train::quantize::{Activation, QuantizedMlp};

/// Distillation from a teacher model: the student's loss on a batch is
/// `(1 - weight) * CE(labels, student) + weight * T² * KL(softmax(teacher / T) ‖ softmax(student / T))`
/// with `T = temperature` (classification only). The model file records the teacher's file
/// hash and path, `temperature` and `weight`; the loaded teacher itself is not recorded (a
/// model read back from its file can be used, not trained again with the same teacher unless
/// it is loaded again with [`Distill::from_file`]).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Distill {
    /// SHA-256 of the teacher's model file.
    pub teacher_sha256: String,
    /// The teacher's model file, as given.
    pub teacher_path: String,
    /// Softmax temperature of the soft targets (> 0; 2 to 4 is usual).
    pub temperature: f64,
    /// Share of the distillation term in the loss, in `[0, 1]` (0: labels only).
    pub weight: f64,
    /// The loaded teacher (absent in a model file read back).
    #[serde(skip)]
    pub teacher: Option<Arc<Teacher>>,
}

impl PartialEq for Distill {
    /// The recorded fields (the loaded teacher is what the hash names).
    fn eq(&self, o: &Distill) -> bool {
        self.teacher_sha256 == o.teacher_sha256
            && self.teacher_path == o.teacher_path
            && self.temperature == o.temperature
            && self.weight == o.weight
    }
}

/// A teacher model ready to compute logits on batches of raw rows.
#[derive(Debug)]
pub struct Teacher {
    model: QuantizedMlp,
    data_name: Option<String>,
    training_rows: Option<TrainingRows>,
    /// Each layer's integer weights as a dense `in_dim x out_dim` matrix (exact in `f64`).
    dense: Vec<Array2<f64>>,
}

/// The default distillation temperature.
pub const DISTILL_TEMPERATURE: f64 = 3.0;
/// The default share of the distillation term.
pub const DISTILL_WEIGHT: f64 = 0.7;

impl Distill {
    /// Reads the teacher's model file at `path` (a classifier written by sqnn) for distillation
    /// at `temperature` with share `weight`.
    ///
    /// Errors: [`Error::Model`] for a file that is not a model, [`Error::InvalidParameter`]
    /// (`distill`) for a regressor teacher or a temperature or weight out of range.
    pub fn from_file(path: &Path, temperature: f64, weight: f64) -> Result<Distill> {
        // One read: the recorded hash is of the bytes the teacher is loaded from.
        let bytes = crate::fsio::read_limited(path, super::MAX_MODEL_BYTES, "teacher model")?;
        let model = Model::from_bytes(path, &bytes)?;
        let Model::Classifier(_) = &model else {
            return Err(Error::param(
                "distill",
                format!(
                    "the teacher {} is a regressor; distillation learns from class \
                     probabilities: give a classifier trained on the same data",
                    path.display()
                ),
            ));
        };
        let d = Distill {
            teacher_sha256: crate::fsio::sha256_hex(&bytes),
            teacher_path: path.display().to_string(),
            temperature,
            weight,
            teacher: Some(Arc::new(Teacher::new(
                model.quantized().clone(),
                model.data_name().to_owned(),
                model.training_rows().cloned(),
            )?)),
        };
        d.validate()?;
        Ok(d)
    }

    /// Checks the temperature and the weight.
    pub fn validate(&self) -> Result<()> {
        if !(self.temperature.is_finite() && self.temperature > 0.0) {
            return Err(Error::param(
                "distill",
                format!(
                    "temperature {} must be positive and finite (2 to 4 is usual)",
                    self.temperature
                ),
            ));
        }
        if !(0.0..=1.0).contains(&self.weight) {
            return Err(Error::param(
                "distill",
                format!(
                    "weight {} must be in [0, 1]: the share of the teacher's term in the loss",
                    self.weight
                ),
            ));
        }
        Ok(())
    }

    /// The loaded teacher, or an error naming the fix when only the record is there (a model
    /// file's parameters trained again).
    pub(super) fn loaded(&self) -> Result<&Arc<Teacher>> {
        self.teacher.as_ref().ok_or_else(|| {
            Error::param(
                "distill",
                format!(
                    "the teacher {} (sha256 {}) is recorded but not loaded; load it with \
                     Distill::from_file (--distill-from on the command line)",
                    self.teacher_path, self.teacher_sha256
                ),
            )
        })
    }

    /// Refuses a teacher not trained on the student's training rows `student`: another data
    /// set, another split, or a teacher file that records none.
    pub fn check_rows(&self, student: &TrainingRows) -> Result<()> {
        let t = self.loaded()?;
        let path = &self.teacher_path;
        let fix = format!(
            "train the teacher with `sqnn train --data {} {}` (the student's data and split)",
            student.data,
            student.split.flags()
        );
        let Some(rows) = &t.training_rows else {
            return Err(Error::param(
                "distill",
                format!("the teacher {path} records no training split; {fix}"),
            ));
        };
        if rows.data != student.data {
            return Err(Error::param(
                "distill",
                format!(
                    "the teacher {path} was trained on {:?}, the student trains on {:?}; {fix}",
                    rows.data, student.data
                ),
            ));
        }
        if rows.train_sha256 != student.train_sha256 || rows.rows != student.rows {
            return Err(Error::param(
                "distill",
                format!(
                    "the teacher {path} was trained on other rows of {} ({}, {} training \
                     rows; the student: {}, {}): its soft targets would leak rows the student \
                     is tested on; {fix}",
                    student.data,
                    rows.split.flags(),
                    rows.train_rows,
                    student.split.flags(),
                    student.train_rows
                ),
            ));
        }
        Ok(())
    }
}

impl Teacher {
    /// A teacher from its quantized model and what its file records.
    pub fn new(
        model: QuantizedMlp,
        data_name: String,
        training_rows: Option<TrainingRows>,
    ) -> Result<Teacher> {
        let mut dense = Vec::with_capacity(model.layers.len());
        for layer in &model.layers {
            let mut w = Array2::zeros((layer.in_dim, layer.out_dim()));
            for (i, row) in layer.rows.iter().enumerate() {
                for &(j, v) in row {
                    // Integer weights of at most 8 bits: exact in f64.
                    *w.get_mut((j, i)).ok_or_else(|| {
                        Error::Model(format!(
                            "teacher: weight of input {j} outside the layer's {} inputs",
                            layer.in_dim
                        ))
                    })? = v as f64;
                }
            }
            dense.push(w);
        }
        Ok(Teacher {
            model,
            data_name: Some(data_name),
            training_rows,
            dense,
        })
    }

    /// Checks the teacher against a student fit: classification with the same classes and
    /// the same number of features.
    pub(super) fn check_fit(&self, n_features: usize, task: &Task) -> Result<()> {
        let name = self.data_name.as_deref().unwrap_or("model");
        let Task::Classify { classes } = task else {
            return Err(Error::param(
                "distill",
                "distillation is for classification (soft class probabilities); train a \
                 regressor without a teacher",
            ));
        };
        if self.model.input_dim() != n_features {
            return Err(Error::param(
                "distill",
                format!(
                    "the teacher (trained on {name}) reads {} features, the student's data has \
                     {n_features}; give a teacher trained on the same data and split",
                    self.model.input_dim()
                ),
            ));
        }
        let t_classes = match &self.model.task {
            Task::Classify { classes } => classes.len(),
            Task::Regress => 0,
        };
        if t_classes != classes.len() {
            return Err(Error::param(
                "distill",
                format!(
                    "the teacher (trained on {name}) has {t_classes} classes, the student's data \
                     {}; give a teacher trained on the same data and split",
                    classes.len()
                ),
            ));
        }
        Ok(())
    }

    /// The teacher's logits for raw rows `raw` (`n x features`): its integer forward pass
    /// ([`QuantizedMlp::forward_int`] and `dequantize_output`), one matrix product per layer.
    pub(super) fn logits(&self, raw: &Array2<f64>) -> Array2<f64> {
        let m = &self.model;
        let q0 = &m.layers[0].input_quant;
        let mean = Array1::from(m.feature_mean.clone());
        let std = Array1::from(m.feature_std.clone());
        let mut q = ((raw - &mean) / &std).mapv(|x| q0.quantize(x) as f64);
        let n = m.layers.len();
        for (l, (layer, w)) in m.layers.iter().zip(&self.dense).enumerate() {
            // Integer accumulators: sums of products of small integers, exact in f64.
            let mut acc = q.dot(w);
            let act = layer.activation.unwrap_or(Activation::Identity);
            let next = m.layers.get(l + 1).map(|x| &x.input_quant);
            for mut row in acc.rows_mut() {
                for (i, a) in row.iter_mut().enumerate() {
                    let z =
                        layer.preactivation(i, crate::cast::round_clamp(*a, i64::MIN, i64::MAX));
                    *a = match next {
                        Some(nq) => nq.quantize(act.apply(z)) as f64,
                        None => z,
                    };
                }
            }
            if l + 1 == n {
                return acc;
            }
            q = acc;
        }
        q
    }
}

/// Row-wise softmax of `z / t`.
fn softmax(z: &Array2<f64>, t: f64) -> Array2<f64> {
    let mut p = z / t;
    for mut row in p.rows_mut() {
        let m = row.iter().fold(f64::NEG_INFINITY, |a, &b| a.max(b));
        row.mapv_inplace(|v| (v - m).exp());
        let s = row.sum();
        row /= s;
    }
    p
}

/// The distillation term `T² * KL(softmax(teacher / T) ‖ softmax(z / T))`, averaged over the
/// rows, and its gradient with respect to `z` (`T * (softmax(z / T) - softmax(teacher / T)) / n`).
pub(super) fn soft_loss(z: &Array2<f64>, teacher: &Array2<f64>, t: f64) -> (f64, Array2<f64>) {
    let n = z.nrows() as f64;
    let ps = softmax(z, t);
    let pt = softmax(teacher, t);
    let mut loss = 0.0;
    for (s, q) in ps.rows().into_iter().zip(pt.rows()) {
        for (&a, &b) in s.iter().zip(q.iter()) {
            if b > 0.0 {
                loss += b * (b.ln() - a.max(f64::MIN_POSITIVE).ln());
            }
        }
    }
    let g = (&ps - &pt) * (t / n);
    (t * t * loss / n, g)
}

/// The teacher's part in one training run: its logits on the unshifted training rows (computed
/// once) or, with shift augmentation, on each batch.
pub(super) struct RunTeacher {
    pub(super) teacher: Arc<Teacher>,
    pub(super) temperature: f64,
    pub(super) weight: f64,
    /// The teacher's logits on the training rows as given (`None` with shift augmentation).
    pub(super) fixed: Option<Array2<f64>>,
}

impl RunTeacher {
    /// The teacher's logits for batch `rows` of the training rows, whose raw (shifted) values
    /// are `raw` when augmentation shifted them.
    pub(super) fn logits(&self, rows: &[usize], raw: Option<&Array2<f64>>) -> Array2<f64> {
        match (&self.fixed, raw) {
            (_, Some(r)) => self.teacher.logits(r),
            (Some(f), None) => f.select(Axis(0), rows),
            (None, None) => unreachable!("a run without augmentation keeps the teacher's logits"),
        }
    }

    /// Mixes the label loss and gradient `(ce, g)` of outputs `z` with the distillation term.
    pub(super) fn mix(
        &self,
        z: &Array2<f64>,
        teacher: &Array2<f64>,
        (ce, g): (f64, Array2<f64>),
    ) -> (f64, Array2<f64>) {
        let (kl, gk) = soft_loss(z, teacher, self.temperature);
        let a = self.weight;
        ((1.0 - a) * ce + a * kl, g * (1.0 - a) + gk * a)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn soft_loss_gradient_matches_finite_differences() {
        let z = Array2::from_shape_vec((2, 3), vec![0.3, -1.2, 2.0, 1.5, 0.1, -0.4]).unwrap();
        let t = Array2::from_shape_vec((2, 3), vec![1.0, 0.5, 3.0, -2.0, 2.5, 0.0]).unwrap();
        for temp in [1.0, 2.0, 4.0] {
            let (l, g) = soft_loss(&z, &t, temp);
            assert!(l > 0.0, "different distributions have a positive KL");
            let h = 1e-6;
            for i in 0..2 {
                for k in 0..3 {
                    let mut zp = z.clone();
                    zp[[i, k]] += h;
                    let mut zm = z.clone();
                    zm[[i, k]] -= h;
                    let fd = (soft_loss(&zp, &t, temp).0 - soft_loss(&zm, &t, temp).0) / (2.0 * h);
                    assert!(
                        (fd - g[[i, k]]).abs() < 1e-7,
                        "T {temp}, [{i},{k}]: finite difference {fd} against gradient {}",
                        g[[i, k]]
                    );
                }
            }
        }
        // The student matching the teacher has no distillation loss and no gradient.
        let (l, g) = soft_loss(&t, &t, 3.0);
        assert!(l.abs() < 1e-12 && g.iter().all(|v| v.abs() < 1e-12));
    }

    #[test]
    fn teacher_logits_are_the_integer_forward_pass() {
        use crate::train::{EstimatorParams, NeuralNetClassifier};
        let x = Array2::from_shape_fn((60, 3), |(i, j)| {
            (i % 3) as f64 * 2.0 + ((i * 7 + j * 3) % 5) as f64 * 0.3
        });
        let y: Vec<usize> = (0..60).map(|i| i % 3).collect();
        let mut c = NeuralNetClassifier::new(EstimatorParams {
            epochs: 10,
            n_hidden_neurons_multiplier: 3.0,
            ..Default::default()
        })
        .unwrap();
        c.fit(&x, &y).unwrap();
        let q = c.quantized().unwrap().clone();
        let t = Teacher::new(q.clone(), "blobs".into(), None).unwrap();
        let z = t.logits(&x);
        for (i, row) in x.rows().into_iter().enumerate() {
            let raw = row.to_vec();
            let want = q.dequantize_output(&q.forward_int(&q.quantize_input(&raw)));
            assert_eq!(z.row(i).to_vec(), want, "row {i}");
        }
    }
}
