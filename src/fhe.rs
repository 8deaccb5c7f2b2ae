//! TFHE parameters without TFHE: the catalogue of 128-bit parameter sets sqnn may use, the noise
//! model that turns a neuron's Σw² into a predicted failure probability, and the parameter
//! choice for a checked circuit ([`choose_parameters`]). This module does not depend on the
//! `tfhe` crate, so a build without the `tfhe-backend` feature still reports what a circuit
//! would cost under TFHE.
//!
//! # The noise model
//! Every ciphertext holds `value - lo` in `[0, M)`, `M = 2^precision` (message × carry space),
//! with a padding bit, so one value occupies a box of `2N / (2M)` units after the modulus switch
//! to `2N` that precedes a programmable bootstrap (PBS). A bootstrap reads the wrong table entry
//! when the error at its input leaves half a box, the tolerance `t = 2N / (4M)` (64 units for
//! the 2-, 4- and 6-bit sets). A neuron's dot product `Σ w_j·x_j` multiplies the noise of each
//! input by its weight, so the error entering its bootstrap is Gaussian with variance
//!
//! ```text
//! σ² = a + b · Σ w_j²        (units of the modulus switch, 2N)
//! ```
//!
//! where `b` is the variance of a bootstrap's output (every hidden value is one) and `a` the
//! variance the keyswitch and the modulus switch add. The probability of a wrong table entry
//! is `erfc(t / (σ √2))`. Inputs of the first layer are fresh encryptions, whose noise is
//! about 10⁻²⁰ of a bootstrap's: the model charges them as bootstrap outputs, which
//! over-estimates first-layer neurons (a safe error). An output accumulator is decrypted
//! without keyswitch or modulus switch: its variance is `b · Σw²` against the same tolerance.
//! `a` and `b` were measured on this machine for every set (see [`ParamSet`]; the
//! measurement is `tests/tfhe.rs::noise_calibration`). At Σw² = 0 the model gives 2^-145,
//! 2^-127 and 2^-125 for the 2-, 4- and 6-bit sets, close to their designed 2^-144, 2^-130 and
//! 2^-129; `tests/tfhe.rs::failure_rate_matches_prediction` checks it where failures are
//! frequent enough to count.
//!
//! In a checked circuit the noise is rarely the binding constraint: a neuron's proved range
//! `Σ|w_j|·(hi_j - lo_j) + 1` must fit the `M` values of the ciphertext, so over non-constant
//! inputs Σw² <= (M - 1)² (9, 225 and 3969 for 2, 4 and 6 bits), far below what 2^-40 allows
//! (Σw² <= about 59 000, 2 700 and 531 000). Weights on constant values are not bounded by the
//! range, but a constant table's bootstrap output is an exact, noiseless zero, so the model
//! over-estimates them too.

use serde::{Deserialize, Serialize};

use crate::analyze::{CompileReport, NeuronReport};
use crate::error::{Error, Result};

/// One 128-bit TFHE parameter set of `tfhe` 1.8.2 (`shortint`, classic keyswitch-then-bootstrap,
/// failure probability 2^-128 per bootstrap at the designed noise), with what it costs on this
/// machine (2 cores; see `../shared/tfhe-facts.md` and `benches/fhe.rs`).
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct ParamSet {
    /// The `tfhe::shortint::parameters` constant.
    pub name: &'static str,
    /// Message bits.
    pub message_bits: u32,
    /// Carry bits; message + carry is the precision a table reads.
    pub carry_bits: u32,
    /// LWE dimension `n` (after the keyswitch).
    pub lwe_dimension: usize,
    /// GLWE dimension `k`.
    pub glwe_dimension: usize,
    /// Polynomial size `N`; ciphertexts between bootstraps have dimension `k·N`.
    pub polynomial_size: usize,
    /// One keyswitch + bootstrap on one thread, milliseconds.
    pub pbs_ms_1_thread: f64,
    /// Time per bootstrap when two run at once on the two cores (amortized), milliseconds.
    pub pbs_ms_2_threads: f64,
    /// Server (evaluation) key in memory / uncompressed serialized, bytes.
    pub server_key_bytes: u64,
    /// Server key as saved (seeded, compressed), bytes.
    pub compressed_server_key_bytes: u64,
    /// Client (secret) key, bytes.
    pub client_key_bytes: u64,
    /// Key generation (client key + compressed server key + decompression), seconds.
    pub keygen_seconds: f64,
    /// `a`: noise variance at the bootstrap input with no dot product (keyswitch and modulus
    /// switch), in squared units of the modulus switch to `2N`.
    pub noise_base: f64,
    /// `b`: variance added per unit of Σw² (a bootstrap output's variance), same units.
    pub noise_per_w2: f64,
    /// The designed log2 failure probability per bootstrap (at the nominal noise).
    pub designed_log2_p_fail: f64,
    /// Whether [`choose_parameters`] may pick it (the 8-bit set needs 11 GB of keys and ten
    /// minutes of key generation here: listed for reference only).
    pub selectable: bool,
}

