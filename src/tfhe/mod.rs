//! The TFHE backend: a checked integer graph evaluated on encrypted inputs with `tfhe` 1.8
//! (`shortint`), bit-exact with the [clear backend](crate::execute::ClearBackend).
//!
//! # Who holds what
//! * [`ClientKey`] (secret): generates the keys, encrypts quantized inputs, decrypts output
//!   accumulators. It holds the `shortint` client key, the circuit digest and the parameter set.
//! * [`ServerKey`] (public evaluation key): evaluates the circuit on an [`EncryptedInput`] and
//!   returns an [`EncryptedOutput`]. It holds only the `shortint` server key (bootstrapping and
//!   keyswitching keys), the circuit digest and the parameter set: no field of it, nor of
//!   anything it holds, leads to a secret key, so code that has a `ServerKey` (the server) has
//!   no way to decrypt. The type system enforces this: [`ServerKey::evaluate`] is the only
//!   operation on encrypted data it offers, and nothing converts a `ServerKey` into a
//!   `ClientKey`.
//!
//! Every key and ciphertext carries the digest of the circuit it was made for
//! ([`IntGraph::digest`](crate::ir::IntGraph::digest)); using it with another circuit is an
//! [`Error::Keys`] that says to run `sqnn keygen`.
//!
//! # Encoding (see [`crate::fhe`] and `../shared/tfhe-facts.md`)
//! Every ciphertext of a circuit uses one encoding `Δ_P = 2^63 / 2^P`, `P` the plan's
//! [`space_bits`](crate::fhe::FhePlan::space_bits) (a padding bit above it), whatever the
//! parameter set's own message × carry precision; the keys carry `P`. A node whose proved
//! interval is `[lo, hi]` holds `v - lo + m` with `m` = [`fhe::margins`] (its values centred in
//! `[0, 2^P)`).
//! * Input: the client encrypts `0` with the `shortint` key (a fresh ciphertext under the large
//!   LWE key) and adds the plaintext `(v - lo + m)·Δ_P`.
//! * Dot: a weighted sum on the raw LWE ciphertexts, `Σ w_j · ct_j` with
//!   `lwe_ciphertext_cleartext_mul_assign` (a negative weight is its two's complement: the
//!   arithmetic is modulo 2^64, so intermediate wrap-around is harmless), plus the clear
//!   constant `(c + Σ w_j·(lo_j - m_j) - lo + m)·Δ_P`. Only the final value must lie in
//!   `[0, 2^P)`, which the static check proves. When a value spans a single position of the
//!   modulus switch (`P = log2 N`), a dot that a table reads is also shifted up by half a
//!   position, so that its read rounds symmetrically ([`crate::fhe`], "The read"); on a set
//!   whose modulus switch rounds plainly (2^-64 classic sets, multi-bit bootstraps) a dot that a
//!   table reads is instead shifted down by half a position when a value spans two or more.
//! * Lut: one programmable bootstrap whose test vector
//!   (`core_crypto::generate_programmable_bootstrap_glwe_lut` with `2^P` boxes of `N / 2^P`
//!   positions and output encoding `Δ_P`) maps every index `k` of `[0, 2^P)` to
//!   `table[(clamp(k - m + lo, lo, hi) + offset) >> round_bits] - lo_out + m_out`: indices in
//!   the margins read the nearest edge entry. Rounding tables (`round_bits > 0`) need nothing
//!   else: the test vector reads the whole accumulator.
//! * Outputs: the last layer's dot ciphertexts, returned without a bootstrap; the client
//!   decrypts the phase, rounds it to a multiple of `Δ_P` and adds `lo - m` back.
//!
//! In [exact mode](crate::fhe::FheMode::Exact) the plan makes each box wide enough for the
//! noise, so outputs are bit-identical to the clear backend; in approximate mode a read may be
//! off by a few units, with the probabilities the plan predicts.
//!
//! Classic and multi-bit bootstraps run through the same `shortint` keys and
//! `apply_lookup_table` ([`tfhe_parameters`] returns a `PBSParameters` of either kind); a
//! multi-bit bootstrap runs on `tfhe`'s own threads (5 to 9 of them), inside the rayon task
//! of its table.
//!
//! The checked `shortint` operations refuse realistic dot products (their degree and
//! noise-level bookkeeping is a conservative L1-style budget), so this backend uses the
//! unchecked / raw operations and sets the ciphertext metadata itself (nominal noise level).
//! Correctness rests on sqnn's own proof (every value fits `[0, 2^P)`) and on the noise model
//! of [`crate::fhe`].
//!
//! # Files
//! Keys, encrypted inputs and outputs are saved with `::tfhe::safe_serialization` (versioned,
//! size-limited), behind a small header (magic, kind, circuit digest, parameter set, payload
//! length and SHA-256, and the encoding's `space_bits`). `tfhe` 1.8 implements the `Named` trait that safe serialization needs
//! for core entities and `shortint` ciphertexts but not for `shortint` keys, so keys are
//! stored as their parts: the client key as its GLWE and LWE secret keys, the server key as
//! its seeded (compressed) keyswitching and bootstrapping keys, both as full-size core
//! "chunks"; loading rebuilds the `shortint` keys from the parameter set named in the header.
//! A key directory holds `client.key`, `server.key` and the manifest `keys.json`.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ::tfhe::core_crypto::prelude::{
    generate_programmable_bootstrap_glwe_lut, lwe_ciphertext_add_assign,
    lwe_ciphertext_cleartext_mul_assign, lwe_ciphertext_plaintext_add_assign, ChunkSize,
    CiphertextModulus, Cleartext, GlweSecretKeyOwned, GlweSize, LweCiphertext, LweSecretKeyOwned,
    Plaintext, PolynomialSize, SeededLweBootstrapKey, SeededLweBootstrapKeyChunk,
    SeededLweKeyswitchKey, SeededLweKeyswitchKeyChunk, SeededLweMultiBitBootstrapKey,
};
use ::tfhe::safe_serialization::{safe_deserialize, safe_serialize};
use ::tfhe::shortint::atomic_pattern::compressed::{
    CompressedAtomicPatternServerKey, CompressedStandardAtomicPatternServerKey,
};
use ::tfhe::shortint::ciphertext::{Degree, MaxDegree, NoiseLevel};
use ::tfhe::shortint::client_key::atomic_pattern::{
    AtomicPatternClientKey, StandardAtomicPatternClientKey,
};
use ::tfhe::shortint::parameters::{
    AtomicPatternKind, CarryModulus, MaxNoiseLevel, MessageModulus, PBSParameters,
};
use ::tfhe::shortint::server_key::{
    CompressedModulusSwitchConfiguration, LookupTableOwned, ShortintCompressedBootstrappingKey,
};
use ::tfhe::shortint::{Ciphertext, CompressedServerKey, PBSOrder};
use indicatif::{ProgressBar, ProgressStyle};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::analyze::CheckedGraph;
use crate::error::{Error, Result};
use crate::execute::{validate_inputs, Backend};
use crate::fhe::{self, FhePlan, ParamSet};
use crate::ir::NodeFact;
use crate::ir::{NodeId, Op};

/// The `tfhe` parameters of a catalogue entry: a classic or a multi-bit bootstrap, both run
/// through the same `shortint` keys and `apply_lookup_table`.
pub fn tfhe_parameters(set: &ParamSet) -> Result<PBSParameters> {
    use ::tfhe::shortint::parameters::v1_6::*;
    use ::tfhe::shortint::parameters::v1_8::*;
    use fhe::ParamSetId as Id;
    Ok(match set.id {
        Id::ClassicMsg1Carry1 => V1_8_PARAM_MESSAGE_1_CARRY_1_KS_PBS_TUNIFORM_2M128.into(),
        Id::ClassicMsg2Carry2 => V1_8_PARAM_MESSAGE_2_CARRY_2_KS_PBS_TUNIFORM_2M128.into(),
        Id::ClassicMsg3Carry3 => V1_8_PARAM_MESSAGE_3_CARRY_3_KS_PBS_TUNIFORM_2M128.into(),
        Id::ClassicMsg4Carry4 => V1_8_PARAM_MESSAGE_4_CARRY_4_KS_PBS_TUNIFORM_2M128.into(),
        Id::ClassicMsg1Carry1Fail64 => V1_6_PARAM_MESSAGE_1_CARRY_1_KS_PBS_TUNIFORM_2M64.into(),
        Id::ClassicMsg2Carry2Fail64 => V1_6_PARAM_MESSAGE_2_CARRY_2_KS_PBS_TUNIFORM_2M64.into(),
        Id::ClassicMsg3Carry3Fail64 => V1_6_PARAM_MESSAGE_3_CARRY_3_KS_PBS_TUNIFORM_2M64.into(),
        Id::MultiBit4Msg1Carry1 => {
            V1_8_PARAM_MULTI_BIT_GROUP_4_MESSAGE_1_CARRY_1_KS_PBS_TUNIFORM_2M128.into()
        }
        Id::MultiBit4Msg2Carry2 => {
            V1_8_PARAM_MULTI_BIT_GROUP_4_MESSAGE_2_CARRY_2_KS_PBS_TUNIFORM_2M128.into()
        }
        Id::MultiBit4Msg2Carry2Fail64 => {
            V1_6_PARAM_MULTI_BIT_GROUP_4_MESSAGE_2_CARRY_2_KS_PBS_TUNIFORM_2M64.into()
        }
        Id::MultiBit2Msg3Carry3 => {
            V1_8_PARAM_MULTI_BIT_GROUP_2_MESSAGE_3_CARRY_3_KS_PBS_TUNIFORM_2M128.into()
        }
    })
}

fn lookup_set(name: &str) -> Result<&'static ParamSet> {
    let id = name.parse::<fhe::ParamSetId>().map_err(|_| {
        Error::Keys(format!(
            "unknown parameter set {name:?} (this sqnn knows {}): the file was written by another \
             version; run sqnn keygen CIRCUIT --out-dir DIR",
            fhe::ParamSetId::ALL
                .iter()
                .map(|p| p.name())
                .collect::<Vec<_>>()
                .join(", ")
        ))
    })?;
    Ok(id.set())
}

fn short(d: &str) -> &str {
    &d[..d.len().min(16)]
}

