//! How often a plan's simulated reads change a circuit's predictions, on all of a data set's
//! training rows and test rows, over many noise seeds: the quantity the choice by accuracy
//! estimates (on at most 1,000 training rows × 4 seeds), measured with more rows and seeds,
//! and the rows that change most (with their clear output accumulators).
//!
//! ```sh
//! cargo run --release --example agreement -- circuits/iris.circuit.json iris        # auto split
//! SEEDS=10 SET=V1_8_PARAM_MESSAGE_2_CARRY_2_KS_PBS_TUNIFORM_2M128 \
//!   cargo run --release --example agreement -- circuits/mnist.circuit.json mnist 0.2
//! ```
//! Arguments: circuit, built-in data set, optional test size (sqnn's seeded split, seed 42;
//! default: `--split auto`). `SEEDS` (default 400) noise seeds `1..=SEEDS`; `SET` plans on that
//! set (default: the circuit's recorded plan), on the built-in cost figures. Per split it
//! prints the share of changed predictions, the mean accuracy, the share of runs (seeds) that
//! get at least as many rows right as the clear circuit and the runs by their count of right
//! rows, and the rows that change most.

use sqnn::analyze::analyze;
use sqnn::data::SplitSpec;
use sqnn::execute::ClearBackend;
use sqnn::fhe::{self, PlanFacts, PlanRequest};
use sqnn::ir::IntGraph;
use sqnn::Dataset;

fn main() {
    if std::env::args().len() < 3 {
        eprintln!("usage: agreement CIRCUIT DATA [TEST_SIZE]");
        std::process::exit(2);
    }
    let args: Vec<String> = std::env::args().collect();
    let (circuit, data) = (&args[1], &args[2]);
    let spec = match args.get(3) {
        Some(t) => SplitSpec::Seeded {
            test_size: t.parse().expect("a test size such as 0.2"),
            seed: SplitSpec::DEFAULT_SEED,
        },
        None => SplitSpec::Auto,
    };
    let seeds: u64 = std::env::var("SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(400);
    let set_override = std::env::var("SET").ok();
    let g = IntGraph::load(std::path::Path::new(circuit)).unwrap();
    let ds = Dataset::builtin(data).unwrap();
    let conf = g.schema().conform(&ds).unwrap().data;
    let split = spec.split(&ds).unwrap();
    let an = analyze(g).unwrap();
    let facts = PlanFacts::new(&an);
    let req = PlanRequest::new(fhe::FheMode::Approximate).cores(2);
    let plan = match set_override {
        Some(s) => fhe::plan(&facts, &req.on(s.parse().unwrap())).unwrap(),
        None => match an.graph().plan.as_ref() {
            Some(r) => fhe::recorded_plan(&facts, r, &req).unwrap(),
            None => fhe::plan(&facts, &req.max_sigma(fhe::FALLBACK_MAX_SIGMA)).unwrap(),
        },
    };
    println!(
        "set {} latency {:.0} ms",
        plan.parameter_set, plan.latency_ms_per_sample
    );
    let sigma = fhe::sigma_units_by_node(&plan, an.graph());
    for (name, rows) in [("train", &split.train), ("test", &split.test)] {
        let sub = conf.subset(rows);
        let inputs = an.graph().quantize_inputs(&sub.x).unwrap();
        let clear = ClearBackend::default().evaluate(&an, &inputs).unwrap();
        let cp: Vec<f64> = clear.iter().map(|o| an.graph().predict(o)).collect();
        let mut flips = vec![0u64; inputs.len()];
        let mut acc_sum = 0.0;
        let clear_acc = sqnn::train::accuracy(&cp, &sub.y);
        // Runs (noise seeds) by their number of correct predictions.
        let mut correct_runs: std::collections::BTreeMap<usize, u64> = Default::default();
        for seed in 1..=seeds {
            let (outs, _) = ClearBackend::default()
                .simulate(&an, &inputs, &sigma, seed)
                .unwrap();
            let p: Vec<f64> = outs.iter().map(|o| an.graph().predict(o)).collect();
            for i in 0..p.len() {
                if p[i] != cp[i] {
                    flips[i] += 1;
                }
            }
            let acc = sqnn::train::accuracy(&p, &sub.y);
            acc_sum += acc;
            *correct_runs
                .entry(p.iter().zip(&sub.y).filter(|(a, b)| a == b).count())
                .or_default() += 1;
        }
        let total: u64 = flips.iter().sum();
        println!("{name}: {} rows, {seeds} seeds: changed {:.3} %, accuracy {:.4} vs clear {:.4} (loss {:.2} points)",
            inputs.len(), 100.0 * total as f64 / (seeds as f64 * inputs.len() as f64), acc_sum / seeds as f64, clear_acc, 100.0*(clear_acc - acc_sum / seeds as f64));
        let clear_correct = cp.iter().zip(&sub.y).filter(|(a, b)| a == b).count();
        let at_least = |k: usize| -> f64 {
            100.0 * correct_runs.range(k..).map(|(_, n)| n).sum::<u64>() as f64 / seeds as f64
        };
        println!(
            "  runs with at least {clear_correct}/{n} correct (as in clear): {:.1} %; by correct count: {}",
            at_least(clear_correct),
            correct_runs
                .iter()
                .rev()
                .map(|(k, c)| format!("{k}: {:.1} %", 100.0 * *c as f64 / seeds as f64))
                .collect::<Vec<_>>()
                .join(", "),
            n = inputs.len()
        );
        let mut worst: Vec<(usize, u64)> = flips
            .iter()
            .cloned()
            .enumerate()
            .filter(|x| x.1 > 0)
            .collect();
        worst.sort_by_key(|x| std::cmp::Reverse(x.1));
        for (i, f) in worst.iter().take(6) {
            let o = &clear[*i];
            println!("  row {} (data row {}): flips {:.1} %, clear outputs {:?}, label {}, clear pred {}", i, rows[*i], 100.0 * *f as f64 / seeds as f64, o, sub.y[*i], cp[*i]);
        }
    }
}
