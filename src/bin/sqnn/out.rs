//! Standard output and error that a closed pipe cannot crash: `sqnn check C | head -1` ends
//! with the command's own exit code (the check's verdict does not depend on who reads the
//! report), and a command whose reader left still finishes its work (`train` still writes its
//! model). Any other failure to write standard output is reported on standard error once, and
//! the command then exits with 2.
//!
//! `println!`, `print!` and `eprintln!` in this binary are the macros of `main.rs`, which call
//! [`stdout`] and [`stderr`].

use std::fmt;
use std::io::{ErrorKind, Write};
use std::sync::Mutex;

/// The first error writing standard output that was not a closed pipe.
static FAILED: Mutex<Option<String>> = Mutex::new(None);

/// Writes to standard output; a closed pipe is ignored, another error remembered.
pub fn stdout(args: fmt::Arguments) {
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_fmt(args).and_then(|()| out.flush()) {
        if e.kind() != ErrorKind::BrokenPipe {
            let mut f = FAILED.lock().unwrap_or_else(|p| p.into_inner());
            f.get_or_insert_with(|| e.to_string());
        }
    }
}

/// Writes to standard error, ignoring failures (there is nowhere left to report them).
pub fn stderr(args: fmt::Arguments) {
    let _ = std::io::stderr().lock().write_fmt(args);
}

/// The error that writing standard output met, other than a closed pipe.
pub fn failure() -> Option<String> {
    FAILED.lock().unwrap_or_else(|p| p.into_inner()).clone()
}