fn digest_mismatch(what: &str, have: &str, want: &str) -> Error {
    Error::Keys(format!(
        "{what} belongs to circuit {}, not {}: run sqnn keygen CIRCUIT --out-dir DIR",
        short(have),
        short(want)
    ))
}

/// What a circuit needs from TFHE, computed once: its digest, the width of its values, the
/// order of evaluation.
struct Circuit {
    digest: String,
    /// Bits the widest proved interval of any node needs (at least 1): the smallest space.
    value_bits: u32,
    /// Stage `s`: the tables at bootstrap depth `s` (run in parallel), then the dots that read
    /// them. Stage 0 has no tables.
    stages: Vec<(Vec<NodeId>, Vec<NodeId>)>,
    /// Whether a table reads the node (a dot).
    read_by_table: Vec<bool>,
    /// Fewest low bits a table drops (0 without tables).
    min_round_bits: u32,
    /// Most low bits a table drops (0 without tables).
    max_round_bits: u32,
}

impl Circuit {
    fn new(checked: &CheckedGraph) -> Result<Circuit> {
        let g = checked.graph();
        let digest = g.digest()?;
        let mut level = vec![0usize; g.nodes.len()];
        let mut read_by_table = vec![false; g.nodes.len()];
        for (id, n) in g.nodes.iter().enumerate() {
            level[id] = match &n.op {
                Op::Input { .. } => 0,
                Op::Dot { terms, .. } => terms.iter().map(|&(s, _)| level[s]).max().unwrap_or(0),
                Op::Lut { input, .. } => {
                    read_by_table[*input] = true;
                    level[*input] + 1
                }
            };
        }
        let depth = level.iter().copied().max().unwrap_or(0);
        let mut stages = vec![(Vec::new(), Vec::new()); depth + 1];
        for (id, n) in g.nodes.iter().enumerate() {
            match n.op {
                Op::Input { .. } => {}
                Op::Dot { .. } => stages[level[id]].1.push(id),
                Op::Lut { .. } => stages[level[id]].0.push(id),
            }
        }
        let value_bits = checked
            .facts()
            .iter()
            .map(|f| f.interval.range_bits())
            .max()
            .unwrap_or(0)
            .max(1);
        let (min_round_bits, max_round_bits) = g.dropped_bits().unwrap_or((0, 0));
        Ok(Circuit {
            digest,
            value_bits,
            stages,
            read_by_table,
            min_round_bits,
            max_round_bits,
        })
    }

    /// Rejects a space that does not hold the circuit's values or does not fit `set`.
    fn check_supported(&self, set: &ParamSet, space_bits: u32) -> Result<()> {
        let top = fhe::widest_read_bits(set, self.min_round_bits);
        if space_bits == 0 || space_bits > top {
            return Err(Error::Keys(format!(
                "a {space_bits}-bit ciphertext space does not fit {} (its bootstrap reads at \
                 most {} bits, one position per value, plus the {} low bits every table of \
                 the circuit drops): run sqnn keygen CIRCUIT --out-dir DIR",
                set.name,
                set.max_space_bits(),
                self.min_round_bits
            )));
        }
        if self.value_bits > space_bits {
            return Err(Error::Keys(format!(
                "the keys use {} with a {space_bits}-bit ciphertext space but the circuit needs \
                 {}-bit ciphertexts: run sqnn keygen CIRCUIT --out-dir DIR",
                set.name, self.value_bits
            )));
        }
        Ok(())
    }
}

/// The encoding of one circuit in a `space_bits`-bit space: `Δ_P` and each node's margin.
struct Layout {
    space_bits: u32,
    /// `Δ_P = 2^(63 - P)`.
    delta: u64,
    /// Per node: the margin `m` below its interval (it holds `v - lo + m`).
    below: Vec<i64>,
}

impl Layout {
    /// Margins of every node of `checked` in a `space_bits`-bit space on `set`: centred, and
    /// for a dot that a table reads in a space wider than the polynomial, aligned so that the
    /// table's buckets start on positions ([`fhe::aligned_margins`]).
    fn new(
        checked: &CheckedGraph,
        set: &ParamSet,
        space_bits: u32,
        exact_rounding: bool,
    ) -> Result<Layout> {
        let facts = checked.facts();
        let read_align = fhe::read_align_bits(set, space_bits);
        let mut phase = vec![None; facts.len()];
        for n in &checked.graph().nodes {
            if let Op::Lut {
                input,
                offset,
                round_bits,
                ..
            } = &n.op
            {
                if *round_bits < read_align {
                    return Err(Error::Keys(format!(
                        "a table drops {round_bits} low bits but a {space_bits}-bit space on {} \
                         needs {read_align}: run sqnn keygen CIRCUIT --out-dir DIR",
                        set.name
                    )));
                }
                // Exact rounding clears the held value's low bits: they must be the index's.
                let align = if exact_rounding {
                    *round_bits
                } else {
                    read_align
                };
                let lo = facts.get(*input).map_or(0, |f| f.interval.lo);
                if let Some(p) = phase.get_mut(*input) {
                    *p = Some((lo.wrapping_add(*offset), align));
                }
            }
        }
        let below = facts
            .iter()
            .zip(&phase)
            .map(|(f, ph)| {
                let (lo, hi) = (f.interval.lo, f.interval.hi);
                match ph {
                    Some((p, align)) => fhe::aligned_margins(lo, hi, space_bits, *align, *p),
                    None => fhe::margins(lo, hi, space_bits),
                }
                .map(|(m, _)| m as i64)
                .ok_or_else(|| {
                    Error::Keys(format!(
                        "a value of [{}, {}] does not fit a {space_bits}-bit ciphertext \
                             space: run sqnn keygen CIRCUIT --out-dir DIR",
                        f.interval.lo, f.interval.hi
                    ))
                })
            })
            .collect::<Result<Vec<i64>>>()?;
        Ok(Layout {
            space_bits,
            delta: 1u64 << (63 - space_bits),
            below,
        })
    }

    /// `(v - lo + m)` of node `id`, as held in the space.
    fn held(&self, facts: &[NodeFact], id: NodeId, v: i64) -> u64 {
        (v - facts[id].interval.lo + self.below[id]) as u64
    }

    /// The integer a decrypted phase encodes, `round(phase / Δ_P)`, read back as a value of
    /// node `id`: the representative nearest the centre of its interval (modulo the padded
    /// space `2^(P+1)`), so a small error in either direction stays small.
    fn decode(&self, facts: &[NodeFact], id: NodeId, phase: u64) -> i64 {
        let p = self.space_bits;
        let raw = (phase.wrapping_add(self.delta >> 1) >> (63 - p)) as i64; // [0, 2^(P+1))
        let iv = facts[id].interval;
        let centre = self.below[id] + (iv.hi - iv.lo) / 2;
        let mut s = (raw - centre).rem_euclid(1i64 << (p + 1));
        if s >= 1i64 << p {
            s -= 1i64 << (p + 1);
        }
        iv.lo + centre + s - self.below[id]
    }
}

/// The client's secret key: generates keys, encrypts, decrypts. Never give it to the server.
#[derive(Clone)]
pub struct ClientKey {
    key: ::tfhe::shortint::ClientKey,
    digest: String,
    set: &'static ParamSet,
    /// `P`: the encoding's space (plan's `space_bits`).
    space_bits: u32,
    /// Exact rounding ([`FhePlan::exact_rounding`]): part of the encoding.
    exact_rounding: bool,
    keygen_seconds: Option<f64>,
}

impl std::fmt::Debug for ClientKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientKey")
            .field("digest", &self.digest)
            .field("parameter_set", &self.set.name)
            .field("space_bits", &self.space_bits)
            .field("exact_rounding", &self.exact_rounding)
            .finish_non_exhaustive()
    }
}

/// The server's evaluation key. It holds the `shortint` server key (bootstrapping and
/// keyswitching keys, public), the circuit digest and the parameter set: nothing secret, and no
/// way to reach the [`ClientKey`] it was made with. When it was just generated it also keeps
/// its compressed (seeded) form, which is what [`save_keys`] writes.
#[derive(Clone)]
pub struct ServerKey {
    key: Arc<::tfhe::shortint::ServerKey>,
    compressed: Option<Arc<CompressedServerKey>>,
    digest: String,
    set: &'static ParamSet,
    /// `P`: the encoding's space (plan's `space_bits`).
    space_bits: u32,
    /// Exact rounding: tables clear their dropped bits before reading (see the module docs).
    exact_rounding: bool,
}

impl std::fmt::Debug for ServerKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerKey")
            .field("digest", &self.digest)
            .field("parameter_set", &self.set.name)
            .field("space_bits", &self.space_bits)
            .field("exact_rounding", &self.exact_rounding)
            .finish_non_exhaustive()
    }
}

/// One sample's encrypted quantized inputs (one ciphertext per feature), made by the client.
#[derive(Clone, Debug)]
pub struct EncryptedInput {
    digest: String,
    set: &'static ParamSet,
    space_bits: u32,
    cts: Vec<Ciphertext>,
}

/// One sample's encrypted output accumulators, made by the server.
#[derive(Clone, Debug)]
pub struct EncryptedOutput {
    digest: String,
    set: &'static ParamSet,
    space_bits: u32,
    cts: Vec<Ciphertext>,
}

