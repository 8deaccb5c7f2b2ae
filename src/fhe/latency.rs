//! The latency model: a layer of bootstraps on a number of cores, from the measured one-core
//! figures (the scaling beyond this machine's cores is modelled).

use super::catalogue::ParamSet;
use super::facts::PlanFacts;

impl ParamSet {
    /// One bootstrap's wall time while every core runs one (ms): twice
    /// [`pbs_ms_2_threads`](Self::pbs_ms_2_threads), the amortized time measured with two at
    /// once (the cores share memory bandwidth and caches), taken to hold on any number of cores
    /// (modelled beyond this machine's two), and at least its time alone.
    pub fn together_ms(&self) -> f64 {
        (2.0 * self.pbs_ms_2_threads).max(self.pbs_ms_1_thread)
    }

    /// The predicted time of one layer of `m` independent bootstraps on `cores` cores (ms).
    ///
    /// Model (the figures it uses are measured; the scaling beyond this machine's 2 cores is
    /// modelled): the cores take the bootstraps in rounds of one per core, as the executor's
    /// thread pool does. A full round takes [`together_ms`](Self::together_ms), the measured
    /// time of one bootstrap while every core runs one. A last round of one bootstrap runs
    /// alone, on its critical path: `t1·(1 - f) + t1·f / min(cores, pbs_threads)`, where
    /// `t1` = [`pbs_ms_1_thread`](Self::pbs_ms_1_thread) and `f` =
    /// [`pbs_parallel_fraction`](Self::pbs_parallel_fraction) (a multi-bit bootstrap prepares
    /// the `2^g - 1` rotated keys of each group on its producer threads; a classic bootstrap
    /// has `f = 0` and takes `t1`). A last round of two or more takes a full round's time. So
    /// 5 classic bootstraps on 2 cores take `2·together + t1`, not `2.5·t1`: the granularity
    /// of the rounds and the cores' contention both count.
    pub fn layer_ms(&self, m: usize, cores: usize) -> f64 {
        if m == 0 {
            return 0.0;
        }
        let c = cores.max(1);
        let t1 = self.pbs_ms_1_thread;
        let f = self.pbs_parallel_fraction.clamp(0.0, 1.0);
        let per = c.min(self.pbs_threads).max(1) as f64;
        let alone = t1 * (1.0 - f) + t1 * f / per;
        let round = if c > 1 { self.together_ms() } else { t1 };
        let tail = match m % c {
            0 => 0.0,
            1 => alone,
            _ => round,
        };
        (m / c) as f64 * round + tail
    }

    /// The predicted evaluation time of a circuit whose layers hold these numbers of
    /// bootstraps (layers run one after another), on `cores` cores (ms).
    pub fn circuit_ms(&self, pbs_per_layer: &[usize], cores: usize) -> f64 {
        pbs_per_layer.iter().map(|&m| self.layer_ms(m, cores)).sum()
    }
}

/// Bootstraps per layer of a circuit (one layer of all of them when its per-layer counts do
/// not account for them).
pub fn pbs_per_layer(facts: &PlanFacts) -> Vec<usize> {
    let per = &facts.pbs_per_layer;
    if per.iter().sum::<usize>() == facts.pbs_count && !per.is_empty() {
        per.clone()
    } else {
        vec![facts.pbs_count]
    }
}

/// Coefficients of a ciphertext between bootstraps (under the large key): `k·N + 1`.
fn coefficients(set: &ParamSet) -> f64 {
    (set.glwe_dimension * set.polynomial_size + 1) as f64
}

/// The server's work outside bootstraps per sample (ms), whatever the cores: every input
/// ciphertext taken in and every dot-product term (a scalar multiply-add of a whole
/// ciphertext), one after another (measured here, a layer's dot products gained nothing from
/// running on two cores at these sizes). From the built-in figures (`measured.json`'s
/// `linear`) times `scale` (a machine's speed against them).
pub(super) fn linear_ms(set: &ParamSet, facts: &PlanFacts, scale: f64) -> f64 {
    let lin = &super::measured::MEASURED.linear;
    let terms: usize = facts.dots.iter().map(|d| d.terms).sum();
    let ns = facts.n_inputs as f64 * lin.input_ns_per_coefficient
        + terms as f64 * lin.dot_ns_per_coefficient;
    ns * coefficients(set) * scale / 1e6
}

/// The client's work per sample (ms), not part of the server's latency: encrypting every
/// input and decrypting every output (same figures as [`linear_ms`]).
pub(super) fn client_ms(set: &ParamSet, facts: &PlanFacts, scale: f64) -> f64 {
    let lin = &super::measured::MEASURED.linear;
    let outputs = facts.dots.iter().filter(|d| d.table_len == 0).count();
    (facts.n_inputs as f64 * lin.encrypt_ns_per_coefficient
        + outputs as f64 * lin.decrypt_ns_per_coefficient)
        * coefficients(set)
        * scale
        / 1e6
}
