//! The integer graph ([`IntGraph`]): what an FHE server needs besides its key. Its file format
//! and validation are in [`crate::ir::format`].
//!
//! A graph is a list of scalar nodes in evaluation order. Each node is one of three operations
//! ([`Op`]): a quantized input feature, a sparse integer dot product (the accumulator), or a table
//! lookup that fuses bias, rescale, activation and requantization (one programmable bootstrap in
//! FHE). Pruned connections are absent, never zero; dead neurons are absent.
//!
//! Floats appear only in the [`ClientSpec`]: the client standardizes and quantizes its features
//! and dequantizes the output accumulators. Nothing the server evaluates is a float.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::ir::meta::Meta;
use crate::task::Task;

/// Index of a node in [`IntGraph::nodes`].
pub type NodeId = usize;

/// The closed set of integer-graph operations.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum Op {
    /// Quantized input feature `feature`, an integer in `[lo, hi]`.
    Input {
        /// Feature index.
        feature: usize,
        /// Smallest value.
        lo: i64,
        /// Largest value.
        hi: i64,
    },
    /// Sparse dot product: `constant + Σ weight · value(node)`.
    Dot {
        /// `(node, weight)` pairs; weights non-zero.
        terms: Vec<(NodeId, i64)>,
        /// Integer constant added to the sum.
        constant: i64,
    },
    /// Table lookup: `table[(value(input) + offset) >> round_bits]`.
    Lut {
        /// The node read (a `Dot`).
        input: NodeId,
        /// Added before the shift, so the index starts at 0.
        offset: i64,
        /// Low bits dropped before the lookup (0: exact table on the accumulator).
        round_bits: u32,
        /// Declared smallest output.
        out_lo: i64,
        /// Declared largest output.
        out_hi: i64,
        /// The table, expanded (run-length encoded in files).
        #[serde(with = "crate::ir::format::rle")]
        table: Vec<i64>,
    },
}

/// One node: an operation and the linear layer it belongs to (inputs: layer 0).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Node {
    /// Linear layer index (0-based); `Input` nodes are in layer 0.
    pub layer: usize,
    /// The operation.
    #[serde(flatten)]
    pub op: Op,
}

/// What the client does in float: standardize and quantize features, dequantize outputs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientSpec {
    /// Per-feature centre subtracted from raw features (mean, or mid-range with min-max
    /// input scaling).
    pub feature_mean: Vec<f64>,
    /// Per-feature divisor of centred features (standard deviation, or half the range).
    pub feature_std: Vec<f64>,
    /// Quantization step of the input integers: `q = clamp(round(x / input_scale), lo, hi)`.
    pub input_scale: f64,
    /// Per-output dequantization scale: `y_k = output_scale[k] * acc_k + output_bias[k]`.
    pub output_scale: Vec<f64>,
    /// Per-output bias.
    pub output_bias: Vec<f64>,
    /// Regression: final value is `y * target_std + target_mean`.
    pub target_mean: f64,
    /// See `target_mean`.
    pub target_std: f64,
    /// The data's feature names, in input order: the client matches a data set's columns by
    /// these names ([`crate::data::Schema`]). `None` (absent in the file) for a circuit built by
    /// hand or compiled by an sqnn that did not record them; columns then go by position.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub feature_names: Option<Vec<String>>,
}

impl ClientSpec {
    /// The identity spec: raw features already are the quantized integers (mean 0, deviation
    /// 1, step 1) and outputs are the raw accumulators. For circuits built by hand (witness
    /// circuits, tests, benches).
    ///
    /// ```
    /// let c = sqnn::ir::ClientSpec::identity(3, 2);
    /// assert_eq!((c.feature_std.len(), c.output_scale), (3, vec![1.0, 1.0]));
    /// ```
    pub fn identity(n_features: usize, n_outputs: usize) -> ClientSpec {
        ClientSpec {
            feature_mean: vec![0.0; n_features],
            feature_std: vec![1.0; n_features],
            input_scale: 1.0,
            output_scale: vec![1.0; n_outputs],
            output_bias: vec![0.0; n_outputs],
            target_mean: 0.0,
            target_std: 1.0,
            feature_names: None,
        }
    }
}

