//! The command line's progress display: an indicatif bar on standard error behind the
//! library's [`Progress`] observer.

use std::sync::Mutex;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use sqnn::progress::Progress;

/// A progress bar on standard error, one per operation the library reports.
#[derive(Default)]
pub struct Bar(Mutex<Option<ProgressBar>>);

impl Bar {
    /// No bar is shown until an operation starts.
    pub fn new() -> Bar {
        Bar::default()
    }

    fn with(&self, f: impl FnOnce(&mut Option<ProgressBar>)) {
        let mut guard = self.0.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut guard);
    }
}

impl Progress for Bar {
    fn start(&self, what: &str, total: u64) {
        let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
        if let Ok(style) = ProgressStyle::with_template("{bar:30} {msg} {pos}/{len} [{elapsed}]") {
            bar.set_style(style);
        }
        bar.set_message(what.to_string());
        self.with(|b| {
            if let Some(old) = b.replace(bar) {
                old.finish_and_clear();
            }
        });
    }

    fn advance(&self, n: u64) {
        self.with(|b| {
            if let Some(bar) = b {
                bar.inc(n);
            }
        });
    }

    fn finish(&self) {
        self.with(|b| {
            if let Some(bar) = b.take() {
                bar.finish_and_clear();
            }
        });
    }
}
