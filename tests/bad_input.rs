//! Bad conditions a user meets, one test each: data that does not match the circuit, writes
//! that fail, outputs that would overwrite inputs, keys that do not belong together, closed
//! pipes, oversized files. Each command must either do the right thing or refuse with exit 2
//! and a message naming the problem, and never lose a file the user had.

use assert_cmd::Command;
use serde_json::Value;
use std::path::{Path, PathBuf};

use sqnn::data::Dataset;

mod common;

fn sqnn() -> Command {
    let mut c = Command::cargo_bin("sqnn").unwrap();
    c.env(
        "SQNN_CACHE_DIR",
        concat!(env!("CARGO_TARGET_TMPDIR"), "/no-cost-profile"),
    );
    c
}

/// Runs `cmd` and returns its standard error once it exited with 2 (a clear error); `what`
/// names the case in a failure.
fn refused(cmd: &mut Command, what: &str) -> String {
    let out = cmd.output().unwrap();
    let e = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(2), "{what}: {e}");
    e
}

/// Trains a quick iris model (2 epochs) into `out`.
fn quick_iris_model(out: &Path) {
    sqnn()
        .args([
            "train", "--data", "iris", "--epochs", "2", "--quiet", "--out",
        ])
        .arg(out)
        .assert()
        .success();
}

fn circuit(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("circuits")
        .join(format!("{name}.circuit.json"))
}

/// Iris as a CSV file: `order` picks and orders the feature columns, `label` names each class
/// index, `keep` filters rows by class index.
fn iris_csv(
    path: &Path,
    order: &[usize],
    label: impl Fn(usize) -> String,
    keep: impl Fn(usize) -> bool,
) {
    let ds = Dataset::builtin("iris").unwrap();
    let labels = ds.labels().unwrap();
    let mut text: Vec<String> = order.iter().map(|&j| ds.feature_names[j].clone()).collect();
    text.push("species".into());
    let mut out = text.join(",") + "\n";
    for (r, row) in ds.x.rows().into_iter().enumerate() {
        if !keep(labels[r]) {
            continue;
        }
        let mut cells: Vec<String> = order.iter().map(|&j| row[j].to_string()).collect();
        cells.push(label(labels[r]));
        out += &(cells.join(",") + "\n");
    }
    std::fs::write(path, out).unwrap();
}

fn class_name(k: usize) -> String {
    ["setosa", "versicolor", "virginica"][k].to_string()
}

/// `sqnn run` in clear on iris's committed circuit; the accuracy, or the failure's stderr.
fn run_accuracy(data: &Path, split: &Path) -> Result<f64, String> {
    let out = sqnn()
        .arg("run")
        .arg(circuit("iris"))
        .arg("--data")
        .arg(data)
        .arg("--split")
        .arg(split)
        .arg("--json")
        .output()
        .unwrap();
    if !out.status.success() {
        assert_eq!(out.status.code(), Some(2));
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let j: Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
    Ok(j["accuracy"].as_f64().unwrap())
}

fn split_file(dir: &Path, name: &str, train: &[usize], test: std::ops::Range<usize>) -> PathBuf {
    let p = dir.join(name);
    let test: Vec<usize> = test.collect();
    std::fs::write(
        &p,
        serde_json::json!({"train": train, "test": test}).to_string(),
    )
    .unwrap();
    p
}

#[test]
fn columns_in_another_order_are_matched_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let split = split_file(dir.path(), "s.json", &[0], 1..150);
    let (straight, reversed) = (dir.path().join("iris.csv"), dir.path().join("rev.csv"));
    iris_csv(&straight, &[0, 1, 2, 3], class_name, |_| true);
    iris_csv(&reversed, &[3, 2, 1, 0], class_name, |_| true);
    let a = run_accuracy(&straight, &split).unwrap();
    assert!(a > 0.9, "{a}");
    assert_eq!(run_accuracy(&reversed, &split).unwrap(), a);
}

#[test]
fn renamed_labels_are_refused_naming_them() {
    let dir = tempfile::tempdir().unwrap();
    let split = split_file(dir.path(), "s.json", &[0], 1..150);
    let data = dir.path().join("renamed.csv");
    iris_csv(&data, &[0, 1, 2, 3], |k| format!("class{k}"), |_| true);
    let e = run_accuracy(&data, &split).unwrap_err();
    assert!(e.contains("`class0`") && e.contains("`setosa`"), "{e}");
}

