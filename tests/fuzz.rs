//! Fuzz harnesses, one per input format sqnn reads: circuit files, model files, CSV files, key
//! and ciphertext files. Each case mutates a valid file (byte flips, cuts, insertions,
//! duplicated spans, numbers replaced by extreme ones; for circuits also random edits of the
//! parsed graph, saved with a valid checksum) or makes random input, feeds it to the reader,
//! and then to whatever uses what was read (analysis, the clear backend, prediction,
//! decryption). A case passes when nothing panics: the input is either refused with an error
//! or used. proptest drives the cases (and shrinks a failure to a small one).
//!
//! A quick run of each format is part of the test suite. The long runs (10^5 cases per format)
//! are ignored; with the peak memory of the process:
//! ```text
//! cargo test --release --test fuzz -- --ignored --nocapture
//! SQNN_FUZZ_CASES=1000000 cargo test --release --test fuzz long_csv -- --ignored --nocapture
//! ```

mod common;

use std::sync::atomic::{AtomicU64, Ordering};

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use sqnn::analyze::analyze;
use sqnn::data::{Dataset, Schema};
use sqnn::execute::ClearBackend;
use sqnn::ir::{IntGraph, Op};

/// Cases of a quick run (per format).
const QUICK: u32 = 200;
/// Cases of a long run (per format), unless `SQNN_FUZZ_CASES` says otherwise.
const LONG: u32 = 100_000;

fn long_cases() -> u32 {
    std::env::var("SQNN_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(LONG)
}

/// Runs `case` on `cases` seeds; fails on the first panic. Returns (accepted, refused).
fn fuzz(name: &str, cases: u32, case: impl Fn(u64) -> bool) -> (u64, u64) {
    let (ok, refused) = (AtomicU64::new(0), AtomicU64::new(0));
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    });
    let t = std::time::Instant::now();
    runner
        .run(&any::<u64>(), |seed| {
            let c = if case(seed) { &ok } else { &refused };
            c.fetch_add(1, Ordering::Relaxed);
            Ok(())
        })
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    let (ok, refused) = (ok.into_inner(), refused.into_inner());
    println!(
        "fuzz {name}: {} cases in {:.1} s, {ok} accepted, {refused} refused with an error, 0 \
         panics; peak memory {}",
        ok + refused,
        t.elapsed().as_secs_f64(),
        peak_memory()
    );
    (ok, refused)
}

/// The process's peak resident memory (Linux), for the long runs' reports.
fn peak_memory() -> String {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .map(|l| l["VmHWM:".len()..].trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into())
}

/// Numbers that break careless code.
const EXTREMES: &[&str] = &[
    "0",
    "-1",
    "1",
    "255",
    "65536",
    "4294967296",
    "9223372036854775807",
    "-9223372036854775808",
    "18446744073709551615",
    "99999999999999999999999",
    "1e308",
    "-1e308",
    "1e-320",
    "NaN",
    "null",
    "\"\"",
    "[]",
    "{}",
];

/// 1 to 4 random edits of `base`.
fn mutate(base: &[u8], rng: &mut ChaCha8Rng) -> Vec<u8> {
    let mut b = base.to_vec();
    for _ in 0..rng.gen_range(1..=4) {
        let n = b.len().max(1);
        let at = rng.gen_range(0..n).min(b.len());
        match rng.gen_range(0..7) {
            0 if !b.is_empty() => {
                let i = at.min(b.len() - 1);
                b[i] = rng.gen();
            }
            1 => {
                let end = (at + rng.gen_range(1..64)).min(b.len());
                b.drain(at..end);
            }
            2 => {
                let ins: Vec<u8> = (0..rng.gen_range(1..16)).map(|_| rng.gen()).collect();
                b.splice(at..at, ins);
            }
            3 => {
                let end = (at + rng.gen_range(1..256)).min(b.len());
                let span = b[at..end].to_vec();
                b.splice(at..at, span);
            }
            4 => b.truncate(at),
            _ => {
                // A run of digits (a number) becomes an extreme value.
                let start = (at..b.len()).find(|&i| b[i].is_ascii_digit());
                if let Some(s) = start {
                    let mut e = s;
                    while e < b.len() && (b[e].is_ascii_digit() || b[e] == b'.') {
                        e += 1;
                    }
                    let x = EXTREMES[rng.gen_range(0..EXTREMES.len())]
                        .as_bytes()
                        .to_vec();
                    b.splice(s..e, x);
                }
            }
        }
    }
    b
}

