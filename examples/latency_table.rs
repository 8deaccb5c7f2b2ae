//! Predicted against measured encrypted latency per sample, for the committed circuits of iris,
//! breast_cancer, diabetes and MNIST: each circuit's default plan (the one it records, as
//! `sqnn run` uses it), its predicted latency, and the median server time of a few encrypted
//! test samples with fresh keys, in one run. Prints a Markdown table.
//!
//! ```sh
//! cargo run --release --example latency_table            # 3 samples each
//! SQNN_SAMPLES=5 SQNN_ONLY=iris,mnist cargo run --release --example latency_table
//! ```
//!
//! The plans use this machine's cost profile when `sqnn calibrate` wrote one (run it first on
//! the machine that measures), else the built-in figures; the table's last line says which.
//! MNIST's plan (113 bootstraps on a 4-bit variant) takes a few seconds of key generation and
//! about 2.5 s per sample on 2 cores here.

use std::path::Path;

use sqnn::analyze::analyze;
use sqnn::data::SplitSpec;
use sqnn::execute::ClearBackend;
use sqnn::fhe::{self, CostProfile, PlanFacts, PlanRequest};
use sqnn::ir::IntGraph;
use sqnn::tfhe::TfheBackend;
use sqnn::Dataset;

fn main() -> sqnn::Result<()> {
    let samples: usize = std::env::var("SQNN_SAMPLES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3)
        .max(1);
    let only = std::env::var("SQNN_ONLY").ok();
    let profile = CostProfile::load_default()?;
    let costs = match &profile {
        Some(p) => PlanRequest::default().profile(p.clone()),
        None => PlanRequest::default().cores(fhe::builtin_cores()),
    };
    let circuits = Path::new(env!("CARGO_MANIFEST_DIR")).join("circuits");
    // MNIST's circuit was trained on sqnn's seeded split with 20 % test rows.
    let cases = [
        ("iris", SplitSpec::Auto),
        ("breast_cancer", SplitSpec::Auto),
        ("diabetes", SplitSpec::Auto),
        (
            "mnist",
            SplitSpec::Seeded {
                test_size: 0.2,
                seed: SplitSpec::DEFAULT_SEED,
            },
        ),
    ];
    println!(
        "| data | set | bootstraps | predicted ms/sample | measured ms/sample (median of {samples}) | measured / predicted | same prediction as clear |"
    );
    println!("|---|---|---|---|---|---|---|");
    let mut source = String::new();
    for (name, split) in cases {
        if only
            .as_deref()
            .is_some_and(|o| !o.split(',').any(|x| x == name))
        {
            continue;
        }
        let graph = IntGraph::load(&circuits.join(format!("{name}.circuit.json")))?;
        let data = Dataset::builtin(name)?;
        let sp = split.split(&data)?;
        let conformed = graph.schema().conform(&data)?.data;
        let test = conformed.subset(&sp.test[..samples.min(sp.test.len())]);
        let inputs = graph.quantize_inputs(&test.x)?;
        let an = analyze(graph)?;
        let facts = PlanFacts::new(&an);
        let plan = match &an.graph().plan {
            Some(r) => fhe::recorded_plan(&facts, r, &costs)?,
            None => fhe::plan(
                &facts,
                &PlanRequest::new(fhe::FheMode::Approximate)
                    .max_sigma(fhe::FALLBACK_MAX_SIGMA)
                    .cores(costs.cores),
            )?,
        };
        source = plan.costs.clone();
        let clear = ClearBackend::default().evaluate(&an, &inputs)?;
        let checked = an
            .check()
            .map_err(|_| sqnn::Error::Circuit(format!("{name} fails its check")))?;
        let backend = TfheBackend::generate(&checked, &plan)?;
        let run = backend.run_timed(&checked, &inputs)?;
        let g = checked.graph();
        let same = run
            .outputs
            .iter()
            .zip(&clear)
            .filter(|(e, c)| g.predict(e) == g.predict(c))
            .count();
        let measured = run.median_evaluate_ms();
        let agreement = match g.meta.task {
            sqnn::task::Task::Classify { .. } => format!("{same}/{}", inputs.len()),
            sqnn::task::Task::Regress => "(regression)".into(),
        };
        println!(
            "| {name} | {} | {} | {:.0} | {measured:.0} | {:.2} | {agreement} |",
            plan.set().label(),
            plan.pbs_count,
            plan.latency_ms_per_sample,
            measured / plan.latency_ms_per_sample,
        );
    }
    println!("\ncosts: {source}");
    Ok(())
}
