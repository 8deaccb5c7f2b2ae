//! The search for the accuracy-versus-latency front: a small, fixed space on iris (the library),
//! and `sqnn tune` through the real binary (a written model that compiles, clear errors).

use assert_cmd::Command;
use serde_json::Value;

use sqnn::analyze::analyze;
use sqnn::fhe::ParamSetId;
use sqnn::lower::lower_model;
use sqnn::train::quantize::Activation;
use sqnn::tune::{self, dominates, Folds, SearchSpace, TuneReport, TuneRequest};
use sqnn::{Dataset, NoProgress, PruningMode, SplitSpec};

/// Iris's training rows and a request over 4 candidates × 2 sets, 3 folds, 20 epochs.
fn small() -> (Dataset, TuneRequest) {
    let iris = Dataset::builtin("iris").unwrap();
    let train = iris.subset(&SplitSpec::Auto.split(&iris).unwrap().train);
    let mut req = TuneRequest::new(&train);
    req.base.epochs = 20;
    req.space = SearchSpace {
        n_layers: vec![2],
        multipliers: vec![1.0, 2.0],
        bits: vec![(3, 3)],
        n_accum_bits: vec![9, 10],
        pruning: vec![PruningMode::PerNeuron],
        noise_aware: vec![None],
        remove_neurons: vec![None],
        sets: vec![ParamSetId::ClassicMsg1Carry1, ParamSetId::ClassicMsg2Carry2],
        linear_bits: vec![],
    };
    req.folds = Folds {
        k: 3,
        used: 3,
        repeats: 1,
        seed: 7,
    };
    req.noise_seeds = 2;
    req.cores = 2;
    (train, req)
}

fn run(train: &Dataset, req: &TuneRequest) -> TuneReport {
    tune::tune(train, req, &NoProgress).unwrap()
}

#[test]
fn the_front_is_non_dominated_and_the_recommendation_obeys_its_rule() {
    let (train, req) = small();
    let r = run(&train, &req);
    assert_eq!((r.evaluated.len(), r.space_size), (4, 4));
    assert!(!r.stopped_early);
    assert!(r.points.len() >= 4, "{} points", r.points.len());
    // Non-dominated, fastest first, and every other point is dominated by (or ties) a front point.
    for &i in &r.front {
        assert!(!r.points.iter().any(|q| dominates(q, &r.points[i])));
    }
    assert!(r
        .front
        .windows(2)
        .all(|w| r.points[w[0]].latency_ms <= r.points[w[1]].latency_ms));
    for (j, p) in r.points.iter().enumerate() {
        if !r.front.contains(&j) {
            assert!(r.front.iter().any(|&i| {
                let f = &r.points[i];
                dominates(f, p) || (f.latency_ms == p.latency_ms && f.metric == p.metric)
            }));
        }
    }
    // The fastest point within the tolerance of the best score.
    let best = r.points.iter().map(|p| p.metric).fold(0.0, f64::max);
    let rec = r.recommended_point();
    assert!(r.front.contains(&r.recommended));
    assert!(rec.metric >= best - req.tolerance);
    assert!(r.front.iter().all(|&i| {
        let p = &r.points[i];
        p.metric < best - req.tolerance || p.latency_ms >= rec.latency_ms
    }));
    // Simulated scores and latencies are figures, not placeholders.
    for p in &r.points {
        assert!((0.0..=1.0).contains(&p.metric) && (0.0..=1.0).contains(&p.agreement));
        assert!(p.latency_ms > 0.0 && p.pbs_count >= 1.0);
    }
    // The 2-bit set is cheaper per bootstrap than the 4-bit one for the same circuits.
    let lat = |set| {
        r.points
            .iter()
            .find(|p| p.parameter_set == set && p.config == r.points[0].config)
            .map(|p| p.latency_ms)
    };
    if let (Some(two), Some(four)) = (
        lat(ParamSetId::ClassicMsg1Carry1),
        lat(ParamSetId::ClassicMsg2Carry2),
    ) {
        assert!(two < four, "{two} vs {four}");
    }
}