#[test]
fn data_without_the_first_class_is_scored_by_label_value() {
    let dir = tempfile::tempdir().unwrap();
    let (full, partial) = (dir.path().join("iris.csv"), dir.path().join("no0.csv"));
    iris_csv(&full, &[0, 1, 2, 3], class_name, |_| true);
    iris_csv(&partial, &[0, 1, 2, 3], class_name, |k| k != 0);
    // The same 99 versicolor and virginica rows in both files.
    let on_full = run_accuracy(&full, &split_file(dir.path(), "a.json", &[50], 51..150)).unwrap();
    let on_partial =
        run_accuracy(&partial, &split_file(dir.path(), "b.json", &[0], 1..100)).unwrap();
    assert!(on_full > 0.9, "{on_full}");
    assert_eq!(on_partial, on_full);
}

#[test]
fn columns_the_circuit_does_not_know_are_refused_naming_them() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("other.csv");
    std::fs::write(
        &data,
        "a,b,c,d,species\n1,2,3,4,setosa\n1,2,3,4,virginica\n",
    )
    .unwrap();
    for cmd in [&["run"][..], &["check"]] {
        let mut c = sqnn();
        c.args(cmd).arg(circuit("iris"));
        if cmd[0] == "run" {
            c.arg("--data").arg(&data);
        } else {
            c.arg("--calibrate").arg(&data);
        }
        let e = refused(c.args(["--split", "seeded"]), &format!("{cmd:?}"));
        assert!(
            e.contains("lacks `sepal length (cm)`") && e.contains("`a`"),
            "{e}"
        );
    }
    // The model's features and no target: said so, not "it lacks `petal width (cm)`" (the
    // last column, taken as the target).
    let ds = Dataset::builtin("iris").unwrap();
    std::fs::write(&data, ds.feature_names.join(",") + "\n1,2,3,4\n5,6,7,8\n").unwrap();
    let e = refused(
        sqnn()
            .arg("run")
            .arg(circuit("iris"))
            .arg("--data")
            .arg(&data),
        "",
    );
    assert!(
        e.contains("no target column") && e.contains("--rows"),
        "{e}"
    );
}

#[test]
fn a_closed_pipe_ends_quietly_with_the_commands_exit_code() {
    use std::io::BufRead;
    // A circuit of 400 neurons, whose report is larger than a pipe's buffer (64 KiB on Linux by
    // default): the reader leaves after one line.
    let dir = tempfile::tempdir().unwrap();
    let wide = dir.path().join("wide.circuit.json");
    common::random_graph(3, 64, 2, 400, 4).save(&wide).unwrap();
    let whole = sqnn()
        .args(["check", "--json"])
        .arg(&wide)
        .output()
        .unwrap();
    assert_eq!(whole.status.code(), Some(0));
    assert!(whole.stdout.len() > 1 << 16, "{} bytes", whole.stdout.len());
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("sqnn"))
        .env(
            "SQNN_CACHE_DIR",
            concat!(env!("CARGO_TARGET_TMPDIR"), "/no-cost-profile"),
        )
        .arg("check")
        .arg(&wide)
        .arg("--json")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    assert_eq!(first.trim(), "{");
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(out.status.code(), Some(0), "{err}");
}

#[test]
fn oversized_inputs_are_refused_before_they_are_read() {
    let dir = tempfile::tempdir().unwrap();
    let big = dir.path().join("big.json");
    // A sparse 1 GiB file: its size is refused before a byte is read.
    std::fs::File::create(&big)
        .unwrap()
        .set_len(1 << 30)
        .unwrap();
    for cmd in ["compile", "check"] {
        let mut c = sqnn();
        c.arg(cmd).arg(&big);
        if cmd == "compile" {
            c.arg("--out").arg(dir.path().join("c.json"));
        }
        let e = refused(&mut c, cmd);
        assert!(
            e.contains("larger than") && e.contains("256 MiB"),
            "{cmd}: {e}"
        );
    }
    assert!(!dir.path().join("c.json").exists());
}

#[cfg(unix)]
#[test]
fn an_endless_data_stream_is_cut_at_the_limit() {
    // /dev/zero has no size and no line end: the reader stops at the CSV limit.
    let dir = tempfile::tempdir().unwrap();
    let e = refused(
        sqnn()
            .args(["train", "--data", "/dev/zero", "--out"])
            .arg(dir.path().join("m.json")),
        "",
    );
    assert!(e.contains("larger than the 256 MiB limit"), "{e}");
}

