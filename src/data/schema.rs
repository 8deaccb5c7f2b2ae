//! What a model expects of its data ([`Schema`]): feature names in order, and the task with
//! its class labels. Data is matched to it by column *name* and label *value*, never by
//! position alone, so a CSV whose columns are reordered, renamed, missing or extra, or whose
//! labels are renamed or renumbered, is refused (or re-ordered) instead of silently scored.
//!
//! ```
//! use sqnn::data::{ColumnMatch, Dataset, Schema, Task};
//!
//! let schema = Schema {
//!     feature_names: Some(vec!["a".into(), "b".into()]),
//!     task: Task::Classify { classes: vec!["cat".into(), "dog".into()] },
//! };
//! // Columns in another order: re-ordered, and labels matched by value.
//! let text = "b,a,kind\n2,1,dog\n4,3,cat\n";
//! let ds = Dataset::from_csv_reader("pets.csv", text.as_bytes(), None, None)?;
//! let m = schema.conform(&ds)?;
//! assert_eq!(m.columns, ColumnMatch::ByName);
//! assert_eq!(m.data.x.row(0).to_vec(), vec![1.0, 2.0]);
//! assert_eq!(m.data.labels(), Some(vec![1, 0]));
//!
//! // Renamed labels are refused, naming them.
//! let text = "a,b,kind\n1,2,Cat\n3,4,dog\n";
//! let ds = Dataset::from_csv_reader("pets.csv", text.as_bytes(), None, None)?;
//! let e = schema.conform(&ds).unwrap_err().to_string();
//! assert!(e.contains("`Cat`"), "{e}");
//! # Ok::<(), sqnn::Error>(())
//! ```

use ndarray::{Array2, Axis};

use super::{list_names, Dataset};
use crate::error::{Error, Result};
use crate::task::{Task, TaskKind};

/// Longest feature name a model or circuit may record (bytes).
pub const MAX_NAME_LEN: usize = 256;

/// What a model or circuit expects of its data.
#[derive(Clone, Debug, PartialEq)]
pub struct Schema {
    /// Feature names in the model's order; `None` for a model or circuit that records none
    /// (built by hand, or written before names were recorded): columns then match by position.
    pub feature_names: Option<Vec<String>>,
    /// Classification with its class labels (index = the model's output), or regression.
    pub task: Task,
}

/// How a data set's columns were matched to a [`Schema`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ColumnMatch {
    /// Every feature found by its name (in any column order).
    ByName,
    /// The schema records no names: the columns are taken in order, as many as it has
    /// features. Say so to the user (see [`ColumnMatch::note`]).
    ByPosition,
}

impl ColumnMatch {
    /// A sentence for the user when the match is by position, `None` when by name.
    pub fn note(self) -> Option<&'static str> {
        match self {
            ColumnMatch::ByName => None,
            ColumnMatch::ByPosition => Some(
                "the circuit or model records no feature names (built by hand or by an older \
                 sqnn), so the data's columns are taken by position; recompile it from its \
                 model to have them matched by name",
            ),
        }
    }
}

/// A data set conformed to a [`Schema`]: columns in the schema's order, labels as the schema's
/// class indices.
#[derive(Clone, Debug, PartialEq)]
pub struct Conformed {
    /// The data, re-ordered and re-labelled.
    pub data: Dataset,
    /// How the columns were matched.
    pub columns: ColumnMatch,
}

/// Rows to predict, matched to a [`Schema`] ([`Schema::load_rows`]).
#[derive(Clone, Debug, PartialEq)]
pub struct RowsToPredict {
    /// One row per sample, the features in the schema's order.
    pub x: Array2<f64>,
    /// The targets (class indices of the schema, or values), when the file has them.
    pub y: Option<Vec<f64>>,
    /// How the columns were matched.
    pub columns: ColumnMatch,
}

impl Schema {
    /// Number of features, when names are recorded.
    pub fn n_named(&self) -> Option<usize> {
        self.feature_names.as_ref().map(Vec::len)
    }

