//! Decomposition variants of shipped sets: the same security as their shipped set, `tfhe`'s
//! noise formulas as sqnn ports them, encrypted == clear on each variant the planner may
//! choose, and key files whose security-defining fields were altered refused.

use std::path::Path;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sqnn::execute::{Backend, ClearBackend};
use sqnn::fhe::{self, FheMode, ParamSet};
use sqnn::tfhe::{
    has_shipped_security, save_keys, tfhe_parameters, ClientKey, ServerKey, TfheBackend,
};
use sqnn::Error;
use tfhe::core_crypto::commons::noise_formulas as nf;
use tfhe::core_crypto::prelude::{
    DecompositionBaseLog, DecompositionLevelCount, GlweDimension, LweDimension, PolynomialSize,
};

use crate::common::builder::all_inputs;
use crate::common::tfhe::*;
use crate::rounding::three_rounded_tables;

fn variants() -> Vec<&'static ParamSet> {
    fhe::catalogue()
        .iter()
        .filter(|s| s.derives_from.is_some())
        .collect()
}

#[test]
fn variants_change_only_the_decomposition_of_a_shipped_set() {
    assert!(variants().len() >= 2);
    for set in fhe::catalogue() {
        assert!(has_shipped_security(set).unwrap(), "{}", set.name);
    }
    for v in variants() {
        let base = v.derives_from.unwrap().set();
        assert!(base.derives_from.is_none(), "{}", v.name);
        assert!(v.name.starts_with(base.name), "{}", v.name);
        let (p, b) = (tfhe_parameters(v).unwrap(), tfhe_parameters(base).unwrap());
        assert_eq!(p.lwe_dimension(), b.lwe_dimension());
        assert_eq!(p.glwe_dimension(), b.glwe_dimension());
        assert_eq!(p.polynomial_size(), b.polynomial_size());
        assert_eq!(p.lwe_noise_distribution(), b.lwe_noise_distribution());
        assert_eq!(p.glwe_noise_distribution(), b.glwe_noise_distribution());
        assert_eq!(p.ciphertext_modulus(), b.ciphertext_modulus());
        assert_eq!(p.encryption_key_choice(), b.encryption_key_choice());
        assert_eq!(p.message_modulus(), b.message_modulus());
        assert_ne!(
            (
                p.pbs_level(),
                p.pbs_base_log(),
                p.ks_level(),
                p.ks_base_log()
            ),
            (
                b.pbs_level(),
                b.pbs_base_log(),
                b.ks_level(),
                b.ks_base_log()
            )
        );
        assert_eq!(p.pbs_level().0, v.decomposition.pbs_level);
        assert_eq!(p.ks_base_log().0, v.decomposition.ks_base_log);
        let changes = v.variant_changes().unwrap();
        assert!(changes.contains("→"), "{changes}");
    }
}

