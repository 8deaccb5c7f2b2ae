//! TFHE parameters without TFHE: the catalogue of 128-bit parameter sets sqnn may use, the noise
//! model that turns a neuron's Σw² into predicted read errors, and the parameter choice for a
//! checked circuit ([`choose_parameters`], [`choose_parameters_with`]). This module does not
//! depend on the `tfhe` crate, so a build without the `tfhe-backend` feature still reports what a
//! circuit would cost under TFHE, and the clear backend can simulate its errors.
//!
//! # The encoding: a `P`-bit space read by one bootstrap
//! A circuit's ciphertexts all use one encoding `Δ_P = 2^63 / 2^P` (`P` = the plan's
//! [`space_bits`](FhePlan::space_bits), plus a padding bit), whatever the parameter set's own
//! message × carry precision. A node whose proved interval is `[lo, hi]` (`W = hi - lo + 1 <=
//! 2^P` values) holds `v - lo + m` with the margin `m = floor((2^P - W) / 2)` ([`margins`]): its
//! values sit in the middle of `[0, 2^P)`.
//!
//! A bootstrap first switches the phase to a position in `[0, 2N)` (`N` the polynomial size);
//! a value `k` of the space lands at `k·box + e`, `box = N / 2^P` positions per value
//! ([`ParamSet::box_positions`]; `P <= log2 N`), where `e` is the noise in positions. The table
//! (test vector) gives every index of `[0, 2^P)` an entry, rotated by half a box; indices in the
//! margins repeat the nearest edge entry (a read just outside `[lo, hi]` reads the edge value).
//!
//! # The noise model
//! A neuron's dot product `Σ w_j·x_j` multiplies the noise of each input by its weight, so the
//! error entering its bootstrap is Gaussian with variance
//!
//! ```text
//! σ² = a + b · Σ w_j²        (positions², i.e. units of the modulus switch to 2N)
//! ```
//!
//! where `b` is the variance of a bootstrap's output (every hidden value is one) and `a` the
//! variance the keyswitch and the modulus switch add. Inputs of the first layer are fresh
//! encryptions, whose noise is about 10⁻²⁰ of a bootstrap's: the model charges them as bootstrap
//! outputs, which over-estimates first-layer neurons (a safe error). `a` and `b` were measured on
//! this machine for every set (see [`ParamSet`]; `tests/tfhe.rs::noise_calibration`). The noise
//! in positions does not depend on `P`; the box does.
//!
//! # The read: exactly what is implemented, and what a simulation must draw
//! With `σ_units = σ / box` ([`NeuronNoise::sigma_units`]) and `z ~ N(0, 1)`, a table reading a
//! dot of value `v ∈ [lo, hi]` reads
//!
//! ```text
//! d  = floor(z · σ_units + 1/2)          (round half up; [`read_offset`])
//! v' = clamp(v + d, lo, hi)              (the margins repeat the edge entries)
//! output = table[(v' + offset) >> round_bits]
//! ```
//!
//! unless `|d|` exceeds the margin (catastrophic: the read crosses the padding bit and returns
//! a negated, wrong entry; its probability is [`NeuronNoise::log2_p_catastrophic`]). An output
//! accumulator (no bootstrap) is decrypted as `v + d`, same formula with its own `σ_units`
//! (`σ² = b·Σw²`, no keyswitch or modulus switch), not clamped. [`sigma_units_by_node`] gives
//! every node's `σ_units` for a clear simulation; note that `d` moves the accumulator, not the
//! table index (they differ when `round_bits > 0`).
//!
//! Why `floor(e/box + 1/2)` exactly: the modulus switch gives an integer position `p`, and the
//! half-box rotation makes the bootstrap read index `floor((p + box/2) / box)` (index `p` when
//! `box = 1`). tfhe's centred modulus switch subtracts half a position from the body
//! (`half_case` in `lwe_ciphertext_centered_binary_modulus_switch`), so `p = round(k·box + e -
//! 1/2) = k·box + floor(e)`: with `box >= 2` that gives `d = floor((floor(e) + box/2) / box) =
//! floor(e/box + 1/2)`. With `box = 1` the backend adds half a position to every dot a table
//! reads (a clear constant), so `d = round(e)`, the same formula. (Measured on the 4-bit set:
//! the switched error has mean -0.44 ± 0.08 positions without the shift, i.e. `-1/2 + 0.06`.)
//! Sets whose switch rounds plainly ([`ModulusSwitch::Rounded`]: the 2^-64 classic sets round
//! each mask element, multi-bit bootstraps each group's subset sum) give `p = k·box +
//! round(e)`: there the backend subtracts half a position when `box >= 2` and adds nothing when
//! `box = 1`, which gives the same `d`.
//! So `d != 0` exactly when `|e| >= box / 2`:
//!
//! ```text
//! P(misread)      = erfc((box/2) / (σ√2))              ([`NeuronNoise::log2_p_misread`])
//! P(|d| >= k)     = erfc(((k - 1/2)·box) / (σ√2))
//! P(catastrophic) = ½ erfc(((m + 1/2)·box) / (σ√2))   (worst value: at the edge of the smaller
//!                                                    margin m; [`catastrophic_log2`])
//! ```
//!
//! # Two modes ([`FheMode`])
//! * [`FheMode::Exact`]: `P` = the circuit's widest value ([`needed_bits`]); every read and
//!   every output decryption must be exact (`d = 0`) with probability at least `1 - 2^target`:
//!   bit-identical to the clear backend. This is the classic model (`box / 2` is the tolerance
//!   `2N / (4·2^P)`, 64 positions for a 4-bit space on `N = 2048`). At `2^-40` with `σ ≈ 5`
//!   positions a read needs `box >= 128`: 4 bits on `N = 2048` (5 bits at `2^-33`), 6 bits on
//!   `N = 8192`.
//! * [`FheMode::Approximate`]: one bootstrap of the cheapest set whose `N` holds the space
//!   (`box >= 1`), accepting misreads (`d != 0` near a step of the table changes the output;
//!   elsewhere the staircase absorbs it). `P` = the smallest width `>= needed_bits` whose margins
//!   keep every bootstrap's catastrophic probability within the target (`needed_bits` or one
//!   more; a narrower space means a larger box, fewer misreads).
//!
//! In a checked circuit the noise is rarely the binding constraint for exact reads of narrow
//! values: a neuron's proved range `Σ|w_j|·(hi_j - lo_j) + 1` must fit the space, which bounds
//! Σw² over non-constant inputs; weights on constant values are not bounded by the range, but a
//! constant table's bootstrap output is an exact, noiseless zero, so the model over-estimates
//! them too.

use serde::{Deserialize, Serialize};

use crate::analyze::{CompileReport, NeuronReport};
use crate::error::{Error, Result};
use crate::ir::{IntGraph, NodeId, Op};

#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct ParamSet {
    /// The `tfhe::shortint::parameters` constant.
    pub name: &'static str,
    /// Message bits.
    pub message_bits: u32,
    /// Carry bits; message + carry is the precision a table reads.
    pub carry_bits: u32,
    /// LWE dimension `n` (after the keyswitch).
    pub lwe_dimension: usize,
    /// GLWE dimension `k`.
    pub glwe_dimension: usize,
    /// Polynomial size `N`; ciphertexts between bootstraps have dimension `k·N`.
    pub polynomial_size: usize,
    /// One keyswitch + bootstrap on one thread, milliseconds.
    pub pbs_ms_1_thread: f64,
    /// Time per bootstrap when two run at once on the two cores (amortized), milliseconds.
    pub pbs_ms_2_threads: f64,
    /// Server (evaluation) key in memory / uncompressed serialized, bytes.
    pub server_key_bytes: u64,
    /// Server key as saved (seeded, compressed), bytes.
    pub compressed_server_key_bytes: u64,
    /// Client (secret) key, bytes.
    pub client_key_bytes: u64,
    /// Key generation (client key + compressed server key + decompression), seconds.
    pub keygen_seconds: f64,
    /// `a`: noise variance at the bootstrap input with no dot product (keyswitch and modulus
    /// switch), in squared units of the modulus switch to `2N`.
    pub noise_base: f64,
    /// `b`: variance added per unit of Σw² (a bootstrap output's variance), same units.
    pub noise_per_w2: f64,
    /// The designed log2 failure probability per bootstrap (at the nominal noise).
    pub designed_log2_p_fail: f64,
    /// Whether [`choose_parameters`] may pick it (the 8-bit set needs 11 GB of keys and ten
    /// minutes of key generation here: listed for reference only).
    pub selectable: bool,
    /// The failure-probability family the set was designed for: -128 (`2M128`) or -64
    /// (`2M64`), log2 per bootstrap. (The set's own designed figure is
    /// [`designed_log2_p_fail`](Self::designed_log2_p_fail).)
    pub family_log2_p_fail: i32,
    /// Multi-bit grouping factor `g` of the bootstrap (1: classic bootstrap). A multi-bit
    /// bootstrap blind-rotates `n / g` groups of `g` mask elements at once, with `2^g - 1`
    /// GGSW ciphertexts per group (bigger keys, fewer sequential steps).
    pub grouping_factor: usize,
    /// How the bootstrap switches the modulus to `2N` (module docs, "The read").
    pub modulus_switch: ModulusSwitch,
    /// Threads `tfhe` runs for one bootstrap (1 for classic; multi-bit: its
    /// `get_thread_count_for_multi_bit_pbs`, 5 / 7 / 9 for `g` = 2 / 3 / 4, plus the thread that
    /// applies the external products).
    pub pbs_threads: usize,
    /// Share of one bootstrap's one-core time that its threads run in parallel (0 for a classic
    /// bootstrap); the rest is the sequential chain of external products. See
    /// [`ParamSet::layer_ms`].
    pub pbs_parallel_fraction: f64,
}

/// How a bootstrap of a set rounds the keyswitched ciphertext to `2N` positions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ModulusSwitch {
    /// tfhe's centred-mean switch (`CenteredMeanNoiseReduction`, the `V1_8` classic sets): it
    /// subtracts half a position from the body, so a read gives `k·box + floor(e)`.
    Centered,
    /// Plain rounding of the body and of each mask element (`ModulusSwitchType::Standard`, the
    /// `2M64` classic sets) or of each group's subset sums (multi-bit): `k·box + round(e)`.
    Rounded,
}

