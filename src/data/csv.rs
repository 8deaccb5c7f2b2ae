//! CSV loading: a header row of column names, then one row per sample; one target column
//! (named, or the last), every other column a numeric feature. The task is given or inferred
//! from the target column. Every error names the file, line and column, and how to fix it.

use std::io::Read;
use std::path::Path;

use ndarray::Array2;

use super::{data_err, list_names, parse_finite, Dataset};
use crate::error::{Error, Result};
use crate::fsio::bounded;
use crate::task::{Task, TaskKind};

/// Targets with at most this many distinct integer values are inferred to be class labels.
const MAX_INFERRED_CLASSES: usize = 20;

/// The CSV reader the loader uses: no header handling (the loader reads it), rows of any
/// length (the loader checks them, with a better message), cells trimmed.
type Reader<R> = ::csv::Reader<R>;

fn reader<R: Read>(r: R) -> Reader<R> {
    ::csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .trim(::csv::Trim::All)
        .from_reader(r)
}

/// Feature names as a model records them: one per column, distinct, non-empty, not too long.
fn check_feature_names(source: &str, names: &[String]) -> Result<()> {
    super::Schema::validate_names(names, names.len()).map_err(|m| {
        data_err(
            source,
            Some(1),
            None,
            format!("{m}; give every column its own name"),
        )
    })
}

impl Dataset {
    /// Reads a CSV file (a `.gz` suffix means gzip-compressed): first row the column names,
    /// then one row per sample. `target` names the target column (default: the last column);
    /// every other column is a numeric feature. `task` `None` infers the task: a non-numeric
    /// target, or integers with at most 20 distinct values, means classification; otherwise
    /// regression. Class names are the target's distinct values, sorted numerically if all are
    /// numbers, else lexicographically; labels index them.
    ///
    /// Malformed files give [`Error::Data`] naming the line and column, and how to fix it.
    /// Files larger than [`MAX_CSV_BYTES`](super::MAX_CSV_BYTES) (before or after
    /// decompression) are refused.
    pub fn from_csv(path: &Path, target: Option<&str>, task: Option<TaskKind>) -> Result<Dataset> {
        Self::from_csv_reader(&path.display().to_string(), open(path)?, target, task)
    }

    /// The column names of a CSV file (its first non-blank row), as [`Dataset::from_csv`] reads
    /// them (gzip too), without reading the rows.
    pub fn csv_header(path: &Path) -> Result<Vec<String>> {
        let source = path.display().to_string();
        let r = open(path)?;
        let mut rdr = reader(r);
        read_names(&source, &mut rdr)
    }

    /// Reads a CSV file of rows to predict: a header row of column names, then one row per
    /// sample, every column a numeric feature except the column named `target`, if given,
    /// whose cells are returned as they are (with their line numbers), for matching to a
    /// model's labels. Unlike [`Dataset::from_csv`], one row and a single class are fine.
    /// Match the columns to a model with [`Schema::load_rows`](super::Schema::load_rows).
    pub fn rows_from_csv(path: &Path, target: Option<&str>) -> Result<CsvRows> {
        rows_csv(&path.display().to_string(), open(path)?, target)
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
}

/// A CSV file's text, decompressed if its name ends in `.gz`, at most
/// [`MAX_CSV_BYTES`](super::MAX_CSV_BYTES) either way.
fn open(path: &Path) -> Result<Box<dyn Read>> {
    use crate::fsio::{open_limited, Limited};
    let limit = super::MAX_CSV_BYTES;
    let reader = std::io::BufReader::new(open_limited(path, limit, "CSV file")?);
    let gz = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("gz"));
    Ok(if gz {
        Box::new(Limited::new(flate2::read::GzDecoder::new(reader), limit))
    } else {
        Box::new(reader)
    })
}

/// The whole loader: header, target column, rows, then the target's task and labels.
fn read_csv<R: Read>(
    source: &str,
    r: R,
    target: Option<&str>,
    task: Option<TaskKind>,
) -> Result<Dataset> {
    let mut rdr = reader(r);
    let header = read_header(source, &mut rdr)?;
    let t = target_column(source, &header, target)?;
    let Rows { xs, targets } = read_rows(source, &mut rdr, &header, Some(t))?;
    let n = targets.len();
    let tcol = col_label(t, &header[t]);
    let numeric = numeric_targets(source, &targets, &tcol, task)?;
    let kind = task.unwrap_or_else(|| infer_kind(numeric.as_deref()));
    let (y, task) = match (kind, numeric) {
        (TaskKind::Regress, Some(numeric)) => {
            for (v, (cell, line)) in numeric.iter().zip(&targets) {
                super::check_magnitude(*v).map_err(|m| {
                    let m = format!("target `{}` {m}", bounded(cell, 64));
                    data_err(source, Some(*line), Some(tcol.clone()), m)
                })?;
            }
            (numeric, Task::Regress)
        }
        // `numeric_targets` refuses a non-number when regression is asked for, and inference
        // never picks regression for one.
        (TaskKind::Regress, None) => {
            return Err(data_err(
                source,
                None,
                Some(tcol),
                "non-numeric regression target",
            ))
        }
        (TaskKind::Classify, numeric) => classes(source, &targets, numeric, tcol)?,
    };
    let feature_names: Vec<String> = (0..header.len())
        .filter(|&j| j != t)
        .map(|j| {
            if header[j].is_empty() {
                format!("column {}", j + 1)
            } else {
                header[j].clone()
            }
        })
        .collect();
    check_feature_names(source, &feature_names)?;
    let x = Array2::from_shape_vec((n, header.len() - 1), xs)
        .map_err(|e| data_err(source, None, None, e.to_string()))?;
    Ok(Dataset {
        name: source.to_string(),
        feature_names,
        x,
        y,
        task,
    })
}

