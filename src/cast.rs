//! The crate's only numeric casts that are not `try_from`, each with its proof obligation.
//!
//! Hot loops cannot afford a fallible conversion per value, and float-to-integer conversion has
//! no `try_from`; these helpers name what makes each cast exact.

/// A table index proved non-negative and in range by the analysis.
///
/// Never truncates: a negative value (impossible in a checked graph) becomes `usize::MAX`, an
/// out-of-bounds index, so a broken invariant fails loudly instead of reading a wrong entry.
///
/// ```
/// assert_eq!(sqnn::cast::index(5), 5);
/// assert_eq!(sqnn::cast::index(-1), usize::MAX);
/// ```
#[inline]
pub fn index(v: i64) -> usize {
    usize::try_from(v).unwrap_or(usize::MAX)
}

/// Rounds `x` to the nearest integer (half away from zero) and clamps it to `[lo, hi]`.
///
/// The clamp happens in float, within `[lo, hi]`, so the final cast is exact for the small
/// ranges sqnn quantizes to (|bound| < 2^53). NaN maps to the value nearest 0 in `[lo, hi]`.
///
/// ```
/// assert_eq!(sqnn::cast::round_clamp(2.5, -8, 7), 3);
/// assert_eq!(sqnn::cast::round_clamp(-100.0, -8, 7), -8);
/// assert_eq!(sqnn::cast::round_clamp(f64::NAN, 1, 7), 1);
/// ```
#[inline]
pub fn round_clamp(x: f64, lo: i64, hi: i64) -> i64 {
    let r = x.round();
    if r.is_nan() {
        return 0.clamp(lo, hi);
    }
    r.clamp(lo as f64, hi as f64) as i64
}
