//! `sqnn keygen` and `sqnn run --backend tfhe`.

use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

use serde_json::json;

use sqnn::analyze::{analyze, Analyzed, CheckedGraph};
use sqnn::execute::ClearBackend;
use sqnn::fhe::{render_plan, FheMode};
use sqnn::ir::IntGraph;
use sqnn::progress::{NoProgress, Progress};
use sqnn::report::render_text;
use sqnn::tfhe::{load_manifest, save_keys, ClientKey, TfheBackend};
use sqnn::tfhe::{CLIENT_KEY_FILE, MANIFEST_FILE, SERVER_KEY_FILE};
use sqnn::{Error, Result};

use crate::args::{FheArgs, Rows};
use crate::progress::Bar;
use crate::run::{metric, RunArgs};

/// Passes the check or explains why nothing unchecked is encrypted.
fn checked(an: Analyzed) -> Result<CheckedGraph> {
    an.check().map_err(|failed| {
        Error::Backend(format!(
            "the circuit fails the accumulator check, so it is not encrypted:\n{}",
            render_text(failed.report())
        ))
    })
}

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

/// `sqnn run CIRCUIT --backend tfhe`: encrypts each sample, evaluates with the server key
/// alone, decrypts, and compares with the clear backend.
pub fn run(
    an: Analyzed,
    inputs: &[Vec<i64>],
    y: &[f64],
    a: &RunArgs,
    rows: Rows,
) -> Result<ExitCode> {
    let clear = ClearBackend::default().evaluate(&an, inputs)?;
    let checked = checked(an)?;
    let t = Instant::now();
    let bars = Bar::with_template("{bar:30} {pos}/{len} {prefix}, {msg} [{elapsed} < {eta}]");
    // The plan's predicted latency, when the plan is made here (not with loaded keys).
    let (backend, plan_name, keygen_s, mode, predicted) = match &a.keys {
        Some(dir) => {
            let m = load_manifest(dir)?;
            a.fhe.check_loaded_keys(dir, &m.parameter_set, m.mode)?;
            let b = TfheBackend::load(dir, &checked)?;
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
            let plan = a.fhe.plan_for(checked.analyzed(), None, Some(rows))?;
            if !a.json {
                print!("{}", render_plan(&plan));
            }
            let b = TfheBackend::generate_with_progress(&checked, &plan, &bars)?;
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
    let run = backend.run_timed_with_progress(&checked, inputs, progress)?;
    let g = checked.graph();
    let preds: Vec<f64> = run.outputs.iter().map(|o| g.predict(o)).collect();
    let (name, value) = metric(g, &preds, y);
    let identical = run
        .outputs
        .iter()
        .zip(&clear)
        .filter(|(e, c)| e == c)
        .count();
    let n = inputs.len();
    let same_pred = run
        .outputs
        .iter()
        .zip(&clear)
        .filter(|(e, c)| g.predict(e) == g.predict(c))
        .count();
    let median = run.median_evaluate_ms();
    if a.json {
        let mut v = json!({
                name: value,
                "samples": n,
                "latency_ms_per_sample": median,
                "predicted_latency_ms_per_sample": predicted,
                "encrypt_ms_per_sample": mean(&run.encrypt_ms),
                "decrypt_ms_per_sample": mean(&run.decrypt_ms),
                "pbs_count": run.pbs_count,
                "keygen_seconds": keygen_s,
                "parameters": plan_name,
                "extraction_parameters": backend.server().extraction_set(),
                "mode": mode.to_string(),
                "backend": "tfhe",
        });
        crate::run::add_agreement(&mut v, identical, same_pred, n);
        println!("{v}");
    } else {
        println!(
            "tfhe backend ({plan_name}, {mode}): {name} {value:.4} on {n} encrypted samples; \
             {same_pred}/{n} same prediction as the clear backend, {identical}/{n} bit-identical \
             outputs (approximate reads differ by design, exact ones never); {median:.0} ms per \
             sample (server, median{}), {} bootstraps each; keys {keygen_s:.1} s",
            predicted.map_or(String::new(), |p| against_prediction(median, p)),
            run.pbs_count
        );
    }
    // Exact reads must agree bit for bit, whether the keys are fresh or loaded: a mismatch is
    // a bug (or a bootstrap failure at the predicted, negligible rate). Approximate reads are
    // expected to differ a little.
    if mode == FheMode::Exact && identical != n {
        eprintln!(
            "error: exact mode, but {} of {n} outputs differ from the clear backend's",
            n - identical
        );
    }
    Ok(if identical == n || mode != FheMode::Exact {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// The measured latency against the plan's prediction, with what to do when they differ by
/// more than this machine's run-to-run noise (a quarter).
fn against_prediction(measured: f64, predicted: f64) -> String {
    if !(predicted > 0.0 && measured.is_finite()) {
        return String::new();
    }
    let ratio = measured / predicted;
    let why = if ratio > 1.25 {
        ": slower than the plan's cost figures, so this machine is slower or busier than they \
         say; `sqnn calibrate` measures it, and plans then use its figures"
    } else if ratio < 0.8 {
        ": faster than the plan's cost figures; `sqnn calibrate` measures this machine, and \
         plans then use its figures"
    } else {
        ""
    };
    format!("; predicted {predicted:.0} ms, measured {ratio:.2}x that{why}")
}

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len().max(1) as f64
}

#[cfg(test)]
mod tests {
    use super::against_prediction;

    #[test]
    fn the_run_says_how_far_it_is_from_the_prediction_and_what_to_do() {
        let close = against_prediction(110.0, 100.0);
        assert!(
            close.contains("predicted 100 ms, measured 1.10x"),
            "{close}"
        );
        assert!(!close.contains("calibrate"), "{close}");
        let slow = against_prediction(160.0, 100.0);
        assert!(slow.contains("1.60x") && slow.contains("slower"), "{slow}");
        assert!(slow.contains("`sqnn calibrate`"), "{slow}");
        let fast = against_prediction(50.0, 100.0);
        assert!(
            fast.contains("faster") && fast.contains("`sqnn calibrate`"),
            "{fast}"
        );
        // No plan figure, no comparison.
        assert_eq!(against_prediction(50.0, 0.0), "");
        assert_eq!(against_prediction(f64::NAN, 100.0), "");
    }
}
