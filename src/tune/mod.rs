//! The search for the accuracy-versus-latency trade-off: candidates of a [`SearchSpace`]
//! (layers, 1 being a linear model without bootstraps; hidden width, bit widths, accumulator
//! budget, pruning mode, noise-aware training, neuron removal) trained on validation
//! folds carved from the training rows (never the test rows), each judged per parameter set
//! by its simulated FHE score on the held-out rows and its plan's predicted latency; the
//! Pareto front of those points and the recommended one, the fastest within a stated
//! tolerance of the best score.
//!
//! [`tune`] runs the search within a wall-clock budget (checked between candidates) or a
//! number of candidates. The order is deterministic for a given seed and what was evaluated:
//! the base settings first (snapped into the space), then the untried neighbours of the
//! recommended point and of the most accurate point of the front, in turn, cheapest to train
//! first, then those of the rest of the front, then the rest of the space
//! ([`next_candidate`]). [`refit`] trains a point's settings on all the
//! training rows (what `sqnn tune --out` writes), [`assess`] scores it on other rows (the test
//! rows, as information after the choice) and [`render_svg`] draws the front.
//!
//! ```
//! use sqnn::tune::{tune, Config, Folds, SearchSpace, TuneRequest};
//! use sqnn::{Dataset, EstimatorParams, NoProgress, PruningMode, SplitSpec};
//!
//! let iris = Dataset::builtin("iris")?;
//! let train = iris.subset(&SplitSpec::Auto.split(&iris)?.train);
//! let mut req = TuneRequest::new(&train);
//! req.base.epochs = 5;
//! req.max_candidates = Some(2);
//! req.folds = Folds { k: 3, used: 1, repeats: 1, seed: 1 };
//! let report = tune(&train, &req, &NoProgress)?;
//! assert_eq!(report.evaluated.len(), 2);
//! let best = &report.points[report.recommended];
//! assert!(report.front.contains(&report.recommended) && best.latency_ms > 0.0);
//! # Ok::<(), sqnn::Error>(())
//! ```

mod front;
mod judge;
mod space;
mod svg;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

pub use front::{dominates, effective_tolerance, most_accurate, pareto_front, recommend};
pub use judge::{set_label, standard_error, Folds, Part, Point};
pub use space::{
    default_sets, neighbours, next_candidate, Config, SearchSpace, LINEAR_BITS, MAX_DEFAULT_WIDTH,
    REMOVE_NEURONS,
};
pub use svg::render_svg;

use crate::analyze::CheckedGraph;
use crate::data::{Dataset, Task};
use crate::error::{Error, Result};
use crate::fhe::{builtin_cores, CostProfile, FhePlan};
use crate::lower::Rounding;
use crate::progress::Progress;
use crate::train::quantize::Activation;
use crate::train::{EstimatorParams, Model};

/// What to search and how to judge it. [`TuneRequest::new`] gives the defaults for a training
/// split.
#[derive(Clone, Debug, PartialEq)]
pub struct TuneRequest {
    /// The training settings every candidate starts from; a candidate overrides its
    /// [`Config`] fields.
    pub base: EstimatorParams,
    /// The candidates and parameter sets.
    pub space: SearchSpace,
    /// Stop starting candidates once this much wall-clock time has passed (the one running
    /// finishes; at least one candidate is always judged). `None`: no time limit.
    pub budget: Option<Duration>,
    /// Judge at most this many candidates. `None`: no limit.
    pub max_candidates: Option<usize>,
    /// The validation folds (from the training rows).
    pub folds: Folds,
    /// Noise seeds of the simulated reads (seeds `1..=noise_seeds`).
    pub noise_seeds: u64,
    /// The recommended point is the fastest whose validation score is at most this much below
    /// the best (accuracy or R², absolute).
    pub tolerance: f64,
    /// Widen the tolerance to this many standard errors of the best point's validation score
    /// when that is more ([`effective_tolerance`]; 1 is the one-standard-error rule, 0 keeps
    /// `tolerance` alone).
    pub tolerance_se: f64,
    /// Failure target per bootstrap (log2) of every plan.
    pub target_log2_p_fail: f64,
    /// Cores the predicted latencies assume (with the built-in cost figures; a `profile`
    /// brings its own).
    pub cores: usize,
    /// This machine's measured costs (`sqnn calibrate`) in place of the built-in figures.
    pub profile: Option<CostProfile>,
    /// Rounding before tables when lowering (what `sqnn compile` is given).
    pub rounding: Rounding,
    /// Seed of the order among equally cheap candidates.
    pub seed: u64,
}

