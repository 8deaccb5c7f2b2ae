//! The client: it holds the secret key, talks to an `sqnn serve` over HTTP, and never sends
//! anything but the evaluation key and ciphertexts. Requests are retried with exponential
//! backoff on 503 (honouring `Retry-After`) and on a dropped connection: evaluation is a pure
//! function and key upload is idempotent, so a retry never does harm.

use std::io::Read;
use std::time::{Duration, Instant};

use super::wire::{
    Batch, BatchKind, CircuitInfo, ErrorBody, Health, KeyInfo, AUTHORIZATION, RETRY_AFTER,
    SERVER_MS_HEADER,
};
use crate::analyze::CheckedGraph;
use crate::error::{Error, Result};
use crate::ir::IntGraph;
use crate::progress::Progress;
use crate::tfhe::{ClientKey, EncryptedOutput};

/// Largest answer body the client reads (a batch of outputs, a circuit file).
const MAX_ANSWER_BYTES: u64 = 1 << 30;

/// A connection to one sqnn server, as one tenant.
#[derive(Clone, Debug)]
pub struct Client {
    base: String,
    token: String,
    agent: ureq::Agent,
    attempts: u32,
    backoff: Duration,
}

/// What [`Client::predict`] measured and got.
#[derive(Clone, Debug, PartialEq)]
pub struct Prediction {
    /// Decrypted output accumulators, one per sample.
    pub outputs: Vec<Vec<i64>>,
    /// Round-trip milliseconds of each request (encryption and decryption excluded).
    pub round_trip_ms: Vec<f64>,
    /// Milliseconds the server reported evaluating each request.
    pub server_ms: Vec<f64>,
    /// Samples per request.
    pub batch_size: usize,
    /// Milliseconds spent encrypting, all samples.
    pub encrypt_ms: f64,
    /// Milliseconds spent decrypting, all samples.
    pub decrypt_ms: f64,
}

/// What [`Client::predict`] works with: a circuit on the server, the same circuit checked
/// here, the client key, and the id of its evaluation key on the server.
#[derive(Clone, Copy, Debug)]
pub struct Session<'a> {
    /// The circuit's name on the server.
    pub circuit: &'a str,
    /// The circuit, checked locally.
    pub checked: &'a CheckedGraph,
    /// The secret key.
    pub key: &'a ClientKey,
    /// The evaluation key's id on the server ([`Client::ensure_key`]).
    pub key_id: &'a str,
}

/// Encrypts `inputs` (quantized samples) into a batch for the key `key_id`.
pub fn encrypt_batch(
    key: &ClientKey,
    checked: &CheckedGraph,
    key_id: &str,
    inputs: &[Vec<i64>],
) -> Result<Batch> {
    let samples = inputs
        .iter()
        .map(|x| key.encrypt(checked, x)?.to_bytes())
        .collect::<Result<Vec<_>>>()?;
    Ok(Batch {
        kind: BatchKind::Inputs,
        key_id: key_id.to_string(),
        digest: checked.graph().digest()?,
        samples,
    })
}

/// Decrypts a batch of outputs made for `checked` with `key`'s pair.
pub fn decrypt_batch(
    key: &ClientKey,
    checked: &CheckedGraph,
    batch: &Batch,
) -> Result<Vec<Vec<i64>>> {
    if batch.kind != BatchKind::Outputs {
        return Err(Error::Input(
            "this batch holds encrypted inputs, not a server's answer".into(),
        ));
    }
    batch
        .samples
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let out = EncryptedOutput::from_bytes(s, &format!("answer {i}"), checked)?;
            key.decrypt(checked, &out)
        })
        .collect()
}

