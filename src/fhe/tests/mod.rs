use super::choose::capacity;
use super::*;
use crate::error::{Error, Result};

/// Circuits without bootstraps, and the work outside bootstraps.
mod linear;
/// The catalogue, noise and encoding maths.
mod model;
/// The cost source: built-in figures or a machine's profile.
mod profile;
/// Each table's read scale.
mod scale;

fn neuron(layer: usize, neuron: usize, range_bits: u32, sum_w2: u64, table: bool) -> DotFacts {
    let count = 1i64 << range_bits;
    DotFacts {
        node: 100 * layer + neuron,
        layer,
        neuron,
        lo: -3,
        hi: -3 + count - 1,
        range_bits,
        sum_w2,
        table_len: if table {
            usize::try_from(count).unwrap()
        } else {
            0
        },
        table_bits: if table { range_bits } else { 0 },
        round_bits: 0,
        table_offset: 0,
        terms: 0,
        reads_inputs: false,
    }
}

/// The old mechanics tests pin the choice to the classic 2^-128 sets (whose figures they
/// quote); `the_choice_considers_every_family_and_lists_them` covers the whole catalogue.
/// The shipped classic 2^-128 sets (not their decomposition variants).
fn classic128(p: &ParamSet) -> bool {
    p.grouping_factor == 1 && p.family_log2_p_fail == -128 && p.derives_from.is_none()
}

fn classic(r: &PlanFacts, target: f64, cores: usize) -> Result<FhePlan> {
    classic_with(r, target, cores, FheMode::Exact)
}

fn classic_with(r: &PlanFacts, target: f64, cores: usize, mode: FheMode) -> Result<FhePlan> {
    let among = catalogue().iter().filter(|p| classic128(p)).map(|p| p.id);
    plan(
        r,
        &PlanRequest::new(mode)
            .target(target)
            .cores(cores)
            .among(among),
    )
}

/// The choice among every selectable set, exact reads.
fn choose(r: &PlanFacts, target: f64, cores: usize) -> Result<FhePlan> {
    plan(
        r,
        &PlanRequest::new(FheMode::Exact).target(target).cores(cores),
    )
}

/// The plan on `set` in `mode` (the mode's width, checked).
fn on_set(
    r: &PlanFacts,
    set: &ParamSet,
    mode: FheMode,
    target: f64,
    cores: usize,
) -> Result<FhePlan> {
    plan(
        r,
        &PlanRequest::new(mode)
            .on(set.id)
            .target(target)
            .cores(cores),
    )
}

/// The unchecked plan on `set` at a `space_bits`-bit space.
fn on_width(
    r: &PlanFacts,
    set: &ParamSet,
    space_bits: u32,
    mode: FheMode,
    target: f64,
    cores: usize,
) -> FhePlan {
    let req = PlanRequest::new(mode).on(set.id).space_bits(space_bits);
    plan(r, &req.target(target).cores(cores)).unwrap()
}

/// The facts with bootstraps per layer, as the analysis gives them.
fn with_layers(mut r: PlanFacts) -> PlanFacts {
    let depth = r.dots.iter().map(|n| n.layer + 1).max().unwrap_or(0);
    r.pbs_per_layer = (0..depth)
        .map(|l| {
            r.dots
                .iter()
                .filter(|n| n.layer == l && n.table_len > 0)
                .count()
        })
        .collect();
    r
}

fn report(dots: Vec<DotFacts>, n_a_bits: u32) -> PlanFacts {
    let tables = || {
        dots.iter()
            .filter(|n| n.table_len > 0)
            .map(|n| n.round_bits)
    };
    PlanFacts {
        pbs_count: tables().count(),
        pbs_per_layer: Vec::new(),
        n_a_bits,
        dropped_bits: tables().min().zip(tables().max()),
        n_inputs: 0,
        dots,
    }
}

