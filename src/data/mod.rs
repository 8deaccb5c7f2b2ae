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

use std::collections::{BTreeMap, HashSet};
use std::io::Read;
use std::path::Path;

use ndarray::{Array2, Axis};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
pub use crate::task::{Task, TaskKind};

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

// ---------------------------------------------------------------------------------------------
// Embedded files
// ---------------------------------------------------------------------------------------------

const IRIS_CSV: &[u8] = include_bytes!("../../data/iris.csv");
const BREAST_CANCER_CSV: &[u8] = include_bytes!("../../data/breast_cancer.csv");
const DIABETES_DATA_GZ: &[u8] = include_bytes!("../../data/diabetes_data_raw.csv.gz");
const DIABETES_TARGET_GZ: &[u8] = include_bytes!("../../data/diabetes_target.csv.gz");
const MNIST_GZ: &[u8] = include_bytes!("../../data/mnist10k.csv.gz");
const SPLITS_JSON: &str = include_str!("../../data/splits.json");

const IRIS_FEATURES: [&str; 4] = [
    "sepal length (cm)",
    "sepal width (cm)",
    "petal length (cm)",
    "petal width (cm)",
];

const BREAST_CANCER_FEATURES: [&str; 30] = [
    "mean radius",
    "mean texture",
    "mean perimeter",
    "mean area",
    "mean smoothness",
    "mean compactness",
    "mean concavity",
    "mean concave points",
    "mean symmetry",
    "mean fractal dimension",
    "radius error",
    "texture error",
    "perimeter error",
    "area error",
    "smoothness error",
    "compactness error",
    "concavity error",
    "concave points error",
    "symmetry error",
    "fractal dimension error",
    "worst radius",
    "worst texture",
    "worst perimeter",
    "worst area",
    "worst smoothness",
    "worst compactness",
    "worst concavity",
    "worst concave points",
    "worst symmetry",
    "worst fractal dimension",
];

const DIABETES_FEATURES: [&str; 10] = [
    "age", "sex", "bmi", "bp", "s1", "s2", "s3", "s4", "s5", "s6",
];

/// Targets with at most this many distinct integer values are inferred to be class labels.
const MAX_INFERRED_CLASSES: usize = 20;

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

fn gunzip(source: &str, bytes: &[u8]) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(bytes)
        .read_to_end(&mut out)
        .map_err(|e| {
            data_err(
                source,
                None,
                None,
                format!("cannot decompress gzip data: {e}"),
            )
        })?;
    Ok(out)
}

fn utf8<'a>(source: &str, bytes: &'a [u8]) -> Result<&'a str> {
    std::str::from_utf8(bytes).map_err(|e| {
        data_err(
            source,
            None,
            None,
            format!("not valid UTF-8 text ({e}); save the file as UTF-8"),
        )
    })
}

/// Parses a float cell, rejecting NaN and infinities (which `str::parse` accepts).
fn parse_finite(cell: &str) -> std::result::Result<f64, String> {
    if cell.is_empty() {
        return Err("empty cell (missing value); fill in or drop the row".to_string());
    }
    match cell.parse::<f64>() {
        Ok(v) if v.is_finite() => Ok(v),
        Ok(_) => Err(format!(
            "value `{cell}` is NaN or infinite; replace it with a finite number or drop the row"
        )),
        Err(_) => Err(format!(
            "value `{cell}` is not a number; features must be numeric (encode categories as \
             numbers or drop the column)"
        )),
    }
}

// ---------------------------------------------------------------------------------------------
// Built-in parsers
// ---------------------------------------------------------------------------------------------

