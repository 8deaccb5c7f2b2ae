//! The model file: versioned JSON (`{"format":"sqnn-model","version":1,...}`) holding the
//! hyper-parameters, names and the quantized model, with every float also stored as its exact
//! bit pattern; reading checks everything `predict` relies on.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::EstimatorParams;
use crate::data::TrainingRows;
use crate::error::{Error, Result};
use crate::fsio::bounded;
use crate::task::Task;
use crate::train::quantize::{QuantLayer, QuantizedMlp};

/// The `format` field of a model file.
pub const MODEL_FORMAT: &str = "sqnn-model";
/// The `version` field of the model files this build writes (and the newest it reads).
pub const MODEL_VERSION: u32 = 1;

/// Largest model file sqnn reads.
pub const MAX_MODEL_BYTES: u64 = 256 * crate::fsio::MIB;

/// The `kind` of a classifier's model file.
pub(super) const KIND_CLASSIFIER: &str = "classifier";
/// The `kind` of a regressor's model file.
pub(super) const KIND_REGRESSOR: &str = "regressor";

/// The contents of a model file.
#[derive(Serialize, Deserialize)]
pub(super) struct ModelFile {
    format: String,
    version: u32,
    pub(super) kind: String,
    pub(super) params: EstimatorParams,
    pub(super) feature_names: Option<Vec<String>>,
    pub(super) data_name: Option<String>,
    /// The split it was trained on (absent in files written before it was recorded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) training_rows: Option<TrainingRows>,
    pub(super) model: QuantizedMlp,
    /// Every float of `model` as its IEEE-754 bit pattern, in the order of [`for_each_float`]:
    /// serde_json's default float parser is not correctly rounded, and a loaded model must be
    /// bit-identical to the saved one (predictions, lowering and encrypted execution must
    /// agree exactly).
    exact_floats: Vec<u64>,
}

/// Visits every float of a model in a fixed order.
fn for_each_float(q: &mut QuantizedMlp, f: &mut impl FnMut(&mut f64)) {
    q.feature_mean.iter_mut().for_each(&mut *f);
    q.feature_std.iter_mut().for_each(&mut *f);
    f(&mut q.target_mean);
    f(&mut q.target_std);
    for layer in &mut q.layers {
        f(&mut layer.input_quant.scale);
        layer.weight_scale.iter_mut().for_each(&mut *f);
        layer.bias.iter_mut().for_each(&mut *f);
    }
}

/// Replaces the parsed floats by their exact bit patterns, checking they agree.
fn restore_exact_floats(q: &mut QuantizedMlp, bits: &[u64]) -> std::result::Result<(), String> {
    let mut k = 0;
    let mut bad = None;
    for_each_float(q, &mut |v| {
        match bits.get(k) {
            Some(&b) => {
                let exact = f64::from_bits(b);
                let close = exact == *v || (exact - *v).abs() <= 1e-12 * exact.abs().max(v.abs());
                if !close && bad.is_none() {
                    bad = Some(format!(
                        "value {k} is {} in the text but {exact} in exact_floats",
                        *v
                    ));
                }
                *v = exact;
            }
            None => {
                if bad.is_none() {
                    bad = Some("exact_floats is shorter than the model".into());
                }
            }
        }
        k += 1;
    });
    if let Some(b) = bad {
        return Err(b);
    }
    if k != bits.len() {
        return Err(format!(
            "exact_floats holds {} values for a model with {k}",
            bits.len()
        ));
    }
    Ok(())
}

