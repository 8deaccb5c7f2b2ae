//! The whole pipeline on real data: train → lower → analyze → clear backend, and what the check
//! proves that calibration data cannot show.

use ndarray::Array2;
use sqnn::analyze::{analyze, witness_circuit, Analyzed};
use sqnn::data::{train_test_split, Dataset};
use sqnn::execute::ClearBackend;
use sqnn::ir::Op;
use sqnn::lower::lower;
use sqnn::train::{EstimatorParams, Model, NeuralNetClassifier, NeuralNetRegressor, PruningMode};

fn fit(name: &str, params: EstimatorParams) -> (Model, Dataset, Dataset) {
    let ds = Dataset::builtin(name).unwrap();
    let split = train_test_split(&ds, 0.25, 42).unwrap();
    let (train, test) = (ds.subset(&split.train), ds.subset(&split.test));
    let model = if ds.labels().is_some() {
        let mut m = NeuralNetClassifier::new(params).unwrap();
        m.fit_dataset(&train).unwrap();
        Model::Classifier(m)
    } else {
        let mut m = NeuralNetRegressor::new(params).unwrap();
        m.fit_dataset(&train).unwrap();
        Model::Regressor(m)
    };
    (model, train, test)
}

fn compile(model: &Model, name: &str) -> Analyzed {
    analyze(lower(model.quantized(), name, model.params().pruning).unwrap()).unwrap()
}

/// The clear backend's output accumulators equal the quantized model's reference integer forward
/// pass, and its predictions equal `predict`, on every test sample.
fn assert_clear_equals_predict(model: &Model, an: &Analyzed, test: &Dataset) {
    let q = model.quantized();
    let inputs = an.graph().quantize_inputs(&test.x).unwrap();
    let outs = ClearBackend::default().evaluate(an, &inputs).unwrap();
    let preds = model.predict(&test.x).unwrap();
    for (s, row) in test.x.rows().into_iter().enumerate() {
        let raw: Vec<f64> = row.to_vec();
        assert_eq!(
            inputs[s],
            q.quantize_input(&raw),
            "sample {s}: input quantization"
        );
        assert_eq!(
            outs[s],
            q.forward_int(&inputs[s]),
            "sample {s}: accumulators"
        );
        assert_eq!(
            an.graph().predict(&outs[s]),
            preds[s],
            "sample {s}: prediction"
        );
    }
}

#[test]
fn clear_backend_equals_predict_on_every_test_sample() {
    for name in ["iris", "breast_cancer", "diabetes"] {
        let (model, _, test) = fit(name, EstimatorParams::default());
        let an = compile(&model, name);
        assert!(
            an.report().ok,
            "{name}: {}",
            sqnn::report::render_text(an.report())
        );
        assert_clear_equals_predict(&model, &an, &test);
    }
}

#[test]
fn clear_backend_equals_predict_with_other_settings() {
    let p = EstimatorParams {
        n_w_bits: 3,
        n_a_bits: 3,
        n_accum_bits: 9,
        quant_signed: true,
        power_of_two_scaling: true,
        activation_function: sqnn::train::quantize::Activation::Sigmoid,
        n_prune_neurons_percentage: 0.25,
        epochs: 30,
        ..EstimatorParams::default()
    };
    let (model, _, test) = fit("breast_cancer", p);
    let an = compile(&model, "breast_cancer");
    assert!(an.report().ok);
    assert_clear_equals_predict(&model, &an, &test);
}

