//! The client's secret key and the server's evaluation key: generation, binding to a circuit,
//! encryption and decryption, and the checks that keep keys and ciphertexts of different
//! circuits or encodings apart.

use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Instant;

use ::tfhe::core_crypto::prelude::{lwe_ciphertext_plaintext_add_assign, Plaintext};
use ::tfhe::shortint::{Ciphertext, CompressedServerKey};

use super::extract::{
    check_plan_extraction, extraction_client_key, ExtractClientKey, ExtractServerKey,
};
use super::layout::{plan_space, Circuit, Layout};
use super::params::tfhe_parameters;
use crate::analyze::CheckedGraph;
use crate::error::{Error, Result};
use crate::execute::validate_inputs;
use crate::fhe::{FhePlan, ParamSet};
use crate::progress::{NoProgress, Progress};

pub(super) fn short(d: &str) -> &str {
    // Headers come from files and requests: cut at a character boundary.
    d.char_indices().nth(16).map_or(d, |(i, _)| &d[..i])
}

pub(super) fn digest_mismatch(what: &str, have: &str, want: &str) -> Error {
    Error::Keys(format!(
        "{what} belongs to circuit {}, not {}: generate keys for this circuit",
        short(have),
        short(want)
    ))
}

/// A key's encoding (not key material): the space `P`, exact rounding, its chunk width, and
/// the target that bounds the tables' read scales.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) struct Encoding {
    /// `P`: the encoding's space (plan's `space_bits`).
    pub(super) space_bits: u32,
    /// Exact rounding ([`FhePlan::exact_rounding`]): tables clear their dropped bits before
    /// reading (see `rounding.rs`).
    pub(super) exact_rounding: bool,
    /// Exact rounding's chunk width ([`FhePlan::extraction_chunk_bits`]; 1 otherwise).
    pub(super) chunk_bits: u32,
    /// The failure target (log2) that bounds how far a table's read is scaled
    /// ([`FhePlan::read_scale_target`]). `None` in exact mode and for keys written before
    /// reads were scaled: every dot is read unscaled.
    pub(super) scale_target: Option<f64>,
}

impl Encoding {
    /// `plan`'s encoding of `circuit`.
    fn of_plan(plan: &FhePlan, circuit: &Circuit) -> Encoding {
        Encoding {
            space_bits: plan_space(plan, circuit),
            exact_rounding: plan.exact_rounding,
            chunk_bits: plan_chunk_bits(plan),
            scale_target: plan.read_scale_target(),
        }
    }
}

/// What binds a key to its circuit, the same in both keys of a pair: two keys were generated
/// together only if their bindings are equal (and their extraction sets).
#[derive(Clone, Debug, PartialEq)]
pub(super) struct Binding {
    /// The digest of the circuit the key was made for.
    pub(super) digest: String,
    /// The parameter set (the tables').
    pub(super) set: &'static ParamSet,
    pub(super) encoding: Encoding,
    /// The key pair's id (see [`ClientKey::key_pair`]).
    pub(super) key_pair: Option<String>,
}

impl Binding {
    /// The binding of a key of extraction set `ext` moved to `checked`: the key's own
    /// encoding, or `plan`'s (whose parameter set and extraction set must be the key's),
    /// checked against the circuit. Also whether the circuit reads tables.
    fn rebound(
        &self,
        ext: Option<&ParamSet>,
        checked: &CheckedGraph,
        plan: Option<&FhePlan>,
    ) -> Result<(Binding, bool)> {
        if let Some(plan) = plan {
            check_plan_set(self.set, plan)?;
            check_plan_extraction(ext, plan)?;
        }
        let c = Circuit::new(checked)?;
        let encoding = match plan {
            Some(plan) => Encoding::of_plan(plan, &c),
            None => self.encoding,
        };
        c.check_supported(self.set, encoding.space_bits)?;
        let binding = Binding {
            digest: c.digest,
            encoding,
            ..self.clone()
        };
        Ok((binding, c.tables))
    }