/// The parameter sets, cheapest first.
///
/// Latencies, key generation and saved sizes of the 2-, 4- and 6-bit sets are medians measured
/// on this machine, quiet (`tests/tfhe.rs::latency_report`; with the other core busy expect up
/// to twice as long, as in `tfhe-facts.md`); in-memory server key sizes and the whole 8-bit
/// entry come from `tfhe-facts.md`. Noise constants `a`, `b` are measured with the secret key
/// (`tests/tfhe.rs::noise_calibration`: `a` = 20.5 / 24.1 / 24.3, `b` = 9.6e-4 / 2.08e-2 /
/// 1.02e-4 for 2 / 4 / 6 bits, rounded up); the 8-bit set's `b` is not measured (not
/// selectable).
pub const PARAMETER_SETS: &[ParamSet] = &[
    ParamSet {
        name: "V1_8_PARAM_MESSAGE_1_CARRY_1_KS_PBS_TUNIFORM_2M128",
        message_bits: 1,
        carry_bits: 1,
        lwe_dimension: 879,
        glwe_dimension: 4,
        polynomial_size: 512,
        pbs_ms_1_thread: 15.0,
        pbs_ms_2_threads: 7.8,
        server_key_bytes: 133_000_000,
        compressed_server_key_bytes: 18_100_000,
        client_key_bytes: 24_000,
        keygen_seconds: 1.2,
        noise_base: 21.0,
        noise_per_w2: 0.001,
        designed_log2_p_fail: -144.3,
        selectable: true,
    },
    ParamSet {
        name: "V1_8_PARAM_MESSAGE_2_CARRY_2_KS_PBS_TUNIFORM_2M128",
        message_bits: 2,
        carry_bits: 2,
        lwe_dimension: 918,
        glwe_dimension: 1,
        polynomial_size: 2048,
        pbs_ms_1_thread: 20.5,
        pbs_ms_2_threads: 10.3,
        server_key_bytes: 120_000_000,
        compressed_server_key_bytes: 30_200_000,
        client_key_bytes: 24_000,
        keygen_seconds: 1.1,
        noise_base: 24.0,
        noise_per_w2: 0.021,
        designed_log2_p_fail: -129.6,
        selectable: true,
    },
    ParamSet {
        name: "V1_8_PARAM_MESSAGE_3_CARRY_3_KS_PBS_TUNIFORM_2M128",
        message_bits: 3,
        carry_bits: 3,
        lwe_dimension: 1077,
        glwe_dimension: 1,
        polynomial_size: 8192,
        pbs_ms_1_thread: 152.0,
        pbs_ms_2_threads: 82.0,
        server_key_bytes: 918_000_000,
        compressed_server_key_bytes: 282_700_000,
        client_key_bytes: 75_000,
        keygen_seconds: 12.3,
        noise_base: 24.5,
        noise_per_w2: 0.000105,
        designed_log2_p_fail: -129.0,
        selectable: true,
    },
    ParamSet {
        name: "V1_8_PARAM_MESSAGE_4_CARRY_4_KS_PBS_TUNIFORM_2M128",
        message_bits: 4,
        carry_bits: 4,
        lwe_dimension: 1117,
        glwe_dimension: 1,
        polynomial_size: 65536,
        pbs_ms_1_thread: 3700.0,
        pbs_ms_2_threads: 1818.0,
        server_key_bytes: 11_100_000_000,
        compressed_server_key_bytes: 3_000_000_000,
        client_key_bytes: 540_000,
        keygen_seconds: 658.0,
        noise_base: 24.0,
        noise_per_w2: 0.0001,
        designed_log2_p_fail: -141.6,
        selectable: false,
    },
];

/// Looks a parameter set up by its `tfhe` constant name.
pub fn parameter_set(name: &str) -> Option<&'static ParamSet> {
    PARAMETER_SETS.iter().find(|p| p.name == name)
}

/// Failure probabilities are floored here (log2), far below anything meaningful.
pub const LOG2_P_FLOOR: f64 = -1000.0;

impl ParamSet {
    /// Bits a table reads: message + carry.
    pub fn precision(&self) -> u32 {
        self.message_bits + self.carry_bits
    }

