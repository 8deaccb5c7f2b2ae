//! Integration tests for `sqnn::data`: built-in data sets, CSV loading and its errors, splits,
//! standardization.

use std::collections::HashSet;
use std::io::Write;

use ndarray::{array, Array2};
use proptest::prelude::*;
use sqnn::data::{
    check_finite, peer_split, shuffled_indices, split_from_file, stratified_indices,
    train_test_split, Dataset, Split, Standardizer, Task, TaskKind,
};
use sqnn::Error;

fn class_counts(ds: &Dataset) -> Vec<usize> {
    let mut counts = vec![0; ds.n_classes().unwrap()];
    for l in ds.labels().unwrap() {
        counts[l] += 1;
    }
    counts
}

// ---------------------------------------------------------------------------------------------
// Built-in data sets
// ---------------------------------------------------------------------------------------------

#[test]
fn builtin_iris() {
    let ds = Dataset::builtin("iris").unwrap();
    assert_eq!(ds.x.dim(), (150, 4));
    assert_eq!(ds.y.len(), 150);
    assert_eq!(ds.name, "iris");
    assert_eq!(
        ds.task,
        Task::Classify {
            classes: vec!["setosa".into(), "versicolor".into(), "virginica".into()]
        }
    );
    assert_eq!(class_counts(&ds), vec![50, 50, 50]);
    assert_eq!(ds.feature_names[0], "sepal length (cm)");
    assert_eq!(ds.feature_names[3], "petal width (cm)");
    // First and last rows of sklearn's file.
    assert_eq!(ds.x.row(0).to_vec(), vec![5.1, 3.5, 1.4, 0.2]);
    assert_eq!(ds.x.row(149).to_vec(), vec![5.9, 3.0, 5.1, 1.8]);
    assert_eq!(ds.y[149], 2.0);
    assert_eq!(ds.kind(), TaskKind::Classify);
}

#[test]
fn builtin_breast_cancer() {
    let ds = Dataset::builtin("breast_cancer").unwrap();
    assert_eq!((ds.n_samples(), ds.n_features()), (569, 30));
    assert_eq!(ds.n_classes(), Some(2));
    assert_eq!(class_counts(&ds), vec![212, 357]);
    assert_eq!(ds.feature_names.len(), 30);
    assert_eq!(ds.feature_names[0], "mean radius");
    assert_eq!(ds.feature_names[10], "radius error");
    assert_eq!(ds.feature_names[29], "worst fractal dimension");
    assert_eq!(ds.x[[0, 0]], 17.99);
    assert_eq!(ds.x[[0, 3]], 1001.0);
    check_finite(&ds.x, "breast_cancer").unwrap();
}

#[test]
fn builtin_diabetes() {
    let ds = Dataset::builtin("diabetes").unwrap();
    assert_eq!(ds.x.dim(), (442, 10));
    assert_eq!(ds.task, Task::Regress);
    assert_eq!(ds.labels(), None);
    assert_eq!(ds.n_classes(), None);
    assert_eq!(
        ds.feature_names,
        ["age", "sex", "bmi", "bp", "s1", "s2", "s3", "s4", "s5", "s6"]
    );
    // Raw (unscaled) features: first row of sklearn's file, first target 151.
    assert_eq!(
        ds.x.row(0).to_vec(),
        vec![59.0, 2.0, 32.1, 101.0, 157.0, 93.2, 38.0, 4.0, 4.8598, 87.0]
    );
    assert_eq!(ds.y[0], 151.0);
    assert_eq!(ds.y[1], 75.0);
    let (lo, hi) =
        ds.y.iter()
            .fold((f64::MAX, f64::MIN), |(a, b), &v| (a.min(v), b.max(v)));
    assert_eq!((lo, hi), (25.0, 346.0));
}

#[test]
fn builtin_mnist() {
    let t = std::time::Instant::now();
    let ds = Dataset::builtin("mnist").unwrap();
    eprintln!("mnist load: {:?}", t.elapsed());
    assert_eq!(ds.x.dim(), (10_000, 784));
    assert_eq!(ds.n_classes(), Some(10));
    assert_eq!(ds.feature_names[0], "p0");
    assert_eq!(ds.feature_names[783], "p783");
    let max = ds.x.iter().cloned().fold(f64::MIN, f64::max);
    let min = ds.x.iter().cloned().fold(f64::MAX, f64::min);
    assert_eq!((min, max), (0.0, 255.0));
    assert!(ds.x.iter().all(|v| v.fract() == 0.0));
    let counts = class_counts(&ds);
    assert_eq!(counts.iter().sum::<usize>(), 10_000);
    assert!(counts.iter().all(|&c| c > 500), "{counts:?}");
    // A real digit has ink: every row has some non-zero pixels.
    assert!(ds.x.rows().into_iter().all(|r| r.iter().any(|&v| v > 0.0)));
}

