//! Encrypted equals clear: every input and witness of small circuits (classic and multi-bit
//! bootstraps), random circuits, exact reads of a space wider than the set's own, and the
//! catalogue's mapping to `tfhe` parameters.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sqnn::analyze::{analyze, witness_circuit, CheckedGraph};
use sqnn::execute::{Backend, ClearBackend};
use sqnn::fhe::{self};
use sqnn::ir::Op;
use sqnn::tfhe::{load_client_key, load_server_key, save_keys, TfheBackend};

use crate::common::builder::{all_inputs, Builder};
use crate::common::tfhe::*;

/// Runs every dot's witness circuit (the inputs attaining its proved lo and hi) encrypted:
/// the decrypted accumulators must be exactly the proved bounds.
fn assert_witnesses(keys: &Keys, c: &CheckedGraph) {
    let an = c.analyzed();
    for (id, n) in c.graph().nodes.iter().enumerate() {
        if !matches!(n.op, Op::Dot { .. }) {
            continue;
        }
        let (sub, lo_in, hi_in) = witness_circuit(an, id).unwrap();
        let sub = analyze(sub).unwrap().check().map_err(|_| ()).unwrap();
        let out = backend(keys, &sub)
            .run(&sub, &[lo_in.clone(), hi_in.clone()])
            .unwrap();
        let iv = c.facts()[id].interval;
        assert_eq!(out[0], vec![iv.lo], "dot {id}: witness of lo");
        assert_eq!(out[1], vec![iv.hi], "dot {id}: witness of hi");
    }
}

#[test]
fn four_bit_circuit_matches_clear_on_every_input_and_witness() {
    let c = circuit4();
    let inputs = all_inputs(&c);
    assert_eq!(inputs.len(), 64);
    assert_equivalent(keys4(), &c, &inputs);
    assert_witnesses(keys4(), &c);
    // The witnesses of the first-layer dots through the whole circuit, too.
    let ids = c.graph().input_nodes();
    let mut extra = Vec::new();
    for (id, n) in c.graph().nodes.iter().enumerate() {
        if let Op::Dot { terms, .. } = &n.op {
            if n.layer == 0 {
                let f = &c.facts()[id];
                for w in [&f.witness_lo, &f.witness_hi] {
                    let mut x: Vec<i64> = ids.iter().map(|&i| c.facts()[i].interval.lo).collect();
                    for (&(src, _), &v) in terms.iter().zip(w.iter()) {
                        x[ids.iter().position(|&i| i == src).unwrap()] = v;
                    }
                    extra.push(x);
                }
            }
        }
    }
    assert_equivalent(keys4(), &c, &extra);
}

/// A linear circuit (no table, no bootstrap): eight 4-bit inputs, 6-bit weights, two output
/// accumulators of 12 bits (wider than a bootstrap of the 4-bit set reads, which a linear
/// circuit never needs), planned by the planner on the 4-bit set. The server computes only
/// dot products; the client's decryption is exact on random inputs and on every dot's
/// witnesses (the proved bounds).
#[test]
fn linear_circuit_decrypts_exactly_without_a_bootstrap() {
    let mut b = Builder::new("tfhe-test-linear", 6, 4, 12);
    let xs: Vec<_> = (0..8).map(|_| b.input(0, 15)).collect();
    let w0 = [31, -30, 29, 27, -31, 28, 25, -19];
    let w1 = [-31, 31, 31, -31, 30, 31, -29, 31];
    let t0: Vec<_> = xs.iter().copied().zip(w0).collect();
    let t1: Vec<_> = xs.iter().copied().zip(w1).collect();
    let o0 = b.dot(0, &t0, 40);
    let o1 = b.dot(0, &t1, -3);
    let c = b.finish(&[o0, o1]);
    assert_eq!(c.report().max_range_bits, 12);
    let plan = plan_on_set(&c, set(SET4), fhe::FheMode::Approximate, -40.0, 2).unwrap();
    assert_eq!((plan.pbs_count, plan.space_bits), (0, 12));
    assert!(plan.latency_ms_per_sample > 0.0);
    let backend = backend_with(&c, &plan);
    assert_eq!(backend.server().pbs_per_sample(&c), 0);
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let mut inputs: Vec<Vec<i64>> = (0..24)
        .map(|_| (0..8).map(|_| rng.gen_range(0..=15)).collect())
        .collect();
    for &o in &[o0, o1] {
        let f = &c.facts()[o];
        inputs.push(f.witness_lo.clone());
        inputs.push(f.witness_hi.clone());
    }
    let clear = ClearBackend::default().run(&c, &inputs).unwrap();
    let enc = backend.run(&c, &inputs).unwrap();
    assert_eq!(enc, clear, "encrypted != clear");
    // The witnesses reach both ends of the 12-bit intervals.
    for (k, &o) in [o0, o1].iter().enumerate() {
        let iv = c.facts()[o].interval;
        let n = inputs.len();
        assert_eq!(enc[n - 4 + 2 * k][k], iv.lo);
        assert_eq!(enc[n - 3 + 2 * k][k], iv.hi);
    }
}

