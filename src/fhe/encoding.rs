//! The encoding: a circuit's values centred in a `P`-bit space, the margins around them, and
//! the low bits a table must drop when the space is wider than the polynomial.

use super::catalogue::ParamSet;
use super::facts::{DotFacts, PlanFacts};
use super::noise::catastrophic_log2;

/// The margins of an interval `[lo, hi]` centred in a `space_bits`-bit space: `(below, above)`
/// values, `below = floor((2^P - W) / 2)`, `W = hi - lo + 1`. `None` when it does not fit.
/// A node of that interval holds `v - lo + below`.
pub fn margins(lo: i64, hi: i64, space_bits: u32) -> Option<(u64, u64)> {
    if space_bits >= 63 || hi < lo {
        return None;
    }
    let w = u64::try_from(i128::from(hi) - i128::from(lo) + 1).ok()?;
    let space = 1u64 << space_bits;
    let free = space.checked_sub(w)?;
    Some((free / 2, free - free / 2))
}

/// Low bits of a `space_bits`-bit space that one bootstrap of `set` cannot tell apart:
/// `P - log2 N` when the space is wider than the polynomial (a box below one position), else 0.
/// Every table must drop at least that many bits ([`aligned_margins`]).
pub fn read_align_bits(set: &ParamSet, space_bits: u32) -> u32 {
    space_bits.saturating_sub(set.max_space_bits())
}

/// [`margins`] for a dot read by a table in a space wider than the polynomial: the margin below
/// is moved down (or up) by less than `2^align_bits` so that it is congruent to `phase` (=
/// `lo + offset` of the table) modulo `2^align_bits`; then every bucket of the table starts on
/// a position of the modulus switch, and a bootstrap that reads `2^align_bits` values per
/// position reads the same bucket as the clear table. `None` if the interval does not fit.
///
/// ```
/// use sqnn::fhe::aligned_margins;
/// let (below, above) = aligned_margins(-100, 300, 10, 2, 3).unwrap();
/// assert_eq!(below % 4, 3);
/// assert_eq!(below + 401 + above, 1 << 10);
/// ```
pub fn aligned_margins(
    lo: i64,
    hi: i64,
    space_bits: u32,
    align_bits: u32,
    phase: i64,
) -> Option<(u64, u64)> {
    let (below, above) = margins(lo, hi, space_bits)?;
    if align_bits == 0 {
        return Some((below, above));
    }
    let free = below.checked_add(above)?;
    let size = 1i128 << align_bits.min(62);
    let b = i128::from(below);
    let mut m = b - (b - i128::from(phase)).rem_euclid(size);
    if m < 0 {
        m += size;
    }
    let m = u64::try_from(m).ok()?;
    (m <= free).then(|| (m, free - m))
}

/// Exact rounding's rescaled read ([`FhePlan::exact_rounding`](super::FhePlan::exact_rounding)):
/// after a table's `round_bits` (`r`) low bits are cleared, the held values are `c + j·2^r`,
/// one per bucket `j < nb` of the table (`c` the lowest reachable). The read subtracts `c` and
/// multiplies by `2^s`, `s` the largest with `(nb - 1)·2^(r+s) <= 2^P`: buckets `2^(r+s)`
/// values apart instead of `2^r`, so the read's tolerance (its keyswitch and modulus-switch
/// noise come after the multiplication) grows `2^s` times. The last bucket may sit on the
/// padding bit: the test vector's negacyclic half serves it (see `crate::tfhe`'s rounding).
/// Returns `(c, s, nb)`, or `None` when the interval does not fit the aligned encoding
/// ([`aligned_margins`] with `phase` = the table's `lo + offset`).
///
/// ```
/// use sqnn::fhe::rounding_scale;
/// // An 8-bit accumulator in a 9-bit space, 4 bits dropped: 16 or 17 buckets, s = 1.
/// let (c, s, nb) = rounding_scale(0, 255, 9, 4, 0).unwrap();
/// assert_eq!((c % 16, s, nb), (0, 1, 16));
/// let (_, s, nb) = rounding_scale(0, 255, 9, 4, 8).unwrap();
/// assert_eq!((s, nb), (1, 17));
/// // A 9-bit accumulator: no room to spread.
/// assert_eq!(rounding_scale(0, 511, 9, 4, 0).unwrap().1, 0);
/// ```
pub fn rounding_scale(
    lo: i64,
    hi: i64,
    space_bits: u32,
    round_bits: u32,
    phase: i64,
) -> Option<(u64, u32, u64)> {
    let (below, _) = aligned_margins(lo, hi, space_bits, round_bits, phase)?;
    let width = u64::try_from(i128::from(hi) - i128::from(lo)).ok()?;
    let r = round_bits.min(62);
    let mask = (1u64 << r) - 1;
    let c = below & !mask;
    let top = below.checked_add(width)? & !mask;
    let buckets = ((top - c) >> r) + 1;
    // ceil(log2(max(nb - 1, 1))).
    let spread_bits = 64 - (buckets.saturating_sub(1).max(1) - 1).leading_zeros();
    let s = space_bits.checked_sub(r.checked_add(spread_bits)?)?;
    Some((c, s, buckets))
}

