//! Stage 2: quantization. The quantizers (design section 3) and the quantized model
//! [`QuantizedMlp`], the artifact `train` hands to `lower`.
//!
//! The quantized model's integer semantics are the reference: [`QuantizedMlp::forward_int`]
//! quantizes each layer's input, takes the integer dot product with the integer weights, and
//! only then goes back to float for bias, activation and the next quantizer. Lowering folds exactly
//! that float tail into one table per neuron, through the same function
//! ([`QuantLayer::preactivation`]), so clear execution of the integer graph equals `predict`.

use serde::{Deserialize, Serialize};

use crate::task::Task;

/// Elementwise activation functions. Any of them works in FHE, since it becomes a table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Activation {
    /// max(0, x)
    Relu,
    /// min(max(0, x), 6)
    Relu6,
    /// x if x > 0 else 0.01 x
    LeakyRelu,
    /// 1 / (1 + e^-x)
    Sigmoid,
    /// tanh(x)
    Tanh,
    /// Scaled exponential linear unit.
    Selu,
    /// Gaussian error linear unit (tanh approximation, as PyTorch's `approximate="tanh"`).
    Gelu,
    /// x
    Identity,
}

impl Activation {
    /// The function's value at `x`.
    ///
    /// ```
    /// use sqnn::train::quantize::Activation;
    /// assert_eq!(Activation::Relu.apply(-2.0), 0.0);
    /// assert_eq!(Activation::Relu6.apply(7.5), 6.0);
    /// assert!((Activation::Sigmoid.apply(0.0) - 0.5).abs() < 1e-12);
    /// ```
    pub fn apply(self, x: f64) -> f64 {
        const SELU_ALPHA: f64 = 1.673_263_242_354_377_3;
        const SELU_SCALE: f64 = 1.050_700_987_355_480_5;
        match self {
            Activation::Relu => x.max(0.0),
            Activation::Relu6 => x.clamp(0.0, 6.0),
            Activation::LeakyRelu => {
                if x > 0.0 {
                    x
                } else {
                    0.01 * x
                }
            }
            Activation::Sigmoid => 1.0 / (1.0 + (-x).exp()),
            Activation::Tanh => x.tanh(),
            Activation::Selu => {
                if x > 0.0 {
                    SELU_SCALE * x
                } else {
                    SELU_SCALE * SELU_ALPHA * (x.exp() - 1.0)
                }
            }
            Activation::Gelu => {
                let c = (2.0 / std::f64::consts::PI).sqrt();
                0.5 * x * (1.0 + (c * (x + 0.044_715 * x * x * x)).tanh())
            }
            Activation::Identity => x,
        }
    }
}

/// A uniform activation (or input) quantizer: `q = clamp(round(x / scale), lo, hi)`, and the
/// real value a quantized integer stands for is `q * scale`.
///
/// Signed quantizers have `lo = -2^(a-1)` (narrow: `-(2^(a-1) - 1)`) and `hi = 2^(a-1) - 1`.
/// Unsigned ones with zero point `z` are stored with the zero point folded in: `lo = -z`,
/// `hi = 2^a - 1 - z`, so every quantized activation is an integer in `[lo, hi]` whose real value
/// is `q * scale`, and the integer graph never sees a zero point.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ActQuantizer {
    /// Step between two consecutive integers (a power of two with `power_of_two_scaling`).
    pub scale: f64,
    /// Smallest integer.
    pub lo: i64,
    /// Largest integer.
    pub hi: i64,
}

impl ActQuantizer {
    /// Quantizes one value. NaN maps to 0 clamped into range (inputs are validated before).
    ///
    /// ```
    /// use sqnn::train::quantize::ActQuantizer;
    /// let q = ActQuantizer { scale: 0.5, lo: -8, hi: 7 };
    /// assert_eq!(q.quantize(1.2), 2);
    /// assert_eq!(q.quantize(100.0), 7);
    /// assert_eq!(q.quantize(-100.0), -8);
    /// ```
    pub fn quantize(&self, x: f64) -> i64 {
        crate::cast::round_clamp(x / self.scale, self.lo, self.hi)
    }

    /// The real value an integer stands for.
    pub fn dequantize(&self, q: i64) -> f64 {
        q as f64 * self.scale
    }
}

/// One output neuron's non-zero integer weights: `(input index, weight)`, sorted by input index.
/// Pruned connections are absent, never stored as zero.
pub type SparseRow = Vec<(usize, i64)>;