fn spinner(msg: String) -> ProgressBar {
    let pb = ProgressBar::new_spinner();
    pb.set_style(
        ProgressStyle::with_template("{spinner} {msg} [{elapsed}]")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    pb.set_message(msg);
    pb.enable_steady_tick(Duration::from_millis(150));
    pb
}

/// `c_b = 2^b · Δ_P / 2`: half the weight of bit `b` of a held value.
fn extraction_constant(delta: u64, b: u32) -> u64 {
    (delta >> 1).wrapping_shl(b)
}

/// The plan's space, or (a plan deserialized from before spaces existed) the circuit's need.
fn plan_space(plan: &FhePlan, circuit: &Circuit) -> u32 {
    if plan.space_bits == 0 {
        circuit.value_bits
    } else {
        plan.space_bits
    }
}

fn encoding_mismatch(what: &str, have: u32, want: u32) -> Error {
    Error::Keys(format!(
        "{what} uses a {have}-bit ciphertext space, the keys a {want}-bit one: it was made with \
         other keys; encrypt again with this circuit's client key"
    ))
}

impl ClientKey {
    /// Generates a client key and the matching server key for `checked` with the parameter set
    /// and encoding (`space_bits`) of `plan` (from [`fhe::choose_parameters_with`]). Shows a
    /// spinner on stderr.
    pub fn generate(checked: &CheckedGraph, plan: &FhePlan) -> Result<(ClientKey, ServerKey)> {
        let set = plan.set();
        let circuit = Circuit::new(checked)?;
        let space_bits = plan_space(plan, &circuit);
        circuit.check_supported(set, space_bits)?;
        let params = tfhe_parameters(set)?;
        let t0 = Instant::now();
        let pb = spinner(format!(
            "generating {} keys ({}, about {:.0} s)",
            set.label(),
            set.name,
            set.keygen_seconds.max(1.0)
        ));
        let key = ::tfhe::shortint::ClientKey::new(params);
        pb.set_message(format!("generating the {} server key", set.label()));
        let compressed = CompressedServerKey::new(&key);
        pb.set_message("decompressing the server key".to_string());
        let server = compressed.decompress();
        pb.finish_and_clear();
        let secs = t0.elapsed().as_secs_f64();
        Ok((
            ClientKey {
                key,
                digest: circuit.digest.clone(),
                set,
                space_bits,
                exact_rounding: plan.exact_rounding,
                keygen_seconds: Some(secs),
            },
            ServerKey {
                key: Arc::new(server),
                compressed: Some(Arc::new(compressed)),
                digest: circuit.digest,
                set,
                space_bits,
                exact_rounding: plan.exact_rounding,
            },
        ))
    }

    /// The parameter set's `tfhe` name.
    pub fn parameter_set(&self) -> &'static str {
        self.set.name
    }

    /// The encoding's space `P` (bits).
    pub fn space_bits(&self) -> u32 {
        self.space_bits
    }

    /// The digest of the circuit the key was made for.
    pub fn digest(&self) -> &str {
        &self.digest
    }

    /// Seconds key generation took, when this key was generated (not loaded).
    pub fn keygen_seconds(&self) -> Option<f64> {
        self.keygen_seconds
    }

    /// The same secret key and encoding, bound to another circuit that fits them. Keys are
    /// cryptographically independent of the circuit; the digest only guards against mix-ups, so
    /// reusing key material across circuits (tests, witness circuits) is safe.
    pub fn rebind(&self, checked: &CheckedGraph) -> Result<ClientKey> {
        let c = Circuit::new(checked)?;
        c.check_supported(self.set, self.space_bits)?;
        Ok(ClientKey {
            digest: c.digest,
            ..self.clone()
        })
    }

    /// The same secret key bound to another circuit with the encoding of `plan` (whose
    /// parameter set must be the key's): the encoding is not part of the key material.
    pub fn rebind_with(&self, checked: &CheckedGraph, plan: &FhePlan) -> Result<ClientKey> {
        check_plan_set(self.set, plan)?;
        let c = Circuit::new(checked)?;
        let space_bits = plan_space(plan, &c);
        c.check_supported(self.set, space_bits)?;
        Ok(ClientKey {
            digest: c.digest,
            space_bits,
            exact_rounding: plan.exact_rounding,
            ..self.clone()
        })
    }

    fn check_digest(&self, digest: &str) -> Result<()> {
        if self.digest != digest {
            return Err(digest_mismatch("the client key", &self.digest, digest));
        }
        Ok(())
    }

    /// Encrypts one sample's quantized inputs (one integer per feature, in the input nodes'
    /// intervals).
    pub fn encrypt(&self, checked: &CheckedGraph, inputs: &[i64]) -> Result<EncryptedInput> {
        let digest = checked.graph().digest()?;
        self.encrypt_with(checked, &digest, inputs)
    }

    fn encrypt_with(
        &self,
        checked: &CheckedGraph,
        digest: &str,
        inputs: &[i64],
    ) -> Result<EncryptedInput> {
        self.check_digest(digest)?;
        validate_inputs(checked.analyzed(), &[inputs.to_vec()])?;
        let facts = checked.facts();
        let layout = Layout::new(checked, self.set, self.space_bits, self.exact_rounding)?;
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
        Ok(EncryptedInput {
            digest: digest.to_string(),
            set: self.set,
            space_bits: self.space_bits,
            cts,
        })
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

    fn decrypt_with(
        &self,
        checked: &CheckedGraph,
        digest: &str,
        out: &EncryptedOutput,
    ) -> Result<Vec<i64>> {
        self.check_digest(digest)?;
        if out.digest != digest {
            return Err(digest_mismatch("the encrypted output", &out.digest, digest));
        }
        if out.space_bits != self.space_bits {
            return Err(encoding_mismatch(
                "the encrypted output",
                out.space_bits,
                self.space_bits,
            ));
        }
        check_ciphertexts(&out.cts, self.set, "encrypted output")?;
        let outputs = &checked.graph().outputs;
        if out.cts.len() != outputs.len() {
            return Err(Error::Keys(format!(
                "the encrypted output holds {} values, the circuit has {} outputs",
                out.cts.len(),
                outputs.len()
            )));
        }
        let facts = checked.facts();
        let layout = Layout::new(checked, self.set, self.space_bits, self.exact_rounding)?;
        Ok(outputs
            .iter()
            .zip(&out.cts)
            .map(|(&o, ct)| layout.decode(facts, o, self.key.decrypt_no_decode(ct).0))
            .collect())
    }
}

fn check_plan_set(set: &ParamSet, plan: &FhePlan) -> Result<()> {
    if plan.parameter_set != set.id {
        return Err(Error::Keys(format!(
            "the plan uses {}, the keys {}: run sqnn keygen CIRCUIT --out-dir DIR",
            plan.parameter_set, set.name
        )));
    }
    Ok(())
}

/// A circuit prepared for one server key: evaluation order, encoding, one test vector per `Lut`.
pub struct PreparedCircuit {
    circuit: Circuit,
    layout: Layout,
    luts: Vec<Option<LookupTableOwned>>,
    /// `(c + Σ w_j·(lo_j - m_j) - lo + m)·Δ_P` per dot (mod 2^64), plus half a position for a
    /// dot a table reads when a value spans one position.
    constants: Vec<u64>,
    /// Exact rounding: test vector `b` returns `+c_b` for bit `b` clear and `-c_b` for bit `b`
    /// set, `c_b = 2^b·Δ_P / 2` (one per bit up to the most any table drops).
    extract: Vec<LookupTableOwned>,
    /// What a table's read adds to the value it reads (see [`ServerKey::prepare`]).
    read_shift: u64,
}

impl PreparedCircuit {
    /// The encoding's space `P` (bits).
    pub fn space_bits(&self) -> u32 {
        self.layout.space_bits
    }
}

impl ServerKey {
    /// The parameter set's `tfhe` name.
    pub fn parameter_set(&self) -> &'static str {
        self.set.name
    }

    /// The encoding's space `P` (bits).
    pub fn space_bits(&self) -> u32 {
        self.space_bits
    }

    /// The digest of the circuit the key was made for.
    pub fn digest(&self) -> &str {
        &self.digest
    }

    /// The same evaluation key and encoding bound to another circuit that fits them (see
    /// [`ClientKey::rebind`]).
    pub fn rebind(&self, checked: &CheckedGraph) -> Result<ServerKey> {
        let c = Circuit::new(checked)?;
        c.check_supported(self.set, self.space_bits)?;
        Ok(ServerKey {
            digest: c.digest,
            ..self.clone()
        })
    }

    /// The same evaluation key bound to another circuit with the encoding of `plan` (see
    /// [`ClientKey::rebind_with`]).
    pub fn rebind_with(&self, checked: &CheckedGraph, plan: &FhePlan) -> Result<ServerKey> {
        check_plan_set(self.set, plan)?;
        let c = Circuit::new(checked)?;
        let space_bits = plan_space(plan, &c);
        c.check_supported(self.set, space_bits)?;
        Ok(ServerKey {
            digest: c.digest,
            space_bits,
            exact_rounding: plan.exact_rounding,
            ..self.clone()
        })
    }

    /// Prepares `checked` for evaluation: checks the digest and the encoding, builds every
    /// table's test vector and every dot's constant.
    pub fn prepare(&self, checked: &CheckedGraph) -> Result<PreparedCircuit> {
        let circuit = Circuit::new(checked)?;
        if circuit.digest != self.digest {
            return Err(digest_mismatch(
                "the server key",
                &self.digest,
                &circuit.digest,
            ));
        }
        circuit.check_supported(self.set, self.space_bits)?;
        let g = checked.graph();
        let facts = checked.facts();
        let layout = Layout::new(checked, self.set, self.space_bits, self.exact_rounding)?;
        let delta = layout.delta;
        // Half a position of the modulus switch to 2N: 2^64 / (4N); half a value: Δ_P / 2.
        let n_log = self.set.polynomial_size.trailing_zeros();
        let half_position = 1u64 << (62 - n_log);
        let half_value = delta >> 1;
        // Every read must give `k·box + floor(e)` with a box of 2 positions or more (the
        // half-box rotation of the table then rounds it symmetrically) and
        // `floor(k·box + e + box/2)` with a box of one position or less. tfhe's centred modulus
        // switch subtracts half a position itself (`floor`): with a box of one position or
        // less, half a value is added. A rounding switch (2^-64 classic sets, multi-bit
        // bootstraps) gives `round`: with a box of 2 or more, half a position is subtracted;
        // with less, half a value minus half a position is added.
        let one_position = self.set.box_positions(self.space_bits) < 2.0;
        let shift = match (self.set.modulus_switch, one_position) {
            (fhe::ModulusSwitch::Centered, true) => half_value,
            (fhe::ModulusSwitch::Centered, false) => 0,
            (fhe::ModulusSwitch::Rounded, false) => half_position.wrapping_neg(),
            (fhe::ModulusSwitch::Rounded, true) => half_value.wrapping_sub(half_position),
        };
        // Exact rounding reads the cleared value instead: the shift goes there.
        let mut extracted = vec![false; g.nodes.len()];
        if self.exact_rounding {
            for n in &g.nodes {
                if let Op::Lut {
                    input, round_bits, ..
                } = n.op
                {
                    if round_bits > 0 {
                        extracted[input] = true;
                    }
                }
            }
        }
        let mut luts = vec![None; g.nodes.len()];
        let mut constants = vec![0u64; g.nodes.len()];
        for (id, n) in g.nodes.iter().enumerate() {
            match &n.op {
                Op::Input { .. } => {}
                Op::Dot { terms, constant } => {
                    // Wrapping arithmetic: everything is modulo 2^64 / Δ_P = 2^(P+1) anyway.
                    let mut c = (*constant)
                        .wrapping_sub(facts[id].interval.lo)
                        .wrapping_add(layout.below[id]);
                    for &(src, w) in terms {
                        let l = facts[src].interval.lo.wrapping_sub(layout.below[src]);
                        c = c.wrapping_add(w.wrapping_mul(l));
                    }
                    let mut k = (c as u64).wrapping_mul(delta);
                    if circuit.read_by_table[id] && !extracted[id] {
                        k = k.wrapping_add(shift);
                    }
                    constants[id] = k;
                }
                Op::Lut { .. } => luts[id] = Some(self.lookup_table(checked, &layout, id)?),
            }
        }
        let extract = if self.exact_rounding {
            (0..circuit.max_round_bits)
                .map(|b| LookupTableOwned {
                    acc: generate_programmable_bootstrap_glwe_lut(
                        PolynomialSize(self.set.polynomial_size),
                        GlweSize(self.set.glwe_dimension + 1),
                        1,
                        CiphertextModulus::new_native(),
                        extraction_constant(delta, b),
                        |_| 1u64,
                    ),
                    degree: Degree::new((1u64 << self.space_bits) - 1),
                })
                .collect()
        } else {
            Vec::new()
        };
        Ok(PreparedCircuit {
            circuit,
            layout,
            luts,
            constants,
            extract,
            read_shift: shift,
        })
    }

    /// The test vector of lut node `id`: index `k` of the space (the input dot holds
    /// `v - lo + m`) maps to `table[(clamp(k - m + lo, lo, hi) + offset) >> round_bits]`,
    /// encoded as the output node's `y - lo_out + m_out`, times `Δ_P`.
    fn lookup_table(
        &self,
        checked: &CheckedGraph,
        layout: &Layout,
        id: NodeId,
    ) -> Result<LookupTableOwned> {
        let Op::Lut {
            input,
            offset,
            round_bits,
            table,
            ..
        } = &checked.graph().nodes[id].op
        else {
            return Err(Error::Backend(format!("node {id} is not a lut")));
        };
        let facts = checked.facts();
        let iv = facts[*input].interval;
        let m_in = layout.below[*input];
        let lo_out = facts[id].interval.lo;
        let m_out = layout.below[id];
        let last = table.len().saturating_sub(1);
        // A space wider than the polynomial: box `j` of the test vector holds the values
        // `k = j·2^align ..`, one bucket of the table (the margins are aligned for it).
        let align = fhe::read_align_bits(self.set, layout.space_bits);
        let entry = |j: u64| -> u64 {
            let k = j << align;
            let v = (k as i64 - m_in + iv.lo).clamp(iv.lo, iv.hi);
            let idx = crate::cast::index((v + offset) >> round_bits).min(last);
            (table[idx] - lo_out + m_out) as u64
        };
        let acc = generate_programmable_bootstrap_glwe_lut(
            PolynomialSize(self.set.polynomial_size),
            GlweSize(self.set.glwe_dimension + 1),
            1usize << (layout.space_bits - align),
            CiphertextModulus::new_native(),
            layout.delta,
            entry,
        );
        Ok(LookupTableOwned {
            acc,
            degree: Degree::new((1u64 << layout.space_bits) - 1),
        })
    }

    /// Bootstraps one evaluation of `checked` runs: one per table, plus, with exact rounding,
    /// one per dropped bit.
    pub fn pbs_per_sample(&self, checked: &CheckedGraph) -> usize {
        checked
            .graph()
            .nodes
            .iter()
            .map(|n| match n.op {
                Op::Lut { round_bits, .. } if self.exact_rounding => 1 + round_bits as usize,
                Op::Lut { .. } => 1,
                _ => 0,
            })
            .sum()
    }

    /// Exact rounding: clears the low `r` bits of the held value `x` (one 1-bit bootstrap per
    /// bit, lowest first) and centres the result in its bucket of `2^r` values.
    ///
    /// Bit `b` (bits below it already clear) is read by multiplying `x` by `2^(P - b)`, which
    /// puts it on the padding bit: the bootstrap of a constant test vector then returns `+c_b`
    /// (bit clear, phase near 0) or `-c_b` (bit set, phase near half the torus), tolerating
    /// noise up to a quarter of the torus. `x + out - c_b` subtracts `2^b` exactly when the bit
    /// is set. Finally `(2^r - 1)·Δ_P / 2` moves the cleared value to the middle of its bucket,
    /// so the table's read tolerates `2^(r-1)` values of noise on either side.
    fn clear_low_bits(
        &self,
        src: &Ciphertext,
        r: u32,
        prepared: &PreparedCircuit,
        progress: Option<&ProgressBar>,
    ) -> Ciphertext {
        let delta = prepared.layout.delta;
        let p = prepared.layout.space_bits;
        let mut x = src.clone();
        for b in 0..r {
            let mut y = x.clone();
            lwe_ciphertext_cleartext_mul_assign(&mut y.ct, Cleartext(1u64 << (p - b)));
            let out = self
                .key
                .apply_lookup_table(&y, &prepared.extract[b as usize]);
            lwe_ciphertext_add_assign(&mut x.ct, &out.ct);
            lwe_ciphertext_plaintext_add_assign(
                &mut x.ct,
                Plaintext(extraction_constant(delta, b).wrapping_neg()),
            );
            if let Some(pb) = progress {
                pb.inc(1);
            }
        }
        let centre = ((1u64 << r) - 1)
            .wrapping_mul(delta >> 1)
            .wrapping_add(prepared.read_shift);
        lwe_ciphertext_plaintext_add_assign(&mut x.ct, Plaintext(centre));
        x
    }

    /// Evaluates `checked` on one encrypted sample with the server key alone.
    pub fn evaluate(
        &self,
        checked: &CheckedGraph,
        input: &EncryptedInput,
    ) -> Result<EncryptedOutput> {
        let prepared = self.prepare(checked)?;
        self.evaluate_prepared(checked, &prepared, input, None)
    }

    /// Evaluates a prepared circuit; bootstraps of one stage (layer) run in parallel on all
    /// cores. `progress`, if given, advances by one per bootstrap.
    pub fn evaluate_prepared(
        &self,
        checked: &CheckedGraph,
        prepared: &PreparedCircuit,
        input: &EncryptedInput,
        progress: Option<&ProgressBar>,
    ) -> Result<EncryptedOutput> {
        let mut vals = self.evaluate_nodes(checked, prepared, input, progress, None)?;
        let cts = checked
            .graph()
            .outputs
            .iter()
            .map(|&o| vals[o].take().expect("output evaluated"))
            .collect();
        Ok(EncryptedOutput {
            digest: self.digest.clone(),
            set: self.set,
            space_bits: self.space_bits,
            cts,
        })
    }

    /// Every node's ciphertext (inputs, dots, tables) of one evaluation; `profile`, if given,
    /// receives each stage's timings.
    fn evaluate_nodes(
        &self,
        checked: &CheckedGraph,
        prepared: &PreparedCircuit,
        input: &EncryptedInput,
        progress: Option<&ProgressBar>,
        mut profile: Option<&mut Vec<StageTiming>>,
    ) -> Result<Vec<Option<Ciphertext>>> {
        let c = &prepared.circuit;
        if c.digest != self.digest {
            return Err(digest_mismatch("the server key", &self.digest, &c.digest));
        }
        if input.digest != self.digest {
            return Err(digest_mismatch(
                "the encrypted input",
                &input.digest,
                &self.digest,
            ));
        }
        if input.space_bits != self.space_bits || prepared.layout.space_bits != self.space_bits {
            return Err(encoding_mismatch(
                "the encrypted input",
                input.space_bits,
                self.space_bits,
            ));
        }
        let g = checked.graph();
        let ids = g.input_nodes();
        if input.cts.len() != ids.len() {
            return Err(Error::Input(format!(
                "the encrypted input holds {} values, the circuit has {} features",
                input.cts.len(),
                ids.len()
            )));
        }
        check_ciphertexts(&input.cts, self.set, "encrypted input")?;
        let mut vals: Vec<Option<Ciphertext>> = vec![None; g.nodes.len()];
        for (&id, ct) in ids.iter().zip(&input.cts) {
            vals[id] = Some(ct.clone());
        }
        let lwe_size = input.cts[0].ct.lwe_size();
        let modulus = input.cts[0].ct.ciphertext_modulus();
        let degree = Degree::new((1u64 << self.space_bits) - 1);
        for (luts, dots) in &c.stages {
            let t_tables = Instant::now();
            let results: Vec<(NodeId, Ciphertext)> = luts
                .par_iter()
                .map(|&id| {
                    let Op::Lut { input, .. } = g.nodes[id].op else {
                        unreachable!("stages hold luts")
                    };
                    let src = vals[input].as_ref().expect("dot before its table");
                    let lut = prepared.luts[id].as_ref().expect("prepared table");
                    let out = match g.nodes[id].op {
                        Op::Lut { round_bits, .. } if self.exact_rounding && round_bits > 0 => {
                            let cleared = self.clear_low_bits(src, round_bits, prepared, progress);
                            self.key.apply_lookup_table(&cleared, lut)
                        }
                        _ => self.key.apply_lookup_table(src, lut),
                    };
                    if let Some(pb) = progress {
                        pb.inc(1);
                    }
                    (id, out)
                })
                .collect();
            for (id, ct) in results {
                vals[id] = Some(ct);
            }
            let tables_ms = t_tables.elapsed().as_secs_f64() * 1e3;
            let t_dots = Instant::now();
            let results: Vec<(NodeId, Ciphertext)> = dots
                .par_iter()
                .map(|&id| {
                    let Op::Dot { terms, .. } = &g.nodes[id].op else {
                        unreachable!("stages hold dots")
                    };
                    let mut acc = LweCiphertext::new(0u64, lwe_size, modulus);
                    let mut tmp = LweCiphertext::new(0u64, lwe_size, modulus);
                    for &(src, w) in terms {
                        let s = vals[src].as_ref().expect("source before its dot");
                        tmp.as_mut().copy_from_slice(s.ct.as_ref());
                        lwe_ciphertext_cleartext_mul_assign(&mut tmp, Cleartext(w as u64));
                        lwe_ciphertext_add_assign(&mut acc, &tmp);
                    }
                    lwe_ciphertext_plaintext_add_assign(
                        &mut acc,
                        Plaintext(prepared.constants[id]),
                    );
                    let ct = Ciphertext::new(
                        acc,
                        degree,
                        NoiseLevel::NOMINAL,
                        MessageModulus(1 << self.set.message_bits),
                        CarryModulus(1 << self.set.carry_bits),
                        AtomicPatternKind::Standard(PBSOrder::KeyswitchBootstrap),
                    );
                    (id, ct)
                })
                .collect();
            for (id, ct) in results {
                vals[id] = Some(ct);
            }
            if let Some(p) = profile.as_deref_mut() {
                p.push(StageTiming {
                    tables: luts.len(),
                    tables_ms,
                    dots: dots.len(),
                    terms: dots
                        .iter()
                        .map(|&id| match &g.nodes[id].op {
                            Op::Dot { terms, .. } => terms.len(),
                            _ => 0,
                        })
                        .sum(),
                    dots_ms: t_dots.elapsed().as_secs_f64() * 1e3,
                });
            }
        }
        Ok(vals)
    }
}

