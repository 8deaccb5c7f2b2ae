//! `sqnn calibrate`: this machine's bootstrap costs, written as the cost profile that plans use
//! in place of the built-in figures.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use serde_json::json;

use sqnn::fhe::{catalogue, CostProfile, ParamSetId, CACHE_DIR_ENV};
use sqnn::{Error, Result};

#[derive(Args)]
pub struct CalibrateArgs {
    /// Bootstraps timed per parameter set one at a time (after one to warm up), and as many
    /// rounds of one per thread at once (the medians are kept).
    #[arg(long, default_value_t = 11)]
    pub bootstraps: usize,
    /// Measure only this set (repeatable; default: every selectable set). Sets left out are
    /// planned with their built-in figures scaled by this machine's measured ratio.
    #[arg(long = "parameters")]
    pub parameters: Vec<String>,
    /// Write the profile here (default: `$SQNN_CACHE_DIR/cost-profile.json`, else the user's
    /// cache directory, where plans look for it).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Print one JSON object as the last line.
    #[arg(long)]
    pub json: bool,
}

/// The profile's path: `--out`, else the default one.
fn target(a: &CalibrateArgs) -> Result<PathBuf> {
    match &a.out {
        Some(p) => Ok(p.clone()),
        None => CostProfile::default_path().ok_or_else(|| {
            Error::param(
                "out",
                format!(
                    "this platform has no user cache directory: set {CACHE_DIR_ENV} or give \
                     --out"
                ),
            )
        }),
    }
}

pub fn calibrate(a: &CalibrateArgs) -> Result<ExitCode> {
    let sets: Vec<ParamSetId> = if a.parameters.is_empty() {
        catalogue()
            .iter()
            .filter(|s| s.selectable)
            .map(|s| s.id)
            .collect()
    } else {
        a.parameters
            .iter()
            .map(|n| n.parse())
            .collect::<Result<_>>()?
    };
    let path = target(a)?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    }
    sqnn::fsio::check_output(&path, "out", &[])?;
    let profile = measure(&sets, a.bootstraps)?;
    profile.save(&path)?;
    if a.json {
        println!(
            "{}",
            json!({ "profile": path, "date": profile.date, "cores": profile.cores,
                    "sqnn_version": profile.sqnn_version, "sets": profile.sets })
        );
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "bootstrap costs on this machine ({}, {} threads), {} each; built-in figures of {} for \
         comparison:",
        profile.machine,
        profile.cores,
        a.bootstraps,
        sqnn::fhe::builtin_date()
    );
    println!("  alone ms  all threads ms  built-in 1-core ms  set");
    for (id, c) in &profile.sets {
        println!(
            "  {:>8.1}  {:>14.1}  {:>18.1}  {id}",
            c.pbs_ms_alone,
            c.pbs_ms_all_threads,
            id.set().pbs_ms_1_thread
        );
    }
    println!(
        "wrote {}: plans now use it (their `costs` line says so); delete it to go back to the \
         built-in figures",
        path.display()
    );
    Ok(ExitCode::SUCCESS)
}

#[cfg(feature = "tfhe-backend")]
fn measure(sets: &[ParamSetId], bootstraps: usize) -> Result<CostProfile> {
    let date: String = humantime::format_rfc3339_seconds(std::time::SystemTime::now())
        .to_string()
        .chars()
        .take(10)
        .collect();
    sqnn::tfhe::measure_costs(sets, bootstraps, date, &crate::progress::Bar::new())
}

#[cfg(not(feature = "tfhe-backend"))]
fn measure(_: &[ParamSetId], _: usize) -> Result<CostProfile> {
    Err(Error::Backend(
        "this sqnn was built without TFHE (cargo feature `tfhe-backend`), so it cannot time \
         bootstraps; rebuild with `cargo build --release` (the feature is on by default)"
            .into(),
    ))
}
