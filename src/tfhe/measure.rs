//! Measurements that need the secret key: the noise model's calibration, table reads observed
//! in an encrypted evaluation, per-stage timings. Only with the `calibration` feature: it
//! exposes the `shortint` keys inside sqnn's keys, secret key included, so it is for measuring
//! (`examples/calibrate.rs`, the tests) and never part of a deployment or of the
//! client/server protocol.

use ::tfhe::core_crypto::prelude::{
    lwe_ciphertext_add_assign, lwe_ciphertext_cleartext_mul_assign, Cleartext, LweCiphertext,
};
use ::tfhe::shortint::client_key::atomic_pattern::AtomicPatternClientKey;
use rayon::prelude::*;
use serde::Serialize;

use crate::analyze::CheckedGraph;
use crate::error::{Error, Result};
use crate::fhe::{self, ParamSet};
use crate::ir::{NodeId, Op};
use crate::progress::NoProgress;

use super::backend::TfheBackend;
use super::eval::{PreparedCircuit, StageTiming};
use super::keys::{ClientKey, EncryptedInput, ServerKey};
use super::layout::Layout;
use super::params::{ggsw_count, tfhe_parameters};
use ::tfhe::core_crypto::prelude::{
    keyswitch_lwe_ciphertext, lwe_ciphertext_centered_binary_modulus_switch, CiphertextModulusLog,
    LweKeyswitchKeyOwned, LweSecretKeyView, ModulusSwitchedLweCiphertext,
};
use ::tfhe::shortint::atomic_pattern::AtomicPatternServerKey;
use ::tfhe::shortint::Ciphertext;

/// Error statistics at a bootstrap's input, in modulus-switch units (`2N`).
#[derive(Clone, Debug, Serialize)]
pub struct NoiseStats {
    /// Samples measured.
    pub trials: usize,
    /// The weight applied to a bootstrap output (0: a fresh encryption, weight 1).
    pub weight: u64,
    /// Mean error.
    pub mean: f64,
    /// Standard deviation.
    pub std: f64,
    /// Largest |error|.
    pub max_abs: f64,
    /// Errors at or beyond the tolerance (half a box).
    pub beyond_tolerance: usize,
    /// Excess kurtosis of the errors (0 for a Gaussian, -1.2 for a uniform error).
    pub excess_kurtosis: f64,
}

/// Sample mean, variance (unbiased) and excess kurtosis of `errors`.
pub fn moments(errors: &[f64]) -> (f64, f64, f64) {
    let n = errors.len().max(2) as f64;
    let mean = errors.iter().sum::<f64>() / n;
    let m2 = errors.iter().map(|e| (e - mean).powi(2)).sum::<f64>() / n;
    let m4 = errors.iter().map(|e| (e - mean).powi(4)).sum::<f64>() / n;
    let kurtosis = if m2 > 0.0 { m4 / (m2 * m2) - 3.0 } else { 0.0 };
    (mean, m2 * n / (n - 1.0), kurtosis)
}

/// The position in `[0, 2N)` that a bootstrap of `set` reads for the keyswitched
/// ciphertext `ks`, computed with the small secret key exactly as the set's modulus switch
/// rounds: tfhe's centred switch, plain rounding of each mask element, or (multi-bit)
/// rounding of each group's subset sum selected by the key bits.
pub fn switched_position(set: &ParamSet, small: &[u64], ks: &LweCiphertext<Vec<u64>>) -> u64 {
    let two_n = 2 * crate::cast::to_u64(set.polynomial_size);
    let log = two_n.trailing_zeros();
    let round = |x: u64| x.wrapping_add(1u64 << (63 - log)) >> (64 - log);
    let g = set.grouping_factor.max(1);
    let phase = match set.modulus_switch {
        fhe::ModulusSwitch::Centered if g == 1 => {
            let ms = lwe_ciphertext_centered_binary_modulus_switch::<u64, u64, _>(
                ks.as_view(),
                CiphertextModulusLog(crate::cast::to_usize(log)),
            );
            let mut phase = ms.body();
            for (a, s) in ms.mask().zip(small) {
                phase = phase.wrapping_sub(a.wrapping_mul(*s));
            }
            phase
        }
        _ => {
            let mask = ks.get_mask();
            let mut phase = round(*ks.get_body().data);
            for (a, s) in mask.as_ref().chunks(g).zip(small.chunks(g)) {
                let sum = a
                    .iter()
                    .zip(s)
                    .fold(0u64, |acc, (a, s)| acc.wrapping_add(a.wrapping_mul(*s)));
                phase = phase.wrapping_sub(round(sum));
            }
            phase
        }
    };
    phase % two_n
}