#[test]
fn builtin_unknown_lists_names() {
    let e = Dataset::builtin("cifar10").unwrap_err().to_string();
    for name in Dataset::BUILTIN {
        assert!(e.contains(name), "{e}");
    }
    assert!(e.contains("cifar10"), "{e}");
}

#[test]
fn load_builtin_and_path() {
    assert_eq!(Dataset::load("iris", None, None).unwrap().n_samples(), 150);
    assert_eq!(
        Dataset::load("iris", None, Some(TaskKind::Classify))
            .unwrap()
            .n_samples(),
        150
    );
    let e = Dataset::load("iris", None, Some(TaskKind::Regress)).unwrap_err();
    assert!(
        matches!(e, Error::InvalidParameter { name: "task", .. }),
        "{e}"
    );
    let e = Dataset::load("iris", Some("y"), None).unwrap_err();
    assert!(
        matches!(e, Error::InvalidParameter { name: "target", .. }),
        "{e}"
    );

    let e = Dataset::load("no/such/file.csv", None, None)
        .unwrap_err()
        .to_string();
    assert!(e.contains("no/such/file.csv"), "{e}");
    assert!(
        e.contains("built-in") && e.contains("iris") && e.contains("file"),
        "{e}"
    );

    let mut f = tempfile::NamedTempFile::new().unwrap();
    write!(f, "a,b,label\n1,2,x\n3,4,y\n").unwrap();
    let path = f.path().to_str().unwrap().to_string();
    let ds = Dataset::load(&path, None, None).unwrap();
    assert_eq!(ds.name, path);
    assert_eq!(ds.n_samples(), 2);
}

#[test]
fn from_csv_file_and_gz() {
    let dir = tempfile::tempdir().unwrap();
    let text = "f1,f2,f3,price\n1,2,3,10.5\n4,5,6,11.25\n7,8,9,12\n";
    let plain = dir.path().join("houses.csv");
    std::fs::write(&plain, text).unwrap();
    let ds = Dataset::from_csv(&plain, None, None).unwrap();
    assert_eq!(ds.task, Task::Regress);
    assert_eq!(ds.y, vec![10.5, 11.25, 12.0]);
    assert_eq!(ds.feature_names, ["f1", "f2", "f3"]);
    assert_eq!(
        ds.x,
        array![[1.0, 2.0, 3.0], [4.0, 5.0, 6.0], [7.0, 8.0, 9.0]]
    );

    let gz = dir.path().join("houses.csv.gz");
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(text.as_bytes()).unwrap();
    std::fs::write(&gz, enc.finish().unwrap()).unwrap();
    let dz = Dataset::from_csv(&gz, None, None).unwrap();
    assert_eq!((dz.x, dz.y), (ds.x, ds.y));

    let e = Dataset::from_csv(&dir.path().join("missing.csv"), None, None).unwrap_err();
    assert!(matches!(e, Error::Io { .. }), "{e}");
}

// ---------------------------------------------------------------------------------------------
// CSV parsing
// ---------------------------------------------------------------------------------------------

fn csv(text: &str, target: Option<&str>, task: Option<TaskKind>) -> sqnn::Result<Dataset> {
    Dataset::from_csv_reader("t.csv", text.as_bytes(), target, task)
}

fn csv_err(text: &str, target: Option<&str>, task: Option<TaskKind>) -> (Error, String) {
    let e = csv(text, target, task).expect_err("expected an error");
    let s = e.to_string();
    assert!(matches!(e, Error::Data { .. }), "{s}");
    assert!(s.starts_with("t.csv"), "{s}");
    (e, s)
}

fn loc(e: &Error) -> (Option<usize>, Option<String>) {
    match e {
        Error::Data { line, column, .. } => (*line, column.clone()),
        _ => panic!("not a data error: {e}"),
    }
}

