//! The crate's only numeric casts that are not `try_from` or `From`, each with its proof
//! obligation.
//!
//! Clippy's `cast_possible_truncation`, `cast_sign_loss`, `cast_possible_wrap` and `cast_lossless`
//! (`Cargo.toml`, `[lints.clippy]`) refuse a lossy-looking `as` anywhere else; only the functions
//! here may `#[allow]` one, each saying why it cannot lose.
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
#[allow(clippy::cast_possible_truncation)] // in [lo, hi] after the clamp: see below
pub fn round_clamp(x: f64, lo: i64, hi: i64) -> i64 {
    let r = x.round();
    if r.is_nan() {
        return 0.clamp(lo, hi);
    }
    // In range after the clamp (and whole after `round`), so the cast is exact; a bound beyond
    // ±2^53 rounds to the nearest float, which `as` saturates into `i64`.
    r.clamp(lo as f64, hi as f64) as i64
}

// sqnn supports 64-bit targets only (TFHE's torus is `u64` and the tables, files and ciphertext
// counts are addressed with it): `usize` and `u64` are the same width, so the two conversions
// below are exact. A 32-bit or 128-bit target fails to compile here instead of truncating.
const _: () = assert!(usize::BITS == u64::BITS, "sqnn needs a 64-bit target");

/// A length, count or index as `u64` (sizes, progress totals, seeds).
///
/// Exact: `usize` is 64 bits wide (compile-time assertion above).
///
/// ```
/// assert_eq!(sqnn::cast::to_u64(usize::MAX), u64::MAX);
/// ```
#[inline]
pub const fn to_u64(n: usize) -> u64 {
    n as u64
}

/// An unsigned integer of at most 64 bits (`u8`, `u16`, `u32`, `u64`) as a `usize` (an index or
/// a length).
///
/// Exact: `usize` is 64 bits wide (compile-time assertion above). Whether the value is a
/// sensible length (an allocation, a slice bound) is the caller's check, as it would be for a
/// `usize`.
///
/// ```
/// assert_eq!(sqnn::cast::to_usize(u64::MAX), usize::MAX);
/// assert_eq!(sqnn::cast::to_usize(7u32), 7);
/// ```
#[inline]
#[allow(clippy::cast_possible_truncation)] // usize::BITS == 64, asserted at compile time
pub fn to_usize(n: impl Into<u64>) -> usize {
    n.into() as usize
}

/// A float count already made whole by the caller (`round`, `floor` or `ceil`), as a `usize` in
/// `[0, max]`: NaN and negatives give 0, anything above `max` gives `max`.
///
/// The clamp happens in float, so the cast only ever sees a value in `[0, max]`: exact for a
/// whole number (a fraction left by the caller truncates toward zero, as `floor` would).
///
/// ```
/// assert_eq!(sqnn::cast::clamp_count((0.25 * 10.0f64).round(), 9), 3);
/// assert_eq!(sqnn::cast::clamp_count(-2.0, 9), 0);
/// assert_eq!(sqnn::cast::clamp_count(f64::NAN, 9), 0);
/// assert_eq!(sqnn::cast::clamp_count(1e300, 9), 9);
/// ```
#[inline]
#[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)] // 0 < x < max: see below
pub fn clamp_count(x: f64, max: usize) -> usize {
    if x.is_nan() || x <= 0.0 {
        return 0;
    }
    if x >= max as f64 {
        return max;
    }
    // 0 < x < max <= usize::MAX: in range, so `as` only drops a fraction (none for a whole x).
    x as usize
}

/// A class index stored as `f64` (a data set's `y`, a caller's labels), or `None` if `v` is not
/// one: negative, fractional, NaN, infinite, or above 2^53 (where floats skip integers).
///
/// ```
/// assert_eq!(sqnn::cast::label(2.0), Some(2));
/// assert_eq!(sqnn::cast::label(1.5), None);
/// assert_eq!(sqnn::cast::label(-1.0), None);
/// assert_eq!(sqnn::cast::label(f64::NAN), None);
/// ```
#[inline]
#[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)] // a whole number in [0, 2^53]
pub fn label(v: f64) -> Option<usize> {
    if !(0.0..=9_007_199_254_740_992.0).contains(&v) || v.fract() != 0.0 {
        return None;
    }
    // A whole number in [0, 2^53]: exact in `usize` (64 bits, asserted above).
    Some(v as usize)
}

/// An exponent for `f64::powi` (a bit count), saturating at `i32::MAX`.
///
/// Exact below 2^31; above, no result changes: 2 or 4 (the bases sqnn raises) to any power
/// beyond 1023 is already infinite, and its reciprocal 0.
///
/// ```
/// assert_eq!(sqnn::cast::exponent(12), 12);
/// assert_eq!(sqnn::cast::exponent(u32::MAX), i32::MAX);
/// ```
#[inline]
pub fn exponent(bits: u32) -> i32 {
    i32::try_from(bits).unwrap_or(i32::MAX)
}

/// A whole float exponent (a `ceil`ed or `floor`ed `log2` of a finite positive float) for
/// `f64::powi`.
///
/// Exact: the `log2` of a finite positive `f64` lies in `[-1075, 1024]`. Beyond `i32`'s range
/// `as` saturates (where `powi` of 2 is already 0 or infinite); NaN gives 0.
///
/// ```
/// assert_eq!(sqnn::cast::float_exponent(10.0f64.log2().ceil()), 4);
/// assert_eq!(sqnn::cast::float_exponent(0.3f64.log2().ceil()), -1);
/// ```
#[inline]
#[allow(clippy::cast_possible_truncation)] // every log2 of a finite f64 fits: see above
pub fn float_exponent(e: f64) -> i32 {
    e as i32
}

/// A length, an index or a size parameter (a polynomial size, a table phase) as `i64`, for
/// arithmetic with values.
///
/// Exact below 2^63, which every slice length and index is (Rust caps an object at
/// `isize::MAX` bytes), as are sqnn's parameters; a larger value saturates at `i64::MAX` rather
/// than wrapping negative.
///
/// ```
/// assert_eq!(sqnn::cast::to_i64(2048), 2048);
/// assert_eq!(sqnn::cast::to_i64(usize::MAX), i64::MAX);
/// ```
#[inline]
pub fn to_i64(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}
