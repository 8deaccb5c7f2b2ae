//! Calibration against the proof: the accumulator widths a data set actually reaches (what a
//! compiler that measures on calibration data, like Concrete ML's, would size for), next to the
//! worst case the analysis proved. An analysis, so it returns a report; errors are for broken
//! input only.

use crate::analyze::Analyzed;
use crate::error::Result;
use crate::execute::ClearBackend;
use crate::ir::{Interval, NodeId};

/// One accumulator: its proved interval and the interval the data reached.
#[derive(Clone, Debug, PartialEq)]
pub struct CalibratedNeuron {
    /// The `Dot` node.
    pub node: NodeId,
    /// Its linear layer.
    pub layer: usize,
    /// Its index within the layer.
    pub neuron: usize,
    /// The proved worst case.
    pub proved: Interval,
    /// The smallest interval holding every value the data produced.
    pub measured: Interval,
}

impl CalibratedNeuron {
    /// Bits the proof needs beyond what the data showed (0 if the data reached the worst case).
    pub fn extra_bits(&self) -> u32 {
        self.proved
            .range_bits()
            .saturating_sub(self.measured.range_bits())
    }
}

/// What calibration on a data set found, per accumulator, in the report's neuron order.
#[derive(Clone, Debug, PartialEq)]
pub struct Calibration {
    /// How many rows were run.
    pub samples: usize,
    /// One entry per accumulator.
    pub neurons: Vec<CalibratedNeuron>,
}

impl Calibration {
    /// The accumulators whose proof needs more bits than the data showed.
    pub fn wider_than_measured(&self) -> impl Iterator<Item = &CalibratedNeuron> {
        self.neurons.iter().filter(|n| n.extra_bits() > 0)
    }

    /// The widest measured range in `layer`, bits (0 for an empty layer).
    pub fn measured_bits_max(&self, layer: usize) -> u32 {
        self.of_layer(layer)
            .map(|n| n.measured.range_bits())
            .max()
            .unwrap_or(0)
    }

    /// The accumulators of `layer`.
    pub fn of_layer(&self, layer: usize) -> impl Iterator<Item = &CalibratedNeuron> {
        self.neurons.iter().filter(move |n| n.layer == layer)
    }
}

/// Runs `inputs` (quantized rows) through the clear backend and records, for every accumulator
/// of the report, the interval its values spanned.
pub fn calibrate(an: &Analyzed, inputs: &[Vec<i64>]) -> Result<Calibration> {
    let trace = ClearBackend::default().trace(an, inputs)?;
    let neurons = an
        .report()
        .neurons
        .iter()
        .map(|n| {
            let col = &trace[n.node];
            let lo = col.iter().copied().min().unwrap_or(0);
            let hi = col.iter().copied().max().unwrap_or(0);
            CalibratedNeuron {
                node: n.node,
                layer: n.layer,
                neuron: n.neuron,
                proved: Interval { lo: n.lo, hi: n.hi },
                measured: Interval { lo, hi },
            }
        })
        .collect();
    Ok(Calibration {
        samples: inputs.len(),
        neurons,
    })
}
