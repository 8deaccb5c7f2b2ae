//! The float training module: weights, pruning masks, quantizer statistics, the fake-quantized
//! forward pass, hand-written backpropagation, Adam, and the export to [`QuantizedMlp`].

use bitvec::vec::BitVec;
use ndarray::{Array1, Array2, ArrayView2, Axis, Zip};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::{ActRange, ModuleConfig, PruningMode};
use crate::error::{Error, Result};
use crate::task::Task;
use crate::train::quantize::{ActQuantizer, Activation, QuantLayer, QuantizedMlp, SparseRow};

/// Momentum of the activation range's exponential moving average (PyTorch's
/// `MovingAverageMinMaxObserver` uses 0.01; 0.1 adapts faster to the short trainings here).
const EMA_MOMENTUM: f64 = 0.1;

/// Running min / max of one layer's input.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct RangeObserver {
    pub(crate) min: f64,
    pub(crate) max: f64,
    pub(crate) seen: bool,
}

impl RangeObserver {
    fn new() -> Self {
        RangeObserver {
            min: 0.0,
            max: 0.0,
            seen: false,
        }
    }

    fn update(&mut self, bmin: f64, bmax: f64) {
        if !(bmin.is_finite() && bmax.is_finite()) {
            return;
        }
        if self.seen {
            self.min += EMA_MOMENTUM * (bmin - self.min);
            self.max += EMA_MOMENTUM * (bmax - self.max);
        } else {
            self.min = bmin;
            self.max = bmax;
            self.seen = true;
        }
    }
}

/// One linear layer's trainable state.
#[derive(Clone, Debug)]
pub(crate) struct Layer {
    /// `out x in` latent float weights; masked entries are exactly 0.
    pub(crate) w: Array2<f64>,
    /// Float bias.
    pub(crate) b: Array1<f64>,
    /// Row-major `out x in` pruning mask; 1 = the weight is active.
    pub(crate) mask: BitVec,
    /// Output neurons not removed by structured pruning.
    pub(crate) alive: BitVec,
    /// Statistics of this layer's input, for its activation quantizer.
    pub(crate) obs: RangeObserver,
    /// With [`ActRange::Learned`], once initialized: `(ln scale, lo, hi)` of the input
    /// quantizer, the log-scale trained by gradient.
    pub(crate) step: Option<(f64, i64, i64)>,
}

impl Layer {
    fn in_dim(&self) -> usize {
        self.w.ncols()
    }
    fn out_dim(&self) -> usize {
        self.w.nrows()
    }
    fn active_in_row(&self, r: usize) -> usize {
        let n = self.in_dim();
        self.mask[r * n..(r + 1) * n].count_ones()
    }
}

/// Concrete ML's `SparseQuantNeuralNetwork`, re-thought: an MLP of `n_layers` quantized linear
/// layers (input quantizer → quantized linear with bias → activation, none after the last),
/// trained with fake quantization, whose pruning bounds every neuron's accumulator.
///
/// Built by [`SparseQuantNeuralNetwork::new`]; trained by the estimators
/// ([`NeuralNetClassifier`](super::NeuralNetClassifier),
/// [`NeuralNetRegressor`](super::NeuralNetRegressor)); exported with
/// [`SparseQuantNeuralNetwork::to_quantized`].
#[derive(Clone, Debug)]
pub struct SparseQuantNeuralNetwork {
    cfg: ModuleConfig,
    pub(crate) layers: Vec<Layer>,
    structured_done: bool,
    pruning_enabled: bool,
}

/// Activations and quantized tensors of one training forward pass.
pub(crate) struct Cache {
    xq: Vec<Array2<f64>>,
    pass: Vec<Option<Array2<f64>>>,
    /// d(xq)/d(scale) per element, for layers with a learned step.
    dscale: Vec<Option<Array2<f64>>>,
    z: Vec<Array2<f64>>,
    wq: Vec<Array2<f64>>,
}

/// Gradients of the loss with respect to every weight and bias (and learned log-steps).
pub(crate) struct Grads {
    dw: Vec<Array2<f64>>,
    db: Vec<Array1<f64>>,
    dtheta: Vec<f64>,
}

/// `2^ceil(log2 x)`, the smallest power of two `>= x` (1 for non-positive or non-finite `x`).
pub(crate) fn pow2_ceil(x: f64) -> f64 {
    if !(x.is_finite() && x > 0.0) {
        return 1.0;
    }
    let mut s = 2f64.powi(x.log2().ceil() as i32);
    if s < x {
        s *= 2.0;
    }
    if s / 2.0 >= x {
        s /= 2.0;
    }
    s
}

/// The activation quantizer for an observed input range `[min, max]`.
pub(crate) fn act_quantizer(min: f64, max: f64, cfg: &ModuleConfig) -> ActQuantizer {
    let a = cfg.n_a_bits;
    let fix = |s: f64| {
        let s = if s.is_finite() && s > 0.0 { s } else { 1.0 };
        if cfg.power_of_two_scaling {
            pow2_ceil(s)
        } else {
            s
        }
    };
    if cfg.quant_signed {
        let half = 1i64 << (a - 1);
        let (lo, hi, div) = if cfg.quant_narrow {
            (-(half - 1), half - 1, (half - 1) as f64)
        } else {
            (-half, half - 1, half as f64)
        };
        let m = min.abs().max(max.abs());
        ActQuantizer {
            scale: fix(m / div),
            lo,
            hi,
        }
    } else {
        let n = (1i64 << a) - 1 - i64::from(cfg.quant_narrow);
        let lo_f = min.min(0.0);
        let hi_f = max.max(0.0);
        let scale = fix((hi_f - lo_f) / n as f64);
        let z = ((-lo_f / scale).round() as i64).clamp(0, n);
        ActQuantizer {
            scale,
            lo: -z,
            hi: n - z,
        }
    }
}

/// `(qmin, qmax, divisor)` of the symmetric weight quantizer.
fn weight_range(cfg: &ModuleConfig) -> (i64, i64, f64) {
    let half = 1i64 << (cfg.n_w_bits - 1);
    if cfg.quant_narrow {
        (-(half - 1), half - 1, (half - 1) as f64)
    } else {
        (-half, half - 1, half as f64)
    }
}

