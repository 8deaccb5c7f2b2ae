//! The TFHE backend against the clear backend, key handling, files, and the noise model, one
//! file per concern.
//!
//! Quick tests use the 2-bit and 4-bit parameter sets, with keys generated once per test
//! binary. Heavier measurements are `#[ignore]`d; each says the command that runs it.
#![cfg(feature = "tfhe-backend")]

#[path = "../common/mod.rs"]
mod common;

mod approximate;
mod calibration;
mod equivalence;
mod files;
mod rounding;
