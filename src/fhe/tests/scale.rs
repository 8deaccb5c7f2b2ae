use super::super::reads::neuron_noise;
use super::*;

fn dot(lo: i64, hi: i64, sum_w2: u64, round_bits: u32) -> DotFacts {
    let iv = crate::ir::Interval { lo, hi };
    DotFacts {
        node: 1,
        layer: 0,
        neuron: 0,
        lo,
        hi,
        range_bits: iv.range_bits(),
        sum_w2,
        table_len: usize::try_from(((hi - lo) >> round_bits) + 1).unwrap(),
        table_bits: iv.range_bits().saturating_sub(round_bits),
        round_bits,
        table_offset: -lo,
        terms: 4,
        reads_inputs: false,
    }
}

/// The rule: the largest scale whose read stays within the target past the margin, never more
/// than `P - range_bits`; every smaller scale meets it too; the next does not (or does not
/// fit); reads get quieter in their own units as the scale grows.
#[test]
fn the_scale_is_the_largest_that_keeps_the_margin_within_the_target() {
    let s = SET4.set();
    for target in [-20.0, -40.0, -64.0, -128.0] {
        for (lo, hi, w2) in [
            (0, 15, 1),
            (-30, 33, 100),
            (-100, 140, 100),
            (0, 255, 100),
            (-120, 130, 3000),
            (0, 400, 150),
        ] {
            let n = dot(lo, hi, w2, 0);
            for p in 9..=11u32 {
                let k = read_scale_bits(s, p, false, target, &n);
                assert!(k <= p - n.range_bits, "{lo}..{hi} P {p}: s = {k}");
                for j in 1..=k {
                    let r = ScaledRead::new(s, p, &n, j);
                    assert!(r.catastrophic_log2() <= target, "{lo}..{hi} P {p} s {j}");
                    assert!(r.margins.is_some());
                    let prev = ScaledRead::new(s, p, &n, j - 1);
                    assert!(r.std / r.box_positions < prev.std / prev.box_positions);
                }
                if k < p - n.range_bits {
                    let next = ScaledRead::new(s, p, &n, k + 1);
                    assert!(next.catastrophic_log2() > target, "{lo}..{hi} P {p} s {k}");
                }
            }
        }
    }
    // A 4-bit dot in a 9-bit space: scaled by 2^5 into its own 4-bit space (128 positions per
    // value: no margin needed, half a value is 13 σ), σ from 1.2 units to about 0.05; at
    // 2^-128 one value of margin (scaled by 2^4, 64 positions per value).
    let n = dot(0, 15, 1, 0);
    assert_eq!(read_scale_bits(s, 9, false, -40.0, &n), 5);
    let r = ScaledRead::new(s, 9, &n, 5);
    assert_eq!(
        (r.space_bits, r.box_positions, r.margins),
        (4, 128.0, Some((0, 0)))
    );
    assert!(r.std / r.box_positions < 0.06);
    assert_eq!(read_scale_bits(s, 9, false, -130.0, &n), 4);
    // A dot that fills the space's width (256 values in 8 bits) cannot be scaled: no margin.
    assert_eq!(read_scale_bits(s, 9, false, -20.0, &dot(0, 255, 1, 0)), 0);
    // A stricter target scales less.
    let n = dot(-100, 140, 100, 0);
    assert!(read_scale_bits(s, 10, false, -128.0, &n) < read_scale_bits(s, 10, false, -20.0, &n));
}

/// Outputs and exact rounding's tables are never scaled; tables that drop bits are, and in a
/// space wider than the polynomial the scaled dot's own space is aligned for its buckets.
#[test]
fn outputs_exact_rounding_and_wide_spaces() {
    let s = SET4.set();
    let mut out = dot(0, 15, 1, 0);
    out.table_len = 0;
    assert_eq!(read_scale_bits(s, 9, false, -40.0, &out), 0);
    let rounded = dot(0, 63, 10, 2);
    assert!(read_scale_bits(s, 9, false, -40.0, &rounded) > 0);
    assert_eq!(read_scale_bits(s, 9, true, -40.0, &rounded), 0);
    // A 13-bit space on N = 2048 (2 bits past the polynomial): a 10-bit dot whose table drops
    // 2 bits, scaled by 2 bits into its own 11-bit space, needs no alignment any more.
    let n = dot(-300, 700, 50, 2);
    assert_eq!(read_align_bits(s, 13), 2);
    let k = read_scale_bits(s, 13, false, -40.0, &n);
    assert!(k >= 2, "s = {k}");
    let r = ScaledRead::new(s, 13, &n, 2);
    assert_eq!((r.space_bits, r.align_bits, r.box_positions), (11, 0, 1.0));
    // Scaled by one bit only it is still one bit past the polynomial: aligned on its buckets.
    let r = ScaledRead::new(s, 13, &n, 1);
    assert_eq!(r.align_bits, 1);
    let (below, _) = r.margins.unwrap();
    assert_eq!(
        i64::try_from(below).unwrap() % 2,
        (n.lo + n.table_offset).rem_euclid(2)
    );
}

/// The planner's reads follow the rule: approximate mode scales (σ in the scaled units, the
/// margin in the dot's own space), exact mode does not.
#[test]
fn the_planner_reads_scaled_in_approximate_mode_only() {
    let s = SET4.set();
    let n = dot(-30, 33, 100, 0);
    let a = neuron_noise(s, 9, FheMode::Approximate, -40.0, None, &n);
    let k = read_scale_bits(s, 9, false, -40.0, &n);
    assert!(k > 0);
    let r = ScaledRead::new(s, 9, &n, k);
    assert_eq!(a.scale_bits, k);
    assert_eq!(a.sigma_units, r.std / r.box_positions);
    assert_eq!(a.log2_p_catastrophic, r.catastrophic_log2());
    assert!(a.log2_p_catastrophic <= -40.0);
    let e = neuron_noise(s, 9, FheMode::Exact, -40.0, None, &n);
    assert_eq!(e.scale_bits, 0);
    assert_eq!(e.sigma_units, s.bootstrap_std(100) / 4.0);
    assert!(a.log2_p_misread < e.log2_p_misread);
}