/// One table's read of its dot when the dot is computed times `2^scale_bits`
/// ([`read_scale_bits`]): the dot's values sit `2^scale_bits` values of the plan's space apart,
/// i.e. the dot lives in its own `space_bits - scale_bits`-bit space, centred (and aligned when
/// that space is still wider than the polynomial) as [`aligned_margins`] places it there.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ScaledRead {
    /// `s`: the dot's weights and constant are multiplied by `2^s`.
    pub scale_bits: u32,
    /// The dot's own space, `P - s` bits: `Δ = 2^(63 - P + s)`.
    pub space_bits: u32,
    /// [`read_align_bits`] of that space (0 unless it is wider than the polynomial).
    pub align_bits: u32,
    /// Its margins in that space (values of the dot), `None` if the dot does not fit it.
    pub margins: Option<(u64, u64)>,
    /// The read's noise in positions: `sqrt(a + b·Σw²·4^s)` (the inputs' noise is multiplied
    /// by `2^s` too; the keyswitch and modulus switch come after).
    pub std: f64,
    /// Positions per value of the dot: `N / 2^(P - s)`.
    pub box_positions: f64,
}

impl ScaledRead {
    /// The read of dot `n` (a table reads it) on `set` in a `space_bits`-bit space, scaled by
    /// `2^scale_bits` (`scale_bits <= space_bits`).
    pub fn new(set: &ParamSet, space_bits: u32, n: &DotFacts, scale_bits: u32) -> ScaledRead {
        let own = space_bits.saturating_sub(scale_bits);
        let align_bits = read_align_bits(set, own);
        // A table must drop the bits the bootstrap cannot tell apart.
        let margins = (n.round_bits >= align_bits)
            .then(|| {
                aligned_margins(
                    n.lo,
                    n.hi,
                    own,
                    align_bits,
                    n.lo.wrapping_add(n.table_offset),
                )
            })
            .flatten();
        let amp = 4f64.powi(crate::cast::exponent(scale_bits.min(1000)));
        ScaledRead {
            scale_bits,
            space_bits: own,
            align_bits,
            margins,
            std: (set.noise_base + set.noise_per_w2 * n.sum_w2 as f64 * amp).sqrt(),
            box_positions: set.box_positions(own),
        }
    }

    /// log2 probability that the read of the value at the edge of the narrower margin goes
    /// past it (0, certain, when the dot does not fit).
    pub fn catastrophic_log2(&self) -> f64 {
        match self.margins {
            Some((a, b)) => catastrophic_log2(self.std, self.box_positions, a.min(b)),
            None => 0.0,
        }
    }
}

