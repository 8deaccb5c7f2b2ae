//! What travels between client and server: the batch container of encrypted samples (request
//! and response bodies of `POST /v1/circuits/NAME/evaluate`), key ids, and the JSON answers.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Magic of a batch container.
const MAGIC: &[u8; 8] = b"SQNNBAT1";
/// Largest batch header (JSON) accepted.
const MAX_HEADER: u32 = 1 << 20;

/// The header of the bearer-token authorization.
pub const AUTHORIZATION: &str = "authorization";
/// Response header: milliseconds the server spent evaluating the batch.
pub const SERVER_MS_HEADER: &str = "x-sqnn-server-ms";
/// Response header of a 503: seconds to wait before trying again.
pub const RETRY_AFTER: &str = "retry-after";

/// What a batch holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BatchKind {
    /// Encrypted inputs, sent by the client.
    Inputs,
    /// Encrypted outputs, sent back by the server.
    Outputs,
}

/// A batch of encrypted samples for one circuit and one evaluation key: each sample is the
/// bytes of an sqnn ciphertext container ([`crate::tfhe::Encrypted::to_bytes`]).
#[derive(Clone, Debug, PartialEq)]
pub struct Batch {
    /// Inputs or outputs.
    pub kind: BatchKind,
    /// The evaluation key's id ([`key_id`]).
    pub key_id: String,
    /// The circuit's digest.
    pub digest: String,
    /// One container per sample.
    pub samples: Vec<Vec<u8>>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct BatchHeader {
    kind: BatchKind,
    key_id: String,
    digest: String,
    /// Bytes of each sample's container, in order.
    sample_bytes: Vec<u64>,
}

impl Batch {
    /// The container's bytes: magic, header length (u32, little-endian), JSON header, samples.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        let header = BatchHeader {
            kind: self.kind,
            key_id: self.key_id.clone(),
            digest: self.digest.clone(),
            sample_bytes: self
                .samples
                .iter()
                .map(|s| crate::cast::to_u64(s.len()))
                .collect(),
        };
        let h = serde_json::to_vec(&header)
            .map_err(|e| Error::Input(format!("cannot write a batch header: {e}")))?;
        let hlen = u32::try_from(h.len())
            .ok()
            .filter(|&l| l <= MAX_HEADER)
            .ok_or_else(|| Error::Input("too many samples for one batch".into()))?;
        let total: usize = self.samples.iter().map(Vec::len).sum();
        let mut out = Vec::with_capacity(12 + h.len() + total);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&hlen.to_le_bytes());
        out.extend_from_slice(&h);
        for s in &self.samples {
            out.extend_from_slice(s);
        }
        Ok(out)
    }

    /// Reads a batch of `kind` holding at most `max_samples` samples; every length is checked
    /// against the bytes present before anything is copied.
    pub fn from_bytes(bytes: &[u8], kind: BatchKind, max_samples: usize) -> Result<Batch> {
        let fix = match kind {
            BatchKind::Inputs => "send the bytes `sqnn client encrypt` wrote, unchanged",
            BatchKind::Outputs => {
                "give the server's answer to POST /v1/circuits/NAME/evaluate, unchanged (not \
                 the batch `sqnn client encrypt` wrote)"
            }
        };
        let bad = |m: String| Error::Input(format!("not an sqnn batch of {kind:?} ({m}): {fix}"));
        if bytes.len() < 12 || &bytes[..8] != MAGIC {
            return Err(bad("bad magic".into()));
        }
        let hlen = u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]);
        let body = 12 + u64::from(hlen);
        if hlen > MAX_HEADER || body > crate::cast::to_u64(bytes.len()) {
            return Err(bad(format!("header length {hlen} is impossible")));
        }
        let body = crate::cast::to_usize(body);
        let header: BatchHeader = serde_json::from_slice(&bytes[12..body])
            .map_err(|e| bad(format!("unreadable header: {e}")))?;
        if header.kind != kind {
            return Err(bad(format!("it holds {:?}", header.kind)));
        }
        let n = header.sample_bytes.len();
        if n == 0 {
            return Err(Error::Input("the batch holds no sample".into()));
        }
        if n > max_samples {
            return Err(Error::param(
                "max_samples",
                format!(
                    "the batch holds {n} samples, more than the {max_samples} allowed per \
                     request: send them in several requests"
                ),
            ));
        }
        let announced = header
            .sample_bytes
            .iter()
            .try_fold(0u64, |a, &b| a.checked_add(b));
        if announced != Some(crate::cast::to_u64(bytes.len() - body)) {
            return Err(bad(format!(
                "{} bytes of samples, the header announces {}",
                bytes.len() - body,
                announced.map_or("more than 2^64".to_string(), |a| a.to_string())
            )));
        }
        let mut samples = Vec::with_capacity(n);
        let mut at = body;
        for &len in &header.sample_bytes {
            // Fits: the sum was checked against the slice's length.
            let end = at + crate::cast::to_usize(len);
            samples.push(bytes[at..end].to_vec());
            at = end;
        }
        Ok(Batch {
            kind,
            key_id: header.key_id,
            digest: header.digest,
            samples,
        })
    }
}