/// A CSV file of rows to predict ([`Dataset::rows_from_csv`]).
#[derive(Clone, Debug, PartialEq)]
pub struct CsvRows {
    /// The feature columns' names, in the file's order.
    pub feature_names: Vec<String>,
    /// One row per sample, the features in the file's order.
    pub x: Array2<f64>,
    /// The target column's label (for messages) and its cells with their line numbers.
    pub targets: Option<(String, Vec<(String, usize)>)>,
}

/// Features and, when `target` names a column, its cells.
fn rows_csv<R: Read>(source: &str, r: R, target: Option<&str>) -> Result<CsvRows> {
    let mut rdr = reader(r);
    let header = read_names(source, &mut rdr)?;
    let t = match target {
        Some(name) => Some(target_column(source, &header, Some(name))?),
        None => None,
    };
    let feature_names: Vec<String> = (0..header.len())
        .filter(|&j| Some(j) != t)
        .map(|j| header[j].clone())
        .collect();
    check_feature_names(source, &feature_names)?;
    let Rows { xs, targets } = read_rows(source, &mut rdr, &header, t)?;
    let n = if feature_names.is_empty() {
        targets.len()
    } else {
        xs.len() / feature_names.len()
    };
    let x = Array2::from_shape_vec((n, feature_names.len()), xs)
        .map_err(|e| data_err(source, None, None, e.to_string()))?;
    Ok(CsvRows {
        feature_names,
        x,
        targets: t.map(|t| (col_label(t, &header[t]), targets)),
    })
}

/// A target cell as a class label: a number as [`Dataset::from_csv`] names numeric classes
/// (`1.0` is `1`), anything else as written.
pub(super) fn class_label(cell: &str) -> String {
    match cell.parse::<f64>() {
        Ok(v) if v.is_finite() => format!("{}", v + 0.0),
        _ => cell.to_string(),
    }
}

/// A reader error as a data error with its line.
fn csv_error(source: &str, e: ::csv::Error) -> Error {
    let line = e.position().map(|p| crate::cast::to_usize(p.line()));
    let message = match e.kind() {
        ::csv::ErrorKind::Io(io) => format!("cannot read the file: {io}"),
        _ => format!("malformed CSV: {e}"),
    };
    data_err(source, line, None, message)
}

/// The first non-blank row: column names (a UTF-8 byte order mark dropped), at least three.
fn read_header<R: Read>(source: &str, rdr: &mut Reader<R>) -> Result<Vec<String>> {
    let header = read_names(source, rdr)?;
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
    Ok(header)
}

