//! Evaluation with the server key alone: preparing a circuit (test vectors, dot constants),
//! running its stages in parallel (tables, then the dots that read them), and exact rounding
//! (clearing the dropped bits before a read).

use std::time::Instant;

use ::tfhe::core_crypto::prelude::{
    generate_programmable_bootstrap_glwe_lut, lwe_ciphertext_add_assign,
    lwe_ciphertext_cleartext_mul_assign, lwe_ciphertext_plaintext_add_assign, CiphertextModulus,
    Cleartext, GlweSize, LweCiphertext, Plaintext, PolynomialSize,
};
use ::tfhe::shortint::ciphertext::{Degree, NoiseLevel};
use ::tfhe::shortint::parameters::{AtomicPatternKind, CarryModulus, MessageModulus};
use ::tfhe::shortint::server_key::LookupTableOwned;
use ::tfhe::shortint::{Ciphertext, PBSOrder};
use rayon::prelude::*;
use serde::Serialize;

use super::keys::{
    check_ciphertexts, check_pair, digest_mismatch, encoding_mismatch, EncryptedInput,
    EncryptedOutput, ServerKey,
};
use super::layout::{Circuit, Layout};
use super::rounding::Rescale;
use crate::analyze::CheckedGraph;
use crate::error::{Error, Result};
use crate::fhe;
use crate::ir::{IntGraph, NodeFact, NodeId, Op};
use crate::progress::{NoProgress, Progress};

/// `c_b = 2^b · Δ_P / 2`: half the weight of bit `b` of a held value.
pub(super) fn extraction_constant(delta: u64, b: u32) -> u64 {
    (delta >> 1).wrapping_shl(b)
}

/// A circuit prepared for one server key: evaluation order, encoding, one test vector per `Lut`.
pub struct PreparedCircuit {
    pub(super) circuit: Circuit,
    pub(super) layout: Layout,
    pub(super) luts: Vec<Option<LookupTableOwned>>,
    /// `(c + Σ w_j·(lo_j - m_j) - lo + m)·Δ` per dot (mod 2^64; `Δ = Δ_P·2^s` of a dot that a
    /// table reads scaled, whose weights are multiplied by `2^s` too), plus its read shift.
    pub(super) constants: Vec<u64>,
    /// Exact rounding: test vector `b` returns `+c_b` for bit `b` clear and `-c_b` for bit `b`
    /// set, `c_b = 2^b·Δ_P / 2` (one per bit up to the most any table drops): a chunk's first
    /// bootstrap, which reads its top bit as a sign.
    pub(super) extract: Vec<LookupTableOwned>,
    /// Exact rounding in chunks of two bits or more: per chunk `(b, c)` of some table, the
    /// test vector of its second bootstrap, `v ↦ -v·2^b·Δ_P` for the `c - 1` bits `v` left
    /// once its top bit is cleared (see `rounding.rs`).
    pub(super) rest: Vec<((u32, u32), LookupTableOwned)>,
    /// What a table's read adds to the unscaled value it reads (exact rounding's rescaled
    /// read; see [`ServerKey::prepare`]).
    pub(super) read_shift: u64,
    /// Exact rounding: per lut node that drops bits, how its read rescales the cleared value
    /// (see `rounding.rs`); `None` elsewhere.
    pub(super) rescale: Vec<Option<Rescale>>,
}

impl PreparedCircuit {
    /// The encoding's space `P` (bits).
    pub fn space_bits(&self) -> u32 {
        self.layout.space_bits
    }
}