    /// Both keys' `Debug`: what binds the key, and its extraction set.
    fn fmt_key(
        &self,
        f: &mut std::fmt::Formatter<'_>,
        name: &str,
        ext: Option<&ParamSet>,
    ) -> std::fmt::Result {
        f.debug_struct(name)
            .field("digest", &self.digest)
            .field("parameter_set", &self.set.name)
            .field("space_bits", &self.encoding.space_bits)
            .field("exact_rounding", &self.encoding.exact_rounding)
            .field("extraction_set", &ext.map(|e| e.name))
            .finish_non_exhaustive()
    }
}

/// The public accessors both keys share, from their [`Binding`] and extraction key.
macro_rules! binding_accessors {
    () => {
        /// The extraction set's name, when exact rounding runs its extractions on another set.
        pub fn extraction_set(&self) -> Option<&'static str> {
            self.extract.as_ref().map(|e| e.set.name)
        }

        /// The parameter set's `tfhe` name.
        pub fn parameter_set(&self) -> &'static str {
            self.binding.set.name
        }

        /// The encoding's space `P` (bits).
        pub fn space_bits(&self) -> u32 {
            self.binding.encoding.space_bits
        }

        /// The digest of the circuit the key was made for.
        pub fn digest(&self) -> &str {
            &self.binding.digest
        }

        /// The key pair's id: random, drawn when the pair was generated, carried by both keys,
        /// by their files and manifest, and by every ciphertext made or evaluated with them, so
        /// that keys and ciphertexts of two key generations are never mixed. `None` for keys
        /// written before pairs were recorded.
        pub fn key_pair(&self) -> Option<&str> {
            self.binding.key_pair.as_deref()
        }
    };
}

/// The client's secret key: generates keys, encrypts, decrypts. Never give it to the server.
#[derive(Clone)]
pub struct ClientKey {
    pub(super) key: ::tfhe::shortint::ClientKey,
    pub(super) binding: Binding,
    pub(super) keygen_seconds: Option<f64>,
    /// Exact rounding on two sets: the extraction set's key, on the same GLWE key bits.
    pub(super) extract: Option<ExtractClientKey>,
}

impl std::fmt::Debug for ClientKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ext = self.extract.as_ref().map(|e| e.set);
        self.binding.fmt_key(f, "ClientKey", ext)
    }
}

/// The server's evaluation key. It holds the `shortint` server key (bootstrapping and
/// keyswitching keys, public), the circuit digest and the parameter set: nothing secret, and no
/// way to reach the [`ClientKey`] it was made with. When it was just generated it also keeps
/// its compressed (seeded) form, which is what [`save_keys`](super::save_keys) writes.
///
/// A circuit without tables (a linear model) reads nothing under encryption: the server only
/// multiplies ciphertexts by its weights and adds them. Its key then holds no `shortint` key
/// at all (none is generated, and its file is a few hundred bytes instead of tens of
/// megabytes); it can evaluate only such circuits.
#[derive(Clone)]
pub struct ServerKey {
    /// `None`: the circuit has no table, so no bootstrap (see above).
    pub(super) key: Option<Arc<::tfhe::shortint::ServerKey>>,
    pub(super) compressed: Option<Arc<CompressedServerKey>>,
    pub(super) binding: Binding,
    /// Exact rounding on two sets: the extraction set's keys.
    pub(super) extract: Option<ExtractServerKey>,
}

impl std::fmt::Debug for ServerKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ext = self.extract.as_ref().map(|e| e.set);
        self.binding.fmt_key(f, "ServerKey", ext)
    }
}