#[test]
fn precision_covers_accumulators_outputs_and_activations() {
    // A 5-bit output accumulator forces the 6-bit set even with 2-bit tables.
    let r = report(vec![neuron(0, 0, 2, 4, true), neuron(1, 0, 5, 4, false)], 2);
    assert_eq!(needed_bits(&r), 5);
    let p = choose(&r, -40.0, 2).unwrap();
    assert_eq!(p.precision_bits, 6);
    assert_eq!(p.needed_bits, 5);
    // Everything within 2 bits: the cheapest set, 2 or 4 bits.
    let r = report(vec![neuron(0, 0, 2, 4, true), neuron(1, 0, 2, 2, false)], 2);
    let p = choose(&r, -40.0, 2).unwrap();
    assert!(p.precision_bits >= 2 && p.precision_bits <= 4);
    // Activations wider than the accumulators still count.
    let r = report(vec![neuron(0, 0, 2, 4, true)], 3);
    assert!(choose(&r, -40.0, 2).unwrap().precision_bits >= 3);
    // Latency arithmetic.
    let r = report(vec![neuron(0, 0, 4, 4, true), neuron(0, 1, 4, 4, true)], 2);
    let p = choose(&r, -40.0, 2).unwrap();
    assert_eq!(p.pbs_count, 2);
    assert!((p.latency_ms_per_sample - p.pbs_ms_together).abs() < 1e-9);
    assert!(p.pbs_ms_together >= p.pbs_ms_1_thread);
    assert!((p.latency_ms_per_sample_1_core - 2.0 * p.pbs_ms_1_thread).abs() < 1e-9);
    assert_eq!(p.neurons.len(), 2);
    assert!(p.total_log2_p_fail >= p.worst_log2_p_fail);
    assert!(p.total_log2_p_fail <= p.worst_log2_p_fail + 1.0 + 1e-9);
    assert!(render_plan(&p).contains(&p.parameter_set.to_string()));
    let _ = serde_json::to_string(&p).unwrap();
}

/// A 9-bit circuit whose tables drop 4 bits: no set reads it exactly in one bootstrap, but
/// exact rounding on the 6-bit set does, at 3 bootstraps per table (the 4 bits cleared as one
/// chunk, two bootstraps), 5 with one bit per bootstrap; without rounding tables the exact
/// choice fails and says how to get exact rounding.
#[test]
fn exact_mode_falls_back_to_exact_rounding() {
    let rounded = |layer, idx, table| DotFacts {
        round_bits: if table { 4 } else { 0 },
        table_len: if table { 32 } else { 0 },
        table_bits: if table { 5 } else { 0 },
        ..neuron(layer, idx, 9, 60, table)
    };
    let r = report(
        vec![
            rounded(0, 0, true),
            rounded(0, 1, true),
            rounded(1, 0, false),
        ],
        4,
    );
    let p = choose(&r, -40.0, 2).unwrap();
    assert!(p.exact_rounding);
    assert_eq!(p.precision_bits, 6);
    assert_eq!(p.extraction_chunk_bits, 4);
    assert_eq!(p.pbs_count, 2 * 3);
    // Its reads are exact: a clear simulation of the plan injects nothing into them.
    let rounded: Vec<_> = p.neurons.iter().filter(|n| n.extractions > 0).collect();
    assert_eq!(rounded.len(), 2);
    assert!(rounded.iter().all(|n| n.sigma_units == 0.0 && n.std > 0.0));
    let sim = read_sigma_units(&p, &r);
    assert!(rounded
        .iter()
        .all(|n| sim.iter().any(|&(node, s)| node == n.node && s == 0.0)));
    assert!(p.worst_log2_p_fail <= -40.0);
    assert!(render_plan(&p).contains("exact: 2 tables clear"));
    let req = PlanRequest::new(FheMode::Exact)
        .cores(2)
        .extraction_chunk_bits(1);
    let bitwise = plan(&r, &req).unwrap();
    assert_eq!(bitwise.parameter_set, p.parameter_set);
    assert_eq!(bitwise.pbs_count, 2 * 5);
    assert!(bitwise.latency_ms_per_sample > p.latency_ms_per_sample);
    assert!(plan(&r, &req.clone().extraction_chunk_bits(0)).is_err());
    // The circuit records the extraction set and chunk width; planning the record again keeps
    // them (a record written before them: the planner's choice again).
    let rec = bitwise.record();
    assert_eq!(rec.extraction_chunk_bits, Some(1));
    assert_eq!(
        rec.extraction_parameter_set.as_deref(),
        Some(bitwise.extraction_set().name)
    );
    let again = recorded_plan(&r, &rec, &PlanRequest::new(FheMode::Exact).cores(2)).unwrap();
    assert_eq!(
        (again.extraction_chunk_bits, again.pbs_count),
        (1, bitwise.pbs_count)
    );
    assert_eq!(
        again.extraction_parameter_set,
        bitwise.extraction_parameter_set
    );
    let old = crate::ir::PlanRecord {
        extraction_parameter_set: None,
        extraction_chunk_bits: None,
        ..rec
    };
    let again = recorded_plan(&r, &old, &PlanRequest::new(FheMode::Exact).cores(2)).unwrap();
    assert_eq!(again.extraction_chunk_bits, p.extraction_chunk_bits);
    let plain = report(
        vec![neuron(0, 0, 9, 60, true), neuron(1, 0, 9, 60, false)],
        4,
    );
    let e = choose(&plain, -40.0, 2).unwrap_err().to_string();
    assert!(e.contains("lower with `max_table_bits` 4"), "{e}");
}

