//! Shared test helpers: random integer graphs for property tests, a hand builder of graphs, and
//! (with the TFHE backend) the TFHE test circuits and keys.
#![allow(dead_code)]

pub mod builder;
#[cfg(feature = "tfhe-backend")]
pub mod tfhe;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sqnn::data::Task;
use sqnn::ir::{signed_range, ClientSpec, IntGraph, Meta, Node, NodeId, Op};
use sqnn::ir::{transfer, NodeFact};

/// A random sparse graph: `nf` inputs, `layers` layers of `width` neurons (last layer `n_out`),
/// weights of `w_bits`, activations of `a_bits`, random tables, random rounding.
pub fn random_graph(seed: u64, nf: usize, layers: usize, width: usize, n_out: usize) -> IntGraph {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let w_bits = rng.gen_range(2..=4u32);
    let a_bits = rng.gen_range(2..=4u32);
    let mut g = IntGraph {
        name: format!("random-{seed}"),
        meta: Meta {
            task: Task::Regress,
            n_w_bits: w_bits,
            n_a_bits: a_bits,
            n_accum_bits: 16,
            pruning: None,
            rounding: None,
            training_rows: None,
        },
        client: ClientSpec::identity(nf, n_out),
        nodes: Vec::new(),
        outputs: Vec::new(),
        plan: None,
    };
    let mut facts: Vec<NodeFact> = Vec::new();
    let span = 1i64 << a_bits;
    let mut prev: Vec<NodeId> = Vec::new();
    for feature in 0..nf {
        let lo = rng.gen_range(-span..=0);
        let hi = rng.gen_range(lo..lo + span);
        push(
            &mut g,
            &mut facts,
            Node {
                layer: 0,
                op: Op::Input { feature, lo, hi },
            },
        );
        prev.push(g.nodes.len() - 1);
    }
    let (wlo, whi) = signed_range(w_bits);
    for l in 0..layers {
        let n = if l + 1 == layers { n_out } else { width };
        let mut dots = Vec::new();
        for _ in 0..n {
            let mut terms: Vec<(NodeId, i64)> = Vec::new();
            for &p in &prev {
                if rng.gen_bool(0.7) {
                    let mut w = 0;
                    while w == 0 {
                        w = rng.gen_range(wlo..=whi);
                    }
                    terms.push((p, w));
                }
            }
            let constant = rng.gen_range(-5..=5);
            push(
                &mut g,
                &mut facts,
                Node {
                    layer: l,
                    op: Op::Dot { terms, constant },
                },
            );
            dots.push(g.nodes.len() - 1);
        }
        if l + 1 == layers {
            g.outputs = dots;
            break;
        }
        let mut luts = Vec::new();
        for &d in &dots {
            let iv = facts[d].interval;
            let round_bits = rng.gen_range(0..=2u32);
            // index = (acc + offset) >> r must start at 0: offset = -lo + (half a step).
            let half = if round_bits == 0 {
                0
            } else {
                1i64 << (round_bits - 1)
            };
            let offset = -iv.lo + rng.gen_range(0..=half);
            let len = ((iv.hi + offset) >> round_bits) + 1;
            let out_lo = rng.gen_range(-span / 2..=0);
            let out_hi = out_lo + span - 1;
            let table = (0..len).map(|_| rng.gen_range(out_lo..=out_hi)).collect();
            push(
                &mut g,
                &mut facts,
                Node {
                    layer: l,
                    op: Op::Lut {
                        input: d,
                        offset,
                        round_bits,
                        out_lo,
                        out_hi,
                        table,
                    },
                },
            );
            luts.push(g.nodes.len() - 1);
        }
        prev = luts;
    }
    g
}

fn push(g: &mut IntGraph, facts: &mut Vec<NodeFact>, node: Node) {
    g.nodes.push(node);
    let id = g.nodes.len() - 1;
    facts.push(transfer(g, facts, id).expect("random graph is well formed"));
}

/// Random in-range inputs for a graph.
pub fn random_inputs(g: &IntGraph, seed: u64, n: usize) -> Vec<Vec<i64>> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let ids = g.input_nodes();
    (0..n)
        .map(|_| {
            ids.iter()
                .map(|&id| match g.nodes[id].op {
                    Op::Input { lo, hi, .. } => rng.gen_range(lo..=hi),
                    _ => unreachable!(),
                })
                .collect()
        })
        .collect()
}

/// One row of random non-zero `w_bits` weights over `prev`, with random terms dropped until the
/// accumulator's range (`Σ |w| · (hi - lo) + 1`, from the facts) fits `2^accum_bits` values:
/// per-neuron pruning, as training does it, for hand-built circuits.
pub fn random_row_within_budget(
    rng: &mut ChaCha8Rng,
    prev: &[NodeId],
    facts: &[NodeFact],
    w_bits: u32,
    accum_bits: u32,
) -> Vec<(NodeId, i64)> {
    let (wlo, whi) = signed_range(w_bits);
    let mut terms: Vec<(NodeId, i64)> = prev
        .iter()
        .map(|&p| {
            let w = loop {
                let w = rng.gen_range(wlo..=whi);
                if w != 0 {
                    break w;
                }
            };
            (p, w)
        })
        .collect();
    let span = |t: &[(NodeId, i64)]| -> i64 {
        t.iter()
            .map(|&(s, w)| w.abs() * (facts[s].interval.hi - facts[s].interval.lo))
            .sum::<i64>()
            + 1
    };
    while span(&terms) > 1i64 << accum_bits {
        terms.remove(rng.gen_range(0..terms.len()));
    }
    terms
}

/// Writes the rows of `ds` to `path` as a CSV of new samples: its feature columns in reverse
/// order (columns are matched by name), then, when `target` names it, the target column
/// (class labels by name, or values).
pub fn write_rows_csv(path: &std::path::Path, ds: &sqnn::Dataset, target: Option<&str>) {
    let mut names: Vec<String> = ds.feature_names.iter().rev().cloned().collect();
    names.extend(target.map(str::to_string));
    let mut text = names.join(",") + "\n";
    for (i, r) in ds.x.rows().into_iter().enumerate() {
        let mut cells: Vec<String> = r.iter().rev().map(|v| v.to_string()).collect();
        if target.is_some() {
            cells.push(match &ds.task {
                Task::Classify { classes } => classes[sqnn::cast::label(ds.y[i]).unwrap()].clone(),
                Task::Regress => ds.y[i].to_string(),
            });
        }
        text += &(cells.join(",") + "\n");
    }
    std::fs::write(path, text).unwrap();
}
