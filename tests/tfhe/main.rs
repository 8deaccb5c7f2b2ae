//! The TFHE backend against the clear backend, key handling, files, and the noise model, one
//! file per concern.
//!
//! Quick tests use the 2-bit and 4-bit parameter sets, with keys generated once per test
//! binary. Heavier checks (minutes of bootstraps) are `#[ignore]`d; each says the command that
//! runs it. The programs that only measure (latency, noise constants) are
//! `examples/calibrate.rs`.
#![cfg(feature = "tfhe-backend")]

#[path = "../common/mod.rs"]
mod common;

mod approximate;
mod equivalence;
mod extract;
mod files;
mod rounding;
mod simulated;
mod variants;
