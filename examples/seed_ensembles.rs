//! Seed ensembles of a regression, over repeated random splits or on validation folds of
//! Concrete ML's diabetes training rows (never its test rows): whether averaging the
//! predictions of `K` models trained with different seeds beats one model, and how they
//! compare with linear models.
//!
//! ```sh
//! RUNS=80 KMAX=3 cargo run --release --example seed_ensembles -- \
//!     'linear-8/8/20={"n_layers":1,"n_w_bits":8,"n_a_bits":8,"n_accum_bits":20}' \
//!     'small={"n_layers":2,"n_hidden_neurons_multiplier":1.0,"n_accum_bits":9}'
//! ```
//!
//! Each argument is `NAME=JSON` (fields of `EstimatorParams::default()`, serde names). Run `r`
//! (of `RUNS`, default 40) trains on the seeded 75/25 split `r` of diabetes; with `VALID=1`,
//! on the folds of `RUNS` cuts of 5 folds of Concrete ML's 331 training rows instead. Member
//! `k` of run `r` trains with seed `42 + 10 r + 1000 k`. Printed per setting and `K` = 1 to
//! `KMAX` (default 4): the mean R² (in clear, the quantized models' predictions averaged) and
//! the bootstraps summed over the members. `DUMP=FILE` appends every run's R² per setting
//! and `K` (tab-separated, JSON list), for paired comparisons.

use std::io::Write;

use sqnn::analyze::analyze;
use sqnn::data::{peer_split, train_test_split, Dataset};
use sqnn::lower::lower;
use sqnn::progress::NoProgress;
use sqnn::train::{r2, EstimatorParams, Model};
use sqnn::tune::Folds;

fn parse(json: &str) -> EstimatorParams {
    let mut v = serde_json::to_value(EstimatorParams::default()).expect("params to JSON");
    let over: serde_json::Value = serde_json::from_str(json).expect("JSON overrides");
    for (k, x) in over.as_object().expect("a JSON object") {
        assert!(v.get(k).is_some(), "unknown parameter {k}");
        v[k] = x.clone();
    }
    serde_json::from_value(v).expect("params")
}

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .map_or(default, |v| v.parse().expect(name))
}

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len().max(1) as f64
}

fn main() {
    let runs = env("RUNS", 40);
    let kmax = sqnn::cast::to_usize(env("KMAX", 4));
    let ds = Dataset::builtin("diabetes").expect("data");
    // (run, training rows, rows to score)
    let mut jobs: Vec<(u64, Dataset, Dataset)> = Vec::new();
    if std::env::var("VALID").is_ok() {
        let train = ds.subset(&peer_split("diabetes").expect("Concrete ML's rows").train);
        let folds = Folds {
            k: 5,
            used: 5,
            repeats: sqnn::cast::to_usize(runs),
            seed: 7,
        };
        for (i, part) in folds.parts(&train).expect("folds").into_iter().enumerate() {
            jobs.push((
                sqnn::cast::to_u64(i),
                train.subset(&part.train),
                train.subset(&part.validation),
            ));
        }
    } else {
        for r in 0..runs {
            let split = train_test_split(&ds, 0.25, r).expect("split");
            jobs.push((r, ds.subset(&split.train), ds.subset(&split.test)));
        }
    }
    for arg in std::env::args().skip(1) {
        let (name, json) = arg.split_once('=').expect("NAME=JSON");
        let base = parse(json);
        let start = std::time::Instant::now();
        let mut scores = vec![Vec::new(); kmax];
        let mut pbs = vec![0.0; kmax];
        for (r, train, test) in &jobs {
            let mut sum = vec![0.0; test.y.len()];
            let mut bootstraps = 0.0;
            for (k, score) in scores.iter_mut().enumerate() {
                let p = EstimatorParams {
                    seed: 42 + 10 * r + 1000 * sqnn::cast::to_u64(k),
                    ..base.clone()
                };
                let (m, _) = Model::fit(p, train, &NoProgress).expect("fit");
                let graph = lower(m.quantized(), "diabetes", m.params().pruning).expect("lower");
                bootstraps += analyze(graph).expect("analyze").report().pbs_count as f64;
                pbs[k] += bootstraps;
                for (s, v) in sum.iter_mut().zip(m.predict(&test.x).expect("predict")) {
                    *s += v;
                }
                let avg: Vec<f64> = sum.iter().map(|s| s / (k + 1) as f64).collect();
                score.push(r2(&avg, &test.y));
            }
        }
        if let Ok(path) = std::env::var("DUMP") {
            let mut f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .expect("DUMP file");
            for (k, s) in scores.iter().enumerate() {
                let list = serde_json::to_string(s).expect("JSON");
                writeln!(f, "{name}\t{}\t{list}", k + 1).expect("write DUMP");
            }
        }
        let per_k: Vec<String> = scores
            .iter()
            .zip(&pbs)
            .enumerate()
            .map(|(k, (s, b))| {
                format!(
                    "K{} R² {:.4} ({:.1} PBS)",
                    k + 1,
                    mean(s),
                    b / jobs.len() as f64
                )
            })
            .collect();
        println!(
            "{name:<24} {} | {:.0} s",
            per_k.join(" | "),
            start.elapsed().as_secs_f64()
        );
    }
}
