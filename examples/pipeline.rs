//! The whole pipeline from Rust: train on a built-in data set, compile, check, plan TFHE
//! parameters, run in clear and under TFHE (the client encrypts, the server evaluates with its
//! key alone, the client decrypts).
//!
//! `cargo run --release --example pipeline` (about 10 s; CI runs it).

use sqnn::{analyze, lower, plan, report, ClearBackend, ClientKey, Dataset, EstimatorParams};
use sqnn::{FheMode, Model, NoProgress, PlanFacts, PlanRequest, SplitSpec};

fn main() -> sqnn::Result<()> {
    // Data: iris, on the test rows Concrete ML was measured on.
    let iris = Dataset::builtin("iris")?;
    let split = SplitSpec::Auto.split(&iris)?;
    let (train, test) = (iris.subset(&split.train), iris.subset(&split.test));

    // Train: quantization-aware, every neuron pruned so its accumulator fits n_accum_bits.
    let (model, fit) = Model::fit(EstimatorParams::default(), &train, &NoProgress)?;
    println!("trained {} epochs in {:.2} s", fit.epochs_run, fit.seconds);

    // Compile: an integer-only graph, then the proof that every accumulator fits its budget.
    let graph = lower(model.quantized(), "iris", model.params().pruning)?;
    let checked = analyze(graph)?
        .check()
        .map_err(|failed| sqnn::Error::Input(report::render_text(failed.report())))?;
    print!("{}", report::render_text(checked.report()));

    // Plan: the cheapest 128-bit parameter set whose approximate reads meet 2^-40 per bootstrap.
    let request = PlanRequest::new(FheMode::Approximate).cores(sqnn::fhe::builtin_cores());
    let plan = plan(&PlanFacts::new(checked.analyzed()), &request.max_sigma(2.0))?;
    print!("{}", sqnn::fhe::render_plan(&plan));

    // Clear: integer arithmetic, the same operations the ciphertexts go through.
    let inputs = checked.graph().quantize_inputs(&test.x)?;
    let clear = ClearBackend::default().evaluate(checked.analyzed(), &inputs)?;

    // TFHE: the client keeps its key; the server key alone evaluates.
    let (client, server) = ClientKey::generate(&checked, &plan)?;
    let mut same = 0;
    for (x, want) in inputs.iter().zip(&clear).take(3) {
        let encrypted = client.encrypt(&checked, x)?;
        let result = server.evaluate(&checked, &encrypted)?;
        let got = client.decrypt(&checked, &result)?;
        let (class, clear_class) = (checked.graph().predict(&got), checked.graph().predict(want));
        println!("encrypted: class {class} (clear: {clear_class}), output accumulators {got:?}");
        same += usize::from(class == clear_class);
    }
    // Approximate reads may misread a unit (predicted above); predictions stay the clear ones.
    println!("{same}/3 encrypted predictions equal the clear backend's");
    Ok(())
}
