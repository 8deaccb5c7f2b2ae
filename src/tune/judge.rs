//! How a candidate is judged: trained on all validation folds but one, lowered and checked,
//! planned on each parameter set, and its reads simulated on the held-out fold with several
//! noise seeds; the figures are pooled over the folds.

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::space::Config;
use super::TuneRequest;
use crate::analyze::{analyze, CheckedGraph};
use crate::data::{Dataset, Task};
use crate::error::{Error, Result};
use crate::execute::ClearBackend;
use crate::fhe::{plan, sigma_units_by_node, FheMode, FhePlan, ParamSetId, PlanFacts, PlanRequest};
use crate::lower::lower_with;
use crate::progress::NoProgress;
use crate::train::{EstimatorParams, Model};

/// The validation folds: the training rows cut into `k` seeded parts (stratified by class for
/// classification); a candidate is trained on all parts but one and judged on that one, for
/// the first `used` parts; all of it `repeats` times, with other cuts (seeds `seed`,
/// `seed + 1`, ...) and other training seeds (the base seed plus the repeat). The test rows are
/// never among them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Folds {
    /// Parts the training rows are cut into (at least 2).
    pub k: usize,
    /// Parts held out in turn (1 to `k`): 1 is a single hold-out of `1/k` of the rows.
    pub used: usize,
    /// Cuts (at least 1): on small data sets, a score from one training seed and one cut
    /// varies more between candidates than the candidates differ.
    pub repeats: usize,
    /// Seed of the first cut.
    pub seed: u64,
}

/// One fold of [`Folds::parts`]: rows to train on, rows to judge on, and which repeat (the
/// training seed is the base seed plus it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Part {
    /// Training rows (indices into the training split).
    pub train: Vec<usize>,
    /// Validation rows.
    pub validation: Vec<usize>,
    /// The repeat it belongs to.
    pub repeat: u64,
}

impl Folds {
    /// Training splits up to this many rows are judged by 5-fold cross-validation; larger ones
    /// on one hold-out fold (a fifth of the rows), which is then large enough.
    pub const CROSS_VALIDATE_UP_TO: usize = 2000;

    /// Training splits up to this many rows are cross-validated [`SMALL_REPEATS`](Self::SMALL_REPEATS) times.
    pub const SMALL: usize = 300;
    /// Repeats of the cross-validation of small training splits.
    pub const SMALL_REPEATS: usize = 3;

    /// 5 folds, all used for up to [`CROSS_VALIDATE_UP_TO`](Self::CROSS_VALIDATE_UP_TO) rows
    /// (and repeated 3 times up to [`SMALL`](Self::SMALL) rows), one otherwise.
    pub fn auto(n_rows: usize, seed: u64) -> Folds {
        let used = if n_rows <= Self::CROSS_VALIDATE_UP_TO {
            5
        } else {
            1
        };
        let repeats = if n_rows <= Self::SMALL {
            Self::SMALL_REPEATS
        } else {
            1
        };
        Folds {
            k: 5,
            used,
            repeats,
            seed,
        }
    }

    /// Checks the counts against `n_rows` training rows (every part needs a row).
    pub fn validate(&self, n_rows: usize) -> Result<()> {
        if self.k < 2 || self.k > n_rows {
            return Err(Error::param(
                "folds",
                format!(
                    "{} parts of {n_rows} training rows: cut them into 2 to {n_rows} parts \
                     (5 is usual)",
                    self.k
                ),
            ));
        }
        if self.repeats == 0 {
            return Err(Error::param(
                "folds",
                "0 repeats: cut the rows at least once",
            ));
        }
        if !(1..=self.k).contains(&self.used) {
            return Err(Error::param(
                "folds",
                format!(
                    "{} of {} parts held out: use 1 (one hold-out) to {} (cross-validation)",
                    self.used, self.k, self.k
                ),
            ));
        }
        Ok(())
    }

