//! `sqnn run`: a circuit on a data set's test rows or on new samples, in clear, simulated or
//! encrypted.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use clap::Args;
use serde_json::json;

use sqnn::analyze::{analyze, Analyzed};
use sqnn::data::{self, SplitUse};
use sqnn::execute::ClearBackend;
use sqnn::ir::IntGraph;
use sqnn::{report, Error, Result};

use crate::args::{load_split_for, BackendKind, FheArgs, Rows, SplitArgs};
use crate::encrypted;

#[derive(Args)]
pub struct RunArgs {
    /// The circuit file.
    pub circuit: PathBuf,
    /// Built-in data set name or CSV path (its test split is used).
    #[arg(long, required_unless_present = "rows", conflicts_with = "rows")]
    pub data: Option<String>,
    /// CSV file of new samples to predict, in clear, simulated (`--backend simulate`: the
    /// circuit's recorded plan) or encrypted (`--backend tfhe`, with --keys or fresh keys): a
    /// header row, then the circuit's feature columns by name (any order); a target column, if
    /// present, scores the predictions.
    #[arg(long)]
    pub rows: Option<PathBuf>,
    /// With --rows: write the predictions to this CSV file (`row,prediction`, and `target`
    /// when known), class labels by name.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Execution backend.
    #[arg(long, value_enum, default_value_t = BackendKind::Clear)]
    pub backend: BackendKind,
    /// Run only the first N test samples (default: all for clear, 5 for tfhe) or rows of
    /// --rows (default: all).
    #[arg(long, value_parser = crate::args::at_least_one)]
    pub samples: Option<usize>,
    /// Keys directory from `sqnn keygen` (tfhe; default: generate fresh keys in memory).
    #[arg(long)]
    pub keys: Option<PathBuf>,
    /// Seed of the simulated noise (--backend simulate only).
    #[arg(long, default_value_t = 1)]
    pub noise_seed: u64,
    /// Whether --noise-seed was given on the command line (not defaulted): refused where
    /// nothing is simulated.
    #[arg(skip)]
    pub noise_seed_given: bool,
    #[command(flatten)]
    pub fhe: FheArgs,
    /// Print one JSON object as the last line.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub split: SplitArgs,
}

/// Accuracy (classification) or R² (regression) of predictions against targets.
pub fn metric(graph: &IntGraph, preds: &[f64], y: &[f64]) -> (&'static str, f64) {
    match graph.meta.task {
        data::Task::Classify { .. } => ("accuracy", sqnn::train::accuracy(preds, y)),
        data::Task::Regress => ("r2", sqnn::train::r2(preds, y)),
    }
}

