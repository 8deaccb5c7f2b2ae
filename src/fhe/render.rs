//! The plan as text, for the compile-check report.

use super::plan::{FheMode, FhePlan};

fn bytes(b: u64) -> String {
    let b = b as f64;
    if b >= 1e9 {
        format!("{:.1} GB", b / 1e9)
    } else if b >= 1e6 {
        format!("{:.0} MB", b / 1e6)
    } else {
        format!("{:.0} KB", b / 1e3)
    }
}

fn ms(v: f64) -> String {
    if v >= 1000.0 {
        format!("{:.2} s", v / 1000.0)
    } else if v > 0.0 && v < 1.0 {
        format!("{v:.2} ms")
    } else {
        format!("{v:.1} ms")
    }
}

/// The plan as a text block for the compile-check report.
pub fn render_plan(plan: &FhePlan) -> String {
    let mut s = String::new();
    s.push_str(&format!(
        "TFHE plan ({} reads, target 2^{} per bootstrap):\n",
        plan.mode, plan.target_log2_p_fail
    ));
    let family = if plan.family.is_empty() {
        plan.set().family()
    } else {
        plan.family.clone()
    };
    s.push_str(&format!(
        "  parameters   {} ({}-bit set, {family}, N = {})\n",
        plan.parameter_set, plan.precision_bits, plan.polynomial_size
    ));
    if let (Some(base), Some(changes)) = (plan.set().derives_from, plan.set().variant_changes()) {
        s.push_str(&format!(
            "  derived from {base}: {changes}; n, k, N, modulus, keys and noise distributions \
             unchanged (the same 128-bit security)\n"
        ));
    }
    s.push_str(&format!(
        "  encoding     {}-bit ciphertext space (the circuit needs {}), {} positions per value\n",
        plan.space_bits, plan.needed_bits, plan.box_positions
    ));
    let together = if plan.pbs_ms_together > 0.0 && plan.cores > 1 {
        format!(
            ", {} each while every core runs one",
            ms(plan.pbs_ms_together)
        )
    } else {
        String::new()
    };
    s.push_str(&format!(
        "  bootstraps   {} per sample, {} each alone on one thread{together}\n",
        plan.pbs_count,
        ms(plan.pbs_ms_1_thread)
    ));
    let how = if plan.exact_rounding && plan.set().grouping_factor == 1 {
        "each table's extractions and read one chain, the chains longest first on the core \
         free first"
    } else {
        "the bootstraps in rounds of one per core at the time measured with every core busy, \
         a lone last one at its time alone"
    };
    let how = if plan.pbs_count == 0 {
        "no bootstrap: the inputs taken in and the dot products".to_string()
    } else {
        format!(
            "layer by layer, {how}; {} of it the inputs taken in and the dot products",
            ms(plan.linear_ms_per_sample)
        )
    };
    s.push_str(&format!(
        "  latency      {} per sample on {} core(s) (predicted on the server: {how}), {} on one \
         core\n",
        ms(plan.latency_ms_per_sample),
        plan.cores,
        ms(plan.latency_ms_per_sample_1_core)
    ));
    s.push_str(&format!(
        "  client       about {} per sample to encrypt the inputs and decrypt the outputs (not \
         in the latency)\n",
        ms(plan.client_ms_per_sample)
    ));
    if !plan.costs.is_empty() {
        s.push_str(&format!("  costs        {}\n", plan.costs));
    }
    if let Some(how) = &plan.recorded {
        s.push_str(&format!(
            "  recorded     the plan chosen at compile time and recorded in the circuit: {how}\n"
        ));
    }
    noise_lines(plan, &mut s);
    if plan.pbs_count == 0 {
        s.push_str(&format!(
            "  keys         server: none (no table: the server only multiplies and adds \
             ciphertexts, its key file holds no key), client {}, generation under a second\n",
            bytes(plan.client_key_bytes)
        ));
    } else {
        s.push_str(&format!(
            "  keys         server {} ({} compressed on disk), client {}, generation about {:.0} \
             s\n",
            bytes(plan.server_key_bytes),
            bytes(plan.compressed_server_key_bytes),
            bytes(plan.client_key_bytes),
            plan.keygen_seconds.max(1.0)
        ));
    }
    candidate_lines(plan, &mut s);
    s
}

