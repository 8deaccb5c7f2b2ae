//! Approximate reads against the noise model: per-node simulation noise, reads observed with
//! the secret key within the predicted offsets, and (ignored: minutes of bootstraps) measured
//! misread and failure rates inside their predicted intervals.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sqnn::analyze::CheckedGraph;
use sqnn::execute::{Backend, ClearBackend};
use sqnn::fhe::{self, ParamSet};
use sqnn::ir::{NodeId, Op};
use sqnn::tfhe::{measure, TfheBackend};

use crate::common::builder::Builder;
use crate::common::tfhe::*;

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
    let plan = plan_on_set(&c, set(SET4), fhe::FheMode::Approximate, -40.0, 2).unwrap();
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
    let by_dot = fhe::read_sigma_units(&plan, &fhe::PlanFacts::from(&c));
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
    let chosen = plan_on_set(&c, s, fhe::FheMode::Approximate, -40.0, 2).unwrap();
    let forced = plan_at_width(&c, s, 11, fhe::FheMode::Approximate, -40.0, 2);
    assert!(forced.worst_log2_p_fail <= -40.0);
    let mut rng = ChaCha8Rng::seed_from_u64(21);
    let inputs: Vec<Vec<i64>> = (0..6)
        .map(|_| (0..4).map(|_| rng.gen_range(-8..=7)).collect())
        .collect();
    for plan in [&chosen, &forced] {
        let b = TfheBackend::new(
            ck.rebind_with(&c, plan).unwrap(),
            sk.rebind_with(&c, plan).unwrap(),
        )
        .unwrap();
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
    let k = (1u64..)
        .find(|&k| fhe::offset_at_least_log2(std, bx, k + 1) + (reads as f64).log2() <= log2_budget)
        .unwrap();
    i64::try_from(k).unwrap()
}

