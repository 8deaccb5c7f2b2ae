//! `sqnn client predict | encrypt | decrypt`.

use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

use serde_json::json;

use sqnn::analyze::{analyze, CheckedGraph};
use sqnn::data::SplitUse;
use sqnn::deploy::wire::key_id;
use sqnn::deploy::{decrypt_batch, encrypt_batch, Batch, BatchKind, Client, Session};
use sqnn::execute::ClearBackend;
use sqnn::ir::IntGraph;
use sqnn::report::render_text;
use sqnn::tfhe::{load_client_key, load_manifest, CLIENT_KEY_FILE, MANIFEST_FILE, SERVER_KEY_FILE};
use sqnn::{fsio, Error, Result};

use super::{DecryptArgs, EncryptArgs, PredictArgs, RowArgs};
use crate::args::{load_split_for, SplitArgs};
use crate::progress::Bar;
use crate::run::metric;

/// Largest batch file `decrypt` reads.
const MAX_BATCH_FILE: u64 = 1 << 30;
/// Largest `server.key` sent (the largest set's compressed key is about 1 GB).
const MAX_KEY_FILE: u64 = 4 << 30;

fn checked(graph: IntGraph) -> Result<CheckedGraph> {
    analyze(graph)?.check().map_err(|failed| {
        Error::Circuit(format!(
            "the circuit fails the accumulator check, so it cannot be encrypted:\n{}",
            render_text(failed.report())
        ))
    })
}

/// The rows to encrypt, quantized for `graph`, and their targets when known: the first
/// `--samples` test rows of `--data` (5 by default), or the rows of the `--rows` file (all by
/// default), whose targets are known when the file has a target column.
fn rows_to_encrypt(
    graph: &IntGraph,
    r: &RowArgs,
    split: &SplitArgs,
) -> Result<crate::rows::Chosen> {
    let Some(path) = &r.rows else {
        let data = r.data.as_deref().ok_or_else(|| {
            Error::param(
                "data",
                "give --data (a data set's test rows) or --rows FILE.csv",
            )
        })?;
        let (ds, s) = load_split_for(
            data,
            split,
            &graph.schema(),
            graph.meta.training_rows.as_ref(),
            SplitUse::Evaluate,
        )?;
        let test = ds.subset(&s.test);
        let n = r.samples.unwrap_or(5).min(test.n_samples());
        let test = test.subset(&(0..n).collect::<Vec<_>>());
        return Ok((graph.quantize_inputs(&test.x)?, Some(test.y.to_vec())));
    };
    crate::rows::load(graph, path, split, r.samples, "encrypts")
}

/// The files of a keys directory: an output on any of them would destroy a key.
fn key_files(keys: &Path) -> [std::path::PathBuf; 3] {
    [CLIENT_KEY_FILE, SERVER_KEY_FILE, MANIFEST_FILE].map(|f| keys.join(f))
}

/// The split file the split flags name, if any.
fn split_file(s: &SplitArgs) -> Option<std::path::PathBuf> {
    match s.spec() {
        sqnn::data::SplitSpec::File(p) => Some(p),
        _ => None,
    }
}

/// Checks `--out` before any work: a writable place that is none of the inputs (`others`,
/// and the rows' files).
fn check_out(out: Option<&Path>, r: &RowArgs, others: &[&Path]) -> Result<()> {
    let Some(out) = out else { return Ok(()) };
    let mut inputs: Vec<&Path> = others.to_vec();
    if let Some(rows) = &r.rows {
        inputs.push(rows);
    }
    if let Some(data) = &r.data {
        inputs.push(Path::new(data));
    }
    fsio::check_output(out, "out", &inputs)
}

fn read_server_key(keys: &Path) -> Result<Vec<u8>> {
    fsio::read_limited(&keys.join(SERVER_KEY_FILE), MAX_KEY_FILE, "server key")
}