/// Writes a model file of `kind` atomically, after checking it as [`read_model`] would (so a
/// model with NaN or infinite values is refused, and the previous file kept) ([`KIND_CLASSIFIER`] or [`KIND_REGRESSOR`]).
pub(super) fn write_model(
    path: &Path,
    kind: &str,
    params: &EstimatorParams,
    names: (&Option<Vec<String>>, &Option<String>, &Option<TrainingRows>),
    model: &QuantizedMlp,
) -> Result<()> {
    let mut exact_floats = Vec::new();
    for_each_float(&mut model.clone(), &mut |v| exact_floats.push(v.to_bits()));
    let file = ModelFile {
        format: MODEL_FORMAT.into(),
        version: MODEL_VERSION,
        kind: kind.into(),
        params: params.clone(),
        feature_names: names.0.clone(),
        data_name: names.1.clone(),
        training_rows: names.2.clone(),
        model: model.clone(),
        exact_floats,
    };
    // What a reader would refuse is never written: NaN or infinite numbers, broken shapes.
    check_model(&file).map_err(|m| {
        Error::Model(format!(
            "not writing {}: the model is invalid ({m}); train it again (a NaN or infinite \
             value usually means the learning rate is too high)",
            path.display()
        ))
    })?;
    let mut bytes = serde_json::to_vec(&file)
        .map_err(|e| Error::Model(format!("cannot serialize the model: {e}")))?;
    bytes.push(b'\n');
    crate::fsio::write_atomic(path, &bytes, crate::fsio::Secrecy::Public)
}

/// Reads and checks a model file of either kind.
pub(super) fn read_model(path: &Path) -> Result<ModelFile> {
    let bytes =
        crate::fsio::read_limited(path, MAX_MODEL_BYTES, "model file").map_err(|e| match e {
            Error::Input(m) => Error::Model(m),
            other => other,
        })?;
    parse_model(path, &bytes)
}

/// Parses and checks the contents `bytes` of the model file `path` (named in errors), as
/// [`read_model`] does after reading them.
pub(super) fn parse_model(path: &Path, bytes: &[u8]) -> Result<ModelFile> {
    let shown = path.display();
    let fix = "pass a model file written by an estimator's `save`";
    let v: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| {
        Error::Model(format!(
            "{shown}: not a sqnn model file (not JSON: {}); {fix}",
            bounded(&e.to_string(), 200)
        ))
    })?;
    match v.get("format").and_then(|f| f.as_str()) {
        Some(MODEL_FORMAT) => {}
        Some(other) => {
            return Err(Error::Model(format!(
                "{shown}: is a {:?} file, not a sqnn model (format \"{MODEL_FORMAT}\"); {fix}",
                bounded(other, 64)
            )))
        }
        None => {
            return Err(Error::Model(format!(
                "{shown}: not a sqnn model file (no \"format\": \"{MODEL_FORMAT}\" field); {fix}"
            )))
        }
    }
    match v.get("version").and_then(|x| x.as_u64()) {
        Some(ver) if ver == u64::from(MODEL_VERSION) => {}
        Some(ver) if ver > u64::from(MODEL_VERSION) => {
            return Err(Error::Model(format!(
                "{shown}: model file version {ver} was written by a newer sqnn (this one reads \
                 version {MODEL_VERSION}); upgrade sqnn or re-train with this version"
            )))
        }
        other => {
            return Err(Error::Model(format!(
                "{shown}: unsupported model file version {other:?} (this sqnn reads version \
                 {MODEL_VERSION}); re-train and save the model again"
            )))
        }
    }
    let mut f: ModelFile = serde_json::from_value(v).map_err(|e| {
        Error::Model(format!(
            "{shown}: damaged sqnn model file ({}); re-train and save the model again",
            bounded(&e.to_string(), 200)
        ))
    })?;
    let bits = std::mem::take(&mut f.exact_floats);
    restore_exact_floats(&mut f.model, &bits).map_err(|m| {
        Error::Model(format!(
            "{shown}: inconsistent sqnn model file ({m}); re-train and save the model again"
        ))
    })?;
    let kind_ok = f.kind == KIND_CLASSIFIER || f.kind == KIND_REGRESSOR;
    let checked = if kind_ok {
        check_model(&f)
    } else {
        Err(format!(
            "unknown model kind {:?} (expected \"classifier\" or \"regressor\")",
            bounded(&f.kind, 64)
        ))
    };
    checked.map_err(|m| {
        Error::Model(format!(
            "{shown}: inconsistent sqnn model file ({m}); re-train and save the model again"
        ))
    })?;
    Ok(f)
}

