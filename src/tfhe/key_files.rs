//! Keys as their serializable parts: `tfhe` cannot safe-serialize `shortint` keys, so the client
//! key is stored as its GLWE and LWE secret keys and the server key as its seeded keyswitching
//! and bootstrapping keys (as core chunks); loading checks every dimension against the
//! parameter set and rebuilds the `shortint` keys.

use std::path::Path;
use std::sync::Arc;

use ::tfhe::core_crypto::prelude::{
    ChunkSize, GlweSecretKeyOwned, LweSecretKeyOwned, SeededLweBootstrapKey,
    SeededLweBootstrapKeyChunk, SeededLweKeyswitchKey, SeededLweKeyswitchKeyChunk,
    SeededLweKeyswitchKeyOwned, SeededLweMultiBitBootstrapKey,
};
use ::tfhe::safe_serialization::safe_deserialize;
use ::tfhe::shortint::atomic_pattern::compressed::{
    CompressedAtomicPatternServerKey, CompressedStandardAtomicPatternServerKey,
};
use ::tfhe::shortint::ciphertext::MaxDegree;
use ::tfhe::shortint::client_key::atomic_pattern::{
    AtomicPatternClientKey, StandardAtomicPatternClientKey,
};
use ::tfhe::shortint::parameters::{MaxNoiseLevel, PBSParameters};
use ::tfhe::shortint::server_key::{
    CompressedModulusSwitchConfiguration, ShortintCompressedBootstrappingKey,
};
use ::tfhe::shortint::{CompressedServerKey, PBSOrder};

use super::container::{
    decode, encode, read_bytes, read_file, ser, write_bytes, FileHeader, Source, KIND_CLIENT,
    KIND_SERVER,
};
use super::extract::{extraction_client_key, ExtractServerKey};
use super::files::{client_key_limit, server_key_limit};
use super::keys::{Binding, ClientKey, ServerKey, NO_BOOTSTRAPPING_KEY};
use super::layout::Circuit;
use super::params::{ggsw_count, tfhe_parameters};
use crate::analyze::CheckedGraph;
use crate::error::{Error, Result};
use crate::fhe::{self, ParamSet};
use crate::fsio::Secrecy;

impl ClientKey {
    /// Writes the client key (secret: its GLWE and LWE secret keys) to `path`, atomically and
    /// readable by its owner only from creation on.
    pub fn save(&self, path: &Path) -> Result<()> {
        write_bytes(path, &self.file_bytes()?, Secrecy::OwnerOnly)
    }

    /// The client key file's content.
    pub(super) fn file_bytes(&self) -> Result<Vec<u8>> {
        let AtomicPatternClientKey::Standard(ap) = &self.key.atomic_pattern else {
            return Err(Error::Keys(
                "only standard atomic-pattern keys are supported".into(),
            ));
        };
        let (glwe, lwe, _, _) = ap.clone().into_raw_parts();
        let mut payload = Vec::new();
        ser(&glwe, &mut payload)?;
        ser(&lwe, &mut payload)?;
        // Two sets: the extraction set's small LWE key (its GLWE key is the same bits).
        if let Some(e) = &self.extract {
            let AtomicPatternClientKey::Standard(ap) = &e.key.atomic_pattern else {
                return Err(Error::Keys(
                    "only standard atomic-pattern keys are supported".into(),
                ));
            };
            ser(&ap.clone().into_raw_parts().1, &mut payload)?;
        }
        let ext = self.extract.as_ref().map(|e| e.set);
        let items = 2 + u64::from(ext.is_some());
        encode(
            FileHeader {
                max_degree: None,
                ..FileHeader::of_key(KIND_CLIENT, &self.binding, items).with_extraction(ext)
            },
            &payload,
        )
    }

