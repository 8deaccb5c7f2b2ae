//! Integration tests of the training stage: parameter validation, the accumulator guarantee on
//! trained models, determinism, model files, accuracy with the defaults, and agreement of the
//! fake-quantized float forward pass with the integer model.

use std::time::Instant;

use ndarray::{Array2, ArrayView1};
use sqnn::analyze::analyze;
use sqnn::data::{peer_split, train_test_split, Dataset, Split};
use sqnn::lower::lower;
use sqnn::train::quantize::QuantizedMlp;
use sqnn::train::{
    max_active_neurons, ActRange, EstimatorParams, InputScaling, Model, NeuralNetClassifier,
    NeuralNetRegressor, PruningMode,
};
use sqnn::Error;

fn split(name: &str, peer: bool) -> (Dataset, Dataset) {
    let ds = Dataset::builtin(name).unwrap();
    let s: Split = if peer {
        peer_split(name).expect("peer split")
    } else {
        train_test_split(&ds, 0.25, 42).unwrap()
    };
    (ds.subset(&s.train), ds.subset(&s.test))
}

fn fit_clf(name: &str, peer: bool, p: EstimatorParams) -> (NeuralNetClassifier, Dataset) {
    let (tr, te) = split(name, peer);
    let mut c = NeuralNetClassifier::new(p).unwrap();
    c.fit_dataset(&tr).unwrap();
    (c, te)
}

/// Quick training settings for structural tests.
fn quick(w: u32, a: u32, acc: u32) -> EstimatorParams {
    EstimatorParams {
        n_w_bits: w,
        n_a_bits: a,
        n_accum_bits: acc,
        epochs: 30,
        restarts: 1,
        ..Default::default()
    }
}

/// Worst-case accumulator interval of every neuron, as the static check computes it:
/// `lo = Σ min(w xlo, w xhi)`, `hi` likewise with max. Returns (range width, non-zeros) per row.
fn row_widths(q: &QuantizedMlp) -> Vec<(usize, u32, usize)> {
    let mut out = Vec::new();
    for (l, layer) in q.layers.iter().enumerate() {
        let (xlo, xhi) = (layer.input_quant.lo, layer.input_quant.hi);
        for row in &layer.rows {
            let (mut lo, mut hi) = (0i64, 0i64);
            for &(_, w) in row {
                lo += (w * xlo).min(w * xhi);
                hi += (w * xlo).max(w * xhi);
            }
            let width = 64 - (hi - lo).unsigned_abs().leading_zeros(); // ceil(log2(hi - lo + 1))
            out.push((l, width, row.len()));
        }
    }
    out
}

fn expect_param(r: sqnn::Result<impl std::fmt::Debug>, name: &str) {
    match r {
        Err(Error::InvalidParameter { name: n, message }) => {
            assert_eq!(n, name, "{message}");
            assert!(!message.is_empty());
        }
        other => panic!("expected InvalidParameter({name}), got {other:?}"),
    }
}

#[test]
fn estimator_rejects_invalid_parameters() {
    let ok = EstimatorParams::default();
    let cases = [
        (
            "n_layers",
            EstimatorParams {
                n_layers: 0,
                ..ok.clone()
            },
        ),
        (
            "n_w_bits",
            EstimatorParams {
                n_w_bits: 0,
                ..ok.clone()
            },
        ),
        (
            "n_w_bits",
            EstimatorParams {
                n_w_bits: 9,
                ..ok.clone()
            },
        ),
        (
            "n_a_bits",
            EstimatorParams {
                n_a_bits: 0,
                ..ok.clone()
            },
        ),
        (
            "n_a_bits",
            EstimatorParams {
                n_a_bits: 9,
                ..ok.clone()
            },
        ),
        (
            "n_accum_bits",
            EstimatorParams {
                n_accum_bits: 3,
                ..ok.clone()
            },
        ),
        (
            "n_accum_bits",
            EstimatorParams {
                n_accum_bits: 32,
                ..ok.clone()
            },
        ),
        (
            "n_prune_neurons_percentage",
            EstimatorParams {
                n_prune_neurons_percentage: 1.0,
                ..ok.clone()
            },
        ),
        (
            "n_prune_neurons_percentage",
            EstimatorParams {
                n_prune_neurons_percentage: f64::NAN,
                ..ok.clone()
            },
        ),
        (
            "act_range",
            EstimatorParams {
                act_range: ActRange::Percentile(20.0),
                ..ok.clone()
            },
        ),
        (
            "restarts",
            EstimatorParams {
                restarts: 0,
                ..ok.clone()
            },
        ),
        (
            "n_input_bits",
            EstimatorParams {
                n_input_bits: Some(5),
                ..ok.clone()
            },
        ),
        (
            "n_input_bits",
            EstimatorParams {
                n_input_bits: Some(0),
                ..ok.clone()
            },
        ),
    ];
    for (name, p) in cases {
        expect_param(NeuralNetClassifier::new(p.clone()), name);
        expect_param(NeuralNetRegressor::new(p), name);
    }
    // The hidden width is only known at fit: 4 features * 0.1 = 0 neurons.
    let (tr, _) = split("iris", false);
    let mut c = NeuralNetClassifier::new(EstimatorParams {
        n_hidden_neurons_multiplier: 0.1,
        ..quick(2, 2, 6)
    })
    .unwrap();
    expect_param(c.fit_dataset(&tr), "n_hidden_neurons_multiplier");
}

