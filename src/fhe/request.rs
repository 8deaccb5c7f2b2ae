//! The one planner call: [`plan`] takes a circuit's [`PlanFacts`] and a [`PlanRequest`] (forced
//! set or the choice, read mode, failure target, cores) and returns the [`FhePlan`].

use super::accuracy::Calibration;
use super::catalogue::{ParamSet, ParamSetId};
use super::choose::{choose_among, choose_approximate, choose_by_accuracy};
use super::extract::{Extractions, MAX_CHUNK_BITS};
use super::facts::PlanFacts;
use super::one_set::{cheapest_meeting, chunk_widths, extraction_choices, plan_on, plan_with};
use super::plan::{FheMode, FhePlan};
use super::profile::{CostProfile, Costs};
use crate::error::{Error, Result};
use crate::ir::PlanRecord;

/// The read-noise guard (standard deviation of a read, in accumulator units) of a choice made
/// without calibration rows: what `sqnn keygen` and the server assume when no data is given.
pub const FALLBACK_MAX_SIGMA: f64 = 2.0;

/// What to plan. Build it with [`PlanRequest::new`] (or `Default`, or struct update syntax)
/// and the builder methods:
///
/// ```
/// use sqnn::fhe::{FheMode, ParamSetId, PlanRequest};
/// let chosen = PlanRequest::new(FheMode::Approximate).target(-40.0).cores(2).max_sigma(2.0);
/// let forced = PlanRequest::new(FheMode::Exact).on(ParamSetId::ClassicMsg2Carry2);
/// assert_eq!(forced.set, Some(ParamSetId::ClassicMsg2Carry2));
/// assert_eq!(chosen.max_sigma, Some(2.0));
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct PlanRequest {
    /// How tables read their accumulators.
    pub mode: FheMode,
    /// The failure target per bootstrap, log2 (as `mode` counts failures): in
    /// `[LOG2_P_FLOOR, LOOSEST_TARGET_LOG2]` (2^-20 at most), e.g. -40.
    pub target_log2_p_fail: f64,
    /// Cores the latency figures (and so the choice) assume; at least 1. Give a stated figure
    /// (the profile's with [`profile`](Self::profile), else
    /// [`builtin_cores`](super::builtin_cores)), not the running machine's, so that plans and
    /// reports are the same on any machine.
    pub cores: usize,
    /// The machine's measured costs ([`CostProfile`], `sqnn calibrate`) in place of the
    /// built-in latency figures; `None`: the built-in figures.
    pub profile: Option<CostProfile>,
    /// Plan on this set instead of choosing one (errors if the circuit does not fit it at the
    /// target).
    pub set: Option<ParamSetId>,
    /// Expert, with a forced `set` only: plan on exactly this space width, without checks (the
    /// plan may miss the target or not fit the set).
    pub space_bits: Option<u32>,
    /// Expert, with a forced `space_bits` only: [exact rounding](FhePlan::exact_rounding)
    /// (exact mode).
    pub exact_rounding: bool,
    /// Approximate mode's choice, an expert override: skip sets whose worst read noise exceeds
    /// this many accumulator units. `None`: no guard.
    pub max_sigma: Option<f64>,
    /// Approximate mode's choice by accuracy: the cheapest set whose simulated predictions on
    /// these calibration rows stay within their tolerance of the clear backend's. `None`: by
    /// latency (and `max_sigma`) only.
    pub calibration: Option<Calibration>,
    /// The choice considers only these sets (default: every selectable set of the catalogue).
    pub among: Option<Vec<ParamSetId>>,
    /// Exact rounding: where its extractions run (default: the cheapest set that meets the
    /// target, the table set or one of [`extraction_sets`](super::extraction_sets)). With a
    /// forced `space_bits`, [`Extractions::On`] puts them on that set (unchecked); otherwise
    /// they run on the table set.
    pub extractions: Extractions,
    /// Exact rounding: clear the dropped bits in chunks of this many bits
    /// ([`extraction_chunks`](super::extraction_chunks); 1: one bit per bootstrap). `None`:
    /// the cheapest width that meets the target (at most [`MAX_CHUNK_BITS`]).
    pub extraction_chunk_bits: Option<u32>,
}

impl Default for PlanRequest {
    /// Exact reads at 2^-40 per bootstrap on one core, the set chosen among every selectable
    /// one.
    fn default() -> PlanRequest {
        PlanRequest {
            mode: FheMode::Exact,
            target_log2_p_fail: -40.0,
            cores: 1,
            profile: None,
            set: None,
            space_bits: None,
            exact_rounding: false,
            max_sigma: None,
            calibration: None,
            among: None,
            extractions: Extractions::Cheapest,
            extraction_chunk_bits: None,
        }
    }
}

