//! Exact rounding on two sets: the extractions on a cheaper set that shares the table set's
//! GLWE key, bit-identical to clear for every pair the planner may choose, the planner's
//! choice, and key files of two sets whose extraction set was altered refused.

use std::path::Path;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sqnn::analyze::CheckedGraph;
use sqnn::execute::{Backend, ClearBackend};
use sqnn::fhe::{self, Extractions, FheMode, FhePlan, ParamSet, PlanFacts, PlanRequest};
use sqnn::tfhe::{has_shipped_security, save_keys, ClientKey, ServerKey, TfheBackend};
use sqnn::Error;

use crate::common::builder::Builder;
use crate::common::tfhe::*;
use crate::rounding::rounded_lut;

/// 7-bit accumulators whose tables drop 3 bits, two layers of tables (the second reads a dot
/// of bootstrap outputs, the noise the extractions amplify), tables at odd phases.
fn circuit() -> CheckedGraph {
    circuit_dropping(3)
}

/// The same circuit with tables that drop `r` bits (5 for a table set of `N = 512`, whose
/// 7-bit reads need buckets 32 values apart to be exact at 2^-40).
fn circuit_dropping(r: u32) -> CheckedGraph {
    let mut b = Builder::new("tfhe-test-extract", 4, 4, 7);
    let x0 = b.input(0, 15);
    let x1 = b.input(0, 15);
    let d0 = b.dot(0, &[(x0, 4), (x1, 1)], 0);
    let d1 = b.dot(0, &[(x0, 3), (x1, -2)], 0);
    let l0 = rounded_lut(&mut b, 0, d0, r, 5, |i| (i * 3 + 1) % 4);
    let l1 = rounded_lut(&mut b, 0, d1, r, 2, |i| i.min(3));
    let d2 = b.dot(1, &[(l0, 2), (l1, -1)], 3);
    let l2 = rounded_lut(&mut b, 1, d2, r.min(3), 3, |i| 3 - i);
    let o0 = b.dot(2, &[(l2, 1)], 0);
    let o1 = b.dot(2, &[(l0, 1), (l1, 1)], 0);
    b.finish(&[o0, o1])
}

fn plan_pair(c: &CheckedGraph, table: &ParamSet, ext: Extractions) -> sqnn::Result<FhePlan> {
    let req = PlanRequest::new(FheMode::Exact)
        .on(table.id)
        .target(-40.0)
        .cores(2)
        .extractions(ext);
    fhe::plan(&PlanFacts::from(c), &req)
}

/// Every (table set, extraction set) pair the planner may choose: both sets keep a shipped
/// set's security, share the GLWE key's shape and noise, the plan meets 2^-40 and runs its
/// extractions there, and encrypted == clear.
#[test]
fn extractions_on_another_set_match_clear_for_every_pair() {
    let pairs = fhe::extraction_pairs();
    assert!(pairs.contains(&(
        fhe::ParamSetId::ClassicMsg2Carry2Pbs2B15,
        fhe::ParamSetId::ClassicMsg1Carry1
    )));
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    let inputs: Vec<Vec<i64>> = (0..6)
        .map(|_| vec![rng.gen_range(0..=15), rng.gen_range(0..=15)])
        .collect();
    for (t, e) in pairs {
        let (t, e) = (t.set(), e.set());
        let c = circuit_dropping(if t.polynomial_size < 2048 { 5 } else { 3 });
        let clear = ClearBackend::default().run(&c, &inputs).unwrap();
        assert!(has_shipped_security(t).unwrap() && has_shipped_security(e).unwrap());
        assert!(e.shares_glwe_key_with(t));
        assert_eq!(
            e.glwe_dimension * e.polynomial_size,
            t.glwe_dimension * t.polynomial_size
        );
        let plan = plan_pair(&c, t, Extractions::On(e.id)).unwrap();
        assert!(plan.exact_rounding, "{} / {}", t.name, e.name);
        assert_eq!(plan.extraction_parameter_set, Some(e.id));
        assert!(plan.worst_log2_p_fail <= -40.0, "{} / {}", t.name, e.name);
        let b = TfheBackend::generate(&c, &plan).unwrap();
        assert_eq!(b.server().extraction_set(), Some(e.name));
        assert_eq!(b.server().pbs_per_sample(&c), plan.pbs_count);
        assert_eq!(
            b.run(&c, &inputs).unwrap(),
            clear,
            "{} / {}",
            t.name,
            e.name
        );
    }
}