/// The first non-blank row: column names (a UTF-8 byte order mark dropped).
fn read_names<R: Read>(source: &str, rdr: &mut Reader<R>) -> Result<Vec<String>> {
    let mut record = ::csv::ByteRecord::new();
    let header: Vec<String> = loop {
        if !rdr
            .read_byte_record(&mut record)
            .map_err(|e| csv_error(source, e))?
        {
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
        let line = record.position().map(|p| crate::cast::to_usize(p.line()));
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
    Ok(header)
}

/// Index of the target column: the one named `target` (exactly one), or the last.
fn target_column(source: &str, header: &[String], target: Option<&str>) -> Result<usize> {
    let Some(name) = target else {
        return Ok(header.len() - 1);
    };
    let hits: Vec<usize> = (0..header.len()).filter(|&j| header[j] == name).collect();
    match hits.as_slice() {
        [j] => Ok(*j),
        [] => Err(data_err(
            source,
            Some(1),
            None,
            format!(
                "no column named `{name}`; the columns are {}; name one of them \
                 as the `target`",
                list_names(header)
            ),
        )),
        _ => Err(data_err(
            source,
            Some(1),
            None,
            format!(
                "{} columns are named `{name}`; rename all but one so the target is \
                 unambiguous",
                hits.len()
            ),
        )),
    }
}

/// The data rows: features row-major, and each target cell with its line.
struct Rows {
    xs: Vec<f64>,
    targets: Vec<(String, usize)>,
}

/// Reads every non-blank row after the header: exactly one field per column, numeric finite
/// features, a non-empty target; at least one row.
fn read_rows<R: Read>(
    source: &str,
    rdr: &mut Reader<R>,
    header: &[String],
    t: Option<usize>,
) -> Result<Rows> {
    let n_cols = header.len();
    let mut record = ::csv::ByteRecord::new();
    let mut xs: Vec<f64> = Vec::new();
    let mut targets: Vec<(String, usize)> = Vec::new(); // (cell, line)
    while rdr
        .read_byte_record(&mut record)
        .map_err(|e| csv_error(source, e))?
    {
        if is_blank(&record) {
            continue;
        }
        let line = record.position().map(|p| crate::cast::to_usize(p.line()));
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
            if Some(j) == t {
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
    if xs.is_empty() && targets.is_empty() {
        return Err(data_err(
            source,
            None,
            None,
            "the file has a header row but no data rows; add one row per sample below the header",
        ));
    }
    Ok(Rows { xs, targets })
}

/// The targets as numbers (`-0` read as `+0`), or `None` when one is not a number. A NaN or
/// infinite target is an error, and so is a non-number when `task` asks for regression.
fn numeric_targets(
    source: &str,
    targets: &[(String, usize)],
    tcol: &str,
    task: Option<TaskKind>,
) -> Result<Option<Vec<f64>>> {
    let mut numeric: Vec<f64> = Vec::with_capacity(targets.len());
    for (cell, line) in targets {
        match cell.parse::<f64>() {
            Ok(v) if v.is_finite() => numeric.push(v + 0.0), // -0 -> +0
            Ok(_) => {
                return Err(data_err(
                    source,
                    Some(*line),
                    Some(tcol.to_string()),
                    format!(
                        "target `{}` is NaN or infinite; replace it with a finite value or \
                         drop the row",
                        bounded(cell, 64)
                    ),
                ))
            }
            Err(_) => {
                if task == Some(TaskKind::Regress) {
                    return Err(data_err(
                        source,
                        Some(*line),
                        Some(tcol.to_string()),
                        format!(
                            "target `{}` is not a number, but regression needs numeric \
                             targets; fix the value, or choose classification (`task` classify)",
                            bounded(cell, 64)
                        ),
                    ));
                }
                return Ok(None);
            }
        }
    }
    Ok(Some(numeric))
}

/// The task a target column implies: classification for non-numeric targets or integers with
/// at most [`MAX_INFERRED_CLASSES`] distinct values, else regression.
fn infer_kind(numeric: Option<&[f64]>) -> TaskKind {
    let Some(numeric) = numeric else {
        return TaskKind::Classify;
    };
    let integral = numeric.iter().all(|v| v.fract() == 0.0 && v.abs() < 1e15);
    let mut distinct: Vec<f64> = numeric.to_vec();
    distinct.sort_by(f64::total_cmp);
    distinct.dedup();
    if integral && distinct.len() <= MAX_INFERRED_CLASSES {
        TaskKind::Classify
    } else {
        TaskKind::Regress
    }
}

/// Class names (the distinct targets, sorted numerically if all are numbers, else
/// lexicographically) and each row's label; at least two classes.
fn classes(
    source: &str,
    targets: &[(String, usize)],
    numeric: Option<Vec<f64>>,
    tcol: String,
) -> Result<(Vec<f64>, Task)> {
    let (classes, y): (Vec<String>, Vec<f64>) = match numeric {
        Some(numeric) => {
            let mut distinct = numeric.clone();
            distinct.sort_by(f64::total_cmp);
            distinct.dedup();
            let y = numeric
                .iter()
                .map(|v| distinct.partition_point(|d| d < v) as f64)
                .collect();
            (distinct.iter().map(|v| format!("{v}")).collect(), y)
        }
        None => {
            let mut names: Vec<&str> = targets.iter().map(|(c, _)| c.as_str()).collect();
            names.sort_unstable();
            names.dedup();
            let y = targets
                .iter()
                .map(|(c, _)| names.partition_point(|d| *d < c.as_str()) as f64)
                .collect();
            (names.iter().map(|s| s.to_string()).collect(), y)
        }
    };
    if classes.len() < 2 {
        return Err(data_err(
            source,
            None,
            Some(tcol),
            format!(
                "the target has a single value `{}` in all {} rows; classification needs \
                 at least two classes (check `target`, or add samples of other classes)",
                bounded(classes.first().map(String::as_str).unwrap_or(""), 64),
                targets.len()
            ),
        ));
    }
    Ok((y, Task::Classify { classes }))
}

/// Column label for messages: `3 (`name`)`, or just the number if the header cell is empty.
fn col_label(index0: usize, name: &str) -> String {
    if name.is_empty() {
        format!("{}", index0 + 1)
    } else {
        format!("{} (`{}`)", index0 + 1, bounded(name, 64))
    }
}

fn is_blank(record: &::csv::ByteRecord) -> bool {
    record.iter().all(|c| c.iter().all(u8::is_ascii_whitespace))
}
