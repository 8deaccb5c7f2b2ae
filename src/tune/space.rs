//! The search space: the training settings a candidate varies ([`Config`]), the values each axis
//! takes ([`SearchSpace`]), and the order in which candidates are tried.

use std::collections::BTreeSet;
use std::hash::{Hash, Hasher};

use serde::{Deserialize, Serialize};

use crate::fhe::{catalogue, ParamSetId};
use crate::train::{EstimatorParams, PruningMode};

/// What one candidate varies over the base training settings: the network's shape, its bit
/// widths and how it is pruned. Every other setting (epochs, learning rate, seed, ...) is the
/// base's.
///
/// A *linear* candidate (`n_layers` 1) has no hidden layer, so no table and no bootstrap: the
/// hidden width, noise-aware training and neuron removal do not apply to it, and a search
/// space gives it one value of each ([`SearchSpace::canonical`]).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Config {
    /// Linear layers ([`EstimatorParams::n_layers`]).
    pub n_layers: usize,
    /// Hidden width over input features ([`EstimatorParams::n_hidden_neurons_multiplier`]).
    pub n_hidden_neurons_multiplier: f64,
    /// Weight bits.
    pub n_w_bits: u32,
    /// Activation bits.
    pub n_a_bits: u32,
    /// Accumulator budget of every neuron.
    pub n_accum_bits: u32,
    /// How weights are pruned to fit the budget.
    pub pruning: PruningMode,
    /// Noise-aware training with this set's read noise (`None`: exact reads in training).
    #[serde(default)]
    pub noise_aware: Option<ParamSetId>,
    /// Removal of hidden neurons that do not pay for their bootstrap, with this tolerance
    /// ([`EstimatorParams::remove_neurons`]; `None`: off).
    #[serde(default)]
    pub remove_neurons: Option<f64>,
}

impl Eq for Config {}

impl Hash for Config {
    fn hash<H: Hasher>(&self, h: &mut H) {
        self.n_layers.hash(h);
        self.n_hidden_neurons_multiplier.to_bits().hash(h);
        (self.n_w_bits, self.n_a_bits, self.n_accum_bits).hash(h);
        self.pruning.hash(h);
        self.noise_aware.hash(h);
        self.remove_neurons.map(f64::to_bits).hash(h);
    }
}

impl Ord for Config {
    fn cmp(&self, o: &Config) -> std::cmp::Ordering {
        (
            self.n_layers,
            self.n_w_bits,
            self.n_a_bits,
            self.n_accum_bits,
        )
            .cmp(&(o.n_layers, o.n_w_bits, o.n_a_bits, o.n_accum_bits))
            .then(
                self.n_hidden_neurons_multiplier
                    .total_cmp(&o.n_hidden_neurons_multiplier),
            )
            .then(self.pruning.name().cmp(o.pruning.name()))
            .then(self.noise_aware.cmp(&o.noise_aware))
            .then(
                self.remove_neurons
                    .unwrap_or(-1.0)
                    .total_cmp(&o.remove_neurons.unwrap_or(-1.0)),
            )
    }
}

impl PartialOrd for Config {
    fn partial_cmp(&self, o: &Config) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}

impl Config {
    /// The settings of `p` that a candidate varies.
    pub fn of(p: &EstimatorParams) -> Config {
        Config {
            n_layers: p.n_layers,
            n_hidden_neurons_multiplier: p.n_hidden_neurons_multiplier,
            n_w_bits: p.n_w_bits,
            n_a_bits: p.n_a_bits,
            n_accum_bits: p.n_accum_bits,
            pruning: p.pruning,
            noise_aware: p
                .read_noise
                .as_ref()
                .and_then(|n| n.set.parse::<ParamSetId>().ok()),
            remove_neurons: p.remove_neurons,
        }
    }

    /// Whether it has no hidden layer (`n_layers` 1): a linear model, no bootstrap.
    pub fn is_linear(&self) -> bool {
        self.n_layers <= 1
    }

    /// `base` with this candidate's settings.
    pub fn apply(&self, base: &EstimatorParams) -> EstimatorParams {
        EstimatorParams {
            n_layers: self.n_layers,
            n_hidden_neurons_multiplier: self.n_hidden_neurons_multiplier,
            n_w_bits: self.n_w_bits,
            n_a_bits: self.n_a_bits,
            n_accum_bits: self.n_accum_bits,
            pruning: self.pruning,
            read_noise: self.noise_aware.map(|s| s.set().read_noise()),
            remove_neurons: self.remove_neurons,
            ..base.clone()
        }
    }

