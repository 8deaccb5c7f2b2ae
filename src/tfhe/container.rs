//! The sqnn container around every TFHE object (keys, encrypted inputs and outputs), in a file or
//! in an HTTP body: magic, header length, a JSON header (kind, circuit digest, parameter set,
//! key pair, payload length and SHA-256, encoding, the set's full parameters) and the payload of `tfhe` safe-serialized
//! objects. Everything is checked before the payload is decoded, and nothing is allocated
//! beyond what the header's parameter set allows.

use std::io::Read;
use std::path::Path;

use crate::fsio::sha256_hex;
use ::tfhe::safe_serialization::safe_serialize;
use serde::{Deserialize, Serialize};

use super::keys::{digest_mismatch, Binding, Encoding};
use super::params::lookup_set;
use super::security::{check_stored, StoredParameters};
use crate::error::{Error, Result};
use crate::fhe::ParamSet;
use crate::fsio::Secrecy;

pub(super) const MAGIC: &[u8; 8] = b"SQNNFHE1";
pub(super) const KIND_CLIENT: &str = "client_key";
pub(super) const KIND_SERVER: &str = "server_key";
pub(super) const KIND_INPUT: &str = "encrypted_input";
pub(super) const KIND_OUTPUT: &str = "encrypted_output";
pub(super) const MAX_HEADER: u32 = 1 << 20;
pub(super) const MAX_ITEMS: u64 = 1 << 20;

/// The header in front of every sqnn TFHE file.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileHeader {
    pub(super) kind: String,
    pub(super) digest: String,
    pub(super) parameter_set: String,
    /// Objects in the payload (ciphertexts, or key parts).
    pub(super) items: u64,
    pub(super) payload_bytes: u64,
    pub(super) payload_sha256: String,
    /// Server keys: `max_degree` of the shortint key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) max_degree: Option<u64>,
    /// The encoding's space `P`; absent in files written before spaces existed, which used
    /// the set's own precision.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) space_bits: Option<u32>,
    /// Keys: exact rounding (part of the encoding); absent means false.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub(super) exact_rounding: bool,
    /// The key pair (a random id drawn at key generation) the object belongs to: both keys of
    /// a pair carry it, and so does every ciphertext made or evaluated with them. Absent in
    /// files written before pairs were recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) key_pair: Option<String>,
    /// The set's full `tfhe` parameters; loading refuses any that are not the catalogue's, and
    /// first any security-defining field that is not the shipped set's
    /// ([`check_stored`](super::security::check_stored)). Absent in files written before
    /// parameters were stored (the set's name then stands for them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) parameters: Option<StoredParameters>,
    /// Keys whose exact rounding runs its extractions on another set than the tables'
    /// ([`crate::fhe::FhePlan::extraction_parameter_set`]): that set's name. Absent: one set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) extraction_set: Option<String>,
    /// That set's full parameters, checked like [`parameters`](Self::parameters) (required
    /// with `extraction_set`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) extraction_parameters: Option<StoredParameters>,
    /// Keys: exact rounding's chunk width ([`crate::fhe::FhePlan::extraction_chunk_bits`]),
    /// part of the encoding; absent means 1 (one bit per bootstrap).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) extraction_chunk_bits: Option<u32>,
    /// Keys: the failure target (log2) that bounds how far each table's read is scaled
    /// ([`crate::fhe::read_scale_bits`]), part of the encoding; absent in files written before
    /// reads were scaled (every read unscaled).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) read_scale_target_log2: Option<f64>,
}

impl FileHeader {
    /// The header of a file of `items` objects of `kind`, without the optional fields; the
    /// payload's length and checksum are filled in by [`encode`].
    pub(super) fn new(
        kind: &str,
        digest: &str,
        set: &ParamSet,
        items: u64,
        space_bits: u32,
        key_pair: Option<&str>,
    ) -> FileHeader {
        FileHeader {
            kind: kind.to_string(),
            digest: digest.to_string(),
            parameter_set: set.name.to_string(),
            items,
            payload_bytes: 0,
            payload_sha256: String::new(),
            max_degree: None,
            space_bits: Some(space_bits),
            exact_rounding: false,
            key_pair: key_pair.map(str::to_string),
            parameters: StoredParameters::of_set(set).ok(),
            extraction_set: None,
            extraction_parameters: None,
            extraction_chunk_bits: None,
            read_scale_target_log2: None,
        }
    }

