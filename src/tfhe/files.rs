//! Files of keys and ciphertexts: the sqnn header (magic, kind, circuit digest, parameter set,
//! payload length and SHA-256, encoding), encrypted inputs and outputs, and key directories
//! (`client.key`, `server.key`, `keys.json`).

use std::io::Read;
use std::path::{Path, PathBuf};

use ::tfhe::safe_serialization::{safe_deserialize, safe_serialize};
use ::tfhe::shortint::Ciphertext;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::keys::{
    check_ciphertexts, digest_mismatch, CiphertextKind, ClientKey, Encrypted, ServerKey,
};
use super::params::lookup_set;
use crate::analyze::CheckedGraph;
use crate::error::{Error, Result};
use crate::fhe::ParamSet;

impl<K: CiphertextKind> Encrypted<K> {
    /// Number of encrypted values.
    pub fn len(&self) -> usize {
        self.cts.len()
    }
    /// Whether it holds no value.
    pub fn is_empty(&self) -> bool {
        self.cts.is_empty()
    }
    /// The digest of the circuit it belongs to.
    pub fn digest(&self) -> &str {
        &self.digest
    }
    /// Writes the file (safe serialization behind an sqnn header).
    pub fn save(&self, path: &Path) -> Result<()> {
        save_ciphertexts(
            path,
            K::FILE_KIND,
            &self.digest,
            self.set,
            self.space_bits,
            &self.cts,
        )
    }
    /// Reads a file written by [`Encrypted::save`] (of the same kind) for circuit `checked`.
    pub fn load(path: &Path, checked: &CheckedGraph) -> Result<Encrypted<K>> {
        let digest = checked.graph().digest()?;
        let (set, space_bits, cts) = load_ciphertexts(path, K::FILE_KIND, &digest)?;
        Ok(Encrypted::new(digest, set, space_bits, cts))
    }
}

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
}

impl FileHeader {
    /// The header of a file of `items` objects of `kind`, without the optional fields; the
    /// payload's length and checksum are filled in by [`write_file`].
    pub(super) fn new(
        kind: &str,
        digest: &str,
        set: &ParamSet,
        items: u64,
        space_bits: u32,
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
        }
    }

    pub(super) fn space_bits(&self, set: &ParamSet) -> u32 {
        self.space_bits.unwrap_or_else(|| set.precision())
    }
}

pub(super) fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

pub(super) fn kind_name(kind: &str) -> &'static str {
    match kind {
        KIND_CLIENT => "client key",
        KIND_SERVER => "server key",
        KIND_INPUT => "encrypted input",
        _ => "encrypted output",
    }
}

pub(super) fn write_file(path: &Path, mut header: FileHeader, payload: &[u8]) -> Result<()> {
    header.payload_bytes = payload.len() as u64;
    header.payload_sha256 = sha256_hex(payload);
    let h = serde_json::to_vec(&header)
        .map_err(|e| Error::Keys(format!("cannot write a file header: {e}")))?;
    let mut bytes = Vec::with_capacity(12 + h.len() + payload.len());
    bytes.extend_from_slice(MAGIC);
    bytes.extend_from_slice(&(h.len() as u32).to_le_bytes());
    bytes.extend_from_slice(&h);
    bytes.extend_from_slice(payload);
    // Write to a temporary name, then rename: a crash never leaves half a key behind.
    let tmp = path.with_extension("partial");
    std::fs::write(&tmp, &bytes).map_err(|e| Error::io(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e))
}