    /// Checks recorded feature names: one per feature, non-empty, at most [`MAX_NAME_LEN`]
    /// bytes, all different. `Err` holds the broken rule.
    pub fn validate_names(names: &[String], n_features: usize) -> std::result::Result<(), String> {
        if names.len() != n_features {
            return Err(format!(
                "{} feature names for {n_features} features",
                names.len()
            ));
        }
        if let Some(n) = names
            .iter()
            .find(|n| n.is_empty() || n.len() > MAX_NAME_LEN)
        {
            return Err(format!(
                "feature name {:?} is empty or longer than {MAX_NAME_LEN} bytes",
                bounded(n)
            ));
        }
        let mut sorted: Vec<&String> = names.iter().collect();
        sorted.sort_unstable();
        if let Some(w) = sorted.windows(2).find(|w| w[0] == w[1]) {
            return Err(format!("feature name {:?} appears twice", bounded(w[0])));
        }
        Ok(())
    }

    /// For each of the schema's features, the index of its column among `columns` (the data's
    /// feature names, target excluded): by name when the schema records names, else by
    /// position. Refuses missing or extra columns, naming them, and a different count.
    pub fn column_order(
        &self,
        source: &str,
        columns: &[String],
        n_features: usize,
    ) -> Result<(Vec<usize>, ColumnMatch)> {
        let Some(names) = &self.feature_names else {
            if columns.len() != n_features {
                return Err(mismatch(
                    source,
                    format!(
                        "the data has {} feature columns, the model expects {n_features}; use \
                         data with the model's columns, in its order (target excluded)",
                        columns.len()
                    ),
                ));
            }
            return Ok(((0..n_features).collect(), ColumnMatch::ByPosition));
        };
        let missing: Vec<String> = names
            .iter()
            .filter(|n| !columns.contains(n))
            .cloned()
            .collect();
        let extra: Vec<String> = columns
            .iter()
            .filter(|c| !names.contains(c))
            .cloned()
            .collect();
        if !missing.is_empty() || !extra.is_empty() {
            let mut parts = Vec::new();
            if !missing.is_empty() {
                parts.push(format!("it lacks {}", list_names(&missing)));
            }
            if !extra.is_empty() {
                parts.push(format!(
                    "it has {} that the model does not",
                    list_names(&extra)
                ));
            }
            return Err(mismatch(
                source,
                format!(
                    "the data's columns differ from the model's: {}; the model expects {} \
                     features, {} (rename or drop columns to match, or name the target column)",
                    parts.join(", and "),
                    names.len(),
                    list_names(names)
                ),
            ));
        }
        let mut order = Vec::with_capacity(names.len());
        for n in names {
            let hits: Vec<usize> = (0..columns.len()).filter(|&j| &columns[j] == n).collect();
            match hits.as_slice() {
                [j] => order.push(*j),
                _ => {
                    return Err(mismatch(
                        source,
                        format!(
                            "{} columns are named `{}`; keep one",
                            hits.len(),
                            bounded(n)
                        ),
                    ))
                }
            }
        }
        Ok((order, ColumnMatch::ByName))
    }

    /// For each of the data's classes (`data_classes`, index = the data's label), the schema's
    /// class index with the same label. Refuses a task of another kind, and labels the schema
    /// does not know, naming them; data lacking some of the schema's classes is fine.
    pub fn label_map(&self, source: &str, data_task: &Task) -> Result<Option<Vec<usize>>> {
        match (&self.task, data_task) {
            (Task::Regress, Task::Regress) => Ok(None),
            (Task::Classify { classes }, Task::Classify { classes: data }) => {
                let unknown: Vec<String> = data
                    .iter()
                    .filter(|c| !classes.contains(c))
                    .cloned()
                    .collect();
                if !unknown.is_empty() {
                    return Err(mismatch(
                        source,
                        format!(
                            "the data's labels {} are not classes of the model, which knows {}; \
                             rename them to the model's labels (or drop those rows)",
                            list_names(&unknown),
                            list_names(classes)
                        ),
                    ));
                }
                Ok(Some(
                    data.iter()
                        .map(|c| classes.iter().position(|k| k == c).unwrap_or(0))
                        .collect(),
                ))
            }
            (model, _) => Err(mismatch(
                source,
                format!(
                    "the model is a {} model but the data's target was read as {}; pass \
                     `task` {} (or the right target column)",
                    word(model),
                    word(data_task),
                    word(model)
                ),
            )),
        }
    }