    /// A short description, e.g. `2 layers ×0.5, 3/3/12 bits, accumulator_aware`, then
    /// `, noise-aware 2-bit` and `, remove neurons 0.01` when on; `linear, 4/4/11 bits,
    /// accumulator_aware` for a linear candidate.
    pub fn describe(&self) -> String {
        if self.is_linear() {
            return format!(
                "linear, {}/{}/{} bits, {}",
                self.n_w_bits,
                self.n_a_bits,
                self.n_accum_bits,
                self.pruning.name()
            );
        }
        let mut s = format!(
            "{} layers ×{}, {}/{}/{} bits, {}",
            self.n_layers,
            self.n_hidden_neurons_multiplier,
            self.n_w_bits,
            self.n_a_bits,
            self.n_accum_bits,
            self.pruning.name()
        );
        if let Some(set) = self.noise_aware {
            s.push_str(&format!(", noise-aware {}", super::set_label(set)));
        }
        if let Some(t) = self.remove_neurons {
            s.push_str(&format!(", remove neurons {t}"));
        }
        s
    }

    /// The `sqnn train` flags that give this candidate on top of the base settings.
    pub fn train_flags(&self) -> String {
        let pruning = self.pruning.name().replace('_', "-");
        if self.is_linear() {
            return format!(
                "--n-layers 1 --n-w-bits {} --n-a-bits {} --n-accum-bits {} --pruning {pruning}",
                self.n_w_bits, self.n_a_bits, self.n_accum_bits
            );
        }
        let mut s = format!(
            "--n-layers {} --n-hidden-neurons-multiplier {} --n-w-bits {} --n-a-bits {} \
             --n-accum-bits {} --pruning {pruning}",
            self.n_layers,
            self.n_hidden_neurons_multiplier,
            self.n_w_bits,
            self.n_a_bits,
            self.n_accum_bits
        );
        if let Some(set) = self.noise_aware {
            s.push_str(&format!(" --noise-aware {set}"));
        }
        if let Some(t) = self.remove_neurons {
            s.push_str(&format!(" --remove-neurons {t}"));
        }
        s
    }

    /// A relative training cost: multiply-adds of one forward pass through the dense layers
    /// (training computes every connection, pruned or not).
    pub fn cost(&self, n_features: usize, n_outputs: usize) -> f64 {
        let d = n_features as f64;
        if self.is_linear() {
            return d * n_outputs.max(1) as f64;
        }
        let h = (d * self.n_hidden_neurons_multiplier).floor().max(1.0);
        let hidden = self.n_layers.saturating_sub(2) as f64;
        d * h + hidden * h * h + h * n_outputs.max(1) as f64
    }
}

/// The values each axis of the search takes, and the parameter sets each trained candidate is
/// judged on. Neighbours of a candidate differ in one axis by one step ([`neighbours`]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SearchSpace {
    /// Linear layers, ascending.
    pub n_layers: Vec<usize>,
    /// Hidden width multipliers, ascending.
    pub multipliers: Vec<f64>,
    /// (weight, activation) bits, ascending.
    pub bits: Vec<(u32, u32)>,
    /// Accumulator budgets, ascending.
    pub n_accum_bits: Vec<u32>,
    /// Pruning modes.
    pub pruning: Vec<PruningMode>,
    /// Noise-aware training: off (`None`) or with a set's read noise.
    pub noise_aware: Vec<Option<ParamSetId>>,
    /// Removal of hidden neurons: off (`None`) or with a tolerance, ascending.
    pub remove_neurons: Vec<Option<f64>>,
    /// Parameter sets every candidate is planned on (approximate reads).
    pub sets: Vec<ParamSetId>,
    /// Wider `(weight, activation, accumulator)` bits that only linear candidates take (with
    /// every pruning mode), ascending: a linear model has no table, so its precision costs no
    /// bootstrap; only its output's ciphertext space grows. Empty: linear candidates take the
    /// shared axes only.
    #[serde(default)]
    pub linear_bits: Vec<(u32, u32, u32)>,
}

/// The tolerances of neuron removal in [`SearchSpace::for_features`]: a neuron goes when the
/// score (under the read noise, with noise-aware training) does not drop without it, or drops
/// by at most one percentage point.
pub const REMOVE_NEURONS: [f64; 2] = [0.0, 0.01];

