//! Feature scaling fitted on training data: per-feature standardization.

use ndarray::Array2;
use serde::{Deserialize, Serialize};

/// Per-feature standardization `(x - mean) / std`, fitted on training data.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Standardizer {
    /// Per-feature mean.
    pub mean: Vec<f64>,
    /// Per-feature population standard deviation (1.0 for constant features).
    pub std: Vec<f64>,
}

impl Standardizer {
    /// Fits means and population standard deviations (ddof 0, like scikit-learn's
    /// `StandardScaler`). A feature whose std is zero (up to rounding: `<= 10 eps * max(|mean|,
    /// 1)`) or not finite gets std 1.0; with no rows every mean is 0 and every std 1.
    pub fn fit(x: &Array2<f64>) -> Standardizer {
        let n = x.nrows();
        let mut mean = Vec::with_capacity(x.ncols());
        let mut std = Vec::with_capacity(x.ncols());
        for col in x.columns() {
            if n == 0 {
                mean.push(0.0);
                std.push(1.0);
                continue;
            }
            let m = col.sum() / n as f64;
            let var = col.iter().map(|v| (v - m) * (v - m)).sum::<f64>() / n as f64;
            let s = var.sqrt();
            let tiny = 10.0 * f64::EPSILON * m.abs().max(1.0);
            mean.push(m);
            std.push(if s.is_finite() && s > tiny { s } else { 1.0 });
        }
        Standardizer { mean, std }
    }

    /// `(x - mean) / std`, column by column.
    ///
    /// # Panics
    /// If `x` has a different number of columns than the data it was fitted on.
    pub fn transform(&self, x: &Array2<f64>) -> Array2<f64> {
        assert_eq!(
            x.ncols(),
            self.mean.len(),
            "Standardizer fitted on {} features, given {}",
            self.mean.len(),
            x.ncols()
        );
        let mut z = x.clone();
        for (j, mut col) in z.columns_mut().into_iter().enumerate() {
            let (m, s) = (self.mean[j], self.std[j]);
            col.mapv_inplace(|v| (v - m) / s);
        }
        z
    }
}
