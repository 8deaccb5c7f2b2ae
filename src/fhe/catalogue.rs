//! The catalogue: the `tfhe` parameter sets sqnn may use, with the figures measured on this
//! machine (latency, key generation and sizes, noise constants) and what each set reads.

use serde::Serialize;

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
    /// Whether [`choose_parameters`](super::choose_parameters) may pick it (the 8-bit set needs 11 GB of keys and ten
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
    /// How the bootstrap switches the modulus to `2N` (`docs/fhe-noise.md`, "The read").
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
/// ranks them by predicted latency ([`choose_parameters_with`](super::choose_parameters_with)).
///
/// What is measured and what is modelled:
/// * Measured on this machine in one run (`examples/calibrate.rs latency`, 2 cores, the other
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
/// * Measured with the secret key (`examples/calibrate.rs noise`): `a` and `b` of every
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

    /// `"classic"` or `"multi-bit g=G"`, and the failure family, e.g. `multi-bit g=4, 2^-128`.
    pub fn family(&self) -> String {
        let kind = if self.grouping_factor > 1 {
            format!("multi-bit g={}", self.grouping_factor)
        } else {
            "classic".to_string()
        };
        format!("{kind}, 2^{}", self.family_log2_p_fail)
    }
}
