//! Exact rounding ([`FhePlan::exact_rounding`](crate::fhe::FhePlan::exact_rounding)): a table
//! that drops `r` low bits first clears them, in chunks of one or two bootstraps each, then
//! reads the cleared value rescaled so that its buckets are as far apart as the space allows.
//!
//! # Clearing
//! The dropped bits are cleared in chunks ([`fhe::extraction_chunks`]), lowest first. Chunk
//! `(b, c)` (bits below `b` already clear) is moved to the top of the torus by multiplying the
//! held value `x` by `2^(P + 1 - b - c)`: the phase is `v / 2^c`, `v` the chunk's value. Its
//! top bit `t = b + c - 1` is read as a sign: with the phase moved by a quarter torus less half
//! a step, the values with `t` clear sit around 0 and those with `t` set around half the
//! torus, and the bootstrap of a constant test vector returns `+c_t` or `-c_t`, tolerating
//! `1 / 2^(c+1)` of the torus (a quarter for one bit). `x + out - c_t` subtracts `2^t` exactly
//! when the bit is set. For `c >= 2`, a second bootstrap reads the `c - 1` bits left (their top
//! bit, now clear, is a padding bit) with the same tolerance and returns `-v·2^b`, which
//! clears them. These bootstraps may run on a cheaper set than the table's read
//! ([`crate::fhe::extraction_sets`]): its output is under the same `k·N`-bit key, so the sum is
//! a ciphertext of the table set again. The margins are aligned so that the cleared bits are the table index's
//! ([`fhe::aligned_margins`]): the cleared value is `c + j·2^r` for the table's bucket `j`.
//!
//! # The rescaled read
//! The read's own noise (keyswitch and modulus switch) is added after any multiplication of
//! the ciphertext, so spreading the buckets apart widens its tolerance for free. With `nb`
//! buckets, the read subtracts `c` and multiplies by `2^s`, `s` the largest with
//! `(nb - 1)·2^(r+s) <= 2^P` ([`fhe::rounding_scale`]): bucket `j` sits at `j·2^(r+s)`, centred
//! in a box of `2^(r+s)` values, so the read tolerates `2^(r+s-1)` values either way.
//!
//! Bucket 0 then straddles 0: its lower half is read through the negacyclic half of the test
//! vector (a phase in `[-2^(r+s-1), 0)` reads the *negated* entry of the top slots), and when
//! `nb - 1 = 2^(P-r-s)` the last bucket sits on the padding bit and reads the same top slots
//! positively. Both hold with one constant: the test vector holds `o_j - K` and the result gets
//! `K` back, `K = (o_0 + o_top) / 2` (`o_top` the last bucket's output when it sits on the
//! padding bit, else `o_0`), so the top slots hold `o_top - K = -(o_0 - K)`. `K` may be a half
//! value: everything is counted in half values (`Δ_P / 2`). This buys one bucket: 17 buckets
//! of a 9-bit space read 64 positions apart on `N = 2048`, not 32.

use ::tfhe::core_crypto::prelude::{
    generate_programmable_bootstrap_glwe_lut, lwe_ciphertext_add_assign,
    lwe_ciphertext_cleartext_mul_assign, lwe_ciphertext_plaintext_add_assign, CiphertextModulus,
    Cleartext, GlweSize, Plaintext, PolynomialSize,
};
use ::tfhe::shortint::ciphertext::Degree;
use ::tfhe::shortint::server_key::LookupTableOwned;
use ::tfhe::shortint::Ciphertext;
use ::tfhe::shortint::ServerKey as ShortintServerKey;

use super::eval::{extraction_constant, PreparedCircuit};
use super::keys::ServerKey;
use super::layout::Layout;
use crate::analyze::CheckedGraph;
use crate::error::{Error, Result};
use crate::fhe;
use crate::ir::{NodeId, Op};
use crate::progress::Progress;

/// How one table's read rescales its cleared value (see the module docs).
#[derive(Clone, Debug)]
pub(super) struct Rescale {
    /// `c·Δ_P`, subtracted before the multiplication (mod 2^64).
    lowest: u64,
    /// `s`: the multiplication by `2^s`.
    scale_bits: u32,
    /// `K·Δ_P`, added to the bootstrap's output (mod 2^64).
    restore: u64,
}