    /// In words, e.g. `5-fold cross-validation, 3 cuts` or `one hold-out fold of 5`.
    pub fn describe(&self) -> String {
        let what = if self.used > 1 {
            format!("{}-fold cross-validation", self.used)
        } else {
            format!("one hold-out fold of {}", self.k)
        };
        match self.repeats {
            1 => what,
            r => format!("{what}, {r} cuts"),
        }
    }

    /// The folds of `ds` (the training rows): every used fold of every repeat.
    pub fn parts(&self, ds: &Dataset) -> Result<Vec<Part>> {
        self.validate(ds.n_samples())?;
        ds.check_labels()?;
        let mut out = Vec::new();
        for repeat in 0..crate::cast::to_u64(self.repeats) {
            out.extend(self.cut(ds, repeat));
        }
        Ok(out)
    }

    fn cut(&self, ds: &Dataset, repeat: u64) -> Vec<Part> {
        let mut rng = ChaCha8Rng::seed_from_u64(self.seed.wrapping_add(repeat));
        let groups: Vec<Vec<usize>> = match ds.labels() {
            Some(labels) => {
                let k = labels.iter().max().map_or(0, |m| m + 1);
                let mut g = vec![Vec::new(); k];
                for (i, &l) in labels.iter().enumerate() {
                    g[l].push(i);
                }
                g
            }
            None => vec![(0..ds.n_samples()).collect()],
        };
        // Deal every class's shuffled rows round-robin, continuing from class to class, so
        // the parts differ in size by at most one row and in each class by at most one.
        let mut fold_of = vec![0usize; ds.n_samples()];
        let mut next = 0usize;
        for mut rows in groups {
            rows.shuffle(&mut rng);
            for r in rows {
                fold_of[r] = next % self.k;
                next += 1;
            }
        }
        (0..self.used)
            .map(|f| {
                let (validation, train): (Vec<usize>, Vec<usize>) =
                    (0..ds.n_samples()).partition(|&i| fold_of[i] == f);
                Part {
                    train,
                    validation,
                    repeat,
                }
            })
            .collect()
    }
}

/// One trained candidate on one parameter set: its simulated validation score and predicted
/// latency.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Point {
    /// The candidate's training settings.
    pub config: Config,
    /// The parameter set its circuit is planned on (approximate reads).
    pub parameter_set: ParamSetId,
    /// A short name of the set, e.g. `4-bit classic, 2^-128`.
    pub set_label: String,
    /// Accuracy (classification) or R² (regression) of the simulated reads on the validation
    /// rows (pooled over the folds), mean over the noise seeds.
    pub metric: f64,
    /// The same in clear (no read noise).
    pub clear_metric: f64,
    /// The standard error of `metric` from the spread over the validation rows
    /// ([`standard_error`]): how far the score could move on other rows of the same size.
    #[serde(default)]
    pub metric_se: f64,
    /// Share of validation predictions (over folds and seeds) equal to the clear ones.
    pub agreement: f64,
    /// Predicted encrypted latency per sample on the request's cores (ms), mean over the folds'
    /// circuits.
    pub latency_ms: f64,
    /// Bootstraps per sample, mean over the folds' circuits.
    pub pbs_count: f64,
}

/// A candidate's circuit: trained on `train`, lowered with the request's rounding, checked.
/// `Ok(Err(reason))` when it fails the accumulator check.
pub(super) fn fit_checked(
    params: EstimatorParams,
    train: &Dataset,
    req: &TuneRequest,
) -> Result<(Model, std::result::Result<CheckedGraph, String>)> {
    let (model, _) = Model::fit(params, train, &NoProgress)?;
    let graph = lower_with(
        model.quantized(),
        &train.name,
        model.params().pruning,
        req.rounding,
    )?
    .with_feature_names(model.feature_names())?;
    let checked = analyze(graph)?.check().map_err(|an| {
        format!(
            "fails the accumulator check ({} neurons over {} bits)",
            an.report().neurons_over_budget.len(),
            an.report().n_accum_bits
        )
    });
    Ok((model, checked))
}

