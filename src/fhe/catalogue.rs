//! The catalogue: the `tfhe` parameter sets sqnn may use ([`ParamSetId`]), what `tfhe` fixes
//! for each (dimensions, bootstrap kind, design failure probability) and the figures measured on
//! this machine (latency, keys, noise constants), which live in the dated data file
//! `src/fhe/measured.json`.

use std::sync::LazyLock;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::measured;
use super::variants::{self, Decomposition, NoiseValidation};
use crate::error::{Error, Result};

/// A parameter set of the catalogue: every 128-bit-security `tfhe` 1.8.2 set of 2, 4 and 6 bits
/// that sqnn runs, in four families: classic bootstraps at 2^-128 (`V1_8_..._KS_PBS_TUNIFORM_2M128`,
/// the newest) and at 2^-64 (`V1_6_..._2M64`, the newest of that family in 1.8.2), multi-bit
/// bootstraps (`MULTI_BIT_GROUP_g`) at 2^-128 and at 2^-64; and the 8-bit classic set, for
/// reference. Written (`Display`, `FromStr`, serde) as the `tfhe::shortint::parameters`
/// constant's name. Order does not matter: the choice ranks sets by predicted latency.
///
/// What is measured and what is modelled: the latency per bootstrap (one and two cores), key
/// generation and sizes, and the noise constants `a` and `b` are measured on this machine
/// (`src/fhe/measured.json`: machine, date, the command that regenerates it, and notes); how
/// latency scales beyond 2 cores is modelled ([`ParamSet::layer_ms`]: classic bootstraps as
/// independent single-core tasks, a multi-bit bootstrap as a sequential part plus a parallel
/// part over at most [`pbs_threads`](ParamSet::pbs_threads) threads; on 64 cores this predicts
/// the 4-bit multi-bit set about 0.8× the classic 4-bit set's single-bootstrap latency, the
/// ratio tfhe-rs publishes for a 192-core server). Multi-bit sets of 6 bits with g = 3 or 4
/// (over 3 GB of keys) are not listed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ParamSetId {
    /// `V1_8_PARAM_MESSAGE_1_CARRY_1_KS_PBS_TUNIFORM_2M128`: 2-bit classic set, 2^-128 (N = 512).
    ClassicMsg1Carry1,
    /// `V1_8_PARAM_MESSAGE_2_CARRY_2_KS_PBS_TUNIFORM_2M128`: 4-bit classic set, 2^-128 (N = 2048).
    ClassicMsg2Carry2,
    /// `V1_8_PARAM_MESSAGE_3_CARRY_3_KS_PBS_TUNIFORM_2M128`: 6-bit classic set, 2^-128 (N = 8192).
    ClassicMsg3Carry3,
    /// `V1_8_PARAM_MESSAGE_4_CARRY_4_KS_PBS_TUNIFORM_2M128`: 8-bit classic set, 2^-128 (N = 65536; listed for reference, not selectable).
    ClassicMsg4Carry4,
    /// `V1_6_PARAM_MESSAGE_1_CARRY_1_KS_PBS_TUNIFORM_2M64`: 2-bit classic set, 2^-64 (N = 512).
    ClassicMsg1Carry1Fail64,
    /// `V1_6_PARAM_MESSAGE_2_CARRY_2_KS_PBS_TUNIFORM_2M64`: 4-bit classic set, 2^-64 (N = 2048).
    ClassicMsg2Carry2Fail64,
    /// `V1_6_PARAM_MESSAGE_3_CARRY_3_KS_PBS_TUNIFORM_2M64`: 6-bit classic set, 2^-64 (N = 8192).
    ClassicMsg3Carry3Fail64,
    /// `V1_8_PARAM_MULTI_BIT_GROUP_4_MESSAGE_1_CARRY_1_KS_PBS_TUNIFORM_2M128`: 2-bit multi-bit set (g = 4), 2^-128 (N = 2048).
    MultiBit4Msg1Carry1,
    /// `V1_8_PARAM_MULTI_BIT_GROUP_4_MESSAGE_2_CARRY_2_KS_PBS_TUNIFORM_2M128`: 4-bit multi-bit set (g = 4), 2^-128 (N = 2048).
    MultiBit4Msg2Carry2,
    /// `V1_6_PARAM_MULTI_BIT_GROUP_4_MESSAGE_2_CARRY_2_KS_PBS_TUNIFORM_2M64`: 4-bit multi-bit set (g = 4), 2^-64 (N = 2048).
    MultiBit4Msg2Carry2Fail64,
    /// `V1_8_PARAM_MULTI_BIT_GROUP_2_MESSAGE_3_CARRY_3_KS_PBS_TUNIFORM_2M128`: 6-bit multi-bit set (g = 2), 2^-128 (N = 16384; works, not selectable: 2.9 GB of server key).
    MultiBit2Msg3Carry3,
    /// `V1_8_PARAM_MESSAGE_2_CARRY_2_KS_PBS_TUNIFORM_2M128_PBS_L2_B15`: a decomposition variant
    /// of the 4-bit classic 2^-128 set, a two-level bootstrap key (base 2^15) instead of one
    /// level (base 2^23); everything that defines security unchanged (see [`ParamSet::derives_from`]).
    ClassicMsg2Carry2Pbs2B15,
    /// `V1_8_PARAM_MESSAGE_2_CARRY_2_KS_PBS_TUNIFORM_2M128_PBS_L2_B15_KS_L3_B5`: the same with a
    /// three-level keyswitch (base 2^5) instead of four levels (base 2^4): a cheaper keyswitch,
    /// more keyswitch noise.
    ClassicMsg2Carry2Pbs2B15Ks3B5,
    /// `V1_8_PARAM_MESSAGE_1_CARRY_1_KS_PBS_TUNIFORM_2M128_PBS_L2_B15`: a decomposition variant of
    /// the 2-bit classic 2^-128 set (N = 512, k = 4), a two-level bootstrap key (base 2^15).
    ClassicMsg1Carry1Pbs2B15,
}