/// The wider bits of linear candidates in [`SearchSpace::for_features`]: 6/6 and 8/8 with the
/// accumulators a dense 10-feature row of them needs (diabetes's 8/8 rows reach 18 bits).
pub const LINEAR_BITS: [(u32, u32, u32); 2] = [(6, 6, 16), (8, 8, 20)];

/// The widest hidden layer [`SearchSpace::for_features`] proposes.
pub const MAX_DEFAULT_WIDTH: f64 = 800.0;

impl SearchSpace {
    /// The default space for data with `n_features` features: 1 (linear), 2 or 3 layers; hidden widths
    /// `n_features ×` 0.25 to 8 that give 4 to [`MAX_DEFAULT_WIDTH`] neurons; 3/3 and 4/4 bits;
    /// 8- to 13-bit accumulators; per-neuron and accumulator-aware pruning; training without
    /// read noise or with the 2-bit or 4-bit classic set's; without neuron removal or with
    /// one of [`REMOVE_NEURONS`]; every selectable 2^-128 parameter set (the family tfhe-rs
    /// recommends; the planner takes a 2^-64 set only for a clear gain); and for linear
    /// candidates also [`LINEAR_BITS`].
    pub fn for_features(n_features: usize) -> SearchSpace {
        let d = n_features as f64;
        let mut multipliers: Vec<f64> = [0.25, 0.5, 1.0, 2.0, 4.0, 8.0]
            .into_iter()
            .filter(|m| (4.0..=MAX_DEFAULT_WIDTH).contains(&(d * m).floor()))
            .collect();
        if multipliers.is_empty() {
            multipliers.push(if d * 0.25 > MAX_DEFAULT_WIDTH {
                0.25
            } else {
                8.0
            });
        }
        SearchSpace {
            n_layers: vec![1, 2, 3],
            multipliers,
            bits: vec![(3, 3), (4, 4)],
            n_accum_bits: (8..=13).collect(),
            pruning: vec![PruningMode::PerNeuron, PruningMode::AccumulatorAware],
            noise_aware: vec![
                None,
                Some(ParamSetId::ClassicMsg1Carry1),
                Some(ParamSetId::ClassicMsg2Carry2),
            ],
            remove_neurons: std::iter::once(None)
                .chain(REMOVE_NEURONS.into_iter().map(Some))
                .collect(),
            sets: default_sets(),
            linear_bits: LINEAR_BITS.to_vec(),
        }
    }

    /// The linear candidates of [`linear_bits`](Self::linear_bits) (none without 1 among
    /// [`n_layers`](Self::n_layers)), in their [`canonical`](Self::canonical) form.
    fn wide_linear(&self) -> Vec<Config> {
        if !self.n_layers.contains(&1) {
            return Vec::new();
        }
        let mut out = Vec::new();
        for &(w, a, acc) in &self.linear_bits {
            for &pruning in &self.pruning {
                out.push(self.canonical(&Config {
                    n_layers: 1,
                    n_hidden_neurons_multiplier: self.multipliers.first().copied().unwrap_or(1.0),
                    n_w_bits: w,
                    n_a_bits: a,
                    n_accum_bits: acc,
                    pruning,
                    noise_aware: None,
                    remove_neurons: None,
                }));
            }
        }
        out
    }

    /// `c` with the axes that do not apply to it set to one value: a linear candidate
    /// ([`Config::is_linear`]) takes the narrowest hidden width of the space (what a step to 2
    /// layers starts from), no noise-aware training and no neuron removal. Others are
    /// unchanged.
    pub fn canonical(&self, c: &Config) -> Config {
        if !c.is_linear() {
            return *c;
        }
        Config {
            n_hidden_neurons_multiplier: self
                .multipliers
                .first()
                .copied()
                .unwrap_or(c.n_hidden_neurons_multiplier),
            noise_aware: None,
            remove_neurons: None,
            ..*c
        }
    }

