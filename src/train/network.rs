//! The float training module: weights, pruning masks and quantizer state per layer, the
//! fake-quantized forward pass and hand-written backpropagation. Pruning is in
//! [`pruning`](super::pruning), the export to [`QuantizedMlp`] in [`export`](super::export).

use bitvec::vec::BitVec;
use ndarray::{Array1, Array2, ArrayView2, Axis, Zip};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::noise::{inject, Injector};
use super::quantizers::{
    act_quantizer, batch_range, fake_quant, pow2_ceil, weight_range, RangeObserver,
};
use super::ModuleConfig;
use crate::error::Result;
use crate::train::quantize::{ActQuantizer, Activation};

#[allow(unused_imports)] // used by doc links
use crate::train::quantize::QuantizedMlp;

/// One linear layer's trainable state.
#[derive(Clone, Debug)]
pub(super) struct Layer {
    /// `out x in` latent float weights; masked entries are exactly 0.
    pub(super) w: Array2<f64>,
    /// Float bias.
    pub(super) b: Array1<f64>,
    /// Row-major `out x in` pruning mask; 1 = the weight is active.
    pub(super) mask: BitVec,
    /// Output neurons not removed by structured pruning.
    pub(super) alive: BitVec,
    /// Statistics of this layer's input, for its activation quantizer.
    pub(super) obs: RangeObserver,
    /// With [`ActRange::Learned`], once initialized: `(ln scale, lo, hi)` of the input
    /// quantizer, the log-scale trained by gradient.
    pub(super) step: Option<(f64, i64, i64)>,
}

impl Layer {
    pub(super) fn in_dim(&self) -> usize {
        self.w.ncols()
    }
    pub(super) fn out_dim(&self) -> usize {
        self.w.nrows()
    }
    pub(super) fn active_in_row(&self, r: usize) -> usize {
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
    pub(super) cfg: ModuleConfig,
    pub(super) layers: Vec<Layer>,
    pub(super) structured_done: bool,
    pub(super) pruning_enabled: bool,
}

/// Activations and quantized tensors of one training forward pass.
pub(super) struct Cache {
    xq: Vec<Array2<f64>>,
    pass: Vec<Option<Array2<f64>>>,
    /// d(xq)/d(scale) per element, for layers with a learned step.
    dscale: Vec<Option<Array2<f64>>>,
    z: Vec<Array2<f64>>,
    wq: Vec<Array2<f64>>,
}

/// Gradients of the loss with respect to every weight and bias (and learned log-steps).
pub(super) struct Grads {
    pub(super) dw: Vec<Array2<f64>>,
    pub(super) db: Vec<Array1<f64>>,
    pub(super) dtheta: Vec<f64>,
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
        o.seen
            .then(|| act_quantizer(o.min, o.max, &self.cfg, self.cfg.input_bits(layer)))
    }

    /// [`ActRange::Learned`]: turns every input quantizer's running statistics into a learned
    /// step size (its integer range is fixed from then on). Layers without statistics are left
    /// alone.
    pub(super) fn init_learned_steps(&mut self) {
        for l in 0..self.layers.len() {
            if self.layers[l].step.is_some() {
                continue;
            }
            let o = &self.layers[l].obs;
            if o.seen {
                let q = act_quantizer(o.min, o.max, &self.cfg, self.cfg.input_bits(l));
                self.layers[l].step = Some((q.scale.ln(), q.lo, q.hi));
            }
        }
    }

    fn quantizer_for(&self, l: usize, a: &Array2<f64>) -> ActQuantizer {
        self.input_quantizer(l).unwrap_or_else(|| {
            let bits = self.cfg.input_bits(l);
            let (lo, hi) = batch_range(a, &self.cfg, bits);
            act_quantizer(lo, hi, &self.cfg, bits)
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
            crate::cast::round_clamp(l.w[[r, j]] / scales[r], qmin, qmax)
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
        self.forward_all(x).pop().unwrap_or_else(|| x.to_owned())
    }

    /// [`forward`](Self::forward), keeping every layer's output (hidden activations, then the
    /// outputs).
    pub(super) fn forward_all(&self, x: &Array2<f64>) -> Vec<Array2<f64>> {
        let n = self.layers.len();
        let mut a = x.to_owned();
        let mut outs = Vec::with_capacity(n);
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
            outs.push(a.clone());
        }
        outs
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
        let _ = self.forward_train(x, None);
    }

    /// Training forward pass: updates the running statistics, then fake-quantizes. With an
    /// [`Injector`] (noise-aware training), every hidden neuron's accumulator is moved by a
    /// seeded read error before its activation ([`super::noise`]); gradients pass it straight
    /// through.
    pub(super) fn forward_train(
        &mut self,
        x: &Array2<f64>,
        noise: Option<&mut Injector>,
    ) -> (Array2<f64>, Cache) {
        let n = self.layers.len();
        let plan = noise.as_ref().and_then(|inj| self.noise_plan(inj.noise));
        let mut noise = noise;
        let mut cache = Cache {
            xq: Vec::with_capacity(n),
            pass: Vec::with_capacity(n),
            dscale: Vec::with_capacity(n),
            z: Vec::with_capacity(n),
            wq: Vec::with_capacity(n),
        };
        let mut a = x.to_owned();
        for l in 0..n {
            let (lo, hi) = batch_range(&a, &self.cfg, self.cfg.input_bits(l));
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
            if let (Some(plan), Some(inj)) = (&plan, noise.as_deref_mut()) {
                if let Some(rows) = plan.layers.get(l) {
                    let scale: Vec<f64> =
                        self.weight_scales(l).iter().map(|s| s * q.scale).collect();
                    let bias = self.layers[l].b.as_slice().expect("contiguous");
                    inject(&mut z, bias, &scale, rows, inj.rng);
                }
            }
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
    pub(super) fn backward(&self, cache: &Cache, dout: Array2<f64>) -> Grads {
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
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    pub(in crate::train) fn cfg(d: usize, layers: usize, out: usize) -> ModuleConfig {
        let mut c = ModuleConfig::new(d, layers, out);
        c.n_w_bits = 3;
        c.n_a_bits = 3;
        c.n_accum_bits = 8;
        c.n_hidden_neurons_multiplier = 2.0;
        c
    }

    #[test]
    fn gradients_match_finite_differences() {
        // With quantization the loss is piecewise constant, so check the float chain on a
        // network with wide bits where the straight-through estimate is close to the truth:
        // only the structure (signs, shapes, masking) is checked here.
        let c = cfg(3, 2, 2);
        let mut net = SparseQuantNeuralNetwork::new(c, 3).unwrap();
        let x = Array2::from_shape_fn((5, 3), |(i, j)| (i as f64 - 2.0) * 0.3 + j as f64 * 0.1);
        let (out, cache) = net.forward_train(&x, None);
        let g = net.backward(&cache, Array2::ones(out.raw_dim()));
        assert_eq!(g.dw[0].dim(), (6, 3));
        assert_eq!(g.dw[1].dim(), (2, 6));
        assert_eq!(g.db[1], Array1::from_elem(2, 5.0));
    }
}