/// The `shortint` keys inside sqnn's keys (for measurements with the same key material); an
/// error for the keys of a circuit without tables, whose server key holds none.
pub fn shortint_keys<'a>(
    client: &'a ClientKey,
    server: &'a ServerKey,
) -> Result<(
    &'a ::tfhe::shortint::ClientKey,
    &'a ::tfhe::shortint::ServerKey,
)> {
    Ok((&client.key, server.bootstrapping_key()?))
}

/// Bytes of the set's evaluation key in memory: the Fourier bootstrapping key
/// (`ggsw_count · (k+1)² · levels · N` complex halves, 8 bytes per coefficient) and the
/// keyswitching key (`k·N · levels · (n + 1)` words).
pub fn server_key_bytes(set: &ParamSet) -> Result<u64> {
    let p = tfhe_parameters(set)?;
    let k1 = crate::cast::to_u64(set.glwe_dimension + 1);
    let bsk = crate::cast::to_u64(ggsw_count(set))
        * k1
        * k1
        * crate::cast::to_u64(p.pbs_level().0)
        * crate::cast::to_u64(set.polynomial_size)
        * 8;
    let ksk = crate::cast::to_u64(set.glwe_dimension * set.polynomial_size)
        * crate::cast::to_u64(p.ks_level().0)
        * (crate::cast::to_u64(set.lwe_dimension) + 1)
        * 8;
    Ok(bsk + ksk)
}

/// The error entering a bootstrap (after keyswitch and centred modulus switch), measured
/// with the secret key: `weight · (a bootstrap output encrypting 0)`, or a fresh encryption
/// of 0 when `weight == 0`. Bootstraps run in parallel. The mean is about -1/2: tfhe's
/// centred modulus switch subtracts half a position (see [`crate::fhe`], "The read").
pub fn pbs_input_noise(
    set: &ParamSet,
    cks: &::tfhe::shortint::ClientKey,
    sks: &::tfhe::shortint::ServerKey,
    weight: u64,
    trials: usize,
) -> Result<NoiseStats> {
    let AtomicPatternClientKey::Standard(cap) = &cks.atomic_pattern else {
        return Err(Error::Backend("standard atomic pattern expected".into()));
    };
    let AtomicPatternServerKey::Standard(sap) = &sks.atomic_pattern else {
        return Err(Error::Backend("standard atomic pattern expected".into()));
    };
    let small = cap.small_lwe_secret_key();
    let two_n = 2 * crate::cast::to_u64(set.polynomial_size);
    // The identity table: a constant table has an all-zero accumulator, whose bootstrap
    // output is exactly zero and noiseless; every other table gives the typical noise.
    let id_lut = sks.generate_lookup_table(|x| x);
    let errors: Vec<f64> = (0..trials)
        .into_par_iter()
        .map(|_| {
            let mut ct = cks.unchecked_encrypt(0);
            if weight > 0 {
                ct = sks.apply_lookup_table(&ct, &id_lut);
                lwe_ciphertext_cleartext_mul_assign(&mut ct.ct, Cleartext(weight));
            }
            let mut out = LweCiphertext::new(
                0u64,
                sap.key_switching_key.output_lwe_size(),
                ct.ct.ciphertext_modulus(),
            );
            keyswitch_lwe_ciphertext(&sap.key_switching_key, &ct.ct, &mut out);
            let p = switched_position(set, small.as_ref(), &out);
            if p >= two_n / 2 {
                p as f64 - two_n as f64
            } else {
                p as f64
            }
        })
        .collect();
    let (mean, var, excess_kurtosis) = moments(&errors);
    let t = set.tolerance();
    Ok(NoiseStats {
        trials,
        weight,
        mean,
        std: var.sqrt(),
        max_abs: errors.iter().fold(0.0f64, |m, e| m.max(e.abs())),
        beyond_tolerance: errors.iter().filter(|e| e.abs() >= t).count(),
        excess_kurtosis,
    })
}

/// Variance of a bootstrap output's error (identity table on encryptions of 0), measured
/// with the secret key, in squared modulus-switch units: the noise model's `b`.
pub fn bootstrap_output_variance(
    set: &ParamSet,
    cks: &::tfhe::shortint::ClientKey,
    sks: &::tfhe::shortint::ServerKey,
    trials: usize,
) -> f64 {
    bootstrap_output_moments(set, cks, sks, trials).1
}

/// [`moments`] of a bootstrap output's error (identity table on encryptions of 0), in
/// modulus-switch units: the variance is the noise model's `b`, the kurtosis checks its shape.
pub fn bootstrap_output_moments(
    set: &ParamSet,
    cks: &::tfhe::shortint::ClientKey,
    sks: &::tfhe::shortint::ServerKey,
    trials: usize,
) -> (f64, f64, f64) {
    let id_lut = sks.generate_lookup_table(|x| x);
    let unit = 2f64.powi(64) / (2 * set.polynomial_size) as f64;
    let errors: Vec<f64> = (0..trials)
        .into_par_iter()
        .map(|_| {
            let out = sks.apply_lookup_table(&cks.unchecked_encrypt(0), &id_lut);
            // The torus read as signed (mod 2^64): an error near 0 either side.
            cks.decrypt_no_decode(&out).0.cast_signed() as f64 / unit
        })
        .collect();
    moments(&errors)
}

