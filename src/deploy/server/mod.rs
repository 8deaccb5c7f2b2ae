//! `sqnn serve`: the HTTP service, on axum/tokio. It holds circuits (loaded and checked at
//! start) and an evaluation-key [store](super::store); it never holds a client key, and the
//! types make that impossible (`deploy` only ever builds a [`ServerKey`](crate::tfhe::ServerKey)
//! from bytes).
//!
//! Routes (all under `/v1`; every error is a JSON [`ErrorBody`](super::wire::ErrorBody)):
//! * `GET /v1/health`, `GET /v1/metrics` (Prometheus text): open.
//! * `GET /v1/circuits`, `GET /v1/circuits/{name}` (the circuit file), `POST /v1/keys` (a
//!   `server.key`'s bytes), `GET /v1/keys/{id}`, `POST /v1/circuits/{name}/evaluate` (a
//!   [`Batch`](super::wire::Batch) of encrypted inputs; answers a batch of encrypted outputs):
//!   bearer token.
//!
//! Evaluations (and key decompressions) run on a bounded pool of workers with a bounded
//! queue: past capacity a request is answered 503 with `Retry-After` at once.

mod pool;
mod routes;

pub mod auth;
pub mod metrics;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::analyze::{analyze, CheckedGraph};
use crate::error::{Error, Result};
use crate::fhe::{self, FheMode, PlanFacts, PlanRequest};
use crate::ir::IntGraph;

use super::store::KeyStore;
use super::wire::CircuitInfo;
pub use auth::Tokens;
pub use metrics::Metrics;
use pool::Pool;

/// What `sqnn serve` is told.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// Directory of `NAME.circuit.json` files.
    pub circuits: PathBuf,
    /// Who may call, and as which tenant.
    pub tokens: Tokens,
    /// Evaluations run at once.
    pub workers: usize,
    /// Evaluations waiting for a worker before 503.
    pub queue: usize,
    /// Largest `POST /v1/keys` body.
    pub max_key_bytes: usize,
    /// Largest evaluate body.
    pub max_batch_bytes: usize,
    /// Most samples per evaluate request.
    pub max_samples: usize,
    /// Longest a request may wait for and use a worker.
    pub timeout: Duration,
    /// Memory budget of decompressed keys.
    pub cache_bytes: u64,
}

impl ServerConfig {
    /// Defaults for everything but the circuits directory and tokens.
    pub fn new(circuits: PathBuf, tokens: Tokens) -> ServerConfig {
        ServerConfig {
            circuits,
            tokens,
            workers: 2,
            queue: 16,
            max_key_bytes: 512 << 20,
            max_batch_bytes: 64 << 20,
            max_samples: 256,
            timeout: Duration::from_secs(300),
            cache_bytes: 4 << 30,
        }
    }
}

/// A circuit the server evaluates.
pub struct ServedCircuit {
    /// Its info, as listed.
    pub info: CircuitInfo,
    /// The checked circuit.
    pub checked: CheckedGraph,
    /// The file's bytes (what `GET /v1/circuits/{name}` answers).
    pub file: Vec<u8>,
}

/// Loads and checks every `NAME.circuit.json` of `dir`; refuses a directory without any, or a
/// circuit that fails its check (naming the file).
pub fn load_circuits(dir: &Path) -> Result<BTreeMap<String, Arc<ServedCircuit>>> {
    let entries = std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))?;
    let mut out = BTreeMap::new();
    for entry in entries {
        let path = entry.map_err(|e| Error::io(dir, e))?.path();
        let Some(name) = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_suffix(".circuit.json"))
        else {
            continue;
        };
        out.insert(name.to_string(), Arc::new(load_circuit(&path, name)?));
    }
    if out.is_empty() {
        return Err(Error::Input(format!(
            "{} holds no NAME.circuit.json: compile a model into it first (`sqnn compile MODEL \
             --out {}/NAME.circuit.json`)",
            dir.display(),
            dir.display()
        )));
    }
    Ok(out)
}

fn load_circuit(path: &Path, name: &str) -> Result<ServedCircuit> {
    // One size-limited read; the file served is the circuit as loaded.
    let graph = IntGraph::load(path)?;
    let file = graph.to_json()?.into_bytes();
    let an = analyze(graph)?;
    let plan = fhe::plan(
        &PlanFacts::new(&an),
        &PlanRequest::new(FheMode::Approximate),
    );
    let checked = an.check().map_err(|failed| {
        Error::Circuit(format!(
            "{}: fails the accumulator check ({} neurons over budget), so it cannot be served",
            path.display(),
            failed.report().neurons_over_budget.len()
        ))
    })?;
    let g = checked.graph();
    let info = CircuitInfo {
        name: name.to_string(),
        digest: g.digest()?,
        features: g.input_nodes().len(),
        outputs: g.outputs.len(),
        bootstraps: checked.report().pbs_count,
        parameter_set: plan.map_or_else(|_| "none".into(), |p| p.parameter_set.to_string()),
    };
    Ok(ServedCircuit {
        info,
        checked,
        file,
    })
}

/// Everything the handlers share.
pub struct State {
    config: ServerConfig,
    circuits: BTreeMap<String, Arc<ServedCircuit>>,
    store: KeyStore,
    pool: Pool,
    metrics: Arc<Metrics>,
}

impl State {
    /// Loads the circuits of `config` and opens the store.
    pub fn new(config: ServerConfig, store: KeyStore) -> Result<State> {
        if config.workers == 0 {
            return Err(Error::param("workers", "must be at least 1"));
        }
        let circuits = load_circuits(&config.circuits)?;
        let metrics = Arc::new(Metrics::new());
        let pool = Pool::new(config.workers, config.queue, Arc::clone(&metrics));
        Ok(State {
            config,
            circuits,
            store,
            pool,
            metrics,
        })
    }

    /// The circuits served, by name.
    pub fn circuits(&self) -> impl Iterator<Item = &CircuitInfo> {
        self.circuits.values().map(|c| &c.info)
    }
}

/// The service's routes on `state`.
pub fn router(state: Arc<State>) -> axum::Router {
    routes::router(state)
}

/// Serves `state` on `listener` until `shutdown` completes, then drains in-flight requests.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: Arc<State>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<()> {
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown)
        .await
        .map_err(|e| Error::Backend(format!("the HTTP server stopped: {e}")))
}
