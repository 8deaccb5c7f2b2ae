//! The clear backend's simulate mode: exact when the noise is zero, misreads at the rate the
//! Gaussian read model predicts otherwise, reproducible from its seed.

mod common;

use sqnn::analyze::analyze;
use sqnn::data::Task;
use sqnn::execute::ClearBackend;
use sqnn::ir::{ClientSpec, IntGraph, Meta, Node, Op};

#[test]
fn zero_noise_is_the_exact_clear_run() {
    let an = analyze(common::random_graph(5, 4, 3, 5, 2)).unwrap();
    let inputs = common::random_inputs(an.graph(), 1, 500);
    let exact = ClearBackend::default().evaluate(&an, &inputs).unwrap();
    let sigma = vec![0.0; an.graph().nodes.len()];
    let (sim, stats) = ClearBackend::default()
        .simulate(&an, &inputs, &sigma, 9)
        .unwrap();
    assert_eq!(sim, exact);
    assert!(stats.misreads.iter().all(|m| *m == 0));
}

/// A one-neuron circuit: input x in [-8, 7], accumulator x, table of 16 distinct entries.
fn one_table() -> IntGraph {
    IntGraph {
        name: "one-table".into(),
        meta: Meta {
            task: Task::Regress,
            n_w_bits: 2,
            n_a_bits: 4,
            n_accum_bits: 8,
            pruning: None,
            rounding: None,
            training_rows: None,
        },
        client: ClientSpec::identity(1, 1),
        nodes: vec![
            Node {
                layer: 0,
                op: Op::Input {
                    feature: 0,
                    lo: -8,
                    hi: 7,
                },
            },
            Node {
                layer: 0,
                op: Op::Dot {
                    terms: vec![(0, 1)],
                    constant: 0,
                },
            },
            Node {
                layer: 0,
                op: Op::Lut {
                    input: 1,
                    offset: 8,
                    round_bits: 0,
                    out_lo: 0,
                    out_hi: 15,
                    table: (0..16).collect(),
                },
            },
            Node {
                layer: 1,
                op: Op::Dot {
                    terms: vec![(2, 1)],
                    constant: 0,
                },
            },
        ],
        outputs: vec![3],
        plan: None,
    }
}

/// P(round(z·σ) ≠ 0) = P(|z| ≥ 0.5/σ) for a standard normal z, away from the table's edges.
#[test]
fn misread_rate_matches_the_gaussian_model() {
    let an = analyze(one_table()).unwrap();
    // Accumulators -1 and 0 (table indices 7 and 8) are more than 6 sigma from both edges.
    let inputs: Vec<Vec<i64>> = (0..40_000).map(|i| vec![-(i % 2)]).collect();
    for sigma_value in [0.3, 0.5, 1.0] {
        let sigma = vec![0.0, 0.0, sigma_value, 0.0];
        let (out, stats) = ClearBackend::default()
            .simulate(&an, &inputs, &sigma, 3)
            .unwrap();
        let p = erfc(0.5 / sigma_value / std::f64::consts::SQRT_2);
        let rate = stats.misreads[2] as f64 / inputs.len() as f64;
        let sd = (p * (1.0 - p) / inputs.len() as f64).sqrt();
        assert!(
            (rate - p).abs() < 5.0 * sd,
            "sigma {sigma_value}: rate {rate}, predicted {p}"
        );
        // Distinct table entries: every misread changes the output, by the misread distance.
        assert_eq!(stats.changed[2], stats.misreads[2]);
        let moved = out
            .iter()
            .zip(&inputs)
            .filter(|(o, x)| o[0] != x[0] + 8)
            .count();
        assert_eq!(sqnn::cast::to_u64(moved), stats.misreads[2]);
    }
}

#[test]
fn the_same_seed_gives_the_same_run() {
    let an = analyze(common::random_graph(4, 4, 3, 5, 3)).unwrap();
    let inputs = common::random_inputs(an.graph(), 7, 1000);
    let sigma = vec![0.8; an.graph().nodes.len()];
    let a = ClearBackend::default()
        .simulate(&an, &inputs, &sigma, 42)
        .unwrap();
    let b = ClearBackend { chunk: 256 }
        .simulate(&an, &inputs, &sigma, 42)
        .unwrap();
    let c = ClearBackend::default()
        .simulate(&an, &inputs, &sigma, 43)
        .unwrap();
    assert_eq!(a, b);
    assert_ne!(a.1, c.1);
    assert!(ClearBackend::default()
        .simulate(&an, &inputs, &sigma[1..], 1)
        .is_err());
}

