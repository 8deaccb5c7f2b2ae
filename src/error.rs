//! The crate's one error type. Errors are for broken input (bad files, bad parameters, keys that
//! do not match); a network that fails the accumulator check is *not* an error but a report.
//!
//! Every message names the problem and the fix.

use std::path::PathBuf;

/// Everything that can go wrong with input to sqnn.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A constructor or command-line parameter is out of range or inconsistent with another.
    #[error("invalid parameter `{name}`: {message}")]
    InvalidParameter {
        /// The parameter's name, as in the constructor (`n_w_bits`, ...).
        name: &'static str,
        /// What is wrong and how to fix it.
        message: String,
    },
    /// A data set or CSV file is malformed.
    #[error("{}", data_message(.source_name, *.line, .column.as_deref(), .message))]
    Data {
        /// The file or built-in data set name.
        source_name: String,
        /// 1-based line in the file, where known.
        line: Option<usize>,
        /// The column (name or 1-based index), where known.
        column: Option<String>,
        /// What is wrong and how to fix it.
        message: String,
    },
    /// Input values that cannot be processed (NaN, infinite, wrong feature count, ...).
    #[error("invalid input: {0}")]
    Input(String),
    /// A model file is malformed or does not match what is asked of it.
    #[error("model: {0}")]
    Model(String),
    /// A circuit file is malformed, tampered with, or inconsistent.
    #[error("circuit: {0}")]
    Circuit(String),
    /// Keys that are missing, corrupted or belong to another circuit.
    #[error("keys: {0}")]
    Keys(String),
    /// A backend could not run (for example a build without the TFHE feature).
    #[error("backend: {0}")]
    Backend(String),
    /// A remote sqnn server refused a request or could not be reached (`status` is the HTTP
    /// status, when there was an answer).
    #[error("server: {message}")]
    Service {
        /// The HTTP status, if the server answered.
        status: Option<u16>,
        /// What went wrong, in the server's words when it answered.
        message: String,
    },
    /// Reading or writing a file failed.
    #[error("{}: {source}", .path.display())]
    Io {
        /// The file concerned.
        path: PathBuf,
        /// The underlying I/O error.
        source: std::io::Error,
    },
}

fn data_message(source: &str, line: Option<usize>, column: Option<&str>, message: &str) -> String {
    let mut s = source.to_string();
    if let Some(l) = line {
        s.push_str(&format!(", line {l}"));
    }
    if let Some(c) = column {
        s.push_str(&format!(", column {c}"));
    }
    format!("{s}: {message}")
}

impl Error {
    /// Shorthand for [`Error::InvalidParameter`].
    pub fn param(name: &'static str, message: impl Into<String>) -> Self {
        Error::InvalidParameter {
            name,
            message: message.into(),
        }
    }

    /// Shorthand for an [`Error::Io`] on `path`.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