    /// The header of a key of `kind` bound by `binding`, with `items` key parts (no extraction
    /// set, no `max_degree`).
    pub(super) fn of_key(kind: &str, binding: &Binding, items: u64) -> FileHeader {
        let e = &binding.encoding;
        FileHeader::new(
            kind,
            &binding.digest,
            binding.set,
            items,
            e.space_bits,
            binding.key_pair.as_deref(),
        )
        .with_rounding(e.exact_rounding, e.chunk_bits)
        .with_scale_target(e.scale_target)
    }

    /// The key encoding the header records on `set`, checked (`label` names the file).
    pub(super) fn encoding(&self, set: &ParamSet, label: &str) -> Result<Encoding> {
        Ok(Encoding {
            space_bits: self.space_bits(set),
            exact_rounding: self.exact_rounding,
            chunk_bits: self.chunk_bits(label)?,
            scale_target: self.scale_target(label)?,
        })
    }

    /// With the target that bounds the tables' read scales (`None`: unscaled reads).
    pub(super) fn with_scale_target(self, target: Option<f64>) -> FileHeader {
        FileHeader {
            read_scale_target_log2: target,
            ..self
        }
    }

    /// The read-scale target the header records, checked: a failure target sqnn plans with.
    pub(super) fn scale_target(&self, label: &str) -> Result<Option<f64>> {
        match self.read_scale_target_log2 {
            Some(t) if !(t.is_finite() && t <= 0.0) => Err(Error::Keys(format!(
                "{label}: its read-scale target {t} is not one sqnn writes: the file was \
                 altered or written by another program: generate keys for this circuit again"
            ))),
            t => Ok(t),
        }
    }

    /// With exact rounding (`chunk_bits`: its chunk width) or without.
    pub(super) fn with_rounding(self, exact_rounding: bool, chunk_bits: u32) -> FileHeader {
        FileHeader {
            exact_rounding,
            extraction_chunk_bits: (exact_rounding && chunk_bits > 1).then_some(chunk_bits),
            ..self
        }
    }

    /// The chunk width the header records, checked (1 when absent).
    pub(super) fn chunk_bits(&self, label: &str) -> Result<u32> {
        let c = self.extraction_chunk_bits.unwrap_or(1);
        if !(1..=crate::fhe::MAX_CHUNK_BITS).contains(&c) || (c > 1 && !self.exact_rounding) {
            return Err(Error::Keys(format!(
                "{label}: its extraction chunk width {c} is not one sqnn writes: the file was \
                 altered or written by another program: generate keys for this circuit again"
            )));
        }
        Ok(c)
    }

    /// With the extraction set `ext` (when there is one), named and with its parameters.
    pub(super) fn with_extraction(self, ext: Option<&ParamSet>) -> FileHeader {
        FileHeader {
            extraction_set: ext.map(|e| e.name.to_string()),
            extraction_parameters: ext.and_then(|e| StoredParameters::of_set(e).ok()),
            ..self
        }
    }

    /// The extraction set the header names, checked: in the catalogue, able to share the table
    /// set's GLWE key, and with stored parameters whose security-defining fields are a shipped
    /// set's and every other field the catalogue's.
    pub(super) fn extraction(
        &self,
        set: &ParamSet,
        label: &str,
    ) -> Result<Option<&'static ParamSet>> {
        let Some(name) = &self.extraction_set else {
            return Ok(None);
        };
        let ext = lookup_set(name)?;
        if ext.id == set.id || !ext.shares_glwe_key_with(set) {
            return Err(Error::Keys(format!(
                "{label}: its extractions run on {}, which cannot share a key with {}: the file \
                 was altered or written by another program: generate keys for this circuit again",
                ext.name, set.name
            )));
        }
        let Some(p) = &self.extraction_parameters else {
            return Err(Error::Keys(format!(
                "{label}: the parameters of its extraction set {} are missing: the file was \
                 altered: generate keys for this circuit again",
                ext.name
            )));
        };
        check_stored(p, ext, label)?;
        Ok(Some(ext))
    }

    pub(super) fn space_bits(&self, set: &ParamSet) -> u32 {
        self.space_bits.unwrap_or_else(|| set.precision())
    }
}

/// What an sqnn TFHE object says about itself, read from its header alone (the payload is not
/// decoded): enough for a server to route an uploaded key to its circuit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectInfo {
    /// `"client_key"`, `"server_key"`, `"encrypted_input"` or `"encrypted_output"`.
    pub kind: String,
    /// Digest of the circuit it belongs to.
    pub digest: String,
    /// The `tfhe` parameter set's name.
    pub parameter_set: String,
    /// The key pair it belongs to, when recorded.
    pub key_pair: Option<String>,
    /// Payload bytes announced by the header.
    pub payload_bytes: u64,
}

