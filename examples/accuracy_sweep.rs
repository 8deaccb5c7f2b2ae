//! Accuracy of estimator settings, measured side by side in one run so that "before" and
//! "after" figures come from the same binary and the same rows.
//!
//! ```sh
//! cargo run --release --no-default-features --example accuracy_sweep -- \
//!     'default={}' 'accum12={"n_accum_bits":12}' 'a2q={"pruning":"accumulator_aware"}'
//! ```
//!
//! Each argument is `NAME=JSON`: the JSON object overrides fields of
//! `EstimatorParams::default()` (the serde field names). For every setting it prints:
//! - `iris cml`: test accuracy on Concrete ML's iris rows (38 samples), train seed 42;
//! - `x8`: its mean (and minimum) over 8 train seeds (42, 52, ..., 112; restarts use
//!   `seed + r`, so the seeds are 10 apart to keep the runs independent);
//! - `cv20`: mean (and minimum) over 20 seeded stratified 75/25 splits (`sqnn train --split
//!   seeded --seed 0..19`), train seed 42;
//! - the same for breast_cancer (8 seeds, 8 splits) and diabetes (test R², 8 splits).
//!
//! `SWEEP_ONLY=iris` restricts to one data set; `SWEEP_IRIS_SEEDS`, `SWEEP_IRIS_SPLITS`,
//! `SWEEP_BC_SEEDS`, `SWEEP_BC_SPLITS` and `SWEEP_DIAB_SPLITS` change the counts.

use sqnn::data::{peer_split, train_test_split, Dataset, Split};
use sqnn::train::{EstimatorParams, Model, NeuralNetClassifier, NeuralNetRegressor};

fn score(ds: &Dataset, split: &Split, p: &EstimatorParams) -> f64 {
    let train = ds.subset(&split.train);
    let test = ds.subset(&split.test);
    let model = match ds.n_classes() {
        Some(_) => {
            let mut m = NeuralNetClassifier::new(p.clone()).expect("params");
            m.fit_dataset(&train).expect("fit");
            Model::Classifier(m)
        }
        None => {
            let mut m = NeuralNetRegressor::new(p.clone()).expect("params");
            m.fit_dataset(&train).expect("fit");
            Model::Regressor(m)
        }
    };
    model.score(&test.x, &test.y).expect("score")
}

/// Test rows of Concrete ML's iris split that the settings miss, with how many of `seeds` miss them.
fn iris_misses(p: &EstimatorParams, seeds: usize) -> Vec<(usize, usize)> {
    let ds = Dataset::builtin("iris").expect("data");
    let split = peer_split("iris").expect("split");
    let train = ds.subset(&split.train);
    let test = ds.subset(&split.test);
    let mut miss = vec![0usize; test.n_samples()];
    for k in 0..seeds {
        let mut m = NeuralNetClassifier::new(EstimatorParams {
            seed: 42 + 10 * sqnn::cast::to_u64(k),
            ..p.clone()
        })
        .expect("params");
        m.fit_dataset(&train).expect("fit");
        let pred = m.predict(&test.x).expect("predict");
        for (i, (&a, &b)) in pred.iter().zip(&test.y).enumerate() {
            if a as f64 != b {
                miss[i] += 1;
            }
        }
    }
    miss.into_iter()
        .enumerate()
        .filter(|&(_, c)| c > 0)
        .collect()
}

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len().max(1) as f64
}

fn main() {
    let only = std::env::var("SWEEP_ONLY").ok();
    let n = |var: &str, d: usize| {
        std::env::var(var)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(d)
    };
    let sets: &[(&str, usize, usize)] = &[
        ("iris", n("SWEEP_IRIS_SEEDS", 8), n("SWEEP_IRIS_SPLITS", 20)),
        (
            "breast_cancer",
            n("SWEEP_BC_SEEDS", 8),
            n("SWEEP_BC_SPLITS", 8),
        ),
        ("diabetes", 1, n("SWEEP_DIAB_SPLITS", 8)),
    ];
    for arg in std::env::args().skip(1) {
        let (name, json) = arg.split_once('=').expect("NAME=JSON");
        let mut v = serde_json::to_value(EstimatorParams::default()).expect("params to JSON");
        let over: serde_json::Value = serde_json::from_str(json).expect("JSON overrides");
        for (k, x) in over.as_object().expect("a JSON object") {
            assert!(v.get(k).is_some(), "unknown parameter {k}");
            v[k] = x.clone();
        }
        let base: EstimatorParams = serde_json::from_value(v).expect("params");
        if std::env::var("SWEEP_ROWS").is_ok() {
            println!(
                "{name}: iris misses (test row, seeds of 16) {:?}",
                iris_misses(&base, 16)
            );
            continue;
        }
        let start = std::time::Instant::now();
        let mut line = format!("{name:<24}");
        for &(data, n_seeds, n_splits) in sets {
            if only.as_deref().is_some_and(|o| o != data) {
                continue;
            }
            let ds = Dataset::builtin(data).expect("data");
            let cml = peer_split(data).expect("peer split");
            let per_seed: Vec<f64> = (0..n_seeds)
                .map(|k| {
                    let p = EstimatorParams {
                        seed: 42 + 10 * sqnn::cast::to_u64(k),
                        ..base.clone()
                    };
                    score(&ds, &cml, &p)
                })
                .collect();
            let cv: Vec<f64> = (0..sqnn::cast::to_u64(n_splits))
                .map(|s| score(&ds, &train_test_split(&ds, 0.25, s).expect("split"), &base))
                .collect();
            let min = |v: &[f64]| v.iter().copied().fold(f64::INFINITY, f64::min);
            line += &format!(" | {data} cml {:.3}", per_seed[0]);
            if n_seeds > 1 {
                line += &format!(
                    " x{n_seeds} {:.3} (min {:.3})",
                    mean(&per_seed),
                    min(&per_seed)
                );
            }
            line += &format!(" cv{n_splits} {:.3} (min {:.3})", mean(&cv), min(&cv));
        }
        println!("{line} | {:.0} s", start.elapsed().as_secs_f64());
    }
}
