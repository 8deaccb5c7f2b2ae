//! Files of keys and ciphertexts: the sqnn header (magic, kind, circuit digest, parameter set,
//! payload length and SHA-256, encoding), encrypted inputs and outputs, and key directories
//! (`client.key`, `server.key`, `keys.json`).

use std::path::Path;

use ::tfhe::safe_serialization::safe_deserialize;
use ::tfhe::shortint::Ciphertext;
use serde::{Deserialize, Serialize};

use super::container::{
    decode, encode, kind_name, read_bytes, read_file, ser, write_file, FileHeader, Source,
    MAX_ITEMS,
};
use super::keys::{
    check_ciphertexts, check_generated_together, digest_mismatch, CiphertextKind, ClientKey,
    Encrypted, ServerKey,
};
use crate::analyze::CheckedGraph;
use crate::error::{Error, Result};
use crate::fhe::{FheMode, ParamSet};
use crate::fsio::{Secrecy, Staged};

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
    /// The key pair it was made (inputs) or evaluated (outputs) with, when recorded.
    pub fn key_pair(&self) -> Option<&str> {
        self.key_pair.as_deref()
    }
    /// Writes the file (safe serialization behind an sqnn header).
    pub fn save(&self, path: &Path) -> Result<()> {
        write_file(path, self.header(), &self.payload()?)
    }
    /// The file's content, for sending elsewhere ([`Encrypted::from_bytes`] reads it back).
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        encode(self.header(), &self.payload()?)
    }
    /// Reads a file written by [`Encrypted::save`] (of the same kind) for circuit `checked`.
    pub fn load(path: &Path, checked: &CheckedGraph) -> Result<Encrypted<K>> {
        let digest = checked.graph().digest()?;
        let (header, set, payload) = read_file(path, K::FILE_KIND, &digest, max_ciphertexts_bytes)?;
        Encrypted::decoded(path, digest, header, set, &payload)
    }
    /// Reads bytes made by [`Encrypted::to_bytes`] (of the same kind) for circuit `checked`;
    /// `label` names them in messages (for example `"sample 3 of the request"`).
    pub fn from_bytes(bytes: &[u8], label: &str, checked: &CheckedGraph) -> Result<Encrypted<K>> {
        let digest = checked.graph().digest()?;
        let (header, set, payload) =
            read_bytes(bytes, label, K::FILE_KIND, &digest, max_ciphertexts_bytes)?;
        Encrypted::decoded(label, digest, header, set, &payload)
    }

    fn header(&self) -> FileHeader {
        FileHeader::new(
            K::FILE_KIND,
            &self.digest,
            self.set,
            crate::cast::to_u64(self.cts.len()),
            self.space_bits,
            self.key_pair.as_deref(),
        )
    }

    fn payload(&self) -> Result<Vec<u8>> {
        let mut payload = Vec::new();
        for ct in &self.cts {
            ser(ct, &mut payload)?;
        }
        Ok(payload)
    }

    fn decoded<S: Source + ?Sized>(
        source: &S,
        digest: String,
        header: FileHeader,
        set: &'static ParamSet,
        payload: &[u8],
    ) -> Result<Encrypted<K>> {
        let what = kind_name(K::FILE_KIND);
        let limit = ct_bytes(set);
        let cts = decode(source, what, || {
            let mut r: &[u8] = payload;
            let mut cts = Vec::with_capacity(crate::cast::to_usize(header.items));
            for _ in 0..header.items {
                cts.push(safe_deserialize::<Ciphertext>(&mut r, limit)?);
            }
            if !r.is_empty() {
                return Err(format!("{} trailing bytes", r.len()));
            }
            Ok(cts)
        })?;
        check_ciphertexts(&cts, set, what)?;
        let mut e = Encrypted::new(digest, set, header.space_bits(set), cts);
        e.key_pair = header.key_pair;
        Ok(e)
    }
}

fn max_ciphertexts_bytes(set: &ParamSet) -> u64 {
    ct_bytes(set).saturating_mul(MAX_ITEMS)
}

pub(super) fn ct_bytes(set: &ParamSet) -> u64 {
    crate::cast::to_u64((set.glwe_dimension * set.polynomial_size + 1) * 8 + 4096)
}

/// Largest `keys.json` sqnn reads.
pub const MAX_MANIFEST_BYTES: u64 = crate::fsio::MIB;

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
    /// The key pair's id ([`ClientKey::key_pair`]); both key files must carry it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_pair: Option<String>,
    /// How the plan the keys were made for reads tables (absent in manifests written before
    /// it was recorded): in exact mode every output must equal the clear backend's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<FheMode>,
    /// Exact rounding on two sets: the set its extractions run on (absent: one set).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extraction_set: Option<String>,
}

pub(super) fn client_key_limit(set: &ParamSet) -> u64 {
    crate::cast::to_u64(
        (set.glwe_dimension * set.polynomial_size + set.lwe_dimension) * 8 + (1 << 20),
    )
}

pub(super) fn server_key_limit(set: &ParamSet) -> u64 {
    set.compressed_server_key_bytes
        .saturating_mul(2)
        .saturating_add(64 << 20)
}