/// Derivative of an activation at `z`.
fn act_grad(act: Activation, z: f64) -> f64 {
    const SELU_ALPHA: f64 = 1.673_263_242_354_377_3;
    const SELU_SCALE: f64 = 1.050_700_987_355_480_5;
    match act {
        Activation::Relu => f64::from(u8::from(z > 0.0)),
        Activation::Relu6 => f64::from(u8::from(z > 0.0 && z < 6.0)),
        Activation::LeakyRelu => {
            if z > 0.0 {
                1.0
            } else {
                0.01
            }
        }
        Activation::Sigmoid => {
            let s = 1.0 / (1.0 + (-z).exp());
            s * (1.0 - s)
        }
        Activation::Tanh => {
            let t = z.tanh();
            1.0 - t * t
        }
        Activation::Selu => {
            if z > 0.0 {
                SELU_SCALE
            } else {
                SELU_SCALE * SELU_ALPHA * z.exp()
            }
        }
        Activation::Gelu => {
            let c = (2.0 / std::f64::consts::PI).sqrt();
            let inner = c * (z + 0.044_715 * z * z * z);
            let t = inner.tanh();
            0.5 * (1.0 + t) + 0.5 * z * (1.0 - t * t) * c * (1.0 + 3.0 * 0.044_715 * z * z)
        }
        Activation::Identity => 1.0,
    }
}

fn min_max(a: &Array2<f64>) -> (f64, f64) {
    a.iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| {
            (lo.min(v), hi.max(v))
        })
}

/// The range `[r_lo * min, r_hi * max]` (both ratios on a grid from 1 down to 0.2) whose
/// quantizer has the smallest squared error on (a strided sample of at most 4096 of) the values
/// of `a`.
fn mse_range(a: &Array2<f64>, cfg: &ModuleConfig) -> (f64, f64) {
    let (mn, mx) = min_max(a);
    if a.is_empty() || !(mn.is_finite() && mx.is_finite()) {
        return (mn, mx);
    }
    let stride = a.len().div_ceil(4096).max(1);
    let sample: Vec<f64> = a.iter().step_by(stride).copied().collect();
    const RATIOS: [f64; 9] = [1.0, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2];
    let lo_ratios: &[f64] = if cfg.quant_signed || mn >= 0.0 {
        &[1.0]
    } else {
        &RATIOS
    };
    let mut best = (f64::INFINITY, mn, mx);
    for &rh in &RATIOS {
        for &rl in lo_ratios {
            let (lo, hi) = if cfg.quant_signed {
                let m = mn.abs().max(mx.abs()) * rh;
                (-m, m)
            } else {
                (mn * rl, mx * rh)
            };
            let q = act_quantizer(lo, hi, cfg);
            let err: f64 = sample
                .iter()
                .map(|&v| {
                    let e = v - q.dequantize(q.quantize(v));
                    e * e
                })
                .sum();
            if err < best.0 {
                best = (err, lo, hi);
            }
        }
    }
    (best.1, best.2)
}

/// The range an observer records for one batch.
fn batch_range(a: &Array2<f64>, cfg: &ModuleConfig) -> (f64, f64) {
    match cfg.act_range {
        ActRange::MinMax | ActRange::Learned => min_max(a),
        ActRange::Percentile(p) => percentile_range(a, p),
        ActRange::Mse => mse_range(a, cfg),
    }
}

/// The `(100 - pct)`-th and `pct`-th percentiles of all values of `a` (nearest rank); min and
/// max for `pct >= 100`.
fn percentile_range(a: &Array2<f64>, pct: f64) -> (f64, f64) {
    if pct >= 100.0 || a.is_empty() {
        return min_max(a);
    }
    let mut v: Vec<f64> = a.iter().copied().collect();
    let n = v.len();
    let k_hi = (((pct / 100.0) * n as f64).ceil() as usize).clamp(1, n) - 1;
    let k_lo = (n - 1) - k_hi;
    let hi = *v.select_nth_unstable_by(k_hi, f64::total_cmp).1;
    let lo = *v.select_nth_unstable_by(k_lo, f64::total_cmp).1;
    (lo, hi)
}

/// Fake-quantizes `a` with `q` (exactly `q.dequantize(q.quantize(v))`), and when asked the
/// straight-through mask (1 where the value was not clipped).
fn fake_quant(
    a: &Array2<f64>,
    q: &ActQuantizer,
    want_pass: bool,
) -> (Array2<f64>, Option<Array2<f64>>) {
    let xq = a.mapv(|v| q.dequantize(q.quantize(v)));
    let pass = want_pass.then(|| {
        let (lo, hi) = (q.lo as f64, q.hi as f64);
        a.mapv(|v| {
            let r = (v / q.scale).round();
            f64::from(u8::from(r >= lo && r <= hi))
        })
    });
    (xq, pass)
}

impl SparseQuantNeuralNetwork {
    /// Validates `cfg` ([`ModuleConfig::validate`]) and initializes the weights like PyTorch's
    /// `nn.Linear` (weights and biases uniform in `±1/sqrt(fan_in)`, i.e. Kaiming uniform with
    /// `a = sqrt(5)`), from `ChaCha8Rng::seed_from_u64(seed)`. All masks start fully active;
    /// call [`enable_pruning`](Self::enable_pruning) to prune.
    pub fn new(cfg: ModuleConfig, seed: u64) -> Result<Self> {
        cfg.validate()?;
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let layers = cfg
            .layer_dims()
            .into_iter()
            .map(|(i, o)| {
                let bound = 1.0 / (i as f64).sqrt();
                let w = Array2::from_shape_fn((o, i), |_| rng.gen_range(-bound..bound));
                let b = Array1::from_shape_fn(o, |_| rng.gen_range(-bound..bound));
                Layer {
                    w,
                    b,
                    mask: BitVec::repeat(true, o * i),
                    alive: BitVec::repeat(true, o),
                    obs: RangeObserver::new(),
                    step: None,
                }
            })
            .collect();
        Ok(SparseQuantNeuralNetwork {
            cfg,
            layers,
            structured_done: false,
            pruning_enabled: false,
        })
    }

    /// The configuration the network was built with.
    pub fn config(&self) -> &ModuleConfig {
        &self.cfg
    }

    /// Ω: the most non-zero weights one neuron may keep ([`super::max_active_neurons`]).
    pub fn max_active_neurons(&self) -> u64 {
        self.cfg.max_active_neurons()
    }

    /// Number of linear layers.
    pub fn n_layers(&self) -> usize {
        self.layers.len()
    }