impl ParamSetId {
    /// Every set of the catalogue.
    pub const ALL: [ParamSetId; 14] = [
        ParamSetId::ClassicMsg1Carry1,
        ParamSetId::ClassicMsg2Carry2,
        ParamSetId::ClassicMsg3Carry3,
        ParamSetId::ClassicMsg4Carry4,
        ParamSetId::ClassicMsg1Carry1Fail64,
        ParamSetId::ClassicMsg2Carry2Fail64,
        ParamSetId::ClassicMsg3Carry3Fail64,
        ParamSetId::MultiBit4Msg1Carry1,
        ParamSetId::MultiBit4Msg2Carry2,
        ParamSetId::MultiBit4Msg2Carry2Fail64,
        ParamSetId::MultiBit2Msg3Carry3,
        ParamSetId::ClassicMsg2Carry2Pbs2B15,
        ParamSetId::ClassicMsg2Carry2Pbs2B15Ks3B5,
        ParamSetId::ClassicMsg1Carry1Pbs2B15,
    ];

    /// The `tfhe::shortint::parameters` constant's name.
    pub fn name(self) -> &'static str {
        match self {
            ParamSetId::ClassicMsg1Carry1 => "V1_8_PARAM_MESSAGE_1_CARRY_1_KS_PBS_TUNIFORM_2M128",
            ParamSetId::ClassicMsg2Carry2 => "V1_8_PARAM_MESSAGE_2_CARRY_2_KS_PBS_TUNIFORM_2M128",
            ParamSetId::ClassicMsg3Carry3 => "V1_8_PARAM_MESSAGE_3_CARRY_3_KS_PBS_TUNIFORM_2M128",
            ParamSetId::ClassicMsg4Carry4 => "V1_8_PARAM_MESSAGE_4_CARRY_4_KS_PBS_TUNIFORM_2M128",
            ParamSetId::ClassicMsg1Carry1Fail64 => {
                "V1_6_PARAM_MESSAGE_1_CARRY_1_KS_PBS_TUNIFORM_2M64"
            }
            ParamSetId::ClassicMsg2Carry2Fail64 => {
                "V1_6_PARAM_MESSAGE_2_CARRY_2_KS_PBS_TUNIFORM_2M64"
            }
            ParamSetId::ClassicMsg3Carry3Fail64 => {
                "V1_6_PARAM_MESSAGE_3_CARRY_3_KS_PBS_TUNIFORM_2M64"
            }
            ParamSetId::MultiBit4Msg1Carry1 => {
                "V1_8_PARAM_MULTI_BIT_GROUP_4_MESSAGE_1_CARRY_1_KS_PBS_TUNIFORM_2M128"
            }
            ParamSetId::MultiBit4Msg2Carry2 => {
                "V1_8_PARAM_MULTI_BIT_GROUP_4_MESSAGE_2_CARRY_2_KS_PBS_TUNIFORM_2M128"
            }
            ParamSetId::MultiBit4Msg2Carry2Fail64 => {
                "V1_6_PARAM_MULTI_BIT_GROUP_4_MESSAGE_2_CARRY_2_KS_PBS_TUNIFORM_2M64"
            }
            ParamSetId::MultiBit2Msg3Carry3 => {
                "V1_8_PARAM_MULTI_BIT_GROUP_2_MESSAGE_3_CARRY_3_KS_PBS_TUNIFORM_2M128"
            }
            ParamSetId::ClassicMsg2Carry2Pbs2B15 => {
                "V1_8_PARAM_MESSAGE_2_CARRY_2_KS_PBS_TUNIFORM_2M128_PBS_L2_B15"
            }
            ParamSetId::ClassicMsg2Carry2Pbs2B15Ks3B5 => {
                "V1_8_PARAM_MESSAGE_2_CARRY_2_KS_PBS_TUNIFORM_2M128_PBS_L2_B15_KS_L3_B5"
            }
            ParamSetId::ClassicMsg1Carry1Pbs2B15 => {
                "V1_8_PARAM_MESSAGE_1_CARRY_1_KS_PBS_TUNIFORM_2M128_PBS_L2_B15"
            }
        }
    }

    /// The shipped `tfhe` set a decomposition variant derives from (`None` for a shipped set).
    pub fn derives_from(self) -> Option<ParamSetId> {
        variants::variant(self).map(|v| v.base)
    }

    /// The shipped `tfhe` set whose security this set has: itself, or the set a variant
    /// derives from.
    pub fn shipped(self) -> ParamSetId {
        self.derives_from().unwrap_or(self)
    }

    /// The set's figures.
    pub fn set(self) -> &'static ParamSet {
        // A fieldless enum's discriminant (declaration order, from 0): `as` is Rust's only
        // conversion, and exact.
        &CATALOGUE[self as usize]
    }
}