#[test]
fn too_wide_names_the_accumulators() {
    let r = report(vec![neuron(0, 0, 4, 4, true), neuron(1, 3, 9, 4, false)], 2);
    let e = choose(&r, -40.0, 2).unwrap_err().to_string();
    assert!(e.contains("9-bit"), "{e}");
    assert!(e.contains("layer 1 neuron 3"), "{e}");
    assert!(e.contains("retrain with `n_accum_bits`"), "{e}");
}

#[test]
fn noise_target_moves_the_choice_and_blames_neurons() {
    let four = "V1_8_PARAM_MESSAGE_2_CARRY_2_KS_PBS_TUNIFORM_2M128"
        .parse::<ParamSetId>()
        .unwrap()
        .set();
    let six = "V1_8_PARAM_MESSAGE_3_CARRY_3_KS_PBS_TUNIFORM_2M128"
        .parse::<ParamSetId>()
        .unwrap()
        .set();
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
    let p = classic(&r, -40.0, 2).unwrap();
    assert_eq!(p.precision_bits, 6);
    // ... and stays on 4 bits with a relaxed target.
    let p = classic(&r, -30.0, 2).unwrap();
    assert!(p.precision_bits <= 4);
    assert!(p.worst_log2_p_fail <= -30.0);
    // Beyond every set: an error that names the neuron, its Σw² and the fixes. The most
    // tolerant exact read of a 4-bit space is the 6-bit set's (N = 8192: 512 positions per
    // value).
    let m6_4 = six.max_sum_w2_exact(4, -40.0);
    assert!(m6_4 > m6);
    let r = report(
        vec![neuron(0, 0, 4, 4, true), neuron(2, 7, 4, m6_4 * 4, true)],
        2,
    );
    let e = classic(&r, -40.0, 2).unwrap_err().to_string();
    assert!(e.contains("layer 2 neuron 7"), "{e}");
    assert!(e.contains(&format!("Σw² {}", m6_4 * 4)), "{e}");
    assert!(e.contains("prune more"), "{e}");
    // 2^-11.6 is looser than any target a plan may have: no advice to relax it.
    assert!(!e.contains("`p_error`"), "{e}");
    assert!(!e.contains("layer 0 neuron 0"), "{e}");
    // Just past the budget, relaxing the target is one of the fixes.
    let r = report(
        vec![
            neuron(0, 0, 4, 4, true),
            neuron(2, 7, 4, m6_4 + m6_4 / 8, true),
        ],
        2,
    );
    let e = classic(&r, -40.0, 2).unwrap_err().to_string();
    assert!(e.contains("`p_error` -3"), "{e}");
}

