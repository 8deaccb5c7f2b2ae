//! The intermediate representation: the integer graph ([`IntGraph`]) and how it was made
//! ([`Meta`]), its circuit file format ([`format`](mod@format): header, checksum, run-length
//! encoded tables, validation), and the per-node facts ([`NodeFact`]) that lowering and the
//! analysis both compute with the one transfer function.

pub mod facts;
pub mod format;
pub mod graph;
pub mod meta;

pub use facts::{transfer, Interval, NodeFact};
pub use format::{
    FORMAT, MAX_BITS, MAX_CIRCUIT_BYTES, MAX_NODES, MAX_TABLE_LEN, OLDEST_VERSION, VERSION,
};
pub use graph::*;
pub use meta::{Meta, PlanRecord, RoundingSummary};
