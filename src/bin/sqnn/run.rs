//! `sqnn run`: a circuit on a data set's test rows, in clear, simulated or encrypted.

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
    /// CSV file of new samples to predict in clear: a header row, then the circuit's feature
    /// columns by name (any order); a target column, if present, scores the predictions.
    #[arg(long)]
    pub rows: Option<PathBuf>,
    /// With --rows: write the predictions to this CSV file (`row,prediction`, and `target`
    /// when known), class labels by name.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Execution backend.
    #[arg(long, value_enum, default_value_t = BackendKind::Clear)]
    pub backend: BackendKind,
    /// Run only the first N test samples (default: all for clear, 5 for tfhe).
    #[arg(long, value_parser = crate::args::at_least_one)]
    pub samples: Option<usize>,
    /// Keys directory from `sqnn keygen` (tfhe; default: generate fresh keys in memory).
    #[arg(long)]
    pub keys: Option<PathBuf>,
    /// Seed of the simulated noise (simulate).
    #[arg(long, default_value_t = 1)]
    pub noise_seed: u64,
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
    if a.backend == BackendKind::Clear {
        a.fhe.refuse_given(
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
/// run gives), scored when the file has targets, written with `--out`.
fn predict_rows(a: &RunArgs, path: &std::path::Path) -> Result<ExitCode> {
    if a.backend != BackendKind::Clear {
        return Err(Error::param(
            "backend",
            "--rows predicts new samples in clear here; under encryption, serve the circuit \
             (`sqnn serve`) and run `sqnn client predict --rows`, or measure encrypted accuracy \
             on a data set with --data",
        ));
    }
    if let Some(out) = &a.out {
        sqnn::fsio::check_output(out, "out", &[a.circuit.as_path(), path])?;
    }
    let graph = IntGraph::load(&a.circuit)?;
    let (inputs, y) = crate::rows::load(&graph, path, &a.split, a.samples, "predicts")?;
    let an = analyze(graph)?;
    let outs = ClearBackend::default().evaluate(&an, &inputs)?;
    let g = an.graph();
    let preds: Vec<f64> = outs.iter().map(|o| g.predict(o)).collect();
    if let Some(out) = &a.out {
        crate::rows::write_predictions(out, g, &preds, y.as_deref())?;
    }
    let score = y.as_deref().map(|y| metric(g, &preds, y));
    let labels: Vec<String> = preds.iter().map(|&p| g.prediction_label(p)).collect();
    let n = inputs.len();
    if a.json {
        let mut v = json!({ "samples": n, "predictions": preds, "labels": labels,
                            "outputs": outs, "backend": "clear" });
        if let Some((name, value)) = score {
            v[name] = json!(value);
        }
        println!("{v}");
    } else {
        for (i, l) in labels.iter().enumerate() {
            let target = y.as_deref().map_or(String::new(), |y| {
                format!(" (target {})", g.prediction_label(y[i]))
            });
            println!("sample {i}: predicted {l}{target}");
        }
        let scored = score.map_or(String::new(), |(name, value)| {
            format!(", {name} {value:.4}")
        });
        let written = a.out.as_ref().map_or(String::new(), |o| {
            format!("; predictions in {}", o.display())
        });
        println!(
            "clear backend: {n} rows of {} predicted{scored}{written}",
            path.display()
        );
    }
    Ok(ExitCode::SUCCESS)
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
    if !an.report().ok {
        return Err(Error::Backend(format!(
            "the circuit fails the accumulator check, so it would not be encrypted:\n{}",
            report::render_text(an.report())
        )));
    }
    let plan = a.fhe.plan_for(an, None, Some(rows))?;
    let sigma = sqnn::fhe::sigma_units_by_node(&plan, an.graph());
    let exact = ClearBackend::default().evaluate(an, inputs)?;
    let t = Instant::now();
    let (outs, stats) = ClearBackend::default().simulate(an, inputs, &sigma, a.noise_seed)?;
    let secs = t.elapsed().as_secs_f64();
    let g = an.graph();
    let preds: Vec<f64> = outs.iter().map(|o| g.predict(o)).collect();
    let clear_preds: Vec<f64> = exact.iter().map(|o| g.predict(o)).collect();
    let (name, value) = metric(g, &preds, y);
    let (_, clear_value) = metric(g, &clear_preds, y);
    let n = inputs.len();
    let identical = outs.iter().zip(&exact).filter(|(s, e)| s == e).count();
    let same_pred = preds
        .iter()
        .zip(&clear_preds)
        .filter(|(s, e)| s == e)
        .count();
    let lut_ids: Vec<usize> = g
        .nodes
        .iter()
        .enumerate()
        .filter(|(_, nd)| matches!(nd.op, sqnn::ir::Op::Lut { .. }))
        .map(|(i, _)| i)
        .collect();
    let misreads: u64 = lut_ids.iter().map(|&i| stats.misreads[i]).sum();
    let changed: u64 = lut_ids.iter().map(|&i| stats.changed[i]).sum();
    let per = |v: u64| v as f64 / n.max(1) as f64;
    if a.json {
        println!(
            "{}",
            json!({ name: value, "clear": clear_value, "samples": n,
                "agreement_with_clear": identical as f64 / n.max(1) as f64,
                "same_prediction_as_clear": same_pred as f64 / n.max(1) as f64,
                "misreads_per_sample": per(misreads),
                "predicted_misreads_per_sample": plan.expected_misreads_per_sample,
                "changed_table_outputs_per_sample": per(changed),
                "latency_us_per_sample": secs * 1e6 / n.max(1) as f64,
                "predicted_fhe_ms_per_sample": plan.latency_ms_per_sample,
                "pbs_count": an.report().pbs_count, "parameters": plan.parameter_set,
                "mode": plan.mode.to_string(), "backend": "simulate" })
        );
    } else {
        print!("{}", sqnn::fhe::render_plan(&plan));
        println!(
            "simulate ({}, {}): {name} {value:.4} on {n} test samples of {data} (clear {clear_value:.4}); \
             {same_pred}/{n} same prediction as clear, {identical}/{n} identical outputs; \
             {:.2} misreads per sample (predicted {:.2}), {:.2} of them change a table's output; \
             predicted encrypted latency {:.prec$} ms per sample",
            plan.parameter_set,
            plan.mode,
            per(misreads),
            plan.expected_misreads_per_sample,
            per(changed),
            plan.latency_ms_per_sample,
            // A circuit without bootstraps takes well under a millisecond.
            prec = if plan.latency_ms_per_sample < 10.0 { 2 } else { 0 }
        );
    }
    Ok(ExitCode::SUCCESS)
}
