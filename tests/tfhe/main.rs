//! The TFHE backend against the clear backend, key handling, files, and the noise model.
//!
//! Quick tests use the 2-bit and 4-bit parameter sets, with keys generated once per test
//! binary. Heavier measurements are `#[ignore]`d; each says the command that runs it.
#![cfg(feature = "tfhe-backend")]

#[path = "../common/mod.rs"]
mod common;

use std::path::Path;
use std::sync::OnceLock;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sqnn::analyze::{analyze, witness_circuit, CheckedGraph};
use sqnn::data::Task;
use sqnn::execute::{Backend, ClearBackend};
use sqnn::fhe::{self, FhePlan, ParamSet};
use sqnn::ir::{signed_range, ClientSpec, IntGraph, Meta, Node, NodeId, Op};
use sqnn::ir::{transfer, NodeFact};
use sqnn::tfhe::{
    load_client_key, load_server_key, measure, save_keys, ClientKey, EncryptedInput,
    EncryptedOutput, ServerKey, TfheBackend,
};
use sqnn::Error;

const SET2: &str = "V1_8_PARAM_MESSAGE_1_CARRY_1_KS_PBS_TUNIFORM_2M128";
const SET4: &str = "V1_8_PARAM_MESSAGE_2_CARRY_2_KS_PBS_TUNIFORM_2M128";
/// A multi-bit bootstrap (grouping 4, 2^-128): key generation takes a few seconds.
const SET2_MB: &str = "V1_8_PARAM_MULTI_BIT_GROUP_4_MESSAGE_1_CARRY_1_KS_PBS_TUNIFORM_2M128";

/// Builds an integer graph by hand, keeping the proved facts to size the tables.
struct Builder {
    g: IntGraph,
    facts: Vec<NodeFact>,
}

impl Builder {
    fn new(name: &str, n_w_bits: u32, n_a_bits: u32, n_accum_bits: u32) -> Builder {
        Builder {
            g: IntGraph {
                name: name.into(),
                meta: Meta {
                    task: Task::Regress,
                    n_w_bits,
                    n_a_bits,
                    n_accum_bits,
                    pruning: None,
                    rounding: None,
                },
                client: ClientSpec::identity(0, 0),
                nodes: vec![],
                outputs: vec![],
            },
            facts: vec![],
        }
    }

    fn push(&mut self, layer: usize, op: Op) -> NodeId {
        self.g.nodes.push(Node { layer, op });
        let id = self.g.nodes.len() - 1;
        let f = transfer(&self.g, &self.facts, id).expect("well-formed test graph");
        self.facts.push(f);
        id
    }

    fn input(&mut self, lo: i64, hi: i64) -> NodeId {
        let feature = self.g.client.feature_mean.len();
        self.g.client.feature_mean.push(0.0);
        self.g.client.feature_std.push(1.0);
        self.push(0, Op::Input { feature, lo, hi })
    }

    fn dot(&mut self, layer: usize, terms: &[(NodeId, i64)], constant: i64) -> NodeId {
        let mut terms = terms.to_vec();
        terms.sort();
        self.push(layer, Op::Dot { terms, constant })
    }

    /// A table over the dot's whole proved interval: `f(accumulator)`.
    fn lut(&mut self, layer: usize, dot: NodeId, f: impl Fn(i64) -> i64) -> NodeId {
        let iv = self.facts[dot].interval;
        let table: Vec<i64> = (iv.lo..=iv.hi).map(f).collect();
        let out_lo = *table.iter().min().unwrap();
        let out_hi = *table.iter().max().unwrap();
        self.push(
            layer,
            Op::Lut {
                input: dot,
                offset: -iv.lo,
                round_bits: 0,
                out_lo,
                out_hi,
                table,
            },
        )
    }

    fn finish(mut self, outputs: &[NodeId]) -> CheckedGraph {
        self.g.outputs = outputs.to_vec();
        self.g.client.output_scale = vec![1.0; outputs.len()];
        self.g.client.output_bias = vec![0.0; outputs.len()];
        CheckedGraph::new(self.g)
            .expect("valid graph")
            .expect("within budget")
    }
}

/// Three 2-bit inputs, weights of 3 bits (negative and positive), two accumulators that use
/// the whole 4-bit message space, tables of various shapes (clipped ramp, non-monotone,
/// constant), two output accumulators that fill the space too.
fn circuit4() -> CheckedGraph {
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
fn circuit2() -> CheckedGraph {
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

fn plan(c: &CheckedGraph, set: &str) -> FhePlan {
    fhe::plan_for(c.report(), fhe::parameter_set(set).unwrap(), -40.0, 2)
}

type Keys = (ClientKey, ServerKey);

/// Keys of the 4-bit set, generated once, bound to `circuit4`.
fn keys4() -> &'static Keys {
    static K: OnceLock<Keys> = OnceLock::new();
    K.get_or_init(|| {
        let c = circuit4();
        ClientKey::generate(&c, &plan(&c, SET4)).unwrap()
    })
}

/// Keys of the 2-bit set, generated once, bound to `circuit2`.
fn keys2() -> &'static Keys {
    static K: OnceLock<Keys> = OnceLock::new();
    K.get_or_init(|| {
        let c = circuit2();
        ClientKey::generate(&c, &plan(&c, SET2)).unwrap()
    })
}

fn backend(keys: &Keys, c: &CheckedGraph) -> TfheBackend {
    let mut b = TfheBackend::new(keys.0.rebind(c).unwrap(), keys.1.rebind(c).unwrap()).unwrap();
    b.progress = false;
    b
}

/// Every input combination of a circuit (product of the input intervals).
fn all_inputs(c: &CheckedGraph) -> Vec<Vec<i64>> {
    let mut out = vec![vec![]];
    for &id in &c.graph().input_nodes() {
        let iv = c.facts()[id].interval;
        out = out
            .into_iter()
            .flat_map(|p| {
                (iv.lo..=iv.hi).map(move |v| {
                    let mut q = p.clone();
                    q.push(v);
                    q
                })
            })
            .collect();
    }
    out
}

/// Runs `c` encrypted and in clear on `inputs`; asserts identical outputs.
fn assert_equivalent(keys: &Keys, c: &CheckedGraph, inputs: &[Vec<i64>]) {
    let clear = ClearBackend::default().run(c, inputs).unwrap();
    let enc = backend(keys, c).run(c, inputs).unwrap();
    assert_eq!(enc.len(), clear.len());
    for (i, (e, k)) in enc.iter().zip(&clear).enumerate() {
        assert_eq!(e, k, "sample {i} {:?}: encrypted != clear", inputs[i]);
    }
}

/// Runs every dot's witness circuit (the inputs attaining its proved lo and hi) encrypted:
/// the decrypted accumulators must be exactly the proved bounds.
fn assert_witnesses(keys: &Keys, c: &CheckedGraph) {
    let an = c.analyzed();
    for (id, n) in c.graph().nodes.iter().enumerate() {
        if !matches!(n.op, Op::Dot { .. }) {
            continue;
        }
        let (sub, lo_in, hi_in) = witness_circuit(an, id).unwrap();
        let sub = analyze(sub).unwrap().check().map_err(|_| ()).unwrap();
        let out = backend(keys, &sub)
            .run(&sub, &[lo_in.clone(), hi_in.clone()])
            .unwrap();
        let iv = c.facts()[id].interval;
        assert_eq!(out[0], vec![iv.lo], "dot {id}: witness of lo");
        assert_eq!(out[1], vec![iv.hi], "dot {id}: witness of hi");
    }
}

#[test]
fn four_bit_circuit_matches_clear_on_every_input_and_witness() {
    let c = circuit4();
    let inputs = all_inputs(&c);
    assert_eq!(inputs.len(), 64);
    assert_equivalent(keys4(), &c, &inputs);
    assert_witnesses(keys4(), &c);
    // The witnesses of the first-layer dots through the whole circuit, too.
    let ids = c.graph().input_nodes();
    let mut extra = Vec::new();
    for (id, n) in c.graph().nodes.iter().enumerate() {
        if let Op::Dot { terms, .. } = &n.op {
            if n.layer == 0 {
                let f = &c.facts()[id];
                for w in [&f.witness_lo, &f.witness_hi] {
                    let mut x: Vec<i64> = ids.iter().map(|&i| c.facts()[i].interval.lo).collect();
                    for (&(src, _), &v) in terms.iter().zip(w.iter()) {
                        x[ids.iter().position(|&i| i == src).unwrap()] = v;
                    }
                    extra.push(x);
                }
            }
        }
    }
    assert_equivalent(keys4(), &c, &extra);
}

#[test]
fn two_bit_circuit_matches_clear_on_every_input_and_witness() {
    let c = circuit2();
    let inputs = all_inputs(&c);
    assert_eq!(inputs.len(), 8);
    assert_equivalent(keys2(), &c, &inputs);
    assert_witnesses(keys2(), &c);
}

/// Keys of the multi-bit 2-bit set (N = 2048), generated once, bound to `circuit2`.
fn keys2_mb() -> &'static Keys {
    static K: OnceLock<Keys> = OnceLock::new();
    K.get_or_init(|| {
        let c = circuit2();
        ClientKey::generate(&c, &plan(&c, SET2_MB)).unwrap()
    })
}

/// The 2-bit circuit on a multi-bit bootstrap (grouping 4; rounding modulus switch, so the
/// backend shifts dots by half a position the other way): bit-identical to the clear backend
/// on every input and witness, also with the server key saved and loaded back.
#[test]
fn multi_bit_circuit_matches_clear_and_its_keys_round_trip() {
    let c = circuit2();
    let set = fhe::parameter_set(SET2_MB).unwrap();
    assert!(set.grouping_factor > 1);
    let keys = keys2_mb();
    let inputs = all_inputs(&c);
    assert_equivalent(keys, &c, &inputs);
    assert_witnesses(keys, &c);
    let dir = tempfile::tempdir().unwrap();
    let m = save_keys(dir.path(), &c, &keys.0, &keys.1).unwrap();
    assert_eq!(m.parameter_set, SET2_MB);
    let loaded = (
        load_client_key(dir.path(), &c).unwrap(),
        load_server_key(dir.path(), &c).unwrap(),
    );
    assert_eq!(loaded.1.parameter_set(), SET2_MB);
    assert_equivalent(&loaded, &c, &inputs);
}