pub fn run(a: &RunArgs) -> Result<ExitCode> {
    if a.keys.is_some() && a.backend != BackendKind::Tfhe {
        return Err(Error::param(
            "keys",
            "keys apply to the tfhe backend only; drop --keys or run with --backend tfhe",
        ));
    }
    if a.noise_seed_given && a.backend != BackendKind::Simulate {
        let what = match a.backend {
            BackendKind::Tfhe => {
                "the tfhe backend's noise is the encryption's own (fresh randomness), not \
                 simulated"
            }
            _ => "the clear backend has no noise",
        };
        return Err(Error::param(
            "noise_seed",
            format!(
                "--noise-seed seeds the simulated read noise of --backend simulate, and {what}: \
                 drop --noise-seed, or run with --backend simulate"
            ),
        ));
    }
    if a.backend == BackendKind::Clear {
        a.fhe.refuse_given(
            a.data.is_some(),
            "the clear backend uses none",
            "run with --backend simulate (no keys) or --backend tfhe",
        )?;
    }
    if let Some(rows) = &a.rows {
        return predict_rows(a, rows);
    }
    if a.out.is_some() {
        return Err(Error::param(
            "out",
            "--out writes the predictions of --rows FILE.csv; with --data, use --json for \
             the scores",
        ));
    }
    let data = a
        .data
        .as_deref()
        .ok_or_else(|| Error::param("data", "give --data (a data set) or --rows FILE.csv"))?;
    let graph = IntGraph::load(&a.circuit)?;
    let (ds, split) = load_split_for(
        data,
        &a.split,
        &graph.schema(),
        graph.meta.training_rows.as_ref(),
        SplitUse::Evaluate,
    )?;
    let test = ds.subset(&split.test);
    let default_n = if a.backend == BackendKind::Tfhe {
        5
    } else {
        test.n_samples()
    };
    let n = a.samples.unwrap_or(default_n).min(test.n_samples());
    let test = test.subset(&(0..n).collect::<Vec<_>>());
    let inputs = graph.quantize_inputs(&test.x)?;
    let an = analyze(graph)?;
    match a.backend {
        BackendKind::Clear => {
            let t = Instant::now();
            let outs = ClearBackend::default().evaluate(&an, &inputs)?;
            let secs = t.elapsed().as_secs_f64();
            let preds: Vec<f64> = outs.iter().map(|o| an.graph().predict(o)).collect();
            let (name, value) = metric(an.graph(), &preds, &test.y);
            let us = secs * 1e6 / n.max(1) as f64;
            if !a.json {
                println!(
                    "clear backend: {name} {value:.4} on {n} test samples of {}, {us:.2} µs per sample ({:.0} samples/s)",
                    ds.name,
                    n as f64 / secs.max(1e-12)
                );
            }
            if a.json {
                println!(
                    "{}",
                    json!({ name: value, "samples": n, "latency_us_per_sample": us,
                            "backend": "clear", "pbs_count": an.report().pbs_count })
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        BackendKind::Simulate => {
            let rows = Rows {
                data: &ds,
                split: &split,
            };
            simulate(&an, &inputs, &test.y, a, &ds.name, rows)
        }
        BackendKind::Tfhe => {
            // Loaded keys fix the plan; fresh ones use the circuit's recorded plan, or are
            // planned on the training rows.
            let rows = Rows {
                data: &ds,
                split: &split,
            };
            encrypted::run(an, &inputs, &test.y, a, rows)
        }
    }
}

/// `run --rows FILE.csv`: new samples predicted in clear (the predictions an exact encrypted
/// run gives), simulated (with the misreads the plan's reads would make) or encrypted (with the
/// keys of `--keys`, or fresh ones), scored when the file has targets, written with `--out`.
fn predict_rows(a: &RunArgs, path: &std::path::Path) -> Result<ExitCode> {
    if let Some(out) = &a.out {
        let keys = a
            .keys
            .as_deref()
            .map(encrypted::key_files)
            .unwrap_or_default();
        let mut inputs = vec![a.circuit.as_path(), path];
        inputs.extend(keys.iter().map(|k| k.as_path()));
        sqnn::fsio::check_output(out, "out", &inputs)?;
    }
    let graph = IntGraph::load(&a.circuit)?;
    let (inputs, y) = crate::rows::load(&graph, path, &a.split, a.samples, "predicts")?;
    let an = analyze(graph)?;
    // Simulated or encrypted: the circuit's recorded plan (or one made now by the read-noise
    // guard: a file of new samples holds no training rows to choose by accuracy), or the
    // loaded keys'.
    let beside = match a.backend {
        BackendKind::Clear => None,
        BackendKind::Simulate => {
            encryptable(&an)?;
            let plan = a.fhe.plan_for(&an, None, None)?;
            let s = simulated(&an, &inputs, plan, a.noise_seed)?;
            Some(Beside::Simulated(Box::new(s)))
        }
        BackendKind::Tfhe => {
            let checked = encrypted::checked(an.clone())?;
            Some(Beside::Encrypted(encrypted::encrypted(
                &checked, &inputs, a, None,
            )?))
        }
    };
    let outs = match &beside {
        Some(b) => b.outputs().to_vec(),
        None => ClearBackend::default().evaluate(&an, &inputs)?,
    };
    let g = an.graph();
    let preds: Vec<f64> = outs.iter().map(|o| g.predict(o)).collect();
    if let Some(out) = &a.out {
        crate::rows::write_predictions(out, g, &preds, y.as_deref())?;
    }
    let score = y.as_deref().map(|y| metric(g, &preds, y));
    let labels: Vec<String> = preds.iter().map(|&p| g.prediction_label(p)).collect();
    let n = inputs.len();
    let code = match &beside {
        Some(Beside::Encrypted(e)) => e.exit_code(),
        _ => ExitCode::SUCCESS,
    };
    if a.json {
        let mut v = json!({ "samples": n, "predictions": preds, "labels": labels,
                            "outputs": outs, "backend": "clear" });
        if let Some((name, value)) = score {
            v[name] = json!(value);
        }
        if let Some(b) = &beside {
            v["clear_outputs"] = json!(b.clear());
        }
        match &beside {
            None => {}
            Some(Beside::Simulated(s)) => {
                v["backend"] = json!("simulate");
                v["noise_seed"] = json!(a.noise_seed);
                s.add_json(&mut v, g);
            }
            Some(Beside::Encrypted(e)) => e.add_json(&mut v, g),
        }
        println!("{v}");
        return Ok(code);
    }
    if let Some(Beside::Simulated(s)) = &beside {
        print!("{}", sqnn::fhe::render_plan(&s.plan));
    }
    for (i, l) in labels.iter().enumerate() {
        let mut notes: Vec<String> = Vec::new();
        if let Some(b) = &beside {
            let clear = g.prediction_label(g.predict(&b.clear()[i]));
            notes.push(format!("clear {clear}"));
        }
        if let Some(y) = y.as_deref() {
            notes.push(format!("target {}", g.prediction_label(y[i])));
        }
        let notes = if notes.is_empty() {
            String::new()
        } else {
            format!(" ({})", notes.join(", "))
        };
        println!("sample {i}: predicted {l}{notes}");
    }
    let scored = score.map_or(String::new(), |(name, value)| {
        format!(", {name} {value:.4}")
    });
    let written = a.out.as_ref().map_or(String::new(), |o| {
        format!("; predictions in {}", o.display())
    });
    let agreement = beside.as_ref().map_or(String::new(), |b| {
        format!(
            "; {}/{n} same prediction as clear, {}/{n} bit-identical outputs",
            same_predictions(g, b.outputs(), b.clear()),
            identical(b.outputs(), b.clear())
        )
    });
    let rows = path.display();
    match &beside {
        None => println!("clear backend: {n} rows of {rows} predicted{scored}{written}"),
        Some(Beside::Simulated(s)) => println!(
            "simulate ({}, {}, noise seed {}): {n} rows of {rows} predicted{scored}{agreement}; \
             {:.2} misreads per sample (predicted {:.2}){written}",
            s.plan.parameter_set,
            s.plan.mode,
            a.noise_seed,
            s.per_sample(s.misreads),
            s.plan.expected_misreads_per_sample,
        ),
        Some(Beside::Encrypted(e)) => println!(
            "tfhe backend ({}, {}): {n} rows of {rows} encrypted and predicted{scored}\
             {agreement}; {}{written}",
            e.parameters,
            e.mode,
            e.cost()
        ),
    }
    Ok(code)
}

/// What `run --rows` sets beside the clear backend's outputs: a simulated or an encrypted run.
enum Beside {
    Simulated(Box<Simulated>),
    Encrypted(encrypted::EncryptedRun),
}

impl Beside {
    /// The run's outputs, a row per sample.
    fn outputs(&self) -> &[Vec<i64>] {
        match self {
            Beside::Simulated(s) => &s.outs,
            Beside::Encrypted(e) => &e.outputs,
        }
    }

    /// The clear backend's outputs of the same samples.
    fn clear(&self) -> &[Vec<i64>] {
        match self {
            Beside::Simulated(s) => &s.clear,
            Beside::Encrypted(e) => &e.clear,
        }
    }
}

/// How many of `outputs` are bit-identical to `clear`'s (row by row).
pub fn identical(outputs: &[Vec<i64>], clear: &[Vec<i64>]) -> usize {
    outputs.iter().zip(clear).filter(|(o, c)| o == c).count()
}

/// How many of `outputs` give `clear`'s prediction (row by row).
pub fn same_predictions(g: &IntGraph, outputs: &[Vec<i64>], clear: &[Vec<i64>]) -> usize {
    outputs
        .iter()
        .zip(clear)
        .filter(|(o, c)| g.predict(o) == g.predict(c))
        .count()
}

/// Adds the shares of outputs that equal the clear backend's to `v` (a JSON object):
/// `identical_outputs_share` (bit-identical outputs) and `identical_predictions_share` (the same
/// prediction), and under their former names the same values: `agreement_with_clear`
/// (deprecated: it read like prediction agreement, but is the outputs' share) and
/// `same_prediction_as_clear`, so that scripts reading them keep working.
pub fn add_agreement(
    v: &mut serde_json::Value,
    identical: usize,
    same_prediction: usize,
    n: usize,
) {
    let share = |k: usize| k as f64 / n.max(1) as f64;
    v["identical_outputs_share"] = json!(share(identical));
    v["identical_predictions_share"] = json!(share(same_prediction));
    v["agreement_with_clear"] = json!(share(identical));
    v["same_prediction_as_clear"] = json!(share(same_prediction));
}

/// A simulated run: the outputs with the misreads the plan's reads would make, the clear
/// backend's, and what the noise did.
struct Simulated {
    plan: sqnn::fhe::FhePlan,
    outs: Vec<Vec<i64>>,
    clear: Vec<Vec<i64>>,
    /// Misread table reads, in all.
    misreads: u64,
    /// Misreads that changed a table's output, in all.
    changed: u64,
    /// The simulation's time, seconds.
    secs: f64,
}

/// Refuses a circuit that fails the accumulator check: it would not be encrypted.
fn encryptable(an: &Analyzed) -> Result<()> {
    if an.report().ok {
        return Ok(());
    }
    Err(Error::Backend(format!(
        "the circuit fails the accumulator check, so it would not be encrypted:\n{}",
        report::render_text(an.report())
    )))
}

/// `inputs` through `an` with the misreads of `plan`'s reads, seeded by `seed`.
fn simulated(
    an: &Analyzed,
    inputs: &[Vec<i64>],
    plan: sqnn::fhe::FhePlan,
    seed: u64,
) -> Result<Simulated> {
    let sigma = sqnn::fhe::sigma_units_by_node(&plan, an.graph());
    let clear = ClearBackend::default().evaluate(an, inputs)?;
    let t = Instant::now();
    let (outs, stats) = ClearBackend::default().simulate(an, inputs, &sigma, seed)?;
    let secs = t.elapsed().as_secs_f64();
    let luts = an
        .graph()
        .nodes
        .iter()
        .enumerate()
        .filter(|(_, nd)| matches!(nd.op, sqnn::ir::Op::Lut { .. }))
        .map(|(i, _)| i);
    let (misreads, changed) = luts.fold((0, 0), |(m, c), i| {
        (m + stats.misreads[i], c + stats.changed[i])
    });
    Ok(Simulated {
        plan,
        outs,
        clear,
        misreads,
        changed,
        secs,
    })
}

impl Simulated {
    /// Outputs bit-identical to the clear backend's.
    fn identical(&self) -> usize {
        identical(&self.outs, &self.clear)
    }

    /// Outputs with the clear backend's prediction.
    fn same_predictions(&self, g: &IntGraph) -> usize {
        same_predictions(g, &self.outs, &self.clear)
    }

    /// `total` per sample.
    fn per_sample(&self, total: u64) -> f64 {
        total as f64 / self.outs.len().max(1) as f64
    }

    /// The keys of `run --backend simulate --json` that do not depend on targets.
    fn add_json(&self, v: &mut serde_json::Value, g: &IntGraph) {
        let n = self.outs.len();
        add_agreement(v, self.identical(), self.same_predictions(g), n);
        v["misreads_per_sample"] = json!(self.per_sample(self.misreads));
        v["predicted_misreads_per_sample"] = json!(self.plan.expected_misreads_per_sample);
        v["changed_table_outputs_per_sample"] = json!(self.per_sample(self.changed));
        v["latency_us_per_sample"] = json!(self.secs * 1e6 / n.max(1) as f64);
        v["predicted_fhe_ms_per_sample"] = json!(self.plan.latency_ms_per_sample);
        v["parameters"] = json!(self.plan.parameter_set);
        v["mode"] = json!(self.plan.mode.to_string());
    }
}

/// `run --backend simulate`: what the chosen TFHE parameters would give, in milliseconds.
pub fn simulate(
    an: &Analyzed,
    inputs: &[Vec<i64>],
    y: &[f64],
    a: &RunArgs,
    data: &str,
    rows: Rows,
) -> Result<ExitCode> {
    encryptable(an)?;
    let plan = a.fhe.plan_for(an, None, Some(rows))?;
    let s = simulated(an, inputs, plan, a.noise_seed)?;
    let g = an.graph();
    let preds: Vec<f64> = s.outs.iter().map(|o| g.predict(o)).collect();
    let clear_preds: Vec<f64> = s.clear.iter().map(|o| g.predict(o)).collect();
    let (name, value) = metric(g, &preds, y);
    let (_, clear_value) = metric(g, &clear_preds, y);
    let n = inputs.len();
    if a.json {
        let mut v = json!({ name: value, "clear": clear_value, "samples": n,
            "pbs_count": an.report().pbs_count, "backend": "simulate" });
        s.add_json(&mut v, g);
        println!("{v}");
    } else {
        let plan = &s.plan;
        print!("{}", sqnn::fhe::render_plan(plan));
        println!(
            "simulate ({}, {}): {name} {value:.4} on {n} test samples of {data} (clear {clear_value:.4}); \
             {}/{n} same prediction as clear, {}/{n} bit-identical outputs; \
             {:.2} misreads per sample (predicted {:.2}), {:.2} of them change a table's output; \
             predicted encrypted latency {:.prec$} ms per sample",
            plan.parameter_set,
            plan.mode,
            s.same_predictions(g),
            s.identical(),
            s.per_sample(s.misreads),
            plan.expected_misreads_per_sample,
            s.per_sample(s.changed),
            plan.latency_ms_per_sample,
            // A circuit without bootstraps takes well under a millisecond.
            prec = if plan.latency_ms_per_sample < 10.0 { 2 } else { 0 }
        );
    }
    Ok(ExitCode::SUCCESS)
}
