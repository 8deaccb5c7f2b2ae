//! Circuits, plans and keys shared by the TFHE tests and measurement programs: the 2-bit and
//! 4-bit (and multi-bit 2-bit) test circuits with keys generated once per process.

use std::sync::OnceLock;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sqnn::analyze::CheckedGraph;
use sqnn::execute::{Backend, ClearBackend};
use sqnn::fhe::{self, FheMode, FhePlan, ParamSet, ParamSetId, PlanFacts, PlanRequest};
use sqnn::ir::{signed_range, NodeId};
use sqnn::tfhe::{tfhe_parameters, ClientKey, ServerKey, TfheBackend};
use tfhe::shortint::server_key::LookupTableOwned;

use super::builder::Builder;

pub const SET2: &str = "V1_8_PARAM_MESSAGE_1_CARRY_1_KS_PBS_TUNIFORM_2M128";

pub const SET4: &str = "V1_8_PARAM_MESSAGE_2_CARRY_2_KS_PBS_TUNIFORM_2M128";

/// A multi-bit bootstrap (grouping 4, 2^-128): key generation takes a few seconds.
pub const SET2_MB: &str = "V1_8_PARAM_MULTI_BIT_GROUP_4_MESSAGE_1_CARRY_1_KS_PBS_TUNIFORM_2M128";

pub fn set(name: &str) -> &'static ParamSet {
    name.parse::<ParamSetId>().unwrap().set()
}

/// The exact plan of `c` on the set `name` at the circuit's own width (unchecked), 2^-40, 2 cores.
pub fn plan(c: &CheckedGraph, name: &str) -> FhePlan {
    let facts = PlanFacts::from(c);
    let width = fhe::needed_bits(&facts);
    plan_at_width(c, set(name), width, FheMode::Exact, -40.0, 2)
}

/// The plan of `c` on `set` in `mode`, at the mode's width (checked).
pub fn plan_on_set(
    c: &CheckedGraph,
    set: &ParamSet,
    mode: FheMode,
    target: f64,
    cores: usize,
) -> sqnn::Result<FhePlan> {
    let req = PlanRequest::new(mode)
        .on(set.id)
        .target(target)
        .cores(cores);
    fhe::plan(&PlanFacts::from(c), &req)
}

/// The plan of `c` on `set` at exactly `space_bits` bits (unchecked).
pub fn plan_at_width(
    c: &CheckedGraph,
    set: &ParamSet,
    space_bits: u32,
    mode: FheMode,
    target: f64,
    cores: usize,
) -> FhePlan {
    let req = PlanRequest::new(mode).on(set.id).space_bits(space_bits);
    fhe::plan(&PlanFacts::from(c), &req.target(target).cores(cores)).unwrap()
}

pub type Keys = (ClientKey, ServerKey);

/// Keys of the 4-bit set, generated once, bound to `circuit4`.
pub fn keys4() -> &'static Keys {
    static K: OnceLock<Keys> = OnceLock::new();
    K.get_or_init(|| {
        let c = circuit4();
        ClientKey::generate(&c, &plan(&c, SET4)).unwrap()
    })
}

/// Keys of the 2-bit set, generated once, bound to `circuit2`.
pub fn keys2() -> &'static Keys {
    static K: OnceLock<Keys> = OnceLock::new();
    K.get_or_init(|| {
        let c = circuit2();
        ClientKey::generate(&c, &plan(&c, SET2)).unwrap()
    })
}

/// Keys of the multi-bit 2-bit set (N = 2048), generated once, bound to `circuit2`.
pub fn keys2_mb() -> &'static Keys {
    static K: OnceLock<Keys> = OnceLock::new();
    K.get_or_init(|| {
        let c = circuit2();
        ClientKey::generate(&c, &plan(&c, SET2_MB)).unwrap()
    })
}

/// Three 2-bit inputs, weights of 3 bits (negative and positive), two accumulators that use
/// the whole 4-bit message space, tables of various shapes (clipped ramp, non-monotone,
/// constant), two output accumulators that fill the space too.
pub fn circuit4() -> CheckedGraph {
    let mut b = Builder::new("tfhe-test-4bit", 3, 2, 4);
    let x0 = b.input(-2, 1);
    let x1 = b.input(0, 3);
    let x2 = b.input(-1, 2);
    let d0 = b.dot(0, &[(x0, 3), (x1, -2)], 5); // [-7, 8]: 16 values
    let d1 = b.dot(0, &[(x0, 1), (x2, -4)], -1); // [-11, 4]: 16 values
    let d2 = b.dot(0, &[(x1, 1), (x2, 1)], 0); // [-1, 5]
    let l0 = b.lut(0, d0, |a| (a.div_euclid(3)).clamp(0, 3));
    let l1 = b.lut(0, d1, |a| (a * a).rem_euclid(4) - 2);
    let l2 = b.lut(0, d2, |_| 1);
    let o0 = b.dot(1, &[(l0, 2), (l1, -3), (l2, 1)], 0); // [-2, 13]
    let o1 = b.dot(1, &[(l0, -4), (l1, 1), (l2, 3)], 0); // [-11, 4]
    let c = b.finish(&[o0, o1]);
    for n in &c.report().neurons {
        assert!(n.range_bits <= 4);
    }
    assert_eq!(c.report().max_range_bits, 4);
    c
}

