//! The `sqnn` command line: train, compile, check, keygen, run, demo.
//!
//! Exit codes: 0 success, 1 the accumulator check failed (a full report is printed), 2 an error
//! (bad input, with a message naming the problem and the fix).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use clap::{Args, Parser, Subcommand, ValueEnum};
use serde_json::json;

use sqnn::analyze::{analyze, Analyzed};
use sqnn::data::{self, Dataset, Split, TaskKind};
use sqnn::execute::ClearBackend;
use sqnn::ir::IntGraph;
use sqnn::{report, Error, Result};

mod progress;
mod train;

#[derive(Parser)]
#[command(
    name = "sqnn",
    version,
    about = "Sparse quantized neural networks under FHE, with a proved accumulator check"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Train a quantized network with pruning on a built-in data set or a CSV file.
    Train(Box<train::TrainArgs>),
    /// Lower a trained model to an integer circuit and check it.
    Compile(CompileArgs),
    /// Check a circuit's accumulators against its budget (exit 0 pass, 1 fail, 2 error).
    Check(CheckArgs),
    /// Generate TFHE keys for a circuit (client key, server key, manifest).
    Keygen(KeygenArgs),
    /// Run a circuit on a data set's test split, in clear or under TFHE.
    Run(RunArgs),
    /// Train, compile, check and run a few encrypted samples of the default data set.
    Demo(DemoArgs),
}

#[derive(Args)]
struct CompileArgs {
    /// The model file written by `sqnn train`.
    model: PathBuf,
    /// Where to write the circuit.
    #[arg(long)]
    out: PathBuf,
    /// Name recorded in the circuit (default: the model's data set name).
    #[arg(long)]
    name: Option<String>,
    /// Share of a neuron's accumulator values whose table output may change when lowering
    /// rounds the accumulator before the table (default 0: lossless rounding only, bit-exact
    /// with the model unless a table is wider than --max-table-bits).
    #[arg(long, default_value_t = sqnn::lower::Rounding::DEFAULT.tolerance)]
    round_tolerance: f64,
    /// Widest table index, bits: wider accumulators drop at least the extra low bits.
    #[arg(long, default_value_t = sqnn::lower::Rounding::DEFAULT.max_table_bits)]
    max_table_bits: u32,
}

#[derive(Args)]
struct CheckArgs {
    /// The circuit file.
    circuit: PathBuf,
    /// Print the report as JSON instead of text.
    #[arg(long)]
    json: bool,
    /// Also write the accumulator-width picture as SVG.
    #[arg(long)]
    svg: Option<PathBuf>,
    /// Also measure each accumulator's width on this data set's rows (what Concrete ML compiles
    /// for) and compare it with the proved worst case.
    #[arg(long)]
    calibrate: Option<String>,
    #[command(flatten)]
    fhe: FheArgs,
    #[command(flatten)]
    split: SplitArgs,
}

/// How the TFHE parameters are chosen.
#[derive(Args, Clone)]
pub struct FheArgs {
    /// Bootstrap reads: `exact` (bit-identical to the clear backend; needs a bootstrap as wide
    /// as the widest accumulator) or `approximate` (one cheap bootstrap reads a wide
    /// accumulator, off by a few units with the probabilities the noise model predicts).
    #[arg(long, default_value = "approximate")]
    pub mode: sqnn::fhe::FheMode,
    /// Target probability, per bootstrap, of a wrong result (exact) or of a read past a table's
    /// margin (approximate), as log2 (Concrete ML's default: -40).
    #[arg(long, default_value_t = -40.0, allow_negative_numbers = true)]
    pub p_error: f64,
    /// Approximate mode: largest read noise (standard deviation, in accumulator units) a
    /// parameter set may have; cheaper sets with noisier reads are skipped.
    #[arg(long, default_value_t = 2.0)]
    pub max_sigma: f64,
    /// Use this parameter set instead of choosing one (a name from `sqnn::fhe::PARAMETER_SETS`).
    #[arg(long)]
    pub parameters: Option<String>,
}

impl FheArgs {
    /// The plan these flags ask for.
    pub fn plan(&self, report: &sqnn::analyze::CompileReport) -> Result<sqnn::fhe::FhePlan> {
        use sqnn::fhe::{self, FheMode};
        let cores = rayon::current_num_threads();
        if let Some(name) = &self.parameters {
            let set = fhe::parameter_set(name).ok_or_else(|| {
                let names: Vec<&str> = fhe::PARAMETER_SETS.iter().map(|p| p.name).collect();
                Error::param(
                    "parameters",
                    format!(
                        "{name:?} is not in the catalogue: use one of {}",
                        names.join(", ")
                    ),
                )
            })?;
            return fhe::plan_with(report, set, self.mode, self.p_error, cores);
        }
        match self.mode {
            FheMode::Exact => {
                fhe::choose_parameters_with(report, self.p_error, cores, FheMode::Exact)
            }
            FheMode::Approximate => {
                fhe::choose_approximate(report, self.p_error, cores, self.max_sigma)
            }
        }
    }
}