// ---- circuit files --------------------------------------------------------------------------

fn committed(name: &str) -> String {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("circuits")
        .join(format!("{name}.circuit.json"));
    std::fs::read_to_string(p).unwrap()
}

/// A random edit of one field of the graph.
fn edit_graph(g: &mut IntGraph, rng: &mut ChaCha8Rng) {
    let pick = |rng: &mut ChaCha8Rng| -> i64 {
        match rng.gen_range(0..4) {
            0 => rng.gen_range(-3..=3),
            1 => rng.gen_range(-70_000..=70_000),
            2 => [i64::MIN, i64::MAX, 1 << 40, -(1 << 50)][rng.gen_range(0..4)],
            _ => rng.gen(),
        }
    };
    let n = g.nodes.len();
    let id = rng.gen_range(0..n);
    match rng.gen_range(0..10) {
        0 => g.meta.n_accum_bits = rng.gen_range(0..40),
        1 => g.meta.n_a_bits = rng.gen_range(0..30),
        2 => g.outputs.push(rng.gen_range(0..n + 2)),
        3 => {
            g.client.feature_mean.pop();
        }
        4 => g.client.input_scale = [0.0, -1.0, f64::MIN_POSITIVE, 1e300][rng.gen_range(0..4)],
        5 => g.nodes.swap(id, rng.gen_range(0..n)),
        _ => match &mut g.nodes[id].op {
            Op::Input { lo, hi, feature } => match rng.gen_range(0..3) {
                0 => *lo = pick(rng),
                1 => *hi = pick(rng),
                _ => *feature = rng.gen_range(0..8),
            },
            Op::Dot { terms, constant } => match rng.gen_range(0..4) {
                0 => *constant = pick(rng),
                1 if !terms.is_empty() => {
                    let k = rng.gen_range(0..terms.len());
                    terms[k].1 = pick(rng);
                }
                2 if !terms.is_empty() => {
                    let k = rng.gen_range(0..terms.len());
                    terms[k].0 = rng.gen_range(0..n + 2);
                }
                _ => terms.push((rng.gen_range(0..n + 2), pick(rng))),
            },
            Op::Lut {
                input,
                offset,
                round_bits,
                out_lo,
                out_hi,
                table,
            } => match rng.gen_range(0..6) {
                0 => *input = rng.gen_range(0..n + 2),
                1 => *offset = pick(rng),
                2 => *round_bits = rng.gen_range(0..70),
                3 => *out_lo = pick(rng),
                4 => *out_hi = pick(rng),
                _ => {
                    let len = rng.gen_range(0..3000);
                    table.resize(len, pick(rng));
                }
            },
        },
    }
}

/// Reads `text` as a circuit and, if it is accepted, analyzes it, evaluates it in clear on
/// random inputs and quantizes random rows: `true` when accepted.
fn circuit_case(text: &str, rng: &mut ChaCha8Rng) -> bool {
    let Ok(g) = IntGraph::from_json(text) else {
        return false;
    };
    let nf = g.n_features();
    let rows = ndarray::Array2::from_shape_fn((3, nf), |_| rng.gen_range(-1e6..1e6));
    let inputs = g.quantize_inputs(&rows);
    let Ok(an) = analyze(g) else {
        return true;
    };
    if let Ok(inputs) = inputs {
        let out = ClearBackend::default().evaluate(&an, &inputs);
        if let Ok(out) = out {
            for o in &out {
                an.graph().predict(o);
            }
        }
    }
    let req = sqnn::PlanRequest::new(sqnn::FheMode::Approximate);
    let _ = sqnn::plan(&sqnn::PlanFacts::new(&an), &req);
    true
}

