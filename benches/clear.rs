//! Clear-backend throughput on the committed circuits: samples per second over a batch of real
//! test rows. Compare with Concrete ML's clear mode (6.2 ms per iris sample) and simulation
//! (101 ms per iris sample) on this machine. Run: `cargo bench --bench clear`.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use sqnn::analyze::analyze;
use sqnn::data::{peer_split, train_test_split, Dataset};
use sqnn::execute::ClearBackend;
use sqnn::ir::IntGraph;

fn bench(c: &mut Criterion) {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("circuits");
    for (circuit, data) in [
        ("iris", "iris"),
        ("breast_cancer", "breast_cancer"),
        ("mnist", "mnist"),
    ] {
        let path = dir.join(format!("{circuit}.circuit.json"));
        let an = analyze(IntGraph::load(&path).expect("committed circuit")).unwrap();
        let ds = Dataset::builtin(data).unwrap();
        // Concrete ML's test rows where recorded (as `--split auto`), else the seeded split.
        let split = peer_split(data)
            .map_or_else(|| train_test_split(&ds, 0.25, 42), Ok)
            .unwrap();
        let test = ds.subset(&split.test);
        let inputs = an.graph().quantize_inputs(&test.x).unwrap();
        let backend = ClearBackend::default();
        let mut g = c.benchmark_group(format!("clear/{circuit}"));
        g.throughput(Throughput::Elements(sqnn::cast::to_u64(inputs.len())));
        g.sample_size(20);
        g.bench_function(format!("{} test samples", inputs.len()), |b| {
            b.iter(|| backend.evaluate(&an, &inputs).unwrap())
        });
        // Simulation of approximate bootstraps (Gaussian misreads before every table).
        let sigma = vec![0.5; an.graph().nodes.len()];
        g.bench_function(format!("simulate {} test samples", inputs.len()), |b| {
            b.iter(|| backend.simulate(&an, &inputs, &sigma, 1).unwrap())
        });
        // One sample at a time, as a latency figure.
        g.throughput(Throughput::Elements(1));
        g.bench_function("one sample", |b| {
            b.iter(|| backend.evaluate(&an, &inputs[..1]).unwrap())
        });
        g.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