    /// Every candidate of the space (`n_layers × multipliers × bits × n_accum_bits × pruning ×
    /// noise_aware × remove_neurons`, a linear candidate once per bits, accumulator budget and
    /// pruning: [`canonical`](Self::canonical); then the linear candidates of
    /// [`linear_bits`](Self::linear_bits)), in [`Config`]'s order.
    pub fn configs(&self) -> Vec<Config> {
        let mut out = Vec::new();
        for &n_layers in &self.n_layers {
            for &m in &self.multipliers {
                for &(w, a) in &self.bits {
                    for &acc in &self.n_accum_bits {
                        for &pruning in &self.pruning {
                            for &noise_aware in &self.noise_aware {
                                for &remove_neurons in &self.remove_neurons {
                                    out.push(self.canonical(&Config {
                                        n_layers,
                                        n_hidden_neurons_multiplier: m,
                                        n_w_bits: w,
                                        n_a_bits: a,
                                        n_accum_bits: acc,
                                        pruning,
                                        noise_aware,
                                        remove_neurons,
                                    }));
                                }
                            }
                        }
                    }
                }
            }
        }
        out.extend(self.wide_linear());
        out.sort();
        out.dedup();
        out
    }

    /// The candidate of the space nearest `c` on every axis (ties to the lower value), in its
    /// [`canonical`](Self::canonical) form.
    pub fn snap(&self, c: &Config) -> Config {
        fn nearest<T: Copy>(vals: &[T], d: impl Fn(T) -> f64, fallback: T) -> T {
            vals.iter()
                .copied()
                .min_by(|&a, &b| d(a).total_cmp(&d(b)))
                .unwrap_or(fallback)
        }
        let (w, a) = nearest(
            &self.bits,
            |(w, a)| f64::from(w.abs_diff(c.n_w_bits) + a.abs_diff(c.n_a_bits)),
            (c.n_w_bits, c.n_a_bits),
        );
        self.canonical(&Config {
            n_layers: nearest(
                &self.n_layers,
                |l| l.abs_diff(c.n_layers) as f64,
                c.n_layers,
            ),
            n_hidden_neurons_multiplier: nearest(
                &self.multipliers,
                |m| (m / c.n_hidden_neurons_multiplier).ln().abs(),
                c.n_hidden_neurons_multiplier,
            ),
            n_w_bits: w,
            n_a_bits: a,
            n_accum_bits: nearest(
                &self.n_accum_bits,
                |b| f64::from(b.abs_diff(c.n_accum_bits)),
                c.n_accum_bits,
            ),
            pruning: if self.pruning.contains(&c.pruning) {
                c.pruning
            } else {
                self.pruning.first().copied().unwrap_or(c.pruning)
            },
            noise_aware: if self.noise_aware.contains(&c.noise_aware) {
                c.noise_aware
            } else {
                self.noise_aware.first().copied().unwrap_or(c.noise_aware)
            },
            remove_neurons: if self.remove_neurons.contains(&c.remove_neurons) {
                c.remove_neurons
            } else {
                self.remove_neurons
                    .first()
                    .copied()
                    .unwrap_or(c.remove_neurons)
            },
        })
    }
}

/// Every selectable parameter set of the 2^-128 families.
pub fn default_sets() -> Vec<ParamSetId> {
    catalogue()
        .iter()
        .filter(|s| s.selectable && s.family().contains("2^-128"))
        .map(|s| s.id)
        .collect()
}

