//! The circuit file format: versioned header, checksum, run-length encoded tables, load and
//! save, and the structural validation every loaded graph passes.
//!
//! # File format (`circuits/*.circuit.json`, version 2)
//! ```text
//! {
//!   "format": "sqnn-circuit",
//!   "version": 2,
//!   "sha256": "<hex digest of the compact JSON of `circuit`>",
//!   "circuit": {
//!     "name": "iris", "meta": {...}, "client": {...}, "outputs": [..], "plan": {...},
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
//!   indices the input's proved interval reaches (checked by [`crate::analyze`](mod@crate::analyze)).
//! * `client.feature_names` (optional): the data's column names, in feature order, distinct; data
//!   is matched to them by name ([`crate::data::Schema`]). Circuits without them (built by hand,
//!   or compiled before they were recorded) still load, and their data is taken by position.
//! * `outputs`: the last layer's `dot` nodes, in output order; the client dequantizes
//!   `client.output_scale[k] * acc + client.output_bias[k]`.
//! * `plan` (optional, version 2): the TFHE plan `sqnn compile` chose ([`PlanRecord`]); the
//!   checksum covers it. Version 1 files (written before plans were recorded) still load, with
//!   no plan: the commands that need one plan when they run, and say so.
//!
//! Loading ([`IntGraph::from_json`]) checks the format name and version first, then the checksum
//! (a file edited by hand must be recompiled), then every structural rule above, with checked
//! arithmetic: a malformed, truncated or tampered file is an error, never a panic.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::fsio::bounded;
use crate::ir::graph::{signed_range, ClientSpec, IntGraph, Node, NodeId, Op};
#[cfg(doc)]
use crate::ir::PlanRecord;
use crate::task::Task;

/// The format name in every circuit file.
pub const FORMAT: &str = "sqnn-circuit";
/// The circuit format version this build writes (version 2 added the recorded plan).
pub const VERSION: u32 = 2;
/// The oldest circuit format version this build reads.
pub const OLDEST_VERSION: u32 = 1;
/// Largest table a circuit may hold (entries), so that a hostile file cannot exhaust memory.
pub const MAX_TABLE_LEN: usize = 1 << 24;
/// Largest number of nodes a circuit may hold.
pub const MAX_NODES: usize = 1 << 22;
/// Largest circuit file sqnn reads.
pub const MAX_CIRCUIT_BYTES: u64 = 256 * crate::fsio::MIB;
/// Largest bit width accepted for weights, activations and accumulators in a file.
pub const MAX_BITS: u32 = 24;

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

impl IntGraph {
    /// The compact JSON that the checksum covers.
    fn canonical(&self) -> Result<String> {
        serde_json::to_string(self).map_err(|e| Error::Circuit(format!("cannot serialize: {e}")))
    }

    /// Hex SHA-256 of the canonical JSON: identifies a circuit (keys are bound to it).
    pub fn digest(&self) -> Result<String> {
        Ok(crate::fsio::sha256_hex(self.canonical()?.as_bytes()))
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
        if let Some(plan) = &self.plan {
            s.push_str(&format!("    \"plan\": {},\n", compact(plan)?));
        }
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
                "not a readable sqnn circuit ({}); the file is truncated or not JSON: \
                 recompile the model into a fresh circuit",
                bounded(&e.to_string(), 200)
            ))
        })?;
        if header.format != FORMAT {
            return Err(Error::Circuit(format!(
                "format is {:?}, expected {FORMAT:?}: this is not an sqnn circuit file",
                bounded(&header.format, 64)
            )));
        }
        if !(OLDEST_VERSION..=VERSION).contains(&header.version) {
            return Err(Error::Circuit(format!(
                "format version {} is not supported by this build (it reads versions \
                 {OLDEST_VERSION} to {VERSION}): recompile the model with this sqnn, or use the \
                 sqnn that wrote it",
                header.version
            )));
        }
        // All tables together hold at most MAX_TABLE_LEN entries while this file is parsed:
        // a small file cannot claim many huge run-length tables.
        let file: File = rle::with_budget(|| serde_json::from_str(text)).map_err(|e| {
            Error::Circuit(format!(
                "malformed circuit ({}): recompile the model into a fresh circuit",
                bounded(&e.to_string(), 200)
            ))
        })?;
        let graph = file.circuit;
        let digest = graph.digest()?;
        if !digest.eq_ignore_ascii_case(&file.sha256) {
            return Err(Error::Circuit(format!(
                "checksum mismatch (file says {}, content hashes to {digest}): the circuit was \
                 modified after it was compiled; recompile the model into a fresh circuit",
                bounded(&file.sha256, 64)
            )));
        }
        graph.validate()?;
        Ok(graph)
    }

    /// Reads and validates a circuit file.
    pub fn load(path: &std::path::Path) -> Result<IntGraph> {
        let text = crate::fsio::read_text_limited(path, MAX_CIRCUIT_BYTES, "circuit file")
            .map_err(|e| match e {
                Error::Input(m) => Error::Circuit(m),
                other => other,
            })?;
        IntGraph::from_json(&text)
            .map_err(|e| Error::Circuit(format!("{}: {}", path.display(), strip(e))))
    }

    /// Writes the circuit file atomically ([`crate::fsio::write_atomic`]): on any failure the
    /// previous file at `path` is left as it was.
    pub fn save(&self, path: &std::path::Path) -> Result<()> {
        let text = self.to_json()?;
        crate::fsio::write_atomic(path, text.as_bytes(), crate::fsio::Secrecy::Public)
    }

    /// Structural validation: every rule of the format except table lengths (which need the
    /// proved intervals and are checked by [`crate::analyze::analyze`]). The checks run in this
    /// order and the first broken rule is the error.
    pub fn validate(&self) -> Result<()> {
        if let Some(plan) = &self.plan {
            plan.validate()?;
        }
        check_bit_widths(self)?;
        check_client(&self.client)?;
        check_node_count(self)?;
        check_nodes(self)?;
        check_outputs(self)
    }
}

