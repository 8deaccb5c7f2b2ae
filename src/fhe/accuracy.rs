//! The choice by accuracy: a candidate plan's read noise simulated in clear on calibration rows
//! (the training split, never the test rows) with several noise seeds, against the clear
//! backend's predictions on the same rows.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::plan::FhePlan;
use super::reads::sigma_units_by_node;
use crate::analyze::Analyzed;
use crate::data::Task;
use crate::error::{Error, Result};
use crate::execute::ClearBackend;

/// Calibration rows and the tolerance a candidate's simulated predictions must keep.
///
/// A plan is accepted when, pooled over the noise seeds, at least `1 - tolerance` of the rows
/// get the clear backend's prediction (classification), or the simulated R² is at most
/// `tolerance` below the clear one (regression).
#[derive(Clone, Debug)]
pub struct Calibration {
    analyzed: Arc<Analyzed>,
    inputs: Vec<Vec<i64>>,
    targets: Vec<f64>,
    clear_preds: Vec<f64>,
    clear_metric: f64,
    /// Noise seeds simulated per candidate (seeds `1..=seeds`).
    pub seeds: u64,
    /// Share of rows whose prediction may change (classification), or R² that may be lost
    /// (regression).
    pub tolerance: f64,
}

impl PartialEq for Calibration {
    fn eq(&self, other: &Calibration) -> bool {
        self.analyzed.graph() == other.analyzed.graph()
            && self.inputs == other.inputs
            && self.targets == other.targets
            && self.seeds == other.seeds
            && self.tolerance == other.tolerance
    }
}

/// What a candidate plan's reads do to the predictions on the calibration rows.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Simulated {
    /// Rows simulated (per seed).
    pub rows: usize,
    /// Noise seeds.
    pub seeds: u64,
    /// Share of simulated rows (over all seeds) with the clear backend's prediction.
    pub agreement: f64,
    /// Accuracy (classification) or R² (regression) of the simulated predictions, mean over
    /// the seeds.
    pub metric: f64,
    /// The same for the clear backend.
    pub clear_metric: f64,
    /// Whether `metric` is R² (regression) rather than accuracy.
    pub regression: bool,
}

impl Simulated {
    /// What the tolerance bounds: the share of changed predictions (classification) or the R²
    /// lost (regression).
    pub fn loss(&self) -> f64 {
        if self.regression {
            self.clear_metric - self.metric
        } else {
            1.0 - self.agreement
        }
    }

    /// One line for a candidate: agreement and metric against clear.
    pub fn describe(&self) -> String {
        let name = if self.regression { "R²" } else { "accuracy" };
        format!(
            "{:.1} % same prediction, {name} {:.3} (clear {:.3})",
            100.0 * self.agreement,
            self.metric,
            self.clear_metric
        )
    }
}

impl Calibration {
    /// The default share of changed predictions or of R² lost.
    pub const DEFAULT_TOLERANCE: f64 = 0.005;
    /// The fewest noise seeds the default takes ([`default_seeds`](Self::default_seeds)).
    pub const DEFAULT_SEEDS: u64 = 4;
    /// Row × seed simulations the default number of seeds reaches at least: about 4,000
    /// estimate a share of changed predictions near the 0.5 % tolerance to about ±0.1 point
    /// (4 seeds on iris's 112 training rows, 448 simulations, saw 0.4 % where 1,000 seeds
    /// measured 1.2 %).
    pub const DEFAULT_SIMULATIONS: u64 = 4000;

    /// The default number of noise seeds for `rows` calibration rows: enough for
    /// [`DEFAULT_SIMULATIONS`](Self::DEFAULT_SIMULATIONS), at least
    /// [`DEFAULT_SEEDS`](Self::DEFAULT_SEEDS) (36 seeds for 112 rows, 4 for 1,000).
    pub fn default_seeds(rows: usize) -> u64 {
        let rows = u64::try_from(rows.max(1)).unwrap_or(u64::MAX);
        Self::DEFAULT_SIMULATIONS
            .div_ceil(rows)
            .clamp(Self::DEFAULT_SEEDS, Self::MAX_SEEDS)
    }
    /// At most this many rows are simulated (evenly spaced over the given ones), so that the
    /// choice stays quick on large training splits.
    pub const MAX_ROWS: usize = 1000;

