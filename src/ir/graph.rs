//! The integer graph ([`IntGraph`]) and its circuit file format: what an FHE server needs besides
//! its key.
//!
//! A graph is a list of scalar nodes in evaluation order. Each node is one of three operations
//! ([`Op`]): a quantized input feature, a sparse integer dot product (the accumulator), or a table
//! lookup that fuses bias, rescale, activation and requantization (one programmable bootstrap in
//! FHE). Pruned connections are absent, never zero; dead neurons are absent.
//!
//! Floats appear only in the [`ClientSpec`]: the client standardizes and quantizes its features
//! and dequantizes the output accumulators. Nothing the server evaluates is a float.
//!
//! # File format (`circuits/*.circuit.json`, version 1)
//! ```text
//! {
//!   "format": "sqnn-circuit",
//!   "version": 1,
//!   "sha256": "<hex digest of the compact JSON of `circuit`>",
//!   "circuit": {
//!     "name": "iris", "meta": {...}, "client": {...}, "outputs": [..],
//!     "nodes": [
//!       {"op":"input","layer":0,"feature":0,"lo":-2,"hi":1},
//!       {"op":"dot","layer":0,"terms":[[0,1],[3,-2]],"constant":0},
//!       {"op":"lut","layer":0,"input":4,"offset":6,"round_bits":0,"out_lo":0,"out_hi":3,
//!        "table":[[0,6],[1,2],[2,2],[3,3]]},
//!       ...
//!     ]
//!   }
//! }
//! ```
//! * `input`: feature index and the closed interval `[lo, hi]` of its quantized integer.
//! * `dot`: `constant + Σ weight · value(node)`, over `terms` = `[node, weight]` pairs; every node
//!   named comes earlier in the list; weights are non-zero and fit `meta.n_w_bits` (signed).
//! * `lut`: `index = (value(input) + offset) >> round_bits`, output `table[index]`. The table is
//!   stored run-length encoded as `[value, count]` pairs; its entries lie in the declared
//!   `[out_lo, out_hi]`, whose size fits `meta.n_a_bits`. Its length must equal the number of
//!   indices the input's proved interval reaches (checked by [`crate::analyze`]).
//! * `outputs`: the last layer's `dot` nodes, in output order; the client dequantizes
//!   `client.output_scale[k] * acc + client.output_bias[k]`.
//!
//! Loading ([`IntGraph::from_json`]) checks the format name and version first, then the checksum
//! (a file edited by hand must be recompiled), then every structural rule above, with checked
//! arithmetic: a malformed, truncated or tampered file is an error, never a panic.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::task::Task;

/// The format name in every circuit file.
pub const FORMAT: &str = "sqnn-circuit";
/// The circuit format version this build reads and writes.
pub const VERSION: u32 = 1;
/// Largest table a circuit may hold (entries), so that a hostile file cannot exhaust memory.
pub const MAX_TABLE_LEN: usize = 1 << 24;
/// Largest number of nodes a circuit may hold.
pub const MAX_NODES: usize = 1 << 22;
/// Largest bit width accepted for weights, activations and accumulators in a file.
pub const MAX_BITS: u32 = 24;

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
        #[serde(with = "rle")]
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

/// Facts about how the circuit was made, which the check and the parameter choice use.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Meta {
    /// Classification (with class names) or regression.
    pub task: Task,
    /// Weight bit width (signed).
    pub n_w_bits: u32,
    /// Activation bit width.
    pub n_a_bits: u32,
    /// Accumulator budget: every accumulator's range width must be at most this.
    pub n_accum_bits: u32,
    /// How the model was pruned (free text, for the report: "per-neuron", "layer-global", ...).
    pub pruning: String,
    /// What rounding before the tables cost, as lowering measured it against the exact tables
    /// (free text, for the report; empty when lowering recorded nothing).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub rounding: String,
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
}

/// An integer-only graph: what lowering produces and backends execute (once checked).
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
        }
    }
}

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
}

#[derive(Serialize, Deserialize)]
struct FileHeader {
    format: String,
    version: u32,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    format: String,
    version: u32,
    sha256: String,
    circuit: IntGraph,
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

