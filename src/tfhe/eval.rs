//! Evaluation with the server key alone: preparing a circuit (test vectors, dot constants),
//! running its stages in parallel, exact rounding (clearing dropped bits before a read), and
//! [`TfheBackend`], which runs samples end to end and times them.

use std::path::Path;
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
use indicatif::{ProgressBar, ProgressStyle};
use rayon::prelude::*;
use serde::Serialize;

use super::files::{load_client_key, load_server_key};
use super::keys::{
    check_ciphertexts, digest_mismatch, encoding_mismatch, ClientKey, EncryptedInput,
    EncryptedOutput, ServerKey,
};
use super::layout::{Circuit, Layout};
use crate::analyze::CheckedGraph;
use crate::error::{Error, Result};
use crate::execute::{validate_inputs, Backend};
use crate::fhe::{self, FhePlan};
use crate::ir::{NodeId, Op};

/// `c_b = 2^b · Δ_P / 2`: half the weight of bit `b` of a held value.
pub(super) fn extraction_constant(delta: u64, b: u32) -> u64 {
    (delta >> 1).wrapping_shl(b)
}

/// A circuit prepared for one server key: evaluation order, encoding, one test vector per `Lut`.
pub struct PreparedCircuit {
    pub(super) circuit: Circuit,
    pub(super) layout: Layout,
    pub(super) luts: Vec<Option<LookupTableOwned>>,
    /// `(c + Σ w_j·(lo_j - m_j) - lo + m)·Δ_P` per dot (mod 2^64), plus half a position for a
    /// dot a table reads when a value spans one position.
    pub(super) constants: Vec<u64>,
    /// Exact rounding: test vector `b` returns `+c_b` for bit `b` clear and `-c_b` for bit `b`
    /// set, `c_b = 2^b·Δ_P / 2` (one per bit up to the most any table drops).
    pub(super) extract: Vec<LookupTableOwned>,
    /// What a table's read adds to the value it reads (see [`ServerKey::prepare`]).
    pub(super) read_shift: u64,
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
        if circuit.digest != self.digest {
            return Err(digest_mismatch(
                "the server key",
                &self.digest,
                &circuit.digest,
            ));
        }
        circuit.check_supported(self.set, self.space_bits)?;
        let g = checked.graph();
        let facts = checked.facts();
        let layout = Layout::new(checked, self.set, self.space_bits, self.exact_rounding)?;
        let delta = layout.delta;
        // Half a position of the modulus switch to 2N: 2^64 / (4N); half a value: Δ_P / 2.
        let n_log = self.set.polynomial_size.trailing_zeros();
        let half_position = 1u64 << (62 - n_log);
        let half_value = delta >> 1;
        // Every read must give `k·box + floor(e)` with a box of 2 positions or more (the
        // half-box rotation of the table then rounds it symmetrically) and
        // `floor(k·box + e + box/2)` with a box of one position or less. tfhe's centred modulus
        // switch subtracts half a position itself (`floor`): with a box of one position or
        // less, half a value is added. A rounding switch (2^-64 classic sets, multi-bit
        // bootstraps) gives `round`: with a box of 2 or more, half a position is subtracted;
        // with less, half a value minus half a position is added.
        let one_position = self.set.box_positions(self.space_bits) < 2.0;
        let shift = match (self.set.modulus_switch, one_position) {
            (fhe::ModulusSwitch::Centered, true) => half_value,
            (fhe::ModulusSwitch::Centered, false) => 0,
            (fhe::ModulusSwitch::Rounded, false) => half_position.wrapping_neg(),
            (fhe::ModulusSwitch::Rounded, true) => half_value.wrapping_sub(half_position),
        };
        // Exact rounding reads the cleared value instead: the shift goes there.
        let mut extracted = vec![false; g.nodes.len()];
        if self.exact_rounding {
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
        let mut luts = vec![None; g.nodes.len()];
        let mut constants = vec![0u64; g.nodes.len()];
        for (id, n) in g.nodes.iter().enumerate() {
            match &n.op {
                Op::Input { .. } => {}
                Op::Dot { terms, constant } => {
                    // Wrapping arithmetic: everything is modulo 2^64 / Δ_P = 2^(P+1) anyway.
                    let mut c = (*constant)
                        .wrapping_sub(facts[id].interval.lo)
                        .wrapping_add(layout.below[id]);
                    for &(src, w) in terms {
                        let l = facts[src].interval.lo.wrapping_sub(layout.below[src]);
                        c = c.wrapping_add(w.wrapping_mul(l));
                    }
                    let mut k = (c as u64).wrapping_mul(delta);
                    if circuit.read_by_table[id] && !extracted[id] {
                        k = k.wrapping_add(shift);
                    }
                    constants[id] = k;
                }
                Op::Lut { .. } => luts[id] = Some(self.lookup_table(checked, &layout, id)?),
            }
        }
        let extract = if self.exact_rounding {
            (0..circuit.max_round_bits)
                .map(|b| LookupTableOwned {
                    acc: generate_programmable_bootstrap_glwe_lut(
                        PolynomialSize(self.set.polynomial_size),
                        GlweSize(self.set.glwe_dimension + 1),
                        1,
                        CiphertextModulus::new_native(),
                        extraction_constant(delta, b),
                        |_| 1u64,
                    ),
                    degree: Degree::new((1u64 << self.space_bits) - 1),
                })
                .collect()
        } else {
            Vec::new()
        };
        Ok(PreparedCircuit {
            circuit,
            layout,
            luts,
            constants,
            extract,
            read_shift: shift,
        })
    }

