//! Exact rounding's extractions: the chunks in which the bootstraps that clear a table's
//! dropped bits work ([`extraction_chunks`]), and a cheaper set for them: they tolerate far more
//! noise than the table's read, so they may run on a smaller set, next to it in the same
//! circuit.
//!
//! # Which sets can work together
//! Exact rounding adds each extraction's output to the accumulator it clears
//! (`x + out - c_b`, `crate::tfhe`'s rounding): both must be LWE ciphertexts under the same
//! key. A bootstrap's output is encrypted under its GLWE secret key read as an LWE key of
//! dimension `k·N`, so the two sets must have the same `k·N` and share those `k·N` key bits
//! (a `k = 4`, `N = 512` key and a `k = 1`, `N = 2048` key are the same 2048 bits cut into
//! polynomials differently), and the same GLWE noise distribution, so that the shared key is
//! used exactly as each shipped set uses it. Each set keeps its own small LWE key (its
//! shipped `n` and LWE noise), which its own keyswitching key targets and its own bootstrapping
//! key encrypts; when both sets have the same `n` and LWE noise, the small key is shared too.
//! This is what Concrete ML does: one 2048-bit key for every set of a circuit, a small key per
//! set (`SECURITY.md`). Both sets are of one failure-probability family, and every
//! security-defining field of each is a shipped 128-bit set's.
//!
//! # Noise and cost
//! An extraction on set `E` reads a chunk `[b, b + c)` of the accumulator, amplified
//! `2^(P + 1 - b - c)`, in `E`'s positions (`2N_E` per torus); its output adds `E`'s bootstrap
//! noise to the accumulator, which the later extractions amplify and the table's read sees
//! ([`super::reads`]). Its cost is
//! `E`'s measured bootstrap; a table's extractions and read form a chain, and a layer's chains
//! share the cores ([`chains_ms`]).

use super::catalogue::{catalogue, ParamSet, ParamSetId};
use super::facts::PlanFacts;
use super::latency::pbs_per_layer;
use super::plan::NeuronNoise;

/// Where exact rounding runs its extractions ([`PlanRequest::extractions`](super::PlanRequest)).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Extractions {
    /// The cheapest of the table set itself and the sets that may run its extractions
    /// ([`extraction_sets`]), among those that meet the target.
    #[default]
    Cheapest,
    /// On the table set (one set for the whole circuit).
    TableSet,
    /// On this set (it must be one of [`extraction_sets`] of the table set, or the table set).
    On(ParamSetId),
}

impl ParamSet {
    /// Whether bootstraps of `self` and of `other` can add up: both classic, of one
    /// failure-probability family, with the same GLWE key size `k·N` and GLWE noise
    /// distribution, so that one `k·N`-bit key serves both (see the module docs).
    pub fn shares_glwe_key_with(&self, other: &ParamSet) -> bool {
        self.grouping_factor == 1
            && other.grouping_factor == 1
            && self.family_log2_p_fail == other.family_log2_p_fail
            && self.glwe_dimension * self.polynomial_size
                == other.glwe_dimension * other.polynomial_size
            && self.glwe_noise_bound_log2 == other.glwe_noise_bound_log2
    }

    /// Whether the two sets' small LWE keys can be one key: the same `n` and LWE noise.
    pub fn shares_lwe_key_with(&self, other: &ParamSet) -> bool {
        self.lwe_dimension == other.lwe_dimension
            && self.lwe_noise_bound_log2 == other.lwe_noise_bound_log2
    }
}

/// The sets that may run the extractions of tables read on `table` instead of `table` itself:
/// selectable, sharing its GLWE key ([`ParamSet::shares_glwe_key_with`]) and cheaper per
/// bootstrap (a dearer one is never chosen). Cheapest first.
pub fn extraction_sets(table: &ParamSet) -> Vec<&'static ParamSet> {
    let mut sets: Vec<&'static ParamSet> = catalogue()
        .iter()
        .filter(|e| {
            e.id != table.id
                && e.selectable
                && e.shares_glwe_key_with(table)
                && e.pbs_ms_1_thread < table.pbs_ms_1_thread
        })
        .collect();
    sets.sort_by(|a, b| a.pbs_ms_1_thread.total_cmp(&b.pbs_ms_1_thread));
    sets
}

/// The widest chunk the planner tries ([`extraction_chunks`]).
pub const MAX_CHUNK_BITS: u32 = 8;