/// In both modes the choice considers the validated decomposition variants: a 4-bit circuit
/// whose noisiest neuron is just over the shipped 4-bit set's budget runs on its two-level
/// variant (1.5 times a 4-bit bootstrap), not on the 6-bit set (7 times), and the plan says
/// what the variant derives from and what changed.
#[test]
fn the_choice_uses_decomposition_variants_and_says_so() {
    let m4 = SET4.set().max_sum_w2(-40.0);
    let r = report(
        vec![
            neuron(0, 0, 4, 4, true),
            neuron(0, 1, 4, m4 + 1, true),
            neuron(1, 0, 4, 4, false),
        ],
        2,
    );
    let p = choose(&r, -40.0, 2).unwrap();
    let set = p.set();
    assert_eq!(set.derives_from, Some(ParamSetId::ClassicMsg2Carry2));
    assert!(p.worst_log2_p_fail <= -40.0);
    assert!(p
        .candidates
        .iter()
        .any(|c| c.parameter_set == ParamSetId::ClassicMsg2Carry2Pbs2B15));
    let text = render_plan(&p);
    assert!(
        text.contains("derived from V1_8_PARAM_MESSAGE_2_CARRY_2_KS_PBS_TUNIFORM_2M128")
            && text.contains("bootstrap level 1 → 2, base 2^23 → 2^15"),
        "{text}"
    );
    // Approximate mode considers them too (they are candidates), and the shipped set still
    // wins where it suffices.
    let approx = plan(&r, &PlanRequest::new(FheMode::Approximate).cores(2)).unwrap();
    assert!(approx
        .candidates
        .iter()
        .any(|c| c.parameter_set == ParamSetId::ClassicMsg2Carry2Pbs2B15));
    let easy = report(vec![neuron(0, 0, 4, 4, true), neuron(1, 0, 4, 4, false)], 2);
    assert_eq!(choose(&easy, -40.0, 2).unwrap().set().derives_from, None);
}

#[test]
fn bad_targets_are_parameter_errors() {
    let r = report(vec![neuron(0, 0, 2, 4, true)], 2);
    for t in [0.0, 1.0, -10.0, -19.9, f64::NAN, f64::NEG_INFINITY, -5000.0] {
        assert!(matches!(
            choose(&r, t, 2),
            Err(Error::InvalidParameter {
                name: "p_error",
                ..
            })
        ));
    }
}

/// A 2^-64 set is taken only when it is at least 15 % faster than the fastest 2^-128 set that
/// qualifies, and the plan says so.
#[test]
fn the_choice_prefers_the_2m128_family() {
    let r = report(vec![neuron(0, 0, 4, 4, true), neuron(1, 0, 4, 4, false)], 1);
    let among = |ids: &[ParamSetId]| {
        plan(
            &r,
            &PlanRequest::new(FheMode::Exact)
                .target(-40.0)
                .cores(2)
                .among(ids.iter().copied()),
        )
        .unwrap()
    };
    let (six, six64) = (
        ParamSetId::ClassicMsg3Carry3,
        ParamSetId::ClassicMsg3Carry3Fail64,
    );
    assert!(six64.set().pbs_ms_1_thread < six.set().pbs_ms_1_thread);
    let p = among(&[six, six64]);
    assert_eq!(p.parameter_set, six, "{}", render_plan(&p));
    let note = |p: &FhePlan, id| {
        p.candidates
            .iter()
            .find(|c| c.parameter_set == id)
            .unwrap()
            .note
            .clone()
    };
    assert!(note(&p, six64).contains("15 %"), "{}", note(&p, six64));
    let four64 = ParamSetId::ClassicMsg2Carry2Fail64;
    let p = among(&[six, four64]);
    assert_eq!(p.parameter_set, four64);
    assert!(
        note(&p, four64).starts_with("chosen: a 2^-64 set"),
        "{}",
        note(&p, four64)
    );
    let p = among(&[four64]);
    assert!(
        note(&p, four64).contains("no 2^-128 set"),
        "{}",
        note(&p, four64)
    );
}