    /// The compact JSON that the checksum covers.
    fn canonical(&self) -> Result<String> {
        serde_json::to_string(self).map_err(|e| Error::Circuit(format!("cannot serialize: {e}")))
    }

    /// Hex SHA-256 of the canonical JSON: identifies a circuit (keys are bound to it).
    pub fn digest(&self) -> Result<String> {
        let hash = Sha256::digest(self.canonical()?.as_bytes());
        Ok(hash.iter().map(|b| format!("{b:02x}")).collect())
    }

    /// Serializes to the versioned, human-readable file format: one node per line.
    pub fn to_json(&self) -> Result<String> {
        let mut s = String::new();
        s.push_str("{\n");
        s.push_str(&format!(
            "  \"format\": \"{FORMAT}\",\n  \"version\": {VERSION},\n"
        ));
        s.push_str(&format!("  \"sha256\": \"{}\",\n", self.digest()?));
        s.push_str("  \"circuit\": {\n");
        s.push_str(&format!("    \"name\": {},\n", compact(&self.name)?));
        s.push_str(&format!("    \"meta\": {},\n", compact(&self.meta)?));
        s.push_str(&format!("    \"client\": {},\n", compact(&self.client)?));
        s.push_str(&format!("    \"outputs\": {},\n", compact(&self.outputs)?));
        s.push_str("    \"nodes\": [\n");
        for (i, n) in self.nodes.iter().enumerate() {
            let sep = if i + 1 == self.nodes.len() { "" } else { "," };
            s.push_str(&format!("      {}{sep}\n", compact(n)?));
        }
        s.push_str("    ]\n  }\n}\n");
        Ok(s)
    }

    /// Parses and fully validates a circuit file's text (see the module docs for the rules).
    pub fn from_json(text: &str) -> Result<IntGraph> {
        let header: FileHeader = serde_json::from_str(text).map_err(|e| {
            Error::Circuit(format!(
                "not a readable sqnn circuit ({e}); the file is truncated or not JSON: \
                 recompile it with `sqnn compile MODEL --out FILE`"
            ))
        })?;
        if header.format != FORMAT {
            return Err(Error::Circuit(format!(
                "format is {:?}, expected {FORMAT:?}: this is not an sqnn circuit file",
                header.format
            )));
        }
        if header.version != VERSION {
            return Err(Error::Circuit(format!(
                "format version {} is not supported by this build (it reads version {VERSION}): \
                 recompile the model with this sqnn, or use the sqnn that wrote it",
                header.version
            )));
        }
        let file: File = serde_json::from_str(text).map_err(|e| {
            Error::Circuit(format!(
                "malformed circuit ({e}): recompile it with `sqnn compile MODEL --out FILE`"
            ))
        })?;
        let graph = file.circuit;
        let digest = graph.digest()?;
        if !digest.eq_ignore_ascii_case(&file.sha256) {
            return Err(Error::Circuit(format!(
                "checksum mismatch (file says {}, content hashes to {digest}): the circuit was \
                 modified after it was compiled; recompile it with `sqnn compile`",
                file.sha256
            )));
        }
        graph.validate()?;
        Ok(graph)
    }

    /// Reads and validates a circuit file.
    pub fn load(path: &std::path::Path) -> Result<IntGraph> {
        let meta = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
        if meta.len() > 256 << 20 {
            return Err(Error::Circuit(format!(
                "{}: {} bytes is larger than any circuit this build accepts (256 MiB)",
                path.display(),
                meta.len()
            )));
        }
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        IntGraph::from_json(&text)
            .map_err(|e| Error::Circuit(format!("{}: {}", path.display(), strip(e))))
    }

    /// Writes the circuit file.
    pub fn save(&self, path: &std::path::Path) -> Result<()> {
        std::fs::write(path, self.to_json()?).map_err(|e| Error::io(path, e))
    }

