//! `sqnn serve` and `sqnn client`: encrypted inference as a service. A build without the
//! `deploy` feature keeps the commands and explains how to enable them.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};

use sqnn::Result;

use crate::args::SplitArgs;

#[cfg(feature = "deploy")]
mod client;
#[cfg(feature = "deploy")]
mod serve;

#[derive(Args)]
pub struct ServeArgs {
    /// Directory of circuits: every NAME.circuit.json is served as circuit NAME.
    #[arg(long)]
    pub circuits: PathBuf,
    /// Directory where uploaded evaluation keys are kept (several servers may share it).
    #[arg(long)]
    pub store: PathBuf,
    /// Address to listen on (port 0: any free port; the first line printed says which).
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: String,
    /// File of `NAME TOKEN` lines, one per tenant (default: one random token, printed once).
    #[arg(long)]
    pub tokens: Option<PathBuf>,
    /// Evaluations run at once (each uses every core for its bootstraps).
    #[arg(long, default_value_t = 2, value_parser = crate::args::at_least_one)]
    pub workers: usize,
    /// Evaluations that may wait for a worker; past that, requests get 503 with Retry-After
    /// (0: none wait, a busy server answers 503 at once).
    #[arg(long, default_value_t = 16)]
    pub queue: usize,
    /// Most samples per evaluate request.
    #[arg(long, default_value_t = 256, value_parser = crate::args::at_least_one)]
    pub max_samples: usize,
    /// Largest key upload, MiB.
    #[arg(long, default_value_t = 512, value_parser = crate::args::at_least_one)]
    pub max_key_mib: usize,
    /// Largest evaluate request, MiB.
    #[arg(long, default_value_t = 64, value_parser = crate::args::at_least_one)]
    pub max_batch_mib: usize,
    /// Longest a request may wait for and use a worker, seconds.
    #[arg(long, default_value_t = 300, value_parser = clap::value_parser!(u64).range(1..))]
    pub timeout: u64,
    /// Memory for decompressed evaluation keys, MiB (0: none kept, every request decodes its
    /// key again).
    #[arg(long, default_value_t = 4096)]
    pub cache_mib: u64,
}

#[derive(Subcommand)]
pub enum ClientCmd {
    /// Encrypt a data set's test rows (--data) or new samples (--rows), have the server
    /// evaluate them, decrypt, and print the predictions (scored when targets are known).
    Predict(PredictArgs),
    /// Encrypt test rows (--data) or new samples (--rows) into a batch file (the body of POST
    /// /v1/circuits/NAME/evaluate).
    Encrypt(EncryptArgs),
    /// Decrypt a server's answer (a batch file) and print the predictions.
    Decrypt(DecryptArgs),
}

/// Where the server is and who we are.
#[derive(Args)]
pub struct ServerArgs {
    /// The server's URL, e.g. http://127.0.0.1:8080.
    #[arg(long)]
    pub server: String,
    /// Bearer token (or the environment variable SQNN_TOKEN).
    #[arg(long, env = "SQNN_TOKEN", hide_env_values = true)]
    pub token: String,
}

#[derive(Args)]
pub struct PredictArgs {
    #[command(flatten)]
    pub server: ServerArgs,
    /// Keys directory from `sqnn keygen` (client.key stays here; server.key is uploaded).
    #[arg(long)]
    pub keys: PathBuf,
    /// The circuit's name on the server.
    #[arg(long)]
    pub circuit: String,
    #[command(flatten)]
    pub rows: RowArgs,
    /// Samples per request.
    #[arg(long, default_value_t = 1, value_parser = crate::args::at_least_one)]
    pub batch: usize,
    /// Write the predictions to this CSV file (`row,prediction`, and `target` when known).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Print one JSON object as the last line.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub split: SplitArgs,
}

#[derive(Args)]
pub struct EncryptArgs {
    /// Keys directory from `sqnn keygen`.
    #[arg(long)]
    pub keys: PathBuf,
    /// The circuit file (as `GET /v1/circuits/NAME` answers it).
    #[arg(long)]
    pub circuit: PathBuf,
    #[command(flatten)]
    pub rows: RowArgs,
    /// The batch file to write.
    #[arg(long)]
    pub out: PathBuf,
    #[command(flatten)]
    pub split: SplitArgs,
}

/// Which rows to encrypt: a data set's test rows, or every row of a CSV file of new samples.
#[derive(Args)]
pub struct RowArgs {
    /// Built-in data set name or CSV path: its test split is encrypted (and scored).
    #[arg(long, required_unless_present = "rows", conflicts_with = "rows")]
    pub data: Option<String>,
    /// CSV file of new samples to predict: a header row, then the circuit's feature columns by
    /// name (any order); every row is encrypted. A target column, if present, is used to score
    /// the predictions.
    #[arg(long)]
    pub rows: Option<PathBuf>,
    /// Encrypt only the first N rows (default: 5 test rows with --data, every row with --rows).
    #[arg(long, value_parser = crate::args::at_least_one)]
    pub samples: Option<usize>,
}

#[derive(Args)]
pub struct DecryptArgs {
    /// Keys directory from `sqnn keygen`.
    #[arg(long)]
    pub keys: PathBuf,
    /// The circuit file.
    #[arg(long)]
    pub circuit: PathBuf,
    /// The server's answer (a batch file).
    #[arg(long)]
    pub answer: PathBuf,
    /// Write the predictions to this CSV file (`row,prediction`).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Print one JSON object as the last line.
    #[arg(long)]
    pub json: bool,
}

#[cfg(feature = "deploy")]
pub fn serve(a: &ServeArgs) -> Result<ExitCode> {
    serve::serve(a)
}

#[cfg(feature = "deploy")]
pub fn client(c: &ClientCmd) -> Result<ExitCode> {
    match c {
        ClientCmd::Predict(a) => client::predict(a),
        ClientCmd::Encrypt(a) => client::encrypt(a),
        ClientCmd::Decrypt(a) => client::decrypt(a),
    }
}

#[cfg(not(feature = "deploy"))]
fn disabled() -> sqnn::Error {
    sqnn::Error::Backend(
        "this sqnn was built without the service (cargo feature `deploy`); rebuild with \
         `cargo build --release` (the feature is on by default)"
            .into(),
    )
}

#[cfg(not(feature = "deploy"))]
pub fn serve(_: &ServeArgs) -> Result<ExitCode> {
    Err(disabled())
}

#[cfg(not(feature = "deploy"))]
pub fn client(_: &ClientCmd) -> Result<ExitCode> {
    Err(disabled())
}
