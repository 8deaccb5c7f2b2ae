//! `sqnn serve` and `sqnn client`, as a user runs them: the real binary on an ephemeral
//! loopback port, driven by the real client and by raw HTTP requests.
#![cfg(feature = "deploy")]

mod common;

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;

use serde_json::Value;

use sqnn::analyze::analyze;
use sqnn::deploy::wire::key_id;
use sqnn::deploy::{encrypt_batch, Batch, BatchKind};
use sqnn::execute::ClearBackend;
use sqnn::ir::IntGraph;
use sqnn::tfhe::{load_client_key, TfheBackend};
use sqnn::Dataset;

const BIN: &str = env!("CARGO_BIN_EXE_sqnn");
const ALICE: &str = "alice-0123456789abcdef0123456789";
const BOB: &str = "bob-fedcba9876543210fedcba98765432";

/// Circuits, tokens and key directories made once for every test.
struct Fixture {
    _dir: tempfile::TempDir,
    circuits: PathBuf,
    tokens: PathBuf,
    iris: PathBuf,
    iris2: PathBuf,
    cancer: PathBuf,
    diabetes: PathBuf,
    /// Keys of `linear`, a circuit without tables (diabetes, one layer).
    linear: PathBuf,
}

fn sqnn(args: &[&str]) -> std::process::Output {
    let out = Command::new(BIN)
        .env(
            "SQNN_CACHE_DIR",
            concat!(env!("CARGO_TARGET_TMPDIR"), "/no-cost-profile"),
        )
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "sqnn {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn keygen(circuit: &Path, out: &Path) {
    sqnn(&[
        "keygen",
        circuit.to_str().unwrap(),
        "--out-dir",
        out.to_str().unwrap(),
    ]);
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let circuits = dir.path().join("circuits");
        std::fs::create_dir(&circuits).unwrap();
        let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("circuits");
        for name in ["iris", "breast_cancer"] {
            let f = format!("{name}.circuit.json");
            std::fs::copy(repo.join(&f), circuits.join(&f)).unwrap();
        }
        let tokens = dir.path().join("tokens");
        std::fs::write(&tokens, format!("# tenants\nalice {ALICE}\nbob {BOB}\n")).unwrap();
        let f = Fixture {
            iris: dir.path().join("iris-keys"),
            iris2: dir.path().join("iris-keys-2"),
            cancer: dir.path().join("cancer-keys"),
            diabetes: dir.path().join("diabetes-keys"),
            linear: dir.path().join("linear-keys"),
            circuits,
            tokens,
            _dir: dir,
        };
        keygen(&f.circuits.join("iris.circuit.json"), &f.iris);
        keygen(&f.circuits.join("iris.circuit.json"), &f.iris2);
        keygen(&f.circuits.join("breast_cancer.circuit.json"), &f.cancer);
        keygen(&repo.join("diabetes.circuit.json"), &f.diabetes);
        let model = f._dir.path().join("linear.model.json");
        let linear = f.circuits.join("linear.circuit.json");
        let model_arg = model.to_str().unwrap();
        sqnn(
            &[
                "train",
                "--data",
                "diabetes",
                "--n-layers",
                "1",
                "--epochs",
                "3",
            ]
            .into_iter()
            .chain(["--out", model_arg, "--quiet"])
            .collect::<Vec<_>>(),
        );
        sqnn(&["compile", model_arg, "--out", linear.to_str().unwrap()]);
        keygen(&linear, &f.linear);
        f
    })
}

/// A running `sqnn serve`, killed when dropped.
struct Server {
    child: Child,
    url: String,
}