/// Reads and checks a file's header, digest and checksum; returns the header and payload.
pub(super) fn read_file(
    path: &Path,
    kind: &str,
    digest: &str,
    max_payload: impl Fn(&ParamSet) -> u64,
) -> Result<(FileHeader, &'static ParamSet, Vec<u8>)> {
    let what = kind_name(kind);
    let corrupt = |m: String| {
        Error::Keys(format!(
            "{}: {m}; the {what} file is corrupted or truncated: regenerate it (for keys: \
             generate keys for this circuit again)",
            path.display()
        ))
    };
    let mut f = std::fs::File::open(path).map_err(|e| {
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
    let mut head = [0u8; 12];
    if f.read_exact(&mut head).is_err() || &head[..8] != MAGIC {
        return Err(corrupt(format!("not an sqnn {what} file (bad magic)")));
    }
    let hlen = u32::from_le_bytes([head[8], head[9], head[10], head[11]]);
    if hlen > MAX_HEADER || 12 + u64::from(hlen) > file_len {
        return Err(corrupt(format!("header length {hlen} is impossible")));
    }
    let mut h = vec![0u8; hlen as usize];
    f.read_exact(&mut h)
        .map_err(|e| corrupt(format!("cannot read the header ({e})")))?;
    let header: FileHeader =
        serde_json::from_slice(&h).map_err(|e| corrupt(format!("unreadable header ({e})")))?;
    if header.kind != kind {
        return Err(Error::Keys(format!(
            "{} is a {}, not a {what}",
            path.display(),
            kind_name(&header.kind)
        )));
    }
    if header.digest != digest {
        return Err(digest_mismatch(
            &format!("the {what} {}", path.display()),
            &header.digest,
            digest,
        ));
    }
    let set = lookup_set(&header.parameter_set)?;
    let limit = max_payload(set);
    if header.payload_bytes > limit || header.items > MAX_ITEMS {
        return Err(corrupt(format!(
            "it claims {} bytes in {} items, more than a {what} of {} can hold ({limit} bytes)",
            header.payload_bytes, header.items, set.name
        )));
    }
    if file_len != 12 + u64::from(hlen) + header.payload_bytes {
        return Err(corrupt(format!(
            "{file_len} bytes on disk, the header announces {}",
            12 + u64::from(hlen) + header.payload_bytes
        )));
    }
    let mut payload = vec![0u8; header.payload_bytes as usize];
    f.read_exact(&mut payload)
        .map_err(|e| corrupt(format!("cannot read the payload ({e})")))?;
    if sha256_hex(&payload) != header.payload_sha256 {
        return Err(corrupt("checksum mismatch".to_string()));
    }
    Ok((header, set, payload))
}

/// Deserializes a payload of safe-serialized objects, turning any failure (or panic of a
/// consistency assertion inside `tfhe`) into an [`Error::Keys`].
pub(super) fn decode<T>(
    path: &Path,
    what: &str,
    f: impl FnOnce() -> Result<T, String>,
) -> Result<T> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(Error::Keys(format!(
            "{}: cannot decode the {what} ({e}); the file is corrupted or from another tfhe \
             version: regenerate it (for keys: generate keys for this circuit again)",
            path.display()
        ))),
        Err(_) => Err(Error::Keys(format!(
            "{}: the {what} is inconsistent with its parameter set; the file is corrupted: \
             regenerate it (for keys: generate keys for this circuit again)",
            path.display()
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

pub(super) fn ct_bytes(set: &ParamSet) -> u64 {
    ((set.glwe_dimension * set.polynomial_size + 1) * 8 + 4096) as u64
}

pub(super) fn save_ciphertexts(
    path: &Path,
    kind: &str,
    digest: &str,
    set: &ParamSet,
    space_bits: u32,
    cts: &[Ciphertext],
) -> Result<()> {
    let mut payload = Vec::new();
    for ct in cts {
        ser(ct, &mut payload)?;
    }
    write_file(
        path,
        FileHeader::new(kind, digest, set, cts.len() as u64, space_bits),
        &payload,
    )
}

pub(super) fn load_ciphertexts(
    path: &Path,
    kind: &str,
    digest: &str,
) -> Result<(&'static ParamSet, u32, Vec<Ciphertext>)> {
    let (header, set, payload) = read_file(path, kind, digest, |s| {
        ct_bytes(s).saturating_mul(MAX_ITEMS)
    })?;
    let limit = ct_bytes(set);
    let cts = decode(path, kind_name(kind), || {
        let mut r: &[u8] = &payload;
        let mut cts = Vec::with_capacity(header.items as usize);
        for _ in 0..header.items {
            cts.push(safe_deserialize::<Ciphertext>(&mut r, limit)?);
        }
        if !r.is_empty() {
            return Err(format!("{} trailing bytes", r.len()));
        }
        Ok(cts)
    })?;
    check_ciphertexts(&cts, set, kind_name(kind))?;
    Ok((set, header.space_bits(set), cts))
}

/// File names in a key directory.
pub const CLIENT_KEY_FILE: &str = "client.key";
/// See [`CLIENT_KEY_FILE`].
pub const SERVER_KEY_FILE: &str = "server.key";
/// See [`CLIENT_KEY_FILE`].
pub const MANIFEST_FILE: &str = "keys.json";

/// `keys.json`: what a key directory holds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct KeyManifest {
    /// `"sqnn-keys"`.
    pub format: String,
    /// 1.
    pub version: u32,
    /// Circuit name.
    pub circuit: String,
    /// Circuit digest the keys are bound to.
    pub digest: String,
    /// The `tfhe` parameter set.
    pub parameter_set: String,
    /// Message + carry bits of the set's own encoding.
    pub precision_bits: u32,
    /// The encoding's space `P` (absent in manifests written before spaces existed).
    #[serde(default)]
    pub space_bits: Option<u32>,
    /// Bytes of `client.key`.
    pub client_key_bytes: u64,
    /// Bytes of `server.key` (compressed, seeded).
    pub server_key_bytes: u64,
    /// Key generation time, when known.
    pub keygen_seconds: Option<f64>,
}

pub(super) fn client_key_limit(set: &ParamSet) -> u64 {
    ((set.glwe_dimension * set.polynomial_size + set.lwe_dimension) * 8 + (1 << 20)) as u64
}

pub(super) fn server_key_limit(set: &ParamSet) -> u64 {
    set.compressed_server_key_bytes
        .saturating_mul(2)
        .saturating_add(64 << 20)
}

/// Writes `client.key`, `server.key` and `keys.json` into `dir` (created if needed).
pub fn save_keys(
    dir: &Path,
    checked: &CheckedGraph,
    client: &ClientKey,
    server: &ServerKey,
) -> Result<KeyManifest> {
    if client.digest != server.digest
        || client.set != server.set
        || client.space_bits != server.space_bits
        || client.exact_rounding != server.exact_rounding
    {
        return Err(Error::Keys(
            "the client and server keys were not generated together".into(),
        ));
    }
    let digest = checked.graph().digest()?;
    client.check_digest(&digest)?;
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let cpath = dir.join(CLIENT_KEY_FILE);
    let spath = dir.join(SERVER_KEY_FILE);
    client.save(&cpath)?;
    server.save(&spath)?;
    let size = |p: &PathBuf| {
        std::fs::metadata(p)
            .map(|m| m.len())
            .map_err(|e| Error::io(p, e))
    };
    let manifest = KeyManifest {
        format: "sqnn-keys".into(),
        version: 1,
        circuit: checked.graph().name.clone(),
        digest,
        parameter_set: client.set.name.into(),
        precision_bits: client.set.precision(),
        space_bits: Some(client.space_bits),
        client_key_bytes: size(&cpath)?,
        server_key_bytes: size(&spath)?,
        keygen_seconds: client.keygen_seconds,
    };
    let mpath = dir.join(MANIFEST_FILE);
    let text = serde_json::to_string_pretty(&manifest)
        .map_err(|e| Error::Keys(format!("cannot write the manifest: {e}")))?;
    std::fs::write(&mpath, text + "\n").map_err(|e| Error::io(&mpath, e))?;
    Ok(manifest)
}

/// Reads `dir/keys.json`.
pub fn load_manifest(dir: &Path) -> Result<KeyManifest> {
    let p = dir.join(MANIFEST_FILE);
    let text = std::fs::read_to_string(&p).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            Error::Keys(format!(
                "no keys in {} ({} is missing): generate keys for this circuit into {}",
                dir.display(),
                p.display(),
                dir.display()
            ))
        } else {
            Error::io(&p, e)
        }
    })?;
    serde_json::from_str(&text).map_err(|e| {
        Error::Keys(format!(
            "{}: unreadable manifest ({e}): generate keys for this circuit into {} again",
            p.display(),
            dir.display()
        ))
    })
}

pub(super) fn check_manifest(dir: &Path, checked: &CheckedGraph) -> Result<()> {
    let m = load_manifest(dir)?;
    let digest = checked.graph().digest()?;
    if m.digest != digest {
        return Err(digest_mismatch(
            &format!("the keys in {}", dir.display()),
            &m.digest,
            &digest,
        ));
    }
    Ok(())
}

/// Loads `dir/server.key` for circuit `checked` (the server's side).
pub fn load_server_key(dir: &Path, checked: &CheckedGraph) -> Result<ServerKey> {
    check_manifest(dir, checked)?;
    ServerKey::load(&dir.join(SERVER_KEY_FILE), checked)
}

/// Loads `dir/client.key` for circuit `checked` (the client's side).
pub fn load_client_key(dir: &Path, checked: &CheckedGraph) -> Result<ClientKey> {
    check_manifest(dir, checked)?;
    ClientKey::load(&dir.join(CLIENT_KEY_FILE), checked)
}