/// The candidates one step from `c` along one axis of `space` (the adjacent value of an
/// ordered axis, any other pruning mode), in their [`canonical`](SearchSpace::canonical) form;
/// axes that do not apply to `c` (a linear candidate's width, noise-aware training and neuron
/// removal) give none.
pub fn neighbours(space: &SearchSpace, c: &Config) -> Vec<Config> {
    fn steps<T: Copy + PartialEq>(vals: &[T], v: T) -> Vec<T> {
        match vals.iter().position(|&x| x == v) {
            Some(i) => [i.checked_sub(1), Some(i + 1)]
                .into_iter()
                .flatten()
                .filter_map(|j| vals.get(j).copied())
                .collect(),
            None => Vec::new(),
        }
    }
    let mut out = Vec::new();
    for l in steps(&space.n_layers, c.n_layers) {
        // From a linear candidate, the axes that start to apply take their first value.
        let widened = Config {
            noise_aware: space.noise_aware.first().copied().unwrap_or(None),
            remove_neurons: space.remove_neurons.first().copied().unwrap_or(None),
            ..*c
        };
        let from = if c.is_linear() { &widened } else { c };
        out.push(Config {
            n_layers: l,
            ..*from
        });
    }
    for m in steps(&space.multipliers, c.n_hidden_neurons_multiplier) {
        out.push(Config {
            n_hidden_neurons_multiplier: m,
            ..*c
        });
    }
    for (w, a) in steps(&space.bits, (c.n_w_bits, c.n_a_bits)) {
        out.push(Config {
            n_w_bits: w,
            n_a_bits: a,
            ..*c
        });
    }
    for acc in steps(&space.n_accum_bits, c.n_accum_bits) {
        out.push(Config {
            n_accum_bits: acc,
            ..*c
        });
    }
    for &p in space.pruning.iter().filter(|&&p| p != c.pruning) {
        out.push(Config { pruning: p, ..*c });
    }
    for &n in space.noise_aware.iter().filter(|&&n| n != c.noise_aware) {
        out.push(Config {
            noise_aware: n,
            ..*c
        });
    }
    for r in steps(&space.remove_neurons, c.remove_neurons) {
        out.push(Config {
            remove_neurons: r,
            ..*c
        });
    }
    // A linear candidate's wider bits are one more step of precision: the linear candidates
    // of `linear_bits` with its pruning neighbour every linear candidate.
    if c.is_linear() {
        out.extend(
            space
                .wide_linear()
                .into_iter()
                .filter(|w| w.pruning == c.pruning),
        );
    }
    // A step from a wide linear candidate onto an axis it is not on (2 layers at 8/8 bits)
    // leaves the space.
    let in_space = |n: &Config| {
        n.is_linear()
            || (space.bits.contains(&(n.n_w_bits, n.n_a_bits))
                && space.n_accum_bits.contains(&n.n_accum_bits))
    };
    let mut seen = BTreeSet::new();
    out.into_iter()
        .map(|n| space.canonical(&n))
        .filter(|n| n != c && in_space(n) && seen.insert(*n))
        .collect()
}

/// The next candidate to try: among the untried neighbours of the front's configurations
/// (`front`, the recommended one first, then the others by latency), those of the first
/// configuration that has any, cheapest to train first; once the front has no untried
/// neighbour, the rest of the space, cheapest first. Ties go by a hash of the candidate
/// seeded with `seed`, so the order depends only on the seed and on what was evaluated.
pub fn next_candidate(
    space: &SearchSpace,
    tried: &BTreeSet<Config>,
    front: &[Config],
    cost: &dyn Fn(&Config) -> f64,
    seed: u64,
) -> Option<Config> {
    let key = |c: &Config| (cost(c), stable_hash(seed, &c.describe()));
    let cheapest = |cands: Vec<Config>| {
        cands
            .into_iter()
            .filter(|c| !tried.contains(c))
            .min_by(|a, b| {
                let (ka, kb) = (key(a), key(b));
                ka.0.total_cmp(&kb.0).then(ka.1.cmp(&kb.1))
            })
    };
    front
        .iter()
        .find_map(|c| cheapest(neighbours(space, c)))
        .or_else(|| cheapest(space.configs()))
}

