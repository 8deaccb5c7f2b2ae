//! Shift augmentation for image rows ([`ImageShifts`]): every epoch each training row is seen
//! shifted by a few pixels, drawn anew, so that a small network learns where a stroke may be
//! rather than where it was. Only training batches change; validation rows, the kept epoch's
//! choice and the exported model see the rows as given.

use std::str::FromStr;

use ndarray::Array2;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::data::Standardizer;
use crate::error::{Error, Result};

/// The layout of image rows (row-major, `height` rows of `width` pixels, one feature per pixel,
/// as MNIST's `p0..p783` are 28 × 28) and the largest shift of the augmentation.
///
/// ```
/// use sqnn::train::ImageShifts;
/// let s: ImageShifts = "28x28".parse().unwrap();
/// assert_eq!((s.width, s.height, s.max_shift), (28, 28, 1));
/// assert_eq!("8x4:2".parse::<ImageShifts>().unwrap().max_shift, 2);
/// assert!("28".parse::<ImageShifts>().is_err());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ImageShifts {
    /// Pixels per image row.
    pub width: usize,
    /// Image rows.
    pub height: usize,
    /// Largest shift along each axis, in pixels: every training row, every epoch, moves by
    /// `(dx, dy)` drawn uniformly from `-max_shift..=max_shift` each (1: nine positions, one
    /// of them the original). Pixels shifted in from outside take the column's smallest
    /// training value (the background), and every pixel is clipped to its column's training
    /// range (a border pixel blank in every training row stays blank).
    pub max_shift: usize,
}

impl ImageShifts {
    /// Checks the layout against the data's feature count: `width * height` must equal it and
    /// the shift must leave part of the image in place.
    pub fn validate(&self, n_features: usize) -> Result<()> {
        if self.width == 0
            || self.height == 0
            || self.width.checked_mul(self.height) != Some(n_features)
        {
            return Err(Error::param(
                "shift_augment",
                format!(
                    "images of {}x{} pixels do not match the data's {n_features} features; give \
                     WIDTHxHEIGHT with WIDTH * HEIGHT = {n_features} (28x28 for MNIST)",
                    self.width, self.height
                ),
            ));
        }
        if self.max_shift == 0 || self.max_shift >= self.width.min(self.height) {
            return Err(Error::param(
                "shift_augment",
                format!(
                    "a largest shift of {} pixels; use 1 to {} (less than the image's side)",
                    self.max_shift,
                    self.width.min(self.height).saturating_sub(1)
                ),
            ));
        }
        Ok(())
    }

    /// `row` (raw features) shifted by `(dx, dy)` pixels into `out`, with `background` where
    /// nothing is shifted in.
    fn shift(&self, row: &[f64], background: &[f64], dx: isize, dy: isize, out: &mut [f64]) {
        let (w, h) = (self.width, self.height);
        for y in 0..h {
            for x in 0..w {
                let dst = y * w + x;
                out[dst] = match (x.checked_add_signed(-dx), y.checked_add_signed(-dy)) {
                    (Some(sx), Some(sy)) if sx < w && sy < h => row[sy * w + sx],
                    _ => background[dst],
                };
            }
        }
    }
}

impl std::fmt::Display for ImageShifts {
    /// `WIDTHxHEIGHT:SHIFT`, what [`FromStr`] parses.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}x{}:{}", self.width, self.height, self.max_shift)
    }
}

impl FromStr for ImageShifts {
    type Err = Error;

    /// Parses `WIDTHxHEIGHT` (largest shift 1) or `WIDTHxHEIGHT:SHIFT`.
    fn from_str(s: &str) -> Result<ImageShifts> {
        let (dims, shift) = s.split_once(':').unwrap_or((s, "1"));
        let parsed = dims.split_once(['x', 'X']).and_then(|(w, h)| {
            Some(ImageShifts {
                width: w.trim().parse().ok()?,
                height: h.trim().parse().ok()?,
                max_shift: shift.trim().parse().ok()?,
            })
        });
        parsed.ok_or_else(|| {
            Error::param(
                "shift_augment",
                format!("{s:?}: give WIDTHxHEIGHT or WIDTHxHEIGHT:SHIFT, e.g. 28x28 or 28x28:2"),
            )
        })
    }
}

/// The training rows of one run as given (before scaling), and the draws of their shifts.
pub(super) struct Augmenter {
    shifts: ImageShifts,
    /// `shifts.max_shift`, signed.
    max_shift: isize,
    raw: Array2<f64>,
    background: Vec<f64>,
    /// Each feature's smallest and largest training value: a shifted pixel is clipped to its
    /// column's range, so that a column constant in training (an always blank border pixel,
    /// left unscaled) does not receive values far outside what the input quantizer sees.
    range: Vec<(f64, f64)>,
    scaling: Standardizer,
    rng: ChaCha8Rng,
}