/// One sample's encrypted values for circuit `digest`: its inputs (made by the client) or its
/// output accumulators (made by the server). `K` ([`Input`] or [`Output`]) keeps the two apart,
/// so an output cannot be evaluated as an input.
#[derive(Clone, Debug)]
pub struct Encrypted<K: CiphertextKind> {
    pub(super) digest: String,
    pub(super) set: &'static ParamSet,
    pub(super) space_bits: u32,
    pub(super) cts: Vec<Ciphertext>,
    /// The key pair it was made or evaluated with, when known.
    pub(super) key_pair: Option<String>,
    pub(super) kind: PhantomData<K>,
}

/// One sample's encrypted quantized inputs (one ciphertext per feature), made by the client.
pub type EncryptedInput = Encrypted<Input>;

/// One sample's encrypted output accumulators, made by the server.
pub type EncryptedOutput = Encrypted<Output>;

/// What an [`Encrypted`] holds: [`Input`] or [`Output`] (sealed).
pub trait CiphertextKind: sealed::Sealed + Clone + std::fmt::Debug {
    /// The `kind` written in its file's header.
    const FILE_KIND: &'static str;
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for super::Input {}
    impl Sealed for super::Output {}
}

/// Encrypted inputs, made by the client.
#[derive(Clone, Copy, Debug)]
pub struct Input;

/// Encrypted outputs, made by the server.
#[derive(Clone, Copy, Debug)]
pub struct Output;

impl CiphertextKind for Input {
    const FILE_KIND: &'static str = super::container::KIND_INPUT;
}

impl CiphertextKind for Output {
    const FILE_KIND: &'static str = super::container::KIND_OUTPUT;
}

impl<K: CiphertextKind> Encrypted<K> {
    pub(super) fn new(
        digest: String,
        set: &'static ParamSet,
        space_bits: u32,
        cts: Vec<Ciphertext>,
    ) -> Encrypted<K> {
        Encrypted {
            digest,
            set,
            space_bits,
            cts,
            key_pair: None,
            kind: PhantomData,
        }
    }
}

pub(super) fn encoding_mismatch(what: &str, have: u32, want: u32) -> Error {
    Error::Keys(format!(
        "{what} uses a {have}-bit ciphertext space, the keys a {want}-bit one: it was made with \
         other keys; encrypt again with this circuit's client key"
    ))
}

impl ClientKey {
    /// Generates a client key and the matching server key for `checked` with the parameter set
    /// and encoding (`space_bits`) of `plan` (from the planner in [`crate::fhe`]).
    pub fn generate(checked: &CheckedGraph, plan: &FhePlan) -> Result<(ClientKey, ServerKey)> {
        ClientKey::generate_with_progress(checked, plan, &NoProgress)
    }

    /// [`ClientKey::generate`], reporting to `progress`: one operation of unknown length (a few
    /// seconds to a minute, see [`ParamSet::keygen_seconds`]) whose messages name the key being
    /// generated.
    pub fn generate_with_progress(
        checked: &CheckedGraph,
        plan: &FhePlan,
        progress: &dyn Progress,
    ) -> Result<(ClientKey, ServerKey)> {
        let set = plan.set();
        let circuit = Circuit::new(checked)?;
        let encoding = Encoding::of_plan(plan, &circuit);
        circuit.check_supported(set, encoding.space_bits)?;
        let params = tfhe_parameters(set)?;
        let t0 = Instant::now();
        progress.start(
            &format!(
                "generating {} keys ({}, about {:.0} s)",
                set.label(),
                set.name,
                set.keygen_seconds.max(1.0)
            ),
            0,
        );
        let key = ::tfhe::shortint::ClientKey::new(params);
        // Without a table the server never bootstraps: no bootstrapping key is made.
        let server = if circuit.tables {
            progress.message(&format!("generating the {} server key", set.label()));
            let compressed = CompressedServerKey::new(&key);
            progress.message("decompressing the server key");
            let server = compressed.decompress();
            Some((Arc::new(server), Arc::new(compressed)))
        } else {
            None
        };
        let (extract, extract_server) = match plan.extraction_parameter_set {
            Some(e) => {
                let e = e.set();
                progress.message(&format!("generating the extraction keys ({})", e.name));
                let ck = extraction_client_key(&key, set, e, None)?;
                let compressed = CompressedServerKey::new(&ck.key);
                let sk = ExtractServerKey {
                    set: e,
                    key: Arc::new(compressed.decompress()),
                    compressed: Some(Arc::new(compressed)),
                };
                (Some(ck), Some(sk))
            }
            None => (None, None),
        };
        progress.finish();
        let secs = t0.elapsed().as_secs_f64();
        let binding = Binding {
            digest: circuit.digest,
            set,
            encoding,
            key_pair: Some(new_key_pair_id()),
        };
        Ok((
            ClientKey {
                key,
                binding: binding.clone(),
                keygen_seconds: Some(secs),
                extract,
            },
            ServerKey {
                key: server.as_ref().map(|(k, _)| Arc::clone(k)),
                compressed: server.map(|(_, c)| c),
                binding,
                extract: extract_server,
            },
        ))
    }