/// Wall-clock time of one stage of an evaluation: its bootstraps (in parallel), then the dot
/// products that read them.
#[derive(Clone, Debug, Default, Serialize)]
pub struct StageTiming {
    /// Bootstraps (tables) in the stage.
    pub tables: usize,
    /// Time of the stage's bootstraps (ms).
    pub tables_ms: f64,
    /// Dot products in the stage.
    pub dots: usize,
    /// Their terms (scalar multiplications and additions of ciphertexts).
    pub terms: usize,
    /// Time of the dot products (ms).
    pub dots_ms: f64,
}

/// Every ciphertext must have the set's dimension and moduli (a file could hold anything).
fn check_ciphertexts(cts: &[Ciphertext], set: &ParamSet, what: &str) -> Result<()> {
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

impl EncryptedInput {
    /// Number of encrypted features.
    pub fn len(&self) -> usize {
        self.cts.len()
    }
    /// Whether it holds no value.
    pub fn is_empty(&self) -> bool {
        self.cts.is_empty()
    }
    /// The circuit digest it was encrypted for.
    pub fn digest(&self) -> &str {
        &self.digest
    }
    /// Writes the file (safe serialization behind an sqnn header).
    pub fn save(&self, path: &Path) -> Result<()> {
        save_ciphertexts(
            path,
            KIND_INPUT,
            &self.digest,
            self.set,
            self.space_bits,
            &self.cts,
        )
    }
    /// Reads a file written by [`EncryptedInput::save`] for circuit `checked`.
    pub fn load(path: &Path, checked: &CheckedGraph) -> Result<EncryptedInput> {
        let digest = checked.graph().digest()?;
        let (set, space_bits, cts) = load_ciphertexts(path, KIND_INPUT, &digest)?;
        Ok(EncryptedInput {
            digest,
            set,
            space_bits,
            cts,
        })
    }
}

impl EncryptedOutput {
    /// Number of encrypted outputs.
    pub fn len(&self) -> usize {
        self.cts.len()
    }
    /// Whether it holds no value.
    pub fn is_empty(&self) -> bool {
        self.cts.is_empty()
    }
    /// The circuit digest it was computed for.
    pub fn digest(&self) -> &str {
        &self.digest
    }
    /// Writes the file (safe serialization behind an sqnn header).
    pub fn save(&self, path: &Path) -> Result<()> {
        save_ciphertexts(
            path,
            KIND_OUTPUT,
            &self.digest,
            self.set,
            self.space_bits,
            &self.cts,
        )
    }
    /// Reads a file written by [`EncryptedOutput::save`] for circuit `checked`.
    pub fn load(path: &Path, checked: &CheckedGraph) -> Result<EncryptedOutput> {
        let digest = checked.graph().digest()?;
        let (set, space_bits, cts) = load_ciphertexts(path, KIND_OUTPUT, &digest)?;
        Ok(EncryptedOutput {
            digest,
            set,
            space_bits,
            cts,
        })
    }
}

// ------------------------------------------------------------------------------------------
// Files
// ------------------------------------------------------------------------------------------

const MAGIC: &[u8; 8] = b"SQNNFHE1";
const KIND_CLIENT: &str = "client_key";
const KIND_SERVER: &str = "server_key";
const KIND_INPUT: &str = "encrypted_input";
const KIND_OUTPUT: &str = "encrypted_output";
const MAX_HEADER: u32 = 1 << 20;
const MAX_ITEMS: u64 = 1 << 20;

/// The header in front of every sqnn TFHE file.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileHeader {
    kind: String,
    digest: String,
    parameter_set: String,
    /// Objects in the payload (ciphertexts, or key parts).
    items: u64,
    payload_bytes: u64,
    payload_sha256: String,
    /// Server keys: `max_degree` of the shortint key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    max_degree: Option<u64>,
    /// The encoding's space `P`; absent in files written before spaces existed, which used
    /// the set's own precision.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    space_bits: Option<u32>,
    /// Keys: exact rounding (part of the encoding); absent means false.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    exact_rounding: bool,
}