/// scikit-learn's raw layout: first line `n_samples,n_features,class names...`, then the
/// features and an integer label per line.
fn parse_sklearn_csv(name: &str, bytes: &[u8], feature_names: &[&str]) -> Result<Dataset> {
    let text = utf8(name, bytes)?;
    let mut lines = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty());
    let (_, head) = lines
        .next()
        .ok_or_else(|| data_err(name, None, None, "empty file"))?;
    let head: Vec<&str> = head.split(',').map(str::trim).collect();
    let bad_head = || {
        data_err(
            name,
            Some(1),
            None,
            "first line must be `n_samples,n_features,class names...`",
        )
    };
    if head.len() < 4 {
        return Err(bad_head());
    }
    let n_samples: usize = head[0].parse().map_err(|_| bad_head())?;
    let n_features: usize = head[1].parse().map_err(|_| bad_head())?;
    if n_features != feature_names.len() {
        return Err(bad_head());
    }
    let classes: Vec<String> = head[2..].iter().map(|s| s.to_string()).collect();
    let mut xs = Vec::with_capacity(n_samples * n_features);
    let mut y = Vec::with_capacity(n_samples);
    for (i, line) in lines {
        let lineno = i + 1;
        let cells: Vec<&str> = line.split(',').map(str::trim).collect();
        if cells.len() != n_features + 1 {
            return Err(data_err(
                name,
                Some(lineno),
                None,
                format!("expected {} fields, found {}", n_features + 1, cells.len()),
            ));
        }
        for (j, c) in cells[..n_features].iter().enumerate() {
            xs.push(
                parse_finite(c)
                    .map_err(|m| data_err(name, Some(lineno), Some((j + 1).to_string()), m))?,
            );
        }
        let label: usize = cells[n_features]
            .parse()
            .ok()
            .filter(|&l| l < classes.len())
            .ok_or_else(|| {
                data_err(
                    name,
                    Some(lineno),
                    Some((n_features + 1).to_string()),
                    format!("label `{}` is not a class index", cells[n_features]),
                )
            })?;
        y.push(label as f64);
    }
    if y.len() != n_samples {
        return Err(data_err(
            name,
            None,
            None,
            format!("header says {n_samples} rows, found {}", y.len()),
        ));
    }
    let x = Array2::from_shape_vec((n_samples, n_features), xs)
        .map_err(|e| data_err(name, None, None, e.to_string()))?;
    Ok(Dataset {
        name: name.to_string(),
        feature_names: feature_names.iter().map(|s| s.to_string()).collect(),
        x,
        y,
        task: Task::Classify { classes },
    })
}

fn parse_diabetes() -> Result<Dataset> {
    let name = "diabetes";
    let data = gunzip(name, DIABETES_DATA_GZ)?;
    let target = gunzip(name, DIABETES_TARGET_GZ)?;
    let n_features = DIABETES_FEATURES.len();
    let mut xs = Vec::new();
    for (i, line) in utf8(name, &data)?.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let cells: Vec<&str> = line.split_whitespace().collect();
        if cells.len() != n_features {
            return Err(data_err(
                name,
                Some(i + 1),
                None,
                format!("expected {n_features} fields, found {}", cells.len()),
            ));
        }
        for (j, c) in cells.iter().enumerate() {
            xs.push(
                parse_finite(c)
                    .map_err(|m| data_err(name, Some(i + 1), Some((j + 1).to_string()), m))?,
            );
        }
    }
    let mut y = Vec::new();
    for (i, line) in utf8(name, &target)?.lines().enumerate() {
        let c = line.trim();
        if c.is_empty() {
            continue;
        }
        y.push(parse_finite(c).map_err(|m| data_err(name, Some(i + 1), None, m))?);
    }
    let n = xs.len() / n_features;
    if y.len() != n {
        return Err(data_err(
            name,
            None,
            None,
            format!("{n} feature rows but {} targets", y.len()),
        ));
    }
    let x = Array2::from_shape_vec((n, n_features), xs)
        .map_err(|e| data_err(name, None, None, e.to_string()))?;
    Ok(Dataset {
        name: name.to_string(),
        feature_names: DIABETES_FEATURES.iter().map(|s| s.to_string()).collect(),
        x,
        y,
        task: Task::Regress,
    })
}