/// The chunks in which exact rounding clears a table's `round_bits` dropped bits, lowest first:
/// `(b, c)` clears bits `b .. b + c`, with chunks of `chunk_bits` bits (the last one narrower).
///
/// A chunk of one bit costs one bootstrap: the bit is moved onto the padding bit and a
/// constant test vector returns `±c_b`. A chunk of `c >= 2` bits costs two, whatever `c`: the
/// chunk is moved to the top of the torus (`v / 2^c`, the bits below it clear); the first
/// bootstrap reads its top bit as a sign (the phase shifted by a quarter torus less half a
/// step), the second, once that bit is cleared, reads the `c - 1` bits left exactly (their
/// top bit, now clear, is a padding bit). Both tolerate `N / 2^c` positions, against `N / 2`
/// for one bit: the noise the multiplication amplifies is `2^(c-1)` times smaller too, so only
/// the keyswitch's and modulus switch's noise counts more (`docs/fhe-noise.md`, "Clearing in
/// chunks").
///
/// ```
/// use sqnn::fhe::{extraction_bootstraps, extraction_chunks};
/// assert_eq!(extraction_chunks(5, 1), vec![(0, 1), (1, 1), (2, 1), (3, 1), (4, 1)]);
/// assert_eq!(extraction_chunks(5, 4), vec![(0, 4), (4, 1)]);
/// assert_eq!(extraction_chunks(6, 3), vec![(0, 3), (3, 3)]);
/// assert_eq!(extraction_bootstraps(5, 4), 3);
/// assert_eq!(extraction_bootstraps(5, 5), 2);
/// assert_eq!(extraction_bootstraps(4, 1), 4);
/// ```
pub fn extraction_chunks(round_bits: u32, chunk_bits: u32) -> Vec<(u32, u32)> {
    let c = chunk_bits.max(1);
    (0..round_bits)
        .step_by(crate::cast::to_usize(c))
        .map(|b| (b, c.min(round_bits - b)))
        .collect()
}

/// Bootstraps that clear `round_bits` bits in chunks of `chunk_bits` ([`extraction_chunks`]):
/// one per one-bit chunk, two per wider chunk.
pub fn extraction_bootstraps(round_bits: u32, chunk_bits: u32) -> u32 {
    extraction_chunks(round_bits, chunk_bits)
        .iter()
        .map(|&(_, c)| if c == 1 { 1 } else { 2 })
        .sum()
}

/// Every (table set, extraction set) pair the planner may choose, for the tests and the docs.
pub fn extraction_pairs() -> Vec<(ParamSetId, ParamSetId)> {
    catalogue()
        .iter()
        .filter(|t| t.selectable)
        .flat_map(|t| extraction_sets(t).into_iter().map(move |e| (t.id, e.id)))
        .collect()
}

/// The predicted evaluation time (ms) of an exact-rounding circuit whose tables read on
/// `table` and whose extractions run on `ext` (the same set or another), on `cores` cores.
///
/// A table's extractions and its read run one after another (each extraction needs the bits
/// below it cleared), so a layer is a set of chains, `t_table + r·t_ext` each, that the cores
/// take in turn: the layer takes the longest a core is busy when the chains, longest first, go
/// to the core free first ([`chains_ms`]). With more chains than cores this is the work over the
/// cores plus up to one chain of tail (13 tables of 5 to 6 bootstraps on 2 cores: 7 chains' time
/// on one core, not 6.5). While chains run side by side a bootstrap costs what the set's
/// measurement with one bootstrap per core gives ([`ParamSet::together_ms`]), not its time
/// alone. Classic sets only.
pub(super) fn rounding_circuit_ms(
    table: &ParamSet,
    ext: &ParamSet,
    facts: &PlanFacts,
    neurons: &[NeuronNoise],
    cores: usize,
) -> f64 {
    let layers = pbs_per_layer(facts);
    let one_layer = layers.len() == 1;
    let mut tables: Vec<Vec<u32>> = vec![Vec::new(); layers.len()];
    for n in neurons.iter().filter(|n| n.bootstrap) {
        let slot = if one_layer { 0 } else { n.layer };
        if let Some(l) = tables.get_mut(slot) {
            l.push(n.extractions);
        }
    }
    // With two chains or more at once, a bootstrap takes what the measurement of one per core
    // at once gives (the cores share memory bandwidth), at least its time alone.
    let c = cores.max(1);
    let busy = |s: &ParamSet, together: bool| {
        if together && c > 1 {
            s.together_ms()
        } else {
            s.pbs_ms_1_thread
        }
    };
    tables
        .iter()
        .map(|l| {
            let together = l.len() > 1;
            let (t, e) = (busy(table, together), busy(ext, together));
            let chains: Vec<f64> = l.iter().map(|&r| t + f64::from(r) * e).collect();
            chains_ms(&chains, c)
        })
        .sum()
}

/// The time `cores` cores take for independent chains of these lengths (ms), each chain on one
/// core: longest first, each to the core that is free first.
///
/// ```
/// use sqnn::fhe::chains_ms;
/// // 13 chains of 6 bootstraps on 2 cores: 7 chains one after another on one core.
/// assert_eq!(chains_ms(&[6.0; 13], 2), 42.0);
/// assert_eq!(chains_ms(&[5.0, 1.0, 1.0, 1.0], 2), 5.0);
/// ```
pub fn chains_ms(chains: &[f64], cores: usize) -> f64 {
    let mut sorted = chains.to_vec();
    sorted.sort_by(|a, b| b.total_cmp(a));
    let mut busy = vec![0.0f64; cores.max(1)];
    for c in sorted {
        let free = busy
            .iter_mut()
            .min_by(|a, b| a.total_cmp(b))
            .expect("at least one core");
        *free += c;
    }
    busy.into_iter().fold(0.0, f64::max)
}

/// Per-position units: a variance in `from`'s squared positions (`2N` per torus) in `to`'s.
pub(super) fn rescale_variance(v: f64, from: &ParamSet, to: &ParamSet) -> f64 {
    let r = to.polynomial_size as f64 / from.polynomial_size as f64;
    v * r * r
}
