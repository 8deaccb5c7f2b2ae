//! How a circuit was made ([`Meta`]): task, bit widths, the training's pruning mode and what
//! rounding before the tables cost ([`RoundingSummary`]). The check and the parameter choice
//! read the widths; the report shows the rest.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::task::Task;
use crate::train::PruningMode;

/// Facts about how the circuit was made, which the check and the parameter choice use.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Meta {
    /// Classification (with class names) or regression.
    pub task: Task,
    /// Weight bit width (signed).
    pub n_w_bits: u32,
    /// Activation bit width.
    pub n_a_bits: u32,
    /// Accumulator budget: every accumulator's range width must be at most this.
    pub n_accum_bits: u32,
    /// How training pruned the weights (`"per_neuron"`, `"layer_global"`,
    /// `"accumulator_aware"` in files); `None` (absent) for a circuit built by hand.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pruning: Option<PruningMode>,
    /// What rounding before the tables cost, as lowering measured it against the exact tables;
    /// `None` (absent) when lowering recorded nothing.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rounding: Option<RoundingSummary>,
    /// The split the model was trained on; `None` (absent) when not recorded (a circuit built
    /// by hand, or from a model trained before it was recorded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub training_rows: Option<crate::data::TrainingRows>,
}

/// What rounding accumulators before their tables cost, over the circuit's tables (those that
/// are not constant). In files and reports it is one sentence (see its [`fmt::Display`]), which
/// this type parses back exactly: the tolerance to 4 decimals and the worst share to 0.01 %, as
/// written.
///
/// ```
/// let text = "tolerance 0.0000, tables of at most 10 bits: 3 of 22 tables drop 0..=3 low \
///     accumulator bits (3 of them losslessly); 0 of 5790 reachable accumulator values \
///     (0.00 %) change level, at most 0.00 % in one table";
/// let s: sqnn::ir::RoundingSummary = text.parse()?;
/// assert_eq!((s.rounded, s.tables, s.dropped_bits), (3, 22, (0, 3)));
/// assert_eq!(s.to_string(), text);
/// # Ok::<(), sqnn::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RoundingSummary {
    /// Largest share of a neuron's accumulator values whose output lowering allowed to change.
    pub tolerance: f64,
    /// Widest table index lowering allowed (bits).
    pub max_table_bits: u32,
    /// Tables (not constant) lowering built.
    pub tables: usize,
    /// Tables that drop low accumulator bits.
    pub rounded: usize,
    /// Of the tables that drop bits, those whose output changes for no accumulator value.
    pub lossless: usize,
    /// Fewest and most low bits a table drops ([`crate::ir::IntGraph::dropped_bits`]; `(0, 0)`
    /// without tables).
    pub dropped_bits: (u32, u32),
    /// Reachable accumulator values whose table output changed, over all tables.
    pub changed: u64,
    /// Reachable accumulator values, over all tables.
    pub values: u64,
    /// Largest share of one table's accumulator values whose output changed.
    pub worst_share: f64,
}

/// The sentence's fixed words, between which its ten numbers stand.
const WORDS: [&str; 12] = [
    "tolerance ",
    ", tables of at most ",
    " bits: ",
    " of ",
    " tables drop ",
    "..=",
    " low accumulator bits (",
    " of them losslessly); ",
    " of ",
    " reachable accumulator values (",
    " %) change level, at most ",
    " % in one table",
];

impl fmt::Display for RoundingSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "tolerance {:.4}, tables of at most {} bits: {} of {} tables drop {}..={} low accumulator bits ({} of them \
             losslessly); {} of {} reachable accumulator values ({:.2} %) change level, at most \
             {:.2} % in one table",
            self.tolerance,
            self.max_table_bits,
            self.rounded,
            self.tables,
            self.dropped_bits.0,
            self.dropped_bits.1,
            self.lossless,
            self.changed,
            self.values,
            100.0 * self.changed as f64 / self.values.max(1) as f64,
            100.0 * self.worst_share,
        )
    }
}

impl FromStr for RoundingSummary {
    type Err = crate::Error;