/// Concrete ML's layer-global pruning leaves neurons over the budget (here on MNIST with Concrete
/// ML's own quantization at an 8-bit budget, Ω = 1); the report names them, and the clear backend
/// fed their witnesses produces exactly the predicted out-of-budget value.
#[test]
fn layer_global_pruning_fails_the_check_and_witnesses_prove_it() {
    let p = EstimatorParams {
        n_accum_bits: 8,
        n_hidden_neurons_multiplier: 0.1,
        epochs: 3,
        ..EstimatorParams::concrete_ml()
    };
    assert_eq!(p.pruning, PruningMode::LayerGlobal);
    let (model, _, _) = fit("mnist", p);
    let an = compile(&model, "mnist");
    let r = an.report();
    assert!(!r.ok);
    assert!(!r.neurons_over_budget.is_empty());
    for n in &r.neurons_over_budget {
        assert!(n.range_bits > r.n_accum_bits);
        let (sub, wlo, whi) = witness_circuit(&an, n.node).unwrap();
        let sub = analyze(sub).unwrap();
        let out = ClearBackend::default()
            .evaluate(&sub, &[wlo.clone(), whi.clone()])
            .unwrap();
        assert_eq!((out[0][0], out[1][0]), (n.lo, n.hi), "neuron {}", n.node);
        // Layer-0 neurons: the witness is a real input vector of the whole circuit.
        if n.layer == 0 {
            let Op::Dot { terms, .. } = &an.graph().nodes[n.node].op else {
                unreachable!()
            };
            for wit in [&wlo, &whi] {
                let mut x: Vec<i64> = an
                    .graph()
                    .input_nodes()
                    .iter()
                    .map(|&id| an.facts()[id].interval.lo)
                    .collect();
                for (k, &(src, _)) in terms.iter().enumerate() {
                    let Op::Input { feature, .. } = an.graph().nodes[src].op else {
                        unreachable!()
                    };
                    x[feature] = wit[k];
                }
                let trace = ClearBackend::default().trace(&an, &[x]).unwrap();
                let v = trace[n.node][0];
                assert!(v == n.lo || v == n.hi);
            }
        }
    }
}

/// Width a value set needs: range width of [min, max] over the samples.
fn observed_bits(vals: &[i64]) -> u32 {
    let lo = *vals.iter().min().unwrap();
    let hi = *vals.iter().max().unwrap();
    sqnn::ir::Interval { lo, hi }.range_bits()
}

/// Concrete ML measures widths on calibration data. The proof covers every input: on
/// breast_cancer with 4-bit weights and activations and a 14-bit budget (Ω = 72, so the 30
/// inputs stay dense) some neuron's proved worst case needs more bits than anything the whole
/// training set reaches.
#[test]
fn the_proof_sees_what_calibration_data_misses() {
    let p = EstimatorParams {
        n_w_bits: 4,
        n_a_bits: 4,
        n_accum_bits: 14,
        epochs: 30,
        ..EstimatorParams::default()
    };
    let (model, train, _) = fit("breast_cancer", p);
    let an = compile(&model, "breast_cancer");
    let inputs = an.graph().quantize_inputs(&train.x).unwrap();
    let trace = ClearBackend::default().trace(&an, &inputs).unwrap();
    let mut wider = 0;
    for n in &an.report().neurons {
        let measured = observed_bits(&trace[n.node]);
        assert!(
            measured <= n.range_bits,
            "a measurement can never exceed the proof"
        );
        if n.range_bits > measured {
            wider += 1;
        }
    }
    assert!(
        wider > 0,
        "no neuron's worst case exceeds what calibration reaches"
    );
}

#[test]
fn bad_inputs_are_errors_not_panics() {
    let (model, _, _) = fit(
        "iris",
        EstimatorParams {
            epochs: 5,
            ..EstimatorParams::default()
        },
    );
    let an = compile(&model, "iris");
    let g = an.graph();
    assert!(g
        .quantize_inputs(&Array2::zeros((2, 3)))
        .unwrap_err()
        .to_string()
        .contains("expects 4"));
    let mut x = Array2::zeros((1, 4));
    x[[0, 2]] = f64::NAN;
    assert!(g
        .quantize_inputs(&x)
        .unwrap_err()
        .to_string()
        .contains("NaN"));
    let e = ClearBackend::default()
        .evaluate(&an, &[vec![0, 0, 0, 1 << 40]])
        .unwrap_err();
    assert!(e.to_string().contains("outside"), "{e}");
}