/// The parameter sets: every 128-bit-security `tfhe` 1.8.2 set of 2, 4 and 6 bits that sqnn
/// runs, in four families: classic bootstraps at 2^-128 (`V1_8_..._KS_PBS_TUNIFORM_2M128`, the
/// newest) and at 2^-64 (`V1_6_..._2M64`, the newest of that family in 1.8.2), multi-bit
/// bootstraps (`MULTI_BIT_GROUP_g`) at 2^-128 and at 2^-64. Order does not matter: the choice
/// ranks them by predicted latency ([`choose_parameters_with`]).
///
/// What is measured and what is modelled:
/// * Measured on this machine in one run (`tests/tfhe.rs::latency_report`, 2 cores, the other
///   engineer's jobs running: load average 5 to 10): [`pbs_ms_1_thread`](ParamSet::pbs_ms_1_thread)
///   (keyswitch + bootstrap with the measuring thread pinned to one core, so a multi-bit
///   bootstrap's own threads share it), [`pbs_ms_2_threads`](ParamSet::pbs_ms_2_threads) (two at
///   once), key generation, key sizes, and one bootstrap alone on both cores, from which
///   [`pbs_parallel_fraction`](ParamSet::pbs_parallel_fraction) `f = 2·(t1 - t_alone) / t1`.
///   The three classic 2^-128 sets keep their earlier quiet medians (the same run gave 21.3 /
///   148 ms on one core for 4 / 6 bits, within 4 % of them, but its first sets' 2-thread
///   figures were taken while the other core was busy; a second run was worse throughout).
///   Compare sets by their ratios; absolute figures move ±30 % with the load. The 6-bit
///   multi-bit set showed no gain from its threads here (`f` = 0), probably from the load.
/// * Measured with the secret key (`tests/tfhe.rs::noise_calibration`): `a` and `b` of every
///   selectable set, at the input of the bootstrap after the set's own modulus switch
///   (centred, rounded, or multi-bit subset sums; `measure::switched_position`). Rounded up.
///   The 2^-64 classic sets have about twice the `a` of the centred 2^-128 ones; multi-bit
///   bootstraps have a 4× larger output variance `b` at 4 bits, and the 2-bit multi-bit set is
///   designed for a noise 4× wider (`a` = 334: it reads 2 or 3 bits exactly, not 4).
/// * Modelled: how latency scales beyond 2 cores ([`ParamSet::layer_ms`]): classic bootstraps
///   as independent single-core tasks, a multi-bit bootstrap as a sequential part plus a
///   parallel part `f` over at most [`pbs_threads`](ParamSet::pbs_threads) threads (Amdahl,
///   with `f` measured on 2 cores). On 64 cores this predicts the 4-bit multi-bit set (g = 4)
///   about 0.8× the classic 4-bit set's single-bootstrap latency, the ratio tfhe-rs publishes
///   for a 192-core server (4.57 vs 5.64 ms).
/// * From `tfhe-facts.md`: the whole 8-bit entry (not selectable: 11 GB of keys).
///
/// The 6-bit multi-bit set (g = 2, N = 16384) works but is not selectable: its key generation
/// takes about 2 minutes here and its server key 2.9 GB in memory, and it is slower than the
/// classic 6-bit sets on this machine. Multi-bit sets of 6 bits with g = 3 or 4 (over 3 GB of
/// keys) are not listed.
pub const PARAMETER_SETS: &[ParamSet] = &[
    ParamSet {
        name: "V1_8_PARAM_MESSAGE_1_CARRY_1_KS_PBS_TUNIFORM_2M128",
        message_bits: 1,
        carry_bits: 1,
        lwe_dimension: 879,
        glwe_dimension: 4,
        polynomial_size: 512,
        pbs_ms_1_thread: 15.0,
        pbs_ms_2_threads: 7.8,
        server_key_bytes: 133_000_000,
        compressed_server_key_bytes: 18_100_000,
        client_key_bytes: 24_000,
        keygen_seconds: 1.2,
        noise_base: 21.0,
        noise_per_w2: 0.001,
        designed_log2_p_fail: -144.3,
        selectable: true,
        family_log2_p_fail: -128,
        grouping_factor: 1,
        modulus_switch: ModulusSwitch::Centered,
        pbs_threads: 1,
        pbs_parallel_fraction: 0.0,
    },
    ParamSet {
        name: "V1_8_PARAM_MESSAGE_2_CARRY_2_KS_PBS_TUNIFORM_2M128",
        message_bits: 2,
        carry_bits: 2,
        lwe_dimension: 918,
        glwe_dimension: 1,
        polynomial_size: 2048,
        pbs_ms_1_thread: 20.5,
        pbs_ms_2_threads: 10.3,
        server_key_bytes: 120_000_000,
        compressed_server_key_bytes: 30_200_000,
        client_key_bytes: 24_000,
        keygen_seconds: 1.1,
        noise_base: 24.0,
        noise_per_w2: 0.021,
        designed_log2_p_fail: -129.6,
        selectable: true,
        family_log2_p_fail: -128,
        grouping_factor: 1,
        modulus_switch: ModulusSwitch::Centered,
        pbs_threads: 1,
        pbs_parallel_fraction: 0.0,
    },
    ParamSet {
        name: "V1_8_PARAM_MESSAGE_3_CARRY_3_KS_PBS_TUNIFORM_2M128",
        message_bits: 3,
        carry_bits: 3,
        lwe_dimension: 1077,
        glwe_dimension: 1,
        polynomial_size: 8192,
        pbs_ms_1_thread: 152.0,
        pbs_ms_2_threads: 82.0,
        server_key_bytes: 918_000_000,
        compressed_server_key_bytes: 282_700_000,
        client_key_bytes: 75_000,
        keygen_seconds: 12.3,
        noise_base: 24.5,
        noise_per_w2: 0.000105,
        designed_log2_p_fail: -129.0,
        selectable: true,
        family_log2_p_fail: -128,
        grouping_factor: 1,
        modulus_switch: ModulusSwitch::Centered,
        pbs_threads: 1,
        pbs_parallel_fraction: 0.0,
    },
    ParamSet {
        name: "V1_8_PARAM_MESSAGE_4_CARRY_4_KS_PBS_TUNIFORM_2M128",
        message_bits: 4,
        carry_bits: 4,
        lwe_dimension: 1117,
        glwe_dimension: 1,
        polynomial_size: 65536,
        pbs_ms_1_thread: 3700.0,
        pbs_ms_2_threads: 1818.0,
        server_key_bytes: 11_100_000_000,
        compressed_server_key_bytes: 3_000_000_000,
        client_key_bytes: 540_000,
        keygen_seconds: 658.0,
        noise_base: 24.0,
        noise_per_w2: 0.0001,
        designed_log2_p_fail: -141.6,
        selectable: false,
        family_log2_p_fail: -128,
        grouping_factor: 1,
        modulus_switch: ModulusSwitch::Centered,
        pbs_threads: 1,
        pbs_parallel_fraction: 0.0,
    },
    ParamSet {
        name: "V1_6_PARAM_MESSAGE_1_CARRY_1_KS_PBS_TUNIFORM_2M64",
        message_bits: 1,
        carry_bits: 1,
        lwe_dimension: 839,
        glwe_dimension: 4,
        polynomial_size: 512,
        pbs_ms_1_thread: 16.8,
        pbs_ms_2_threads: 9.5,
        server_key_bytes: 127_200_000,
        compressed_server_key_bytes: 17_200_000,
        client_key_bytes: 23_600,
        keygen_seconds: 1.1,
        noise_base: 41.5,
        noise_per_w2: 0.0009,
        designed_log2_p_fail: -72.226,
        selectable: true,
        family_log2_p_fail: -64,
        grouping_factor: 1,
        modulus_switch: ModulusSwitch::Rounded,
        pbs_threads: 1,
        pbs_parallel_fraction: 0.0,
    },
    ParamSet {
        name: "V1_6_PARAM_MESSAGE_2_CARRY_2_KS_PBS_TUNIFORM_2M64",
        message_bits: 2,
        carry_bits: 2,
        lwe_dimension: 879,
        glwe_dimension: 1,
        polynomial_size: 2048,
        pbs_ms_1_thread: 22.5,
        pbs_ms_2_threads: 13.9,
        server_key_bytes: 129_700_000,
        compressed_server_key_bytes: 28_900_000,
        client_key_bytes: 23_900,
        keygen_seconds: 1.0,
        noise_base: 43.0,
        noise_per_w2: 0.020,
        designed_log2_p_fail: -72.178,
        selectable: true,
        family_log2_p_fail: -64,
        grouping_factor: 1,
        modulus_switch: ModulusSwitch::Rounded,
        pbs_threads: 1,
        pbs_parallel_fraction: 0.0,
    },
    ParamSet {
        name: "V1_6_PARAM_MESSAGE_3_CARRY_3_KS_PBS_TUNIFORM_2M64",
        message_bits: 3,
        carry_bits: 3,
        lwe_dimension: 998,
        glwe_dimension: 1,
        polynomial_size: 8192,
        pbs_ms_1_thread: 151.0,
        pbs_ms_2_threads: 93.1,
        server_key_bytes: 916_100_000,
        compressed_server_key_bytes: 262_000_000,
        client_key_bytes: 74_000,
        keygen_seconds: 13.0,
        noise_base: 47.0,
        noise_per_w2: 0.000115,
        designed_log2_p_fail: -64.454,
        selectable: true,
        family_log2_p_fail: -64,
        grouping_factor: 1,
        modulus_switch: ModulusSwitch::Rounded,
        pbs_threads: 1,
        pbs_parallel_fraction: 0.0,
    },
    ParamSet {
        name: "V1_8_PARAM_MULTI_BIT_GROUP_4_MESSAGE_1_CARRY_1_KS_PBS_TUNIFORM_2M128",
        message_bits: 1,
        carry_bits: 1,
        lwe_dimension: 760,
        glwe_dimension: 1,
        polynomial_size: 2048,
        pbs_ms_1_thread: 30.4,
        pbs_ms_2_threads: 16.7,
        server_key_bytes: 249_100_000,
        compressed_server_key_bytes: 99_700_000,
        client_key_bytes: 23_000,
        keygen_seconds: 2.6,
        noise_base: 335.0,
        noise_per_w2: 0.065,
        designed_log2_p_fail: -145.017,
        selectable: true,
        family_log2_p_fail: -128,
        grouping_factor: 4,
        modulus_switch: ModulusSwitch::Rounded,
        pbs_threads: 10,
        pbs_parallel_fraction: 0.87,
    },
    ParamSet {
        name: "V1_8_PARAM_MULTI_BIT_GROUP_4_MESSAGE_2_CARRY_2_KS_PBS_TUNIFORM_2M128",
        message_bits: 2,
        carry_bits: 2,
        lwe_dimension: 920,
        glwe_dimension: 1,
        polynomial_size: 2048,
        pbs_ms_1_thread: 36.1,
        pbs_ms_2_threads: 19.7,
        server_key_bytes: 316_600_000,
        compressed_server_key_bytes: 120_700_000,
        client_key_bytes: 24_200,
        keygen_seconds: 2.9,
        noise_base: 21.0,
        noise_per_w2: 0.086,
        designed_log2_p_fail: -134.345,
        selectable: true,
        family_log2_p_fail: -128,
        grouping_factor: 4,
        modulus_switch: ModulusSwitch::Rounded,
        pbs_threads: 10,
        pbs_parallel_fraction: 0.61,
    },
    ParamSet {
        name: "V1_6_PARAM_MULTI_BIT_GROUP_4_MESSAGE_2_CARRY_2_KS_PBS_TUNIFORM_2M64",
        message_bits: 2,
        carry_bits: 2,
        lwe_dimension: 840,
        glwe_dimension: 1,
        polynomial_size: 2048,
        pbs_ms_1_thread: 35.4,
        pbs_ms_2_threads: 17.8,
        server_key_bytes: 289_100_000,
        compressed_server_key_bytes: 110_200_000,
        client_key_bytes: 23_600,
        keygen_seconds: 2.7,
        noise_base: 35.0,
        noise_per_w2: 0.080,
        designed_log2_p_fail: -81.222,
        selectable: true,
        family_log2_p_fail: -64,
        grouping_factor: 4,
        modulus_switch: ModulusSwitch::Rounded,
        pbs_threads: 10,
        pbs_parallel_fraction: 0.82,
    },
    ParamSet {
        name: "V1_8_PARAM_MULTI_BIT_GROUP_2_MESSAGE_3_CARRY_3_KS_PBS_TUNIFORM_2M128",
        message_bits: 3,
        carry_bits: 3,
        lwe_dimension: 998,
        glwe_dimension: 1,
        polynomial_size: 16384,
        pbs_ms_1_thread: 368.5,
        pbs_ms_2_threads: 297.3,
        server_key_bytes: 2_878_600_000,
        compressed_server_key_bytes: 1_047_300_000,
        client_key_bytes: 139_500,
        keygen_seconds: 117.6,
        noise_base: 85.0,
        noise_per_w2: 0.050,
        designed_log2_p_fail: -135.674,
        selectable: false,
        family_log2_p_fail: -128,
        grouping_factor: 2,
        modulus_switch: ModulusSwitch::Rounded,
        pbs_threads: 6,
        pbs_parallel_fraction: 0.0,
    },
];

/// Looks a parameter set up by its `tfhe` constant name.
pub fn parameter_set(name: &str) -> Option<&'static ParamSet> {
    PARAMETER_SETS.iter().find(|p| p.name == name)
}

/// Failure probabilities are floored here (log2), far below anything meaningful.
pub const LOG2_P_FLOOR: f64 = -1000.0;

impl ParamSet {
    /// Bits a table reads with the set's own encoding: message + carry.
    pub fn precision(&self) -> u32 {
        self.message_bits + self.carry_bits
    }

    /// Number of values a ciphertext holds with the set's own encoding, `M = 2^precision`.
    pub fn message_space(&self) -> u64 {
        1 << self.precision()
    }

    /// Half a message box of the set's own encoding in positions: `2N / (4M)`.
    pub fn tolerance(&self) -> f64 {
        (2 * self.polynomial_size) as f64 / (4 * self.message_space()) as f64
    }

    /// `log2 N`: the widest space one bootstrap of this set reads (one position per value).
    pub fn max_space_bits(&self) -> u32 {
        self.polynomial_size.trailing_zeros()
    }

    /// Positions per value of a `space_bits`-bit space, `box = N / 2^P` (below 1 when the space
    /// is wider than [`max_space_bits`](Self::max_space_bits)).
    pub fn box_positions(&self, space_bits: u32) -> f64 {
        self.polynomial_size as f64 / 2f64.powi(space_bits.min(1023) as i32)
    }

    /// Short label, e.g. `4-bit`.
    pub fn label(&self) -> String {
        format!("{}-bit", self.precision())
    }

    /// Standard deviation of the error at the input of the bootstrap that follows a dot
    /// product of this Σw² (positions).
    pub fn bootstrap_std(&self, sum_w2: u64) -> f64 {
        (self.noise_base + self.noise_per_w2 * sum_w2 as f64).sqrt()
    }

    /// Standard deviation of an output accumulator's error when the client decrypts it.
    pub fn decrypt_std(&self, sum_w2: u64) -> f64 {
        (self.noise_per_w2 * sum_w2 as f64).sqrt()
    }

    /// log2 of the probability that an error of standard deviation `std` leaves the set's own
    /// tolerance: `log2 erfc(t / (std·√2))`, floored at [`LOG2_P_FLOOR`].
    pub fn log2_p_fail_of_std(&self, std: f64) -> f64 {
        log2_erfc_ratio(self.tolerance(), std)
    }

    /// Predicted log2 failure probability of one bootstrap after a dot product of this Σw²,
    /// with the set's own encoding.
    pub fn bootstrap_log2_p_fail(&self, sum_w2: u64) -> f64 {
        self.log2_p_fail_of_std(self.bootstrap_std(sum_w2))
    }

    /// Predicted log2 probability that decrypting an output accumulator of this Σw² is wrong,
    /// with the set's own encoding.
    pub fn decrypt_log2_p_fail(&self, sum_w2: u64) -> f64 {
        self.log2_p_fail_of_std(self.decrypt_std(sum_w2))
    }