/// An integer-only graph: what lowering produces and backends execute (once checked).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IntGraph {
    /// A name for reports (usually the data set).
    pub name: String,
    /// Bit widths, task, pruning mode.
    pub meta: Meta,
    /// Client-side float specification.
    pub client: ClientSpec,
    /// Nodes in evaluation order.
    pub nodes: Vec<Node>,
    /// Output accumulators (last layer's `Dot` nodes), in output order.
    pub outputs: Vec<NodeId>,
    /// The TFHE plan chosen at compile time (absent in circuits compiled before plans were
    /// recorded, and in circuits built by hand).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan: Option<crate::ir::meta::PlanRecord>,
}

/// Smallest `[lo, hi]` a signed `bits`-bit integer holds.
pub fn signed_range(bits: u32) -> (i64, i64) {
    let half = 1i64 << (bits - 1);
    (-half, half - 1)
}

impl IntGraph {
    /// Number of input features.
    pub fn n_features(&self) -> usize {
        self.client.feature_mean.len()
    }

    /// What the circuit expects of its data: feature names (if recorded) and task with class
    /// labels. Match data to it with [`crate::data::Schema::conform`] before
    /// [`IntGraph::quantize_inputs`].
    pub fn schema(&self) -> crate::data::Schema {
        crate::data::Schema {
            feature_names: self.client.feature_names.clone(),
            task: self.meta.task.clone(),
        }
    }

    /// The same graph recording `names` as its feature names (one per feature, distinct,
    /// non-empty), or none.
    pub fn with_feature_names(mut self, names: Option<&[String]>) -> Result<IntGraph> {
        if let Some(n) = names {
            crate::data::Schema::validate_names(n, self.n_features())
                .map_err(|m| Error::Circuit(format!("{m}: the model's names do not fit")))?;
        }
        self.client.feature_names = names.map(<[String]>::to_vec);
        Ok(self)
    }

    /// Number of linear layers.
    pub fn n_layers(&self) -> usize {
        self.nodes.iter().map(|n| n.layer + 1).max().unwrap_or(0)
    }

    /// Ids of the `Input` nodes, indexed by feature.
    pub fn input_nodes(&self) -> Vec<NodeId> {
        let mut ids = vec![0; self.n_features()];
        for (id, n) in self.nodes.iter().enumerate() {
            if let Op::Input { feature, .. } = n.op {
                ids[feature] = id;
            }
        }
        ids
    }

    /// Number of table lookups, i.e. programmable bootstraps per sample.
    pub fn pbs_count(&self) -> usize {
        self.nodes
            .iter()
            .filter(|n| matches!(n.op, Op::Lut { .. }))
            .count()
    }

    /// Every dot product with the table that reads it, in node order: the rows the check's
    /// report and the TFHE planner both list.
    pub fn dot_sites(&self) -> Vec<DotSite> {
        let mut lut_of: Vec<Option<NodeId>> = vec![None; self.nodes.len()];
        for (id, n) in self.nodes.iter().enumerate() {
            if let Op::Lut { input, .. } = n.op {
                lut_of[input] = Some(id);
            }
        }
        let mut per_layer = vec![0usize; self.n_layers()];
        let mut sites = Vec::new();
        for (id, n) in self.nodes.iter().enumerate() {
            let Op::Dot { terms, .. } = &n.op else {
                continue;
            };
            let (table_len, round_bits, table_offset) = match lut_of[id].map(|l| &self.nodes[l].op)
            {
                Some(Op::Lut {
                    table,
                    round_bits,
                    offset,
                    ..
                }) => (table.len(), *round_bits, *offset),
                _ => (0, 0, 0),
            };
            sites.push(DotSite {
                node: id,
                layer: n.layer,
                neuron: per_layer[n.layer],
                fan_in: terms.len(),
                table_len,
                round_bits,
                table_offset,
            });
            per_layer[n.layer] += 1;
        }
        sites
    }