fn fuzz_circuits(cases: u32) {
    let bases: Vec<String> = ["iris", "diabetes", "breast_cancer"]
        .iter()
        .map(|n| committed(n))
        .collect();
    let graphs: Vec<IntGraph> = bases
        .iter()
        .map(|t| IntGraph::from_json(t).unwrap())
        .collect();
    let (ok, refused) = fuzz("circuit files", cases, |seed| {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let k = rng.gen_range(0..bases.len());
        if rng.gen_bool(0.5) {
            // Text edits (mostly caught by the parser or the checksum).
            let bytes = mutate(bases[k].as_bytes(), &mut rng);
            circuit_case(&String::from_utf8_lossy(&bytes), &mut rng)
        } else {
            // Graph edits saved with a valid checksum: the structural rules must catch them.
            let mut g = graphs[k].clone();
            for _ in 0..rng.gen_range(1..=3) {
                edit_graph(&mut g, &mut rng);
            }
            match g.to_json() {
                Ok(text) => circuit_case(&text, &mut rng),
                Err(_) => false,
            }
        }
    });
    assert!(ok > 0 && refused > 0, "{ok} accepted, {refused} refused");
}

#[test]
fn circuit_files() {
    fuzz_circuits(QUICK);
}

#[test]
#[ignore = "long fuzz run: cargo test --release --test fuzz -- --ignored --nocapture"]
fn long_circuit_files() {
    fuzz_circuits(long_cases());
}

// ---- model files ----------------------------------------------------------------------------

fn fuzz_models(cases: u32) {
    let dir = tempfile::tempdir().unwrap();
    let iris = Dataset::builtin("iris").unwrap();
    let params = sqnn::EstimatorParams {
        epochs: 3,
        ..Default::default()
    };
    let (model, _) = sqnn::Model::fit(params, &iris, &sqnn::NoProgress).unwrap();
    let base_path = dir.path().join("base.json");
    model.save(&base_path).unwrap();
    let base = std::fs::read(&base_path).unwrap();
    let path = dir.path().join("m.json");
    let value: serde_json::Value = serde_json::from_slice(&base).unwrap();
    let mut leaves = Vec::new();
    integer_leaves(&value["model"], "/model".into(), &mut leaves);
    let (ok, refused) = fuzz("model files", cases, |seed| {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let bytes = if rng.gen_bool(0.5) {
            mutate(&base, &mut rng)
        } else {
            // Integers (weights, indices, ranges, widths) are not in the exact float list:
            // the model's consistency checks must catch them.
            let mut v = value.clone();
            for _ in 0..rng.gen_range(1..=2) {
                let leaf = &leaves[rng.gen_range(0..leaves.len())];
                let x: i64 =
                    [-1, 0, 1, 7, 8, -9, 300, 1 << 31, i64::MAX, i64::MIN][rng.gen_range(0..10)];
                *v.pointer_mut(leaf).unwrap() = x.into();
            }
            serde_json::to_vec(&v).unwrap()
        };
        std::fs::write(&path, bytes).unwrap();
        let Ok(m) = sqnn::Model::load(&path) else {
            return false;
        };
        let _ = m.predict(&iris.x);
        if let Ok(g) = sqnn::lower::lower_model(&m, "fuzz", sqnn::Rounding::DEFAULT) {
            let _ = analyze(g);
        }
        true
    });
    assert!(ok > 0 && refused > 0, "{ok} accepted, {refused} refused");
}

/// JSON pointers to every integer under `v`.
fn integer_leaves(v: &serde_json::Value, at: String, out: &mut Vec<String>) {
    match v {
        serde_json::Value::Number(n) if n.is_i64() || n.is_u64() => out.push(at),
        serde_json::Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                integer_leaves(x, format!("{at}/{i}"), out);
            }
        }
        serde_json::Value::Object(o) => {
            for (k, x) in o {
                integer_leaves(x, format!("{at}/{k}"), out);
            }
        }
        _ => {}
    }
}

