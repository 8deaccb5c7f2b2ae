//! Measures, on this machine, the figures sqnn's parameter catalogue (`sqnn::fhe`) relies on:
//! the noise model's constants, bootstrap latencies and key sizes of every parameter set, and
//! encrypted latency against the floor. It prints them; nothing is checked.
//!
//! `cargo run --release --features calibration --example calibrate -- [COMMAND]`, COMMAND one
//! of (without one: `noise` then `latency`, the figures of `src/fhe/measured.json`)
//! * `noise`: the noise constants `a` and `b` of each set, measured with the secret key;
//! * `latency`: per-bootstrap latency (one core, all cores, amortized), key generation, key
//!   sizes and a reload of each set, and the 4-bit test circuit against its floor;
//! * `variant-cost`: each decomposition variant's bootstrap against its shipped set's,
//!   interleaved on one pinned core (the ratio holds under load when absolute times do not);
//! * `bootstrap-parts`: where a bootstrap's time goes, per set (`SQNN_SETS`, default the 2-bit
//!   and 4-bit sets and the 4-bit variant): keyswitch alone and keyswitch + bootstrap on one
//!   pinned thread, and the time per bootstrap with one thread per core running at once;
//! * `exact-before-after DATA=CIRCUIT ...`: exact mode with one dropped bit per extraction
//!   (`--extraction-chunk-bits 1`) against the planner's choice (chunks), samples alternated
//!   in one process so both see the same load; per plan the median, the prediction, agreement
//!   with clear;
//! * `iris-shape`: Concrete ML's default iris shape (4-16-16-3, 9-bit accumulators) in
//!   approximate mode on the 4-bit set, against the floor, stage by stage;
//! * `committed-iris`: the committed iris circuit under its chosen plan, against the floor;
//! * `builtin-latency PROFILE...`: the latency figures of `src/fhe/measured.json` from cost
//!   profiles that `sqnn calibrate --out PROFILE` wrote on this machine: per set the median
//!   over the profiles holding it; classic sets' time with every core busy from one contention
//!   factor, the median over all their measurements (the sets' own medians differ by more than
//!   the sets do); sets no profile holds, their figures times the median ratio of new to old.
//!   Prints one line per set to paste into `measured.json` (how the figures of 2026-12-01 were
//!   made, from the 9 profiles of `sqnn calibrate --bootstraps 21` in
//!   `docs/cost-profiles/2026-12-01/`).
//!
//! `SQNN_SETS=2,4,4mb4` picks the sets of `noise` and `latency` by tag (see `tag`).
//!
//! The `calibration` feature exposes `sqnn::tfhe::measure`, which reads the secret key inside
//! sqnn's keys: for measuring only.

#[path = "../tests/common/mod.rs"]
mod common;

use std::path::Path;
use std::process::ExitCode;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sqnn::analyze::CheckedGraph;
use sqnn::execute::{Backend, ClearBackend};
use sqnn::fhe::{self, ParamSet};
use sqnn::ir::{IntGraph, NodeId};
use sqnn::progress::NoProgress;
use sqnn::tfhe::{load_server_key, measure, save_keys, ClientKey, TfheBackend};

use common::builder::{all_inputs, Builder};
use common::tfhe::*;

const USAGE: &str = "usage: cargo run --release --features calibration --example calibrate -- \
                     [noise|latency|variant-cost|bootstrap-parts|exact-before-after|iris-shape|committed-iris|\
                     builtin-latency PROFILE...]";

fn main() -> ExitCode {
    let command = std::env::args().nth(1).unwrap_or_default();
    match command.as_str() {
        "" => {
            noise();
            latency();
        }
        "noise" => noise(),
        "latency" => latency(),
        "iris-shape" => iris_shape_latency(),
        "committed-iris" => committed_iris(),
        "variant-cost" => variant_cost(),
        "bootstrap-parts" => bootstrap_parts(),
        "exact-before-after" => exact_before_after(),
        "builtin-latency" => return builtin_latency(),
        _ => {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    }
    ExitCode::SUCCESS
}

/// A short tag of a catalogue set for the `SQNN_SETS` filter: its precision, `mbG` for a
/// multi-bit bootstrap of grouping `G`, `-64` for the 2^-64 family, `pLbB` (and `kLbB`) for a
/// decomposition variant's bootstrap (and keyswitch) level and base log (e.g. `4`, `4-64`,
/// `4mb4`, `6mb2`, `4p2b15`, `4p2b15k3b5`).
fn tag(s: &ParamSet) -> String {
    let mut t = s.precision().to_string();
    if s.grouping_factor > 1 {
        t.push_str(&format!("mb{}", s.grouping_factor));
    }
    if s.family_log2_p_fail == -64 {
        t.push_str("-64");
    }
    if let Some(v) = s.derives_from {
        let d = s.decomposition;
        let base = v.set().decomposition;
        t.push_str(&format!("p{}b{}", d.pbs_level, d.pbs_base_log));
        if (d.ks_level, d.ks_base_log) != (base.ks_level, base.ks_base_log) {
            t.push_str(&format!("k{}b{}", d.ks_level, d.ks_base_log));
        }
    }
    t
}

/// The sets named by `SQNN_SETS` (tags or names, comma-separated; a set listed only for
/// reference, such as `6mb2`, must be named), or every selectable set.
fn sets_from_env() -> Vec<&'static ParamSet> {
    let which = std::env::var("SQNN_SETS").unwrap_or_default();
    fhe::catalogue()
        .iter()
        .filter(|s| {
            if which.is_empty() {
                s.selectable
            } else {
                which.split(',').any(|w| w == tag(s) || w == s.name)
            }
        })
        .collect()
}