    binding_accessors!();

    /// Seconds key generation took, when this key was generated (not loaded).
    pub fn keygen_seconds(&self) -> Option<f64> {
        self.keygen_seconds
    }

    /// The same secret key and encoding, bound to another circuit that fits them. Keys are
    /// cryptographically independent of the circuit; the digest only guards against mix-ups, so
    /// reusing key material across circuits (tests, witness circuits) is safe.
    pub fn rebind(&self, checked: &CheckedGraph) -> Result<ClientKey> {
        self.bound(checked, None)
    }

    /// The same secret key bound to another circuit with the encoding of `plan` (whose
    /// parameter set must be the key's): the encoding is not part of the key material.
    pub fn rebind_with(&self, checked: &CheckedGraph, plan: &FhePlan) -> Result<ClientKey> {
        self.bound(checked, Some(plan))
    }

    fn bound(&self, checked: &CheckedGraph, plan: Option<&FhePlan>) -> Result<ClientKey> {
        let ext = self.extract.as_ref().map(|e| e.set);
        let (binding, _) = self.binding.rebound(ext, checked, plan)?;
        Ok(ClientKey {
            binding,
            ..self.clone()
        })
    }

    pub(super) fn check_digest(&self, digest: &str) -> Result<()> {
        if self.binding.digest != digest {
            return Err(digest_mismatch(
                "the client key",
                &self.binding.digest,
                digest,
            ));
        }
        Ok(())
    }

    /// The circuit's encoding under this key's set, space and read scales.
    fn layout(&self, checked: &CheckedGraph) -> Result<Layout> {
        Layout::new(checked, self.binding.set, &self.binding.encoding)
    }

    /// Encrypts one sample's quantized inputs (one integer per feature, in the input nodes'
    /// intervals).
    pub fn encrypt(&self, checked: &CheckedGraph, inputs: &[i64]) -> Result<EncryptedInput> {
        let digest = checked.graph().digest()?;
        self.encrypt_with(checked, &digest, inputs)
    }

    pub(super) fn encrypt_with(
        &self,
        checked: &CheckedGraph,
        digest: &str,
        inputs: &[i64],
    ) -> Result<EncryptedInput> {
        self.check_digest(digest)?;
        validate_inputs(checked.analyzed(), &[inputs.to_vec()])?;
        let facts = checked.facts();
        let layout = self.layout(checked)?;
        let cts = checked
            .graph()
            .input_nodes()
            .iter()
            .zip(inputs)
            .map(|(&id, &v)| {
                // A fresh encryption of 0 under the large key, plus the encoded value.
                let mut ct = self.key.unchecked_encrypt(0);
                let k = layout.held(facts, id, v);
                lwe_ciphertext_plaintext_add_assign(
                    &mut ct.ct,
                    Plaintext(k.wrapping_mul(layout.delta)),
                );
                ct
            })
            .collect();
        let b = &self.binding;
        let mut input = EncryptedInput::new(digest.to_string(), b.set, b.encoding.space_bits, cts);
        input.key_pair = b.key_pair.clone();
        Ok(input)
    }