    /// The latent float weights of `layer` (`out x in`); pruned entries are exactly 0.
    ///
    /// # Panics
    /// If `layer >= n_layers()`.
    pub fn weights(&self, layer: usize) -> ArrayView2<'_, f64> {
        self.layers[layer].w.view()
    }

    /// The float biases of `layer`.
    ///
    /// # Panics
    /// If `layer >= n_layers()`.
    pub fn bias(&self, layer: usize) -> &Array1<f64> {
        &self.layers[layer].b
    }

    /// Number of active (unpruned) weights in each row of `layer`.
    ///
    /// # Panics
    /// If `layer >= n_layers()`.
    pub fn active_per_row(&self, layer: usize) -> Vec<usize> {
        let l = &self.layers[layer];
        (0..l.out_dim()).map(|r| l.active_in_row(r)).collect()
    }

    /// Whether each output neuron of `layer` survived structured pruning.
    ///
    /// # Panics
    /// If `layer >= n_layers()`.
    pub fn alive_neurons(&self, layer: usize) -> Vec<bool> {
        self.layers[layer].alive.iter().map(|b| *b).collect()
    }

    /// Whether [`enable_pruning`](Self::enable_pruning) has run.
    pub fn pruning_enabled(&self) -> bool {
        self.pruning_enabled
    }

    /// The input quantizer of `layer` as it stands (from the running statistics), or `None`
    /// before any data went through the network.
    ///
    /// # Panics
    /// If `layer >= n_layers()`.
    pub fn input_quantizer(&self, layer: usize) -> Option<ActQuantizer> {
        let l = &self.layers[layer];
        if let Some((theta, lo, hi)) = l.step {
            let s = theta.exp();
            let scale = if self.cfg.power_of_two_scaling {
                pow2_ceil(s)
            } else {
                s
            };
            return Some(ActQuantizer { scale, lo, hi });
        }
        let o = &l.obs;
        o.seen.then(|| act_quantizer(o.min, o.max, &self.cfg))
    }

    /// [`ActRange::Learned`]: turns every input quantizer's running statistics into a learned
    /// step size (its integer range is fixed from then on). Layers without statistics are left
    /// alone.
    pub(crate) fn init_learned_steps(&mut self) {
        for l in 0..self.layers.len() {
            if self.layers[l].step.is_some() {
                continue;
            }
            let o = &self.layers[l].obs;
            if o.seen {
                let q = act_quantizer(o.min, o.max, &self.cfg);
                self.layers[l].step = Some((q.scale.ln(), q.lo, q.hi));
            }
        }
    }

    fn quantizer_for(&self, l: usize, a: &Array2<f64>) -> ActQuantizer {
        self.input_quantizer(l).unwrap_or_else(|| {
            let (lo, hi) = batch_range(a, &self.cfg);
            act_quantizer(lo, hi, &self.cfg)
        })
    }

    /// Per-output-neuron weight scales of `layer` (all equal with per-tensor scaling): `max |w|`
    /// (over the row, or the whole layer) divided by `2^(w-1)` (`2^(w-1) - 1` when narrow),
    /// rounded up to a power of two with `power_of_two_scaling`. An all-zero row gets scale 1.
    ///
    /// # Panics
    /// If `layer >= n_layers()`.
    pub fn weight_scales(&self, layer: usize) -> Vec<f64> {
        let l = &self.layers[layer];
        let (_, _, div) = weight_range(&self.cfg);
        let fix = |m: f64| {
            let s = m / div;
            let s = if s.is_finite() && s > 0.0 { s } else { 1.0 };
            if self.cfg.power_of_two_scaling {
                pow2_ceil(s)
            } else {
                s
            }
        };
        let row_max: Vec<f64> =
            l.w.rows()
                .into_iter()
                .map(|r| r.iter().fold(0.0f64, |m, &v| m.max(v.abs())))
                .collect();
        if self.cfg.per_channel {
            row_max.into_iter().map(fix).collect()
        } else {
            let m = row_max.iter().fold(0.0f64, |a, &b| a.max(b));
            vec![fix(m); l.out_dim()]
        }
    }

    /// The integer weights of `layer` (`out x in`) and their per-row scales: `clamp(round(w /
    /// scale), qmin, qmax)`. Pruned weights are exactly 0.
    ///
    /// # Panics
    /// If `layer >= n_layers()`.
    pub fn quantized_weights(&self, layer: usize) -> (Array2<i64>, Vec<f64>) {
        let scales = self.weight_scales(layer);
        let (qmin, qmax, _) = weight_range(&self.cfg);
        let l = &self.layers[layer];
        let n = l.in_dim();
        let q = Array2::from_shape_fn(l.w.raw_dim(), |(r, j)| {
            if !l.mask[r * n + j] {
                return 0;
            }
            let v = (l.w[[r, j]] / scales[r]).round();
            v.clamp(qmin as f64, qmax as f64) as i64
        });
        (q, scales)
    }

    fn fake_weights(&self, layer: usize) -> Array2<f64> {
        let (q, s) = self.quantized_weights(layer);
        let mut f = q.mapv(|v| v as f64);
        for (mut row, &sc) in f.rows_mut().into_iter().zip(&s) {
            row.mapv_inplace(|v| v * sc);
        }
        f
    }

    /// The fake-quantized float forward pass on (standardized) inputs `x` (`n x input_dim`),
    /// with the quantizers as they stand; returns `n x n_outputs` (logits or the standardized
    /// regression value). Every layer quantizes its input with the same
    /// [`ActQuantizer::quantize`] the integer model uses, so this agrees with
    /// [`QuantizedMlp::forward_int`] up to float rounding. Before any training the input
    /// quantizers take their range from `x` itself.
    ///
    /// # Panics
    /// If `x.ncols() != input_dim`.
    pub fn forward(&self, x: &Array2<f64>) -> Array2<f64> {
        assert_eq!(
            x.ncols(),
            self.cfg.input_dim,
            "forward: the network has {} inputs, x has {} columns",
            self.cfg.input_dim,
            x.ncols()
        );
        let n = self.layers.len();
        let mut a = x.to_owned();
        for (l, layer) in self.layers.iter().enumerate() {
            let q = self.quantizer_for(l, &a);
            let (xq, _) = fake_quant(&a, &q, false);
            let mut z = xq.dot(&self.fake_weights(l).t());
            z += &layer.b;
            a = if l + 1 == n {
                z
            } else {
                let act = self.cfg.activation_function;
                z.mapv(|v| act.apply(v))
            };
        }
        a
    }

    /// Runs `x` through the network only to update the input quantizers' running statistics
    /// (as a training forward pass does), without changing weights. Useful before
    /// [`to_quantized`](Self::to_quantized) on a network that was not trained.
    ///
    /// # Panics
    /// If `x.ncols() != input_dim`.
    pub fn calibrate(&mut self, x: &Array2<f64>) {
        assert_eq!(
            x.ncols(),
            self.cfg.input_dim,
            "calibrate: wrong column count"
        );
        let _ = self.forward_train(x);
    }

    /// Training forward pass: updates the running statistics, then fake-quantizes.
    pub(crate) fn forward_train(&mut self, x: &Array2<f64>) -> (Array2<f64>, Cache) {
        let n = self.layers.len();
        let mut cache = Cache {
            xq: Vec::with_capacity(n),
            pass: Vec::with_capacity(n),
            dscale: Vec::with_capacity(n),
            z: Vec::with_capacity(n),
            wq: Vec::with_capacity(n),
        };
        let mut a = x.to_owned();
        for l in 0..n {
            let (lo, hi) = batch_range(&a, &self.cfg);
            self.layers[l].obs.update(lo, hi);
            let q = self.quantizer_for(l, &a);
            let learned = self.layers[l].step.is_some();
            let (xq, pass) = fake_quant(&a, &q, l > 0);
            // LSQ: d(s * clamp(round(x / s))) / ds = q - x / s inside the range, q when clipped.
            let dscale = learned.then(|| {
                a.mapv(|v| {
                    let u = v / q.scale;
                    let r = u.round();
                    if r < q.lo as f64 {
                        q.lo as f64
                    } else if r > q.hi as f64 {
                        q.hi as f64
                    } else {
                        r - u
                    }
                })
            });
            let wq = self.fake_weights(l);
            let mut z = xq.dot(&wq.t());
            z += &self.layers[l].b;
            a = if l + 1 == n {
                z.clone()
            } else {
                let act = self.cfg.activation_function;
                z.mapv(|v| act.apply(v))
            };
            cache.xq.push(xq);
            cache.pass.push(pass);
            cache.dscale.push(dscale);
            cache.z.push(z);
            cache.wq.push(wq);
        }
        (a, cache)
    }

    /// Backpropagation from the gradient of the loss with respect to the outputs.
    pub(crate) fn backward(&self, cache: &Cache, dout: Array2<f64>) -> Grads {
        let n = self.layers.len();
        let mut dw = vec![Array2::zeros((0, 0)); n];
        let mut db = vec![Array1::zeros(0); n];
        let mut dtheta = vec![0.0; n];
        let act = self.cfg.activation_function;
        let mut d = dout;
        for l in (0..n).rev() {
            if l + 1 < n {
                Zip::from(&mut d)
                    .and(&cache.z[l])
                    .for_each(|g, &z| *g *= act_grad(act, z));
            }
            let mut g = d.t().dot(&cache.xq[l]);
            let layer = &self.layers[l];
            for (k, v) in g.iter_mut().enumerate() {
                if !layer.mask[k] {
                    *v = 0.0;
                }
            }
            db[l] = d.sum_axis(Axis(0));
            dw[l] = g;
            let ds = cache.dscale[l].as_ref();
            if l > 0 || ds.is_some() {
                let mut dx = d.dot(&cache.wq[l]);
                if let (Some(ds), Some((theta, _, _))) = (ds, self.layers[l].step) {
                    // Chain rule through scale = exp(theta).
                    let gs: f64 = Zip::from(&dx).and(ds).fold(0.0, |acc, &g, &s| acc + g * s);
                    dtheta[l] = gs * theta.exp();
                }
                if let Some(p) = &cache.pass[l] {
                    dx *= p;
                }
                d = dx;
            }
        }
        Grads { dw, db, dtheta }
    }

    /// Applies the masks to the weights (masked weights become exactly 0). The masks stay in
    /// place and keep being enforced by further training: they are the network's sparsity
    /// pattern, exported as absent entries of the sparse rows.
    pub fn make_pruning_permanent(&mut self) {
        for layer in &mut self.layers {
            let n = layer.in_dim();
            for (k, w) in layer.w.iter_mut().enumerate() {
                if !layer.mask[k] {
                    *w = 0.0;
                }
            }
            for r in 0..layer.out_dim() {
                if !layer.alive[r] {
                    layer.b[r] = 0.0;
                    debug_assert_eq!(layer.mask[r * n..(r + 1) * n].count_ones(), 0);
                }
            }
        }
    }

    /// Prunes to the final budget on the current weights, as Concrete ML's `enable_pruning`:
    /// first structured pruning (`n_prune_neurons_percentage` of each hidden layer's neurons with
    /// the smallest L2 norm, with their columns in the next layer; once), then unstructured
    /// pruning per [`PruningMode`] in every layer whose fan-in exceeds Ω. Masks only ever
    /// shrink: a weight pruned once stays pruned.
    pub fn enable_pruning(&mut self) {
        self.prune_structured();
        let omega = self.max_active_neurons();
        for l in 0..self.layers.len() {
            let fan_in = self.layers[l].in_dim() as u64;
            if fan_in <= omega {
                continue;
            }
            match self.cfg.pruning {
                PruningMode::PerNeuron => self.prune_rows_to(l, omega as usize),
                PruningMode::LayerGlobal => self.prune_layer_global(l, omega as usize),
                PruningMode::AccumulatorAware => self.prune_rows_to_accumulator(l),
            }
        }
        self.make_pruning_permanent();
        self.pruning_enabled = true;
    }

    /// With [`PruningMode::AccumulatorAware`], prunes every row of the layers whose fan-in
    /// exceeds Ω until its integer weights fit the accumulator budget (see
    /// [`prune_rows_to_accumulator`](Self::prune_rows_to_accumulator)); other modes: nothing.
    pub(crate) fn enforce_accumulator_budget(&mut self) {
        if self.cfg.pruning != PruningMode::AccumulatorAware {
            return;
        }
        let omega = self.max_active_neurons();
        for l in 0..self.layers.len() {
            if self.layers[l].in_dim() as u64 > omega {
                self.prune_rows_to_accumulator(l);
            }
        }
        self.make_pruning_permanent();
    }

    /// The largest `sum |w|` of integer weights one row of `layer` may have:
    /// `floor((2^n_accum_bits - 1) / s)`, `s` the span `hi - lo` of the layer's integer input
    /// range (its input quantizer's, or `2^n_a_bits - 1` (- 1 when narrow) before it has one).
    /// Every input of a neuron lies in `[lo, lo + s]`, so its accumulator spans at most
    /// `s * sum |w|`, i.e. at most `2^n_accum_bits` values.
    ///
    /// # Panics
    /// If `layer >= n_layers()`.
    pub fn accumulator_l1_budget(&self, layer: usize) -> i64 {
        let span = self.input_quantizer(layer).map_or_else(
            || (1i64 << self.cfg.n_a_bits) - 1 - i64::from(self.cfg.quant_narrow),
            |q| q.hi - q.lo,
        );
        ((1i64 << self.cfg.n_accum_bits) - 1) / span.max(1)
    }

    /// Accumulator-aware pruning of layer `l`: in every row, the active weights are visited by
    /// decreasing `|w|` (ties: lower input index first) and each is kept if its integer
    /// magnitude still fits [`accumulator_l1_budget`](Self::accumulator_l1_budget), pruned
    /// otherwise. The row's largest weight, which sets its scale, always fits (Ω >= 1), so the
    /// integers of the kept weights do not change.
    fn prune_rows_to_accumulator(&mut self, l: usize) {
        let budget = self.accumulator_l1_budget(l);
        let (q, _) = self.quantized_weights(l);
        let layer = &mut self.layers[l];
        let n = layer.in_dim();
        let mut idx: Vec<usize> = Vec::with_capacity(n);
        for r in 0..layer.out_dim() {
            idx.clear();
            idx.extend((0..n).filter(|&j| layer.mask[r * n + j]));
            let row = layer.w.row(r);
            idx.sort_by(|&a, &b| row[b].abs().total_cmp(&row[a].abs()).then(a.cmp(&b)));
            let mut used = 0i64;
            for &j in &idx {
                let a = q[[r, j]].abs();
                if used + a <= budget {
                    used += a;
                } else {
                    layer.mask.set(r * n + j, false);
                    layer.w[[r, j]] = 0.0;
                }
            }
        }
    }

    /// Re-scales every pruned row's kept weights so that their mean square is `1 / (3k)`, the
    /// mean square of PyTorch's `nn.Linear` initialization for the row's actual fan-in `k`
    /// (number of kept weights), and leaves dense rows (`k` = fan-in), empty rows and biases
    /// alone. Meant right after [`enable_pruning`](Self::enable_pruning) on the initial
    /// weights: magnitude pruning keeps a row's largest initial weights, drawn for the full
    /// fan-in, so without this a row keeping 4 of 120 weights starts with a pre-activation
    /// variance about 10 times smaller than a freshly initialized 4-input layer, and the signal
    /// fades layer after layer. The kept weights keep their signs and relative sizes.
    pub(crate) fn rescale_kept_weights(&mut self) {
        for layer in &mut self.layers {
            let n = layer.in_dim();
            for r in 0..layer.out_dim() {
                let k = layer.active_in_row(r);
                if k == 0 || k == n {
                    continue;
                }
                let ms = layer.w.row(r).iter().map(|v| v * v).sum::<f64>() / k as f64;
                let f = (1.0 / (3.0 * k as f64) / ms).sqrt();
                if f.is_finite() && f > 0.0 {
                    layer.w.row_mut(r).mapv_inplace(|v| v * f);
                }
            }
        }
    }

    /// One step of gradual per-neuron pruning: rows of layers whose fan-in `f` exceeds Ω keep at
    /// most `Ω + floor((f - Ω) (1 - progress)^3)` weights. `progress` in `[0, 1]`; at 1 this is
    /// the final budget (but no structured pruning: call `enable_pruning` for the last step).
    pub(crate) fn prune_gradual(&mut self, progress: f64) {
        let omega = self.max_active_neurons();
        let left = (1.0 - progress.clamp(0.0, 1.0)).powi(3);
        for l in 0..self.layers.len() {
            let fan_in = self.layers[l].in_dim() as u64;
            if fan_in <= omega {
                continue;
            }
            let keep = omega + ((fan_in - omega) as f64 * left).floor() as u64;
            self.prune_rows_to(l, keep as usize);
        }
        self.make_pruning_permanent();
    }

    /// Keeps the `keep` largest `|w|` among the active weights of every row of layer `l`
    /// (ties: lower input index first).
    fn prune_rows_to(&mut self, l: usize, keep: usize) {
        let layer = &mut self.layers[l];
        let n = layer.in_dim();
        let mut idx: Vec<usize> = Vec::with_capacity(n);
        for r in 0..layer.out_dim() {
            idx.clear();
            idx.extend((0..n).filter(|&j| layer.mask[r * n + j]));
            if idx.len() <= keep {
                continue;
            }
            let row = layer.w.row(r);
            idx.sort_by(|&a, &b| row[b].abs().total_cmp(&row[a].abs()).then(a.cmp(&b)));
            for &j in &idx[keep..] {
                layer.mask.set(r * n + j, false);
                layer.w[[r, j]] = 0.0;
            }
        }
    }

    /// Concrete ML's layer-global magnitude pruning: `(fan_in - Ω) * fan_out` weights of the
    /// whole matrix with the smallest `|w|` are pruned (ties: lower flat index kept first).
    fn prune_layer_global(&mut self, l: usize, omega: usize) {
        let layer = &mut self.layers[l];
        let n = layer.in_dim();
        let keep = omega * layer.out_dim();
        let flat = layer.w.as_slice().expect("weights are contiguous");
        let mut idx: Vec<usize> = (0..flat.len()).filter(|&k| layer.mask[k]).collect();
        if idx.len() <= keep {
            return;
        }
        idx.sort_by(|&a, &b| flat[b].abs().total_cmp(&flat[a].abs()).then(a.cmp(&b)));
        for &k in &idx[keep..] {
            layer.mask.set(k, false);
            layer.w[[k / n, k % n]] = 0.0;
        }
    }

    /// Structured pruning of hidden neurons by L2 norm (once).
    fn prune_structured(&mut self) {
        if self.structured_done {
            return;
        }
        self.structured_done = true;
        let pct = self.cfg.n_prune_neurons_percentage;
        if pct <= 0.0 {
            return;
        }
        let n_layers = self.layers.len();
        for l in 0..n_layers.saturating_sub(1) {
            let layer = &self.layers[l];
            let alive: Vec<usize> = (0..layer.out_dim()).filter(|&r| layer.alive[r]).collect();
            let remove = ((pct * alive.len() as f64).round() as usize).min(alive.len() - 1);
            if remove == 0 {
                continue;
            }
            let norms: Vec<f64> = layer
                .w
                .rows()
                .into_iter()
                .map(|r| r.iter().map(|v| v * v).sum::<f64>())
                .collect();
            let mut order = alive;
            order.sort_by(|&a, &b| norms[a].total_cmp(&norms[b]).then(a.cmp(&b)));
            let dead: Vec<usize> = order[..remove].to_vec();
            let layer = &mut self.layers[l];
            let n = layer.in_dim();
            for &r in &dead {
                layer.alive.set(r, false);
                for j in 0..n {
                    layer.mask.set(r * n + j, false);
                    layer.w[[r, j]] = 0.0;
                }
                layer.b[r] = 0.0;
            }
            let next = &mut self.layers[l + 1];
            let m = next.in_dim();
            for r in 0..next.out_dim() {
                for &j in &dead {
                    next.mask.set(r * m + j, false);
                    next.w[[r, j]] = 0.0;
                }
            }
        }
    }

    /// Exports the network as a [`QuantizedMlp`] with the quantizers frozen as they stand:
    /// integer weights in sparse rows (pruned weights absent), per-neuron weight scales, float
    /// biases, each layer's input quantizer and the activation (none after the last layer).
    ///
    /// Neurons removed by structured pruning are absent (the next layer's `in_dim` shrinks). A
    /// hidden neuron whose integer row is empty outputs a constant, which is folded into the next
    /// layer's biases; a hidden neuron that no next-layer weight reads is dropped. (Each hidden
    /// layer keeps at least one neuron.)
    ///
    /// `feature_mean` / `feature_std` (length `input_dim`) and `target_mean` / `target_std` are
    /// the client-side standardization (use 0 and 1 for classification).
    ///
    /// Errors: [`Error::Input`] for wrong lengths or non-finite statistics, [`Error::Model`] if
    /// no data has been through the network yet (call [`calibrate`](Self::calibrate)).
    pub fn to_quantized(
        &self,
        task: Task,
        feature_mean: Vec<f64>,
        feature_std: Vec<f64>,
        target_mean: f64,
        target_std: f64,
    ) -> Result<QuantizedMlp> {
        let d = self.cfg.input_dim;
        if feature_mean.len() != d || feature_std.len() != d {
            return Err(Error::Input(format!(
                "feature statistics have {} means and {} standard deviations for {d} inputs",
                feature_mean.len(),
                feature_std.len()
            )));
        }
        if feature_mean
            .iter()
            .chain(&feature_std)
            .chain([&target_mean, &target_std])
            .any(|v| !v.is_finite())
            || feature_std.iter().chain([&target_std]).any(|&s| s == 0.0)
        {
            return Err(Error::Input(
                "standardization statistics must be finite, with non-zero standard deviations"
                    .into(),
            ));
        }
        let n = self.layers.len();
        let mut qs = Vec::with_capacity(n);
        for l in 0..n {
            qs.push(self.input_quantizer(l).ok_or_else(|| {
                Error::Model(format!(
                    "layer {l}'s input quantizer has no statistics yet: train the network or \
                     call calibrate with representative data before exporting"
                ))
            })?);
        }
        let mut ints = Vec::with_capacity(n);
        let mut scales = Vec::with_capacity(n);
        let mut biases: Vec<Vec<f64>> = Vec::with_capacity(n);
        for l in 0..n {
            let (q, s) = self.quantized_weights(l);
            ints.push(q);
            scales.push(s);
            biases.push(self.layers[l].b.to_vec());
        }
        let mut live: Vec<Vec<bool>> = (0..n)
            .map(|l| {
                if l + 1 == n {
                    vec![true; self.layers[l].out_dim()]
                } else {
                    self.alive_neurons(l)
                }
            })
            .collect();
        let act = self.cfg.activation_function;
        // Fold constant hidden neurons (empty integer rows) into the next layer's biases.
        for l in 0..n.saturating_sub(1) {
            for i in 0..live[l].len() {
                if !live[l][i] || ints[l].row(i).iter().any(|&w| w != 0) {
                    continue;
                }
                if live[l].iter().filter(|&&b| b).count() <= 1 {
                    break;
                }
                let layer_q = &qs[l + 1];
                // The neuron's pre-activation for accumulator 0 is exactly its bias.
                let c =
                    layer_q.quantize(act.apply(0.0 * scales[l][i] * qs[l].scale + biases[l][i]));
                let next = &mut ints[l + 1];
                for r in 0..next.nrows() {
                    let w = next[[r, i]];
                    if w != 0 {
                        if c != 0 {
                            biases[l + 1][r] += (w * c) as f64 * (scales[l + 1][r] * layer_q.scale);
                        }
                        next[[r, i]] = 0;
                    }
                }
                live[l][i] = false;
            }
        }
        // Drop hidden neurons that no live neuron of the next layer reads.
        for l in (0..n.saturating_sub(1)).rev() {
            for i in 0..live[l].len() {
                if !live[l][i] {
                    continue;
                }
                let read =
                    (0..ints[l + 1].nrows()).any(|r| live[l + 1][r] && ints[l + 1][[r, i]] != 0);
                if !read && live[l].iter().filter(|&&b| b).count() > 1 {
                    live[l][i] = false;
                }
            }
        }
        let mut layers = Vec::with_capacity(n);
        for l in 0..n {
            let in_live: Vec<usize> = if l == 0 {
                (0..d).collect()
            } else {
                (0..live[l - 1].len()).filter(|&j| live[l - 1][j]).collect()
            };
            let mut rows: Vec<SparseRow> = Vec::new();
            let mut ws = Vec::new();
            let mut bs = Vec::new();
            for i in (0..live[l].len()).filter(|&i| live[l][i]) {
                let row: SparseRow = in_live
                    .iter()
                    .enumerate()
                    .filter_map(|(k, &j)| {
                        let w = ints[l][[i, j]];
                        (w != 0).then_some((k, w))
                    })
                    .collect();
                rows.push(row);
                ws.push(scales[l][i]);
                bs.push(biases[l][i]);
            }
            layers.push(QuantLayer {
                input_quant: qs[l].clone(),
                in_dim: in_live.len(),
                rows,
                weight_scale: ws,
                bias: bs,
                activation: (l + 1 < n).then_some(act),
            });
        }
        Ok(QuantizedMlp {
            task,
            feature_mean,
            feature_std,
            target_mean,
            target_std,
            n_w_bits: self.cfg.n_w_bits,
            n_a_bits: self.cfg.n_a_bits,
            n_accum_bits: self.cfg.n_accum_bits,
            layers,
        })
    }
}