impl FileHeader {
    fn space_bits(&self, set: &ParamSet) -> u32 {
        self.space_bits.unwrap_or_else(|| set.precision())
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn kind_name(kind: &str) -> &'static str {
    match kind {
        KIND_CLIENT => "client key",
        KIND_SERVER => "server key",
        KIND_INPUT => "encrypted input",
        _ => "encrypted output",
    }
}

fn write_file(path: &Path, mut header: FileHeader, payload: &[u8]) -> Result<()> {
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
fn read_file(
    path: &Path,
    kind: &str,
    digest: &str,
    max_payload: impl Fn(&ParamSet) -> u64,
) -> Result<(FileHeader, &'static ParamSet, Vec<u8>)> {
    let what = kind_name(kind);
    let corrupt = |m: String| {
        Error::Keys(format!(
            "{}: {m}; the {what} file is corrupted or truncated: regenerate it (for keys: run \
             sqnn keygen CIRCUIT --out-dir DIR)",
            path.display()
        ))
    };
    let mut f = std::fs::File::open(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            Error::Keys(format!(
                "no {what} at {}: run sqnn keygen CIRCUIT --out-dir DIR",
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
fn decode<T>(path: &Path, what: &str, f: impl FnOnce() -> Result<T, String>) -> Result<T> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(Error::Keys(format!(
            "{}: cannot decode the {what} ({e}); the file is corrupted or from another tfhe \
             version: regenerate it (for keys: run sqnn keygen CIRCUIT --out-dir DIR)",
            path.display()
        ))),
        Err(_) => Err(Error::Keys(format!(
            "{}: the {what} is inconsistent with its parameter set; the file is corrupted: \
             regenerate it (for keys: run sqnn keygen CIRCUIT --out-dir DIR)",
            path.display()
        ))),
    }
}

fn ser<T>(obj: &T, out: &mut Vec<u8>) -> Result<()>
where
    T: Serialize + ::tfhe::Versionize + ::tfhe::named::Named,
{
    safe_serialize(obj, &mut *out, 1 << 40)
        .map_err(|e| Error::Keys(format!("cannot serialize a {}: {e}", T::NAME)))
}

fn ct_bytes(set: &ParamSet) -> u64 {
    ((set.glwe_dimension * set.polynomial_size + 1) * 8 + 4096) as u64
}

fn save_ciphertexts(
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
        FileHeader {
            kind: kind.to_string(),
            digest: digest.to_string(),
            parameter_set: set.name.to_string(),
            items: cts.len() as u64,
            payload_bytes: 0,
            payload_sha256: String::new(),
            max_degree: None,
            space_bits: Some(space_bits),
            exact_rounding: false,
        },
        &payload,
    )
}

fn load_ciphertexts(
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

fn client_key_limit(set: &ParamSet) -> u64 {
    ((set.glwe_dimension * set.polynomial_size + set.lwe_dimension) * 8 + (1 << 20)) as u64
}

fn server_key_limit(set: &ParamSet) -> u64 {
    set.compressed_server_key_bytes
        .saturating_mul(2)
        .saturating_add(64 << 20)
}

/// GGSW ciphertexts in the set's bootstrapping key: `n` for a classic bootstrap,
/// `n / g · 2^g` for a multi-bit one (one per subset of each group of `g` key bits).
fn ggsw_count(set: &ParamSet) -> usize {
    let g = set.grouping_factor.max(1);
    if g == 1 {
        set.lwe_dimension
    } else {
        set.lwe_dimension / g * (1 << g)
    }
}

impl ClientKey {
    /// Writes the client key (secret: its GLWE and LWE secret keys) to `path`.
    pub fn save(&self, path: &Path) -> Result<()> {
        let AtomicPatternClientKey::Standard(ap) = &self.key.atomic_pattern else {
            return Err(Error::Keys(
                "only standard atomic-pattern keys are supported".into(),
            ));
        };
        let (glwe, lwe, _, _) = ap.clone().into_raw_parts();
        let mut payload = Vec::new();
        ser(&glwe, &mut payload)?;
        ser(&lwe, &mut payload)?;
        write_file(
            path,
            FileHeader {
                kind: KIND_CLIENT.into(),
                digest: self.digest.clone(),
                parameter_set: self.set.name.into(),
                items: 2,
                payload_bytes: 0,
                payload_sha256: String::new(),
                max_degree: None,
                space_bits: Some(self.space_bits),
                exact_rounding: self.exact_rounding,
            },
            &payload,
        )
    }

    /// Reads a client key written by [`ClientKey::save`] for circuit `checked`.
    pub fn load(path: &Path, checked: &CheckedGraph) -> Result<ClientKey> {
        let digest = checked.graph().digest()?;
        let (header, set, payload) = read_file(path, KIND_CLIENT, &digest, client_key_limit)?;
        let space_bits = header.space_bits(set);
        Circuit::new(checked)?.check_supported(set, space_bits)?;
        let params = tfhe_parameters(set)?;
        let limit = client_key_limit(set);
        let key = decode(path, "client key", || {
            let mut r: &[u8] = &payload;
            let glwe: GlweSecretKeyOwned<u64> = safe_deserialize(&mut r, limit)?;
            let lwe: LweSecretKeyOwned<u64> = safe_deserialize(&mut r, limit)?;
            if !r.is_empty()
                || glwe.glwe_dimension().0 != set.glwe_dimension
                || glwe.polynomial_size().0 != set.polynomial_size
                || lwe.lwe_dimension().0 != set.lwe_dimension
            {
                return Err(format!("key dimensions do not match {}", set.name));
            }
            let ap = StandardAtomicPatternClientKey::from_raw_parts(glwe, lwe, params, None);
            Ok(::tfhe::shortint::ClientKey {
                atomic_pattern: AtomicPatternClientKey::Standard(ap),
            })
        })?;
        Ok(ClientKey {
            key,
            digest,
            set,
            space_bits,
            exact_rounding: header.exact_rounding,
            keygen_seconds: None,
        })
    }
}

impl ServerKey {
    /// Writes the server key (its compressed, seeded form) to `path`. Only a key generated in
    /// this process keeps that form; a loaded key is saved by copying its file.
    pub fn save(&self, path: &Path) -> Result<()> {
        let Some(c) = &self.compressed else {
            return Err(Error::Keys(
                "this server key was loaded from a file: copy that file instead of saving it again"
                    .into(),
            ));
        };
        let CompressedAtomicPatternServerKey::Standard(ap) = &c.compressed_ap_server_key else {
            return Err(Error::Keys(
                "only standard atomic-pattern keys are supported".into(),
            ));
        };
        let (ksk, bsk, order) = ap.clone().into_raw_parts();
        if order != PBSOrder::KeyswitchBootstrap {
            return Err(Error::Keys(format!(
                "{}: only keyswitch-then-bootstrap sets are supported",
                self.set.name
            )));
        }
        // Both kinds of bootstrapping key are a list of seeded GGSW ciphertexts of the same
        // shape (a multi-bit key holds `n / g · 2^g` of them, a classic one `n`): both are
        // stored as a seeded bootstrap-key chunk, which `tfhe` can safe-serialize.
        let (container, glwe_size, poly, bbase, blevel, bseed, bmod, count) = match bsk {
            ShortintCompressedBootstrappingKey::Classic {
                bsk,
                modulus_switch_noise_reduction_key,
            } => {
                let expected = match self.set.modulus_switch {
                    fhe::ModulusSwitch::Centered => matches!(
                        modulus_switch_noise_reduction_key,
                        CompressedModulusSwitchConfiguration::CenteredMeanNoiseReduction
                    ),
                    fhe::ModulusSwitch::Rounded => matches!(
                        modulus_switch_noise_reduction_key,
                        CompressedModulusSwitchConfiguration::Standard
                    ),
                };
                if !expected || self.set.grouping_factor != 1 {
                    return Err(Error::Keys(format!(
                        "{}: the bootstrapping key does not have the set's modulus switch",
                        self.set.name
                    )));
                }
                let parts = (
                    bsk.glwe_size(),
                    bsk.polynomial_size(),
                    bsk.decomposition_base_log(),
                    bsk.decomposition_level_count(),
                    bsk.compression_seed(),
                    bsk.ciphertext_modulus(),
                    bsk.input_lwe_dimension().0,
                );
                (
                    bsk.into_container(),
                    parts.0,
                    parts.1,
                    parts.2,
                    parts.3,
                    parts.4,
                    parts.5,
                    parts.6,
                )
            }
            ShortintCompressedBootstrappingKey::MultiBit { seeded_bsk, .. } => {
                if seeded_bsk.grouping_factor().0 != self.set.grouping_factor {
                    return Err(Error::Keys(format!(
                        "{}: the bootstrapping key has grouping factor {}, the set {}",
                        self.set.name,
                        seeded_bsk.grouping_factor().0,
                        self.set.grouping_factor
                    )));
                }
                let parts = (
                    seeded_bsk.glwe_size(),
                    seeded_bsk.polynomial_size(),
                    seeded_bsk.decomposition_base_log(),
                    seeded_bsk.decomposition_level_count(),
                    seeded_bsk.compression_seed(),
                    seeded_bsk.ciphertext_modulus(),
                );
                (
                    seeded_bsk.into_container(),
                    parts.0,
                    parts.1,
                    parts.2,
                    parts.3,
                    parts.4,
                    parts.5,
                    ggsw_count(self.set),
                )
            }
        };
        let base = ksk.decomposition_base_log();
        let level = ksk.decomposition_level_count();
        let out_size = ksk.output_lwe_size();
        let seed = ksk.compression_seed();
        let modulus = ksk.ciphertext_modulus();
        let ksk_chunk = SeededLweKeyswitchKeyChunk::from_container(
            ksk.into_container(),
            base,
            level,
            out_size,
            seed,
            modulus,
        );
        let bsk_chunk = SeededLweBootstrapKeyChunk::from_container(
            container, glwe_size, poly, bbase, blevel, bseed, bmod,
        );
        debug_assert_eq!(bsk_chunk.chunk_size(), ChunkSize(count));
        let mut payload = Vec::new();
        ser(&ksk_chunk, &mut payload)?;
        ser(&bsk_chunk, &mut payload)?;
        write_file(
            path,
            FileHeader {
                kind: KIND_SERVER.into(),
                digest: self.digest.clone(),
                parameter_set: self.set.name.into(),
                items: 2,
                payload_bytes: 0,
                payload_sha256: String::new(),
                max_degree: Some(c.max_degree.get()),
                space_bits: Some(self.space_bits),
                exact_rounding: self.exact_rounding,
            },
            &payload,
        )
    }

    /// Reads a server key written by [`ServerKey::save`] for circuit `checked`, and expands it.
    pub fn load(path: &Path, checked: &CheckedGraph) -> Result<ServerKey> {
        let digest = checked.graph().digest()?;
        let (header, set, payload) = read_file(path, KIND_SERVER, &digest, server_key_limit)?;
        let space_bits = header.space_bits(set);
        Circuit::new(checked)?.check_supported(set, space_bits)?;
        let params = tfhe_parameters(set)?;
        let limit = server_key_limit(set);
        let max_degree = header.max_degree.unwrap_or(0);
        let compressed = decode(path, "server key", || {
            let mut r: &[u8] = &payload;
            let ksk: SeededLweKeyswitchKeyChunk<Vec<u64>> = safe_deserialize(&mut r, limit)?;
            let bsk: SeededLweBootstrapKeyChunk<Vec<u64>> = safe_deserialize(&mut r, limit)?;
            if !r.is_empty() {
                return Err(format!("{} trailing bytes", r.len()));
            }
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
            let (glwe_size, poly, bbase, blevel, bseed, bmod) = (
                bsk.glwe_size(),
                bsk.polynomial_size(),
                bsk.decomposition_base_log(),
                bsk.decomposition_level_count(),
                bsk.compression_seed(),
                bsk.ciphertext_modulus(),
            );
            let container = bsk.into_container();
            let bootstrapping_key = match params {
                PBSParameters::PBS(_) => ShortintCompressedBootstrappingKey::Classic {
                    bsk: SeededLweBootstrapKey::from_container(
                        container, glwe_size, poly, bbase, blevel, bseed, bmod,
                    ),
                    modulus_switch_noise_reduction_key: match set.modulus_switch {
                        fhe::ModulusSwitch::Centered => {
                            CompressedModulusSwitchConfiguration::CenteredMeanNoiseReduction
                        }
                        fhe::ModulusSwitch::Rounded => {
                            CompressedModulusSwitchConfiguration::Standard
                        }
                    },
                },
                PBSParameters::MultiBitPBS(mb) => ShortintCompressedBootstrappingKey::MultiBit {
                    seeded_bsk: SeededLweMultiBitBootstrapKey::from_container(
                        container,
                        glwe_size,
                        poly,
                        bbase,
                        blevel,
                        bseed,
                        mb.grouping_factor,
                        bmod,
                    ),
                    deterministic_execution: mb.deterministic_execution,
                },
            };
            let ap = CompressedStandardAtomicPatternServerKey::from_raw_parts(
                ksk,
                bootstrapping_key,
                PBSOrder::KeyswitchBootstrap,
            );
            Ok(CompressedServerKey::from_raw_parts(
                CompressedAtomicPatternServerKey::Standard(ap),
                params.message_modulus(),
                params.carry_modulus(),
                MaxDegree::new(max_degree),
                MaxNoiseLevel::new(params.max_noise_level().get()),
            ))
        })?;
        let key = decode(path, "server key", || Ok(compressed.decompress()))?;
        Ok(ServerKey {
            key: Arc::new(key),
            compressed: None,
            digest,
            set,
            space_bits,
            exact_rounding: header.exact_rounding,
        })
    }
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
                "no keys in {} ({} is missing): run sqnn keygen CIRCUIT --out-dir {}",
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
            "{}: unreadable manifest ({e}): run sqnn keygen CIRCUIT --out-dir {}",
            p.display(),
            dir.display()
        ))
    })
}

