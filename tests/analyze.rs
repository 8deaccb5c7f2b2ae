//! Soundness of the static check, by property tests over random sparse graphs: every value the
//! clear backend computes lies in its proved interval, and every witness attains its bound.

mod common;

use proptest::prelude::*;
use sqnn::analyze::{analyze, witness_circuit};
use sqnn::execute::ClearBackend;
use sqnn::ir::Interval;
use sqnn::ir::Op;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn every_value_lies_in_its_interval(
        seed in any::<u64>(), nf in 1usize..6, layers in 1usize..4, width in 1usize..6, n_out in 1usize..4
    ) {
        values_lie_in_intervals((seed, nf, layers, width, n_out))?;
    }

    #[test]
    fn witnesses_attain_the_bounds(
        seed in any::<u64>(), nf in 1usize..6, layers in 1usize..4, width in 1usize..6
    ) {
        let g = common::random_graph(seed, nf, layers, width, 2);
        let an = analyze(g).unwrap();
        for (id, node) in an.graph().nodes.iter().enumerate() {
            let Op::Dot { terms, .. } = &node.op else { continue };
            if terms.is_empty() { continue; }
            let (sub, wlo, whi) = witness_circuit(&an, id).unwrap();
            let sub = analyze(sub).unwrap();
            let out = ClearBackend::default().evaluate(&sub, &[wlo, whi]).unwrap();
            let iv = an.facts()[id].interval;
            prop_assert_eq!(out[0][0], iv.lo, "node {} lo witness", id);
            prop_assert_eq!(out[1][0], iv.hi, "node {} hi witness", id);
            // The sub-circuit proves the same interval.
            prop_assert_eq!(sub.facts()[sub.graph().outputs[0]].interval, iv);
        }
    }
}

/// Random graph shapes: seed, features, layers, width, outputs.
type Shape = (u64, usize, usize, usize, usize);

fn shapes() -> impl Strategy<Value = Shape> {
    (any::<u64>(), 1usize..6, 1usize..4, 1usize..6, 1usize..4)
}

/// Traces 200 random inputs through a random graph: every value in its proved interval.
/// Returns the number of inputs traced.
fn values_lie_in_intervals(
    (seed, nf, layers, width, n_out): Shape,
) -> Result<usize, TestCaseError> {
    let g = common::random_graph(seed, nf, layers, width, n_out);
    let an = analyze(g).unwrap();
    let inputs = common::random_inputs(an.graph(), seed ^ 1, 200);
    let trace = ClearBackend::default().trace(&an, &inputs).unwrap();
    for (id, col) in trace.iter().enumerate() {
        let iv = an.facts()[id].interval;
        for &v in col {
            prop_assert!(
                v >= iv.lo && v <= iv.hi,
                "node {id}: {v} outside [{}, {}]",
                iv.lo,
                iv.hi
            );
        }
    }
    Ok(inputs.len())
}

/// The soundness property at scale: 5 000 random graphs, 10^6 traced inputs.
#[test]
#[ignore = "long property run: cargo test --release --test analyze long_soundness -- --ignored --nocapture"]
fn long_soundness_run() {
    let traced = std::sync::atomic::AtomicUsize::new(0);
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases: 5_000,
        failure_persistence: None,
        ..ProptestConfig::default()
    });
    let t = std::time::Instant::now();
    runner
        .run(&shapes(), |shape| {
            let n = values_lie_in_intervals(shape)?;
            traced.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
            Ok(())
        })
        .unwrap();
    let traced = traced.into_inner();
    println!(
        "soundness: 5000 graphs, {traced} traced inputs, every value in its interval ({:.1} s)",
        t.elapsed().as_secs_f64()
    );
    assert!(traced >= 1_000_000, "{traced}");
}

#[test]
fn widths_match_definitions_on_edges() {
    for (lo, hi, range, signed) in [
        (0i64, 0i64, 0u32, 1u32),
        (0, 1, 1, 1),
        (-1, 0, 1, 1),
        (-128, 127, 8, 8),
        (-128, 128, 9, 9),
        (0, 255, 8, 8),
        (-3, 252, 8, 9),
        (i64::MIN, i64::MAX, 64, 64),
    ] {
        let iv = Interval { lo, hi };
        assert_eq!(iv.range_bits(), range, "range bits of [{lo}, {hi}]");
        assert_eq!(iv.signed_bits(), signed, "signed bits of [{lo}, {hi}]");
    }
}

#[test]
fn a_table_that_does_not_cover_its_input_is_an_error() {
    let mut g = common::random_graph(7, 3, 2, 3, 1);
    let lut = g
        .nodes
        .iter()
        .position(|n| matches!(n.op, Op::Lut { .. }))
        .unwrap();
    if let Op::Lut { table, .. } = &mut g.nodes[lut].op {
        table.pop();
        if table.is_empty() {
            table.extend([0, 0]);
        }
    }
    let err = analyze(g).unwrap_err().to_string();
    assert!(err.contains("table"), "{err}");
}