    /// The largest Σw² a neuron followed by a bootstrap may have for a failure probability of
    /// at most `2^target_log2` with the set's own encoding (0 when even Σw² = 0 misses it).
    pub fn max_sum_w2(&self, target_log2: f64) -> u64 {
        self.max_sum_w2_where(|w2| self.bootstrap_log2_p_fail(w2) <= target_log2)
    }

    /// The largest Σw² whose bootstrap reads a `space_bits`-bit space exactly with probability
    /// at least `1 - 2^target_log2` (0 when even Σw² = 0 misses it).
    pub fn max_sum_w2_exact(&self, space_bits: u32, target_log2: f64) -> u64 {
        let b = self.box_positions(space_bits);
        self.max_sum_w2_where(|w2| misread_log2(self.bootstrap_std(w2), b) <= target_log2)
    }

    /// The largest Σw² whose bootstrap stays within a margin of `margin` values of a
    /// `space_bits`-bit space with probability at least `1 - 2^target_log2`.
    pub fn max_sum_w2_catastrophic(&self, space_bits: u32, margin: u64, target_log2: f64) -> u64 {
        let b = self.box_positions(space_bits);
        self.max_sum_w2_where(|w2| {
            catastrophic_log2(self.bootstrap_std(w2), b, margin) <= target_log2
        })
    }

    /// Largest Σw² with `ok(Σw²)`, for a predicate that holds up to some Σw² and not beyond
    /// (0 when `ok(0)` fails, `u64::MAX` when it holds at 2^60).
    fn max_sum_w2_where(&self, ok: impl Fn(u64) -> bool) -> u64 {
        if !ok(0) {
            return 0;
        }
        let (mut lo, mut hi) = (0u64, 1u64 << 60);
        if ok(hi) {
            return u64::MAX;
        }
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2;
            if ok(mid) {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        lo
    }

    /// Per-bootstrap latency with `cores` cores sharing many bootstraps (ideal scaling of the
    /// one-core figure: the throughput floor, whatever the family).
    pub fn pbs_ms(&self, cores: usize) -> f64 {
        self.pbs_ms_1_thread / cores.max(1) as f64
    }

    /// `"classic"` or `"multi-bit g=G"`, and the failure family, e.g. `multi-bit g=4, 2^-128`.
    pub fn family(&self) -> String {
        let kind = if self.grouping_factor > 1 {
            format!("multi-bit g={}", self.grouping_factor)
        } else {
            "classic".to_string()
        };
        format!("{kind}, 2^{}", self.family_log2_p_fail)
    }

    /// One bootstrap alone on `cores` cores (ms): its sequential part plus its parallel part
    /// spread over `min(cores, pbs_threads)` threads (a classic bootstrap has no parallel part).
    pub fn pbs_alone_ms(&self, cores: usize) -> f64 {
        self.layer_ms(1, cores)
    }

    /// The predicted time of one layer of `m` independent bootstraps on `cores` cores (ms).
    ///
    /// Model (the figures it uses are measured; the scaling beyond this machine's 2 cores is
    /// modelled): one bootstrap costs `t1` = [`pbs_ms_1_thread`](Self::pbs_ms_1_thread) of one
    /// core's work, of which a share `f` = [`pbs_parallel_fraction`](Self::pbs_parallel_fraction)
    /// runs on up to [`pbs_threads`](Self::pbs_threads) threads (a multi-bit bootstrap prepares
    /// the `2^g - 1` rotated keys of each group on its producer threads; its chain of `n / g`
    /// external products is sequential) and the rest is sequential. The layer takes the larger
    /// of the total work over the cores, `m·t1 / cores`, and the critical path of one bootstrap
    /// given `cores / m` cores, `t1·(1 - f) + t1·f / min(max(cores / m, 1), pbs_threads)`.
    /// Classic bootstraps (`f = 0`) thus take `max(m / cores, 1)·t1`; a multi-bit bootstrap
    /// wins when the layers are narrower than the cores and its parallel share is large.
    pub fn layer_ms(&self, m: usize, cores: usize) -> f64 {
        if m == 0 {
            return 0.0;
        }
        let c = cores.max(1) as f64;
        let t1 = self.pbs_ms_1_thread;
        let f = self.pbs_parallel_fraction.clamp(0.0, 1.0);
        let per = (c / m as f64).clamp(1.0, self.pbs_threads.max(1) as f64);
        let critical = t1 * (1.0 - f) + t1 * f / per;
        (m as f64 * t1 / c).max(critical)
    }

    /// The predicted evaluation time of a circuit whose layers hold these numbers of
    /// bootstraps (layers run one after another), on `cores` cores (ms).
    pub fn circuit_ms(&self, pbs_per_layer: &[usize], cores: usize) -> f64 {
        pbs_per_layer.iter().map(|&m| self.layer_ms(m, cores)).sum()
    }
}

/// Bootstraps per layer of a report (one layer of all of them when the report has no layer
/// table that accounts for them).
pub fn pbs_per_layer(report: &CompileReport) -> Vec<usize> {
    let per: Vec<usize> = report.layers.iter().map(|l| l.pbs).collect();
    if per.iter().sum::<usize>() == report.pbs_count && !per.is_empty() {
        per
    } else {
        vec![report.pbs_count]
    }
}

/// `log2 erfc(dist / (std·√2))`: the probability that a centred Gaussian error of standard
/// deviation `std` reaches `|e| >= dist`; floored at [`LOG2_P_FLOOR`], 0 (certain) when
/// `dist <= 0`.
pub fn log2_erfc_ratio(dist: f64, std: f64) -> f64 {
    if dist <= 0.0 {
        return 0.0;
    }
    if std <= 0.0 || std.is_nan() {
        return LOG2_P_FLOOR;
    }
    let z = dist / (std * std::f64::consts::SQRT_2);
    (ln_erfc(z) / std::f64::consts::LN_2).clamp(LOG2_P_FLOOR, 0.0)
}

/// log2 probability that a read with error `std` (positions) in boxes of `box_positions` is off
/// by at least one unit: `erfc((box/2) / (std·√2))`.
pub fn misread_log2(std: f64, box_positions: f64) -> f64 {
    log2_erfc_ratio(box_positions / 2.0, std)
}

/// log2 probability that a read is off by at least `k >= 1` units in either direction:
/// `erfc(((k - 1/2)·box) / (std·√2))`.
pub fn offset_at_least_log2(std: f64, box_positions: f64, k: u64) -> f64 {
    log2_erfc_ratio((k as f64 - 0.5) * box_positions, std)
}

/// log2 probability that a read of the value at the edge of a margin of `margin` values goes
/// past it (one side): `½ erfc(((margin + 1/2)·box) / (std·√2))`.
pub fn catastrophic_log2(std: f64, box_positions: f64, margin: u64) -> f64 {
    (log2_erfc_ratio((margin as f64 + 0.5) * box_positions, std) - 1.0).max(LOG2_P_FLOOR)
}

/// The margins of an interval `[lo, hi]` centred in a `space_bits`-bit space: `(below, above)`
/// values, `below = floor((2^P - W) / 2)`, `W = hi - lo + 1`. `None` when it does not fit.
/// A node of that interval holds `v - lo + below`.
pub fn margins(lo: i64, hi: i64, space_bits: u32) -> Option<(u64, u64)> {
    if space_bits >= 63 || hi < lo {
        return None;
    }
    let w = u64::try_from(i128::from(hi) - i128::from(lo) + 1).ok()?;
    let space = 1u64 << space_bits;
    let free = space.checked_sub(w)?;
    Some((free / 2, free - free / 2))
}

/// Low bits of a `space_bits`-bit space that one bootstrap of `set` cannot tell apart:
/// `P - log2 N` when the space is wider than the polynomial (a box below one position), else 0.
/// Every table must drop at least that many bits ([`aligned_margins`]).
pub fn read_align_bits(set: &ParamSet, space_bits: u32) -> u32 {
    space_bits.saturating_sub(set.max_space_bits())
}

/// [`margins`] for a dot read by a table in a space wider than the polynomial: the margin below
/// is moved down (or up) by less than `2^align_bits` so that it is congruent to `phase` (=
/// `lo + offset` of the table) modulo `2^align_bits`; then every bucket of the table starts on
/// a position of the modulus switch, and a bootstrap that reads `2^align_bits` values per
/// position reads the same bucket as the clear table. `None` if the interval does not fit.
///
/// ```
/// use sqnn::fhe::aligned_margins;
/// let (below, above) = aligned_margins(-100, 300, 10, 2, 3).unwrap();
/// assert_eq!(below % 4, 3);
/// assert_eq!(below + 401 + above, 1 << 10);
/// ```
pub fn aligned_margins(
    lo: i64,
    hi: i64,
    space_bits: u32,
    align_bits: u32,
    phase: i64,
) -> Option<(u64, u64)> {
    let (below, above) = margins(lo, hi, space_bits)?;
    if align_bits == 0 {
        return Some((below, above));
    }
    let free = below.checked_add(above)?;
    let size = 1i128 << align_bits.min(62);
    let b = i128::from(below);
    let mut m = b - (b - i128::from(phase)).rem_euclid(size);
    if m < 0 {
        m += size;
    }
    let m = u64::try_from(m).ok()?;
    (m <= free).then(|| (m, free - m))
}

/// The read offset `d = floor(z·σ_units + 1/2)` for a standard normal draw `z`: what a clear
/// simulation adds to a value before clamping it into its interval (module docs).
pub fn read_offset(sigma_units: f64, z: f64) -> i64 {
    let d = (z * sigma_units + 0.5).floor();
    if d.is_nan() {
        0
    } else {
        d.clamp(-((1u64 << 53) as f64), (1u64 << 53) as f64) as i64
    }
}

/// `ln(erfc(x))` for `x >= 0`, accurate to about 1e-12 relative, without underflow for any `x`.
pub fn ln_erfc(x: f64) -> f64 {
    if x.is_nan() {
        return f64::NAN;
    }
    if x < 0.0 {
        return (2.0 - ln_erfc(-x).exp()).ln();
    }
    let ln_sqrt_pi = 0.5 * std::f64::consts::PI.ln();
    if x < 2.5 {
        // erf(x) = 2/√π · e^{-x²} · Σ 2^n x^{2n+1} / (1·3·…·(2n+1)): positive terms only.
        let mut term = x;
        let mut sum = x;
        let x2 = x * x;
        let mut n = 0.0;
        while term > sum * 1e-17 {
            n += 1.0;
            term *= 2.0 * x2 / (2.0 * n + 1.0);
            sum += term;
        }
        let erf = (2.0 / std::f64::consts::PI.sqrt()) * (-x2).exp() * sum;
        (1.0 - erf).ln()
    } else {
        // Continued fraction: erfc(x) = e^{-x²}/√π · 1/(x + (1/2)/(x + 1/(x + (3/2)/(x + …)))).
        let mut k = x;
        for n in (1..=80).rev() {
            k = x + (n as f64 / 2.0) / k;
        }
        -x * x - ln_sqrt_pi - k.ln()
    }
}

/// `log2(2^a + 2^b)` without overflow or underflow.
pub fn log2_add(a: f64, b: f64) -> f64 {
    let (hi, lo) = if a >= b { (a, b) } else { (b, a) };
    if lo == f64::NEG_INFINITY {
        return hi;
    }
    hi + (1.0 + (lo - hi).exp2()).log2()
}

/// How a circuit's tables read their accumulators (module docs).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FheMode {
    /// Every read exact with probability `>= 1 - 2^target` per bootstrap: bit-identical to the
    /// clear backend.
    #[default]
    Exact,
    /// One bootstrap of the cheapest set whose polynomial holds the space; reads may be off by a
    /// few units (predicted per neuron); only a read past the margin must meet the target.
    Approximate,
}

impl FheMode {
    /// `"exact"` or `"approximate"`.
    pub fn name(&self) -> &'static str {
        match self {
            FheMode::Exact => "exact",
            FheMode::Approximate => "approximate",
        }
    }
}

impl std::str::FromStr for FheMode {
    type Err = Error;
    fn from_str(s: &str) -> Result<FheMode> {
        match s {
            "exact" => Ok(FheMode::Exact),
            "approximate" | "approx" => Ok(FheMode::Approximate),
            other => Err(Error::param(
                "mode",
                format!("{other:?} is not a TFHE read mode: give exact or approximate"),
            )),
        }
    }
}