    /// Reads a client key written by [`ClientKey::save`] for circuit `checked`.
    pub fn load(path: &Path, checked: &CheckedGraph) -> Result<ClientKey> {
        let digest = checked.graph().digest()?;
        let (header, set, payload) = read_file(path, KIND_CLIENT, &digest, client_key_limit)?;
        Circuit::new(checked)?.check_supported(set, header.space_bits(set))?;
        let params = tfhe_parameters(set)?;
        let label = path.display().to_string();
        let ext = header.extraction(set, &label)?;
        let encoding = header.encoding(set, &label)?;
        let limit = client_key_limit(set);
        let (key, small) = decode(path, "client key", || {
            let mut r: &[u8] = &payload;
            let glwe: GlweSecretKeyOwned<u64> = safe_deserialize(&mut r, limit)?;
            let lwe: LweSecretKeyOwned<u64> = safe_deserialize(&mut r, limit)?;
            let small: Option<LweSecretKeyOwned<u64>> = match ext {
                Some(_) => Some(safe_deserialize(&mut r, limit)?),
                None => None,
            };
            if !r.is_empty()
                || glwe.glwe_dimension().0 != set.glwe_dimension
                || glwe.polynomial_size().0 != set.polynomial_size
                || lwe.lwe_dimension().0 != set.lwe_dimension
                || small
                    .as_ref()
                    .zip(ext)
                    .is_some_and(|(s, e)| s.lwe_dimension().0 != e.lwe_dimension)
            {
                return Err(format!("key dimensions do not match {}", set.name));
            }
            let ap = StandardAtomicPatternClientKey::from_raw_parts(glwe, lwe, params, None);
            let key = ::tfhe::shortint::ClientKey {
                atomic_pattern: AtomicPatternClientKey::Standard(ap),
            };
            Ok((key, small))
        })?;
        let extract = match ext {
            Some(e) => Some(extraction_client_key(&key, set, e, small)?),
            None => None,
        };
        Ok(ClientKey {
            key,
            binding: Binding {
                digest,
                set,
                encoding,
                key_pair: header.key_pair,
            },
            keygen_seconds: None,
            extract,
        })
    }
}

impl ServerKey {
    /// Writes the server key (its compressed, seeded form) to `path`, atomically. Only a key
    /// generated in this process keeps that form; a loaded key is saved by copying its file.
    pub fn save(&self, path: &Path) -> Result<()> {
        write_bytes(path, &self.to_bytes()?, Secrecy::Public)
    }

    /// The server key file's content (its compressed form), for sending to a server, where
    /// [`ServerKey::from_bytes`] reads it. Only a key generated in this process keeps that
    /// form; a loaded key is sent as its file's bytes.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        let (header, payload) = self.container()?;
        encode(header, &payload)
    }

    fn container(&self) -> Result<(FileHeader, Vec<u8>)> {
        if self.key.is_none() {
            // A circuit without tables: no key parts, the header alone (the encoding and the
            // key pair still bind it to its client key and circuit).
            return Ok((
                FileHeader::of_key(KIND_SERVER, &self.binding, 0),
                Vec::new(),
            ));
        }
        let Some(c) = &self.compressed else {
            return Err(Error::Keys(
                "this server key was loaded from a file: copy that file instead of saving it again"
                    .into(),
            ));
        };
        let (ksk_chunk, bsk_chunk) = seeded_parts(c, self.binding.set)?;
        let mut payload = Vec::new();
        ser(&ksk_chunk, &mut payload)?;
        ser(&bsk_chunk, &mut payload)?;
        // Two sets: the extraction set's keyswitching and bootstrapping keys follow.
        let ext = match &self.extract {
            Some(e) => {
                let Some(ec) = &e.compressed else {
                    return Err(Error::Keys(
                        "this server key was loaded from a file: copy that file instead of \
                         saving it again"
                            .into(),
                    ));
                };
                let (ksk, bsk) = seeded_parts(ec, e.set)?;
                ser(&ksk, &mut payload)?;
                ser(&bsk, &mut payload)?;
                Some(e.set)
            }
            None => None,
        };
        let items = 2 + 2 * u64::from(ext.is_some());
        let header = FileHeader {
            max_degree: Some(c.max_degree.get()),
            ..FileHeader::of_key(KIND_SERVER, &self.binding, items).with_extraction(ext)
        };
        Ok((header, payload))
    }
}

/// The compressed key's seeded keyswitching and bootstrapping keys, as the chunks that `tfhe`
/// can safe-serialize.
fn seeded_parts(c: &CompressedServerKey, set: &ParamSet) -> Result<(KskChunk, BskChunk)> {
    {
        let CompressedAtomicPatternServerKey::Standard(ap) = &c.compressed_ap_server_key else {
            return Err(Error::Keys(
                "only standard atomic-pattern keys are supported".into(),
            ));
        };
        let (ksk, bsk, order) = ap.clone().into_raw_parts();
        if order != PBSOrder::KeyswitchBootstrap {
            return Err(Error::Keys(format!(
                "{}: only keyswitch-then-bootstrap sets are supported",
                set.name
            )));
        }
        let bsk_chunk = bootstrapping_key_chunk(bsk, set)?;
        Ok((keyswitching_key_chunk(ksk), bsk_chunk))
    }
}