    /// The test vector of lut node `id`: index `k` of the space (the input dot holds
    /// `v - lo + m`) maps to `table[(clamp(k - m + lo, lo, hi) + offset) >> round_bits]`,
    /// encoded as the output node's `y - lo_out + m_out`, times `Δ_P`.
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
        let align = fhe::read_align_bits(self.set, layout.space_bits);
        let entry = |j: u64| -> u64 {
            let k = j << align;
            let v = (k as i64 - m_in + iv.lo).clamp(iv.lo, iv.hi);
            let idx = crate::cast::index((v + offset) >> round_bits).min(last);
            (table[idx] - lo_out + m_out) as u64
        };
        let acc = generate_programmable_bootstrap_glwe_lut(
            PolynomialSize(self.set.polynomial_size),
            GlweSize(self.set.glwe_dimension + 1),
            1usize << (layout.space_bits - align),
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
    /// one per dropped bit.
    pub fn pbs_per_sample(&self, checked: &CheckedGraph) -> usize {
        checked
            .graph()
            .nodes
            .iter()
            .map(|n| match n.op {
                Op::Lut { round_bits, .. } if self.exact_rounding => 1 + round_bits as usize,
                Op::Lut { .. } => 1,
                _ => 0,
            })
            .sum()
    }

    /// Exact rounding: clears the low `r` bits of the held value `x` (one 1-bit bootstrap per
    /// bit, lowest first) and centres the result in its bucket of `2^r` values.
    ///
    /// Bit `b` (bits below it already clear) is read by multiplying `x` by `2^(P - b)`, which
    /// puts it on the padding bit: the bootstrap of a constant test vector then returns `+c_b`
    /// (bit clear, phase near 0) or `-c_b` (bit set, phase near half the torus), tolerating
    /// noise up to a quarter of the torus. `x + out - c_b` subtracts `2^b` exactly when the bit
    /// is set. Finally `(2^r - 1)·Δ_P / 2` moves the cleared value to the middle of its bucket,
    /// so the table's read tolerates `2^(r-1)` values of noise on either side.
    pub(super) fn clear_low_bits(
        &self,
        src: &Ciphertext,
        r: u32,
        prepared: &PreparedCircuit,
        progress: Option<&ProgressBar>,
    ) -> Ciphertext {
        let delta = prepared.layout.delta;
        let p = prepared.layout.space_bits;
        let mut x = src.clone();
        for b in 0..r {
            let mut y = x.clone();
            lwe_ciphertext_cleartext_mul_assign(&mut y.ct, Cleartext(1u64 << (p - b)));
            let out = self
                .key
                .apply_lookup_table(&y, &prepared.extract[b as usize]);
            lwe_ciphertext_add_assign(&mut x.ct, &out.ct);
            lwe_ciphertext_plaintext_add_assign(
                &mut x.ct,
                Plaintext(extraction_constant(delta, b).wrapping_neg()),
            );
            if let Some(pb) = progress {
                pb.inc(1);
            }
        }
        let centre = ((1u64 << r) - 1)
            .wrapping_mul(delta >> 1)
            .wrapping_add(prepared.read_shift);
        lwe_ciphertext_plaintext_add_assign(&mut x.ct, Plaintext(centre));
        x
    }

    /// Evaluates `checked` on one encrypted sample with the server key alone.
    pub fn evaluate(
        &self,
        checked: &CheckedGraph,
        input: &EncryptedInput,
    ) -> Result<EncryptedOutput> {
        let prepared = self.prepare(checked)?;
        self.evaluate_prepared(checked, &prepared, input, None)
    }

    /// Evaluates a prepared circuit; bootstraps of one stage (layer) run in parallel on all
    /// cores. `progress`, if given, advances by one per bootstrap.
    pub fn evaluate_prepared(
        &self,
        checked: &CheckedGraph,
        prepared: &PreparedCircuit,
        input: &EncryptedInput,
        progress: Option<&ProgressBar>,
    ) -> Result<EncryptedOutput> {
        let mut vals = self.evaluate_nodes(checked, prepared, input, progress, None)?;
        let cts = checked
            .graph()
            .outputs
            .iter()
            .map(|&o| vals[o].take().expect("output evaluated"))
            .collect();
        Ok(EncryptedOutput {
            digest: self.digest.clone(),
            set: self.set,
            space_bits: self.space_bits,
            cts,
        })
    }

    /// Every node's ciphertext (inputs, dots, tables) of one evaluation; `profile`, if given,
    /// receives each stage's timings.
    pub(super) fn evaluate_nodes(
        &self,
        checked: &CheckedGraph,
        prepared: &PreparedCircuit,
        input: &EncryptedInput,
        progress: Option<&ProgressBar>,
        mut profile: Option<&mut Vec<StageTiming>>,
    ) -> Result<Vec<Option<Ciphertext>>> {
        let c = &prepared.circuit;
        if c.digest != self.digest {
            return Err(digest_mismatch("the server key", &self.digest, &c.digest));
        }
        if input.digest != self.digest {
            return Err(digest_mismatch(
                "the encrypted input",
                &input.digest,
                &self.digest,
            ));
        }
        if input.space_bits != self.space_bits || prepared.layout.space_bits != self.space_bits {
            return Err(encoding_mismatch(
                "the encrypted input",
                input.space_bits,
                self.space_bits,
            ));
        }
        let g = checked.graph();
        let ids = g.input_nodes();
        if input.cts.len() != ids.len() {
            return Err(Error::Input(format!(
                "the encrypted input holds {} values, the circuit has {} features",
                input.cts.len(),
                ids.len()
            )));
        }
        check_ciphertexts(&input.cts, self.set, "encrypted input")?;
        let mut vals: Vec<Option<Ciphertext>> = vec![None; g.nodes.len()];
        for (&id, ct) in ids.iter().zip(&input.cts) {
            vals[id] = Some(ct.clone());
        }
        let lwe_size = input.cts[0].ct.lwe_size();
        let modulus = input.cts[0].ct.ciphertext_modulus();
        let degree = Degree::new((1u64 << self.space_bits) - 1);
        for (luts, dots) in &c.stages {
            let t_tables = Instant::now();
            let results: Vec<(NodeId, Ciphertext)> = luts
                .par_iter()
                .map(|&id| {
                    let Op::Lut { input, .. } = g.nodes[id].op else {
                        unreachable!("stages hold luts")
                    };
                    let src = vals[input].as_ref().expect("dot before its table");
                    let lut = prepared.luts[id].as_ref().expect("prepared table");
                    let out = match g.nodes[id].op {
                        Op::Lut { round_bits, .. } if self.exact_rounding && round_bits > 0 => {
                            let cleared = self.clear_low_bits(src, round_bits, prepared, progress);
                            self.key.apply_lookup_table(&cleared, lut)
                        }
                        _ => self.key.apply_lookup_table(src, lut),
                    };
                    if let Some(pb) = progress {
                        pb.inc(1);
                    }
                    (id, out)
                })
                .collect();
            for (id, ct) in results {
                vals[id] = Some(ct);
            }
            let tables_ms = t_tables.elapsed().as_secs_f64() * 1e3;
            let t_dots = Instant::now();
            let results: Vec<(NodeId, Ciphertext)> = dots
                .par_iter()
                .map(|&id| {
                    let Op::Dot { terms, .. } = &g.nodes[id].op else {
                        unreachable!("stages hold dots")
                    };
                    let mut acc = LweCiphertext::new(0u64, lwe_size, modulus);
                    let mut tmp = LweCiphertext::new(0u64, lwe_size, modulus);
                    for &(src, w) in terms {
                        let s = vals[src].as_ref().expect("source before its dot");
                        tmp.as_mut().copy_from_slice(s.ct.as_ref());
                        lwe_ciphertext_cleartext_mul_assign(&mut tmp, Cleartext(w as u64));
                        lwe_ciphertext_add_assign(&mut acc, &tmp);
                    }
                    lwe_ciphertext_plaintext_add_assign(
                        &mut acc,
                        Plaintext(prepared.constants[id]),
                    );
                    let ct = Ciphertext::new(
                        acc,
                        degree,
                        NoiseLevel::NOMINAL,
                        MessageModulus(1 << self.set.message_bits),
                        CarryModulus(1 << self.set.carry_bits),
                        AtomicPatternKind::Standard(PBSOrder::KeyswitchBootstrap),
                    );
                    (id, ct)
                })
                .collect();
            for (id, ct) in results {
                vals[id] = Some(ct);
            }
            if let Some(p) = profile.as_deref_mut() {
                p.push(StageTiming {
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
                    dots_ms: t_dots.elapsed().as_secs_f64() * 1e3,
                });
            }
        }
        Ok(vals)
    }
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

/// Timings of an encrypted run, per sample (milliseconds).
#[derive(Clone, Debug, Default, Serialize)]
pub struct TfheRun {
    /// Each sample's output accumulators (as the clear backend gives them).
    pub outputs: Vec<Vec<i64>>,
    /// Client: encryption of each sample.
    pub encrypt_ms: Vec<f64>,
    /// Server: evaluation of each sample (the encrypted inference latency).
    pub evaluate_ms: Vec<f64>,
    /// Client: decryption of each sample.
    pub decrypt_ms: Vec<f64>,
    /// Bootstraps per sample.
    pub pbs_count: usize,
}

impl TfheRun {
    /// Median server evaluation time per sample (ms); 0 without samples.
    pub fn median_evaluate_ms(&self) -> f64 {
        median(&self.evaluate_ms)
    }
}

/// Median of `v` (0 when empty).
pub fn median(v: &[f64]) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let n = s.len();
    if n % 2 == 1 {
        s[n / 2]
    } else {
        0.5 * (s[n / 2 - 1] + s[n / 2])
    }
}

/// The TFHE backend: per sample, the client encrypts, the server evaluates, the client
/// decrypts. Holds both keys (a convenience for running and comparing in one process; a real
/// deployment gives the server only the [`ServerKey`]).
#[derive(Clone, Debug)]
pub struct TfheBackend {
    pub(super) client: ClientKey,
    pub(super) server: ServerKey,
    /// Show a progress bar on stderr for runs expected to take more than a second.
    pub progress: bool,
}

impl TfheBackend {
    /// A backend from a key pair.
    pub fn new(client: ClientKey, server: ServerKey) -> Result<TfheBackend> {
        if client.digest != server.digest
            || client.set != server.set
            || client.space_bits != server.space_bits
            || client.exact_rounding != server.exact_rounding
        {
            return Err(Error::Keys(
                "the client and server keys were not generated together: run sqnn keygen CIRCUIT --out-dir DIR"
                    .into(),
            ));
        }
        Ok(TfheBackend {
            client,
            server,
            progress: true,
        })
    }