impl TuneRequest {
    /// The default tolerance of the recommended point: one percentage point of accuracy (or
    /// 0.01 of R²).
    pub const DEFAULT_TOLERANCE: f64 = 0.01;
    /// The default number of noise seeds.
    pub const DEFAULT_NOISE_SEEDS: u64 = 4;

    /// The weight decay of a regression's candidates ([`TuneRequest::new`]).
    pub const REGRESSION_WEIGHT_DECAY: f64 = 0.3;

    /// Defaults for the training rows `train`: sqnn's training settings, the space of
    /// [`SearchSpace::for_features`], [`Folds::auto`], 4 noise seeds, a tolerance of 0.01,
    /// 2^-40 per bootstrap, the built-in cost figures on their cores, `sqnn compile`'s default
    /// rounding, no budget.
    ///
    /// For a regression, two changes, both for the noise of an R² from few rows (diabetes:
    /// 331 training rows, a standard error of about 0.02 on the validation folds, as large
    /// as the differences between candidates). The candidates train with GELU and weight
    /// decay [`REGRESSION_WEIGHT_DECAY`](Self::REGRESSION_WEIGHT_DECAY): smoother and more
    /// regularized nets, which on diabetes score higher on the validation folds for 69 of 70
    /// nonlinear candidates and, over 80 random splits, lift the default shape from R² 0.450
    /// to 0.474 (a linear candidate has no activation and is unchanged). And the folds are
    /// cut [`Folds::SMALL_REPEATS`] times up to [`Folds::CROSS_VALIDATE_UP_TO`] rows: with
    /// one cut, diabetes's search recommended a 2-layer point that averages 0.440 over those
    /// splits, under the linear points' 0.471.
    pub fn new(train: &Dataset) -> TuneRequest {
        let mut base = EstimatorParams::default();
        let mut folds = Folds::auto(train.n_samples(), 42);
        if matches!(train.task, Task::Regress) {
            base.activation_function = Activation::Gelu;
            base.weight_decay = Self::REGRESSION_WEIGHT_DECAY;
            if folds.used > 1 {
                folds.repeats = folds.repeats.max(Folds::SMALL_REPEATS);
            }
        }
        TuneRequest {
            base,
            space: SearchSpace::for_features(train.n_features()),
            budget: None,
            max_candidates: None,
            folds,
            noise_seeds: Self::DEFAULT_NOISE_SEEDS,
            tolerance: Self::DEFAULT_TOLERANCE,
            tolerance_se: 0.0,
            target_log2_p_fail: -40.0,
            cores: builtin_cores(),
            profile: None,
            rounding: Rounding::DEFAULT,
            seed: 42,
        }
    }

