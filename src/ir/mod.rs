//! The intermediate representation: the integer graph ([`IntGraph`]), its circuit file format,
//! and the per-node facts ([`NodeFact`]) that lowering and the analysis both compute with the one
//! transfer function.

pub mod facts;
pub mod graph;

pub use facts::{transfer, Interval, NodeFact};
pub use graph::*;
