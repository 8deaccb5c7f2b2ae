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

use super::{DecryptArgs, EncryptArgs, PredictArgs};
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

/// The first `n` test rows of `data`, quantized for `graph`, and their targets.
fn test_rows(
    graph: &IntGraph,
    data: &str,
    split: &SplitArgs,
    n: usize,
) -> Result<(Vec<Vec<i64>>, Vec<f64>)> {
    let (ds, s) = load_split_for(
        data,
        split,
        &graph.schema(),
        graph.meta.training_rows.as_ref(),
        SplitUse::Evaluate,
    )?;
    let test = ds.subset(&s.test);
    let n = n.min(test.n_samples());
    let test = test.subset(&(0..n).collect::<Vec<_>>());
    Ok((graph.quantize_inputs(&test.x)?, test.y.to_vec()))
}

fn read_server_key(keys: &Path) -> Result<Vec<u8>> {
    fsio::read_limited(&keys.join(SERVER_KEY_FILE), MAX_KEY_FILE, "server key")
}

pub fn predict(a: &PredictArgs) -> Result<ExitCode> {
    let client = Client::new(&a.server.server, &a.server.token)?;
    let graph = client.circuit(&a.circuit)?;
    let (inputs, y) = test_rows(&graph, &a.data, &a.split, a.samples)?;
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
    let (name, value) = metric(g, &preds, &y);
    let n = inputs.len();
    let same = p
        .outputs
        .iter()
        .zip(&clear)
        .filter(|(e, c)| g.predict(e) == g.predict(c))
        .count();
    let identical = p.outputs.iter().zip(&clear).filter(|(e, c)| e == c).count();
    let per = |v: f64| v / n.max(1) as f64;
    let rtt = per(p.round_trip_ms.iter().sum());
    let server = per(p.server_ms.iter().sum());
    if a.json {
        println!(
            "{}",
            json!({ name: value, "samples": n,
                "same_prediction_as_clear": per(same as f64),
                "agreement_with_clear": per(identical as f64),
                "latency_ms_per_sample": rtt, "server_ms_per_sample": server,
                "encrypt_ms_per_sample": per(p.encrypt_ms),
                "decrypt_ms_per_sample": per(p.decrypt_ms),
                "batch_size": p.batch_size, "key_id": info.key_id,
                "key_uploaded": uploaded, "key_upload_seconds": upload_s,
                "parameters": manifest.parameter_set, "circuit": a.circuit,
                "predictions": preds, "outputs": p.outputs,
                "clear_outputs": clear,
                "backend": "remote" })
        );
    } else {
        for (i, (e, c)) in preds.iter().zip(&clear).enumerate() {
            println!(
                "sample {i}: predicted {e} (clear {}, target {})",
                g.predict(c),
                y[i]
            );
        }
        println!(
            "{} at {}: {name} {value:.4} on {n} encrypted samples; {same}/{n} same prediction \
             as clear; {rtt:.0} ms per sample round trip ({server:.0} ms on the server)",
            a.circuit, a.server.server
        );
    }
    Ok(ExitCode::SUCCESS)
}

pub fn encrypt(a: &EncryptArgs) -> Result<ExitCode> {
    // The batch must not land on a key (the client key is the only copy of a secret), the
    // circuit or the data.
    let keys = [CLIENT_KEY_FILE, SERVER_KEY_FILE, MANIFEST_FILE].map(|f| a.keys.join(f));
    let data_file = Path::new(&a.data);
    let split_file = match a.split.spec() {
        sqnn::data::SplitSpec::File(p) => Some(p),
        _ => None,
    };
    let mut inputs: Vec<&Path> = keys.iter().map(|p| p.as_path()).collect();
    inputs.push(&a.circuit);
    inputs.extend(data_file.is_file().then_some(data_file));
    inputs.extend(split_file.as_deref());
    fsio::check_output(&a.out, "out", &inputs)?;
    let graph = IntGraph::load(&a.circuit)?;
    let (inputs, _) = test_rows(&graph, &a.data, &a.split, a.samples)?;
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
    let checked = checked(IntGraph::load(&a.circuit)?)?;
    let key = load_client_key(&a.keys, &checked)?;
    let bytes = fsio::read_limited(&a.answer, MAX_BATCH_FILE, "answer")?;
    let batch = Batch::from_bytes(&bytes, BatchKind::Outputs, usize::MAX)?;
    let outs = decrypt_batch(&key, &checked, &batch)?;
    let g = checked.graph();
    let preds: Vec<f64> = outs.iter().map(|o| g.predict(o)).collect();
    if a.json {
        println!("{}", json!({ "predictions": preds, "outputs": outs }));
    } else {
        for (i, p) in preds.iter().enumerate() {
            println!("sample {i}: predicted {p}");
        }
    }
    Ok(ExitCode::SUCCESS)
}