#[test]
fn the_choice_considers_every_family_and_lists_them() {
    // A 4-bit circuit with one bootstrap per layer (narrower than the cores).
    let r = with_layers(report(
        vec![
            neuron(0, 0, 4, 4, true),
            neuron(1, 0, 4, 4, true),
            neuron(2, 0, 4, 4, false),
        ],
        2,
    ));
    assert_eq!(pbs_per_layer(&r), vec![1, 1, 0]);
    let selectable = catalogue().iter().filter(|p| p.selectable).count();
    for cores in [1usize, 2, 64] {
        let p = choose(&r, -40.0, cores).unwrap();
        assert_eq!(p.candidates.len(), selectable);
        let families: std::collections::BTreeSet<&str> =
            p.candidates.iter().map(|c| c.family.as_str()).collect();
        assert!(families.len() >= 4, "{families:?}");
        // The chosen set is the qualifying 2^-128 candidate of least predicted latency, unless
        // a qualifying 2^-64 one is at least 15 % faster.
        let ok: Vec<&Candidate> = p
            .candidates
            .iter()
            .filter(|c| c.space_bits.is_some())
            .collect();
        let fastest = |family: i32| {
            ok.iter()
                .find(|c| c.parameter_set.set().family_log2_p_fail == family)
                .copied()
        };
        let (best128, best64) = (fastest(-128).unwrap(), fastest(-64).unwrap());
        let expect = if best64.latency_ms_per_sample <= 0.85 * best128.latency_ms_per_sample {
            best64
        } else {
            best128
        };
        assert_eq!(expect.parameter_set, p.parameter_set, "{}", render_plan(&p));
        assert!(p
            .candidates
            .iter()
            .any(|c| c.parameter_set == p.parameter_set && c.note.starts_with("chosen")));
        for c in &ok {
            if c.parameter_set.set().family_log2_p_fail == p.set().family_log2_p_fail {
                assert!(p.latency_ms_per_sample <= c.latency_ms_per_sample + 1e-9);
            }
        }
        let set = p.set();
        assert_eq!(p.family, set.family());
        assert!(
            (p.latency_ms_per_sample - set.circuit_ms(&[1, 1, 0], cores)).abs() < 1e-9,
            "two layers of one bootstrap"
        );
        // Qualifying first, then those that miss, each with a reason.
        let first_miss = p.candidates.iter().position(|c| c.space_bits.is_none());
        if let Some(i) = first_miss {
            assert!(p.candidates[i..].iter().all(|c| c.space_bits.is_none()));
        }
        assert!(p.candidates.iter().all(|c| !c.note.is_empty()));
        let text = render_plan(&p);
        assert!(
            text.contains("candidates") && text.contains(&p.family),
            "{text}"
        );
        for c in &p.candidates {
            assert!(text.contains(&c.parameter_set.to_string()), "{text}");
        }
        let back: FhePlan = serde_json::from_str(&serde_json::to_string(&p).unwrap()).unwrap();
        assert_eq!(back, p);
    }
    // On many cores the model may prefer a multi-bit bootstrap (narrow layers leave cores
    // idle for a classic one): the choice follows the model, whichever family that is.
    let p64 = choose(&r, -40.0, 64).unwrap();
    let best = |multi: bool| {
        p64.candidates
            .iter()
            .filter(|c| c.space_bits.is_some())
            .filter(|c| (c.parameter_set.set().grouping_factor > 1) == multi)
            .map(|c| c.latency_ms_per_sample)
            .fold(f64::INFINITY, f64::min)
    };
    let chosen_multi = p64.set().grouping_factor > 1;
    assert_eq!(
        chosen_multi,
        best(true) < best(false),
        "{}",
        render_plan(&p64)
    );
    // A plan deserialized from before candidates existed still renders.
    let mut old = p64.clone();
    old.candidates.clear();
    old.family.clear();
    assert!(render_plan(&old).contains(&p64.family));
}

const SET2: ParamSetId = ParamSetId::ClassicMsg1Carry1;
const SET4: ParamSetId = ParamSetId::ClassicMsg2Carry2;
const SET6: ParamSetId = ParamSetId::ClassicMsg3Carry3;

/// A neuron with the interval `[lo, hi]`.
fn neuron_iv(layer: usize, idx: usize, lo: i64, hi: i64, sum_w2: u64, table: bool) -> DotFacts {
    let iv = crate::ir::Interval { lo, hi };
    let mut n = neuron(layer, idx, iv.range_bits(), sum_w2, table);
    n.lo = lo;
    n.hi = hi;
    n
}