/// Measures the noise model's constants `a` and `b` of every selectable set (classic and
/// multi-bit, 2^-128 and 2^-64) and prints them with the catalogue's values. `a` is the
/// variance at the bootstrap input after the keyswitch and the set's own modulus switch
/// (emulated with the secret key: centred, rounded, or multi-bit subset sums), `b` a bootstrap
/// output's variance.
///
/// `cargo run --release --features calibration --example calibrate -- noise`
/// (`SQNN_SETS=2,4,4mb4` to pick sets by tag, see `tag`).
fn noise() {
    for s in sets_from_env() {
        let name = s.name;
        let (cks, sks) = raw_keys(s);
        let a_trials = if s.derives_from.is_some() { 4000 } else { 3000 };
        let fresh = measure::pbs_input_noise(s, &cks, &sks, 0, a_trials).unwrap();
        let a = fresh.std.powi(2);
        println!("{name}: fresh (a) {fresh:?}");
        let trials = match (s.derives_from.is_some(), s.precision() >= 6) {
            (true, _) => 2000,
            (false, true) => 300,
            (false, false) => 1000,
        };
        let (_, b, b_kurtosis) = measure::bootstrap_output_moments(s, &cks, &sks, trials);
        println!(
            "{name}: bootstrap output variance (b) {b:.3e} from {trials} bootstraps, excess \
             kurtosis {b_kurtosis:.3}"
        );
        // The sum at the input of the next bootstrap: a + b·w², measured against predicted.
        let w = sqnn::cast::to_u64(sqnn::cast::clamp_count(
            ((4.0 * a) / b).sqrt().floor(),
            1 << 20,
        ))
        .max(1);
        let st = measure::pbs_input_noise(s, &cks, &sks, w, trials.min(1000)).unwrap();
        println!(
            "{name}: weight {w}: measured std {:.2}, predicted sqrt(a + b·w²) = {:.2} ({st:?})",
            st.std,
            (a + b * (w * w) as f64).sqrt()
        );
        let formula = s
            .formula_noise()
            .map_or("none (multi-bit)".to_string(), |(fa, fb)| {
                format!(
                    "a = {fa:.2}, b = {fb:.3e} (measured / formula {:.3}, {:.3})",
                    a / fa,
                    b / fb
                )
            });
        println!(
            "CALIBRATION {} tag {}: measured a = {a:.2}, b = {b:.3e}, mean {:.2}; catalogue a = {}, b = {:.3e}; formula {formula}",
            name, tag(s), fresh.mean, s.noise_base, s.noise_per_w2
        );
        if s.derives_from.is_some() {
            println!(
                "VALIDATION {name}: \"noise_base\": {a:.3}, \"noise_per_w2\": {b:.4e}, \
                 \"validation\": {{ \"a_samples\": {a_trials}, \"a_excess_kurtosis\": {:.3}, \
                 \"b_samples\": {trials}, \"b_excess_kurtosis\": {b_kurtosis:.3} }}",
                fresh.excess_kurtosis
            );
        }
    }
}