impl std::fmt::Display for ParamSetId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for ParamSetId {
    type Err = Error;
    fn from_str(s: &str) -> Result<ParamSetId> {
        ParamSetId::ALL
            .into_iter()
            .find(|id| id.name() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = ParamSetId::ALL.iter().map(|id| id.name()).collect();
                Error::param(
                    "parameters",
                    format!(
                        "{s:?} is not in the catalogue: use one of {}",
                        names.join(", ")
                    ),
                )
            })
    }
}

impl Serialize for ParamSetId {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for ParamSetId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<ParamSetId, D::Error> {
        let name = String::deserialize(d)?;
        name.parse().map_err(serde::de::Error::custom)
    }
}

/// One parameter set: what `tfhe` fixes (dimensions, design failure probability, bootstrap
/// kind) and what was measured on this machine (latency, keys, noise: `measured.json`).
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct ParamSet {
    /// Which set this is.
    pub id: ParamSetId,
    /// Its `tfhe::shortint::parameters` constant name (`id.name()`).
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
    /// Whether the choice ([`plan`](super::plan) without a forced set) may pick it (the 8-bit
    /// set needs 11 GB of keys and ten minutes of key generation here: listed for reference).
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
    /// Bootstrap and keyswitch decomposition (base log and level): what a decomposition variant
    /// changes. It sets noise growth and cost, not security.
    pub decomposition: Decomposition,
    /// log2 of the TUniform bound of the small (LWE) key's encryption noise: `tfhe`'s
    /// `lwe_noise_distribution` (security-defining).
    pub lwe_noise_bound_log2: u32,
    /// log2 of the TUniform bound of the large (GLWE) key's encryption noise: `tfhe`'s
    /// `glwe_noise_distribution` (security-defining).
    pub glwe_noise_bound_log2: u32,
    /// For a decomposition variant, the shipped `tfhe` 128-bit set it derives from: the same
    /// `n`, `k`, `N`, ciphertext modulus, key choice and noise distributions (so the same
    /// security), another [`decomposition`](Self::decomposition). `None` for a shipped set.
    pub derives_from: Option<ParamSetId>,
    /// The noise constants `(a, b)` that `tfhe`'s public noise formulas give for the set
    /// (classic bootstraps only; [`ParamSet::formula_noise`]), same units as
    /// [`noise_base`](Self::noise_base) and [`noise_per_w2`](Self::noise_per_w2).
    pub formula_noise: Option<(f64, f64)>,
    /// For a decomposition variant: its measured noise against the formula
    /// ([`NoiseValidation`]). A variant is [`selectable`](Self::selectable) only if it passed.
    pub validation: Option<NoiseValidation>,
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

/// What `tfhe` fixes for a set (the rest of [`ParamSet`] is measured).
struct Design {
    message_bits: u32,
    carry_bits: u32,
    lwe_dimension: usize,
    glwe_dimension: usize,
    polynomial_size: usize,
    designed_log2_p_fail: f64,
    selectable: bool,
    family_log2_p_fail: i32,
    grouping_factor: usize,
    modulus_switch: ModulusSwitch,
    pbs_threads: usize,
    decomposition: Decomposition,
    lwe_noise_bound_log2: u32,
    glwe_noise_bound_log2: u32,
}

fn design(id: ParamSetId) -> Design {
    match id {
        // A variant's design is its base's (its decomposition is set in `build`).
        ParamSetId::ClassicMsg2Carry2Pbs2B15
        | ParamSetId::ClassicMsg2Carry2Pbs2B15Ks3B5
        | ParamSetId::ClassicMsg1Carry1Pbs2B15 => design(id.shipped()),
        ParamSetId::ClassicMsg1Carry1 => Design {
            message_bits: 1,
            carry_bits: 1,
            lwe_dimension: 879,
            glwe_dimension: 4,
            polynomial_size: 512,
            designed_log2_p_fail: -144.3,
            selectable: true,
            family_log2_p_fail: -128,
            grouping_factor: 1,
            modulus_switch: ModulusSwitch::Centered,
            pbs_threads: 1,
            decomposition: Decomposition {
                pbs_level: 1,
                pbs_base_log: 23,
                ks_level: 3,
                ks_base_log: 5,
            },
            lwe_noise_bound_log2: 46,
            glwe_noise_bound_log2: 17,
        },
        ParamSetId::ClassicMsg2Carry2 => Design {
            message_bits: 2,
            carry_bits: 2,
            lwe_dimension: 918,
            glwe_dimension: 1,
            polynomial_size: 2048,
            designed_log2_p_fail: -129.6,
            selectable: true,
            family_log2_p_fail: -128,
            grouping_factor: 1,
            modulus_switch: ModulusSwitch::Centered,
            pbs_threads: 1,
            decomposition: Decomposition {
                pbs_level: 1,
                pbs_base_log: 23,
                ks_level: 4,
                ks_base_log: 4,
            },
            lwe_noise_bound_log2: 45,
            glwe_noise_bound_log2: 17,
        },
        ParamSetId::ClassicMsg3Carry3 => Design {
            message_bits: 3,
            carry_bits: 3,
            lwe_dimension: 1077,
            glwe_dimension: 1,
            polynomial_size: 8192,
            designed_log2_p_fail: -129.0,
            selectable: true,
            family_log2_p_fail: -128,
            grouping_factor: 1,
            modulus_switch: ModulusSwitch::Centered,
            pbs_threads: 1,
            decomposition: Decomposition {
                pbs_level: 2,
                pbs_base_log: 15,
                ks_level: 5,
                ks_base_log: 4,
            },
            lwe_noise_bound_log2: 41,
            glwe_noise_bound_log2: 3,
        },
        ParamSetId::ClassicMsg4Carry4 => Design {
            message_bits: 4,
            carry_bits: 4,
            lwe_dimension: 1117,
            glwe_dimension: 1,
            polynomial_size: 65536,
            designed_log2_p_fail: -141.6,
            selectable: false,
            family_log2_p_fail: -128,
            grouping_factor: 1,
            modulus_switch: ModulusSwitch::Centered,
            pbs_threads: 1,
            decomposition: Decomposition {
                pbs_level: 3,
                pbs_base_log: 11,
                ks_level: 7,
                ks_base_log: 3,
            },
            lwe_noise_bound_log2: 40,
            glwe_noise_bound_log2: 3,
        },
        ParamSetId::ClassicMsg1Carry1Fail64 => Design {
            message_bits: 1,
            carry_bits: 1,
            lwe_dimension: 839,
            glwe_dimension: 4,
            polynomial_size: 512,
            designed_log2_p_fail: -72.226,
            selectable: true,
            family_log2_p_fail: -64,
            grouping_factor: 1,
            modulus_switch: ModulusSwitch::Rounded,
            pbs_threads: 1,
            decomposition: Decomposition {
                pbs_level: 1,
                pbs_base_log: 23,
                ks_level: 3,
                ks_base_log: 4,
            },
            lwe_noise_bound_log2: 47,
            glwe_noise_bound_log2: 17,
        },
        ParamSetId::ClassicMsg2Carry2Fail64 => Design {
            message_bits: 2,
            carry_bits: 2,
            lwe_dimension: 879,
            glwe_dimension: 1,
            polynomial_size: 2048,
            designed_log2_p_fail: -72.178,
            selectable: true,
            family_log2_p_fail: -64,
            grouping_factor: 1,
            modulus_switch: ModulusSwitch::Rounded,
            pbs_threads: 1,
            decomposition: Decomposition {
                pbs_level: 1,
                pbs_base_log: 23,
                ks_level: 5,
                ks_base_log: 3,
            },
            lwe_noise_bound_log2: 46,
            glwe_noise_bound_log2: 17,
        },
        ParamSetId::ClassicMsg3Carry3Fail64 => Design {
            message_bits: 3,
            carry_bits: 3,
            lwe_dimension: 998,
            glwe_dimension: 1,
            polynomial_size: 8192,
            designed_log2_p_fail: -64.454,
            selectable: true,
            family_log2_p_fail: -64,
            grouping_factor: 1,
            modulus_switch: ModulusSwitch::Rounded,
            pbs_threads: 1,
            decomposition: Decomposition {
                pbs_level: 2,
                pbs_base_log: 15,
                ks_level: 6,
                ks_base_log: 3,
            },
            lwe_noise_bound_log2: 43,
            glwe_noise_bound_log2: 3,
        },
        ParamSetId::MultiBit4Msg1Carry1 => Design {
            message_bits: 1,
            carry_bits: 1,
            lwe_dimension: 760,
            glwe_dimension: 1,
            polynomial_size: 2048,
            designed_log2_p_fail: -145.017,
            selectable: true,
            family_log2_p_fail: -128,
            grouping_factor: 4,
            modulus_switch: ModulusSwitch::Rounded,
            pbs_threads: 10,
            decomposition: Decomposition {
                pbs_level: 1,
                pbs_base_log: 22,
                ks_level: 4,
                ks_base_log: 3,
            },
            lwe_noise_bound_log2: 49,
            glwe_noise_bound_log2: 17,
        },
        ParamSetId::MultiBit4Msg2Carry2 => Design {
            message_bits: 2,
            carry_bits: 2,
            lwe_dimension: 920,
            glwe_dimension: 1,
            polynomial_size: 2048,
            designed_log2_p_fail: -134.345,
            selectable: true,
            family_log2_p_fail: -128,
            grouping_factor: 4,
            modulus_switch: ModulusSwitch::Rounded,
            pbs_threads: 10,
            decomposition: Decomposition {
                pbs_level: 1,
                pbs_base_log: 22,
                ks_level: 5,
                ks_base_log: 3,
            },
            lwe_noise_bound_log2: 45,
            glwe_noise_bound_log2: 17,
        },
        ParamSetId::MultiBit4Msg2Carry2Fail64 => Design {
            message_bits: 2,
            carry_bits: 2,
            lwe_dimension: 840,
            glwe_dimension: 1,
            polynomial_size: 2048,
            designed_log2_p_fail: -81.222,
            selectable: true,
            family_log2_p_fail: -64,
            grouping_factor: 4,
            modulus_switch: ModulusSwitch::Rounded,
            pbs_threads: 10,
            decomposition: Decomposition {
                pbs_level: 1,
                pbs_base_log: 22,
                ks_level: 5,
                ks_base_log: 3,
            },
            lwe_noise_bound_log2: 47,
            glwe_noise_bound_log2: 17,
        },
        ParamSetId::MultiBit2Msg3Carry3 => Design {
            message_bits: 3,
            carry_bits: 3,
            lwe_dimension: 998,
            glwe_dimension: 1,
            polynomial_size: 16384,
            designed_log2_p_fail: -135.674,
            selectable: false,
            family_log2_p_fail: -128,
            grouping_factor: 2,
            modulus_switch: ModulusSwitch::Rounded,
            pbs_threads: 6,
            decomposition: Decomposition {
                pbs_level: 2,
                pbs_base_log: 14,
                ks_level: 6,
                ks_base_log: 3,
            },
            lwe_noise_bound_log2: 43,
            glwe_noise_bound_log2: 3,
        },
    }
}

/// Every set's figures, in [`ParamSetId::ALL`] order.
static CATALOGUE: LazyLock<Vec<ParamSet>> =
    LazyLock::new(|| ParamSetId::ALL.into_iter().map(build).collect());

/// One set's entry: a shipped set's design and measured figures; a variant's from its base's
/// design with its own decomposition, noise from the formulas (or the measurement if larger),
/// selectable once its measurement validates the formulas ([`variants`]).
fn build(id: ParamSetId) -> ParamSet {
    let def = variants::variant(id);
    let d = design(def.map_or(id, |v| v.base));
    let m = measured::figures(id);
    let decomposition = def.map_or(d.decomposition, |v| v.decomposition);
    let mut set = ParamSet {
        id,
        name: id.name(),
        message_bits: d.message_bits,
        carry_bits: d.carry_bits,
        lwe_dimension: d.lwe_dimension,
        glwe_dimension: d.glwe_dimension,
        polynomial_size: d.polynomial_size,
        pbs_ms_1_thread: m.pbs_ms_1_thread,
        pbs_ms_2_threads: m.pbs_ms_2_threads,
        server_key_bytes: m.server_key_bytes,
        compressed_server_key_bytes: m.compressed_server_key_bytes,
        client_key_bytes: m.client_key_bytes,
        keygen_seconds: m.keygen_seconds,
        noise_base: m.noise_base,
        noise_per_w2: m.noise_per_w2,
        designed_log2_p_fail: d.designed_log2_p_fail,
        selectable: d.selectable,
        family_log2_p_fail: d.family_log2_p_fail,
        grouping_factor: d.grouping_factor,
        modulus_switch: d.modulus_switch,
        pbs_threads: d.pbs_threads,
        pbs_parallel_fraction: m.pbs_parallel_fraction,
        decomposition,
        lwe_noise_bound_log2: d.lwe_noise_bound_log2,
        glwe_noise_bound_log2: d.glwe_noise_bound_log2,
        derives_from: def.map(|v| v.base),
        formula_noise: None,
        validation: None,
    };
    set.formula_noise = set.formula_noise();
    if let Some(v) = def {
        let (a, b) = set.formula_noise.expect("variants are classic sets");
        let validation = NoiseValidation::new((a, b), &m);
        set.noise_base = a.max(m.noise_base);
        set.noise_per_w2 = b.max(m.noise_per_w2);
        set.selectable = validation.passed;
        set.validation = Some(validation);
        set.designed_log2_p_fail = set.bootstrap_log2_p_fail(u64::from(v.design_norm).pow(2));
    }
    set
}

/// Every set of the catalogue, in [`ParamSetId::ALL`] order.
pub fn catalogue() -> &'static [ParamSet] {
    &CATALOGUE
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
        self.polynomial_size as f64 / 2f64.powi(crate::cast::exponent(space_bits.min(1023)))
    }

    /// Short label, e.g. `4-bit`.
    pub fn label(&self) -> String {
        format!("{}-bit", self.precision())
    }

    /// `"classic"` or `"multi-bit g=G"`, and the failure family, e.g. `multi-bit g=4, 2^-128`;
    /// `, variant` for a decomposition variant.
    pub fn family(&self) -> String {
        let kind = if self.grouping_factor > 1 {
            format!("multi-bit g={}", self.grouping_factor)
        } else {
            "classic".to_string()
        };
        let variant = if self.derives_from.is_some() {
            ", variant"
        } else {
            ""
        };
        format!("{kind}, 2^{}{variant}", self.family_log2_p_fail)
    }
}
