//! What the analysis proves about each node: its interval (and, for a dot, the witnesses that
//! attain both bounds and Σw²). The transfer function lives here, below both `lower` (which
//! sizes each table by it) and `analyze` (which runs it over a whole graph).

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::ir::graph::{IntGraph, NodeId, Op};

/// A closed integer interval `[lo, hi]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Interval {
    /// Smallest value.
    pub lo: i64,
    /// Largest value.
    pub hi: i64,
}

impl Interval {
    /// Number of integers in the interval, `hi - lo + 1` (as `u128`, never overflows).
    pub fn count(&self) -> u128 {
        // 0 for an empty interval (hi < lo); the analysis builds none.
        (i128::from(self.hi) - i128::from(self.lo) + 1)
            .max(0)
            .unsigned_abs()
    }

    /// Range width: bits needed to hold `hi - lo + 1` distinct values with an offset encoding,
    /// `ceil(log2(hi - lo + 1))`; what TFHE needs and what Ω bounds.
    ///
    /// ```
    /// use sqnn::ir::Interval;
    /// assert_eq!(Interval { lo: -5, hi: 10 }.range_bits(), 4); // 16 values
    /// assert_eq!(Interval { lo: -5, hi: 11 }.range_bits(), 5); // 17 values
    /// assert_eq!(Interval { lo: 3, hi: 3 }.range_bits(), 0);
    /// ```
    pub fn range_bits(&self) -> u32 {
        let n = self.count();
        if n <= 1 {
            0
        } else {
            128 - (n - 1).leading_zeros()
        }
    }

    /// Concrete's width convention (`maximum_integer_bit_width`): unsigned bits of `hi` when
    /// `lo >= 0`, else the smallest two's-complement width holding both bounds.
    ///
    /// ```
    /// use sqnn::ir::Interval;
    /// assert_eq!(Interval { lo: 0, hi: 7 }.signed_bits(), 3);
    /// assert_eq!(Interval { lo: -8, hi: 7 }.signed_bits(), 4);
    /// assert_eq!(Interval { lo: -9, hi: 7 }.signed_bits(), 5);
    /// assert_eq!(Interval { lo: -1, hi: 100 }.signed_bits(), 8);
    /// ```
    pub fn signed_bits(&self) -> u32 {
        fn unsigned(v: i64) -> u32 {
            (64 - v.leading_zeros()).max(1)
        }
        if self.lo >= 0 {
            unsigned(self.hi)
        } else {
            // A value v < 0 needs bits(!v) + 1; a value v >= 0 needs bits(v) + 1.
            let neg = 64 - (!self.lo).leading_zeros() + 1;
            let pos = if self.hi >= 0 {
                64 - self.hi.leading_zeros() + 1
            } else {
                1
            };
            neg.max(pos)
        }
    }
}

/// What the analysis proved about one node.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NodeFact {
    /// The node's value always lies in this interval.
    pub interval: Interval,
    /// Dot nodes: the input values (aligned with `terms`) that attain `interval.lo`.
    pub witness_lo: Vec<i64>,
    /// Dot nodes: the input values that attain `interval.hi`.
    pub witness_hi: Vec<i64>,
    /// Dot nodes: Σ w², whose square root is the dot product's noise growth in TFHE.
    pub sum_w2: u64,
    /// Lut nodes: the table indices the input reaches.
    pub index: Option<Interval>,
}

/// The transfer function: the fact of node `id`, from the facts of the nodes before it.
///
/// Errors (broken input, not a failed check): an interval beyond `i64`, or a table that does
/// not exactly cover the indices its input reaches.
pub fn transfer(graph: &IntGraph, facts: &[NodeFact], id: NodeId) -> Result<NodeFact> {
    let node = &graph.nodes[id];
    let overflow = || {
        Error::Circuit(format!(
            "node {id}: its worst-case value does not fit 64-bit integers; the weights or ranges are corrupt"
        ))
    };
    match &node.op {
        Op::Input { lo, hi, .. } => Ok(NodeFact {
            interval: Interval { lo: *lo, hi: *hi },
            witness_lo: Vec::new(),
            witness_hi: Vec::new(),
            sum_w2: 0,
            index: None,
        }),
        Op::Dot { terms, constant } => {
            let (mut lo, mut hi) = (*constant, *constant);
            let mut witness_lo = Vec::with_capacity(terms.len());
            let mut witness_hi = Vec::with_capacity(terms.len());
            let mut sum_w2: u64 = 0;
            for &(src, w) in terms {
                let s = facts[src].interval;
                let a = w.checked_mul(s.lo).ok_or_else(overflow)?;
                let b = w.checked_mul(s.hi).ok_or_else(overflow)?;
                let (min_x, max_x) = if a <= b { (s.lo, s.hi) } else { (s.hi, s.lo) };
                lo = lo.checked_add(a.min(b)).ok_or_else(overflow)?;
                hi = hi.checked_add(a.max(b)).ok_or_else(overflow)?;
                witness_lo.push(min_x);
                witness_hi.push(max_x);
                let w2 = w.unsigned_abs().checked_mul(w.unsigned_abs());
                sum_w2 = w2
                    .and_then(|w2| sum_w2.checked_add(w2))
                    .ok_or_else(overflow)?;
            }
            Ok(NodeFact {
                interval: Interval { lo, hi },
                witness_lo,
                witness_hi,
                sum_w2,
                index: None,
            })
        }
        Op::Lut {
            input,
            offset,
            round_bits,
            table,
            ..
        } => {
            let s = facts[*input].interval;
            let ilo = s.lo.checked_add(*offset).ok_or_else(overflow)? >> round_bits;
            let ihi = s.hi.checked_add(*offset).ok_or_else(overflow)? >> round_bits;
            let len = i64::try_from(table.len()).map_err(|_| overflow())?;
            if ilo != 0 || ihi != len - 1 {
                return Err(Error::Circuit(format!(
                    "lut node {id}: its input reaches table indices [{ilo}, {ihi}] but the table has {len} \
                     entries (it must cover exactly [0, {}]); the circuit is corrupt: recompile it",
                    len - 1
                )));
            }
            let (mut lo, mut hi) = (i64::MAX, i64::MIN);
            for &v in table {
                lo = lo.min(v);
                hi = hi.max(v);
            }
            Ok(NodeFact {
                interval: Interval { lo, hi },
                witness_lo: Vec::new(),
                witness_hi: Vec::new(),
                sum_w2: 0,
                index: Some(Interval { lo: ilo, hi: ihi }),
            })
        }
    }
}
