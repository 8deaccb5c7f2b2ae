//! Training settings judged by what FHE will do to them: simulated accuracy, the share of test
//! rows whose prediction the reads change, bootstraps and the planner's choice, averaged over
//! repeated random splits and training seeds (never Concrete ML's reported rows).
//!
//! ```sh
//! cargo run --release --no-default-features --example noise_sweep -- \
//!     'plain={}' 'noise-aware={"noise_aware":"auto"}'
//! ```
//!
//! Each argument is `NAME=JSON`: the JSON object overrides fields of
//! `EstimatorParams::default()` (serde names), plus `"noise_aware"` (a parameter set's name,
//! or `"auto"`: the set the planner takes by latency alone for the model trained without
//! noise) and `"noise_scale"`, which set `read_noise`. Run `r` (of `SWEEP_RUNS`, default 8) trains on the seeded
//! stratified 75/25 split `r` with training seed `42 + 10 r`, lowers the model (lossless
//! rounding, as `sqnn compile`), simulates its test rows on the set `SWEEP_SET` (default the
//! 2-bit classic 2^-128 set) with noise seeds 1 to 4, and lets the default planner choose
//! (by accuracy on the training rows, built-in cost figures). Per data set it prints: clear
//! test score; on `SWEEP_SET` the simulated score and the share of test rows whose prediction
//! differs from clear; the bootstraps; and the default plan's predicted latency, its simulated
//! score, the share of test rows it changes and its sets (`SWEEP_CAL_SEEDS`: the choice's
//! noise seeds, default the planner's for the training rows). `SWEEP_ONLY=iris` restricts to one data set (`mnist` is accepted too,
//! on its 8,000 / 2,000 split, with `SWEEP_RUNS` seeds).

use std::collections::BTreeMap;

use sqnn::analyze::{analyze, Analyzed};
use sqnn::data::{train_test_split, Dataset, Split};
use sqnn::execute::ClearBackend;
use sqnn::fhe::{self, Calibration, FheMode, FhePlan, ParamSetId, PlanFacts, PlanRequest};
use sqnn::lower::lower;
use sqnn::progress::NoProgress;
use sqnn::train::{EstimatorParams, Model};

const NOISE_SEEDS: u64 = 4;

/// One setting: its parameters, and the noise-aware set (`auto` or a name).
struct Setting {
    name: String,
    params: EstimatorParams,
    noise: Option<String>,
    /// The injected noise's scale (`"noise_scale"`, 1 by default).
    scale: f64,
}

fn parse(arg: &str) -> Setting {
    let (name, json) = arg.split_once('=').expect("NAME=JSON");
    let mut v = serde_json::to_value(EstimatorParams::default()).expect("params to JSON");
    let over: serde_json::Value = serde_json::from_str(json).expect("JSON overrides");
    let mut noise = None;
    let mut scale = 1.0;
    for (k, x) in over.as_object().expect("a JSON object") {
        if k == "noise_aware" {
            noise = Some(x.as_str().expect("a set name or auto").to_string());
            continue;
        }
        if k == "noise_scale" {
            scale = x.as_f64().expect("a number");
            continue;
        }
        assert!(v.get(k).is_some(), "unknown parameter {k}");
        v[k] = x.clone();
    }
    Setting {
        name: name.to_string(),
        params: serde_json::from_value(v).expect("params"),
        noise,
        scale,
    }
}

fn request() -> PlanRequest {
    PlanRequest::new(FheMode::Approximate).cores(fhe::builtin_cores())
}

fn analyzed(model: &Model, name: &str) -> Analyzed {
    let graph = lower(model.quantized(), name, model.params().pruning).expect("lower");
    analyze(graph).expect("analyze")
}

/// The model of `s` on `train`, with `auto` resolved by a plain training first.
fn fit(s: &Setting, p: &EstimatorParams, train: &Dataset) -> Model {
    let mut p = p.clone();
    if let Some(noise) = &s.noise {
        let set = if noise == "auto" {
            let (plain, _) = Model::fit(p.clone(), train, &NoProgress).expect("fit");
            let an = analyzed(&plain, &train.name);
            fhe::plan(&PlanFacts::new(&an), &request())
                .expect("plan")
                .parameter_set
        } else {
            noise.parse::<ParamSetId>().expect("a parameter set")
        };
        let mut noise = set.set().read_noise();
        noise.scale = s.scale;
        p.read_noise = Some(noise);
    }
    Model::fit(p, train, &NoProgress).expect("fit").0
}

/// Accuracy or R² of predictions.
fn score(an: &Analyzed, preds: &[f64], y: &[f64]) -> f64 {
    let regression = matches!(an.graph().meta.task, sqnn::task::Task::Regress);
    if regression {
        sqnn::train::r2(preds, y)
    } else {
        preds.iter().zip(y).filter(|(p, t)| p == t).count() as f64 / y.len().max(1) as f64
    }
}

/// Mean simulated score and mean share of rows whose prediction differs from clear, over the
/// noise seeds, on `plan`.
fn simulated(an: &Analyzed, plan: &FhePlan, inputs: &[Vec<i64>], y: &[f64]) -> (f64, f64) {
    let g = an.graph();
    let sigma = fhe::sigma_units_by_node(plan, g);
    let clear: Vec<f64> = ClearBackend::default()
        .evaluate(an, inputs)
        .expect("clear")
        .iter()
        .map(|o| g.predict(o))
        .collect();
    let (mut s, mut d) = (0.0, 0.0);
    for seed in 1..=NOISE_SEEDS {
        let (outs, _) = ClearBackend::default()
            .simulate(an, inputs, &sigma, seed)
            .expect("simulate");
        let preds: Vec<f64> = outs.iter().map(|o| g.predict(o)).collect();
        s += score(an, &preds, y);
        d += preds.iter().zip(&clear).filter(|(a, b)| a != b).count() as f64
            / inputs.len().max(1) as f64;
    }
    (s / NOISE_SEEDS as f64, d / NOISE_SEEDS as f64)
}