#[test]
fn fit_and_predict_validate_inputs() {
    let (tr, te) = split("iris", false);
    let labels = tr.labels().unwrap();
    let mut c = NeuralNetClassifier::new(quick(2, 2, 6)).unwrap();
    // Not fitted yet.
    match c.predict(&te.x) {
        Err(Error::Model(m)) => assert!(m.contains("not fitted: call fit first"), "{m}"),
        other => panic!("{other:?}"),
    }
    assert!(matches!(c.predict_proba(&te.x), Err(Error::Model(_))));
    let dir = tempfile::tempdir().unwrap();
    assert!(matches!(
        c.save(dir.path().join("m.json")),
        Err(Error::Model(_))
    ));
    // Wrong label count.
    assert!(matches!(c.fit(&tr.x, &labels[1..]), Err(Error::Input(_))));
    // Non-finite features.
    let mut bad = tr.x.clone();
    bad[[3, 1]] = f64::NAN;
    match c.fit(&bad, &labels) {
        Err(Error::Input(m)) => assert!(m.contains("row 3"), "{m}"),
        other => panic!("{other:?}"),
    }
    // Finite features whose squares are not (variances would overflow).
    bad[[3, 1]] = 1e300;
    match c.fit(&bad, &labels) {
        Err(Error::Input(m)) => assert!(m.contains("row 3") && m.contains("rescale"), "{m}"),
        other => panic!("{other:?}"),
    }
    // A single class.
    assert!(matches!(
        c.fit(&tr.x, &vec![1; labels.len()]),
        Err(Error::Input(_))
    ));
    // Empty data.
    assert!(matches!(
        c.fit(&Array2::zeros((0, 4)), &[]),
        Err(Error::Input(_))
    ));
    c.fit(&tr.x, &labels).unwrap();
    // Wrong feature count at predict.
    match c.predict(&Array2::zeros((2, 3))) {
        Err(Error::Input(m)) => assert!(m.contains("4 features"), "{m}"),
        other => panic!("{other:?}"),
    }
    let p = c.predict_proba(&te.x).unwrap();
    for row in p.rows() {
        assert!((row.sum() - 1.0).abs() < 1e-9);
    }
    // Regressor: non-finite targets.
    let mut r = NeuralNetRegressor::new(quick(2, 2, 6)).unwrap();
    let mut y = vec![1.0; tr.x.nrows()];
    y[5] = f64::INFINITY;
    assert!(matches!(r.fit(&tr.x, &y), Err(Error::Input(_))));
    // Finite targets whose squares are not: a NaN R² and a useless model before.
    y[5] = -1e200;
    match r.fit(&tr.x, &y) {
        Err(Error::Input(m)) => assert!(m.contains("target 5") && m.contains("rescale"), "{m}"),
        other => panic!("{other:?}"),
    }
}

/// Class labels held as `f64` (a hand-built data set's `y`, `Model::score`'s `y`) must be class
/// indices: a fractional, negative or NaN one is refused with its row and value. (They were
/// cast with `as usize`: 1.5 read as class 1, -1 and NaN as class 0, silently.)
#[test]
fn labels_that_are_not_class_indices_are_refused_not_truncated() {
    let (tr, te) = split("iris", false);
    let p = EstimatorParams {
        epochs: 2,
        ..quick(2, 2, 6)
    };
    let refused = |r: sqnn::Result<f64>, row: usize, v: f64| match r {
        Err(Error::Input(m)) => assert!(
            m.contains(&format!("row {row}: label {v} is not a class index")),
            "{m}"
        ),
        other => panic!("label {v}: {other:?}"),
    };
    for (row, v) in [(4, 1.5), (7, -1.0), (2, f64::NAN)] {
        let mut bad = tr.clone();
        bad.y[row] = v;
        refused(
            Model::fit(p.clone(), &bad, &sqnn::NoProgress).map(|_| 0.0),
            row,
            v,
        );
        // Tune's folds group rows by class: refused there too.
        let folds = sqnn::tune::Folds {
            k: 3,
            used: 3,
            repeats: 1,
            seed: 1,
        };
        refused(folds.parts(&bad).map(|_| 0.0), row, v);
        assert!(bad.subset(&[0, 1]).check_labels().is_ok());
    }
    let (model, _) = Model::fit(p, &tr, &sqnn::NoProgress).unwrap();
    let mut y = te.y.clone();
    assert!(model.score(&te.x, &y).is_ok());
    y[3] = 2.5;
    refused(model.score(&te.x, &y), 3, 2.5);
}

#[test]
fn omega_formula() {
    assert_eq!(max_active_neurons(8, 3, 3), 5);
    assert_eq!(max_active_neurons(7, 2, 2), 14);
    assert_eq!(max_active_neurons(16, 4, 4), 291);
    assert_eq!(max_active_neurons(6, 2, 2), 7);
}

#[test]
fn per_neuron_pruning_bounds_every_trained_neuron() {
    for (name, w, a, acc) in [
        ("iris", 2, 2, 6),
        ("iris", 3, 3, 8),
        ("breast_cancer", 2, 2, 6),
        ("breast_cancer", 3, 3, 8),
        ("breast_cancer", 4, 4, 12),
        ("breast_cancer", 2, 3, 7),
    ] {
        let p = EstimatorParams {
            quant_signed: a >= 3, // exercise both quantizer kinds
            ..quick(w, a, acc)
        };
        let (c, _) = fit_clf(name, false, p);
        let q = c.quantized().unwrap();
        let omega = sqnn::cast::to_usize(max_active_neurons(acc, w, a));
        let rows = row_widths(q);
        let widest = rows.iter().map(|r| r.1).max().unwrap();
        for &(l, width, nnz) in &rows {
            assert!(
                nnz <= omega,
                "{name} {w}/{a}/{acc}: layer {l} row has {nnz} > Ω = {omega}"
            );
            assert!(
                width <= acc,
                "{name} {w}/{a}/{acc}: layer {l} range width {width} > {acc}"
            );
        }
        // Integer weights stay in the symmetric range.
        for layer in &q.layers {
            for row in &layer.rows {
                for &(_, v) in row {
                    assert!(v != 0 && v >= -(1 << (w - 1)) && v < (1 << (w - 1)));
                }
            }
        }
        println!("{name} {w}/{a}/{acc}: Ω = {omega}, widest accumulator {widest} bits");
    }
}