    /// Checks what does not depend on the data.
    pub fn validate(&self) -> Result<()> {
        self.base.validate()?;
        if !(self.tolerance.is_finite() && (0.0..1.0).contains(&self.tolerance)) {
            return Err(Error::param(
                "tolerance",
                format!(
                    "{} is not a score difference in [0, 1): give e.g. 0.01 for one percentage \
                     point",
                    self.tolerance
                ),
            ));
        }
        if !(self.tolerance_se.is_finite() && self.tolerance_se >= 0.0) {
            return Err(Error::param(
                "tolerance_se",
                format!(
                    "{} is not a number of standard errors: give e.g. 1 (the one-standard-error \
                     rule) or 0",
                    self.tolerance_se
                ),
            ));
        }
        if self.noise_seeds == 0 {
            return Err(Error::param(
                "noise_seeds",
                "is 0; simulate at least 1 seed",
            ));
        }
        if self.cores == 0 {
            return Err(Error::param("cores", "is 0; give at least 1"));
        }
        if self.max_candidates == Some(0) {
            return Err(Error::param(
                "max_candidates",
                "is 0; judge at least 1 candidate",
            ));
        }
        let s = &self.space;
        let empty = [
            ("n_layers", s.n_layers.is_empty()),
            ("multipliers", s.multipliers.is_empty()),
            ("bits", s.bits.is_empty()),
            ("n_accum_bits", s.n_accum_bits.is_empty()),
            ("pruning", s.pruning.is_empty()),
            ("noise_aware", s.noise_aware.is_empty()),
            ("remove_neurons", s.remove_neurons.is_empty()),
            ("sets", s.sets.is_empty()),
        ];
        if let Some((name, _)) = empty.iter().find(|(_, e)| *e) {
            return Err(Error::param(
                name,
                "the search space has no value on this axis; give at least one",
            ));
        }
        // Every candidate's training settings, before any is trained.
        for c in s.configs() {
            c.apply(&self.base).validate()?;
        }
        Ok(())
    }
}

/// One candidate as judged.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Evaluated {
    /// Its settings.
    pub config: Config,
    /// Training and judging time, all folds (s).
    pub seconds: f64,
    /// Points it gave (one per parameter set that holds it).
    pub points: usize,
    /// Why it gave none, when it did not.
    pub skipped: Option<String>,
}

/// What a search found.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TuneReport {
    /// The data set's name.
    pub data: String,
    /// Training rows the folds were cut from.
    pub rows: usize,
    /// `accuracy` or `r2`.
    pub metric: String,
    /// The validation folds.
    pub folds: Folds,
    /// Noise seeds per point.
    pub noise_seeds: u64,
    /// The tolerance the recommendation applied: the request's, or its `tolerance_se`
    /// standard errors of the best point's score if more ([`effective_tolerance`]).
    pub tolerance: f64,
    /// The request's `tolerance_se`.
    #[serde(default)]
    pub tolerance_se: f64,
    /// The training settings every candidate started from (the request's `base`).
    #[serde(default)]
    pub base: EstimatorParams,
    /// Cores the latencies assume.
    pub cores: usize,
    /// Every candidate judged, in order.
    pub evaluated: Vec<Evaluated>,
    /// Every point (candidate × parameter set).
    pub points: Vec<Point>,
    /// The Pareto front: indices into `points`, fastest first.
    pub front: Vec<usize>,
    /// The recommended point (an index into `points`, on the front).
    pub recommended: usize,
    /// Candidates in the space.
    pub space_size: usize,
    /// Wall-clock time of the search (s).
    pub seconds: f64,
    /// Whether the budget (time or candidates) ended the search before the space did.
    pub stopped_early: bool,
}

impl TuneReport {
    /// The recommended point.
    pub fn recommended_point(&self) -> &Point {
        &self.points[self.recommended]
    }

    /// The best validation score on the front.
    pub fn best_metric(&self) -> f64 {
        self.front
            .iter()
            .map(|&i| self.points[i].metric)
            .fold(f64::NEG_INFINITY, f64::max)
    }
}