/// A broken rule.
fn bad(m: String) -> Result<()> {
    Err(Error::Circuit(m))
}

/// Weight, activation and accumulator widths are in `1..=MAX_BITS`.
fn check_bit_widths(g: &IntGraph) -> Result<()> {
    let m = &g.meta;
    for (name, bits) in [
        ("n_w_bits", m.n_w_bits),
        ("n_a_bits", m.n_a_bits),
        ("n_accum_bits", m.n_accum_bits),
    ] {
        if bits == 0 || bits > MAX_BITS {
            return bad(format!("meta.{name} = {bits} is outside 1..={MAX_BITS}"));
        }
    }
    Ok(())
}

/// The client spec has as many deviations as means (at least one), only finite numbers and
/// positive scales.
fn check_client(c: &ClientSpec) -> Result<()> {
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
    if let Some(names) = &c.feature_names {
        crate::data::Schema::validate_names(names, nf)
            .or_else(|m| bad(format!("client spec: {m}")))?;
    }
    Ok(())
}

/// 1 to `MAX_NODES` nodes.
fn check_node_count(g: &IntGraph) -> Result<()> {
    if g.nodes.is_empty() || g.nodes.len() > MAX_NODES {
        return bad(format!(
            "{} nodes: a circuit holds 1 to {MAX_NODES} nodes",
            g.nodes.len()
        ));
    }
    Ok(())
}

/// Every node in evaluation order (layers never decrease) and well formed; every feature has
/// exactly one input node.
fn check_nodes(g: &IntGraph) -> Result<()> {
    let nf = g.client.feature_mean.len();
    let mut seen_feature = vec![false; nf];
    let mut last_layer = 0usize;
    for (id, node) in g.nodes.iter().enumerate() {
        if node.layer < last_layer {
            return bad(format!(
                "node {id} is in layer {} after a node of layer {last_layer}: nodes must be in evaluation order",
                node.layer
            ));
        }
        last_layer = node.layer;
        match &node.op {
            Op::Input { feature, lo, hi } => {
                check_input(g, id, node.layer, *feature, (*lo, *hi), &mut seen_feature)?
            }
            Op::Dot { terms, constant } => check_dot(g, id, terms, *constant)?,
            Op::Lut { .. } => check_lut(g, id, &node.op)?,
        }
    }
    if let Some(f) = seen_feature.iter().position(|s| !s) {
        return bad(format!("feature {f} has no input node"));
    }
    Ok(())
}

/// An input node: in layer 0, reads a feature the client spec has and no other input node
/// reads, and declares a non-empty interval that fits `n_a_bits`.
fn check_input(
    g: &IntGraph,
    id: NodeId,
    layer: usize,
    feature: usize,
    (lo, hi): (i64, i64),
    seen_feature: &mut [bool],
) -> Result<()> {
    let nf = seen_feature.len();
    let a_span = 1i64 << g.meta.n_a_bits;
    if layer != 0 {
        return bad(format!("input node {id} must be in layer 0"));
    }
    match seen_feature.get_mut(feature) {
        None => {
            return bad(format!(
                "input node {id} reads feature {feature}, but the client spec has {nf} features"
            ))
        }
        Some(true) => return bad(format!("feature {feature} has two input nodes")),
        Some(s) => *s = true,
    }
    let span = hi.checked_sub(lo).and_then(|d| d.checked_add(1));
    match span {
        Some(s) if s >= 1 && s <= a_span => Ok(()),
        _ => bad(format!(
            "input node {id} declares [{lo}, {hi}], which is empty or wider than \
                 {a_span} values (n_a_bits = {})",
            g.meta.n_a_bits
        )),
    }
}