#[test]
fn exact_mode_is_the_classic_model_at_the_set_precision() {
    let s = SET4.set();
    let r = report(
        vec![neuron(0, 0, 4, 30, true), neuron(1, 0, 4, 9, false)],
        2,
    );
    let p = on_width(&r, s, needed_bits(&r), FheMode::Exact, -40.0, 2);
    assert_eq!(p.mode, FheMode::Exact);
    assert_eq!(p.space_bits, 4);
    assert_eq!(p.box_positions, 128.0);
    let n = &p.neurons[0];
    assert!((n.log2_p_fail - s.bootstrap_log2_p_fail(30)).abs() < 1e-9);
    assert!((n.sigma_units - s.bootstrap_std(30) / 128.0).abs() < 1e-12);
    assert!((p.neurons[1].log2_p_fail - s.decrypt_log2_p_fail(9)).abs() < 1e-9);
    assert_eq!(s.max_sum_w2_exact(4, -40.0), s.max_sum_w2(-40.0));
    assert_eq!(p.max_sum_w2, s.max_sum_w2(-40.0));
    let back: FhePlan = serde_json::from_str(&serde_json::to_string(&p).unwrap()).unwrap();
    assert_eq!(back, p);
}

#[test]
fn exact_reads_wider_than_the_set_when_the_target_allows() {
    // 5-bit values: the 4-bit set's N = 2048 gives 64 positions per value, a read exact with
    // probability 1 - 2^-33.6 at σ ≈ 4.9: not at 2^-40 (the 6-bit set then), but at 2^-30.
    let r = report(vec![neuron(0, 0, 5, 9, true), neuron(1, 0, 5, 9, false)], 2);
    let p = classic(&r, -40.0, 2).unwrap();
    assert_eq!((p.parameter_set, p.space_bits), (SET6, 5));
    let p = classic(&r, -30.0, 2).unwrap();
    assert_eq!((p.parameter_set, p.space_bits), (SET4, 5));
    assert_eq!(p.precision_bits, 4);
    assert_eq!(p.box_positions, 64.0);
    assert!(p.worst_log2_p_fail < -33.0 && p.worst_log2_p_fail > -34.5);
    // 6 bits on N = 2048 (32 positions): misreads about one read in a thousand.
    let s4 = SET4.set();
    let q = on_width(&r, s4, 6, FheMode::Exact, -40.0, 2);
    assert!(q.worst_log2_p_fail > -11.0, "{}", q.worst_log2_p_fail);
    // What exact reads allow at 2^-40: 4 bits on N = 2048, 6 on N = 8192.
    assert_eq!(capacity(s4, FheMode::Exact, -40.0, true), 4);
    assert_eq!(capacity(s4, FheMode::Exact, -30.0, true), 5);
    let s6 = SET6.set();
    assert_eq!(capacity(s6, FheMode::Exact, -40.0, true), 6);
    // Explicit errors from a plan on one set.
    let e = on_set(&r, s4, FheMode::Exact, -40.0, 2)
        .unwrap_err()
        .to_string();
    assert!(e.contains("2^-40") && e.contains("5-bit space"), "{e}");
}

/// An iris-like report: 9-bit accumulators (one filling its 512 values exactly), 9-bit
/// outputs.
fn wide_report() -> PlanFacts {
    report(
        vec![
            neuron_iv(0, 0, -240, 271, 196, true), // 512 values: no margin at P = 9
            neuron_iv(0, 1, -100, 199, 150, true),
            neuron_iv(1, 0, 0, 400, 300, true),
            neuron_iv(2, 0, -200, 180, 250, false),
        ],
        4,
    )
}

