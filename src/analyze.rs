//! Stage 4: the static check. Interval propagation over the integer graph in evaluation order
//! (one transfer function per operation, tract-style per-node facts), from the exact integer
//! weights and the declared input ranges: every accumulator's worst-case interval is a proof, not
//! a measurement on calibration data.
//!
//! For a `Dot` node with terms `(j, w_j)` and constant `c`:
//! `lo = c + Σ min(w_j·lo_j, w_j·hi_j)`, `hi = c + Σ max(w_j·lo_j, w_j·hi_j)`; both bounds are
//! attained (the witnesses), so the interval is tight for independent inputs. A `Lut`'s interval
//! is the range of its table over the indices the input reaches.
//!
//! [`analyze`] returns an [`Analyzed`] graph whose [`CompileReport`] says whether every
//! accumulator fits `n_accum_bits`; [`Analyzed::check`] turns it into a [`CheckedGraph`], the only
//! thing a backend that encrypts accepts. A failed check is a report, not an error; errors are for
//! broken input (a table that does not cover its input's interval, an interval beyond `i64`).

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::ir::{index_bits, transfer, IntGraph, NodeFact, NodeId, Op, RoundingSummary};
use crate::train::PruningMode;

/// One accumulator (`Dot` node) as the report shows it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NeuronReport {
    /// Node id in the graph.
    pub node: NodeId,
    /// Linear layer.
    pub layer: usize,
    /// Neuron index within its layer.
    pub neuron: usize,
    /// Number of non-zero weights.
    pub fan_in: usize,
    /// Proved smallest accumulator.
    pub lo: i64,
    /// Proved largest accumulator.
    pub hi: i64,
    /// `ceil(log2(hi - lo + 1))`, compared with `n_accum_bits`.
    pub range_bits: u32,
    /// Concrete's signed convention, shown for comparison.
    pub signed_bits: u32,
    /// Σ w² of the neuron's integer weights.
    pub sum_w2: u64,
    /// Entries of the neuron's table (0 for output neurons, which have none).
    pub table_len: usize,
    /// Bits the table's index needs (its PBS precision); 0 without a table.
    pub table_bits: u32,
    /// Low bits dropped before the table.
    pub round_bits: u32,
    /// The table's offset (`index = (acc + offset) >> round_bits`); 0 without a table.
    pub table_offset: i64,
    /// Whether `range_bits > n_accum_bits`.
    pub over_budget: bool,
}

/// Per-layer summary.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LayerReport {
    /// Layer index.
    pub layer: usize,
    /// Neurons (accumulators) in the layer.
    pub neurons: usize,
    /// Largest fan-in.
    pub fan_in_max: usize,
    /// Widest accumulator's range width.
    pub range_bits_max: u32,
    /// Widest accumulator's signed width.
    pub signed_bits_max: u32,
    /// Programmable bootstraps (tables) in the layer.
    pub pbs: usize,
    /// Widest table index (PBS precision) in the layer.
    pub table_bits_max: u32,
    /// Fewest low bits a table of the layer drops before its lookup (0 without tables).
    pub round_bits_min: u32,
    /// Most low bits a table of the layer drops.
    pub round_bits_max: u32,
    /// Largest Σ w² in the layer.
    pub sum_w2_max: u64,
    /// `range_bits_hist[b]` = neurons whose range width is `b`.
    pub range_bits_hist: Vec<usize>,
    /// Neurons over budget.
    pub over_budget: usize,
}

/// The compile-check report: diagnostics are data. Its JSON form is stable (see `docs/report.md`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CompileReport {
    /// Circuit name.
    pub name: String,
    /// Whether every accumulator fits the budget.
    pub ok: bool,
    /// The accumulator budget.
    pub n_accum_bits: u32,
    /// Weight bits.
    pub n_w_bits: u32,
    /// Activation bits.
    pub n_a_bits: u32,
    /// Pruning mode the model was trained with (`null` for a circuit built by hand).
    pub pruning: Option<PruningMode>,
    /// What rounding before the tables cost, as lowering recorded it (in JSON an empty string
    /// if unknown).
    #[serde(with = "summary_or_empty")]
    pub rounding: Option<RoundingSummary>,
    /// Input features.
    pub n_features: usize,
    /// Widest accumulator, range width.
    pub max_range_bits: u32,
    /// Widest accumulator, signed width.
    pub max_signed_bits: u32,
    /// Widest table index (PBS precision needed).
    pub max_table_bits: u32,
    /// Programmable bootstraps per sample.
    pub pbs_count: usize,
    /// Per-layer summaries.
    pub layers: Vec<LayerReport>,
    /// The accumulators over budget (empty when `ok`).
    pub neurons_over_budget: Vec<NeuronReport>,
    /// Every accumulator.
    pub neurons: Vec<NeuronReport>,
}

