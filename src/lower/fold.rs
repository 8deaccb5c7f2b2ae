//! Folding constant tables away: a neuron whose table is constant becomes a constant in every
//! dot that reads it.

use crate::error::{Error, Result};
use crate::ir::{IntGraph, Node, NodeId, Op};

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