/// The plan of `checked` on `set` with approximate reads, if the set holds it at the target.
pub(super) fn plan_on(
    checked: &CheckedGraph,
    set: ParamSetId,
    req: &TuneRequest,
) -> Option<FhePlan> {
    let request = PlanRequest::new(FheMode::Approximate)
        .on(set)
        .target(req.target_log2_p_fail);
    let request = match &req.profile {
        Some(p) => request.profile(p.clone()),
        None => request.cores(req.cores),
    };
    plan(&PlanFacts::new(checked.analyzed()), &request).ok()
}

/// Predictions of `checked` on quantized `inputs`: in clear, then with each noise seed's
/// simulated reads of `plan`.
pub(super) fn predictions(
    checked: &CheckedGraph,
    inputs: &[Vec<i64>],
    plan: &FhePlan,
    seeds: u64,
) -> Result<(Vec<f64>, Vec<Vec<f64>>)> {
    let an = checked.analyzed();
    let g = an.graph();
    let clear = ClearBackend::default().evaluate(an, inputs)?;
    let clear: Vec<f64> = clear.iter().map(|o| g.predict(o)).collect();
    let sigma = sigma_units_by_node(plan, g);
    let sims = (1..=seeds.max(1))
        .map(|seed| {
            let (outs, _) = ClearBackend::default().simulate(an, inputs, &sigma, seed)?;
            Ok(outs.iter().map(|o| g.predict(o)).collect())
        })
        .collect::<Result<Vec<Vec<f64>>>>()?;
    Ok((clear, sims))
}

/// Accuracy or R² of `preds` against `y` for `task`.
pub(super) fn score(task: &Task, preds: &[f64], y: &[f64]) -> f64 {
    match task {
        Task::Classify { .. } => crate::train::accuracy(preds, y),
        Task::Regress => crate::train::r2(preds, y),
    }
}

/// The standard error of the score of `sims` (predictions of several noise seeds, each one
/// per row of `y`) as an estimate of the score on unseen rows: for accuracy `a` over `n` rows
/// `sqrt(a (1 - a) / n)`; for R² = `1 - mean(e²) / var(y)`, the standard error of the mean
/// of the rows' squared errors (averaged over the seeds) over `var(y)`. 0 for fewer than two
/// rows.
///
/// ```
/// use sqnn::data::Task;
/// use sqnn::tune::standard_error;
/// let y = [0.0, 1.0, 2.0, 3.0];
/// // Exact predictions: no error to spread.
/// assert_eq!(standard_error(&Task::Regress, &[y.to_vec()], &y), 0.0);
/// let classes = Task::Classify { classes: vec!["a".into(), "b".into()] };
/// let se = standard_error(&classes, &[vec![0.0, 1.0, 0.0, 1.0]], &[0.0, 1.0, 1.0, 1.0]);
/// assert!((se - (0.75f64 * 0.25 / 4.0).sqrt()).abs() < 1e-12);
/// ```
pub fn standard_error(task: &Task, sims: &[Vec<f64>], y: &[f64]) -> f64 {
    let n = y.len();
    if n < 2 || sims.is_empty() {
        return 0.0;
    }
    let (nf, seeds) = (n as f64, sims.len() as f64);
    match task {
        Task::Classify { .. } => {
            let a = sims.iter().map(|s| score(task, s, y)).sum::<f64>() / seeds;
            (a * (1.0 - a) / nf).max(0.0).sqrt()
        }
        Task::Regress => {
            let mean_y = y.iter().sum::<f64>() / nf;
            let var_y = y.iter().map(|v| (v - mean_y) * (v - mean_y)).sum::<f64>() / nf;
            if var_y == 0.0 {
                return 0.0;
            }
            let sq: Vec<f64> = (0..n)
                .map(|i| {
                    sims.iter()
                        .map(|s| (s[i] - y[i]) * (s[i] - y[i]))
                        .sum::<f64>()
                        / seeds
                })
                .collect();
            let m = sq.iter().sum::<f64>() / nf;
            let var = sq.iter().map(|e| (e - m) * (e - m)).sum::<f64>() / (nf - 1.0);
            (var / nf).sqrt() / var_y
        }
    }
}