impl Server {
    fn start(store: &Path, extra: &[&str]) -> Server {
        let f = fixture();
        let mut child = Command::new(BIN)
            .env(
                "SQNN_CACHE_DIR",
                concat!(env!("CARGO_TARGET_TMPDIR"), "/no-cost-profile"),
            )
            .args(["serve", "--circuits"])
            .arg(&f.circuits)
            .arg("--store")
            .arg(store)
            .args(["--listen", "127.0.0.1:0", "--tokens"])
            .arg(&f.tokens)
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let url = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("first line: {line:?}"))
            .to_string();
        assert!(url.starts_with("http://127.0.0.1:"), "{url}");
        Server { child, url }
    }

    /// Stops with SIGTERM (graceful) and waits.
    fn stop(mut self) {
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        let status = self.child.wait().unwrap();
        assert!(status.success(), "graceful shutdown exits 0: {status:?}");
    }

    fn kill9(&mut self) {
        self.child.kill().unwrap();
        let _ = self.child.wait();
    }

    fn get(&self, path: &str, token: Option<&str>) -> (u16, String) {
        let mut r = ureq::get(&format!("{}{path}", self.url));
        if let Some(t) = token {
            r = r.set("authorization", &format!("Bearer {t}"));
        }
        answer(r.call())
    }

    fn post(&self, path: &str, token: &str, body: &[u8]) -> (u16, String) {
        let r = ureq::post(&format!("{}{path}", self.url))
            .set("authorization", &format!("Bearer {token}"));
        answer(r.send_bytes(body))
    }

    fn post_bytes(&self, path: &str, token: &str, body: &[u8]) -> (u16, Vec<u8>) {
        let r = ureq::post(&format!("{}{path}", self.url))
            .set("authorization", &format!("Bearer {token}"));
        match r.send_bytes(body) {
            Ok(r) => {
                let mut v = Vec::new();
                std::io::Read::read_to_end(&mut r.into_reader(), &mut v).unwrap();
                (200, v)
            }
            Err(ureq::Error::Status(c, r)) => (c, r.into_string().unwrap().into_bytes()),
            Err(e) => panic!("{e}"),
        }
    }

    /// Still serving: health answers and a valid evaluation works.
    fn assert_healthy(&self) {
        assert_eq!(self.get("/v1/health", None).0, 200);
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn answer(r: Result<ureq::Response, ureq::Error>) -> (u16, String) {
    match r {
        Ok(r) => (r.status(), r.into_string().unwrap()),
        Err(ureq::Error::Status(c, r)) => {
            let body = r.into_string().unwrap();
            let v: Value = serde_json::from_str(&body)
                .unwrap_or_else(|_| panic!("error bodies are JSON: {body}"));
            assert!(v["error"].as_str().is_some_and(|m| m.len() > 10), "{body}");
            (c, body)
        }
        Err(e) => panic!("transport error: {e}"),
    }
}

/// `sqnn client predict --json` against `server`: its JSON line.
fn predict(
    server: &Server,
    token: &str,
    keys: &Path,
    circuit: &str,
    data: &str,
    n: usize,
) -> Value {
    let n = n.to_string();
    client_predict(
        server,
        token,
        keys,
        circuit,
        &["--data", data, "--samples", &n],
    )
}

/// `sqnn client predict --json` of `circuit` with `keys` and the rows that `rows` choose.
fn client_predict(
    server: &Server,
    token: &str,
    keys: &Path,
    circuit: &str,
    rows: &[&str],
) -> Value {
    let mut args = vec![
        "client",
        "predict",
        "--server",
        &server.url,
        "--token",
        token,
        "--keys",
        keys.to_str().unwrap(),
        "--circuit",
        circuit,
        "--json",
    ];
    args.extend_from_slice(rows);
    let text = String::from_utf8(sqnn(&args).stdout).unwrap();
    serde_json::from_str(text.lines().last().unwrap()).unwrap()
}

/// The first `n` test rows of `data`, quantized for circuit `name`, and the circuit checked.
fn rows(name: &str, data: &str, n: usize) -> (sqnn::CheckedGraph, Vec<Vec<i64>>) {
    let f = fixture();
    let graph = IntGraph::load(&f.circuits.join(format!("{name}.circuit.json"))).unwrap();
    let ds = Dataset::builtin(data).unwrap();
    let split = sqnn::SplitSpec::Auto.split(&ds).unwrap();
    let inputs = graph
        .quantize_inputs(&ds.subset(&split.test[..n]).x)
        .unwrap();
    (analyze(graph).unwrap().check().unwrap(), inputs)
}

fn ints(v: &Value) -> Vec<Vec<i64>> {
    serde_json::from_value(v.clone()).unwrap()
}

fn predictions(v: &Value) -> Vec<f64> {
    v["predictions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_f64().unwrap())
        .collect()
}

#[test]
fn served_evaluation_matches_in_process_and_clear() {
    let f = fixture();
    let store = tempfile::tempdir().unwrap();
    let server = Server::start(store.path(), &[]);
    let mut bootstraps = 0;
    for (keys, circuit, data, n) in [
        (&f.iris, "iris", "iris", 5),
        (&f.cancer, "breast_cancer", "breast_cancer", 3),
    ] {
        // The real client: uploads the key, encrypts, posts, decrypts.
        let v = predict(&server, ALICE, keys, circuit, data, n);
        assert_eq!(v["samples"], n);
        assert_eq!(v["key_uploaded"], true);
        assert!(v["server_ms_per_sample"].as_f64().unwrap() > 0.0);
        let (checked, inputs) = rows(circuit, data, n);
        // Each sample is evaluated twice below: through the client and as one batch.
        bootstraps += 2 * n * checked.report().pbs_count;
        let clear = ClearBackend::default()
            .evaluate(checked.analyzed(), &inputs)
            .unwrap();
        assert_eq!(ints(&v["clear_outputs"]), clear);
        // Approximate reads: an output may be off by misreads (with the plan's probabilities),
        // never by a wrong key, circuit or encoding, which decrypt to noise spread over the
        // whole ciphertext space: every output stays within a quarter of its proved interval
        // of clear's, and each prediction is the argmax of what was decrypted.
        let served = ints(&v["outputs"]);
        let g = checked.graph();
        let near = |o: &[i64], c: &[i64]| {
            o.iter().zip(c).zip(&g.outputs).all(|((a, b), &id)| {
                let iv = checked.facts()[id].interval;
                (a - b).abs() <= (iv.hi - iv.lo) / 4
            })
        };
        for ((s, c), p) in served.iter().zip(&clear).zip(predictions(&v)) {
            assert!(near(s, c), "{s:?} vs clear {c:?}");
            assert_eq!(p, g.predict(s));
        }
        // The same ciphertexts evaluated by the service and in process decrypt alike (within
        // misreads: bootstraps draw no randomness, but each evaluation's misreads differ).
        let key = load_client_key(keys, &checked).unwrap();
        let id = v["key_id"].as_str().unwrap();
        let batch = encrypt_batch(&key, &checked, id, &inputs).unwrap();
        let (code, body) = server.post_bytes(
            &format!("/v1/circuits/{circuit}/evaluate"),
            ALICE,
            &batch.to_bytes().unwrap(),
        );
        assert_eq!(code, 200);
        let answer = Batch::from_bytes(&body, BatchKind::Outputs, n).unwrap();
        let remote = sqnn::deploy::decrypt_batch(&key, &checked, &answer).unwrap();
        let local = TfheBackend::load(keys, &checked).unwrap();
        for (i, s) in batch.samples.iter().enumerate() {
            let input = sqnn::tfhe::EncryptedInput::from_bytes(s, "sample", &checked).unwrap();
            let out = local.server().evaluate(&checked, &input).unwrap();
            let here = key.decrypt(&checked, &out).unwrap();
            assert!(near(&here, &clear[i]) && near(&remote[i], &clear[i]));
        }
    }
    // The metrics saw it: evaluations by route and status, bootstraps.
    let (code, text) = server.get("/v1/metrics", None);
    assert_eq!(code, 200);
    assert!(
        text.contains(
            r#"sqnn_requests_total{route="/v1/circuits/{name}/evaluate",status="200"} 10"#
        ),
        "{text}"
    );
    let line = text
        .lines()
        .find(|l| l.starts_with("sqnn_bootstraps_total "))
        .unwrap();
    let pbs: usize = line.split(' ').nth(1).unwrap().parse().unwrap();
    assert_eq!(pbs, bootstraps, "{line}");
    server.stop();
}

#[test]
fn a_linear_circuit_is_served_with_a_key_of_a_few_hundred_bytes() {
    let f = fixture();
    // No table, so no bootstrapping key: the upload is the key file's header alone.
    let key = std::fs::read(f.linear.join("server.key")).unwrap();
    assert!(key.len() < 4096, "{} bytes", key.len());
    let store = tempfile::tempdir().unwrap();
    let server = Server::start(store.path(), &[]);
    let n = 4;
    let v = predict(&server, ALICE, &f.linear, "linear", "diabetes", n);
    assert_eq!(v["key_uploaded"], true);
    let (checked, inputs) = rows("linear", "diabetes", n);
    assert_eq!(checked.report().pbs_count, 0);
    // Nothing is read under encryption: the outputs are the clear backend's, bit for bit.
    let clear = ClearBackend::default()
        .evaluate(checked.analyzed(), &inputs)
        .unwrap();
    assert_eq!(ints(&v["outputs"]), clear);
    assert_eq!(ints(&v["clear_outputs"]), clear);
    // Which the JSON says under clear names, and the deprecated one.
    for key in [
        "identical_outputs_share",
        "identical_predictions_share",
        "agreement_with_clear",
    ] {
        assert_eq!(v[key], 1.0, "{key}: {v}");
    }
    server.stop();
}

#[test]
fn keys_survive_a_restart_and_two_servers_share_one_store() {
    let f = fixture();
    let store = tempfile::tempdir().unwrap();
    let a = Server::start(store.path(), &[]);
    let b = Server::start(store.path(), &[]);
    let v = predict(&a, ALICE, &f.iris, "iris", "iris", 2);
    assert_eq!(v["key_uploaded"], true);
    // The other server finds the key in the shared store.
    let v = predict(&b, ALICE, &f.iris, "iris", "iris", 2);
    assert_eq!(v["key_uploaded"], false);
    assert_eq!(v["same_prediction_as_clear"], 1.0);
    // So does a restarted server.
    a.stop();
    b.stop();
    let a = Server::start(store.path(), &[]);
    let v = predict(&a, ALICE, &f.iris, "iris", "iris", 2);
    assert_eq!(v["key_uploaded"], false);
    assert_eq!(v["same_prediction_as_clear"], 1.0);
}

/// An iris batch of `n` test rows encrypted with `keys`, for key id `id`.
/// How many iris test rows make a request of at least `bootstraps` bootstraps (at most the 38
/// test rows), so that a test that needs a request still running does not depend on how few
/// bootstraps the committed circuit has.
fn iris_rows_for(bootstraps: usize) -> usize {
    let f = fixture();
    let graph = IntGraph::load(&f.circuits.join("iris.circuit.json")).unwrap();
    let per = analyze(graph).unwrap().check().unwrap().report().pbs_count;
    assert!(per > 0, "the iris circuit has no bootstrap");
    bootstraps.div_ceil(per).min(38)
}

fn iris_batch(keys: &Path, id: &str, n: usize) -> Vec<u8> {
    let f = fixture();
    let graph = IntGraph::load(&f.circuits.join("iris.circuit.json")).unwrap();
    let ds = Dataset::builtin("iris").unwrap();
    let split = sqnn::SplitSpec::Auto.split(&ds).unwrap();
    let inputs = graph
        .quantize_inputs(&ds.subset(&split.test[..n]).x)
        .unwrap();
    let checked = analyze(graph).unwrap().check().unwrap();
    let key = load_client_key(keys, &checked).unwrap();
    encrypt_batch(&key, &checked, id, &inputs)
        .unwrap()
        .to_bytes()
        .unwrap()
}

/// Sends only the headers of a POST announcing `len` bytes: the limit is enforced before the
/// body is read. Returns the status and body of the answer.
fn announce(server: &Server, path: &str, len: u64) -> (u16, String) {
    use std::io::Read;
    let addr = server.url.strip_prefix("http://").unwrap();
    let mut conn = std::net::TcpStream::connect(addr).unwrap();
    write!(
        conn,
        "POST {path} HTTP/1.1\r\nhost: {addr}\r\nauthorization: Bearer {ALICE}\r\n\
         connection: close\r\ncontent-length: {len}\r\n\r\n"
    )
    .unwrap();
    // The answer comes before the body is sent; the server may keep the connection open
    // waiting for it, so read until the JSON body is complete (or a generous timeout).
    conn.set_read_timeout(Some(std::time::Duration::from_secs(20)))
        .unwrap();
    let mut bytes = Vec::new();
    let mut buf = [0u8; 4096];
    while let Ok(n) = conn.read(&mut buf) {
        if n == 0 {
            break;
        }
        bytes.extend_from_slice(&buf[..n]);
        if bytes.ends_with(b"}") {
            break;
        }
    }
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let status = text.split(' ').nth(1).unwrap().parse().unwrap();
    (status, text)
}

fn upload(server: &Server, token: &str, keys: &Path) -> (u16, String) {
    let bytes = std::fs::read(keys.join("server.key")).unwrap();
    server.post("/v1/keys", token, &bytes)
}

#[test]
fn bad_requests_get_a_4xx_that_names_the_problem_and_the_server_keeps_serving() {
    let f = fixture();
    let store = tempfile::tempdir().unwrap();
    let s = Server::start(store.path(), &["--max-samples", "4"]);
    let key = std::fs::read(f.iris.join("server.key")).unwrap();
    let id = key_id(&key);
    assert_eq!(upload(&s, ALICE, &f.iris).0, 201);
    assert_eq!(upload(&s, ALICE, &f.iris).0, 200, "idempotent");
    let eval = "/v1/circuits/iris/evaluate";
    let good = iris_batch(&f.iris, &id, 2);
    let (code, body) = s.post_bytes(eval, ALICE, &good);
    assert_eq!(code, 200, "{}", String::from_utf8_lossy(&body));
    let answer = Batch::from_bytes(&body, BatchKind::Outputs, 2).unwrap();
    assert_eq!(answer.samples.len(), 2);

    let mut cases: Vec<(&str, u16, String)> = Vec::new();
    let mut check = |what: &'static str, (code, body): (u16, String), want: u16, needle: &str| {
        assert_eq!(code, want, "{what}: {body}");
        assert!(
            body.contains(needle),
            "{what}: {body} should mention {needle:?}"
        );
        cases.push((what, code, body));
        s.assert_healthy();
    };
    // Tokens and tenancy.
    check("no token", s.get("/v1/circuits", None), 401, "bearer token");
    check(
        "unknown token",
        s.get("/v1/circuits", Some("nope-nope-nope-nope")),
        401,
        "bearer token",
    );
    check(
        "another tenant's key",
        s.get(&format!("/v1/keys/{id}"), Some(BOB)),
        404,
        "no key",
    );
    check(
        "another tenant's key, evaluate",
        s.post(eval, BOB, &good),
        404,
        "no key",
    );
    check(
        "not a key id",
        s.get("/v1/keys/..%2Fetc", Some(ALICE)),
        400,
        "64 hex",
    );
    check(
        "unknown circuit",
        s.post("/v1/circuits/nope/evaluate", ALICE, &good),
        404,
        "no circuit",
    );
    check("unknown route", s.get("/v2/health", None), 404, "/v1");
    // Keys.
    let client_key = std::fs::read(f.iris.join("client.key")).unwrap();
    check(
        "a client key",
        s.post("/v1/keys", ALICE, &client_key),
        400,
        "client key",
    );
    check(
        "a key for a circuit not served",
        upload(&s, ALICE, &f.diabetes),
        422,
        "does not serve",
    );
    let mut flipped = key.clone();
    let at = flipped.len() - 1000;
    flipped[at] ^= 0x10;
    check(
        "a bit-flipped key",
        s.post("/v1/keys", ALICE, &flipped),
        422,
        "checksum",
    );
    check(
        "a truncated key",
        s.post("/v1/keys", ALICE, &key[..key.len() / 2]),
        400,
        "announces",
    );
    check(
        "garbage as a key",
        s.post("/v1/keys", ALICE, b"garbage"),
        400,
        "not an sqnn",
    );
    // Ciphertexts.
    check(
        "garbage as a batch",
        s.post(eval, ALICE, b"\x00garbage"),
        400,
        "not an sqnn batch",
    );
    check(
        "a truncated batch",
        s.post(eval, ALICE, &good[..good.len() - 7]),
        400,
        "announces",
    );
    let mut flipped = good.clone();
    let at = flipped.len() - 500;
    flipped[at] ^= 0x01;
    check(
        "a bit-flipped ciphertext",
        s.post(eval, ALICE, &flipped),
        422,
        "checksum",
    );
    check(
        "ciphertexts for another circuit",
        s.post("/v1/circuits/breast_cancer/evaluate", ALICE, &good),
        422,
        "encrypted for circuit",
    );
    let other = iris_batch(&f.iris2, &id, 1);
    check(
        "ciphertexts of another key pair",
        s.post(eval, ALICE, &other),
        422,
        "key pair",
    );
    assert_eq!(upload(&s, ALICE, &f.cancer).0, 201);
    let cancer_id = key_id(&std::fs::read(f.cancer.join("server.key")).unwrap());
    let wrong_key = iris_batch(&f.iris, &cancer_id, 1);
    check(
        "a key for another circuit",
        s.post(eval, ALICE, &wrong_key),
        422,
        "not iris",
    );
    check(
        "too many samples",
        s.post(eval, ALICE, &iris_batch(&f.iris, &id, 5)),
        413,
        "4 allowed",
    );
    // Nothing was lost: the good request still gives the same answer's shape, the key is there.
    let (code, _) = s.post_bytes(eval, ALICE, &good);
    assert_eq!(code, 200);
    assert_eq!(s.get(&format!("/v1/keys/{id}"), Some(ALICE)).0, 200);
    assert!(cases.len() >= 19);
    // Bodies over a route's limit.
    let small = tempfile::tempdir().unwrap();
    let t = Server::start(
        small.path(),
        &["--max-key-mib", "1", "--max-batch-mib", "1"],
    );
    let big = std::fs::metadata(f.iris.join("server.key")).unwrap().len();
    let (code, body) = announce(&t, "/v1/keys", big);
    assert_eq!(code, 413, "{body}");
    assert!(body.contains("limit of 1048576 bytes"), "{body}");
    let (code, body) = announce(&t, eval, 2 << 20);
    assert_eq!(code, 413, "{body}");
    t.assert_healthy();
}

#[test]
fn a_full_queue_answers_503_with_retry_after() {
    let f = fixture();
    let store = tempfile::tempdir().unwrap();
    let s = Server::start(store.path(), &["--workers", "1", "--queue", "0"]);
    assert_eq!(upload(&s, ALICE, &f.iris).0, 201);
    let id = key_id(&std::fs::read(f.iris.join("server.key")).unwrap());
    let long = iris_batch(&f.iris, &id, iris_rows_for(264));
    let url = format!("{}/v1/circuits/iris/evaluate", s.url);
    let first = std::thread::spawn(move || {
        ureq::post(&url)
            .set("authorization", &format!("Bearer {ALICE}"))
            .send_bytes(&long)
            .map(|r| r.status())
            .map_err(|e| e.to_string())
    });
    // The first request holds the only worker for at least 264 bootstraps.
    std::thread::sleep(std::time::Duration::from_millis(700));
    let r = ureq::post(&format!("{}/v1/circuits/iris/evaluate", s.url))
        .set("authorization", &format!("Bearer {ALICE}"))
        .send_bytes(&iris_batch(&f.iris, &id, 1));
    match r {
        Err(ureq::Error::Status(503, r)) => {
            assert_eq!(r.header("retry-after"), Some("1"));
            assert!(r.into_string().unwrap().contains("queue is full"));
        }
        other => panic!("expected 503, got {other:?}"),
    }
    assert_eq!(first.join().unwrap(), Ok(200));
    let (_, text) = s.get("/v1/metrics", None);
    assert!(text.contains("sqnn_rejected_total 1"), "{text}");
}

#[test]
fn a_server_killed_during_a_key_upload_leaves_no_loadable_key() {
    let f = fixture();
    let store = tempfile::tempdir().unwrap();
    let mut s = Server::start(store.path(), &[]);
    let key = std::fs::read(f.iris.join("server.key")).unwrap();
    let id = key_id(&key);
    let addr = s.url.strip_prefix("http://").unwrap().to_string();
    let mut conn = std::net::TcpStream::connect(&addr).unwrap();
    write!(
        conn,
        "POST /v1/keys HTTP/1.1\r\nhost: {addr}\r\nauthorization: Bearer {ALICE}\r\n\
         content-type: application/octet-stream\r\ncontent-length: {}\r\n\r\n",
        key.len()
    )
    .unwrap();
    conn.write_all(&key[..key.len() / 2]).unwrap();
    conn.flush().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(300));
    s.kill9();
    drop(conn);
    let s = Server::start(store.path(), &[]);
    assert_eq!(s.get(&format!("/v1/keys/{id}"), Some(ALICE)).0, 404);
    assert_eq!(upload(&s, ALICE, &f.iris).0, 201);
    assert_eq!(s.get(&format!("/v1/keys/{id}"), Some(ALICE)).0, 200);
}