#[test]
fn narrower_input_bits_give_the_first_layer_a_larger_accumulator_budget() {
    // breast_cancer at 3/3/8 bits, accumulator-aware: inputs at 3 bits span 7, so a first-layer
    // row keeps sum |w| <= 255 / 7 = 36; at 2 bits they span 3 and it may keep up to 85.
    let base = EstimatorParams {
        n_layers: 2,
        n_hidden_neurons_multiplier: 1.0,
        pruning: PruningMode::AccumulatorAware,
        ..quick(3, 3, 8)
    };
    let mut l1_max = Vec::new();
    for bits in [None, Some(2)] {
        let (c, _) = fit_clf(
            "breast_cancer",
            false,
            EstimatorParams {
                n_input_bits: bits,
                ..base.clone()
            },
        );
        let q = c.quantized().unwrap();
        let span0 = q.layers[0].input_quant.hi - q.layers[0].input_quant.lo;
        let span1 = q.layers[1].input_quant.hi - q.layers[1].input_quant.lo;
        assert_eq!(span0, if bits.is_some() { 3 } else { 7 }, "{bits:?}");
        assert_eq!(span1, 7, "{bits:?}: hidden activations keep n_a_bits");
        let l1: Vec<i64> = q.layers[0]
            .rows
            .iter()
            .map(|r| r.iter().map(|(_, w)| w.abs()).sum())
            .collect();
        let most = *l1.iter().max().unwrap();
        assert!(most * span0 <= 255, "{bits:?}: sum |w| {most} * {span0}");
        l1_max.push(most);
        // The client's integers fit the narrower quantizer, and the static check proves
        // every accumulator on the lowered circuit.
        let (tr, _) = split("breast_cancer", false);
        for row in tr.x.rows() {
            let qi = q.quantize_input(&row.to_vec());
            assert!(qi
                .iter()
                .all(|&v| v >= q.layers[0].input_quant.lo && v <= q.layers[0].input_quant.hi));
        }
        let report = analyze(lower(q, "breast_cancer", PruningMode::AccumulatorAware).unwrap())
            .unwrap()
            .report()
            .clone();
        assert!(report.ok, "{bits:?}: check failed");
        assert!(report.max_range_bits <= 8);
    }
    assert!(
        l1_max[1] > 36,
        "2-bit inputs use a budget past 3-bit's: {l1_max:?}"
    );
}

#[test]
fn accumulator_aware_pruning_fits_every_trained_neuron_and_keeps_more_than_omega() {
    for (name, w, a, acc, signed) in [
        ("iris", 4, 4, 10, false),
        ("iris", 3, 3, 8, true),
        ("breast_cancer", 4, 4, 10, false),
        ("breast_cancer", 2, 2, 6, true),
    ] {
        let p = EstimatorParams {
            pruning: PruningMode::AccumulatorAware,
            quant_signed: signed,
            ..quick(w, a, acc)
        };
        let (c, te) = fit_clf(name, false, p);
        let q = c.quantized().unwrap();
        let omega = sqnn::cast::to_usize(max_active_neurons(acc, w, a));
        let rows = row_widths(q);
        let widest = rows.iter().map(|r| r.1).max().unwrap();
        let most = rows.iter().map(|r| r.2).max().unwrap();
        assert!(widest <= acc, "{name} {w}/{a}/{acc}: {widest} bits");
        assert!(
            most > omega,
            "{name} {w}/{a}/{acc}: at most {most} <= Ω = {omega} weights"
        );
        // The static check proves the same on the lowered circuit.
        let report = analyze(lower(q, name, PruningMode::AccumulatorAware).unwrap())
            .unwrap()
            .report()
            .clone();
        assert!(report.ok, "{name} {w}/{a}/{acc}: check failed");
        assert!(report.max_range_bits <= acc);
        let accuracy = c.score(&te.x, &te.labels().unwrap()).unwrap();
        println!(
            "{name} {w}/{a}/{acc} accumulator-aware: up to {most} weights per neuron (Ω = \
             {omega}), widest accumulator {widest} bits, test accuracy {accuracy:.3}"
        );
        assert!(accuracy > 0.85, "{name} {w}/{a}/{acc}: {accuracy}");
    }
}

#[test]
fn min_max_input_scaling_maps_training_ranges_onto_the_quantizer() {
    let (tr, _) = split("iris", false);
    for (pow2, c) in [(false, 1.0), (true, 0.9 * 15.0 / 16.0)] {
        let (clf, _) = fit_clf(
            "iris",
            false,
            EstimatorParams {
                power_of_two_scaling: pow2,
                ..quick(4, 4, 10)
            },
        );
        let q = clf.quantized().unwrap();
        for (j, col) in tr.x.columns().into_iter().enumerate() {
            let (lo, hi) = scaled_range(col, q.feature_mean[j], q.feature_std[j]);
            assert!(
                (lo + c).abs() < 1e-12 && (hi - c).abs() < 1e-12,
                "{j}: [{lo}, {hi}]"
            );
        }
        if pow2 {
            // The first layer's power-of-two step covers the range with all 16 levels.
            let iq = &q.layers[0].input_quant;
            assert!(2.0 * c / iq.scale > 13.0, "step {}", iq.scale);
        }
    }
    // Standardization is still available (and what older model files used).
    let (clf, _) = fit_clf(
        "iris",
        false,
        EstimatorParams {
            input_scaling: InputScaling::Standardize,
            ..quick(4, 4, 10)
        },
    );
    let mean0 = tr.x.column(0).sum() / tr.x.nrows() as f64;
    assert!((clf.quantized().unwrap().feature_mean[0] - mean0).abs() < 1e-12);
}

/// The smallest and largest of `col` scaled as `(v - mean) / std`.
fn scaled_range(col: ArrayView1<f64>, mean: f64, std: f64) -> (f64, f64) {
    col.iter()
        .map(|v| (v - mean) / std)
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), z| {
            (lo.min(z), hi.max(z))
        })
}

#[test]
fn unit_range_input_scaling_puts_each_training_minimum_at_integer_zero() {
    let (tr, _) = split("iris", false);
    for (pow2, c) in [(false, 1.0), (true, 0.9 * 15.0 / 16.0)] {
        let base = EstimatorParams {
            power_of_two_scaling: pow2,
            ..quick(4, 4, 10)
        };
        let (clf, _) = fit_clf(
            "iris",
            false,
            EstimatorParams {
                input_scaling: InputScaling::UnitRange,
                ..base.clone()
            },
        );
        let (mm, _) = fit_clf("iris", false, base);
        let q = clf.quantized().unwrap();
        let qm = mm.quantized().unwrap();
        for (j, col) in tr.x.columns().into_iter().enumerate() {
            let (lo, hi) = scaled_range(col, q.feature_mean[j], q.feature_std[j]);
            // [0, 2c]: min-max's length, shifted so that the minimum is 0.
            assert!(
                lo.abs() < 1e-12 && (hi - 2.0 * c).abs() < 1e-12,
                "{j}: [{lo}, {hi}]"
            );
            assert!((q.feature_std[j] - qm.feature_std[j]).abs() < 1e-12);
        }
        // The first layer's quantizer is unsigned and a feature at its minimum is the integer
        // 0, so it adds nothing to any accumulator; min-max puts it at the quantizer's bottom.
        let iq = &q.layers[0].input_quant;
        assert_eq!(iq.lo, 0, "{iq:?}");
        assert!(mm.quantized().unwrap().layers[0].input_quant.lo < 0);
        let mins: Vec<f64> =
            tr.x.columns()
                .into_iter()
                .map(|c| c.iter().copied().fold(f64::INFINITY, f64::min))
                .collect();
        assert!(q.quantize_input(&mins).iter().all(|&v| v == 0));
        assert!(qm.quantize_input(&mins).iter().all(|&v| v < 0));
    }
}

