//! What the command line adds to a library error: the command or flag that fixes it.
//!
//! The library speaks its own API: it names parameters as `EstimatorParams`, `Rounding` and
//! `PlanRequest` do (`` `n_accum_bits` ``, `` `max_table_bits` ``) and says what to do in those
//! terms. Only here do they become `sqnn` flags and commands.

use sqnn::Error;

/// Library parameter names that are `sqnn` flags under their kebab-case name.
const FLAGS: &[&str] = &[
    "n_layers",
    "n_w_bits",
    "n_a_bits",
    "n_accum_bits",
    "n_hidden_neurons_multiplier",
    "n_prune_neurons_percentage",
    "activation",
    "pruning",
    "input_scaling",
    "weight_decay",
    "validation_fraction",
    "restarts",
    "epochs",
    "batch_size",
    "lr",
    "act_range",
    "round_tolerance",
    "max_table_bits",
    "p_error",
    "max_sigma",
    "parameters",
    "extractions",
    "extraction_chunk_bits",
    "mode",
    "target",
    "task",
    "split",
    "test_size",
    "seed",
    "out",
    "out_dir",
    "svg",
    "noise_scale",
    "remove_neurons",
    "shift_augment",
    "tolerance",
    "calibration_seeds",
    "folds",
    "noise_seeds",
    "max_candidates",
    "budget",
    "linear_bits",
    "circuits",
    "backend",
    "data",
];

/// The command-line hints for `e`, one per line (empty when the message says it all).
pub fn hints(e: &Error) -> Vec<String> {
    let mut out = Vec::new();
    match e {
        Error::Keys(_) => out.push(
            "`sqnn keygen CIRCUIT --out-dir DIR` writes a client key, a server key and a \
             manifest that belong together"
                .to_string(),
        ),
        Error::Circuit(_) => {
            out.push("`sqnn compile MODEL --out FILE` writes a fresh circuit".to_string())
        }
        Error::Service { status: None, .. } => out.push(
            "start the server with `sqnn serve --circuits DIR --store DIR` and pass its \
             address (its first line) as --server"
                .to_string(),
        ),
        Error::Service {
            status: Some(401), ..
        } => out.push(
            "pass the token the server printed (or one of its --tokens file) as --token or \
             in SQNN_TOKEN"
                .to_string(),
        ),
        Error::InvalidParameter { name, message }
            if *name == "distill" && !message.contains("--distill") =>
        {
            out.push(
                "on the command line, `distill` is --distill-from TEACHER.model.json \
             [--distill-temperature T] [--distill-weight A]"
                    .to_string(),
            )
        }
        Error::InvalidParameter { name, .. } if *name == "read_noise" => out.push(
            "on the command line, `read_noise` is --noise-aware SET|auto|off (a set of \
             `sqnn::fhe::ParamSetId::ALL`, as --parameters)"
                .to_string(),
        ),
        _ => {}
    }
    let message = e.to_string();
    let named = |name: &str| {
        matches!(e, Error::InvalidParameter { name: n, .. } if *n == name)
            || message.contains(&format!("`{name}`"))
    };
    let flags: Vec<String> = FLAGS
        .iter()
        .filter(|n| named(n) && !message.contains(&format!("--{}", n.replace('_', "-"))))
        .map(|n| format!("`{n}` is --{}", n.replace('_', "-")))
        .collect();
    if !flags.is_empty() {
        out.push(format!("on the command line, {}", flags.join(", ")));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_named_in_a_message_become_flags() {
        let e = Error::Backend("retrain with `n_accum_bits` 9 or `max_table_bits` 4".into());
        assert_eq!(
            hints(&e),
            ["on the command line, `n_accum_bits` is --n-accum-bits, `max_table_bits` is --max-table-bits"]
        );
        let e = Error::param("p_error", "too loose");
        assert_eq!(hints(&e), ["on the command line, `p_error` is --p-error"]);
        assert!(hints(&Error::Input("NaN in row 3".into())).is_empty());
        assert!(hints(&Error::Keys("x".into()))[0].contains("sqnn keygen"));
        let refused = |status| Error::Service {
            status,
            message: "x".into(),
        };
        assert!(hints(&refused(Some(401)))[0].contains("--token"));
        assert!(hints(&refused(None))[0].contains("sqnn serve"));
        assert!(hints(&refused(Some(404))).is_empty());
    }
}