impl ServerKey {
    /// Prepares `checked` for evaluation: checks the digest and the encoding, builds every
    /// table's test vector and every dot's constant.
    pub fn prepare(&self, checked: &CheckedGraph) -> Result<PreparedCircuit> {
        let circuit = Circuit::new(checked)?;
        if circuit.digest != self.binding.digest {
            return Err(digest_mismatch(
                "the server key",
                &self.binding.digest,
                &circuit.digest,
            ));
        }
        circuit.check_supported(self.binding.set, self.binding.encoding.space_bits)?;
        if circuit.tables {
            // Refused before any test vector is built.
            self.bootstrapping_key()?;
        }
        let g = checked.graph();
        let layout = Layout::new(checked, self.binding.set, &self.binding.encoding)?;
        let shift = self.read_shift(layout.space_bits);
        let extracted = self.extracted_dots(g);
        let mut luts = vec![None; g.nodes.len()];
        let mut rescale = vec![None; g.nodes.len()];
        let mut constants = vec![0u64; g.nodes.len()];
        for (id, n) in g.nodes.iter().enumerate() {
            match &n.op {
                Op::Input { .. } => {}
                Op::Dot { terms, constant } => {
                    if let Some(&(src, _)) = terms.iter().find(|&&(j, _)| layout.scale_bits[j] > 0)
                    {
                        return Err(Error::Backend(format!(
                            "dot {id} reads dot {src}, which a table reads scaled: not a \
                             circuit sqnn lowers"
                        )));
                    }
                    let mut k = dot_constant(checked.facts(), &layout, id, terms, *constant);
                    if circuit.read_by_table[id] && !extracted[id] {
                        k = k.wrapping_add(self.read_shift(layout.node_space(id)));
                    }
                    constants[id] = k;
                }
                Op::Lut { round_bits, .. }
                    if self.binding.encoding.exact_rounding && *round_bits > 0 =>
                {
                    let (lut, r) = self.rounded_lookup_table(checked, &layout, id)?;
                    luts[id] = Some(lut);
                    rescale[id] = Some(r);
                }
                Op::Lut { .. } => luts[id] = Some(self.lookup_table(checked, &layout, id)?),
            }
        }
        let extract = self.extraction_tables(&circuit, &layout);
        let rest = self.rest_tables(&circuit, &layout);
        Ok(PreparedCircuit {
            circuit,
            layout,
            luts,
            constants,
            extract,
            rest,
            read_shift: shift,
            rescale,
        })
    }

    /// What a dot that a table reads in a `space_bits`-bit space (the plan's, or the dot's own
    /// when it is scaled) is shifted by, so that the read rounds symmetrically.
    ///
    /// Every read must give `k·box + floor(e)` with a box of 2 positions or more (the half-box
    /// rotation of the table then rounds it symmetrically) and `floor(k·box + e + box/2)` with a
    /// box of one position or less. tfhe's centred modulus switch subtracts half a position
    /// itself (`floor`): with a box of one position or less, half a value is added. A rounding
    /// switch (2^-64 classic sets, multi-bit bootstraps) gives `round`: with a box of 2 or more,
    /// half a position is subtracted; with less, half a value minus half a position is added.
    fn read_shift(&self, space_bits: u32) -> u64 {
        // Half a position of the modulus switch to 2N: 2^64 / (4N); half a value: Δ / 2.
        let n_log = self.binding.set.polynomial_size.trailing_zeros();
        let half_position = 1u64 << (62 - n_log);
        let half_value = 1u64 << (62 - space_bits);
        let one_position = self.binding.set.box_positions(space_bits) < 2.0;
        match (self.binding.set.modulus_switch, one_position) {
            (fhe::ModulusSwitch::Centered, true) => half_value,
            (fhe::ModulusSwitch::Centered, false) => 0,
            (fhe::ModulusSwitch::Rounded, false) => half_position.wrapping_neg(),
            (fhe::ModulusSwitch::Rounded, true) => half_value.wrapping_sub(half_position),
        }
    }

    /// The dots whose tables clear the dropped bits first (exact rounding): those tables read
    /// the cleared value, so the read shift goes there instead of onto the dot.
    fn extracted_dots(&self, g: &IntGraph) -> Vec<bool> {
        let mut extracted = vec![false; g.nodes.len()];
        if self.binding.encoding.exact_rounding {
            for n in &g.nodes {
                if let Op::Lut {
                    input, round_bits, ..
                } = n.op
                {
                    if round_bits > 0 {
                        extracted[input] = true;
                    }
                }
            }
        }
        extracted
    }

    /// Exact rounding: one sign test vector per bit up to the most any table drops (see
    /// [`PreparedCircuit`]), on the set the extractions run on; none without exact rounding.
    fn extraction_tables(&self, circuit: &Circuit, layout: &Layout) -> Vec<LookupTableOwned> {
        if !self.binding.encoding.exact_rounding {
            return Vec::new();
        }
        let set = self.extraction_params();
        (0..circuit.max_round_bits)
            .map(|b| LookupTableOwned {
                acc: generate_programmable_bootstrap_glwe_lut(
                    PolynomialSize(set.polynomial_size),
                    GlweSize(set.glwe_dimension + 1),
                    1,
                    CiphertextModulus::new_native(),
                    extraction_constant(layout.delta, b),
                    |_| 1u64,
                ),
                degree: Degree::new((1u64 << self.binding.encoding.space_bits) - 1),
            })
            .collect()
    }

