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
    let entries = std::fs::read_dir(dir).map_err(|e| {
        Error::param(
            "circuits",
            format!(
                "cannot read the circuits directory {} ({e}): give the directory that holds \
                 the NAME.circuit.json files to serve",
                dir.display()
            ),
        )
    })?;
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
    let plan = default_plan(&an);
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
        parameter_set: plan
            .as_ref()
            .map_or_else(|_| "none".into(), |p| p.parameter_set.to_string()),
        mode: plan
            .as_ref()
            .map_or_else(|_| String::new(), |p| p.mode.to_string()),
        predicted_ms_per_sample: plan.as_ref().map_or(0.0, |p| p.latency_ms_per_sample),
        plan: match &plan {
            Ok(p) => match &p.recorded {
                Some(how) => format!("recorded in the circuit at compile time: {how}"),
                None => format!(
                    "the circuit records none; chosen at start-up by predicted latency with the \
                     read-noise guard of {} units (as `sqnn keygen` without --data)",
                    fhe::FALLBACK_MAX_SIGMA
                ),
            },
            Err(e) => format!("no plan: {e}"),
        },
    };
    Ok(ServedCircuit {
        info,
        checked,
        file,
    })
}

/// A served circuit's default plan: the one it records (compile time), else the choice `sqnn
/// keygen` makes without data (approximate reads, the read-noise guard), on the built-in cost
/// figures' cores (the server's listing is the same on any machine).
fn default_plan(an: &crate::analyze::Analyzed) -> Result<fhe::FhePlan> {
    let facts = PlanFacts::new(an);
    let costs = PlanRequest::new(FheMode::Approximate).cores(fhe::builtin_cores());
    match &an.graph().plan {
        Some(r) => fhe::recorded_plan(&facts, r, &costs),
        None => fhe::plan(&facts, &costs.max_sigma(fhe::FALLBACK_MAX_SIGMA)),
    }
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