/// Complementary error function (Numerical Recipes' erfcc, |error| < 1.2e-7).
fn erfc(x: f64) -> f64 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let r = t
        * (-z * z - 1.265_512_23
            + t * (1.000_023_68
                + t * (0.374_091_96
                    + t * (0.096_784_18
                        + t * (-0.186_288_06
                            + t * (0.278_868_07
                                + t * (-1.135_203_98
                                    + t * (1.488_515_87
                                        + t * (-0.822_152_23 + t * 0.170_872_77)))))))))
            .exp();
    if x >= 0.0 {
        r
    } else {
        2.0 - r
    }
}

/// A table that drops 4 low bits reads its accumulator moved by the noise *before* the shift,
/// as the ciphertexts do: values in the middle of their 16-value bucket (8 units from either
/// edge) never change output at σ = 1 unit, although most reads are moved (moving the table
/// index instead would change every moved read).
#[test]
fn rounded_tables_are_read_through_their_rounding() {
    let mut g = one_table();
    // Input x in [-8, 7], accumulator 16·x + 8 in [-120, 120], 16 buckets of 16 values.
    g.nodes[1].op = Op::Dot {
        terms: vec![(0, 16)],
        constant: 8,
    };
    g.nodes[2].op = Op::Lut {
        input: 1,
        offset: 128,
        round_bits: 4,
        out_lo: 0,
        out_hi: 15,
        table: (0..16).collect(),
    };
    g.meta.n_w_bits = 6;
    g.meta.n_accum_bits = 9;
    let an = analyze(g).unwrap();
    let sigma = vec![0.0, 0.0, 1.0, 0.0];
    let middle: Vec<Vec<i64>> = (0..20_000).map(|i| vec![(i % 16) - 8]).collect();
    let (out, stats) = ClearBackend::default()
        .simulate(&an, &middle, &sigma, 5)
        .unwrap();
    assert!(stats.misreads[2] > 20_000 / 2, "{:?}", stats.misreads);
    assert_eq!(stats.changed[2], 0);
    assert!(out.iter().zip(&middle).all(|(o, x)| o[0] == x[0] + 8));
}

/// The choice by accuracy on the committed iris circuit: every candidate faster than the chosen
/// one was simulated on the training rows and changes more predictions than the tolerance
/// allows, or is a 2^-64 set less than `FAIL64_MIN_GAIN` faster; the chosen one keeps within it; a looser tolerance takes a faster set, a tolerance
/// nothing meets takes the one that loses least. The test rows are never used.
#[test]
fn the_choice_by_accuracy_takes_the_fastest_set_within_the_tolerance() {
    use sqnn::fhe::{self, Calibration, FheMode, PlanFacts, PlanRequest};
    let (an, cal) = iris_calibration();
    let split = sqnn::data::SplitSpec::Auto
        .split(&sqnn::data::Dataset::builtin("iris").unwrap())
        .unwrap();
    assert_eq!(cal.rows(), split.train.len());
    let facts = PlanFacts::new(&an);
    let choose = |cal: Calibration| {
        let req = PlanRequest::new(FheMode::Approximate)
            .target(-40.0)
            .cores(2)
            .calibration(cal);
        fhe::plan(&facts, &req).unwrap()
    };
    let strict = choose(cal.clone());
    let chosen = strict
        .candidates
        .iter()
        .position(|c| c.parameter_set == strict.parameter_set)
        .unwrap();
    let sim = strict.candidates[chosen].simulated.unwrap();
    assert!(sim.loss() <= Calibration::DEFAULT_TOLERANCE, "{sim:?}");
    for c in &strict.candidates[..chosen] {
        let s = c.simulated.expect("a faster candidate was simulated");
        assert!(c.latency_ms_per_sample < strict.latency_ms_per_sample);
        if s.loss() <= Calibration::DEFAULT_TOLERANCE {
            let gain = 1.0 - c.latency_ms_per_sample / strict.latency_ms_per_sample;
            assert!(
                c.family.ends_with("2^-64") && gain < fhe::FAIL64_MIN_GAIN,
                "{c:?}"
            );
            assert!(c.note.contains("taken only when"), "{}", c.note);
        } else {
            assert!(c.note.contains("allowed"), "{}", c.note);
        }
    }
    // The simulation is what the plan's reads do: the same as simulating the chosen plan
    // with as many seeds as the choice took.
    let again = cal
        .clone()
        .seeds(sim.seeds)
        .unwrap()
        .simulate(&strict)
        .unwrap();
    assert_eq!(again, sim);
    let loose = choose(cal.clone().tolerance(0.5).unwrap());
    assert!(loose.latency_ms_per_sample < strict.latency_ms_per_sample);
    let impossible = choose(cal.clone().tolerance(0.0).unwrap());
    let least = impossible
        .candidates
        .iter()
        .filter_map(|c| c.simulated.map(|s| s.loss()))
        .fold(f64::INFINITY, f64::min);
    let got = impossible
        .candidates
        .iter()
        .find(|c| c.parameter_set == impossible.parameter_set)
        .unwrap();
    if least > 0.0 {
        assert_eq!(got.simulated.unwrap().loss(), least);
        assert!(got.note.contains("loses least"), "{}", got.note);
    }
    assert!(cal.clone().tolerance(1.0).is_err());
}

