//! sqnn: sparse quantized neural networks under fully homomorphic encryption, with a proved
//! accumulator check.
//!
//! The pipeline, one module per stage in data-flow order (see `ARCHITECTURE.md`):
//! [`data`] → [`train`] → [`ir`] → [`lower`] → [`analyze`] → [`report`] → [`execute`] → [`fhe`]
//! → `tfhe`.

pub mod cast;
pub mod error;
pub mod progress;
pub mod task;

pub mod data;
pub mod train;

pub mod ir;
pub mod lower;

pub mod analyze;
pub mod report;

pub mod execute;
pub mod fhe;
#[cfg(feature = "tfhe-backend")]
pub mod tfhe;

pub use error::{Error, Result};
