//! Stage 3: lowering. A [`QuantizedMlp`] becomes an [`IntGraph`]: input nodes with the layer-0
//! quantizer's range, one sparse `Dot` per neuron, and one `Lut` per hidden neuron that fuses bias,
//! rescale, activation and the next layer's quantizer. Floats end here: each table is computed
//! once, by the same function the quantized model's `predict` uses
//! ([`crate::train::quantize::QuantLayer::preactivation`]), over exactly the accumulator values the
//! neuron can reach (the interval the analysis proves, via the same transfer function).

use crate::error::{Error, Result};
use crate::ir::{transfer, NodeFact};
use crate::ir::{ClientSpec, IntGraph, Meta, Node, NodeId, Op, MAX_TABLE_LEN};
use crate::train::quantize::{Activation, QuantizedMlp};

/// Lowers a quantized model to an integer graph with lossless rounding only
/// ([`Rounding::LOSSLESS`]): the graph computes exactly what the quantized model's `predict`
/// computes. `pruning` is recorded in the graph's metadata for the report (for example
/// `"per-neuron"` or `"layer-global"`).
pub fn lower(model: &QuantizedMlp, name: &str, pruning: &str) -> Result<IntGraph> {
    lower_with(model, name, pruning, Rounding::LOSSLESS)
}

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
    /// Only rounding that changes no output.
    pub const LOSSLESS: Rounding = Rounding {
        tolerance: 0.0,
        max_table_bits: 40,
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

    /// Checks the tolerance (a share in `[0, 1)`) and the table width (1 to 24 bits).
    pub fn new(tolerance: f64, max_table_bits: u32) -> Result<Rounding> {
        if !(1..=24).contains(&max_table_bits) {
            return Err(Error::param(
                "max_table_bits",
                format!("{max_table_bits} is not a table width in 1..=24 bits: give e.g. 10"),
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

/// Lowers a quantized model to an integer graph, rounding accumulators before tables as
/// `rounding` allows (see [`lower`]).
pub fn lower_with(
    model: &QuantizedMlp,
    name: &str,
    pruning: &str,
    rounding: Rounding,
) -> Result<IntGraph> {
    let rounding = Rounding::new(rounding.tolerance, rounding.max_table_bits.min(24))?;
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
            rounding: String::new(),
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
    let mut stats = RoundStats::default();
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
            let exact: Vec<i64> = (iv.lo..=iv.hi)
                .map(|acc| next.quantize(act.apply(layer.preactivation(i, acc))))
                .collect();
            let rounded = round_table(iv.lo, &exact, rounding);
            if exact.windows(2).any(|w| w[0] != w[1]) {
                // Constant tables are folded away below: not counted.
                stats.add(&rounded, exact.len());
            }
            luts.push(push(
                &mut graph,
                &mut facts,
                Node {
                    layer: l,
                    op: Op::Lut {
                        input: d,
                        offset: rounded.offset,
                        round_bits: rounded.round_bits,
                        out_lo: next.lo,
                        out_hi: next.hi,
                        table: rounded.table,
                    },
                },
            )?);
        }
        prev = luts;
    }
    graph.validate()?;
    let mut graph = fold_constant_tables(graph)?;
    graph.meta.rounding = stats.describe(rounding, graph.dropped_bits());
    Ok(graph)
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
///     let v = -5 + k as i64;
///     assert_eq!(r.table[((v + r.offset) >> r.round_bits) as usize], e);
/// }
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
    let budget = (rounding.tolerance * w as f64).floor() as u64;
    let mut levels = exact.to_vec();
    levels.sort_unstable();
    levels.dedup();
    let steps: Vec<usize> = (1..w).filter(|&k| exact[k] != exact[k - 1]).collect();
    let max_r = usize::BITS - 1 - w.leading_zeros();
    // Fewest bits that keep the table within `max_table_bits` index bits at any phase.
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
                offset: lo.wrapping_neg().wrapping_add(phase as i64),
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

/// What rounding did to a circuit's tables, for its metadata.
#[derive(Default)]
struct RoundStats {
    tables: usize,
    rounded: usize,
    lossless: usize,
    changed: u64,
    values: u64,
    worst_share: f64,
}

impl RoundStats {
    fn add(&mut self, t: &RoundedTable, w: usize) {
        self.tables += 1;
        self.values += w as u64;
        if t.round_bits > 0 {
            self.rounded += 1;
            if t.changed == 0 {
                self.lossless += 1;
            }
        }
        self.changed += t.changed;
        self.worst_share = self.worst_share.max(t.changed as f64 / w.max(1) as f64);
    }

    /// The summary; `dropped` is the circuit's fewest and most dropped bits
    /// ([`IntGraph::dropped_bits`]).
    fn describe(&self, rounding: Rounding, dropped: Option<(u32, u32)>) -> String {
        let (min_bits, max_bits) = dropped.unwrap_or((0, 0));
        if self.tables == 0 {
            return String::new();
        }
        format!(
            "tolerance {:.4}, tables of at most {} bits: {} of {} tables drop {}..={} low accumulator bits ({} of them \
             losslessly); {} of {} reachable accumulator values ({:.2} %) change level, at most \
             {:.2} % in one table",
            rounding.tolerance,
            rounding.max_table_bits,
            self.rounded,
            self.tables,
            min_bits,
            max_bits,
            self.lossless,
            self.changed,
            self.values,
            100.0 * self.changed as f64 / self.values.max(1) as f64,
            100.0 * self.worst_share,
        )
    }
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
        changed += (end - k - best_len) as u64;
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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Reads `t` at accumulator `v` the way the graph does.
    fn read(t: &RoundedTable, v: i64) -> i64 {
        t.table[((v + t.offset) >> t.round_bits) as usize]
    }

    /// Counts the accumulators whose output differs from the exact table's.
    fn changed(t: &RoundedTable, lo: i64, exact: &[i64]) -> u64 {
        exact
            .iter()
            .enumerate()
            .filter(|&(k, &e)| read(t, lo + k as i64) != e)
            .count() as u64
    }

    #[test]
    fn power_of_two_steps_round_losslessly() {
        // A requantized ReLU whose steps are 16 accumulator units apart, starting at 5.
        let lo = -100;
        let exact: Vec<i64> = (lo..=300)
            .map(|a: i64| ((a - 5).max(0) / 16).min(15))
            .collect();
        let t = round_table(lo, &exact, Rounding::LOSSLESS);
        assert_eq!((t.round_bits, t.changed), (4, 0));
        assert_eq!(changed(&t, lo, &exact), 0);
    }

    #[test]
    fn a_wide_table_is_cut_to_the_index_width() {
        let lo = -2000;
        let exact: Vec<i64> = (lo..=2000).map(|a: i64| (a / 37).clamp(-8, 7)).collect();
        let r = Rounding::new(0.0, 10).unwrap();
        let t = round_table(lo, &exact, r);
        assert!(t.table.len() <= 1 << 10, "{}", t.table.len());
        assert!(t.round_bits >= 2);
        assert_eq!(changed(&t, lo, &exact), t.changed);
    }

    #[test]
    fn bad_rounding_parameters_are_refused() {
        assert!(Rounding::new(1.0, 10).is_err());
        assert!(Rounding::new(-0.1, 10).is_err());
        assert!(Rounding::new(f64::NAN, 10).is_err());
        assert!(Rounding::new(0.01, 0).is_err());
        assert!(Rounding::new(0.01, 25).is_err());
    }

    proptest! {
        /// Whatever the table, the rounded one: covers exactly the index range, reports its
        /// changes truthfully, stays within the tolerance unless forced by the width, and keeps
        /// every output level when not forced.
        #[test]
        fn rounding_keeps_its_promises(
            lo in -3000i64..3000,
            steps in proptest::collection::vec(1usize..300, 1..12),
            tol in 0.0f64..0.1,
            width in 4u32..12,
        ) {
            let mut exact = Vec::new();
            for (level, &run) in steps.iter().enumerate() {
                exact.extend(std::iter::repeat_n(level as i64, run));
            }
            let w = exact.len();
            let r = Rounding::new(tol, width).unwrap();
            let t = round_table(lo, &exact, r);
            let hi = lo + w as i64 - 1;
            prop_assert_eq!((lo + t.offset) >> t.round_bits, 0);
            prop_assert_eq!(((hi + t.offset) >> t.round_bits) as usize + 1, t.table.len());
            prop_assert!(t.table.len() <= 1 << width);
            prop_assert_eq!(changed(&t, lo, &exact), t.changed);
            let forced = w > 1 << width;
            if !forced {
                prop_assert!(t.changed as f64 <= tol * w as f64);
                let mut levels = t.table.clone();
                levels.dedup();
                prop_assert_eq!(levels.len(), steps.len());
            }
        }
    }
}
