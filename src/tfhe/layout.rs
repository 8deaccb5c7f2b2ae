//! How a circuit is laid out for TFHE: its evaluation stages (tables by bootstrap depth, then
//! the dots that read them) and its encoding (`Δ_P`, each node's margin in the space, and the
//! scale of each dot that a table reads).

use super::keys::Encoding;
use crate::analyze::CheckedGraph;
use crate::error::{Error, Result};
use crate::fhe::{self, FhePlan, ParamSet};
use crate::ir::NodeFact;
use crate::ir::{NodeId, Op};

/// What a circuit needs from TFHE, computed once: its digest, the width of its values, the
/// order of evaluation.
pub(super) struct Circuit {
    pub(super) digest: String,
    /// Bits the widest proved interval of any node needs (at least 1): the smallest space.
    pub(super) value_bits: u32,
    /// Stage `s`: the tables at bootstrap depth `s` (run in parallel), then the dots that read
    /// them. Stage 0 has no tables.
    pub(super) stages: Vec<(Vec<NodeId>, Vec<NodeId>)>,
    /// Whether a table reads the node (a dot).
    pub(super) read_by_table: Vec<bool>,
    /// Whether it has tables (bootstraps); without them only the client's decryption reads
    /// a value, and the space may be wider than a bootstrap reads.
    pub(super) tables: bool,
    /// Fewest low bits a table drops (0 without tables).
    pub(super) min_round_bits: u32,
    /// Most low bits a table drops (0 without tables).
    pub(super) max_round_bits: u32,
}

impl Circuit {
    pub(super) fn new(checked: &CheckedGraph) -> Result<Circuit> {
        let g = checked.graph();
        let digest = g.digest()?;
        let mut level = vec![0usize; g.nodes.len()];
        let mut read_by_table = vec![false; g.nodes.len()];
        for (id, n) in g.nodes.iter().enumerate() {
            level[id] = match &n.op {
                Op::Input { .. } => 0,
                Op::Dot { terms, .. } => terms.iter().map(|&(s, _)| level[s]).max().unwrap_or(0),
                Op::Lut { input, .. } => {
                    read_by_table[*input] = true;
                    level[*input] + 1
                }
            };
        }
        let depth = level.iter().copied().max().unwrap_or(0);
        let mut stages = vec![(Vec::new(), Vec::new()); depth + 1];
        for (id, n) in g.nodes.iter().enumerate() {
            match n.op {
                Op::Input { .. } => {}
                Op::Dot { .. } => stages[level[id]].1.push(id),
                Op::Lut { .. } => stages[level[id]].0.push(id),
            }
        }
        let value_bits = checked
            .facts()
            .iter()
            .map(|f| f.interval.range_bits())
            .max()
            .unwrap_or(0)
            .max(1);
        let dropped = g.dropped_bits();
        let (min_round_bits, max_round_bits) = dropped.unwrap_or((0, 0));
        Ok(Circuit {
            digest,
            value_bits,
            stages,
            read_by_table,
            tables: dropped.is_some(),
            min_round_bits,
            max_round_bits,
        })
    }

    /// Rejects a space that does not hold the circuit's values or does not fit `set`.
    pub(super) fn check_supported(&self, set: &ParamSet, space_bits: u32) -> Result<()> {
        let top = fhe::widest_space_bits(set, self.tables.then_some(self.min_round_bits));
        if space_bits == 0 || space_bits > top {
            return Err(Error::Keys(format!(
                "a {space_bits}-bit ciphertext space does not fit {} (its bootstrap reads at \
                 most {} bits, one position per value, plus the {} low bits every table of \
                 the circuit drops): generate keys for this circuit",
                set.name,
                set.max_space_bits(),
                self.min_round_bits
            )));
        }
        if self.value_bits > space_bits {
            return Err(Error::Keys(format!(
                "the keys use {} with a {space_bits}-bit ciphertext space but the circuit needs \
                 {}-bit ciphertexts: generate keys for this circuit",
                set.name, self.value_bits
            )));
        }
        Ok(())
    }
}

/// The encoding of one circuit in a `space_bits`-bit space: `Δ_P`, each node's margin, and the
/// bits each dot that a table reads is scaled by ([`fhe::read_scale_bits`]): such a dot lives
/// in its own `P - s`-bit space, `Δ = Δ_P·2^s`, its values `2^s` values of the space apart.
pub(super) struct Layout {
    pub(super) space_bits: u32,
    /// `Δ_P = 2^(63 - P)`.
    pub(super) delta: u64,
    /// Per node: the margin `m` below its interval in its own space (it holds `v - lo + m`).
    pub(super) below: Vec<i64>,
    /// Per node: `s`, 0 except for the dots that tables read.
    pub(super) scale_bits: Vec<u32>,
}