/// Each decomposition variant's keyswitch + bootstrap against its shipped set's, one of each in
/// turn on one pinned core (60 pairs): the median ratio, which the load moves far less than the
/// absolute times. The catalogue's variant figures are the shipped set's times this ratio.
///
/// `cargo run --release --features calibration --example calibrate -- variant-cost`
fn variant_cost() {
    use std::time::Instant;
    for v in fhe::catalogue().iter().filter(|s| s.derives_from.is_some()) {
        let base = v.derives_from.unwrap().set();
        let (vc, vs) = raw_keys(v);
        let (bc, bs) = raw_keys(base);
        let (vl, bl) = (
            vs.generate_lookup_table(|x| x),
            bs.generate_lookup_table(|x| x),
        );
        let (ratios, vt, bt): (Vec<f64>, Vec<f64>, Vec<f64>) = std::thread::scope(|scope| {
            scope
                .spawn(|| {
                    assert!(pin_this_thread_to_one_core(), "taskset failed");
                    one_bootstrap(&vc, &vs, &vl);
                    one_bootstrap(&bc, &bs, &bl);
                    let (mut r, mut a, mut b) = (vec![], vec![], vec![]);
                    for _ in 0..60 {
                        let t = Instant::now();
                        one_bootstrap(&vc, &vs, &vl);
                        let tv = t.elapsed().as_secs_f64() * 1e3;
                        let t = Instant::now();
                        one_bootstrap(&bc, &bs, &bl);
                        let tb = t.elapsed().as_secs_f64() * 1e3;
                        r.push(tv / tb);
                        a.push(tv);
                        b.push(tb);
                    }
                    (r, a, b)
                })
                .join()
                .unwrap()
        });
        let ratio = sqnn::tfhe::median(&ratios);
        println!(
            "VARIANT-COST {}: median ratio {ratio:.3} to {} (variant {:.1} ms, shipped {:.1} ms \
             now); catalogue shipped {:.1} ms → variant {:.1} ms",
            v.name,
            base.name,
            sqnn::tfhe::median(&vt),
            sqnn::tfhe::median(&bt),
            base.pbs_ms_1_thread,
            base.pbs_ms_1_thread * ratio
        );
    }
}

/// Where a bootstrap's time goes: keyswitch alone, keyswitch + bootstrap on one pinned thread,
/// and with every core busy (one thread each, the way a layer of tables runs), median of 40.
///
/// `SQNN_SETS=2,4,4p2b15 cargo run --release --features calibration --example calibrate --
/// bootstrap-parts`
fn bootstrap_parts() {
    use std::time::Instant;
    use tfhe::core_crypto::prelude::{keyswitch_lwe_ciphertext, LweCiphertext};
    use tfhe::shortint::atomic_pattern::AtomicPatternServerKey;
    if std::env::var("SQNN_SETS").is_err() {
        std::env::set_var("SQNN_SETS", "2,4,4p2b15");
    }
    let cores = rayon::current_num_threads();
    for s in sets_from_env() {
        let (cks, sks) = raw_keys(s);
        let lut = sks.generate_lookup_table(|x| x);
        let AtomicPatternServerKey::Standard(ap) = &sks.atomic_pattern else {
            continue;
        };
        let ksk = &ap.key_switching_key;
        let (ks, total) = std::thread::scope(|scope| {
            scope
                .spawn(|| {
                    assert!(pin_this_thread_to_one_core(), "taskset failed");
                    let ct = cks.unchecked_encrypt(1);
                    let mut out =
                        LweCiphertext::new(0u64, ksk.output_lwe_size(), ksk.ciphertext_modulus());
                    one_bootstrap(&cks, &sks, &lut);
                    let (mut ks, mut total) = (vec![], vec![]);
                    for _ in 0..40 {
                        let t = Instant::now();
                        keyswitch_lwe_ciphertext(ksk, &ct.ct, &mut out);
                        ks.push(t.elapsed().as_secs_f64() * 1e3);
                        let t = Instant::now();
                        one_bootstrap(&cks, &sks, &lut);
                        total.push(t.elapsed().as_secs_f64() * 1e3);
                    }
                    (sqnn::tfhe::median(&ks), sqnn::tfhe::median(&total))
                })
                .join()
                .unwrap()
        });
        let t = Instant::now();
        std::thread::scope(|scope| {
            for _ in 0..cores {
                scope.spawn(|| {
                    for _ in 0..40 {
                        one_bootstrap(&cks, &sks, &lut);
                    }
                });
            }
        });
        let busy = t.elapsed().as_secs_f64() * 1e3 / 40.0;
        println!(
            "BOOTSTRAP-PARTS {}: one thread: keyswitch {ks:.2} ms, keyswitch + bootstrap \
             {total:.1} ms ({:.0} % keyswitch); {cores} threads at once: {busy:.1} ms per \
             bootstrap per thread ({:.2}x one thread); catalogue {:.1} ms",
            s.name,
            100.0 * ks / total,
            busy / total,
            s.pbs_ms_1_thread
        );
    }
}

