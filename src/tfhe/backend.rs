//! [`TfheBackend`]: the client and server keys together, running samples end to end (encrypt,
//! evaluate, decrypt) and timing each step.

use std::path::Path;
use std::time::Instant;

use serde::Serialize;

use super::files::{load_client_key, load_server_key};
use super::keys::{check_generated_together, ClientKey, ServerKey};
use crate::analyze::CheckedGraph;
use crate::error::Result;
use crate::execute::{validate_inputs, Backend};
use crate::fhe::FhePlan;
use crate::progress::{NoProgress, Progress};

/// Timings of an encrypted run, per sample (milliseconds).
#[derive(Clone, Debug, Default, Serialize)]
pub struct TfheRun {
    /// Each sample's output accumulators (as the clear backend gives them).
    pub outputs: Vec<Vec<i64>>,
    /// Client: encryption of each sample.
    pub encrypt_ms: Vec<f64>,
    /// Server: evaluation of each sample (the encrypted inference latency).
    pub evaluate_ms: Vec<f64>,
    /// Client: decryption of each sample.
    pub decrypt_ms: Vec<f64>,
    /// Bootstraps per sample.
    pub pbs_count: usize,
}

impl TfheRun {
    /// Median server evaluation time per sample (ms); 0 without samples.
    pub fn median_evaluate_ms(&self) -> f64 {
        median(&self.evaluate_ms)
    }
}

/// Median of `v` (0 when empty).
pub fn median(v: &[f64]) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let n = s.len();
    if n % 2 == 1 {
        s[n / 2]
    } else {
        0.5 * (s[n / 2 - 1] + s[n / 2])
    }
}

/// The TFHE backend: per sample, the client encrypts, the server evaluates, the client
/// decrypts. Holds both keys (a convenience for running and comparing in one process; a real
/// deployment gives the server only the [`ServerKey`]).
#[derive(Clone, Debug)]
pub struct TfheBackend {
    client: ClientKey,
    server: ServerKey,
}

impl TfheBackend {
    /// A backend from a key pair.
    pub fn new(client: ClientKey, server: ServerKey) -> Result<TfheBackend> {
        check_generated_together(&client, &server)?;
        Ok(TfheBackend { client, server })
    }

    /// Generates fresh keys for `checked` with the plan's parameter set (see
    /// [`ClientKey::keygen_seconds`] for the time it took).
    pub fn generate(checked: &CheckedGraph, plan: &FhePlan) -> Result<TfheBackend> {
        TfheBackend::generate_with_progress(checked, plan, &NoProgress)
    }

    /// [`TfheBackend::generate`], reporting to `progress` (see
    /// [`ClientKey::generate_with_progress`]).
    pub fn generate_with_progress(
        checked: &CheckedGraph,
        plan: &FhePlan,
        progress: &dyn Progress,
    ) -> Result<TfheBackend> {
        let (c, s) = ClientKey::generate_with_progress(checked, plan, progress)?;
        TfheBackend::new(c, s)
    }

    /// Loads both keys from a directory written by [`save_keys`](super::save_keys).
    pub fn load(dir: &Path, checked: &CheckedGraph) -> Result<TfheBackend> {
        let client = load_client_key(dir, checked)?;
        let server = load_server_key(dir, checked)?;
        TfheBackend::new(client, server)
    }

    /// The client key.
    pub fn client(&self) -> &ClientKey {
        &self.client
    }

    /// The server key.
    pub fn server(&self) -> &ServerKey {
        &self.server
    }

    /// Runs every sample (encrypt, evaluate, decrypt), timing each step.
    pub fn run_timed(&self, checked: &CheckedGraph, inputs: &[Vec<i64>]) -> Result<TfheRun> {
        self.run_timed_with_progress(checked, inputs, &NoProgress)
    }

    /// [`TfheBackend::run_timed`], reporting to `progress` when the run is expected to take
    /// more than a second: one operation, `"bootstraps"`, of one step per bootstrap, with a
    /// message per sample (`sample 3/10`).
    pub fn run_timed_with_progress(
        &self,
        checked: &CheckedGraph,
        inputs: &[Vec<i64>],
        progress: &dyn Progress,
    ) -> Result<TfheRun> {
        validate_inputs(checked.analyzed(), inputs)?;
        let pbs = self.server.pbs_per_sample(checked);
        let expected_ms = inputs.len() as f64 * pbs as f64 * self.server.set().pbs_ms_1_thread
            / rayon::current_num_threads().max(1) as f64;
        if expected_ms <= 1000.0 {
            return self.run_samples(checked, inputs, pbs, &NoProgress);
        }
        progress.start("bootstraps", crate::cast::to_u64(inputs.len() * pbs));
        let run = self.run_samples(checked, inputs, pbs, progress);
        progress.finish();
        run
    }

    /// Encrypts, evaluates and decrypts each sample in turn.
    fn run_samples(
        &self,
        checked: &CheckedGraph,
        inputs: &[Vec<i64>],
        pbs: usize,
        progress: &dyn Progress,
    ) -> Result<TfheRun> {
        let prepared = self.server.prepare(checked)?;
        let digest = prepared.circuit.digest.clone();
        let mut run = TfheRun {
            pbs_count: pbs,
            ..TfheRun::default()
        };
        for (i, x) in inputs.iter().enumerate() {
            progress.message(&format!("sample {}/{}", i + 1, inputs.len()));
            let t = Instant::now();
            let enc = self.client.encrypt_with(checked, &digest, x)?;
            run.encrypt_ms.push(t.elapsed().as_secs_f64() * 1e3);
            let t = Instant::now();
            let out = self
                .server
                .evaluate_prepared(checked, &prepared, &enc, progress)?;
            run.evaluate_ms.push(t.elapsed().as_secs_f64() * 1e3);
            let t = Instant::now();
            run.outputs
                .push(self.client.decrypt_with(checked, &digest, &out)?);
            run.decrypt_ms.push(t.elapsed().as_secs_f64() * 1e3);
        }
        Ok(run)
    }
}

impl Backend for TfheBackend {
    fn name(&self) -> &'static str {
        "tfhe"
    }

    fn run(&self, graph: &CheckedGraph, inputs: &[Vec<i64>]) -> Result<Vec<Vec<i64>>> {
        Ok(self.run_timed(graph, inputs)?.outputs)
    }
}