#[test]
fn approximate_mode_reads_wide_accumulators_with_one_cheap_bootstrap() {
    let r = wide_report();
    assert_eq!(needed_bits(&r), 9);
    // Exact reads of 9 bits are impossible on every practical set at 2^-40.
    let e = classic(&r, -40.0, 2).unwrap_err().to_string();
    assert!(e.contains("9-bit") && e.contains("approximate"), "{e}");
    let p = classic_with(&r, -40.0, 2, FheMode::Approximate).unwrap();
    assert_eq!(p.mode, FheMode::Approximate);
    // P = 9 leaves no margin to the full neuron (512 values): P = 10, which the 2-bit set
    // (N = 512, at most 9 bits) cannot read; the next cheapest, the 4-bit set, reads it with
    // 2 positions per value.
    assert_eq!(p.parameter_set, SET4);
    assert_eq!(p.space_bits, 10);
    assert_eq!(p.box_positions, 2.0);
    assert!(p.worst_log2_p_fail <= -40.0);
    let s = SET4.set();
    // The full neuron (512 values) fills the space; the 300- and 401-value ones are read in
    // their own 9-bit spaces (scaled by 2, 4 positions per value); the output is decrypted.
    let scales: Vec<u32> = p.neurons.iter().map(|n| n.scale_bits).collect();
    assert_eq!(scales, [0, 1, 1, 0]);
    for (n, rn) in p.neurons.iter().zip(&r.dots) {
        let amp = 4f64.powi(crate::cast::exponent(n.scale_bits));
        let std = if rn.table_len > 0 {
            (s.noise_base + s.noise_per_w2 * rn.sum_w2 as f64 * amp).sqrt()
        } else {
            s.decrypt_std(rn.sum_w2)
        };
        let bx = 2.0 * 2f64.powi(crate::cast::exponent(n.scale_bits));
        assert!((n.sigma_units - std / bx).abs() < 1e-12);
        assert!((n.std - std).abs() < 1e-12);
        assert!(
            n.log2_p_misread > -2.0,
            "a σ of 1.3 to 2.5 units misreads often"
        );
        assert_eq!(n.log2_p_fail, n.log2_p_catastrophic);
        // Scaled reads misread less than unscaled ones would (by less than the factor 2 here:
        // with Σw² 150 to 300 the inputs' noise, multiplied too, is as large as the read's).
        if n.scale_bits > 0 {
            let unscaled = s.bootstrap_std(rn.sum_w2) / 2.0;
            assert!(
                n.sigma_units < 0.7 * unscaled,
                "{} vs {unscaled}",
                n.sigma_units
            );
        }
    }
    assert_eq!(p.neurons[0].margin, 256);
    assert!(p.expected_misreads_per_sample > 1.0);
    assert!(p.worst_sigma_units > 2.0 && p.worst_sigma_units < 3.5);
    let text = render_plan(&p);
    assert!(
        text.contains("approximate reads") && text.contains("misreads"),
        "{text}"
    );
    assert!(text.contains("10-bit ciphertext space"), "{text}");
    let sig = read_sigma_units(&p, &r);
    assert_eq!(sig.len(), 4);
    for ((node, su), n) in sig.iter().zip(&p.neurons) {
        assert_eq!((*node, *su), (n.node, n.sigma_units));
    }
    // Without the full neuron, P = 9 has margins: the 2-bit set (cheapest, one position per
    // value) takes it, σ ≈ 4.6 units.
    let mut r2 = r.clone();
    r2.dots.remove(0);
    r2.pbs_count -= 1;
    let p2 = classic_with(&r2, -40.0, 2, FheMode::Approximate).unwrap();
    assert_eq!((p2.parameter_set, p2.space_bits), (SET2, 9));
    assert_eq!(p2.box_positions, 1.0);
    assert!(p2.worst_sigma_units > 4.0);
    // Forcing the 4-bit set keeps P = 9: 4 positions per value.
    let p3 = on_set(&r2, s, FheMode::Approximate, -40.0, 2).unwrap();
    assert_eq!((p3.space_bits, p3.box_positions), (9, 4.0));
    assert!(p3.worst_sigma_units < 1.5);
    // Too wide for one bootstrap of any practical set: 14 bits > log2 8192.
    let r3 = report(vec![neuron(0, 0, 14, 4, true)], 4);
    let e = classic_with(&r3, -40.0, 2, FheMode::Approximate)
        .unwrap_err()
        .to_string();
    assert!(e.contains("14-bit") && e.contains("at most 13 bits"), "{e}");
}