    /// Structural validation: every rule of the format except table lengths (which need the
    /// proved intervals and are checked by [`crate::analyze::analyze`]).
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(Error::Circuit(m));
        let m = &self.meta;
        for (name, bits) in [
            ("n_w_bits", m.n_w_bits),
            ("n_a_bits", m.n_a_bits),
            ("n_accum_bits", m.n_accum_bits),
        ] {
            if bits == 0 || bits > MAX_BITS {
                return bad(format!("meta.{name} = {bits} is outside 1..={MAX_BITS}"));
            }
        }
        let c = &self.client;
        let nf = c.feature_mean.len();
        if nf == 0 || c.feature_std.len() != nf {
            return bad(format!(
                "client spec has {} feature means and {} deviations: they must be equal and non-zero",
                nf,
                c.feature_std.len()
            ));
        }
        let finite = c
            .feature_mean
            .iter()
            .chain(&c.feature_std)
            .chain(&c.output_scale)
            .chain(&c.output_bias)
            .chain([&c.input_scale, &c.target_mean, &c.target_std])
            .all(|v| v.is_finite());
        if !finite {
            return bad("client spec holds a NaN or infinite number".into());
        }
        if c.feature_std.iter().any(|&s| s <= 0.0) || c.input_scale <= 0.0 || c.target_std <= 0.0 {
            return bad("client spec has a non-positive scale or deviation".into());
        }
        if self.nodes.is_empty() || self.nodes.len() > MAX_NODES {
            return bad(format!(
                "{} nodes: a circuit holds 1 to {MAX_NODES} nodes",
                self.nodes.len()
            ));
        }
        let (wlo, whi) = signed_range(m.n_w_bits);
        let a_span = 1i64 << m.n_a_bits;
        let mut seen_feature = vec![false; nf];
        let mut last_layer = 0usize;
        for (id, node) in self.nodes.iter().enumerate() {
            if node.layer < last_layer {
                return bad(format!(
                    "node {id} is in layer {} after a node of layer {last_layer}: nodes must be in evaluation order",
                    node.layer
                ));
            }
            last_layer = node.layer;
            match &node.op {
                Op::Input { feature, lo, hi } => {
                    if node.layer != 0 {
                        return bad(format!("input node {id} must be in layer 0"));
                    }
                    match seen_feature.get_mut(*feature) {
                        None => {
                            return bad(format!(
                                "input node {id} reads feature {feature}, but the client spec has {nf} features"
                            ))
                        }
                        Some(true) => return bad(format!("feature {feature} has two input nodes")),
                        Some(s) => *s = true,
                    }
                    let span = hi.checked_sub(*lo).and_then(|d| d.checked_add(1));
                    match span {
                        Some(s) if s >= 1 && s <= a_span => {}
                        _ => {
                            return bad(format!(
                            "input node {id} declares [{lo}, {hi}], which is empty or wider than \
                                 {a_span} values (n_a_bits = {})",
                            m.n_a_bits
                        ))
                        }
                    }
                }
                Op::Dot { terms, constant } => {
                    if constant.unsigned_abs() > 1 << 40 {
                        return bad(format!(
                            "dot node {id}: constant {constant} is out of range"
                        ));
                    }
                    let mut prev: Option<NodeId> = None;
                    for &(src, w) in terms {
                        if src >= id {
                            return bad(format!(
                                "dot node {id} reads node {src}, which does not come before it (dangling or cyclic reference)"
                            ));
                        }
                        if matches!(self.nodes[src].op, Op::Dot { .. }) {
                            return bad(format!(
                                "dot node {id} reads dot node {src} directly: dots read inputs or tables"
                            ));
                        }
                        if prev.is_some_and(|p| p >= src) {
                            return bad(format!(
                                "dot node {id}: terms must be sorted by node with no duplicates (node {src})"
                            ));
                        }
                        prev = Some(src);
                        if w == 0 || w < wlo || w > whi {
                            return bad(format!(
                                "dot node {id}: weight {w} on node {src} is zero or outside the \
                                 {}-bit range [{wlo}, {whi}]",
                                m.n_w_bits
                            ));
                        }
                    }
                }
                Op::Lut {
                    input,
                    offset,
                    round_bits,
                    out_lo,
                    out_hi,
                    table,
                } => {
                    if *input >= id {
                        return bad(format!(
                            "lut node {id} reads node {input}, which does not come before it"
                        ));
                    }
                    if !matches!(self.nodes[*input].op, Op::Dot { .. }) {
                        return bad(format!(
                            "lut node {id} must read a dot node, not node {input}"
                        ));
                    }
                    if *round_bits > 40 || offset.unsigned_abs() > 1 << 50 {
                        return bad(format!(
                            "lut node {id}: round_bits {round_bits} or offset {offset} out of range"
                        ));
                    }
                    let span = out_hi.checked_sub(*out_lo).and_then(|d| d.checked_add(1));
                    if !matches!(span, Some(s) if s >= 1 && s <= a_span) {
                        return bad(format!(
                            "lut node {id}: declared output range [{out_lo}, {out_hi}] is empty or \
                             wider than {a_span} values (n_a_bits = {})",
                            m.n_a_bits
                        ));
                    }
                    if table.is_empty() || table.len() > MAX_TABLE_LEN {
                        return bad(format!(
                            "lut node {id}: table of {} entries (1 to {MAX_TABLE_LEN} allowed)",
                            table.len()
                        ));
                    }
                    if let Some(v) = table.iter().find(|v| **v < *out_lo || **v > *out_hi) {
                        return bad(format!(
                            "lut node {id}: table entry {v} is outside its declared range [{out_lo}, {out_hi}]"
                        ));
                    }
                }
            }
        }
        if let Some(f) = seen_feature.iter().position(|s| !s) {
            return bad(format!("feature {f} has no input node"));
        }
        let last = self.n_layers() - 1;
        if self.outputs.is_empty() {
            return bad("the circuit has no outputs".into());
        }
        for &o in &self.outputs {
            match self.nodes.get(o) {
                Some(Node {
                    layer,
                    op: Op::Dot { .. },
                }) if *layer == last => {}
                _ => {
                    return bad(format!(
                        "output {o} is not a dot node of the last layer ({last})"
                    ))
                }
            }
        }
        let no = self.outputs.len();
        if c.output_scale.len() != no || c.output_bias.len() != no {
            return bad(format!(
                "{no} outputs but {} output scales and {} biases",
                c.output_scale.len(),
                c.output_bias.len()
            ));
        }
        if let Task::Classify { classes } = &m.task {
            if classes.len() != no {
                return bad(format!(
                    "{} classes but {no} outputs: a classifier has one output per class",
                    classes.len()
                ));
            }
        }
        Ok(())
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
}