impl PlanRequest {
    /// The default request ([`Default`]) in `mode`.
    pub fn new(mode: FheMode) -> PlanRequest {
        PlanRequest {
            mode,
            ..PlanRequest::default()
        }
    }
    /// With this failure target (log2 per bootstrap).
    pub fn target(self, target_log2_p_fail: f64) -> PlanRequest {
        PlanRequest {
            target_log2_p_fail,
            ..self
        }
    }
    /// With this many cores.
    pub fn cores(self, cores: usize) -> PlanRequest {
        PlanRequest { cores, ..self }
    }
    /// With this machine's cost profile, and its core count.
    pub fn profile(self, profile: CostProfile) -> PlanRequest {
        PlanRequest {
            cores: profile.cores,
            profile: Some(profile),
            ..self
        }
    }
    /// On this set (no choice).
    pub fn on(self, set: ParamSetId) -> PlanRequest {
        PlanRequest {
            set: Some(set),
            ..self
        }
    }
    /// On exactly this space width (expert; needs [`on`](Self::on)).
    pub fn space_bits(self, space_bits: u32) -> PlanRequest {
        PlanRequest {
            space_bits: Some(space_bits),
            ..self
        }
    }
    /// With or without exact rounding at the forced width (expert).
    pub fn exact_rounding(self, exact_rounding: bool) -> PlanRequest {
        PlanRequest {
            exact_rounding,
            ..self
        }
    }
    /// With approximate mode's accuracy guard.
    pub fn max_sigma(self, max_sigma_units: f64) -> PlanRequest {
        PlanRequest {
            max_sigma: Some(max_sigma_units),
            ..self
        }
    }
    /// Choosing by the accuracy kept on these calibration rows (approximate mode).
    pub fn calibration(self, calibration: Calibration) -> PlanRequest {
        PlanRequest {
            calibration: Some(calibration),
            ..self
        }
    }
    /// With exact rounding's extractions placed so.
    pub fn extractions(self, extractions: Extractions) -> PlanRequest {
        PlanRequest {
            extractions,
            ..self
        }
    }
    /// With exact rounding's dropped bits cleared in chunks of this many bits (1 to
    /// [`MAX_CHUNK_BITS`]).
    pub fn extraction_chunk_bits(self, chunk_bits: u32) -> PlanRequest {
        PlanRequest {
            extraction_chunk_bits: Some(chunk_bits),
            ..self
        }
    }
    /// Choosing among these sets only.
    pub fn among(self, sets: impl IntoIterator<Item = ParamSetId>) -> PlanRequest {
        PlanRequest {
            among: Some(sets.into_iter().collect()),
            ..self
        }
    }
}