#[test]
fn csv_target_by_name_and_default() {
    let text = "y,a,b\n1.5,1,2\n2.5,3,4\n3.25,5,6\n";
    let ds = csv(text, Some("y"), None).unwrap();
    assert_eq!(ds.feature_names, ["a", "b"]);
    assert_eq!(ds.y, vec![1.5, 2.5, 3.25]);
    assert_eq!(ds.task, Task::Regress);
    // Default: last column is the target.
    let ds = csv(text, None, None).unwrap();
    assert_eq!(ds.feature_names, ["y", "a"]);
    // 2, 4, 6: few distinct integers, so inferred as classes.
    assert_eq!(
        ds.task,
        Task::Classify {
            classes: vec!["2".into(), "4".into(), "6".into()]
        }
    );
    assert_eq!(ds.y, vec![0.0, 1.0, 2.0]);
    let ds = csv(text, None, Some(TaskKind::Regress)).unwrap();
    assert_eq!(ds.y, vec![2.0, 4.0, 6.0]);
}

#[test]
fn csv_task_inference() {
    // Non-numeric target: classification, classes sorted lexicographically.
    let ds = csv("a,b,c\n1,2,zebra\n3,4,ant\n5,6,zebra\n", None, None).unwrap();
    assert_eq!(
        ds.task,
        Task::Classify {
            classes: vec!["ant".into(), "zebra".into()]
        }
    );
    assert_eq!(ds.y, vec![1.0, 0.0, 1.0]);
    // Integers with few distinct values: classification, sorted numerically (10 after 2).
    let ds = csv("a,b,c\n1,2,10\n3,4,2\n5,6,1\n", None, None).unwrap();
    assert_eq!(
        ds.task,
        Task::Classify {
            classes: vec!["1".into(), "2".into(), "10".into()]
        }
    );
    assert_eq!(ds.labels().unwrap(), vec![2, 1, 0]);
    // Non-integers: regression.
    let ds = csv("a,b,c\n1,2,0.5\n3,4,1\n", None, None).unwrap();
    assert_eq!(ds.task, Task::Regress);
    // 21 distinct integers: regression; 20: classification.
    let mut text = String::from("a,b,c\n");
    for i in 0..21 {
        text.push_str(&format!("{i},{i},{i}\n"));
    }
    assert_eq!(csv(&text, None, None).unwrap().task, Task::Regress);
    let last = text.trim_end().rfind('\n').unwrap();
    assert_eq!(
        csv(&text[..=last], None, None).unwrap().n_classes(),
        Some(20)
    );
    // Explicit task overrides inference.
    let ds = csv("a,b,c\n1,2,0\n3,4,1\n", None, Some(TaskKind::Regress)).unwrap();
    assert_eq!(ds.task, Task::Regress);
    let ds = csv("a,b,c\n1,2,0.5\n3,4,1.5\n", None, Some(TaskKind::Classify)).unwrap();
    assert_eq!(ds.n_classes(), Some(2));
}

#[test]
fn csv_tolerates_whitespace_quotes_crlf_bom_blank_lines() {
    let text = "\u{feff}\"a\", b ,\"t\"\r\n 1 ,2.5e0, x\r\n\r\n3,\"4\",y\r\n\n";
    let ds = csv(text, Some("t"), None).unwrap();
    assert_eq!(ds.feature_names, ["a", "b"]);
    assert_eq!(ds.x, array![[1.0, 2.5], [3.0, 4.0]]);
    assert_eq!(ds.labels().unwrap(), vec![0, 1]);
}

#[test]
fn csv_error_empty_file() {
    for text in ["", "\n\n", "   \n"] {
        let (e, s) = csv_err(text, None, None);
        assert!(s.contains("empty"), "{s}");
        assert!(s.contains("header"), "{s}");
        assert_eq!(loc(&e), (None, None));
    }
}

#[test]
fn csv_error_header_only() {
    let (_, s) = csv_err("a,b,c\n", None, None);
    assert!(s.contains("no data rows"), "{s}");
}

#[test]
fn csv_error_ragged_row() {
    let (e, s) = csv_err("a,b,c\n1,2,0\n1,2,3,4\n", None, None);
    assert_eq!(loc(&e).0, Some(3));
    assert!(s.contains("line 3"), "{s}");
    assert!(s.contains("expected 3") && s.contains("found 4"), "{s}");
    let (e, s) = csv_err("a,b,c\n1,2,0\n3,4,1\n5,6\n", None, None);
    assert_eq!(loc(&e).0, Some(4));
    assert!(s.contains("found 2"), "{s}");
}

#[test]
fn csv_error_non_numeric_feature() {
    let (e, s) = csv_err("a,b,c\n1,2,0\n3,four,1\n", None, None);
    assert_eq!(loc(&e), (Some(3), Some("2 (`b`)".into())));
    assert!(s.contains("line 3, column 2"), "{s}");
    assert!(s.contains("`four`") && s.contains("not a number"), "{s}");
}

