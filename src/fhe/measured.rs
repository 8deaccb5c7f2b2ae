//! The figures measured on this machine, per parameter set: `measured.json` (machine, date, the
//! command that regenerates it, notes, and each set's latency, key sizes and noise constants),
//! embedded at build time and parsed once.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use serde::Deserialize;

use super::catalogue::ParamSetId;

/// The data file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // the header is for people and the tests; the code reads `sets`
pub(super) struct MeasuredFile {
    /// Where the figures were measured (read by the tests; for people).
    pub machine: String,
    /// The cores of that machine: the core count plans assume with these figures.
    pub cores: usize,
    /// When (ISO date).
    pub date: String,
    /// The command that measures them again.
    pub command: String,
    /// How they were measured, and what to keep in mind.
    pub notes: Vec<String>,
    /// Each set's figures.
    pub sets: BTreeMap<ParamSetId, Measured>,
    /// The work outside bootstraps, per ciphertext coefficient.
    pub linear: LinearCost,
}

/// The work outside bootstraps, in nanoseconds per coefficient of a large-key ciphertext
/// (`k·N + 1` of them), one core: what a circuit pays besides its bootstraps, and all a
/// linear circuit pays.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // date and command are for people and the tests
pub(super) struct LinearCost {
    /// When (ISO date).
    pub date: String,
    /// How they were measured.
    pub command: String,
    /// The server takes in one input ciphertext (a copy).
    pub input_ns_per_coefficient: f64,
    /// One term of a dot product: a scalar multiply-add of a whole ciphertext.
    pub dot_ns_per_coefficient: f64,
    /// The client encrypts one input (a fresh mask from the CSPRNG, the key's dot product).
    pub encrypt_ns_per_coefficient: f64,
    /// The client decrypts one output.
    pub decrypt_ns_per_coefficient: f64,
}

/// One set's measured figures (see the fields of the same names on
/// [`ParamSet`](super::ParamSet)).
#[derive(Clone, Copy, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Measured {
    pub pbs_ms_1_thread: f64,
    pub pbs_ms_2_threads: f64,
    pub pbs_parallel_fraction: f64,
    pub keygen_seconds: f64,
    pub server_key_bytes: u64,
    pub compressed_server_key_bytes: u64,
    pub client_key_bytes: u64,
    pub noise_base: f64,
    pub noise_per_w2: f64,
    /// Decomposition variants: the shape of the measured errors (the validation of their
    /// noise formula, [`NoiseValidation`](super::NoiseValidation)).
    #[serde(default)]
    pub validation: Option<Shape>,
}

/// The shape statistics of a noise measurement: samples and excess kurtosis of the errors at
/// a bootstrap's input (`a`) and of bootstrap outputs (`b`).
#[derive(Clone, Copy, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Shape {
    pub a_samples: u64,
    pub a_excess_kurtosis: f64,
    pub b_samples: u64,
    pub b_excess_kurtosis: f64,
}

/// The embedded file, parsed (a unit test checks it covers every set with finite, positive
/// figures, so a broken file fails the tests, not a run).
pub(super) static MEASURED: LazyLock<MeasuredFile> = LazyLock::new(|| {
    serde_json::from_str(include_str!("measured.json")).expect("src/fhe/measured.json parses")
});

/// The measured figures of `id`.
pub(super) fn figures(id: ParamSetId) -> Measured {
    *MEASURED
        .sets
        .get(&id)
        .unwrap_or_else(|| panic!("src/fhe/measured.json has no entry for {id}"))
}

/// Where the built-in latency and noise figures come from, and when they were measured.
pub(super) fn source() -> String {
    format!(
        "built-in figures of {} ({}; src/fhe/measured.json)",
        MEASURED.date, MEASURED.machine
    )
}