/// What one set gathers over the folds.
struct Pool {
    set: ParamSetId,
    clear: Vec<f64>,
    sims: Vec<Vec<f64>>,
    latency_ms: f64,
    pbs: f64,
    folds: usize,
}

/// Judges `config` on `parts` of `train`: one [`Point`] per set of the request that holds the
/// circuit of every fold, or the reason there is none (a parameter that does not apply to
/// these data, a failed check).
pub(super) fn judge(
    config: &Config,
    train: &Dataset,
    parts: &[Part],
    req: &TuneRequest,
) -> Result<std::result::Result<Vec<Point>, String>> {
    let params = config.apply(&req.base);
    if let Err(e) = params.validate() {
        return Ok(Err(e.to_string()));
    }
    let mut pools: Vec<Pool> = req
        .space
        .sets
        .iter()
        .map(|&set| Pool {
            set,
            clear: Vec::new(),
            sims: vec![Vec::new(); usize::try_from(req.noise_seeds.max(1)).unwrap_or(1)],
            latency_ms: 0.0,
            pbs: 0.0,
            folds: 0,
        })
        .collect();
    let mut y = Vec::new();
    for part in parts {
        let (fit_rows, val) = (train.subset(&part.train), train.subset(&part.validation));
        let params = EstimatorParams {
            seed: params.seed.wrapping_add(part.repeat),
            ..params.clone()
        };
        let (_, checked) = match fit_checked(params, &fit_rows, req) {
            Ok(m) => m,
            Err(e @ (Error::InvalidParameter { .. } | Error::Backend(_))) => {
                return Ok(Err(e.to_string()))
            }
            Err(e) => return Err(e),
        };
        let checked = match checked {
            Ok(c) => c,
            Err(reason) => return Ok(Err(reason)),
        };
        let inputs = checked.graph().quantize_inputs(&val.x)?;
        y.extend_from_slice(&val.y);
        for pool in &mut pools {
            let Some(plan) = plan_on(&checked, pool.set, req) else {
                continue;
            };
            let (clear, sims) = predictions(&checked, &inputs, &plan, req.noise_seeds)?;
            pool.clear.extend(clear);
            for (all, s) in pool.sims.iter_mut().zip(sims) {
                all.extend(s);
            }
            pool.latency_ms += plan.latency_ms_per_sample;
            pool.pbs += plan.pbs_count as f64;
            pool.folds += 1;
        }
    }
    let points: Vec<Point> = pools
        .into_iter()
        .filter(|p| p.folds == parts.len())
        .map(|p| {
            let n = p.clear.len().max(1) as f64 * p.sims.len().max(1) as f64;
            let same = p
                .sims
                .iter()
                .flat_map(|s| s.iter().zip(&p.clear))
                .filter(|(a, b)| a == b)
                .count();
            let metric = p
                .sims
                .iter()
                .map(|s| score(&train.task, s, &y))
                .sum::<f64>()
                / p.sims.len().max(1) as f64;
            Point {
                config: *config,
                parameter_set: p.set,
                set_label: set_label(p.set),
                metric,
                clear_metric: score(&train.task, &p.clear, &y),
                metric_se: standard_error(&train.task, &p.sims, &y),
                agreement: same as f64 / n,
                latency_ms: p.latency_ms / p.folds as f64,
                pbs_count: p.pbs / p.folds as f64,
            }
        })
        .collect();
    if points.is_empty() {
        return Ok(Err(
            "no parameter set of the search holds its circuit at the target".into(),
        ));
    }
    Ok(Ok(points))
}

/// `4-bit classic, 2^-128` and the like.
pub fn set_label(set: ParamSetId) -> String {
    let s = set.set();
    format!("{} {}", s.label(), s.family())
}