/// A graph that passed validation and interval analysis: every value provably fits `i64`, so
/// clear execution cannot overflow. It may still exceed the accumulator budget.
#[derive(Clone, Debug)]
pub struct Analyzed {
    graph: IntGraph,
    facts: Vec<NodeFact>,
    report: CompileReport,
}

/// A graph whose every accumulator provably fits `n_accum_bits`: the only thing backends that
/// encrypt accept.
#[derive(Clone, Debug)]
pub struct CheckedGraph(Analyzed);

impl Analyzed {
    /// The graph.
    pub fn graph(&self) -> &IntGraph {
        &self.graph
    }
    /// Per-node facts, indexed by node id.
    pub fn facts(&self) -> &[NodeFact] {
        &self.facts
    }
    /// The report.
    pub fn report(&self) -> &CompileReport {
        &self.report
    }
    /// Passes the check, or gives the analysis back (its report names the offenders).
    pub fn check(self) -> std::result::Result<CheckedGraph, Box<Analyzed>> {
        if self.report.ok {
            Ok(CheckedGraph(self))
        } else {
            Err(Box::new(self))
        }
    }
}

impl CheckedGraph {
    /// Validates, analyzes and checks in one go: `Ok(Err(analysis))` when the budget is exceeded.
    pub fn new(graph: IntGraph) -> Result<std::result::Result<CheckedGraph, Box<Analyzed>>> {
        Ok(analyze(graph)?.check())
    }
    /// The analysis it passed.
    pub fn analyzed(&self) -> &Analyzed {
        &self.0
    }
    /// The graph.
    pub fn graph(&self) -> &IntGraph {
        &self.0.graph
    }
    /// Per-node facts.
    pub fn facts(&self) -> &[NodeFact] {
        &self.0.facts
    }
    /// The report.
    pub fn report(&self) -> &CompileReport {
        &self.0.report
    }
}

/// Validates the graph, propagates intervals and builds the report.
pub fn analyze(graph: IntGraph) -> Result<Analyzed> {
    graph.validate()?;
    let mut facts: Vec<NodeFact> = Vec::with_capacity(graph.nodes.len());
    for id in 0..graph.nodes.len() {
        let f = transfer(&graph, &facts, id)?;
        facts.push(f);
    }
    let report = build_report(&graph, &facts);
    Ok(Analyzed {
        graph,
        facts,
        report,
    })
}