/// Every chunk width ([`fhe::extraction_chunks`]) of every pair the planner may choose, on
/// tables that drop 5 bits (chunks 1+1+1+1+1, 2+2+1, 3+2, 4+1 and 5): each width that meets
/// 2^-40 is bit-identical to clear, with one key per pair (the width is part of the encoding);
/// one bit per bootstrap always meets it, and so does some wider chunk.
#[test]
fn every_chunk_width_matches_clear_for_every_pair() {
    let mut rng = ChaCha8Rng::seed_from_u64(10);
    let inputs: Vec<Vec<i64>> = (0..6)
        .map(|_| vec![rng.gen_range(0..=15), rng.gen_range(0..=15)])
        .collect();
    let c = circuit_dropping(5);
    let clear = ClearBackend::default().run(&c, &inputs).unwrap();
    for (t, e) in fhe::extraction_pairs() {
        let (t, e) = (t.set(), e.set());
        let widths: Vec<(u32, FhePlan)> = (1..=5)
            .filter_map(|w| {
                let req = PlanRequest::new(FheMode::Exact)
                    .on(t.id)
                    .cores(2)
                    .extractions(Extractions::On(e.id))
                    .extraction_chunk_bits(w);
                fhe::plan(&PlanFacts::from(&c), &req).ok().map(|p| (w, p))
            })
            .collect();
        assert_eq!(
            widths.first().map(|(w, _)| *w),
            Some(1),
            "{} / {}",
            t.name,
            e.name
        );
        assert!(
            widths.len() >= 2,
            "{} / {}: no chunk wider than one bit",
            t.name,
            e.name
        );
        let b = TfheBackend::generate(&c, &widths[0].1).unwrap();
        for (w, plan) in &widths {
            assert_eq!(plan.extraction_chunk_bits, *w);
            assert!(plan.worst_log2_p_fail <= -40.0);
            let client = b.client().rebind_with(&c, plan).unwrap();
            let server = b.server().rebind_with(&c, plan).unwrap();
            assert_eq!(server.pbs_per_sample(&c), plan.pbs_count);
            let rb = TfheBackend::new(client, server).unwrap();
            assert_eq!(
                rb.run(&c, &inputs).unwrap(),
                clear,
                "{} / {}, chunks of {w}",
                t.name,
                e.name
            );
        }
    }
}

/// The planner puts the extractions on the cheaper set when it meets the target, says so, and
/// predicts less than on one set; a set that cannot share the GLWE key is refused by name.
#[test]
fn the_planner_chooses_the_cheaper_extraction_set() {
    let c = circuit();
    let t = set("V1_8_PARAM_MESSAGE_2_CARRY_2_KS_PBS_TUNIFORM_2M128_PBS_L2_B15");
    let one = plan_pair(&c, t, Extractions::TableSet).unwrap();
    let mixed = plan_pair(&c, t, Extractions::Cheapest).unwrap();
    assert_eq!(one.extraction_parameter_set, None);
    let e = mixed
        .extraction_parameter_set
        .expect("a cheaper extraction set");
    assert!(fhe::extraction_sets(t).iter().any(|s| s.id == e));
    assert!(mixed.latency_ms_per_sample < one.latency_ms_per_sample);
    assert!(mixed.worst_log2_p_fail <= -40.0);
    assert_eq!(mixed.pbs_count, one.pbs_count);
    assert!(fhe::render_plan(&mixed).contains("extractions  on"));
    // Extractions on the table set itself: the one-set plan.
    let same = plan_pair(&c, t, Extractions::On(t.id)).unwrap();
    assert_eq!(same, one);
    // The 6-bit set's key is 8192 bits: it cannot run the 4-bit variant's extractions.
    let six = fhe::ParamSetId::ClassicMsg3Carry3;
    let err = plan_pair(&c, t, Extractions::On(six)).unwrap_err();
    assert!(err.to_string().contains("k·N"), "{err}");
}

fn header(path: &Path) -> serde_json::Value {
    let bytes = std::fs::read(path).unwrap();
    let hlen = sqnn::cast::to_usize(u32::from_le_bytes(bytes[8..12].try_into().unwrap()));
    serde_json::from_slice(&bytes[12..12 + hlen]).unwrap()
}

fn edit_header(path: &Path, edit: impl Fn(&mut serde_json::Value)) {
    let bytes = std::fs::read(path).unwrap();
    let hlen = sqnn::cast::to_usize(u32::from_le_bytes(bytes[8..12].try_into().unwrap()));
    let mut h = header(path);
    edit(&mut h);
    let h = serde_json::to_vec(&h).unwrap();
    let mut out = bytes[..8].to_vec();
    out.extend_from_slice(&u32::try_from(h.len()).unwrap().to_le_bytes());
    out.extend_from_slice(&h);
    out.extend_from_slice(&bytes[12 + hlen..]);
    std::fs::write(path, out).unwrap();
}

