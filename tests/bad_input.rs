//! Bad conditions a user meets, one test each: data that does not match the circuit, writes
//! that fail, outputs that would overwrite inputs, keys that do not belong together, closed
//! pipes, oversized files. Each command must either do the right thing or refuse with exit 2
//! and a message naming the problem, and never lose a file the user had.

use assert_cmd::Command;
use serde_json::Value;
use std::path::{Path, PathBuf};

use sqnn::data::Dataset;

fn sqnn() -> Command {
    Command::cargo_bin("sqnn").unwrap()
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
        let out = c.args(["--split", "seeded"]).output().unwrap();
        let e = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{cmd:?}: {e}");
        assert!(
            e.contains("lacks `sepal length (cm)`") && e.contains("`a`"),
            "{e}"
        );
    }
}
