//! The command line as a new user runs it: train → compile → check → run, exit codes, JSON, and
//! clear errors for bad input.

mod common;

use assert_cmd::Command;
use serde_json::Value;
use std::path::{Path, PathBuf};

/// The binary, with a cache directory that holds no cost profile: a real user's profile never
/// changes what the tests see.
fn sqnn() -> Command {
    let mut c = Command::cargo_bin("sqnn").unwrap();
    c.env(
        "SQNN_CACHE_DIR",
        concat!(env!("CARGO_TARGET_TMPDIR"), "/no-cost-profile"),
    );
    c
}

fn last_json(out: &[u8]) -> Value {
    let text = String::from_utf8_lossy(out);
    let line = text.lines().last().expect("some output");
    serde_json::from_str(line).unwrap_or_else(|e| panic!("last line is not JSON ({e}): {line}"))
}

/// `sqnn run` flags for one iris test row under TFHE.
const ONE_ENCRYPTED_IRIS: [&str; 6] = ["--data", "iris", "--backend", "tfhe", "--samples", "1"];

fn circuits() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("circuits")
}

fn train(dir: &Path, name: &str, extra: &[&str]) -> (PathBuf, Value) {
    let model = dir.join(format!("{name}.model.json"));
    let v = json_of(
        sqnn()
            .args(["train", "--data", name, "--json", "--out"])
            .arg(&model)
            .args(extra),
    );
    (model, v)
}

/// `sqnn compile MODEL --out OUT`, which must succeed.
fn compile(model: &Path, out: &Path) {
    sqnn()
        .arg("compile")
        .arg(model)
        .arg("--out")
        .arg(out)
        .assert()
        .success();
}

/// `sqnn keygen CIRCUIT --out-dir DIR`, which must succeed.
fn keygen(circuit: &Path, dir: &Path) {
    sqnn()
        .arg("keygen")
        .arg(circuit)
        .arg("--out-dir")
        .arg(dir)
        .assert()
        .success();
}

/// The last line of a command's output, as JSON, once it succeeded (else its stderr).
fn json_of(cmd: &mut Command) -> Value {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    last_json(&out.stdout)
}

#[test]
fn train_compile_check_run_on_iris() {
    let dir = tempfile::tempdir().unwrap();
    let (model, j) = train(dir.path(), "iris", &[]);
    for key in [
        "test_accuracy",
        "n_params",
        "nonzero_weights",
        "max_active_neurons",
        "train_seconds",
    ] {
        assert!(j.get(key).is_some(), "train JSON lacks {key}: {j}");
    }
    assert!(j["test_accuracy"].as_f64().unwrap() >= 0.9, "{j}");
    let circuit = dir.path().join("iris.circuit.json");
    compile(&model, &circuit);
    let svg = dir.path().join("iris.svg");
    let out = sqnn()
        .arg("check")
        .arg(&circuit)
        .arg("--json")
        .arg("--svg")
        .arg(&svg)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    for key in [
        "ok",
        "n_accum_bits",
        "max_range_bits",
        "max_signed_bits",
        "pbs_count",
        "neurons_over_budget",
        "layers",
    ] {
        assert!(r.get(key).is_some(), "check JSON lacks {key}");
    }
    for key in ["fan_in_max", "range_bits_max", "signed_bits_max", "neurons"] {
        assert!(r["layers"][0].get(key).is_some(), "layer JSON lacks {key}");
    }
    assert!(std::fs::read_to_string(&svg).unwrap().starts_with("<svg"));
    let out = sqnn()
        .arg("run")
        .arg(&circuit)
        .args(["--data", "iris", "--backend", "clear", "--json"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let run = last_json(&out.stdout);
    assert_eq!(
        run["accuracy"], j["test_accuracy"],
        "clear run equals the model's test accuracy"
    );
    assert!(run["samples"].as_u64().unwrap() > 30);
    assert!(run["latency_us_per_sample"].as_f64().unwrap() > 0.0);
}

#[test]
fn regression_reports_r2_and_mse() {
    let dir = tempfile::tempdir().unwrap();
    let (_, j) = train(dir.path(), "diabetes", &["--epochs", "30"]);
    assert!(
        j["test_r2"].as_f64().is_some() && j["test_mse"].as_f64().unwrap() > 0.0,
        "{j}"
    );
}

#[test]
fn same_seed_same_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a");
    let b = dir.path().join("b");
    std::fs::create_dir_all(&a).unwrap();
    std::fs::create_dir_all(&b).unwrap();
    let (ma, _) = train(&a, "breast_cancer", &["--epochs", "10"]);
    let (mb, _) = train(&b, "breast_cancer", &["--epochs", "10"]);
    assert_eq!(std::fs::read(ma).unwrap(), std::fs::read(mb).unwrap());
    let c = dir.path().join("c");
    std::fs::create_dir_all(&c).unwrap();
    let (mc, _) = train(
        &c,
        "breast_cancer",
        &["--epochs", "10", "--train-seed", "7"],
    );
    assert_ne!(
        std::fs::read(&mc).unwrap(),
        std::fs::read(a.join("breast_cancer.model.json")).unwrap()
    );
}

#[test]
fn a_failing_check_exits_1_with_a_full_report() {
    let failing = circuits().join("mnist-layer-global.circuit.json");
    let out = sqnn().arg("check").arg(&failing).output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("FAIL") && text.contains("exceed the budget"),
        "{text}"
    );
    let out = sqnn()
        .arg("check")
        .arg(&failing)
        .arg("--json")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["ok"], false);
    assert!(!r["neurons_over_budget"].as_array().unwrap().is_empty());
}

