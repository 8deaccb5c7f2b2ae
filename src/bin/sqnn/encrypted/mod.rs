//! `sqnn keygen` and `sqnn run --backend tfhe` (`--data` or `--rows`): the commands that need
//! the TFHE backend. A build without it (`--no-default-features`) keeps the commands and
//! explains how to enable them.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use serde_json::json;

use sqnn::analyze::{Analyzed, CheckedGraph};
use sqnn::data::SplitUse;
use sqnn::fhe::FheMode;
use sqnn::ir::IntGraph;
use sqnn::{Error, Result};

use crate::args::{load_split_for, FheArgs, Rows, SplitArgs};
use crate::run::{add_agreement, identical, metric, same_predictions, RunArgs};

pub use imp::{encrypted, key_files};

#[cfg(feature = "tfhe-backend")]
#[path = "tfhe.rs"]
mod imp;

#[derive(Args)]
pub struct KeygenArgs {
    /// The circuit file.
    pub circuit: PathBuf,
    /// Directory for client.key, server.key and keys.json.
    #[arg(long)]
    pub out_dir: PathBuf,
    #[command(flatten)]
    pub fhe: FheArgs,
    /// Choose the parameters by the accuracy kept on this data set's training rows (built-in
    /// name or CSV path; without it, by the read-noise guard).
    #[arg(long)]
    pub data: Option<String>,
    #[command(flatten)]
    pub split: SplitArgs,
}

pub fn keygen(a: &KeygenArgs) -> Result<ExitCode> {
    let rows = match &a.data {
        Some(data) => {
            let graph = sqnn::ir::IntGraph::load(&a.circuit)?;
            Some(load_split_for(
                data,
                &a.split,
                &graph.schema(),
                graph.meta.training_rows.as_ref(),
                SplitUse::Calibrate,
            )?)
        }
        None => None,
    };
    let rows = rows.as_ref().map(|(data, split)| Rows { data, split });
    imp::keygen(&a.circuit, &a.out_dir, &a.fhe, rows)
}

/// Passes the check or explains why nothing unchecked is encrypted.
pub fn checked(an: Analyzed) -> Result<CheckedGraph> {
    an.check().map_err(|failed| {
        Error::Backend(format!(
            "the circuit fails the accumulator check, so it is not encrypted:\n{}",
            sqnn::report::render_text(failed.report())
        ))
    })
}

/// An encrypted run ([`encrypted`]): the decrypted outputs beside the clear backend's, the
/// keys', and what it took.
#[cfg_attr(not(feature = "tfhe-backend"), allow(dead_code))]
pub struct EncryptedRun {
    /// Decrypted outputs, a row per sample.
    pub outputs: Vec<Vec<i64>>,
    /// The clear backend's outputs of the same samples.
    pub clear: Vec<Vec<i64>>,
    /// The keys' parameter set.
    pub parameters: String,
    /// Where exact rounding's extractions ran, if the keys have them.
    pub extraction_parameters: Option<&'static str>,
    /// The keys' reads.
    pub mode: FheMode,
    /// Key generation, seconds (as `keys.json` records it for loaded keys).
    pub keygen_seconds: f64,
    /// The plan's predicted latency per sample, ms, when the plan is made here (not with
    /// loaded keys).
    pub predicted_ms: Option<f64>,
    /// Server time per sample, median, ms.
    pub median_ms: f64,
    /// Encryption and decryption per sample, mean, ms.
    pub encrypt_ms: f64,
    pub decrypt_ms: f64,
    /// Bootstraps per sample.
    pub pbs_count: usize,
}

impl EncryptedRun {
    /// Outputs bit-identical to the clear backend's.
    pub fn identical(&self) -> usize {
        identical(&self.outputs, &self.clear)
    }

    /// The keys of a tfhe run's JSON that do not depend on targets.
    pub fn add_json(&self, v: &mut serde_json::Value, g: &IntGraph) {
        v["latency_ms_per_sample"] = json!(self.median_ms);
        v["predicted_latency_ms_per_sample"] = json!(self.predicted_ms);
        v["encrypt_ms_per_sample"] = json!(self.encrypt_ms);
        v["decrypt_ms_per_sample"] = json!(self.decrypt_ms);
        v["pbs_count"] = json!(self.pbs_count);
        v["keygen_seconds"] = json!(self.keygen_seconds);
        v["parameters"] = json!(self.parameters);
        v["extraction_parameters"] = json!(self.extraction_parameters);
        v["mode"] = json!(self.mode.to_string());
        v["backend"] = json!("tfhe");
        let same = same_predictions(g, &self.outputs, &self.clear);
        add_agreement(v, self.identical(), same, self.outputs.len());
    }