/// Searches `req.space` on the training rows `train` (see the module documentation),
/// reporting each candidate to `progress`.
///
/// Errors: an invalid request ([`Error::InvalidParameter`]), data that cannot be trained on
/// ([`Error::Input`]), or no candidate judged at all (every one skipped: [`Error::Input`]
/// with the reasons).
pub fn tune(train: &Dataset, req: &TuneRequest, progress: &dyn Progress) -> Result<TuneReport> {
    req.validate()?;
    let parts = req.folds.parts(train)?;
    let n_out = match &train.task {
        Task::Classify { classes } => classes.len(),
        Task::Regress => 1,
    };
    let cost = |c: &Config| c.cost(train.n_features(), n_out);
    let space_size = req.space.configs().len();
    let limit = req.max_candidates.unwrap_or(usize::MAX).min(space_size);
    let start = Instant::now();
    progress.start("tune", crate::cast::to_u64(limit));
    let mut tried = BTreeSet::new();
    let (mut evaluated, mut points) = (Vec::new(), Vec::<Point>::new());
    let mut next = Some(req.space.snap(&Config::of(&req.base)));
    let mut stopped_early = false;
    while let Some(config) = next {
        let out_of_time = req.budget.is_some_and(|b| start.elapsed() >= b);
        if !evaluated.is_empty() && (out_of_time || evaluated.len() >= limit) {
            stopped_early = true;
            break;
        }
        progress.message(&format!(
            "{}/{limit}: {} ({:.0} s)",
            evaluated.len() + 1,
            config.describe(),
            start.elapsed().as_secs_f64()
        ));
        let t = Instant::now();
        let judged = judge::judge(&config, train, &parts, req)?;
        let (n, skipped) = match judged {
            Ok(p) => {
                let n = p.len();
                points.extend(p);
                (n, None)
            }
            Err(reason) => (0, Some(reason)),
        };
        evaluated.push(Evaluated {
            config,
            seconds: t.elapsed().as_secs_f64(),
            points: n,
            skipped,
        });
        tried.insert(config);
        progress.advance(1);
        let front = pareto_front(&points);
        let tolerance = effective_tolerance(&points, &front, req.tolerance, req.tolerance_se);
        // Alternate between the two ends of the front that decide the recommendation.
        let climb = evaluated.len() % 2 == 0;
        let order = front_order(&points, &front, tolerance, climb);
        next = next_candidate(&req.space, &tried, &order, &cost, req.seed);
    }
    progress.finish();
    let front = pareto_front(&points);
    let tolerance = effective_tolerance(&points, &front, req.tolerance, req.tolerance_se);
    let Some(recommended) = recommend(&points, &front, tolerance) else {
        let reasons: Vec<String> = evaluated
            .iter()
            .filter_map(|e| {
                e.skipped
                    .as_ref()
                    .map(|r| format!("{}: {r}", e.config.describe()))
            })
            .collect();
        return Err(Error::Input(format!(
            "no candidate could be judged on {}: {}",
            train.name,
            reasons.join("; ")
        )));
    };
    Ok(TuneReport {
        data: train.name.clone(),
        rows: train.n_samples(),
        metric: match train.task {
            Task::Classify { .. } => "accuracy".into(),
            Task::Regress => "r2".into(),
        },
        folds: req.folds,
        noise_seeds: req.noise_seeds,
        tolerance,
        tolerance_se: req.tolerance_se,
        base: req.base.clone(),
        cores: req.profile.as_ref().map_or(req.cores, |p| p.cores),
        evaluated,
        points,
        front,
        recommended,
        space_size,
        seconds: start.elapsed().as_secs_f64(),
        stopped_early,
    })
}

/// The front's configurations in the order in which their neighbours are tried (each once):
/// the recommended one first, then the others fastest first; with `climb`, the most accurate
/// one first. The search alternates the two because both ends decide the recommendation: a
/// cheaper neighbour of the recommended point may score within the tolerance, and a better
/// neighbour of the most accurate point raises the bar the tolerance is measured from. Always
/// starting from the recommended point walks the search down to the cheapest models and leaves
/// the accurate end (on iris: 3-layer models with neuron removal) untried within a budget.
fn front_order(points: &[Point], front: &[usize], tolerance: f64, climb: bool) -> Vec<Config> {
    let rec = recommend(points, front, tolerance);
    let best = most_accurate(points, front);
    let (a, b) = if climb { (best, rec) } else { (rec, best) };
    let mut out: Vec<Config> = Vec::new();
    for i in a.into_iter().chain(b).chain(front.iter().copied()) {
        if !out.contains(&points[i].config) {
            out.push(points[i].config);
        }
    }
    out
}

/// A point's settings trained on all the training rows: the model, its checked circuit and
/// its plan on the point's parameter set.
#[derive(Clone, Debug)]
pub struct Refit {
    /// The trained model (what `sqnn tune --out` writes).
    pub model: Model,
    /// Its circuit, lowered with the request's rounding and checked.
    pub checked: CheckedGraph,
    /// Its plan on the point's set.
    pub plan: FhePlan,
}