/// Removes the "circuit: " prefix when re-wrapping an error with a path.
fn strip(e: Error) -> String {
    match e {
        Error::Circuit(m) => m,
        other => other.to_string(),
    }
}

/// Compact JSON of one value.
fn compact<T: Serialize>(v: &T) -> Result<String> {
    serde_json::to_string(v).map_err(|e| Error::Circuit(format!("cannot serialize: {e}")))
}

mod rle {
    //! Tables as `[value, count]` runs: ReLU-like tables are long staircases.
    use serde::de::Error as _;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(table: &[i64], s: S) -> Result<S::Ok, S::Error> {
        let mut runs: Vec<(i64, u64)> = Vec::new();
        for &v in table {
            match runs.last_mut() {
                Some((last, n)) if *last == v => *n += 1,
                _ => runs.push((v, 1)),
            }
        }
        s.collect_seq(runs)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<i64>, D::Error> {
        let runs: Vec<(i64, u64)> = Vec::deserialize(d)?;
        let mut total: u64 = 0;
        for &(_, n) in &runs {
            if n == 0 {
                return Err(D::Error::custom("a table run has count 0"));
            }
            total = total
                .checked_add(n)
                .filter(|t| *t <= super::MAX_TABLE_LEN as u64)
                .ok_or_else(|| {
                    D::Error::custom(format!(
                        "table longer than {} entries",
                        super::MAX_TABLE_LEN
                    ))
                })?;
        }
        let mut table = Vec::with_capacity(total as usize);
        for (v, n) in runs {
            table.extend(std::iter::repeat_n(v, n as usize));
        }
        Ok(table)
    }
}