#[test]
fn model_files() {
    fuzz_models(QUICK);
}

#[test]
#[ignore = "long fuzz run: cargo test --release --test fuzz -- --ignored --nocapture"]
fn long_model_files() {
    fuzz_models(long_cases());
}

// ---- CSV files ------------------------------------------------------------------------------

/// Random CSV text: a header, then rows of numbers, words, empty cells, quotes and extremes.
fn random_csv(rng: &mut ChaCha8Rng) -> Vec<u8> {
    let cols = rng.gen_range(0..6);
    let rows = rng.gen_range(0..8);
    let cell = |rng: &mut ChaCha8Rng| -> String {
        match rng.gen_range(0..8) {
            0 => String::new(),
            1 => "a\"b".into(),
            2 => "\"x,y\"".into(),
            3 => EXTREMES[rng.gen_range(0..EXTREMES.len())].into(),
            4 => ["cat", "dog", "\u{feff}z", "é"][rng.gen_range(0..4)].into(),
            _ => format!("{}", rng.gen_range(-5..5)),
        }
    };
    let mut s = String::new();
    for r in 0..=rows {
        let n = if rng.gen_bool(0.9) {
            cols
        } else {
            rng.gen_range(0..7)
        };
        let line: Vec<String> = (0..n)
            .map(|j| {
                if r == 0 && rng.gen_bool(0.8) {
                    format!("c{j}")
                } else {
                    cell(rng)
                }
            })
            .collect();
        s += &line.join(if rng.gen_bool(0.95) { "," } else { ";" });
        s += ["\n", "\r\n", "\n\n"][rng.gen_range(0..3)];
    }
    s.into_bytes()
}

fn fuzz_csv(cases: u32) {
    let iris = Dataset::builtin("iris").unwrap();
    let mut base = String::from("a,b,c,d,species\n");
    for (r, row) in iris.x.rows().into_iter().enumerate().take(20) {
        let cells: Vec<String> = row.iter().map(|v| v.to_string()).collect();
        base += &format!("{},{}\n", cells.join(","), ["x", "y", "z"][r % 3]);
    }
    let schema = Schema {
        feature_names: Some(vec!["a".into(), "b".into(), "c".into(), "d".into()]),
        task: sqnn::Task::Classify {
            classes: vec!["x".into(), "y".into(), "z".into()],
        },
    };
    let (ok, refused) = fuzz("CSV files", cases, |seed| {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let bytes = if rng.gen_bool(0.5) {
            mutate(base.as_bytes(), &mut rng)
        } else {
            random_csv(&mut rng)
        };
        let target = if rng.gen_bool(0.2) { Some("c1") } else { None };
        let task = [
            None,
            Some(sqnn::data::TaskKind::Classify),
            Some(sqnn::data::TaskKind::Regress),
        ][rng.gen_range(0..3)];
        let Ok(ds) = Dataset::from_csv_reader("fuzz.csv", bytes.as_slice(), target, task) else {
            return false;
        };
        let _ = schema.conform(&ds);
        let spec = sqnn::SplitSpec::Seeded {
            test_size: 0.25,
            seed,
        };
        let _ = spec.split(&ds);
        true
    });
    assert!(ok > 0 && refused > 0, "{ok} accepted, {refused} refused");
}

#[test]
fn csv_files() {
    fuzz_csv(QUICK);
}

#[test]
#[ignore = "long fuzz run: cargo test --release --test fuzz -- --ignored --nocapture"]
fn long_csv_files() {
    fuzz_csv(long_cases());
}

// ---- key and ciphertext files ---------------------------------------------------------------

#[cfg(feature = "tfhe-backend")]
mod keys {
    use super::*;
    use sha2::{Digest, Sha256};
    use sqnn::tfhe::{ClientKey, EncryptedInput, ObjectInfo, ServerKey};