impl ObjectInfo {
    /// Reads the header of an object in `bytes` (a key or ciphertext file's content). Checks
    /// the magic, the header and that the length matches; not the payload's checksum.
    pub fn read(bytes: &[u8]) -> Result<ObjectInfo> {
        let corrupt = |m: &str| {
            Error::Input(format!(
                "not an sqnn key or ciphertext ({m}): send the file that sqnn wrote, unchanged"
            ))
        };
        let (header, hlen) = parse_header(bytes).map_err(|m| corrupt(&m))?;
        if crate::cast::to_u64(bytes.len()) != 12 + u64::from(hlen) + header.payload_bytes {
            return Err(corrupt(&format!(
                "{} bytes, the header announces {}",
                bytes.len(),
                12 + u64::from(hlen) + header.payload_bytes
            )));
        }
        Ok(ObjectInfo {
            kind: header.kind,
            digest: header.digest,
            parameter_set: header.parameter_set,
            key_pair: header.key_pair,
            payload_bytes: header.payload_bytes,
        })
    }
}

/// The magic, header length and header at the start of `bytes`.
fn parse_header(bytes: &[u8]) -> std::result::Result<(FileHeader, u32), String> {
    if bytes.len() < 12 || &bytes[..8] != MAGIC {
        return Err("bad magic".into());
    }
    let hlen = u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]);
    let end = 12 + u64::from(hlen);
    if hlen > MAX_HEADER || end > crate::cast::to_u64(bytes.len()) {
        return Err(format!("header length {hlen} is impossible"));
    }
    let header = serde_json::from_slice(&bytes[12..crate::cast::to_usize(end)])
        .map_err(|e| format!("unreadable header ({e})"))?;
    Ok((header, hlen))
}

pub(super) fn kind_name(kind: &str) -> &'static str {
    match kind {
        KIND_CLIENT => "client key",
        KIND_SERVER => "server key",
        KIND_INPUT => "encrypted input",
        _ => "encrypted output",
    }
}

/// The container's bytes: magic, header (with the payload's length and checksum), payload.
pub(super) fn encode(mut header: FileHeader, payload: &[u8]) -> Result<Vec<u8>> {
    header.payload_bytes = crate::cast::to_u64(payload.len());
    header.payload_sha256 = sha256_hex(payload);
    let h = serde_json::to_vec(&header)
        .map_err(|e| Error::Keys(format!("cannot write a file header: {e}")))?;
    let hlen = u32::try_from(h.len())
        .map_err(|_| Error::Keys("a file header over 4 GiB cannot be written".into()))?;
    let mut bytes = Vec::with_capacity(12 + h.len() + payload.len());
    bytes.extend_from_slice(MAGIC);
    bytes.extend_from_slice(&hlen.to_le_bytes());
    bytes.extend_from_slice(&h);
    bytes.extend_from_slice(payload);
    Ok(bytes)
}

/// Writes a container file atomically ([`crate::fsio::write_atomic`]); client keys are created
/// owner-only.
pub(super) fn write_file(path: &Path, header: FileHeader, payload: &[u8]) -> Result<()> {
    let secrecy = if header.kind == KIND_CLIENT {
        Secrecy::OwnerOnly
    } else {
        Secrecy::Public
    };
    write_bytes(path, &encode(header, payload)?, secrecy)
}

/// Writes encoded bytes atomically: a crash or a full disk never leaves half a file behind.
pub(super) fn write_bytes(path: &Path, bytes: &[u8], secrecy: Secrecy) -> Result<()> {
    crate::fsio::write_atomic(path, bytes, secrecy)
}

/// What is being read, for messages: a file, or bytes received from elsewhere.
pub(super) trait Source {
    /// `"path/to/file"` or `"the uploaded server key"`.
    fn label(&self) -> String;
}

impl Source for Path {
    fn label(&self) -> String {
        self.display().to_string()
    }
}

impl Source for str {
    fn label(&self) -> String {
        self.to_string()
    }
}

/// Reads and checks a file's header, digest and checksum; returns the header and payload.
pub(super) fn read_file(
    path: &Path,
    kind: &str,
    digest: &str,
    max_payload: impl Fn(&ParamSet) -> u64,
) -> Result<(FileHeader, &'static ParamSet, Vec<u8>)> {
    let what = kind_name(kind);
    let f = std::fs::File::open(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            Error::Keys(format!(
                "no {what} at {}: generate keys for this circuit",
                path.display()
            ))
        } else {
            Error::io(path, e)
        }
    })?;
    let file_len = f.metadata().map_err(|e| Error::io(path, e))?.len();
    read_container(f, file_len, path, kind, digest, max_payload)
}

