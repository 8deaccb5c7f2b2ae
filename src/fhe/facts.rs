//! What the planner needs to know about a circuit ([`PlanFacts`]): every dot product's proved
//! interval, Σw² and the table that reads it, the bootstraps per layer, the activation width and
//! the dropped bits. Taken from the analysis (graph and proved facts), not from the report.

use crate::analyze::{Analyzed, CheckedGraph};
use crate::ir::{index_bits, NodeId, Op};

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
    /// Its terms (weights kept): scalar multiply-adds of whole ciphertexts on the server.
    pub terms: usize,
    /// Whether every term reads an input (a fresh encryption, far less noisy than a
    /// bootstrap's output) rather than a table.
    pub reads_inputs: bool,
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
    /// Input features: ciphertexts the client encrypts per sample.
    pub n_inputs: usize,
}

impl PlanFacts {
    /// The facts of an analyzed circuit.
    pub fn new(an: &Analyzed) -> PlanFacts {
        let graph = an.graph();
        let facts = an.facts();
        let mut pbs_per_layer = vec![0usize; graph.n_layers()];
        let dots = graph
            .dot_sites()
            .into_iter()
            .map(|d| {
                if d.table_len > 0 {
                    pbs_per_layer[d.layer] += 1;
                }
                let iv = facts[d.node].interval;
                let reads_inputs = match &graph.nodes[d.node].op {
                    Op::Dot { terms, .. } => terms
                        .iter()
                        .all(|&(s, _)| matches!(graph.nodes[s].op, Op::Input { .. })),
                    _ => false,
                };
                DotFacts {
                    node: d.node,
                    layer: d.layer,
                    neuron: d.neuron,
                    lo: iv.lo,
                    hi: iv.hi,
                    range_bits: iv.range_bits(),
                    sum_w2: facts[d.node].sum_w2,
                    table_len: d.table_len,
                    table_bits: index_bits(d.table_len),
                    round_bits: d.round_bits,
                    table_offset: d.table_offset,
                    terms: d.fan_in,
                    reads_inputs,
                }
            })
            .collect();
        PlanFacts {
            dots,
            pbs_count: graph.pbs_count(),
            pbs_per_layer,
            n_a_bits: graph.meta.n_a_bits,
            dropped_bits: graph.dropped_bits(),
            n_inputs: graph.input_nodes().len(),
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