/// One quantized linear layer, with the quantizer of its input.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct QuantLayer {
    /// Quantizer applied to this layer's input (features for layer 0, the previous layer's
    /// activations otherwise).
    pub input_quant: ActQuantizer,
    /// Number of inputs (the previous layer's live neurons, or the feature count).
    pub in_dim: usize,
    /// One sparse row of integer weights per output neuron.
    pub rows: Vec<SparseRow>,
    /// Per-output-neuron weight scale (all equal for per-tensor scaling).
    pub weight_scale: Vec<f64>,
    /// Per-output-neuron float bias.
    pub bias: Vec<f64>,
    /// Activation after this layer; `None` for the last layer.
    pub activation: Option<Activation>,
}

impl QuantLayer {
    /// The float pre-activation of neuron `i` for integer accumulator `acc`:
    /// `acc * (weight_scale[i] * input_quant.scale) + bias[i]`.
    ///
    /// This is the single definition used by both `predict` and lowering, so both agree bit for
    /// bit.
    pub fn preactivation(&self, i: usize, acc: i64) -> f64 {
        acc as f64 * (self.weight_scale[i] * self.input_quant.scale) + self.bias[i]
    }

    /// Number of output neurons.
    pub fn out_dim(&self) -> usize {
        self.rows.len()
    }
}

/// A trained, quantized MLP: integer weights, quantizers, float biases and scales, plus the
/// client-side standardization of features (and of the target, for regression).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct QuantizedMlp {
    /// Classification (with class names) or regression.
    pub task: Task,
    /// Per-feature centre subtracted from raw features (training-split statistics): the mean,
    /// or the middle of the range with min-max input scaling.
    pub feature_mean: Vec<f64>,
    /// Per-feature divisor (never 0: constant features get 1): the standard deviation, or
    /// half the range with min-max input scaling.
    pub feature_std: Vec<f64>,
    /// Regression: the target was standardized as `(y - target_mean) / target_std` for
    /// training; outputs are mapped back. Classification: 0 and 1.
    pub target_mean: f64,
    /// See `target_mean`.
    pub target_std: f64,
    /// Weight bit width the model was trained with.
    pub n_w_bits: u32,
    /// Activation bit width.
    pub n_a_bits: u32,
    /// Accumulator budget every neuron must fit.
    pub n_accum_bits: u32,
    /// The layers, input to output.
    pub layers: Vec<QuantLayer>,
}

impl QuantizedMlp {
    /// Number of raw input features.
    pub fn input_dim(&self) -> usize {
        self.feature_mean.len()
    }

    /// Standardizes one raw feature vector.
    pub fn standardize(&self, raw: &[f64]) -> Vec<f64> {
        raw.iter()
            .zip(self.feature_mean.iter().zip(&self.feature_std))
            .map(|(x, (m, s))| (x - m) / s)
            .collect()
    }

    /// Quantizes one raw feature vector to the integers layer 0 reads (client side).
    pub fn quantize_input(&self, raw: &[f64]) -> Vec<i64> {
        let q = &self.layers[0].input_quant;
        self.standardize(raw)
            .into_iter()
            .map(|x| q.quantize(x))
            .collect()
    }

    /// The reference integer forward pass from quantized layer-0 inputs: returns the last layer's
    /// integer accumulators. Hidden neurons go through [`QuantLayer::preactivation`], the
    /// activation, and the next layer's input quantizer.
    pub fn forward_int(&self, q0: &[i64]) -> Vec<i64> {
        let mut q: Vec<i64> = q0.to_vec();
        let n = self.layers.len();
        for (l, layer) in self.layers.iter().enumerate() {
            let accs: Vec<i64> = layer
                .rows
                .iter()
                .map(|row| row.iter().map(|&(j, w)| w * q[j]).sum())
                .collect();
            if l + 1 == n {
                return accs;
            }
            let act = layer.activation.unwrap_or(Activation::Identity);
            let next = &self.layers[l + 1].input_quant;
            q = accs
                .iter()
                .enumerate()
                .map(|(i, &a)| next.quantize(act.apply(layer.preactivation(i, a))))
                .collect();
        }
        q
    }

    /// Client-side dequantization of the last layer's accumulators to float outputs (logits, or
    /// the de-standardized regression value).
    pub fn dequantize_output(&self, accs: &[i64]) -> Vec<f64> {
        let last = self.layers.last().expect("a model has at least one layer");
        let z = accs
            .iter()
            .enumerate()
            .map(|(i, &a)| last.preactivation(i, a));
        match self.task {
            Task::Classify { .. } => z.collect(),
            Task::Regress => z.map(|v| v * self.target_std + self.target_mean).collect(),
        }
    }
}