#[test]
fn error_messages_quote_a_bounded_slice_of_the_input() {
    let dir = tempfile::tempdir().unwrap();
    let long = "x".repeat(100_000);
    let files = [
        (
            "format.json",
            format!("{{\"format\": \"{long}\", \"version\": 1}}"),
        ),
        (
            "variant.json",
            format!("{{\"format\": \"sqnn-model\", \"version\": 1, \"kind\": \"{long}\"}}"),
        ),
        ("cell.csv", format!("a,b,y\n1,{long},0\n1,2,1\n")),
        ("label.csv", format!("a,b,y\n1,2,{long}\n1,2,{long}\n")),
        ("header.csv", format!("a,{long},y\n1,2,3\n")),
    ];
    for (name, text) in files {
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        let out = if name.ends_with(".csv") {
            sqnn()
                .args(["train", "--data"])
                .arg(&p)
                .arg("--out")
                .arg(dir.path().join("m.json"))
                .output()
                .unwrap()
        } else if name.starts_with("format") {
            sqnn().arg("check").arg(&p).output().unwrap()
        } else {
            sqnn()
                .arg("compile")
                .arg(&p)
                .arg("--out")
                .arg(dir.path().join("c.json"))
                .output()
                .unwrap()
        };
        let e = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{name}");
        assert!(e.len() < 2000, "{name}: {} bytes of error", e.len());
    }
}

#[cfg(unix)]
#[test]
fn a_write_killed_half_way_keeps_the_old_file() {
    let dir = tempfile::tempdir().unwrap();
    let (model, old) = (dir.path().join("m.json"), dir.path().join("c.json"));
    sqnn()
        .args(["train", "--data", "iris", "--quiet", "--out"])
        .arg(&model)
        .assert()
        .success();
    std::fs::copy(circuit("iris"), &old).unwrap();
    let before = std::fs::read(&old).unwrap();
    // A 2 kB file size limit kills `compile` (SIGXFSZ) in the middle of writing the circuit.
    let script = format!(
        "ulimit -f 4; SQNN_CACHE_DIR='{}' exec '{}' compile '{}' --out '{}'",
        concat!(env!("CARGO_TARGET_TMPDIR"), "/no-cost-profile"),
        assert_cmd::cargo::cargo_bin("sqnn").display(),
        model.display(),
        old.display()
    );
    let out = std::process::Command::new("sh")
        .args(["-c", &script])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert_eq!(std::fs::read(&old).unwrap(), before);
}

/// An output that is a pipe, device or symbolic link is written into (through the link), never
/// replaced by a regular file: renaming over `--svg /dev/null` replaced the machine's
/// `/dev/null` for root.
#[cfg(unix)]
#[test]
fn a_pipe_or_a_link_given_as_output_stays_what_it_was() {
    use std::io::Read;
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("picture.fifo");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    // The reader opens the pipe while `check` writes into it.
    let reader = {
        let fifo = fifo.clone();
        std::thread::spawn(move || {
            let mut text = String::new();
            std::fs::File::open(fifo)
                .unwrap()
                .read_to_string(&mut text)
                .unwrap();
            text
        })
    };
    let out = sqnn()
        .arg("check")
        .arg(circuit("iris"))
        .arg("--svg")
        .arg(&fifo)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ty = std::fs::symlink_metadata(&fifo).unwrap().file_type();
    assert!(
        std::os::unix::fs::FileTypeExt::is_fifo(&ty),
        "the pipe was replaced"
    );
    assert!(reader.join().unwrap().trim_end().ends_with("</svg>"));

    let (real, link) = (dir.path().join("real.svg"), dir.path().join("link.svg"));
    std::fs::write(&real, "old").unwrap();
    std::os::unix::fs::symlink(&real, &link).unwrap();
    sqnn()
        .arg("check")
        .arg(circuit("iris"))
        .arg("--svg")
        .arg(&link)
        .assert()
        .success();
    assert!(std::fs::symlink_metadata(&link)
        .unwrap()
        .file_type()
        .is_symlink());
    assert!(std::fs::read_to_string(&real).unwrap().contains("<svg"));
}

#[test]
fn a_model_with_nan_is_never_written() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("m.json");
    std::fs::write(&model, "the user's good model").unwrap();
    let e = refused(
        sqnn()
            .args([
                "train", "--data", "iris", "--lr", "1e30", "--quiet", "--out",
            ])
            .arg(&model),
        "",
    );
    assert!(e.contains("not writing"), "{e}");
    assert_eq!(
        std::fs::read_to_string(&model).unwrap(),
        "the user's good model"
    );
}

#[test]
fn an_output_equal_to_an_input_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("d.csv");
    iris_csv(&data, &[0, 1, 2, 3], class_name, |_| true);
    let before = std::fs::read(&data).unwrap();
    let e = refused(
        sqnn()
            .args(["train", "--data"])
            .arg(&data)
            .arg("--out")
            .arg(dir.path().join(".").join("d.csv")),
        "",
    );
    assert!(e.contains("also an input"), "{e}");
    assert_eq!(std::fs::read(&data).unwrap(), before);

    let c = dir.path().join("c.json");
    std::fs::copy(circuit("iris"), &c).unwrap();
    let before = std::fs::read(&c).unwrap();
    let out = sqnn()
        .arg("check")
        .arg(&c)
        .arg("--svg")
        .arg(&c)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(std::fs::read(&c).unwrap(), before);
}

