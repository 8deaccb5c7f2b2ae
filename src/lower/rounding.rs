//! Rounding accumulators before their tables: [`Rounding`] says how much a table's output may
//! change and how wide its index may be; [`round_table`] picks, per table, how many low bits to
//! drop and at which phase.

use crate::error::{Error, Result};
use crate::ir::{RoundingSummary, MAX_TABLE_LEN};

/// Widest table index a circuit may hold (bits): `2^24` = [`MAX_TABLE_LEN`] entries.
pub const MAX_TABLE_BITS: u32 = 24;
const _: () = assert!(1usize << MAX_TABLE_BITS == MAX_TABLE_LEN);

/// How lowering chooses each table's `round_bits` (the low accumulator bits it drops).
///
/// Per hidden neuron, lowering tries every `r` from the widest down and keeps the largest whose
/// rounded table (each bucket of `2^r` accumulator values gets the value most of its
/// accumulators have, buckets placed at the best phase) changes the output of at most
/// `tolerance × W` of the neuron's `W` reachable accumulator values and keeps every output level
/// the exact table has. With power-of-two scales the steps of the table are `2^t` apart and
/// rounding by `t` bits is the requantization itself: lossless (`tolerance` 0 finds it).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Rounding {
    /// Largest share of a neuron's accumulator values whose table output may change.
    pub tolerance: f64,
    /// Widest table index (bits): a wider accumulator drops at least the extra bits, whatever
    /// the error (reported), so one bootstrap can read it.
    pub max_table_bits: u32,
}

impl Rounding {
    /// Only rounding that changes no output: tables as wide as a circuit may hold
    /// ([`MAX_TABLE_BITS`]), so no table is forced to drop bits.
    pub const LOSSLESS: Rounding = Rounding {
        tolerance: 0.0,
        max_table_bits: MAX_TABLE_BITS,
    };
    /// The default of `sqnn compile`: lossless rounding, plus whatever a table wider than 10
    /// index bits must drop (at the phase that changes fewest outputs), so the 4-bit parameter
    /// set (`N = 2048`) reads accumulators of up to 12 bits with a bit of margin to spare. On
    /// the built-in data sets a tolerance of 1/64 changed no test prediction and saved no
    /// bootstrap, so the default keeps the circuit bit-exact with the model.
    pub const DEFAULT: Rounding = Rounding {
        tolerance: 0.0,
        max_table_bits: 10,
    };

    /// Checks the tolerance (a share in `[0, 1)`) and the table width (1 to
    /// [`MAX_TABLE_BITS`] = 24 bits).
    pub fn new(tolerance: f64, max_table_bits: u32) -> Result<Rounding> {
        if !(1..=MAX_TABLE_BITS).contains(&max_table_bits) {
            return Err(Error::param(
                "max_table_bits",
                format!(
                    "{max_table_bits} is not a table width in 1..={MAX_TABLE_BITS} bits: give e.g. 10"
                ),
            ));
        }
        if !(0.0..1.0).contains(&tolerance) {
            return Err(Error::param(
                "round_tolerance",
                format!(
                    "{tolerance} is not a share in [0, 1): give 0 for lossless rounding only, or \
                     e.g. 0.015 to let 1.5 % of a neuron's accumulator values change level"
                ),
            ));
        }
        Ok(Rounding {
            tolerance,
            max_table_bits,
        })
    }
}

/// A table after rounding: `index = (v + offset) >> round_bits`.
#[derive(Clone, Debug, PartialEq)]
pub struct RoundedTable {
    /// Low bits dropped.
    pub round_bits: u32,
    /// `-lo + phase`, `phase < 2^round_bits`.
    pub offset: i64,
    /// One entry per bucket.
    pub table: Vec<i64>,
    /// Accumulator values whose output differs from the exact table's.
    pub changed: u64,
}