/// Adam (PyTorch's defaults: betas 0.9 / 0.999, eps 1e-8), with optional decoupled weight decay
/// of the weights (AdamW: `w -= lr * weight_decay * w` before the Adam update).
pub(crate) struct Adam {
    lr: f64,
    /// Decoupled weight decay (AdamW) of the weights; 0 = plain Adam.
    pub(crate) weight_decay: f64,
    t: i32,
    mw: Vec<Array2<f64>>,
    vw: Vec<Array2<f64>>,
    mb: Vec<Array1<f64>>,
    vb: Vec<Array1<f64>>,
    mt: Vec<(f64, f64)>,
}

impl Adam {
    pub(crate) fn new(net: &SparseQuantNeuralNetwork, lr: f64) -> Adam {
        Adam {
            lr,
            weight_decay: 0.0,
            t: 0,
            mw: net
                .layers
                .iter()
                .map(|l| Array2::zeros(l.w.raw_dim()))
                .collect(),
            vw: net
                .layers
                .iter()
                .map(|l| Array2::zeros(l.w.raw_dim()))
                .collect(),
            mb: net
                .layers
                .iter()
                .map(|l| Array1::zeros(l.b.raw_dim()))
                .collect(),
            vb: net
                .layers
                .iter()
                .map(|l| Array1::zeros(l.b.raw_dim()))
                .collect(),
            mt: vec![(0.0, 0.0); net.layers.len()],
        }
    }

