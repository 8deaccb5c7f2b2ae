//! sqnn: sparse quantized neural networks under fully homomorphic encryption, with a proved
//! accumulator check.
//!
//! The pipeline, one module per stage in data-flow order (see `ARCHITECTURE.md`):
//! [`data`] → [`train`] → [`quantize`] → [`lower`] → [`analyze`] → [`execute`] → [`report`].

pub mod analyze;
pub mod cast;
pub mod data;
pub mod error;
pub mod execute;
pub mod fhe;
pub mod graph;
pub mod lower;
pub mod quantize;
pub mod report;
#[cfg(feature = "tfhe-backend")]
pub mod tfhe_backend;
pub mod train;

pub use error::{Error, Result};
