//! `sqnn keygen` and `sqnn run --backend tfhe`: the commands that need the TFHE backend. A build
//! without it (`--no-default-features`) keeps the commands and explains how to enable them.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use sqnn::Result;

use crate::args::{load_split_for, FheArgs, SplitArgs};

pub use imp::run;

#[cfg(feature = "tfhe-backend")]
#[path = "tfhe.rs"]
mod imp;

#[derive(Args)]
pub struct KeygenArgs {
    /// The circuit file.
    pub circuit: PathBuf,
    /// Directory for client.key, server.key and keys.json.
    #[arg(long)]
    pub out_dir: PathBuf,
    #[command(flatten)]
    pub fhe: FheArgs,
    /// Choose the parameters by the accuracy kept on this data set's training rows (built-in
    /// name or CSV path; without it, by the read-noise guard).
    #[arg(long)]
    pub data: Option<String>,
    #[command(flatten)]
    pub split: SplitArgs,
}

pub fn keygen(a: &KeygenArgs) -> Result<ExitCode> {
    let calibration = match &a.data {
        Some(data) => {
            let an = sqnn::analyze::analyze(sqnn::ir::IntGraph::load(&a.circuit)?)?;
            let (ds, split) = load_split_for(data, &a.split, &an.graph().schema())?;
            Some(crate::args::calibration(&an, &ds, &split)?)
        }
        None => None,
    };
    imp::keygen(&a.circuit, &a.out_dir, &a.fhe, calibration)
}

#[cfg(not(feature = "tfhe-backend"))]
mod imp {
    //! Stand-ins for a build without TFHE: a clear error that says how to enable it.
    use std::path::Path;
    use std::process::ExitCode;

    use sqnn::analyze::Analyzed;
    use sqnn::{Error, Result};

    use crate::args::FheArgs;
    use crate::run::RunArgs;

    fn disabled() -> Error {
        Error::Backend(
            "this sqnn was built without TFHE (cargo feature `tfhe-backend`); rebuild with \
             `cargo build --release` (the feature is on by default) or use --backend clear"
                .into(),
        )
    }

    pub fn keygen(
        _: &Path,
        _: &Path,
        _: &FheArgs,
        _: Option<sqnn::fhe::Calibration>,
    ) -> Result<ExitCode> {
        Err(disabled())
    }

    pub fn run(
        _: Analyzed,
        _: &[Vec<i64>],
        _: &[f64],
        _: &RunArgs,
        _: Option<sqnn::fhe::Calibration>,
    ) -> Result<ExitCode> {
        Err(disabled())
    }
}