    /// Decrypts one sample's output accumulators: in exact mode the exact integers the clear
    /// backend gives; in approximate mode each may be off by a few units (`v + d`, see
    /// [`crate::fhe`]).
    ///
    /// A value outside its proved interval can only come from noise (whose predicted
    /// probability the plan states); it is returned as decrypted (the representative nearest
    /// the interval) so that a comparison with the clear backend shows it.
    pub fn decrypt(&self, checked: &CheckedGraph, out: &EncryptedOutput) -> Result<Vec<i64>> {
        let digest = checked.graph().digest()?;
        self.decrypt_with(checked, &digest, out)
    }

    pub(super) fn decrypt_with(
        &self,
        checked: &CheckedGraph,
        digest: &str,
        out: &EncryptedOutput,
    ) -> Result<Vec<i64>> {
        self.check_digest(digest)?;
        if out.digest != digest {
            return Err(digest_mismatch("the encrypted output", &out.digest, digest));
        }
        if out.space_bits != self.space_bits() {
            return Err(encoding_mismatch(
                "the encrypted output",
                out.space_bits,
                self.space_bits(),
            ));
        }
        check_pair("the encrypted output", out.key_pair(), self.key_pair())?;
        check_ciphertexts(&out.cts, self.binding.set, "encrypted output")?;
        let outputs = &checked.graph().outputs;
        if out.cts.len() != outputs.len() {
            return Err(Error::Keys(format!(
                "the encrypted output holds {} values, the circuit has {} outputs",
                out.cts.len(),
                outputs.len()
            )));
        }
        let facts = checked.facts();
        let layout = self.layout(checked)?;
        Ok(outputs
            .iter()
            .zip(&out.cts)
            .map(|(&o, ct)| layout.decode(facts, o, self.key.decrypt_no_decode(ct).0))
            .collect())
    }
}

/// The chunk width of `plan`'s exact rounding (1 without it): the encoding, not key material.
fn plan_chunk_bits(plan: &FhePlan) -> u32 {
    if plan.exact_rounding {
        plan.extraction_chunk_bits.max(1)
    } else {
        1
    }
}

pub(super) fn check_plan_set(set: &ParamSet, plan: &FhePlan) -> Result<()> {
    if plan.parameter_set != set.id {
        return Err(Error::Keys(format!(
            "the plan uses {}, the keys {}: generate keys for this circuit",
            plan.parameter_set, set.name
        )));
    }
    Ok(())
}

/// Refuses a client and a server key that were not generated together (circuit, set,
/// encoding or key pair differ).
pub(super) fn check_generated_together(client: &ClientKey, server: &ServerKey) -> Result<()> {
    if client.binding != server.binding
        || client.extract.as_ref().map(|e| e.set.id) != server.extract.as_ref().map(|e| e.set.id)
    {
        return Err(Error::Keys(
            "the client and server keys were not generated together: generate keys for this \
             circuit"
                .into(),
        ));
    }
    Ok(())
}

/// A random key-pair id (128 bits, hex).
fn new_key_pair_id() -> String {
    use rand::RngCore;
    let mut b = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut b);
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Refuses `what` (a ciphertext) made with another key pair than the key's (when both are
/// recorded): its decryption would be noise.
pub(super) fn check_pair(what: &str, have: Option<&str>, key: Option<&str>) -> Result<()> {
    match (have, key) {
        (Some(h), Some(k)) if h != k => Err(Error::Keys(format!(
            "{what} was made with key pair {}, these keys are pair {}: encrypt again with the \
             client key that belongs to these keys",
            short(h),
            short(k)
        ))),
        _ => Ok(()),
    }
}

impl ServerKey {
    binding_accessors!();

