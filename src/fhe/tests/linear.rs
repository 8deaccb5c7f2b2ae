//! Circuits without bootstraps (linear models) and the work outside bootstraps.

use super::*;

/// Two output dots of `terms` terms each over 30 inputs: a linear circuit (no table).
fn linear(terms: usize) -> PlanFacts {
    let out = |i| DotFacts {
        terms,
        reads_inputs: true,
        ..neuron_iv(0, i, -900, 900, 485, false)
    };
    PlanFacts {
        dots: vec![out(0), out(1)],
        pbs_count: 0,
        pbs_per_layer: vec![0],
        n_a_bits: 4,
        dropped_bits: None,
        n_inputs: 30,
    }
}

#[test]
fn a_linear_circuit_costs_its_dot_products_and_decrypts_exactly() {
    let r = linear(29);
    let p = on_set(&r, SET4.set(), FheMode::Approximate, -40.0, 2).unwrap();
    assert_eq!(p.pbs_count, 0);
    // Not free: the inputs taken in and 58 ciphertext multiply-adds, all of the latency.
    assert!(p.latency_ms_per_sample > 0.0);
    assert_eq!(p.latency_ms_per_sample, p.linear_ms_per_sample);
    assert_eq!(p.latency_ms_per_sample_1_core, p.latency_ms_per_sample);
    assert!(p.client_ms_per_sample > 0.0);
    // More terms cost more; a wider ciphertext (the 6-bit set, N = 8192) costs more per term.
    let more = on_set(&linear(290), SET4.set(), FheMode::Approximate, -40.0, 2).unwrap();
    assert!(more.latency_ms_per_sample > p.latency_ms_per_sample);
    let wide = on_set(&r, SET6.set(), FheMode::Approximate, -40.0, 2).unwrap();
    assert!(wide.latency_ms_per_sample > 3.0 * p.latency_ms_per_sample);
    assert!(wide.client_ms_per_sample > 3.0 * p.client_ms_per_sample);
    // Fresh encryptions' noise: no output is misread, and a simulation injects nothing.
    assert!(p.expected_output_misreads_per_sample < 1e-9, "{p:?}");
    assert!(p
        .neurons
        .iter()
        .all(|n| n.sigma_units < 1e-6 && !n.bootstrap));
    // The same dots reading tables would be charged bootstrap outputs' noise.
    let mut hidden = r.clone();
    for d in &mut hidden.dots {
        d.reads_inputs = false;
    }
    let h = on_width(
        &hidden,
        SET4.set(),
        p.space_bits,
        FheMode::Approximate,
        -40.0,
        2,
    );
    assert!(h.expected_output_misreads_per_sample > 0.1);
    let text = render_plan(&p);
    assert!(text.contains("no bootstrap"), "{text}");
    assert!(text.contains("no table read"), "{text}");
}

#[test]
fn a_linear_circuit_may_be_wider_than_a_bootstrap_reads() {
    // 14-bit outputs: no bootstrap of the 4-bit set reads them (N = 2048), but none has to;
    // both modes decrypt them on that set, at the circuit's width.
    let mut r = linear(29);
    for d in &mut r.dots {
        (d.lo, d.hi, d.range_bits) = (-8000, 8000, 14);
    }
    for mode in [FheMode::Approximate, FheMode::Exact] {
        let p = on_set(&r, SET4.set(), mode, -40.0, 2).unwrap();
        assert_eq!(p.space_bits, 14);
        assert!(p.worst_log2_p_fail <= -40.0);
        assert!(p.expected_output_misreads_per_sample < 1e-9);
    }
    // The same width behind a table does not fit the 4-bit set.
    let mut t = r.clone();
    t.dots[0].table_len = 4;
    t.dots[0].table_bits = 2;
    t.dots[0].reads_inputs = true;
    t.pbs_count = 1;
    t.dropped_bits = Some((0, 0));
    assert!(on_set(&t, SET4.set(), FheMode::Approximate, -40.0, 2).is_err());
}

#[test]
fn the_work_outside_bootstraps_adds_to_their_latency() {
    // 8 tables then one output: bootstraps plus the inputs and dots.
    let mut r = with_layers(report(
        (0..8)
            .map(|i| neuron(0, i, 4, 10, true))
            .chain([neuron(1, 0, 6, 40, false)])
            .collect(),
        4,
    ));
    let bare = on_set(&r, SET4.set(), FheMode::Approximate, -40.0, 2).unwrap();
    assert_eq!(bare.linear_ms_per_sample, 0.0);
    for d in &mut r.dots {
        d.terms = 4;
    }
    r.n_inputs = 4;
    let p = on_set(&r, SET4.set(), FheMode::Approximate, -40.0, 2).unwrap();
    assert!(p.linear_ms_per_sample > 0.0);
    let sum = bare.latency_ms_per_sample + p.linear_ms_per_sample;
    assert!((p.latency_ms_per_sample - sum).abs() < 1e-9);
}