    /// Exact rounding in chunks: the second bootstrap's test vector of every chunk `(b, c)`,
    /// `c >= 2`, that a table dropping at most the circuit's most bits uses: `2^(c-1)` boxes
    /// over half the torus, box `v` holding `-v·2^b·Δ_P` (mod 2^64).
    fn rest_tables(
        &self,
        circuit: &Circuit,
        layout: &Layout,
    ) -> Vec<((u32, u32), LookupTableOwned)> {
        if !self.binding.encoding.exact_rounding || self.binding.encoding.chunk_bits < 2 {
            return Vec::new();
        }
        let set = self.extraction_params();
        let mut chunks: Vec<(u32, u32)> = (1..=circuit.max_round_bits)
            .flat_map(|r| fhe::extraction_chunks(r, self.binding.encoding.chunk_bits))
            .filter(|&(_, c)| c >= 2)
            .collect();
        chunks.sort_unstable();
        chunks.dedup();
        let torus_values = 1u64 << (layout.space_bits + 1);
        chunks
            .into_iter()
            .map(|(b, c)| {
                let acc = generate_programmable_bootstrap_glwe_lut(
                    PolynomialSize(set.polynomial_size),
                    GlweSize(set.glwe_dimension + 1),
                    1usize << (c - 1),
                    CiphertextModulus::new_native(),
                    layout.delta,
                    |v: u64| torus_values.wrapping_sub(v << b) & (torus_values - 1),
                );
                let lut = LookupTableOwned {
                    acc,
                    degree: Degree::new((1u64 << self.binding.encoding.space_bits) - 1),
                };
                ((b, c), lut)
            })
            .collect()
    }

    /// The test vector of lut node `id`: index `k` of the input dot's own space (`P - s`
    /// bits; the dot holds `v - lo + m`) maps to `table[(clamp(k - m + lo, lo, hi) + offset)
    /// >> round_bits]`, encoded as the output node's `y - lo_out + m_out`, times `Δ_P`.
    pub(super) fn lookup_table(
        &self,
        checked: &CheckedGraph,
        layout: &Layout,
        id: NodeId,
    ) -> Result<LookupTableOwned> {
        let Op::Lut {
            input,
            offset,
            round_bits,
            table,
            ..
        } = &checked.graph().nodes[id].op
        else {
            return Err(Error::Backend(format!("node {id} is not a lut")));
        };
        let facts = checked.facts();
        let iv = facts[*input].interval;
        let m_in = layout.below[*input];
        let lo_out = facts[id].interval.lo;
        let m_out = layout.below[id];
        let last = table.len().saturating_sub(1);
        // A space wider than the polynomial: box `j` of the test vector holds the values
        // `k = j·2^align ..`, one bucket of the table (the margins are aligned for it).
        let own = layout.node_space(*input);
        let align = fhe::read_align_bits(self.binding.set, own);
        let entry = |j: u64| -> u64 {
            let k = j << align;
            // k < 2N (a box of the test vector): far inside i64.
            let v = (k.cast_signed() - m_in + iv.lo).clamp(iv.lo, iv.hi);
            let idx = crate::cast::index((v + offset) >> round_bits).min(last);
            // Held output value, in [0, 2^P) (mod 2^64 on the torus).
            (table[idx] - lo_out + m_out).cast_unsigned()
        };
        let acc = generate_programmable_bootstrap_glwe_lut(
            PolynomialSize(self.binding.set.polynomial_size),
            GlweSize(self.binding.set.glwe_dimension + 1),
            1usize << (own - align),
            CiphertextModulus::new_native(),
            layout.delta,
            entry,
        );
        Ok(LookupTableOwned {
            acc,
            degree: Degree::new((1u64 << layout.space_bits) - 1),
        })
    }

    /// Bootstraps one evaluation of `checked` runs: one per table, plus, with exact rounding,
    /// one per one-bit chunk of its dropped bits and two per wider chunk.
    pub fn pbs_per_sample(&self, checked: &CheckedGraph) -> usize {
        checked
            .graph()
            .nodes
            .iter()
            .map(|n| match n.op {
                Op::Lut { round_bits, .. } if self.binding.encoding.exact_rounding => {
                    1 + crate::cast::to_usize(fhe::extraction_bootstraps(
                        round_bits,
                        self.binding.encoding.chunk_bits,
                    ))
                }
                Op::Lut { .. } => 1,
                _ => 0,
            })
            .sum()
    }

    /// Evaluates `checked` on one encrypted sample with the server key alone.
    pub fn evaluate(
        &self,
        checked: &CheckedGraph,
        input: &EncryptedInput,
    ) -> Result<EncryptedOutput> {
        let prepared = self.prepare(checked)?;
        self.evaluate_prepared(checked, &prepared, input, &NoProgress)
    }