/// Keys of two sets carry both sets' full parameters; altering a security-defining field of
/// either set, or naming an extraction set that cannot share the key, is refused on load.
/// Untouched, they load and evaluate bit-identically.
#[test]
fn a_two_set_key_file_with_an_altered_security_field_is_refused() {
    let c = circuit();
    let t = set("V1_8_PARAM_MESSAGE_2_CARRY_2_KS_PBS_TUNIFORM_2M128_PBS_L2_B15");
    let plan = plan_pair(&c, t, Extractions::On(fhe::ParamSetId::ClassicMsg1Carry1)).unwrap();
    let (ck, sk) = ClientKey::generate(&c, &plan).unwrap();
    let src = tempfile::tempdir().unwrap();
    let m = save_keys(src.path(), &c, &ck, &sk, FheMode::Exact).unwrap();
    assert_eq!(m.extraction_set.as_deref(), Some(SET2));
    for file in ["client.key", "server.key"] {
        let h = header(&src.path().join(file));
        assert_eq!(h["extraction_set"], SET2, "{file}");
        assert_eq!(h["extraction_parameters"]["lwe_dimension"], 879, "{file}");
        assert_eq!(h["extraction_parameters"]["glwe_dimension"], 4, "{file}");
        assert_eq!(h["parameters"]["lwe_dimension"], 918, "{file}");
        let load = |p: &Path| -> Result<(), Error> {
            if file == "client.key" {
                ClientKey::load(p, &c).map(|_| ())
            } else {
                ServerKey::load(p, &c).map(|_| ())
            }
        };
        for (part, field, value) in [
            (
                "extraction_parameters",
                "lwe_dimension",
                serde_json::json!(800),
            ),
            (
                "extraction_parameters",
                "polynomial_size",
                serde_json::json!(1024),
            ),
            (
                "extraction_parameters",
                "glwe_noise_distribution",
                serde_json::json!("TUniform(2^10)"),
            ),
            (
                "extraction_parameters",
                "lwe_noise_distribution",
                serde_json::json!("TUniform(2^30)"),
            ),
            ("parameters", "glwe_dimension", serde_json::json!(2)),
        ] {
            let d = tempfile::tempdir().unwrap();
            let p = d.path().join(file);
            std::fs::copy(src.path().join(file), &p).unwrap();
            edit_header(&p, |h| h[part][field] = value.clone());
            let m = match load(&p).unwrap_err() {
                Error::Keys(m) => m,
                other => panic!("expected a keys error, got {other:?}"),
            };
            assert!(
                m.contains(field) && m.contains("defines security"),
                "{file} {part}.{field}: {m}"
            );
        }
        // An extraction set that cannot share the table set's key (the 6-bit set's, 8192
        // bits): refused.
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join(file);
        std::fs::copy(src.path().join(file), &p).unwrap();
        let six = set("V1_8_PARAM_MESSAGE_3_CARRY_3_KS_PBS_TUNIFORM_2M128");
        edit_header(&p, |h| h["extraction_set"] = serde_json::json!(six.name));
        let m = load(&p).unwrap_err().to_string();
        assert!(m.contains("cannot share a key"), "{file}: {m}");
        // The chunk width is recorded; one sqnn never writes is refused.
        assert!(plan.extraction_chunk_bits > 1);
        assert_eq!(
            header(&src.path().join(file))["extraction_chunk_bits"],
            serde_json::json!(plan.extraction_chunk_bits)
        );
        for bad in [0, fhe::MAX_CHUNK_BITS + 1] {
            let d = tempfile::tempdir().unwrap();
            let p = d.path().join(file);
            std::fs::copy(src.path().join(file), &p).unwrap();
            edit_header(&p, |h| h["extraction_chunk_bits"] = serde_json::json!(bad));
            let m = load(&p).unwrap_err().to_string();
            assert!(m.contains("chunk width"), "{file}: {m}");
        }
        // Without the extraction set's parameters: refused.
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join(file);
        std::fs::copy(src.path().join(file), &p).unwrap();
        edit_header(&p, |h| {
            h.as_object_mut().unwrap().remove("extraction_parameters");
        });
        let m = load(&p).unwrap_err().to_string();
        assert!(m.contains("missing"), "{file}: {m}");
    }
    // Untouched: both load, and evaluate bit-identically.
    let b = TfheBackend::load(src.path(), &c).unwrap();
    assert_eq!(b.server().extraction_set(), Some(SET2));
    let inputs = vec![vec![3, 14], vec![15, 0], vec![7, 7]];
    let clear = ClearBackend::default().run(&c, &inputs).unwrap();
    assert_eq!(b.run(&c, &inputs).unwrap(), clear);
}
