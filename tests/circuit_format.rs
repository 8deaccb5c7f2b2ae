//! The circuit file format: round trips, and full validation of malformed, truncated or
//! tampered files (an error naming the problem, never a panic).

mod common;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sqnn::analyze::analyze;
use sqnn::ir::{IntGraph, Op};

fn sample() -> IntGraph {
    common::random_graph(11, 4, 3, 5, 3)
}

/// Loads like the CLI does: parse, validate, analyze.
fn load(text: &str) -> Result<(), String> {
    let g = IntGraph::from_json(text).map_err(|e| e.to_string())?;
    analyze(g).map(|_| ()).map_err(|e| e.to_string())
}

fn committed() -> Vec<(String, String)> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("circuits");
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(&dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.to_string_lossy().ends_with(".circuit.json") {
                out.push((
                    p.display().to_string(),
                    std::fs::read_to_string(&p).unwrap(),
                ));
            }
        }
    }
    out.sort();
    out
}

#[test]
fn round_trip_is_exact() {
    for seed in 0..50 {
        let g = common::random_graph(
            seed,
            1 + sqnn::cast::to_usize(seed % 5),
            1 + sqnn::cast::to_usize(seed % 3),
            4,
            2,
        );
        let text = g.to_json().unwrap();
        let back = IntGraph::from_json(&text).unwrap();
        assert_eq!(back, g);
        assert_eq!(back.to_json().unwrap(), text);
    }
}

#[test]
fn committed_circuits_load_and_round_trip() {
    for (path, text) in committed() {
        let g = IntGraph::from_json(&text).unwrap_or_else(|e| panic!("{path}: {e}"));
        assert_eq!(
            g.to_json().unwrap(),
            text,
            "{path} is not in canonical form"
        );
        analyze(g).unwrap_or_else(|e| panic!("{path}: {e}"));
    }
}

/// Thousands of random byte-level mutations of every committed circuit and of a random graph:
/// each load returns (almost always an error), none panics.
#[test]
fn random_mutations_never_panic() {
    let mut files = committed();
    files.push(("random".into(), sample().to_json().unwrap()));
    let mut rng = ChaCha8Rng::seed_from_u64(2024);
    let per_file = 3000 / files.len().max(1) + 1;
    let mut loaded_ok = 0;
    for (_, text) in &files {
        let bytes = text.as_bytes();
        for _ in 0..per_file {
            let mut b = bytes.to_vec();
            match rng.gen_range(0..5) {
                0 => b.truncate(rng.gen_range(0..b.len())),
                1 => {
                    let i = rng.gen_range(0..b.len());
                    b[i] = rng.gen();
                }
                2 => {
                    let i = rng.gen_range(0..b.len());
                    b[i] = b"0123456789-,[]{}\"e."[rng.gen_range(0..19)];
                }
                3 => {
                    let i = rng.gen_range(0..b.len());
                    let j = (i + rng.gen_range(1..40)).min(b.len());
                    b.drain(i..j);
                }
                _ => {
                    let i = rng.gen_range(0..b.len());
                    b.insert(i, b"9"[0]);
                }
            }
            let t = String::from_utf8_lossy(&b);
            if load(&t).is_ok() {
                loaded_ok += 1;
            }
        }
    }
    // A mutation that still loads must have hit insignificant whitespace only.
    assert!(loaded_ok < 3000 / 20, "{loaded_ok} mutated files loaded");
}

/// Tampering that keeps the JSON well formed and the checksum right (a hostile writer) is caught
/// by validation, with a message naming the problem.
#[test]
fn structural_tampering_is_rejected_with_a_clear_error() {
    let g = sample();
    let first_dot = g
        .nodes
        .iter()
        .position(|n| matches!(n.op, Op::Dot { ref terms, .. } if !terms.is_empty()))
        .unwrap();
    let first_lut = g
        .nodes
        .iter()
        .position(|n| matches!(n.op, Op::Lut { .. }))
        .unwrap();
    type Tamper = Box<dyn Fn(&mut IntGraph)>;
    let cases: Vec<(&str, Tamper, &str)> = vec![
        (
            "dangling",
            Box::new(move |g| {
                if let Op::Dot { terms, .. } = &mut g.nodes[first_dot].op {
                    terms[0].0 = 10_000
                }
            }),
            "does not come before",
        ),
        (
            "weight",
            Box::new(move |g| {
                if let Op::Dot { terms, .. } = &mut g.nodes[first_dot].op {
                    terms[0].1 = 1 << 20
                }
            }),
            "outside",
        ),
        (
            "zero weight",
            Box::new(move |g| {
                if let Op::Dot { terms, .. } = &mut g.nodes[first_dot].op {
                    terms[0].1 = 0
                }
            }),
            "zero",
        ),
        (
            "table short",
            Box::new(move |g| {
                if let Op::Lut { table, .. } = &mut g.nodes[first_lut].op {
                    table.push(table[0])
                }
            }),
            "table",
        ),
        (
            "table entry",
            Box::new(move |g| {
                if let Op::Lut { table, out_hi, .. } = &mut g.nodes[first_lut].op {
                    table[0] = *out_hi + 1
                }
            }),
            "declared range",
        ),
        (
            "lut input",
            Box::new(move |g| {
                if let Op::Lut { input, .. } = &mut g.nodes[first_lut].op {
                    *input = 0
                }
            }),
            "dot",
        ),
        (
            "input range",
            Box::new(|g| {
                if let Op::Input { hi, .. } = &mut g.nodes[0].op {
                    *hi = 1 << 40
                }
            }),
            "wider",
        ),
        ("bits", Box::new(|g| g.meta.n_w_bits = 0), "n_w_bits"),
        ("outputs", Box::new(|g| g.outputs.push(0)), "output"),
        (
            "client",
            Box::new(|g| g.client.feature_std[0] = -1.0),
            "non-positive",
        ),
        (
            "feature",
            Box::new(|g| {
                if let Op::Input { feature, .. } = &mut g.nodes[0].op {
                    *feature = 99
                }
            }),
            "feature",
        ),
    ];
    for (name, tamper, needle) in cases {
        let mut t = g.clone();
        tamper(&mut t);
        let err = load(&t.to_json().unwrap()).expect_err(name);
        assert!(err.contains(needle), "{name}: {err}");
    }
}

