//! Progress bars on stderr for the library's [`Progress`] reports: a spinner for an operation
//! of unknown length (key generation), a bar for one with a known number of steps.

use std::sync::Mutex;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use sqnn::progress::Progress;

/// Draws the operation the library reports, one at a time, and clears it when it finishes.
pub struct Bars {
    /// Template of a bar with a known length; `{prefix}` is what the operation counts.
    template: &'static str,
    current: Mutex<Option<ProgressBar>>,
}

impl Default for Bars {
    fn default() -> Self {
        Bars::with_template("{bar:30} {pos}/{len} {prefix}, {msg} [{elapsed} < {eta}]")
    }
}

impl Bars {
    /// Bars drawn with an `indicatif` template (`{prefix}` is the operation's name).
    pub fn with_template(template: &'static str) -> Self {
        Bars {
            template,
            current: Mutex::new(None),
        }
    }

    fn with_current(&self, f: impl FnOnce(&ProgressBar)) {
        if let Ok(current) = self.current.lock() {
            if let Some(pb) = current.as_ref() {
                f(pb);
            }
        }
    }
}

impl Progress for Bars {
    fn start(&self, what: &str, total: u64) {
        let pb = if total == 0 {
            let pb = ProgressBar::new_spinner();
            pb.set_style(
                ProgressStyle::with_template("{spinner} {msg} [{elapsed}]")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            pb.set_message(what.to_string());
            pb.enable_steady_tick(Duration::from_millis(150));
            pb
        } else {
            let pb = ProgressBar::new(total);
            pb.set_style(
                ProgressStyle::with_template(self.template)
                    .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            pb.set_prefix(what.to_string());
            pb
        };
        if let Ok(mut current) = self.current.lock() {
            if let Some(old) = current.replace(pb) {
                old.finish_and_clear();
            }
        }
    }

    fn advance(&self, n: u64) {
        self.with_current(|pb| pb.inc(n));
    }

    fn message(&self, msg: &str) {
        self.with_current(|pb| pb.set_message(msg.to_string()));
    }

    fn finish(&self) {
        if let Ok(mut current) = self.current.lock() {
            if let Some(pb) = current.take() {
                pb.finish_and_clear();
            }
        }
    }
}