    /// Evaluates a prepared circuit; bootstraps of one stage (layer) run in parallel on all
    /// cores. `progress` advances by one per bootstrap (it is not started or finished here).
    pub fn evaluate_prepared(
        &self,
        checked: &CheckedGraph,
        prepared: &PreparedCircuit,
        input: &EncryptedInput,
        progress: &dyn Progress,
    ) -> Result<EncryptedOutput> {
        let mut vals = self.evaluate_nodes(checked, prepared, input, progress, None)?;
        let cts = checked
            .graph()
            .outputs
            .iter()
            .map(|&o| vals[o].take().expect("output evaluated"))
            .collect();
        let b = &self.binding;
        let mut out = EncryptedOutput::new(b.digest.clone(), b.set, b.encoding.space_bits, cts);
        out.key_pair = b.key_pair.clone();
        Ok(out)
    }

    /// Every node's ciphertext (inputs, dots, tables) of one evaluation; `profile`, if given,
    /// receives each stage's timings.
    pub(super) fn evaluate_nodes(
        &self,
        checked: &CheckedGraph,
        prepared: &PreparedCircuit,
        input: &EncryptedInput,
        progress: &dyn Progress,
        mut profile: Option<&mut Vec<StageTiming>>,
    ) -> Result<Vec<Option<Ciphertext>>> {
        self.check_evaluation(checked, prepared, input)?;
        let g = checked.graph();
        let mut vals: Vec<Option<Ciphertext>> = vec![None; g.nodes.len()];
        for (&id, ct) in g.input_nodes().iter().zip(&input.cts) {
            vals[id] = Some(ct.clone());
        }
        let lwe_size = input.cts[0].ct.lwe_size();
        let modulus = input.cts[0].ct.ciphertext_modulus();
        for (luts, dots) in &prepared.circuit.stages {
            let t_tables = Instant::now();
            for (id, ct) in self.run_tables(g, prepared, luts, &vals, progress)? {
                vals[id] = Some(ct);
            }
            let tables_ms = t_tables.elapsed().as_secs_f64() * 1e3;
            let t_dots = Instant::now();
            let blank = LweCiphertext::new(0u64, lwe_size, modulus);
            for (id, ct) in self.run_dots(g, prepared, dots, &vals, &blank) {
                vals[id] = Some(ct);
            }
            if let Some(p) = profile.as_deref_mut() {
                let dots_ms = t_dots.elapsed().as_secs_f64() * 1e3;
                p.push(StageTiming::new(g, luts, tables_ms, dots, dots_ms));
            }
        }
        Ok(vals)
    }

    /// The circuit, the prepared circuit and the input belong to this key and its encoding.
    fn check_evaluation(
        &self,
        checked: &CheckedGraph,
        prepared: &PreparedCircuit,
        input: &EncryptedInput,
    ) -> Result<()> {
        let c = &prepared.circuit;
        if c.digest != self.binding.digest {
            return Err(digest_mismatch(
                "the server key",
                &self.binding.digest,
                &c.digest,
            ));
        }
        if input.digest != self.binding.digest {
            return Err(digest_mismatch(
                "the encrypted input",
                &input.digest,
                &self.binding.digest,
            ));
        }
        let space_bits = self.space_bits();
        if input.space_bits != space_bits || prepared.layout.space_bits != space_bits {
            return Err(encoding_mismatch(
                "the encrypted input",
                input.space_bits,
                space_bits,
            ));
        }
        check_pair("the encrypted input", input.key_pair(), self.key_pair())?;
        let n_inputs = checked.graph().input_nodes().len();
        if input.cts.len() != n_inputs {
            return Err(Error::Input(format!(
                "the encrypted input holds {} values, the circuit has {} features",
                input.cts.len(),
                n_inputs
            )));
        }
        check_ciphertexts(&input.cts, self.binding.set, "encrypted input")
    }