/// sqnn's port of the formulas (`src/fhe/formulas.rs`) gives `tfhe`'s own figures.
#[test]
fn the_noise_formulas_are_tfhe_s() {
    let q = 2f64.powi(64);
    for set in fhe::catalogue().iter().filter(|s| s.grouping_factor == 1) {
        let d = set.decomposition;
        let big = set.glwe_dimension * set.polynomial_size;
        let ours =
            fhe::keyswitch_variance(big, set.lwe_noise_bound_log2, d.ks_base_log, d.ks_level);
        let theirs = nf::lwe_keyswitch::keyswitch_additive_variance_132_bits_security_tuniform(
            LweDimension(big),
            LweDimension(set.lwe_dimension),
            DecompositionBaseLog(d.ks_base_log),
            DecompositionLevelCount(d.ks_level),
            q,
            q,
        )
        .0;
        // tfhe's formula derives the noise bound from n (the bound its sets use).
        assert!(
            (ours / theirs - 1.0).abs() < 1e-9,
            "{}: {ours} vs {theirs}",
            set.name
        );
        let ours = fhe::bootstrap_variance(
            set.lwe_dimension,
            set.glwe_dimension,
            set.polynomial_size,
            set.glwe_noise_bound_log2,
            d.pbs_base_log,
            d.pbs_level,
        );
        let theirs =
            nf::lwe_programmable_bootstrap::pbs_variance_132_bits_security_tuniform_fft_mul(
                LweDimension(set.lwe_dimension),
                GlweDimension(set.glwe_dimension),
                PolynomialSize(set.polynomial_size),
                DecompositionBaseLog(d.pbs_base_log),
                DecompositionLevelCount(d.pbs_level),
                53.0,
                q,
            )
            .0;
        assert!(
            (ours / theirs - 1.0).abs() < 1e-9,
            "{}: {ours} vs {theirs}",
            set.name
        );
        let ours = fhe::modulus_switch_variance(
            set.lwe_dimension,
            set.polynomial_size,
            set.modulus_switch,
        );
        let m = 2.0 * set.polynomial_size as f64;
        let theirs = match set.modulus_switch {
            fhe::ModulusSwitch::Centered => nf::centered_mean_shifted_modulus_switch::centered_binary_shifted_modulus_switch_additive_variance(LweDimension(set.lwe_dimension), q, m).0,
            fhe::ModulusSwitch::Rounded => nf::modulus_switch::modulus_switch_additive_variance(LweDimension(set.lwe_dimension), q, m).0,
        };
        assert!(
            (ours / theirs - 1.0).abs() < 1e-9,
            "{}: {ours} vs {theirs}",
            set.name
        );
    }
}

/// A circuit whose tables drop 3 bits of 7-bit accumulators: exact rounding on a 4-bit
/// variant, or whole 2-bit reads on a 2-bit variant.
fn circuit_for(set: &ParamSet) -> sqnn::analyze::CheckedGraph {
    if set.polynomial_size < 2048 {
        return circuit2();
    }
    three_rounded_tables("tfhe-test-variant")
}

/// Every variant the planner may choose, encrypted == clear (exact mode, every bootstrap on
/// the variant; extractions on another set: `extract.rs`).
#[test]
fn encrypted_equals_clear_on_every_selectable_variant() {
    for set in variants().into_iter().filter(|s| s.selectable) {
        let c = circuit_for(set);
        let req = fhe::PlanRequest::new(FheMode::Exact)
            .on(set.id)
            .cores(2)
            .extractions(fhe::Extractions::TableSet);
        let plan = fhe::plan(&fhe::PlanFacts::from(&c), &req).unwrap();
        assert_eq!(plan.extraction_parameter_set, None);
        assert_eq!(plan.parameter_set, set.id);
        let b = TfheBackend::generate(&c, &plan).unwrap();
        let mut inputs = all_inputs(&c);
        if inputs.len() > 12 {
            let mut rng = ChaCha8Rng::seed_from_u64(7);
            inputs = (0..12)
                .map(|_| inputs[rng.gen_range(0..inputs.len())].clone())
                .collect();
        }
        let clear = ClearBackend::default().run(&c, &inputs).unwrap();
        assert_eq!(b.run(&c, &inputs).unwrap(), clear, "{}", set.name);
    }
}

/// Rewrites the JSON header of an sqnn file with `edit`.
fn edit_header(path: &Path, edit: impl Fn(&mut serde_json::Value)) {
    let bytes = std::fs::read(path).unwrap();
    let hlen = sqnn::cast::to_usize(u32::from_le_bytes(bytes[8..12].try_into().unwrap()));
    let mut header: serde_json::Value = serde_json::from_slice(&bytes[12..12 + hlen]).unwrap();
    edit(&mut header);
    let h = serde_json::to_vec(&header).unwrap();
    let mut out = bytes[..8].to_vec();
    out.extend_from_slice(&u32::try_from(h.len()).unwrap().to_le_bytes());
    out.extend_from_slice(&h);
    out.extend_from_slice(&bytes[12 + hlen..]);
    std::fs::write(path, out).unwrap();
}

fn keys_error(e: Error) -> String {
    match e {
        Error::Keys(m) => m,
        other => panic!("expected a keys error, got {other:?}"),
    }
}

