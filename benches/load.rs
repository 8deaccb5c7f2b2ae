//! A bounded load test of `sqnn serve` on loopback (it stops by itself): the real binary, iris,
//! one evaluation key. It measures
//! 1. the service's overhead against in-process evaluation of one sample (same keys, same
//!    process measuring, alternated so that machine load hits both alike) and the key upload;
//! 2. `SQNN_LOAD_CLIENTS` concurrent clients (default 4) sending `SQNN_LOAD_REQUESTS` requests
//!    each (default 5) of one sample, without retries: throughput, p50/p95/p99 latency, 503s,
//!    errors and the server's peak memory.
//!
//! `cargo bench --bench load` (`SQNN_LOAD_WORKERS`, `SQNN_LOAD_QUEUE` set the server's pool;
//! defaults 2 and 16).

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use sqnn::analyze::analyze;
use sqnn::deploy::{Client, Session};
use sqnn::ir::IntGraph;
use sqnn::progress::NoProgress;
use sqnn::tfhe::{load_client_key, load_server_key};
use sqnn::{Dataset, SplitSpec};

const BIN: &str = env!("CARGO_BIN_EXE_sqnn");
const TOKEN: &str = "load-test-0123456789abcdef0123";

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn quantile(sorted: &[f64], q: f64) -> f64 {
    let i = sqnn::cast::clamp_count(((sorted.len() as f64 - 1.0) * q).round(), usize::MAX);
    sorted[i.min(sorted.len() - 1)]
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    quantile(&v, 0.5)
}

/// `VmHWM` (peak resident memory) of process `pid`, MiB.
fn peak_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

fn main() {
    let (clients, requests) = (env("SQNN_LOAD_CLIENTS", 4), env("SQNN_LOAD_REQUESTS", 5));
    let (workers, queue) = (env("SQNN_LOAD_WORKERS", 2), env("SQNN_LOAD_QUEUE", 16));
    let dir = tempfile::tempdir().unwrap();
    let circuits = dir.path().join("circuits");
    std::fs::create_dir(&circuits).unwrap();
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("circuits/iris.circuit.json");
    std::fs::copy(&repo, circuits.join("iris.circuit.json")).unwrap();
    let keys = dir.path().join("keys");
    let st = Command::new(BIN)
        .args([
            "keygen",
            repo.to_str().unwrap(),
            "--out-dir",
            keys.to_str().unwrap(),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(st.success(), "keygen");
    let tokens = dir.path().join("tokens");
    std::fs::write(&tokens, format!("load {TOKEN}\n")).unwrap();
    let mut server = Command::new(BIN)
        .arg("serve")
        .args(["--circuits", circuits.to_str().unwrap()])
        .args(["--store", dir.path().join("store").to_str().unwrap()])
        .args([
            "--listen",
            "127.0.0.1:0",
            "--tokens",
            tokens.to_str().unwrap(),
        ])
        .args([
            "--workers",
            &workers.to_string(),
            "--queue",
            &queue.to_string(),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(server.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap()
        .to_string();

    let graph = IntGraph::load(&repo).unwrap();
    let ds = Dataset::builtin("iris").unwrap();
    let split = SplitSpec::Auto.split(&ds).unwrap();
    let inputs = graph.quantize_inputs(&ds.subset(&split.test).x).unwrap();
    let checked = analyze(graph).unwrap().check().unwrap();
    let key = load_client_key(&keys, &checked).unwrap();
    let server_key_bytes = std::fs::read(keys.join("server.key")).unwrap();

    let client = Client::new(&url, TOKEN).unwrap();
    let t = Instant::now();
    let (info, _) = client.ensure_key(&server_key_bytes).unwrap();
    let upload_s = t.elapsed().as_secs_f64();
    let session = Session {
        circuit: "iris",
        checked: &checked,
        key: &key,
        key_id: &info.key_id,
    };

    // 1. Overhead: one sample in process against one sample through the service, alternated.
    let sk = load_server_key(&keys, &checked).unwrap();
    let prepared = sk.prepare(&checked).unwrap();
    let (mut local, mut remote, mut on_server) = (Vec::new(), Vec::new(), Vec::new());
    client
        .predict(&session, &inputs[..1], 1, &NoProgress)
        .unwrap(); // warm the cache
    for x in inputs.iter().take(10) {
        let enc = key.encrypt(&checked, x).unwrap();
        let t = Instant::now();
        sk.evaluate_prepared(&checked, &prepared, &enc, &NoProgress)
            .unwrap();
        local.push(t.elapsed().as_secs_f64() * 1e3);
        let p = client
            .predict(&session, std::slice::from_ref(x), 1, &NoProgress)
            .unwrap();
        remote.push(p.round_trip_ms[0]);
        on_server.push(p.server_ms[0]);
    }
    let (l, r, s) = (median(local), median(remote), median(on_server));
    println!("iris, one sample, median of 10 alternated runs:");
    println!("  in process {l:.1} ms · through the service {r:.1} ms round trip ({s:.1} ms on the server)");
    println!(
        "  service overhead {:+.1} % · key upload {upload_s:.2} s ({} MB)",
        (r / l - 1.0) * 100.0,
        server_key_bytes.len() / 1_000_000
    );

    // 2. Load: concurrent clients, no retries, loopback only.
    let t = Instant::now();
    let results: Vec<(Vec<f64>, usize, usize)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..clients)
            .map(|c| {
                let client = client.clone().with_retries(1, Duration::from_millis(1));
                let (session, inputs) = (&session, &inputs);
                scope.spawn(move || {
                    let (mut lat, mut busy, mut errors) = (Vec::new(), 0, 0);
                    for i in 0..requests {
                        let x = &inputs[(c * requests + i) % inputs.len()];
                        match client.predict(session, std::slice::from_ref(x), 1, &NoProgress) {
                            Ok(p) => lat.push(p.round_trip_ms[0]),
                            Err(sqnn::Error::Service {
                                status: Some(503), ..
                            }) => busy += 1,
                            Err(e) => {
                                eprintln!("error: {e}");
                                errors += 1;
                            }
                        }
                    }
                    (lat, busy, errors)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let secs = t.elapsed().as_secs_f64();
    let mut lat: Vec<f64> = results.iter().flat_map(|r| r.0.iter().copied()).collect();
    lat.sort_by(f64::total_cmp);
    let busy: usize = results.iter().map(|r| r.1).sum();
    let errors: usize = results.iter().map(|r| r.2).sum();
    println!(
        "{clients} clients × {requests} requests (server: {workers} workers, queue {queue}), {secs:.1} s:"
    );
    if lat.is_empty() {
        println!("  no request succeeded");
    } else {
        println!(
            "  {:.2} samples/s · p50 {:.0} ms · p95 {:.0} ms · p99 {:.0} ms · 503: {busy} · errors: {errors} · server peak memory {:.0} MiB",
            lat.len() as f64 / secs,
            quantile(&lat, 0.5),
            quantile(&lat, 0.95),
            quantile(&lat, 0.99),
            peak_mib(server.id())
        );
    }
    let _ = server.kill();
    let _ = server.wait();
}