    /// Parses the sentence [`fmt::Display`] writes; anything else (including a sentence whose
    /// figures would not be written back the same) is an error.
    fn from_str(text: &str) -> crate::Result<RoundingSummary> {
        let bad = || {
            crate::Error::Circuit(format!(
                "meta.rounding {text:?} is not a rounding summary this build writes"
            ))
        };
        let mut rest = text.strip_prefix(WORDS[0]).ok_or_else(bad)?;
        let mut fields = Vec::with_capacity(WORDS.len() - 1);
        for word in &WORDS[1..] {
            let end = rest.find(word).ok_or_else(bad)?;
            fields.push(&rest[..end]);
            rest = &rest[end + word.len()..];
        }
        if !rest.is_empty() {
            return Err(bad());
        }
        fn num<T: FromStr>(s: &str) -> Option<T> {
            s.parse().ok()
        }
        let summary = (|| {
            Some(RoundingSummary {
                tolerance: num(fields[0])?,
                max_table_bits: num(fields[1])?,
                rounded: num(fields[2])?,
                tables: num(fields[3])?,
                dropped_bits: (num(fields[4])?, num(fields[5])?),
                lossless: num(fields[6])?,
                changed: num(fields[7])?,
                values: num(fields[8])?,
                worst_share: num::<f64>(fields[10])? / 100.0,
            })
        })()
        .ok_or_else(bad)?;
        // The share of changed values (field 9) is derived; writing back checks it too.
        if summary.to_string() != text {
            return Err(bad());
        }
        Ok(summary)
    }
}

impl Serialize for RoundingSummary {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for RoundingSummary {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<RoundingSummary, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// The TFHE plan `sqnn compile` chose for the circuit, recorded in its file (format version
/// 2): what keys, runs and the server use unless told otherwise. It names the choice (set,
/// read mode, failure target); [`crate::fhe::recorded_plan`] plans on that set again (a
/// deterministic, checked plan), with the costs of wherever it runs. The rest says how it was
/// chosen and what it was predicted to cost, for people. Names are `tfhe` constant names and
/// mode names, parsed by [`crate::fhe`] (a name this build does not know is an error there).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlanRecord {
    /// The parameter set (`tfhe::shortint::parameters` constant name).
    pub parameter_set: String,
    /// How tables read their accumulators: `exact` or `approximate`.
    pub mode: String,
    /// Failure target per bootstrap, log2.
    pub target_log2_p_fail: f64,
    /// Predicted latency per sample when it was chosen (ms), on `cores` cores.
    pub latency_ms_per_sample: f64,
    /// Cores that prediction assumed.
    pub cores: usize,
    /// The cost figures it used, and from when.
    pub costs: String,
    /// How it was chosen: by accuracy on calibration rows (with the simulated agreement), or by
    /// the read-noise guard, or forced.
    pub chosen_by: String,
    /// Exact rounding: the set its extractions run on (the table set's own name when they run
    /// there). Absent without exact rounding, and in plans recorded before it was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extraction_parameter_set: Option<String>,
    /// Exact rounding: the chunk width its extractions clear the dropped bits in. Absent as
    /// above.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extraction_chunk_bits: Option<u32>,
}

impl PlanRecord {
    /// The longest text field a file may hold.
    pub const MAX_TEXT: usize = 4096;

    /// Finite numbers, at least one core, and bounded text (the names are parsed where they
    /// are used).
    pub fn validate(&self) -> crate::error::Result<()> {
        let texts = [
            &self.parameter_set,
            &self.mode,
            &self.costs,
            &self.chosen_by,
        ];
        let ok = self.target_log2_p_fail.is_finite()
            && self.latency_ms_per_sample.is_finite()
            && self.latency_ms_per_sample >= 0.0
            && self.cores >= 1
            && texts.iter().all(|t| t.len() <= Self::MAX_TEXT)
            && self
                .extraction_parameter_set
                .as_ref()
                .is_none_or(|t| t.len() <= Self::MAX_TEXT)
            && self
                .extraction_chunk_bits
                .is_none_or(|c| (1..=64).contains(&c))
            && !self.parameter_set.is_empty();
        if ok {
            Ok(())
        } else {
            Err(crate::error::Error::Circuit(
                "the recorded plan is malformed (a number that is not finite, no cores, a chunk \
                 width out of range, or a name too long): recompile the model into a fresh circuit"
                    .into(),
            ))
        }
    }
}