/// The number of noise seeds the choice simulates: what the estimate pools, refused outside
/// 1 to `MAX_SEEDS`; with one seed the estimate is that seed's share.
#[test]
fn calibration_seeds_are_what_the_estimate_pools() {
    use sqnn::fhe::{self, Calibration, FheMode, PlanFacts, PlanRequest};
    let (an, cal) = iris_calibration();
    assert!(cal.clone().seeds(0).is_err());
    assert!(cal.clone().seeds(Calibration::MAX_SEEDS + 1).is_err());
    let facts = PlanFacts::new(&an);
    let plan = fhe::plan(
        &facts,
        &PlanRequest::new(FheMode::Approximate)
            .target(-40.0)
            .cores(2),
    )
    .unwrap();
    // Rows kept, summed over seeds 1..=n: n · agreement(n).
    let kept: Vec<f64> = (1..=3u64)
        .map(|n| {
            let s = cal.clone().seeds(n).unwrap().simulate(&plan).unwrap();
            assert_eq!(s.seeds, n);
            assert_eq!(s.rows, cal.rows());
            s.agreement * n as f64
        })
        .collect();
    // The difference of two is seed n's own share: a whole number of rows.
    let rows = cal.rows() as f64;
    for n in 1..kept.len() {
        let share = kept[n] - kept[n - 1];
        assert!((0.0..=1.0).contains(&share), "{share}");
        assert!(
            (share * rows - (share * rows).round()).abs() < 1e-6,
            "{share}"
        );
    }
}

/// The choice's estimate adds seeds only near the tolerance: far from it, the given seeds; near
/// it, twice as many until two standard errors clear it or the simulation budget is spent.
/// Whatever the count, it is the plain simulation with that many seeds.
#[test]
fn the_choice_adds_noise_seeds_only_near_the_tolerance() {
    use sqnn::fhe::{self, Calibration, FheMode, ParamSetId, PlanFacts, PlanRequest};
    let (an, cal) = iris_calibration();
    let facts = PlanFacts::new(&an);
    // The 2-bit set changes about 1.3 % of iris's training predictions.
    let plan = fhe::plan(
        &facts,
        &PlanRequest::new(FheMode::Approximate)
            .target(-40.0)
            .cores(2)
            .on(ParamSetId::ClassicMsg1Carry1),
    )
    .unwrap();
    let base = cal.simulate(&plan).unwrap();
    assert_eq!(base.seeds, cal.seeds);
    let loss = base.loss();
    assert!(loss > 0.005 && loss < 0.05, "{base:?}");
    // Far from the tolerance: the given seeds, the same estimate.
    let far = cal.clone().tolerance(0.2).unwrap();
    assert_eq!(far.simulate_to_decide(&plan).unwrap(), base);
    // At the estimate itself: doubled until the budget, a power of two times the seeds.
    let near = cal.clone().tolerance(loss).unwrap();
    let decided = near.simulate_to_decide(&plan).unwrap();
    let cap = Calibration::MAX_SIMULATIONS / sqnn::cast::to_u64(cal.rows());
    assert!(
        decided.seeds > cal.seeds && decided.seeds <= cap,
        "{decided:?}"
    );
    assert!(decided.seeds * 2 > cap, "stopped early: {decided:?}");
    let ratio = decided.seeds / cal.seeds;
    assert!(ratio.is_power_of_two() && ratio * cal.seeds == decided.seeds);
    let plain = cal
        .clone()
        .seeds(decided.seeds)
        .unwrap()
        .simulate(&plan)
        .unwrap();
    assert_eq!(decided, plain);
    assert_eq!(near.simulate_to_decide(&plan).unwrap(), decided);
}

/// The committed iris circuit, analysed, and the planner's calibration on its training split
/// (the test rows are never used).
fn iris_calibration() -> (sqnn::analyze::Analyzed, sqnn::fhe::Calibration) {
    use sqnn::data::{Dataset, SplitSpec};
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let g = IntGraph::load(&root.join("circuits/iris.circuit.json")).unwrap();
    let ds = Dataset::builtin("iris").unwrap();
    let split = SplitSpec::Auto.split(&ds).unwrap();
    let train = ds.subset(&split.train);
    let an = analyze(g).unwrap();
    let inputs = an.graph().quantize_inputs(&train.x).unwrap();
    let cal = sqnn::fhe::Calibration::new(&an, &inputs, &train.y).unwrap();
    (an, cal)
}
