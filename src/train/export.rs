//! Export of a trained module to the quantized model [`QuantizedMlp`] that `lower` consumes:
//! quantizers frozen, integer weights in sparse rows, constant hidden neurons folded into the
//! next layer's biases and unread ones dropped.

use ndarray::Array2;

use super::network::SparseQuantNeuralNetwork;
use crate::error::{Error, Result};
use crate::task::Task;
use crate::train::quantize::{ActQuantizer, Activation, QuantLayer, QuantizedMlp, SparseRow};

impl SparseQuantNeuralNetwork {
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
        check_statistics(d, &feature_mean, &feature_std, target_mean, target_std)?;
        let act = self.cfg.activation_function;
        let mut frozen = self.freeze()?;
        frozen.fold_constant_neurons(act);
        frozen.drop_unread_neurons();
        Ok(QuantizedMlp {
            task,
            feature_mean,
            feature_std,
            target_mean,
            target_std,
            n_w_bits: self.cfg.n_w_bits,
            n_a_bits: self.cfg.n_a_bits,
            n_accum_bits: self.cfg.n_accum_bits,
            layers: frozen.into_layers(d, act),
        })
    }

    /// The quantizers, integer weights, scales and biases as they stand, with every neuron not
    /// removed by structured pruning live.
    fn freeze(&self) -> Result<Frozen> {
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
        let live: Vec<Vec<bool>> = (0..n)
            .map(|l| {
                if l + 1 == n {
                    vec![true; self.layers[l].out_dim()]
                } else {
                    self.alive_neurons(l)
                }
            })
            .collect();
        Ok(Frozen {
            qs,
            ints,
            scales,
            biases,
            live,
        })
    }
}

/// Checks the client-side standardization statistics.
fn check_statistics(
    d: usize,
    feature_mean: &[f64],
    feature_std: &[f64],
    target_mean: f64,
    target_std: f64,
) -> Result<()> {
    if feature_mean.len() != d || feature_std.len() != d {
        return Err(Error::Input(format!(
            "feature statistics have {} means and {} standard deviations for {d} inputs",
            feature_mean.len(),
            feature_std.len()
        )));
    }
    if feature_mean
        .iter()
        .chain(feature_std)
        .chain([&target_mean, &target_std])
        .any(|v| !v.is_finite())
        || feature_std.iter().chain([&target_std]).any(|&s| s == 0.0)
    {
        return Err(Error::Input(
            "standardization statistics must be finite, with non-zero standard deviations".into(),
        ));
    }
    Ok(())
}

/// The network frozen for export, layer by layer: input quantizers, integer weights
/// (`out x in`), per-neuron weight scales and float biases, and which neurons stay.
struct Frozen {
    qs: Vec<ActQuantizer>,
    ints: Vec<Array2<i64>>,
    scales: Vec<Vec<f64>>,
    biases: Vec<Vec<f64>>,
    live: Vec<Vec<bool>>,
}

impl Frozen {
    /// Folds constant hidden neurons (empty integer rows) into the next layer's biases.
    fn fold_constant_neurons(&mut self, act: Activation) {
        let n = self.ints.len();
        let Frozen {
            qs,
            ints,
            scales,
            biases,
            live,
        } = self;
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
    }

    /// Drops hidden neurons that no live neuron of the next layer reads (each hidden layer
    /// keeps at least one).
    fn drop_unread_neurons(&mut self) {
        let n = self.ints.len();
        let (ints, live) = (&self.ints, &mut self.live);
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
    }

    /// The quantized layers of the live neurons, with sparse rows over the live inputs (`d`
    /// features for the first layer).
    fn into_layers(self, d: usize, act: Activation) -> Vec<QuantLayer> {
        let n = self.ints.len();
        let mut layers = Vec::with_capacity(n);
        for l in 0..n {
            let live = &self.live;
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
                        let w = self.ints[l][[i, j]];
                        (w != 0).then_some((k, w))
                    })
                    .collect();
                rows.push(row);
                ws.push(self.scales[l][i]);
                bs.push(self.biases[l][i]);
            }
            layers.push(QuantLayer {
                input_quant: self.qs[l].clone(),
                in_dim: in_live.len(),
                rows,
                weight_scale: ws,
                bias: bs,
                activation: (l + 1 < n).then_some(act),
            });
        }
        layers
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::network::tests::cfg;

    #[test]
    fn export_needs_statistics() {
        let net = SparseQuantNeuralNetwork::new(cfg(3, 2, 2), 0).unwrap();
        let e = net
            .to_quantized(Task::Regress, vec![0.0; 3], vec![1.0; 3], 0.0, 1.0)
            .unwrap_err();
        assert!(matches!(e, Error::Model(_)), "{e}");
    }
}
