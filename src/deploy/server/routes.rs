//! The handlers of the `/v1` API.

use std::sync::Arc;
use std::time::Instant;

use axum::body::{Body, Bytes};
use axum::extract::{MatchedPath, Path, Request, State as AxState};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};

use super::metrics::{Route, RouteStatus};
use super::pool::Refused;
use super::{ServedCircuit, State};
use crate::deploy::store::LoadedKey;
use crate::deploy::wire::{
    is_key_id, key_id, Batch, BatchKind, ErrorBody, Health, KeyInfo, AUTHORIZATION, RETRY_AFTER,
    SERVER_MS_HEADER,
};
use crate::error::Error;
use crate::progress::NoProgress;
use crate::tfhe::{EncryptedInput, ObjectInfo};

type St = AxState<Arc<State>>;

/// An error answer: a status and a JSON [`ErrorBody`].
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    message: String,
}

impl ApiError {
    fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
        }
    }
}

impl From<Error> for ApiError {
    fn from(e: Error) -> ApiError {
        let status = match &e {
            Error::Input(_) | Error::InvalidParameter { .. } | Error::Data { .. } => {
                StatusCode::BAD_REQUEST
            }
            Error::Keys(_) | Error::Circuit(_) | Error::Model(_) => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        ApiError::new(status, e.to_string())
    }
}

impl From<Refused> for ApiError {
    fn from(r: Refused) -> ApiError {
        match r {
            Refused::Full => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "every worker is busy and the queue is full: try again after Retry-After seconds",
            ),
            Refused::TimedOut => ApiError::new(
                StatusCode::GATEWAY_TIMEOUT,
                "the request did not finish within the server's timeout: send fewer samples per \
                 request",
            ),
            Refused::Panicked => ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the evaluation failed inside the server (a bug): report it",
            ),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut resp = (
            self.status,
            Json(ErrorBody {
                error: self.message,
            }),
        )
            .into_response();
        let h = resp.headers_mut();
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            h.insert(RETRY_AFTER, HeaderValue::from_static("1"));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            h.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        resp
    }
}

pub fn router(state: Arc<State>) -> Router {
    Router::new()
        .route("/v1/health", get(health))
        .route("/v1/metrics", get(metrics))
        .route("/v1/circuits", get(list_circuits))
        .route("/v1/circuits/{name}", get(circuit_file))
        .route("/v1/keys", post(upload_key))
        .route("/v1/keys/{id}", get(key_info))
        .route("/v1/circuits/{name}/evaluate", post(evaluate))
        .route_layer(middleware::from_fn_with_state(Arc::clone(&state), track))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state)
}

/// Counts every routed request by route and status, and its latency.
async fn track(st: St, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |p| p.as_str().to_string());
    let t = Instant::now();
    let resp = next.run(req).await;
    let m = &st.0.metrics;
    m.requests
        .get_or_create(&RouteStatus {
            route: route.clone(),
            status: resp.status().as_u16(),
        })
        .inc();
    m.latency
        .get_or_create(&Route { route })
        .observe(t.elapsed().as_secs_f64());
    resp
}

async fn not_found() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "no such route: the API is under /v1 (health, metrics, circuits, keys)",
    )
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "this route does not take that method (keys and evaluations are POSTed, the rest is GET)",
    )
}

/// The caller's tenant, from its bearer token.
fn tenant(st: &State, headers: &HeaderMap) -> Result<String, ApiError> {
    let auth = headers.get(AUTHORIZATION).and_then(|v| v.to_str().ok());
    st.config
        .tokens
        .tenant(auth)
        .map(str::to_string)
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::UNAUTHORIZED,
                "missing or unknown bearer token: send `Authorization: Bearer TOKEN` with a \
                 token the server's operator gave you",
            )
        })
}

/// The body of a request, at most `limit` bytes: a `Content-Length` over the limit is refused
/// before anything is read, a body that grows past it as soon as it does.
async fn read_body(
    headers: &HeaderMap,
    body: Body,
    limit: usize,
    what: &str,
) -> Result<Bytes, ApiError> {
    let too_large = || {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the {what} is over this server's limit of {limit} bytes"),
        )
    };
    let announced = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if announced.is_some_and(|n| n > crate::cast::to_u64(limit)) {
        return Err(too_large());
    }
    axum::body::to_bytes(body, limit).await.map_err(|e| {
        let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&e);
        while let Some(s) = source {
            if s.is::<http_body_util::LengthLimitError>() {
                return too_large();
            }
            source = s.source();
        }
        ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("cannot read the {what}: {e}"),
        )
    })
}