#[test]
fn csv_error_empty_feature_cell() {
    let (e, s) = csv_err("a,b,c\n1,,0\n", None, None);
    assert_eq!(loc(&e), (Some(2), Some("2 (`b`)".into())));
    assert!(s.contains("missing value"), "{s}");
}

#[test]
fn csv_error_nan_and_inf() {
    for (cell, col) in [
        ("nan", 1),
        ("NaN", 1),
        ("inf", 2),
        ("-Infinity", 2),
        ("1e999", 1),
    ] {
        let row = if col == 1 {
            format!("{cell},1,0")
        } else {
            format!("1,{cell},0")
        };
        let text = format!("a,b,c\n1,2,0\n{row}\n");
        let (e, s) = csv_err(&text, None, None);
        assert_eq!(loc(&e).0, Some(3), "{s}");
        assert!(loc(&e).1.unwrap().starts_with(&col.to_string()), "{s}");
        assert!(s.contains("NaN or infinite"), "{s}");
    }
    // In the target column, too.
    let (e, s) = csv_err("a,b,c\n1,2,0.5\n1,2,nan\n", None, None);
    assert_eq!(loc(&e), (Some(3), Some("3 (`c`)".into())));
    assert!(s.contains("NaN or infinite"), "{s}");
}

#[test]
fn csv_error_values_too_large_to_square() {
    // 1e308 is finite, but its square is not: training's variances, losses and R² would be
    // NaN or infinite, and the column useless, with exit 0.
    let limit = sqnn::data::MAX_ABS_VALUE;
    for cell in ["1e308", "-1e200", "2e150"] {
        let (e, s) = csv_err(&format!("a,b,c\n1,2,0\n{cell},1,1\n"), None, None);
        assert_eq!(loc(&e), (Some(3), Some("1 (`a`)".into())), "{s}");
        assert!(s.contains("too large") && s.contains("rescale"), "{s}");
    }
    // A regression target, too; a class label that reads as a large number is only a name.
    let (e, s) = csv_err("a,b,c\n1,2,0.5\n1,2,1e200\n", None, None);
    assert_eq!(loc(&e), (Some(3), Some("3 (`c`)".into())), "{s}");
    assert!(
        s.contains("target `1e200`") && s.contains("too large"),
        "{s}"
    );
    let ds = csv("a,b,c\n1,2,1e200\n3,4,0\n", None, Some(TaskKind::Classify)).unwrap();
    assert_eq!(ds.n_classes(), Some(2));
    // The limit itself is taken.
    let ds = csv(
        &format!("a,b,c\n{limit},2,0.5\n1,2,{}\n", -limit),
        None,
        None,
    )
    .unwrap();
    assert_eq!((ds.x[[0, 0]], ds.y[1]), (limit, -limit));
}

#[test]
fn csv_error_missing_target_column() {
    let (e, s) = csv_err("a,b,c\n1,2,0\n", Some("label"), None);
    assert_eq!(loc(&e).0, Some(1));
    assert!(s.contains("`label`"), "{s}");
    assert!(s.contains("`a`, `b`, `c`"), "{s}");
    assert!(s.contains("name one of them as the `target`"), "{s}");
}

#[test]
fn csv_error_empty_target_cell() {
    let (e, s) = csv_err("a,b,c\n1,2,0\n1,2,\n", None, None);
    assert_eq!(loc(&e), (Some(3), Some("3 (`c`)".into())));
    assert!(s.contains("missing target"), "{s}");
}

#[test]
fn csv_error_single_class() {
    let (e, s) = csv_err("a,b,c\n1,2,cat\n3,4,cat\n", None, None);
    assert_eq!(loc(&e).1, Some("3 (`c`)".into()));
    assert!(
        s.contains("at least two classes") && s.contains("`cat`"),
        "{s}"
    );
    let (_, s) = csv_err("a,b,c\n1,2,0.5\n3,4,0.5\n", None, Some(TaskKind::Classify));
    assert!(s.contains("at least two classes"), "{s}");
}

#[test]
fn csv_error_too_few_features() {
    let (e, s) = csv_err("a,c\n1,0\n2,1\n", None, None);
    assert_eq!(loc(&e).0, Some(1));
    assert!(s.contains("at least 2 feature columns"), "{s}");
    let (_, s) = csv_err("a;b;c\n1;2;0\n", None, None);
    assert!(s.contains("delimiter"), "{s}");
}

