//! Stage 0: data. Built-in data sets (stored in the repository under `data/`), CSV loading with
//! errors that name file, line and column, seeded (stratified) splits, the exact split Concrete ML
//! was measured on, and feature standardization.
//!
//! ```
//! use sqnn::data::{train_test_split, Dataset, Standardizer};
//!
//! let ds = Dataset::builtin("iris")?;
//! assert_eq!((ds.n_samples(), ds.n_features(), ds.n_classes()), (150, 4, Some(3)));
//!
//! let split = train_test_split(&ds, 0.25, 42)?;
//! assert_eq!(split.train.len() + split.test.len(), 150);
//!
//! let train = ds.subset(&split.train);
//! let scaler = Standardizer::fit(&train.x);
//! let z = scaler.transform(&train.x);
//! assert!(z.column(0).mean().unwrap().abs() < 1e-12);
//! # Ok::<(), sqnn::Error>(())
//! ```

mod builtin;
mod csv;
mod provenance;
mod scale;
mod schema;
mod split;

use std::path::Path;

use ndarray::{Array2, Axis};

use crate::error::{Error, Result};
use crate::fsio::bounded;
pub use crate::task::{Task, TaskKind};

pub use csv::CsvRows;
pub use provenance::{RecordedSplit, SplitUse, TrainingRows};
pub use scale::Standardizer;
pub use schema::{ColumnMatch, Conformed, RowsToPredict, Schema, MAX_NAME_LEN};

/// Largest CSV text sqnn reads (after decompression): about 30 million cells, whose features
/// take up to 1 GiB in memory.
pub const MAX_CSV_BYTES: u64 = 256 * crate::fsio::MIB;
/// Largest magnitude of a feature or regression target that sqnn takes. Training sums the
/// squares of a column's values (variances, losses, R²): past about 1e154 a square is infinite
/// and every statistic of the column with it, so larger values are refused rather than
/// silently turned into NaN scores or a useless column.
pub const MAX_ABS_VALUE: f64 = 1e150;
/// Largest split file sqnn reads.
pub const MAX_SPLIT_BYTES: u64 = 16 * crate::fsio::MIB;
pub use split::{
    peer_split, shuffled_indices, split_from_file, stratified_indices, train_test_split, Split,
    SplitSpec,
};

/// A data set in memory: raw (unstandardized) features and targets.
#[derive(Clone, Debug, PartialEq)]
pub struct Dataset {
    /// The built-in name (`"iris"`) or the CSV path / source name it was read from.
    pub name: String,
    /// One name per feature column.
    pub feature_names: Vec<String>,
    /// `n_samples x n_features` raw features (not standardized).
    pub x: Array2<f64>,
    /// Class index as `f64` (classification) or target value (regression), one per sample.
    pub y: Vec<f64>,
    /// Classification (with class names) or regression.
    pub task: Task,
}

fn data_err(
    source: &str,
    line: Option<usize>,
    column: Option<String>,
    message: impl Into<String>,
) -> Error {
    Error::Data {
        source_name: source.to_string(),
        line,
        column,
        message: message.into(),
    }
}

/// Parses a float cell, rejecting NaN and infinities (which `str::parse` accepts) and values
/// past [`MAX_ABS_VALUE`].
fn parse_finite(cell: &str) -> std::result::Result<f64, String> {
    let shown = || bounded(cell, 64);
    if cell.is_empty() {
        return Err("empty cell (missing value); fill in or drop the row".to_string());
    }
    match cell.parse::<f64>() {
        Ok(v) if v.is_finite() => {
            check_magnitude(v).map_err(|m| format!("value `{}` {m}", shown()))
        }
        Ok(_) => Err(format!(
            "value `{}` is NaN or infinite; replace it with a finite number or drop the row",
            shown()
        )),
        Err(_) => Err(format!(
            "value `{}` is not a number; features must be numeric (encode categories as \
             numbers or drop the column)",
            shown()
        )),
    }
}