#[test]
fn the_one_standard_error_rule_widens_the_tolerance_to_the_best_points_uncertainty() {
    let (train, mut req) = small();
    req.tolerance_se = 1.0;
    let r = run(&train, &req);
    let n = train.n_samples() as f64; // 3 folds, all used: every training row judged once
    for p in &r.points {
        let a = p.metric;
        assert!(
            (p.metric_se - (a * (1.0 - a) / n).sqrt()).abs() < 1e-9,
            "{p:?}"
        );
    }
    let best = r
        .front
        .iter()
        .map(|&i| &r.points[i])
        .max_by(|a, b| a.metric.total_cmp(&b.metric))
        .unwrap();
    assert_eq!(r.tolerance, req.tolerance.max(best.metric_se));
    assert_eq!(r.tolerance_se, 1.0);
    let rec = r.recommended_point();
    assert!(rec.metric >= best.metric - r.tolerance);
    assert!(r.front.iter().all(|&i| {
        let p = &r.points[i];
        p.metric < best.metric - r.tolerance || p.latency_ms >= rec.latency_ms
    }));
}

#[test]
fn a_regression_is_searched_with_gelu_weight_decay_and_three_cuts() {
    let diabetes = Dataset::builtin("diabetes").unwrap();
    let train = diabetes.subset(&SplitSpec::Auto.split(&diabetes).unwrap().train);
    assert!(train.n_samples() > Folds::SMALL, "{}", train.n_samples());
    let req = TuneRequest::new(&train);
    assert_eq!(req.base.activation_function, Activation::Gelu);
    assert_eq!(req.base.weight_decay, TuneRequest::REGRESSION_WEIGHT_DECAY);
    assert_eq!(
        (req.folds.used, req.folds.repeats),
        (5, Folds::SMALL_REPEATS)
    );
    // Classification keeps the defaults.
    let (iris, _) = small();
    let req = TuneRequest::new(&iris);
    assert_eq!(req.base, sqnn::EstimatorParams::default());
}

#[test]
fn the_same_request_gives_the_same_search() {
    let (train, mut req) = small();
    req.max_candidates = Some(3);
    let (a, b) = (run(&train, &req), run(&train, &req));
    let configs = |r: &TuneReport| r.evaluated.iter().map(|e| e.config).collect::<Vec<_>>();
    assert_eq!(configs(&a), configs(&b));
    assert_eq!(a.points, b.points);
    assert_eq!(
        (a.front.clone(), a.recommended),
        (b.front.clone(), b.recommended)
    );
    assert!(a.stopped_early && a.evaluated.len() == 3);
    // The first candidate is the base settings snapped into the space.
    assert_eq!(
        a.evaluated[0].config,
        req.space.snap(&tune::Config::of(&req.base))
    );
}

#[test]
fn the_picture_has_axes_and_marks_the_recommended_point() {
    let (train, req) = small();
    let r = run(&train, &req);
    let svg = tune::render_svg(&r).unwrap();
    let doc = roxmltree::Document::parse(&svg).expect("the SVG parses as XML");
    assert_eq!(doc.root_element().tag_name().name(), "svg");
    let texts: Vec<String> = doc
        .descendants()
        .filter(|n| n.has_tag_name("text"))
        .filter_map(|n| n.text().map(|t| t.trim().to_string()))
        .collect();
    let has = |s: &str| texts.iter().any(|t| t.contains(s));
    assert!(
        has("predicted encrypted latency per sample (ms"),
        "{texts:?}"
    );
    assert!(has("validation accuracy"), "{texts:?}");
    assert!(has("recommended"), "{texts:?}");
    assert!(has("Pareto front"), "{texts:?}");
    // Tick labels on both axes: numbers.
    assert!(texts.iter().filter(|t| t.parse::<f64>().is_ok()).count() >= 4);
    // The recommended point's red ring.
    assert!(doc
        .descendants()
        .any(|n| n.has_tag_name("circle") && n.attribute("stroke") == Some("#FF0000")));
}