/// Both kinds of bootstrapping key are a list of seeded GGSW ciphertexts of the same shape (a
/// multi-bit key holds `n / g · 2^g` of them, a classic one `n`): both are stored as a seeded
/// bootstrap-key chunk, after a check that the key is of the set's kind.
fn bootstrapping_key_chunk(
    bsk: ShortintCompressedBootstrappingKey<u64>,
    set: &ParamSet,
) -> Result<BskChunk> {
    {
        let chunk = match bsk {
            ShortintCompressedBootstrappingKey::Classic {
                bsk,
                modulus_switch_noise_reduction_key,
            } => {
                if !has_modulus_switch(set, &modulus_switch_noise_reduction_key)
                    || set.grouping_factor != 1
                {
                    return Err(Error::Keys(format!(
                        "{}: the bootstrapping key does not have the set's modulus switch",
                        set.name
                    )));
                }
                let (glwe_size, poly, base, level, seed, modulus) = (
                    bsk.glwe_size(),
                    bsk.polynomial_size(),
                    bsk.decomposition_base_log(),
                    bsk.decomposition_level_count(),
                    bsk.compression_seed(),
                    bsk.ciphertext_modulus(),
                );
                SeededLweBootstrapKeyChunk::from_container(
                    bsk.into_container(),
                    glwe_size,
                    poly,
                    base,
                    level,
                    seed,
                    modulus,
                )
            }
            ShortintCompressedBootstrappingKey::MultiBit { seeded_bsk, .. } => {
                if seeded_bsk.grouping_factor().0 != set.grouping_factor {
                    return Err(Error::Keys(format!(
                        "{}: the bootstrapping key has grouping factor {}, the set {}",
                        set.name,
                        seeded_bsk.grouping_factor().0,
                        set.grouping_factor
                    )));
                }
                let (glwe_size, poly, base, level, seed, modulus) = (
                    seeded_bsk.glwe_size(),
                    seeded_bsk.polynomial_size(),
                    seeded_bsk.decomposition_base_log(),
                    seeded_bsk.decomposition_level_count(),
                    seeded_bsk.compression_seed(),
                    seeded_bsk.ciphertext_modulus(),
                );
                SeededLweBootstrapKeyChunk::from_container(
                    seeded_bsk.into_container(),
                    glwe_size,
                    poly,
                    base,
                    level,
                    seed,
                    modulus,
                )
            }
        };
        debug_assert_eq!(chunk.chunk_size(), ChunkSize(ggsw_count(set)));
        Ok(chunk)
    }
}

impl ServerKey {
    /// Reads a server key written by [`ServerKey::save`] for circuit `checked`, and expands it.
    pub fn load(path: &Path, checked: &CheckedGraph) -> Result<ServerKey> {
        let digest = checked.graph().digest()?;
        let (header, set, payload) = read_file(path, KIND_SERVER, &digest, server_key_limit)?;
        ServerKey::decoded(path, checked, digest, header, set, &payload)
    }

    /// Reads the bytes of a server key file (see [`ServerKey::to_bytes`]) for circuit
    /// `checked`, and expands it; `label` names them in messages.
    pub fn from_bytes(bytes: &[u8], label: &str, checked: &CheckedGraph) -> Result<ServerKey> {
        let digest = checked.graph().digest()?;
        let (header, set, payload) =
            read_bytes(bytes, label, KIND_SERVER, &digest, server_key_limit)?;
        ServerKey::decoded(label, checked, digest, header, set, &payload)
    }