    /// After a payload edit, the header's checksum is fixed half of the time, so that the
    /// payload decoder (not only the checksum) meets the damage.
    fn fix_checksum(bytes: &mut Vec<u8>, rng: &mut ChaCha8Rng) {
        if bytes.len() < 12 || !rng.gen_bool(0.5) {
            return;
        }
        let hlen = sqnn::cast::to_usize(u32::from_le_bytes([
            bytes[8], bytes[9], bytes[10], bytes[11],
        ]));
        let Some(h) = bytes.get(12..12 + hlen) else {
            return;
        };
        let Ok(mut header) = serde_json::from_slice::<serde_json::Value>(h) else {
            return;
        };
        let payload = &bytes[12 + hlen..];
        let sum: String = Sha256::digest(payload)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        header["payload_sha256"] = sum.into();
        header["payload_bytes"] = sqnn::cast::to_u64(payload.len()).into();
        let h = serde_json::to_vec(&header).unwrap();
        let mut out = b"SQNNFHE1".to_vec();
        out.extend_from_slice(&u32::try_from(h.len()).unwrap().to_le_bytes());
        out.extend_from_slice(&h);
        out.extend_from_slice(payload);
        *bytes = out;
    }

    pub fn fuzz_keys(cases: u32) {
        let c = common::tfhe::circuit2();
        let (client, server) = common::tfhe::keys2();
        let dir = tempfile::tempdir().unwrap();
        let cpath = dir.path().join("client.key");
        client.save(&cpath).unwrap();
        let client_bytes = std::fs::read(&cpath).unwrap();
        let server_bytes = server.to_bytes().unwrap();
        let lows: Vec<i64> = c
            .graph()
            .input_nodes()
            .iter()
            .map(|&id| match c.graph().nodes[id].op {
                Op::Input { lo, .. } => lo,
                _ => 0,
            })
            .collect();
        let input = client.encrypt(&c, &lows).unwrap().to_bytes().unwrap();
        let path = dir.path().join("k");
        let (ok, _) = fuzz("key and ciphertext files", cases, |seed| {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            match rng.gen_range(0..3) {
                0 => {
                    let mut b = mutate(&client_bytes, &mut rng);
                    fix_checksum(&mut b, &mut rng);
                    std::fs::write(&path, &b).unwrap();
                    match ClientKey::load(&path, &c) {
                        Ok(k) => {
                            let _ = k.encrypt(&c, &lows);
                            true
                        }
                        Err(_) => false,
                    }
                }
                1 => {
                    // Edits in the header and the start of the payload; a decoded server key
                    // would take a second per case, so the checksum stays as it was.
                    let head = server_bytes.len().min(4096);
                    let mut b = mutate(&server_bytes[..head], &mut rng);
                    b.extend_from_slice(&server_bytes[head..]);
                    let _ = ObjectInfo::read(&b);
                    ServerKey::from_bytes(&b, "fuzzed server key", &c).is_ok()
                }
                _ => {
                    let mut b = mutate(&input, &mut rng);
                    fix_checksum(&mut b, &mut rng);
                    let _ = ObjectInfo::read(&b);
                    match EncryptedInput::from_bytes(&b, "fuzzed input", &c) {
                        Ok(e) => {
                            let _ = server.evaluate(&c, &e).map(|o| client.decrypt(&c, &o));
                            true
                        }
                        Err(_) => false,
                    }
                }
            }
        });
        println!("({ok} accepted: edits that leave a valid object)");
    }
}

#[cfg(feature = "tfhe-backend")]
#[test]
fn key_and_ciphertext_files() {
    keys::fuzz_keys(QUICK);
}

#[cfg(feature = "tfhe-backend")]
#[test]
#[ignore = "long fuzz run: cargo test --release --test fuzz -- --ignored --nocapture"]
fn long_key_and_ciphertext_files() {
    keys::fuzz_keys(long_cases());
}
