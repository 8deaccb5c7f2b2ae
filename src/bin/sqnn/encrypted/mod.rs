//! `sqnn keygen` and `sqnn run --backend tfhe`: the commands that need the TFHE backend. A build
//! without it (`--no-default-features`) keeps the commands and explains how to enable them.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use sqnn::data::SplitUse;
use sqnn::Result;

use crate::args::{load_split_for, FheArgs, Rows, SplitArgs};

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
    let rows = match &a.data {
        Some(data) => {
            let graph = sqnn::ir::IntGraph::load(&a.circuit)?;
            Some(load_split_for(
                data,
                &a.split,
                &graph.schema(),
                graph.meta.training_rows.as_ref(),
                SplitUse::Calibrate,
            )?)
        }
        None => None,
    };
    let rows = rows.as_ref().map(|(data, split)| Rows { data, split });
    imp::keygen(&a.circuit, &a.out_dir, &a.fhe, rows)
}

#[cfg(not(feature = "tfhe-backend"))]
mod imp {
    //! Stand-ins for a build without TFHE: a clear error that says how to enable it.
    use std::path::Path;
    use std::process::ExitCode;

    use sqnn::analyze::Analyzed;
    use sqnn::{Error, Result};

    use crate::args::{FheArgs, Rows};
    use crate::run::RunArgs;

    fn disabled() -> Error {
        Error::Backend(
            "this sqnn was built without TFHE (cargo feature `tfhe-backend`); rebuild with \
             `cargo build --release` (the feature is on by default) or use --backend clear"
                .into(),
        )
    }

    pub fn keygen(_: &Path, _: &Path, _: &FheArgs, _: Option<Rows>) -> Result<ExitCode> {
        Err(disabled())
    }

    pub fn run(_: Analyzed, _: &[Vec<i64>], _: &[f64], _: &RunArgs, _: Rows) -> Result<ExitCode> {
        Err(disabled())
    }
}