    /// Number of values a ciphertext holds, `M = 2^precision`.
    pub fn message_space(&self) -> u64 {
        1 << self.precision()
    }

    /// Half a message box in modulus-switch units: `2N / (4M)`.
    pub fn tolerance(&self) -> f64 {
        (2 * self.polynomial_size) as f64 / (4 * self.message_space()) as f64
    }

    /// Short label, e.g. `4-bit`.
    pub fn label(&self) -> String {
        format!("{}-bit", self.precision())
    }

    /// Standard deviation of the error at the input of the bootstrap that follows a dot
    /// product of this Σw² (modulus-switch units).
    pub fn bootstrap_std(&self, sum_w2: u64) -> f64 {
        (self.noise_base + self.noise_per_w2 * sum_w2 as f64).sqrt()
    }

    /// Standard deviation of an output accumulator's error when the client decrypts it.
    pub fn decrypt_std(&self, sum_w2: u64) -> f64 {
        (self.noise_per_w2 * sum_w2 as f64).sqrt()
    }

    /// log2 of the probability that an error of standard deviation `std` leaves the
    /// tolerance: `log2 erfc(t / (std·√2))`, floored at [`LOG2_P_FLOOR`].
    pub fn log2_p_fail_of_std(&self, std: f64) -> f64 {
        if std <= 0.0 {
            return LOG2_P_FLOOR;
        }
        let z = self.tolerance() / (std * std::f64::consts::SQRT_2);
        (ln_erfc(z) / std::f64::consts::LN_2).max(LOG2_P_FLOOR)
    }

    /// Predicted log2 failure probability of one bootstrap after a dot product of this Σw².
    pub fn bootstrap_log2_p_fail(&self, sum_w2: u64) -> f64 {
        self.log2_p_fail_of_std(self.bootstrap_std(sum_w2))
    }

    /// Predicted log2 probability that decrypting an output accumulator of this Σw² is wrong.
    pub fn decrypt_log2_p_fail(&self, sum_w2: u64) -> f64 {
        self.log2_p_fail_of_std(self.decrypt_std(sum_w2))
    }

