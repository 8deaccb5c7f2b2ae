//! `sqnn keygen`, and the encrypted run of `sqnn run --backend tfhe`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use sqnn::analyze::{analyze, CheckedGraph};
use sqnn::execute::ClearBackend;
use sqnn::fhe::render_plan;
use sqnn::ir::IntGraph;
use sqnn::progress::{NoProgress, Progress};
use sqnn::tfhe::{load_manifest, save_keys, ClientKey, TfheBackend};
use sqnn::tfhe::{CLIENT_KEY_FILE, MANIFEST_FILE, SERVER_KEY_FILE};
use sqnn::{Error, Result};

use super::{checked, EncryptedRun};
use crate::args::{FheArgs, Rows};
use crate::progress::Bar;
use crate::run::RunArgs;

/// `sqnn keygen CIRCUIT --out-dir DIR`.
pub fn keygen(
    circuit: &Path,
    out_dir: &Path,
    fhe: &FheArgs,
    rows: Option<Rows>,
) -> Result<ExitCode> {
    let checked = checked(analyze(IntGraph::load(circuit)?)?)?;
    let asks = rows.map(|_| "--data");
    let plan = fhe.plan_for(checked.analyzed(), asks, rows)?;
    // The key files' places are checked before the keys are generated.
    std::fs::create_dir_all(out_dir).map_err(|e| Error::io(out_dir, e))?;
    for file in [CLIENT_KEY_FILE, SERVER_KEY_FILE, MANIFEST_FILE] {
        sqnn::fsio::check_output(&out_dir.join(file), "out_dir", &[circuit])?;
    }
    // A client key is the only way to decrypt what was encrypted with it, and the server keys
    // uploaded for it are useless without it: never replaced silently.
    let old_key = out_dir.join(CLIENT_KEY_FILE);
    if std::fs::symlink_metadata(&old_key).is_ok() {
        return Err(Error::param(
            "out_dir",
            format!(
                "{} already holds a client key ({}): new keys would replace it, and whatever \
                 was encrypted with it could never be decrypted again; choose another directory, \
                 or delete the old keys first if you mean to replace them",
                out_dir.display(),
                old_key.display()
            ),
        ));
    }
    print!("{}", render_plan(&plan));
    let (client, server) = ClientKey::generate_with_progress(&checked, &plan, &Bar::new())?;
    let manifest = save_keys(out_dir, &checked, &client, &server, plan.mode)?;
    let size = match manifest.server_key_bytes {
        b if b >= 1_000_000 => format!("{:.0} MB", b as f64 / 1e6),
        b => format!("{b} bytes"),
    };
    let why = if server.can_bootstrap() {
        ""
    } else {
        ": no bootstrapping key, the circuit has no table"
    };
    println!(
        "keys for {} in {} ({}; generated in {:.1} s): client.key (secret, keep it), server.key \
         (give it to the server; {size}{why}), keys.json",
        checked.graph().name,
        out_dir.display(),
        manifest.parameter_set,
        client.keygen_seconds().unwrap_or(0.0)
    );
    Ok(ExitCode::SUCCESS)
}

/// The files of a keys directory (`sqnn keygen`), which an output must not replace.
pub fn key_files(dir: &Path) -> Vec<PathBuf> {
    [CLIENT_KEY_FILE, SERVER_KEY_FILE, MANIFEST_FILE]
        .map(|f| dir.join(f))
        .to_vec()
}

/// Encrypts each of `inputs` with the client key, evaluates it with the server key alone,
/// decrypts it, and sets the outputs beside the clear backend's. The keys are loaded from
/// `--keys` (which fix the plan), else generated in memory for the circuit's recorded plan or,
/// when a flag asks for a new one, a plan chosen on `rows`' training rows (without rows, by the
/// read-noise guard).
pub fn encrypted(
    checked: &CheckedGraph,
    inputs: &[Vec<i64>],
    a: &RunArgs,
    rows: Option<Rows>,
) -> Result<EncryptedRun> {
    let clear = ClearBackend::default().evaluate(checked.analyzed(), inputs)?;
    let t = Instant::now();
    let bars = Bar::with_template("{bar:30} {pos}/{len} {prefix}, {msg} [{elapsed} < {eta}]");
    // The plan's predicted latency, when the plan is made here (not with loaded keys).
    let (backend, parameters, keygen_seconds, mode, predicted_ms) = match &a.keys {
        Some(dir) => {
            let m = load_manifest(dir)?;
            a.fhe.check_loaded_keys(dir, &m.parameter_set, m.mode)?;
            let b = TfheBackend::load(dir, checked)?;
            // Keys written before the manifest recorded the mode: the mode asked for.
            let mode = m.mode.unwrap_or(a.fhe.mode);
            (
                b,
                m.parameter_set,
                m.keygen_seconds.unwrap_or(0.0),
                mode,
                None,
            )
        }
        None => {
            let plan = a.fhe.plan_for(checked.analyzed(), None, rows)?;
            if !a.json {
                print!("{}", render_plan(&plan));
            }
            let b = TfheBackend::generate_with_progress(checked, &plan, &bars)?;
            let s = b
                .client()
                .keygen_seconds()
                .unwrap_or(t.elapsed().as_secs_f64());
            (
                b,
                plan.parameter_set.to_string(),
                s,
                plan.mode,
                Some(plan.latency_ms_per_sample),
            )
        }
    };
    let progress: &dyn Progress = if a.json { &NoProgress } else { &bars };
    let run = backend.run_timed_with_progress(checked, inputs, progress)?;
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
    Ok(EncryptedRun {
        median_ms: run.median_evaluate_ms(),
        encrypt_ms: mean(&run.encrypt_ms),
        decrypt_ms: mean(&run.decrypt_ms),
        pbs_count: run.pbs_count,
        outputs: run.outputs,
        clear,
        parameters,
        extraction_parameters: backend.server().extraction_set(),
        mode,
        keygen_seconds,
        predicted_ms,
    })
}