/// Writes `client.key`, `server.key` and `keys.json` into `dir` (created if needed); the
/// manifest records `mode`, the read mode of the plan the keys were generated for.
pub fn save_keys(
    dir: &Path,
    checked: &CheckedGraph,
    client: &ClientKey,
    server: &ServerKey,
    mode: FheMode,
) -> Result<KeyManifest> {
    check_generated_together(client, server)?;
    let digest = checked.graph().digest()?;
    client.check_digest(&digest)?;
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    // The whole set is written to synced temporary files first, then renamed into place with
    // the manifest last: a failure before the renames changes nothing, and a kill between
    // them leaves files of two pairs, which loading refuses (their key-pair ids differ).
    let cpath = dir.join(CLIENT_KEY_FILE);
    let spath = dir.join(SERVER_KEY_FILE);
    let cbytes = client.file_bytes()?;
    let sbytes = server.to_bytes()?;
    let staged_client = Staged::new(&cpath, Secrecy::OwnerOnly)?.write(&cbytes)?;
    let staged_server = Staged::new(&spath, Secrecy::Public)?.write(&sbytes)?;
    let size = |b: &Vec<u8>| crate::cast::to_u64(b.len());
    let manifest = KeyManifest {
        format: "sqnn-keys".into(),
        version: 1,
        circuit: checked.graph().name.clone(),
        digest,
        parameter_set: client.parameter_set().into(),
        precision_bits: client.binding.set.precision(),
        space_bits: Some(client.space_bits()),
        client_key_bytes: size(&cbytes),
        server_key_bytes: size(&sbytes),
        keygen_seconds: client.keygen_seconds,
        key_pair: client.binding.key_pair.clone(),
        mode: Some(mode),
        extraction_set: client.extraction_set().map(str::to_string),
    };
    let mpath = dir.join(MANIFEST_FILE);
    let text = serde_json::to_string_pretty(&manifest)
        .map_err(|e| Error::Keys(format!("cannot write the manifest: {e}")))?;
    let staged_manifest = Staged::new(&mpath, Secrecy::Public)?.write((text + "\n").as_bytes())?;
    staged_client.commit()?;
    staged_server.commit()?;
    staged_manifest.commit()?;
    Ok(manifest)
}

/// Reads `dir/keys.json`.
pub fn load_manifest(dir: &Path) -> Result<KeyManifest> {
    let p = dir.join(MANIFEST_FILE);
    let text = crate::fsio::read_text_limited(&p, MAX_MANIFEST_BYTES, "key manifest").map_err(|e| {
        if matches!(&e, Error::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound) {
            Error::Keys(format!(
                "no keys in {} ({} is missing): generate keys for this circuit into {}",
                dir.display(),
                p.display(),
                dir.display()
            ))
        } else {
            e
        }
    })?;
    serde_json::from_str(&text).map_err(|e| {
        Error::Keys(format!(
            "{}: unreadable manifest ({}): generate keys for this circuit into {} again",
            p.display(),
            crate::fsio::bounded(&e.to_string(), 200),
            dir.display()
        ))
    })
}

pub(super) fn check_manifest(dir: &Path, checked: &CheckedGraph) -> Result<KeyManifest> {
    let m = load_manifest(dir)?;
    let digest = checked.graph().digest()?;
    if m.digest != digest {
        return Err(digest_mismatch(
            &format!("the key directory {}", dir.display()),
            &m.digest,
            &digest,
        ));
    }
    Ok(m)
}

/// A key file of `dir` must belong to the pair its manifest names (two key generations'
/// files in one directory decrypt to noise).
fn check_manifest_pair(dir: &Path, m: &KeyManifest, file: &str, pair: Option<&str>) -> Result<()> {
    if m.key_pair.as_deref() != pair {
        return Err(Error::Keys(format!(
            "{} belongs to another key generation than {} (key pair {} against {}): the \
             directory mixes two key sets; generate keys for this circuit into {} again",
            dir.join(file).display(),
            dir.join(MANIFEST_FILE).display(),
            pair.unwrap_or("none"),
            m.key_pair.as_deref().unwrap_or("none"),
            dir.display()
        )));
    }
    Ok(())
}

/// Loads `dir/server.key` for circuit `checked` (the server's side).
pub fn load_server_key(dir: &Path, checked: &CheckedGraph) -> Result<ServerKey> {
    let m = check_manifest(dir, checked)?;
    let key = ServerKey::load(&dir.join(SERVER_KEY_FILE), checked)?;
    check_manifest_pair(dir, &m, SERVER_KEY_FILE, key.key_pair())?;
    Ok(key)
}

/// Loads `dir/client.key` for circuit `checked` (the client's side).
pub fn load_client_key(dir: &Path, checked: &CheckedGraph) -> Result<ClientKey> {
    let m = check_manifest(dir, checked)?;
    let key = ClientKey::load(&dir.join(CLIENT_KEY_FILE), checked)?;
    check_manifest_pair(dir, &m, CLIENT_KEY_FILE, key.key_pair())?;
    Ok(key)
}