    /// The largest Σw² a neuron followed by a bootstrap may have for a failure probability of
    /// at most `2^target_log2` (0 when even Σw² = 0 misses it).
    pub fn max_sum_w2(&self, target_log2: f64) -> u64 {
        // Smallest z with log2 erfc(z / √2)... solved on the tolerance ratio by bisection.
        let (mut lo, mut hi) = (0.0f64, 1.0e6f64);
        let ok = |std: f64| self.log2_p_fail_of_std(std) <= target_log2;
        if !ok(self.noise_base.sqrt()) {
            return 0;
        }
        // `hi` as a standard deviation that certainly fails.
        if ok(hi) {
            return u64::MAX;
        }
        for _ in 0..200 {
            let mid = 0.5 * (lo + hi);
            if ok(mid) {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        let var = lo * lo - self.noise_base;
        if var <= 0.0 || self.noise_per_w2 <= 0.0 {
            return 0;
        }
        let m = (var / self.noise_per_w2).floor();
        // Guard against the bisection's last ulp.
        let mut m = m.max(0.0) as u64;
        while m > 0 && self.bootstrap_log2_p_fail(m) > target_log2 {
            m -= 1;
        }
        m
    }

    /// Per-bootstrap latency with `cores` cores sharing the work (ideal scaling of the
    /// one-thread figure: the floor).
    pub fn pbs_ms(&self, cores: usize) -> f64 {
        self.pbs_ms_1_thread / cores.max(1) as f64
    }
}

/// `ln(erfc(x))` for `x >= 0`, accurate to about 1e-12 relative, without underflow for any `x`.
pub fn ln_erfc(x: f64) -> f64 {
    if x.is_nan() {
        return f64::NAN;
    }
    if x < 0.0 {
        return (2.0 - ln_erfc(-x).exp()).ln();
    }
    let ln_sqrt_pi = 0.5 * std::f64::consts::PI.ln();
    if x < 2.5 {
        // erf(x) = 2/√π · e^{-x²} · Σ 2^n x^{2n+1} / (1·3·…·(2n+1)): positive terms only.
        let mut term = x;
        let mut sum = x;
        let x2 = x * x;
        let mut n = 0.0;
        while term > sum * 1e-17 {
            n += 1.0;
            term *= 2.0 * x2 / (2.0 * n + 1.0);
            sum += term;
        }
        let erf = (2.0 / std::f64::consts::PI.sqrt()) * (-x2).exp() * sum;
        (1.0 - erf).ln()
    } else {
        // Continued fraction: erfc(x) = e^{-x²}/√π · 1/(x + (1/2)/(x + 1/(x + (3/2)/(x + …)))).
        let mut k = x;
        for n in (1..=80).rev() {
            k = x + (n as f64 / 2.0) / k;
        }
        -x * x - ln_sqrt_pi - k.ln()
    }
}

/// `log2(2^a + 2^b)` without overflow or underflow.
pub fn log2_add(a: f64, b: f64) -> f64 {
    let (hi, lo) = if a >= b { (a, b) } else { (b, a) };
    if lo == f64::NEG_INFINITY {
        return hi;
    }
    hi + (1.0 + (lo - hi).exp2()).log2()
}

/// One noisy operation of the circuit: a hidden neuron's bootstrap, or an output's decryption.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NeuronNoise {
    /// The dot node.
    pub node: usize,
    /// Linear layer.
    pub layer: usize,
    /// Neuron index within the layer.
    pub neuron: usize,
    /// Σ w² of its integer weights.
    pub sum_w2: u64,
    /// Whether a bootstrap (table) follows; `false` for output accumulators (decrypted).
    pub bootstrap: bool,
    /// Predicted standard deviation of the error, in modulus-switch units.
    pub std: f64,
    /// Predicted log2 probability that its bootstrap (or decryption) is wrong.
    pub log2_p_fail: f64,
}

/// The TFHE plan for one circuit: parameter set, predicted failure and cost.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FhePlan {
    /// The `tfhe::shortint::parameters` constant name.
    pub parameter_set: String,
    /// Precision of the set (message + carry bits).
    pub precision_bits: u32,
    /// Precision the circuit needs: widest accumulator, input or table value.
    pub needed_bits: u32,
    /// The failure target per bootstrap (log2).
    pub target_log2_p_fail: f64,
    /// Worst predicted failure of one bootstrap or output decryption (log2).
    pub worst_log2_p_fail: f64,
    /// Where the worst is.
    pub worst: Option<NeuronNoise>,
    /// Predicted probability that some bootstrap or decryption of one sample fails: log2 of the
    /// sum over the circuit.
    pub total_log2_p_fail: f64,
    /// Bootstraps per sample.
    pub pbs_count: usize,
    /// Cores the latency figures assume.
    pub cores: usize,
    /// One bootstrap on one thread (ms).
    pub pbs_ms_1_thread: f64,
    /// Predicted evaluation latency per sample: `pbs_count × pbs_ms_1_thread ÷ cores` (ms).
    pub latency_ms_per_sample: f64,
    /// The same on one core (ms).
    pub latency_ms_per_sample_1_core: f64,
    /// Server key in memory (bytes).
    pub server_key_bytes: u64,
    /// Server key as saved, compressed (bytes).
    pub compressed_server_key_bytes: u64,
    /// Client key (bytes).
    pub client_key_bytes: u64,
    /// Expected key generation time (s).
    pub keygen_seconds: f64,
    /// Largest Σw² a hidden neuron may have at the target with this set.
    pub max_sum_w2: u64,
    /// Every dot product's predicted failure, in node order.
    pub neurons: Vec<NeuronNoise>,
}