#[test]
fn layer_global_pruning_exceeds_omega_on_breast_cancer() {
    let p = EstimatorParams {
        pruning: PruningMode::LayerGlobal,
        ..quick(3, 3, 8)
    };
    let (c, _) = fit_clf("breast_cancer", false, p);
    let q = c.quantized().unwrap();
    let omega = sqnn::cast::to_usize(max_active_neurons(8, 3, 3));
    let rows = row_widths(q);
    let over: Vec<_> = rows.iter().filter(|r| r.2 > omega).collect();
    let max_nnz = rows.iter().map(|r| r.2).max().unwrap();
    let max_width = rows.iter().map(|r| r.1).max().unwrap();
    println!(
        "LayerGlobal breast_cancer 3/3/8: {} of {} neurons keep more than Ω = {omega} weights \
         (max {max_nnz}); widest accumulator {max_width} bits",
        over.len(),
        rows.len()
    );
    assert!(!over.is_empty());
}

#[test]
fn same_seed_same_bytes_different_seed_different_model() {
    let (tr, _) = split("breast_cancer", false);
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = Vec::new();
    for (i, seed) in [7u64, 7, 8].into_iter().enumerate() {
        let mut c = NeuralNetClassifier::new(EstimatorParams {
            seed,
            restarts: 2,
            validation_fraction: 0.2,
            ..quick(2, 2, 6)
        })
        .unwrap();
        c.fit_dataset(&tr).unwrap();
        let path = dir.path().join(format!("m{i}.json"));
        c.save(&path).unwrap();
        bytes.push(std::fs::read(&path).unwrap());
    }
    assert_eq!(
        bytes[0], bytes[1],
        "same seed must give the same model bit for bit"
    );
    assert_ne!(bytes[0], bytes[2], "another seed must give another model");
    let (tr, _) = split("diabetes", false);
    let fit = || {
        let mut r = NeuralNetRegressor::new(quick(2, 2, 6)).unwrap();
        r.fit_dataset(&tr).unwrap();
        r.quantized().unwrap().clone()
    };
    assert_eq!(fit(), fit());
}

#[test]
fn noise_aware_training_is_seeded_and_zero_noise_is_plain_training() {
    use sqnn::fhe::ParamSetId;
    let (tr, _) = split("iris", true);
    let fit = |noise: Option<sqnn::train::ReadNoise>| {
        let mut c = NeuralNetClassifier::new(EstimatorParams {
            read_noise: noise,
            ..quick(4, 4, 10)
        })
        .unwrap();
        c.fit_dataset(&tr).unwrap();
        c
    };
    let two_bit = ParamSetId::ClassicMsg1Carry1.set().read_noise();
    let silent = sqnn::train::ReadNoise {
        noise_base: 0.0,
        noise_per_w2: 0.0,
        ..two_bit.clone()
    };
    let plain = fit(None);
    let noisy = fit(Some(two_bit.clone()));
    assert_eq!(
        fit(Some(two_bit.clone())).quantized().unwrap(),
        noisy.quantized().unwrap(),
        "the same seed must give the same noise-aware model"
    );
    assert_ne!(plain.quantized().unwrap(), noisy.quantized().unwrap());
    assert_eq!(
        fit(Some(silent)).quantized().unwrap(),
        plain.quantized().unwrap(),
        "zero read noise must be plain training"
    );
    // The model file records what the model was trained for.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("noisy.json");
    noisy.save(&path).unwrap();
    let back = Model::load(&path).unwrap();
    assert_eq!(back.params().read_noise.as_ref(), Some(&two_bit));
    expect_param(
        NeuralNetClassifier::new(EstimatorParams {
            read_noise: Some(sqnn::train::ReadNoise {
                scale: f64::NAN,
                ..two_bit
            }),
            ..quick(4, 4, 10)
        }),
        "noise_scale",
    );
}

#[test]
fn shift_augmentation_is_seeded_changes_training_and_checks_the_layout() {
    use sqnn::train::ImageShifts;
    // Iris's four features as 2 x 2 "images": enough to see every path of the option.
    let (tr, _) = split("iris", true);
    let fit = |shifts: Option<ImageShifts>| {
        let mut c = NeuralNetClassifier::new(EstimatorParams {
            shift_augment: shifts,
            ..quick(4, 4, 10)
        })?;
        c.fit_dataset(&tr)?;
        Ok::<_, Error>(c)
    };
    let square: ImageShifts = "2x2".parse().unwrap();
    let plain = fit(None).unwrap();
    let shifted = fit(Some(square)).unwrap();
    assert_eq!(
        fit(Some(square)).unwrap().quantized().unwrap(),
        shifted.quantized().unwrap(),
        "the same seed must give the same augmented model"
    );
    assert_ne!(plain.quantized().unwrap(), shifted.quantized().unwrap());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shifted.json");
    shifted.save(&path).unwrap();
    assert_eq!(
        Model::load(&path).unwrap().params().shift_augment,
        Some(square),
        "the model file records the augmentation it was trained with"
    );
    expect_param(fit(Some("3x3".parse().unwrap())), "shift_augment");
    expect_param(fit(Some("2x2:2".parse().unwrap())), "shift_augment");
}