fn check_manifest(dir: &Path, checked: &CheckedGraph) -> Result<()> {
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

// ------------------------------------------------------------------------------------------
// The backend
// ------------------------------------------------------------------------------------------

/// Timings of an encrypted run, per sample (milliseconds).
#[derive(Clone, Debug, Default, Serialize)]
pub struct TfheRun {
    /// Each sample's output accumulators (as the clear backend gives them).
    pub outputs: Vec<Vec<i64>>,
    /// Client: encryption of each sample.
    pub encrypt_ms: Vec<f64>,
    /// Server: evaluation of each sample (the encrypted inference latency).
    pub evaluate_ms: Vec<f64>,
    /// Client: decryption of each sample.
    pub decrypt_ms: Vec<f64>,
    /// Bootstraps per sample.
    pub pbs_count: usize,
}

impl TfheRun {
    /// Median server evaluation time per sample (ms); 0 without samples.
    pub fn median_evaluate_ms(&self) -> f64 {
        median(&self.evaluate_ms)
    }
}

/// Median of `v` (0 when empty).
pub fn median(v: &[f64]) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let n = s.len();
    if n % 2 == 1 {
        s[n / 2]
    } else {
        0.5 * (s[n / 2 - 1] + s[n / 2])
    }
}

/// The TFHE backend: per sample, the client encrypts, the server evaluates, the client
/// decrypts. Holds both keys (a convenience for running and comparing in one process; a real
/// deployment gives the server only the [`ServerKey`]).
#[derive(Clone, Debug)]
pub struct TfheBackend {
    client: ClientKey,
    server: ServerKey,
    /// Show a progress bar on stderr for runs expected to take more than a second.
    pub progress: bool,
}