impl ServerKey {
    /// The test vector of exact-rounding lut node `id` and its [`Rescale`].
    pub(super) fn rounded_lookup_table(
        &self,
        checked: &CheckedGraph,
        layout: &Layout,
        id: NodeId,
    ) -> Result<(LookupTableOwned, Rescale)> {
        let Op::Lut {
            input,
            offset,
            round_bits: r,
            table,
            ..
        } = &checked.graph().nodes[id].op
        else {
            return Err(Error::Backend(format!("node {id} is not a lut")));
        };
        let facts = checked.facts();
        let iv = facts[*input].interval;
        let p = layout.space_bits;
        let (c, s, buckets) = fhe::rounding_scale(iv.lo, iv.hi, p, *r, iv.lo.wrapping_add(*offset))
            .ok_or_else(|| {
                Error::Keys(format!(
                    "a value of [{}, {}] does not fit a {p}-bit ciphertext space: generate \
                         keys for this circuit",
                    iv.lo, iv.hi
                ))
            })?;
        let m_in = layout.below[*input];
        let (lo_out, m_out) = (facts[id].interval.lo, layout.below[id]);
        let last = table.len().saturating_sub(1);
        // Positions in a space of at most 2^(P+1) values (`rounding_scale`): far inside `i64`.
        let (c, buckets) = (c.cast_signed(), buckets.cast_signed());
        // The held output of bucket `j` (clamped to the reachable ones).
        let out = |j: i64| -> i64 {
            let held = c + (j.clamp(0, buckets - 1) << r);
            let v = (held - m_in + iv.lo).clamp(iv.lo, iv.hi);
            let idx = crate::cast::index((v + offset) >> r).min(last);
            table[idx] - lo_out + m_out
        };
        // The top slots: the last bucket when it sits on the padding bit, and (negated) bucket
        // 0's lower half; 2K = o_0 + o_top makes both read right.
        let top_bucket = 1i64 << (p - r - s);
        let o_top = if buckets - 1 == top_bucket {
            out(top_bucket)
        } else {
            out(0)
        };
        let two_k = out(0) + o_top;
        // In half values (Δ_P / 2), modulo the torus (2^(P+2) halves): 2·o_j - 2K.
        let torus = 1i64 << (p + 2);
        let half = layout.delta >> 1;
        let align = fhe::read_align_bits(self.binding.set, p);
        let entry = |box_index: u64| -> u64 {
            let k = (box_index << align).cast_signed(); // < 2N: far inside i64
            let j = (k + (1i64 << (r + s - 1))) >> (r + s);
            let o = if j >= top_bucket { o_top } else { out(j) };
            (2 * o - two_k).rem_euclid(torus).unsigned_abs() // in [0, torus)
        };
        let acc = generate_programmable_bootstrap_glwe_lut(
            PolynomialSize(self.binding.set.polynomial_size),
            GlweSize(self.binding.set.glwe_dimension + 1),
            1usize << (p - align),
            CiphertextModulus::new_native(),
            half,
            entry,
        );
        let lut = LookupTableOwned {
            acc,
            degree: Degree::new((1u64 << p) - 1),
        };
        let rescale = Rescale {
            lowest: c.cast_unsigned().wrapping_mul(layout.delta), // mod 2^64
            scale_bits: s,
            restore: two_k.rem_euclid(torus).unsigned_abs().wrapping_mul(half),
        };
        Ok((lut, rescale))
    }

    /// Exact rounding's read of `src` (the dot a table reads): clears its `r` low bits with the
    /// extraction key, rescales the result, bootstraps it through `lut` with the table key and
    /// adds `K` back (see the module docs).
    pub(super) fn rounded_read(
        &self,
        src: &Ciphertext,
        (r, rescale, lut): (u32, &Rescale, &LookupTableOwned),
        (key, extract): (&ShortintServerKey, &ShortintServerKey),
        prepared: &PreparedCircuit,
        progress: &dyn Progress,
    ) -> Ciphertext {
        let delta = prepared.layout.delta;
        let p = prepared.layout.space_bits;
        let mut x = src.clone();
        for (b, c) in fhe::extraction_chunks(r, self.binding.encoding.chunk_bits) {
            // The chunk at the top of the torus: phase v / 2^c.
            let lift = Cleartext(1u64 << (p + 1 - b - c));
            // Its top bit as a sign: the phase moved so that the values with the top bit clear
            // are centred on 0 (a quarter of the torus less half a step).
            let top = b + c - 1;
            let mut y = x.clone();
            lwe_ciphertext_cleartext_mul_assign(&mut y.ct, lift);
            let centre = (1u64 << (63 - c)).wrapping_sub(1u64 << 62);
            lwe_ciphertext_plaintext_add_assign(&mut y.ct, Plaintext(centre));
            let out = extract.apply_lookup_table(&y, &prepared.extract[crate::cast::to_usize(top)]);
            lwe_ciphertext_add_assign(&mut x.ct, &out.ct);
            lwe_ciphertext_plaintext_add_assign(
                &mut x.ct,
                Plaintext(extraction_constant(delta, top).wrapping_neg()),
            );
            progress.advance(1);
            if c == 1 {
                continue;
            }
            // The c - 1 bits left, their top bit now clear: read exactly, subtracted.
            let Some((_, rest)) = prepared.rest.iter().find(|(k, _)| *k == (b, c)) else {
                unreachable!("prepared chunk tables cover every table's chunks")
            };
            let mut y = x.clone();
            lwe_ciphertext_cleartext_mul_assign(&mut y.ct, lift);
            let out = extract.apply_lookup_table(&y, rest);
            lwe_ciphertext_add_assign(&mut x.ct, &out.ct);
            progress.advance(1);
        }
        lwe_ciphertext_plaintext_add_assign(&mut x.ct, Plaintext(rescale.lowest.wrapping_neg()));
        lwe_ciphertext_cleartext_mul_assign(&mut x.ct, Cleartext(1u64 << rescale.scale_bits));
        lwe_ciphertext_plaintext_add_assign(&mut x.ct, Plaintext(prepared.read_shift));
        let mut out = key.apply_lookup_table(&x, lut);
        lwe_ciphertext_plaintext_add_assign(&mut out.ct, Plaintext(rescale.restore));
        out
    }
}
