//! Stage 1: training. Quantization-aware training (fake quantization with a straight-through
//! estimator) of a sparse MLP whose every neuron provably fits an `n_accum_bits` accumulator,
//! and the scikit-learn-like estimators on top of it.
//!
//! - [`ModuleConfig`] and [`SparseQuantNeuralNetwork`]: Concrete ML's `SparseQuantNeuralNetwork`
//!   constructor and methods (`max_active_neurons`, `enable_pruning`, `make_pruning_permanent`,
//!   `forward`), with typed validation errors.
//! - [`EstimatorParams`]: every training hyper-parameter, with the presets.
//! - [`NeuralNetClassifier`] (cross-entropy) and [`NeuralNetRegressor`] (MSE on the standardized
//!   target), the two faces of one generic [`Estimator`]: `fit`, `predict`, `predict_proba`,
//!   `score`, `save` / `load`; [`Model`] is either, as read from a model file.
//!   Training reports its epochs through a [`Progress`](crate::progress::Progress) observer
//!   (`fit_with_progress`, `fit_dataset_with_progress`); nothing about display is saved. Prediction always goes
//!   through the integer model ([`QuantizedMlp::forward_int`]), so clear and encrypted execution
//!   of the lowered graph agree exactly with `predict`.
//!
//! # Why every neuron fits its accumulator
//! Weights are quantized symmetrically (zero point 0), so a pruned weight is exactly the integer
//! 0 and is absent from the sparse rows. Every activation quantizer covers an interval of at most
//! `2^n_a_bits` integers and every weight lies in `[-2^(w-1), 2^(w-1) - 1]`, so one product
//! `w * x` moves the accumulator's range by at most `(2^w - 1)(2^a - 1)`. In
//! [`PruningMode::PerNeuron`] (the default) every output row keeps at most
//! Ω = [`max_active_neurons`] non-zero weights, hence a neuron's worst-case interval
//! `[lo, hi]` has `hi - lo <= Ω (2^w - 1)(2^a - 1) <= 2^n_accum_bits - 1`: its range width
//! `ceil(log2(hi - lo + 1))` is at most `n_accum_bits`, for every input. [`PruningMode::LayerGlobal`]
//! reproduces Concrete ML (one magnitude threshold per layer), which only bounds the *average*.
//!
//! # Training recipe (what `fit` does)
//! 1. Scale features with the training statistics ([`InputScaling`]: by default each
//!    feature's range `[min, max]` onto `[-1, 1]`, so that every feature spans the first
//!    layer's whole per-tensor input quantizer; or standardization), and standardize the
//!    target for regression. The client applies this affine map, so it costs nothing in FHE.
//! 2. Hold out `validation_fraction` of the rows (stratified for classes; 0 by default).
//! 3. Initialize like PyTorch's `nn.Linear` (Kaiming uniform) from `ChaCha8Rng::seed_from_u64`.
//! 4. Train with Adam on mini-batches (with decoupled weight decay, AdamW, by default 0.1); each layer's input goes through an activation fake
//!    quantizer and its weights through a symmetric weight fake quantizer (scale from `max |w|`,
//!    per output neuron or per tensor). Activation ranges ([`ActRange`]): an exponential moving
//!    average (momentum 0.1) of each batch's min / max, percentiles or MSE-optimal range; or,
//!    the default, a step size initialized from the first epoch's running min / max and then
//!    learned (LSQ). Gradients pass the rounding straight through (and are zero where an
//!    activation is clipped). The learning rate follows [`LrSchedule`] (by default a cosine
//!    decay from `lr` to 0 over all mini-batch steps, so the last epochs settle instead of
//!    jumping between quantization grid points). With `shift_augment` ([`ImageShifts`], for
//!    image rows) every training row is shifted by a fresh random offset of a pixel or so
//!    each epoch (validation rows are not). With `distill` ([`Distill`], classification) the
//!    loss mixes the labels' cross-entropy with a teacher model's soft targets (its integer
//!    model's logits on the rows the batch shows, shifted ones included).
//! 5. Pruning ([`PruningMode::PerNeuron`]): with `prune_warmup = 0` (the default) the masks
//!    are chosen once on the initial weights, as Concrete ML does, and then frozen: masked
//!    weights stay exactly 0 and their gradients are ignored. With `sparse_init` (the default)
//!    each row's kept weights are then re-scaled so that their mean square is PyTorch's for
//!    the row's *actual* fan-in `k`, `1 / (3k)`: a row that keeps Ω = 4 of 120 inputs would
//!    otherwise start with a pre-activation variance about 10 times too small, the factors
//!    multiply from layer to layer, and the network can stay stuck near chance for dozens of
//!    epochs (measured: single iris runs at 4/4/10 bits ending at 0.667 test accuracy). With `prune_warmup > 0`,
//!    gradual magnitude pruning runs during that fraction of the epochs: the number of weights
//!    a row may keep decays cubically from the fan-in to Ω (Zhu & Gupta's schedule), each step
//!    keeping the largest `|w|` among the still active weights. (Measured: neither at 2/2/6
//!    nor at 4/4/10 bits was the gradual schedule more accurate, so it is not the default.)
//!    Structured pruning (`n_prune_neurons_percentage`) removes the hidden neurons with the
//!    smallest L2 norm when the final masks are chosen; `remove_neurons` instead removes,
//!    halfway through training, the hidden neurons whose removal keeps the validation (or
//!    training) score within a tolerance, and the rest fine-tune. With `read_noise`
//!    (noise-aware training) every hidden accumulator is moved during training by the read
//!    error a TFHE parameter set's bootstrap would make, before its activation.
//!    [`PruningMode::AccumulatorAware`] instead keeps, per row, the largest `|w|` while the
//!    proved interval `span * sum |w_int|` fits `2^n_accum_bits - 1`, on the initial weights
//!    and again on the integers after every epoch.
//! 6. Without validation (the default) the last epoch is kept: the cosine schedule has
//!    annealed to 0 by then. With `validation_fraction > 0`, the epoch with the best validation
//!    result among those trained with the final masks is kept (accuracy then loss for classes,
//!    loss for regression); with `restarts > 1` the best of several seeded runs. (Measured on
//!    repeated splits of iris, breast_cancer and diabetes: folding the 20 % hold-out back into
//!    training, with weight decay as the regularizer, is as accurate or better than selecting
//!    the best of 5 restarts on it, at a fifth of the cost.) Quantizers are frozen, pruning is made permanent, and the
//!    network is exported as a [`QuantizedMlp`] without dead or constant neurons (a hidden
//!    neuron with no non-zero weight is a constant and is folded into the next layer's biases;
//!    a neuron nobody reads is dropped).
//!
//! Everything is single-threaded and seeded, so the same seed gives the same model bit for bit.
//!
//! # Code map
//! `config` (module config, pruning modes, validation) · `params` (hyper-parameters,
//! presets) · [`quantize`] (the quantized model handed to `lower`) · `quantizers` (range
//! observers, fake quantization) · `network` (forward / backward) · `noise` (noise-aware
//! training's read noise) · `neurons` (idle-neuron removal) · `pruning` · `optim` (Adam,
//! learning-rate schedule) · `augment` (shifts) · `distill` (teacher) · `fit` (the fitting loop,
//! losses) · `metrics` · `export` (to
//! [`QuantizedMlp`]) · `estimator` · `model_file`.

mod augment;
mod config;
mod distill;
mod estimator;
mod export;
mod fit;
mod metrics;
mod model_file;
mod network;
mod neurons;
mod noise;
mod optim;
mod params;
mod pruning;
pub mod quantize;
mod quantizers;

#[allow(unused_imports)] // used by doc links
use crate::train::quantize::QuantizedMlp;

pub use augment::ImageShifts;
pub use config::{
    max_active_neurons, ActRange, ModuleConfig, PruningMode, MAX_ACCUM_BITS, MAX_BITS,
};
pub use distill::{Distill, Teacher, DISTILL_TEMPERATURE, DISTILL_WEIGHT};
pub use estimator::{
    Classify, Estimator, Model, NeuralNetClassifier, NeuralNetRegressor, Regress, TaskSpec,
};
pub use fit::{FitReport, Targets};
pub use metrics::{accuracy, argmax, r2};
pub use model_file::{MAX_MODEL_BYTES, MODEL_FORMAT, MODEL_VERSION};
pub use network::SparseQuantNeuralNetwork;
pub use neurons::REMOVE_NEURONS_AT;
pub use noise::ReadNoise;
pub use optim::LrSchedule;
pub use params::{EstimatorParams, InputScaling};