/// The predicted errors: the worst read, misreads (approximate), exact rounding or the noise
/// budget.
fn noise_lines(plan: &FhePlan, s: &mut String) {
    let kind = match plan.mode {
        FheMode::Exact => "failure ",
        FheMode::Approximate => "past margin",
    };
    match &plan.worst {
        Some(w) => {
            s.push_str(&format!(
            "  {kind:<12} worst 2^{:.1} ({} of layer {} neuron {}, Σw² {}); whole sample 2^{:.1}\n",
            w.log2_p_fail,
            if w.bootstrap { "bootstrap" } else { "output decryption" },
            w.layer,
            w.neuron,
            w.sum_w2,
            plan.total_log2_p_fail
        ))
        }
        None => s.push_str(&format!("  {kind:<12} no noisy operation\n")),
    }
    if plan.mode == FheMode::Approximate && plan.pbs_count == 0 {
        s.push_str(&format!(
            "  misreads     no table read; expected {:.2} outputs off by >= 1 unit per sample \
             (fresh encryptions' noise)\n",
            plan.expected_output_misreads_per_sample
        ));
    } else if plan.mode == FheMode::Approximate {
        let reads = plan.neurons.iter().filter(|n| n.bootstrap);
        let least = reads
            .clone()
            .map(|n| n.sigma_units)
            .fold(f64::INFINITY, f64::min);
        let scaled = reads.clone().filter(|n| n.scale_bits > 0).count();
        let sigma = if least < plan.worst_sigma_units {
            format!("{least:.2} to {:.2}", plan.worst_sigma_units)
        } else {
            format!("{:.2}", plan.worst_sigma_units)
        };
        s.push_str(&format!(
            "  misreads     σ {sigma} units per table read ({scaled} of {} tables read their dot \
             scaled); expected {:.2} table reads and {:.2} outputs off by >= 1 unit per sample\n",
            reads.count(),
            plan.expected_misreads_per_sample,
            plan.expected_output_misreads_per_sample
        ));
    }
    if plan.exact_rounding {
        let tables = plan.neurons.iter().filter(|n| n.extractions > 0).count();
        let extra: u32 = plan.neurons.iter().map(|n| n.extractions).sum();
        let chunks = match plan.extraction_chunk_bits {
            1 => "one bit per bootstrap".to_string(),
            c => format!("in chunks of up to {c} bits, two bootstraps per chunk"),
        };
        s.push_str(&format!(
            "  rounding     exact: {tables} tables clear their dropped bits first ({extra} \
             bootstraps, {chunks}), then read bit-exactly\n"
        ));
        if let Some(e) = plan.extraction_parameter_set {
            let (e, t) = (e.set(), plan.set());
            let small = if e.shares_lwe_key_with(t) {
                "the same small LWE key"
            } else {
                "its own small LWE key"
            };
            s.push_str(&format!(
                "  extractions  on {} ({}, {} each on one thread; k = {}, N = {}, n = {}): one \
                 {}-bit GLWE key shared with the table set, {small}, a keyswitching and a \
                 bootstrapping key per set; the table reads stay on {}\n",
                e.name,
                e.family(),
                ms(plan.extraction_pbs_ms_1_thread.unwrap_or(e.pbs_ms_1_thread)),
                e.glwe_dimension,
                e.polynomial_size,
                e.lwe_dimension,
                t.glwe_dimension * t.polynomial_size,
                t.name
            ));
        }
    } else if plan.pbs_count > 0 {
        s.push_str(&format!(
            "  noise budget Σw² <= {} per hidden neuron at the target\n",
            plan.max_sum_w2
        ));
    }
}

/// The sets the choice considered, cheapest first, the chosen one marked.
fn candidate_lines(plan: &FhePlan, s: &mut String) {
    if plan.candidates.is_empty() {
        return;
    }
    // Candidates near the tolerance were simulated on more seeds than the rest
    // (`Calibration::simulate_to_decide`).
    let sims = plan.candidates.iter().filter_map(|c| c.simulated);
    let most = sims.clone().map(|s| s.seeds).max().unwrap_or(0);
    let simulated = sims
        .min_by_key(|s| s.seeds)
        .map(|s| {
            let seeds = if most > s.seeds {
                format!(
                    "{} to {most} noise seeds (more near the tolerance)",
                    s.seeds
                )
            } else {
                format!("{} noise seeds", s.seeds)
            };
            format!(
                "; chosen by accuracy, reads simulated on {} calibration rows × {seeds}",
                s.rows
            )
        })
        .unwrap_or_default();
    s.push_str(&format!(
        "  candidates   predicted latency per sample on {} core(s), cheapest first{simulated}:\n",
        plan.cores
    ));
    for c in &plan.candidates {
        let mark = if c.parameter_set == plan.parameter_set {
            "*"
        } else {
            " "
        };
        s.push_str(&format!(
            "    {mark} {:>9}  {}-bit {:<24} {:>8} keys  {} ({})\n",
            ms(c.latency_ms_per_sample),
            c.precision_bits,
            c.family,
            bytes(c.server_key_bytes),
            c.parameter_set,
            c.note
        ));
        if let Some(sim) = &c.simulated {
            s.push_str(&format!(
                "{:>16}simulated over {} seeds: {}\n",
                "",
                sim.seeds,
                sim.describe()
            ));
        }
    }
}