/// The TFHE plan of a circuit.
///
/// * With a forced [`set`](PlanRequest::set): the plan on it in the request's mode, with the
///   mode's space width: exact, `P = needed_bits`; approximate, the narrowest
///   `P >= needed_bits` whose margins keep every bootstrap's catastrophic probability within
///   the target. In exact mode, if reading whole accumulators misses the target and tables
///   drop bits, exact rounding at the narrowest width that meets it. With a forced
///   [`space_bits`](PlanRequest::space_bits) too: exactly that plan, unchecked.
/// * Otherwise the choice: the cheapest selectable set (predicted latency per sample on
///   `cores` cores, the circuit's layers one after another, then key size) that meets the
///   target; in approximate mode with [`calibration`](PlanRequest::calibration) rows, the
///   cheapest whose simulated predictions on them stay within the tolerance of the clear
///   backend's (if none does, the one that loses least); with
///   [`max_sigma`](PlanRequest::max_sigma), only among those whose worst read noise is within
///   it. The 2^-128 families come first: a 2^-64 set is
///   taken only when it is at least [`FAIL64_MIN_GAIN`](super::FAIL64_MIN_GAIN) faster than
///   the fastest 2^-128 set that qualifies. The plan lists every candidate with the reason it
///   was taken or not ([`FhePlan::candidates`]).
///
/// Errors: an invalid target (looser than 2^-20, say) or `max_sigma`
/// ([`Error::InvalidParameter`]); a circuit no set
/// holds at the target ([`Error::Backend`], naming the accumulators that are too wide or the
/// neurons whose Σw² is too large, and what to change).
pub fn plan(facts: &PlanFacts, req: &PlanRequest) -> Result<FhePlan> {
    let (mode, target) = (req.mode, req.target_log2_p_fail);
    let costs = &Costs {
        cores: req.cores.max(1),
        profile: req.profile.as_ref(),
    };
    if req.exact_rounding && req.space_bits.is_none() {
        return Err(Error::param(
            "exact_rounding",
            "a forced exact rounding needs a forced space width (the planner otherwise decides)",
        ));
    }
    if let Some(c) = req.extraction_chunk_bits {
        if !(1..=MAX_CHUNK_BITS).contains(&c) {
            return Err(Error::param(
                "extraction_chunk_bits",
                format!("{c} is not a chunk width: give 1 to {MAX_CHUNK_BITS} bits"),
            ));
        }
    }
    let extractions = (req.extractions, req.extraction_chunk_bits);
    match (req.set, req.space_bits) {
        (Some(id), Some(p)) => {
            let ext = match req.extractions {
                Extractions::On(e) => extraction_choices(id.set(), Extractions::On(e))?[0],
                _ => id.set(),
            };
            let on = |c: u32| {
                plan_on(
                    facts,
                    id.set(),
                    p,
                    mode,
                    req.exact_rounding.then_some((ext, c)),
                    target,
                    costs,
                )
            };
            // The chunk width asked for, else the cheapest that meets the target (as when the
            // planner chooses the space; else 1).
            Ok(match req.extraction_chunk_bits {
                Some(c) => on(c),
                None => {
                    cheapest_meeting(chunk_widths(None).map(on), target).unwrap_or_else(|| on(1))
                }
            })
        }
        (Some(id), None) => plan_with(facts, id.set(), mode, target, costs, extractions),
        (None, Some(_)) => Err(Error::param(
            "space_bits",
            "a forced space width needs a forced parameter set",
        )),
        (None, None) => {
            let allow = |p: &ParamSet| req.among.as_ref().is_none_or(|ids| ids.contains(&p.id));
            match (mode, &req.calibration, req.max_sigma) {
                (FheMode::Approximate, Some(cal), s) => {
                    choose_by_accuracy(facts, target, costs, cal, s, &allow)
                }
                (FheMode::Approximate, None, Some(s)) => {
                    choose_approximate(facts, target, costs, s, &allow)
                }
                _ => choose_among(facts, target, costs, mode, &allow, extractions),
            }
        }
    }
}

/// The plan recorded in a circuit at compile time ([`PlanRecord`]), planned again on its set,
/// mode and failure target, and exact rounding's extraction set and chunk width when recorded
/// (the same deterministic, checked plan as [`plan`] with those forced) with `req`'s costs and cores; the rest of `req` is ignored. The plan's
/// [`recorded`](FhePlan::recorded) says how the set was chosen.
///
/// Errors: the record names a set or mode this build does not know ([`Error::Circuit`]), or the
/// circuit no longer fits the set at the target.
pub fn recorded_plan(facts: &PlanFacts, record: &PlanRecord, req: &PlanRequest) -> Result<FhePlan> {
    let unknown = |what: &str, name: &str| {
        Error::Circuit(format!(
            "the recorded plan names the {what} {:?}, which this sqnn does not know: recompile \
             the model, or plan anew (give a parameter flag)",
            crate::fsio::bounded(name, 100)
        ))
    };
    let set: ParamSetId = record
        .parameter_set
        .parse()
        .map_err(|_| unknown("parameter set", &record.parameter_set))?;
    let mode: FheMode = record
        .mode
        .parse()
        .map_err(|_| unknown("read mode", &record.mode))?;
    // Exact rounding's extraction set and chunk width as recorded (plans recorded before
    // them: the planner's choice again).
    let extractions = match &record.extraction_parameter_set {
        Some(name) => Extractions::On(
            name.parse()
                .map_err(|_| unknown("extraction parameter set", name))?,
        ),
        None => Extractions::Cheapest,
    };
    let again = PlanRequest {
        mode,
        target_log2_p_fail: record.target_log2_p_fail,
        cores: req.cores,
        profile: req.profile.clone(),
        set: Some(set),
        extractions,
        extraction_chunk_bits: record.extraction_chunk_bits,
        ..PlanRequest::default()
    };
    let p = plan(facts, &again)?;
    Ok(FhePlan {
        recorded: Some(record.chosen_by.clone()),
        ..p
    })
}