/// A distillation teacher is an input of `train` and `tune`, a split file of `tune`, and
/// `tune`'s picture must not land on its model: each was overwritten with exit 0.
#[test]
fn teachers_splits_and_a_second_output_are_not_overwritten() {
    let dir = tempfile::tempdir().unwrap();
    let teacher = dir.path().join("teacher.json");
    quick_iris_model(&teacher);
    let before = std::fs::read(&teacher).unwrap();
    let quick_tune = [
        "tune",
        "--data",
        "iris",
        "--budget",
        "1",
        "--max-candidates",
        "1",
    ];
    let refused_naming = |cmd: &mut Command, flag: &str| {
        let e = refused(cmd, flag);
        assert!(e.contains(&format!("`{flag}` is --{flag}")), "{e}");
        assert_eq!(std::fs::read(&teacher).unwrap(), before, "{e}");
    };
    refused_naming(
        sqnn()
            .args(["train", "--data", "iris", "--epochs", "2", "--quiet"])
            .arg("--distill-from")
            .arg(&teacher)
            .arg("--out")
            .arg(&teacher),
        "out",
    );
    refused_naming(
        sqnn()
            .args(quick_tune)
            .arg("--distill-from")
            .arg(&teacher)
            .arg("--out")
            .arg(&teacher),
        "out",
    );
    let model = dir.path().join("m.json");
    std::fs::copy(&teacher, &model).unwrap();
    refused_naming(
        sqnn()
            .args(quick_tune)
            .arg("--out")
            .arg(&model)
            .arg("--svg")
            .arg(&model),
        "svg",
    );
    assert_eq!(std::fs::read(&model).unwrap(), before);
    let split = dir.path().join("split.json");
    std::fs::write(&split, "{\"train\": [0, 1, 2], \"test\": [3, 4]}").unwrap();
    let out = sqnn()
        .args(quick_tune)
        .arg("--split")
        .arg(&split)
        .arg("--svg")
        .arg(&split)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(std::fs::read_to_string(&split)
        .unwrap()
        .starts_with("{\"train\""));
}

/// `--samples 0` ran nothing and printed an accuracy of 0 with exit 0.
#[test]
fn zero_samples_are_refused() {
    for args in [
        &["run", "--data", "iris", "--samples", "0"][..],
        &[
            "run",
            "--data",
            "iris",
            "--backend",
            "simulate",
            "--samples",
            "0",
        ],
    ] {
        let out = sqnn().args(args).arg(circuit("iris")).output().unwrap();
        let e = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {e}");
        assert!(e.contains("at least 1"), "{e}");
        assert!(out.stdout.is_empty(), "{args:?} ran");
    }
    let client = ["--keys", "k", "--circuit", "c", "--data", "iris"];
    for args in [
        vec!["demo", "--samples", "0"],
        [
            &["client", "encrypt", "--out", "o"][..],
            &client,
            &["--samples", "0"],
        ]
        .concat(),
        [
            &["client", "predict", "--server", "s", "--token", "t"][..],
            &client,
            &["--samples", "0"],
        ]
        .concat(),
        [
            &["client", "predict", "--server", "s", "--token", "t"][..],
            &client,
            &["--batch", "0"],
        ]
        .concat(),
    ] {
        let e = refused(sqnn().args(&args), &format!("{args:?}"));
        assert!(e.contains("at least 1"), "{args:?}: {e}");
    }
}

#[test]
fn an_unwritable_output_is_found_before_training() {
    let dir = tempfile::tempdir().unwrap();
    let out = sqnn()
        .args(["train", "--data", "iris", "--out"])
        .arg(dir.path().join("missing").join("m.json"))
        .output()
        .unwrap();
    let e = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{e}");
    assert!(e.contains("does not exist"), "{e}");
    assert!(out.stdout.is_empty(), "trained first");
}

/// `sqnn keygen` for iris's committed circuit into `dir`.
#[cfg(feature = "tfhe-backend")]
fn keygen(dir: &Path) {
    sqnn()
        .arg("keygen")
        .arg(circuit("iris"))
        .arg("--out-dir")
        .arg(dir)
        .assert()
        .success();
}

/// `sqnn run --backend tfhe --keys dir` on one sample, with `extra` flags: exit 2 and stderr.
#[cfg(feature = "tfhe-backend")]
fn run_keys_fails(dir: &Path, extra: &[&str]) -> String {
    let out = sqnn()
        .arg("run")
        .arg(circuit("iris"))
        .args([
            "--data",
            "iris",
            "--backend",
            "tfhe",
            "--samples",
            "1",
            "--keys",
        ])
        .arg(dir)
        .args(extra)
        .output()
        .unwrap();
    let e = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(2), "{extra:?}: {e}");
    e
}

