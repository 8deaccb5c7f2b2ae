//! Pruning of the training module: structured pruning of hidden neurons, and the unstructured
//! modes of [`PruningMode`] (per neuron to Ω weights, Concrete ML's layer-global threshold,
//! accumulator-aware), at once or gradually, plus the re-scaling of the kept weights.

use super::network::SparseQuantNeuralNetwork;
use super::PruningMode;

impl SparseQuantNeuralNetwork {
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
            let fan_in = crate::cast::to_u64(self.layers[l].in_dim());
            if fan_in <= omega {
                continue;
            }
            match self.cfg.pruning {
                PruningMode::PerNeuron => self.prune_rows_to(l, crate::cast::to_usize(omega)),
                PruningMode::LayerGlobal => {
                    self.prune_layer_global(l, crate::cast::to_usize(omega))
                }
                PruningMode::AccumulatorAware => self.prune_rows_to_accumulator(l),
            }
        }
        self.make_pruning_permanent();
        self.pruning_enabled = true;
    }

    /// With [`PruningMode::AccumulatorAware`], prunes every row of the layers whose fan-in
    /// exceeds Ω until its integer weights fit the accumulator budget (see
    /// [`prune_rows_to_accumulator`](Self::prune_rows_to_accumulator)); other modes: nothing.
    pub(super) fn enforce_accumulator_budget(&mut self) {
        if self.cfg.pruning != PruningMode::AccumulatorAware {
            return;
        }
        let omega = self.max_active_neurons();
        for l in 0..self.layers.len() {
            if crate::cast::to_u64(self.layers[l].in_dim()) > omega {
                self.prune_rows_to_accumulator(l);
            }
        }
        self.make_pruning_permanent();
    }

    /// The largest `sum |w|` of integer weights one row of `layer` may have:
    /// `floor((2^n_accum_bits - 1) / s)`, `s` the span `hi - lo` of the layer's integer input
    /// range (its input quantizer's, or `2^b - 1` (- 1 when narrow) before it has one, `b` the
    /// layer's [`input_bits`](super::ModuleConfig::input_bits)).
    /// Every input of a neuron lies in `[lo, lo + s]`, so its accumulator spans at most
    /// `s * sum |w|`, i.e. at most `2^n_accum_bits` values.
    ///
    /// # Panics
    /// If `layer >= n_layers()`.
    pub fn accumulator_l1_budget(&self, layer: usize) -> i64 {
        let span = self.input_quantizer(layer).map_or_else(
            || (1i64 << self.cfg.input_bits(layer)) - 1 - i64::from(self.cfg.quant_narrow),
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
    pub(super) fn rescale_kept_weights(&mut self) {
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
    pub(super) fn prune_gradual(&mut self, progress: f64) {
        let omega = crate::cast::to_usize(self.max_active_neurons());
        let left = (1.0 - progress.clamp(0.0, 1.0)).powi(3);
        for l in 0..self.layers.len() {
            let fan_in = self.layers[l].in_dim();
            if fan_in <= omega {
                continue;
            }
            let spare = fan_in - omega;
            let keep = omega + crate::cast::clamp_count((spare as f64 * left).floor(), spare);
            self.prune_rows_to(l, keep);
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
            let remove =
                crate::cast::clamp_count((pct * alive.len() as f64).round(), alive.len() - 1);
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
            for &r in &order[..remove] {
                self.kill_neuron(l, r);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::task::Task;
    use crate::train::network::tests::cfg;
    use crate::train::ModuleConfig;
    use ndarray::{Array2, Axis};

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
}