#[test]
fn a_key_file_with_an_altered_security_field_is_refused() {
    let c = circuit4();
    let (ck, sk) = keys4();
    let src = tempfile::tempdir().unwrap();
    save_keys(src.path(), &c, ck, sk, FheMode::Exact).unwrap();
    for file in ["client.key", "server.key"] {
        let header: serde_json::Value = {
            let bytes = std::fs::read(src.path().join(file)).unwrap();
            let hlen = sqnn::cast::to_usize(u32::from_le_bytes(bytes[8..12].try_into().unwrap()));
            serde_json::from_slice(&bytes[12..12 + hlen]).unwrap()
        };
        assert_eq!(header["parameters"]["lwe_dimension"], 918, "{file}");
        assert_eq!(header["parameters"]["pbs_level"], 1, "{file}");
        let load = |p: &Path| -> Result<(), Error> {
            if file == "client.key" {
                ClientKey::load(p, &c).map(|_| ())
            } else {
                ServerKey::load(p, &c).map(|_| ())
            }
        };
        for (field, value) in [
            ("lwe_dimension", serde_json::json!(800)),
            ("polynomial_size", serde_json::json!(1024)),
            (
                "glwe_noise_distribution",
                serde_json::json!("TUniform(2^10)"),
            ),
            (
                "lwe_noise_distribution",
                serde_json::json!("TUniform(2^30)"),
            ),
            (
                "ciphertext_modulus",
                serde_json::json!("18446744069414584321"),
            ),
        ] {
            let d = tempfile::tempdir().unwrap();
            let p = d.path().join(file);
            std::fs::copy(src.path().join(file), &p).unwrap();
            edit_header(&p, |h| h["parameters"][field] = value.clone());
            let m = keys_error(load(&p).unwrap_err());
            assert!(
                m.contains(field) && m.contains("defines security"),
                "{file} {field}: {m}"
            );
        }
        // A decomposition that is not the set's: refused too (not the catalogue's set).
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join(file);
        std::fs::copy(src.path().join(file), &p).unwrap();
        edit_header(&p, |h| h["parameters"]["pbs_level"] = serde_json::json!(3));
        let m = keys_error(load(&p).unwrap_err());
        assert!(
            m.contains("pbs_level") && m.contains("altered"),
            "{file}: {m}"
        );
        // Untouched: loads.
        load(&src.path().join(file)).unwrap();
    }
}

/// Measured noise against the formula for every variant: `a` (keyswitch and modulus switch
/// at a bootstrap's input) and `b` (a bootstrap output's variance), each within the
/// validation's tolerance, Gaussian in shape. Measures with the secret key (feature
/// `calibration`); a few minutes.
///
/// `cargo test --release --features calibration --test tfhe variant_noise -- --ignored --nocapture`
#[cfg(feature = "calibration")]
#[test]
#[ignore]
fn variant_noise_matches_the_formula() {
    use sqnn::tfhe::measure;
    for set in variants() {
        let (cks, sks) = raw_keys(set);
        let (fa, fb) = set.formula_noise().unwrap();
        let fresh = measure::pbs_input_noise(set, &cks, &sks, 0, 3000).unwrap();
        let a = fresh.std.powi(2);
        let (_, b, kb) = measure::bootstrap_output_moments(set, &cks, &sks, 1000);
        println!(
            "{}: a measured {a:.2} / formula {fa:.2} = {:.3}, kurtosis {:.3}; b measured {b:.3e} \
             / formula {fb:.3e} = {:.3}, kurtosis {kb:.3}",
            set.name,
            a / fa,
            fresh.excess_kurtosis,
            b / fb
        );
        let tol = fhe::VARIANCE_TOLERANCE;
        assert!((a / fa - 1.0).abs() <= tol, "{}: a {a} vs {fa}", set.name);
        assert!((b / fb - 1.0).abs() <= tol, "{}: b {b} vs {fb}", set.name);
        let k = fhe::KURTOSIS_SIGMAS;
        assert!(fresh.excess_kurtosis.abs() <= k * (24.0f64 / 3000.0).sqrt());
        assert!(kb.abs() <= k * (24.0f64 / 1000.0).sqrt());
    }
}