impl std::fmt::Display for FheMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// One noisy operation of the circuit: a hidden neuron's bootstrap (the table's read of its
/// dot), or an output's decryption.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NeuronNoise {
    /// The dot node (a table reads it, or it is an output).
    pub node: usize,
    /// Exact rounding: bootstraps that clear the table's dropped bits one by one before the
    /// table reads the rest ([`FhePlan::exact_rounding`]); 0 otherwise.
    #[serde(default)]
    pub extractions: u32,
    /// Linear layer.
    pub layer: usize,
    /// Neuron index within the layer.
    pub neuron: usize,
    /// Σ w² of its integer weights.
    pub sum_w2: u64,
    /// Whether a bootstrap (table) follows; `false` for output accumulators (decrypted).
    pub bootstrap: bool,
    /// Predicted standard deviation of the error, in positions (modulus-switch units, `2N`).
    pub std: f64,
    /// The same in accumulator units: `std / box`; a read is off by `floor(z·σ_units + 1/2)`.
    #[serde(default)]
    pub sigma_units: f64,
    /// Values between the dot's interval and the edge of the space, on its narrower side.
    #[serde(default)]
    pub margin: u64,
    /// Predicted log2 probability that the read (or decryption) is off by at least one unit.
    #[serde(default)]
    pub log2_p_misread: f64,
    /// Predicted log2 probability that the read goes past the margin, for the worst value
    /// (a bootstrap then returns a wrong, negated entry; a decryption wraps).
    #[serde(default)]
    pub log2_p_catastrophic: f64,
    /// What the plan's mode counts as a failure: the misread (exact) or the catastrophic read
    /// (approximate), log2.
    pub log2_p_fail: f64,
}

/// The TFHE plan for one circuit: parameter set, encoding, predicted errors and cost.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FhePlan {
    /// The `tfhe::shortint::parameters` constant name.
    pub parameter_set: String,
    /// Precision of the set's own encoding (message + carry bits).
    pub precision_bits: u32,
    /// How tables read their accumulators.
    #[serde(default)]
    pub mode: FheMode,
    /// `P`: every ciphertext of the circuit holds a value of `[0, 2^P)` (plus a padding bit),
    /// encoded as `Δ_P = 2^63 / 2^P`.
    #[serde(default)]
    pub space_bits: u32,
    /// Polynomial size `N` of the set.
    #[serde(default)]
    pub polynomial_size: usize,
    /// Positions (of `2N`) per value: `N / 2^P`.
    #[serde(default)]
    pub box_positions: f64,
    /// Precision the circuit needs: widest accumulator, input or table value.
    pub needed_bits: u32,
    /// The failure target per bootstrap (log2).
    pub target_log2_p_fail: f64,
    /// Worst predicted failure (as the mode counts it) of one bootstrap or output decryption.
    pub worst_log2_p_fail: f64,
    /// Where the worst is.
    pub worst: Option<NeuronNoise>,
    /// Predicted probability that some bootstrap or decryption of one sample fails (as the mode
    /// counts it): log2 of the sum over the circuit.
    pub total_log2_p_fail: f64,
    /// Expected number of table reads off by at least one unit, per sample.
    #[serde(default)]
    pub expected_misreads_per_sample: f64,
    /// Expected number of output decryptions off by at least one unit, per sample.
    #[serde(default)]
    pub expected_output_misreads_per_sample: f64,
    /// Largest `σ_units` of a table read.
    #[serde(default)]
    pub worst_sigma_units: f64,
    /// Exact rounding: every table that drops low bits first clears them with one 1-bit
    /// bootstrap per bit (each reads one bit, with a quarter of the torus as tolerance), then
    /// reads the cleared accumulator, whose values are `2^round_bits` apart (see
    /// [`crate::tfhe`]). Bit-identical to the clear backend; costs `round_bits` extra
    /// bootstraps per table.
    #[serde(default)]
    pub exact_rounding: bool,
    /// Bootstraps per sample (extractions included).
    pub pbs_count: usize,
    /// Cores the latency figures assume.
    pub cores: usize,
    /// One bootstrap on one thread (ms).
    pub pbs_ms_1_thread: f64,
    /// Predicted evaluation latency per sample on `cores` cores (ms): the layers one after
    /// another, each [`ParamSet::layer_ms`] (at least `bootstraps × pbs_ms_1_thread ÷ cores`).
    pub latency_ms_per_sample: f64,
    /// The same on one core (ms).
    pub latency_ms_per_sample_1_core: f64,
    /// Server key in memory (bytes).
    pub server_key_bytes: u64,
    /// Server key as saved, compressed (bytes).
    pub compressed_server_key_bytes: u64,
    /// Client key (bytes).
    pub client_key_bytes: u64,
    /// Expected key generation time (s).
    pub keygen_seconds: f64,
    /// Largest Σw² a hidden neuron may have at the target with this set and encoding (exact:
    /// for an exact read; approximate: to stay within the narrowest margin).
    pub max_sum_w2: u64,
    /// Every dot product's predicted errors, in node order.
    pub neurons: Vec<NeuronNoise>,
    /// The set's family ([`ParamSet::family`]), e.g. `classic, 2^-128`.
    #[serde(default)]
    pub family: String,
    /// Every selectable set the choice considered, cheapest predicted latency first (empty for
    /// a plan on a given set).
    #[serde(default)]
    pub candidates: Vec<Candidate>,
}

/// One parameter set the choice considered.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Candidate {
    /// The `tfhe` constant name.
    pub parameter_set: String,
    /// [`ParamSet::family`].
    pub family: String,
    /// Message + carry bits.
    pub precision_bits: u32,
    /// Predicted latency per sample on the plan's cores (ms), [`ParamSet::circuit_ms`].
    pub latency_ms_per_sample: f64,
    /// Server key in memory (bytes).
    pub server_key_bytes: u64,
    /// The space its plan would use, when it holds the circuit at the target.
    pub space_bits: Option<u32>,
    /// Its plan's worst failure (log2), when it holds the circuit at the target.
    pub worst_log2_p_fail: Option<f64>,
    /// Why it qualifies or not, e.g. `meets 2^-40` or `reads at most 5 bits exactly`.
    pub note: String,
}