#[derive(Default)]
struct Tally {
    clear: Vec<f64>,
    sim: Vec<f64>,
    differ: Vec<f64>,
    pbs: Vec<f64>,
    plan_ms: Vec<f64>,
    plan_sim: Vec<f64>,
    plan_differ: Vec<f64>,
    sets: BTreeMap<String, usize>,
    /// Runs whose circuit the set does not hold at the target.
    unfit: usize,
}

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len().max(1) as f64
}

fn run(s: &Setting, ds: &Dataset, split: &Split, seed: u64, set: ParamSetId, t: &mut Tally) {
    let train = ds.subset(&split.train);
    let test = ds.subset(&split.test);
    let p = EstimatorParams {
        seed,
        ..s.params.clone()
    };
    let model = fit(s, &p, &train);
    let an = analyzed(&model, &ds.name);
    let g = an.graph();
    let inputs = g.quantize_inputs(&test.x).expect("inputs");
    let clear: Vec<f64> = ClearBackend::default()
        .evaluate(&an, &inputs)
        .expect("clear")
        .iter()
        .map(|o| g.predict(o))
        .collect();
    t.clear.push(score(&an, &clear, &test.y));
    t.pbs.push(an.report().pbs_count as f64);
    let facts = PlanFacts::new(&an);
    match fhe::plan(&facts, &request().on(set)) {
        Ok(on_set) => {
            let (sim, differ) = simulated(&an, &on_set, &inputs, &test.y);
            t.sim.push(sim);
            t.differ.push(differ);
        }
        // The circuit does not fit the set at the failure target.
        Err(_) => t.unfit += 1,
    }
    let cal_inputs = g.quantize_inputs(&train.x).expect("inputs");
    let cal = Calibration::new(&an, &cal_inputs, &train.y).expect("calibration");
    let cal = match cal_seeds() {
        Some(n) => cal.seeds(n).expect("SWEEP_CAL_SEEDS"),
        None => cal,
    };
    let chosen = fhe::plan(&facts, &request().calibration(cal)).expect("plan");
    t.plan_ms.push(chosen.latency_ms_per_sample);
    let (plan_sim, plan_differ) = simulated(&an, &chosen, &inputs, &test.y);
    t.plan_sim.push(plan_sim);
    t.plan_differ.push(plan_differ);
    *t.sets
        .entry(format!(
            "{} {}",
            chosen.set().label(),
            chosen.set().family()
        ))
        .or_default() += 1;
}

/// Noise seeds of the default plan's choice by accuracy (`SWEEP_CAL_SEEDS`; `None`: the
/// planner's default for the calibration rows).
fn cal_seeds() -> Option<u64> {
    std::env::var("SWEEP_CAL_SEEDS")
        .ok()
        .map(|v| v.parse().expect("SWEEP_CAL_SEEDS"))
}

fn main() {
    let only = std::env::var("SWEEP_ONLY").ok();
    let runs: u64 = std::env::var("SWEEP_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(8);
    let set: ParamSetId = std::env::var("SWEEP_SET")
        .ok()
        .map_or(ParamSetId::ClassicMsg1Carry1, |n| {
            n.parse().expect("SWEEP_SET")
        });
    println!(
        "{runs} runs (split r, training seed 42 + 10 r), noise seeds 1..={NOISE_SEEDS}; \
         simulated on {} ({}); plan: the default choice by accuracy ({} calibration seeds)",
        set.name(),
        set.set().label(),
        cal_seeds().map_or("the default number of".to_string(), |n| n.to_string())
    );
    let datasets: Vec<&str> = match only.as_deref() {
        Some(d) => vec![d],
        None => vec!["iris", "breast_cancer", "diabetes"],
    };
    let settings: Vec<Setting> = std::env::args().skip(1).map(|a| parse(&a)).collect();
    for data in datasets {
        let ds = Dataset::builtin(data).expect("data");
        for s in &settings {
            let start = std::time::Instant::now();
            let mut t = Tally::default();
            for r in 0..runs {
                let split = if data == "mnist" {
                    train_test_split(&ds, 0.2, 42).expect("split")
                } else {
                    train_test_split(&ds, 0.25, r).expect("split")
                };
                run(s, &ds, &split, 42 + 10 * r, set, &mut t);
            }
            let sets: Vec<String> = t.sets.iter().map(|(k, v)| format!("{k} x{v}")).collect();
            println!(
                "{data:<13} {:<22} clear {:.3} | {}: sim {:.3}, differ {:.2} % ({} unfit) | \
                 PBS {:.1} | plan {:.0} ms, sim {:.3}, differ {:.2} % ({}) | {:.0} s",
                s.name,
                mean(&t.clear),
                set.set().label(),
                mean(&t.sim),
                100.0 * mean(&t.differ),
                t.unfit,
                mean(&t.pbs),
                mean(&t.plan_ms),
                mean(&t.plan_sim),
                100.0 * mean(&t.plan_differ),
                sets.join(", "),
                start.elapsed().as_secs_f64()
            );
        }
    }
}