    /// Generates fresh keys for `checked` with the plan's parameter set (see
    /// [`ClientKey::keygen_seconds`] for the time it took).
    pub fn generate(checked: &CheckedGraph, plan: &FhePlan) -> Result<TfheBackend> {
        let (c, s) = ClientKey::generate(checked, plan)?;
        TfheBackend::new(c, s)
    }

    /// Loads both keys from a directory written by [`save_keys`](super::save_keys).
    pub fn load(dir: &Path, checked: &CheckedGraph) -> Result<TfheBackend> {
        let client = load_client_key(dir, checked)?;
        let server = load_server_key(dir, checked)?;
        TfheBackend::new(client, server)
    }

    /// The client key.
    pub fn client(&self) -> &ClientKey {
        &self.client
    }

    /// The server key.
    pub fn server(&self) -> &ServerKey {
        &self.server
    }

    /// Runs every sample (encrypt, evaluate, decrypt), timing each step.
    pub fn run_timed(&self, checked: &CheckedGraph, inputs: &[Vec<i64>]) -> Result<TfheRun> {
        validate_inputs(checked.analyzed(), inputs)?;
        let prepared = self.server.prepare(checked)?;
        let digest = prepared.circuit.digest.clone();
        let pbs = self.server.pbs_per_sample(checked);
        let expected_ms = inputs.len() as f64 * pbs as f64 * self.server.set.pbs_ms_1_thread
            / rayon::current_num_threads().max(1) as f64;
        let pb = if self.progress && expected_ms > 1000.0 {
            let pb = ProgressBar::new((inputs.len() * pbs) as u64);
            pb.set_style(
                ProgressStyle::with_template(
                    "{bar:30} {pos}/{len} bootstraps, {msg} [{elapsed} < {eta}]",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            Some(pb)
        } else {
            None
        };
        let mut run = TfheRun {
            pbs_count: pbs,
            ..TfheRun::default()
        };
        for (i, x) in inputs.iter().enumerate() {
            if let Some(pb) = &pb {
                pb.set_message(format!("sample {}/{}", i + 1, inputs.len()));
            }
            let t = Instant::now();
            let enc = self.client.encrypt_with(checked, &digest, x)?;
            run.encrypt_ms.push(t.elapsed().as_secs_f64() * 1e3);
            let t = Instant::now();
            let out = self
                .server
                .evaluate_prepared(checked, &prepared, &enc, pb.as_ref())?;
            run.evaluate_ms.push(t.elapsed().as_secs_f64() * 1e3);
            let t = Instant::now();
            run.outputs
                .push(self.client.decrypt_with(checked, &digest, &out)?);
            run.decrypt_ms.push(t.elapsed().as_secs_f64() * 1e3);
        }
        if let Some(pb) = pb {
            pb.finish_and_clear();
        }
        Ok(run)
    }
}

impl Backend for TfheBackend {
    fn name(&self) -> &'static str {
        "tfhe"
    }

    fn run(&self, graph: &CheckedGraph, inputs: &[Vec<i64>]) -> Result<Vec<Vec<i64>>> {
        Ok(self.run_timed(graph, inputs)?.outputs)
    }
}