#[derive(Args)]
struct KeygenArgs {
    /// The circuit file.
    circuit: PathBuf,
    /// Directory for client.key, server.key and keys.json.
    #[arg(long)]
    out_dir: PathBuf,
    #[command(flatten)]
    fhe: FheArgs,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum BackendKind {
    /// Exact integer execution in clear.
    Clear,
    /// Clear execution with the misreads the chosen TFHE parameters would make (no keys).
    Simulate,
    /// Encrypted execution.
    Tfhe,
}

/// Which rows of the data set to run or evaluate on.
#[derive(Args, Clone)]
pub struct SplitArgs {
    /// Fraction of rows held out for testing.
    #[arg(long, default_value_t = 0.25)]
    pub test_size: f64,
    /// Seed of the shuffled, stratified split.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Which rows are test rows: `auto` (Concrete ML's exact rows where they are recorded, i.e.
    /// scikit-learn's `train_test_split(test_size=0.25, stratify=y, random_state=42)` for iris,
    /// breast_cancer and diabetes, else `seeded`), `seeded` (sqnn's own stratified shuffle with
    /// --test-size and --seed), `concrete-ml`, or a JSON file {"train": [...], "test": [...]}.
    #[arg(long, default_value = "auto")]
    pub split: String,
    /// Target column of a CSV file (default: the last column).
    #[arg(long)]
    pub target: Option<String>,
    /// Task of a CSV file (default: inferred from the target column).
    #[arg(long, value_parser = train::task_parser())]
    pub task: Option<TaskKind>,
}

#[derive(Args)]
struct RunArgs {
    /// The circuit file.
    circuit: PathBuf,
    /// Built-in data set name or CSV path (its test split is used).
    #[arg(long)]
    data: String,
    /// Execution backend.
    #[arg(long, value_enum, default_value_t = BackendKind::Clear)]
    backend: BackendKind,
    /// Run only the first N test samples (default: all for clear, 5 for tfhe).
    #[arg(long)]
    samples: Option<usize>,
    /// Keys directory from `sqnn keygen` (tfhe; default: generate fresh keys in memory).
    #[arg(long)]
    keys: Option<PathBuf>,
    /// Seed of the simulated noise (simulate).
    #[arg(long, default_value_t = 1)]
    noise_seed: u64,
    #[command(flatten)]
    fhe: FheArgs,
    /// Print one JSON object as the last line.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    split: SplitArgs,
}

#[derive(Args)]
struct DemoArgs {
    /// Built-in data set.
    #[arg(long, default_value = "iris")]
    data: String,
    /// Encrypted samples to run.
    #[arg(long, default_value_t = 3)]
    samples: usize,
    /// Working directory for the model and circuit (default: a temporary directory).
    #[arg(long)]
    dir: Option<PathBuf>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.cmd {
        Cmd::Train(a) => train::train(&a).map(|_| ExitCode::SUCCESS),
        Cmd::Compile(a) => compile(&a),
        Cmd::Check(a) => check(&a),
        Cmd::Keygen(a) => keygen(&a),
        Cmd::Run(a) => run(&a),
        Cmd::Demo(a) => demo(&a),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

/// Loads a data set and picks its split.
pub fn load_split(data: &str, s: &SplitArgs) -> Result<(Dataset, Split)> {
    let ds = Dataset::load(data, s.target.as_deref(), s.task)?;
    let default_rows = s.test_size == 0.25 && s.seed == 42;
    let split = match s.split.as_str() {
        "auto" => match data::peer_split(&ds.name) {
            Some(split) if default_rows => split,
            _ => data::train_test_split(&ds, s.test_size, s.seed)?,
        },
        "seeded" => data::train_test_split(&ds, s.test_size, s.seed)?,
        "concrete-ml" => data::peer_split(&ds.name).ok_or_else(|| {
            Error::param(
                "split",
                format!(
                    "Concrete ML's split is recorded for iris, breast_cancer and diabetes, not \
                     {:?}; use --split seeded or give a JSON file",
                    ds.name
                ),
            )
        })?,
        path => data::split_from_file(Path::new(path), &ds)?,
    };
    Ok((ds, split))
}

fn compile(a: &CompileArgs) -> Result<ExitCode> {
    let model = sqnn::train::Model::load(&a.model)?;
    let name = a
        .name
        .clone()
        .unwrap_or_else(|| model.data_name().to_string());
    let rounding = sqnn::lower::Rounding::new(a.round_tolerance, a.max_table_bits)?;
    let graph = sqnn::lower::lower_with(model.quantized(), &name, model.pruning_name(), rounding)?;
    graph.save(&a.out)?;
    let an = analyze(graph)?;
    print!("{}", report::render_text(an.report()));
    println!("wrote {}", a.out.display());
    Ok(if an.report().ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn check(a: &CheckArgs) -> Result<ExitCode> {
    let an = analyze(IntGraph::load(&a.circuit)?)?;
    let r = an.report();
    if a.json {
        println!("{}", report::render_json(r));
    } else {
        print!("{}", report::render_text(r));
        print_fhe_plan(&an, &a.fhe);
    }
    if let Some(data) = &a.calibrate {
        calibrate(&an, data, &a.split, a.json)?;
    }
    if let Some(svg) = &a.svg {
        std::fs::write(svg, report::render_svg(r)).map_err(|e| Error::io(svg, e))?;
        if !a.json {
            println!("picture: {}", svg.display());
        }
    }
    Ok(if r.ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// Widths measured on data (Concrete ML's way) against the proved ones.
fn calibrate(an: &Analyzed, data: &str, split: &SplitArgs, json: bool) -> Result<()> {
    let (ds, sp) = load_split(data, split)?;
    let train = ds.subset(&sp.train);
    let inputs = an.graph().quantize_inputs(&train.x)?;
    let trace = ClearBackend::default().trace(an, &inputs)?;
    let r = an.report();
    let mut rows = Vec::new();
    for n in &r.neurons {
        let col = &trace[n.node];
        let lo = col.iter().copied().min().unwrap_or(0);
        let hi = col.iter().copied().max().unwrap_or(0);
        let measured = sqnn::ir::Interval { lo, hi };
        rows.push((n, measured));
    }
    let wider: Vec<_> = rows
        .iter()
        .filter(|(n, m)| n.range_bits > m.range_bits())
        .collect();
    if json {
        let per: Vec<_> = rows
            .iter()
            .map(|(n, m)| {
                json!({"node": n.node, "layer": n.layer, "neuron": n.neuron,
                "proved_bits": n.range_bits, "measured_bits": m.range_bits(),
                "proved": [n.lo, n.hi], "measured": [m.lo, m.hi]})
            })
            .collect();
        println!(
            "{}",
            json!({"calibration_samples": inputs.len(), "neurons": per,
            "neurons_wider_than_measured": wider.len()})
        );
        return Ok(());
    }
    println!(
        "\ncalibration on {} training rows of {} (what a measuring compiler would see):",
        inputs.len(),
        ds.name
    );
    println!("layer  proved bits max  measured bits max  neurons whose proof needs more bits");
    for l in &r.layers {
        let ls: Vec<_> = rows.iter().filter(|(n, _)| n.layer == l.layer).collect();
        let measured = ls.iter().map(|(_, m)| m.range_bits()).max().unwrap_or(0);
        let more = ls
            .iter()
            .filter(|(n, m)| n.range_bits > m.range_bits())
            .count();
        println!(
            "{:<5}  {:>15}  {:>17}  {more} of {}",
            l.layer,
            l.range_bits_max,
            measured,
            ls.len()
        );
    }
    if let Some((n, m)) = wider
        .iter()
        .max_by_key(|(n, m)| n.range_bits - m.range_bits())
    {
        println!(
            "e.g. layer {} neuron {}: data reaches [{}, {}] ({} bits), the proved worst case is [{}, {}] ({} bits)",
            n.layer, n.neuron, m.lo, m.hi, m.range_bits(), n.lo, n.hi, n.range_bits
        );
    }
    Ok(())
}

fn print_fhe_plan(an: &Analyzed, fhe: &FheArgs) {
    if !an.report().ok {
        return;
    }
    match fhe.plan(an.report()) {
        Ok(plan) => print!("{}", sqnn::fhe::render_plan(&plan)),
        Err(e) => println!("TFHE: {e}"),
    }
}

fn keygen(a: &KeygenArgs) -> Result<ExitCode> {
    tfhe_cmd::keygen(&a.circuit, &a.out_dir, &a.fhe)
}

/// Accuracy (classification) or R² (regression) of predictions against targets.
fn metric(graph: &IntGraph, preds: &[f64], y: &[f64]) -> (&'static str, f64) {
    match graph.meta.task {
        data::Task::Classify { .. } => ("accuracy", sqnn::train::accuracy(preds, y)),
        data::Task::Regress => ("r2", sqnn::train::r2(preds, y)),
    }
}

fn run(a: &RunArgs) -> Result<ExitCode> {
    let graph = IntGraph::load(&a.circuit)?;
    let (ds, split) = load_split(&a.data, &a.split)?;
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
        BackendKind::Simulate => simulate(&an, &inputs, &test.y, a, &ds.name),
        BackendKind::Tfhe => tfhe_cmd::run(an, &inputs, &test.y, a),
    }
}

/// `run --backend simulate`: what the chosen TFHE parameters would give, in milliseconds.
fn simulate(
    an: &Analyzed,
    inputs: &[Vec<i64>],
    y: &[f64],
    a: &RunArgs,
    data: &str,
) -> Result<ExitCode> {
    if !an.report().ok {
        return Err(Error::Backend(format!(
            "the circuit fails the accumulator check, so it would not be encrypted:\n{}",
            report::render_text(an.report())
        )));
    }
    let plan = a.fhe.plan(an.report())?;
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
             predicted encrypted latency {:.0} ms per sample",
            plan.parameter_set,
            plan.mode,
            per(misreads),
            plan.expected_misreads_per_sample,
            per(changed),
            plan.latency_ms_per_sample
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn demo(a: &DemoArgs) -> Result<ExitCode> {
    let tmp;
    let dir = match &a.dir {
        Some(d) => {
            std::fs::create_dir_all(d).map_err(|e| Error::io(d, e))?;
            d.clone()
        }
        None => {
            tmp = std::env::temp_dir().join(format!("sqnn-demo-{}", std::process::id()));
            std::fs::create_dir_all(&tmp).map_err(|e| Error::io(&tmp, e))?;
            tmp
        }
    };
    let model = dir.join(format!("{}.model.json", a.data));
    let circuit = dir.join(format!("{}.circuit.json", a.data));
    println!("== 1/4 train ({} with the default settings)", a.data);
    let targs = train::TrainArgs::defaults_for(&a.data, &model);
    train::train(&targs)?;
    println!("\n== 2/4 compile and check");
    let code = compile(&CompileArgs {
        model: model.clone(),
        out: circuit.clone(),
        name: None,
        round_tolerance: sqnn::lower::Rounding::DEFAULT.tolerance,
        max_table_bits: sqnn::lower::Rounding::DEFAULT.max_table_bits,
    })?;
    if code != ExitCode::SUCCESS {
        return Ok(code);
    }
    let fhe = FheArgs {
        mode: sqnn::fhe::FheMode::Approximate,
        p_error: -40.0,
        max_sigma: 2.0,
        parameters: None,
    };
    println!("\n== 3/4 clear backend on the test split");
    let split = SplitArgs {
        test_size: 0.25,
        seed: 42,
        split: "auto".into(),
        target: None,
        task: None,
    };
    run(&RunArgs {
        circuit: circuit.clone(),
        data: a.data.clone(),
        backend: BackendKind::Clear,
        samples: None,
        keys: None,
        noise_seed: 1,
        fhe: fhe.clone(),
        json: false,
        split: split.clone(),
    })?;
    println!("\n== 4/4 TFHE: {} encrypted samples", a.samples);
    run(&RunArgs {
        circuit,
        data: a.data.clone(),
        backend: BackendKind::Tfhe,
        samples: Some(a.samples),
        keys: None,
        noise_seed: 1,
        fhe,
        json: false,
        split,
    })
}

#[cfg(not(feature = "tfhe-backend"))]
mod tfhe_cmd {
    //! Stand-ins for a build without TFHE: a clear error that says how to enable it.
    use super::*;

    fn disabled() -> Error {
        Error::Backend(
            "this sqnn was built without TFHE (cargo feature `tfhe-backend`); rebuild with \
             `cargo build --release` (the feature is on by default) or use --backend clear"
                .into(),
        )
    }

    pub fn keygen(_: &Path, _: &Path, _: &FheArgs) -> Result<ExitCode> {
        Err(disabled())
    }

    pub fn run(_: Analyzed, _: &[Vec<i64>], _: &[f64], _: &RunArgs) -> Result<ExitCode> {
        Err(disabled())
    }
}

#[cfg(feature = "tfhe-backend")]
mod tfhe_cmd;