    /// `ds` with its columns in the schema's order (see [`Schema::column_order`]) and its
    /// labels as the schema's class indices (see [`Schema::label_map`]).
    pub fn conform(&self, ds: &Dataset) -> Result<Conformed> {
        let n_features = self.n_named().unwrap_or(ds.n_features());
        let (order, columns) = self.column_order(&ds.name, &ds.feature_names, n_features)?;
        let map = self.label_map(&ds.name, &ds.task)?;
        let y = match (map, ds.labels()) {
            (Some(map), Some(labels)) => labels
                .iter()
                .map(|&l| map.get(l).map_or(f64::NAN, |&k| k as f64))
                .collect(),
            _ => ds.y.clone(),
        };
        let data = Dataset {
            name: ds.name.clone(),
            feature_names: order.iter().map(|&j| ds.feature_names[j].clone()).collect(),
            x: ds.x.select(Axis(1), &order),
            y,
            task: self.task.clone(),
        };
        Ok(Conformed { data, columns })
    }

    /// Loads data for this schema: a built-in data set or a CSV file, as [`Dataset::load`] does,
    /// except that the task defaults to the schema's, and the target column of a CSV file
    /// defaults to the one column whose name is not a feature name (else the last column).
    /// Conform the result with [`Schema::conform`] (after splitting it, if you split).
    pub fn load(
        &self,
        name_or_path: &str,
        target: Option<&str>,
        task: Option<TaskKind>,
    ) -> Result<Dataset> {
        if Dataset::BUILTIN.contains(&name_or_path) {
            // A built-in set has its own task; `conform` refuses one of another kind.
            return Dataset::load(name_or_path, target, task);
        }
        let task = task.or(Some(self.kind()));
        let mut target = target.map(str::to_string);
        let path = std::path::Path::new(name_or_path);
        if let (None, Some(names), true) = (&target, &self.feature_names, path.is_file()) {
            let header = Dataset::csv_header(path)?;
            let others: Vec<&String> = header.iter().filter(|h| !names.contains(h)).collect();
            match others.as_slice() {
                [one] => target = Some(one.to_string()),
                // Every column is a feature: the last one would be taken as the target and
                // then reported missing.
                [] if header.len() == names.len() => {
                    return Err(super::data_err(
                        name_or_path,
                        Some(1),
                        None,
                        "the file has the model's feature columns and no target column, \
                         which a data set needs (its split and scores use it): add the target \
                         column, or predict rows without targets with `Schema::load_rows` \
                         (`sqnn run --rows`, `sqnn client predict --rows`)",
                    ))
                }
                _ => {}
            }
        }
        Dataset::load(name_or_path, target.as_deref(), task)
    }

