//! What the planner needs to know about a circuit ([`PlanFacts`]): every dot product's proved
//! interval, Σw² and the table that reads it, the bootstraps per layer, the activation width and
//! the dropped bits. Taken from the analysis (graph and proved facts), not from the report.

use crate::analyze::{Analyzed, CheckedGraph};
use crate::ir::{NodeId, Op};

/// One dot product (`Dot` node) as the planner sees it.
#[derive(Clone, Debug, PartialEq)]
pub struct DotFacts {
    /// Node id in the graph.
    pub node: NodeId,
    /// Linear layer.
    pub layer: usize,
    /// Neuron index within its layer.
    pub neuron: usize,
    /// Proved smallest value.
    pub lo: i64,
    /// Proved largest value.
    pub hi: i64,
    /// Bits of its range, `ceil(log2(hi - lo + 1))`.
    pub range_bits: u32,
    /// Σ w² of its integer weights.
    pub sum_w2: u64,
    /// Entries of the table that reads it (0: an output, decrypted instead).
    pub table_len: usize,
    /// Bits the table's index needs; 0 without a table.
    pub table_bits: u32,
    /// Low bits the table drops before its lookup; 0 without a table.
    pub round_bits: u32,
    /// The table's offset (`index = (acc + offset) >> round_bits`); 0 without a table.
    pub table_offset: i64,
}

/// The typed facts of a checked circuit that the planner reads.
#[derive(Clone, Debug, PartialEq)]
pub struct PlanFacts {
    /// Every dot product, in node order.
    pub dots: Vec<DotFacts>,
    /// Bootstraps (tables) per sample.
    pub pbs_count: usize,
    /// Bootstraps per linear layer, in layer order (empty: unknown, all in one layer).
    pub pbs_per_layer: Vec<usize>,
    /// Bits of the inputs and table values.
    pub n_a_bits: u32,
    /// The fewest and most low bits a table drops ([`crate::ir::IntGraph::dropped_bits`]);
    /// `None` without tables.
    pub dropped_bits: Option<(u32, u32)>,
}

impl PlanFacts {
    /// The facts of an analyzed circuit.
    pub fn new(an: &Analyzed) -> PlanFacts {
        let graph = an.graph();
        let facts = an.facts();
        let mut lut_of: Vec<Option<NodeId>> = vec![None; graph.nodes.len()];
        for (id, n) in graph.nodes.iter().enumerate() {
            if let Op::Lut { input, .. } = n.op {
                lut_of[input] = Some(id);
            }
        }
        let mut pbs_per_layer = vec![0usize; graph.n_layers()];
        let mut per_layer_count = vec![0usize; graph.n_layers()];
        let mut dots = Vec::new();
        for (id, n) in graph.nodes.iter().enumerate() {
            if !matches!(n.op, Op::Dot { .. }) {
                continue;
            }
            let (table_len, round_bits, table_offset) = match lut_of[id].map(|l| &graph.nodes[l].op)
            {
                Some(Op::Lut {
                    table,
                    round_bits,
                    offset,
                    ..
                }) => (table.len(), *round_bits, *offset),
                _ => (0, 0, 0),
            };
            let neuron = per_layer_count[n.layer];
            per_layer_count[n.layer] += 1;
            if table_len > 0 {
                pbs_per_layer[n.layer] += 1;
            }
            let iv = facts[id].interval;
            dots.push(DotFacts {
                node: id,
                layer: n.layer,
                neuron,
                lo: iv.lo,
                hi: iv.hi,
                range_bits: iv.range_bits(),
                sum_w2: facts[id].sum_w2,
                table_len,
                table_bits: index_bits(table_len),
                round_bits,
                table_offset,
            });
        }
        PlanFacts {
            dots,
            pbs_count: graph.pbs_count(),
            pbs_per_layer,
            n_a_bits: graph.meta.n_a_bits,
            dropped_bits: graph.dropped_bits(),
        }
    }
}

impl From<&Analyzed> for PlanFacts {
    fn from(an: &Analyzed) -> PlanFacts {
        PlanFacts::new(an)
    }
}

impl From<&CheckedGraph> for PlanFacts {
    fn from(checked: &CheckedGraph) -> PlanFacts {
        PlanFacts::new(checked.analyzed())
    }
}

/// Bits a table index of `len` entries needs (0 for at most one entry).
fn index_bits(len: usize) -> u32 {
    if len <= 1 {
        0
    } else {
        usize::BITS - (len - 1).leading_zeros()
    }
}
