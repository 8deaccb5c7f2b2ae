//! The cost source: built-in figures or a machine's profile.

use std::collections::BTreeMap;

use super::*;

/// A profile that measured every selectable set at `factor` times its built-in one-core figure.
fn scaled_profile(factor: f64, cores: usize) -> CostProfile {
    let sets: BTreeMap<ParamSetId, SetCost> = catalogue()
        .iter()
        .filter(|s| s.selectable && s.grouping_factor == 1)
        .map(|s| {
            (
                s.id,
                SetCost {
                    pbs_ms_alone: s.pbs_ms_1_thread * factor,
                    pbs_ms_all_threads: s.pbs_ms_1_thread * factor / cores as f64,
                    samples: 3,
                },
            )
        })
        .collect();
    CostProfile::new("2026-11-30".into(), cores, sets)
}

fn facts() -> PlanFacts {
    PlanFacts {
        dots: (0..8)
            .map(|i| neuron(0, i, 4, 10, true))
            .chain([neuron(1, 0, 6, 40, false)])
            .collect(),
        pbs_count: 8,
        pbs_per_layer: vec![8, 0],
        n_a_bits: 4,
        dropped_bits: Some((0, 0)),
        n_inputs: 0,
    }
}

#[test]
fn a_profile_sets_latency_cores_and_says_so() {
    let f = facts();
    let req = PlanRequest::new(FheMode::Approximate).on(ParamSetId::ClassicMsg2Carry2);
    let builtin = plan(&f, &req.clone().cores(builtin_cores())).unwrap();
    assert!(
        builtin.costs.starts_with("built-in figures of "),
        "{}",
        builtin.costs
    );
    assert!(builtin.costs.contains(builtin_date()), "{}", builtin.costs);
    let profiled = plan(&f, &req.profile(scaled_profile(3.0, 4))).unwrap();
    assert_eq!(profiled.cores, 4);
    assert!(
        profiled
            .costs
            .starts_with("this machine's profile of 2026-11-30 (4 cores"),
        "{}",
        profiled.costs
    );
    // Classic bootstraps: three times the one-core time, the 8 of the layer in 2 rounds of 4
    // (this profile's cores run side by side at their time alone) against the built-in
    // figures' 4 rounds of 2 at their measured time side by side.
    let t1 = builtin.pbs_ms_1_thread;
    assert!((profiled.pbs_ms_1_thread / t1 - 3.0).abs() < 1e-9);
    assert!((profiled.pbs_ms_together - 3.0 * t1).abs() < 1e-9);
    assert!((profiled.latency_ms_per_sample - 2.0 * 3.0 * t1).abs() < 1e-9);
    assert!(builtin.pbs_ms_together >= t1);
    assert!((builtin.latency_ms_per_sample - 4.0 * builtin.pbs_ms_together).abs() < 1e-9);
    // The noise is the built-in model's either way.
    assert_eq!(profiled.neurons, builtin.neurons);
}

#[test]
fn sets_a_profile_lacks_are_scaled_by_its_measured_ratio_and_the_plan_says_so() {
    let mut p = scaled_profile(2.0, 2);
    p.sets.retain(|id, _| *id == ParamSetId::ClassicMsg2Carry2);
    assert!((p.scale() - 2.0).abs() < 1e-9);
    let f = facts();
    let on6 = PlanRequest::new(FheMode::Exact).on(ParamSetId::ClassicMsg3Carry3);
    let builtin = plan(&f, &on6.clone().cores(2)).unwrap();
    let profiled = plan(&f, &on6.profile(p)).unwrap();
    assert!((profiled.pbs_ms_1_thread / builtin.pbs_ms_1_thread - 2.0).abs() < 1e-9);
    assert!(
        profiled.costs.contains("not measured there"),
        "{}",
        profiled.costs
    );
}

#[test]
fn a_profile_round_trips_and_bad_ones_are_refused_with_the_fix() {
    let p = scaled_profile(1.0, 2);
    assert_eq!(CostProfile::from_json(&p.to_json().unwrap()).unwrap(), p);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sub").join(PROFILE_FILE);
    p.save(&path).unwrap();
    assert_eq!(CostProfile::load(&path).unwrap(), p);
    let mut other = p.clone();
    other.sqnn_version = "0.0.1".into();
    let mut zero = p.clone();
    zero.cores = 0;
    let mut nan = p.clone();
    nan.sets.values_mut().next().unwrap().pbs_ms_alone = -1.0;
    let texts = [
        "{".to_string(),
        "[]".to_string(),
        other.to_json().unwrap(),
        zero.to_json().unwrap(),
        nan.to_json().unwrap(),
        p.to_json()
            .unwrap()
            .replace("V1_8_PARAM_MESSAGE_2", "V9_PARAM"),
        p.to_json().unwrap().replace("2026-11-30", "yesterday!"),
    ];
    for t in texts {
        let e = CostProfile::from_json(&t).unwrap_err().to_string();
        assert!(e.contains("sqnn calibrate"), "{e}");
    }
    std::fs::write(&path, other.to_json().unwrap()).unwrap();
    let e = CostProfile::load(&path).unwrap_err().to_string();
    assert!(
        e.contains("sqnn 0.0.1") && e.contains(&path.display().to_string()),
        "{e}"
    );
}