impl TfheBackend {
    /// A backend from a key pair.
    pub fn new(client: ClientKey, server: ServerKey) -> Result<TfheBackend> {
        if client.digest != server.digest
            || client.set != server.set
            || client.space_bits != server.space_bits
            || client.exact_rounding != server.exact_rounding
        {
            return Err(Error::Keys(
                "the client and server keys were not generated together: run sqnn keygen CIRCUIT --out-dir DIR"
                    .into(),
            ));
        }
        Ok(TfheBackend {
            client,
            server,
            progress: true,
        })
    }

    /// Generates fresh keys for `checked` with the plan's parameter set (see
    /// [`ClientKey::keygen_seconds`] for the time it took).
    pub fn generate(checked: &CheckedGraph, plan: &FhePlan) -> Result<TfheBackend> {
        let (c, s) = ClientKey::generate(checked, plan)?;
        TfheBackend::new(c, s)
    }

    /// Loads both keys from a directory written by [`save_keys`].
    pub fn load(dir: &Path, checked: &CheckedGraph) -> Result<TfheBackend> {
        let client = load_client_key(dir, checked)?;
        let server = load_server_key(dir, checked)?;
        TfheBackend::new(client, server)
    }

    /// The client key.
    pub fn client(&self) -> &ClientKey {
        &self.client
    }

    /// The server key.
    pub fn server(&self) -> &ServerKey {
        &self.server
    }

    /// Runs every sample (encrypt, evaluate, decrypt), timing each step.
    pub fn run_timed(&self, checked: &CheckedGraph, inputs: &[Vec<i64>]) -> Result<TfheRun> {
        validate_inputs(checked.analyzed(), inputs)?;
        let prepared = self.server.prepare(checked)?;
        let digest = prepared.circuit.digest.clone();
        let pbs = self.server.pbs_per_sample(checked);
        let expected_ms = inputs.len() as f64 * pbs as f64 * self.server.set.pbs_ms_1_thread
            / rayon::current_num_threads().max(1) as f64;
        let pb = if self.progress && expected_ms > 1000.0 {
            let pb = ProgressBar::new((inputs.len() * pbs) as u64);
            pb.set_style(
                ProgressStyle::with_template(
                    "{bar:30} {pos}/{len} bootstraps, {msg} [{elapsed} < {eta}]",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            Some(pb)
        } else {
            None
        };
        let mut run = TfheRun {
            pbs_count: pbs,
            ..TfheRun::default()
        };
        for (i, x) in inputs.iter().enumerate() {
            if let Some(pb) = &pb {
                pb.set_message(format!("sample {}/{}", i + 1, inputs.len()));
            }
            let t = Instant::now();
            let enc = self.client.encrypt_with(checked, &digest, x)?;
            run.encrypt_ms.push(t.elapsed().as_secs_f64() * 1e3);
            let t = Instant::now();
            let out = self
                .server
                .evaluate_prepared(checked, &prepared, &enc, pb.as_ref())?;
            run.evaluate_ms.push(t.elapsed().as_secs_f64() * 1e3);
            let t = Instant::now();
            run.outputs
                .push(self.client.decrypt_with(checked, &digest, &out)?);
            run.decrypt_ms.push(t.elapsed().as_secs_f64() * 1e3);
        }
        if let Some(pb) = pb {
            pb.finish_and_clear();
        }
        Ok(run)
    }
}

impl Backend for TfheBackend {
    fn name(&self) -> &'static str {
        "tfhe"
    }

    fn run(&self, graph: &CheckedGraph, inputs: &[Vec<i64>]) -> Result<Vec<Vec<i64>>> {
        Ok(self.run_timed(graph, inputs)?.outputs)
    }
}

// ------------------------------------------------------------------------------------------
// Measurement helpers (calibration of the noise model, benches)
// ------------------------------------------------------------------------------------------

/// Measurements that need the secret key: the noise model's calibration and the benches.
/// Not part of the client/server protocol.
pub mod measure {
    use super::*;
    use ::tfhe::core_crypto::prelude::{
        keyswitch_lwe_ciphertext, lwe_ciphertext_centered_binary_modulus_switch,
        CiphertextModulusLog, ModulusSwitchedLweCiphertext,
    };
    use ::tfhe::shortint::atomic_pattern::AtomicPatternServerKey;

    /// Error statistics at a bootstrap's input, in modulus-switch units (`2N`).
    #[derive(Clone, Debug, Serialize)]
    pub struct NoiseStats {
        /// Samples measured.
        pub trials: usize,
        /// The weight applied to a bootstrap output (0: a fresh encryption, weight 1).
        pub weight: u64,
        /// Mean error.
        pub mean: f64,
        /// Standard deviation.
        pub std: f64,
        /// Largest |error|.
        pub max_abs: f64,
        /// Errors at or beyond the tolerance (half a box).
        pub beyond_tolerance: usize,
    }

    /// The position in `[0, 2N)` that a bootstrap of `set` reads for the keyswitched
    /// ciphertext `ks`, computed with the small secret key exactly as the set's modulus switch
    /// rounds: tfhe's centred switch, plain rounding of each mask element, or (multi-bit)
    /// rounding of each group's subset sum selected by the key bits.
    pub fn switched_position(set: &ParamSet, small: &[u64], ks: &LweCiphertext<Vec<u64>>) -> u64 {
        let two_n = 2 * set.polynomial_size as u64;
        let log = two_n.trailing_zeros();
        let round = |x: u64| x.wrapping_add(1u64 << (63 - log)) >> (64 - log);
        let g = set.grouping_factor.max(1);
        let phase = match set.modulus_switch {
            fhe::ModulusSwitch::Centered if g == 1 => {
                let ms = lwe_ciphertext_centered_binary_modulus_switch::<u64, u64, _>(
                    ks.as_view(),
                    CiphertextModulusLog(log as usize),
                );
                let mut phase = ms.body();
                for (a, s) in ms.mask().zip(small) {
                    phase = phase.wrapping_sub(a.wrapping_mul(*s));
                }
                phase
            }
            _ => {
                let mask = ks.get_mask();
                let mut phase = round(*ks.get_body().data);
                for (a, s) in mask.as_ref().chunks(g).zip(small.chunks(g)) {
                    let sum = a
                        .iter()
                        .zip(s)
                        .fold(0u64, |acc, (a, s)| acc.wrapping_add(a.wrapping_mul(*s)));
                    phase = phase.wrapping_sub(round(sum));
                }
                phase
            }
        };
        phase % two_n
    }

    /// The `shortint` keys inside sqnn's keys (for measurements with the same key material).
    pub fn shortint_keys<'a>(
        client: &'a ClientKey,
        server: &'a ServerKey,
    ) -> (
        &'a ::tfhe::shortint::ClientKey,
        &'a ::tfhe::shortint::ServerKey,
    ) {
        (&client.key, &server.key)
    }

    /// Bytes of the set's evaluation key in memory: the Fourier bootstrapping key
    /// (`ggsw_count · (k+1)² · levels · N` complex halves, 8 bytes per coefficient) and the
    /// keyswitching key (`k·N · levels · (n + 1)` words).
    pub fn server_key_bytes(set: &ParamSet) -> Result<u64> {
        let p = tfhe_parameters(set)?;
        let k1 = (set.glwe_dimension + 1) as u64;
        let bsk = ggsw_count(set) as u64
            * k1
            * k1
            * p.pbs_level().0 as u64
            * set.polynomial_size as u64
            * 8;
        let ksk = (set.glwe_dimension * set.polynomial_size) as u64
            * p.ks_level().0 as u64
            * (set.lwe_dimension as u64 + 1)
            * 8;
        Ok(bsk + ksk)
    }

    /// A raw key pair for a parameter set, not bound to a circuit.
    pub fn raw_keys(
        set: &ParamSet,
    ) -> Result<(::tfhe::shortint::ClientKey, ::tfhe::shortint::ServerKey)> {
        Ok(::tfhe::shortint::gen_keys(tfhe_parameters(set)?))
    }

    /// The error entering a bootstrap (after keyswitch and centred modulus switch), measured
    /// with the secret key: `weight · (a bootstrap output encrypting 0)`, or a fresh encryption
    /// of 0 when `weight == 0`. Bootstraps run in parallel. The mean is about -1/2: tfhe's
    /// centred modulus switch subtracts half a position (see [`crate::fhe`], "The read").
    pub fn pbs_input_noise(
        set: &ParamSet,
        cks: &::tfhe::shortint::ClientKey,
        sks: &::tfhe::shortint::ServerKey,
        weight: u64,
        trials: usize,
    ) -> Result<NoiseStats> {
        let AtomicPatternClientKey::Standard(cap) = &cks.atomic_pattern else {
            return Err(Error::Backend("standard atomic pattern expected".into()));
        };
        let AtomicPatternServerKey::Standard(sap) = &sks.atomic_pattern else {
            return Err(Error::Backend("standard atomic pattern expected".into()));
        };
        let small = cap.small_lwe_secret_key();
        let two_n = 2 * set.polynomial_size as u64;
        // The identity table: a constant table has an all-zero accumulator, whose bootstrap
        // output is exactly zero and noiseless; every other table gives the typical noise.
        let id_lut = sks.generate_lookup_table(|x| x);
        let errors: Vec<f64> = (0..trials)
            .into_par_iter()
            .map(|_| {
                let mut ct = cks.unchecked_encrypt(0);
                if weight > 0 {
                    ct = sks.apply_lookup_table(&ct, &id_lut);
                    lwe_ciphertext_cleartext_mul_assign(&mut ct.ct, Cleartext(weight));
                }
                let mut out = LweCiphertext::new(
                    0u64,
                    sap.key_switching_key.output_lwe_size(),
                    ct.ct.ciphertext_modulus(),
                );
                keyswitch_lwe_ciphertext(&sap.key_switching_key, &ct.ct, &mut out);
                let p = switched_position(set, small.as_ref(), &out);
                if p >= two_n / 2 {
                    p as f64 - two_n as f64
                } else {
                    p as f64
                }
            })
            .collect();
        let n = errors.len().max(1) as f64;
        let mean = errors.iter().sum::<f64>() / n;
        let var = errors.iter().map(|e| (e - mean).powi(2)).sum::<f64>() / (n - 1.0).max(1.0);
        let t = set.tolerance();
        Ok(NoiseStats {
            trials,
            weight,
            mean,
            std: var.sqrt(),
            max_abs: errors.iter().fold(0.0f64, |m, e| m.max(e.abs())),
            beyond_tolerance: errors.iter().filter(|e| e.abs() >= t).count(),
        })
    }