fn circuit(st: &State, name: &str) -> Result<Arc<ServedCircuit>, ApiError> {
    st.circuits.get(name).cloned().ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            format!(
                "no circuit {:?} here: GET /v1/circuits lists the {} served",
                name.chars().take(64).collect::<String>(),
                st.circuits.len()
            ),
        )
    })
}

async fn health(st: St) -> Json<Health> {
    Json(Health {
        status: "ok".into(),
        circuits: st.0.circuits.len(),
        version: env!("CARGO_PKG_VERSION").into(),
    })
}

async fn metrics(st: St) -> Response {
    let m = &st.0.metrics;
    m.cached_key_bytes
        .set(i64::try_from(st.0.store.cached_bytes()).unwrap_or(i64::MAX));
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        m.render(),
    )
        .into_response()
}

async fn list_circuits(st: St, headers: HeaderMap) -> Result<Response, ApiError> {
    tenant(&st.0, &headers)?;
    let list: Vec<_> = st.0.circuits().cloned().collect();
    Ok(Json(list).into_response())
}

async fn circuit_file(
    st: St,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    tenant(&st.0, &headers)?;
    let c = circuit(&st.0, &name)?;
    Ok(([(header::CONTENT_TYPE, "application/json")], c.file.clone()).into_response())
}

/// The circuit a key's header names, among those served.
fn circuit_of_key(st: &State, info: &ObjectInfo) -> Result<(String, Arc<ServedCircuit>), ApiError> {
    st.circuits
        .iter()
        .find(|(_, c)| c.info.digest == info.digest)
        .map(|(n, c)| (n.clone(), Arc::clone(c)))
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                format!(
                    "the key was made for circuit {}, which this server does not serve (it serves \
                     {}): generate keys for one of those circuits",
                    info.digest.chars().take(16).collect::<String>(),
                    st.circuits.keys().cloned().collect::<Vec<_>>().join(", ")
                ),
            )
        })
}

async fn upload_key(st: St, headers: HeaderMap, raw: Body) -> Result<Response, ApiError> {
    let st = st.0;
    let tenant = tenant(&st, &headers)?;
    let bytes = read_body(&headers, raw, st.config.max_key_bytes, "key").await?;
    let info = ObjectInfo::read(&bytes)?;
    match info.kind.as_str() {
        "server_key" => {}
        "client_key" => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "this is a client key, which must never leave its owner: send server.key (the \
                 evaluation key) instead",
            ))
        }
        other => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                format!(
                    "this is an {}, not a key: send server.key",
                    other.replace('_', " ")
                ),
            ))
        }
    }
    let (name, circuit) = circuit_of_key(&st, &info)?;
    let id = key_id(&bytes);
    let answer = |created: bool| KeyInfo {
        key_id: id.clone(),
        circuit: name.clone(),
        parameter_set: info.parameter_set.clone(),
        created,
    };
    if st.store.contains(&tenant, &id).await? {
        return Ok((StatusCode::OK, Json(answer(false))).into_response());
    }
    // Decode fully before storing: nothing that would not load is ever stored.
    let (b, n) = (bytes.clone(), name.clone());
    let loaded = st
        .pool
        .run(st.config.timeout, move || {
            LoadedKey::decode(&b, &n, &circuit.checked)
        })
        .await??;
    let created = st.store.put(&tenant, &id, bytes).await?;
    st.store.cache(&tenant, &id, Arc::new(loaded));
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(answer(created))).into_response())
}

fn no_key(id: &str) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        format!("no key {id} for this token: upload server.key with POST /v1/keys"),
    )
}

fn check_id(id: &str) -> Result<(), ApiError> {
    if is_key_id(id) {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "a key id is 64 hex digits (the SHA-256 of server.key), as POST /v1/keys answers",
        ))
    }
}