/// A deliberately noisy neuron, `trials` times: `x + weight · c`, where `x` is a fresh
/// encryption of a random value in `[0, M)` and `c` a bootstrap output encrypting 0 (its
/// noise multiplied by `weight`), then the identity table. Returns how many bootstraps read
/// the wrong entry. Σw² of the neuron is `weight² + 1`.
///
/// (A checked circuit cannot hold such a neuron: its accumulator range `Σ|w|·(hi - lo)`
/// must fit the message space, which bounds Σw² by `(M - 1)²`, except for weights on
/// constant values, whose ciphertexts are noiseless.)
pub fn noisy_neuron_failures(
    set: &ParamSet,
    cks: &::tfhe::shortint::ClientKey,
    sks: &::tfhe::shortint::ServerKey,
    weight: u64,
    trials: usize,
    seed: u64,
) -> usize {
    use rand::{Rng, SeedableRng};
    let id_lut = sks.generate_lookup_table(|x| x);
    let m = set.message_space();
    (0..trials)
        .into_par_iter()
        .filter(|&i| {
            let mut rng =
                rand_chacha::ChaCha8Rng::seed_from_u64(seed ^ (crate::cast::to_u64(i) << 20));
            let x = rng.gen_range(0..m);
            let zero = sks.apply_lookup_table(&cks.unchecked_encrypt(0), &id_lut);
            let mut acc = cks.unchecked_encrypt(x);
            let mut tmp = zero.ct.clone();
            lwe_ciphertext_cleartext_mul_assign(&mut tmp, Cleartext(weight));
            lwe_ciphertext_add_assign(&mut acc.ct, &tmp);
            let out = sks.apply_lookup_table(&acc, &id_lut);
            cks.decrypt_message_and_carry(&out) != x
        })
        .count()
}

/// One table read of an encrypted evaluation, observed with the secret key.
#[derive(Clone, Debug, Serialize)]
pub struct TableRead {
    /// The lut node.
    pub lut: NodeId,
    /// The dot node it reads.
    pub dot: NodeId,
    /// The accumulator's value in this evaluation: the dot evaluated in clear on the
    /// decrypted values of its sources (earlier tables' outputs as they came out).
    pub value: i64,
    /// `d`: the index the bootstrap read minus the value's index, from the phase after the
    /// keyswitch and modulus switch (exactly what the bootstrap reads).
    pub offset: i64,
    /// The error `e` in positions (of `2N`): the switched phase minus the value's position,
    /// corrected for the half-position shifts; `d = floor(e / box + 1/2)` up to rounding.
    pub position_error: f64,
    /// The table's decrypted output.
    pub output: i64,
    /// The table's entry at `clamp(value + offset, lo, hi)`: equal to `output` unless the
    /// read went past the margin. `None` when it did.
    pub expected: Option<i64>,
    /// The table's entry at `value` (what an exact read gives).
    pub exact: i64,
}

/// Encrypts `inputs`, evaluates the circuit and observes every table read with the secret
/// key. Returns the reads (in node order) and the decrypted outputs.
pub fn table_reads(
    backend: &TfheBackend,
    checked: &CheckedGraph,
    prepared: &PreparedCircuit,
    inputs: &[i64],
) -> Result<(Vec<TableRead>, Vec<i64>)> {
    let client = backend.client();
    let server = backend.server();
    let AtomicPatternClientKey::Standard(cap) = &client.key.atomic_pattern else {
        return Err(Error::Backend("standard atomic pattern expected".into()));
    };
    let AtomicPatternServerKey::Standard(sap) = &server.bootstrapping_key()?.atomic_pattern else {
        return Err(Error::Backend("standard atomic pattern expected".into()));
    };
    let observer = ReadObserver {
        checked,
        layout: &prepared.layout,
        client,
        small: cap.small_lwe_secret_key(),
        ksk: &sap.key_switching_key,
        set: server.set(),
    };
    let enc = client.encrypt(checked, inputs)?;
    let vals = server.evaluate_nodes(checked, prepared, &enc, &NoProgress, None)?;
    let g = checked.graph();
    let mut value = vec![0i64; g.nodes.len()];
    for (&id, &x) in g.input_nodes().iter().zip(inputs) {
        value[id] = x;
    }
    let mut reads = Vec::new();
    for (id, n) in g.nodes.iter().enumerate() {
        match &n.op {
            Op::Input { .. } => {}
            Op::Dot { terms, constant } => {
                value[id] = terms
                    .iter()
                    .fold(*constant, |acc, &(s, w)| acc + w * value[s]);
            }
            Op::Lut { .. } => {
                let read = observer.read(&vals, &value, id);
                value[id] = read.output;
                reads.push(read);
            }
        }
    }
    let outputs = g
        .outputs
        .iter()
        .map(|&o| observer.decrypt(&vals, o))
        .collect();
    Ok((reads, outputs))
}