/// Rounds the exact table `exact` (entry `k` is the output for accumulator `lo + k`) as
/// [`Rounding`] describes.
///
/// ```
/// use sqnn::lower::round_table;
/// // A staircase with steps every 4 values starting at accumulator 2 rounds 2 bits losslessly.
/// let exact: Vec<i64> = (0..16).map(|k| (k + 2) / 4).collect();
/// let r = round_table(-5, &exact, sqnn::lower::Rounding::LOSSLESS);
/// assert_eq!((r.round_bits, r.changed), (2, 0));
/// for (k, &e) in exact.iter().enumerate() {
///     let v = -5 + i64::try_from(k)?;
///     assert_eq!(r.table[sqnn::cast::index((v + r.offset) >> r.round_bits)], e);
/// }
/// # Ok::<(), std::num::TryFromIntError>(())
/// ```
pub fn round_table(lo: i64, exact: &[i64], rounding: Rounding) -> RoundedTable {
    let w = exact.len();
    let unrounded = RoundedTable {
        round_bits: 0,
        offset: lo.wrapping_neg(),
        table: exact.to_vec(),
        changed: 0,
    };
    if w < 2 {
        return unrounded;
    }
    let budget = crate::cast::to_u64(crate::cast::clamp_count(
        (rounding.tolerance * w as f64).floor(),
        w,
    ));
    let mut levels = exact.to_vec();
    levels.sort_unstable();
    levels.dedup();
    let steps: Vec<usize> = (1..w).filter(|&k| exact[k] != exact[k - 1]).collect();
    let max_r = usize::BITS - 1 - w.leading_zeros();
    // Fewest bits that keep the table within `max_table_bits` index bits at any phase
    // (`min(40)` only keeps the shift defined for any width a caller may write).
    let forced = (0..=max_r)
        .find(|&r| ((w - 1 + (1 << r) - 1) >> r) < 1usize << rounding.max_table_bits.min(40))
        .unwrap_or(max_r);
    let best_at = |r: u32, constrained: bool| {
        let size = 1usize << r;
        let mut phases: Vec<usize> = std::iter::once(0)
            .chain(steps.iter().map(|&t| (size - t % size) % size))
            .collect();
        phases.sort_unstable();
        phases.dedup();
        phases
            .into_iter()
            .map(|phase| (phase, bucketize(exact, r, phase)))
            .filter(|(_, (table, changed))| {
                !constrained || (*changed <= budget && same_levels(table, &levels))
            })
            .min_by_key(|(_, (_, changed))| *changed)
            .map(|(phase, (table, changed))| RoundedTable {
                round_bits: r,
                offset: lo.wrapping_neg().wrapping_add(crate::cast::to_i64(phase)),
                table,
                changed,
            })
    };
    for r in (forced.max(1)..=max_r).rev() {
        if let Some(t) = best_at(r, true) {
            return t;
        }
    }
    if forced > 0 {
        if let Some(t) = best_at(forced, false) {
            return t;
        }
    }
    unrounded
}

/// Buckets of `2^r` entries (`index = (k + phase) >> r`), each taking the value of its longest
/// run; returns the table and how many entries changed.
fn bucketize(exact: &[i64], r: u32, phase: usize) -> (Vec<i64>, u64) {
    let len = ((exact.len() - 1 + phase) >> r) + 1;
    let mut table = Vec::with_capacity(len);
    let mut changed = 0u64;
    let mut k = 0;
    for b in 0..len {
        let end = (((b + 1) << r) - phase).min(exact.len());
        let (mut best, mut best_len) = (exact[k], 0usize);
        let mut i = k;
        while i < end {
            let mut j = i;
            while j < end && exact[j] == exact[i] {
                j += 1;
            }
            if j - i > best_len {
                (best, best_len) = (exact[i], j - i);
            }
            i = j;
        }
        changed += crate::cast::to_u64(end - k - best_len);
        table.push(best);
        k = end;
    }
    (table, changed)
}

fn same_levels(table: &[i64], levels: &[i64]) -> bool {
    let mut l = table.to_vec();
    l.sort_unstable();
    l.dedup();
    l == levels
}

/// What rounding did to a circuit's tables, gathered table by table while lowering.
#[derive(Default)]
pub(super) struct RoundStats {
    tables: usize,
    rounded: usize,
    lossless: usize,
    changed: u64,
    values: u64,
    worst_share: f64,
}

impl RoundStats {
    /// Counts one (not constant) table of `w` reachable accumulator values.
    pub(super) fn add(&mut self, t: &RoundedTable, w: usize) {
        self.tables += 1;
        self.values += crate::cast::to_u64(w);
        if t.round_bits > 0 {
            self.rounded += 1;
            if t.changed == 0 {
                self.lossless += 1;
            }
        }
        self.changed += t.changed;
        self.worst_share = self.worst_share.max(t.changed as f64 / w.max(1) as f64);
    }

    /// The summary for the circuit's metadata (`None` without tables); `dropped` is the
    /// circuit's fewest and most dropped bits ([`crate::ir::IntGraph::dropped_bits`]).
    pub(super) fn summary(
        &self,
        rounding: Rounding,
        dropped: Option<(u32, u32)>,
    ) -> Option<RoundingSummary> {
        (self.tables > 0).then(|| RoundingSummary {
            tolerance: rounding.tolerance,
            max_table_bits: rounding.max_table_bits,
            tables: self.tables,
            rounded: self.rounded,
            lossless: self.lossless,
            dropped_bits: dropped.unwrap_or((0, 0)),
            changed: self.changed,
            values: self.values,
            worst_share: self.worst_share,
        })
    }
}
