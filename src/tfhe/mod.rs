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
//! [`Error::Keys`](crate::Error::Keys) that says to run `sqnn keygen`.
//!
//! # Encoding (see [`crate::fhe`])
//! Every ciphertext of a circuit uses one encoding `Δ_P = 2^63 / 2^P`, `P` the plan's
//! [`space_bits`](crate::fhe::FhePlan::space_bits) (a padding bit above it), whatever the
//! parameter set's own message × carry precision; the keys carry `P`. A node whose proved
//! interval is `[lo, hi]` holds `v - lo + m` with `m` = [`fhe::margins`](crate::fhe::margins) (its values centred in
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

mod backend;
mod container;
mod eval;
mod extract;
mod files;
mod key_files;
mod keys;
mod layout;
#[cfg(feature = "calibration")]
pub mod measure;
mod params;
mod rounding;
mod security;
mod timing;

pub use backend::{median, TfheBackend, TfheRun};
pub use container::ObjectInfo;
pub use eval::{PreparedCircuit, StageTiming};
pub use files::{
    load_client_key, load_manifest, load_server_key, save_keys, KeyManifest, CLIENT_KEY_FILE,
    MANIFEST_FILE, MAX_MANIFEST_BYTES, SERVER_KEY_FILE,
};
pub use keys::{
    CiphertextKind, ClientKey, Encrypted, EncryptedInput, EncryptedOutput, Input, Output, ServerKey,
};
pub use params::tfhe_parameters;
pub use security::has_shipped_security;
pub use timing::measure_costs;