/// How far decrypting a table's output (σ of a weight-1 output) may be off in boxes of `bx`
/// positions, over `n` decryptions, except with probability 2^-30 in all (0 when exact).
fn decryption_bound(set: &ParamSet, bx: f64, n: usize) -> i64 {
    let std = set.decrypt_std(1);
    let k = (0u64..)
        .find(|&k| fhe::offset_at_least_log2(std, bx, k + 1) + (n as f64).log2() <= -30.0)
        .unwrap();
    i64::try_from(k).unwrap()
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
    let chosen = plan_on_set(&c, set4, fhe::FheMode::Approximate, -40.0, 2).unwrap();
    assert_eq!((chosen.space_bits, chosen.box_positions), (9, 4.0));
    assert!(chosen.worst_log2_p_fail <= -40.0);
    let forced = plan_at_width(&c, set4, 11, fhe::FheMode::Approximate, -40.0, 2);
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
                let entry = |a: i64| table[sqnn::cast::index(a + offset)];
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

/// Wilson score interval (z = 2.58, 99 %) of `k` successes in `n` trials (from exactly 0
/// when `k = 0`, where `c - h` is 0 up to rounding: scaled reads predict rates near 0).
fn wilson(k: usize, n: usize) -> (f64, f64) {
    let z = 2.58f64;
    let (k, n) = (k as f64, n as f64);
    let p = k / n;
    let den = 1.0 + z * z / n;
    let c = (p + z * z / (2.0 * n)) / den;
    let h = z * (p * (1.0 - p) / n + z * z / (4.0 * n * n)).sqrt() / den;
    let lo = if k == 0.0 { 0.0 } else { (c - h).max(0.0) };
    (lo, (c + h).min(1.0))
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
    let (cks, sks) = raw_keys(s);
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

/// Scaled reads on the 4-bit set in a forced 11-bit space (one position per value: a table
/// reading its dot unscaled would misread 92 % of the time at Σw² 4): the narrow tables are
/// read in their own spaces (`fhe::read_scale_bits`), the first layer's 4-bit dots and the
/// 6-bit dot of Σw² 4 by at least 2^3. Over 80 encrypted samples, every table returns the
/// entry at its (clamped) read, the count of reads off by >= 1 unit of the Σw² 4 table is the
/// model's scaled prediction (within 4 standard deviations; the 99 % interval is printed) and
/// below half the unscaled one, and the first layer's reads are exact (predicted off less than once in 256
/// as bootstrap outputs; their inputs are fresh encryptions, with only the read's own noise,
/// 4.8 positions against half a value of 32 or more: 2^-35).
#[test]
fn scaled_reads_misread_at_the_predicted_rate() {
    let c = circuit_reads();
    let set4 = set(SET4);
    let plan = plan_at_width(&c, set4, 11, fhe::FheMode::Approximate, -40.0, 2);
    assert!(plan.worst_log2_p_fail <= -40.0);
    let noise: std::collections::HashMap<NodeId, &fhe::NeuronNoise> =
        plan.neurons.iter().map(|n| (n.node, n)).collect();
    let narrow = plan
        .neurons
        .iter()
        .find(|n| n.layer == 1 && n.sum_w2 == 4)
        .unwrap();
    assert!(narrow.scale_bits >= 3, "{narrow:?}");
    let box_of = |n: &fhe::NeuronNoise| plan.box_positions * f64::from(1u32 << n.scale_bits);
    let predicted = fhe::misread_log2(narrow.std, box_of(narrow)).exp2();
    assert!((predicted - narrow.log2_p_misread.exp2()).abs() < 1e-12);
    let unscaled = fhe::misread_log2(set4.bootstrap_std(4), plan.box_positions).exp2();
    assert!(unscaled > 0.9 && predicted < 0.3, "{unscaled} {predicted}");
    let b = backend_with(&c, &plan);
    let prepared = b.server().prepare(&c).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(31);
    let samples = 80;
    let k_dec = decryption_bound(set4, plan.box_positions, samples * plan.pbs_count);
    let (mut off, mut first_off, mut first) = (0usize, 0usize, 0usize);
    for _ in 0..samples {
        let x: Vec<i64> = (0..4).map(|_| rng.gen_range(0..=15)).collect();
        let (reads, _) = measure::table_reads(&b, &c, &prepared, &x).unwrap();
        for r in &reads {
            let expected = r.expected.expect("read within the space");
            assert!((r.output - expected).abs() <= k_dec, "k_dec {k_dec}: {r:?}");
            let n = noise[&r.dot];
            if n.layer == 0 {
                assert!(n.scale_bits >= 3 && n.log2_p_misread < -8.0, "{n:?}");
                first += 1;
                first_off += usize::from(r.offset != 0);
            } else if r.dot == narrow.node {
                off += usize::from(r.offset != 0);
            }
        }
    }
    let (lo, hi) = wilson(off, samples);
    println!(
        "Σw² 4 scaled by 2^{}: {off}/{samples} reads off, 99 % [{lo:.3}, {hi:.3}], predicted \
         {predicted:.3} (unscaled {unscaled:.3}); first layer {first_off}/{first}",
        narrow.scale_bits
    );
    // The count against the model, within 4 standard deviations (plus one read), so that the
    // test fails only when the model is off; and far below the unscaled rate.
    let n = samples as f64;
    let sd = (n * predicted * (1.0 - predicted)).sqrt();
    assert!(
        (off as f64 - n * predicted).abs() <= 4.0 * sd + 1.0,
        "{off}/{samples} off against {predicted:.3} predicted"
    );
    assert!(
        (off as f64) < n * unscaled / 2.0,
        "{off}/{samples} against unscaled {unscaled:.3}"
    );
    assert_eq!((first_off, first), (0, 4 * samples));
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
        let plan = plan_at_width(&c, set4, p, fhe::FheMode::Approximate, -40.0, 2);
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
            // The read's own noise and box: scaled when the dot is narrower than the space.
            let n0 = plan
                .neurons
                .iter()
                .find(|n| n.node == reads[0].dot)
                .unwrap();
            let std = n0.std;
            let bx = plan.box_positions * f64::from(1u32 << n0.scale_bits);
            let n = reads.len();
            let errs: Vec<f64> = reads.iter().map(|r| r.position_error).collect();
            let mean = errs.iter().sum::<f64>() / n as f64;
            let sd = (errs.iter().map(|e| (e - mean).powi(2)).sum::<f64>() / (n - 1) as f64).sqrt();
            print!(
                "  {label:<20} Σw² {sum_w2:>4}: error mean {mean:+.2}, std {sd:.2} positions \
                 (model {std:.2}, σ_units {:.2}, scaled by 2^{})",
                std / bx,
                n0.scale_bits
            );
            // The error is centred: tfhe's half-position bias is compensated.
            if mean.abs() > 3.3 * sd / (n as f64).sqrt() + 0.1 {
                outside.push(format!("P {p} {label} mean error {mean:+.2}"));
                print!(" OFF-CENTRE");
            }
            for k in [1i64, 2] {
                let off = reads.iter().filter(|r| r.offset.abs() >= k).count();
                let (lo, hi) = wilson(off, n);
                let pred = fhe::offset_at_least_log2(std, bx, k.unsigned_abs()).exp2();
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