#[cfg(feature = "tfhe-backend")]
#[test]
fn keys_of_two_generations_and_flags_they_ignore_are_refused() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    keygen(a.path());
    keygen(b.path());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(a.path().join("client.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "client.key is {mode:o}");
    }
    // Flags that would choose other keys than the loaded ones.
    for flags in [
        &["--mode", "exact"][..],
        &[
            "--parameters",
            "V1_8_PARAM_MESSAGE_3_CARRY_3_KS_PBS_TUNIFORM_2M128",
        ],
        &["--p-error", "-60"],
    ] {
        let e = run_keys_fails(a.path(), flags);
        assert!(e.contains("cannot apply to the keys"), "{flags:?}: {e}");
    }
    // The server key of another generation: refused, not decrypted to noise.
    std::fs::copy(b.path().join("server.key"), a.path().join("server.key")).unwrap();
    let e = run_keys_fails(a.path(), &[]);
    assert!(e.contains("another key generation"), "{e}");
}

#[test]
fn keygen_checks_its_output_directory_before_generating() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("not-a-dir");
    std::fs::write(&file, "x").unwrap();
    let out = sqnn()
        .arg("keygen")
        .arg(circuit("iris"))
        .arg("--out-dir")
        .arg(&file)
        .output()
        .unwrap();
    let e = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{e}");
    assert!(out.stdout.is_empty(), "generated first: {e}");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "x");
}

/// `client encrypt --out` onto a key file, the circuit or the data is refused before any
/// work: it replaced the client key (the only copy of a secret) with a batch, exit 0.
#[cfg(feature = "tfhe-backend")]
#[test]
fn client_encrypt_never_writes_over_its_keys_or_inputs() {
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys");
    keygen(&keys);
    let c = dir.path().join("iris.circuit.json");
    std::fs::copy(circuit("iris"), &c).unwrap();
    let files = [
        keys.join("client.key"),
        keys.join("server.key"),
        keys.join("keys.json"),
        c.clone(),
    ];
    let before: Vec<Vec<u8>> = files.iter().map(|f| std::fs::read(f).unwrap()).collect();
    for target in &files {
        let e = refused(
            sqnn()
                .args(["client", "encrypt", "--data", "iris", "--samples", "1"])
                .arg("--keys")
                .arg(&keys)
                .arg("--circuit")
                .arg(&c)
                .arg("--out")
                .arg(target),
            &format!("{}", target.display()),
        );
        assert!(e.contains("also an input"), "{e}");
    }
    // The predictions of `client decrypt --out` and `client predict --out` neither.
    let key = keys.join("client.key");
    let c_arg = c.to_str().unwrap();
    let k_arg = keys.to_str().unwrap();
    for args in [
        vec!["decrypt", "--circuit", c_arg, "--answer", c_arg],
        vec!["predict", "--server", "http://127.0.0.1:9", "--token", "t"],
    ] {
        let mut cmd = sqnn();
        cmd.arg("client").args(&args).args(["--keys", k_arg]);
        if args[0] == "predict" {
            cmd.args(["--circuit", "iris", "--data", "iris"]);
        }
        let e = refused(cmd.arg("--out").arg(&key), &format!("{args:?}"));
        assert!(e.contains("also an input"), "{args:?}: {e}");
    }
    for (f, old) in files.iter().zip(&before) {
        assert_eq!(&std::fs::read(f).unwrap(), old, "{} changed", f.display());
    }
}

/// A second `keygen` into a directory that holds a client key is refused before generating:
/// it replaced the secret key, and with it every way to decrypt what it had encrypted.
#[cfg(feature = "tfhe-backend")]
#[test]
fn keygen_never_replaces_a_client_key() {
    let dir = tempfile::tempdir().unwrap();
    keygen(dir.path());
    let before: Vec<Vec<u8>> = ["client.key", "server.key", "keys.json"]
        .iter()
        .map(|f| std::fs::read(dir.path().join(f)).unwrap())
        .collect();
    let out = sqnn()
        .arg("keygen")
        .arg(circuit("iris"))
        .arg("--out-dir")
        .arg(dir.path())
        .output()
        .unwrap();
    let e = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{e}");
    assert!(
        e.contains("already holds a client key") && e.contains("delete"),
        "{e}"
    );
    assert!(out.stdout.is_empty(), "generated first: {e}");
    for (f, old) in ["client.key", "server.key", "keys.json"]
        .iter()
        .zip(&before)
    {
        assert_eq!(
            &std::fs::read(dir.path().join(f)).unwrap(),
            old,
            "{f} changed"
        );
    }
}