    pub(crate) fn set_lr(&mut self, lr: f64) {
        self.lr = lr;
    }

    /// One update; masked weights (and removed neurons' biases) stay exactly 0.
    pub(crate) fn step(&mut self, net: &mut SparseQuantNeuralNetwork, g: &Grads) {
        const B1: f64 = 0.9;
        const B2: f64 = 0.999;
        const EPS: f64 = 1e-8;
        self.t += 1;
        let bc1 = 1.0 - B1.powi(self.t);
        let bc2 = 1.0 - B2.powi(self.t);
        let lr = self.lr;
        let upd = |p: &mut f64, g: f64, m: &mut f64, v: &mut f64| {
            *m = B1 * *m + (1.0 - B1) * g;
            *v = B2 * *v + (1.0 - B2) * g * g;
            *p -= lr * (*m / bc1) / ((*v / bc2).sqrt() + EPS);
        };
        for (l, layer) in net.layers.iter_mut().enumerate() {
            let w = layer.w.as_slice_mut().expect("contiguous");
            let gw = g.dw[l].as_slice().expect("contiguous");
            let mw = self.mw[l].as_slice_mut().expect("contiguous");
            let vw = self.vw[l].as_slice_mut().expect("contiguous");
            for (k, (((p, &gk), m), v)) in w.iter_mut().zip(gw).zip(mw).zip(vw).enumerate() {
                if layer.mask[k] {
                    *p -= lr * self.weight_decay * *p;
                    upd(p, gk, m, v);
                } else {
                    *p = 0.0;
                    *m = 0.0;
                    *v = 0.0;
                }
            }
            if let Some((theta, _, _)) = &mut layer.step {
                let (m, v) = &mut self.mt[l];
                upd(theta, g.dtheta[l], m, v);
            }
            for (r, ((p, &gk), (m, v))) in layer
                .b
                .iter_mut()
                .zip(g.db[l].iter())
                .zip(self.mb[l].iter_mut().zip(self.vb[l].iter_mut()))
                .enumerate()
            {
                if layer.alive[r] {
                    upd(p, gk, m, v);
                } else {
                    *p = 0.0;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(d: usize, layers: usize, out: usize) -> ModuleConfig {
        let mut c = ModuleConfig::new(d, layers, out);
        c.n_w_bits = 3;
        c.n_a_bits = 3;
        c.n_accum_bits = 8;
        c.n_hidden_neurons_multiplier = 2.0;
        c
    }

    #[test]
    fn pow2_ceil_is_exact() {
        assert_eq!(pow2_ceil(1.0), 1.0);
        assert_eq!(pow2_ceil(0.3), 0.5);
        assert_eq!(pow2_ceil(0.25), 0.25);
        assert_eq!(pow2_ceil(5.0), 8.0);
        assert_eq!(pow2_ceil(0.0), 1.0);
    }

    #[test]
    fn signed_and_unsigned_activation_quantizers() {
        let mut c = cfg(4, 2, 2);
        c.power_of_two_scaling = false;
        c.quant_signed = true;
        let q = act_quantizer(-1.0, 2.0, &c);
        assert_eq!((q.lo, q.hi), (-4, 3));
        assert!((q.scale - 0.5).abs() < 1e-15);
        c.quant_narrow = true;
        let q = act_quantizer(-1.0, 2.0, &c);
        assert_eq!((q.lo, q.hi), (-3, 3));
        c.quant_narrow = false;
        c.quant_signed = false;
        let q = act_quantizer(0.0, 7.0, &c);
        assert_eq!((q.lo, q.hi), (0, 7));
        assert!((q.scale - 1.0).abs() < 1e-15);
        let q = act_quantizer(-2.0, 5.0, &c);
        assert_eq!(q.hi - q.lo, 7);
        assert_eq!(q.lo, -2);
        c.power_of_two_scaling = true;
        let q = act_quantizer(-2.0, 5.5, &c);
        assert_eq!(q.scale, 2.0);
        assert_eq!(q.hi - q.lo, 7);
    }

    #[test]
    fn gradients_match_finite_differences() {
        // With quantization the loss is piecewise constant, so check the float chain on a
        // network with wide bits where the straight-through estimate is close to the truth:
        // only the structure (signs, shapes, masking) is checked here.
        let c = cfg(3, 2, 2);
        let mut net = SparseQuantNeuralNetwork::new(c, 3).unwrap();
        let x = Array2::from_shape_fn((5, 3), |(i, j)| (i as f64 - 2.0) * 0.3 + j as f64 * 0.1);
        let (out, cache) = net.forward_train(&x);
        let g = net.backward(&cache, Array2::ones(out.raw_dim()));
        assert_eq!(g.dw[0].dim(), (6, 3));
        assert_eq!(g.dw[1].dim(), (2, 6));
        assert_eq!(g.db[1], Array1::from_elem(2, 5.0));
    }

    #[test]
    fn per_neuron_pruning_bounds_every_row() {
        let mut c = cfg(20, 2, 3);
        c.n_accum_bits = 8; // Ω = 5
        let mut net = SparseQuantNeuralNetwork::new(c, 1).unwrap();
        net.enable_pruning();
        for l in 0..2 {
            assert!(net.active_per_row(l).iter().all(|&k| k <= 5));
        }
        assert!(net.active_per_row(0).iter().all(|&k| k == 5));
        // The kept weights are each row's largest |w|.
        let w = net.weights(0);
        for r in 0..w.nrows() {
            let kept_min = w
                .row(r)
                .iter()
                .filter(|v| **v != 0.0)
                .fold(f64::MAX, |a, v| a.min(v.abs()));
            assert!(kept_min > 0.0);
        }
    }

    #[test]
    fn rescaled_kept_weights_have_the_variance_of_their_fan_in() {
        let mut c = cfg(40, 3, 2);
        c.n_accum_bits = 8; // Ω = 5
        let mut net = SparseQuantNeuralNetwork::new(c, 4).unwrap();
        net.enable_pruning();
        let before: Vec<Array2<f64>> = (0..3).map(|l| net.weights(l).to_owned()).collect();
        net.rescale_kept_weights();
        for (l, w0) in before.iter().enumerate() {
            let w = net.weights(l);
            for r in 0..w.nrows() {
                let k = w.row(r).iter().filter(|v| **v != 0.0).count();
                assert_eq!(k, 5, "layer {l} row {r}");
                let ms = w.row(r).iter().map(|v| v * v).sum::<f64>() / k as f64;
                assert!((ms - 1.0 / 15.0).abs() < 1e-12, "layer {l} row {r}: {ms}");
                // Same signs and pattern, one factor per row.
                let f = w
                    .row(r)
                    .iter()
                    .zip(w0.row(r))
                    .find(|(_, b)| **b != 0.0)
                    .map(|(a, b)| a / b)
                    .unwrap();
                assert!(f > 1.0, "kept weights drawn for fan-in 80 or 40 grow");
                for (a, b) in w.row(r).iter().zip(w0.row(r)) {
                    assert!((a - b * f).abs() < 1e-12);
                }
            }
        }
        assert_eq!(net.active_per_row(0), vec![5; 80]);
    }

    #[test]
    fn rescaling_keeps_the_signal_of_a_pruned_network() {
        // breast_cancer's shape at 4/4/10 bits: 30 -> 120 -> 120 -> 2, Ω = 4.
        let mut c = ModuleConfig::new(30, 3, 2);
        c.n_w_bits = 4;
        c.n_a_bits = 4;
        c.n_accum_bits = 10;
        c.n_hidden_neurons_multiplier = 4.0;
        let x = Array2::from_shape_fn((256, 30), |(i, j)| {
            (((i * 31 + j * 17) % 23) as f64 - 11.0) / 6.0
        });
        // How much the outputs vary from one input to the next (mean per-output std).
        let spread = |net: &SparseQuantNeuralNetwork| {
            let z = net.forward(&x);
            z.std_axis(Axis(0), 0.0).mean().unwrap()
        };
        let mut net = SparseQuantNeuralNetwork::new(c, 9).unwrap();
        net.enable_pruning();
        let faded = spread(&net);
        net.rescale_kept_weights();
        let kept = spread(&net);
        // Measured: 0.0026 -> 0.037 (14 times); the outputs of the un-rescaled network barely
        // depend on the input.
        assert!(kept > 5.0 * faded, "output spread {faded} -> {kept}");
    }

    #[test]
    fn accumulator_aware_pruning_fits_the_budget_with_more_than_omega() {
        // 40 -> 80 -> 80 -> 2 at 4/4/10 bits: Ω = 4, row budget sum |w| <= 1023 / 15 = 68.
        let mut c = ModuleConfig::new(40, 3, 2);
        c.n_w_bits = 4;
        c.n_a_bits = 4;
        c.n_accum_bits = 10;
        c.n_hidden_neurons_multiplier = 2.0;
        c.pruning = PruningMode::AccumulatorAware;
        let mut net = SparseQuantNeuralNetwork::new(c, 5).unwrap();
        net.enable_pruning();
        for l in 0..3 {
            assert_eq!(net.accumulator_l1_budget(l), 68);
            let (q, _) = net.quantized_weights(l);
            for row in q.rows() {
                let l1: i64 = row.iter().map(|v| v.abs()).sum();
                assert!(l1 * 15 <= 1023, "layer {l}: sum |w| = {l1}");
            }
            let kept = net.active_per_row(l);
            assert!(kept.iter().all(|&k| k > 4), "layer {l}: {kept:?}");
            assert!(
                kept.iter().all(|&k| k < net.weights(l).ncols()),
                "layer {l}"
            );
        }
        // Training moves the weights: the budget is enforced again on the integers as they
        // stand, and masks only shrink.
        let before: Vec<Vec<usize>> = (0..3).map(|l| net.active_per_row(l)).collect();
        for layer in &mut net.layers {
            layer
                .w
                .mapv_inplace(|v| if v != 0.0 { v.signum() } else { 0.0 });
        }
        net.enforce_accumulator_budget();
        for (l, b) in before.iter().enumerate() {
            let (q, _) = net.quantized_weights(l);
            for (r, row) in q.rows().into_iter().enumerate() {
                let l1: i64 = row.iter().map(|v| v.abs()).sum();
                assert!(l1 <= 68, "layer {l} row {r}: sum |w| = {l1}");
                // All weights now quantize to -8 or 7: 8 of them always fit 68, 10 never.
                let k = net.active_per_row(l)[r];
                assert!(
                    k <= b[r] && k >= b[r].min(8) && k <= 9,
                    "layer {l} row {r}: {k}"
                );
            }
        }
    }

    #[test]
    fn layer_global_pruning_keeps_the_average() {
        let mut c = cfg(20, 2, 3);
        c.pruning = PruningMode::LayerGlobal;
        let mut net = SparseQuantNeuralNetwork::new(c, 1).unwrap();
        net.enable_pruning();
        let rows = net.active_per_row(0);
        assert_eq!(rows.iter().sum::<usize>(), 5 * rows.len());
    }

    #[test]
    fn structured_pruning_removes_neurons_and_columns() {
        let mut c = cfg(10, 3, 2);
        c.n_prune_neurons_percentage = 0.5;
        let mut net = SparseQuantNeuralNetwork::new(c, 2).unwrap();
        net.enable_pruning();
        for l in 0..2 {
            let alive = net.alive_neurons(l);
            assert_eq!(alive.iter().filter(|&&b| !b).count(), 10);
            let next = net.weights(l + 1);
            for (j, &a) in alive.iter().enumerate() {
                if !a {
                    assert!(next.column(j).iter().all(|&v| v == 0.0));
                    assert!(net.weights(l).row(j).iter().all(|&v| v == 0.0));
                }
            }
        }
        let x = Array2::from_shape_fn((8, 10), |(i, j)| ((i * 7 + j * 3) % 5) as f64 - 2.0);
        net.calibrate(&x);
        let q = net
            .to_quantized(Task::Regress, vec![0.0; 10], vec![1.0; 10], 0.0, 1.0)
            .unwrap();
        assert!(q.layers[0].out_dim() <= 10);
        assert_eq!(q.layers[1].in_dim, q.layers[0].out_dim());
        assert_eq!(q.layers[2].in_dim, q.layers[1].out_dim());
    }

    #[test]
    fn export_needs_statistics() {
        let net = SparseQuantNeuralNetwork::new(cfg(3, 2, 2), 0).unwrap();
        let e = net
            .to_quantized(Task::Regress, vec![0.0; 3], vec![1.0; 3], 0.0, 1.0)
            .unwrap_err();
        assert!(matches!(e, Error::Model(_)), "{e}");
    }
}