/// The same idea on the 2-bit set: 1-bit inputs, 2-bit weights.
pub fn circuit2() -> CheckedGraph {
    let mut b = Builder::new("tfhe-test-2bit", 2, 1, 2);
    let x0 = b.input(0, 1);
    let x1 = b.input(0, 1);
    let x2 = b.input(-1, 0);
    let d0 = b.dot(0, &[(x0, 1), (x1, -2)], 1); // [-1, 2]: 4 values
    let d1 = b.dot(0, &[(x0, -1), (x2, 1)], 0); // [-2, 0]
    let l0 = b.lut(0, d0, |a| i64::from(a > 0));
    let l1 = b.lut(0, d1, |a| i64::from(a == -1));
    let o0 = b.dot(1, &[(l0, 1), (l1, -1)], 0); // [-1, 1]
    let o1 = b.dot(1, &[(l0, -2), (l1, 1)], 0); // [-2, 1]
    b.finish(&[o0, o1])
}

/// Three 2-bit inputs, 4-bit weights, 5-bit accumulators (28 to 31 values) and 5-bit outputs:
/// wider than the 4-bit set's own 16-value space.
pub fn circuit5() -> CheckedGraph {
    let mut b = Builder::new("tfhe-test-5bit", 4, 2, 5);
    let x0 = b.input(-2, 1);
    let x1 = b.input(0, 3);
    let x2 = b.input(-1, 2);
    let d0 = b.dot(0, &[(x0, 5), (x1, -4)], 2); // 28 values
    let d1 = b.dot(0, &[(x1, -6), (x2, 4)], 0); // 31 values
    let d2 = b.dot(0, &[(x0, 3), (x2, 7)], -1); // 31 values
    let l0 = b.lut(0, d0, |a| a.div_euclid(5).clamp(-2, 1));
    let l1 = b.lut(0, d1, |a| (a * a).rem_euclid(4));
    let l2 = b.lut(0, d2, |a| i64::from(a > 3));
    let o0 = b.dot(1, &[(l0, 3), (l1, -2), (l2, 1)], 0); // 17 values
    let o1 = b.dot(1, &[(l0, -7), (l2, 5)], 0); // 27 values
    let c = b.finish(&[o0, o1]);
    assert_eq!(c.report().max_range_bits, 5);
    c
}

/// A random sparse 2-layer circuit whose every value fits 4 bits.
pub fn random_circuit4(seed: u64) -> CheckedGraph {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    loop {
        let mut b = Builder::new(&format!("tfhe-random-{seed}"), 3, 2, 4);
        let (wlo, whi) = signed_range(3);
        let xs: Vec<NodeId> = (0..4)
            .map(|_| {
                let lo = rng.gen_range(-3..=0);
                b.input(lo, lo + rng.gen_range(0..=3))
            })
            .collect();
        let mut ok = true;
        let mut hidden = vec![];
        for _ in 0..3 {
            let mut terms = vec![];
            for &x in &xs {
                if rng.gen_bool(0.5) {
                    let w = loop {
                        let w = rng.gen_range(wlo..=whi);
                        if w != 0 {
                            break w;
                        }
                    };
                    terms.push((x, w));
                }
            }
            let d = b.dot(0, &terms, rng.gen_range(-5..=5));
            if b.facts[d].interval.range_bits() > 4 {
                ok = false;
                break;
            }
            let t: Vec<i64> = (0..16).map(|_| rng.gen_range(-2..=1)).collect();
            let lo = b.facts[d].interval.lo;
            hidden.push(b.lut(0, d, move |a| t[sqnn::cast::index(a - lo)]));
        }
        if !ok {
            continue;
        }
        let mut outs = vec![];
        for _ in 0..2 {
            let terms: Vec<(NodeId, i64)> = hidden
                .iter()
                .map(|&h| (h, rng.gen_range(-2..=2)))
                .filter(|&(_, w)| w != 0)
                .collect();
            let d = b.dot(1, &terms, rng.gen_range(-3..=3));
            if b.facts[d].interval.range_bits() > 4 {
                ok = false;
            }
            outs.push(d);
        }
        if ok {
            return b.finish(&outs);
        }
    }
}

/// A backend for `c` with `keys` (rebound to it).
pub fn backend(keys: &Keys, c: &CheckedGraph) -> TfheBackend {
    TfheBackend::new(keys.0.rebind(c).unwrap(), keys.1.rebind(c).unwrap()).unwrap()
}

/// A backend for `c` with the 4-bit keys and the encoding of `plan`.
pub fn backend_with(c: &CheckedGraph, plan: &FhePlan) -> TfheBackend {
    let (ck, sk) = keys4();
    TfheBackend::new(
        ck.rebind_with(c, plan).unwrap(),
        sk.rebind_with(c, plan).unwrap(),
    )
    .unwrap()
}

/// Runs `c` encrypted and in clear on `inputs`; asserts identical outputs.
pub fn assert_equivalent(keys: &Keys, c: &CheckedGraph, inputs: &[Vec<i64>]) {
    let clear = ClearBackend::default().run(c, inputs).unwrap();
    let enc = backend(keys, c).run(c, inputs).unwrap();
    assert_eq!(enc.len(), clear.len());
    for (i, (e, k)) in enc.iter().zip(&clear).enumerate() {
        assert_eq!(e, k, "sample {i} {:?}: encrypted != clear", inputs[i]);
    }
}

/// A raw `shortint` key pair for a parameter set, not bound to a circuit.
pub fn raw_keys(set: &ParamSet) -> (tfhe::shortint::ClientKey, tfhe::shortint::ServerKey) {
    tfhe::shortint::gen_keys(tfhe_parameters(set).unwrap())
}

/// One keyswitch + bootstrap on a fresh ciphertext (for benches and latency measurements).
pub fn one_bootstrap(
    cks: &tfhe::shortint::ClientKey,
    sks: &tfhe::shortint::ServerKey,
    lut: &LookupTableOwned,
) -> u64 {
    let ct = cks.unchecked_encrypt(1);
    let out = sks.apply_lookup_table(&ct, lut);
    out.ct.get_body().data.to_owned()
}