/// A dot node: a bounded constant, and terms sorted by node, each reading an earlier input or
/// table with a non-zero weight that fits `n_w_bits`.
fn check_dot(g: &IntGraph, id: NodeId, terms: &[(NodeId, i64)], constant: i64) -> Result<()> {
    if constant.unsigned_abs() > 1 << 40 {
        return bad(format!(
            "dot node {id}: constant {constant} is out of range"
        ));
    }
    let (wlo, whi) = signed_range(g.meta.n_w_bits);
    let mut prev: Option<NodeId> = None;
    for &(src, w) in terms {
        if src >= id {
            return bad(format!(
                "dot node {id} reads node {src}, which does not come before it (dangling or cyclic reference)"
            ));
        }
        if matches!(g.nodes[src].op, Op::Dot { .. }) {
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
                g.meta.n_w_bits
            ));
        }
    }
    Ok(())
}

/// A table node: reads an earlier dot, has a bounded shift and offset, declares a non-empty
/// output range that fits `n_a_bits`, and holds 1 to `MAX_TABLE_LEN` entries within it.
fn check_lut(g: &IntGraph, id: NodeId, op: &Op) -> Result<()> {
    let Op::Lut {
        input,
        offset,
        round_bits,
        out_lo,
        out_hi,
        table,
    } = op
    else {
        return Ok(());
    };
    let a_span = 1i64 << g.meta.n_a_bits;
    if *input >= id {
        return bad(format!(
            "lut node {id} reads node {input}, which does not come before it"
        ));
    }
    if !matches!(g.nodes[*input].op, Op::Dot { .. }) {
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
            g.meta.n_a_bits
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
    Ok(())
}

/// Outputs: at least one, each a dot of the last layer, one output scale and bias each, and
/// one class each for a classifier.
fn check_outputs(g: &IntGraph) -> Result<()> {
    let last = g.n_layers() - 1;
    if g.outputs.is_empty() {
        return bad("the circuit has no outputs".into());
    }
    for &o in &g.outputs {
        match g.nodes.get(o) {
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
    let c = &g.client;
    let no = g.outputs.len();
    if c.output_scale.len() != no || c.output_bias.len() != no {
        return bad(format!(
            "{no} outputs but {} output scales and {} biases",
            c.output_scale.len(),
            c.output_bias.len()
        ));
    }
    if let Task::Classify { classes } = &g.meta.task {
        if classes.len() != no {
            return bad(format!(
                "{} classes but {no} outputs: a classifier has one output per class",
                classes.len()
            ));
        }
    }
    Ok(())
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

pub(crate) mod rle {
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

    use std::cell::Cell;

    thread_local! {
        /// Entries the tables still being parsed may expand to, when a file is being read.
        static BUDGET: Cell<Option<u64>> = const { Cell::new(None) };
    }

    /// Runs `f` (a parse) with all tables together limited to `MAX_TABLE_LEN` entries.
    pub fn with_budget<T>(f: impl FnOnce() -> T) -> T {
        let before = BUDGET.with(|b| b.replace(Some(crate::cast::to_u64(super::MAX_TABLE_LEN))));
        let out = f();
        BUDGET.with(|b| b.set(before));
        out
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
                .filter(|t| *t <= crate::cast::to_u64(super::MAX_TABLE_LEN))
                .ok_or_else(|| {
                    D::Error::custom(format!(
                        "table longer than {} entries",
                        super::MAX_TABLE_LEN
                    ))
                })?;
        }
        let left = BUDGET.with(|b| match b.get() {
            Some(left) if total > left => Err(D::Error::custom(format!(
                "the tables hold more than {} entries in all",
                super::MAX_TABLE_LEN
            ))),
            Some(left) => {
                b.set(Some(left - total));
                Ok(())
            }
            None => Ok(()),
        });
        left?;
        let mut table = Vec::with_capacity(crate::cast::to_usize(total));
        for (v, n) in runs {
            table.extend(std::iter::repeat_n(v, crate::cast::to_usize(n)));
        }
        Ok(table)
    }
}
