//! A hand builder of integer graphs that keeps the proved facts (to size tables), and every
//! input combination of a small circuit.

use sqnn::analyze::CheckedGraph;
use sqnn::data::Task;
use sqnn::ir::{transfer, ClientSpec, IntGraph, Meta, Node, NodeFact, NodeId, Op};

/// Builds an integer graph by hand, keeping the proved facts to size the tables.
pub struct Builder {
    pub g: IntGraph,
    pub facts: Vec<NodeFact>,
}

impl Builder {
    pub fn new(name: &str, n_w_bits: u32, n_a_bits: u32, n_accum_bits: u32) -> Builder {
        Builder {
            g: IntGraph {
                name: name.into(),
                meta: Meta {
                    task: Task::Regress,
                    n_w_bits,
                    n_a_bits,
                    n_accum_bits,
                    pruning: None,
                    rounding: None,
                    training_rows: None,
                },
                client: ClientSpec::identity(0, 0),
                nodes: vec![],
                outputs: vec![],
                plan: None,
            },
            facts: vec![],
        }
    }

    pub fn push(&mut self, layer: usize, op: Op) -> NodeId {
        self.g.nodes.push(Node { layer, op });
        let id = self.g.nodes.len() - 1;
        let f = transfer(&self.g, &self.facts, id).expect("well-formed test graph");
        self.facts.push(f);
        id
    }

    pub fn input(&mut self, lo: i64, hi: i64) -> NodeId {
        let feature = self.g.client.feature_mean.len();
        self.g.client.feature_mean.push(0.0);
        self.g.client.feature_std.push(1.0);
        self.push(0, Op::Input { feature, lo, hi })
    }

    pub fn dot(&mut self, layer: usize, terms: &[(NodeId, i64)], constant: i64) -> NodeId {
        let mut terms = terms.to_vec();
        terms.sort();
        self.push(layer, Op::Dot { terms, constant })
    }

    /// A table over the dot's whole proved interval: `f(accumulator)`.
    pub fn lut(&mut self, layer: usize, dot: NodeId, f: impl Fn(i64) -> i64) -> NodeId {
        let iv = self.facts[dot].interval;
        let table: Vec<i64> = (iv.lo..=iv.hi).map(f).collect();
        let out_lo = *table.iter().min().unwrap();
        let out_hi = *table.iter().max().unwrap();
        self.push(
            layer,
            Op::Lut {
                input: dot,
                offset: -iv.lo,
                round_bits: 0,
                out_lo,
                out_hi,
                table,
            },
        )
    }

    /// A table that drops `round_bits` low bits of the dot's value before its lookup:
    /// `f(bucket)` for each bucket `(a - lo) >> round_bits` the dot's proved interval reaches.
    pub fn rounded_lut(
        &mut self,
        layer: usize,
        dot: NodeId,
        round_bits: u32,
        f: impl Fn(i64) -> i64,
    ) -> NodeId {
        let iv = self.facts[dot].interval;
        let table: Vec<i64> = (0..=((iv.hi - iv.lo) >> round_bits)).map(f).collect();
        let out_lo = *table.iter().min().unwrap();
        let out_hi = *table.iter().max().unwrap();
        self.push(
            layer,
            Op::Lut {
                input: dot,
                offset: -iv.lo,
                round_bits,
                out_lo,
                out_hi,
                table,
            },
        )
    }

    pub fn finish(mut self, outputs: &[NodeId]) -> CheckedGraph {
        self.g.outputs = outputs.to_vec();
        self.g.client.output_scale = vec![1.0; outputs.len()];
        self.g.client.output_bias = vec![0.0; outputs.len()];
        CheckedGraph::new(self.g)
            .expect("valid graph")
            .expect("within budget")
    }
}

/// Every input combination of a circuit (product of the input intervals).
pub fn all_inputs(c: &CheckedGraph) -> Vec<Vec<i64>> {
    let mut out = vec![vec![]];
    for &id in &c.graph().input_nodes() {
        let iv = c.facts()[id].interval;
        out = out
            .into_iter()
            .flat_map(|p| {
                (iv.lo..=iv.hi).map(move |v| {
                    let mut q = p.clone();
                    q.push(v);
                    q
                })
            })
            .collect();
    }
    out
}