impl FhePlan {
    /// The parameter set named by the plan.
    pub fn set(&self) -> Result<&'static ParamSet> {
        parameter_set(&self.parameter_set).ok_or_else(|| {
            Error::Backend(format!(
                "unknown parameter set {:?}: this sqnn knows {}",
                self.parameter_set,
                PARAMETER_SETS
                    .iter()
                    .map(|p| p.name)
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        })
    }
}

/// Precision a circuit needs (bits): every dot's range (output dots included), every input and
/// table value (which fit `n_a_bits`), every table index. At least 1.
pub fn needed_bits(report: &CompileReport) -> u32 {
    report
        .neurons
        .iter()
        .map(|n| n.range_bits.max(n.table_bits))
        .chain([report.n_a_bits, report.max_table_bits, 1])
        .max()
        .unwrap_or(1)
}

fn neuron_noise(set: &ParamSet, n: &NeuronReport) -> NeuronNoise {
    let bootstrap = n.table_len > 0;
    let (std, log2_p_fail) = if bootstrap {
        (
            set.bootstrap_std(n.sum_w2),
            set.bootstrap_log2_p_fail(n.sum_w2),
        )
    } else {
        (set.decrypt_std(n.sum_w2), set.decrypt_log2_p_fail(n.sum_w2))
    };
    NeuronNoise {
        node: n.node,
        layer: n.layer,
        neuron: n.neuron,
        sum_w2: n.sum_w2,
        bootstrap,
        std,
        log2_p_fail,
    }
}

/// The plan of `report` on `set` (no checks).
pub fn plan_for(report: &CompileReport, set: &ParamSet, target: f64, cores: usize) -> FhePlan {
    let neurons: Vec<NeuronNoise> = report
        .neurons
        .iter()
        .map(|n| neuron_noise(set, n))
        .collect();
    let worst = neurons
        .iter()
        .max_by(|a, b| a.log2_p_fail.total_cmp(&b.log2_p_fail))
        .cloned();
    let total = neurons
        .iter()
        .fold(f64::NEG_INFINITY, |acc, n| log2_add(acc, n.log2_p_fail));
    let cores = cores.max(1);
    let lat1 = report.pbs_count as f64 * set.pbs_ms_1_thread;
    FhePlan {
        parameter_set: set.name.to_string(),
        precision_bits: set.precision(),
        needed_bits: needed_bits(report),
        target_log2_p_fail: target,
        worst_log2_p_fail: worst.as_ref().map_or(LOG2_P_FLOOR, |w| w.log2_p_fail),
        worst,
        total_log2_p_fail: total.max(LOG2_P_FLOOR),
        pbs_count: report.pbs_count,
        cores,
        pbs_ms_1_thread: set.pbs_ms_1_thread,
        latency_ms_per_sample: lat1 / cores as f64,
        latency_ms_per_sample_1_core: lat1,
        server_key_bytes: set.server_key_bytes,
        compressed_server_key_bytes: set.compressed_server_key_bytes,
        client_key_bytes: set.client_key_bytes,
        keygen_seconds: set.keygen_seconds,
        max_sum_w2: set.max_sum_w2(target),
        neurons,
    }
}

/// The cheapest selectable parameter set whose precision covers every value the circuit's
/// ciphertexts carry ([`needed_bits`]) and whose predicted failure probability of every
/// bootstrap (and every output decryption) is at most `2^target_log2_p_fail`.
///
/// Cheapest = lowest predicted latency per sample, then smallest keys. When no set qualifies,
/// an [`Error::Backend`] names the accumulators that are too wide or the neurons whose Σw² is
/// too large, and what to change.
pub fn choose_parameters(
    report: &CompileReport,
    target_log2_p_fail: f64,
    cores: usize,
) -> Result<FhePlan> {
    let target = target_log2_p_fail;
    if !(LOG2_P_FLOOR..0.0).contains(&target) {
        return Err(Error::param(
            "p_error",
            format!(
                "{target} is not a log2 probability in [{LOG2_P_FLOOR}, 0): give e.g. -40 for 2^-40"
            ),
        ));
    }
    let needed = needed_bits(report);
    let mut covering: Vec<&ParamSet> = PARAMETER_SETS
        .iter()
        .filter(|p| p.selectable && p.precision() >= needed)
        .collect();
    covering.sort_by(|a, b| {
        a.pbs_ms_1_thread
            .total_cmp(&b.pbs_ms_1_thread)
            .then(a.server_key_bytes.cmp(&b.server_key_bytes))
    });
    if report.pbs_count == 0 {
        // No bootstrap: latency is the same everywhere, pick the smallest keys.
        covering.sort_by_key(|p| p.server_key_bytes);
    }
    if covering.is_empty() {
        return Err(too_wide(report, needed));
    }
    let plans: Vec<FhePlan> = covering
        .iter()
        .map(|s| plan_for(report, s, target, cores))
        .collect();
    if let Some(p) = plans.iter().find(|p| p.worst_log2_p_fail <= target) {
        return Ok(p.clone());
    }
    // Blame with the most tolerant set.
    let best = plans
        .iter()
        .min_by(|a, b| a.worst_log2_p_fail.total_cmp(&b.worst_log2_p_fail))
        .expect("non-empty");
    Err(too_noisy(best, target))
}

fn too_wide(report: &CompileReport, needed: u32) -> Error {
    let widest = PARAMETER_SETS
        .iter()
        .filter(|p| p.selectable)
        .map(|p| p.precision())
        .max()
        .unwrap_or(0);
    let mut blame: Vec<&NeuronReport> = report
        .neurons
        .iter()
        .filter(|n| n.range_bits.max(n.table_bits) > widest)
        .collect();
    blame.sort_by_key(|n| std::cmp::Reverse(n.range_bits));
    let mut msg = format!(
        "the circuit needs {needed}-bit ciphertexts, but the widest practical 128-bit parameter \
         set here holds {widest} bits (8 bits needs 11 GB of keys and about 1 s per bootstrap)"
    );
    if blame.is_empty() {
        msg.push_str(&format!(
            "; its inputs and tables use n_a_bits = {} bits",
            report.n_a_bits
        ));
    } else {
        msg.push_str(&format!(
            "; {} accumulator(s) are too wide: {}",
            blame.len(),
            list(blame.iter().map(|n| format!(
                "layer {} neuron {} ([{}, {}], {} bits)",
                n.layer, n.neuron, n.lo, n.hi, n.range_bits
            )))
        ));
    }
    msg.push_str(&format!(
        ". To fix: retrain with --n-accum-bits {widest} or less (per-neuron pruning then keeps \
         every accumulator within it), prune more, or use fewer weight/activation bits"
    ));
    Error::Backend(msg)
}

fn too_noisy(best: &FhePlan, target: f64) -> Error {
    let mut blame: Vec<&NeuronNoise> = best
        .neurons
        .iter()
        .filter(|n| n.log2_p_fail > target)
        .collect();
    blame.sort_by(|a, b| b.log2_p_fail.total_cmp(&a.log2_p_fail));
    let relax = best.worst_log2_p_fail.ceil();
    Error::Backend(format!(
        "no 128-bit parameter set meets the failure target 2^{target} per bootstrap: even with the \
         most tolerant set that holds the circuit's {}-bit values ({}, {} bits), {} neuron(s) \
         exceed it: {}. To fix: prune more or train with fewer weight bits so that every hidden \
         neuron has Σw² <= {} (its dot-product noise grows as sqrt(Σw²)), or relax the target \
         (--p-error {relax})",
        best.needed_bits,
        best.parameter_set,
        best.precision_bits,
        blame.len(),
        list(blame.iter().map(|n| format!(
            "layer {} neuron {} (Σw² {}, {}: 2^{:.1})",
            n.layer,
            n.neuron,
            n.sum_w2,
            if n.bootstrap { "bootstrap" } else { "output decryption" },
            n.log2_p_fail
        ))),
        best.max_sum_w2,
    ))
}

/// At most 8 items, then "and N more".
fn list(items: impl Iterator<Item = String>) -> String {
    let all: Vec<String> = items.collect();
    let mut s = all.iter().take(8).cloned().collect::<Vec<_>>().join("; ");
    if all.len() > 8 {
        s.push_str(&format!("; and {} more", all.len() - 8));
    }
    s
}

fn bytes(b: u64) -> String {
    let b = b as f64;
    if b >= 1e9 {
        format!("{:.1} GB", b / 1e9)
    } else if b >= 1e6 {
        format!("{:.0} MB", b / 1e6)
    } else {
        format!("{:.0} KB", b / 1e3)
    }
}

fn ms(v: f64) -> String {
    if v >= 1000.0 {
        format!("{:.2} s", v / 1000.0)
    } else {
        format!("{v:.1} ms")
    }
}

/// The plan as a text block for the compile-check report.
pub fn render_plan(plan: &FhePlan) -> String {
    let mut s = String::new();
    s.push_str(&format!(
        "TFHE plan (target 2^{} per bootstrap):\n",
        plan.target_log2_p_fail
    ));
    s.push_str(&format!(
        "  parameters   {} ({}-bit ciphertexts; the circuit needs {})\n",
        plan.parameter_set, plan.precision_bits, plan.needed_bits
    ));
    s.push_str(&format!(
        "  bootstraps   {} per sample, {} each on one thread\n",
        plan.pbs_count,
        ms(plan.pbs_ms_1_thread)
    ));
    s.push_str(&format!(
        "  latency      {} per sample on {} core(s) (floor: bootstraps × latency ÷ cores), {} on one core\n",
        ms(plan.latency_ms_per_sample),
        plan.cores,
        ms(plan.latency_ms_per_sample_1_core)
    ));
    match &plan.worst {
        Some(w) => s.push_str(&format!(
            "  failure      worst 2^{:.1} ({} of layer {} neuron {}, Σw² {}); whole sample 2^{:.1}\n",
            w.log2_p_fail,
            if w.bootstrap { "bootstrap" } else { "output decryption" },
            w.layer,
            w.neuron,
            w.sum_w2,
            plan.total_log2_p_fail
        )),
        None => s.push_str("  failure      no noisy operation\n"),
    }
    s.push_str(&format!(
        "  noise budget Σw² <= {} per hidden neuron at the target\n",
        plan.max_sum_w2
    ));
    s.push_str(&format!(
        "  keys         server {} ({} compressed on disk), client {}, generation about {:.0} s\n",
        bytes(plan.server_key_bytes),
        bytes(plan.compressed_server_key_bytes),
        bytes(plan.client_key_bytes),
        plan.keygen_seconds.max(1.0)
    ));
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analyze::{LayerReport, NeuronReport};

    fn neuron(
        layer: usize,
        neuron: usize,
        range_bits: u32,
        sum_w2: u64,
        table: bool,
    ) -> NeuronReport {
        let count = 1i64 << range_bits;
        NeuronReport {
            node: 100 * layer + neuron,
            layer,
            neuron,
            fan_in: 4,
            lo: -3,
            hi: -3 + count - 1,
            range_bits,
            signed_bits: range_bits + 1,
            sum_w2,
            table_len: if table { count as usize } else { 0 },
            table_bits: if table { range_bits } else { 0 },
            round_bits: 0,
            over_budget: false,
        }
    }

    fn report(neurons: Vec<NeuronReport>, n_a_bits: u32) -> CompileReport {
        let pbs = neurons.iter().filter(|n| n.table_len > 0).count();
        CompileReport {
            name: "t".into(),
            ok: true,
            n_accum_bits: 8,
            n_w_bits: 2,
            n_a_bits,
            pruning: "per-neuron".into(),
            n_features: 4,
            max_range_bits: neurons.iter().map(|n| n.range_bits).max().unwrap_or(0),
            max_signed_bits: 0,
            max_table_bits: neurons.iter().map(|n| n.table_bits).max().unwrap_or(0),
            pbs_count: pbs,
            layers: Vec::<LayerReport>::new(),
            neurons_over_budget: vec![],
            neurons,
        }
    }

    #[test]
    fn erfc_matches_known_values() {
        // erfc(0.5) = 0.4795001221869535, erfc(2) = 0.004677734981047266,
        // erfc(3) = 2.209049699858544e-05, erfc(10) = 2.088487583762545e-45.
        for (x, v) in [
            (0.5, 0.4795001221869535f64),
            (2.0, 0.004677734981047266),
            (1.0, 0.15729920705028513),
            (3.0, 2.209049699858544e-05),
            (10.0, 2.088487583762545e-45),
        ] {
            let got = ln_erfc(x);
            let rel = 1e-9;
            assert!(
                ((got - v.ln()) / v.ln()).abs() < rel,
                "ln erfc({x}) = {got}, expected {}",
                v.ln()
            );
        }
        // Continuity across the switch between series and continued fraction.
        assert!((ln_erfc(2.5 - 1e-9) - ln_erfc(2.5)).abs() < 1e-6);
        assert!(ln_erfc(100.0).is_finite());
    }

    #[test]
    fn four_bit_model_matches_the_measured_facts() {
        // tfhe-facts.md: std 4.8 at L2 = 5, 17.6 at L2 = 120; log2 p -131 and -12.
        let s = parameter_set("V1_8_PARAM_MESSAGE_2_CARRY_2_KS_PBS_TUNIFORM_2M128").unwrap();
        assert_eq!(s.tolerance(), 64.0);
        assert!(
            (s.bootstrap_std(25) - 4.8).abs() < 0.3,
            "{}",
            s.bootstrap_std(25)
        );
        assert!((s.bootstrap_std(14400) - 17.6).abs() < 1.0);
        assert!((s.bootstrap_log2_p_fail(14400) + 12.0).abs() < 2.0);
        assert!(s.bootstrap_log2_p_fail(25) < -100.0);
        // Monotone in Σw².
        let mut last = f64::NEG_INFINITY;
        for w2 in [0u64, 10, 100, 1000, 5000, 20000] {
            let p = s.bootstrap_log2_p_fail(w2);
            assert!(p >= last);
            last = p;
        }
        // The budget is consistent with the prediction.
        let m = s.max_sum_w2(-40.0);
        assert!(s.bootstrap_log2_p_fail(m) <= -40.0);
        assert!(s.bootstrap_log2_p_fail(m + 1) > -40.0);
    }

    #[test]
    fn precision_covers_accumulators_outputs_and_activations() {
        // A 5-bit output accumulator forces the 6-bit set even with 2-bit tables.
        let r = report(vec![neuron(0, 0, 2, 4, true), neuron(1, 0, 5, 4, false)], 2);
        assert_eq!(needed_bits(&r), 5);
        let p = choose_parameters(&r, -40.0, 2).unwrap();
        assert_eq!(p.precision_bits, 6);
        assert_eq!(p.needed_bits, 5);
        // Everything within 2 bits: the cheapest set, 2 or 4 bits.
        let r = report(vec![neuron(0, 0, 2, 4, true), neuron(1, 0, 2, 2, false)], 2);
        let p = choose_parameters(&r, -40.0, 2).unwrap();
        assert!(p.precision_bits >= 2 && p.precision_bits <= 4);
        // Activations wider than the accumulators still count.
        let r = report(vec![neuron(0, 0, 2, 4, true)], 3);
        assert!(choose_parameters(&r, -40.0, 2).unwrap().precision_bits >= 3);
        // Latency arithmetic.
        let r = report(vec![neuron(0, 0, 4, 4, true), neuron(0, 1, 4, 4, true)], 2);
        let p = choose_parameters(&r, -40.0, 2).unwrap();
        assert_eq!(p.pbs_count, 2);
        assert!((p.latency_ms_per_sample - p.pbs_ms_1_thread).abs() < 1e-9);
        assert!((p.latency_ms_per_sample_1_core - 2.0 * p.pbs_ms_1_thread).abs() < 1e-9);
        assert_eq!(p.neurons.len(), 2);
        assert!(p.total_log2_p_fail >= p.worst_log2_p_fail);
        assert!(p.total_log2_p_fail <= p.worst_log2_p_fail + 1.0 + 1e-9);
        assert!(render_plan(&p).contains(&p.parameter_set));
        let _ = serde_json::to_string(&p).unwrap();
    }

    #[test]
    fn too_wide_names_the_accumulators() {
        let r = report(vec![neuron(0, 0, 4, 4, true), neuron(1, 3, 9, 4, false)], 2);
        let e = choose_parameters(&r, -40.0, 2).unwrap_err().to_string();
        assert!(e.contains("9-bit"), "{e}");
        assert!(e.contains("layer 1 neuron 3"), "{e}");
        assert!(e.contains("--n-accum-bits"), "{e}");
    }

    #[test]
    fn noise_target_moves_the_choice_and_blames_neurons() {
        let four = parameter_set("V1_8_PARAM_MESSAGE_2_CARRY_2_KS_PBS_TUNIFORM_2M128").unwrap();
        let six = parameter_set("V1_8_PARAM_MESSAGE_3_CARRY_3_KS_PBS_TUNIFORM_2M128").unwrap();
        let m4 = four.max_sum_w2(-40.0);
        let m6 = six.max_sum_w2(-40.0);
        assert!(m6 > m4, "the 6-bit set is more tolerant ({m6} vs {m4})");
        // A 4-bit circuit whose noisiest neuron is just over the 4-bit budget moves to 6 bits.
        let r = report(
            vec![
                neuron(0, 0, 4, 4, true),
                neuron(0, 1, 4, m4 + 1, true),
                neuron(1, 0, 4, 4, false),
            ],
            2,
        );
        let p = choose_parameters(&r, -40.0, 2).unwrap();
        assert_eq!(p.precision_bits, 6);
        // ... and stays on 4 bits with a relaxed target.
        let p = choose_parameters(&r, -30.0, 2).unwrap();
        assert!(p.precision_bits <= 4);
        assert!(p.worst_log2_p_fail <= -30.0);
        // Beyond every set: an error that names the neuron, its Σw² and the fixes.
        let r = report(
            vec![neuron(0, 0, 4, 4, true), neuron(2, 7, 4, m6 * 4, true)],
            2,
        );
        let e = choose_parameters(&r, -40.0, 2).unwrap_err().to_string();
        assert!(e.contains("layer 2 neuron 7"), "{e}");
        assert!(e.contains(&format!("Σw² {}", m6 * 4)), "{e}");
        assert!(e.contains("prune more"), "{e}");
        assert!(e.contains("--p-error"), "{e}");
        assert!(!e.contains("layer 0 neuron 0"), "{e}");
    }

    #[test]
    fn bad_targets_are_parameter_errors() {
        let r = report(vec![neuron(0, 0, 2, 4, true)], 2);
        for t in [0.0, 1.0, f64::NAN, f64::NEG_INFINITY, -5000.0] {
            assert!(matches!(
                choose_parameters(&r, t, 2),
                Err(Error::InvalidParameter {
                    name: "p_error",
                    ..
                })
            ));
        }
    }

    #[test]
    fn catalogue_is_consistent() {
        for p in PARAMETER_SETS {
            assert_eq!(parameter_set(p.name), Some(p));
            assert!(p.noise_base > 0.0 && p.noise_per_w2 > 0.0);
            assert!(p.bootstrap_log2_p_fail(0) < -60.0, "{}", p.name);
        }
        assert!((log2_add(-10.0, -10.0) + 9.0).abs() < 1e-12);
        assert_eq!(log2_add(f64::NEG_INFINITY, -3.0), -3.0);
    }
}