/// A model trained on another split than `run`'s default: `run` and `compile` use the recorded
/// training split, and a split that scores training rows (or calibrates on test rows) is
/// refused with the flags that made the model's split, writing nothing.
#[test]
fn a_split_that_mixes_training_and_test_rows_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (model, circ) = (dir.path().join("m.json"), dir.path().join("c.json"));
    let run_json = |extra: &[&str]| {
        sqnn()
            .args(["run", circ.to_str().unwrap(), "--data", "iris", "--json"])
            .args(extra)
            .output()
            .unwrap()
    };
    sqnn()
        .args([
            "train",
            "--data",
            "iris",
            "--test-size",
            "0.2",
            "--seed",
            "3",
        ])
        .args(["--epochs", "5", "--out", model.to_str().unwrap()])
        .assert()
        .success();
    // No split flag: the model's own 30 test rows (not the 38 rows of Concrete ML's split).
    sqnn()
        .args([
            "compile",
            model.to_str().unwrap(),
            "--out",
            circ.to_str().unwrap(),
        ])
        .assert()
        .success();
    let out = run_json(&[]);
    assert!(out.status.success());
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["samples"], 30);
    // Another split scores training rows: exit 2, naming the model's split and the fix.
    for extra in [
        &["--split", "concrete-ml"][..],
        &["--test-size", "0.2", "--seed", "4"],
    ] {
        let out = run_json(extra);
        assert_eq!(out.status.code(), Some(2), "{extra:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("rows the model was trained on")
                && err.contains("--test-size 0.2 --seed 3")
                && err.contains("drop the split flags"),
            "{err}"
        );
    }
    // The same split given again is fine.
    assert!(run_json(&["--test-size", "0.2", "--seed", "3"])
        .status
        .success());
    // Calibrating a plan on the model's test rows is refused, and nothing is written.
    let other = dir.path().join("other.json");
    let out = sqnn()
        .args([
            "compile",
            model.to_str().unwrap(),
            "--out",
            other.to_str().unwrap(),
        ])
        .args(["--split", "concrete-ml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("calibration rows are the model's test rows")
    );
    assert!(!other.exists());
}

/// A flag the planner refuses is an error of `compile` and `check` (exit 2, no circuit
/// written): `compile --parameters TYPO` printed the error as a report line, wrote the circuit
/// without the plan asked for, and exited 0.
#[test]
fn compile_and_check_refuse_planner_flags_they_cannot_apply() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("m.json");
    quick_iris_model(&model);
    let c = dir.path().join("c.json");
    for flags in [
        &["--parameters", "V1_8_PARAM_TYPO"][..],
        &["--p-error", "NaN"],
        &["--tolerance", "2"],
    ] {
        let e = refused(
            sqnn()
                .arg("compile")
                .arg(&model)
                .arg("--out")
                .arg(&c)
                .args(flags),
            &format!("{flags:?}"),
        );
        assert!(e.contains("invalid parameter"), "{flags:?}: {e}");
        assert!(!c.exists(), "{flags:?}: circuit written");
        if flags[0] == "--tolerance" {
            continue; // `check` without --calibrate has no calibration rows to apply it to
        }
        refused(
            sqnn().arg("check").arg(circuit("iris")).args(flags),
            &format!("check {flags:?}"),
        );
    }
}

/// `compile --mode exact` on accumulators too wide for any exact set wrote the circuit without
/// a plan and exited 0, and `keygen` and `run` then planned approximate reads. A plan flag
/// that cannot be honoured is refused, naming why and the fixes; without plan flags, the
/// circuit is written as before (planned approximately when it runs).
#[test]
fn compile_refuses_an_exact_plan_no_set_can_make() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("wide.json");
    sqnn()
        .args(WIDE_MODEL)
        .args(["--quiet", "--out"])
        .arg(&model)
        .assert()
        .success();
    let c = dir.path().join("c.json");
    let e = refused(
        sqnn()
            .arg("compile")
            .arg(&model)
            .arg("--out")
            .arg(&c)
            .args(["--mode", "exact"]),
        "compile --mode exact",
    );
    assert!(e.contains("not writing"), "{e}");
    assert!(e.contains("exact table reads"), "why: {e}");
    for fix in ["--n-accum-bits", "--max-table-bits", "drop --mode exact"] {
        assert!(e.contains(fix), "fix {fix}: {e}");
    }
    assert!(!c.exists(), "circuit written");
    // The default request: written, and said.
    let out = sqnn()
        .arg("compile")
        .arg(&model)
        .arg("--out")
        .arg(&c)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(c.exists());
}

/// A model whose accumulators no exact parameter set reads (13 bits and more), which one
/// approximate bootstrap still can after rounding.
const WIDE_MODEL: [&str; 12] = [
    "train",
    "--data",
    "iris",
    "--epochs",
    "2",
    "--n-w-bits",
    "6",
    "--n-accum-bits",
    "14",
    "--noise-aware",
    "off",
    "--n-a-bits=6",
];

