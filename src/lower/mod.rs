//! Stage 3: lowering. A [`QuantizedMlp`] becomes an [`IntGraph`]: input nodes with the layer-0
//! quantizer's range, one sparse `Dot` per neuron, and one `Lut` per hidden neuron that fuses bias,
//! rescale, activation and the next layer's quantizer. Floats end here: each table is computed
//! once, by the same function the quantized model's `predict` uses
//! ([`crate::train::quantize::QuantLayer::preactivation`]), over exactly the accumulator values the
//! neuron can reach (the interval the analysis proves, via the same transfer function).
//!
//! Tables may drop low accumulator bits first ([`Rounding`], [`round_table`]); constant tables
//! are folded into the dots that read them ([`fold_constant_tables`]).

mod fold;
mod rounding;
#[cfg(test)]
mod tests;

pub use fold::fold_constant_tables;
pub use rounding::{round_table, RoundedTable, Rounding, MAX_TABLE_BITS};

use crate::error::{Error, Result};
use crate::ir::{transfer, NodeFact};
use crate::ir::{ClientSpec, IntGraph, Meta, Node, NodeId, Op, MAX_TABLE_LEN};
use crate::train::quantize::{ActQuantizer, Activation, QuantLayer, QuantizedMlp};
use crate::train::PruningMode;
use rounding::RoundStats;

/// Lowers a quantized model to an integer graph with lossless rounding only
/// ([`Rounding::LOSSLESS`]): the graph computes exactly what the quantized model's `predict`
/// computes. `pruning`, the mode the model was trained with, is recorded in the graph's
/// metadata for the report.
pub fn lower(model: &QuantizedMlp, name: &str, pruning: PruningMode) -> Result<IntGraph> {
    lower_with(model, name, pruning, Rounding::LOSSLESS)
}

/// Lowers a trained [`Model`](crate::train::Model) with `rounding`, recording its pruning mode and
/// its feature names (so data is matched to the circuit by column name) and the split it was
/// trained on: what `sqnn compile` writes.
pub fn lower_model(
    model: &crate::train::Model,
    name: &str,
    rounding: Rounding,
) -> Result<IntGraph> {
    let mut graph = lower_with(model.quantized(), name, model.params().pruning, rounding)?
        .with_feature_names(model.feature_names())?;
    graph.meta.training_rows = model.training_rows().cloned();
    Ok(graph)
}

/// Lowers a quantized model to an integer graph, rounding accumulators before tables as
/// `rounding` allows (see [`lower`]).
pub fn lower_with(
    model: &QuantizedMlp,
    name: &str,
    pruning: PruningMode,
    rounding: Rounding,
) -> Result<IntGraph> {
    let rounding = Rounding::new(
        rounding.tolerance,
        rounding.max_table_bits.min(MAX_TABLE_BITS),
    )?;
    let first = first_layer(model)?;
    let mut b = Builder {
        graph: empty_graph(model, first, name, pruning),
        facts: Vec::new(),
    };
    let mut stats = RoundStats::default();
    let mut prev = b.push_inputs(
        first.input_quant.lo,
        first.input_quant.hi,
        model.input_dim(),
    )?;
    let n_layers = model.layers.len();
    for (l, layer) in model.layers.iter().enumerate() {
        check_layer(l, layer, prev.len())?;
        let dots = b.push_dots(l, layer, &prev)?;
        if l + 1 == n_layers {
            b.set_outputs(layer, &dots);
            break;
        }
        let next = &model.layers[l + 1].input_quant;
        prev = b.push_tables(l, layer, next, &dots, rounding, &mut stats)?;
    }
    b.graph.validate()?;
    let mut graph = fold_constant_tables(b.graph)?;
    graph.meta.rounding = stats.summary(rounding, graph.dropped_bits());
    Ok(graph)
}

/// The first layer, which must read every standardized feature.
fn first_layer(model: &QuantizedMlp) -> Result<&QuantLayer> {
    let first = model
        .layers
        .first()
        .ok_or_else(|| Error::Model("the model has no layers".into()))?;
    let nf = model.input_dim();
    if first.in_dim != nf {
        return Err(Error::Model(format!(
            "layer 0 reads {} inputs but the model standardizes {nf} features",
            first.in_dim
        )));
    }
    Ok(first)
}

/// A graph with the model's metadata and client spec, and no nodes yet.
fn empty_graph(
    model: &QuantizedMlp,
    first: &QuantLayer,
    name: &str,
    pruning: PruningMode,
) -> IntGraph {
    IntGraph {
        name: name.to_string(),
        meta: Meta {
            task: model.task.clone(),
            n_w_bits: model.n_w_bits,
            n_a_bits: model.n_a_bits,
            n_accum_bits: model.n_accum_bits,
            pruning: Some(pruning),
            rounding: None,
            training_rows: None,
        },
        client: ClientSpec {
            feature_mean: model.feature_mean.clone(),
            feature_std: model.feature_std.clone(),
            input_scale: first.input_quant.scale,
            output_scale: Vec::new(),
            output_bias: Vec::new(),
            target_mean: model.target_mean,
            target_std: model.target_std,
            feature_names: None,
        },
        nodes: Vec::new(),
        outputs: Vec::new(),
        plan: None,
    }
}