#[test]
fn csv_error_regression_with_text_target() {
    let (e, s) = csv_err("a,b,c\n1,2,1.5\n3,4,high\n", None, Some(TaskKind::Regress));
    assert_eq!(loc(&e), (Some(3), Some("3 (`c`)".into())));
    assert!(s.contains("`high`") && s.contains("classif"), "{s}");
}

#[test]
fn csv_error_invalid_utf8_and_bad_quotes() {
    let bytes: &[u8] = b"a,b,c\n1,\xff\xfe,0\n";
    let e = Dataset::from_csv_reader("t.csv", bytes, None, None).unwrap_err();
    assert_eq!(loc(&e).0, Some(2));
    assert!(e.to_string().contains("UTF-8"), "{e}");
    // Unterminated quote swallows the rest; must be an error, not a panic.
    assert!(csv("a,b,c\n1,\"2,0\n3,4,1\n", None, None).is_err());
}

#[test]
fn csv_error_duplicate_target_name() {
    let (_, s) = csv_err("y,b,y\n1,2,0\n", Some("y"), None);
    assert!(s.contains("2 columns are named `y`"), "{s}");
}

// ---------------------------------------------------------------------------------------------
// Splits
// ---------------------------------------------------------------------------------------------

fn assert_partition(split: &Split, n: usize) {
    let train: HashSet<_> = split.train.iter().collect();
    let test: HashSet<_> = split.test.iter().collect();
    assert_eq!(train.len(), split.train.len(), "duplicate in train");
    assert_eq!(test.len(), split.test.len(), "duplicate in test");
    assert!(train.is_disjoint(&test));
    assert_eq!(train.len() + test.len(), n);
    assert!(split.train.iter().chain(&split.test).all(|&i| i < n));
}

#[test]
fn split_is_seeded_deterministic() {
    for name in ["iris", "diabetes"] {
        let ds = Dataset::builtin(name).unwrap();
        let a = train_test_split(&ds, 0.25, 42).unwrap();
        let b = train_test_split(&ds, 0.25, 42).unwrap();
        let c = train_test_split(&ds, 0.25, 43).unwrap();
        assert_eq!(a, b, "{name}");
        assert_ne!(a.test, c.test, "{name}");
        assert_partition(&a, ds.n_samples());
        assert_partition(&c, ds.n_samples());
        // Shuffled, not a prefix.
        assert_ne!(a.test, (0..a.test.len()).collect::<Vec<_>>());
    }
}

#[test]
fn split_is_stratified() {
    let ds = Dataset::builtin("breast_cancer").unwrap();
    let s = train_test_split(&ds, 0.25, 1).unwrap();
    assert_partition(&s, 569);
    let labels = ds.labels().unwrap();
    let test_counts = [0, 1].map(|c| s.test.iter().filter(|&&i| labels[i] == c).count());
    // round(0.25 * 212) = 53, round(0.25 * 357) = 89.
    assert_eq!(test_counts, [53, 89]);

    let iris = Dataset::builtin("iris").unwrap();
    let s = train_test_split(&iris, 0.2, 5).unwrap();
    let labels = iris.labels().unwrap();
    let counts = [0, 1, 2].map(|c| s.test.iter().filter(|&&i| labels[i] == c).count());
    assert_eq!(counts, [10, 10, 10]);

    let mnist = Dataset::builtin("mnist").unwrap();
    let s = train_test_split(&mnist, 0.2, 0).unwrap();
    assert_partition(&s, 10_000);
    let labels = mnist.labels().unwrap();
    for c in 0..10 {
        let total = labels.iter().filter(|&&l| l == c).count();
        let test = s.test.iter().filter(|&&i| labels[i] == c).count();
        assert_eq!(
            test,
            sqnn::cast::clamp_count((0.2 * total as f64).round(), total),
            "class {c}"
        );
    }
}

#[test]
fn regression_split_sizes() {
    let (train, test) = shuffled_indices(442, 0.25, 9).unwrap();
    assert_eq!((train.len(), test.len()), (331, 111));
    assert_partition(&Split { train, test }, 442);
}

