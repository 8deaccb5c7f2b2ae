//! Removal of hidden neurons that do not pay for their bootstrap: after part of the training,
//! every hidden neuron that costs a table (it reads something and is read) is tried out of the
//! network, cheapest-looking first, and stays out when the selection rows' score drops by at
//! most a tolerance from the score with all of them; training then fine-tunes the rest. A
//! removed neuron is dead ([`Layer::alive`](super::network::Layer)): its row, its column in
//! the next layer and its bias are 0 and stay so, and export drops it (no table).

use ndarray::Array2;

/// The fraction of the epochs after which
/// [`EstimatorParams::remove_neurons`](super::EstimatorParams::remove_neurons) removes
/// neurons: half, so that the rest fine-tune with the learning rate's second half.
pub const REMOVE_NEURONS_AT: f64 = 0.5;

use super::metrics::{argmax, logits_accuracy, r2};
use super::network::SparseQuantNeuralNetwork;
use super::noise::{Injector, ReadNoise};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// Noisy passes a judge with read noise averages (each trial sees the same draws).
const NOISY_PASSES: u64 = 4;

/// The rows a removal is judged on, with their targets, and the read noise training injects.
pub(super) struct Judge<'a> {
    pub(super) x: &'a Array2<f64>,
    /// Class indices (classification) or empty.
    pub(super) labels: &'a [usize],
    /// Standardized targets (regression) or empty.
    pub(super) values: &'a [f64],
    /// With noise-aware training: scores are taken under that noise (mean of
    /// [`NOISY_PASSES`] seeded passes), so a neuron that makes the network robust stays.
    pub(super) noise: Option<&'a ReadNoise>,
    /// Seed of the noisy passes.
    pub(super) seed: u64,
}

impl Judge<'_> {
    fn metric(&self, z: &Array2<f64>) -> f64 {
        if self.labels.is_empty() {
            r2(&z.column(0).to_vec(), self.values)
        } else {
            logits_accuracy(z, self.labels)
        }
    }

    /// Accuracy (classes) or R² (regression) of the network on the rows, and with read noise
    /// the mean of the same under that noise and the share of rows whose noisy prediction is
    /// the clear one (1 without noise; for regression, the noisy R²).
    fn score(&self, net: &SparseQuantNeuralNetwork) -> Score {
        let clear = net.forward(self.x);
        let metric = self.metric(&clear);
        let Some(noise) = self.noise else {
            return Score {
                clear: metric,
                noisy: metric,
                agreement: 1.0,
            };
        };
        let clear_pred: Vec<usize> = clear.rows().into_iter().map(argmax).collect();
        let (mut noisy, mut agreement) = (0.0, 0.0);
        for pass in 0..NOISY_PASSES {
            let mut rng = ChaCha8Rng::seed_from_u64(self.seed);
            rng.set_stream(3 + pass);
            let mut copy = net.clone();
            let mut inj = Injector {
                noise,
                rng: &mut rng,
            };
            let (z, _) = copy.forward_train(self.x, Some(&mut inj));
            noisy += self.metric(&z);
            agreement += if self.labels.is_empty() {
                self.metric(&z)
            } else {
                let same = z
                    .rows()
                    .into_iter()
                    .zip(&clear_pred)
                    .filter(|(r, &c)| argmax(*r) == c)
                    .count();
                same as f64 / clear_pred.len().max(1) as f64
            };
        }
        let k = NOISY_PASSES as f64;
        Score {
            clear: metric,
            noisy: noisy / k,
            agreement: agreement / k,
        }
    }
}

/// What a judge measures: the clear score, the noisy score and the noisy predictions'
/// agreement with the clear ones (both equal to the clear score and 1 without noise).
#[derive(Clone, Copy, Debug)]
struct Score {
    clear: f64,
    noisy: f64,
    agreement: f64,
}

impl Score {
    /// Whether `self` is within `tolerance` of `base` on every count.
    fn holds(&self, base: &Score, tolerance: f64) -> bool {
        self.clear >= base.clear - tolerance
            && self.noisy >= base.noisy - tolerance
            && self.agreement >= base.agreement - tolerance
    }
}

impl SparseQuantNeuralNetwork {
    /// Hidden neurons that cost a bootstrap as the network stands: alive, with a non-zero
    /// integer weight in their row, and read by a non-zero integer weight of a live neuron of
    /// the next layer. `(layer, neuron)`.
    pub(super) fn costly_neurons(&self) -> Vec<(usize, usize)> {
        let n = self.layers.len();
        let ints: Vec<_> = (0..n).map(|l| self.quantized_weights(l).0).collect();
        let mut out = Vec::new();
        for l in 0..n.saturating_sub(1) {
            let layer = &self.layers[l];
            let next = &self.layers[l + 1];
            for j in 0..layer.out_dim() {
                let reads = ints[l].row(j).iter().any(|&w| w != 0);
                let read = (0..next.out_dim()).any(|r| next.alive[r] && ints[l + 1][[r, j]] != 0);
                if layer.alive[j] && reads && read {
                    out.push((l, j));
                }
            }
        }
        out
    }

    /// Kills hidden neuron `j` of layer `l`: row, bias and its column in the next layer
    /// become 0 and masked.
    pub(super) fn kill_neuron(&mut self, l: usize, j: usize) {
        let layer = &mut self.layers[l];
        let n = layer.in_dim();
        layer.alive.set(j, false);
        for k in 0..n {
            layer.mask.set(j * n + k, false);
            layer.w[[j, k]] = 0.0;
        }
        layer.b[j] = 0.0;
        let next = &mut self.layers[l + 1];
        let m = next.in_dim();
        for r in 0..next.out_dim() {
            next.mask.set(r * m + j, false);
            next.w[[r, j]] = 0.0;
        }
    }

    /// How much neuron `(l, j)` seems to matter, for the order of the trials: the mean
    /// absolute activation on the rows times the L2 norm of its outgoing weights.
    fn salience(&self, acts: &[Array2<f64>], l: usize, j: usize) -> f64 {
        let a = acts[l].column(j).iter().map(|v| v.abs()).sum::<f64>() / acts[l].nrows() as f64;
        let out = self.layers[l + 1]
            .w
            .column(j)
            .iter()
            .map(|v| v * v)
            .sum::<f64>()
            .sqrt();
        a * out
    }

    /// Removes every costly hidden neuron whose removal keeps the judge's scores (clear; with
    /// read noise also noisy, and the noisy predictions' agreement with the clear ones) at
    /// least those with all neurons minus `tolerance`, trying the least salient first (each trial is
    /// one forward pass over the judge's rows). Returns how many were removed.
    pub(super) fn remove_idle_neurons(&mut self, judge: &Judge, tolerance: f64) -> usize {
        let base = judge.score(self);
        let acts = self.forward_all(judge.x);
        let mut order: Vec<((usize, usize), f64)> = self
            .costly_neurons()
            .into_iter()
            .map(|(l, j)| ((l, j), self.salience(&acts, l, j)))
            .collect();
        order.sort_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)));
        let mut removed = 0;
        for ((l, j), _) in order {
            let alive_in_layer = self.layers[l].alive.count_ones();
            if alive_in_layer <= 1 || !self.layers[l].alive[j] {
                continue;
            }
            let saved = (self.layers[l].clone(), self.layers[l + 1].clone());
            self.kill_neuron(l, j);
            if judge.score(self).holds(&base, tolerance) {
                removed += 1;
            } else {
                self.layers[l] = saved.0;
                self.layers[l + 1] = saved.1;
            }
        }
        removed
    }
}