/// `Err` (the end of a message that starts with the value) when `|v|` exceeds
/// [`MAX_ABS_VALUE`].
pub(crate) fn check_magnitude(v: f64) -> std::result::Result<f64, String> {
    if v.abs() <= MAX_ABS_VALUE {
        Ok(v)
    } else {
        Err(format!(
            "is too large: sqnn takes values up to {MAX_ABS_VALUE:e} in magnitude (the squares \
             in its means, variances and scores must stay finite); rescale the column (divide \
             it by a power of ten) or drop the row"
        ))
    }
}

fn list_names(names: &[String]) -> String {
    const MAX: usize = 12;
    let mut s: Vec<String> = names
        .iter()
        .take(MAX)
        .map(|n| format!("`{}`", bounded(n, 64)))
        .collect();
    if names.len() > MAX {
        s.push(format!("... ({} in all)", names.len()));
    }
    s.join(", ")
}

impl Dataset {
    /// A built-in data set if `name_or_path` is one of [`Dataset::BUILTIN`] (write `./iris` for a
    /// file of that name), else the CSV file at that path. For built-in data sets `target` must be
    /// `None` and `task`, if given, must match the data set's task.
    pub fn load(
        name_or_path: &str,
        target: Option<&str>,
        task: Option<TaskKind>,
    ) -> Result<Dataset> {
        if Self::BUILTIN.contains(&name_or_path) {
            if let Some(t) = target {
                return Err(Error::param(
                    "target",
                    format!(
                        "`{name_or_path}` is a built-in data set with a fixed target; drop \
                         `target` {t:?} (it applies to CSV files only)"
                    ),
                ));
            }
            let ds = Self::builtin(name_or_path)?;
            if let Some(k) = task {
                if k != ds.kind() {
                    return Err(Error::param(
                        "task",
                        format!(
                            "`{name_or_path}` is a {} data set; drop `task` or set it to {}",
                            kind_word(ds.kind()),
                            kind_word(ds.kind())
                        ),
                    ));
                }
            }
            return Ok(ds);
        }
        let path = Path::new(name_or_path);
        if !path.exists() {
            return Err(data_err(
                name_or_path,
                None,
                None,
                format!(
                    "neither a built-in data set ({}) nor an existing file; give one of those \
                     names or the path of a CSV file with a header row",
                    Self::BUILTIN.join(", ")
                ),
            ));
        }
        Self::from_csv(path, target, task)
    }

    /// Number of samples (rows).
    pub fn n_samples(&self) -> usize {
        self.x.nrows()
    }

    /// Number of features (columns of `x`).
    pub fn n_features(&self) -> usize {
        self.x.ncols()
    }

    /// Classification or regression.
    pub fn kind(&self) -> TaskKind {
        TaskKind::of(&self.task)
    }

    /// Class labels as indices, for classification; `None` for regression.
    ///
    /// A `y` that is not a class index (negative, fractional, NaN: only a hand-built data set
    /// holds one) becomes `usize::MAX`, a class no data set names, never a wrong class; training
    /// and the folds of `tune` refuse it first (see [`check_labels`](Self::check_labels)).
    pub fn labels(&self) -> Option<Vec<usize>> {
        match self.task {
            Task::Classify { .. } => Some(
                self.y
                    .iter()
                    .map(|&v| crate::cast::label(v).unwrap_or(usize::MAX))
                    .collect(),
            ),
            Task::Regress => None,
        }
    }

    /// For classification, `Err(Error::Input)` naming the row and value of the first `y` that
    /// is not a class index (a whole number from 0); `Ok` for regression.
    ///
    /// ```
    /// let mut ds = sqnn::Dataset::builtin("iris")?;
    /// assert!(ds.check_labels().is_ok());
    /// ds.y[3] = 1.5;
    /// let e = ds.check_labels().unwrap_err().to_string();
    /// assert!(e.contains("row 3: label 1.5 is not a class index"), "{e}");
    /// # Ok::<(), sqnn::Error>(())
    /// ```
    pub fn check_labels(&self) -> Result<()> {
        match self.task {
            Task::Classify { .. } => class_indices(&self.name, &self.y).map(drop),
            Task::Regress => Ok(()),
        }
    }