    /// Calibration on quantized `inputs` (the training split) with their `targets`.
    pub fn new(an: &Analyzed, inputs: &[Vec<i64>], targets: &[f64]) -> Result<Calibration> {
        if inputs.is_empty() || inputs.len() != targets.len() {
            return Err(Error::Input(format!(
                "calibration needs rows with one target each ({} rows, {} targets)",
                inputs.len(),
                targets.len()
            )));
        }
        let step = inputs.len().div_ceil(Self::MAX_ROWS);
        let inputs: Vec<Vec<i64>> = inputs.iter().step_by(step).cloned().collect();
        let targets: Vec<f64> = targets.iter().step_by(step).copied().collect();
        let seeds = Self::default_seeds(inputs.len());
        let outs = ClearBackend::default().evaluate(an, &inputs)?;
        let g = an.graph();
        let clear_preds: Vec<f64> = outs.iter().map(|o| g.predict(o)).collect();
        let clear_metric = metric(an, &clear_preds, &targets);
        Ok(Calibration {
            analyzed: Arc::new(an.clone()),
            inputs,
            targets,
            clear_preds,
            clear_metric,
            seeds,
            tolerance: Self::DEFAULT_TOLERANCE,
        })
    }

    /// With this tolerance (in `[0, 1)`).
    pub fn tolerance(self, tolerance: f64) -> Result<Calibration> {
        if !(0.0..1.0).contains(&tolerance) {
            return Err(Error::param(
                "tolerance",
                format!("{tolerance} must be in [0, 1), e.g. 0.005 for 0.5 %"),
            ));
        }
        Ok(Calibration { tolerance, ..self })
    }

    /// The most noise seeds [`seeds`](Self::seeds) accepts.
    pub const MAX_SEEDS: u64 = 100_000;

    /// With this many noise seeds (1 to [`MAX_SEEDS`](Self::MAX_SEEDS)). The estimate's
    /// precision grows with rows × seeds: a few borderline rows that flip in a tenth of the
    /// seeds decide whether a circuit is near the tolerance, and 4 seeds on 100 rows may see
    /// a third of the true share of changed predictions. Simulation in clear is cheap (µs a
    /// row on small circuits), so thousands of rows × seeds cost well under a second there.
    pub fn seeds(self, seeds: u64) -> Result<Calibration> {
        if !(1..=Self::MAX_SEEDS).contains(&seeds) {
            return Err(Error::param(
                "calibration_seeds",
                format!(
                    "{seeds} must be 1 to {}, e.g. {} (the default for these {} rows) or 100 \
                     for a more precise estimate",
                    Self::MAX_SEEDS,
                    Self::default_seeds(self.rows()),
                    self.rows()
                ),
            ));
        }
        Ok(Calibration { seeds, ..self })
    }

    /// Rows simulated per seed.
    pub fn rows(&self) -> usize {
        self.inputs.len()
    }

    /// Simulates `plan`'s reads on the rows with each seed.
    pub fn simulate(&self, plan: &FhePlan) -> Result<Simulated> {
        let mut runs = Vec::new();
        self.simulate_seeds(plan, 1..=self.seeds.max(1), &mut runs)?;
        Ok(self.pool(&runs))
    }

    /// Row × seed simulations [`simulate_to_decide`](Self::simulate_to_decide) runs at most
    /// (32 times [`DEFAULT_SIMULATIONS`](Self::DEFAULT_SIMULATIONS): on iris's 112 training
    /// rows at most 1,142 seeds, so the doublings of its 36 stop at 576; 128 on 1,000 rows).
    pub const MAX_SIMULATIONS: u64 = 128_000;