async fn key_info(
    st: St,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let st = st.0;
    let tenant = tenant(&st, &headers)?;
    check_id(&id)?;
    // Clients ask before every session: answer from the cache, not by reading the key.
    let (circuit, parameter_set) = match st.store.cached(&tenant, &id) {
        Some(k) => (k.circuit.clone(), k.key.parameter_set().to_string()),
        None => {
            let bytes = st
                .store
                .get(&tenant, &id)
                .await?
                .ok_or_else(|| no_key(&id))?;
            let info = ObjectInfo::read(&bytes)?;
            (circuit_of_key(&st, &info)?.0, info.parameter_set)
        }
    };
    Ok(Json(KeyInfo {
        key_id: id,
        circuit,
        parameter_set,
        created: false,
    })
    .into_response())
}

/// A tenant's key, decompressed: from the cache, or from the store (then cached).
async fn loaded_key(st: &Arc<State>, tenant: &str, id: &str) -> Result<Arc<LoadedKey>, ApiError> {
    if let Some(k) = st.store.cached(tenant, id) {
        return Ok(k);
    }
    let bytes = st.store.get(tenant, id).await?.ok_or_else(|| no_key(id))?;
    let info = ObjectInfo::read(&bytes)?;
    let (name, circuit) = circuit_of_key(st, &info)?;
    let loaded = st
        .pool
        .run(st.config.timeout, move || {
            LoadedKey::decode(&bytes, &name, &circuit.checked)
        })
        .await??;
    let loaded = Arc::new(loaded);
    st.store.cache(tenant, id, Arc::clone(&loaded));
    Ok(loaded)
}

async fn evaluate(
    st: St,
    Path(name): Path<String>,
    headers: HeaderMap,
    raw: Body,
) -> Result<Response, ApiError> {
    let st = st.0;
    let tenant = tenant(&st, &headers)?;
    let limit = st.config.max_batch_bytes;
    // Read the body (bounded) before answering for the circuit: a client still sending when the
    // answer comes would see a reset connection instead of the message.
    let bytes = read_body(&headers, raw, limit, "batch of encrypted samples").await?;
    let circuit = circuit(&st, &name)?;
    let batch =
        Batch::from_bytes(&bytes, BatchKind::Inputs, st.config.max_samples).map_err(|e| {
            let too_many = matches!(
                e,
                Error::InvalidParameter {
                    name: "max_samples",
                    ..
                }
            );
            let mut a = ApiError::from(e);
            if too_many {
                a.status = StatusCode::PAYLOAD_TOO_LARGE;
            }
            a
        })?;
    drop(bytes);
    if batch.digest != circuit.info.digest {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!(
                "the samples were encrypted for circuit {}, not {name} ({}): encrypt with keys \
                 made for {name}",
                batch.digest.chars().take(16).collect::<String>(),
                &circuit.info.digest[..16]
            ),
        ));
    }
    check_id(&batch.key_id)?;
    let key = loaded_key(&st, &tenant, &batch.key_id).await?;
    if key.circuit != name {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!(
                "key {} evaluates circuit {}, not {name}: upload keys made for {name}",
                batch.key_id, key.circuit
            ),
        ));
    }
    let n = batch.samples.len();
    let samples = batch.samples;
    let c = Arc::clone(&circuit);
    let k = Arc::clone(&key);
    let t = Instant::now();
    let outputs = st
        .pool
        .run(st.config.timeout, move || -> crate::Result<Vec<Vec<u8>>> {
            let mut outs = Vec::with_capacity(samples.len());
            for (i, s) in samples.iter().enumerate() {
                let label = format!("sample {i} of the batch");
                let input = EncryptedInput::from_bytes(s, &label, &c.checked)?;
                let out = k
                    .key
                    .evaluate_prepared(&c.checked, &k.prepared, &input, &NoProgress)?;
                outs.push(out.to_bytes()?);
            }
            Ok(outs)
        })
        .await??;
    let ms = t.elapsed().as_secs_f64() * 1e3;
    let m = &st.metrics;
    m.samples.inc_by(crate::cast::to_u64(n));
    m.bootstraps.inc_by(
        crate::cast::to_u64(n).saturating_mul(crate::cast::to_u64(circuit.info.bootstraps)),
    );
    let answer = Batch {
        kind: BatchKind::Outputs,
        key_id: batch.key_id,
        digest: batch.digest,
        samples: outputs,
    }
    .to_bytes()?;
    let mut resp = ([(header::CONTENT_TYPE, "application/octet-stream")], answer).into_response();
    if let Ok(v) = HeaderValue::from_str(&format!("{ms:.3}")) {
        resp.headers_mut().insert(SERVER_MS_HEADER, v);
    }
    Ok(resp)
}