#[test]
fn broken_input_exits_2_with_a_message_that_names_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    // A truncated circuit.
    let text = std::fs::read_to_string(circuits().join("iris.circuit.json")).unwrap();
    let bad = dir.path().join("bad.circuit.json");
    std::fs::write(&bad, &text[..text.len() / 3]).unwrap();
    let out = sqnn().arg("check").arg(&bad).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("truncated"));
    // A ragged CSV.
    let csv = dir.path().join("bad.csv");
    std::fs::write(&csv, "a,b,y\n1,2,0\n3,1\n5,6,1\n").unwrap();
    let out = sqnn()
        .args(["train", "--data"])
        .arg(&csv)
        .arg("--out")
        .arg(dir.path().join("m"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("line 3"), "{err}");
    // Impossible bit widths.
    let out = sqnn()
        .args(["train", "--data", "iris", "--n-w-bits", "0", "--out"])
        .arg(dir.path().join("m"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("n_w_bits"));
    // A circuit run on data with the wrong feature count.
    let out = sqnn()
        .arg("run")
        .arg(circuits().join("iris.circuit.json"))
        .args(["--data", "breast_cancer"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("expects 4"));
}

/// Golden reports: the committed circuits' reports are what `sqnn check` prints. To update after
/// a deliberate change: `UPDATE_GOLDEN=1 cargo test --release --test cli golden`.
#[test]
fn golden_reports_match() {
    let mut n = 0;
    for e in std::fs::read_dir(circuits()).unwrap().flatten() {
        let p = e.path();
        let Some(stem) = p
            .file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .strip_suffix(".circuit.json")
        else {
            continue;
        };
        // The report's TFHE plan is for the built-in figures' cores, whatever the machine's
        // (and whatever RAYON_NUM_THREADS says).
        let out = sqnn().arg("check").arg(&p).output().unwrap();
        let golden = circuits().join(format!("{stem}.report.txt"));
        let text = String::from_utf8(out.stdout).unwrap();
        if std::env::var_os("UPDATE_GOLDEN").is_some() {
            std::fs::write(&golden, &text).unwrap();
        }
        let want = std::fs::read_to_string(&golden)
            .unwrap_or_else(|_| panic!("missing {}", golden.display()));
        assert_eq!(
            text,
            want,
            "{stem}: report differs from {}",
            golden.display()
        );
        n += 1;
    }
    assert!(n >= 5, "expected the committed circuits, found {n}");
}

#[test]
fn noise_aware_training_names_its_set() {
    let dir = tempfile::tempdir().unwrap();
    let quick = ["--epochs", "20", "--noise-aware"];
    let (_, auto) = train(dir.path(), "iris", &[&quick[..], &["auto"]].concat());
    // The set the planner takes by latency alone for iris: the 2-bit set.
    let two_bit = "V1_8_PARAM_MESSAGE_1_CARRY_1_KS_PBS_TUNIFORM_2M128";
    assert_eq!(auto["noise_aware"], two_bit, "{auto}");
    let (_, named) = train(dir.path(), "iris", &[&quick[..], &[two_bit]].concat());
    assert_eq!(named["noise_aware"], two_bit);
    // `auto` is the default; `off` trains without noise.
    let (_, default) = train(dir.path(), "iris", &["--epochs", "20"]);
    assert_eq!(default["noise_aware"], two_bit, "{default}");
    let (_, plain) = train(
        dir.path(),
        "iris",
        &["--epochs", "20", "--noise-aware", "off"],
    );
    assert!(plain["noise_aware"].is_null());
    // The concrete-ml preset, and a network without hidden layer, train without noise.
    let (_, cml) = train(
        dir.path(),
        "iris",
        &["--epochs", "20", "--preset", "concrete-ml"],
    );
    assert!(cml["noise_aware"].is_null());
    let (_, linear) = train(dir.path(), "iris", &["--epochs", "20", "--n-layers", "1"]);
    assert!(linear["noise_aware"].is_null());
    let os = |s: &str| std::ffi::OsString::from(s);
    let out = dir.path().join("x.json");
    let err = fails_with_2(&[
        &os("train"),
        &os("--data"),
        &os("iris"),
        &os("--out"),
        out.as_os_str(),
        &os("--noise-aware"),
        &os("4-bit"),
    ]);
    assert!(err.contains("\"4-bit\" is not a parameter set"), "{err}");
    assert!(err.contains("--noise-aware SET|auto"), "{err}");
    let err = fails_with_2(&[
        &os("train"),
        &os("--data"),
        &os("iris"),
        &os("--out"),
        out.as_os_str(),
        &os("--noise-scale"),
        &os("2"),
        &os("--noise-aware"),
        &os("off"),
    ]);
    assert!(err.contains("give --noise-aware"), "{err}");
    assert!(!out.exists());
}

/// The shares of outputs equal to the clear backend's, under their clear names and (the same
/// values) their former ones; bit-identical outputs are at most the same predictions. The
/// shares as `(outputs, predictions)`.
fn assert_agreement_keys(v: &Value) -> (f64, f64) {
    let share = |key: &str| {
        let s = v[key].as_f64().unwrap_or_else(|| panic!("no {key}: {v}"));
        assert!((0.0..=1.0).contains(&s), "{key} {s}");
        s
    };
    let outputs = share("identical_outputs_share");
    let predictions = share("identical_predictions_share");
    assert_eq!(
        share("agreement_with_clear"),
        outputs,
        "the deprecated alias"
    );
    assert_eq!(share("same_prediction_as_clear"), predictions);
    assert!(outputs <= predictions, "{v}");
    (outputs, predictions)
}

/// Runs `sqnn args...`, expects exit code 2, and returns its stderr.
fn fails_with_2(args: &[&std::ffi::OsStr]) -> String {
    let out = sqnn().args(args).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(2), "{err}");
    err
}

/// The library's errors name its own parameters; the binary adds the flag or command that fixes
/// them as `hint:` lines.
#[test]
fn errors_name_the_library_fix_and_the_binary_adds_the_flag() {
    let os = |s: &str| std::ffi::OsString::from(s);
    let iris = circuits().join("iris.circuit.json");
    // A circuit too wide for exact reads.
    let err = fails_with_2(&[
        &os("run"),
        iris.as_os_str(),
        &os("--data"),
        &os("iris"),
        &os("--backend"),
        &os("simulate"),
        &os("--mode"),
        &os("exact"),
        &os("--samples"),
        &os("1"),
    ]);
    assert!(
        err.contains("retrain with `n_accum_bits` 6 or less"),
        "{err}"
    );
    assert!(err.contains("lower with `max_table_bits` 4"), "{err}");
    assert!(err.contains("hint: on the command line"), "{err}");
    assert!(err.contains("is --n-accum-bits"), "{err}");
    assert!(err.contains("is --max-table-bits"), "{err}");
    // An impossible failure target.
    let err = fails_with_2(&[
        &os("run"),
        iris.as_os_str(),
        &os("--data"),
        &os("iris"),
        &os("--backend"),
        &os("simulate"),
        &os("--p-error"),
        &os("5"),
    ]);
    assert!(err.contains("`p_error`"), "{err}");
    assert!(
        err.contains("hint: on the command line, `p_error` is --p-error"),
        "{err}"
    );
    // A CSV without the named target column.
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("t.csv");
    std::fs::write(&csv, "a,b,c\n1,2,0\n3,4,1\n").unwrap();
    let model = dir.path().join("m.json");
    let err = fails_with_2(&[
        &os("train"),
        &os("--data"),
        csv.as_os_str(),
        &os("--target"),
        &os("label"),
        &os("--out"),
        model.as_os_str(),
    ]);
    assert!(err.contains("no column named `label`"), "{err}");
    assert!(err.contains("name one of them as the `target`"), "{err}");
    assert!(err.contains("`target` is --target"), "{err}");
    // A tampered circuit file.
    let text = std::fs::read_to_string(&iris).unwrap();
    let at = text.find("\"sha256\"").unwrap() + "\"sha256\": \"".len();
    let mut tampered = text.clone();
    let flip = if &text[at..=at] == "0" { "1" } else { "0" };
    tampered.replace_range(at..=at, flip);
    let bad = dir.path().join("bad.circuit.json");
    std::fs::write(&bad, tampered).unwrap();
    let err = fails_with_2(&[&os("check"), bad.as_os_str()]);
    assert!(
        err.contains("recompile the model into a fresh circuit"),
        "{err}"
    );
    assert!(
        err.contains("hint: `sqnn compile MODEL --out FILE`"),
        "{err}"
    );
}

/// Keys generated for one circuit are refused for another: the library says so, the binary names
/// `sqnn keygen`.
#[test]
fn keys_for_another_circuit_name_keygen() {
    let dir = tempfile::tempdir().unwrap();
    let (model, _) = train(dir.path(), "iris", &["--epochs", "2"]);
    let other = dir.path().join("other.circuit.json");
    compile(&model, &other);
    let keys = dir.path().join("keys");
    keygen(&other, &keys);
    // The manifest records the mode, and a run with these keys reports it.
    let manifest: Value =
        serde_json::from_str(&std::fs::read_to_string(keys.join("keys.json")).unwrap()).unwrap();
    assert_eq!(manifest["mode"], "approximate", "{manifest}");
    // One encrypted iris sample of `other`, as JSON.
    let run_json = |extra: &[&std::ffi::OsStr]| {
        json_of(
            sqnn()
                .arg("run")
                .arg(&other)
                .args(ONE_ENCRYPTED_IRIS)
                .arg("--json")
                .args(extra),
        )
    };
    let v = run_json(&["--keys".as_ref(), keys.as_os_str()]);
    assert_eq!(v["mode"], "approximate");
    // Loaded keys carry no plan: no prediction to compare with.
    assert!(v["predicted_latency_ms_per_sample"].is_null(), "{v}");
    // Fresh keys come from a plan, whose predicted latency the run reports beside its own.
    let v = run_json(&[]);
    let predicted = v["predicted_latency_ms_per_sample"].as_f64().unwrap();
    assert!(predicted > 0.0, "{v}");
    assert_agreement_keys(&v);
    let out = sqnn()
        .arg("run")
        .arg(circuits().join("iris.circuit.json"))
        .args(ONE_ENCRYPTED_IRIS)
        .arg("--keys")
        .arg(&keys)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("belongs to circuit"), "{err}");
    assert!(err.contains("generate keys for this circuit"), "{err}");
    assert!(
        err.contains("hint: `sqnn keygen CIRCUIT --out-dir DIR`"),
        "{err}"
    );
}