    /// The key exact rounding's extractions bootstrap with, and its set.
    pub(super) fn extraction_key(
        &self,
    ) -> Result<(&::tfhe::shortint::ServerKey, &'static ParamSet)> {
        match &self.extract {
            Some(e) => Ok((&e.key, e.set)),
            None => Ok((self.bootstrapping_key()?, self.binding.set)),
        }
    }

    /// The set exact rounding's extractions bootstrap on.
    pub(super) fn extraction_params(&self) -> &'static ParamSet {
        self.extract.as_ref().map_or(self.binding.set, |e| e.set)
    }

    /// The `shortint` key that reads tables; an error for the key of a circuit without
    /// tables, which holds none.
    pub(super) fn bootstrapping_key(&self) -> Result<&::tfhe::shortint::ServerKey> {
        self.key.as_deref().ok_or_else(no_bootstrapping_key)
    }

    /// Whether it holds a bootstrapping key (it does unless its circuit has no table).
    pub fn can_bootstrap(&self) -> bool {
        self.key.is_some()
    }

    /// Bytes the key takes in memory once decompressed: the set's evaluation key (and the
    /// extraction set's, for exact rounding on two sets), or 0 for the key of a circuit
    /// without tables, which holds none.
    pub fn memory_bytes(&self) -> u64 {
        if self.key.is_none() {
            return 0;
        }
        self.binding
            .set
            .server_key_bytes
            .saturating_add(self.extract.as_ref().map_or(0, |e| e.set.server_key_bytes))
    }

    /// The parameter set (its sizes tell what the key costs in memory).
    pub fn set(&self) -> &'static ParamSet {
        self.binding.set
    }

    /// The same evaluation key and encoding bound to another circuit that fits them (see
    /// [`ClientKey::rebind`]).
    pub fn rebind(&self, checked: &CheckedGraph) -> Result<ServerKey> {
        self.bound(checked, None)
    }

    /// The same evaluation key bound to another circuit with the encoding of `plan` (see
    /// [`ClientKey::rebind_with`]).
    pub fn rebind_with(&self, checked: &CheckedGraph, plan: &FhePlan) -> Result<ServerKey> {
        self.bound(checked, Some(plan))
    }

    fn bound(&self, checked: &CheckedGraph, plan: Option<&FhePlan>) -> Result<ServerKey> {
        let ext = self.extract.as_ref().map(|e| e.set);
        let (binding, tables) = self.binding.rebound(ext, checked, plan)?;
        if self.key.is_none() && tables {
            return Err(no_bootstrapping_key());
        }
        Ok(ServerKey {
            binding,
            ..self.clone()
        })
    }
}

/// Why the key of a circuit without tables cannot evaluate a circuit with tables.
pub(super) const NO_BOOTSTRAPPING_KEY: &str = "this server key holds no bootstrapping key (it \
     was generated for a circuit without tables, which never bootstraps), but the circuit reads \
     tables: generate keys for this circuit";

/// The error for a table to read with the key of a circuit without tables.
pub(super) fn no_bootstrapping_key() -> Error {
    Error::Keys(NO_BOOTSTRAPPING_KEY.into())
}

/// Every ciphertext must have the set's dimension and moduli (a file could hold anything).
pub(super) fn check_ciphertexts(cts: &[Ciphertext], set: &ParamSet, what: &str) -> Result<()> {
    let size = set.glwe_dimension * set.polynomial_size + 1;
    for (i, ct) in cts.iter().enumerate() {
        if ct.ct.lwe_size().0 != size
            || !ct.ct.ciphertext_modulus().is_native_modulus()
            || ct.message_modulus.0 * ct.carry_modulus.0 != set.message_space()
        {
            return Err(Error::Keys(format!(
                "{what}: value {i} is not a ciphertext of parameter set {} (LWE size {}, expected \
                 {size}): it was made with other keys; encrypt again with this circuit's client key",
                set.name,
                ct.ct.lwe_size().0
            )));
        }
    }
    Ok(())
}