    /// Number of classes, for classification; `None` for regression.
    pub fn n_classes(&self) -> Option<usize> {
        match &self.task {
            Task::Classify { classes } => Some(classes.len()),
            Task::Regress => None,
        }
    }

    /// The rows `idx` (in that order), same name, features and task.
    ///
    /// # Panics
    /// If an index is `>= n_samples()`.
    pub fn subset(&self, idx: &[usize]) -> Dataset {
        Dataset {
            name: self.name.clone(),
            feature_names: self.feature_names.clone(),
            x: self.x.select(Axis(0), idx),
            y: idx.iter().map(|&i| self.y[i]).collect(),
            task: self.task.clone(),
        }
    }
}

fn kind_word(k: TaskKind) -> &'static str {
    match k {
        TaskKind::Classify => "classify",
        TaskKind::Regress => "regress",
    }
}

/// The class indices of `y` (class labels of `source`), or `Err(Error::Input)` naming the row
/// and value of the first that is not one: a whole number from 0, never truncated to one.
pub(crate) fn class_indices(source: &str, y: &[f64]) -> Result<Vec<usize>> {
    y.iter()
        .enumerate()
        .map(|(row, &v)| {
            crate::cast::label(v).ok_or_else(|| {
                Error::Input(format!(
                    "{source}: row {row}: label {v} is not a class index; a classifier's \
                     targets are whole numbers from 0 (class k as k.0)"
                ))
            })
        })
        .collect()
}

/// `Err(Error::Input)` naming the row and column (0-based) of the first NaN or infinite value
/// in `x`; `what` says which array (for example "test features").
///
/// ```
/// let mut x = ndarray::Array2::<f64>::zeros((2, 3));
/// assert!(sqnn::data::check_finite(&x, "x").is_ok());
/// x[[1, 2]] = f64::NAN;
/// let e = sqnn::data::check_finite(&x, "x").unwrap_err().to_string();
/// assert!(e.contains("row 1, column 2"), "{e}");
/// ```
pub fn check_finite(x: &Array2<f64>, what: &str) -> Result<()> {
    for ((r, c), v) in x.indexed_iter() {
        if !v.is_finite() {
            return Err(Error::Input(format!(
                "{what}: row {r}, column {c} (0-based) is {v}; all values must be finite \
                 numbers (remove or impute missing values)"
            )));
        }
    }
    Ok(())
}
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_finite_rejects_nan_inf_and_text() {
        assert_eq!(parse_finite("1.5"), Ok(1.5));
        assert_eq!(parse_finite("-1e150"), Ok(-1e150));
        for bad in [
            "nan", "NaN", "inf", "-inf", "infinity", "1e400", "1e308", "-2e150", "", "abc",
        ] {
            assert!(parse_finite(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn embedded_splits_parse_and_cover_rows() {
        for (name, n) in [("iris", 150), ("breast_cancer", 569), ("diabetes", 442)] {
            let s = peer_split(name).expect(name);
            let mut all: Vec<usize> = s.train.iter().chain(&s.test).copied().collect();
            all.sort_unstable();
            assert_eq!(all, (0..n).collect::<Vec<_>>(), "{name}");
        }
    }

    #[test]
    fn stratified_clamps_small_classes() {
        // Class 0 has one row (stays in train), class 1 has two rows (one each side).
        let (tr, te) = stratified_indices(&[0, 1, 1], 0.9, 1).unwrap();
        assert!(tr.contains(&0));
        assert_eq!((tr.len(), te.len()), (2, 1));
    }

    #[test]
    fn numeric_classes_sort_numerically() {
        let text = "a,b,y\n0,0,10\n0,0,9\n0,0,-1\n0,0,9.0\n";
        let ds = Dataset::from_csv_reader("t", text.as_bytes(), None, None).unwrap();
        assert_eq!(
            ds.task,
            Task::Classify {
                classes: vec!["-1".into(), "9".into(), "10".into()]
            }
        );
        assert_eq!(ds.labels().unwrap(), vec![2, 1, 0, 1]);
    }
}