    /// What the run took, for the text summary: `{median} ms per sample (server, median,
    /// against the prediction), {pbs} bootstraps each; keys {s} s`.
    pub fn cost(&self) -> String {
        format!(
            "{:.0} ms per sample (server, median{}), {} bootstraps each; keys {:.1} s",
            self.median_ms,
            self.predicted_ms
                .map_or(String::new(), |p| against_prediction(self.median_ms, p)),
            self.pbs_count,
            self.keygen_seconds
        )
    }

    /// Exit 1, said on standard error, when exact reads gave an output other than the clear
    /// backend's: whether the keys are fresh or loaded, a mismatch is a bug (or a bootstrap
    /// failure at the predicted, negligible rate). Approximate reads are expected to differ a
    /// little.
    pub fn exit_code(&self) -> ExitCode {
        let (identical, n) = (self.identical(), self.outputs.len());
        if self.mode != FheMode::Exact || identical == n {
            return ExitCode::SUCCESS;
        }
        eprintln!(
            "error: exact mode, but {} of {n} outputs differ from the clear backend's",
            n - identical
        );
        ExitCode::from(1)
    }
}

/// `sqnn run CIRCUIT --data DATA --backend tfhe`: encrypts each test sample, evaluates with the
/// server key alone, decrypts, and compares with the clear backend. Loaded keys (`--keys`) fix
/// the plan; fresh ones use the circuit's recorded plan, or are planned on `rows`' training
/// rows.
pub fn run(
    an: Analyzed,
    inputs: &[Vec<i64>],
    y: &[f64],
    a: &RunArgs,
    rows: Rows,
) -> Result<ExitCode> {
    let checked = checked(an)?;
    let e = encrypted(&checked, inputs, a, Some(rows))?;
    let g = checked.graph();
    let preds: Vec<f64> = e.outputs.iter().map(|o| g.predict(o)).collect();
    let (name, value) = metric(g, &preds, y);
    let n = inputs.len();
    if a.json {
        let mut v = json!({ name: value, "samples": n });
        e.add_json(&mut v, g);
        println!("{v}");
    } else {
        println!(
            "tfhe backend ({}, {}): {name} {value:.4} on {n} encrypted samples; {}/{n} same \
             prediction as the clear backend, {}/{n} bit-identical outputs (approximate reads \
             differ by design, exact ones never); {}",
            e.parameters,
            e.mode,
            same_predictions(g, &e.outputs, &e.clear),
            e.identical(),
            e.cost()
        );
    }
    Ok(e.exit_code())
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

#[cfg(not(feature = "tfhe-backend"))]
mod imp {
    //! Stand-ins for a build without TFHE: a clear error that says how to enable it.
    use std::path::Path;
    use std::process::ExitCode;

    use sqnn::analyze::CheckedGraph;
    use sqnn::{Error, Result};

    use super::EncryptedRun;
    use crate::args::{FheArgs, Rows};
    use crate::run::RunArgs;

    fn disabled() -> Error {
        Error::Backend(
            "this sqnn was built without TFHE (cargo feature `tfhe-backend`); rebuild with \
             `cargo build --release` (the feature is on by default) or use --backend clear"
                .into(),
        )
    }

    pub fn keygen(_: &Path, _: &Path, _: &FheArgs, _: Option<Rows>) -> Result<ExitCode> {
        Err(disabled())
    }

    pub fn encrypted(
        _: &CheckedGraph,
        _: &[Vec<i64>],
        _: &RunArgs,
        _: Option<Rows>,
    ) -> Result<EncryptedRun> {
        Err(disabled())
    }

    /// No keys can be made or read here: none to keep `--out` off.
    pub fn key_files(_: &Path) -> Vec<std::path::PathBuf> {
        Vec::new()
    }
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