/// `--shift-augment 0x0` was reported through `--noise-aware auto`'s failure (which it had
/// nothing to do with); each bad layout is said as `--shift-augment`'s.
#[test]
fn a_bad_shift_augment_is_said_as_itself() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("m.json");
    for layout in ["0x0", "28x28", "4x1", "2x2:2"] {
        let e = refused(
            sqnn()
                .args(["train", "--data", "iris", "--epochs", "2", "--quiet"])
                .args(["--shift-augment", layout, "--out"])
                .arg(&out),
            layout,
        );
        assert!(!e.contains("noise-aware"), "{layout}: {e}");
        assert!(e.contains("--shift-augment"), "{layout}: {e}");
        assert!(
            e.contains("give ") || e.contains("use "),
            "{layout}: a fix: {e}"
        );
        assert!(!out.exists(), "{layout}: model written");
    }
}

/// `--tolerance` and `--calibration-seeds` steer the choice by accuracy on calibration rows;
/// where a command had none (no data set, `--mode exact`, `--parameters`, the clear backend,
/// `check --json`), they were silently unused with exit 0. Refused, naming the fix; where they
/// apply, they still work.
#[test]
fn choice_flags_without_calibration_rows_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let iris = circuit("iris");
    let set = sqnn::fhe::ParamSetId::ALL[0].name();
    let c = iris.to_str().unwrap();
    let simulate = ["run", c, "--data", "iris", "--backend", "simulate"];
    for flag in [["--tolerance", "0.01"], ["--calibration-seeds", "8"]] {
        let cases: Vec<(Vec<&str>, &str)> = vec![
            (vec!["check", c], "--calibrate"),
            // Without rows the missing rows are named first: dropping --json alone would
            // be refused in turn.
            (vec!["check", c, "--json"], "--calibrate"),
            (
                vec!["check", c, "--json", "--calibrate", "iris"],
                "drop --json",
            ),
            (vec!["run", c, "--data", "iris"], "--backend simulate"),
            (
                [&simulate[..], &["--mode", "exact"]].concat(),
                "drop --mode exact",
            ),
            (
                [&simulate[..], &["--parameters", set]].concat(),
                "drop --parameters",
            ),
        ];
        for (args, fix) in cases {
            let e = refused(sqnn().args(&args).args(flag), &format!("{args:?} {flag:?}"));
            assert!(e.contains(flag[0]), "{args:?} {flag:?}: {e}");
            assert!(e.contains(fix), "{args:?} {flag:?}: {e}");
        }
        // keygen without --data: refused before any key is generated.
        #[cfg(feature = "tfhe-backend")]
        {
            let keys = dir.path().join("keys");
            let e = refused(
                sqnn()
                    .arg("keygen")
                    .arg(&iris)
                    .arg("--out-dir")
                    .arg(&keys)
                    .args(flag),
                "keygen",
            );
            assert!(e.contains("give --data"), "{e}");
            assert!(!keys.join("client.key").exists());
        }
        // Where the flag applies it is taken: check with calibration rows, run on a data set.
        sqnn()
            .arg("check")
            .arg(&iris)
            .args(["--calibrate", "iris"])
            .args(flag)
            .assert()
            .success();
        sqnn()
            .arg("run")
            .arg(&iris)
            .args(["--data", "iris", "--backend", "simulate"])
            .args(flag)
            .assert()
            .success();
    }
    // compile, when the model's data set cannot be loaded here and no --data is given.
    let data = dir.path().join("d.csv");
    iris_csv(&data, &[0, 1, 2, 3], class_name, |_| true);
    let model = dir.path().join("m.json");
    sqnn()
        .args(["train", "--epochs", "2", "--quiet", "--data"])
        .arg(&data)
        .arg("--out")
        .arg(&model)
        .assert()
        .success();
    let moved = dir.path().join("moved.csv");
    std::fs::rename(&data, &moved).unwrap();
    let c = dir.path().join("c.json");
    let compile = |extra: &[&std::ffi::OsStr]| {
        let mut cmd = sqnn();
        cmd.arg("compile")
            .arg(&model)
            .arg("--out")
            .arg(&c)
            .args(["--tolerance", "0.01"])
            .args(extra);
        cmd
    };
    let e = refused(&mut compile(&[]), "compile without rows");
    assert!(e.contains("give --data"), "{e}");
    assert!(!c.exists(), "circuit written");
    compile(&["--data".as_ref(), moved.as_os_str()])
        .assert()
        .success();
    let plan = sqnn::ir::IntGraph::load(&c).unwrap().plan.unwrap();
    assert!(
        plan.chosen_by.contains("tolerance 0.01"),
        "{}",
        plan.chosen_by
    );
}