#[test]
fn points_on_the_same_pixels_are_drawn_once() {
    let (train, req) = small();
    let r = run(&train, &req);
    let grey_circles = |svg: &str| svg.matches(r##"fill="#AAAAAA""##).count();
    let once = grey_circles(&tune::render_svg(&r).unwrap());
    let mut many = r.clone();
    for _ in 0..20 {
        many.points.extend(r.points.iter().cloned());
    }
    let svg = tune::render_svg(&many).unwrap();
    assert!(once >= 1);
    // Every copy lands on its original's pixel: no circle added (the legend's one aside).
    assert_eq!(grey_circles(&svg), once);
    assert!(
        svg.contains(&format!("{} points", many.points.len())),
        "{svg}"
    );
}

#[test]
fn the_refitted_recommendation_compiles_and_passes_the_check() {
    let (train, req) = small();
    let r = run(&train, &req);
    let refit = tune::refit(&train, &req, r.recommended_point()).unwrap();
    assert_eq!(
        refit.plan.parameter_set,
        r.recommended_point().parameter_set
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tuned.model.json");
    refit.model.save(&path).unwrap();
    let model = sqnn::Model::load(&path).unwrap();
    assert_eq!(
        model.params(),
        &r.recommended_point().config.apply(&req.base)
    );
    let graph = lower_model(&model, "iris", req.rounding).unwrap();
    let an = analyze(graph).unwrap();
    assert!(an.report().ok);
    assert_eq!(an.report().pbs_count, refit.plan.pbs_count);
    let iris = Dataset::builtin("iris").unwrap();
    let test = iris.subset(&SplitSpec::Auto.split(&iris).unwrap().test);
    let s = tune::assess(&refit, &test, 2).unwrap();
    assert_eq!(s.rows, 38);
    assert!(s.clear_metric > 0.5, "{s:?}");
}

/// Linear candidates (no hidden layer): no bootstrap, a latency that is not zero, reads that
/// change nothing, and the width, noise and removal axes collapsed to one candidate each.
#[test]
fn linear_candidates_cost_no_bootstrap_and_lose_nothing_to_noise() {
    let (train, mut req) = small();
    req.space.n_layers = vec![1, 2];
    req.space.noise_aware = vec![None, Some(ParamSetId::ClassicMsg1Carry1)];
    req.space.remove_neurons = vec![None, Some(0.0)];
    // Per layer count: linear 2 (accumulators), 2 layers 2 × 2 × 2 × 2.
    assert_eq!(req.space.configs().len(), 2 + 16);
    req.space.n_layers = vec![1];
    // A linear model's wider bits: no table, so still no bootstrap.
    req.space.linear_bits = vec![(8, 8, 16)];
    let r = run(&train, &req);
    assert_eq!(r.space_size, 3);
    assert_eq!(r.evaluated.len(), 3);
    assert!(r
        .evaluated
        .iter()
        .any(|e| e.config.n_w_bits == 8 && e.config.n_accum_bits == 16));
    for p in &r.points {
        assert!(p.config.is_linear());
        assert_eq!(p.pbs_count, 0.0);
        assert!(p.latency_ms > 0.0, "{p:?}");
        assert_eq!((p.agreement, p.metric), (1.0, p.clear_metric), "{p:?}");
    }
    let refit = tune::refit(&train, &req, r.recommended_point()).unwrap();
    assert_eq!(refit.plan.pbs_count, 0);
    let iris = Dataset::builtin("iris").unwrap();
    let test = iris.subset(&SplitSpec::Auto.split(&iris).unwrap().test);
    let s = tune::assess(&refit, &test, 2).unwrap();
    assert_eq!((s.agreement, s.metric), (1.0, s.clear_metric), "{s:?}");
}

#[test]
fn folds_cover_the_training_rows_once_and_never_more() {
    let (train, _) = small();
    let folds = Folds {
        k: 5,
        used: 5,
        repeats: 2,
        seed: 3,
    };
    let parts = folds.parts(&train).unwrap();
    assert_eq!(parts.len(), 10);
    for rep in 0..2 {
        let mut seen = vec![0; train.n_samples()];
        for p in parts.iter().filter(|p| p.repeat == rep) {
            assert_eq!(p.train.len() + p.validation.len(), train.n_samples());
            p.validation.iter().for_each(|&i| seen[i] += 1);
            // Stratified: each class within one row of a fifth of its rows.
            let labels = train.labels().unwrap();
            for c in 0..3 {
                let all = labels.iter().filter(|&&l| l == c).count() as f64;
                let held = p.validation.iter().filter(|&&i| labels[i] == c).count() as f64;
                assert!(
                    (held - all / 5.0).abs() <= 1.0,
                    "class {c}: {held} of {all}"
                );
            }
        }
        assert!(seen.iter().all(|&n| n == 1));
    }
    assert_ne!(parts[0].validation, parts[5].validation);
    for bad in [
        Folds { k: 1, ..folds },
        Folds { used: 6, ..folds },
        Folds {
            repeats: 0,
            ..folds
        },
    ] {
        assert!(matches!(
            bad.parts(&train),
            Err(sqnn::Error::InvalidParameter { name: "folds", .. })
        ));
    }
}

/// `sqnn tune` on iris, as quick as it goes: 5 epochs, one fold, one cut, one noise seed, only
/// the recommended point refitted.
fn quick_tune() -> Command {
    quick_tune_on("iris".as_ref())
}

/// [`quick_tune`] on `data` (a built-in name or a CSV path).
fn quick_tune_on(data: &std::ffi::OsStr) -> Command {
    let mut c = sqnn();
    c.args(["tune", "--data"])
        .arg(data)
        .args(["--epochs", "5", "--folds", "1"])
        .args(["--repeats", "1", "--noise-seeds", "1"])
        .args(["--refit", "recommended"]);
    c
}

fn sqnn() -> Command {
    Command::cargo_bin("sqnn").unwrap()
}

/// Runs `cmd`, expects success (else shows its stderr), and returns its standard output.
fn succeeded(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn sqnn_tune_writes_a_model_that_compiles_and_a_picture() {
    let dir = tempfile::tempdir().unwrap();
    let (model, svg) = (dir.path().join("m.json"), dir.path().join("front.svg"));
    let text = succeeded(
        sqnn()
            .args([
                "tune",
                "--data",
                "iris",
                "--max-candidates",
                "2",
                "--epochs",
                "10",
            ])
            .args([
                "--folds",
                "1",
                "--repeats",
                "1",
                "--noise-seeds",
                "1",
                "--json",
            ])
            .arg("--out")
            .arg(&model)
            .arg("--svg")
            .arg(&svg),
    );
    let v: Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
    assert_eq!(v["candidates"], 2);
    assert_eq!(v["metric"], "accuracy");
    let front = v["front"].as_array().unwrap();
    assert!(!front.is_empty());
    assert_eq!(front.iter().filter(|p| p["recommended"] == true).count(), 1);
    assert!(front.iter().all(|p| p["refit"]["test"]["rows"] == 38));
    assert!(std::fs::read_to_string(&svg).unwrap().contains("<svg"));
    let circuit = dir.path().join("c.json");
    let c = sqnn()
        .args(["compile"])
        .arg(&model)
        .arg("--out")
        .arg(&circuit)
        .output()
        .unwrap();
    assert!(c.status.success(), "{}", String::from_utf8_lossy(&c.stdout));
}

#[test]
fn sqnn_tune_refuses_bad_flags_with_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no/such/dir/m.json");
    let cases: Vec<(Vec<String>, &str)> = vec![
        (vec!["--tolerance".into(), "1.5".into()], "tolerance"),
        (vec!["--folds".into(), "9".into()], "folds"),
        (vec!["--repeats".into(), "0".into()], "folds"),
        (vec!["--noise-seeds".into(), "0".into()], "noise_seeds"),
        (
            vec!["--max-candidates".into(), "0".into()],
            "max_candidates",
        ),
        (vec!["--parameters".into(), "NOPE".into()], "NOPE"),
        (vec!["--budget".into(), "NaN".into()], "budget"),
        (vec!["--epochs".into(), "0".into()], "epochs"),
        (
            vec!["--out".into(), missing.display().to_string()],
            "no/such/dir",
        ),
        (vec!["--refit".into(), "all".into()], "--refit"),
        (vec!["--bits".into(), "3x3".into()], "3x3"),
        (vec!["--noise-aware".into(), "off,NOPE".into()], "NOPE"),
        (vec!["--remove-neurons".into(), "maybe".into()], "maybe"),
        (
            vec!["--remove-neurons".into(), "1.5".into()],
            "remove_neurons",
        ),
        (vec!["--n-layers".into(), "0".into()], "n_layers"),
        (
            vec!["--n-hidden-neurons-multiplier".into(), "0".into()],
            "multiplier",
        ),
        (vec!["--pruning".into(), "magic".into()], "magic"),
        (vec!["--weight-decay=-1".into()], "weight_decay"),
        (vec!["--tolerance-se=-1".into()], "tolerance_se"),
        (vec!["--activation".into(), "sine".into()], "sine"),
        (vec!["--linear-bits".into(), "8/8".into()], "8/8"),
        (vec!["--linear-bits".into(), "9/8/20".into()], "n_w_bits"),
        (
            vec![
                "--n-input-bits".into(),
                "4".into(),
                "--bits".into(),
                "3/3".into(),
            ],
            "n_input_bits",
        ),
    ];
    for (extra, needle) in cases {
        let out = sqnn()
            .args(["tune", "--data", "iris"])
            .args(&extra)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{extra:?}: {err}");
        assert!(err.contains(needle), "{extra:?}: {err}");
        assert!(!err.contains("panicked"), "{extra:?}: {err}");
    }
    let out = sqnn()
        .args(["tune", "--data", "nosuchset"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn sqnn_tune_searches_the_space_its_flags_give() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("m.json");
    let text = succeeded(
        quick_tune()
            .args(["--n-layers", "2", "--n-hidden-neurons-multiplier", "2,1,2"])
            .args([
                "--bits",
                "3/3",
                "--n-accum-bits",
                "9",
                "--pruning",
                "per-neuron",
            ])
            .args(["--noise-aware", "off", "--remove-neurons", "off,0.01"])
            .args([
                "--parameters",
                "V1_8_PARAM_MESSAGE_2_CARRY_2_KS_PBS_TUNIFORM_2M128",
            ])
            .args(["--activation", "gelu", "--weight-decay", "0.3"])
            .args(["--input-scaling", "unit-range", "--n-input-bits", "2"])
            .arg("--out")
            .arg(&model)
            .arg("--json"),
    );
    let v: Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
    // Widths 1 and 2 (the repeated 2 counts once) × removal off and on.
    assert_eq!(v["space_size"], 4, "{v}");
    assert_eq!(v["candidates"], 4, "{v}");
    for e in v["report"]["evaluated"].as_array().unwrap() {
        let c = &e["config"];
        assert_eq!(c["n_layers"], 2, "{c}");
        assert!([1.0, 2.0].contains(&c["n_hidden_neurons_multiplier"].as_f64().unwrap()));
        assert_eq!(
            (c["n_w_bits"].clone(), c["n_accum_bits"].clone()),
            (3.into(), 9.into())
        );
        assert_eq!(c["pruning"], "per_neuron", "{c}");
        assert!(c["noise_aware"].is_null(), "{c}");
    }
    // The base training flags reach every candidate, and so the written model.
    let m: Value = serde_json::from_str(&std::fs::read_to_string(&model).unwrap()).unwrap();
    assert_eq!(m["params"]["activation_function"], "gelu", "{m}");
    assert_eq!(m["params"]["weight_decay"], 0.3, "{m}");
    assert_eq!(m["params"]["input_scaling"], "unit_range", "{m}");
    assert_eq!(m["params"]["n_input_bits"], 2, "{m}");
    // The printed `sqnn train` flags train the same model.
    let flags = v["train_flags"].as_str().unwrap();
    for f in [
        "--activation gelu",
        "--weight-decay 0.3",
        "--input-scaling unit-range",
        "--n-input-bits 2",
    ] {
        assert!(flags.contains(f), "{flags}");
    }
}

#[test]
fn sqnn_tune_gives_linear_candidates_the_wider_bits_its_flag_names() {
    let space_of = |linear_bits: &str| {
        let text = succeeded(
            quick_tune()
                .args(["--n-layers", "1", "--bits", "3/3", "--n-accum-bits", "10"])
                .args(["--pruning", "per-neuron", "--linear-bits", linear_bits])
                .args([
                    "--parameters",
                    "V1_8_PARAM_MESSAGE_2_CARRY_2_KS_PBS_TUNIFORM_2M128",
                ])
                .arg("--json"),
        );
        let v: Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
        let bits: Vec<(u64, u64)> = v["report"]["evaluated"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                let c = &e["config"];
                assert_eq!(c["n_layers"], 1, "{c}");
                (
                    c["n_w_bits"].as_u64().unwrap(),
                    c["n_accum_bits"].as_u64().unwrap(),
                )
            })
            .collect();
        (v["space_size"].as_u64().unwrap(), bits)
    };
    let (size, bits) = space_of("8/8/16");
    assert_eq!(size, 2);
    assert!(
        bits.contains(&(8, 16)) && bits.contains(&(3, 10)),
        "{bits:?}"
    );
    assert_eq!(space_of("off"), (1, vec![(3, 10)]));
}

/// The printed `train it:` command trains what `tune` judged: the same target, task and split,
/// and it names `--out` (which `train` requires). It left them out: on a CSV whose target is
/// not the last column, it trained on another column.
#[test]
fn sqnn_tune_prints_a_train_command_that_runs_on_the_same_rows() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("label first.csv");
    let mut text = String::from("label,a,b,c\n");
    for i in 0..80u32 {
        let (a, b) = (f64::from(i % 7), f64::from(i % 5));
        let c = f64::from(i) * 0.37 + 0.1;
        text += &format!("{},{a},{b},{c}\n", u32::from(a + b > 5.0));
    }
    std::fs::write(&data, text).unwrap();
    let text = succeeded(quick_tune_on(data.as_os_str()).args([
        "--target",
        "label",
        "--seed",
        "7",
        "--max-candidates",
        "1",
    ]));
    let line = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("train it: sqnn "))
        .unwrap_or_else(|| panic!("no train command in {text}"));
    assert!(
        line.contains(" --target label") && line.contains(" --seed 7"),
        "{line}"
    );
    let model = dir.path().join("m.json");
    let line = line.replace("MODEL.json", model.to_str().unwrap());
    let bin = assert_cmd::cargo::cargo_bin("sqnn");
    let run = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("'{}' {line} --json --quiet", bin.display()))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{line}: {err}");
    let last = String::from_utf8_lossy(&run.stdout);
    let v: Value = serde_json::from_str(last.lines().last().unwrap()).unwrap();
    assert!(
        v["test_accuracy"].is_number(),
        "trained on another target: {v}"
    );
}