/// Plans use the built-in figures' cores, never the running machine's: the report is the same
/// whatever RAYON_NUM_THREADS says.
#[test]
fn reports_do_not_depend_on_the_thread_count() {
    let iris = circuits().join("iris.circuit.json");
    let report = |threads: &str| {
        let out = sqnn()
            .env("RAYON_NUM_THREADS", threads)
            .arg("check")
            .arg(&iris)
            .output()
            .unwrap();
        assert!(out.status.success());
        String::from_utf8(out.stdout).unwrap()
    };
    let one = report("1");
    assert_eq!(one, report("16"));
    assert!(one.contains("costs        built-in figures of "), "{one}");
}

/// `sqnn calibrate` writes a profile that the next plan uses and names; a damaged profile, or
/// one from another sqnn version, is set aside with a note, and the plan says it used the
/// built-in figures.
#[test]
fn calibrate_writes_the_profile_that_plans_use() {
    let dir = tempfile::tempdir().unwrap();
    let check = || {
        let out = sqnn()
            .env("SQNN_CACHE_DIR", dir.path())
            .arg("check")
            .arg(circuits().join("iris.circuit.json"))
            .output()
            .unwrap();
        assert!(out.status.success());
        (
            String::from_utf8(out.stdout).unwrap(),
            String::from_utf8(out.stderr).unwrap(),
        )
    };
    let set = "V1_8_PARAM_MESSAGE_1_CARRY_1_KS_PBS_TUNIFORM_2M128";
    let out = sqnn()
        .env("SQNN_CACHE_DIR", dir.path())
        .args([
            "calibrate",
            "--bootstraps",
            "1",
            "--json",
            "--parameters",
            set,
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let j = last_json(&out.stdout);
    assert!(j["cores"].as_u64().unwrap() >= 1, "{j}");
    assert!(
        j["sets"][set]["pbs_ms_alone"].as_f64().unwrap() > 0.0,
        "{j}"
    );
    let path = dir.path().join("cost-profile.json");
    let profile = sqnn::fhe::CostProfile::load(&path).unwrap();
    assert_eq!(profile.sets.len(), 1);
    let (text, _) = check();
    let date = &profile.date;
    assert!(
        text.contains(&format!("costs        this machine's profile of {date}")),
        "{text}"
    );
    // From another version: a note, and the built-in figures.
    let mut other = profile.clone();
    other.sqnn_version = "0.0.1".into();
    std::fs::write(&path, other.to_json().unwrap()).unwrap();
    let (text, err) = check();
    assert!(text.contains("costs        built-in figures of "), "{text}");
    assert!(
        err.contains("note:") && err.contains("sqnn 0.0.1") && err.contains("sqnn calibrate"),
        "{err}"
    );
    // Damaged.
    std::fs::write(&path, "{\"format\": \"sqnn-cost-profile\", \"vers").unwrap();
    let (text, err) = check();
    assert!(text.contains("costs        built-in figures of "), "{text}");
    assert!(err.contains("not a readable cost profile"), "{err}");
}

/// `compile` records the plan; `check`, `run` and `keygen` use it unless a flag asks for a new
/// choice (and then say so); a circuit of format version 1 (no plan) is planned when it runs,
/// with a note.
#[test]
fn the_recorded_plan_is_used_unless_flags_ask_otherwise() {
    let iris = circuits().join("iris.circuit.json");
    let graph = sqnn::ir::IntGraph::load(&iris).unwrap();
    let record = graph
        .plan
        .clone()
        .expect("the committed circuit records its plan");
    let simulate = |circuit: &Path, extra: &[&str]| {
        let out = sqnn()
            .arg("run")
            .arg(circuit)
            .args(["--data", "iris", "--backend", "simulate", "--json"])
            .args(extra)
            .output()
            .unwrap();
        assert!(out.status.success());
        (
            last_json(&out.stdout),
            String::from_utf8(out.stderr).unwrap(),
        )
    };
    let (j, err) = simulate(&iris, &[]);
    assert_eq!(j["parameters"], record.parameter_set.as_str());
    assert!(err.is_empty(), "{err}");
    let check = sqnn().arg("check").arg(&iris).output().unwrap();
    let text = String::from_utf8(check.stdout).unwrap();
    assert!(
        text.contains("recorded     the plan chosen at compile time"),
        "{text}"
    );
    // A flag of the choice: a new plan, said on standard error.
    let (j, err) = simulate(&iris, &["--tolerance", "0.5"]);
    assert!(
        err.contains("planning anew because of --tolerance"),
        "{err}"
    );
    assert!(j["parameters"].is_string());
    // Version 1, no plan: planned now, with a note.
    let dir = tempfile::tempdir().unwrap();
    let old = dir.path().join("old.circuit.json");
    let v1 = sqnn::ir::IntGraph {
        plan: None,
        ..graph
    }
    .to_json()
    .unwrap()
    .replace("\"version\": 2", "\"version\": 1");
    std::fs::write(&old, v1).unwrap();
    let (j, err) = simulate(&old, &[]);
    assert!(err.contains("records no plan"), "{err}");
    assert_eq!(j["parameters"], record.parameter_set.as_str());
    // compile records the plan it prints.
    let (model, _) = train(dir.path(), "iris", &[]);
    let fresh = dir.path().join("fresh.circuit.json");
    compile(&model, &fresh);
    let g = sqnn::ir::IntGraph::load(&fresh).unwrap();
    let r = g.plan.expect("compile records a plan");
    assert!(
        r.chosen_by.contains("training split of iris"),
        "{}",
        r.chosen_by
    );
}

#[test]
fn calibration_seeds_set_how_many_noise_seeds_the_choice_simulates() {
    let dir = tempfile::tempdir().unwrap();
    let (model, _) = train(dir.path(), "iris", &[]);
    let circuit = dir.path().join("c.circuit.json");
    sqnn()
        .arg("compile")
        .arg(&model)
        .arg("--out")
        .arg(&circuit)
        .args(["--calibration-seeds", "40"])
        .assert()
        .success();
    let r = sqnn::ir::IntGraph::load(&circuit)
        .unwrap()
        .plan
        .expect("compile records a plan");
    assert!(r.chosen_by.contains("× 40 noise seeds"), "{}", r.chosen_by);
    // A flag of the choice: run plans anew and says why.
    let out = sqnn()
        .arg("run")
        .arg(&circuit)
        .args(["--data", "iris", "--backend", "simulate"])
        .args(["--calibration-seeds", "8"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains("planning anew because of --calibration-seeds"),
        "{err}"
    );
    // No seed is no estimate: refused before anything is written.
    let refused = dir.path().join("refused.circuit.json");
    let out = sqnn()
        .arg("compile")
        .arg(&model)
        .arg("--out")
        .arg(&refused)
        .args(["--calibration-seeds", "0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--calibration-seeds"));
    assert!(!refused.exists());
}

#[test]
fn run_rows_predicts_new_samples_in_clear_by_column_name() {
    use sqnn::execute::ClearBackend;
    let dir = tempfile::tempdir().unwrap();
    let circuit = circuits().join("iris.circuit.json");
    let graph = sqnn::ir::IntGraph::load(&circuit).unwrap();
    let ds = sqnn::Dataset::builtin("iris").unwrap();
    let rows: Vec<usize> = (0..150).step_by(13).collect();
    let test = ds.subset(&rows);
    // The columns reversed, no target.
    let mut text = ds
        .feature_names
        .iter()
        .rev()
        .cloned()
        .collect::<Vec<_>>()
        .join(",")
        + "\n";
    for r in test.x.rows() {
        let cells: Vec<String> = r.iter().rev().map(|v| v.to_string()).collect();
        text += &(cells.join(",") + "\n");
    }
    let (csv, out) = (dir.path().join("new.csv"), dir.path().join("p.csv"));
    std::fs::write(&csv, text).unwrap();
    let v = json_of(
        sqnn()
            .arg("run")
            .arg(&circuit)
            .arg("--rows")
            .arg(&csv)
            .arg("--out")
            .arg(&out)
            .arg("--json"),
    );
    let checked = sqnn::analyze(graph.clone()).unwrap();
    let want = ClearBackend::default()
        .evaluate(&checked, &graph.quantize_inputs(&test.x).unwrap())
        .unwrap();
    let got: Vec<Vec<i64>> = serde_json::from_value(v["outputs"].clone()).unwrap();
    assert_eq!(got, want, "columns matched by name");
    assert!(v.get("accuracy").is_none(), "no target, no score: {v}");
    let labels: Vec<String> = want
        .iter()
        .map(|o| graph.prediction_label(graph.predict(o)))
        .collect();
    assert_eq!(v["labels"], serde_json::json!(labels));
    let written = std::fs::read_to_string(&out).unwrap();
    assert_eq!(written.lines().count(), rows.len() + 1);
    assert_eq!(
        written.lines().nth(1),
        Some(format!("0,{}", labels[0]).as_str())
    );
    // --out is for --rows: said, with exit 2.
    let err = fails_with_2(&[
        "run".as_ref(),
        circuit.as_os_str(),
        "--data".as_ref(),
        "iris".as_ref(),
        "--out".as_ref(),
        "Y".as_ref(),
    ]);
    assert!(err.contains("--rows"), "{err}");
}

/// `n` rows of a built-in data set (from its first) as a CSV file of new samples, the columns
/// reversed, with the target column (labels or values) named `target`; and the rows quantized
/// for `graph`.
#[cfg(feature = "tfhe-backend")]
fn new_rows(path: &Path, data: &str, n: usize, graph: &sqnn::ir::IntGraph) -> Vec<Vec<i64>> {
    let ds = sqnn::Dataset::builtin(data).unwrap();
    let ds = ds.subset(&(0..n).collect::<Vec<_>>());
    common::write_rows_csv(path, &ds, Some("target"));
    graph.quantize_inputs(&ds.x).unwrap()
}

/// `run --rows FILE --backend tfhe` was refused (only a served circuit predicted new samples
/// under encryption). A local user who holds the keys now encrypts the rows, evaluates,
/// decrypts and gets the predictions as in clear (the same `--out` file), with how many equal
/// the clear ones: with the keys of `--keys`, or fresh keys for the recorded plan.
#[cfg(feature = "tfhe-backend")]
#[test]
fn run_rows_encrypts_new_samples_with_the_users_keys() {
    use sqnn::execute::ClearBackend;
    let dir = tempfile::tempdir().unwrap();
    // A linear circuit (no table, no bootstrap: cheap keys), its keys on disk.
    let model = dir.path().join("linear.model.json");
    sqnn()
        .args([
            "train",
            "--data",
            "diabetes",
            "--n-layers",
            "1",
            "--epochs",
            "3",
        ])
        .arg("--quiet")
        .arg("--out")
        .arg(&model)
        .assert()
        .success();
    let linear = dir.path().join("linear.circuit.json");
    compile(&model, &linear);
    let keys = dir.path().join("keys");
    keygen(&linear, &keys);
    let graph = sqnn::ir::IntGraph::load(&linear).unwrap();
    let csv = dir.path().join("new.csv");
    let inputs = new_rows(&csv, "diabetes", 3, &graph);
    let an = sqnn::analyze(graph.clone()).unwrap();
    let clear = ClearBackend::default().evaluate(&an, &inputs).unwrap();
    let (enc_out, clear_out) = (dir.path().join("enc.csv"), dir.path().join("clear.csv"));
    let rows = |backend: &str, out: &Path| {
        let mut cmd = sqnn();
        cmd.arg("run")
            .arg(&linear)
            .arg("--rows")
            .arg(&csv)
            .args(["--backend", backend, "--out"])
            .arg(out);
        cmd
    };
    let v = json_of(
        rows("tfhe", &enc_out)
            .arg("--keys")
            .arg(&keys)
            .arg("--json"),
    );
    assert_eq!(v["backend"], "tfhe");
    let manifest: Value =
        serde_json::from_str(&std::fs::read_to_string(keys.join("keys.json")).unwrap()).unwrap();
    assert_eq!(v["parameters"], manifest["parameter_set"], "the keys' set");
    let got: Vec<Vec<i64>> = serde_json::from_value(v["outputs"].clone()).unwrap();
    assert_eq!(got, clear, "a linear circuit decrypts to the clear outputs");
    let shown: Vec<Vec<i64>> = serde_json::from_value(v["clear_outputs"].clone()).unwrap();
    assert_eq!(shown, clear);
    assert_eq!(assert_agreement_keys(&v), (1.0, 1.0));
    assert!(v["r2"].is_number(), "scored by the targets: {v}");
    // The predictions file is the clear run's, byte for byte.
    rows("clear", &clear_out).assert().success();
    assert_eq!(
        std::fs::read_to_string(&enc_out).unwrap(),
        std::fs::read_to_string(&clear_out).unwrap()
    );
    // The text says each prediction beside the clear one, and how many agree.
    let out = rows("tfhe", &enc_out)
        .arg("--keys")
        .arg(&keys)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("sample 2: predicted"), "{text}");
    assert!(
        text.contains("3/3 same prediction as clear, 3/3 bit-identical"),
        "{text}"
    );
    // The keys are never an output.
    let err = fails_with_2(&[
        "run".as_ref(),
        linear.as_os_str(),
        "--rows".as_ref(),
        csv.as_os_str(),
        "--backend".as_ref(),
        "tfhe".as_ref(),
        "--keys".as_ref(),
        keys.as_os_str(),
        "--out".as_ref(),
        keys.join("client.key").as_os_str(),
    ]);
    assert!(err.contains("also an input"), "{err}");
    // Iris, two rows, fresh keys for the recorded plan (approximate reads: the outputs may
    // differ from clear by a unit, so the shares are counted, not assumed).
    let iris = circuits().join("iris.circuit.json");
    let graph = sqnn::ir::IntGraph::load(&iris).unwrap();
    let inputs = new_rows(&csv, "iris", 2, &graph);
    let an = sqnn::analyze(graph.clone()).unwrap();
    let clear = ClearBackend::default().evaluate(&an, &inputs).unwrap();
    let v = json_of(
        sqnn()
            .arg("run")
            .arg(&iris)
            .arg("--rows")
            .arg(&csv)
            .args(["--backend", "tfhe", "--json", "--out"])
            .arg(&enc_out),
    );
    let record = graph.plan.as_ref().unwrap();
    assert_eq!(
        v["parameters"],
        record.parameter_set.as_str(),
        "the recorded plan"
    );
    assert!(
        v["predicted_latency_ms_per_sample"].as_f64().unwrap() > 0.0,
        "{v}"
    );
    let shown: Vec<Vec<i64>> = serde_json::from_value(v["clear_outputs"].clone()).unwrap();
    assert_eq!(shown, clear);
    let got: Vec<Vec<i64>> = serde_json::from_value(v["outputs"].clone()).unwrap();
    let (outputs, predictions) = assert_agreement_keys(&v);
    let identical = got.iter().zip(&clear).filter(|(e, c)| e == c).count();
    assert_eq!(outputs, identical as f64 / 2.0);
    let same = got
        .iter()
        .zip(&clear)
        .filter(|(e, c)| graph.predict(e) == graph.predict(c))
        .count();
    assert_eq!(predictions, same as f64 / 2.0);
    let labels: Vec<String> = got
        .iter()
        .map(|o| graph.prediction_label(graph.predict(o)))
        .collect();
    assert_eq!(v["labels"], serde_json::json!(labels));
    let written = std::fs::read_to_string(&enc_out).unwrap();
    let want: String = labels
        .iter()
        .enumerate()
        .map(|(i, l)| format!("{i},{l},setosa\n"))
        .collect();
    assert_eq!(written, format!("row,prediction,target\n{want}"));
}

/// `run --rows FILE --backend simulate`: the new samples with the misreads of the circuit's
/// recorded plan, seeded (the same seed, the same predictions), scored against the file's
/// targets and written with --out; simulating took `--data` before.
#[test]
fn run_rows_simulates_new_samples_with_the_recorded_plan() {
    use sqnn::execute::ClearBackend;
    let dir = tempfile::tempdir().unwrap();
    let circuit = circuits().join("iris.circuit.json");
    let graph = sqnn::ir::IntGraph::load(&circuit).unwrap();
    let record = graph
        .plan
        .clone()
        .expect("the committed circuit records its plan");
    let ds = sqnn::Dataset::builtin("iris").unwrap();
    let labels = ds.labels().unwrap();
    // Every iris row, with its species as the target.
    let mut text = ds.feature_names.join(",") + ",species\n";
    for (r, row) in ds.x.rows().into_iter().enumerate() {
        let cells: Vec<String> = row.iter().map(|v| v.to_string()).collect();
        let species = ["setosa", "versicolor", "virginica"][labels[r]];
        text += &format!("{},{species}\n", cells.join(","));
    }
    let csv = dir.path().join("new.csv");
    std::fs::write(&csv, text).unwrap();
    let out = dir.path().join("p.csv");
    let simulate = |seed: &str, out: Option<&Path>| {
        let mut cmd = sqnn();
        cmd.arg("run").arg(&circuit).arg("--rows").arg(&csv).args([
            "--backend",
            "simulate",
            "--noise-seed",
            seed,
            "--json",
        ]);
        if let Some(o) = out {
            cmd.arg("--out").arg(o);
        }
        json_of(&mut cmd)
    };
    let v = simulate("7", Some(&out));
    assert_eq!(v["backend"], "simulate");
    assert_eq!(v["parameters"], record.parameter_set.as_str());
    assert_eq!(v["samples"], 150);
    assert!(v["accuracy"].is_number(), "scored by the targets: {v}");
    // The outputs are the library's simulation of the recorded plan with that seed.
    let an = sqnn::analyze(graph.clone()).unwrap();
    let inputs = graph.quantize_inputs(&ds.x).unwrap();
    let facts = sqnn::fhe::PlanFacts::new(&an);
    let req = sqnn::fhe::PlanRequest::new(sqnn::fhe::FheMode::Approximate);
    let plan = sqnn::fhe::recorded_plan(&facts, &record, &req).unwrap();
    let sigma = sqnn::fhe::sigma_units_by_node(&plan, &graph);
    let (want, _) = ClearBackend::default()
        .simulate(&an, &inputs, &sigma, 7)
        .unwrap();
    let got: Vec<Vec<i64>> = serde_json::from_value(v["outputs"].clone()).unwrap();
    assert_eq!(got, want);
    let clear = ClearBackend::default().evaluate(&an, &inputs).unwrap();
    let shown: Vec<Vec<i64>> = serde_json::from_value(v["clear_outputs"].clone()).unwrap();
    assert_eq!(shown, clear);
    let (outputs, _) = assert_agreement_keys(&v);
    let identical = got.iter().zip(&clear).filter(|(s, c)| s == c).count();
    assert_eq!(outputs, identical as f64 / 150.0);
    // Deterministic: the same seed, the same run.
    let again = simulate("7", None);
    assert_eq!(again["outputs"], v["outputs"]);
    assert_eq!(again["predictions"], v["predictions"]);
    // The predictions file: a line per row and the header.
    let written = std::fs::read_to_string(&out).unwrap();
    assert_eq!(written.lines().count(), 151);
    assert_eq!(written.lines().next(), Some("row,prediction,target"));
    // The text output says which plan and seed, and compares with clear.
    let text = sqnn()
        .arg("run")
        .arg(&circuit)
        .arg("--rows")
        .arg(&csv)
        .args(["--backend", "simulate", "--noise-seed", "7"])
        .output()
        .unwrap();
    assert!(text.status.success());
    let text = String::from_utf8(text.stdout).unwrap();
    assert!(text.contains("noise seed 7"), "{text}");
    assert!(text.contains("bit-identical outputs"), "{text}");
}

/// `run --backend simulate --json` reports the shares of bit-identical outputs and of same
/// predictions under names that say which is which (`agreement_with_clear`, the outputs'
/// share, read like the predictions'; it stays, deprecated, with the same value).
#[test]
fn simulate_json_names_identical_outputs_and_predictions() {
    let v = json_of(
        sqnn()
            .arg("run")
            .arg(circuits().join("iris.circuit.json"))
            .args(["--data", "iris", "--backend", "simulate", "--json"]),
    );
    assert_agreement_keys(&v);
}