impl Augmenter {
    /// Keeps the raw training rows `raw`, the run's feature scaling and the stream of shifts
    /// (after checking `shifts` against the rows' features).
    pub(super) fn new(
        shifts: ImageShifts,
        raw: Array2<f64>,
        scaling: Standardizer,
        rng: ChaCha8Rng,
    ) -> Result<Augmenter> {
        shifts.validate(raw.ncols())?;
        let max_shift = isize::try_from(shifts.max_shift).map_err(|_| {
            Error::param("shift_augment", "the largest shift does not fit an isize")
        })?;
        let range: Vec<(f64, f64)> = raw
            .columns()
            .into_iter()
            .map(|c| {
                let lo = c.iter().copied().fold(f64::INFINITY, f64::min);
                let hi = c.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                if lo.is_finite() && hi.is_finite() {
                    (lo, hi)
                } else {
                    (0.0, 0.0)
                }
            })
            .collect();
        let background = range.iter().map(|r| r.0).collect();
        Ok(Augmenter {
            shifts,
            max_shift,
            raw,
            background,
            range,
            scaling,
            rng,
        })
    }

    /// The scaled batch of training rows `rows`, each shifted by a fresh draw (every pixel
    /// clipped to its column's training range).
    pub(super) fn batch(&mut self, rows: &[usize]) -> Array2<f64> {
        let raw = self.batch_raw(rows);
        self.scale(&raw)
    }

    /// The run's feature scaling of a raw batch from [`batch_raw`](Self::batch_raw).
    pub(super) fn scale(&self, raw: &Array2<f64>) -> Array2<f64> {
        self.scaling.transform(raw)
    }

    /// [`batch`](Self::batch) before the feature scaling (raw pixel values, shifted and
    /// clipped), the rows a teacher reads.
    pub(super) fn batch_raw(&mut self, rows: &[usize]) -> Array2<f64> {
        // Every pixel of the batch is written by its shift: no copy of the rows first.
        let mut b = Array2::zeros((rows.len(), self.raw.ncols()));
        let s = self.max_shift;
        for (mut dst, &r) in b.rows_mut().into_iter().zip(rows) {
            let dx = self.rng.gen_range(-s..=s);
            let dy = self.rng.gen_range(-s..=s);
            let src = self.raw.row(r);
            let src = src.as_slice().expect("rows of a standard-layout array");
            let dst = dst
                .as_slice_mut()
                .expect("rows of a new standard-layout array");
            self.shifts.shift(src, &self.background, dx, dy, dst);
            for (d, (lo, hi)) in dst.iter_mut().zip(&self.range) {
                *d = d.clamp(*lo, *hi);
            }
        }
        b
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn shift_moves_pixels_and_fills_background() {
        let s = ImageShifts {
            width: 3,
            height: 2,
            max_shift: 1,
        };
        let row = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
        let bg = [0.0; 6];
        let mut out = [9.0; 6];
        s.shift(&row, &bg, 1, 0, &mut out);
        assert_eq!(out, [0.0, 1.0, 2.0, 0.0, 4.0, 5.0]);
        s.shift(&row, &bg, 0, -1, &mut out);
        assert_eq!(out, [4.0, 5.0, 6.0, 0.0, 0.0, 0.0]);
        s.shift(&row, &bg, 0, 0, &mut out);
        assert_eq!(out, row);
    }

    #[test]
    fn validate_names_the_layout() {
        let s: ImageShifts = "28x28".parse().unwrap();
        s.validate(784).unwrap();
        for bad in [
            s.validate(785),
            "3x2:2".parse::<ImageShifts>().unwrap().validate(6),
        ] {
            match bad {
                Err(Error::InvalidParameter { name, .. }) => assert_eq!(name, "shift_augment"),
                other => panic!("{other:?}"),
            }
        }
        assert!("28x".parse::<ImageShifts>().is_err());
        assert_eq!(s.to_string().parse::<ImageShifts>().unwrap(), s);
    }

    #[test]
    fn batches_are_seeded_shifts_of_the_rows() {
        let s = ImageShifts {
            width: 4,
            height: 4,
            max_shift: 1,
        };
        // Every column spans 0..=10 over the 11 rows, so no shifted pixel is clipped.
        let raw = Array2::from_shape_fn((11, 16), |(i, j)| ((i * 7 + j * 3) % 11) as f64);
        let scaling = Standardizer::fit(&raw);
        let make = || {
            Augmenter::new(
                s,
                raw.clone(),
                scaling.clone(),
                ChaCha8Rng::seed_from_u64(3),
            )
            .unwrap()
        };
        let (mut a, mut b) = (make(), make());
        let rows = [0, 2, 4, 7];
        assert_eq!(a.batch(&rows), b.batch(&rows));
        let (mut moved, mut kept) = (0, 0);
        for _ in 0..8 {
            let x = a.batch(&rows);
            for (k, &r) in rows.iter().enumerate() {
                let got: Vec<f64> = x
                    .row(k)
                    .iter()
                    .zip(scaling.mean.iter().zip(&scaling.std))
                    .map(|(v, (m, sd))| (v * sd + m).round())
                    .collect();
                let src = raw.row(r).to_vec();
                let mut out = vec![0.0; 16];
                let shifts: Vec<Vec<f64>> = (-1..=1)
                    .flat_map(|dy| (-1..=1).map(move |dx| (dx, dy)))
                    .map(|(dx, dy)| {
                        s.shift(&src, &[0.0; 16], dx, dy, &mut out);
                        out.clone()
                    })
                    .collect();
                assert!(
                    shifts.contains(&got),
                    "row {r}: {got:?} is no shift of {src:?}"
                );
                if got == src {
                    kept += 1;
                } else {
                    moved += 1;
                }
            }
        }
        assert!(moved > kept && kept > 0, "moved {moved}, kept {kept}");
    }
}