    /// Variance of a bootstrap output's error (identity table on encryptions of 0), measured
    /// with the secret key, in squared modulus-switch units: the noise model's `b`.
    pub fn bootstrap_output_variance(
        set: &ParamSet,
        cks: &::tfhe::shortint::ClientKey,
        sks: &::tfhe::shortint::ServerKey,
        trials: usize,
    ) -> f64 {
        let id_lut = sks.generate_lookup_table(|x| x);
        let unit = 2f64.powi(64) / (2 * set.polynomial_size) as f64;
        let errors: Vec<f64> = (0..trials)
            .into_par_iter()
            .map(|_| {
                let out = sks.apply_lookup_table(&cks.unchecked_encrypt(0), &id_lut);
                cks.decrypt_no_decode(&out).0 as i64 as f64 / unit
            })
            .collect();
        let n = errors.len().max(2) as f64;
        let mean = errors.iter().sum::<f64>() / n;
        errors.iter().map(|e| (e - mean).powi(2)).sum::<f64>() / (n - 1.0)
    }

    /// A deliberately noisy neuron, `trials` times: `x + weight · c`, where `x` is a fresh
    /// encryption of a random value in `[0, M)` and `c` a bootstrap output encrypting 0 (its
    /// noise multiplied by `weight`), then the identity table. Returns how many bootstraps read
    /// the wrong entry. Σw² of the neuron is `weight² + 1`.
    ///
    /// (A checked circuit cannot hold such a neuron: its accumulator range `Σ|w|·(hi - lo)`
    /// must fit the message space, which bounds Σw² by `(M - 1)²`, except for weights on
    /// constant values, whose ciphertexts are noiseless.)
    pub fn noisy_neuron_failures(
        set: &ParamSet,
        cks: &::tfhe::shortint::ClientKey,
        sks: &::tfhe::shortint::ServerKey,
        weight: u64,
        trials: usize,
        seed: u64,
    ) -> usize {
        use rand::{Rng, SeedableRng};
        let id_lut = sks.generate_lookup_table(|x| x);
        let m = set.message_space();
        (0..trials)
            .into_par_iter()
            .filter(|&i| {
                let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed ^ ((i as u64) << 20));
                let x = rng.gen_range(0..m);
                let zero = sks.apply_lookup_table(&cks.unchecked_encrypt(0), &id_lut);
                let mut acc = cks.unchecked_encrypt(x);
                let mut tmp = zero.ct.clone();
                lwe_ciphertext_cleartext_mul_assign(&mut tmp, Cleartext(weight));
                lwe_ciphertext_add_assign(&mut acc.ct, &tmp);
                let out = sks.apply_lookup_table(&acc, &id_lut);
                cks.decrypt_message_and_carry(&out) != x
            })
            .count()
    }

    /// One table read of an encrypted evaluation, observed with the secret key.
    #[derive(Clone, Debug, Serialize)]
    pub struct TableRead {
        /// The lut node.
        pub lut: NodeId,
        /// The dot node it reads.
        pub dot: NodeId,
        /// The accumulator's value in this evaluation: the dot evaluated in clear on the
        /// decrypted values of its sources (earlier tables' outputs as they came out).
        pub value: i64,
        /// `d`: the index the bootstrap read minus the value's index, from the phase after the
        /// keyswitch and modulus switch (exactly what the bootstrap reads).
        pub offset: i64,
        /// The error `e` in positions (of `2N`): the switched phase minus the value's position,
        /// corrected for the half-position shifts; `d = floor(e / box + 1/2)` up to rounding.
        pub position_error: f64,
        /// The table's decrypted output.
        pub output: i64,
        /// The table's entry at `clamp(value + offset, lo, hi)`: equal to `output` unless the
        /// read went past the margin. `None` when it did.
        pub expected: Option<i64>,
        /// The table's entry at `value` (what an exact read gives).
        pub exact: i64,
    }

    /// Encrypts `inputs`, evaluates the circuit and observes every table read with the secret
    /// key. Returns the reads (in node order) and the decrypted outputs.
    pub fn table_reads(
        backend: &TfheBackend,
        checked: &CheckedGraph,
        prepared: &PreparedCircuit,
        inputs: &[i64],
    ) -> Result<(Vec<TableRead>, Vec<i64>)> {
        let client = &backend.client;
        let server = &backend.server;
        let AtomicPatternClientKey::Standard(cap) = &client.key.atomic_pattern else {
            return Err(Error::Backend("standard atomic pattern expected".into()));
        };
        let AtomicPatternServerKey::Standard(sap) = &server.key.atomic_pattern else {
            return Err(Error::Backend("standard atomic pattern expected".into()));
        };
        let small = cap.small_lwe_secret_key();
        let set = server.set;
        let g = checked.graph();
        let facts = checked.facts();
        let layout = &prepared.layout;
        let p_bits = layout.space_bits;
        let two_n = 2 * set.polynomial_size as i64;
        let bx = (set.polynomial_size >> p_bits).max(1) as i64;
        let hb = bx / 2;
        // The switched position is round(k0·box + s + e - 1/2) with a centred switch (tfhe
        // subtracts half a position; sqnn adds s = 1/2 when box = 1), round(k0·box + s + e)
        // with a rounding one (sqnn adds s = -1/2 when box >= 2): either way
        // e ≈ pos - k0·box + 1/2 when box >= 2, pos - k0·box when box = 1.
        let unshift = if bx >= 2 { 0.5 } else { 0.0 };
        let padded = 1i64 << (p_bits + 1);
        let enc = client.encrypt(checked, inputs)?;
        let vals = server.evaluate_nodes(checked, prepared, &enc, None, None)?;
        let ids = g.input_nodes();
        let mut value = vec![0i64; g.nodes.len()];
        for (&id, &x) in ids.iter().zip(inputs) {
            value[id] = x;
        }
        let mut reads = Vec::new();
        for (id, n) in g.nodes.iter().enumerate() {
            match &n.op {
                Op::Input { .. } => {}
                Op::Dot { terms, constant } => {
                    value[id] = terms
                        .iter()
                        .fold(*constant, |acc, &(s, w)| acc + w * value[s]);
                }
                Op::Lut {
                    input,
                    offset,
                    round_bits,
                    table,
                    ..
                } => {
                    let ct = vals[id].as_ref().expect("evaluated");
                    let output = layout.decode(facts, id, client.key.decrypt_no_decode(ct).0);
                    value[id] = output;
                    let dot = *input;
                    let v = value[dot];
                    let iv = facts[dot].interval;
                    let src = vals[dot].as_ref().expect("evaluated");
                    let mut ks = LweCiphertext::new(
                        0u64,
                        sap.key_switching_key.output_lwe_size(),
                        src.ct.ciphertext_modulus(),
                    );
                    keyswitch_lwe_ciphertext(&sap.key_switching_key, &src.ct, &mut ks);
                    let pos = switched_position(set, small.as_ref(), &ks) as i64;
                    let k0 = layout.held(facts, dot, v) as i64;
                    let k = ((pos + hb) / bx).rem_euclid(padded);
                    let mut d = (k - k0).rem_euclid(padded);
                    if d >= padded / 2 {
                        d -= padded;
                    }
                    let mut e = (pos - k0 * bx).rem_euclid(two_n);
                    if e >= two_n / 2 {
                        e -= two_n;
                    }
                    let entry = |x: i64| table[crate::cast::index((x + offset) >> round_bits)];
                    let held = k0 + d;
                    let expected = (0..(1i64 << p_bits))
                        .contains(&held)
                        .then(|| entry((v + d).clamp(iv.lo, iv.hi)));
                    reads.push(TableRead {
                        lut: id,
                        dot,
                        value: v,
                        offset: d,
                        position_error: e as f64 + unshift,
                        output,
                        expected,
                        exact: entry(v.clamp(iv.lo, iv.hi)),
                    });
                }
            }
        }
        let outputs = g
            .outputs
            .iter()
            .map(|&o| {
                let ct = vals[o].as_ref().expect("evaluated");
                layout.decode(facts, o, client.key.decrypt_no_decode(ct).0)
            })
            .collect();
        Ok((reads, outputs))
    }

    /// Evaluates one encrypted sample and times each stage (bootstraps, then dot products).
    pub fn evaluate_profiled(
        server: &ServerKey,
        checked: &CheckedGraph,
        prepared: &PreparedCircuit,
        input: &EncryptedInput,
    ) -> Result<Vec<StageTiming>> {
        let mut profile = Vec::new();
        server.evaluate_nodes(checked, prepared, input, None, Some(&mut profile))?;
        Ok(profile)
    }

    /// One keyswitch + bootstrap on a fresh ciphertext (for benches).
    pub fn one_bootstrap(
        cks: &::tfhe::shortint::ClientKey,
        sks: &::tfhe::shortint::ServerKey,
        lut: &LookupTableOwned,
    ) -> u64 {
        let ct = cks.unchecked_encrypt(1);
        let out = sks.apply_lookup_table(&ct, lut);
        out.ct.get_body().data.to_owned()
    }
}