/// MNIST: 10 000 rows of `label,p0..p783`, all small non-negative integers. Parsed by hand over
/// the decompressed bytes (much faster than a general float parser).
fn parse_mnist() -> Result<Dataset> {
    let name = "mnist";
    let bytes = gunzip(name, MNIST_GZ)?;
    let mut lines = bytes.split(|&b| b == b'\n');
    let header = lines
        .next()
        .ok_or_else(|| data_err(name, None, None, "empty file"))?;
    let header = utf8(name, header)?.trim_end_matches('\r');
    let cols: Vec<&str> = header.split(',').collect();
    if cols.len() < 2 || cols[0] != "label" {
        return Err(data_err(
            name,
            Some(1),
            None,
            "header must be `label,p0,...`",
        ));
    }
    let feature_names: Vec<String> = cols[1..].iter().map(|s| s.to_string()).collect();
    let n_features = feature_names.len();
    let mut xs: Vec<f64> = Vec::with_capacity(10_000 * n_features);
    let mut y = Vec::with_capacity(10_000);
    for (i, line) in lines.enumerate() {
        let lineno = i + 2;
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            continue;
        }
        let mut n_fields = 0usize;
        for (j, cell) in line.split(|&b| b == b',').enumerate() {
            let mut v: u32 = 0;
            let ok = !cell.is_empty()
                && cell.len() <= 6
                && cell.iter().all(|&b| {
                    v = v * 10 + u32::from(b.wrapping_sub(b'0'));
                    b.is_ascii_digit()
                });
            if !ok {
                return Err(data_err(
                    name,
                    Some(lineno),
                    Some((j + 1).to_string()),
                    format!(
                        "value `{}` is not a non-negative integer",
                        String::from_utf8_lossy(cell)
                    ),
                ));
            }
            if j == 0 {
                if v > 9 {
                    return Err(data_err(
                        name,
                        Some(lineno),
                        Some("1".into()),
                        format!("label {v} is not a digit"),
                    ));
                }
                y.push(f64::from(v));
            } else if j <= n_features {
                xs.push(f64::from(v));
            }
            n_fields += 1;
        }
        if n_fields != n_features + 1 {
            return Err(data_err(
                name,
                Some(lineno),
                None,
                format!("expected {} fields, found {n_fields}", n_features + 1),
            ));
        }
    }
    let x = Array2::from_shape_vec((y.len(), n_features), xs)
        .map_err(|e| data_err(name, None, None, e.to_string()))?;
    Ok(Dataset {
        name: name.to_string(),
        feature_names,
        x,
        y,
        task: Task::Classify {
            classes: (0..10).map(|d| d.to_string()).collect(),
        },
    })
}

// ---------------------------------------------------------------------------------------------
// General CSV
// ---------------------------------------------------------------------------------------------

/// Column label for messages: `3 (`name`)`, or just the number if the header cell is empty.
fn col_label(index0: usize, name: &str) -> String {
    if name.is_empty() {
        format!("{}", index0 + 1)
    } else {
        format!("{} (`{name}`)", index0 + 1)
    }
}