#[test]
fn idle_neuron_removal_cuts_tables_and_keeps_the_training_score() {
    let (tr, _) = split("iris", true);
    let fit = |remove: Option<f64>| {
        let mut c = NeuralNetClassifier::new(EstimatorParams {
            remove_neurons: remove,
            epochs: 60,
            ..Default::default()
        })
        .unwrap();
        let report = c.fit_dataset(&tr).unwrap();
        (c, report)
    };
    let tables = |c: &NeuralNetClassifier| {
        let g = lower(c.quantized().unwrap(), "iris", PruningMode::PerNeuron).unwrap();
        g.pbs_count()
    };
    let (plain, plain_report) = fit(None);
    let (pruned, report) = fit(Some(0.0));
    assert_eq!(plain_report.neurons_removed, 0);
    assert!(report.neurons_removed > 0, "{report:?}");
    // Every removed neuron is dead in the module and absent from the circuit: the hidden
    // neurons left each have one table, and there are fewer of them.
    let module = pruned.module().unwrap();
    let dead: usize = (0..module.n_layers() - 1)
        .map(|l| module.alive_neurons(l).iter().filter(|a| !**a).count())
        .sum();
    assert_eq!(dead, report.neurons_removed);
    let q = pruned.quantized().unwrap();
    let hidden: usize = q.layers[..q.layers.len() - 1]
        .iter()
        .map(|l| l.out_dim())
        .sum();
    assert_eq!(tables(&pruned), hidden);
    assert!(tables(&pruned) < tables(&plain));
    // Halfway through training, the training rows' accuracy was kept; after fine-tuning it
    // is still at least the plain model's minus a row or two.
    let acc = |c: &NeuralNetClassifier| {
        let pred = c.predict(&tr.x).unwrap();
        let hits = pred.iter().zip(&tr.y).filter(|(p, y)| **p as f64 == **y);
        hits.count() as f64 / tr.n_samples() as f64
    };
    assert!(acc(&pruned) >= acc(&plain) - 2.0 / tr.n_samples() as f64);
    // Deterministic.
    assert_eq!(fit(Some(0.0)).0.quantized(), pruned.quantized());
    expect_param(
        NeuralNetClassifier::new(EstimatorParams {
            remove_neurons: Some(1.5),
            ..Default::default()
        }),
        "remove_neurons",
    );
}

