//! The built-in data sets, embedded in the binary from `data/` in the repository: `iris`,
//! `breast_cancer` and `diabetes` in scikit-learn's raw layouts, and `mnist` (10 000 rows).

use std::io::Read;

use ndarray::Array2;

use super::{data_err, parse_finite, Dataset};
use crate::error::{Error, Result};
use crate::task::Task;

const IRIS_CSV: &[u8] = include_bytes!("../../data/iris.csv");
const BREAST_CANCER_CSV: &[u8] = include_bytes!("../../data/breast_cancer.csv");
const DIABETES_DATA_GZ: &[u8] = include_bytes!("../../data/diabetes_data_raw.csv.gz");
const DIABETES_TARGET_GZ: &[u8] = include_bytes!("../../data/diabetes_target.csv.gz");
const MNIST_GZ: &[u8] = include_bytes!("../../data/mnist10k.csv.gz");

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
}