    /// The choice's estimate: [`simulate`](Self::simulate) with [`seeds`](Self::seeds) seeds,
    /// then, while the pooled loss ([`Simulated::loss`]) is within two standard errors of the
    /// tolerance (the standard error of the mean of the seeds' own losses), with twice as many
    /// seeds (seeds `1..=2^k·seeds`), until it is not or the next doubling would pass
    /// [`MAX_SIMULATIONS`](Self::MAX_SIMULATIONS) row × seed simulations (or
    /// [`MAX_SEEDS`](Self::MAX_SEEDS)). A set far from the tolerance costs the given seeds
    /// only; one at its edge is judged on enough seeds to tell (iris's tuned point: 0.50 % of
    /// its predictions changed over 36 seeds, 0.573 % over 1,000). Deterministic: the seeds
    /// are fixed.
    pub fn simulate_to_decide(&self, plan: &FhePlan) -> Result<Simulated> {
        let rows = u64::try_from(self.rows().max(1)).unwrap_or(u64::MAX);
        let cap = (Self::MAX_SIMULATIONS / rows).clamp(self.seeds.max(1), Self::MAX_SEEDS);
        let mut runs = Vec::new();
        let mut done = self.seeds.max(1);
        self.simulate_seeds(plan, 1..=done, &mut runs)?;
        while done * 2 <= cap && self.near_tolerance(&runs) {
            self.simulate_seeds(plan, done + 1..=done * 2, &mut runs)?;
            done *= 2;
        }
        Ok(self.pool(&runs))
    }

    /// Whether the mean of the seeds' losses is within two standard errors of the tolerance.
    fn near_tolerance(&self, runs: &[SeedRun]) -> bool {
        let n = runs.len();
        if n < 2 {
            return false;
        }
        // Each seed's own loss ([`Simulated::loss`] of that seed alone).
        let losses: Vec<f64> = runs
            .iter()
            .map(|r| self.pool(std::slice::from_ref(r)).loss())
            .collect();
        let mean = losses.iter().sum::<f64>() / n as f64;
        let var = losses.iter().map(|l| (l - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
        (mean - self.tolerance).abs() < 2.0 * (var / n as f64).sqrt()
    }

    fn regression(&self) -> bool {
        matches!(self.analyzed.graph().meta.task, Task::Regress)
    }

    /// Appends one [`SeedRun`] per seed of `seeds` to `runs`.
    fn simulate_seeds(
        &self,
        plan: &FhePlan,
        seeds: std::ops::RangeInclusive<u64>,
        runs: &mut Vec<SeedRun>,
    ) -> Result<()> {
        let an = &*self.analyzed;
        let g = an.graph();
        let sigma = sigma_units_by_node(plan, g);
        for seed in seeds {
            let (outs, _) = ClearBackend::default().simulate(an, &self.inputs, &sigma, seed)?;
            let preds: Vec<f64> = outs.iter().map(|o| g.predict(o)).collect();
            let same = preds
                .iter()
                .zip(&self.clear_preds)
                .filter(|(a, b)| a == b)
                .count();
            let metric = metric(an, &preds, &self.targets);
            runs.push(SeedRun { same, metric });
        }
        Ok(())
    }

    /// The seeds' runs pooled: agreement over all rows × seeds, metric averaged over seeds.
    fn pool(&self, runs: &[SeedRun]) -> Simulated {
        let seeds = runs.len().max(1);
        let same: usize = runs.iter().map(|r| r.same).sum();
        let metric: f64 = runs.iter().map(|r| r.metric).sum();
        Simulated {
            rows: self.inputs.len(),
            seeds: u64::try_from(seeds).unwrap_or(u64::MAX),
            agreement: same as f64 / (self.inputs.len() as f64 * seeds as f64),
            metric: metric / seeds as f64,
            clear_metric: self.clear_metric,
            regression: self.regression(),
        }
    }

    /// Whether `s` is within the tolerance.
    pub fn accepts(&self, s: &Simulated) -> bool {
        s.loss() <= self.tolerance
    }
}

/// One noise seed's simulation: rows with the clear prediction, and the metric.
struct SeedRun {
    same: usize,
    metric: f64,
}

fn metric(an: &Analyzed, preds: &[f64], y: &[f64]) -> f64 {
    match an.graph().meta.task {
        Task::Classify { .. } => crate::train::accuracy(preds, y),
        Task::Regress => crate::train::r2(preds, y),
    }
}
