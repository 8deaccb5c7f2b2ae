//! Tables that drop low bits: read through their rounding (also from a space wider than the
//! polynomial), and exact rounding, which clears the dropped bits first.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sqnn::execute::{Backend, ClearBackend};
use sqnn::fhe::{self};
use sqnn::ir::{NodeId, Op};
use sqnn::tfhe::TfheBackend;

use crate::common::builder::{all_inputs, Builder};
use crate::common::tfhe::*;

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
    let chosen = plan_on_set(&c, set2, fhe::FheMode::Approximate, -40.0, 2).unwrap();
    assert_eq!((chosen.space_bits, chosen.box_positions), (11, 0.25));
    let plan = plan_at_width(&c, set2, 10, fhe::FheMode::Approximate, -40.0, 2);
    assert_eq!(plan.box_positions, 0.5);
    assert!(plan.worst_log2_p_fail < -30.0, "{}", plan.worst_log2_p_fail);
    let (ck, sk) = keys2();
    let backend = TfheBackend::new(
        ck.rebind_with(&c, &plan).unwrap(),
        sk.rebind_with(&c, &plan).unwrap(),
    )
    .unwrap();
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
    assert!(plan_on_set(&c0, set2, fhe::FheMode::Approximate, -40.0, 2).is_err());
}

/// A table over the dot's interval that drops `r` low bits: bucket `i` of `2^r` accumulators
/// (starting `phase` values before `lo`) gives `f(i)`.
pub(crate) fn rounded_lut(
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
    let whole = plan_at_width(&c, set4, 7, fhe::FheMode::Exact, -40.0, 2);
    assert!(
        whole.worst_log2_p_fail > -10.0,
        "{}",
        whole.worst_log2_p_fail
    );
    let req = fhe::PlanRequest::new(fhe::FheMode::Exact)
        .on(set4.id)
        .cores(2)
        .extractions(fhe::Extractions::TableSet)
        .extraction_chunk_bits(1);
    let plan = fhe::plan(&fhe::PlanFacts::from(&c), &req).unwrap();
    assert!(plan.exact_rounding);
    assert_eq!(plan.extraction_parameter_set, None);
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

/// A circuit named `name` whose three tables drop 3 bits of 7-bit accumulators (two in the
/// first layer, one in the second), 4-bit inputs.
pub(crate) fn three_rounded_tables(name: &str) -> sqnn::analyze::CheckedGraph {
    let mut b = Builder::new(name, 4, 4, 7);
    let x0 = b.input(0, 15);
    let x1 = b.input(0, 15);
    let d0 = b.dot(0, &[(x0, 4), (x1, 1)], 0);
    let d1 = b.dot(0, &[(x0, 3), (x1, -2)], 0);
    let l0 = rounded_lut(&mut b, 0, d0, 3, 5, |i| (i * 3 + 1) % 4);
    let l1 = rounded_lut(&mut b, 0, d1, 3, 2, |i| i.min(3));
    let d2 = b.dot(1, &[(l0, 2), (l1, -1)], 3);
    let l2 = rounded_lut(&mut b, 1, d2, 3, 3, |i| 3 - i);
    let o0 = b.dot(2, &[(l2, 1)], 0);
    let o1 = b.dot(2, &[(l0, 1), (l1, 1)], 0);
    b.finish(&[o0, o1])
}

/// The same circuit with its dropped bits cleared in chunks ([`fhe::extraction_chunks`]) of 2
/// bits (a one-bit chunk above: 3 bootstraps per table) and 3 bits (the sign of the top bit,
/// then the two bits left: 2), and the planner's own choice (the widest chunk that meets
/// 2^-40, here 3 bits: two bootstraps instead of three); one key serves every width (the chunk
/// width is part of the encoding, not of the key): bit-identical to clear each time.
#[test]
fn exact_rounding_in_chunks_matches_clear() {
    let c = three_rounded_tables("tfhe-test-exact-chunks");
    let set4 = set(SET4);
    let facts = fhe::PlanFacts::from(&c);
    let req = fhe::PlanRequest::new(fhe::FheMode::Exact)
        .on(set4.id)
        .cores(2)
        .extractions(fhe::Extractions::TableSet);
    let chosen = fhe::plan(&facts, &req).unwrap();
    assert_eq!(chosen.extraction_chunk_bits, 3);
    assert!(fhe::render_plan(&chosen).contains("in chunks of up to 3 bits"));
    let b = backend_with(&c, &chosen);
    let mut rng = ChaCha8Rng::seed_from_u64(6);
    let inputs: Vec<Vec<i64>> = (0..24)
        .map(|_| vec![rng.gen_range(0..=15), rng.gen_range(0..=15)])
        .collect();
    let clear = ClearBackend::default().run(&c, &inputs).unwrap();
    for (chunk, per_table) in [(2u32, 3u32), (3, 2)] {
        let plan = fhe::plan(&facts, &req.clone().extraction_chunk_bits(chunk)).unwrap();
        assert_eq!(plan.extraction_chunk_bits, chunk);
        assert!(plan.worst_log2_p_fail <= -40.0, "{chunk}");
        assert_eq!(
            plan.pbs_count,
            3 * (1 + sqnn::cast::to_usize(per_table)),
            "{chunk}"
        );
        assert!(plan
            .neurons
            .iter()
            .filter(|n| n.bootstrap)
            .all(|n| n.extractions == per_table));
        let client = b.client().rebind_with(&c, &plan).unwrap();
        let server = b.server().rebind_with(&c, &plan).unwrap();
        assert_eq!(server.pbs_per_sample(&c), plan.pbs_count);
        let rb = TfheBackend::new(client, server).unwrap();
        assert_eq!(rb.run(&c, &inputs).unwrap(), clear, "chunks of {chunk}");
    }
}