/// Checks and returns the header and payload of a container held in memory (`label` names it
/// in messages).
pub(super) fn read_bytes(
    bytes: &[u8],
    label: &str,
    kind: &str,
    digest: &str,
    max_payload: impl Fn(&ParamSet) -> u64,
) -> Result<(FileHeader, &'static ParamSet, Vec<u8>)> {
    read_container(
        bytes,
        crate::cast::to_u64(bytes.len()),
        label,
        kind,
        digest,
        max_payload,
    )
}

/// Reads a container of `total_len` bytes from `r`: the header first, whose claims are checked
/// (kind, digest, parameter set, sizes) before the payload is allocated and read.
fn read_container<R: Read, S: Source + ?Sized>(
    mut r: R,
    total_len: u64,
    source: &S,
    kind: &str,
    digest: &str,
    max_payload: impl Fn(&ParamSet) -> u64,
) -> Result<(FileHeader, &'static ParamSet, Vec<u8>)> {
    let what = kind_name(kind);
    let label = source.label();
    let corrupt = |m: String| {
        Error::Keys(format!(
            "{label}: {m}; the {what} file is corrupted or truncated: regenerate it (for keys: \
             generate keys for this circuit again)"
        ))
    };
    let mut head = [0u8; 12];
    if r.read_exact(&mut head).is_err() || &head[..8] != MAGIC {
        return Err(corrupt(format!("not an sqnn {what} file (bad magic)")));
    }
    let hlen = u32::from_le_bytes([head[8], head[9], head[10], head[11]]);
    if hlen > MAX_HEADER || 12 + u64::from(hlen) > total_len {
        return Err(corrupt(format!("header length {hlen} is impossible")));
    }
    let mut h = vec![0u8; crate::cast::to_usize(hlen)];
    r.read_exact(&mut h)
        .map_err(|e| corrupt(format!("cannot read the header ({e})")))?;
    let header: FileHeader =
        serde_json::from_slice(&h).map_err(|e| corrupt(format!("unreadable header ({e})")))?;
    if header.kind != kind {
        return Err(Error::Keys(format!(
            "{label} is a {}, not a {what}",
            kind_name(&header.kind)
        )));
    }
    if header.digest != digest {
        return Err(digest_mismatch(
            &format!("the {what} {label}"),
            &header.digest,
            digest,
        ));
    }
    let set = lookup_set(&header.parameter_set)?;
    if let Some(p) = &header.parameters {
        check_stored(p, set, &label)?;
    }
    let limit =
        max_payload(set).saturating_add(header.extraction(set, &label)?.map_or(0, &max_payload));
    if header.payload_bytes > limit || header.items > MAX_ITEMS {
        return Err(corrupt(format!(
            "it claims {} bytes in {} items, more than a {what} of {} can hold ({limit} bytes)",
            header.payload_bytes, header.items, set.name
        )));
    }
    if total_len != 12 + u64::from(hlen) + header.payload_bytes {
        return Err(corrupt(format!(
            "{total_len} bytes on disk, the header announces {}",
            12 + u64::from(hlen) + header.payload_bytes
        )));
    }
    let mut payload = vec![0u8; crate::cast::to_usize(header.payload_bytes)];
    r.read_exact(&mut payload)
        .map_err(|e| corrupt(format!("cannot read the payload ({e})")))?;
    if sha256_hex(&payload) != header.payload_sha256 {
        return Err(corrupt("checksum mismatch".to_string()));
    }
    Ok((header, set, payload))
}

/// Deserializes a payload of safe-serialized objects, turning any failure (or panic of a
/// consistency assertion inside `tfhe`) into an [`Error::Keys`].
pub(super) fn decode<T, S: Source + ?Sized>(
    source: &S,
    what: &str,
    f: impl FnOnce() -> Result<T, String>,
) -> Result<T> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(Error::Keys(format!(
            "{}: cannot decode the {what} ({e}); the file is corrupted or from another tfhe \
             version: regenerate it (for keys: generate keys for this circuit again)",
            source.label()
        ))),
        Err(_) => Err(Error::Keys(format!(
            "{}: the {what} is inconsistent with its parameter set; the file is corrupted: \
             regenerate it (for keys: generate keys for this circuit again)",
            source.label()
        ))),
    }
}

pub(super) fn ser<T>(obj: &T, out: &mut Vec<u8>) -> Result<()>
where
    T: Serialize + ::tfhe::Versionize + ::tfhe::named::Named,
{
    safe_serialize(obj, &mut *out, 1 << 40)
        .map_err(|e| Error::Keys(format!("cannot serialize a {}: {e}", T::NAME)))
}
