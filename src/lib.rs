//! sqnn: sparse quantized neural networks under fully homomorphic encryption, with a proved
//! accumulator check.
//!
//! The pipeline, one module per stage in data-flow order (see `ARCHITECTURE.md`); a module
//! imports only the foundation (`cast`, `error`, `fsio`, `task`, `progress`) and the stages before it:
//! [`data`] → [`train`] → [`ir`] → [`lower`](mod@lower) → [`analyze`](mod@analyze) → [`report`] → [`execute`] →
//! [`fhe`] → [`tune`] → `tfhe` (feature `tfhe-backend`) → `deploy` (feature `deploy`: the HTTP service and its
//! client).
//!
//! The nouns a user needs are re-exported here; `examples/pipeline.rs` runs the whole pipeline
//! (train, compile, check, plan, run in clear and under TFHE):
//!
//! ```
//! use sqnn::{analyze, lower, plan, ClearBackend, Dataset, EstimatorParams, FheMode, Model};
//! use sqnn::{NoProgress, PlanFacts, PlanRequest, SplitSpec};
//!
//! let iris = Dataset::builtin("iris")?;
//! let split = SplitSpec::Auto.split(&iris)?;
//! let (train, test) = (iris.subset(&split.train), iris.subset(&split.test));
//! let params = EstimatorParams { epochs: 5, ..EstimatorParams::default() };
//! let (model, _) = Model::fit(params, &train, &NoProgress)?;
//! let graph = lower(model.quantized(), "iris", model.params().pruning)?;
//! let checked = analyze(graph)?.check().map_err(|_| sqnn::Error::Input("check".into()))?;
//! let plan = plan(&PlanFacts::new(checked.analyzed()), &PlanRequest::new(FheMode::Approximate))?;
//! let inputs = checked.graph().quantize_inputs(&test.x)?;
//! let outputs = ClearBackend::default().evaluate(checked.analyzed(), &inputs)?;
//! assert_eq!((outputs.len(), plan.pbs_count), (38, checked.report().pbs_count));
//! # Ok::<(), sqnn::Error>(())
//! ```

pub mod cast;
pub mod error;
pub mod fsio;
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
pub mod tune;

#[cfg(feature = "deploy")]
pub mod deploy;

pub use analyze::{analyze, Analyzed, CheckedGraph, CompileReport};
pub use data::{Dataset, Split, SplitSpec};
pub use error::{Error, Result};
pub use execute::{Backend, ClearBackend};
pub use fhe::{plan, FheMode, FhePlan, ParamSetId, PlanFacts, PlanRequest};
pub use ir::IntGraph;
pub use lower::{lower, Rounding};
pub use progress::{NoProgress, Progress};
pub use task::Task;
#[cfg(feature = "tfhe-backend")]
pub use tfhe::{ClientKey, ServerKey, TfheBackend};
pub use train::{
    EstimatorParams, FitReport, Model, NeuralNetClassifier, NeuralNetRegressor, PruningMode,
};