#[test]
fn modes_parse_and_serialize() {
    assert_eq!("exact".parse::<FheMode>().unwrap(), FheMode::Exact);
    assert_eq!(
        "approximate".parse::<FheMode>().unwrap(),
        FheMode::Approximate
    );
    assert!("fast".parse::<FheMode>().is_err());
    assert_eq!(
        serde_json::to_string(&FheMode::Approximate).unwrap(),
        "\"approximate\""
    );
    assert_eq!(FheMode::default(), FheMode::Exact);
}

#[test]
fn the_request_says_what_to_plan() {
    let r = report(
        vec![neuron(0, 0, 4, 30, true), neuron(1, 0, 4, 9, false)],
        2,
    );
    // A forced set and width: exactly that plan, unchecked.
    let p = on_width(&r, SET4.set(), 4, FheMode::Exact, -40.0, 2);
    assert_eq!((p.parameter_set, p.space_bits, p.cores), (SET4, 4, 2));
    assert!(p.candidates.is_empty());
    // A forced set: that set, checked.
    let p = on_set(&r, SET6.set(), FheMode::Exact, -40.0, 2).unwrap();
    assert_eq!(p.parameter_set, SET6);
    // The choice lists the candidates; `among` narrows them.
    let p = choose(&r, -40.0, 2).unwrap();
    assert!(p.candidates.len() > 3);
    let one = plan(&r, &PlanRequest::default().among([SET6])).unwrap();
    assert_eq!(one.candidates.len(), 1);
    assert_eq!((one.parameter_set, one.cores), (SET6, 1));
    // Approximate mode's guard: bad values are parameter errors; infinity disables it.
    let approx = PlanRequest::new(FheMode::Approximate);
    for bad in [0.0, -1.0, f64::NAN] {
        assert!(matches!(
            plan(&r, &approx.clone().max_sigma(bad)),
            Err(Error::InvalidParameter {
                name: "max_sigma",
                ..
            })
        ));
    }
    assert_eq!(
        plan(&r, &approx.clone().max_sigma(f64::INFINITY)).unwrap(),
        plan(&r, &approx).unwrap()
    );
    // A width without a set, or exact rounding without a width, is a parameter error.
    let no_set = PlanRequest::default().space_bits(4);
    assert!(matches!(
        plan(&r, &no_set),
        Err(Error::InvalidParameter {
            name: "space_bits",
            ..
        })
    ));
    let no_width = PlanRequest::default().on(SET4).exact_rounding(true);
    assert!(matches!(
        plan(&r, &no_width),
        Err(Error::InvalidParameter {
            name: "exact_rounding",
            ..
        })
    ));
}

#[test]
fn plan_facts_come_from_the_analysis() {
    for name in ["iris", "breast_cancer"] {
        let path = format!(
            "{}/circuits/{name}.circuit.json",
            env!("CARGO_MANIFEST_DIR")
        );
        let graph = crate::ir::IntGraph::load(std::path::Path::new(&path)).unwrap();
        let dropped = graph.dropped_bits();
        let an = crate::analyze::analyze(graph).unwrap();
        let f = PlanFacts::new(&an);
        assert_eq!(f.dropped_bits, dropped);
        check_facts_match_the_report(&f, &an);
    }
}

/// The facts carry the same numbers as the analysis's report.
fn check_facts_match_the_report(f: &PlanFacts, an: &crate::analyze::Analyzed) {
    let rep = an.report();
    assert_eq!((f.pbs_count, f.n_a_bits), (rep.pbs_count, rep.n_a_bits));
    assert_eq!(f.dots.len(), rep.neurons.len());
    for (d, n) in f.dots.iter().zip(&rep.neurons) {
        assert_eq!(
            (
                d.node,
                d.layer,
                d.neuron,
                d.lo,
                d.hi,
                d.range_bits,
                d.sum_w2
            ),
            (
                n.node,
                n.layer,
                n.neuron,
                n.lo,
                n.hi,
                n.range_bits,
                n.sum_w2
            )
        );
        assert_eq!(
            (d.table_len, d.table_bits, d.round_bits, d.table_offset),
            (n.table_len, n.table_bits, n.round_bits, n.table_offset)
        );
    }
    assert_eq!(
        f.pbs_per_layer,
        rep.layers.iter().map(|l| l.pbs).collect::<Vec<_>>()
    );
}