#[test]
fn header_and_checksum_errors_say_what_to_do() {
    let text = sample().to_json().unwrap();
    let e = load(&text.replace("\"version\": 2", "\"version\": 3")).unwrap_err();
    assert!(e.contains("version 3") && e.contains("recompile"), "{e}");
    let e = load(&text.replace("sqnn-circuit", "other")).unwrap_err();
    assert!(e.contains("not an sqnn circuit"), "{e}");
    let e = load(&text[..text.len() / 2]).unwrap_err();
    assert!(e.contains("truncated"), "{e}");
    // Change one weight by hand, leaving the checksum: caught.
    let g = sample();
    let mut t = g.clone();
    if let Some(Op::Dot { constant, .. }) = t
        .nodes
        .iter_mut()
        .map(|n| &mut n.op)
        .find(|o| matches!(o, Op::Dot { .. }))
    {
        *constant += 1;
    }
    let tampered = t
        .to_json()
        .unwrap()
        .replace(&t.digest().unwrap(), &g.digest().unwrap());
    let e = load(&tampered).unwrap_err();
    assert!(e.contains("checksum"), "{e}");
    // A run-length count that would allocate terabytes is refused before allocating.
    let huge = text.replacen("\"table\":[[", "\"table\":[[0,18446744073709551615],[", 1);
    let e = load(&huge).unwrap_err();
    assert!(e.contains("table") || e.contains("malformed"), "{e}");
}

/// Version 2 records the plan (covered by the checksum); version 1 files, written before plans
/// were recorded, still load, with no plan and the same digest.
#[test]
fn the_recorded_plan_round_trips_and_version_1_files_still_load() {
    use sqnn::fhe::{self, FheMode, PlanFacts, PlanRequest};
    let g = sample();
    let digest = g.digest().unwrap();
    // A version 1 file: the same text under the old version number.
    let v1 = g
        .to_json()
        .unwrap()
        .replace("\"version\": 2", "\"version\": 1");
    let old = IntGraph::from_json(&v1).unwrap();
    assert_eq!(
        (old.plan.clone(), old.digest().unwrap()),
        (None, digest.clone())
    );
    // Record the plan the guard chooses, and read it back.
    let an = analyze(g.clone()).unwrap();
    let facts = PlanFacts::new(&an);
    let req = PlanRequest::new(FheMode::Approximate).cores(2);
    let chosen = fhe::plan(&facts, &req.clone().max_sigma(2.0)).unwrap();
    let mut with = g.clone();
    with.plan = Some(chosen.record());
    let text = with.to_json().unwrap();
    assert!(text.contains("\"plan\": {"), "{text}");
    let back = IntGraph::from_json(&text).unwrap();
    assert_eq!(back, with);
    assert_ne!(
        back.digest().unwrap(),
        digest,
        "the checksum covers the plan"
    );
    let again = fhe::recorded_plan(&facts, back.plan.as_ref().unwrap(), &req).unwrap();
    assert_eq!(
        (again.parameter_set, again.mode, again.space_bits),
        (chosen.parameter_set, chosen.mode, chosen.space_bits)
    );
    assert_eq!(
        again.recorded.as_deref(),
        Some(chosen.describe_choice().as_str())
    );
    // Edited by hand, checksum left: refused.
    let set = chosen.parameter_set.name();
    let edited = text.replace(set, "V1_8_PARAM_MESSAGE_3_CARRY_3_KS_PBS_TUNIFORM_2M128");
    assert!(load(&edited).unwrap_err().contains("checksum"));
    // A set this build does not know, checksum recomputed: an error naming it.
    let mut unknown = with.clone();
    unknown.plan.as_mut().unwrap().parameter_set = "V9_PARAM_FUTURE".into();
    let unknown = IntGraph::from_json(&unknown.to_json().unwrap()).unwrap();
    let e = fhe::recorded_plan(&facts, unknown.plan.as_ref().unwrap(), &req)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("V9_PARAM_FUTURE") && e.contains("recompile"),
        "{e}"
    );
    // Numbers that are not finite are refused on load.
    let mut nan = with.clone();
    nan.plan.as_mut().unwrap().cores = 0;
    let e = load(&nan.to_json().unwrap()).unwrap_err();
    assert!(e.contains("recorded plan"), "{e}");
}