    /// The fewest and most low accumulator bits a table of the circuit drops before its lookup
    /// (`round_bits`), or `None` for a circuit without tables.
    pub fn dropped_bits(&self) -> Option<(u32, u32)> {
        self.nodes
            .iter()
            .filter_map(|n| match n.op {
                Op::Lut { round_bits, .. } => Some(round_bits),
                _ => None,
            })
            .fold(None, |acc, r| match acc {
                None => Some((r, r)),
                Some((lo, hi)) => Some((lo.min(r), hi.max(r))),
            })
    }

    /// Client side: standardizes and quantizes raw feature rows to the integers the input
    /// nodes expect. Errors on a wrong feature count or a NaN / infinite value.
    pub fn quantize_inputs(&self, raw: &ndarray::Array2<f64>) -> Result<Vec<Vec<i64>>> {
        let nf = self.n_features();
        if raw.ncols() != nf {
            return Err(Error::Input(format!(
                "{} features given, the circuit {:?} expects {nf}: use the data set it was trained on (same columns, target excluded)",
                raw.ncols(),
                self.name
            )));
        }
        let ranges: Vec<(i64, i64)> = self
            .input_nodes()
            .iter()
            .map(|&id| match self.nodes[id].op {
                Op::Input { lo, hi, .. } => (lo, hi),
                _ => (0, 0),
            })
            .collect();
        let c = &self.client;
        raw.rows()
            .into_iter()
            .enumerate()
            .map(|(r, row)| {
                row.iter()
                    .enumerate()
                    .map(|(j, &x)| {
                        if !x.is_finite() {
                            return Err(Error::Input(format!(
                                "sample {r}, feature {j} is {x}: replace NaN and infinite values before inference"
                            )));
                        }
                        let v = (x - c.feature_mean[j]) / c.feature_std[j] / c.input_scale;
                        let (lo, hi) = ranges[j];
                        Ok(crate::cast::round_clamp(v, lo, hi))
                    })
                    .collect()
            })
            .collect()
    }

    /// Client side: dequantizes one sample's output accumulators to floats (logits, or the
    /// regression value in target units).
    pub fn dequantize_outputs(&self, accs: &[i64]) -> Vec<f64> {
        let c = &self.client;
        accs.iter()
            .enumerate()
            .map(|(k, &a)| {
                let y = a as f64 * c.output_scale[k] + c.output_bias[k];
                match self.meta.task {
                    Task::Classify { .. } => y,
                    Task::Regress => y * c.target_std + c.target_mean,
                }
            })
            .collect()
    }

    /// Client side: the predicted class (argmax, first on ties) or regression value.
    pub fn predict(&self, accs: &[i64]) -> f64 {
        let y = self.dequantize_outputs(accs);
        match self.meta.task {
            Task::Classify { .. } => {
                let mut best = 0;
                for (k, v) in y.iter().enumerate() {
                    if *v > y[best] {
                        best = k;
                    }
                }
                best as f64
            }
            Task::Regress => y[0],
        }
    }

    /// A prediction of [`IntGraph::predict`] as the user reads it: the class's label, or the
    /// regression value.
    pub fn prediction_label(&self, prediction: f64) -> String {
        match &self.meta.task {
            Task::Classify { classes } => classes
                .iter()
                .enumerate()
                .find(|&(k, _)| k as f64 == prediction)
                .map_or_else(|| format!("class {prediction}"), |(_, c)| c.clone()),
            Task::Regress => format!("{prediction}"),
        }
    }
}

/// A dot product and the table that reads it ([`IntGraph::dot_sites`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DotSite {
    /// The `Dot` node.
    pub node: NodeId,
    /// Its linear layer.
    pub layer: usize,
    /// Its index among its layer's dots.
    pub neuron: usize,
    /// Its number of terms.
    pub fan_in: usize,
    /// Entries of the table that reads it (0: none, an output accumulator).
    pub table_len: usize,
    /// The table's dropped low bits (0 without a table).
    pub round_bits: u32,
    /// The table's offset, `index = (acc + offset) >> round_bits` (0 without a table).
    pub table_offset: i64,
}

/// Bits a table index of `len` entries needs (0 for at most one entry).
pub fn index_bits(len: usize) -> u32 {
    if len <= 1 {
        0
    } else {
        usize::BITS - (len - 1).leading_zeros()
    }
}
