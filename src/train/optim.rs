//! The optimizer of training: Adam / AdamW over the module's weights, biases and learned
//! quantizer steps, and the learning-rate schedule.

use ndarray::{Array1, Array2};
use serde::{Deserialize, Serialize};

use super::network::{Grads, SparseQuantNeuralNetwork};

/// How the learning rate evolves over a training run (per mini-batch step).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LrSchedule {
    /// `lr` throughout (Concrete ML's).
    #[default]
    Constant,
    /// Cosine decay from `lr` at the first step to 0 after the last:
    /// `lr (1 + cos(pi t)) / 2`, `t` the fraction of steps done. The default of sqnn's
    /// presets.
    Cosine,
}

impl LrSchedule {
    /// The learning rate after the fraction `done` (in `[0, 1]`) of all mini-batch steps, for
    /// a base rate `lr`.
    pub fn at(self, lr: f64, done: f64) -> f64 {
        match self {
            LrSchedule::Constant => lr,
            LrSchedule::Cosine => lr * 0.5 * (1.0 + (std::f64::consts::PI * done).cos()),
        }
    }
}

/// Adam (PyTorch's defaults: betas 0.9 / 0.999, eps 1e-8), with optional decoupled weight decay
/// of the weights (AdamW: `w -= lr * weight_decay * w` before the Adam update).
pub(super) struct Adam {
    lr: f64,
    /// Decoupled weight decay (AdamW) of the weights; 0 = plain Adam.
    pub(super) weight_decay: f64,
    t: i32,
    mw: Vec<Array2<f64>>,
    vw: Vec<Array2<f64>>,
    mb: Vec<Array1<f64>>,
    vb: Vec<Array1<f64>>,
    mt: Vec<(f64, f64)>,
}

impl Adam {
    pub(super) fn new(net: &SparseQuantNeuralNetwork, lr: f64) -> Adam {
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

    pub(super) fn set_lr(&mut self, lr: f64) {
        self.lr = lr;
    }

    /// One update; masked weights (and removed neurons' biases) stay exactly 0.
    pub(super) fn step(&mut self, net: &mut SparseQuantNeuralNetwork, g: &Grads) {
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