#[test]
fn two_bit_circuit_matches_clear_on_every_input_and_witness() {
    let c = circuit2();
    let inputs = all_inputs(&c);
    assert_eq!(inputs.len(), 8);
    assert_equivalent(keys2(), &c, &inputs);
    assert_witnesses(keys2(), &c);
}

/// The 2-bit circuit on a multi-bit bootstrap (grouping 4; rounding modulus switch, so the
/// backend shifts dots by half a position the other way): bit-identical to the clear backend
/// on every input and witness, also with the server key saved and loaded back.
#[test]
fn multi_bit_circuit_matches_clear_and_its_keys_round_trip() {
    let c = circuit2();
    let set = set(SET2_MB);
    assert!(set.grouping_factor > 1);
    let keys = keys2_mb();
    let inputs = all_inputs(&c);
    assert_equivalent(keys, &c, &inputs);
    assert_witnesses(keys, &c);
    let dir = tempfile::tempdir().unwrap();
    let m = save_keys(dir.path(), &c, &keys.0, &keys.1, sqnn::fhe::FheMode::Exact).unwrap();
    assert_eq!(m.parameter_set, SET2_MB);
    let loaded = (
        load_client_key(dir.path(), &c).unwrap(),
        load_server_key(dir.path(), &c).unwrap(),
    );
    assert_eq!(loaded.1.parameter_set(), SET2_MB);
    assert_equivalent(&loaded, &c, &inputs);
}

#[test]
fn random_circuits_match_clear() {
    for seed in 0..3 {
        let c = random_circuit4(seed);
        let mut rng = ChaCha8Rng::seed_from_u64(100 + seed);
        let all = all_inputs(&c);
        let inputs: Vec<Vec<i64>> = (0..8)
            .map(|_| all[rng.gen_range(0..all.len())].clone())
            .collect();
        assert_equivalent(keys4(), &c, &inputs);
    }
}

/// Exact reads of a 5-bit space on the 4-bit set (N = 2048: 64 positions per value, each read
/// exact with probability 1 - 2^-33.6): bit-identical on every input. A 6-bit space (32
/// positions) misreads about one read in 1000 at σ ≈ 5 positions, so exact reads on N = 2048
/// stop at 5 bits (and at 4 bits for a target of 2^-40).
#[test]
fn exact_reads_of_a_five_bit_space_on_the_four_bit_set() {
    let c = circuit5();
    let set4 = set(SET4);
    assert!(plan_on_set(&c, set4, fhe::FheMode::Exact, -40.0, 2).is_err());
    let plan = plan_on_set(&c, set4, fhe::FheMode::Exact, -30.0, 2).unwrap();
    assert_eq!((plan.space_bits, plan.box_positions), (5, 64.0));
    assert!(plan.worst_log2_p_fail < -32.0, "{}", plan.worst_log2_p_fail);
    let b = backend_with(&c, &plan);
    let inputs = all_inputs(&c);
    assert_eq!(inputs.len(), 64);
    let clear = ClearBackend::default().run(&c, &inputs).unwrap();
    assert_eq!(b.run(&c, &inputs).unwrap(), clear);
}