impl Client {
    /// A client of the server at `server` (`http://HOST:PORT`) with bearer `token`.
    pub fn new(server: &str, token: &str) -> Result<Client> {
        let base = server.trim_end_matches('/').to_string();
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(Error::param(
                "server",
                format!("{server:?} is not an http:// or https:// URL"),
            ));
        }
        if token.trim().is_empty() {
            return Err(Error::param("token", "is empty"));
        }
        let agent = ureq::AgentBuilder::new()
            .timeout_connect(Duration::from_secs(10))
            .timeout(Duration::from_secs(600))
            .build();
        Ok(Client {
            base,
            token: token.trim().to_string(),
            agent,
            attempts: 6,
            backoff: Duration::from_millis(200),
        })
    }

    /// Tries each request up to `attempts` times, waiting `backoff`, doubled each time (at
    /// most 10 s), or what `Retry-After` says.
    pub fn with_retries(mut self, attempts: u32, backoff: Duration) -> Client {
        self.attempts = attempts.max(1);
        self.backoff = backoff;
        self
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Sends a request (retried on 503 and dropped connections); `Ok(None)` on 404 when
    /// `absent_ok`.
    fn send(
        &self,
        method: &str,
        path: &str,
        body: Option<&[u8]>,
        absent_ok: bool,
    ) -> Result<Option<ureq::Response>> {
        let mut wait = self.backoff;
        for attempt in 1..=self.attempts {
            let req = self
                .agent
                .request(method, &self.url(path))
                .set(AUTHORIZATION, &format!("Bearer {}", self.token));
            let res = match body {
                Some(b) => req
                    .set("content-type", "application/octet-stream")
                    .send_bytes(b),
                None => req.call(),
            };
            let last = attempt == self.attempts;
            match res {
                Ok(r) => return Ok(Some(r)),
                Err(ureq::Error::Status(404, _)) if absent_ok => return Ok(None),
                Err(ureq::Error::Status(503, r)) if !last => {
                    let after = r
                        .header(RETRY_AFTER)
                        .and_then(|v| v.parse::<u64>().ok())
                        .map(Duration::from_secs);
                    std::thread::sleep(after.unwrap_or(wait).min(Duration::from_secs(30)));
                }
                Err(ureq::Error::Status(code, r)) => return Err(refused(code, r)),
                Err(ureq::Error::Transport(t)) if !last => {
                    let _ = t;
                    std::thread::sleep(wait);
                }
                Err(ureq::Error::Transport(t)) => {
                    return Err(Error::Service {
                        status: None,
                        message: format!(
                            "cannot reach {} after {} attempts ({t}): is `sqnn serve` running \
                             there?",
                            self.base, self.attempts
                        ),
                    })
                }
            }
            wait = (wait * 2).min(Duration::from_secs(10));
        }
        unreachable!("the last attempt returns")
    }

    fn get_json<T: serde::de::DeserializeOwned>(&self, path: &str) -> Result<T> {
        let r = self.send("GET", path, None, false)?.expect("absent not ok");
        json(r)
    }

    /// `GET /v1/health`.
    pub fn health(&self) -> Result<Health> {
        self.get_json("/v1/health")
    }

    /// `GET /v1/circuits`.
    pub fn circuits(&self) -> Result<Vec<CircuitInfo>> {
        self.get_json("/v1/circuits")
    }

    /// `GET /v1/circuits/NAME`: the circuit file, parsed and validated.
    pub fn circuit(&self, name: &str) -> Result<IntGraph> {
        let r = self
            .send(
                "GET",
                &format!("/v1/circuits/{}", encode_segment(name)),
                None,
                false,
            )?
            .expect("absent not ok");
        let bytes = read_body(r)?;
        let text = String::from_utf8(bytes).map_err(|_| Error::Service {
            status: None,
            message: format!("the server sent circuit {name} as something other than UTF-8 JSON"),
        })?;
        IntGraph::from_json(&text)
    }

    /// `GET /v1/keys/ID`: the key's info, or `None` if this token has no such key.
    pub fn key(&self, id: &str) -> Result<Option<KeyInfo>> {
        match self.send(
            "GET",
            &format!("/v1/keys/{}", encode_segment(id)),
            None,
            true,
        )? {
            Some(r) => Ok(Some(json(r)?)),
            None => Ok(None),
        }
    }

    /// `POST /v1/keys` with a `server.key`'s bytes.
    pub fn upload_key(&self, server_key: &[u8]) -> Result<KeyInfo> {
        let r = self
            .send("POST", "/v1/keys", Some(server_key), false)?
            .expect("absent not ok");
        json(r)
    }

    /// Uploads `server_key` unless the server has it already (it asks first); returns its
    /// info and whether it was uploaded.
    pub fn ensure_key(&self, server_key: &[u8]) -> Result<(KeyInfo, bool)> {
        let id = super::wire::key_id(server_key);
        if let Some(info) = self.key(&id)? {
            return Ok((info, false));
        }
        Ok((self.upload_key(server_key)?, true))
    }

    /// `POST /v1/circuits/NAME/evaluate`: the server's answer and the milliseconds it reports.
    pub fn evaluate(&self, circuit: &str, batch: &Batch) -> Result<(Batch, f64)> {
        let body = batch.to_bytes()?;
        let path = format!("/v1/circuits/{}/evaluate", encode_segment(circuit));
        let r = self
            .send("POST", &path, Some(&body), false)?
            .expect("absent not ok");
        let server_ms = r
            .header(SERVER_MS_HEADER)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(f64::NAN);
        let bytes = read_body(r)?;
        let answer = Batch::from_bytes(&bytes, BatchKind::Outputs, batch.samples.len())?;
        if answer.samples.len() != batch.samples.len() || answer.digest != batch.digest {
            return Err(Error::Service {
                status: None,
                message: format!(
                    "the server answered {} samples for another circuit or count than the {} \
                     sent",
                    answer.samples.len(),
                    batch.samples.len()
                ),
            });
        }
        Ok((answer, server_ms))
    }

    /// Encrypts `inputs` locally, has the session's circuit evaluate them `batch_size` samples
    /// per request, and decrypts the answers locally. `progress` advances by one per sample.
    pub fn predict(
        &self,
        session: &Session<'_>,
        inputs: &[Vec<i64>],
        batch_size: usize,
        progress: &dyn Progress,
    ) -> Result<Prediction> {
        let Session {
            circuit: name,
            checked,
            key,
            key_id,
        } = *session;
        let batch_size = batch_size.max(1);
        let mut p = Prediction {
            outputs: Vec::with_capacity(inputs.len()),
            round_trip_ms: Vec::new(),
            server_ms: Vec::new(),
            batch_size,
            encrypt_ms: 0.0,
            decrypt_ms: 0.0,
        };
        progress.start("encrypted samples", crate::cast::to_u64(inputs.len()));
        for chunk in inputs.chunks(batch_size) {
            let t = Instant::now();
            let batch = encrypt_batch(key, checked, key_id, chunk)?;
            p.encrypt_ms += ms(t);
            let t = Instant::now();
            let (answer, server_ms) = self.evaluate(name, &batch)?;
            p.round_trip_ms.push(ms(t));
            p.server_ms.push(server_ms);
            let t = Instant::now();
            p.outputs.extend(decrypt_batch(key, checked, &answer)?);
            p.decrypt_ms += ms(t);
            progress.advance(crate::cast::to_u64(chunk.len()));
        }
        progress.finish();
        Ok(p)
    }
}