    fn decoded<S: Source + ?Sized>(
        source: &S,
        checked: &CheckedGraph,
        digest: String,
        header: FileHeader,
        set: &'static ParamSet,
        payload: &[u8],
    ) -> Result<ServerKey> {
        let circuit = Circuit::new(checked)?;
        circuit.check_supported(set, header.space_bits(set))?;
        let params = tfhe_parameters(set)?;
        let ext = header.extraction(set, &source.label())?;
        let encoding = header.encoding(set, &source.label())?;
        let (key, extract) = if header.items == 0 {
            // The key of a circuit without tables holds no key parts.
            if circuit.tables {
                return Err(Error::Keys(format!(
                    "{}: {NO_BOOTSTRAPPING_KEY}",
                    source.label()
                )));
            }
            if ext.is_some() || !payload.is_empty() {
                return Err(Error::Keys(format!(
                    "{}: a server key without key parts cannot name an extraction set or carry \
                     a payload; the server key file is corrupted: generate keys for this \
                     circuit again",
                    source.label()
                )));
            }
            (None, None)
        } else {
            let (key, extract) = expanded(source, &header, set, params, ext, payload)?;
            (Some(Arc::new(key)), extract)
        };
        Ok(ServerKey {
            extract,
            key,
            compressed: None,
            binding: Binding {
                digest,
                set,
                encoding,
                key_pair: header.key_pair,
            },
        })
    }
}

/// A server key file's payload, decoded, checked and decompressed: the set's `shortint` key
/// and, for exact rounding on two sets, the extraction set's.
fn expanded<S: Source + ?Sized>(
    source: &S,
    header: &FileHeader,
    set: &'static ParamSet,
    params: PBSParameters,
    ext: Option<&'static ParamSet>,
    payload: &[u8],
) -> Result<(::tfhe::shortint::ServerKey, Option<ExtractServerKey>)> {
    let max_degree = header.max_degree.unwrap_or(0);
    let (compressed, ext_compressed) = decode(source, "server key", || {
        let mut r: &[u8] = payload;
        let (ksk, bsk) = read_seeded_parts(&mut r, set)?;
        check_server_key(set, &params, &ksk, &bsk, max_degree)?;
        let key = compressed_server_key(set, params, ksk, bsk, max_degree);
        // Two sets: the extraction set's keys, with its own (default) max degree.
        let ext_key = match ext {
            Some(e) => {
                let p = tfhe_parameters(e).map_err(|err| err.to_string())?;
                let (ksk, bsk) = read_seeded_parts(&mut r, e)?;
                let degree = e.message_space() - 1;
                check_server_key(e, &p, &ksk, &bsk, degree)?;
                Some((e, compressed_server_key(e, p, ksk, bsk, degree)))
            }
            None => None,
        };
        if !r.is_empty() {
            return Err(format!("{} trailing bytes", r.len()));
        }
        Ok((key, ext_key))
    })?;
    let key = decode(source, "server key", || Ok(compressed.decompress()))?;
    let extract = match ext_compressed {
        Some((e, c)) => Some(ExtractServerKey {
            set: e,
            key: Arc::new(decode(source, "server key", || Ok(c.decompress()))?),
            compressed: None,
        }),
        None => None,
    };
    Ok((key, extract))
}

/// A seeded keyswitching key as a `tfhe` chunk (serializable).
type KskChunk = SeededLweKeyswitchKeyChunk<Vec<u64>>;
/// A seeded bootstrapping key (classic or multi-bit) as a `tfhe` chunk (serializable).
type BskChunk = SeededLweBootstrapKeyChunk<Vec<u64>>;

/// Whether a classic bootstrapping key's modulus switch is the one of `set`.
fn has_modulus_switch(set: &ParamSet, config: &CompressedModulusSwitchConfiguration<u64>) -> bool {
    match set.modulus_switch {
        fhe::ModulusSwitch::Centered => matches!(
            config,
            CompressedModulusSwitchConfiguration::CenteredMeanNoiseReduction
        ),
        fhe::ModulusSwitch::Rounded => {
            matches!(config, CompressedModulusSwitchConfiguration::Standard)
        }
    }
}

/// The modulus switch of `set`'s classic bootstrapping keys.
fn modulus_switch(set: &ParamSet) -> CompressedModulusSwitchConfiguration<u64> {
    match set.modulus_switch {
        fhe::ModulusSwitch::Centered => {
            CompressedModulusSwitchConfiguration::CenteredMeanNoiseReduction
        }
        fhe::ModulusSwitch::Rounded => CompressedModulusSwitchConfiguration::Standard,
    }
}

fn keyswitching_key_chunk(ksk: SeededLweKeyswitchKeyOwned<u64>) -> KskChunk {
    let base = ksk.decomposition_base_log();
    let level = ksk.decomposition_level_count();
    let out_size = ksk.output_lwe_size();
    let seed = ksk.compression_seed();
    let modulus = ksk.ciphertext_modulus();
    SeededLweKeyswitchKeyChunk::from_container(
        ksk.into_container(),
        base,
        level,
        out_size,
        seed,
        modulus,
    )
}