#[test]
fn catalogue_matches_tfhe_parameters() {
    for set in fhe::catalogue() {
        let p = sqnn::tfhe::tfhe_parameters(set).unwrap();
        assert_eq!(p.lwe_dimension().0, set.lwe_dimension, "{}", set.name);
        assert_eq!(p.glwe_dimension().0, set.glwe_dimension, "{}", set.name);
        assert_eq!(p.polynomial_size().0, set.polynomial_size, "{}", set.name);
        assert_eq!(p.message_modulus().0, 1 << set.message_bits, "{}", set.name);
        assert_eq!(p.carry_modulus().0, 1 << set.carry_bits, "{}", set.name);
        assert!(
            (p.log2_p_fail() - set.designed_log2_p_fail).abs() < 0.1,
            "{}",
            set.name
        );
        let (g, centred) = match p {
            tfhe::shortint::parameters::PBSParameters::PBS(c) => (
                1,
                matches!(
                    c.modulus_switch_noise_reduction_params,
                    tfhe::shortint::parameters::ModulusSwitchType::CenteredMeanNoiseReduction
                ),
            ),
            tfhe::shortint::parameters::PBSParameters::MultiBitPBS(m) => {
                (m.grouping_factor.0, false)
            }
        };
        assert_eq!(g, set.grouping_factor, "{}", set.name);
        assert_eq!(
            centred,
            set.modulus_switch == fhe::ModulusSwitch::Centered,
            "{}",
            set.name
        );
        // The family is in the (shipped set's) name.
        let fam = format!("_2M{}", -set.family_log2_p_fail);
        let shipped = set.id.shipped().set();
        assert!(shipped.name.ends_with(&fam), "{}", set.name);
    }
}

/// The iris circuit of the Concrete ML comparison end to end: train with 2-bit weights and activations, 6-bit
/// accumulators, multiplier 1; lower, check, choose parameters (the 6-bit set), generate keys,
/// run every test sample encrypted; outputs must equal the clear backend's. Prints accuracy and
/// latency against the floor and Concrete ML (2.10 s quiet, 3.74 s contended per iris sample).
///
/// `cargo test --release --test tfhe iris_end_to_end -- --ignored --nocapture`
#[test]
#[ignore]
fn iris_end_to_end() {
    use sqnn::data::{train_test_split, Dataset};
    use sqnn::train::{EstimatorParams, NeuralNetClassifier};
    let ds = Dataset::load("iris", None, None).unwrap();
    let split = train_test_split(&ds, 0.25, 42).unwrap();
    let (train, test) = (ds.subset(&split.train), ds.subset(&split.test));
    let params = EstimatorParams {
        n_w_bits: 2,
        n_a_bits: 2,
        n_accum_bits: 6,
        n_hidden_neurons_multiplier: 1.0,
        ..EstimatorParams::default()
    };
    let t = std::time::Instant::now();
    let mut clf = NeuralNetClassifier::new(params.clone()).unwrap();
    clf.fit_dataset(&train).unwrap();
    println!("trained in {:.1} s", t.elapsed().as_secs_f64());
    let g = sqnn::lower::lower(clf.quantized().unwrap(), "iris", params.pruning).unwrap();
    let inputs = g.quantize_inputs(&test.x).unwrap();
    let c = CheckedGraph::new(g)
        .unwrap()
        .expect("iris passes its check");
    let req = fhe::PlanRequest::new(fhe::FheMode::Exact).cores(rayon::current_num_threads());
    let plan = fhe::plan(&fhe::PlanFacts::from(&c), &req).unwrap();
    print!("{}", fhe::render_plan(&plan));
    let t = std::time::Instant::now();
    let b = TfheBackend::generate(&c, &plan).unwrap();
    println!("keygen {:.1} s", t.elapsed().as_secs_f64());
    let run = b.run_timed(&c, &inputs).unwrap();
    let clear = ClearBackend::default().run(&c, &inputs).unwrap();
    let agree = run
        .outputs
        .iter()
        .zip(&clear)
        .filter(|(e, k)| e == k)
        .count();
    let correct = run
        .outputs
        .iter()
        .zip(&test.y)
        .filter(|(o, y)| c.graph().predict(o) == **y)
        .count();
    let floor = plan.latency_ms_per_sample;
    println!(
        "iris: {} test samples, agreement with clear {agree}/{}, accuracy {:.3}; PBS {} per \
         sample; evaluation median {:.0} ms (floor {floor:.0} ms; Concrete ML 2100 ms quiet)",
        inputs.len(),
        inputs.len(),
        correct as f64 / inputs.len() as f64,
        run.pbs_count,
        run.median_evaluate_ms()
    );
    assert_eq!(agree, inputs.len());
}