/// Trains `point`'s settings (over `req.base`) on every row of `train`, lowers, checks and
/// plans it on the point's set. Errors: the circuit fails the check or the set no longer
/// holds it ([`Error::Backend`], rare: the folds' circuits passed).
pub fn refit(train: &Dataset, req: &TuneRequest, point: &Point) -> Result<Refit> {
    let (model, checked) = judge::fit_checked(point.config.apply(&req.base), train, req)?;
    let checked = checked.map_err(|reason| {
        Error::Backend(format!(
            "{} trained on all rows {reason}",
            point.config.describe()
        ))
    })?;
    let plan = judge::plan_on(&checked, point.parameter_set, req).ok_or_else(|| {
        Error::Backend(format!(
            "{} trained on all rows no longer fits {} at 2^{}",
            point.config.describe(),
            point.parameter_set,
            req.target_log2_p_fail
        ))
    })?;
    Ok(Refit {
        model,
        checked,
        plan,
    })
}

/// A refitted model's score on other rows (the test rows, reported after the choice).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Assessment {
    /// Rows scored.
    pub rows: usize,
    /// Accuracy or R² in clear.
    pub clear_metric: f64,
    /// The same with the plan's simulated reads, mean over the noise seeds.
    pub metric: f64,
    /// Share of predictions (over the seeds) equal to the clear ones.
    pub agreement: f64,
}

/// Scores `refit` on the rows of `data` in clear and with `noise_seeds` seeds of simulated
/// reads.
pub fn assess(refit: &Refit, data: &Dataset, noise_seeds: u64) -> Result<Assessment> {
    let inputs = refit.checked.graph().quantize_inputs(&data.x)?;
    let (clear, sims) = judge::predictions(&refit.checked, &inputs, &refit.plan, noise_seeds)?;
    let n = (clear.len() * sims.len()).max(1) as f64;
    let same = sims
        .iter()
        .flat_map(|s| s.iter().zip(&clear))
        .filter(|(a, b)| a == b)
        .count();
    Ok(Assessment {
        rows: clear.len(),
        clear_metric: judge::score(&data.task, &clear, &data.y),
        metric: sims
            .iter()
            .map(|s| judge::score(&data.task, s, &data.y))
            .sum::<f64>()
            / sims.len().max(1) as f64,
        agreement: same as f64 / n,
    })
}

#[cfg(test)]
mod tests {
    use super::front::point as pt;
    use super::*;

    #[test]
    fn the_search_climbs_from_the_most_accurate_point_in_turn() {
        let space = SearchSpace::for_features(4);
        let deep = Config::of(&EstimatorParams::default());
        let small = Config {
            n_layers: 2,
            n_hidden_neurons_multiplier: 1.0,
            ..deep
        };
        let points = vec![pt(deep, 300.0, 0.97), pt(small, 50.0, 0.962)];
        let front = pareto_front(&points);
        assert_eq!(front, vec![1, 0]);
        // The small model is recommended (within 0.01 of the best); the deep one is the best.
        assert_eq!(recommend(&points, &front, 0.01), Some(1));
        assert_eq!(front_order(&points, &front, 0.01, false), vec![small, deep]);
        assert_eq!(front_order(&points, &front, 0.01, true), vec![deep, small]);
        let tried: BTreeSet<Config> = [deep, small].into_iter().collect();
        let cost = |c: &Config| c.cost(4, 3);
        let down = front_order(&points, &front, 0.01, false);
        let up = front_order(&points, &front, 0.01, true);
        let from_rec = next_candidate(&space, &tried, &down, &cost, 1).unwrap();
        let from_best = next_candidate(&space, &tried, &up, &cost, 1).unwrap();
        assert!(neighbours(&space, &small).contains(&from_rec));
        // Climbing tries a neighbour of the deep model that is not one of the small model's.
        assert!(neighbours(&space, &deep).contains(&from_best));
        assert!(!neighbours(&space, &small).contains(&from_best));
    }
}