/// Deserializes the next two chunks of a server key's payload (one set's keys).
fn read_seeded_parts(r: &mut &[u8], set: &ParamSet) -> Result<(KskChunk, BskChunk), String> {
    let limit = server_key_limit(set);
    let ksk: KskChunk = safe_deserialize(&mut *r, limit)?;
    let bsk: BskChunk = safe_deserialize(&mut *r, limit)?;
    Ok((ksk, bsk))
}

/// Every dimension of the stored keys against the parameter set (a file could hold anything).
fn check_server_key(
    set: &ParamSet,
    params: &PBSParameters,
    ksk: &KskChunk,
    bsk: &BskChunk,
    max_degree: u64,
) -> Result<(), String> {
    let big = set.glwe_dimension * set.polynomial_size;
    let ok = ksk.decomposition_base_log() == params.ks_base_log()
        && ksk.decomposition_level_count() == params.ks_level()
        && ksk.output_key_lwe_dimension().0 == set.lwe_dimension
        && ksk.chunk_size().0 == big
        && ksk.ciphertext_modulus().is_native_modulus()
        && bsk.glwe_size().0 == set.glwe_dimension + 1
        && bsk.polynomial_size().0 == set.polynomial_size
        && bsk.decomposition_base_log() == params.pbs_base_log()
        && bsk.decomposition_level_count() == params.pbs_level()
        && bsk.chunk_size().0 == ggsw_count(set)
        && bsk.ciphertext_modulus().is_native_modulus()
        && max_degree > 0
        && max_degree < set.message_space();
    if !ok {
        return Err(format!(
            "key dimensions do not match {} (bsk {} GGSW, expected {})",
            set.name,
            bsk.chunk_size().0,
            ggsw_count(set)
        ));
    }
    Ok(())
}

/// The compressed `shortint` server key rebuilt from its checked parts.
fn compressed_server_key(
    set: &ParamSet,
    params: PBSParameters,
    ksk: KskChunk,
    bsk: BskChunk,
    max_degree: u64,
) -> CompressedServerKey {
    let (base, level, out_size, seed, modulus) = (
        ksk.decomposition_base_log(),
        ksk.decomposition_level_count(),
        ksk.output_lwe_size(),
        ksk.compression_seed(),
        ksk.ciphertext_modulus(),
    );
    let ksk = SeededLweKeyswitchKey::from_container(
        ksk.into_container(),
        base,
        level,
        out_size,
        seed,
        modulus,
    );
    let ap = CompressedStandardAtomicPatternServerKey::from_raw_parts(
        ksk,
        bootstrapping_key(set, &params, bsk),
        PBSOrder::KeyswitchBootstrap,
    );
    CompressedServerKey::from_raw_parts(
        CompressedAtomicPatternServerKey::Standard(ap),
        params.message_modulus(),
        params.carry_modulus(),
        MaxDegree::new(max_degree),
        MaxNoiseLevel::new(params.max_noise_level().get()),
    )
}

/// The bootstrapping key of the set's kind (classic or multi-bit) from its chunk.
fn bootstrapping_key(
    set: &ParamSet,
    params: &PBSParameters,
    bsk: BskChunk,
) -> ShortintCompressedBootstrappingKey<u64> {
    let (glwe_size, poly, base, level, seed, modulus) = (
        bsk.glwe_size(),
        bsk.polynomial_size(),
        bsk.decomposition_base_log(),
        bsk.decomposition_level_count(),
        bsk.compression_seed(),
        bsk.ciphertext_modulus(),
    );
    let container = bsk.into_container();
    match params {
        PBSParameters::PBS(_) => ShortintCompressedBootstrappingKey::Classic {
            bsk: SeededLweBootstrapKey::from_container(
                container, glwe_size, poly, base, level, seed, modulus,
            ),
            modulus_switch_noise_reduction_key: modulus_switch(set),
        },
        PBSParameters::MultiBitPBS(mb) => ShortintCompressedBootstrappingKey::MultiBit {
            seeded_bsk: SeededLweMultiBitBootstrapKey::from_container(
                container,
                glwe_size,
                poly,
                base,
                level,
                seed,
                mb.grouping_factor,
                modulus,
            ),
            deterministic_execution: mb.deterministic_execution,
        },
    }
}
