//! The command line's progress display: an indicatif spinner or bar on standard error behind
//! the library's [`Progress`] observer.

use std::sync::Mutex;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use sqnn::progress::Progress;

/// A spinner (operations of unknown length, such as key generation) or a progress bar on
/// standard error, one per operation the library reports, cleared when it finishes.
pub struct Bar {
    /// Template of a bar of known length: `{prefix}` is the operation's name, `{msg}` its
    /// latest message.
    template: &'static str,
    current: Mutex<Option<ProgressBar>>,
}

impl Default for Bar {
    fn default() -> Self {
        Bar::with_template("{bar:30} {prefix} {pos}/{len} {msg} [{elapsed}]")
    }
}

impl Bar {
    /// No bar is shown until an operation starts.
    pub fn new() -> Bar {
        Bar::default()
    }

    /// Bars drawn with another indicatif template (`{prefix}`: the operation, `{msg}`: its
    /// latest message).
    pub fn with_template(template: &'static str) -> Bar {
        Bar {
            template,
            current: Mutex::new(None),
        }
    }

    fn with(&self, f: impl FnOnce(&mut Option<ProgressBar>)) {
        let mut guard = self.current.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut guard);
    }
}

impl Progress for Bar {
    fn start(&self, what: &str, total: u64) {
        let bar = if total == 0 {
            let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
            if let Ok(style) = ProgressStyle::with_template("{spinner} {msg} [{elapsed}]") {
                bar.set_style(style);
            }
            bar.set_message(what.to_string());
            bar.enable_steady_tick(Duration::from_millis(150));
            bar
        } else {
            let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
            if let Ok(style) = ProgressStyle::with_template(self.template) {
                bar.set_style(style);
            }
            bar.set_prefix(what.to_string());
            bar
        };
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

    fn message(&self, msg: &str) {
        self.with(|b| {
            if let Some(bar) = b {
                bar.set_message(msg.to_string());
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