/// What observing a read needs: the secret keys, the keyswitching key and the encoding.
struct ReadObserver<'a> {
    checked: &'a CheckedGraph,
    layout: &'a Layout,
    client: &'a ClientKey,
    small: LweSecretKeyView<'a, u64>,
    ksk: &'a LweKeyswitchKeyOwned<u64>,
    set: &'a ParamSet,
}

impl ReadObserver<'_> {
    /// The decrypted value of node `id` in an evaluation.
    fn decrypt(&self, vals: &[Option<Ciphertext>], id: NodeId) -> i64 {
        let ct = vals[id].as_ref().expect("evaluated");
        let phase = self.client.key.decrypt_no_decode(ct).0;
        self.layout.decode(self.checked.facts(), id, phase)
    }

    /// The read of lut node `id`: its dot's value (`value`, in clear from the decrypted
    /// sources), the index the bootstrap reads (from the phase after the keyswitch and modulus
    /// switch), and the table's decrypted output.
    fn read(&self, vals: &[Option<Ciphertext>], value: &[i64], id: NodeId) -> TableRead {
        let Op::Lut {
            input,
            offset,
            round_bits,
            table,
            ..
        } = &self.checked.graph().nodes[id].op
        else {
            unreachable!("a lut node")
        };
        let facts = self.checked.facts();
        // The dot's own space (the plan's, or narrower when the dot is scaled).
        let p_bits = self.layout.node_space(*input);
        let two_n = 2 * crate::cast::to_i64(self.set.polynomial_size);
        let bx = crate::cast::to_i64((self.set.polynomial_size >> p_bits).max(1));
        let hb = bx / 2;
        // The switched position is round(k0·box + s + e - 1/2) with a centred switch (tfhe
        // subtracts half a position; sqnn adds s = 1/2 when box = 1), round(k0·box + s + e)
        // with a rounding one (sqnn adds s = -1/2 when box >= 2): either way
        // e ≈ pos - k0·box + 1/2 when box >= 2, pos - k0·box when box = 1.
        let unshift = if bx >= 2 { 0.5 } else { 0.0 };
        let padded = 1i64 << (p_bits + 1);
        let output = self.decrypt(vals, id);
        let dot = *input;
        let v = value[dot];
        let iv = facts[dot].interval;
        // A position in [0, 2N) and a held value in [0, 2^(P+1)): far inside i64.
        let pos = self.switched_position(vals, dot).cast_signed();
        let k0 = self.layout.held(facts, dot, v).cast_signed();
        let k = ((pos + hb) / bx).rem_euclid(padded);
        let mut d = (k - k0).rem_euclid(padded);
        if d >= padded / 2 {
            d -= padded;
        }
        let mut e = (pos - k0 * bx).rem_euclid(two_n);
        if e >= two_n / 2 {
            e -= two_n;
        }
        let entry = |x: i64| table[crate::cast::index((x + offset) >> round_bits)];
        let held = k0 + d;
        let expected = (0..(1i64 << p_bits))
            .contains(&held)
            .then(|| entry((v + d).clamp(iv.lo, iv.hi)));
        TableRead {
            lut: id,
            dot,
            value: v,
            offset: d,
            position_error: e as f64 + unshift,
            output,
            expected,
            exact: entry(v.clamp(iv.lo, iv.hi)),
        }
    }

    /// The position a bootstrap of dot `dot`'s ciphertext reads, after the keyswitch.
    fn switched_position(&self, vals: &[Option<Ciphertext>], dot: NodeId) -> u64 {
        let src = vals[dot].as_ref().expect("evaluated");
        let mut ks = LweCiphertext::new(
            0u64,
            self.ksk.output_lwe_size(),
            src.ct.ciphertext_modulus(),
        );
        keyswitch_lwe_ciphertext(self.ksk, &src.ct, &mut ks);
        switched_position(self.set, self.small.as_ref(), &ks)
    }
}

/// Evaluates one encrypted sample and times each stage (bootstraps, then dot products).
pub fn evaluate_profiled(
    server: &ServerKey,
    checked: &CheckedGraph,
    prepared: &PreparedCircuit,
    input: &EncryptedInput,
) -> Result<Vec<StageTiming>> {
    let mut profile = Vec::new();
    server.evaluate_nodes(checked, prepared, input, &NoProgress, Some(&mut profile))?;
    Ok(profile)
}