/// How many bits `s` the dot `n` is scaled by before its table reads it, on `set` in a
/// `space_bits`-bit space with the failure target `target_log2` (per bootstrap): the largest
/// `s <= P - range_bits` whose [`ScaledRead`] fits and goes past its margin with probability
/// at most `2^target_log2` (so scaling never makes a plan miss its target); 0 for an output
/// (no table) and, with `exact_rounding`, for a table that drops bits (its extractions and
/// rescaled read have their own encoding, [`rounding_scale`]). The one rule: the planner's
/// noise model, the clear simulation (through it) and the TFHE backend's layout (whose keys
/// record the plan's target) all call it.
///
/// A value of a `P`-bit space spans `N / 2^P` positions while the read's error is about fixed
/// in positions, so a dot narrower than the space is read `2^s` times more precisely in its own
/// units (`σ_units = sqrt(a + b·Σw²·4^s) / (box·2^s)`, [`ScaledRead`]). Tables that drop low
/// bits need nothing more: their staircase is a function of the dot's value; a space still
/// wider than the polynomial aligns the dot's margin in its own space ([`aligned_margins`]),
/// as unscaled.
///
/// ```
/// use sqnn::fhe::{read_scale_bits, DotFacts, ParamSetId};
/// let set = ParamSetId::ClassicMsg2Carry2.set();
/// let dot = |lo: i64, hi: i64, table_len| DotFacts {
///     node: 0, layer: 0, neuron: 0, lo, hi, range_bits: 64 - (hi - lo).unsigned_abs().leading_zeros(),
///     sum_w2: 100, table_len, table_bits: 4, round_bits: 0, table_offset: -lo, terms: 4,
///     reads_inputs: false,
/// };
/// // A 6-bit dot in a 9-bit space is read in its own 7-bit space (s = 2); a 9-bit one not.
/// assert_eq!(read_scale_bits(set, 9, false, -40.0, &dot(0, 63, 64)), 2);
/// assert_eq!(read_scale_bits(set, 9, false, -40.0, &dot(0, 400, 401)), 0);
/// assert_eq!(read_scale_bits(set, 9, false, -40.0, &dot(0, 63, 0)), 0); // an output
/// ```
pub fn read_scale_bits(
    set: &ParamSet,
    space_bits: u32,
    exact_rounding: bool,
    target_log2: f64,
    n: &DotFacts,
) -> u32 {
    if n.table_len == 0 || (exact_rounding && n.round_bits > 0) {
        return 0;
    }
    let most = space_bits.saturating_sub(n.range_bits);
    (1..=most)
        .take_while(|&s| ScaledRead::new(set, space_bits, n, s).catastrophic_log2() <= target_log2)
        .last()
        .unwrap_or(0)
}

/// Precision a circuit needs (bits): every dot's range (output dots included), every input and
/// table value (which fit `n_a_bits`). At least 1.
pub fn needed_bits(facts: &PlanFacts) -> u32 {
    facts
        .dots
        .iter()
        .map(|n| n.range_bits.max(n.table_bits))
        .chain([facts.n_a_bits, 1])
        .max()
        .unwrap_or(1)
}

/// The most low bits a space may go past `log2 N` on the strength of the bits every table
/// drops (a read of `2^s` values per position is exact on whole buckets). Lowering may drop up
/// to 40 bits; this cap keeps every space within `log2 N + 20` (at most 36 bits on the catalogue's
/// largest polynomial, `N = 2^16`), so the encoding `Δ_P = 2^(63 - P)`, the margins and the
/// aligned offsets stay far inside the 64-bit torus and `i64` arithmetic. A safety bound chosen
/// with the wide-space reads, not a measured limit.
pub const MAX_EXTRA_READ_BITS: u32 = 20;

/// The widest space one bootstrap of `set` reads when every table of the circuit drops at least
/// `fewest_dropped_bits` low bits: `log2 N` plus those bits, at most [`MAX_EXTRA_READ_BITS`]
/// more (a box of `2^-s` positions per value is fine when every table's buckets span whole
/// positions).
pub fn widest_read_bits(set: &ParamSet, fewest_dropped_bits: u32) -> u32 {
    set.max_space_bits() + fewest_dropped_bits.min(MAX_EXTRA_READ_BITS)
}

/// The widest space of a circuit on `set`: [`widest_read_bits`] for the fewest low bits its
/// tables drop (`fewest_dropped_bits`); without tables (`None`: a linear circuit, which no
/// bootstrap reads, only the client's decryption, exact to far below a position), `log2 N +`
/// [`MAX_EXTRA_READ_BITS`].
pub fn widest_space_bits(set: &ParamSet, fewest_dropped_bits: Option<u32>) -> u32 {
    widest_read_bits(set, fewest_dropped_bits.unwrap_or(MAX_EXTRA_READ_BITS))
}

/// [`widest_space_bits`] for the circuit of `facts` (approximate mode's widest space; exact
/// mode's too for a circuit without tables).
pub(super) fn approximate_top(set: &ParamSet, facts: &PlanFacts) -> u32 {
    widest_space_bits(set, facts.dropped_bits.map(|(fewest, _)| fewest))
}
