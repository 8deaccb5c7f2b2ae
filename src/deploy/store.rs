//! The evaluation-key store: keys persisted in an object store (a local directory by default;
//! any `object_store` backend, such as S3, for several servers), found again after a restart,
//! and kept decompressed in a memory cache with a byte budget.
//!
//! A key lives at `keys/TENANT/ID.key`, `ID` the SHA-256 of its bytes: a tenant never reaches
//! another tenant's keys, and a key read back is checked against its id before it is used, so
//! an interrupted or damaged write never yields a key. Writes are atomic (the local store
//! writes a staging file and renames it), and creating a key that exists is a success, so
//! servers sharing a store need no coordination.

use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use object_store::local::LocalFileSystem;
use object_store::path::Path as StorePath;
use object_store::{ObjectStore, PutMode, PutOptions, PutPayload};

use super::wire::key_id;
use crate::analyze::CheckedGraph;
use crate::error::{Error, Result};
use crate::tfhe::{PreparedCircuit, ServerKey};

/// What a cached key counts at least (see [`LoadedKey::memory_bytes`]): a linear circuit's
/// prepared constants and its key's bookkeeping, rounded up.
pub const MIN_ENTRY_BYTES: u64 = 64 << 10;

/// A decompressed evaluation key, ready to evaluate its circuit.
pub struct LoadedKey {
    /// The circuit's name.
    pub circuit: String,
    /// The key.
    pub key: ServerKey,
    /// The circuit prepared for the key (lookup tables, constants).
    pub prepared: PreparedCircuit,
}

impl LoadedKey {
    /// Decodes and decompresses `bytes` for `checked` (named `circuit`), and prepares it.
    pub fn decode(bytes: &[u8], circuit: &str, checked: &CheckedGraph) -> Result<LoadedKey> {
        let key = ServerKey::from_bytes(bytes, "the uploaded server key", checked)?;
        let prepared = key.prepare(checked)?;
        Ok(LoadedKey {
            circuit: circuit.to_string(),
            key,
            prepared,
        })
    }

    /// Bytes the key takes in memory: its decompressed evaluation keys, and at least a
    /// nominal [`MIN_ENTRY_BYTES`] for the prepared circuit, so that keys without a
    /// bootstrapping key (linear circuits) still count against the cache's budget.
    pub fn memory_bytes(&self) -> u64 {
        self.key.memory_bytes().max(MIN_ENTRY_BYTES)
    }
}

/// Keys by tenant and id: persisted in an object store, cached decompressed.
pub struct KeyStore {
    store: Arc<dyn ObjectStore>,
    cache: moka::sync::Cache<(String, String), Arc<LoadedKey>>,
}

impl KeyStore {
    /// A store in the local directory `dir` (created if needed), caching up to
    /// `cache_bytes` of decompressed keys.
    pub fn local(dir: &Path, cache_bytes: u64) -> Result<KeyStore> {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let fs = LocalFileSystem::new_with_prefix(dir).map_err(|e| {
            Error::Input(format!("cannot use {} as a key store: {e}", dir.display()))
        })?;
        Ok(KeyStore::new(Arc::new(fs), cache_bytes))
    }

    /// A store on any object store (for example S3 when several machines serve).
    pub fn new(store: Arc<dyn ObjectStore>, cache_bytes: u64) -> KeyStore {
        // Weights in KiB: a key of several GiB still fits the u32 weight.
        let cache = moka::sync::Cache::builder()
            .weigher(|_, k: &Arc<LoadedKey>| {
                u32::try_from(k.memory_bytes() / 1024).unwrap_or(u32::MAX)
            })
            .max_capacity(cache_bytes / 1024)
            .build();
        KeyStore { store, cache }
    }

    fn path(tenant: &str, id: &str) -> StorePath {
        StorePath::from(format!("keys/{tenant}/{id}.key"))
    }

    /// Whether `tenant` has the key `id`.
    pub async fn contains(&self, tenant: &str, id: &str) -> Result<bool> {
        if self
            .cache
            .contains_key(&(tenant.to_string(), id.to_string()))
        {
            return Ok(true);
        }
        match self.store.head(&KeyStore::path(tenant, id)).await {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(store_error(&e)),
        }
    }

    /// Stores `bytes` (whose id is `id`) for `tenant`; false if it was there already.
    pub async fn put(&self, tenant: &str, id: &str, bytes: Bytes) -> Result<bool> {
        let opts = PutOptions {
            mode: PutMode::Create,
            ..PutOptions::default()
        };
        match self
            .store
            .put_opts(&KeyStore::path(tenant, id), PutPayload::from(bytes), opts)
            .await
        {
            Ok(_) => Ok(true),
            Err(object_store::Error::AlreadyExists { .. }) => Ok(false),
            Err(e) => Err(store_error(&e)),
        }
    }

    /// The stored bytes of `tenant`'s key `id`, checked against the id; `None` if absent.
    pub async fn get(&self, tenant: &str, id: &str) -> Result<Option<Bytes>> {
        let got = match self.store.get(&KeyStore::path(tenant, id)).await {
            Ok(g) => g,
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(store_error(&e)),
        };
        let bytes = got.bytes().await.map_err(|e| store_error(&e))?;
        if key_id(&bytes) != id {
            return Err(Error::Keys(format!(
                "the stored key {id} does not match its id (damaged store): upload it again"
            )));
        }
        Ok(Some(bytes))
    }

    /// The decompressed key, if cached.
    pub fn cached(&self, tenant: &str, id: &str) -> Option<Arc<LoadedKey>> {
        self.cache.get(&(tenant.to_string(), id.to_string()))
    }

    /// Caches a decompressed key.
    pub fn cache(&self, tenant: &str, id: &str, key: Arc<LoadedKey>) {
        self.cache.insert((tenant.to_string(), id.to_string()), key);
    }

    /// Bytes of decompressed keys in the cache (approximate: pending evictions included).
    pub fn cached_bytes(&self) -> u64 {
        self.cache.run_pending_tasks();
        self.cache.weighted_size() * 1024
    }
}

fn store_error(e: &object_store::Error) -> Error {
    Error::Backend(format!("the key store failed: {e}"))
}
