//! The mapping from sqnn's parameter catalogue ([`crate::fhe::ParamSet`]) to `tfhe`'s
//! parameter constants, and the figures derived from a set that the key files need.

use ::tfhe::shortint::parameters::PBSParameters;

use crate::error::{Error, Result};
use crate::fhe::{self, ParamSet};

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
