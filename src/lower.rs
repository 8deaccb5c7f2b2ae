//! Stage 3: lowering. A [`QuantizedMlp`] becomes an [`IntGraph`]: input nodes with the layer-0
//! quantizer's range, one sparse `Dot` per neuron, and one `Lut` per hidden neuron that fuses bias,
//! rescale, activation and the next layer's quantizer. Floats end here: each table is computed
//! once, by the same function the quantized model's `predict` uses
//! ([`crate::quantize::QuantLayer::preactivation`]), over exactly the accumulator values the
//! neuron can reach (the interval the analysis proves, via the same transfer function).

use crate::analyze::{transfer, NodeFact};
use crate::error::{Error, Result};
use crate::graph::{ClientSpec, IntGraph, Meta, Node, NodeId, Op, MAX_TABLE_LEN};
use crate::quantize::{Activation, QuantizedMlp};

/// Lowers a quantized model to an integer graph. `pruning` is recorded in the graph's metadata
/// for the report (for example `"per-neuron"` or `"layer-global"`).
pub fn lower(model: &QuantizedMlp, name: &str, pruning: &str) -> Result<IntGraph> {
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
    let mut graph = IntGraph {
        name: name.to_string(),
        meta: Meta {
            task: model.task.clone(),
            n_w_bits: model.n_w_bits,
            n_a_bits: model.n_a_bits,
            n_accum_bits: model.n_accum_bits,
            pruning: pruning.to_string(),
        },
        client: ClientSpec {
            feature_mean: model.feature_mean.clone(),
            feature_std: model.feature_std.clone(),
            input_scale: first.input_quant.scale,
            output_scale: Vec::new(),
            output_bias: Vec::new(),
            target_mean: model.target_mean,
            target_std: model.target_std,
        },
        nodes: Vec::new(),
        outputs: Vec::new(),
    };
    let mut facts: Vec<NodeFact> = Vec::new();
    // Layer-0 inputs.
    let mut prev: Vec<NodeId> = Vec::with_capacity(nf);
    for feature in 0..nf {
        let q = &first.input_quant;
        prev.push(push(
            &mut graph,
            &mut facts,
            Node {
                layer: 0,
                op: Op::Input {
                    feature,
                    lo: q.lo,
                    hi: q.hi,
                },
            },
        )?);
    }
    let n_layers = model.layers.len();
    for (l, layer) in model.layers.iter().enumerate() {
        if layer.in_dim != prev.len() {
            return Err(Error::Model(format!(
                "layer {l} reads {} inputs but the previous layer has {} neurons",
                layer.in_dim,
                prev.len()
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
        let mut dots = Vec::with_capacity(n);
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
            dots.push(push(
                &mut graph,
                &mut facts,
                Node {
                    layer: l,
                    op: Op::Dot { terms, constant: 0 },
                },
            )?);
        }
        if l + 1 == n_layers {
            for (i, &d) in dots.iter().enumerate() {
                graph
                    .client
                    .output_scale
                    .push(layer.weight_scale[i] * layer.input_quant.scale);
                graph.client.output_bias.push(layer.bias[i]);
                graph.outputs.push(d);
            }
            break;
        }
        let act = layer.activation.unwrap_or(Activation::Identity);
        let next = &model.layers[l + 1].input_quant;
        let mut luts = Vec::with_capacity(n);
        for (i, &d) in dots.iter().enumerate() {
            let iv = facts[d].interval;
            let len = iv.count();
            if len > MAX_TABLE_LEN as u128 {
                return Err(Error::Model(format!(
                    "layer {l} neuron {i}: its accumulator spans {len} values, more than a table \
                     may hold ({MAX_TABLE_LEN}); prune harder or lower n_w_bits / n_a_bits"
                )));
            }
            let table: Vec<i64> = (iv.lo..=iv.hi)
                .map(|acc| next.quantize(act.apply(layer.preactivation(i, acc))))
                .collect();
            luts.push(push(
                &mut graph,
                &mut facts,
                Node {
                    layer: l,
                    op: Op::Lut {
                        input: d,
                        offset: iv.lo.checked_neg().ok_or_else(|| {
                            Error::Model(format!("layer {l} neuron {i}: accumulator out of range"))
                        })?,
                        round_bits: 0,
                        out_lo: next.lo,
                        out_hi: next.hi,
                        table,
                    },
                },
            )?);
        }
        prev = luts;
    }
    graph.validate()?;
    fold_constant_tables(graph)
}

/// Removes neurons whose table is constant (a ReLU that never fires, a saturated sigmoid): their
/// dot and table disappear, and every reader adds `weight × constant` to its dot's constant.
/// Values and intervals are unchanged (a constant table's interval is that single value), so
/// the result computes exactly the same outputs with fewer bootstraps.
pub fn fold_constant_tables(graph: IntGraph) -> Result<IntGraph> {
    #[derive(Clone, Copy)]
    enum Map {
        Node(NodeId),
        Const(i64),
        Gone,
    }
    let constant_of = |op: &Op| match op {
        Op::Lut { table, .. } if table.windows(2).all(|w| w[0] == w[1]) => table.first().copied(),
        _ => None,
    };
    // Dots read only by a constant table are dropped (outputs are never read by a table).
    let mut dropped_dot = vec![false; graph.nodes.len()];
    for n in &graph.nodes {
        if let (Op::Lut { input, .. }, Some(_)) = (&n.op, constant_of(&n.op)) {
            dropped_dot[*input] = true;
        }
    }
    if !dropped_dot.iter().any(|d| *d) {
        return Ok(graph);
    }
    let overflow = || Error::Model("a folded constant overflows 64-bit integers".into());
    let mut map = vec![Map::Gone; graph.nodes.len()];
    let mut out = IntGraph {
        nodes: Vec::with_capacity(graph.nodes.len()),
        outputs: Vec::new(),
        ..graph.clone()
    };
    for (id, node) in graph.nodes.into_iter().enumerate() {
        let op = match node.op {
            Op::Dot { .. } if dropped_dot[id] => continue,
            ref lut @ Op::Lut { .. } if constant_of(lut).is_some() => {
                map[id] = Map::Const(constant_of(lut).unwrap_or(0));
                continue;
            }
            Op::Dot {
                terms,
                mut constant,
            } => {
                let mut kept = Vec::with_capacity(terms.len());
                for (src, w) in terms {
                    match map[src] {
                        Map::Node(n) => kept.push((n, w)),
                        Map::Const(c) => {
                            constant = w
                                .checked_mul(c)
                                .and_then(|p| constant.checked_add(p))
                                .ok_or_else(overflow)?
                        }
                        Map::Gone => {
                            return Err(Error::Model(format!("node {id} reads a removed node")))
                        }
                    }
                }
                Op::Dot {
                    terms: kept,
                    constant,
                }
            }
            Op::Lut {
                input,
                offset,
                round_bits,
                out_lo,
                out_hi,
                table,
            } => match map[input] {
                Map::Node(n) => Op::Lut {
                    input: n,
                    offset,
                    round_bits,
                    out_lo,
                    out_hi,
                    table,
                },
                _ => return Err(Error::Model(format!("table {id} lost its input"))),
            },
            op @ Op::Input { .. } => op,
        };
        out.nodes.push(Node {
            layer: node.layer,
            op,
        });
        map[id] = Map::Node(out.nodes.len() - 1);
    }
    out.outputs = graph
        .outputs
        .iter()
        .map(|&o| match map[o] {
            Map::Node(n) => Ok(n),
            _ => Err(Error::Model(format!("output {o} was removed"))),
        })
        .collect::<Result<_>>()?;
    out.validate()?;
    Ok(out)
}

/// Appends a node and computes its fact with the analysis's transfer function.
fn push(graph: &mut IntGraph, facts: &mut Vec<NodeFact>, node: Node) -> Result<NodeId> {
    graph.nodes.push(node);
    let id = graph.nodes.len() - 1;
    let f = transfer(graph, facts, id)?;
    facts.push(f);
    Ok(id)
}