/// A random sparse 2-layer circuit whose every value fits 4 bits.
fn random_circuit4(seed: u64) -> CheckedGraph {
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
            hidden.push(b.lut(0, d, move |a| t[(a - lo) as usize]));
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

#[test]
fn random_circuits_match_clear() {
    for seed in 0..3 {
        let c = random_circuit4(seed);
        let mut rng = ChaCha8Rng::seed_from_u64(100 + seed);
        let all = all_inputs(&c);
        let inputs: Vec<Vec<i64>> = (0..8)
            .map(|_| all[rng.gen_range(0..all.len())].clone())
            .collect();
        assert_equivalent(keys4(), &c, &inputs);
    }
}

#[test]
fn keys_inputs_and_outputs_round_trip_through_files() {
    let c = circuit4();
    let dir = tempfile::tempdir().unwrap();
    let (ck, sk) = keys4();
    let m = save_keys(dir.path(), &c, ck, sk).unwrap();
    assert_eq!(m.parameter_set, SET4);
    assert!(m.server_key_bytes > 1_000_000, "{m:?}");
    let server = load_server_key(dir.path(), &c).unwrap();
    let client = load_client_key(dir.path(), &c).unwrap();
    let x = vec![-2, 3, 2];
    let enc = client.encrypt(&c, &x).unwrap();
    let pin = dir.path().join("in.ct");
    enc.save(&pin).unwrap();
    let enc = EncryptedInput::load(&pin, &c).unwrap();
    let out = server.evaluate(&c, &enc).unwrap();
    let pout = dir.path().join("out.ct");
    out.save(&pout).unwrap();
    let out = EncryptedOutput::load(&pout, &c).unwrap();
    // A loaded client key decrypts what the original server key computed, and vice versa.
    let got = client.decrypt(&c, &out).unwrap();
    let want = ClearBackend::default()
        .run(&c, std::slice::from_ref(&x))
        .unwrap();
    assert_eq!(got, want[0]);
    let out2 = sk.evaluate(&c, &ck.encrypt(&c, &x).unwrap()).unwrap();
    assert_eq!(client.decrypt(&c, &out2).unwrap(), want[0]);
    // Loaded keys make a working backend.
    let mut b = TfheBackend::load(dir.path(), &c).unwrap();
    b.progress = false;
    assert_eq!(b.run(&c, &[x]).unwrap(), want);
}

fn keys_error(e: Error) -> String {
    match e {
        Error::Keys(m) => m,
        other => panic!("expected a keys error, got {other:?}"),
    }
}

#[test]
fn keys_for_another_circuit_are_refused() {
    let c4 = circuit4();
    let other = random_circuit4(7);
    let dir = tempfile::tempdir().unwrap();
    let (ck, sk) = keys4();
    save_keys(dir.path(), &c4, ck, sk).unwrap();
    let want = other.graph().digest().unwrap();
    let have = c4.graph().digest().unwrap();
    for e in [
        load_server_key(dir.path(), &other).unwrap_err(),
        load_client_key(dir.path(), &other).unwrap_err(),
        ServerKey::load(&dir.path().join("server.key"), &other).unwrap_err(),
        ClientKey::load(&dir.path().join("client.key"), &other).unwrap_err(),
    ] {
        let m = keys_error(e);
        assert!(m.contains("belongs to circuit"), "{m}");
        assert!(m.contains(&have[..16]) && m.contains(&want[..16]), "{m}");
        assert!(m.contains("sqnn keygen CIRCUIT --out-dir DIR"), "{m}");
    }
    // In memory too: encrypting, evaluating or decrypting for another circuit.
    let x = vec![0, 0, 0, 0];
    assert!(keys_error(ck.encrypt(&other, &x).unwrap_err()).contains("belongs to circuit"));
    let enc = ck.encrypt(&c4, &[0, 0, 0]).unwrap();
    assert!(keys_error(sk.evaluate(&other, &enc).unwrap_err()).contains("belongs to circuit"));
    let sk_other = sk.rebind(&other).unwrap();
    assert!(keys_error(sk_other.evaluate(&other, &enc).unwrap_err()).contains("belongs to circuit"));
    let out = sk.evaluate(&c4, &enc).unwrap();
    assert!(keys_error(ck.decrypt(&other, &out).unwrap_err()).contains("belongs to circuit"));
    // Files of encrypted data carry the digest as well.
    let p = dir.path().join("in.ct");
    enc.save(&p).unwrap();
    assert!(
        keys_error(EncryptedInput::load(&p, &other).unwrap_err()).contains("belongs to circuit")
    );
    // A missing directory says how to make keys.
    let m = keys_error(load_server_key(&dir.path().join("nope"), &c4).unwrap_err());
    assert!(m.contains("sqnn keygen"), "{m}");
}

/// Rewrites a file's payload byte `at` (from the payload start) and, when `fix_checksum`,
/// the header's checksum so that the change reaches the deserializer.
fn tamper(path: &Path, at: usize, fix_checksum: bool) {
    use sha2::{Digest, Sha256};
    let mut bytes = std::fs::read(path).unwrap();
    let hlen = u32::from_le_bytes(bytes[8..12].try_into().unwrap()) as usize;
    let start = 12 + hlen;
    bytes[start + at] ^= 0x5a;
    if fix_checksum {
        let mut header: serde_json::Value = serde_json::from_slice(&bytes[12..start]).unwrap();
        let sum: String = Sha256::digest(&bytes[start..])
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        header["payload_sha256"] = serde_json::Value::String(sum);
        let h = serde_json::to_vec(&header).unwrap();
        assert_eq!(h.len(), hlen);
        bytes[12..start].copy_from_slice(&h);
    }
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn corrupted_files_give_clear_errors() {
    let c = circuit4();
    let (ck, sk) = keys4();
    let src = tempfile::tempdir().unwrap();
    save_keys(src.path(), &c, ck, sk).unwrap();
    let enc = ck.encrypt(&c, &[1, 2, 0]).unwrap();
    enc.save(&src.path().join("in.ct")).unwrap();
    let fresh = || {
        let d = tempfile::tempdir().unwrap();
        for f in ["client.key", "server.key", "keys.json", "in.ct"] {
            std::fs::copy(src.path().join(f), d.path().join(f)).unwrap();
        }
        d
    };
    type Load = fn(&Path, &CheckedGraph) -> Result<(), Error>;
    let loads: [(&str, Load); 3] = [
        ("server.key", |p, c| ServerKey::load(p, c).map(|_| ())),
        ("client.key", |p, c| ClientKey::load(p, c).map(|_| ())),
        ("in.ct", |p, c| EncryptedInput::load(p, c).map(|_| ())),
    ];
    for (file, load) in loads {
        // A flipped bit: checksum mismatch.
        let d = fresh();
        let p = d.path().join(file);
        tamper(&p, 100, false);
        let m = keys_error(load(&p, &c).unwrap_err());
        assert!(m.contains("corrupted"), "{file}: {m}");
        // A flipped bit with a recomputed checksum, early in the payload (the serialization
        // header and dimensions): the deserializer or the dimension check refuses it.
        for at in (0usize..260).step_by(19) {
            let d = fresh();
            let p = d.path().join(file);
            tamper(&p, at, true);
            match load(&p, &c) {
                Err(Error::Keys(m)) => assert!(!m.is_empty()),
                Err(other) => panic!("{file} byte {at}: expected a keys error, got {other:?}"),
                // A flip in a value the format cannot check (a key coefficient) loads.
                Ok(()) => {}
            }
        }
        // Truncated.
        let d = fresh();
        let p = d.path().join(file);
        let bytes = std::fs::read(&p).unwrap();
        std::fs::write(&p, &bytes[..bytes.len() / 2]).unwrap();
        let m = keys_error(load(&p, &c).unwrap_err());
        assert!(
            m.contains("corrupted") || m.contains("truncated"),
            "{file}: {m}"
        );
        // Not an sqnn file at all.
        std::fs::write(&p, b"hello, this is not a key").unwrap();
        assert!(keys_error(load(&p, &c).unwrap_err()).contains("not an sqnn"));
        std::fs::write(&p, b"").unwrap();
        assert!(keys_error(load(&p, &c).unwrap_err()).contains("corrupted"));
    }
    // The wrong kind of file.
    let d = fresh();
    let m = keys_error(ServerKey::load(&d.path().join("client.key"), &c).unwrap_err());
    assert!(m.contains("is a client key, not a server key"), "{m}");
    // A broken manifest.
    std::fs::write(d.path().join("keys.json"), "{").unwrap();
    let m = keys_error(load_server_key(d.path(), &c).unwrap_err());
    assert!(m.contains("manifest"), "{m}");
}

/// A table that drops low bits (`round_bits > 0`) runs like any other: the test vector reads
/// the whole accumulator and applies the shift itself.
#[test]
fn rounding_tables_match_clear() {
    let mut b = Builder::new("tfhe-test-round", 3, 2, 4);
    let x0 = b.input(0, 3);
    let x1 = b.input(-2, 1);
    let d = b.dot(0, &[(x0, 3)], 0); // [0, 9]
    let d2 = b.dot(0, &[(x0, -2), (x1, 3)], 1); // [-11, 4]
                                                // index = (acc + 0) >> 1: 5 entries; index = (acc + 11) >> 2: 4 entries.
    let l = b.push(
        0,
        Op::Lut {
            input: d,
            offset: 0,
            round_bits: 1,
            out_lo: 0,
            out_hi: 1,
            table: vec![0, 1, 1, 0, 1],
        },
    );
    let l2 = b.push(
        0,
        Op::Lut {
            input: d2,
            offset: 11,
            round_bits: 2,
            out_lo: -2,
            out_hi: 1,
            table: vec![-2, 1, 0, -1],
        },
    );
    let o = b.dot(1, &[(l, 1), (l2, 2)], 0);
    let c = b.finish(&[o]);
    let inputs = all_inputs(&c);
    assert_equivalent(keys4(), &c, &inputs);
}

/// Accumulators wider than one bootstrap can tell apart: 10-bit accumulators on the 2-bit set
/// (N = 512, 9 bits), with tables that drop 8 low bits. The chooser picks an 11-bit space (its
/// model charges these fresh first-layer inputs as bootstrap outputs, so a 10-bit space's
/// margins look too thin); the test runs the 10-bit space (half a position per value), where
/// the weight-1 outputs decrypt exactly (σ 0.06 units) and one table's buckets start at an odd
/// phase, so its margins must be aligned for the bootstrap to read whole buckets. The values sit
/// in the middle of their buckets (128 units from either edge; the read noise is about 9 units),
/// so encrypted equals clear on every input.
#[test]
fn tables_read_a_space_wider_than_the_polynomial_through_their_rounding() {
    let mut b = Builder::new("tfhe-test-round-wide", 10, 2, 10);
    let x = b.input(0, 3);
    let x2 = b.input(-2, 1);
    let x3 = b.input(0, 1);
    let d = b.dot(0, &[(x, 256)], 0); // [0, 768]
    let d2 = b.dot(0, &[(x2, 256), (x3, 3)], 0); // [-512, 259]: 772 values
    let l = b.push(
        0,
        Op::Lut {
            input: d,
            offset: 128,
            round_bits: 8,
            out_lo: 0,
            out_hi: 3,
            table: vec![2, 0, 3, 1],
        },
    );
    let l2 = b.push(
        0,
        Op::Lut {
            input: d2,
            offset: 639, // lo + offset = 127: an odd phase
            round_bits: 8,
            out_lo: 0,
            out_hi: 3,
            table: vec![1, 3, 0, 2],
        },
    );
    let o = b.dot(1, &[(l, 1)], 0);
    let o2 = b.dot(1, &[(l2, -1)], 1);
    let c = b.finish(&[o, o2]);
    assert_eq!(c.report().max_range_bits, 10);
    let set2 = set(SET2);
    assert_eq!(set2.max_space_bits(), 9);
    let chosen = fhe::plan_with(c.report(), set2, fhe::FheMode::Approximate, -40.0, 2).unwrap();
    assert_eq!((chosen.space_bits, chosen.box_positions), (11, 0.25));
    let plan = fhe::plan_on(c.report(), set2, 10, fhe::FheMode::Approximate, -40.0, 2);
    assert_eq!(plan.box_positions, 0.5);
    assert!(plan.worst_log2_p_fail < -30.0, "{}", plan.worst_log2_p_fail);
    let (ck, sk) = keys2();
    let mut backend = TfheBackend::new(
        ck.rebind_with(&c, &plan).unwrap(),
        sk.rebind_with(&c, &plan).unwrap(),
    )
    .unwrap();
    backend.progress = false;
    let inputs = all_inputs(&c);
    assert_eq!(inputs.len(), 32);
    let clear = ClearBackend::default().run(&c, &inputs).unwrap();
    assert_eq!(backend.run(&c, &inputs).unwrap(), clear);
    // Without rounding the same accumulators do not fit one bootstrap of this set.
    let mut unrounded = Builder::new("tfhe-test-round-wide-0", 10, 2, 10);
    let x = unrounded.input(0, 3);
    let d = unrounded.dot(0, &[(x, 256)], 0);
    let l = unrounded.lut(0, d, |a| i64::from(a > 300));
    let o = unrounded.dot(1, &[(l, 1)], 0);
    let c0 = unrounded.finish(&[o]);
    assert!(fhe::plan_with(c0.report(), set2, fhe::FheMode::Approximate, -40.0, 2).is_err());
}

/// A table over the dot's interval that drops `r` low bits: bucket `i` of `2^r` accumulators
/// (starting `phase` values before `lo`) gives `f(i)`.
fn rounded_lut(
    b: &mut Builder,
    layer: usize,
    dot: NodeId,
    r: u32,
    phase: i64,
    f: impl Fn(i64) -> i64,
) -> NodeId {
    let iv = b.facts[dot].interval;
    let len = ((iv.hi - iv.lo + phase) >> r) + 1;
    let table: Vec<i64> = (0..len).map(f).collect();
    let out_lo = *table.iter().min().unwrap();
    let out_hi = *table.iter().max().unwrap();
    b.push(
        layer,
        Op::Lut {
            input: dot,
            offset: phase - iv.lo,
            round_bits: r,
            out_lo,
            out_hi,
            table,
        },
    )
}

/// Exact rounding on the 4-bit set: 7-bit accumulators (a 7-bit space, 16 positions per
/// value, too narrow for exact reads of whole accumulators at σ ≈ 5 positions) whose tables
/// drop 3 bits. Each table first clears those bits with three 1-bit bootstraps, then reads a
/// value 8 apart from its neighbours: bit-identical to the clear backend, including a second
/// layer whose dot sums bootstrap outputs (the noise the extraction amplifies) and tables at
/// odd phases (aligned margins).
#[test]
fn exact_rounding_clears_dropped_bits_and_matches_clear() {
    let mut b = Builder::new("tfhe-test-exact-rounding", 4, 4, 7);
    let x0 = b.input(0, 15);
    let x1 = b.input(0, 15);
    let d0 = b.dot(0, &[(x0, 4), (x1, 1)], 0); // [0, 75]
    let d1 = b.dot(0, &[(x0, 3), (x1, -2)], 0); // [-30, 45]
    let l0 = rounded_lut(&mut b, 0, d0, 3, 5, |i| (i * 3 + 1) % 4);
    let l1 = rounded_lut(&mut b, 0, d1, 3, 2, |i| i.min(3));
    let d2 = b.dot(1, &[(l0, 2), (l1, -1)], 3); // [0, 9]
    let l2 = rounded_lut(&mut b, 1, d2, 3, 3, |i| 3 - i);
    let o0 = b.dot(2, &[(l2, 1)], 0);
    let o1 = b.dot(2, &[(l0, 1)], 0);
    let c = b.finish(&[o0, o1]);
    assert_eq!(c.report().max_range_bits, 7);
    let set4 = set(SET4);
    let whole = fhe::plan_on(c.report(), set4, 7, fhe::FheMode::Exact, -40.0, 2);
    assert!(
        whole.worst_log2_p_fail > -10.0,
        "{}",
        whole.worst_log2_p_fail
    );
    let plan = fhe::plan_with(c.report(), set4, fhe::FheMode::Exact, -40.0, 2).unwrap();
    assert!(plan.exact_rounding);
    assert_eq!((plan.space_bits, plan.pbs_count), (7, 12));
    assert!(plan.worst_log2_p_fail <= -40.0);
    assert!(plan
        .neurons
        .iter()
        .filter(|n| n.bootstrap)
        .all(|n| n.extractions == 3));
    let b = backend_with(&c, &plan);
    assert_eq!(b.server().pbs_per_sample(&c), plan.pbs_count);
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let inputs: Vec<Vec<i64>> = (0..24)
        .map(|_| vec![rng.gen_range(0..=15), rng.gen_range(0..=15)])
        .collect();
    let clear = ClearBackend::default().run(&c, &inputs).unwrap();
    assert_eq!(b.run(&c, &inputs).unwrap(), clear);
}

#[test]
fn a_circuit_too_wide_for_the_keys_is_refused() {
    let mut b = Builder::new("tfhe-test-wide", 3, 2, 6);
    let x0 = b.input(0, 3);
    let x1 = b.input(0, 3);
    let d = b.dot(0, &[(x0, 3), (x1, 3)], 0); // [0, 18]: 5 bits
    let c = b.finish(&[d]);
    let m = keys_error(keys4().0.rebind(&c).unwrap_err());
    assert!(m.contains("5-bit"), "{m}");
}

#[test]
fn catalogue_matches_tfhe_parameters() {
    for set in fhe::PARAMETER_SETS {
        let p = sqnn::tfhe::tfhe_parameters(set).unwrap();
        assert_eq!(p.lwe_dimension().0, set.lwe_dimension, "{}", set.name);
        assert_eq!(p.glwe_dimension().0, set.glwe_dimension, "{}", set.name);
        assert_eq!(p.polynomial_size().0, set.polynomial_size, "{}", set.name);
        assert_eq!(p.message_modulus().0, 1 << set.message_bits, "{}", set.name);
        assert_eq!(p.carry_modulus().0, 1 << set.carry_bits, "{}", set.name);
        assert!(
            (p.log2_p_fail() - set.designed_log2_p_fail).abs() < 0.1,
            "{}",
            set.name
        );
        let (g, centred) = match p {
            tfhe::shortint::parameters::PBSParameters::PBS(c) => (
                1,
                matches!(
                    c.modulus_switch_noise_reduction_params,
                    tfhe::shortint::parameters::ModulusSwitchType::CenteredMeanNoiseReduction
                ),
            ),
            tfhe::shortint::parameters::PBSParameters::MultiBitPBS(m) => {
                (m.grouping_factor.0, false)
            }
        };
        assert_eq!(g, set.grouping_factor, "{}", set.name);
        assert_eq!(
            centred,
            set.modulus_switch == fhe::ModulusSwitch::Centered,
            "{}",
            set.name
        );
        // The family is in the name.
        let fam = format!("_2M{}", -set.family_log2_p_fail);
        assert!(set.name.ends_with(&fam), "{}", set.name);
    }
}

// ------------------------------------------------------------------------------------------
// Wide accumulators on the 4-bit set: exact reads of a 5-bit space, approximate reads of 9 to
// 11 bits (one bootstrap each)
// ------------------------------------------------------------------------------------------

/// A backend for `c` with the 4-bit keys and the encoding of `plan`.
fn backend_with(c: &CheckedGraph, plan: &FhePlan) -> TfheBackend {
    let (ck, sk) = keys4();
    let mut b = TfheBackend::new(
        ck.rebind_with(c, plan).unwrap(),
        sk.rebind_with(c, plan).unwrap(),
    )
    .unwrap();
    b.progress = false;
    b
}

/// Three 2-bit inputs, 4-bit weights, 5-bit accumulators (28 to 31 values) and 5-bit outputs:
/// wider than the 4-bit set's own 16-value space.
fn circuit5() -> CheckedGraph {
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

/// Exact reads of a 5-bit space on the 4-bit set (N = 2048: 64 positions per value, each read
/// exact with probability 1 - 2^-33.6): bit-identical on every input. A 6-bit space (32
/// positions) misreads about one read in 1000 at σ ≈ 5 positions, so exact reads on N = 2048
/// stop at 5 bits (and at 4 bits for a target of 2^-40).
#[test]
fn exact_reads_of_a_five_bit_space_on_the_four_bit_set() {
    let c = circuit5();
    let set4 = set(SET4);
    assert!(fhe::plan_with(c.report(), set4, fhe::FheMode::Exact, -40.0, 2).is_err());
    let plan = fhe::plan_with(c.report(), set4, fhe::FheMode::Exact, -30.0, 2).unwrap();
    assert_eq!((plan.space_bits, plan.box_positions), (5, 64.0));
    assert!(plan.worst_log2_p_fail < -32.0, "{}", plan.worst_log2_p_fail);
    let b = backend_with(&c, &plan);
    let inputs = all_inputs(&c);
    assert_eq!(inputs.len(), 64);
    let clear = ClearBackend::default().run(&c, &inputs).unwrap();
    assert_eq!(b.run(&c, &inputs).unwrap(), clear);
}

/// Keys and encrypted files remember their encoding (`space_bits`); data made with another
/// encoding, or a plan of another set, is refused with a clear error.
#[test]
fn keys_and_ciphertexts_carry_their_encoding() {
    let c = circuit5();
    let p5 = fhe::plan_with(c.report(), set(SET4), fhe::FheMode::Exact, -30.0, 2).unwrap();
    let b = backend_with(&c, &p5);
    assert_eq!(b.client().space_bits(), 5);
    let dir = tempfile::tempdir().unwrap();
    let m = save_keys(dir.path(), &c, b.client(), b.server()).unwrap();
    assert_eq!(m.space_bits, Some(5));
    let loaded = TfheBackend::load(dir.path(), &c).unwrap();
    assert_eq!(loaded.server().space_bits(), 5);
    let x = vec![1, 2, -1];
    let want = ClearBackend::default()
        .run(&c, std::slice::from_ref(&x))
        .unwrap();
    assert_eq!(loaded.run(&c, std::slice::from_ref(&x)).unwrap(), want);
    let p = dir.path().join("in.ct");
    b.client().encrypt(&c, &x).unwrap().save(&p).unwrap();
    let enc = EncryptedInput::load(&p, &c).unwrap();
    let out = loaded.server().evaluate(&c, &enc).unwrap();
    assert_eq!(loaded.client().decrypt(&c, &out).unwrap(), want[0]);
    // The 4-bit circuit encrypted in a 5-bit space, evaluated by a key of the 4-bit space.
    let c4 = circuit4();
    let p5 = fhe::plan_on(c4.report(), set(SET4), 5, fhe::FheMode::Exact, -30.0, 2);
    let (ck, sk) = keys4();
    let enc5 = ck
        .rebind_with(&c4, &p5)
        .unwrap()
        .encrypt(&c4, &[0, 1, 2])
        .unwrap();
    let m = keys_error(sk.evaluate(&c4, &enc5).unwrap_err());
    assert!(m.contains("5-bit ciphertext space"), "{m}");
    // A plan of another parameter set, or a space the set cannot read.
    let p2 = plan(&c4, SET2);
    assert!(keys_error(sk.rebind_with(&c4, &p2).unwrap_err()).contains("the plan uses"));
    let p12 = fhe::plan_on(
        c4.report(),
        set(SET4),
        12,
        fhe::FheMode::Approximate,
        -30.0,
        2,
    );
    let m = keys_error(sk.rebind_with(&c4, &p12).unwrap_err());
    assert!(m.contains("12-bit ciphertext space does not fit"), "{m}");
}

/// Four signed 4-bit inputs, 4-bit weights, 8- and 9-bit accumulators (226 to 481 values),
/// 4-bit staircase tables (steps of about 25 to 30 units, one ReLU-like), outputs: each table
/// (weight 1) and one 8-bit mix.
fn circuit_wide() -> CheckedGraph {
    let mut b = Builder::new("tfhe-test-wide9", 4, 4, 9);
    let xs: Vec<NodeId> = (0..4).map(|_| b.input(-8, 7)).collect();
    let dots = [
        b.dot(0, &[(xs[0], 7), (xs[1], -8), (xs[2], 6), (xs[3], 5)], 3),
        b.dot(0, &[(xs[0], -5), (xs[1], 7), (xs[2], 7), (xs[3], -6)], 0),
        b.dot(0, &[(xs[0], 4), (xs[1], 3), (xs[2], -8)], -2),
        b.dot(0, &[(xs[0], 7), (xs[1], 7), (xs[2], 7), (xs[3], 7)], 0),
        b.dot(0, &[(xs[0], -8), (xs[1], -8), (xs[2], -8), (xs[3], -8)], 1),
    ];
    let mut ys = vec![];
    for (j, &d) in dots.iter().enumerate() {
        let iv = b.facts[d].interval;
        let w = iv.hi - iv.lo + 1;
        ys.push(if j == 3 {
            b.lut(0, d, |a| (a / 24).clamp(0, 15)) // ReLU, then requantize
        } else {
            b.lut(0, d, move |a| ((a - iv.lo) * 16 / w).min(15))
        });
    }
    let mut outs: Vec<NodeId> = ys.iter().map(|&y| b.dot(1, &[(y, 1)], 0)).collect();
    outs.push(b.dot(1, &[(ys[0], 3), (ys[1], -2), (ys[3], 1), (ys[4], -4)], 0));
    let c = b.finish(&outs);
    assert_eq!(c.report().max_range_bits, 9);
    c
}

/// `sigma_units_by_node` puts each table's read noise on the `Lut` node and each output's
/// decryption noise on the output dot, nothing elsewhere.
#[test]
fn simulation_noise_per_node_follows_the_tables() {
    let c = circuit_wide();
    let plan = fhe::plan_with(c.report(), set(SET4), fhe::FheMode::Approximate, -40.0, 2).unwrap();
    let sigma = fhe::sigma_units_by_node(&plan, c.graph());
    let of_dot = |d: NodeId| {
        plan.neurons
            .iter()
            .find(|n| n.node == d)
            .unwrap()
            .sigma_units
    };
    let g = c.graph();
    for (id, n) in g.nodes.iter().enumerate() {
        match &n.op {
            Op::Lut { input, .. } => assert_eq!(sigma[id], of_dot(*input)),
            Op::Dot { .. } if g.outputs.contains(&id) => assert_eq!(sigma[id], of_dot(id)),
            _ => assert_eq!(sigma[id], 0.0),
        }
    }
    let by_dot = fhe::read_sigma_units(&plan, c.report());
    assert_eq!(by_dot.len(), plan.neurons.len());
    assert!(by_dot.iter().all(|&(d, s)| s == of_dot(d)));
}

/// Approximate reads of 9 to 11-bit values on the multi-bit 2-bit set (N = 2048, one position
/// per value at P = 11): every bootstrap reads the position that the emulation of its multi-bit
/// modulus switch (rounded subset sums, with sqnn's half-position shift) predicts (up to the
/// table output's own noise at one position per value), and stays within the offsets the
/// calibrated noise predicts.
#[test]
fn multi_bit_reads_follow_the_emulated_modulus_switch() {
    let c = circuit_wide();
    let s = set(SET2_MB);
    let (ck, sk) = keys2_mb();
    let chosen = fhe::plan_with(c.report(), s, fhe::FheMode::Approximate, -40.0, 2).unwrap();
    let forced = fhe::plan_on(c.report(), s, 11, fhe::FheMode::Approximate, -40.0, 2);
    assert!(forced.worst_log2_p_fail <= -40.0);
    let mut rng = ChaCha8Rng::seed_from_u64(21);
    let inputs: Vec<Vec<i64>> = (0..6)
        .map(|_| (0..4).map(|_| rng.gen_range(-8..=7)).collect())
        .collect();
    for plan in [&chosen, &forced] {
        let mut b = TfheBackend::new(
            ck.rebind_with(&c, plan).unwrap(),
            sk.rebind_with(&c, plan).unwrap(),
        )
        .unwrap();
        b.progress = false;
        let prepared = b.server().prepare(&c).unwrap();
        let noise: std::collections::HashMap<NodeId, &fhe::NeuronNoise> =
            plan.neurons.iter().map(|n| (n.node, n)).collect();
        // A table's output carries the bootstrap's output noise, σ = sqrt(b) = 0.25 positions
        // on this set: negligible with 4 positions per value, but at one position per value
        // its decryption is off by one in about 5 % of reads (the model charges it to the next
        // dot, as b·Σw²).
        let out_sigma = s.noise_per_w2.sqrt() / plan.box_positions;
        let mut exact = 0;
        let mut total = 0;
        for x in &inputs {
            let (reads, _) = measure::table_reads(&b, &c, &prepared, x).unwrap();
            for r in &reads {
                let e = r.expected.expect("within the margin");
                if out_sigma < 0.1 {
                    assert_eq!(r.output, e, "P = {}: {r:?}", plan.space_bits);
                } else {
                    assert!((r.output - e).abs() <= 1, "P = {}: {r:?}", plan.space_bits);
                }
                exact += usize::from(r.output == e);
                total += 1;
                let n = noise[&r.dot];
                let k = offset_bound(n.std, plan.box_positions, 6 * plan.pbs_count, -30.0);
                assert!(r.offset.abs() <= k, "P = {}: {r:?}", plan.space_bits);
            }
        }
        assert!(
            exact * 10 >= total * 8,
            "P = {}: {exact} of {total}",
            plan.space_bits
        );
    }
}

/// The smallest `k` such that no read of `reads` reads with σ `std` positions in boxes of `bx`
/// is off by more than `k`, except with probability `2^log2_budget` in all.
fn offset_bound(std: f64, bx: f64, reads: usize, log2_budget: f64) -> i64 {
    (1u64..)
        .find(|&k| fhe::offset_at_least_log2(std, bx, k + 1) + (reads as f64).log2() <= log2_budget)
        .unwrap() as i64
}

/// How far decrypting a table's output (σ of a weight-1 output) may be off in boxes of `bx`
/// positions, over `n` decryptions, except with probability 2^-30 in all (0 when exact).
fn decryption_bound(set: &ParamSet, bx: f64, n: usize) -> i64 {
    let std = set.decrypt_std(1);
    (0u64..)
        .find(|&k| fhe::offset_at_least_log2(std, bx, k + 1) + (n as f64).log2() <= -30.0)
        .unwrap() as i64
}

/// Whether `table` (through `entry`) gives the same value on `[v - k, v + k] ∩ [lo, hi]`.
fn flat(entry: impl Fn(i64) -> i64, v: i64, k: i64, lo: i64, hi: i64) -> bool {
    let y = entry(v);
    ((v - k).max(lo)..=(v + k).min(hi)).all(|x| entry(x) == y)
}

/// Approximate reads of 9-bit accumulators on the 4-bit set: the chooser's 9-bit space (4
/// positions per value, σ ≈ 1.3 units) and a forced 11-bit space (one position per value,
/// σ ≈ 5 units). Every read (observed with the secret key) is within ±k of the value (k from
/// the model at 2^-30 for the whole test), every table returns its entry at the clamped read,
/// a table that is flat over ±k returns the exact entry, and the outputs equal the clear
/// backend's whenever no table could have changed (the mixed output within its own ±k). A
/// table's output is observed by decrypting it, which has its own predicted error: none at 4
/// positions per value, but at one position per value (σ ≈ 0.15 units) about one decryption in
/// a thousand is off by one, so there the observation may differ by `k_dec` (from the model at
/// 2^-30 too; 0 at P = 9).
#[test]
fn approximate_reads_stay_within_the_predicted_offsets() {
    let c = circuit_wide();
    let set4 = set(SET4);
    let chosen = fhe::plan_with(c.report(), set4, fhe::FheMode::Approximate, -40.0, 2).unwrap();
    assert_eq!((chosen.space_bits, chosen.box_positions), (9, 4.0));
    assert!(chosen.worst_log2_p_fail <= -40.0);
    let forced = fhe::plan_on(c.report(), set4, 11, fhe::FheMode::Approximate, -40.0, 2);
    assert!(
        forced.worst_log2_p_fail <= -40.0,
        "{}",
        forced.worst_log2_p_fail
    );
    let samples = 8;
    let g = c.graph();
    let facts = c.facts();
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    let inputs: Vec<Vec<i64>> = (0..samples)
        .map(|_| (0..4).map(|_| rng.gen_range(-8..=7)).collect())
        .collect();
    let clear = ClearBackend::default().run(&c, &inputs).unwrap();
    let trace = ClearBackend::default()
        .trace(c.analyzed(), &inputs)
        .unwrap();
    let mut nonzero = 0;
    for plan in [&chosen, &forced] {
        let b = backend_with(&c, plan);
        let prepared = b.server().prepare(&c).unwrap();
        let reads_total = samples * plan.pbs_count;
        let noise: std::collections::HashMap<NodeId, &fhe::NeuronNoise> =
            plan.neurons.iter().map(|n| (n.node, n)).collect();
        let k_dec = decryption_bound(set4, plan.box_positions, 3 * reads_total);
        if plan.box_positions >= 2.0 {
            assert_eq!(k_dec, 0);
        }
        let observed = |got: i64, want: i64| (got - want).abs() <= k_dec;
        for (s, x) in inputs.iter().enumerate() {
            let (reads, outs) = measure::table_reads(&b, &c, &prepared, x).unwrap();
            let mut all_flat = true;
            for r in &reads {
                let n = noise[&r.dot];
                let k = offset_bound(n.std, plan.box_positions, reads_total, -30.0);
                assert!(
                    r.offset.abs() <= k,
                    "P = {}: sample {s}, table {}: read off by {} > {k} (σ {:.2} units)",
                    plan.space_bits,
                    r.lut,
                    r.offset,
                    n.sigma_units
                );
                nonzero += usize::from(r.offset != 0);
                let expected = r.expected.expect("read within the space");
                assert!(observed(r.output, expected), "k_dec {k_dec}: {r:?}");
                // The first layer reads fresh inputs: the value is the clear one.
                assert_eq!(r.value, trace[r.dot][s]);
                let Op::Lut { table, offset, .. } = &g.nodes[r.lut].op else {
                    unreachable!()
                };
                let iv = facts[r.dot].interval;
                let entry = |a: i64| table[(a + offset) as usize];
                if flat(entry, r.value, k, iv.lo, iv.hi) {
                    assert!(observed(r.output, r.exact), "flat table changed: {r:?}");
                } else {
                    all_flat = false;
                }
            }
            // Outputs 0-4 are tables with weight 1 (σ 0.15 positions: exact); output 5 mixes
            // them with weights up to 4.
            let mix = plan
                .neurons
                .iter()
                .find(|n| n.node == g.outputs[5])
                .unwrap();
            let k_out = offset_bound(mix.std, plan.box_positions, samples * 2, -30.0);
            let from_reads: Vec<i64> = reads.iter().map(|r| r.output).collect();
            assert_eq!(outs[..5], from_reads[..], "weight-1 outputs are the tables");
            if all_flat {
                for (o, k) in outs[..5].iter().zip(&clear[s][..5]) {
                    assert!(observed(*o, *k), "sample {s}: {:?} vs {:?}", outs, clear[s]);
                }
            }
            let Op::Dot { terms, .. } = &g.nodes[g.outputs[5]].op else {
                unreachable!()
            };
            let true_mix: i64 = terms
                .iter()
                .map(|&(src, w)| {
                    let lut = reads.iter().find(|r| r.lut == src).unwrap();
                    w * lut.output
                })
                .sum();
            assert!(
                (outs[5] - true_mix).abs() <= k_out,
                "P = {}: output 5 decrypted {} for {true_mix} (k = {k_out})",
                plan.space_bits,
                outs[5]
            );
        }
    }
    // With σ ≈ 5 units at P = 11, most reads are off: the approximation is exercised.
    assert!(nonzero >= samples * 5 / 2, "{nonzero} reads off");
}

// ------------------------------------------------------------------------------------------
// Noise: calibration and the measured failure rate (ignored: minutes of bootstraps)
// ------------------------------------------------------------------------------------------

fn set(name: &str) -> &'static ParamSet {
    fhe::parameter_set(name).unwrap()
}

/// A short tag of a catalogue set for the `SQNN_SETS` filter: its precision, `mbG` for a
/// multi-bit bootstrap of grouping `G`, `-64` for the 2^-64 family (e.g. `4`, `4-64`, `4mb4`,
/// `6mb2`).
fn tag(s: &ParamSet) -> String {
    let mut t = s.precision().to_string();
    if s.grouping_factor > 1 {
        t.push_str(&format!("mb{}", s.grouping_factor));
    }
    if s.family_log2_p_fail == -64 {
        t.push_str("-64");
    }
    t
}

/// The sets named by `SQNN_SETS` (tags or names, comma-separated; a set listed only for
/// reference, such as `6mb2`, must be named), or every selectable set.
fn sets_from_env() -> Vec<&'static ParamSet> {
    let which = std::env::var("SQNN_SETS").unwrap_or_default();
    fhe::PARAMETER_SETS
        .iter()
        .filter(|s| {
            if which.is_empty() {
                s.selectable
            } else {
                which.split(',').any(|w| w == tag(s) || w == s.name)
            }
        })
        .collect()
}

/// Measures the noise model's constants `a` and `b` of every selectable set (classic and
/// multi-bit, 2^-128 and 2^-64) and prints them with the catalogue's values. `a` is the
/// variance at the bootstrap input after the keyswitch and the set's own modulus switch
/// (emulated with the secret key: centred, rounded, or multi-bit subset sums), `b` a bootstrap
/// output's variance.
///
/// `cargo test --release --test tfhe noise_calibration -- --ignored --nocapture`
/// (`SQNN_SETS=2,4,4mb4` to pick sets by tag, see `tag`).
#[test]
#[ignore]
fn noise_calibration() {
    for s in sets_from_env() {
        let name = s.name;
        let (cks, sks) = measure::raw_keys(s).unwrap();
        let fresh = measure::pbs_input_noise(s, &cks, &sks, 0, 3000).unwrap();
        let a = fresh.std.powi(2);
        println!("{name}: fresh (a) {fresh:?}");
        let trials = if s.precision() >= 6 { 300 } else { 1000 };
        let b = measure::bootstrap_output_variance(s, &cks, &sks, trials);
        println!("{name}: bootstrap output variance (b) {b:.3e} from {trials} bootstraps");
        // The sum at the input of the next bootstrap: a + b·w², measured against predicted.
        let w = (((4.0 * a) / b).sqrt() as u64).clamp(1, 1 << 20);
        let st = measure::pbs_input_noise(s, &cks, &sks, w, trials).unwrap();
        println!(
            "{name}: weight {w}: measured std {:.2}, predicted sqrt(a + b·w²) = {:.2} ({st:?})",
            st.std,
            (a + b * (w * w) as f64).sqrt()
        );
        println!(
            "CALIBRATION {} tag {}: measured a = {a:.2}, b = {b:.3e}, mean {:.2}; catalogue a = {}, b = {:.3e}",
            name, tag(s), fresh.mean, s.noise_base, s.noise_per_w2
        );
    }
}

/// Wilson score interval (z = 2.58, 99 %) of `k` successes in `n` trials.
fn wilson(k: usize, n: usize) -> (f64, f64) {
    let z = 2.58f64;
    let (k, n) = (k as f64, n as f64);
    let p = k / n;
    let den = 1.0 + z * z / n;
    let c = (p + z * z / (2.0 * n)) / den;
    let h = z * (p * (1.0 - p) / n + z * z / (4.0 * n * n)).sqrt() / den;
    ((c - h).max(0.0), (c + h).min(1.0))
}

/// A deliberately noisy neuron on the 4-bit set: a bootstrap output times a large weight `w`
/// plus a fresh value, then a table (Σw² = w² + 1). The measured rate of wrong table entries
/// against the noise model's prediction, with a 99 % Wilson interval. (A checked circuit
/// cannot hold such a neuron: its proved range bounds Σw² by (M - 1)²; see
/// `measure::noisy_neuron_failures`.)
///
/// `cargo test --release --test tfhe failure_rate_matches_prediction -- --ignored --nocapture`
/// (`SQNN_FAILURE_TRIALS=N` bootstrap pairs per weight, default 1500).
#[test]
#[ignore]
fn failure_rate_matches_prediction() {
    let trials: usize = std::env::var("SQNN_FAILURE_TRIALS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1500);
    let s = set(SET4);
    let (cks, sks) = measure::raw_keys(s).unwrap();
    let mut outside = vec![];
    for weight in [150u64, 200, 250] {
        let sum_w2 = weight * weight + 1;
        let log2_p = s.bootstrap_log2_p_fail(sum_w2);
        let predicted = log2_p.exp2();
        let t = std::time::Instant::now();
        let wrong = measure::noisy_neuron_failures(s, &cks, &sks, weight, trials, weight);
        let (lo, hi) = wilson(wrong, trials);
        println!(
            "weight {weight} (Σw² {sum_w2}, predicted std {:.1}): {wrong} wrong of {trials} = {:.4} \
             (99 % interval [{lo:.4}, {hi:.4}]); predicted {predicted:.4} (2^{log2_p:.1}); {:.0} s",
            s.bootstrap_std(sum_w2),
            wrong as f64 / trials as f64,
            t.elapsed().as_secs_f64()
        );
        if predicted < lo || predicted > hi {
            outside.push(weight);
        }
    }
    assert!(
        outside.is_empty(),
        "prediction outside the measured interval for weights {outside:?}"
    );
}

/// Pins the calling thread (and the threads it spawns later) to CPU 0 with `taskset`.
fn pin_this_thread_to_one_core() -> bool {
    let Ok(link) = std::fs::read_link("/proc/thread-self") else {
        return false;
    };
    let tid = link.file_name().unwrap().to_string_lossy().to_string();
    std::process::Command::new("taskset")
        .args(["-p", "-c", "0", &tid])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

/// Per-bootstrap latency of every selectable set (classic and multi-bit, 2^-128 and 2^-64),
/// measured in one run so the sets can be compared: keyswitch + bootstrap on one core (the
/// measuring thread pinned to CPU 0 with `taskset`, so a multi-bit bootstrap's own threads
/// share that core), one bootstrap at a time on all cores (a multi-bit bootstrap spreads over
/// them; a classic one uses one), and amortized with one bootstrap per core. Also key generation
/// as sqnn does it, the saved key sizes, a reload of the saved server key, and the encrypted
/// inference of the 4-bit test circuit against its floor. Prints a table.
///
/// `cargo test --release --test tfhe latency_report -- --ignored --nocapture --test-threads 1`
/// (`SQNN_SETS=2,4,4mb4` to pick sets by tag, see `tag`).
#[test]
#[ignore]
fn latency_report() {
    use rayon::prelude::*;
    use std::time::Instant;
    let mut rows = vec![];
    for s in sets_from_env() {
        let name = s.name;
        // Key generation as sqnn does it (client key, compressed server key, decompression),
        // the sizes of the saved files, and the saved server key loaded back.
        let c2 = circuit2();
        let t = Instant::now();
        let (ck, sk) = ClientKey::generate(&c2, &plan(&c2, name)).unwrap();
        let keygen = t.elapsed().as_secs_f64();
        let dir = tempfile::tempdir().unwrap();
        let m = save_keys(dir.path(), &c2, &ck, &sk).unwrap();
        let t = Instant::now();
        let loaded = load_server_key(dir.path(), &c2).unwrap();
        let load_s = t.elapsed().as_secs_f64();
        let b = TfheBackend::new(ck.clone(), loaded).unwrap();
        let inputs = all_inputs(&c2);
        assert_eq!(
            b.run(&c2, &inputs).unwrap(),
            ClearBackend::default().run(&c2, &inputs).unwrap(),
            "{name}: reloaded server key"
        );
        drop(b);
        let in_memory = measure::server_key_bytes(s).unwrap();
        println!(
            "{name}: sqnn keygen {keygen:.1} s; client.key {} bytes, server.key {} bytes (compressed), {} in memory; reload {load_s:.1} s",
            m.client_key_bytes, m.server_key_bytes, in_memory
        );
        let (cks, sks) = measure::shortint_keys(&ck, &sk);
        let lut = sks.generate_lookup_table(|x| x);
        let n1 = if s.precision() >= 6 { 8 } else { 30 };
        // One core: a pinned thread (a multi-bit bootstrap's threads inherit the pinning).
        let one: Vec<f64> = std::thread::scope(|scope| {
            scope
                .spawn(|| {
                    assert!(pin_this_thread_to_one_core(), "taskset failed");
                    measure::one_bootstrap(cks, sks, &lut);
                    (0..n1)
                        .map(|_| {
                            let t = Instant::now();
                            measure::one_bootstrap(cks, sks, &lut);
                            t.elapsed().as_secs_f64() * 1e3
                        })
                        .collect()
                })
                .join()
                .unwrap()
        });
        // One at a time, all cores.
        let alone: Vec<f64> = (0..n1)
            .map(|_| {
                let t = Instant::now();
                measure::one_bootstrap(cks, sks, &lut);
                t.elapsed().as_secs_f64() * 1e3
            })
            .collect();
        let n2 = 2 * n1;
        let t = Instant::now();
        (0..n2).into_par_iter().for_each(|_| {
            measure::one_bootstrap(cks, sks, &lut);
        });
        let amortized = t.elapsed().as_secs_f64() * 1e3 / n2 as f64;
        let (t1, ta) = (sqnn::tfhe::median(&one), sqnn::tfhe::median(&alone));
        let cores = rayon::current_num_threads();
        // One bootstrap = s + p on one core, s + p / cores alone on all cores.
        let parallel = ((t1 - ta) / t1 * cores as f64 / (cores as f64 - 1.0)).clamp(0.0, 1.0);
        println!(
            "{name}: 1 core median {t1:.1} ms (min {:.1}); alone on {cores} cores {ta:.1} ms; {cores} threads amortized {amortized:.1} ms; parallel share {parallel:.2}; catalogue {} / {}",
            one.iter().cloned().fold(f64::MAX, f64::min),
            s.pbs_ms_1_thread,
            s.pbs_ms_2_threads
        );
        rows.push(format!(
            "| {} | {} | {t1:.1} | {ta:.1} | {amortized:.1} | {parallel:.2} | {keygen:.1} | {:.0} MB | {:.0} MB | {} |",
            tag(s),
            s.precision(),
            in_memory as f64 / 1e6,
            m.server_key_bytes as f64 / 1e6,
            name
        ));
    }
    println!("| tag | bits | 1 core ms | alone, all cores ms | amortized ms | parallel share | keygen s | server key in memory | server.key | set |");
    for r in rows {
        println!("{r}");
    }
    let c = circuit4();
    let mut b = backend(keys4(), &c);
    b.progress = false;
    let inputs: Vec<Vec<i64>> = all_inputs(&c).into_iter().take(20).collect();
    let run = b.run_timed(&c, &inputs).unwrap();
    let s = set(SET4);
    println!(
        "circuit4 ({} PBS): evaluate median {:.1} ms per sample; floor {:.1} ms (PBS × {:.1} ms ÷ {} cores); encrypt {:.2} ms, decrypt {:.3} ms",
        run.pbs_count,
        run.median_evaluate_ms(),
        run.pbs_count as f64 * s.pbs_ms_1_thread / rayon::current_num_threads() as f64,
        s.pbs_ms_1_thread,
        rayon::current_num_threads(),
        sqnn::tfhe::median(&run.encrypt_ms),
        sqnn::tfhe::median(&run.decrypt_ms),
    );
}

/// The iris circuit end to end: train with 2-bit weights and activations, 6-bit
/// accumulators, multiplier 1; lower, check, choose parameters (the 6-bit set), generate keys,
/// run every test sample encrypted; outputs must equal the clear backend's. Prints accuracy and
/// latency against the floor and Concrete ML (2.10 s quiet, 3.74 s contended per iris sample).
///
/// `cargo test --release --test tfhe iris_end_to_end -- --ignored --nocapture`
#[test]
#[ignore]
fn iris_end_to_end() {
    use sqnn::data::{train_test_split, Dataset};
    use sqnn::train::{EstimatorParams, NeuralNetClassifier};
    let ds = Dataset::load("iris", None, None).unwrap();
    let split = train_test_split(&ds, 0.25, 42).unwrap();
    let (train, test) = (ds.subset(&split.train), ds.subset(&split.test));
    let params = EstimatorParams {
        n_w_bits: 2,
        n_a_bits: 2,
        n_accum_bits: 6,
        n_hidden_neurons_multiplier: 1.0,
        ..EstimatorParams::default()
    };
    let t = std::time::Instant::now();
    let mut clf = NeuralNetClassifier::new(params.clone()).unwrap();
    clf.fit_dataset(&train).unwrap();
    println!("trained in {:.1} s", t.elapsed().as_secs_f64());
    let g = sqnn::lower::lower(clf.quantized().unwrap(), "iris", params.pruning).unwrap();
    let inputs = g.quantize_inputs(&test.x).unwrap();
    let c = CheckedGraph::new(g)
        .unwrap()
        .expect("iris passes its check");
    let plan = fhe::choose_parameters(c.report(), -40.0, rayon::current_num_threads()).unwrap();
    print!("{}", fhe::render_plan(&plan));
    let t = std::time::Instant::now();
    let mut b = TfheBackend::generate(&c, &plan).unwrap();
    println!("keygen {:.1} s", t.elapsed().as_secs_f64());
    b.progress = true;
    let run = b.run_timed(&c, &inputs).unwrap();
    let clear = ClearBackend::default().run(&c, &inputs).unwrap();
    let agree = run
        .outputs
        .iter()
        .zip(&clear)
        .filter(|(e, k)| e == k)
        .count();
    let correct = run
        .outputs
        .iter()
        .zip(&test.y)
        .filter(|(o, y)| c.graph().predict(o) == **y)
        .count();
    let floor = plan.latency_ms_per_sample;
    println!(
        "iris: {} test samples, agreement with clear {agree}/{}, accuracy {:.3}; PBS {} per \
         sample; evaluation median {:.0} ms (floor {floor:.0} ms; Concrete ML 2100 ms quiet)",
        inputs.len(),
        inputs.len(),
        correct as f64 / inputs.len() as f64,
        run.pbs_count,
        run.median_evaluate_ms()
    );
    assert_eq!(agree, inputs.len());
}

/// A circuit for measuring reads: four 4-bit inputs read by weight-1 dots (fresh noise) and
/// tables, then dots of Σw² 4, 98, 256 and 450 over the tables' outputs, read by tables too.
fn circuit_reads() -> CheckedGraph {
    let mut b = Builder::new("tfhe-test-reads", 5, 4, 9);
    let xs: Vec<NodeId> = (0..4).map(|_| b.input(0, 15)).collect();
    let ys: Vec<NodeId> = xs
        .iter()
        .map(|&x| {
            let d = b.dot(0, &[(x, 1)], 0);
            b.lut(0, d, |a| a)
        })
        .collect();
    let layer1: [&[(usize, i64)]; 4] = [
        &[(0, 1), (1, 1), (2, 1), (3, 1)],
        &[(0, 7), (1, -7)],
        &[(0, 8), (1, -8), (2, 8), (3, -8)],
        &[(0, 15), (1, -15)],
    ];
    let mut ls = vec![];
    for terms in layer1 {
        let t: Vec<(NodeId, i64)> = terms.iter().map(|&(j, w)| (ys[j], w)).collect();
        let d = b.dot(1, &t, 0);
        let iv = b.facts[d].interval;
        let w = iv.hi - iv.lo + 1;
        ls.push(b.lut(1, d, move |a| ((a - iv.lo) * 16 / w).min(15)));
    }
    let outs: Vec<NodeId> = ls.iter().map(|&l| b.dot(2, &[(l, 1)], 0)).collect();
    b.finish(&outs)
}

/// Approximate reads measured against the model: for spaces of 9, 10 and 11 bits on the
/// 4-bit set (4, 2 and 1 positions per value), per table (Σw² 1 with fresh inputs, 4, 98, 256,
/// 450), the rate of reads off by >= 1 and >= 2 units with 99 % Wilson intervals against the
/// predicted `erfc(((k - 1/2)·box) / (σ√2))`, and the mean and standard deviation of the error
/// in positions against `σ = sqrt(a + b·Σw²)` and 0. Fails when a prediction is outside its
/// interval (first-layer tables may also be below it: their inputs are fresh encryptions,
/// charged as bootstrap outputs) or the mean error is off centre.
///
/// `cargo test --release --test tfhe misread_rate_matches_prediction -- --ignored --nocapture`
/// (`SQNN_MISREAD_SAMPLES=N` samples per space, default 150: 8 bootstraps each).
#[test]
#[ignore]
fn misread_rate_matches_prediction() {
    let samples: usize = std::env::var("SQNN_MISREAD_SAMPLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(150);
    let c = circuit_reads();
    let set4 = set(SET4);
    let mut rng = ChaCha8Rng::seed_from_u64(77);
    let inputs: Vec<Vec<i64>> = (0..samples)
        .map(|_| (0..4).map(|_| rng.gen_range(0..=15)).collect())
        .collect();
    let mut outside = vec![];
    for p in [9u32, 10, 11] {
        let plan = fhe::plan_on(c.report(), set4, p, fhe::FheMode::Approximate, -40.0, 2);
        let b = backend_with(&c, &plan);
        let prepared = b.server().prepare(&c).unwrap();
        let t = std::time::Instant::now();
        let mut by_dot: std::collections::BTreeMap<NodeId, Vec<measure::TableRead>> =
            Default::default();
        // Observing a table's output means decrypting it (σ of a weight-1 output): allow what
        // the model predicts for that decryption at 2^-30 over the whole run.
        let k_dec = decryption_bound(set4, plan.box_positions, samples * plan.pbs_count);
        let observed = |got: i64, want: i64| (got - want).abs() <= k_dec;
        for x in &inputs {
            let (reads, _) = measure::table_reads(&b, &c, &prepared, x).unwrap();
            for r in reads {
                let expected = r.expected.expect("read within the space");
                assert!(observed(r.output, expected), "k_dec {k_dec}: {r:?}");
                by_dot.entry(r.dot).or_default().push(r);
            }
        }
        println!(
            "P = {p} ({} positions per value), {samples} samples, {:.0} s:",
            plan.box_positions,
            t.elapsed().as_secs_f64()
        );
        // Pool the four first-layer tables (same Σw²).
        let mut groups: Vec<(String, u64, bool, Vec<&measure::TableRead>)> = vec![];
        for (dot, reads) in &by_dot {
            let n = plan.neurons.iter().find(|n| n.node == *dot).unwrap();
            let label = format!("layer {} neuron {}", n.layer, n.neuron);
            if n.layer == 0 {
                if let Some(g) = groups.iter_mut().find(|g| g.2) {
                    g.3.extend(reads.iter());
                    continue;
                }
                groups.push((
                    "layer 0 (4 tables)".into(),
                    n.sum_w2,
                    true,
                    reads.iter().collect(),
                ));
            } else {
                groups.push((label, n.sum_w2, false, reads.iter().collect()));
            }
        }
        for (label, sum_w2, first, reads) in groups {
            let std = set4.bootstrap_std(sum_w2);
            let n = reads.len();
            let errs: Vec<f64> = reads.iter().map(|r| r.position_error).collect();
            let mean = errs.iter().sum::<f64>() / n as f64;
            let sd = (errs.iter().map(|e| (e - mean).powi(2)).sum::<f64>() / (n - 1) as f64).sqrt();
            print!(
                "  {label:<20} Σw² {sum_w2:>4}: error mean {mean:+.2}, std {sd:.2} positions \
                 (model {std:.2}, σ_units {:.2})",
                std / plan.box_positions
            );
            // The error is centred: tfhe's half-position bias is compensated.
            if mean.abs() > 3.3 * sd / (n as f64).sqrt() + 0.1 {
                outside.push(format!("P {p} {label} mean error {mean:+.2}"));
                print!(" OFF-CENTRE");
            }
            for k in [1i64, 2] {
                let off = reads.iter().filter(|r| r.offset.abs() >= k).count();
                let (lo, hi) = wilson(off, n);
                let pred = fhe::offset_at_least_log2(std, plan.box_positions, k as u64).exp2();
                print!(
                    "; |d| >= {k}: {off}/{n} = {:.3} [{lo:.3}, {hi:.3}] predicted {pred:.3}",
                    off as f64 / n as f64
                );
                let ok = (lo..=hi).contains(&pred) || (first && pred > hi);
                if !ok {
                    outside.push(format!("P {p} {label} |d| >= {k}"));
                    print!(" OUTSIDE");
                }
            }
            println!();
        }
    }
    assert!(
        outside.is_empty(),
        "outside the measured interval: {outside:?}"
    );
}

/// A random MLP shaped like Concrete ML's iris default (4 features, 3 layers, multiplier 4:
/// 4-16-16-3), with 4-bit weights and activations: every row keeps random non-zero weights
/// until its accumulator's range would exceed `accum_bits` (per-neuron pruning), hidden
/// neurons are 4-bit ramp (ReLU-like staircase) tables. 32 bootstraps per sample.
fn iris_shape(accum_bits: u32, seed: u64) -> CheckedGraph {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut b = Builder::new("tfhe-iris-shape", 4, 4, accum_bits);
    let mut prev: Vec<NodeId> = (0..4).map(|_| b.input(-8, 7)).collect();
    let widths = [16usize, 16, 3];
    for (layer, &width) in widths.iter().enumerate() {
        let last = layer + 1 == widths.len();
        let mut next = vec![];
        for _ in 0..width {
            let terms = common::random_row_within_budget(&mut rng, &prev, &b.facts, 4, accum_bits);
            let d = b.dot(layer, &terms, rng.gen_range(-2..=2));
            if last {
                next.push(d);
                continue;
            }
            let iv = b.facts[d].interval;
            let count = iv.hi - iv.lo + 1;
            // ReLU then a 4-bit requantization: 0 below the middle, then a ramp.
            let mid = iv.lo + count / 2;
            next.push(b.lut(layer, d, move |a| {
                (((a - mid).max(0) * 16) / (count - count / 2)).min(15)
            }));
        }
        prev = next;
    }
    b.finish(&prev)
}

/// The iris shape of issue 5 (4-16-16-3, 4-bit weights and activations, 9-bit accumulators,
/// 32 bootstraps) on the 4-bit set in approximate mode: encrypted latency per sample against
/// the floor (32 × one 4-bit bootstrap ÷ cores, with the bootstrap measured now on this
/// machine and from the catalogue), Concrete ML's 3.74 s and the 0.36 s target; the stage
/// imbalance and what the rest of the time goes to.
///
/// `cargo test --release --test tfhe iris_shape_approximate_latency -- --ignored --nocapture`
/// (`SQNN_LATENCY_SAMPLES=N`, default 20).
#[test]
#[ignore]
fn iris_shape_approximate_latency() {
    use rayon::prelude::*;
    use std::time::Instant;
    let samples: usize = std::env::var("SQNN_LATENCY_SAMPLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let cores = rayon::current_num_threads();
    let c = iris_shape(9, 1);
    let r = c.report();
    assert_eq!(r.pbs_count, 32);
    let set4 = set(SET4);
    let plan = fhe::plan_with(r, set4, fhe::FheMode::Approximate, -40.0, cores).unwrap();
    print!("{}", fhe::render_plan(&plan));
    let b = backend_with(&c, &plan);
    let prepared = b.server().prepare(&c).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let inputs: Vec<Vec<i64>> = (0..samples)
        .map(|_| (0..4).map(|_| rng.gen_range(-8..=7)).collect())
        .collect();
    // Warm up (thread-local buffers, FFT plans).
    let enc = b.client().encrypt(&c, &inputs[0]).unwrap();
    b.server()
        .evaluate_prepared(&c, &prepared, &enc, None)
        .unwrap();
    let run = b.run_timed(&c, &inputs).unwrap();
    let eval = run.median_evaluate_ms();
    let clear = ClearBackend::default().run(&c, &inputs).unwrap();
    let argmax = |o: &Vec<i64>| (0..o.len()).max_by_key(|&i| (o[i], std::cmp::Reverse(i)));
    let same = run
        .outputs
        .iter()
        .zip(&clear)
        .filter(|(e, k)| e == k)
        .count();
    let same_class = run
        .outputs
        .iter()
        .zip(&clear)
        .filter(|(e, k)| argmax(e) == argmax(k))
        .count();
    let max_diff = run
        .outputs
        .iter()
        .zip(&clear)
        .flat_map(|(e, k)| e.iter().zip(k).map(|(a, b)| (a - b).abs()))
        .max()
        .unwrap_or(0);
    println!(
        "approximate outputs: {same}/{samples} identical to clear, {same_class}/{samples} same \
         argmax, largest output difference {max_diff} (outputs span about {} values)",
        c.report()
            .neurons
            .iter()
            .filter(|n| n.table_len == 0)
            .map(|n| n.hi - n.lo + 1)
            .max()
            .unwrap_or(0)
    );
    // Where the time goes, stage by stage (median over a few samples).
    print_stage_profile(&b, &c, &prepared, &inputs, cores);
    // The floor measured now: 32 bootstraps of the same set, all cores, no circuit.
    let (cks, sks) = measure::raw_keys(set4).unwrap();
    let lut = sks.generate_lookup_table(|x| x);
    let mut floor_now = vec![];
    let mut stage_now = vec![];
    for _ in 0..5 {
        let t = Instant::now();
        (0..32).into_par_iter().for_each(|_| {
            measure::one_bootstrap(&cks, &sks, &lut);
        });
        floor_now.push(t.elapsed().as_secs_f64() * 1e3);
        let t = Instant::now();
        for _ in 0..2 {
            (0..16).into_par_iter().for_each(|_| {
                measure::one_bootstrap(&cks, &sks, &lut);
            });
        }
        stage_now.push(t.elapsed().as_secs_f64() * 1e3);
    }
    let mut one = vec![];
    for _ in 0..10 {
        let t = Instant::now();
        measure::one_bootstrap(&cks, &sks, &lut);
        one.push(t.elapsed().as_secs_f64() * 1e3);
    }
    let floor_now = sqnn::tfhe::median(&floor_now);
    let stage_now = sqnn::tfhe::median(&stage_now);
    let one = sqnn::tfhe::median(&one);
    let catalogue = 32.0 * set4.pbs_ms_1_thread / cores as f64;
    println!(
        "iris shape, approximate, {}-bit space ({} positions per value, σ up to {:.2} units): \
         evaluation median {eval:.0} ms per sample over {samples} (min {:.0}); encrypt {:.1} ms, \
         decrypt {:.2} ms",
        plan.space_bits,
        plan.box_positions,
        plan.worst_sigma_units,
        run.evaluate_ms.iter().cloned().fold(f64::MAX, f64::min),
        sqnn::tfhe::median(&run.encrypt_ms),
        sqnn::tfhe::median(&run.decrypt_ms),
    );
    println!(
        "floor: catalogue {catalogue:.0} ms (32 × {:.1} ms ÷ {cores}); now {:.0} ms (32 × {one:.1} \
         ms ÷ {cores}); 32 bootstraps in one parallel batch {floor_now:.0} ms, as two stages of 16 \
         {stage_now:.0} ms; evaluation / measured floor = {:.2}, / two stages = {:.2}; Concrete \
         ML 3740 ms ({:.1}× faster), target 360 ms",
        set4.pbs_ms_1_thread,
        32.0 * one / cores as f64,
        eval / floor_now,
        eval / stage_now,
        3740.0 / eval
    );
}

/// Prints, per stage, the median time of its bootstraps and of its dot products over the first
/// five of `inputs`.
fn print_stage_profile(
    b: &TfheBackend,
    c: &CheckedGraph,
    prepared: &sqnn::tfhe::PreparedCircuit,
    inputs: &[Vec<i64>],
    cores: usize,
) {
    let mut stages: Vec<Vec<sqnn::tfhe::StageTiming>> = vec![];
    for x in inputs.iter().take(5) {
        let enc = b.client().encrypt(c, x).unwrap();
        stages.push(measure::evaluate_profiled(b.server(), c, prepared, &enc).unwrap());
    }
    for s in 0..stages[0].len() {
        let tables: Vec<f64> = stages.iter().map(|p| p[s].tables_ms).collect();
        let dots: Vec<f64> = stages.iter().map(|p| p[s].dots_ms).collect();
        let st = &stages[0][s];
        println!(
            "stage {s}: {} bootstraps {:.1} ms ({:.1} ms per bootstrap per core), {} dots of {} \
             terms {:.2} ms",
            st.tables,
            sqnn::tfhe::median(&tables),
            sqnn::tfhe::median(&tables) * cores as f64 / st.tables.max(1) as f64,
            st.dots,
            st.terms,
            sqnn::tfhe::median(&dots)
        );
    }
}

/// The committed iris circuit (the defaults) under its chosen plan: median latency of 20
/// encrypted samples against the floor measured in the same run (the circuit's bootstrap count
/// on all cores, no circuit around them), and where the difference goes, stage by stage.
///
/// `cargo test --release --test tfhe committed_iris_against_the_floor -- --ignored --nocapture`
#[test]
#[ignore]
fn committed_iris_against_the_floor() {
    use rayon::prelude::*;
    use std::time::Instant;
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("circuits/iris.circuit.json");
    let c = CheckedGraph::new(IntGraph::load(&path).unwrap())
        .unwrap()
        .expect("committed circuit passes");
    let cores = rayon::current_num_threads();
    let plan = fhe::choose_approximate(c.report(), -40.0, cores, 2.0).unwrap();
    let mut b = TfheBackend::generate(&c, &plan).unwrap();
    b.progress = false;
    let prepared = b.server().prepare(&c).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    let inputs: Vec<Vec<i64>> = (0..20)
        .map(|_| {
            c.graph()
                .input_nodes()
                .iter()
                .map(|&id| {
                    let iv = c.facts()[id].interval;
                    rng.gen_range(iv.lo..=iv.hi)
                })
                .collect()
        })
        .collect();
    let enc = b.client().encrypt(&c, &inputs[0]).unwrap();
    b.server()
        .evaluate_prepared(&c, &prepared, &enc, None)
        .unwrap();
    let run = b.run_timed(&c, &inputs).unwrap();
    let (cks, sks) = measure::raw_keys(set(&plan.parameter_set)).unwrap();
    let lut = sks.generate_lookup_table(|x| x);
    let mut floor = vec![];
    let mut layered = vec![];
    for _ in 0..10 {
        let t = Instant::now();
        (0..plan.pbs_count).into_par_iter().for_each(|_| {
            measure::one_bootstrap(&cks, &sks, &lut);
        });
        floor.push(t.elapsed().as_secs_f64() * 1e3);
        let t = Instant::now();
        for l in &c.report().layers {
            (0..l.pbs).into_par_iter().for_each(|_| {
                measure::one_bootstrap(&cks, &sks, &lut);
            });
        }
        layered.push(t.elapsed().as_secs_f64() * 1e3);
    }
    let eval = run.median_evaluate_ms();
    let floor = sqnn::tfhe::median(&floor);
    let layered = sqnn::tfhe::median(&layered);
    println!(
        "iris ({} bootstraps, {cores} cores): {eval:.1} ms per sample; floor now {floor:.1} ms \
         ({:.2}x); the same bootstraps layer by layer {layered:.1} ms ({:.2}x of the floor)",
        plan.pbs_count,
        eval / floor,
        layered / floor
    );
    print_stage_profile(&b, &c, &prepared, &inputs, cores);
    assert_eq!(run.outputs.len(), inputs.len());
}
