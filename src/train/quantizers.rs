//! The quantizers of training: range observers (running min / max), the activation and weight
//! quantizers built from them, the batch-range measures of [`ActRange`] and fake quantization
//! with its straight-through mask.

use ndarray::Array2;

use super::{ActRange, ModuleConfig};
use crate::train::quantize::ActQuantizer;

/// Momentum of the activation range's exponential moving average (PyTorch's
/// `MovingAverageMinMaxObserver` uses 0.01; 0.1 adapts faster to the short trainings here).
const EMA_MOMENTUM: f64 = 0.1;

/// Running min / max of one layer's input.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct RangeObserver {
    pub(super) min: f64,
    pub(super) max: f64,
    pub(super) seen: bool,
}

impl RangeObserver {
    pub(super) fn new() -> Self {
        RangeObserver {
            min: 0.0,
            max: 0.0,
            seen: false,
        }
    }

    pub(super) fn update(&mut self, bmin: f64, bmax: f64) {
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

/// `2^ceil(log2 x)`, the smallest power of two `>= x` (1 for non-positive or non-finite `x`).
pub(super) fn pow2_ceil(x: f64) -> f64 {
    if !(x.is_finite() && x > 0.0) {
        return 1.0;
    }
    let mut s = 2f64.powi(crate::cast::float_exponent(x.log2().ceil()));
    if s < x {
        s *= 2.0;
    }
    if s / 2.0 >= x {
        s /= 2.0;
    }
    s
}

/// The activation quantizer of `a` bits for an observed input range `[min, max]`
/// ([`ModuleConfig::input_bits`] of its layer).
pub(super) fn act_quantizer(min: f64, max: f64, cfg: &ModuleConfig, a: u32) -> ActQuantizer {
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
        let z = crate::cast::round_clamp(-lo_f / scale, 0, n);
        ActQuantizer {
            scale,
            lo: -z,
            hi: n - z,
        }
    }
}

/// `(qmin, qmax, divisor)` of the symmetric weight quantizer.
pub(super) fn weight_range(cfg: &ModuleConfig) -> (i64, i64, f64) {
    let half = 1i64 << (cfg.n_w_bits - 1);
    if cfg.quant_narrow {
        (-(half - 1), half - 1, (half - 1) as f64)
    } else {
        (-half, half - 1, half as f64)
    }
}

pub(super) fn min_max(a: &Array2<f64>) -> (f64, f64) {
    a.iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| {
            (lo.min(v), hi.max(v))
        })
}

/// The range `[r_lo * min, r_hi * max]` (both ratios on a grid from 1 down to 0.2) whose
/// quantizer has the smallest squared error on (a strided sample of at most 4096 of) the values
/// of `a`.
fn mse_range(a: &Array2<f64>, cfg: &ModuleConfig, bits: u32) -> (f64, f64) {
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
            let q = act_quantizer(lo, hi, cfg, bits);
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

/// The range an observer records for one batch (of an input quantizer of `bits` bits).
pub(super) fn batch_range(a: &Array2<f64>, cfg: &ModuleConfig, bits: u32) -> (f64, f64) {
    match cfg.act_range {
        ActRange::MinMax | ActRange::Learned => min_max(a),
        ActRange::Percentile(p) => percentile_range(a, p),
        ActRange::Mse => mse_range(a, cfg, bits),
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
    let k_hi = crate::cast::clamp_count(((pct / 100.0) * n as f64).ceil(), n).max(1) - 1;
    let k_lo = (n - 1) - k_hi;
    let hi = *v.select_nth_unstable_by(k_hi, f64::total_cmp).1;
    let lo = *v.select_nth_unstable_by(k_lo, f64::total_cmp).1;
    (lo, hi)
}

/// Fake-quantizes `a` with `q` (exactly `q.dequantize(q.quantize(v))`), and when asked the
/// straight-through mask (1 where the value was not clipped).
pub(super) fn fake_quant(
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::ModuleConfig;

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
        let q = act_quantizer(-1.0, 2.0, &c, c.n_a_bits);
        assert_eq!((q.lo, q.hi), (-4, 3));
        assert!((q.scale - 0.5).abs() < 1e-15);
        c.quant_narrow = true;
        let q = act_quantizer(-1.0, 2.0, &c, c.n_a_bits);
        assert_eq!((q.lo, q.hi), (-3, 3));
        c.quant_narrow = false;
        c.quant_signed = false;
        let q = act_quantizer(0.0, 7.0, &c, c.n_a_bits);
        assert_eq!((q.lo, q.hi), (0, 7));
        assert!((q.scale - 1.0).abs() < 1e-15);
        let q = act_quantizer(-2.0, 5.0, &c, c.n_a_bits);
        assert_eq!(q.hi - q.lo, 7);
        assert_eq!(q.lo, -2);
        c.power_of_two_scaling = true;
        let q = act_quantizer(-2.0, 5.5, &c, c.n_a_bits);
        assert_eq!(q.scale, 2.0);
        assert_eq!(q.hi - q.lo, 7);
    }
}
