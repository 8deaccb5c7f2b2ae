use super::*;
use proptest::prelude::*;

/// Reads `t` at accumulator `v` the way the graph does.
fn read(t: &RoundedTable, v: i64) -> i64 {
    t.table[crate::cast::index((v + t.offset) >> t.round_bits)]
}

/// Counts the accumulators whose output differs from the exact table's.
fn changed(t: &RoundedTable, lo: i64, exact: &[i64]) -> u64 {
    let n = exact
        .iter()
        .enumerate()
        .filter(|&(k, &e)| read(t, lo + crate::cast::to_i64(k)) != e)
        .count();
    crate::cast::to_u64(n)
}

#[test]
fn power_of_two_steps_round_losslessly() {
    // A requantized ReLU whose steps are 16 accumulator units apart, starting at 5.
    let lo = -100;
    let exact: Vec<i64> = (lo..=300)
        .map(|a: i64| ((a - 5).max(0) / 16).min(15))
        .collect();
    let t = round_table(lo, &exact, Rounding::LOSSLESS);
    assert_eq!((t.round_bits, t.changed), (4, 0));
    assert_eq!(changed(&t, lo, &exact), 0);
}

#[test]
fn a_wide_table_is_cut_to_the_index_width() {
    let lo = -2000;
    let exact: Vec<i64> = (lo..=2000).map(|a: i64| (a / 37).clamp(-8, 7)).collect();
    let r = Rounding::new(0.0, 10).unwrap();
    let t = round_table(lo, &exact, r);
    assert!(t.table.len() <= 1 << 10, "{}", t.table.len());
    assert!(t.round_bits >= 2);
    assert_eq!(changed(&t, lo, &exact), t.changed);
}

#[test]
fn bad_rounding_parameters_are_refused() {
    assert!(Rounding::new(1.0, 10).is_err());
    assert!(Rounding::new(-0.1, 10).is_err());
    assert!(Rounding::new(f64::NAN, 10).is_err());
    assert!(Rounding::new(0.01, 0).is_err());
    assert!(Rounding::new(0.01, 25).is_err());
}

proptest! {
    /// Whatever the table, the rounded one: covers exactly the index range, reports its
    /// changes truthfully, stays within the tolerance unless forced by the width, and keeps
    /// every output level when not forced.
    #[test]
    fn rounding_keeps_its_promises(
        lo in -3000i64..3000,
        steps in proptest::collection::vec(1usize..300, 1..12),
        tol in 0.0f64..0.1,
        width in 4u32..12,
    ) {
        let mut exact = Vec::new();
        for (level, &run) in steps.iter().enumerate() {
            exact.extend(std::iter::repeat_n(crate::cast::to_i64(level), run));
        }
        let w = exact.len();
        let r = Rounding::new(tol, width).unwrap();
        let t = round_table(lo, &exact, r);
        let hi = lo + crate::cast::to_i64(w) - 1;
        prop_assert_eq!((lo + t.offset) >> t.round_bits, 0);
        prop_assert_eq!(crate::cast::index((hi + t.offset) >> t.round_bits) + 1, t.table.len());
        prop_assert!(t.table.len() <= 1 << width);
        prop_assert_eq!(changed(&t, lo, &exact), t.changed);
        let forced = w > 1 << width;
        if !forced {
            prop_assert!(t.changed as f64 <= tol * w as f64);
            let mut levels = t.table.clone();
            levels.dedup();
            prop_assert_eq!(levels.len(), steps.len());
        }
    }
}
