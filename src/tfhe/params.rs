//! The mapping from sqnn's parameter catalogue ([`crate::fhe::ParamSet`]) to `tfhe`'s
//! parameter constants, and the figures derived from a set that the key files need.

use ::tfhe::shortint::parameters::{DecompositionBaseLog, DecompositionLevelCount, PBSParameters};

use crate::error::{Error, Result};
use crate::fhe::{self, ParamSet};

/// The `tfhe` parameters of a catalogue entry: a classic or a multi-bit bootstrap, both run
/// through the same `shortint` keys and `apply_lookup_table`.
pub fn tfhe_parameters(set: &ParamSet) -> Result<PBSParameters> {
    if let Some(base) = set.derives_from {
        return variant_parameters(set, base.set());
    }
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
        Id::ClassicMsg2Carry2Pbs2B15
        | Id::ClassicMsg2Carry2Pbs2B15Ks3B5
        | Id::ClassicMsg1Carry1Pbs2B15 => {
            return Err(Error::Keys(format!(
                "{} is a decomposition variant without its shipped set",
                set.name
            )))
        }
    })
}

/// A decomposition variant: its shipped set's `tfhe` parameters with the bootstrap and
/// keyswitch base log and level replaced, and nothing else (n, k, N, modulus, key choice,
/// noise distributions and modulus switch are the shipped set's, so is its security). The
/// failure probability field is the variant's own, from the noise formulas.
fn variant_parameters(set: &ParamSet, base: &ParamSet) -> Result<PBSParameters> {
    let PBSParameters::PBS(mut p) = tfhe_parameters(base)? else {
        return Err(Error::Keys(format!(
            "{}: only classic sets have decomposition variants",
            set.name
        )));
    };
    let d = set.decomposition;
    p.pbs_base_log = DecompositionBaseLog(d.pbs_base_log);
    p.pbs_level = DecompositionLevelCount(d.pbs_level);
    p.ks_base_log = DecompositionBaseLog(d.ks_base_log);
    p.ks_level = DecompositionLevelCount(d.ks_level);
    p.log2_p_fail = set.designed_log2_p_fail;
    Ok(PBSParameters::PBS(p))
}

/// The catalogue entry of a parameter set named in a file.
pub(super) fn lookup_set(name: &str) -> Result<&'static ParamSet> {
    let id = name.parse::<fhe::ParamSetId>().map_err(|_| {
        Error::Keys(format!(
            "unknown parameter set {name:?} (this sqnn knows {}): the file was written by another \
             version; generate keys for this circuit again",
            fhe::ParamSetId::ALL
                .iter()
                .map(|p| p.name())
                .collect::<Vec<_>>()
                .join(", ")
        ))
    })?;
    Ok(id.set())
}

/// GGSW ciphertexts in the set's bootstrapping key: `n` for a classic bootstrap,
/// `n / g · 2^g` for a multi-bit one (one per subset of each group of `g` key bits).
pub(super) fn ggsw_count(set: &ParamSet) -> usize {
    let g = set.grouping_factor.max(1);
    if g == 1 {
        set.lwe_dimension
    } else {
        set.lwe_dimension / g * (1 << g)
    }
}