/// FNV-1a of the seed and a text: a hash that does not change between builds or runs.
fn stable_hash(seed: u64, text: &str) -> u64 {
    seed.to_le_bytes()
        .iter()
        .chain(text.as_bytes())
        .fold(0xcbf2_9ce4_8422_2325, |h, &b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_space_fits_the_features() {
        let iris = SearchSpace::for_features(4);
        assert_eq!(iris.multipliers, vec![1.0, 2.0, 4.0, 8.0]);
        let mnist = SearchSpace::for_features(784);
        assert_eq!(mnist.multipliers, vec![0.25, 0.5, 1.0]);
        assert!(!iris.sets.is_empty());
        // Linear candidates once per bits, accumulator budget and pruning, and once per
        // wider linear bits and pruning.
        assert_eq!(
            iris.configs().len(),
            2 * 4 * 2 * 6 * 2 * 3 * 3 + 2 * 6 * 2 + LINEAR_BITS.len() * 2
        );
        let base = Config::of(&EstimatorParams::default());
        assert_eq!(iris.snap(&base), base);
        assert_eq!(mnist.snap(&base).n_hidden_neurons_multiplier, 1.0);
    }

    #[test]
    fn wider_linear_bits_are_linear_steps_that_never_leave_the_space() {
        let space = SearchSpace::for_features(10);
        let linear = space.snap(&Config {
            n_layers: 1,
            ..Config::of(&EstimatorParams::default())
        });
        let wide = |c: &Config| (c.n_w_bits, c.n_a_bits, c.n_accum_bits);
        // From a linear candidate: every wider linear candidate with its pruning.
        let n = neighbours(&space, &linear);
        for &w in &LINEAR_BITS {
            assert!(n
                .iter()
                .any(|c| wide(c) == w && c.pruning == linear.pruning && c.is_linear()));
        }
        // From a wide one: no 2-layer model at 8/8 bits, which the space does not hold.
        let top = n.iter().find(|c| wide(c) == (8, 8, 20)).unwrap();
        let from_top = neighbours(&space, top);
        assert!(from_top.iter().all(|c| c.is_linear()), "{from_top:?}");
        assert!(from_top.iter().any(|c| wide(c) == (6, 6, 16)));
        assert!(from_top.iter().any(|c| c.pruning != top.pruning));
        let all = space.configs();
        assert!(from_top.iter().all(|c| all.contains(c)));
        // Without linear candidates in the space, none of the wider bits either.
        let deep = SearchSpace {
            n_layers: vec![2, 3],
            ..space.clone()
        };
        assert!(deep.configs().iter().all(|c| c.n_w_bits <= 4));
    }

    #[test]
    fn neighbours_differ_in_one_axis_by_one_step() {
        let space = SearchSpace::for_features(4);
        let base = Config::of(&EstimatorParams::default());
        let n = neighbours(&space, &base);
        // layers 2 (3 is the top), multipliers 2 and 8, bits 3/3, accumulators 9 and 11,
        // pruning, two noise-aware sets, neuron removal.
        assert_eq!(n.len(), 10, "{n:?}");
        assert!(n.iter().all(|c| c != &base));
        let mut tried = BTreeSet::new();
        tried.insert(base);
        let cost = |c: &Config| c.cost(4, 3);
        let next = next_candidate(&space, &tried, &[base], &cost, 1).unwrap();
        assert!(n.contains(&next));
        // The cheapest neighbour: 2 layers drop the 16 × 16 hidden product.
        assert_eq!(next.n_layers, 2);
        for c in &n {
            tried.insert(*c);
        }
        let after = next_candidate(&space, &tried, &[base], &cost, 1).unwrap();
        assert!(!tried.contains(&after));
    }

    #[test]
    fn linear_candidates_ignore_the_axes_that_do_not_apply() {
        let space = SearchSpace::for_features(4);
        let linear: Vec<Config> = space
            .configs()
            .into_iter()
            .filter(Config::is_linear)
            .collect();
        assert_eq!(linear.len(), 2 * 6 * 2 + LINEAR_BITS.len() * 2);
        assert!(linear.iter().all(|c| c.n_hidden_neurons_multiplier == 1.0
            && c.noise_aware.is_none()
            && c.remove_neurons.is_none()));
        // Whatever its moot axes say, a linear candidate snaps to the canonical one.
        let asked = Config {
            n_layers: 1,
            n_hidden_neurons_multiplier: 4.0,
            noise_aware: Some(ParamSetId::ClassicMsg1Carry1),
            remove_neurons: Some(0.01),
            ..Config::of(&EstimatorParams::default())
        };
        let snapped = space.snap(&asked);
        assert!(linear.contains(&snapped), "{snapped:?}");
        // Layers 2 (from the narrowest width, the first noise and removal values), 3/3 bits,
        // accumulators 9 and 11, the other pruning, the wider linear bits: nothing along the
        // moot axes.
        let n = neighbours(&space, &snapped);
        assert_eq!(n.len(), 5 + LINEAR_BITS.len(), "{n:?}");
        let up = n.iter().find(|c| !c.is_linear()).unwrap();
        assert_eq!(
            (
                up.n_layers,
                up.n_hidden_neurons_multiplier,
                up.noise_aware,
                up.remove_neurons
            ),
            (2, 1.0, None, None)
        );
        assert!(space.configs().contains(up));
        // Cheapest to train: d × outputs.
        assert_eq!(snapped.cost(4, 3), 12.0);
        assert!(snapped.describe().starts_with("linear, 4/4/10 bits"));
        assert!(snapped
            .train_flags()
            .starts_with("--n-layers 1 --n-w-bits 4"));
        // A 2-layer candidate steps down to the canonical linear one.
        let two = Config {
            n_layers: 2,
            remove_neurons: Some(0.01),
            ..snapped
        };
        assert!(neighbours(&space, &two).contains(&snapped));
    }
}