/// Checks everything `predict` relies on, so that a loaded model can never panic.
fn check_model(f: &ModelFile) -> std::result::Result<(), String> {
    f.params.validate().map_err(|e| e.to_string())?;
    let q = &f.model;
    if q.n_w_bits != f.params.n_w_bits
        || q.n_a_bits != f.params.n_a_bits
        || q.n_accum_bits != f.params.n_accum_bits
    {
        return Err("model bit widths differ from its parameters".into());
    }
    let d = q.feature_mean.len();
    if d == 0 || q.feature_std.len() != d {
        return Err("feature statistics are empty or of different lengths".into());
    }
    if let Some(names) = &f.feature_names {
        crate::data::Schema::validate_names(names, d)?;
    }
    let finite_nonzero = |v: f64| v.is_finite() && v != 0.0;
    if q.feature_mean.iter().any(|v| !v.is_finite())
        || !q.feature_std.iter().all(|&v| finite_nonzero(v))
        || !q.target_mean.is_finite()
        || !finite_nonzero(q.target_std)
    {
        return Err("standardization statistics are not finite or have a zero std".into());
    }
    if q.layers.is_empty() {
        return Err("no layers".into());
    }
    let n = q.layers.len();
    let mut in_dim = d;
    for (l, layer) in q.layers.iter().enumerate() {
        in_dim = check_layer(l, layer, in_dim, l + 1 < n, q.n_w_bits)?;
    }
    let outputs = q.layers[n - 1].rows.len();
    match (&q.task, f.kind.as_str()) {
        (Task::Classify { classes }, KIND_CLASSIFIER)
            if classes.len() == outputs && outputs >= 2 =>
        {
            Ok(())
        }
        (Task::Regress, KIND_REGRESSOR) if outputs == 1 => Ok(()),
        _ => Err("task, kind and output count disagree".into()),
    }
}

/// Checks layer `l` reading `in_dim` inputs (its quantizer, shapes, finite scales and biases,
/// ordered sparse rows of non-zero `n_w_bits` weights, an activation iff `hidden`); returns its
/// output count.
fn check_layer(
    l: usize,
    layer: &QuantLayer,
    in_dim: usize,
    hidden: bool,
    n_w_bits: u32,
) -> std::result::Result<usize, String> {
    let wmax = 1i64 << (n_w_bits - 1);
    let iq = &layer.input_quant;
    if !(iq.scale.is_finite() && iq.scale > 0.0) || iq.lo > iq.hi || iq.lo < -256 || iq.hi > 256 {
        return Err(format!("layer {l}: invalid input quantizer"));
    }
    if layer.in_dim != in_dim {
        return Err(format!(
            "layer {l} reads {} inputs but {in_dim} come in",
            layer.in_dim
        ));
    }
    let out = layer.rows.len();
    if out == 0 || layer.weight_scale.len() != out || layer.bias.len() != out {
        return Err(format!("layer {l}: rows, scales and biases disagree"));
    }
    if !layer.weight_scale.iter().all(|&s| s.is_finite() && s > 0.0)
        || layer.bias.iter().any(|b| !b.is_finite())
    {
        return Err(format!("layer {l}: non-finite scale or bias"));
    }
    for row in &layer.rows {
        let mut prev: Option<usize> = None;
        for &(j, w) in row {
            if j >= in_dim || prev.is_some_and(|p| p >= j) {
                return Err(format!("layer {l}: a row's input indices are out of order"));
            }
            if w == 0 || w < -wmax || w >= wmax {
                return Err(format!(
                    "layer {l}: weight {w} outside the {}-bit range",
                    n_w_bits
                ));
            }
            prev = Some(j);
        }
    }
    if layer.activation.is_some() != hidden {
        return Err(format!("layer {l}: activation placement"));
    }
    Ok(out)
}