fn read_csv<R: Read>(
    source: &str,
    r: R,
    target: Option<&str>,
    task: Option<TaskKind>,
) -> Result<Dataset> {
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(r);
    let csv_err = |e: csv::Error| {
        let line = e.position().map(|p| p.line() as usize);
        let message = match e.kind() {
            csv::ErrorKind::Io(io) => format!("cannot read the file: {io}"),
            _ => format!("malformed CSV: {e}"),
        };
        data_err(source, line, None, message)
    };

    // Header.
    let mut record = csv::ByteRecord::new();
    let header: Vec<String> = loop {
        if !rdr.read_byte_record(&mut record).map_err(csv_err)? {
            return Err(data_err(
                source,
                None,
                None,
                "the file is empty; expected a header row with column names, then one row per \
                 sample",
            ));
        }
        if is_blank(&record) {
            continue;
        }
        let line = record.position().map(|p| p.line() as usize);
        let mut names = Vec::with_capacity(record.len());
        for (j, cell) in record.iter().enumerate() {
            let cell = if j == 0 {
                cell.strip_prefix(b"\xEF\xBB\xBF".as_slice())
                    .unwrap_or(cell)
            } else {
                cell
            };
            let s = std::str::from_utf8(cell).map_err(|_| {
                data_err(
                    source,
                    line,
                    Some((j + 1).to_string()),
                    "column name is not valid UTF-8 text; save the file as UTF-8",
                )
            })?;
            names.push(s.trim().to_string());
        }
        break names;
    };
    let n_cols = header.len();

    if n_cols < 3 {
        return Err(data_err(
            source,
            Some(1),
            None,
            format!(
                "the header has {n_cols} column(s) ({}); sqnn needs at least 2 feature columns \
                 plus the target column (check the delimiter: it must be a comma)",
                list_names(&header)
            ),
        ));
    }

    // Target column.
    let t = match target {
        Some(name) => {
            let hits: Vec<usize> = (0..n_cols).filter(|&j| header[j] == name).collect();
            match hits.as_slice() {
                [j] => *j,
                [] => {
                    return Err(data_err(
                        source,
                        Some(1),
                        None,
                        format!(
                            "no column named `{name}`; the columns are {}; use --target NAME with \
                             one of them",
                            list_names(&header)
                        ),
                    ))
                }
                _ => {
                    return Err(data_err(
                        source,
                        Some(1),
                        None,
                        format!(
                            "{} columns are named `{name}`; rename all but one so the target is \
                             unambiguous",
                            hits.len()
                        ),
                    ))
                }
            }
        }
        None => n_cols - 1,
    };
    let n_features = n_cols - 1;

    // Rows.
    let mut xs: Vec<f64> = Vec::new();
    let mut targets: Vec<(String, usize)> = Vec::new(); // (cell, line)
    while rdr.read_byte_record(&mut record).map_err(csv_err)? {
        if is_blank(&record) {
            continue;
        }
        let line = record.position().map(|p| p.line() as usize);
        if record.len() != n_cols {
            return Err(data_err(
                source,
                line,
                None,
                format!(
                    "expected {n_cols} fields (as in the header), found {}; every row needs \
                     exactly one value per column",
                    record.len()
                ),
            ));
        }
        for (j, cell) in record.iter().enumerate() {
            let col = || Some(col_label(j, &header[j]));
            let s = std::str::from_utf8(cell).map_err(|_| {
                data_err(
                    source,
                    line,
                    col(),
                    "cell is not valid UTF-8 text; save the file as UTF-8",
                )
            })?;
            if j == t {
                if s.is_empty() {
                    return Err(data_err(
                        source,
                        line,
                        col(),
                        "missing target value (empty cell); fill it in or drop the row",
                    ));
                }
                targets.push((s.to_string(), line.unwrap_or(0)));
            } else {
                xs.push(parse_finite(s).map_err(|m| data_err(source, line, col(), m))?);
            }
        }
    }
    let n = targets.len();
    if n == 0 {
        return Err(data_err(
            source,
            None,
            None,
            "the file has a header row but no data rows; add one row per sample below the header",
        ));
    }

    // Target: numeric or not, then the task.
    let tcol = col_label(t, &header[t]);
    let mut numeric: Vec<f64> = Vec::with_capacity(n);
    let mut all_numeric = true;
    for (cell, line) in &targets {
        match cell.parse::<f64>() {
            Ok(v) if v.is_finite() => numeric.push(v + 0.0), // -0 -> +0
            Ok(_) => {
                return Err(data_err(
                    source,
                    Some(*line),
                    Some(tcol),
                    format!(
                        "target `{cell}` is NaN or infinite; replace it with a finite value or \
                         drop the row"
                    ),
                ))
            }
            Err(_) => {
                if task == Some(TaskKind::Regress) {
                    return Err(data_err(
                        source,
                        Some(*line),
                        Some(tcol),
                        format!(
                            "target `{cell}` is not a number, but regression needs numeric \
                             targets; fix the value, or choose classification (--task classify)"
                        ),
                    ));
                }
                all_numeric = false;
                break;
            }
        }
    }
    let kind = match task {
        Some(k) => k,
        None if !all_numeric => TaskKind::Classify,
        None => {
            let integral = numeric.iter().all(|v| v.fract() == 0.0 && v.abs() < 1e15);
            let mut distinct: Vec<f64> = numeric.clone();
            distinct.sort_by(f64::total_cmp);
            distinct.dedup();
            if integral && distinct.len() <= MAX_INFERRED_CLASSES {
                TaskKind::Classify
            } else {
                TaskKind::Regress
            }
        }
    };

    let (y, task) = match kind {
        TaskKind::Regress => (numeric, Task::Regress),
        TaskKind::Classify => {
            let (classes, y): (Vec<String>, Vec<f64>) = if all_numeric {
                let mut distinct = numeric.clone();
                distinct.sort_by(f64::total_cmp);
                distinct.dedup();
                let y = numeric
                    .iter()
                    .map(|v| distinct.partition_point(|d| d < v) as f64)
                    .collect();
                (distinct.iter().map(|v| format!("{v}")).collect(), y)
            } else {
                let mut names: Vec<&str> = targets.iter().map(|(c, _)| c.as_str()).collect();
                names.sort_unstable();
                names.dedup();
                let y = targets
                    .iter()
                    .map(|(c, _)| names.partition_point(|d| *d < c.as_str()) as f64)
                    .collect();
                (names.iter().map(|s| s.to_string()).collect(), y)
            };
            if classes.len() < 2 {
                return Err(data_err(
                    source,
                    None,
                    Some(tcol),
                    format!(
                        "the target has a single value `{}` in all {n} rows; classification needs \
                         at least two classes (check --target, or add samples of other classes)",
                        classes.first().map(String::as_str).unwrap_or("")
                    ),
                ));
            }
            (y, Task::Classify { classes })
        }
    };

    let feature_names: Vec<String> = (0..n_cols)
        .filter(|&j| j != t)
        .map(|j| {
            if header[j].is_empty() {
                format!("column {}", j + 1)
            } else {
                header[j].clone()
            }
        })
        .collect();
    let x = Array2::from_shape_vec((n, n_features), xs)
        .map_err(|e| data_err(source, None, None, e.to_string()))?;
    Ok(Dataset {
        name: source.to_string(),
        feature_names,
        x,
        y,
        task,
    })
}