    /// The bootstraps of one stage, in parallel: each table reads its dot (with exact rounding,
    /// once its dropped bits are cleared).
    fn run_tables(
        &self,
        g: &IntGraph,
        prepared: &PreparedCircuit,
        luts: &[NodeId],
        vals: &[Option<Ciphertext>],
        progress: &dyn Progress,
    ) -> Result<Vec<(NodeId, Ciphertext)>> {
        if luts.is_empty() {
            return Ok(Vec::new());
        }
        let key = self.bootstrapping_key()?;
        let extract = if prepared.rescale.iter().any(Option::is_some) {
            Some(self.extraction_key()?.0)
        } else {
            None
        };
        Ok(luts
            .par_iter()
            .map(|&id| {
                let Op::Lut {
                    input, round_bits, ..
                } = g.nodes[id].op
                else {
                    unreachable!("stages hold luts")
                };
                let src = vals[input].as_ref().expect("dot before its table");
                let lut = prepared.luts[id].as_ref().expect("prepared table");
                let out = match (&prepared.rescale[id], extract) {
                    (Some(rescale), Some(extract)) => {
                        let table = (round_bits, rescale, lut);
                        self.rounded_read(src, table, (key, extract), prepared, progress)
                    }
                    _ => key.apply_lookup_table(src, lut),
                };
                progress.advance(1);
                (id, out)
            })
            .collect())
    }

    /// The dot products of one stage, in parallel, on the raw LWE ciphertexts: `Σ w_j · ct_j`
    /// plus the prepared constant, with nominal metadata (see the module docs).
    fn run_dots(
        &self,
        g: &IntGraph,
        prepared: &PreparedCircuit,
        dots: &[NodeId],
        vals: &[Option<Ciphertext>],
        blank: &LweCiphertext<Vec<u64>>,
    ) -> Vec<(NodeId, Ciphertext)> {
        let degree = Degree::new((1u64 << self.binding.encoding.space_bits) - 1);
        dots.par_iter()
            .map(|&id| {
                let Op::Dot { terms, .. } = &g.nodes[id].op else {
                    unreachable!("stages hold dots")
                };
                let mut acc = blank.clone();
                let mut tmp = blank.clone();
                // A dot that a table reads scaled: every weight times 2^s (mod 2^64).
                let scale = 1u64 << prepared.layout.scale_bits[id];
                for &(src, w) in terms {
                    let s = vals[src].as_ref().expect("source before its dot");
                    tmp.as_mut().copy_from_slice(s.ct.as_ref());
                    let w = w.cast_unsigned().wrapping_mul(scale); // mod 2^64
                    lwe_ciphertext_cleartext_mul_assign(&mut tmp, Cleartext(w));
                    lwe_ciphertext_add_assign(&mut acc, &tmp);
                }
                lwe_ciphertext_plaintext_add_assign(&mut acc, Plaintext(prepared.constants[id]));
                let ct = Ciphertext::new(
                    acc,
                    degree,
                    NoiseLevel::NOMINAL,
                    MessageModulus(1 << self.binding.set.message_bits),
                    CarryModulus(1 << self.binding.set.carry_bits),
                    AtomicPatternKind::Standard(PBSOrder::KeyswitchBootstrap),
                );
                (id, ct)
            })
            .collect()
    }
}

/// `(c + Σ w_j·(lo_j - m_j) - lo + m)·Δ` of dot `id` (mod 2^64; `Δ` of its own space,
/// `Δ_P·2^s`, its sources unscaled; wrapping arithmetic: everything is modulo `2^64 / Δ` anyway).
fn dot_constant(
    facts: &[NodeFact],
    layout: &Layout,
    id: NodeId,
    terms: &[(NodeId, i64)],
    constant: i64,
) -> u64 {
    let mut c = constant
        .wrapping_sub(facts[id].interval.lo)
        .wrapping_add(layout.below[id]);
    for &(src, w) in terms {
        let l = facts[src].interval.lo.wrapping_sub(layout.below[src]);
        c = c.wrapping_add(w.wrapping_mul(l));
    }
    c.cast_unsigned().wrapping_mul(layout.node_delta(id)) // mod 2^64
}

/// Wall-clock time of one stage of an evaluation: its bootstraps (in parallel), then the dot
/// products that read them.
#[derive(Clone, Debug, Default, Serialize)]
pub struct StageTiming {
    /// Bootstraps (tables) in the stage.
    pub tables: usize,
    /// Time of the stage's bootstraps (ms).
    pub tables_ms: f64,
    /// Dot products in the stage.
    pub dots: usize,
    /// Their terms (scalar multiplications and additions of ciphertexts).
    pub terms: usize,
    /// Time of the dot products (ms).
    pub dots_ms: f64,
}

impl StageTiming {
    fn new(g: &IntGraph, luts: &[NodeId], tables_ms: f64, dots: &[NodeId], dots_ms: f64) -> Self {
        StageTiming {
            tables: luts.len(),
            tables_ms,
            dots: dots.len(),
            terms: dots
                .iter()
                .map(|&id| match &g.nodes[id].op {
                    Op::Dot { terms, .. } => terms.len(),
                    _ => 0,
                })
                .sum(),
            dots_ms,
        }
    }
}
