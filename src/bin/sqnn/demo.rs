//! `sqnn demo`: train, compile, check, run in clear and under TFHE, on a built-in data set.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use sqnn::{Error, Result};

use crate::args::{BackendKind, FheArgs, SplitArgs};
use crate::check::{compile, CompileArgs};
use crate::run::{run, RunArgs};
use crate::train;

#[derive(Args)]
pub struct DemoArgs {
    /// Built-in data set.
    #[arg(long, default_value = "iris")]
    pub data: String,
    /// Encrypted samples to run.
    #[arg(long, default_value_t = 3, value_parser = crate::args::at_least_one)]
    pub samples: usize,
    /// Working directory for the model and circuit (default: a temporary directory).
    #[arg(long)]
    pub dir: Option<PathBuf>,
}

pub fn demo(a: &DemoArgs) -> Result<ExitCode> {
    let tmp;
    let dir = match &a.dir {
        Some(d) => {
            std::fs::create_dir_all(d).map_err(|e| Error::io(d, e))?;
            d.clone()
        }
        None => {
            tmp = std::env::temp_dir().join(format!("sqnn-demo-{}", std::process::id()));
            std::fs::create_dir_all(&tmp).map_err(|e| Error::io(&tmp, e))?;
            tmp
        }
    };
    let model = dir.join(format!("{}.model.json", a.data));
    let circuit = dir.join(format!("{}.circuit.json", a.data));
    println!("== 1/4 train ({} with the default settings)", a.data);
    let targs = train::TrainArgs::defaults_for(&a.data, &model);
    train::train(&targs)?;
    println!("\n== 2/4 compile and check");
    let split = SplitArgs {
        test_size: None,
        seed: None,
        split: "auto".into(),
        target: None,
        task: None,
    };
    let code = compile(&CompileArgs {
        model: model.clone(),
        out: circuit.clone(),
        name: None,
        round_tolerance: sqnn::lower::Rounding::DEFAULT.tolerance,
        max_table_bits: sqnn::lower::Rounding::DEFAULT.max_table_bits,
        data: None,
        fhe: FheArgs::default(),
        split: split.clone(),
    })?;
    if code != ExitCode::SUCCESS {
        return Ok(code);
    }
    let fhe = FheArgs::default();
    println!("\n== 3/4 clear backend on the test split");
    run(&RunArgs {
        circuit: circuit.clone(),
        data: Some(a.data.clone()),
        rows: None,
        out: None,
        backend: BackendKind::Clear,
        samples: None,
        keys: None,
        noise_seed: 1,
        noise_seed_given: false,
        fhe: fhe.clone(),
        json: false,
        split: split.clone(),
    })?;
    println!("\n== 4/4 TFHE: {} encrypted samples", a.samples);
    run(&RunArgs {
        circuit,
        data: Some(a.data.clone()),
        rows: None,
        out: None,
        backend: BackendKind::Tfhe,
        samples: Some(a.samples),
        keys: None,
        noise_seed: 1,
        noise_seed_given: false,
        fhe,
        json: false,
        split,
    })
}
