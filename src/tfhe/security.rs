//! The parameters a key or ciphertext file stores, and the check that keeps sqnn on `tfhe`'s
//! shipped 128-bit security: a set's security-defining fields (LWE dimension `n`, GLWE
//! dimension `k`, polynomial size `N`, ciphertext modulus, encryption key choice, and the LWE
//! and GLWE noise distributions) must be exactly those of a shipped set; a decomposition
//! variant ([`crate::fhe::ParamSet::derives_from`]) changes only the bootstrap and keyswitch
//! base log and level, which set noise growth and cost, never security.
//!
//! Every file's header carries the full parameters ([`StoredParameters`]). Loading refuses a
//! file whose parameters are not the catalogue's for the set it names, naming the field, and
//! in particular one whose security-defining fields differ from the shipped set's.

use ::tfhe::core_crypto::prelude::DynamicDistribution;
use ::tfhe::shortint::parameters::{EncryptionKeyChoice, ModulusSwitchType, PBSParameters};
use serde::{Deserialize, Serialize};

use super::params::tfhe_parameters;
use crate::error::{Error, Result};
use crate::fhe::ParamSet;

/// Every field of a set's `tfhe` parameters, as a file header stores them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct StoredParameters {
    lwe_dimension: usize,
    glwe_dimension: usize,
    polynomial_size: usize,
    /// `"native"` (2^64) or the custom modulus.
    ciphertext_modulus: String,
    /// `"big"` or `"small"`.
    encryption_key_choice: String,
    /// e.g. `"TUniform(2^45)"`.
    lwe_noise_distribution: String,
    glwe_noise_distribution: String,
    pbs_base_log: usize,
    pbs_level: usize,
    ks_base_log: usize,
    ks_level: usize,
    /// 1 for a classic bootstrap.
    grouping_factor: usize,
    /// `"centered_mean"`, `"standard"` (classic) or `"multi_bit"`.
    modulus_switch: String,
    message_modulus: u64,
    carry_modulus: u64,
    max_noise_level: u64,
    log2_p_fail: f64,
}

/// The fields that define a set's security, in the order they are checked.
const SECURITY_FIELDS: [&str; 7] = [
    "lwe_dimension",
    "glwe_dimension",
    "polynomial_size",
    "ciphertext_modulus",
    "encryption_key_choice",
    "lwe_noise_distribution",
    "glwe_noise_distribution",
];

fn distribution(d: DynamicDistribution<u64>) -> String {
    match d {
        DynamicDistribution::TUniform(t) => format!("TUniform(2^{})", t.bound_log2()),
        DynamicDistribution::Gaussian(g) => format!("Gaussian(std {:e})", g.std),
    }
}

impl StoredParameters {
    /// The stored form of `tfhe` parameters.
    pub(super) fn of(p: &PBSParameters) -> StoredParameters {
        let (grouping_factor, modulus_switch) = match p {
            PBSParameters::PBS(c) => (
                1,
                match c.modulus_switch_noise_reduction_params {
                    ModulusSwitchType::CenteredMeanNoiseReduction => "centered_mean",
                    ModulusSwitchType::Standard => "standard",
                    _ => "drift_reduction",
                },
            ),
            PBSParameters::MultiBitPBS(m) => (m.grouping_factor.0, "multi_bit"),
        };
        let modulus = p.ciphertext_modulus();
        StoredParameters {
            lwe_dimension: p.lwe_dimension().0,
            glwe_dimension: p.glwe_dimension().0,
            polynomial_size: p.polynomial_size().0,
            ciphertext_modulus: if modulus.is_native_modulus() {
                "native".to_string()
            } else {
                modulus.get_custom_modulus().to_string()
            },
            encryption_key_choice: match p.encryption_key_choice() {
                EncryptionKeyChoice::Big => "big",
                EncryptionKeyChoice::Small => "small",
            }
            .to_string(),
            lwe_noise_distribution: distribution(p.lwe_noise_distribution()),
            glwe_noise_distribution: distribution(p.glwe_noise_distribution()),
            pbs_base_log: p.pbs_base_log().0,
            pbs_level: p.pbs_level().0,
            ks_base_log: p.ks_base_log().0,
            ks_level: p.ks_level().0,
            grouping_factor,
            modulus_switch: modulus_switch.to_string(),
            message_modulus: p.message_modulus().0,
            carry_modulus: p.carry_modulus().0,
            max_noise_level: p.max_noise_level().get(),
            log2_p_fail: p.log2_p_fail(),
        }
    }

    /// The stored form of a catalogue set's parameters.
    pub(super) fn of_set(set: &ParamSet) -> Result<StoredParameters> {
        Ok(StoredParameters::of(&tfhe_parameters(set)?))
    }

    /// Each field as `(name, value)`, for comparisons that name the field.
    fn fields(&self) -> Vec<(&'static str, String)> {
        /// The rest, after the security-defining ones.
        const OTHER_FIELDS: [&str; 10] = [
            "pbs_base_log",
            "pbs_level",
            "ks_base_log",
            "ks_level",
            "grouping_factor",
            "modulus_switch",
            "message_modulus",
            "carry_modulus",
            "max_noise_level",
            "log2_p_fail",
        ];
        let json = serde_json::to_value(self).unwrap_or_default();
        SECURITY_FIELDS
            .into_iter()
            .chain(OTHER_FIELDS)
            .map(|n| (n, json.get(n).map_or(String::new(), |v| v.to_string())))
            .collect()
    }
}

/// Checks a file's stored parameters against the set it names: the security-defining fields
/// must be those of the shipped `tfhe` set the set is or derives from, and every field must be
/// the catalogue's. The message names the first field that differs.
pub(super) fn check_stored(stored: &StoredParameters, set: &ParamSet, label: &str) -> Result<()> {
    let shipped_set = set.id.shipped().set();
    let shipped = StoredParameters::of_set(shipped_set)?.fields();
    let have = stored.fields();
    for (name, value) in &have {
        if !SECURITY_FIELDS.contains(name) {
            continue;
        }
        let want = shipped.iter().find(|(n, _)| n == name).map(|(_, v)| v);
        if want != Some(value) {
            return Err(Error::Keys(format!(
                "{label}: its parameters have {name} = {value}, but the shipped 128-bit set \
                 {} has {}: {name} defines security, and sqnn never changes it (only the \
                 bootstrap and keyswitch decomposition). The file was altered or written by \
                 another program: generate keys for this circuit again",
                shipped_set.name,
                want.map_or("nothing", String::as_str)
            )));
        }
    }
    let own = StoredParameters::of_set(set)?.fields();
    for ((name, value), (_, want)) in have.iter().zip(&own) {
        if value != want {
            return Err(Error::Keys(format!(
                "{label}: its parameters have {name} = {value}, but {} has {want}: the file was \
                 altered or written by another version: generate keys for this circuit again",
                set.name
            )));
        }
    }
    Ok(())
}

/// Whether every security-defining field of `set` is its shipped set's (true for the whole
/// catalogue; a test checks it).
pub fn has_shipped_security(set: &ParamSet) -> Result<bool> {
    let own = StoredParameters::of_set(set)?.fields();
    let shipped = StoredParameters::of_set(set.id.shipped().set())?.fields();
    Ok(own
        .iter()
        .zip(&shipped)
        .filter(|((n, _), _)| SECURITY_FIELDS.contains(n))
        .all(|((_, a), (_, b))| a == b))
}
