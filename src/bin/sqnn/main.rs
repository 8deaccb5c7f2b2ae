//! The `sqnn` command line: train, tune, compile, check, keygen, run, demo, serve, client.
//!
//! Exit codes: 0 success, 1 the accumulator check failed (a full report is printed), 2 an error
//! (bad input, with a message naming the problem and the fix).

use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

/// `println!` that a closed pipe cannot crash (see `out.rs`).
macro_rules! println {
    () => { $crate::out::stdout(format_args!("\n")) };
    ($($arg:tt)*) => { $crate::out::stdout(format_args!("{}\n", format_args!($($arg)*))) };
}

/// `print!` that a closed pipe cannot crash (see `out.rs`).
macro_rules! print {
    ($($arg:tt)*) => { $crate::out::stdout(format_args!($($arg)*)) };
}

/// `eprintln!` that a closed standard error cannot crash (see `out.rs`).
macro_rules! eprintln {
    ($($arg:tt)*) => { $crate::out::stderr(format_args!("{}\n", format_args!($($arg)*))) };
}

mod args;
mod calibrate;
mod check;
mod demo;
mod deploy;
mod encrypted;
mod hint;
mod out;
mod progress;
mod rows;
mod run;
mod train;
mod tune;

#[derive(Parser)]
#[command(
    name = "sqnn",
    version,
    about = "Sparse quantized neural networks under FHE, with a proved accumulator check"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Train a quantized network with pruning on a built-in data set or a CSV file.
    Train(Box<train::TrainArgs>),
    /// Lower a trained model to an integer circuit and check it.
    Compile(check::CompileArgs),
    /// Check a circuit's accumulators against its budget (exit 0 pass, 1 fail, 2 error).
    Check(check::CheckArgs),
    /// Generate TFHE keys for a circuit (client key, server key, manifest).
    Keygen(encrypted::KeygenArgs),
    /// Run a circuit on a data set's test split, in clear or under TFHE.
    Run(run::RunArgs),
    /// Time one bootstrap of every parameter set on this machine and save the cost profile
    /// that plans then use.
    Calibrate(calibrate::CalibrateArgs),
    /// Search training settings and parameter sets for the accuracy-versus-latency front;
    /// write its recommended model.
    Tune(Box<tune::TuneArgs>),
    /// Train, compile, check and run a few encrypted samples of the default data set.
    Demo(demo::DemoArgs),
    /// Serve circuits over HTTP: evaluate encrypted samples with uploaded evaluation keys.
    Serve(Box<deploy::ServeArgs>),
    /// Talk to an `sqnn serve`: predict, or encrypt and decrypt batch files.
    #[command(subcommand)]
    Client(deploy::ClientCmd),
}

fn main() -> ExitCode {
    let matches = Cli::command().get_matches();
    let mut cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    // Which TFHE flags were given: they ask for a new plan instead of the recorded one (and
    // `compile` refuses to write a circuit without the plan they ask for). With each, how the
    // command takes the calibration rows that `--tolerance` and `--calibration-seeds` need.
    match (&mut cli.cmd, matches.subcommand()) {
        (Cmd::Compile(a), Some((_, sub))) => a.fhe.note_given(
            sub,
            "give --data DATA (a data set with the model's columns: its training rows choose)",
        ),
        (Cmd::Run(a), Some((_, sub))) => {
            a.fhe.note_given(
                sub,
                "run on --data DATA instead of --rows (its training rows choose), or compile \
                 the circuit with the flag so that it records the plan",
            );
            a.noise_seed_given =
                sub.value_source("noise_seed") == Some(clap::parser::ValueSource::CommandLine);
        }
        (Cmd::Check(a), Some((_, sub))) => a
            .fhe
            .note_given(sub, "give --calibrate DATA (its training rows choose)"),
        (Cmd::Keygen(a), Some((_, sub))) => a
            .fhe
            .note_given(sub, "give --data DATA (its training rows choose)"),
        _ => {}
    }
    let result = match cli.cmd {
        Cmd::Train(a) => train::train(&a).map(|_| ExitCode::SUCCESS),
        Cmd::Compile(a) => check::compile(&a),
        Cmd::Check(a) => check::check(&a),
        Cmd::Keygen(a) => encrypted::keygen(&a),
        Cmd::Run(a) => run::run(&a),
        Cmd::Calibrate(a) => calibrate::calibrate(&a),
        Cmd::Tune(a) => tune::tune(&a),
        Cmd::Demo(a) => demo::demo(&a),
        Cmd::Serve(a) => deploy::serve(&a),
        Cmd::Client(c) => deploy::client(&c),
    };
    let result = result.and_then(|code| match out::failure() {
        None => Ok(code),
        Some(e) => Err(sqnn::Error::io("standard output", std::io::Error::other(e))),
    });
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            for h in hint::hints(&e) {
                eprintln!("hint: {h}");
            }
            ExitCode::from(2)
        }
    }
}