impl FhePlan {
    /// The parameter set named by the plan.
    pub fn set(&self) -> Result<&'static ParamSet> {
        parameter_set(&self.parameter_set).ok_or_else(|| {
            Error::Backend(format!(
                "unknown parameter set {:?}: this sqnn knows {}",
                self.parameter_set,
                PARAMETER_SETS
                    .iter()
                    .map(|p| p.name)
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        })
    }
}

/// Precision a circuit needs (bits): every dot's range (output dots included), every input and
/// table value (which fit `n_a_bits`). At least 1.
pub fn needed_bits(report: &CompileReport) -> u32 {
    report
        .neurons
        .iter()
        .map(|n| n.range_bits.max(n.table_bits))
        .chain([report.n_a_bits, report.max_table_bits, 1])
        .max()
        .unwrap_or(1)
}

fn neuron_noise(
    set: &ParamSet,
    space_bits: u32,
    mode: FheMode,
    extract: bool,
    n: &NeuronReport,
) -> NeuronNoise {
    let bootstrap = n.table_len > 0;
    if extract && bootstrap && n.round_bits > 0 && mode == FheMode::Exact {
        return extraction_noise(set, space_bits, n);
    }
    let std = if bootstrap {
        set.bootstrap_std(n.sum_w2)
    } else {
        set.decrypt_std(n.sum_w2)
    };
    let bx = set.box_positions(space_bits);
    let align = read_align_bits(set, space_bits);
    let fits = if bootstrap {
        // A table must drop the bits the bootstrap cannot tell apart.
        (n.round_bits >= align)
            .then(|| {
                aligned_margins(
                    n.lo,
                    n.hi,
                    space_bits,
                    align,
                    n.lo.wrapping_add(n.table_offset),
                )
            })
            .flatten()
    } else {
        margins(n.lo, n.hi, space_bits)
    };
    let margin = fits.map_or(0, |(a, b)| a.min(b));
    let log2_p_misread = misread_log2(std, bx);
    let log2_p_catastrophic = match fits {
        None => 0.0,
        Some(_) if bootstrap => catastrophic_log2(std, bx, margin),
        Some(_) => {
            // Decryption wraps only past half the padded space around the interval's centre.
            let w = (n.hi - n.lo + 1) as f64;
            let dist = 2f64.powi(space_bits as i32) - (w / 2.0).ceil() + 0.5;
            (log2_erfc_ratio(dist * bx, std) - 1.0).max(LOG2_P_FLOOR)
        }
    };
    NeuronNoise {
        node: n.node,
        extractions: 0,
        layer: n.layer,
        neuron: n.neuron,
        sum_w2: n.sum_w2,
        bootstrap,
        std,
        sigma_units: if bx > 0.0 { std / bx } else { f64::INFINITY },
        margin,
        log2_p_misread,
        log2_p_catastrophic,
        log2_p_fail: match mode {
            FheMode::Exact => log2_p_misread,
            FheMode::Approximate => log2_p_catastrophic,
        },
    }
}

/// Exact rounding of one table ([`FhePlan::exact_rounding`]): `r = round_bits` extractions,
/// then the table's read. Extraction `b` multiplies the partly cleared accumulator (noise
/// variance `b_set·(Σw² + b)` in positions: its dot plus `b` extraction outputs) by
/// `2^(P - b)`, which puts bit `b` on the padding bit: it fails if the amplified noise plus the
/// keyswitch and modulus switch reach a quarter of the torus (`N/2` positions). The table then
/// reads a value `2^r` apart from its neighbours, centred in its bucket: tolerance
/// `2^(r-1)·box`, noise `a + b_set·(Σw² + r)`. Failure = any of these misreads.
fn extraction_noise(set: &ParamSet, space_bits: u32, n: &NeuronReport) -> NeuronNoise {
    let r = n.round_bits;
    let bx = set.box_positions(space_bits);
    let quarter = set.polynomial_size as f64 / 2.0;
    let mut fail = f64::NEG_INFINITY;
    for b in 0..r {
        let dot_var = set.noise_per_w2 * (n.sum_w2 + u64::from(b)) as f64;
        let amp = 4f64.powi(space_bits.saturating_sub(b) as i32);
        let std = (set.noise_base + dot_var * amp).sqrt();
        fail = log2_add(fail, log2_erfc_ratio(quarter, std).max(LOG2_P_FLOOR));
    }
    let std = set.bootstrap_std(n.sum_w2 + u64::from(r));
    let tol = 2f64.powi(r as i32 - 1) * bx;
    let read = log2_erfc_ratio(tol, std).max(LOG2_P_FLOOR);
    // The cleared bits must be the index's: the margin below is aligned to the table's phase
    // modulo 2^r; a space too tight for that cannot hold the encoding at all.
    let aligned = aligned_margins(n.lo, n.hi, space_bits, r, n.lo.wrapping_add(n.table_offset));
    let fail = match aligned {
        Some(_) => log2_add(fail, read).max(LOG2_P_FLOOR),
        None => 0.0,
    };
    let margin = aligned.map_or(0, |(a, b)| a.min(b));
    NeuronNoise {
        node: n.node,
        extractions: r,
        layer: n.layer,
        neuron: n.neuron,
        sum_w2: n.sum_w2,
        bootstrap: true,
        std,
        sigma_units: if bx > 0.0 { std / bx } else { f64::INFINITY },
        margin,
        log2_p_misread: fail,
        log2_p_catastrophic: fail,
        log2_p_fail: fail,
    }
}

/// The exact-mode plan of `report` on `set` with `P = needed_bits` (no checks).
pub fn plan_for(report: &CompileReport, set: &ParamSet, target: f64, cores: usize) -> FhePlan {
    plan_on(
        report,
        set,
        needed_bits(report),
        FheMode::Exact,
        target,
        cores,
    )
}

/// The plan of `report` on `set` with a `space_bits`-bit space, its errors counted as `mode`
/// counts them (no checks: the plan may miss the target or not fit the set).
pub fn plan_on(
    report: &CompileReport,
    set: &ParamSet,
    space_bits: u32,
    mode: FheMode,
    target: f64,
    cores: usize,
) -> FhePlan {
    plan_on_with(report, set, space_bits, mode, false, target, cores)
}

/// [`plan_on`], with [exact rounding](FhePlan::exact_rounding) when `exact_rounding` (exact
/// mode only).
pub fn plan_on_with(
    report: &CompileReport,
    set: &ParamSet,
    space_bits: u32,
    mode: FheMode,
    exact_rounding: bool,
    target: f64,
    cores: usize,
) -> FhePlan {
    let extract = exact_rounding && mode == FheMode::Exact;
    let neurons: Vec<NeuronNoise> = report
        .neurons
        .iter()
        .map(|n| neuron_noise(set, space_bits, mode, extract, n))
        .collect();
    let pbs_count = report.pbs_count
        + neurons
            .iter()
            .map(|n| n.extractions as usize)
            .sum::<usize>();
    let worst = neurons
        .iter()
        .max_by(|a, b| a.log2_p_fail.total_cmp(&b.log2_p_fail))
        .cloned();
    let total = neurons
        .iter()
        .fold(f64::NEG_INFINITY, |acc, n| log2_add(acc, n.log2_p_fail));
    let expected = |bootstrap: bool| -> f64 {
        neurons
            .iter()
            .filter(|n| n.bootstrap == bootstrap)
            .map(|n| n.log2_p_misread.exp2())
            .sum()
    };
    let min_margin = neurons
        .iter()
        .filter(|n| n.bootstrap)
        .map(|n| n.margin)
        .min();
    let max_sum_w2 = match (mode, min_margin) {
        (FheMode::Approximate, Some(m)) => set.max_sum_w2_catastrophic(space_bits, m, target),
        _ => set.max_sum_w2_exact(space_bits, target),
    };
    let cores = cores.max(1);
    let lat1 = pbs_count as f64 * set.pbs_ms_1_thread;
    // Exact rounding's extractions run in their tables' layers (their sequential depth within
    // a neuron is not modelled: with more tables than cores it hides behind the others).
    let mut layers = pbs_per_layer(report);
    for n in neurons.iter().filter(|n| n.extractions > 0) {
        let slot = if layers.len() == 1 { 0 } else { n.layer };
        if let Some(l) = layers.get_mut(slot) {
            *l += n.extractions as usize;
        }
    }
    let latency = set.circuit_ms(&layers, cores);
    FhePlan {
        parameter_set: set.name.to_string(),
        precision_bits: set.precision(),
        mode,
        space_bits,
        polynomial_size: set.polynomial_size,
        box_positions: set.box_positions(space_bits),
        needed_bits: needed_bits(report),
        target_log2_p_fail: target,
        worst_log2_p_fail: worst.as_ref().map_or(LOG2_P_FLOOR, |w| w.log2_p_fail),
        worst,
        total_log2_p_fail: total.max(LOG2_P_FLOOR),
        expected_misreads_per_sample: expected(true),
        expected_output_misreads_per_sample: expected(false),
        worst_sigma_units: neurons
            .iter()
            .filter(|n| n.bootstrap)
            .map(|n| n.sigma_units)
            .fold(0.0, f64::max),
        exact_rounding: extract,
        pbs_count,
        cores,
        pbs_ms_1_thread: set.pbs_ms_1_thread,
        latency_ms_per_sample: latency,
        latency_ms_per_sample_1_core: lat1,
        server_key_bytes: set.server_key_bytes,
        compressed_server_key_bytes: set.compressed_server_key_bytes,
        client_key_bytes: set.client_key_bytes,
        keygen_seconds: set.keygen_seconds,
        max_sum_w2,
        neurons,
        family: set.family(),
        candidates: Vec::new(),
    }
}

fn check_target(target: f64) -> Result<()> {
    if !(LOG2_P_FLOOR..0.0).contains(&target) {
        return Err(Error::param(
            "p_error",
            format!(
                "{target} is not a log2 probability in [{LOG2_P_FLOOR}, 0): give e.g. -40 for 2^-40"
            ),
        ));
    }
    Ok(())
}

/// The plan of `report` on `set` in `mode`, with the mode's space width: exact,
/// `P = needed_bits`; approximate, the narrowest `P >= needed_bits` (at most `log2 N`) whose
/// margins keep every bootstrap's catastrophic probability within the target.
///
/// Errors when the space does not fit the set's polynomial (`P > log2 N`, or `P >= log2 N`
/// for exact reads, which need half a box of at least one position) or the mode's failures
/// miss `2^target_log2_p_fail`; the message names the neurons and what to change.
pub fn plan_with(
    report: &CompileReport,
    set: &ParamSet,
    mode: FheMode,
    target_log2_p_fail: f64,
    cores: usize,
) -> Result<FhePlan> {
    let target = target_log2_p_fail;
    check_target(target)?;
    let needed = needed_bits(report);
    let top = match mode {
        FheMode::Exact => set.max_space_bits().saturating_sub(1),
        FheMode::Approximate => approximate_top(set, report),
    };
    if needed > top {
        return Err(too_wide(report, needed, top, mode, target));
    }
    let widths = match mode {
        FheMode::Exact => needed..=needed,
        FheMode::Approximate => needed..=top,
    };
    let mut last = None;
    for p in widths {
        let plan = plan_on(report, set, p, mode, target, cores);
        if plan.worst_log2_p_fail <= target {
            return Ok(plan);
        }
        last = Some(plan);
    }
    // Exact reads of the whole accumulator miss the target: clear the dropped bits first.
    let rounds = report
        .neurons
        .iter()
        .any(|n| n.table_len > 0 && n.round_bits > 0);
    if mode == FheMode::Exact && rounds {
        // The narrowest space that holds the aligned encoding and meets the target.
        for p in needed..=top {
            let plan = plan_on_with(report, set, p, mode, true, target, cores);
            if plan.worst_log2_p_fail <= target {
                return Ok(plan);
            }
        }
    }
    Err(too_noisy(&last.expect("at least one width"), target))
}

/// [`choose_parameters_with`] in [`FheMode::Exact`]: the behaviour the CLI relies on.
pub fn choose_parameters(
    report: &CompileReport,
    target_log2_p_fail: f64,
    cores: usize,
) -> Result<FhePlan> {
    choose_parameters_with(report, target_log2_p_fail, cores, FheMode::Exact)
}

/// The cheapest selectable parameter set (and its space width, [`plan_with`]) that meets the
/// mode's constraints at `2^target_log2_p_fail` per bootstrap.
///
/// Every selectable set of the catalogue is a candidate: classic and multi-bit bootstraps,
/// 2^-128 and 2^-64 families. Cheapest = lowest predicted latency per sample on `cores` cores
/// ([`ParamSet::circuit_ms`]: the circuit's layers of bootstraps one after another), then
/// smallest keys. The plan lists every candidate with its predicted latency
/// ([`FhePlan::candidates`]). When no set qualifies, an [`Error::Backend`] names the
/// accumulators that are too wide or the neurons whose Σw² is too large, and what to change.
pub fn choose_parameters_with(
    report: &CompileReport,
    target_log2_p_fail: f64,
    cores: usize,
    mode: FheMode,
) -> Result<FhePlan> {
    choose_parameters_among(report, target_log2_p_fail, cores, mode, &|_| true)
}

/// [`choose_parameters_with`] among the selectable sets that `allow` accepts (e.g. one family:
/// `|p| p.grouping_factor == 1 && p.family_log2_p_fail == -128` for the classic 2^-128 sets).
pub fn choose_parameters_among(
    report: &CompileReport,
    target_log2_p_fail: f64,
    cores: usize,
    mode: FheMode,
    allow: &dyn Fn(&ParamSet) -> bool,
) -> Result<FhePlan> {
    let target = target_log2_p_fail;
    check_target(target)?;
    let needed = needed_bits(report);
    let (plans, candidates) = ranked_plans(report, mode, target, cores, allow);
    if let Some(plan) = plans.into_iter().next() {
        return Ok(FhePlan { candidates, ..plan });
    }
    let sets: Vec<&ParamSet> = PARAMETER_SETS
        .iter()
        .filter(|p| p.selectable && allow(p))
        .collect();
    // Nothing fits: too wide for every set, or too noisy even for the most tolerant one.
    let widest = sets
        .iter()
        .map(|s| match mode {
            FheMode::Approximate => approximate_top(s, report),
            FheMode::Exact => capacity(s, mode, target, report.pbs_count > 0),
        })
        .max()
        .unwrap_or(0);
    if needed > widest {
        return Err(too_wide(report, needed, widest, mode, target));
    }
    let best = sets
        .iter()
        .filter(|s| needed <= approximate_top(s, report))
        .map(|s| {
            let top = match mode {
                FheMode::Exact => needed,
                FheMode::Approximate => approximate_top(s, report),
            };
            (needed..=top)
                .map(|p| plan_on(report, s, p, mode, target, cores))
                .min_by(|a, b| a.worst_log2_p_fail.total_cmp(&b.worst_log2_p_fail))
                .expect("non-empty")
        })
        .min_by(|a, b| a.worst_log2_p_fail.total_cmp(&b.worst_log2_p_fail))
        .expect("some set holds the width");
    Err(too_noisy(&best, target))
}

/// The widest space one bootstrap of `set` reads in approximate mode: `log2 N` plus the fewest
/// low bits any table of the circuit drops (a box of `2^-s` positions per value is fine when
/// every table's buckets span whole positions).
fn approximate_top(set: &ParamSet, report: &CompileReport) -> u32 {
    let min_round = report
        .neurons
        .iter()
        .filter(|n| n.table_len > 0)
        .map(|n| n.round_bits)
        .min()
        .unwrap_or(0);
    set.max_space_bits() + min_round.min(20)
}

/// Every selectable set's plan that meets the target, cheapest first (predicted latency, then
/// server key size), and every selectable set as a [`Candidate`] in the same order (those that
/// qualify first).
fn ranked_plans(
    report: &CompileReport,
    mode: FheMode,
    target: f64,
    cores: usize,
    allow: &dyn Fn(&ParamSet) -> bool,
) -> (Vec<FhePlan>, Vec<Candidate>) {
    let layers = pbs_per_layer(report);
    let needed = needed_bits(report);
    let mut rows: Vec<(Option<FhePlan>, Candidate)> = PARAMETER_SETS
        .iter()
        .filter(|p| p.selectable && allow(p))
        .map(|s| {
            let plan = plan_with(report, s, mode, target, cores).ok();
            let top = match mode {
                FheMode::Exact => capacity(s, mode, target, report.pbs_count > 0),
                FheMode::Approximate => approximate_top(s, report),
            };
            let note = match &plan {
                Some(_) => format!("meets 2^{target}"),
                None if needed > top => match mode {
                    FheMode::Exact => format!("reads at most {top} bits exactly"),
                    FheMode::Approximate => format!("reads at most {top} bits"),
                },
                None => format!("misses 2^{target}"),
            };
            let c = Candidate {
                parameter_set: s.name.to_string(),
                family: s.family(),
                precision_bits: s.precision(),
                latency_ms_per_sample: plan
                    .as_ref()
                    .map_or_else(|| s.circuit_ms(&layers, cores), |p| p.latency_ms_per_sample),
                server_key_bytes: s.server_key_bytes,
                space_bits: plan.as_ref().map(|p| p.space_bits),
                worst_log2_p_fail: plan.as_ref().map(|p| p.worst_log2_p_fail),
                note,
            };
            (plan, c)
        })
        .collect();
    rows.sort_by(|(pa, a), (pb, b)| {
        pb.is_some()
            .cmp(&pa.is_some())
            .then(a.latency_ms_per_sample.total_cmp(&b.latency_ms_per_sample))
            .then(a.server_key_bytes.cmp(&b.server_key_bytes))
    });
    let candidates = rows.iter().map(|(_, c)| c.clone()).collect();
    let plans = rows.into_iter().filter_map(|(p, _)| p).collect();
    (plans, candidates)
}

/// The widest space a set reads in `mode` at the target for a neuron without weights: exact,
/// the largest `P` whose read at Σw² = 0 is exact at the target; approximate, `log2 N`.
fn capacity(set: &ParamSet, mode: FheMode, target: f64, bootstraps: bool) -> u32 {
    match mode {
        FheMode::Approximate => set.max_space_bits(),
        FheMode::Exact if !bootstraps => set.max_space_bits().saturating_sub(1),
        FheMode::Exact => (1..set.max_space_bits())
            .rev()
            .find(|&p| misread_log2(set.bootstrap_std(0), set.box_positions(p)) <= target)
            .unwrap_or(0),
    }
}

/// Per neuron, `σ_units` of its read: for a dot followed by a table, the table's read of the
/// dot's value; for an output dot, its decryption. Keyed by the dot's node id (the table that
/// reads dot `d` is the unique `Lut` whose input is `d`). A simulation draws
/// `d = floor(z·σ_units + 1/2)` ([`read_offset`]) and reads `clamp(v + d, lo, hi)` through the
/// table, or decrypts `v + d` for an output.
pub fn read_sigma_units(plan: &FhePlan, report: &CompileReport) -> Vec<(NodeId, f64)> {
    match plan.set() {
        Ok(set) => report
            .neurons
            .iter()
            .map(|n| {
                let s = neuron_noise(set, plan.space_bits, plan.mode, plan.exact_rounding, n);
                (n.node, s.sigma_units)
            })
            .collect(),
        Err(_) => plan
            .neurons
            .iter()
            .map(|n| (n.node, n.sigma_units))
            .collect(),
    }
}

/// `σ_units` per node of `graph`, indexed by node id, for a clear simulation: at a `Lut` node
/// the read of its input dot, at an output `Dot` its decryption, 0 elsewhere (inputs, hidden
/// dots, nodes the plan does not cover). `plan` must come from `graph`'s report.
///
/// The offset `d = floor(z·σ_units + 1/2)` is in accumulator units: a table that drops
/// `round_bits` low bits reads `table[(clamp(v + d, lo, hi) + offset) >> round_bits]` (the
/// encrypted test vector reads the whole accumulator), which is not the same as moving the
/// table index by `d` when `round_bits > 0`.
pub fn sigma_units_by_node(plan: &FhePlan, graph: &IntGraph) -> Vec<f64> {
    let mut by_dot = vec![None; graph.nodes.len()];
    for n in &plan.neurons {
        if let Some(slot) = by_dot.get_mut(n.node) {
            *slot = Some(n.sigma_units);
        }
    }
    let mut sigma = vec![0.0; graph.nodes.len()];
    for (id, node) in graph.nodes.iter().enumerate() {
        if let Op::Lut { input, .. } = node.op {
            sigma[id] = by_dot.get(input).copied().flatten().unwrap_or(0.0);
        }
    }
    for &o in &graph.outputs {
        if let Some(s) = by_dot.get(o).copied().flatten() {
            sigma[o] = s;
        }
    }
    sigma
}

fn too_wide(report: &CompileReport, needed: u32, widest: u32, mode: FheMode, target: f64) -> Error {
    let mut blame: Vec<&NeuronReport> = report
        .neurons
        .iter()
        .filter(|n| n.range_bits.max(n.table_bits) > widest)
        .collect();
    blame.sort_by_key(|n| std::cmp::Reverse(n.range_bits));
    let mut msg = match mode {
        FheMode::Exact => format!(
            "the circuit needs {needed}-bit ciphertexts, but exact table reads at 2^{target} per \
             bootstrap hold at most {widest} bits with the practical 128-bit parameter sets here \
             (a wider space shrinks each value's box below the bootstrap noise; the 8-bit set \
             needs 11 GB of keys and about 1 s per bootstrap)"
        ),
        FheMode::Approximate => format!(
            "the circuit needs {needed}-bit ciphertexts, but one bootstrap of the practical \
             128-bit parameter sets here reads at most {widest} bits (one position of its \
             polynomial per value)"
        ),
    };
    if blame.is_empty() {
        msg.push_str(&format!(
            "; its inputs and tables use n_a_bits = {} bits",
            report.n_a_bits
        ));
    } else {
        msg.push_str(&format!(
            "; {} accumulator(s) are too wide: {}",
            blame.len(),
            list(blame.iter().map(|n| format!(
                "layer {} neuron {} ([{}, {}], {} bits)",
                n.layer, n.neuron, n.lo, n.hi, n.range_bits
            )))
        ));
    }
    msg.push_str(&format!(
        ". To fix: retrain with --n-accum-bits {widest} or less (per-neuron pruning then keeps \
         every accumulator within it), prune more, or use fewer weight/activation bits"
    ));
    if mode == FheMode::Exact {
        msg.push_str(
            "; or compile with --max-table-bits 4 for exact rounding (each table first clears \
             its dropped bits with 1-bit bootstraps on the 6-bit set: bit-exact, several times \
             the bootstraps); or accept approximate reads (one bootstrap reads up to 11 bits \
             on the 4-bit set, off by a few units near a table's steps)",
        );
    }
    Error::Backend(msg)
}

fn too_noisy(best: &FhePlan, target: f64) -> Error {
    let mut blame: Vec<&NeuronNoise> = best
        .neurons
        .iter()
        .filter(|n| n.log2_p_fail > target)
        .collect();
    blame.sort_by(|a, b| b.log2_p_fail.total_cmp(&a.log2_p_fail));
    let relax = best.worst_log2_p_fail.ceil();
    let what = match best.mode {
        FheMode::Exact => "an inexact read",
        FheMode::Approximate => "a read past the margin",
    };
    Error::Backend(format!(
        "no 128-bit parameter set meets the failure target 2^{target} per bootstrap ({what}, \
         {} mode): even with the most tolerant set that holds the circuit's {}-bit values ({}, \
         {}-bit space, {} positions per value), {} neuron(s) exceed it: {}. To fix: prune more or \
         train with fewer weight bits so that every hidden neuron has Σw² <= {} (its \
         dot-product noise grows as sqrt(Σw²)), or relax the target (--p-error {relax})",
        best.mode,
        best.needed_bits,
        best.parameter_set,
        best.space_bits,
        best.box_positions,
        blame.len(),
        list(blame.iter().map(|n| format!(
            "layer {} neuron {} (Σw² {}, {}: 2^{:.1})",
            n.layer,
            n.neuron,
            n.sum_w2,
            if n.bootstrap {
                "bootstrap"
            } else {
                "output decryption"
            },
            n.log2_p_fail
        ))),
        best.max_sum_w2,
    ))
}

/// At most 8 items, then "and N more".
fn list(items: impl Iterator<Item = String>) -> String {
    let all: Vec<String> = items.collect();
    let mut s = all.iter().take(8).cloned().collect::<Vec<_>>().join("; ");
    if all.len() > 8 {
        s.push_str(&format!("; and {} more", all.len() - 8));
    }
    s
}

fn bytes(b: u64) -> String {
    let b = b as f64;
    if b >= 1e9 {
        format!("{:.1} GB", b / 1e9)
    } else if b >= 1e6 {
        format!("{:.0} MB", b / 1e6)
    } else {
        format!("{:.0} KB", b / 1e3)
    }
}

fn ms(v: f64) -> String {
    if v >= 1000.0 {
        format!("{:.2} s", v / 1000.0)
    } else {
        format!("{v:.1} ms")
    }
}

/// The plan as a text block for the compile-check report.
pub fn render_plan(plan: &FhePlan) -> String {
    let mut s = String::new();
    s.push_str(&format!(
        "TFHE plan ({} reads, target 2^{} per bootstrap):\n",
        plan.mode, plan.target_log2_p_fail
    ));
    let family = match (plan.family.is_empty(), plan.set()) {
        (false, _) => plan.family.clone(),
        (true, Ok(set)) => set.family(),
        (true, Err(_)) => "unknown family".to_string(),
    };
    s.push_str(&format!(
        "  parameters   {} ({}-bit set, {family}, N = {})\n",
        plan.parameter_set, plan.precision_bits, plan.polynomial_size
    ));
    s.push_str(&format!(
        "  encoding     {}-bit ciphertext space (the circuit needs {}), {} positions per value\n",
        plan.space_bits, plan.needed_bits, plan.box_positions
    ));
    s.push_str(&format!(
        "  bootstraps   {} per sample, {} each on one thread\n",
        plan.pbs_count,
        ms(plan.pbs_ms_1_thread)
    ));
    s.push_str(&format!(
        "  latency      {} per sample on {} core(s) (predicted: layer by layer, the larger of \
         bootstraps × latency ÷ cores and one bootstrap's critical path), {} on one core\n",
        ms(plan.latency_ms_per_sample),
        plan.cores,
        ms(plan.latency_ms_per_sample_1_core)
    ));
    let kind = match plan.mode {
        FheMode::Exact => "failure ",
        FheMode::Approximate => "past margin",
    };
    match &plan.worst {
        Some(w) => {
            s.push_str(&format!(
            "  {kind:<12} worst 2^{:.1} ({} of layer {} neuron {}, Σw² {}); whole sample 2^{:.1}\n",
            w.log2_p_fail,
            if w.bootstrap { "bootstrap" } else { "output decryption" },
            w.layer,
            w.neuron,
            w.sum_w2,
            plan.total_log2_p_fail
        ))
        }
        None => s.push_str(&format!("  {kind:<12} no noisy operation\n")),
    }
    if plan.mode == FheMode::Approximate {
        s.push_str(&format!(
            "  misreads     σ up to {:.2} units per table read; expected {:.2} table reads and {:.2} \
             outputs off by >= 1 unit per sample\n",
            plan.worst_sigma_units,
            plan.expected_misreads_per_sample,
            plan.expected_output_misreads_per_sample
        ));
    }
    if plan.exact_rounding {
        let tables = plan.neurons.iter().filter(|n| n.extractions > 0).count();
        let extra: u32 = plan.neurons.iter().map(|n| n.extractions).sum();
        s.push_str(&format!(
            "  rounding     exact: {tables} tables clear their dropped bits first ({extra} 1-bit \
             bootstraps), then read bit-exactly\n"
        ));
    } else {
        s.push_str(&format!(
            "  noise budget Σw² <= {} per hidden neuron at the target\n",
            plan.max_sum_w2
        ));
    }
    s.push_str(&format!(
        "  keys         server {} ({} compressed on disk), client {}, generation about {:.0} s\n",
        bytes(plan.server_key_bytes),
        bytes(plan.compressed_server_key_bytes),
        bytes(plan.client_key_bytes),
        plan.keygen_seconds.max(1.0)
    ));
    if !plan.candidates.is_empty() {
        s.push_str(&format!(
            "  candidates   predicted latency per sample on {} core(s), cheapest first:\n",
            plan.cores
        ));
        for c in &plan.candidates {
            let mark = if c.parameter_set == plan.parameter_set {
                "*"
            } else {
                " "
            };
            s.push_str(&format!(
                "    {mark} {:>9}  {}-bit {:<22} {:>8} keys  {} ({})\n",
                ms(c.latency_ms_per_sample),
                c.precision_bits,
                c.family,
                bytes(c.server_key_bytes),
                c.parameter_set,
                c.note
            ));
        }
    }
    s
}

/// Approximate mode with an accuracy guard: the cheapest plan (as
/// [`choose_parameters_with`] ranks sets: predicted latency, then key size) whose worst read noise is at most `max_sigma_units`
/// accumulator units. Without the guard the cheapest set can be one whose reads are off by
/// several units (the 2-bit set reads a 9-bit space with σ ≈ 4.6 units, the 4-bit set with
/// σ ≈ 1.3). `f64::INFINITY` disables the guard.
pub fn choose_approximate(
    report: &CompileReport,
    target_log2_p_fail: f64,
    cores: usize,
    max_sigma_units: f64,
) -> Result<FhePlan> {
    check_target(target_log2_p_fail)?;
    if max_sigma_units.is_nan() || max_sigma_units <= 0.0 {
        return Err(Error::param(
            "max_sigma",
            format!("{max_sigma_units} must be a positive number of accumulator units"),
        ));
    }
    let (plans, mut candidates) = ranked_plans(
        report,
        FheMode::Approximate,
        target_log2_p_fail,
        cores,
        &|_| true,
    );
    // The qualifying candidates come first, in the order of `plans`.
    for (c, p) in candidates.iter_mut().zip(&plans) {
        if p.worst_sigma_units > max_sigma_units {
            c.note = format!(
                "σ {:.2} units > max σ {max_sigma_units}",
                p.worst_sigma_units
            );
        }
    }
    if let Some(p) = plans
        .iter()
        .find(|p| p.worst_sigma_units <= max_sigma_units)
    {
        return Ok(FhePlan {
            candidates,
            ..p.clone()
        });
    }
    match plans
        .iter()
        .min_by(|a, b| a.worst_sigma_units.total_cmp(&b.worst_sigma_units))
    {
        Some(best) => Err(Error::Backend(format!(
            "no parameter set reads this circuit's tables with noise within {max_sigma_units} \
             units (the best, {}, has σ = {:.2} units): raise --max-sigma, prune more (smaller \
             Σw²), or use fewer accumulator bits",
            best.parameter_set, best.worst_sigma_units
        ))),
        None => choose_parameters_with(report, target_log2_p_fail, cores, FheMode::Approximate),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analyze::{LayerReport, NeuronReport};

    fn neuron(
        layer: usize,
        neuron: usize,
        range_bits: u32,
        sum_w2: u64,
        table: bool,
    ) -> NeuronReport {
        let count = 1i64 << range_bits;
        NeuronReport {
            node: 100 * layer + neuron,
            layer,
            neuron,
            fan_in: 4,
            lo: -3,
            hi: -3 + count - 1,
            range_bits,
            signed_bits: range_bits + 1,
            sum_w2,
            table_len: if table { count as usize } else { 0 },
            table_bits: if table { range_bits } else { 0 },
            round_bits: 0,
            table_offset: 0,
            over_budget: false,
        }
    }

    /// The old mechanics tests pin the choice to the classic 2^-128 sets (whose figures they
    /// quote); `the_choice_considers_every_family_and_lists_them` covers the whole catalogue.
    fn classic128(p: &ParamSet) -> bool {
        p.grouping_factor == 1 && p.family_log2_p_fail == -128
    }

    fn classic(r: &CompileReport, target: f64, cores: usize) -> Result<FhePlan> {
        choose_parameters_among(r, target, cores, FheMode::Exact, &classic128)
    }

    fn classic_with(
        r: &CompileReport,
        target: f64,
        cores: usize,
        mode: FheMode,
    ) -> Result<FhePlan> {
        choose_parameters_among(r, target, cores, mode, &classic128)
    }

    /// The report with a layer table (bootstraps per layer), as `analyze` makes it.
    fn with_layers(mut r: CompileReport) -> CompileReport {
        let depth = r.neurons.iter().map(|n| n.layer + 1).max().unwrap_or(0);
        r.layers = (0..depth)
            .map(|l| LayerReport {
                layer: l,
                neurons: r.neurons.iter().filter(|n| n.layer == l).count(),
                fan_in_max: 4,
                range_bits_max: 0,
                signed_bits_max: 0,
                pbs: r
                    .neurons
                    .iter()
                    .filter(|n| n.layer == l && n.table_len > 0)
                    .count(),
                table_bits_max: 0,
                round_bits_min: 0,
                round_bits_max: 0,
                sum_w2_max: 0,
                range_bits_hist: vec![],
                over_budget: 0,
            })
            .collect();
        r
    }

    fn report(neurons: Vec<NeuronReport>, n_a_bits: u32) -> CompileReport {
        let pbs = neurons.iter().filter(|n| n.table_len > 0).count();
        CompileReport {
            name: "t".into(),
            ok: true,
            n_accum_bits: 8,
            n_w_bits: 2,
            n_a_bits,
            pruning: "per-neuron".into(),
            rounding: String::new(),
            n_features: 4,
            max_range_bits: neurons.iter().map(|n| n.range_bits).max().unwrap_or(0),
            max_signed_bits: 0,
            max_table_bits: neurons.iter().map(|n| n.table_bits).max().unwrap_or(0),
            pbs_count: pbs,
            layers: Vec::<LayerReport>::new(),
            neurons_over_budget: vec![],
            neurons,
        }
    }

    #[test]
    fn erfc_matches_known_values() {
        // erfc(0.5) = 0.4795001221869535, erfc(2) = 0.004677734981047266,
        // erfc(3) = 2.209049699858544e-05, erfc(10) = 2.088487583762545e-45.
        for (x, v) in [
            (0.5, 0.4795001221869535f64),
            (2.0, 0.004677734981047266),
            (1.0, 0.15729920705028513),
            (3.0, 2.209049699858544e-05),
            (10.0, 2.088487583762545e-45),
        ] {
            let got = ln_erfc(x);
            let rel = 1e-9;
            assert!(
                ((got - v.ln()) / v.ln()).abs() < rel,
                "ln erfc({x}) = {got}, expected {}",
                v.ln()
            );
        }
        // Continuity across the switch between series and continued fraction.
        assert!((ln_erfc(2.5 - 1e-9) - ln_erfc(2.5)).abs() < 1e-6);
        assert!(ln_erfc(100.0).is_finite());
    }

    #[test]
    fn four_bit_model_matches_the_measured_facts() {
        // tfhe-facts.md: std 4.8 at L2 = 5, 17.6 at L2 = 120; log2 p -131 and -12.
        let s = parameter_set("V1_8_PARAM_MESSAGE_2_CARRY_2_KS_PBS_TUNIFORM_2M128").unwrap();
        assert_eq!(s.tolerance(), 64.0);
        assert!(
            (s.bootstrap_std(25) - 4.8).abs() < 0.3,
            "{}",
            s.bootstrap_std(25)
        );
        assert!((s.bootstrap_std(14400) - 17.6).abs() < 1.0);
        assert!((s.bootstrap_log2_p_fail(14400) + 12.0).abs() < 2.0);
        assert!(s.bootstrap_log2_p_fail(25) < -100.0);
        // Monotone in Σw².
        let mut last = f64::NEG_INFINITY;
        for w2 in [0u64, 10, 100, 1000, 5000, 20000] {
            let p = s.bootstrap_log2_p_fail(w2);
            assert!(p >= last);
            last = p;
        }
        // The budget is consistent with the prediction.
        let m = s.max_sum_w2(-40.0);
        assert!(s.bootstrap_log2_p_fail(m) <= -40.0);
        assert!(s.bootstrap_log2_p_fail(m + 1) > -40.0);
    }

    #[test]
    fn precision_covers_accumulators_outputs_and_activations() {
        // A 5-bit output accumulator forces the 6-bit set even with 2-bit tables.
        let r = report(vec![neuron(0, 0, 2, 4, true), neuron(1, 0, 5, 4, false)], 2);
        assert_eq!(needed_bits(&r), 5);
        let p = choose_parameters(&r, -40.0, 2).unwrap();
        assert_eq!(p.precision_bits, 6);
        assert_eq!(p.needed_bits, 5);
        // Everything within 2 bits: the cheapest set, 2 or 4 bits.
        let r = report(vec![neuron(0, 0, 2, 4, true), neuron(1, 0, 2, 2, false)], 2);
        let p = choose_parameters(&r, -40.0, 2).unwrap();
        assert!(p.precision_bits >= 2 && p.precision_bits <= 4);
        // Activations wider than the accumulators still count.
        let r = report(vec![neuron(0, 0, 2, 4, true)], 3);
        assert!(choose_parameters(&r, -40.0, 2).unwrap().precision_bits >= 3);
        // Latency arithmetic.
        let r = report(vec![neuron(0, 0, 4, 4, true), neuron(0, 1, 4, 4, true)], 2);
        let p = choose_parameters(&r, -40.0, 2).unwrap();
        assert_eq!(p.pbs_count, 2);
        assert!((p.latency_ms_per_sample - p.pbs_ms_1_thread).abs() < 1e-9);
        assert!((p.latency_ms_per_sample_1_core - 2.0 * p.pbs_ms_1_thread).abs() < 1e-9);
        assert_eq!(p.neurons.len(), 2);
        assert!(p.total_log2_p_fail >= p.worst_log2_p_fail);
        assert!(p.total_log2_p_fail <= p.worst_log2_p_fail + 1.0 + 1e-9);
        assert!(render_plan(&p).contains(&p.parameter_set));
        let _ = serde_json::to_string(&p).unwrap();
    }

    /// A 9-bit circuit whose tables drop 4 bits: no set reads it exactly in one bootstrap, but
    /// exact rounding on the 6-bit set does, at 5 bootstraps per table; without rounding
    /// tables the exact choice fails and says how to get exact rounding.
    #[test]
    fn exact_mode_falls_back_to_exact_rounding() {
        let rounded = |layer, idx, table| NeuronReport {
            round_bits: if table { 4 } else { 0 },
            table_len: if table { 32 } else { 0 },
            table_bits: if table { 5 } else { 0 },
            ..neuron(layer, idx, 9, 60, table)
        };
        let r = report(
            vec![
                rounded(0, 0, true),
                rounded(0, 1, true),
                rounded(1, 0, false),
            ],
            4,
        );
        let p = choose_parameters(&r, -40.0, 2).unwrap();
        assert!(p.exact_rounding);
        assert_eq!(p.precision_bits, 6);
        assert_eq!(p.pbs_count, 2 * 5);
        assert!(p.worst_log2_p_fail <= -40.0);
        assert!(render_plan(&p).contains("exact: 2 tables clear"));
        let plain = report(
            vec![neuron(0, 0, 9, 60, true), neuron(1, 0, 9, 60, false)],
            4,
        );
        let e = choose_parameters(&plain, -40.0, 2).unwrap_err().to_string();
        assert!(e.contains("--max-table-bits"), "{e}");
    }

    #[test]
    fn too_wide_names_the_accumulators() {
        let r = report(vec![neuron(0, 0, 4, 4, true), neuron(1, 3, 9, 4, false)], 2);
        let e = choose_parameters(&r, -40.0, 2).unwrap_err().to_string();
        assert!(e.contains("9-bit"), "{e}");
        assert!(e.contains("layer 1 neuron 3"), "{e}");
        assert!(e.contains("--n-accum-bits"), "{e}");
    }

    #[test]
    fn noise_target_moves_the_choice_and_blames_neurons() {
        let four = parameter_set("V1_8_PARAM_MESSAGE_2_CARRY_2_KS_PBS_TUNIFORM_2M128").unwrap();
        let six = parameter_set("V1_8_PARAM_MESSAGE_3_CARRY_3_KS_PBS_TUNIFORM_2M128").unwrap();
        let m4 = four.max_sum_w2(-40.0);
        let m6 = six.max_sum_w2(-40.0);
        assert!(m6 > m4, "the 6-bit set is more tolerant ({m6} vs {m4})");
        // A 4-bit circuit whose noisiest neuron is just over the 4-bit budget moves to 6 bits.
        let r = report(
            vec![
                neuron(0, 0, 4, 4, true),
                neuron(0, 1, 4, m4 + 1, true),
                neuron(1, 0, 4, 4, false),
            ],
            2,
        );
        let p = classic(&r, -40.0, 2).unwrap();
        assert_eq!(p.precision_bits, 6);
        // ... and stays on 4 bits with a relaxed target.
        let p = classic(&r, -30.0, 2).unwrap();
        assert!(p.precision_bits <= 4);
        assert!(p.worst_log2_p_fail <= -30.0);
        // Beyond every set: an error that names the neuron, its Σw² and the fixes. The most
        // tolerant exact read of a 4-bit space is the 6-bit set's (N = 8192: 512 positions per
        // value).
        let m6_4 = six.max_sum_w2_exact(4, -40.0);
        assert!(m6_4 > m6);
        let r = report(
            vec![neuron(0, 0, 4, 4, true), neuron(2, 7, 4, m6_4 * 4, true)],
            2,
        );
        let e = classic(&r, -40.0, 2).unwrap_err().to_string();
        assert!(e.contains("layer 2 neuron 7"), "{e}");
        assert!(e.contains(&format!("Σw² {}", m6_4 * 4)), "{e}");
        assert!(e.contains("prune more"), "{e}");
        assert!(e.contains("--p-error"), "{e}");
        assert!(!e.contains("layer 0 neuron 0"), "{e}");
    }

    #[test]
    fn bad_targets_are_parameter_errors() {
        let r = report(vec![neuron(0, 0, 2, 4, true)], 2);
        for t in [0.0, 1.0, f64::NAN, f64::NEG_INFINITY, -5000.0] {
            assert!(matches!(
                choose_parameters(&r, t, 2),
                Err(Error::InvalidParameter {
                    name: "p_error",
                    ..
                })
            ));
        }
    }

    #[test]
    fn catalogue_is_consistent() {
        for p in PARAMETER_SETS {
            assert_eq!(parameter_set(p.name), Some(p));
            assert!(p.noise_base > 0.0 && p.noise_per_w2 > 0.0);
            assert!(p.bootstrap_log2_p_fail(0) < -60.0, "{}", p.name);
        }
        assert!((log2_add(-10.0, -10.0) + 9.0).abs() < 1e-12);
        assert_eq!(log2_add(f64::NEG_INFINITY, -3.0), -3.0);
    }

    #[test]
    fn catalogue_families_and_latency_model_are_consistent() {
        for p in PARAMETER_SETS {
            assert!(matches!(p.family_log2_p_fail, -128 | -64), "{}", p.name);
            assert!(
                p.designed_log2_p_fail <= f64::from(p.family_log2_p_fail) + 0.5,
                "{}",
                p.name
            );
            assert!(p.name.ends_with(&format!("_2M{}", -p.family_log2_p_fail)));
            if p.grouping_factor > 1 {
                assert!(p
                    .name
                    .contains(&format!("MULTI_BIT_GROUP_{}", p.grouping_factor)));
                assert_eq!(p.lwe_dimension % p.grouping_factor, 0, "{}", p.name);
                assert_eq!(p.modulus_switch, ModulusSwitch::Rounded, "{}", p.name);
                assert!(p.pbs_threads > 1, "{}", p.name);
                assert!(p.family().starts_with("multi-bit"));
            } else {
                assert!(!p.name.contains("MULTI_BIT"));
                assert_eq!(
                    (p.pbs_threads, p.pbs_parallel_fraction),
                    (1, 0.0),
                    "{}",
                    p.name
                );
                assert!(p.family().starts_with("classic"));
            }
            assert!((0.0..1.0).contains(&p.pbs_parallel_fraction), "{}", p.name);
            assert!(p.pbs_ms_2_threads > 0.0 && p.pbs_ms_2_threads <= p.pbs_ms_1_thread * 1.2);
            // One bootstrap on one core is the measured figure; more cores never slow a layer
            // down, and a layer never beats its total work spread over the cores.
            assert!((p.layer_ms(1, 1) - p.pbs_ms_1_thread).abs() < 1e-9);
            for m in [1usize, 2, 3, 7, 40] {
                let mut last = f64::INFINITY;
                for c in [1usize, 2, 3, 4, 8, 16, 64] {
                    let t = p.layer_ms(m, c);
                    assert!(t <= last + 1e-9, "{} m {m} c {c}", p.name);
                    assert!(t >= m as f64 * p.pbs_ms_1_thread / c as f64 - 1e-9);
                    last = t;
                }
            }
            assert_eq!(
                p.circuit_ms(&[2, 0, 3], 2),
                p.layer_ms(2, 2) + p.layer_ms(3, 2)
            );
        }
        // The catalogue holds every family the issue names, selectable.
        for (g_multi, fam) in [(false, -128), (false, -64), (true, -128), (true, -64)] {
            assert!(
                PARAMETER_SETS.iter().any(|p| p.selectable
                    && (p.grouping_factor > 1) == g_multi
                    && p.family_log2_p_fail == fam),
                "multi-bit {g_multi}, 2^{fam}"
            );
        }
        // Classic: one bootstrap never uses a second core.
        let s4 = parameter_set(SET4).unwrap();
        assert_eq!(s4.layer_ms(1, 64), s4.pbs_ms_1_thread);
        assert_eq!(s4.layer_ms(4, 2), 2.0 * s4.pbs_ms_1_thread);
    }

    #[test]
    fn the_choice_considers_every_family_and_lists_them() {
        // A 4-bit circuit with one bootstrap per layer (narrower than the cores).
        let r = with_layers(report(
            vec![
                neuron(0, 0, 4, 4, true),
                neuron(1, 0, 4, 4, true),
                neuron(2, 0, 4, 4, false),
            ],
            2,
        ));
        assert_eq!(pbs_per_layer(&r), vec![1, 1, 0]);
        let selectable = PARAMETER_SETS.iter().filter(|p| p.selectable).count();
        for cores in [1usize, 2, 64] {
            let p = choose_parameters(&r, -40.0, cores).unwrap();
            assert_eq!(p.candidates.len(), selectable);
            let families: std::collections::BTreeSet<&str> =
                p.candidates.iter().map(|c| c.family.as_str()).collect();
            assert!(families.len() >= 4, "{families:?}");
            // The chosen set is the qualifying candidate of least predicted latency.
            let ok: Vec<&Candidate> = p
                .candidates
                .iter()
                .filter(|c| c.space_bits.is_some())
                .collect();
            assert_eq!(ok[0].parameter_set, p.parameter_set);
            for c in &ok {
                assert!(p.latency_ms_per_sample <= c.latency_ms_per_sample + 1e-9);
            }
            let set = p.set().unwrap();
            assert_eq!(p.family, set.family());
            assert!(
                (p.latency_ms_per_sample - set.circuit_ms(&[1, 1, 0], cores)).abs() < 1e-9,
                "two layers of one bootstrap"
            );
            // Qualifying first, then those that miss, each with a reason.
            let first_miss = p.candidates.iter().position(|c| c.space_bits.is_none());
            if let Some(i) = first_miss {
                assert!(p.candidates[i..].iter().all(|c| c.space_bits.is_none()));
            }
            assert!(p.candidates.iter().all(|c| !c.note.is_empty()));
            let text = render_plan(&p);
            assert!(
                text.contains("candidates") && text.contains(&p.family),
                "{text}"
            );
            for c in &p.candidates {
                assert!(text.contains(&c.parameter_set), "{text}");
            }
            let back: FhePlan = serde_json::from_str(&serde_json::to_string(&p).unwrap()).unwrap();
            assert_eq!(back, p);
        }
        // On many cores the model may prefer a multi-bit bootstrap (narrow layers leave cores
        // idle for a classic one): the choice follows the model, whichever family that is.
        let p64 = choose_parameters(&r, -40.0, 64).unwrap();
        let best = |multi: bool| {
            p64.candidates
                .iter()
                .filter(|c| c.space_bits.is_some())
                .filter(|c| (parameter_set(&c.parameter_set).unwrap().grouping_factor > 1) == multi)
                .map(|c| c.latency_ms_per_sample)
                .fold(f64::INFINITY, f64::min)
        };
        let chosen_multi = p64.set().unwrap().grouping_factor > 1;
        assert_eq!(
            chosen_multi,
            best(true) < best(false),
            "{}",
            render_plan(&p64)
        );
        // A plan deserialized from before candidates existed still renders.
        let mut old = p64.clone();
        old.candidates.clear();
        old.family.clear();
        assert!(render_plan(&old).contains(&p64.family));
    }

    const SET2: &str = "V1_8_PARAM_MESSAGE_1_CARRY_1_KS_PBS_TUNIFORM_2M128";
    const SET4: &str = "V1_8_PARAM_MESSAGE_2_CARRY_2_KS_PBS_TUNIFORM_2M128";
    const SET6: &str = "V1_8_PARAM_MESSAGE_3_CARRY_3_KS_PBS_TUNIFORM_2M128";

    /// A neuron with the interval `[lo, hi]`.
    fn neuron_iv(
        layer: usize,
        idx: usize,
        lo: i64,
        hi: i64,
        sum_w2: u64,
        table: bool,
    ) -> NeuronReport {
        let iv = crate::ir::Interval { lo, hi };
        let mut n = neuron(layer, idx, iv.range_bits(), sum_w2, table);
        n.lo = lo;
        n.hi = hi;
        n
    }

    #[test]
    fn margins_centre_the_interval() {
        assert_eq!(margins(-3, 4, 4), Some((4, 4)));
        assert_eq!(margins(-3, 5, 4), Some((3, 4)));
        assert_eq!(margins(0, 15, 4), Some((0, 0)));
        assert_eq!(margins(0, 16, 4), None);
        assert_eq!(margins(5, 5, 1), Some((0, 1)));
        assert_eq!(margins(0, 3, 63), None);
        assert_eq!(margins(i64::MIN, i64::MAX, 62), None);
    }

    #[test]
    fn read_offset_rounds_half_up() {
        for (s, z, d) in [
            (1.0, 0.0, 0),
            (1.0, 0.49, 0),
            (1.0, 0.5, 1),
            (1.0, -0.5, 0),
            (1.0, -0.51, -1),
            (2.0, 1.0, 2),
            (0.3, -2.0, -1),
            (0.0, 5.0, 0),
        ] {
            assert_eq!(read_offset(s, z), d, "σ {s}, z {z}");
        }
        assert_eq!(read_offset(1.0, f64::NAN), 0);
        assert_eq!(read_offset(f64::INFINITY, 1.0), 1 << 53);
    }

    #[test]
    fn offset_probabilities_are_consistent() {
        for (std, bx) in [(5.0, 2.0), (4.9, 64.0), (5.5, 4.0), (7.0, 1.0)] {
            let m = misread_log2(std, bx);
            assert!((offset_at_least_log2(std, bx, 1) - m).abs() < 1e-12);
            let mut last = m;
            for k in 2..20u64 {
                let p = offset_at_least_log2(std, bx, k);
                assert!(p <= last);
                last = p;
            }
            // One side of P(|d| >= m + 1).
            for margin in [0u64, 1, 5, 40] {
                let c = catastrophic_log2(std, bx, margin);
                let two = offset_at_least_log2(std, bx, margin + 1);
                assert!((c - (two - 1.0)).abs() < 1e-9 || c == LOG2_P_FLOOR);
            }
        }
        // The draw of `read_offset` matches the predicted misread rate (a seeded Box-Muller).
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
        let n = 200_000;
        for s in [0.3f64, 0.7, 1.4] {
            let mut off = [0usize; 3];
            for _ in 0..n {
                let (u1, u2): (f64, f64) = (rng.gen::<f64>().max(1e-300), rng.gen());
                let z = (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos();
                let d = read_offset(s, z).unsigned_abs() as usize;
                for (k, c) in off.iter_mut().enumerate() {
                    if d > k {
                        *c += 1;
                    }
                }
            }
            for (k, &c) in off.iter().enumerate() {
                let p = offset_at_least_log2(s, 1.0, k as u64 + 1).exp2();
                let got = c as f64 / n as f64;
                let tol = 5.0 * (p * (1.0 - p) / n as f64).sqrt() + 1e-5;
                assert!(
                    (got - p).abs() < tol,
                    "σ {s}, |d| >= {}: {got} vs {p}",
                    k + 1
                );
            }
        }
    }

    #[test]
    fn exact_mode_is_the_classic_model_at_the_set_precision() {
        let s = parameter_set(SET4).unwrap();
        let r = report(
            vec![neuron(0, 0, 4, 30, true), neuron(1, 0, 4, 9, false)],
            2,
        );
        let p = plan_for(&r, s, -40.0, 2);
        assert_eq!(p.mode, FheMode::Exact);
        assert_eq!(p.space_bits, 4);
        assert_eq!(p.box_positions, 128.0);
        let n = &p.neurons[0];
        assert!((n.log2_p_fail - s.bootstrap_log2_p_fail(30)).abs() < 1e-9);
        assert!((n.sigma_units - s.bootstrap_std(30) / 128.0).abs() < 1e-12);
        assert!((p.neurons[1].log2_p_fail - s.decrypt_log2_p_fail(9)).abs() < 1e-9);
        assert_eq!(s.max_sum_w2_exact(4, -40.0), s.max_sum_w2(-40.0));
        assert_eq!(p.max_sum_w2, s.max_sum_w2(-40.0));
        let back: FhePlan = serde_json::from_str(&serde_json::to_string(&p).unwrap()).unwrap();
        assert_eq!(back, p);
    }

    #[test]
    fn exact_reads_wider_than_the_set_when_the_target_allows() {
        // 5-bit values: the 4-bit set's N = 2048 gives 64 positions per value, a read exact with
        // probability 1 - 2^-33.6 at σ ≈ 4.9: not at 2^-40 (the 6-bit set then), but at 2^-30.
        let r = report(vec![neuron(0, 0, 5, 9, true), neuron(1, 0, 5, 9, false)], 2);
        let p = classic(&r, -40.0, 2).unwrap();
        assert_eq!((p.parameter_set.as_str(), p.space_bits), (SET6, 5));
        let p = classic(&r, -30.0, 2).unwrap();
        assert_eq!((p.parameter_set.as_str(), p.space_bits), (SET4, 5));
        assert_eq!(p.precision_bits, 4);
        assert_eq!(p.box_positions, 64.0);
        assert!(p.worst_log2_p_fail < -33.0 && p.worst_log2_p_fail > -34.5);
        // 6 bits on N = 2048 (32 positions): misreads about one read in a thousand.
        let s4 = parameter_set(SET4).unwrap();
        let q = plan_on(&r, s4, 6, FheMode::Exact, -40.0, 2);
        assert!(q.worst_log2_p_fail > -11.0, "{}", q.worst_log2_p_fail);
        // What exact reads allow at 2^-40: 4 bits on N = 2048, 6 on N = 8192.
        assert_eq!(capacity(s4, FheMode::Exact, -40.0, true), 4);
        assert_eq!(capacity(s4, FheMode::Exact, -30.0, true), 5);
        let s6 = parameter_set(SET6).unwrap();
        assert_eq!(capacity(s6, FheMode::Exact, -40.0, true), 6);
        // Explicit errors from plan_with on one set.
        let e = plan_with(&r, s4, FheMode::Exact, -40.0, 2)
            .unwrap_err()
            .to_string();
        assert!(e.contains("2^-40") && e.contains("5-bit space"), "{e}");
    }

    /// An iris-like report: 9-bit accumulators (one filling its 512 values exactly), 9-bit
    /// outputs.
    fn wide_report() -> CompileReport {
        report(
            vec![
                neuron_iv(0, 0, -240, 271, 196, true), // 512 values: no margin at P = 9
                neuron_iv(0, 1, -100, 199, 150, true),
                neuron_iv(1, 0, 0, 400, 300, true),
                neuron_iv(2, 0, -200, 180, 250, false),
            ],
            4,
        )
    }

    #[test]
    fn approximate_mode_reads_wide_accumulators_with_one_cheap_bootstrap() {
        let r = wide_report();
        assert_eq!(needed_bits(&r), 9);
        // Exact reads of 9 bits are impossible on every practical set at 2^-40.
        let e = classic(&r, -40.0, 2).unwrap_err().to_string();
        assert!(e.contains("9-bit") && e.contains("approximate"), "{e}");
        let p = classic_with(&r, -40.0, 2, FheMode::Approximate).unwrap();
        assert_eq!(p.mode, FheMode::Approximate);
        // P = 9 leaves no margin to the full neuron (512 values): P = 10, which the 2-bit set
        // (N = 512, at most 9 bits) cannot read; the next cheapest, the 4-bit set, reads it with
        // 2 positions per value.
        assert_eq!(p.parameter_set, SET4);
        assert_eq!(p.space_bits, 10);
        assert_eq!(p.box_positions, 2.0);
        assert!(p.worst_log2_p_fail <= -40.0);
        let s = parameter_set(SET4).unwrap();
        for (n, rn) in p.neurons.iter().zip(&r.neurons) {
            let std = if rn.table_len > 0 {
                s.bootstrap_std(rn.sum_w2)
            } else {
                s.decrypt_std(rn.sum_w2)
            };
            assert!((n.sigma_units - std / 2.0).abs() < 1e-12);
            assert!(n.log2_p_misread > -2.0, "a σ of 2.5 units misreads often");
            assert_eq!(n.log2_p_fail, n.log2_p_catastrophic);
        }
        assert_eq!(p.neurons[0].margin, 256);
        assert!(p.expected_misreads_per_sample > 1.0);
        assert!(p.worst_sigma_units > 2.0 && p.worst_sigma_units < 3.5);
        let text = render_plan(&p);
        assert!(
            text.contains("approximate reads") && text.contains("misreads"),
            "{text}"
        );
        assert!(text.contains("10-bit ciphertext space"), "{text}");
        let sig = read_sigma_units(&p, &r);
        assert_eq!(sig.len(), 4);
        for ((node, su), n) in sig.iter().zip(&p.neurons) {
            assert_eq!((*node, *su), (n.node, n.sigma_units));
        }
        // Without the full neuron, P = 9 has margins: the 2-bit set (cheapest, one position per
        // value) takes it, σ ≈ 4.6 units.
        let mut r2 = r.clone();
        r2.neurons.remove(0);
        r2.pbs_count -= 1;
        let p2 = classic_with(&r2, -40.0, 2, FheMode::Approximate).unwrap();
        assert_eq!((p2.parameter_set.as_str(), p2.space_bits), (SET2, 9));
        assert_eq!(p2.box_positions, 1.0);
        assert!(p2.worst_sigma_units > 4.0);
        // Forcing the 4-bit set keeps P = 9: 4 positions per value.
        let p3 = plan_with(&r2, s, FheMode::Approximate, -40.0, 2).unwrap();
        assert_eq!((p3.space_bits, p3.box_positions), (9, 4.0));
        assert!(p3.worst_sigma_units < 1.5);
        // Too wide for one bootstrap of any practical set: 14 bits > log2 8192.
        let r3 = report(vec![neuron(0, 0, 14, 4, true)], 4);
        let e = classic_with(&r3, -40.0, 2, FheMode::Approximate)
            .unwrap_err()
            .to_string();
        assert!(e.contains("14-bit") && e.contains("at most 13 bits"), "{e}");
    }

    #[test]
    fn modes_parse_and_serialize() {
        assert_eq!("exact".parse::<FheMode>().unwrap(), FheMode::Exact);
        assert_eq!(
            "approximate".parse::<FheMode>().unwrap(),
            FheMode::Approximate
        );
        assert!("fast".parse::<FheMode>().is_err());
        assert_eq!(
            serde_json::to_string(&FheMode::Approximate).unwrap(),
            "\"approximate\""
        );
        assert_eq!(FheMode::default(), FheMode::Exact);
    }
}