#[test]
fn file_based_client_encrypt_and_decrypt() {
    let f = fixture();
    let store = tempfile::tempdir().unwrap();
    let s = Server::start(store.path(), &[]);
    let work = tempfile::tempdir().unwrap();
    let circuit = f.circuits.join("iris.circuit.json");
    let batch = work.path().join("in.batch");
    let k = f.iris.to_str().unwrap();
    let c = circuit.to_str().unwrap();
    sqnn(&[
        "client",
        "encrypt",
        "--keys",
        k,
        "--circuit",
        c,
        "--data",
        "iris",
        "--samples",
        "3",
        "--out",
        batch.to_str().unwrap(),
    ]);
    assert_eq!(upload(&s, ALICE, &f.iris).0, 201);
    let (code, body) = s.post_bytes(
        "/v1/circuits/iris/evaluate",
        ALICE,
        &std::fs::read(&batch).unwrap(),
    );
    assert_eq!(code, 200);
    let answer = work.path().join("out.batch");
    std::fs::write(&answer, body).unwrap();
    let out = sqnn(&[
        "client",
        "decrypt",
        "--keys",
        k,
        "--circuit",
        c,
        "--answer",
        answer.to_str().unwrap(),
        "--json",
    ]);
    let v: Value = serde_json::from_str(
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .last()
            .unwrap(),
    )
    .unwrap();
    let (checked, inputs) = rows("iris", "iris", 3);
    let clear = ClearBackend::default()
        .evaluate(checked.analyzed(), &inputs)
        .unwrap();
    let outs = ints(&v["outputs"]);
    assert_eq!(outs.len(), 3);
    let g = checked.graph();
    for (s, c) in outs.iter().zip(&clear) {
        let near = s.iter().zip(c).zip(&g.outputs).all(|((a, b), &id)| {
            let iv = checked.facts()[id].interval;
            (a - b).abs() <= (iv.hi - iv.lo) / 4
        });
        assert!(near, "{s:?} vs clear {c:?}");
    }
    // The input batch is not an answer.
    let out = Command::new(BIN)
        .env(
            "SQNN_CACHE_DIR",
            concat!(env!("CARGO_TARGET_TMPDIR"), "/no-cost-profile"),
        )
        .args([
            "client",
            "decrypt",
            "--keys",
            k,
            "--circuit",
            c,
            "--answer",
            batch.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("the server's answer"), "{err}");
}

#[test]
fn sigterm_drains_the_requests_in_flight() {
    let f = fixture();
    let store = tempfile::tempdir().unwrap();
    let s = Server::start(store.path(), &[]);
    assert_eq!(upload(&s, ALICE, &f.iris).0, 201);
    let id = key_id(&std::fs::read(f.iris.join("server.key")).unwrap());
    let batch = iris_batch(&f.iris, &id, iris_rows_for(176));
    let url = format!("{}/v1/circuits/iris/evaluate", s.url);
    let request = std::thread::spawn(move || {
        ureq::post(&url)
            .set("authorization", &format!("Bearer {ALICE}"))
            .send_bytes(&batch)
            .map(|r| r.status())
            .map_err(|e| e.to_string())
    });
    // The request is being evaluated (at least 176 bootstraps) when the signal comes.
    std::thread::sleep(std::time::Duration::from_millis(700));
    s.stop();
    assert_eq!(request.join().unwrap(), Ok(200));
}

/// The server's listing shows each circuit's default plan: the one recorded at compile time,
/// or (a circuit that records none) the choice `sqnn keygen` makes without data.
#[test]
fn the_listing_shows_the_recorded_plan() {
    let committed = Path::new(env!("CARGO_MANIFEST_DIR")).join("circuits");
    let dir = tempfile::tempdir().unwrap();
    let graph = IntGraph::load(&committed.join("iris.circuit.json")).unwrap();
    let record = graph
        .plan
        .clone()
        .expect("the committed circuit records its plan");
    std::fs::copy(
        committed.join("iris.circuit.json"),
        dir.path().join("iris.circuit.json"),
    )
    .unwrap();
    let old = IntGraph {
        plan: None,
        ..graph
    };
    old.save(&dir.path().join("old.circuit.json")).unwrap();
    let served = sqnn::deploy::server::load_circuits(dir.path()).unwrap();
    let iris = &served["iris"].info;
    assert_eq!(iris.parameter_set, record.parameter_set);
    assert_eq!(iris.mode, record.mode);
    assert!(iris.predicted_ms_per_sample > 0.0);
    assert!(
        iris.plan.starts_with("recorded in the circuit"),
        "{}",
        iris.plan
    );
    let old = &served["old"].info;
    assert!(old.plan.contains("records none"), "{}", old.plan);
    assert_eq!(old.mode, "approximate");
}

/// `n` test rows of a built-in data set as a CSV file of new samples: the columns in reverse
/// order, with the target column (its class labels or values) when `target` is given.
fn new_rows_csv(path: &Path, data: &str, n: usize, target: Option<&str>) {
    let ds = Dataset::builtin(data).unwrap();
    let split = sqnn::SplitSpec::Auto.split(&ds).unwrap();
    common::write_rows_csv(path, &ds.subset(&split.test[..n]), target);
}

fn predict_rows(server: &Server, keys: &Path, circuit: &str, rows: &Path, out: &Path) -> Value {
    let (rows, out) = (rows.to_str().unwrap(), out.to_str().unwrap());
    client_predict(
        server,
        ALICE,
        keys,
        circuit,
        &["--rows", rows, "--out", out],
    )
}

#[test]
fn new_rows_are_predicted_by_column_name_and_written_as_labels() {
    use std::os::unix::fs::PermissionsExt;
    let f = fixture();
    let store = tempfile::tempdir().unwrap();
    let server = Server::start(store.path(), &[]);
    let work = tempfile::tempdir().unwrap();
    // Iris rows without a target, columns reversed: matched by name, every row predicted.
    let (rows_csv, out) = (work.path().join("new.csv"), work.path().join("p.csv"));
    new_rows_csv(&rows_csv, "iris", 4, None);
    let v = predict_rows(&server, &f.iris, "iris", &rows_csv, &out);
    let (checked, inputs) = rows("iris", "iris", 4);
    let clear = ClearBackend::default()
        .evaluate(checked.analyzed(), &inputs)
        .unwrap();
    assert_eq!(ints(&v["clear_outputs"]), clear, "columns matched by name");
    assert!(v.get("accuracy").is_none(), "no target, no score: {v}");
    let g = checked.graph();
    let labels: Vec<String> = predictions(&v)
        .iter()
        .map(|&p| g.prediction_label(p))
        .collect();
    assert!(labels
        .iter()
        .all(|l| ["setosa", "versicolor", "virginica"].contains(&l.as_str())));
    let written = std::fs::read_to_string(&out).unwrap();
    let want: String = labels
        .iter()
        .enumerate()
        .map(|(i, l)| format!("{i},{l}\n"))
        .collect();
    assert_eq!(written, format!("row,prediction\n{want}"));
    let mode = std::fs::metadata(&out).unwrap().permissions().mode();
    assert_eq!(mode & 0o077, 0, "predictions are the client's: {mode:o}");
    // The same rows with their labels: scored.
    new_rows_csv(&rows_csv, "iris", 4, Some("species"));
    let v = predict_rows(&server, &f.iris, "iris", &rows_csv, &out);
    assert!(v["accuracy"].as_f64().is_some(), "{v}");
    assert!(std::fs::read_to_string(&out)
        .unwrap()
        .starts_with("row,prediction,target\n"));
    // Regression, a linear circuit: the values, bit-identical to clear.
    new_rows_csv(&rows_csv, "diabetes", 6, None);
    let v = predict_rows(&server, &f.linear, "linear", &rows_csv, &out);
    let (checked, inputs) = rows("linear", "diabetes", 6);
    let g = checked.graph();
    let clear: Vec<f64> = ClearBackend::default()
        .evaluate(checked.analyzed(), &inputs)
        .unwrap()
        .iter()
        .map(|o| g.predict(o))
        .collect();
    assert_eq!(predictions(&v), clear);
    let written: Vec<f64> = std::fs::read_to_string(&out)
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| l.split(',').nth(1).unwrap().parse().unwrap())
        .collect();
    assert_eq!(written, clear);
    // A file whose columns are not the circuit's: exit 2, naming the column; no output.
    std::fs::write(&rows_csv, "a,b,c,d\n1,2,3,4\n").unwrap();
    let out2 = work.path().join("p2.csv");
    let o = Command::new(BIN)
        .args([
            "client",
            "predict",
            "--server",
            &server.url,
            "--token",
            ALICE,
        ])
        .args(["--keys", f.iris.to_str().unwrap(), "--circuit", "iris"])
        .args(["--rows", rows_csv.to_str().unwrap()])
        .args(["--out", out2.to_str().unwrap()])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("petal width (cm)") && err.contains("`a`"),
        "{err}"
    );
    assert!(!out2.exists());
    server.stop();
}

#[test]
fn serve_refuses_limits_of_zero_naming_the_flag() {
    for flag in [
        "--workers",
        "--max-samples",
        "--max-key-mib",
        "--max-batch-mib",
        "--timeout",
    ] {
        let dir = tempfile::tempdir().unwrap();
        let o = Command::new(BIN)
            .args(["serve", "--circuits"])
            .arg(dir.path())
            .arg("--store")
            .arg(dir.path().join("store"))
            .args(["--listen", "127.0.0.1:0", flag, "0"])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{flag}: {err}");
        assert!(err.contains(flag), "{flag}: {err}");
        assert!(!dir.path().join("store").exists(), "{flag}");
    }
    // A circuits directory that does not exist: named, with the flag.
    let o = Command::new(BIN)
        .args([
            "serve",
            "--circuits",
            "/nonexistent/circuits",
            "--store",
            "/tmp/unused",
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("--circuits") && err.contains("/nonexistent/circuits"),
        "{err}"
    );
}
