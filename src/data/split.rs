//! Train/test splits: sqnn's seeded (stratified) split, the exact rows Concrete ML was measured
//! on, splits read from a JSON file, and [`SplitSpec`], the request that picks one of them.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::{data_err, list_names, Dataset};
use crate::error::{Error, Result};

const SPLITS_JSON: &str = include_str!("../../data/splits.json");

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
            crate::cast::clamp_count((test_size * c as f64).round(), c - 1).max(1)
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
    let k = crate::cast::clamp_count((test_size * n as f64).round(), n);
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
    let text = crate::fsio::read_text_limited(path, super::MAX_SPLIT_BYTES, "split file")?;
    let parsed: SplitFile = serde_json::from_str(&text).map_err(|e| {
        data_err(
            &source,
            Some(e.line()).filter(|&l| l > 0),
            Some(e.column()).filter(|&c| c > 0).map(|c| c.to_string()),
            format!(
                "not a split file ({}); expected {{\"train\": [rows...], \"test\": [rows...]}} \
                 or {{\"NAME\": {{\"train\": [...], \"test\": [...]}}}}",
                crate::fsio::bounded(&e.to_string(), 200)
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

/// Which rows are test rows: the request a caller (the command line's `--split`, `--test-size`,
/// `--seed`) makes, resolved against a data set by [`SplitSpec::split`].
#[derive(Clone, Debug, PartialEq)]
pub enum SplitSpec {
    /// Concrete ML's exact rows where they are recorded ([`peer_split`]: iris, breast_cancer,
    /// diabetes), else sqnn's seeded split with [`SplitSpec::DEFAULT_TEST_SIZE`] and
    /// [`SplitSpec::DEFAULT_SEED`]: figures compare with Concrete ML's on the same samples.
    Auto,
    /// sqnn's seeded split ([`train_test_split`]), stratified for classes.
    Seeded {
        /// Fraction of rows held out for testing, in (0, 1).
        test_size: f64,
        /// Seed of the shuffle.
        seed: u64,
    },
    /// Concrete ML's exact rows; an error for a data set without them.
    ConcreteMl,
    /// A split read from a JSON file ([`split_from_file`]).
    File(PathBuf),
}

impl SplitSpec {
    /// The test fraction of [`SplitSpec::Auto`] where no rows are recorded (scikit-learn's).
    pub const DEFAULT_TEST_SIZE: f64 = 0.25;
    /// The seed of [`SplitSpec::Auto`] where no rows are recorded.
    pub const DEFAULT_SEED: u64 = 42;

    /// The rows this request picks in `ds`.
    ///
    /// ```
    /// use sqnn::data::{peer_split, Dataset, SplitSpec};
    /// let iris = Dataset::builtin("iris")?;
    /// assert_eq!(SplitSpec::Auto.split(&iris)?, peer_split("iris").unwrap());
    /// let seeded = SplitSpec::Seeded { test_size: 0.2, seed: 7 }.split(&iris)?;
    /// assert_eq!(seeded.test.len(), 30);
    /// # Ok::<(), sqnn::Error>(())
    /// ```
    pub fn split(&self, ds: &Dataset) -> Result<Split> {
        match self {
            SplitSpec::Auto => match peer_split(&ds.name) {
                Some(split) => Ok(split),
                None => train_test_split(ds, Self::DEFAULT_TEST_SIZE, Self::DEFAULT_SEED),
            },
            SplitSpec::Seeded { test_size, seed } => train_test_split(ds, *test_size, *seed),
            SplitSpec::ConcreteMl => peer_split(&ds.name).ok_or_else(|| {
                Error::param(
                    "split",
                    format!(
                        "Concrete ML's split is recorded for iris, breast_cancer and diabetes, \
                         not {:?}; pick `split` seeded or a JSON file",
                        ds.name
                    ),
                )
            }),
            SplitSpec::File(path) => split_from_file(path, ds),
        }
    }
}
