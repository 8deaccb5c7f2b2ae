//! Exact rounding on two sets ([`crate::fhe::extraction_sets`]): the extraction set's keys
//! next to the table set's. One GLWE key's bits serve both sets (the table set's key cut into
//! the extraction set's polynomials), each set has its own small LWE key (shared when `n` and
//! the LWE noise agree), keyswitching key and bootstrapping key.

use std::sync::Arc;

use ::tfhe::core_crypto::prelude::{GlweSecretKeyOwned, LweSecretKeyOwned, PolynomialSize};
use ::tfhe::shortint::CompressedServerKey;

use super::params::tfhe_parameters;
use crate::error::{Error, Result};
use crate::fhe::{FhePlan, ParamSet};

/// The client key of exact rounding's extraction set ([`FhePlan::extraction_parameter_set`]):
/// the table set's GLWE key bits cut into the extraction set's polynomials, and the extraction
/// set's own small LWE key (the table set's when they have the same `n` and LWE noise).
#[derive(Clone)]
pub(super) struct ExtractClientKey {
    pub(super) set: &'static ParamSet,
    pub(super) key: ::tfhe::shortint::ClientKey,
}

/// The server side of the extraction set: its keyswitching key (from the shared GLWE key to
/// its small key) and bootstrapping key.
#[derive(Clone)]
pub(super) struct ExtractServerKey {
    pub(super) set: &'static ParamSet,
    pub(super) key: Arc<::tfhe::shortint::ServerKey>,
    pub(super) compressed: Option<Arc<CompressedServerKey>>,
}

/// Refuses a plan whose extraction set is not the keys' (`ext`, `None`: the table set).
pub(super) fn check_plan_extraction(ext: Option<&ParamSet>, plan: &FhePlan) -> Result<()> {
    let have = ext.map(|e| e.id);
    if plan.exact_rounding && plan.extraction_parameter_set != have {
        let name = |id: Option<crate::fhe::ParamSetId>| {
            id.map_or("the table set".to_string(), |i| i.name().to_string())
        };
        return Err(Error::Keys(format!(
            "the plan runs its extractions on {}, the keys on {}: generate keys for this circuit",
            name(plan.extraction_parameter_set),
            name(have)
        )));
    }
    Ok(())
}

/// The client key of `ext` next to the table set `set`'s key `key`: `key`'s GLWE key bits cut
/// into `ext`'s polynomials, and `small` as `ext`'s small LWE key, or (`None`) `key`'s small key
/// when the two sets can share it, else a fresh one drawn by `tfhe`.
pub(super) fn extraction_client_key(
    key: &::tfhe::shortint::ClientKey,
    set: &ParamSet,
    ext: &'static ParamSet,
    small: Option<LweSecretKeyOwned<u64>>,
) -> Result<ExtractClientKey> {
    use ::tfhe::shortint::client_key::atomic_pattern::{
        AtomicPatternClientKey, StandardAtomicPatternClientKey,
    };
    let AtomicPatternClientKey::Standard(ap) = &key.atomic_pattern else {
        return Err(Error::Keys(
            "only standard atomic-pattern keys are supported".into(),
        ));
    };
    if !ext.shares_glwe_key_with(set) || ext.id == set.id {
        return Err(Error::Keys(format!(
            "{} cannot run the extractions of {}: generate keys for this circuit",
            ext.name, set.name
        )));
    }
    let params = tfhe_parameters(ext)?;
    let (glwe, lwe, _, _) = ap.clone().into_raw_parts();
    let glwe = GlweSecretKeyOwned::from_container(
        glwe.into_container(),
        PolynomialSize(ext.polynomial_size),
    );
    let small = match small {
        Some(s) => s,
        None if ext.shares_lwe_key_with(set) => lwe,
        None => {
            let fresh = ::tfhe::shortint::ClientKey::new(params);
            let AtomicPatternClientKey::Standard(f) = fresh.atomic_pattern else {
                return Err(Error::Keys(
                    "only standard atomic-pattern keys are supported".into(),
                ));
            };
            f.into_raw_parts().1
        }
    };
    if small.lwe_dimension().0 != ext.lwe_dimension || glwe.glwe_dimension().0 != ext.glwe_dimension
    {
        return Err(Error::Keys(format!(
            "key dimensions do not match {}",
            ext.name
        )));
    }
    let ap = StandardAtomicPatternClientKey::from_raw_parts(glwe, small, params, None);
    Ok(ExtractClientKey {
        set: ext,
        key: ::tfhe::shortint::ClientKey {
            atomic_pattern: AtomicPatternClientKey::Standard(ap),
        },
    })
}