#[test]
fn split_rejects_bad_test_size() {
    for ts in [0.0, 1.0, -0.1, 1.5, f64::NAN, f64::INFINITY] {
        let e = shuffled_indices(100, ts, 0).unwrap_err();
        assert!(
            matches!(
                e,
                Error::InvalidParameter {
                    name: "test_size",
                    ..
                }
            ),
            "{ts}: {e}"
        );
        let e = stratified_indices(&[0, 1, 0, 1], ts, 0).unwrap_err();
        assert!(
            matches!(
                e,
                Error::InvalidParameter {
                    name: "test_size",
                    ..
                }
            ),
            "{ts}: {e}"
        );
    }
    // A side would be empty.
    assert!(shuffled_indices(10, 0.01, 0).is_err());
    assert!(shuffled_indices(10, 0.99, 0).is_err());
    assert!(shuffled_indices(1, 0.5, 0).is_err());
    assert!(shuffled_indices(0, 0.5, 0).is_err());
    assert!(stratified_indices(&[0, 1, 2], 0.5, 0).is_err()); // all singleton classes
    assert!(stratified_indices(&[], 0.5, 0).is_err());
}

#[test]
fn peer_split_matches_splits_json() {
    let json: serde_json::Value =
        serde_json::from_str(include_str!("../data/splits.json")).unwrap();
    for (name, n, n_train, n_test) in [("iris", 150, 112, 38), ("breast_cancer", 569, 426, 143)] {
        let s = peer_split(name).unwrap();
        assert_eq!((s.train.len(), s.test.len()), (n_train, n_test), "{name}");
        assert_partition(&s, n);
        let want: Vec<usize> = serde_json::from_value(json[name]["test"].clone()).unwrap();
        assert_eq!(s.test, want, "{name}");
        let want: Vec<usize> = serde_json::from_value(json[name]["train"].clone()).unwrap();
        assert_eq!(s.train, want, "{name}");
        // Stratified like sklearn: class proportions preserved within one row.
        let ds = Dataset::builtin(name).unwrap();
        let labels = ds.labels().unwrap();
        for c in 0..ds.n_classes().unwrap() {
            let total = labels.iter().filter(|&&l| l == c).count() as f64;
            let test = s.test.iter().filter(|&&i| labels[i] == c).count() as f64;
            assert!((test - 0.25 * total).abs() <= 1.0, "{name} class {c}");
        }
    }
    assert_eq!(peer_split("iris").unwrap().test[..3], [7, 10, 14]);
    assert!(peer_split("mnist").is_none());
    assert!(peer_split("nope").is_none());
}