fn is_blank(record: &csv::ByteRecord) -> bool {
    record.iter().all(|c| c.iter().all(u8::is_ascii_whitespace))
}

fn list_names(names: &[String]) -> String {
    const MAX: usize = 12;
    let mut s: Vec<String> = names.iter().take(MAX).map(|n| format!("`{n}`")).collect();
    if names.len() > MAX {
        s.push(format!("... ({} in all)", names.len()));
    }
    s.join(", ")
}

impl Dataset {
    /// Names accepted by [`Dataset::builtin`] and [`Dataset::load`].
    pub const BUILTIN: &'static [&'static str] = &["iris", "breast_cancer", "diabetes", "mnist"];

    /// A built-in data set, embedded in the binary (`data/` in the repository):
    /// `iris` (150 x 4, 3 classes), `breast_cancer` (569 x 30, 2 classes), `diabetes`
    /// (442 x 10, regression), `mnist` (10 000 x 784 pixels 0–255, 10 classes).
    ///
    /// ```
    /// let ds = sqnn::data::Dataset::builtin("breast_cancer")?;
    /// assert_eq!(ds.x.dim(), (569, 30));
    /// assert_eq!(ds.feature_names[0], "mean radius");
    /// assert!(sqnn::data::Dataset::builtin("cifar").is_err());
    /// # Ok::<(), sqnn::Error>(())
    /// ```
    pub fn builtin(name: &str) -> Result<Dataset> {
        match name {
            "iris" => parse_sklearn_csv(name, IRIS_CSV, &IRIS_FEATURES),
            "breast_cancer" => parse_sklearn_csv(name, BREAST_CANCER_CSV, &BREAST_CANCER_FEATURES),
            "diabetes" => parse_diabetes(),
            "mnist" => parse_mnist(),
            _ => Err(Error::param(
                "data",
                format!(
                    "no built-in data set named `{name}`; the built-in data sets are {}",
                    Self::BUILTIN.join(", ")
                ),
            )),
        }
    }

    /// Reads a CSV file (a `.gz` suffix means gzip-compressed): first row the column names,
    /// then one row per sample. `target` names the target column (default: the last column);
    /// every other column is a numeric feature. `task` `None` infers the task: a non-numeric
    /// target, or integers with at most 20 distinct values, means classification; otherwise
    /// regression. Class names are the target's distinct values, sorted numerically if all are
    /// numbers, else lexicographically; labels index them.
    ///
    /// Malformed files give [`Error::Data`] naming the line and column, and how to fix it.
    pub fn from_csv(path: &Path, target: Option<&str>, task: Option<TaskKind>) -> Result<Dataset> {
        let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
        let source = path.display().to_string();
        let reader = std::io::BufReader::new(file);
        if path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("gz"))
        {
            Self::from_csv_reader(&source, flate2::read::GzDecoder::new(reader), target, task)
        } else {
            Self::from_csv_reader(&source, reader, target, task)
        }
    }

    /// Like [`Dataset::from_csv`], from any reader; `source_name` is used in error messages and
    /// as the data set's name.
    ///
    /// ```
    /// use sqnn::data::{Dataset, Task};
    ///
    /// let text = "a,b,kind\n1,2,cat\n3,4,dog\n5,6,cat\n";
    /// let ds = Dataset::from_csv_reader("pets.csv", text.as_bytes(), None, None)?;
    /// assert_eq!(ds.task, Task::Classify { classes: vec!["cat".into(), "dog".into()] });
    /// assert_eq!(ds.labels(), Some(vec![0, 1, 0]));
    ///
    /// let err = Dataset::from_csv_reader("bad.csv", "a,b,y\n1,x,0\n".as_bytes(), None, None);
    /// assert!(err.unwrap_err().to_string().contains("line 2, column 2"));
    /// # Ok::<(), sqnn::Error>(())
    /// ```
    pub fn from_csv_reader<R: Read>(
        source_name: &str,
        r: R,
        target: Option<&str>,
        task: Option<TaskKind>,
    ) -> Result<Dataset> {
        read_csv(source_name, r, target, task)
    }

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
                         --target {t} (it applies to CSV files only)"
                    ),
                ));
            }
            let ds = Self::builtin(name_or_path)?;
            if let Some(k) = task {
                if k != ds.kind() {
                    return Err(Error::param(
                        "task",
                        format!(
                            "`{name_or_path}` is a {} data set; drop --task or use --task {}",
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
    pub fn labels(&self) -> Option<Vec<usize>> {
        match self.task {
            Task::Classify { .. } => Some(self.y.iter().map(|&v| v as usize).collect()),
            Task::Regress => None,
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

// ---------------------------------------------------------------------------------------------
// Splits
// ---------------------------------------------------------------------------------------------

/// Row indices of a train/test split (each sorted ascending; shuffle batches yourself).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Split {
    /// Training rows.
    pub train: Vec<usize>,
    /// Test rows.
    pub test: Vec<usize>,
}

fn check_test_size(test_size: f64) -> Result<()> {
    if test_size.is_finite() && test_size > 0.0 && test_size < 1.0 {
        Ok(())
    } else {
        Err(Error::param(
            "test_size",
            format!("{test_size} is not a fraction strictly between 0 and 1; use e.g. 0.25"),
        ))
    }
}

fn check_sides(n: usize, n_test: usize, test_size: f64) -> Result<()> {
    if n_test == 0 || n_test >= n {
        return Err(Error::param(
            "test_size",
            format!(
                "{test_size} of {n} rows puts {n_test} rows in the test set and {} in the \
                 training set; both need at least one row: choose a test_size nearer 0.5{}",
                n - n_test.min(n),
                if n < 2 { " (and at least 2 rows)" } else { "" }
            ),
        ));
    }
    Ok(())
}

/// A seeded train/test split of `ds` (`ChaCha8Rng::seed_from_u64(seed)`): stratified by class for
/// classification (see [`stratified_indices`]), a plain shuffle for regression (see
/// [`shuffled_indices`]).
///
/// ```
/// let ds = sqnn::data::Dataset::builtin("iris")?;
/// let a = sqnn::data::train_test_split(&ds, 0.2, 7)?;
/// assert_eq!(a, sqnn::data::train_test_split(&ds, 0.2, 7)?);
/// assert_eq!(a.test.len(), 30); // 10 of each class
/// # Ok::<(), sqnn::Error>(())
/// ```
pub fn train_test_split(ds: &Dataset, test_size: f64, seed: u64) -> Result<Split> {
    let (train, test) = match ds.labels() {
        Some(labels) => stratified_indices(&labels, test_size, seed)?,
        None => shuffled_indices(ds.n_samples(), test_size, seed)?,
    };
    Ok(Split { train, test })
}

/// A seeded stratified split from labels alone: returns `(train_idx, val_idx)`, each sorted.
/// Each class with `c >= 2` rows puts `round(test_size * c)` of them, clamped to `1..=c-1`, in
/// the second part; a class with a single row stays in the first.
/// `test_size` must be in (0, 1) and leave at least one row on each side, else
/// [`Error::InvalidParameter`].
pub fn stratified_indices(
    labels: &[usize],
    test_size: f64,
    seed: u64,
) -> Result<(Vec<usize>, Vec<usize>)> {
    check_test_size(test_size)?;
    let mut by_class: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for (i, &l) in labels.iter().enumerate() {
        by_class.entry(l).or_default().push(i);
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let (mut train, mut test) = (Vec::new(), Vec::new());
    for rows in by_class.values_mut() {
        let c = rows.len();
        let k = if c >= 2 {
            ((test_size * c as f64).round() as usize).clamp(1, c - 1)
        } else {
            0
        };
        rows.shuffle(&mut rng);
        test.extend_from_slice(&rows[..k]);
        train.extend_from_slice(&rows[k..]);
    }
    check_sides(labels.len(), test.len(), test_size)?;
    train.sort_unstable();
    test.sort_unstable();
    Ok((train, test))
}

/// A seeded plain shuffle split of `0..n`: returns `(train_idx, test_idx)`, each sorted, with
/// `round(test_size * n)` test rows. `test_size` must be in (0, 1) and leave at least one row on
/// each side, else [`Error::InvalidParameter`].
pub fn shuffled_indices(n: usize, test_size: f64, seed: u64) -> Result<(Vec<usize>, Vec<usize>)> {
    check_test_size(test_size)?;
    let k = (test_size * n as f64).round() as usize;
    check_sides(n, k, test_size)?;
    let mut idx: Vec<usize> = (0..n).collect();
    idx.shuffle(&mut ChaCha8Rng::seed_from_u64(seed));
    let mut test = idx[..k].to_vec();
    let mut train = idx[k..].to_vec();
    train.sort_unstable();
    test.sort_unstable();
    Ok((train, test))
}

#[derive(Deserialize)]
struct SplitEntry {
    n: Option<usize>,
    train: Vec<usize>,
    test: Vec<usize>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum SplitFile {
    Single(SplitEntry),
    Named(BTreeMap<String, SplitEntry>),
}

/// Concrete ML's exact rows: scikit-learn `train_test_split(test_size=0.25, stratify=y,
/// random_state=42)`, from the embedded `data/splits.json`. Covers `iris` (112/38),
/// `breast_cancer` (426/143) and `diabetes` (331/111, not stratified); `None` for other names.
///
/// ```
/// let s = sqnn::data::peer_split("iris").unwrap();
/// assert_eq!((s.train.len(), s.test.len()), (112, 38));
/// assert!(sqnn::data::peer_split("mnist").is_none());
/// ```
pub fn peer_split(name: &str) -> Option<Split> {
    let all: BTreeMap<String, SplitEntry> = serde_json::from_str(SPLITS_JSON).ok()?;
    all.into_iter()
        .find(|(k, _)| k == name)
        .map(|(_, e)| Split {
            train: e.train,
            test: e.test,
        })
}

/// A split read from a JSON file: either `{"train": [...], "test": [...]}` or the
/// `data/splits.json` layout `{"NAME": {"train": [...], "test": [...]}, ...}`, where the entry is
/// picked by the data set's name (or, for a CSV, its file stem). Indices are 0-based rows of
/// `ds`; they must be `< n_samples`, without duplicates, the two sides disjoint and non-empty
/// (they need not cover every row).
pub fn split_from_file(path: &Path, ds: &Dataset) -> Result<Split> {
    let source = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    let parsed: SplitFile = serde_json::from_str(&text).map_err(|e| {
        data_err(
            &source,
            Some(e.line()).filter(|&l| l > 0),
            Some(e.column()).filter(|&c| c > 0).map(|c| c.to_string()),
            format!(
                "not a split file ({e}); expected {{\"train\": [rows...], \"test\": [rows...]}} \
                 or {{\"NAME\": {{\"train\": [...], \"test\": [...]}}}}"
            ),
        )
    })?;
    let entry = match parsed {
        SplitFile::Single(e) => e,
        SplitFile::Named(mut map) => {
            let stem = Path::new(&ds.name)
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned());
            let key = [Some(ds.name.clone()), stem]
                .into_iter()
                .flatten()
                .find(|k| map.contains_key(k));
            match key.and_then(|k| map.remove(&k)) {
                Some(e) => e,
                None => {
                    let names: Vec<String> = map.keys().cloned().collect();
                    return Err(data_err(
                        &source,
                        None,
                        None,
                        format!(
                            "no split for data set `{}`; the file has splits for {}; use a file \
                             with an entry of that name or a plain {{\"train\": [...], \"test\": \
                             [...]}}",
                            ds.name,
                            if names.is_empty() {
                                "nothing".to_string()
                            } else {
                                list_names(&names)
                            }
                        ),
                    ));
                }
            }
        }
    };
    let n = ds.n_samples();
    let err = |m: String| data_err(&source, None, None, m);
    if let Some(fn_) = entry.n {
        if fn_ != n {
            return Err(err(format!(
                "the split is for {fn_} rows but `{}` has {n}; use the split made for this data",
                ds.name
            )));
        }
    }
    for (side, rows) in [("train", &entry.train), ("test", &entry.test)] {
        if rows.is_empty() {
            return Err(err(format!(
                "`{side}` is empty; both sides need at least one row"
            )));
        }
        let mut seen = HashSet::with_capacity(rows.len());
        for &i in rows {
            if i >= n {
                return Err(err(format!(
                    "`{side}` has row {i}, but `{}` has only {n} rows (indices are 0-based, \
                     0..={}); use the split made for this data",
                    ds.name,
                    n.saturating_sub(1)
                )));
            }
            if !seen.insert(i) {
                return Err(err(format!(
                    "`{side}` lists row {i} twice; each row may appear once"
                )));
            }
        }
    }
    let train: HashSet<usize> = entry.train.iter().copied().collect();
    if let Some(i) = entry.test.iter().find(|i| train.contains(i)) {
        return Err(err(format!(
            "row {i} is in both `train` and `test`; the two sides must be disjoint"
        )));
    }
    Ok(Split {
        train: entry.train,
        test: entry.test,
    })
}

// ---------------------------------------------------------------------------------------------
// Standardization
// ---------------------------------------------------------------------------------------------

/// Per-feature standardization `(x - mean) / std`, fitted on training data.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Standardizer {
    /// Per-feature mean.
    pub mean: Vec<f64>,
    /// Per-feature population standard deviation (1.0 for constant features).
    pub std: Vec<f64>,
}

impl Standardizer {
    /// Fits means and population standard deviations (ddof 0, like scikit-learn's
    /// `StandardScaler`). A feature whose std is zero (up to rounding: `<= 10 eps * max(|mean|,
    /// 1)`) or not finite gets std 1.0; with no rows every mean is 0 and every std 1.
    pub fn fit(x: &Array2<f64>) -> Standardizer {
        let n = x.nrows();
        let mut mean = Vec::with_capacity(x.ncols());
        let mut std = Vec::with_capacity(x.ncols());
        for col in x.columns() {
            if n == 0 {
                mean.push(0.0);
                std.push(1.0);
                continue;
            }
            let m = col.sum() / n as f64;
            let var = col.iter().map(|v| (v - m) * (v - m)).sum::<f64>() / n as f64;
            let s = var.sqrt();
            let tiny = 10.0 * f64::EPSILON * m.abs().max(1.0);
            mean.push(m);
            std.push(if s.is_finite() && s > tiny { s } else { 1.0 });
        }
        Standardizer { mean, std }
    }

    /// `(x - mean) / std`, column by column.
    ///
    /// # Panics
    /// If `x` has a different number of columns than the data it was fitted on.
    pub fn transform(&self, x: &Array2<f64>) -> Array2<f64> {
        assert_eq!(
            x.ncols(),
            self.mean.len(),
            "Standardizer fitted on {} features, given {}",
            self.mean.len(),
            x.ncols()
        );
        let mut z = x.clone();
        for (j, mut col) in z.columns_mut().into_iter().enumerate() {
            let (m, s) = (self.mean[j], self.std[j]);
            col.mapv_inplace(|v| (v - m) / s);
        }
        z
    }
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
        for bad in ["nan", "NaN", "inf", "-inf", "infinity", "1e400", "", "abc"] {
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