impl Layout {
    /// Margins of every node of `checked` in the keys' `encoding` on `set` (its
    /// `space_bits`-bit space): centred, each dot that a table reads in its own space
    /// (`P - s` bits, [`fhe::read_scale_bits`], the rule the planner's noise model follows),
    /// and, when that space is wider than the polynomial, aligned so that the table's buckets
    /// start on positions ([`fhe::aligned_margins`]); `scale_target`: the keys' failure target,
    /// which bounds the scales (`None`: keys from before scaled reads, every dot unscaled).
    /// With exact rounding, a table that drops bits reads its dot unscaled, aligned on its
    /// dropped bits.
    pub(super) fn new(
        checked: &CheckedGraph,
        set: &ParamSet,
        encoding: &Encoding,
    ) -> Result<Layout> {
        let Encoding {
            space_bits,
            exact_rounding,
            scale_target,
            ..
        } = *encoding;
        let facts = checked.facts();
        let read_align = fhe::read_align_bits(set, space_bits);
        let mut scale_bits = vec![0u32; facts.len()];
        if let Some(target) = scale_target {
            for dot in &fhe::PlanFacts::from(checked).dots {
                if let Some(s) = scale_bits.get_mut(dot.node) {
                    *s = fhe::read_scale_bits(set, space_bits, exact_rounding, target, dot);
                }
            }
        }
        let mut phase = vec![None; facts.len()];
        for n in &checked.graph().nodes {
            if let Op::Lut {
                input,
                offset,
                round_bits,
                ..
            } = &n.op
            {
                if *round_bits < read_align {
                    return Err(Error::Keys(format!(
                        "a table drops {round_bits} low bits but a {space_bits}-bit space on {} \
                         needs {read_align}: generate keys for this circuit",
                        set.name
                    )));
                }
                let own = space_bits - scale_bits.get(*input).copied().unwrap_or(0);
                // Exact rounding clears the held value's low bits: they must be the index's.
                let align = if exact_rounding && *round_bits > 0 {
                    *round_bits
                } else {
                    fhe::read_align_bits(set, own)
                };
                let lo = facts.get(*input).map_or(0, |f| f.interval.lo);
                if let Some(p) = phase.get_mut(*input) {
                    *p = Some((lo.wrapping_add(*offset), align));
                }
            }
        }
        let below = facts
            .iter()
            .zip(&phase)
            .zip(&scale_bits)
            .map(|((f, ph), s)| {
                let (lo, hi) = (f.interval.lo, f.interval.hi);
                let own = space_bits - s;
                match ph {
                    Some((p, align)) => fhe::aligned_margins(lo, hi, own, *align, *p),
                    None => fhe::margins(lo, hi, own),
                }
                .and_then(|(m, _)| i64::try_from(m).ok())
                .ok_or_else(|| {
                    Error::Keys(format!(
                        "a value of [{}, {}] does not fit a {own}-bit ciphertext \
                             space: generate keys for this circuit",
                        f.interval.lo, f.interval.hi
                    ))
                })
            })
            .collect::<Result<Vec<i64>>>()?;
        Ok(Layout {
            space_bits,
            delta: 1u64 << (63 - space_bits),
            below,
            scale_bits,
        })
    }

    /// The bits of node `id`'s own space, `P - s`.
    pub(super) fn node_space(&self, id: NodeId) -> u32 {
        self.space_bits - self.scale_bits[id]
    }

    /// Node `id`'s `Δ = Δ_P·2^s = 2^(63 - P + s)`.
    pub(super) fn node_delta(&self, id: NodeId) -> u64 {
        self.delta << self.scale_bits[id]
    }

    /// `(v - lo + m)` of node `id`, as held in the space.
    pub(super) fn held(&self, facts: &[NodeFact], id: NodeId, v: i64) -> u64 {
        // Non-negative for a value of the node (v >= lo, margin >= 0); mod 2^64 otherwise.
        (v - facts[id].interval.lo + self.below[id]).cast_unsigned()
    }

    /// The integer a decrypted phase encodes, `round(phase / Δ)` (`Δ` of node `id`'s own
    /// space, [`node_delta`](Self::node_delta)), read back as a value of node `id`: the
    /// representative nearest the centre of its interval (modulo its padded space
    /// `2^(P - s + 1)`), so a small error in either direction stays small.
    pub(super) fn decode(&self, facts: &[NodeFact], id: NodeId, phase: u64) -> i64 {
        let p = self.node_space(id);
        // In [0, 2^(P+1)): far inside i64.
        let raw = (phase.wrapping_add(self.node_delta(id) >> 1) >> (63 - p)).cast_signed();
        let iv = facts[id].interval;
        let centre = self.below[id] + (iv.hi - iv.lo) / 2;
        let mut s = (raw - centre).rem_euclid(1i64 << (p + 1));
        if s >= 1i64 << p {
            s -= 1i64 << (p + 1);
        }
        iv.lo + centre + s - self.below[id]
    }
}

/// The plan's space, or (a plan deserialized from before spaces existed) the circuit's need.
pub(super) fn plan_space(plan: &FhePlan, circuit: &Circuit) -> u32 {
    if plan.space_bits == 0 {
        circuit.value_bits
    } else {
        plan.space_bits
    }
}