#[test]
fn split_file_plain_and_named() {
    let ds = Dataset::builtin("iris").unwrap();
    let dir = tempfile::tempdir().unwrap();

    let plain = dir.path().join("s.json");
    std::fs::write(&plain, r#"{"train": [0, 1, 2, 50, 51], "test": [100, 3]}"#).unwrap();
    let s = split_from_file(&plain, &ds).unwrap();
    assert_eq!(
        s,
        Split {
            train: vec![0, 1, 2, 50, 51],
            test: vec![100, 3]
        }
    );

    let named = dir.path().join("splits.json");
    std::fs::write(&named, include_str!("../data/splits.json")).unwrap();
    assert_eq!(
        split_from_file(&named, &ds).unwrap(),
        peer_split("iris").unwrap()
    );
    let bc = Dataset::builtin("breast_cancer").unwrap();
    assert_eq!(
        split_from_file(&named, &bc).unwrap(),
        peer_split("breast_cancer").unwrap()
    );
    let e = split_from_file(&named, &Dataset::builtin("mnist").unwrap())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("no split for data set `mnist`") && e.contains("`iris`"),
        "{e}"
    );

    // A CSV data set is matched by its file stem.
    let csv_path = dir.path().join("mydata.csv");
    std::fs::write(&csv_path, "a,b,c\n1,2,0\n3,4,1\n5,6,0\n").unwrap();
    let mine = Dataset::from_csv(&csv_path, None, None).unwrap();
    let f = dir.path().join("m.json");
    std::fs::write(&f, r#"{"mydata": {"train": [0, 2], "test": [1]}}"#).unwrap();
    assert_eq!(
        split_from_file(&f, &mine).unwrap(),
        Split {
            train: vec![0, 2],
            test: vec![1]
        }
    );
}

#[test]
fn split_file_errors() {
    let ds = Dataset::builtin("iris").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (r#"{"train": [0, 150], "test": [1]}"#, "row 150"),
        (r#"{"train": [0, 0], "test": [1]}"#, "twice"),
        (r#"{"train": [0, 1], "test": [1]}"#, "both"),
        (r#"{"train": [0, 1], "test": []}"#, "empty"),
        (r#"{"n": 100, "train": [0], "test": [1]}"#, "100 rows"),
        (r#"{"train": [0, -1], "test": [1]}"#, "not a split file"),
        ("not json", "not a split file"),
        (r#"{"train": [0]}"#, "not a split file"),
    ];
    for (i, (text, want)) in cases.iter().enumerate() {
        let p = dir.path().join(format!("{i}.json"));
        std::fs::write(&p, text).unwrap();
        let e = split_from_file(&p, &ds).unwrap_err();
        let s = e.to_string();
        assert!(matches!(e, Error::Data { .. }), "{s}");
        assert!(s.contains(want), "{text}: {s}");
        assert!(s.contains(&format!("{i}.json")), "{s}");
    }
    let e = split_from_file(&dir.path().join("absent.json"), &ds).unwrap_err();
    assert!(matches!(e, Error::Io { .. }));
}

// ---------------------------------------------------------------------------------------------
// Standardization and checks
// ---------------------------------------------------------------------------------------------

#[test]
fn standardizer_train_mean0_std1() {
    let ds = Dataset::builtin("breast_cancer").unwrap();
    let split = train_test_split(&ds, 0.25, 3).unwrap();
    let train = ds.subset(&split.train);
    let sc = Standardizer::fit(&train.x);
    let z = sc.transform(&train.x);
    for col in z.columns() {
        let m = col.mean().unwrap();
        let s = col.std(0.0);
        assert!(m.abs() < 1e-10, "mean {m}");
        assert!((s - 1.0).abs() < 1e-10, "std {s}");
    }
    // Test rows use the training statistics, so they are not exactly standardized.
    let zt = sc.transform(&ds.subset(&split.test).x);
    assert!(zt
        .columns()
        .into_iter()
        .any(|c| c.mean().unwrap().abs() > 1e-6));
}

#[test]
fn standardizer_population_std_and_constant_columns() {
    let x = array![[1.0, 5.0], [3.0, 5.0]];
    let sc = Standardizer::fit(&x);
    assert_eq!(sc.mean, vec![2.0, 5.0]);
    assert_eq!(sc.std, vec![1.0, 1.0]); // population std of [1, 3] is 1; constant -> 1
    assert_eq!(sc.transform(&x), array![[-1.0, 0.0], [1.0, 0.0]]);
    // Constant column with rounding noise in the mean stays finite and zero.
    let x = Array2::from_elem((7, 1), 0.1);
    let z = Standardizer::fit(&x).transform(&x);
    assert!(z.iter().all(|v| v.abs() < 1e-12), "{z:?}");
    let sc = Standardizer::fit(&Array2::zeros((0, 3)));
    assert_eq!(sc.std, vec![1.0; 3]);
}

#[test]
fn check_finite_names_row_and_column() {
    let mut x = Array2::<f64>::zeros((3, 4));
    assert!(check_finite(&x, "train").is_ok());
    x[[2, 1]] = f64::INFINITY;
    x[[2, 3]] = f64::NAN;
    let e = check_finite(&x, "train").unwrap_err();
    assert!(matches!(e, Error::Input(_)));
    let s = e.to_string();
    assert!(
        s.contains("train") && s.contains("row 2, column 1") && s.contains("inf"),
        "{s}"
    );
}

#[test]
fn subset_keeps_rows_in_order() {
    let ds = Dataset::builtin("iris").unwrap();
    let sub = ds.subset(&[149, 0, 50]);
    assert_eq!(sub.n_samples(), 3);
    assert_eq!(sub.x.row(0), ds.x.row(149));
    assert_eq!(sub.y, vec![2.0, 0.0, 1.0]);
    assert_eq!(sub.task, ds.task);
    assert_eq!(sub.feature_names, ds.feature_names);
}

#[test]
fn task_kind_serde_and_names() {
    assert_eq!(
        serde_json::to_string(&TaskKind::Classify).unwrap(),
        "\"classify\""
    );
    assert_eq!(TaskKind::of(&Task::Regress), TaskKind::Regress);
    assert_eq!("regress".parse::<TaskKind>().ok(), Some(TaskKind::Regress));
}

// ---------------------------------------------------------------------------------------------
// Never panic
// ---------------------------------------------------------------------------------------------

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn csv_random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400),
                                    task in proptest::option::of(prop_oneof![Just(TaskKind::Classify), Just(TaskKind::Regress)])) {
        let _ = Dataset::from_csv_reader("p.csv", bytes.as_slice(), None, task);
        let _ = Dataset::from_csv_reader("p.csv", bytes.as_slice(), Some("a"), task);
    }

    #[test]
    fn csv_random_text_never_panics(text in "[abyt0-9.,\"\n\r eEnaif+-]{0,300}",
                                    target in proptest::option::of("[aby]"),
                                    task in proptest::option::of(prop_oneof![Just(TaskKind::Classify), Just(TaskKind::Regress)])) {
        if let Ok(ds) = Dataset::from_csv_reader("p.csv", text.as_bytes(), target.as_deref(), task) {
            prop_assert_eq!(ds.x.nrows(), ds.y.len());
            prop_assert!(ds.n_features() >= 2);
            prop_assert!(check_finite(&ds.x, "x").is_ok());
            if let Some(k) = ds.n_classes() {
                prop_assert!(k >= 2);
                prop_assert!(ds.labels().unwrap().iter().all(|&l| l < k));
            }
        }
    }

    #[test]
    fn csv_numeric_tables_roundtrip(rows in proptest::collection::vec(
        proptest::collection::vec(-1e6f64..1e6, 4), 1..20)) {
        let mut text = String::from("a,b,c,y\n");
        for r in &rows {
            text.push_str(&format!("{},{},{},{}\n", r[0], r[1], r[2], r[3]));
        }
        let ds = Dataset::from_csv_reader("p.csv", text.as_bytes(), None, Some(TaskKind::Regress)).unwrap();
        prop_assert_eq!(ds.n_samples(), rows.len());
        for (i, r) in rows.iter().enumerate() {
            prop_assert_eq!(ds.x.row(i).to_vec(), r[..3].to_vec());
            prop_assert_eq!(ds.y[i], r[3]);
        }
    }

    #[test]
    fn stratified_split_is_a_partition(labels in proptest::collection::vec(0usize..4, 2..60),
                                       ts in 0.05f64..0.95, seed in any::<u64>()) {
        if let Ok((train, test)) = stratified_indices(&labels, ts, seed) {
            assert_partition(&Split { train, test }, labels.len());
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Rows to predict (`Schema::load_rows`)
// ---------------------------------------------------------------------------------------------

fn load_rows(schema: &sqnn::data::Schema, text: &str) -> sqnn::Result<sqnn::data::RowsToPredict> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rows.csv");
    std::fs::write(&path, text).unwrap();
    schema.load_rows(&path, None, 2)
}

#[test]
fn rows_to_predict_match_by_name_with_or_without_targets() {
    use sqnn::data::{ColumnMatch, Schema};
    let pets = Schema {
        feature_names: Some(vec!["a".into(), "b".into()]),
        task: Task::Classify {
            classes: vec!["1".into(), "cat".into(), "dog".into()],
        },
    };
    // One row, no target: fine (training data needs more; new rows do not).
    let r = load_rows(&pets, "b,a\n2,1\n").unwrap();
    assert_eq!(
        (r.x, r.y, r.columns),
        (array![[1.0, 2.0]], None, ColumnMatch::ByName)
    );
    // A target of one class, and a numeric label written as the model names it (1.0 is 1).
    let r = load_rows(&pets, "a,kind,b\n1,dog,2\n3,dog,4\n5,1.0,6\n").unwrap();
    assert_eq!(r.y, Some(vec![2.0, 2.0, 0.0]));
    assert_eq!(r.x.row(2).to_vec(), vec![5.0, 6.0]);
    // Unknown labels, missing or extra columns: refused, naming them.
    for (text, names) in [
        ("a,b,kind\n1,2,Cat\n", vec!["`Cat`", "`dog`"]),
        ("a,c\n1,2\n", vec!["`b`", "`c`"]),
        ("a,b,c,d\n1,2,3,4\n", vec!["`c`", "`d`"]),
        ("a,b\n1,x\n", vec!["line 2", "`x`"]),
    ] {
        let e = load_rows(&pets, text).unwrap_err().to_string();
        assert!(names.iter().all(|n| e.contains(n)), "{text:?}: {e}");
    }
    // Regression by position (no names recorded): the column after the features is the target.
    let value = Schema {
        feature_names: None,
        task: Task::Regress,
    };
    let r = load_rows(&value, "x,y,t\n1,2,0.5\n").unwrap();
    assert_eq!((r.y, r.columns), (Some(vec![0.5]), ColumnMatch::ByPosition));
    let e = load_rows(&value, "x,y,t\n1,2,big\n")
        .unwrap_err()
        .to_string();
    assert!(e.contains("line 2") && e.contains("`big`"), "{e}");
}