/// Flags that steer nothing where they were given were silently unused, with exit 0:
/// `--noise-seed` seeds only the simulation (not the clear or tfhe backend), `--max-sigma`
/// guards only approximate mode's choice of a set (not `--mode exact`, not a set forced with
/// `--parameters`), and `--extractions` and `--extraction-chunk-bits` steer only exact rounding
/// (not approximate reads). Refused, naming why and the fix, before any key is made; where they
/// apply they still work.
#[test]
fn flags_that_steer_nothing_here_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let iris = circuit("iris");
    let csv = dir.path().join("new.csv");
    iris_csv(&csv, &[0, 1, 2, 3], class_name, |_| true);
    let out = dir.path().join("p.csv");
    let set = sqnn::fhe::ParamSetId::ALL[0].name();
    let run = |extra: &[&str]| {
        let mut cmd = sqnn();
        cmd.arg("run").arg(&iris).args(extra);
        cmd
    };
    let sim = ["--data", "iris", "--backend", "simulate"];
    let rows = [
        "--rows",
        csv.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ];
    let cases: Vec<(Command, &str, &str, &str)> = vec![
        (
            run(&["--data", "iris", "--noise-seed", "3"]),
            "--noise-seed",
            "the clear backend",
            "--backend simulate",
        ),
        (
            run(&[&rows[..], &["--noise-seed", "3"]].concat()),
            "--noise-seed",
            "the clear backend",
            "--backend simulate",
        ),
        (
            run(&["--data", "iris", "--backend", "tfhe", "--noise-seed", "3"]),
            "--noise-seed",
            "the tfhe backend",
            "--backend simulate",
        ),
        (
            run(&[&sim[..], &["--mode", "exact", "--max-sigma", "3"]].concat()),
            "--max-sigma",
            "--mode exact",
            "drop --mode exact",
        ),
        (
            run(&[&sim[..], &["--parameters", set, "--max-sigma", "3"]].concat()),
            "--max-sigma",
            "--parameters",
            "drop --parameters",
        ),
        (
            run(&[
                &rows[..],
                &["--backend", "simulate", "--extractions", "table-set"],
            ]
            .concat()),
            "--extractions",
            "approximate",
            "give --mode exact",
        ),
        (
            run(&[&sim[..], &["--extraction-chunk-bits", "1"]].concat()),
            "--extraction-chunk-bits",
            "approximate",
            "give --mode exact",
        ),
    ];
    for (mut cmd, flag, why, fix) in cases {
        let what = format!("{cmd:?}");
        let e = refused(&mut cmd, &what);
        for said in [flag, why, fix, "drop "] {
            assert!(e.contains(said), "{what}: {said:?} in {e}");
        }
        assert!(!out.exists(), "{what}: predictions written");
    }
    // check, keygen and compile refuse them as run does (keygen before generating keys).
    let c = dir.path().join("c.json");
    let keys = dir.path().join("keys");
    let model = dir.path().join("m.json");
    quick_iris_model(&model);
    for flags in [
        &["--mode", "exact", "--max-sigma", "3"][..],
        &["--parameters", set, "--max-sigma", "3"],
        &["--extractions", "table-set"],
        &["--extraction-chunk-bits", "1"],
    ] {
        let e = refused(
            sqnn().arg("check").arg(&iris).args(flags),
            &format!("check {flags:?}"),
        );
        assert!(e.contains("drop "), "{flags:?}: {e}");
        refused(
            sqnn()
                .arg("compile")
                .arg(&model)
                .arg("--out")
                .arg(&c)
                .args(flags),
            &format!("compile {flags:?}"),
        );
        assert!(!c.exists(), "{flags:?}: circuit written");
        refused(
            sqnn()
                .arg("keygen")
                .arg(&iris)
                .arg("--out-dir")
                .arg(&keys)
                .args(flags),
            &format!("keygen {flags:?}"),
        );
        assert!(!keys.join("client.key").exists(), "{flags:?}: keys made");
    }
    // Where they apply, they are taken: the seed by the simulation, the guard by approximate
    // mode's choice, the extraction flags by exact rounding.
    run(&[&sim[..], &["--noise-seed", "3"]].concat())
        .assert()
        .success();
    run(&[&sim[..], &["--max-sigma", "3"]].concat())
        .assert()
        .success();
    sqnn()
        .arg("compile")
        .arg(&model)
        .arg("--out")
        .arg(&c)
        .args(["--max-table-bits", "4", "--mode", "exact"])
        .args(["--extraction-chunk-bits", "1"])
        .assert()
        .success();
    let plan = sqnn::ir::IntGraph::load(&c).unwrap().plan.unwrap();
    assert_eq!(plan.mode, "exact");
    assert_eq!(plan.extraction_chunk_bits, Some(1), "{plan:?}");
}