/// Layer `l` reads as many inputs as the previous layer has neurons, and has one weight scale
/// and one bias per neuron.
fn check_layer(l: usize, layer: &QuantLayer, n_prev: usize) -> Result<()> {
    if layer.in_dim != n_prev {
        return Err(Error::Model(format!(
            "layer {l} reads {} inputs but the previous layer has {} neurons",
            layer.in_dim, n_prev
        )));
    }
    let n = layer.out_dim();
    if layer.weight_scale.len() != n || layer.bias.len() != n {
        return Err(Error::Model(format!(
            "layer {l}: {n} rows but {} weight scales and {} biases",
            layer.weight_scale.len(),
            layer.bias.len()
        )));
    }
    Ok(())
}

/// The graph being built, with each node's fact (so each table covers exactly its input's
/// proved interval).
struct Builder {
    graph: IntGraph,
    facts: Vec<NodeFact>,
}

impl Builder {
    /// Appends a node and computes its fact with the analysis's transfer function.
    fn push(&mut self, node: Node) -> Result<NodeId> {
        self.graph.nodes.push(node);
        let id = self.graph.nodes.len() - 1;
        let f = transfer(&self.graph, &self.facts, id)?;
        self.facts.push(f);
        Ok(id)
    }

    /// One input node per feature, each in `[lo, hi]` (the first layer's input quantizer).
    fn push_inputs(&mut self, lo: i64, hi: i64, nf: usize) -> Result<Vec<NodeId>> {
        (0..nf)
            .map(|feature| {
                self.push(Node {
                    layer: 0,
                    op: Op::Input { feature, lo, hi },
                })
            })
            .collect()
    }

    /// One dot per neuron of layer `l`, over the non-zero weights (sorted by node).
    fn push_dots(&mut self, l: usize, layer: &QuantLayer, prev: &[NodeId]) -> Result<Vec<NodeId>> {
        let mut dots = Vec::with_capacity(layer.out_dim());
        for row in &layer.rows {
            let mut terms: Vec<(NodeId, i64)> = Vec::with_capacity(row.len());
            for &(j, w) in row {
                let src = *prev.get(j).ok_or_else(|| {
                    Error::Model(format!("layer {l}: a weight reads input {j}, out of range"))
                })?;
                if w != 0 {
                    terms.push((src, w));
                }
            }
            terms.sort_unstable_by_key(|t| t.0);
            dots.push(self.push(Node {
                layer: l,
                op: Op::Dot { terms, constant: 0 },
            })?);
        }
        Ok(dots)
    }

    /// The last layer's dots are the outputs; the client dequantizes them with the layer's
    /// weight and input scales and adds its biases.
    fn set_outputs(&mut self, layer: &QuantLayer, dots: &[NodeId]) {
        let g = &mut self.graph;
        for (i, &d) in dots.iter().enumerate() {
            g.client
                .output_scale
                .push(layer.weight_scale[i] * layer.input_quant.scale);
            g.client.output_bias.push(layer.bias[i]);
            g.outputs.push(d);
        }
    }

    /// One table per neuron of hidden layer `l`: the exact table over the accumulator's proved
    /// interval (bias, rescale, activation, then the next layer's quantizer `next`), rounded as
    /// `rounding` allows. Tables that are not constant are counted in `stats`.
    fn push_tables(
        &mut self,
        l: usize,
        layer: &QuantLayer,
        next: &ActQuantizer,
        dots: &[NodeId],
        rounding: Rounding,
        stats: &mut RoundStats,
    ) -> Result<Vec<NodeId>> {
        let act = layer.activation.unwrap_or(Activation::Identity);
        let mut luts = Vec::with_capacity(dots.len());
        for (i, &d) in dots.iter().enumerate() {
            let iv = self.facts[d].interval;
            let len = iv.count();
            if len > u128::from(crate::cast::to_u64(MAX_TABLE_LEN)) {
                return Err(Error::Model(format!(
                    "layer {l} neuron {i}: its accumulator spans {len} values, more than a table \
                     may hold ({MAX_TABLE_LEN}); prune harder or lower n_w_bits / n_a_bits"
                )));
            }
            let exact: Vec<i64> = (iv.lo..=iv.hi)
                .map(|acc| next.quantize(act.apply(layer.preactivation(i, acc))))
                .collect();
            let rounded = round_table(iv.lo, &exact, rounding);
            if exact.windows(2).any(|w| w[0] != w[1]) {
                // Constant tables are folded away: not counted.
                stats.add(&rounded, exact.len());
            }
            luts.push(self.push(Node {
                layer: l,
                op: Op::Lut {
                    input: d,
                    offset: rounded.offset,
                    round_bits: rounded.round_bits,
                    out_lo: next.lo,
                    out_hi: next.hi,
                    table: rounded.table,
                },
            })?);
        }
        Ok(luts)
    }
}