/// Exact mode before and after the extraction set, in one run: for each `DATA=CIRCUIT`
/// argument (a built-in data set and an exact-rounding circuit compiled from its model), keys
/// for the plan that clears one dropped bit per bootstrap (`--extraction-chunk-bits 1`) and for
/// the planner's choice; then each of the test rows (`SQNN_SAMPLES`, default all) through both, one
/// after the other, so that both see the same load. Prints, per plan, the median evaluation
/// time, the prediction, the measured / predicted ratio, the stage profile of the first sample
/// and the agreement with the clear backend.
///
/// `cargo run --release --features calibration --example calibrate -- exact-before-after
/// iris=iris.exact.circuit.json breast_cancer=bc.exact.circuit.json`
fn exact_before_after() {
    use sqnn::data::{Dataset, SplitSpec};
    let limit: usize = std::env::var("SQNN_SAMPLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(usize::MAX);
    for arg in std::env::args().skip(2) {
        let (data, path) = arg.split_once('=').expect("DATA=CIRCUIT");
        let c = CheckedGraph::new(IntGraph::load(Path::new(path)).unwrap())
            .unwrap()
            .expect("the circuit passes its check");
        let ds = Dataset::load(data, None, None).unwrap();
        let split = SplitSpec::Auto.split(&ds).unwrap();
        let test = ds.subset(&split.test);
        let mut inputs = c.graph().quantize_inputs(&test.x).unwrap();
        inputs.truncate(limit);
        let clear = ClearBackend::default().run(&c, &inputs).unwrap();
        let facts = fhe::PlanFacts::from(&c);
        // Before: one bit per bootstrap (`--extraction-chunk-bits 1`); after: the planner's
        // choice.
        let plans: Vec<fhe::FhePlan> = [Some(1), None]
            .into_iter()
            .map(|chunk| {
                let req = fhe::PlanRequest {
                    extraction_chunk_bits: chunk,
                    ..fhe::PlanRequest::new(fhe::FheMode::Exact).cores(fhe::builtin_cores())
                };
                fhe::plan(&facts, &req).unwrap()
            })
            .collect();
        let backends: Vec<TfheBackend> = plans
            .iter()
            .map(|p| TfheBackend::generate(&c, p).unwrap())
            .collect();
        let prepared: Vec<_> = backends
            .iter()
            .map(|b| b.server().prepare(&c).unwrap())
            .collect();
        let mut times = vec![vec![]; plans.len()];
        let mut agree = vec![0usize; plans.len()];
        for (x, want) in inputs.iter().zip(&clear) {
            for (i, b) in backends.iter().enumerate() {
                let enc = b.client().encrypt(&c, x).unwrap();
                let t = std::time::Instant::now();
                let out = b
                    .server()
                    .evaluate_prepared(&c, &prepared[i], &enc, &NoProgress)
                    .unwrap();
                times[i].push(t.elapsed().as_secs_f64() * 1e3);
                agree[i] += usize::from(&b.client().decrypt(&c, &out).unwrap() == want);
            }
        }
        for (i, p) in plans.iter().enumerate() {
            let med = sqnn::tfhe::median(&times[i]);
            println!(
                "EXACT {data} {}: tables on {}, extractions on {} in chunks of {} bits: {} \
                 bootstraps, median {med:.0} ms per sample over {} samples, predicted {:.0} ms \
                 ({:.2}x), {}/{} bit-identical",
                ["before", "after"][i],
                p.parameter_set,
                p.extraction_set().name,
                p.extraction_chunk_bits,
                p.pbs_count,
                times[i].len(),
                p.latency_ms_per_sample,
                med / p.latency_ms_per_sample,
                agree[i],
                inputs.len()
            );
            print_stage_profile(
                &backends[i],
                &c,
                &prepared[i],
                &inputs,
                fhe::builtin_cores(),
            );
        }
        let (b, a) = (sqnn::tfhe::median(&times[0]), sqnn::tfhe::median(&times[1]));
        println!("EXACT {data}: before / after {:.2}x", b / a);
    }
}

/// Pins the calling thread (and the threads it spawns later) to CPU 0 with `taskset`.
fn pin_this_thread_to_one_core() -> bool {
    let Ok(link) = std::fs::read_link("/proc/thread-self") else {
        return false;
    };
    let tid = link.file_name().unwrap().to_string_lossy().to_string();
    std::process::Command::new("taskset")
        .args(["-p", "-c", "0", &tid])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

/// Per-bootstrap latency of every selectable set (classic and multi-bit, 2^-128 and 2^-64),
/// measured in one run so the sets can be compared: keyswitch + bootstrap on one core (the
/// measuring thread pinned to CPU 0 with `taskset`, so a multi-bit bootstrap's own threads
/// share that core), one bootstrap at a time on all cores (a multi-bit bootstrap spreads over
/// them; a classic one uses one), and amortized with one bootstrap per core. Also key generation
/// as sqnn does it, the saved key sizes, a reload of the saved server key, and the encrypted
/// inference of the 4-bit test circuit against its floor. Prints a table.
///
/// `cargo run --release --features calibration --example calibrate -- latency`
/// (`SQNN_SETS=2,4,4mb4` to pick sets by tag, see `tag`).
fn latency() {
    use rayon::prelude::*;
    use std::time::Instant;
    let mut rows = vec![];
    for s in sets_from_env() {
        let name = s.name;
        // Key generation as sqnn does it (client key, compressed server key, decompression),
        // the sizes of the saved files, and the saved server key loaded back.
        let c2 = circuit2();
        let t = Instant::now();
        let (ck, sk) = ClientKey::generate(&c2, &plan(&c2, name)).unwrap();
        let keygen = t.elapsed().as_secs_f64();
        let dir = tempfile::tempdir().unwrap();
        let m = save_keys(dir.path(), &c2, &ck, &sk, sqnn::fhe::FheMode::Exact).unwrap();
        let t = Instant::now();
        let loaded = load_server_key(dir.path(), &c2).unwrap();
        let load_s = t.elapsed().as_secs_f64();
        let b = TfheBackend::new(ck.clone(), loaded).unwrap();
        let inputs = all_inputs(&c2);
        assert_eq!(
            b.run(&c2, &inputs).unwrap(),
            ClearBackend::default().run(&c2, &inputs).unwrap(),
            "{name}: reloaded server key"
        );
        drop(b);
        let in_memory = measure::server_key_bytes(s).unwrap();
        println!(
            "{name}: sqnn keygen {keygen:.1} s; client.key {} bytes, server.key {} bytes (compressed), {} in memory; reload {load_s:.1} s",
            m.client_key_bytes, m.server_key_bytes, in_memory
        );
        let (cks, sks) = measure::shortint_keys(&ck, &sk).unwrap();
        let lut = sks.generate_lookup_table(|x| x);
        let n1 = if s.precision() >= 6 { 8 } else { 30 };
        // One core: a pinned thread (a multi-bit bootstrap's threads inherit the pinning).
        let one: Vec<f64> = std::thread::scope(|scope| {
            scope
                .spawn(|| {
                    assert!(pin_this_thread_to_one_core(), "taskset failed");
                    one_bootstrap(cks, sks, &lut);
                    (0..n1)
                        .map(|_| {
                            let t = Instant::now();
                            one_bootstrap(cks, sks, &lut);
                            t.elapsed().as_secs_f64() * 1e3
                        })
                        .collect()
                })
                .join()
                .unwrap()
        });
        // One at a time, all cores.
        let alone: Vec<f64> = (0..n1)
            .map(|_| {
                let t = Instant::now();
                one_bootstrap(cks, sks, &lut);
                t.elapsed().as_secs_f64() * 1e3
            })
            .collect();
        let n2 = 2 * n1;
        let t = Instant::now();
        (0..n2).into_par_iter().for_each(|_| {
            one_bootstrap(cks, sks, &lut);
        });
        let amortized = t.elapsed().as_secs_f64() * 1e3 / f64::from(n2);
        let (t1, ta) = (sqnn::tfhe::median(&one), sqnn::tfhe::median(&alone));
        let cores = rayon::current_num_threads();
        // One bootstrap = s + p on one core, s + p / cores alone on all cores.
        let parallel = ((t1 - ta) / t1 * cores as f64 / (cores as f64 - 1.0)).clamp(0.0, 1.0);
        println!(
            "{name}: 1 core median {t1:.1} ms (min {:.1}); alone on {cores} cores {ta:.1} ms; {cores} threads amortized {amortized:.1} ms; parallel share {parallel:.2}; catalogue {} / {}",
            one.iter().cloned().fold(f64::MAX, f64::min),
            s.pbs_ms_1_thread,
            s.pbs_ms_2_threads
        );
        rows.push(format!(
            "| {} | {} | {t1:.1} | {ta:.1} | {amortized:.1} | {parallel:.2} | {keygen:.1} | {:.0} MB | {:.0} MB | {} |",
            tag(s),
            s.precision(),
            in_memory as f64 / 1e6,
            m.server_key_bytes as f64 / 1e6,
            name
        ));
    }
    println!("| tag | bits | 1 core ms | alone, all cores ms | amortized ms | parallel share | keygen s | server key in memory | server.key | set |");
    for r in rows {
        println!("{r}");
    }
    let c = circuit4();
    let b = backend(keys4(), &c);
    let inputs: Vec<Vec<i64>> = all_inputs(&c).into_iter().take(20).collect();
    let run = b.run_timed(&c, &inputs).unwrap();
    let s = set(SET4);
    println!(
        "circuit4 ({} PBS): evaluate median {:.1} ms per sample; floor {:.1} ms (PBS × {:.1} ms ÷ {} cores); encrypt {:.2} ms, decrypt {:.3} ms",
        run.pbs_count,
        run.median_evaluate_ms(),
        run.pbs_count as f64 * s.pbs_ms_1_thread / rayon::current_num_threads() as f64,
        s.pbs_ms_1_thread,
        rayon::current_num_threads(),
        sqnn::tfhe::median(&run.encrypt_ms),
        sqnn::tfhe::median(&run.decrypt_ms),
    );
}

/// A random MLP shaped like Concrete ML's iris default (4 features, 3 layers, multiplier 4:
/// 4-16-16-3), with 4-bit weights and activations: every row keeps random non-zero weights
/// until its accumulator's range would exceed `accum_bits` (per-neuron pruning), hidden
/// neurons are 4-bit ramp (ReLU-like staircase) tables. 32 bootstraps per sample.
fn iris_shape(accum_bits: u32, seed: u64) -> CheckedGraph {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut b = Builder::new("tfhe-iris-shape", 4, 4, accum_bits);
    let mut prev: Vec<NodeId> = (0..4).map(|_| b.input(-8, 7)).collect();
    let widths = [16usize, 16, 3];
    for (layer, &width) in widths.iter().enumerate() {
        let last = layer + 1 == widths.len();
        let mut next = vec![];
        for _ in 0..width {
            let terms = common::random_row_within_budget(&mut rng, &prev, &b.facts, 4, accum_bits);
            let d = b.dot(layer, &terms, rng.gen_range(-2..=2));
            if last {
                next.push(d);
                continue;
            }
            let iv = b.facts[d].interval;
            let count = iv.hi - iv.lo + 1;
            // ReLU then a 4-bit requantization: 0 below the middle, then a ramp.
            let mid = iv.lo + count / 2;
            next.push(b.lut(layer, d, move |a| {
                (((a - mid).max(0) * 16) / (count - count / 2)).min(15)
            }));
        }
        prev = next;
    }
    b.finish(&prev)
}

/// Concrete ML's default iris shape (4-16-16-3, 4-bit weights and activations, 9-bit accumulators,
/// 32 bootstraps) on the 4-bit set in approximate mode: encrypted latency per sample against
/// the floor (32 × one 4-bit bootstrap ÷ cores, with the bootstrap measured now on this
/// machine and from the catalogue), Concrete ML's 3.74 s and the 0.36 s target; the stage
/// imbalance and what the rest of the time goes to.
///
/// `cargo run --release --features calibration --example calibrate -- iris-shape`
/// (`SQNN_LATENCY_SAMPLES=N`, default 20).
fn iris_shape_latency() {
    use rayon::prelude::*;
    use std::time::Instant;
    let samples: usize = std::env::var("SQNN_LATENCY_SAMPLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let cores = rayon::current_num_threads();
    let c = iris_shape(9, 1);
    let r = c.report();
    assert_eq!(r.pbs_count, 32);
    let set4 = set(SET4);
    let plan = plan_on_set(&c, set4, fhe::FheMode::Approximate, -40.0, cores).unwrap();
    print!("{}", fhe::render_plan(&plan));
    let b = backend_with(&c, &plan);
    let prepared = b.server().prepare(&c).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let inputs: Vec<Vec<i64>> = (0..samples)
        .map(|_| (0..4).map(|_| rng.gen_range(-8..=7)).collect())
        .collect();
    // Warm up (thread-local buffers, FFT plans).
    let enc = b.client().encrypt(&c, &inputs[0]).unwrap();
    b.server()
        .evaluate_prepared(&c, &prepared, &enc, &NoProgress)
        .unwrap();
    let run = b.run_timed(&c, &inputs).unwrap();
    let eval = run.median_evaluate_ms();
    let clear = ClearBackend::default().run(&c, &inputs).unwrap();
    let argmax = |o: &Vec<i64>| (0..o.len()).max_by_key(|&i| (o[i], std::cmp::Reverse(i)));
    let same = run
        .outputs
        .iter()
        .zip(&clear)
        .filter(|(e, k)| e == k)
        .count();
    let same_class = run
        .outputs
        .iter()
        .zip(&clear)
        .filter(|(e, k)| argmax(e) == argmax(k))
        .count();
    let max_diff = run
        .outputs
        .iter()
        .zip(&clear)
        .flat_map(|(e, k)| e.iter().zip(k).map(|(a, b)| (a - b).abs()))
        .max()
        .unwrap_or(0);
    println!(
        "approximate outputs: {same}/{samples} identical to clear, {same_class}/{samples} same \
         argmax, largest output difference {max_diff} (outputs span about {} values)",
        c.report()
            .neurons
            .iter()
            .filter(|n| n.table_len == 0)
            .map(|n| n.hi - n.lo + 1)
            .max()
            .unwrap_or(0)
    );
    // Where the time goes, stage by stage (median over a few samples).
    print_stage_profile(&b, &c, &prepared, &inputs, cores);
    // The floor measured now: 32 bootstraps of the same set, all cores, no circuit.
    let (cks, sks) = raw_keys(set4);
    let lut = sks.generate_lookup_table(|x| x);
    let mut floor_now = vec![];
    let mut stage_now = vec![];
    for _ in 0..5 {
        let t = Instant::now();
        (0..32).into_par_iter().for_each(|_| {
            one_bootstrap(&cks, &sks, &lut);
        });
        floor_now.push(t.elapsed().as_secs_f64() * 1e3);
        let t = Instant::now();
        for _ in 0..2 {
            (0..16).into_par_iter().for_each(|_| {
                one_bootstrap(&cks, &sks, &lut);
            });
        }
        stage_now.push(t.elapsed().as_secs_f64() * 1e3);
    }
    let mut one = vec![];
    for _ in 0..10 {
        let t = Instant::now();
        one_bootstrap(&cks, &sks, &lut);
        one.push(t.elapsed().as_secs_f64() * 1e3);
    }
    let floor_now = sqnn::tfhe::median(&floor_now);
    let stage_now = sqnn::tfhe::median(&stage_now);
    let one = sqnn::tfhe::median(&one);
    let catalogue = 32.0 * set4.pbs_ms_1_thread / cores as f64;
    println!(
        "iris shape, approximate, {}-bit space ({} positions per value, σ up to {:.2} units): \
         evaluation median {eval:.0} ms per sample over {samples} (min {:.0}); encrypt {:.1} ms, \
         decrypt {:.2} ms",
        plan.space_bits,
        plan.box_positions,
        plan.worst_sigma_units,
        run.evaluate_ms.iter().cloned().fold(f64::MAX, f64::min),
        sqnn::tfhe::median(&run.encrypt_ms),
        sqnn::tfhe::median(&run.decrypt_ms),
    );
    println!(
        "floor: catalogue {catalogue:.0} ms (32 × {:.1} ms ÷ {cores}); now {:.0} ms (32 × {one:.1} \
         ms ÷ {cores}); 32 bootstraps in one parallel batch {floor_now:.0} ms, as two stages of 16 \
         {stage_now:.0} ms; evaluation / measured floor = {:.2}, / two stages = {:.2}; Concrete \
         ML 3740 ms ({:.1}× faster), target 360 ms",
        set4.pbs_ms_1_thread,
        32.0 * one / cores as f64,
        eval / floor_now,
        eval / stage_now,
        3740.0 / eval
    );
}

/// Prints, per stage, the median time of its bootstraps and of its dot products over the first
/// five of `inputs`.
fn print_stage_profile(
    b: &TfheBackend,
    c: &CheckedGraph,
    prepared: &sqnn::tfhe::PreparedCircuit,
    inputs: &[Vec<i64>],
    cores: usize,
) {
    let mut stages: Vec<Vec<sqnn::tfhe::StageTiming>> = vec![];
    for x in inputs.iter().take(5) {
        let enc = b.client().encrypt(c, x).unwrap();
        stages.push(measure::evaluate_profiled(b.server(), c, prepared, &enc).unwrap());
    }
    for s in 0..stages[0].len() {
        let tables: Vec<f64> = stages.iter().map(|p| p[s].tables_ms).collect();
        let dots: Vec<f64> = stages.iter().map(|p| p[s].dots_ms).collect();
        let st = &stages[0][s];
        println!(
            "stage {s}: {} bootstraps {:.1} ms ({:.1} ms per bootstrap per core), {} dots of {} \
             terms {:.2} ms",
            st.tables,
            sqnn::tfhe::median(&tables),
            sqnn::tfhe::median(&tables) * cores as f64 / st.tables.max(1) as f64,
            st.dots,
            st.terms,
            sqnn::tfhe::median(&dots)
        );
    }
}

/// The committed iris circuit (the defaults) under its chosen plan: median latency of 20
/// encrypted samples against the floor measured in the same run (the circuit's bootstrap count
/// on all cores, no circuit around them), and where the difference goes, stage by stage.
///
/// `cargo run --release --features calibration --example calibrate -- committed-iris`
fn committed_iris() {
    use rayon::prelude::*;
    use std::time::Instant;
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("circuits/iris.circuit.json");
    let c = CheckedGraph::new(IntGraph::load(&path).unwrap())
        .unwrap()
        .expect("committed circuit passes");
    let cores = rayon::current_num_threads();
    let req = fhe::PlanRequest::new(fhe::FheMode::Approximate)
        .cores(cores)
        .max_sigma(2.0);
    let plan = fhe::plan(&fhe::PlanFacts::from(&c), &req).unwrap();
    let b = TfheBackend::generate(&c, &plan).unwrap();
    let prepared = b.server().prepare(&c).unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    let inputs: Vec<Vec<i64>> = (0..20)
        .map(|_| {
            c.graph()
                .input_nodes()
                .iter()
                .map(|&id| {
                    let iv = c.facts()[id].interval;
                    rng.gen_range(iv.lo..=iv.hi)
                })
                .collect()
        })
        .collect();
    let enc = b.client().encrypt(&c, &inputs[0]).unwrap();
    b.server()
        .evaluate_prepared(&c, &prepared, &enc, &NoProgress)
        .unwrap();
    let run = b.run_timed(&c, &inputs).unwrap();
    let (cks, sks) = raw_keys(plan.set());
    let lut = sks.generate_lookup_table(|x| x);
    let mut floor = vec![];
    let mut layered = vec![];
    for _ in 0..10 {
        let t = Instant::now();
        (0..plan.pbs_count).into_par_iter().for_each(|_| {
            one_bootstrap(&cks, &sks, &lut);
        });
        floor.push(t.elapsed().as_secs_f64() * 1e3);
        let t = Instant::now();
        for l in &c.report().layers {
            (0..l.pbs).into_par_iter().for_each(|_| {
                one_bootstrap(&cks, &sks, &lut);
            });
        }
        layered.push(t.elapsed().as_secs_f64() * 1e3);
    }
    let eval = run.median_evaluate_ms();
    let floor = sqnn::tfhe::median(&floor);
    let layered = sqnn::tfhe::median(&layered);
    println!(
        "iris ({} bootstraps, {cores} cores): {eval:.1} ms per sample; floor now {floor:.1} ms \
         ({:.2}x); the same bootstraps layer by layer {layered:.1} ms ({:.2}x of the floor)",
        plan.pbs_count,
        eval / floor,
        layered / floor
    );
    print_stage_profile(&b, &c, &prepared, &inputs, cores);
    assert_eq!(run.outputs.len(), inputs.len());
}

/// `builtin-latency PROFILE...`: see the module docs.
fn builtin_latency() -> ExitCode {
    use sqnn::fhe::{catalogue, CostProfile};
    // The median, `None` without values.
    let median = |v: Vec<f64>| (!v.is_empty()).then(|| sqnn::tfhe::median(&v));
    let mut profiles = Vec::new();
    for path in std::env::args().skip(2) {
        match CostProfile::load(Path::new(&path)) {
            Ok(p) => profiles.push(p),
            Err(e) => {
                eprintln!("error: {path}: {e}");
                return ExitCode::from(2);
            }
        }
    }
    if profiles.is_empty() {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    }
    // One contention factor for classic sets: a round of one bootstrap per core against one
    // alone, over every classic measurement.
    let Some(kappa) = median(
        profiles
            .iter()
            .flat_map(|p| {
                p.sets
                    .iter()
                    .filter(|(id, _)| id.set().grouping_factor == 1)
                    .map(|(_, c)| 2.0 * c.pbs_ms_all_threads / c.pbs_ms_alone)
            })
            .collect(),
    ) else {
        eprintln!(
            "error: no profile measured a classic set; run `sqnn calibrate` without \
             --parameters, or with a classic set among them"
        );
        return ExitCode::from(2);
    };
    let kappa = (kappa * 100.0).round() / 100.0;
    let mut new = Vec::new();
    for set in catalogue() {
        let runs: Vec<_> = profiles
            .iter()
            .filter_map(|p| p.sets.get(&set.id).map(|c| (p.cores, c)))
            .collect();
        // A multi-bit set's time alone ran on its threads over the profile's cores: undone of
        // its parallel share, as plans read a profile.
        let one_core = |cores: usize, alone: f64| {
            let f = set.pbs_parallel_fraction.clamp(0.0, 1.0);
            let per = cores.min(set.pbs_threads).max(1) as f64;
            alone / ((1.0 - f) + f / per)
        };
        let t1 = median(
            runs.iter()
                .map(|(c, r)| one_core(*c, r.pbs_ms_alone))
                .collect(),
        );
        let t2 = if set.grouping_factor == 1 {
            t1.map(|t| kappa * t / 2.0)
        } else {
            median(
                runs.iter()
                    .map(|(c, r)| r.pbs_ms_all_threads * *c as f64 / 2.0)
                    .collect(),
            )
        };
        new.push((set, runs.len(), t1.zip(t2)));
    }
    // Some set was measured: a classic one gave the contention factor.
    let scale = median(
        new.iter()
            .filter_map(|(s, _, f)| f.map(|(t1, _)| t1 / s.pbs_ms_1_thread))
            .collect(),
    )
    .unwrap_or(1.0);
    println!(
        "contention factor {kappa} (median of the classic sets' rounds against alone); sets no \
         profile holds: built-in figures × {scale:.2}"
    );
    for (set, n, figures) in new {
        let (t1, t2, from) = match figures {
            Some((t1, t2)) => (t1, t2, format!("{n} profiles")),
            None => (
                set.pbs_ms_1_thread * scale,
                set.pbs_ms_2_threads * scale,
                "scaled".into(),
            ),
        };
        println!(
            "\"{}\": pbs_ms_1_thread {:.1}, pbs_ms_2_threads {:.1}  ({from})",
            set.name, t1, t2
        );
    }
    ExitCode::SUCCESS
}