fn build_report(graph: &IntGraph, facts: &[NodeFact]) -> CompileReport {
    let budget = graph.meta.n_accum_bits;
    let n_layers = graph.n_layers();
    let neurons: Vec<NeuronReport> = graph
        .dot_sites()
        .into_iter()
        .map(|d| {
            let f = &facts[d.node];
            let range_bits = f.interval.range_bits();
            NeuronReport {
                node: d.node,
                layer: d.layer,
                neuron: d.neuron,
                fan_in: d.fan_in,
                lo: f.interval.lo,
                hi: f.interval.hi,
                range_bits,
                signed_bits: f.interval.signed_bits(),
                sum_w2: f.sum_w2,
                table_len: d.table_len,
                table_bits: index_bits(d.table_len),
                round_bits: d.round_bits,
                table_offset: d.table_offset,
                over_budget: range_bits > budget,
            }
        })
        .collect();
    let layers: Vec<LayerReport> = (0..n_layers)
        .map(|l| {
            let ns: Vec<&NeuronReport> = neurons.iter().filter(|r| r.layer == l).collect();
            let tables = || ns.iter().filter(|r| r.table_len > 0);
            let range_bits_max = ns.iter().map(|r| r.range_bits).max().unwrap_or(0);
            let mut hist = vec![0usize; crate::cast::to_usize(range_bits_max) + 1];
            for r in &ns {
                hist[crate::cast::to_usize(r.range_bits)] += 1;
            }
            LayerReport {
                layer: l,
                neurons: ns.len(),
                fan_in_max: ns.iter().map(|r| r.fan_in).max().unwrap_or(0),
                range_bits_max,
                signed_bits_max: ns.iter().map(|r| r.signed_bits).max().unwrap_or(0),
                pbs: ns.iter().filter(|r| r.table_len > 0).count(),
                table_bits_max: ns.iter().map(|r| r.table_bits).max().unwrap_or(0),
                round_bits_min: tables().map(|r| r.round_bits).min().unwrap_or(0),
                round_bits_max: tables().map(|r| r.round_bits).max().unwrap_or(0),
                sum_w2_max: ns.iter().map(|r| r.sum_w2).max().unwrap_or(0),
                range_bits_hist: hist,
                over_budget: ns.iter().filter(|r| r.over_budget).count(),
            }
        })
        .collect();
    let over: Vec<NeuronReport> = neurons.iter().filter(|r| r.over_budget).cloned().collect();
    CompileReport {
        name: graph.name.clone(),
        ok: over.is_empty(),
        n_accum_bits: budget,
        n_w_bits: graph.meta.n_w_bits,
        n_a_bits: graph.meta.n_a_bits,
        pruning: graph.meta.pruning,
        rounding: graph.meta.rounding,
        n_features: graph.n_features(),
        max_range_bits: neurons.iter().map(|r| r.range_bits).max().unwrap_or(0),
        max_signed_bits: neurons.iter().map(|r| r.signed_bits).max().unwrap_or(0),
        max_table_bits: neurons.iter().map(|r| r.table_bits).max().unwrap_or(0),
        pbs_count: graph.pbs_count(),
        layers,
        neurons_over_budget: over,
        neurons,
    }
}

/// The witness of a `Dot` node as a standalone circuit: its inputs become `Input` nodes with the
/// proved intervals of the nodes it reads, followed by the dot (and its table, if any). Running
/// the returned inputs through a backend must give exactly the proved bounds.
///
/// Returns the subgraph and the two witness input vectors `(attains lo, attains hi)`.
pub fn witness_circuit(an: &Analyzed, dot: NodeId) -> Result<(IntGraph, Vec<i64>, Vec<i64>)> {
    let g = an.graph();
    let Some(Op::Dot { terms, constant }) = g.nodes.get(dot).map(|n| &n.op) else {
        return Err(Error::Circuit(format!("node {dot} is not a dot node")));
    };
    let f = &an.facts()[dot];
    let mut nodes = Vec::new();
    for (k, &(src, _)) in terms.iter().enumerate() {
        let s = an.facts()[src].interval;
        nodes.push(crate::ir::Node {
            layer: 0,
            op: Op::Input {
                feature: k,
                lo: s.lo,
                hi: s.hi,
            },
        });
    }
    let new_terms: Vec<(NodeId, i64)> = terms
        .iter()
        .enumerate()
        .map(|(k, &(_, w))| (k, w))
        .collect();
    nodes.push(crate::ir::Node {
        layer: 0,
        op: Op::Dot {
            terms: new_terms,
            constant: *constant,
        },
    });
    let n = terms.len().max(1);
    let mut meta = g.meta.clone();
    // Inputs of a deep neuron are table outputs, whose span fits n_a_bits like any input.
    meta.task = crate::task::Task::Regress;
    let sub = IntGraph {
        name: format!("{}-witness-{dot}", g.name),
        meta,
        client: crate::ir::ClientSpec::identity(n, 1),
        outputs: vec![terms.len()],
        nodes,
        plan: None,
    };
    Ok((sub, f.witness_lo.clone(), f.witness_hi.clone()))
}

/// A report's rounding summary in JSON: the summary's sentence, or `""` when there is none.
mod summary_or_empty {
    use serde::{Deserialize, Deserializer, Serializer};

    use crate::ir::RoundingSummary;

    pub fn serialize<S: Serializer>(v: &Option<RoundingSummary>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(r) => s.collect_str(r),
            None => s.serialize_str(""),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<RoundingSummary>, D::Error> {
        let text = String::deserialize(d)?;
        if text.is_empty() {
            return Ok(None);
        }
        text.parse().map(Some).map_err(serde::de::Error::custom)
    }
}
