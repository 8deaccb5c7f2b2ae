//! Which rows a model was trained on ([`TrainingRows`]), recorded in model files and circuits, so
//! that evaluating or calibrating on the same data set reuses the training split by default and
//! never mixes training rows into test rows (or test rows into calibration rows) unnoticed.

use serde::{Deserialize, Serialize};

use super::split::{Split, SplitSpec};
use super::Dataset;
use crate::error::{Error, Result};

/// The split a model was trained on: the request that made it, the data set it applies to (name
/// and row count), and a digest of the training row indices, so that the same rows can be found
/// again and a changed data set is noticed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainingRows {
    /// The data set's name ([`Dataset::name`]).
    pub data: String,
    /// Rows in the data set.
    pub rows: usize,
    /// How the split was asked for.
    pub split: RecordedSplit,
    /// Training rows.
    pub train_rows: usize,
    /// SHA-256 of the sorted training row indices (decimal, comma-separated).
    pub train_sha256: String,
}

/// A [`SplitSpec`] as recorded in files.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecordedSplit {
    /// [`SplitSpec::Auto`].
    Auto,
    /// [`SplitSpec::Seeded`].
    Seeded {
        /// Test fraction.
        test_size: f64,
        /// Shuffle seed.
        seed: u64,
    },
    /// [`SplitSpec::ConcreteMl`].
    ConcreteMl,
    /// [`SplitSpec::File`]: the file's path as given.
    File(String),
}

impl RecordedSplit {
    fn spec(&self) -> SplitSpec {
        match self {
            RecordedSplit::Auto => SplitSpec::Auto,
            RecordedSplit::Seeded { test_size, seed } => SplitSpec::Seeded {
                test_size: *test_size,
                seed: *seed,
            },
            RecordedSplit::ConcreteMl => SplitSpec::ConcreteMl,
            RecordedSplit::File(p) => SplitSpec::File(p.into()),
        }
    }

    /// The command-line flags that ask for this split.
    pub fn flags(&self) -> String {
        match self {
            RecordedSplit::Auto => "--split auto".into(),
            RecordedSplit::Seeded { test_size, seed } => {
                format!("--split seeded --test-size {test_size} --seed {seed}")
            }
            RecordedSplit::ConcreteMl => "--split concrete-ml".into(),
            RecordedSplit::File(p) => format!("--split {p}"),
        }
    }
}

impl From<&SplitSpec> for RecordedSplit {
    fn from(s: &SplitSpec) -> RecordedSplit {
        match s {
            SplitSpec::Auto => RecordedSplit::Auto,
            SplitSpec::Seeded { test_size, seed } => RecordedSplit::Seeded {
                test_size: *test_size,
                seed: *seed,
            },
            SplitSpec::ConcreteMl => RecordedSplit::ConcreteMl,
            SplitSpec::File(p) => RecordedSplit::File(p.display().to_string()),
        }
    }
}

fn digest(rows: &[usize]) -> String {
    let mut sorted = rows.to_vec();
    sorted.sort_unstable();
    let text: Vec<String> = sorted.iter().map(usize::to_string).collect();
    crate::fsio::sha256_hex(text.join(",").as_bytes())
}

/// What a requested split is for, in [`TrainingRows::check`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SplitUse {
    /// Its test rows are scored: none may be a training row of the model.
    Evaluate,
    /// Its training rows calibrate a plan: none may be a row the model was not trained on.
    Calibrate,
}

impl TrainingRows {
    /// The record of training on `split.train` of `ds`, asked for by `spec`.
    pub fn new(ds: &Dataset, spec: &SplitSpec, split: &Split) -> TrainingRows {
        TrainingRows {
            data: ds.name.clone(),
            rows: ds.n_samples(),
            split: spec.into(),
            train_rows: split.train.len(),
            train_sha256: digest(&split.train),
        }
    }

    /// The training split again, when `ds` is the data set it was recorded on (same name, same
    /// row count, and the recorded request gives the same training rows); `None` otherwise
    /// (another data set, a changed one, or a split file that is gone).
    pub fn split_of(&self, ds: &Dataset) -> Option<Split> {
        if ds.name != self.data || ds.n_samples() != self.rows {
            return None;
        }
        let split = self.split.spec().split(ds).ok()?;
        (split.train.len() == self.train_rows && digest(&split.train) == self.train_sha256)
            .then_some(split)
    }

    /// Refuses `requested` on `ds` when it would score training rows (`Evaluate`) or calibrate
    /// on rows the model was not trained on (`Calibrate`); anything goes on other data.
    pub fn check(&self, ds: &Dataset, requested: &Split, usage: SplitUse) -> Result<()> {
        match self.split_of(ds) {
            Some(trained) => self.check_against(&trained, requested, usage),
            None => Ok(()),
        }
    }

    /// [`check`](Self::check) with the model's split on this data set already found
    /// ([`split_of`](Self::split_of)).
    pub fn check_against(&self, trained: &Split, requested: &Split, usage: SplitUse) -> Result<()> {
        let mut is_train = vec![false; self.rows];
        for &r in &trained.train {
            if let Some(t) = is_train.get_mut(r) {
                *t = true;
            }
        }
        let train_at = |r: usize| is_train.get(r).copied().unwrap_or(false);
        let (bad, of, what) = match usage {
            SplitUse::Evaluate => (
                requested.test.iter().filter(|&&r| train_at(r)).count(),
                requested.test.len(),
                "test rows are rows the model was trained on, so its score would be inflated",
            ),
            SplitUse::Calibrate => (
                requested.train.iter().filter(|&&r| !train_at(r)).count(),
                requested.train.len(),
                "calibration rows are the model's test rows, so the plan would be chosen on \
                 them",
            ),
        };
        if bad == 0 {
            return Ok(());
        }
        Err(Error::param(
            "split",
            format!(
                "{bad} of these {of} {what} (the model was trained on {} of {}'s {} rows, \
                 split by `{}`); drop the split flags (--split, --test-size, --seed) to use the \
                 model's own split",
                self.train_rows,
                self.data,
                self.rows,
                self.split.flags()
            ),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_recorded_split_comes_back_and_overlaps_are_refused() {
        let ds = Dataset::builtin("iris").unwrap();
        let spec = SplitSpec::Seeded {
            test_size: 0.2,
            seed: 7,
        };
        let split = spec.split(&ds).unwrap();
        let rec = TrainingRows::new(&ds, &spec, &split);
        assert_eq!(rec.split_of(&ds), Some(split.clone()));
        rec.check(&ds, &split, SplitUse::Evaluate).unwrap();
        rec.check(&ds, &split, SplitUse::Calibrate).unwrap();
        let other = SplitSpec::Auto.split(&ds).unwrap();
        let e = rec.check(&ds, &other, SplitUse::Evaluate).unwrap_err();
        assert!(e.to_string().contains("--test-size 0.2 --seed 7"), "{e}");
        assert!(rec.check(&ds, &other, SplitUse::Calibrate).is_err());
        // A file round trip keeps it; another data set is not checked.
        let back: TrainingRows =
            serde_json::from_str(&serde_json::to_string(&rec).unwrap()).unwrap();
        assert_eq!(back, rec);
        let bc = Dataset::builtin("breast_cancer").unwrap();
        assert_eq!(rec.split_of(&bc), None);
        rec.check(
            &bc,
            &SplitSpec::Auto.split(&bc).unwrap(),
            SplitUse::Evaluate,
        )
        .unwrap();
    }
}