#[test]
fn save_load_round_trip_and_bad_files() {
    let dir = tempfile::tempdir().unwrap();
    let (c, te) = fit_clf("iris", false, quick(2, 2, 6));
    let path = dir.path().join("iris.model.json");
    c.save(&path).unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(
        text.starts_with("{\"format\":\"sqnn-model\",\"version\":1"),
        "{}",
        &text[..60]
    );
    let back = NeuralNetClassifier::load(&path).unwrap();
    assert_eq!(back.predict(&te.x).unwrap(), c.predict(&te.x).unwrap());
    assert_eq!(back.params(), c.params());
    // Every hyper-parameter is required (the format was never released without them): a
    // file missing `lr_schedule` and `sparse_init` is a damaged model file, not a guess.
    let old = dir.path().join("old.model.json");
    let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let params = v["params"].as_object_mut().unwrap();
    assert!(params.remove("lr_schedule").is_some() && params.remove("sparse_init").is_some());
    assert!(
        !params.contains_key("progress"),
        "nothing about display in model files"
    );
    std::fs::write(&old, serde_json::to_vec(&v).unwrap()).unwrap();
    match NeuralNetClassifier::load(&old) {
        Err(Error::Model(m)) => assert!(m.contains("damaged"), "{m}"),
        other => panic!("expected a damaged-file error, got {other:?}"),
    }
    assert_eq!(
        back.predict_proba(&te.x).unwrap(),
        c.predict_proba(&te.x).unwrap()
    );
    assert_eq!(back.classes(), c.classes());
    let m = Model::load(&path).unwrap();
    assert_eq!(m.quantized(), c.quantized().unwrap());
    assert_eq!(m.data_name(), "iris");
    assert_eq!(m.pruning_name(), "per_neuron");
    // A regressor file is not a classifier.
    let (tr, te_r) = split("diabetes", false);
    let mut r = NeuralNetRegressor::new(quick(2, 2, 6)).unwrap();
    r.fit_dataset(&tr).unwrap();
    let rpath = dir.path().join("diabetes.model.json");
    r.save(&rpath).unwrap();
    assert_eq!(
        NeuralNetRegressor::load(&rpath)
            .unwrap()
            .predict(&te_r.x)
            .unwrap(),
        r.predict(&te_r.x).unwrap()
    );
    match NeuralNetClassifier::load(&rpath) {
        Err(Error::Model(msg)) => assert!(msg.contains("regressor"), "{msg}"),
        other => panic!("{other:?}"),
    }
    // Garbled, truncated, wrong format, newer version, inconsistent contents: Error::Model
    // naming the file, never a panic.
    let half = &text[..text.len() / 2];
    let cases = [
        ("garbage.json", "not json at all".to_string()),
        ("truncated.json", half.to_string()),
        (
            "circuit.json",
            r#"{"format":"sqnn-circuit","version":1}"#.to_string(),
        ),
        ("noformat.json", r#"{"hello":1}"#.to_string()),
        (
            "newer.json",
            text.replacen("\"version\":1", "\"version\":99", 1),
        ),
        (
            "badindex.json",
            text.replacen("\"rows\":[[[", "\"rows\":[[[999999", 1),
        ),
        ("badkind.json", text.replacen("classifier", "forest", 1)),
        (
            "edited.json",
            text.replacen("\"target_std\":1.0", "\"target_std\":2.0", 1),
        ),
    ];
    for (file, content) in cases {
        let p = dir.path().join(file);
        std::fs::write(&p, content).unwrap();
        match Model::load(&p) {
            Err(Error::Model(msg)) => {
                assert!(msg.contains(file), "{file}: {msg}");
                println!("{file}: {msg}");
            }
            Ok(_) => panic!("{file} loaded"),
            Err(e) => panic!("{file}: {e}"),
        }
    }
    assert!(matches!(
        Model::load(dir.path().join("missing.json")),
        Err(Error::Io { .. })
    ));
}

#[test]
fn fake_quant_forward_agrees_with_integer_model() {
    for (name, p) in [
        ("iris", quick(2, 2, 6)),
        ("breast_cancer", quick(2, 2, 6)),
        ("breast_cancer", quick(3, 3, 8)),
    ] {
        let (c, te) = fit_clf(name, false, p);
        let q = c.quantized().unwrap();
        let module = c.module().unwrap();
        let xs = Array2::from_shape_fn(te.x.raw_dim(), |(i, j)| {
            (te.x[[i, j]] - q.feature_mean[j]) / q.feature_std[j]
        });
        let f = module.forward(&xs);
        let float_labels: Vec<usize> = f
            .rows()
            .into_iter()
            .map(|r| {
                let mut b = 0;
                for k in 1..r.len() {
                    if r[k] > r[b] {
                        b = k;
                    }
                }
                b
            })
            .collect();
        let int_labels = c.predict(&te.x).unwrap();
        let agree = float_labels
            .iter()
            .zip(&int_labels)
            .filter(|(a, b)| a == b)
            .count() as f64
            / int_labels.len() as f64;
        println!("{name}: fake-quant vs integer agreement {agree:.4}");
        assert!(agree >= 0.97, "{name}: agreement {agree}");
        // And the logits themselves are close.
        let z = c.decision_function(&te.x).unwrap();
        let max_diff = (&z - &f).iter().fold(0.0f64, |m, v| m.max(v.abs()));
        assert!(max_diff < 1e-6, "{name}: logits differ by {max_diff}");
    }
}

#[test]
fn power_of_two_scaling_gives_exact_powers_of_two() {
    let is_pow2 = |s: f64| {
        s > 0.0 && s.log2().fract() == 0.0 && 2f64.powi(sqnn::cast::float_exponent(s.log2())) == s
    };
    for per_channel in [true, false] {
        for act_range in [ActRange::Learned, ActRange::MinMax] {
            let p = EstimatorParams {
                power_of_two_scaling: true,
                per_channel,
                act_range,
                ..quick(3, 3, 8)
            };
            let (c, te) = fit_clf("breast_cancer", false, p);
            let q = c.quantized().unwrap();
            for layer in &q.layers {
                assert!(
                    is_pow2(layer.input_quant.scale),
                    "{}",
                    layer.input_quant.scale
                );
                for &s in &layer.weight_scale {
                    assert!(is_pow2(s), "{s}");
                }
            }
            assert!(c.score(&te.x, &te.labels().unwrap()).unwrap() > 0.85);
        }
    }
}

#[test]
fn structured_pruning_removes_neurons_and_their_columns() {
    // Structured pruning alone: neuron removal (a default) would take more.
    let base = EstimatorParams {
        remove_neurons: None,
        ..quick(3, 3, 8)
    };
    let (full, _) = fit_clf("breast_cancer", false, base.clone());
    let (pruned, te) = fit_clf(
        "breast_cancer",
        false,
        EstimatorParams {
            n_prune_neurons_percentage: 0.5,
            ..base
        },
    );
    let q = pruned.quantized().unwrap();
    let qf = full.quantized().unwrap();
    let width = sqnn::cast::clamp_count(
        (30.0 * base.n_hidden_neurons_multiplier).floor(),
        usize::MAX,
    ); // 30 features * multiplier
    let n = q.layers.len();
    for l in 0..n - 1 {
        assert!(
            q.layers[l].out_dim() <= width / 2,
            "layer {l} keeps {} of {width}",
            q.layers[l].out_dim()
        );
        assert_eq!(q.layers[l + 1].in_dim, q.layers[l].out_dim());
        for row in &q.layers[l + 1].rows {
            assert!(row.iter().all(|&(j, _)| j < q.layers[l + 1].in_dim));
        }
    }
    assert!(q.layers[0].out_dim() < qf.layers[0].out_dim());
    let module = pruned.module().unwrap();
    let dead = module.alive_neurons(0).iter().filter(|&&a| !a).count();
    assert_eq!(dead, width / 2);
    assert!(pruned.score(&te.x, &te.labels().unwrap()).unwrap() > 0.85);
}

/// What a training run does (epochs, losses, the epoch kept). Its time is printed, not asserted:
/// speed belongs in benches and reported figures, and a loaded machine must not fail a test.
#[test]
fn iris_trains_fast() {
    let (tr, _) = split("iris", false);
    // With a hold-out: one validation score per epoch, the best epoch kept.
    let mut c = NeuralNetClassifier::new(EstimatorParams {
        validation_fraction: 0.2,
        restarts: 1,
        ..Default::default()
    })
    .unwrap();
    let t = Instant::now();
    let rep = c.fit_dataset(&tr).unwrap();
    let secs = t.elapsed().as_secs_f64();
    println!("iris, 100 epochs, one run with validation: {secs:.3} s");
    assert_eq!(rep.epochs_run, 100);
    assert_eq!(rep.train_loss.len(), 100);
    assert_eq!(rep.val_loss.len(), 100);
    assert!(rep.best_epoch < 100);
    // The presets as `sqnn train` runs them: one run of 100 epochs on all training rows, the
    // last epoch kept (measured 0.01 s in release; Concrete ML: 7.8 s).
    for p in [EstimatorParams::default(), EstimatorParams::fast_fhe()] {
        let mut c = NeuralNetClassifier::new(p.clone()).unwrap();
        let t = Instant::now();
        let rep = c.fit_dataset(&tr).unwrap();
        let secs = t.elapsed().as_secs_f64();
        println!(
            "iris, {}/{}/{} bits, {} run(s) of 100 epochs: {secs:.3} s",
            p.n_w_bits, p.n_a_bits, p.n_accum_bits, p.restarts
        );
        assert_eq!((rep.n_val, rep.n_train), (0, tr.n_samples()));
        assert!(rep.val_loss.is_empty());
        assert_eq!(rep.best_epoch, 99);
    }
}

// ---- Accuracy of the presets (real, can-fail thresholds) -----------------------------------

/// Train seeds the accuracy tests average over: the default (42) and four others (far enough
/// apart that their restarts, seeds `s .. s + restarts`, do not overlap). One test split of 38
/// iris rows turns a single training into a lottery over three borderline rows; the mean over
/// seeds measures the procedure.
const TRAIN_SEEDS: [u64; 5] = [42, 1042, 2042, 3042, 4042];

/// Test score (accuracy or R²) of `p` on `name`, over [`TRAIN_SEEDS`]: (mean, min). Checks on
/// every trained model that each row keeps at most Ω non-zero weights and each proved
/// accumulator range fits `n_accum_bits`.
fn score_over_seeds(name: &str, peer: bool, p: &EstimatorParams) -> (f64, f64) {
    let (tr, te) = split(name, peer);
    let omega = sqnn::cast::to_usize(p.max_active_neurons());
    let mut scores = Vec::new();
    for seed in TRAIN_SEEDS {
        let p = EstimatorParams { seed, ..p.clone() };
        let (score, q) = if tr.labels().is_some() {
            let mut c = NeuralNetClassifier::new(p.clone()).unwrap();
            c.fit_dataset(&tr).unwrap();
            let acc = c.score(&te.x, &te.labels().unwrap()).unwrap();
            (acc, c.quantized().unwrap().clone())
        } else {
            let mut r = NeuralNetRegressor::new(p.clone()).unwrap();
            r.fit_dataset(&tr).unwrap();
            (
                r.score(&te.x, &te.y).unwrap(),
                r.quantized().unwrap().clone(),
            )
        };
        let rows = row_widths(&q);
        let widest = rows.iter().map(|r| r.1).max().unwrap();
        assert!(
            widest <= p.n_accum_bits,
            "{name} seed {seed}: {widest} bits"
        );
        assert!(
            rows.iter().all(|r| r.2 <= omega),
            "{name} seed {seed}: a row exceeds Ω"
        );
        scores.push(score);
    }
    let mean = scores.iter().sum::<f64>() / scores.len() as f64;
    let min = scores.iter().copied().fold(f64::INFINITY, f64::min);
    let shown: Vec<String> = scores.iter().map(|s| format!("{s:.3}")).collect();
    println!(
        "{name} ({} split), {}/{}/{} bits: mean {mean:.3}, min {min:.3} over seeds {TRAIN_SEEDS:?}: [{}]",
        if peer { "Concrete ML's" } else { "seed-42" },
        p.n_w_bits,
        p.n_a_bits,
        p.n_accum_bits,
        shown.join(", ")
    );
    (mean, min)
}

#[test]
fn breast_cancer_default_accuracy() {
    let p = EstimatorParams::default();
    assert!(score_over_seeds("breast_cancer", false, &p).0 >= 0.95);
    assert!(score_over_seeds("breast_cancer", true, &p).0 >= 0.95);
}

#[test]
fn iris_default_accuracy() {
    // The seed-42 test split holds iris rows 70, 83 and 133, the classic overlapping
    // versicolor / virginica samples that even LDA misclassifies: 36/39 = 0.923 is typical for
    // every model measured, 0.949 the best seen. Concrete ML's split has three borderline rows
    // (77, 106, 134): rows 77 and 106 contradict each other (a versicolor that looks virginica
    // and the reverse), so most models get one of them wrong (0.974), some seeds both (0.947).
    // Measured with the defaults: mean 0.961 over 16 seeds (Standardized inputs, validation
    // hold-out and best-of-5 restarts, the previous defaults: 0.949).
    let p = EstimatorParams::default();
    assert!(score_over_seeds("iris", false, &p).0 >= 0.90);
    assert!(score_over_seeds("iris", true, &p).0 >= 0.95);
}

#[test]
fn diabetes_default_r2() {
    let p = EstimatorParams::default();
    assert!(score_over_seeds("diabetes", false, &p).0 >= 0.40);
    assert!(score_over_seeds("diabetes", true, &p).0 >= 0.40);
}

#[test]
fn fast_fhe_preset_accuracy() {
    let p = EstimatorParams::fast_fhe();
    assert_eq!(
        (
            p.n_w_bits,
            p.n_a_bits,
            p.n_accum_bits,
            p.max_active_neurons()
        ),
        (4, 4, 10, 4)
    );
    assert!(score_over_seeds("iris", false, &p).0 >= 0.89);
    assert!(score_over_seeds("iris", true, &p).0 >= 0.92);
    for peer in [false, true] {
        assert!(score_over_seeds("breast_cancer", peer, &p).0 >= 0.95);
        assert!(score_over_seeds("diabetes", peer, &p).0 >= 0.40);
    }
}

// ---- MNIST (slow; run with --ignored) -------------------------------------------------------

/// The MNIST configuration of an earlier committed circuit (3/3/12 bits, per-neuron pruning),
/// reported in `docs/figures.md` ("MNIST").
pub fn mnist_params() -> EstimatorParams {
    EstimatorParams {
        n_layers: 2,
        n_hidden_neurons_multiplier: 0.5,
        n_w_bits: 3,
        n_a_bits: 3,
        n_accum_bits: 12,
        act_range: ActRange::Percentile(99.9),
        prune_warmup: 0.0,
        epochs: 20,
        batch_size: 64,
        lr: 0.01,
        restarts: 1,
        // The recipe those MNIST figures were measured with (before sqnn's defaults
        // moved to min-max inputs, weight decay and no hold-out).
        validation_fraction: 0.2,
        input_scaling: InputScaling::Standardize,
        weight_decay: 0.0,
        ..Default::default()
    }
}

/// Hidden neurons of the exported model whose activation integer is not the same on every
/// row of `x` (the others are constants that still cost a bootstrap).
fn varying_hidden_neurons(q: &QuantizedMlp, x: &Array2<f64>) -> usize {
    let first = &q.layers[0];
    let next = &q.layers[1].input_quant;
    let act = first.activation.unwrap();
    let mut seen: Vec<Option<i64>> = vec![None; first.out_dim()];
    let mut varies = vec![false; first.out_dim()];
    for row in x.rows() {
        let q0 = q.quantize_input(&row.to_vec());
        for (i, r) in first.rows.iter().enumerate() {
            let acc: i64 = r.iter().map(|&(j, w)| w * q0[j]).sum();
            let v = next.quantize(act.apply(first.preactivation(i, acc)));
            match seen[i] {
                None => seen[i] = Some(v),
                Some(s) if s != v => varies[i] = true,
                _ => {}
            }
        }
    }
    varies.iter().filter(|&&v| v).count()
}

#[test]
#[ignore]
fn mnist_unit_range_inputs_keep_hidden_neurons_alive() {
    // MNIST's background is each pixel's minimum: at [-1, 1] every background pixel adds -w to
    // every neuron, Adam's first steps move those weights together and most ReLUs end below 0
    // for every digit. At [0, 2] the background is 0 and has no gradient.
    let ds = Dataset::builtin("mnist").unwrap();
    let s = train_test_split(&ds, 0.2, 42).unwrap();
    let tr = ds.subset(&s.train);
    let p = EstimatorParams {
        n_layers: 2,
        n_hidden_neurons_multiplier: 0.25,
        n_w_bits: 3,
        n_a_bits: 3,
        n_accum_bits: 12,
        pruning: PruningMode::AccumulatorAware,
        epochs: 3,
        ..Default::default()
    };
    let sample: Vec<usize> = (0..tr.x.nrows()).step_by(4).collect();
    let x = tr.x.select(ndarray::Axis(0), &sample);
    let mut live = Vec::new();
    for scaling in [InputScaling::MinMax, InputScaling::UnitRange] {
        let mut c = NeuralNetClassifier::new(EstimatorParams {
            input_scaling: scaling,
            ..p.clone()
        })
        .unwrap();
        c.fit_dataset(&tr).unwrap();
        let q = c.quantized().unwrap();
        live.push((q.layers[0].out_dim(), varying_hidden_neurons(q, &x)));
    }
    println!(
        "hidden neurons exported, varying on the training digits: min-max {:?}, unit range {:?}",
        live[0], live[1]
    );
    // Measured (3 epochs): 196 exported, 45 of them varying, with min-max; 188 and 147 with unit
    // range.
    assert!(live[1].1 > 2 * live[0].1, "{live:?}");
}

#[test]
#[ignore]
fn mnist_accuracy() {
    let ds = Dataset::builtin("mnist").unwrap();
    let s = train_test_split(&ds, 0.2, 42).unwrap();
    let tr = ds.subset(&s.train);
    let te = ds.subset(&s.test);
    assert_eq!(te.x.nrows(), 2000);
    let p = mnist_params();
    let mut c = NeuralNetClassifier::new(p.clone()).unwrap();
    let rep = c.fit_dataset(&tr).unwrap();
    let acc = c.score(&te.x, &te.labels().unwrap()).unwrap();
    let widest = row_widths(c.quantized().unwrap())
        .iter()
        .map(|r| r.1)
        .max()
        .unwrap();
    println!(
        "MNIST {}/{}/{} (Ω = {}): test accuracy {acc:.4}, widest accumulator {widest} bits, \
         training {:.1} s (best epoch {})",
        p.n_w_bits,
        p.n_a_bits,
        p.n_accum_bits,
        p.max_active_neurons(),
        rep.seconds,
        rep.best_epoch
    );
    assert!(acc >= 0.93, "{acc}");
    assert!(widest <= p.n_accum_bits);
}

#[test]
fn distillation_is_seeded_recorded_and_refuses_a_teacher_of_other_data() {
    use sqnn::data::{SplitSpec, TrainingRows};
    use sqnn::train::{Distill, ImageShifts};
    let dir = tempfile::tempdir().unwrap();
    let spec = SplitSpec::Seeded {
        test_size: 0.25,
        seed: 42,
    };
    let rows_of = |name: &str| {
        let ds = Dataset::builtin(name).unwrap();
        let s = train_test_split(&ds, 0.25, 42).unwrap();
        TrainingRows::new(&ds, &spec, &s)
    };
    // A wider, finer teacher on iris's training rows, saved with the split it was trained on.
    let (tr, _) = split("iris", false);
    let mut teacher = NeuralNetClassifier::new(EstimatorParams {
        n_hidden_neurons_multiplier: 8.0,
        pruning: PruningMode::AccumulatorAware,
        ..quick(6, 6, 20)
    })
    .unwrap();
    teacher.fit_dataset(&tr).unwrap();
    teacher.set_training_rows(Some(rows_of("iris")));
    let teacher_path = dir.path().join("teacher.json");
    teacher.save(&teacher_path).unwrap();
    let d = Distill::from_file(&teacher_path, 3.0, 0.7).unwrap();
    d.check_rows(&rows_of("iris")).unwrap();

    let fit = |distill: Option<Distill>, shifts: Option<ImageShifts>| {
        let mut c = NeuralNetClassifier::new(EstimatorParams {
            distill,
            shift_augment: shifts,
            ..quick(4, 4, 10)
        })?;
        c.fit_dataset(&tr)?;
        Ok::<_, Error>(c)
    };
    let plain = fit(None, None).unwrap();
    let student = fit(Some(d.clone()), None).unwrap();
    assert_eq!(
        fit(Some(d.clone()), None).unwrap().quantized().unwrap(),
        student.quantized().unwrap(),
        "the same seed and teacher must give the same student"
    );
    assert_ne!(plain.quantized().unwrap(), student.quantized().unwrap());
    // With shifts the teacher reads each shifted batch: still seeded.
    let square: ImageShifts = "2x2".parse().unwrap();
    assert_eq!(
        fit(Some(d.clone()), Some(square))
            .unwrap()
            .quantized()
            .unwrap(),
        fit(Some(d.clone()), Some(square))
            .unwrap()
            .quantized()
            .unwrap()
    );
    // Weight 0 is plain training.
    let none = Distill {
        weight: 0.0,
        ..d.clone()
    };
    assert_eq!(
        fit(Some(none), None).unwrap().quantized().unwrap(),
        plain.quantized().unwrap()
    );

    // The model file records the teacher's hash, path, temperature and weight.
    let path = dir.path().join("student.json");
    student.save(&path).unwrap();
    let loaded = Model::load(&path).unwrap();
    let rec = loaded
        .params()
        .distill
        .clone()
        .expect("recorded distillation");
    assert_eq!(rec, d);
    assert_eq!(rec.teacher_sha256.len(), 64);
    assert_eq!((rec.temperature, rec.weight), (3.0, 0.7));
    assert!(
        rec.teacher.is_none(),
        "the teacher itself is not in the file"
    );
    // Training again from the record alone asks for the teacher.
    expect_param(fit(Some(rec), None), "distill");

    // A teacher of other data: another feature count, other rows, or a regression.
    let (bc, _) = split("breast_cancer", false);
    let mut c = NeuralNetClassifier::new(EstimatorParams {
        distill: Some(d.clone()),
        ..quick(4, 4, 10)
    })
    .unwrap();
    expect_param(c.fit_dataset(&bc), "distill");
    expect_param(d.check_rows(&rows_of("breast_cancer")), "distill");
    let (db, _) = split("diabetes", false);
    let mut r = NeuralNetRegressor::new(EstimatorParams {
        distill: Some(d.clone()),
        ..quick(4, 4, 10)
    })
    .unwrap();
    expect_param(r.fit_dataset(&db), "distill");
    let mut reg = NeuralNetRegressor::new(quick(4, 4, 10)).unwrap();
    reg.fit_dataset(&db).unwrap();
    let reg_path = dir.path().join("regressor.json");
    reg.save(&reg_path).unwrap();
    expect_param(Distill::from_file(&reg_path, 3.0, 0.7), "distill");
    expect_param(Distill::from_file(&teacher_path, 0.0, 0.7), "distill");
    expect_param(Distill::from_file(&teacher_path, 3.0, 1.5), "distill");
}
