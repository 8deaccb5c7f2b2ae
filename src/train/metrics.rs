//! Scores of predictions against targets: [`accuracy`], [`r2`], and the [`argmax`] that turns
//! logits into a class. The crate's only definitions of these.

use ndarray::{Array2, ArrayView1};

/// The index of the largest value (ties go to the lower index; 0 for an empty row).
///
/// ```
/// use ndarray::array;
/// assert_eq!(sqnn::train::argmax(array![0.1, 2.0, 2.0, -1.0].view()), 1);
/// ```
pub fn argmax(row: ArrayView1<'_, f64>) -> usize {
    let mut best = 0;
    for (k, &v) in row.iter().enumerate() {
        if v > row[best] {
            best = k;
        }
    }
    best
}

/// The fraction of predictions equal to their target (0 for no targets).
///
/// ```
/// assert_eq!(sqnn::train::accuracy(&[0, 1, 2, 2], &[0, 1, 1, 2]), 0.75);
/// ```
pub fn accuracy<T: PartialEq>(pred: &[T], y: &[T]) -> f64 {
    let hits = pred.iter().zip(y).filter(|(a, b)| a == b).count();
    hits as f64 / y.len().max(1) as f64
}

/// The accuracy of the argmax of each row of logits `z` against class indices `labels`.
pub(crate) fn logits_accuracy(z: &Array2<f64>, labels: &[usize]) -> f64 {
    let pred: Vec<usize> = z.rows().into_iter().map(argmax).collect();
    accuracy(&pred, labels)
}

/// The coefficient of determination R² of predictions against targets: `1 - SS_res /
/// SS_tot` (1 for an exact fit of constant targets, 0 for an inexact one).
///
/// ```
/// assert_eq!(sqnn::train::r2(&[1.0, 2.0, 3.0], &[1.0, 2.0, 3.0]), 1.0);
/// assert_eq!(sqnn::train::r2(&[2.0, 2.0, 2.0], &[1.0, 2.0, 3.0]), 0.0);
/// ```
pub fn r2(pred: &[f64], y: &[f64]) -> f64 {
    let n = y.len().max(1) as f64;
    let mean = y.iter().sum::<f64>() / n;
    let ss_tot: f64 = y.iter().map(|v| (v - mean) * (v - mean)).sum();
    let ss_res: f64 = pred.iter().zip(y).map(|(p, v)| (p - v) * (p - v)).sum();
    if ss_tot == 0.0 {
        return if ss_res == 0.0 { 1.0 } else { 0.0 };
    }
    1.0 - ss_res / ss_tot
}