fn ms(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1e3
}

/// A path segment with everything but unreserved characters percent-encoded.
fn encode_segment(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn read_body(r: ureq::Response) -> Result<Vec<u8>> {
    let mut bytes = Vec::new();
    r.into_reader()
        .take(MAX_ANSWER_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| Error::Service {
            status: None,
            message: format!("the connection dropped while reading the answer ({e})"),
        })?;
    if crate::cast::to_u64(bytes.len()) > MAX_ANSWER_BYTES {
        return Err(Error::Service {
            status: None,
            message: format!("the server's answer is over {MAX_ANSWER_BYTES} bytes"),
        });
    }
    Ok(bytes)
}

fn json<T: serde::de::DeserializeOwned>(r: ureq::Response) -> Result<T> {
    let bytes = read_body(r)?;
    serde_json::from_slice(&bytes).map_err(|e| Error::Service {
        status: None,
        message: format!(
            "the server's answer is not the JSON expected ({e}): is it an sqnn server?"
        ),
    })
}

/// The error of a refused request, in the server's words (its JSON `error`).
fn refused(code: u16, r: ureq::Response) -> Error {
    let text = read_body(r).unwrap_or_default();
    let message = serde_json::from_slice::<ErrorBody>(&text)
        .map(|b| b.error)
        .unwrap_or_else(|_| String::from_utf8_lossy(&text[..text.len().min(300)]).into_owned());
    Error::Service {
        status: Some(code),
        message: format!("{code}: {message}"),
    }
}
