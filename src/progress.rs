//! Progress reporting without a user interface: long library operations (training epochs,
//! encrypted evaluation) report through a [`Progress`] observer that the caller implements
//! (the `sqnn` binary draws a progress bar); [`NoProgress`] ignores everything.

/// An observer of one long operation at a time: `start`, then any number of `advance`, then
/// `finish`.
pub trait Progress: Sync {
    /// A new operation named `what` begins, with `total` steps (0: an unknown number, such as
    /// key generation, which reports only messages).
    fn start(&self, what: &str, total: u64);
    /// `n` more steps are done.
    fn advance(&self, n: u64);
    /// Where the operation stands, in a few words (e.g. `sample 3/10`); ignored by default.
    fn message(&self, msg: &str) {
        let _ = msg;
    }
    /// The operation is over (also when it stops early).
    fn finish(&self);
}

/// The observer that reports nothing.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NoProgress;

impl Progress for NoProgress {
    fn start(&self, _what: &str, _total: u64) {}
    fn advance(&self, _n: u64) {}
    fn finish(&self) {}
}