/// A key's id: the SHA-256 of its file's bytes (hex). Uploading the same key twice gives the
/// same id; the server checks the bytes it stores against it.
pub fn key_id(bytes: &[u8]) -> String {
    crate::fsio::sha256_hex(bytes)
}

/// Whether `s` has the shape of a key id (64 lowercase hex digits).
pub fn is_key_id(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// `GET /v1/health`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Health {
    /// `"ok"`.
    pub status: String,
    /// Circuits served.
    pub circuits: usize,
    /// sqnn's version.
    pub version: String,
}

/// One entry of `GET /v1/circuits`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CircuitInfo {
    /// The name clients use (`NAME` of `NAME.circuit.json`).
    pub name: String,
    /// The circuit's digest, which keys and ciphertexts carry.
    pub digest: String,
    /// Features per sample.
    pub features: usize,
    /// Outputs per sample.
    pub outputs: usize,
    /// Bootstraps per sample.
    pub bootstraps: usize,
    /// The parameter set of the default plan (keys of another 128-bit set are accepted too).
    pub parameter_set: String,
    /// The default plan's read mode (`exact` or `approximate`; empty from older servers).
    #[serde(default)]
    pub mode: String,
    /// The default plan's predicted latency per sample (ms, on the cores of its cost figures).
    #[serde(default)]
    pub predicted_ms_per_sample: f64,
    /// Where the default plan comes from: the one recorded in the circuit at compile time (and
    /// how it was chosen), or one chosen at start-up when the circuit records none.
    #[serde(default)]
    pub plan: String,
}

/// The answer of `POST /v1/keys` and `GET /v1/keys/ID`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct KeyInfo {
    /// The key's id ([`key_id`]).
    pub key_id: String,
    /// Name of the circuit it evaluates.
    pub circuit: String,
    /// Its parameter set.
    pub parameter_set: String,
    /// Whether this request stored it (false: it was already there).
    pub created: bool,
}

/// The JSON body of every error answer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// What went wrong and what to do.
    pub error: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch() -> Batch {
        Batch {
            kind: BatchKind::Inputs,
            key_id: key_id(b"k"),
            digest: "d".into(),
            samples: vec![vec![1, 2, 3], vec![], vec![9; 10]],
        }
    }

    #[test]
    fn batches_round_trip_and_refuse_damage() {
        let b = batch();
        let bytes = b.to_bytes().unwrap();
        assert_eq!(Batch::from_bytes(&bytes, BatchKind::Inputs, 3).unwrap(), b);
        assert!(Batch::from_bytes(&bytes, BatchKind::Outputs, 3).is_err());
        let e = Batch::from_bytes(&bytes, BatchKind::Inputs, 2).unwrap_err();
        assert!(e.to_string().contains("3 samples"), "{e}");
        for cut in 0..bytes.len() {
            assert!(Batch::from_bytes(&bytes[..cut], BatchKind::Inputs, 3).is_err());
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(Batch::from_bytes(&longer, BatchKind::Inputs, 3).is_err());
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(
            std::env::var("SQNN_FUZZ_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(256)
        ))]
        /// Request bodies are untrusted: any bytes, or a valid batch with bytes flipped, cut or
        /// appended, are refused or read, never a panic; what is read re-encodes to the same bytes.
        #[test]
        fn batches_never_panic_on_any_bytes(
            noise in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..256),
            at in 0usize..4096,
            flip in 1u8..=255,
            cut in 0usize..4096,
        ) {
            let _ = Batch::from_bytes(&noise, BatchKind::Inputs, 8);
            let _ = crate::tfhe::ObjectInfo::read(&noise);
            let mut bytes = batch().to_bytes().unwrap();
            let i = at % bytes.len();
            bytes[i] ^= flip;
            bytes.truncate(bytes.len() - cut % bytes.len());
            bytes.extend_from_slice(&noise);
            if let Ok(b) = Batch::from_bytes(&bytes, BatchKind::Inputs, 8) {
                proptest::prop_assert_eq!(b.to_bytes().unwrap(), bytes);
            }
        }
    }

    #[test]
    fn key_ids_are_hashes() {
        assert!(is_key_id(&key_id(b"x")));
        assert_ne!(key_id(b"x"), key_id(b"y"));
        assert!(!is_key_id("../../etc/passwd"));
    }
}