pub fn predict(a: &PredictArgs) -> Result<ExitCode> {
    let keys = key_files(&a.keys);
    let mut inputs: Vec<&Path> = keys.iter().map(|p| p.as_path()).collect();
    let split_file = split_file(&a.split);
    inputs.extend(split_file.as_deref());
    check_out(a.out.as_deref(), &a.rows, &inputs)?;
    let client = Client::new(&a.server.server, &a.server.token)?;
    let graph = client.circuit(&a.circuit)?;
    let (inputs, y) = rows_to_encrypt(&graph, &a.rows, &a.split)?;
    let checked = checked(graph)?;
    // Loading the client key checks that the keys were made for this circuit.
    let key = load_client_key(&a.keys, &checked)?;
    let manifest = load_manifest(&a.keys)?;
    let server_key = read_server_key(&a.keys)?;
    let t = Instant::now();
    let (info, uploaded) = client.ensure_key(&server_key)?;
    let upload_s = t.elapsed().as_secs_f64();
    if !a.json {
        eprintln!(
            "key {}…: {}",
            &info.key_id[..16],
            if uploaded {
                format!("uploaded in {upload_s:.1} s")
            } else {
                "already on the server".to_string()
            }
        );
    }
    let bar = Bar::new();
    let session = Session {
        circuit: &a.circuit,
        checked: &checked,
        key: &key,
        key_id: &info.key_id,
    };
    let p = client.predict(&session, &inputs, a.batch, &bar)?;
    let clear = ClearBackend::default().evaluate(checked.analyzed(), &inputs)?;
    let g = checked.graph();
    let preds: Vec<f64> = p.outputs.iter().map(|o| g.predict(o)).collect();
    let score = y.as_deref().map(|y| metric(g, &preds, y));
    let n = inputs.len();
    let same = crate::run::same_predictions(g, &p.outputs, &clear);
    let identical = crate::run::identical(&p.outputs, &clear);
    let per = |v: f64| v / n.max(1) as f64;
    let rtt = per(p.round_trip_ms.iter().sum());
    let server = per(p.server_ms.iter().sum());
    if let Some(out) = &a.out {
        crate::rows::write_predictions(out, g, &preds, y.as_deref())?;
    }
    let labels: Vec<String> = preds.iter().map(|&p| g.prediction_label(p)).collect();
    if a.json {
        let mut v = json!({ "samples": n,
            "latency_ms_per_sample": rtt, "server_ms_per_sample": server,
            "encrypt_ms_per_sample": per(p.encrypt_ms),
            "decrypt_ms_per_sample": per(p.decrypt_ms),
            "batch_size": p.batch_size, "key_id": info.key_id,
            "key_uploaded": uploaded, "key_upload_seconds": upload_s,
            "parameters": manifest.parameter_set, "circuit": a.circuit,
            "predictions": preds, "labels": labels, "outputs": p.outputs,
            "clear_outputs": clear,
            "backend": "remote" });
        if let Some((name, value)) = score {
            v[name] = json!(value);
        }
        crate::run::add_agreement(&mut v, identical, same, n);
        println!("{v}");
    } else {
        for (i, (e, c)) in labels.iter().zip(&clear).enumerate() {
            let target = y.as_deref().map_or(String::new(), |y| {
                format!(", target {}", g.prediction_label(y[i]))
            });
            println!(
                "sample {i}: predicted {e} (clear {}{target})",
                g.prediction_label(g.predict(c))
            );
        }
        let scored = score.map_or_else(
            || format!("{n} encrypted samples predicted"),
            |(name, value)| format!("{name} {value:.4} on {n} encrypted samples"),
        );
        let written = a.out.as_ref().map_or(String::new(), |o| {
            format!("; predictions in {}", o.display())
        });
        // A circuit without bootstraps takes about a millisecond.
        let prec = if rtt < 10.0 { 2 } else { 0 };
        println!(
            "{} at {}: {scored}; {same}/{n} same prediction as clear, {identical}/{n} \
             bit-identical outputs; {rtt:.prec$} ms per sample round trip ({server:.prec$} ms \
             on the server){written}",
            a.circuit, a.server.server,
        );
    }
    Ok(ExitCode::SUCCESS)
}

pub fn encrypt(a: &EncryptArgs) -> Result<ExitCode> {
    // The batch must not land on a key (the client key is the only copy of a secret), the
    // circuit or the rows.
    let keys = key_files(&a.keys);
    let mut inputs: Vec<&Path> = keys.iter().map(|p| p.as_path()).collect();
    inputs.push(&a.circuit);
    let split_file = split_file(&a.split);
    inputs.extend(split_file.as_deref());
    check_out(Some(&a.out), &a.rows, &inputs)?;
    let graph = IntGraph::load(&a.circuit)?;
    let (inputs, _) = rows_to_encrypt(&graph, &a.rows, &a.split)?;
    let checked = checked(graph)?;
    let key = load_client_key(&a.keys, &checked)?;
    let id = key_id(&read_server_key(&a.keys)?);
    let bytes = encrypt_batch(&key, &checked, &id, &inputs)?.to_bytes()?;
    fsio::write_atomic(&a.out, &bytes, fsio::Secrecy::Public)?;
    println!(
        "{} encrypted samples in {} ({} bytes) for key {}…: POST it to /v1/circuits/NAME/evaluate",
        inputs.len(),
        a.out.display(),
        bytes.len(),
        &id[..16]
    );
    Ok(ExitCode::SUCCESS)
}

pub fn decrypt(a: &DecryptArgs) -> Result<ExitCode> {
    if let Some(out) = &a.out {
        let keys = key_files(&a.keys);
        let mut inputs: Vec<&Path> = keys.iter().map(|p| p.as_path()).collect();
        inputs.extend([a.circuit.as_path(), a.answer.as_path()]);
        fsio::check_output(out, "out", &inputs)?;
    }
    let checked = checked(IntGraph::load(&a.circuit)?)?;
    let key = load_client_key(&a.keys, &checked)?;
    let bytes = fsio::read_limited(&a.answer, MAX_BATCH_FILE, "answer")?;
    let batch = Batch::from_bytes(&bytes, BatchKind::Outputs, usize::MAX)?;
    let outs = decrypt_batch(&key, &checked, &batch)?;
    let g = checked.graph();
    let preds: Vec<f64> = outs.iter().map(|o| g.predict(o)).collect();
    if let Some(out) = &a.out {
        crate::rows::write_predictions(out, g, &preds, None)?;
    }
    let labels: Vec<String> = preds.iter().map(|&p| g.prediction_label(p)).collect();
    if a.json {
        println!(
            "{}",
            json!({ "predictions": preds, "labels": labels, "outputs": outs })
        );
    } else {
        for (i, l) in labels.iter().enumerate() {
            println!("sample {i}: predicted {l}");
        }
    }
    Ok(ExitCode::SUCCESS)
}