    /// Loads rows to predict from the CSV file `path` for a model of `n_features` features:
    /// its feature columns by name, in any order (by position when the schema records no
    /// names). A file with one column more holds targets too (that column, or the one named
    /// `target`), matched as [`Schema::conform`] matches them, so the predictions can be
    /// scored; a file of the features alone gives rows without targets. Missing or unknown
    /// columns are refused, naming them.
    ///
    /// ```
    /// use sqnn::data::{Schema, Task};
    ///
    /// let schema = Schema {
    ///     feature_names: Some(vec!["a".into(), "b".into()]),
    ///     task: Task::Classify { classes: vec!["cat".into(), "dog".into()] },
    /// };
    /// let dir = tempfile::tempdir()?;
    /// let new = dir.path().join("new.csv");
    /// std::fs::write(&new, "b,a\n2,1\n4,3\n")?;
    /// let rows = schema.load_rows(&new, None, 2)?;
    /// assert_eq!(rows.x.row(0).to_vec(), vec![1.0, 2.0]);
    /// assert_eq!(rows.y, None);
    /// std::fs::write(&new, "b,a,kind\n2,1,dog\n4,3,cat\n")?;
    /// assert_eq!(schema.load_rows(&new, None, 2)?.y, Some(vec![1.0, 0.0]));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn load_rows(
        &self,
        path: &std::path::Path,
        target: Option<&str>,
        n_features: usize,
    ) -> Result<RowsToPredict> {
        let source = path.display().to_string();
        let header = Dataset::csv_header(path)?;
        // Features only, or features and one target column; anything else is refused by
        // `column_order`, which names the missing and unknown columns.
        let target = match (target, &self.feature_names) {
            (Some(t), _) => Some(t.to_string()),
            (None, Some(names)) => {
                let unknown: Vec<&String> = header.iter().filter(|h| !names.contains(h)).collect();
                match unknown.as_slice() {
                    [] => None,
                    [one] if names.iter().all(|n| header.contains(n)) => Some(one.to_string()),
                    _ => {
                        // Missing columns, or more than one unknown: refused, naming them.
                        self.column_order(&source, &header, n_features)?;
                        None
                    }
                }
            }
            (None, None) if header.len() == n_features + 1 => header.last().cloned(),
            (None, None) => None,
        };
        let rows = Dataset::rows_from_csv(path, target.as_deref())?;
        let (order, columns) = self.column_order(&source, &rows.feature_names, n_features)?;
        let y = match rows.targets {
            Some((column, cells)) => Some(self.targets(&source, &column, &cells)?),
            None => None,
        };
        Ok(RowsToPredict {
            x: rows.x.select(Axis(1), &order),
            y,
            columns,
        })
    }

    /// Target cells of a file of rows as the schema's class indices (labels matched by value)
    /// or regression values.
    fn targets(&self, source: &str, column: &str, cells: &[(String, usize)]) -> Result<Vec<f64>> {
        match &self.task {
            Task::Classify { classes } => {
                let labels: Vec<String> = cells
                    .iter()
                    .map(|(c, _)| super::csv::class_label(c))
                    .collect();
                let mut unknown: Vec<String> = labels
                    .iter()
                    .filter(|l| !classes.contains(l))
                    .cloned()
                    .collect();
                unknown.sort_unstable();
                unknown.dedup();
                if !unknown.is_empty() {
                    return Err(mismatch(
                        source,
                        format!(
                            "the target column {column} holds {}, which are not classes of the \
                             model, which knows {}; rename them to the model's labels (or drop \
                             that column to predict without scoring)",
                            list_names(&unknown),
                            list_names(classes)
                        ),
                    ));
                }
                Ok(labels
                    .iter()
                    .map(|l| classes.iter().position(|k| k == l).unwrap_or(0) as f64)
                    .collect())
            }
            Task::Regress => cells
                .iter()
                .map(|(c, line)| {
                    super::parse_finite(c).map_err(|m| {
                        super::data_err(source, Some(*line), Some(column.to_string()), m)
                    })
                })
                .collect(),
        }
    }

    /// The kind of task the schema expects.
    pub fn kind(&self) -> TaskKind {
        TaskKind::of(&self.task)
    }
}

fn mismatch(source: &str, message: String) -> Error {
    super::data_err(source, None, None, message)
}

fn word(t: &Task) -> &'static str {
    match t {
        Task::Classify { .. } => "classification",
        Task::Regress => "regression",
    }
}

/// At most 64 characters of `s`, for messages.
fn bounded(s: &str) -> String {
    crate::fsio::bounded(s, 64)
}
