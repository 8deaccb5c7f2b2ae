//! Where a plan's latency figures come from: the built-in figures (`measured.json`, measured on
//! the machine named there) or a [`CostProfile`] of the machine that runs sqnn (`sqnn
//! calibrate` measures it; [`crate::tfhe::measure_costs`] from Rust). A plan never reads the
//! running machine's core count: it uses the built-in figures' cores ([`builtin_cores`]) or the
//! profile's, so the same circuit gets the same plan and report on any machine.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::catalogue::{catalogue, ParamSet, ParamSetId};
use super::measured::{self, MEASURED};
use crate::error::{Error, Result};
use crate::fsio::{bounded, read_text_limited, write_atomic, Secrecy};

/// The `format` field of a profile file.
pub const PROFILE_FORMAT: &str = "sqnn-cost-profile";
/// The profile format version this build reads and writes.
pub const PROFILE_VERSION: u32 = 1;
/// Largest profile file sqnn reads.
pub const MAX_PROFILE_BYTES: u64 = crate::fsio::MIB;
/// The environment variable that names the directory of the profile (instead of the user's
/// cache directory, e.g. `~/.cache/sqnn` on Linux).
pub const CACHE_DIR_ENV: &str = "SQNN_CACHE_DIR";
/// The profile's file name in that directory.
pub const PROFILE_FILE: &str = "cost-profile.json";

/// The cores the built-in figures were measured on, and so the core count plans assume without
/// a profile.
pub fn builtin_cores() -> usize {
    MEASURED.cores.max(1)
}

/// The date of the built-in figures (ISO).
pub fn builtin_date() -> &'static str {
    &MEASURED.date
}

/// One parameter set's measured costs on a machine.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetCost {
    /// One keyswitch + bootstrap at a time on the calling thread (median, ms): one core's work
    /// for a classic bootstrap; a multi-bit bootstrap also runs its own threads.
    pub pbs_ms_alone: f64,
    /// Time per bootstrap with one bootstrap per core running at once (amortized, ms): the
    /// median round of one per core, over the cores.
    pub pbs_ms_all_threads: f64,
    /// Bootstraps timed alone (the amortized figure times `cores` times as many).
    pub samples: usize,
}

/// A machine's measured bootstrap costs, dated, with its core count and the sqnn version that
/// measured them: what `sqnn calibrate` writes to [`CostProfile::default_path`]. The planner
/// uses it (with [`PlanRequest::profile`](super::PlanRequest::profile)) in place of the
/// built-in latency figures; noise figures are the built-in ones either way.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CostProfile {
    /// [`PROFILE_FORMAT`].
    pub format: String,
    /// [`PROFILE_VERSION`].
    pub version: u32,
    /// The sqnn version that measured it (a profile of another version is refused: its sets
    /// or their figures may differ).
    pub sqnn_version: String,
    /// When (ISO date, UTC).
    pub date: String,
    /// Cores (threads) the bootstraps ran on: the core count of plans made with it.
    pub cores: usize,
    /// The machine, as `std::env::consts` names it (e.g. `x86_64 linux`).
    pub machine: String,
    /// Each measured set's costs.
    pub sets: BTreeMap<ParamSetId, SetCost>,
}

impl CostProfile {
    /// A profile of this sqnn version from measured `sets`.
    pub fn new(date: String, cores: usize, sets: BTreeMap<ParamSetId, SetCost>) -> CostProfile {
        CostProfile {
            format: PROFILE_FORMAT.into(),
            version: PROFILE_VERSION,
            sqnn_version: env!("CARGO_PKG_VERSION").into(),
            date,
            cores: cores.max(1),
            machine: format!("{} {}", std::env::consts::ARCH, std::env::consts::OS),
            sets,
        }
    }

    /// Where the profile lives: `$SQNN_CACHE_DIR/cost-profile.json` when the variable is set
    /// (and not empty), else `sqnn/cost-profile.json` in the user's cache directory; `None`
    /// when the platform has none.
    pub fn default_path() -> Option<PathBuf> {
        match std::env::var_os(CACHE_DIR_ENV) {
            Some(dir) if !dir.is_empty() => Some(PathBuf::from(dir).join(PROFILE_FILE)),
            _ => dirs::cache_dir().map(|d| d.join("sqnn").join(PROFILE_FILE)),
        }
    }

    /// Parses and checks a profile's text: the format, its version, the sqnn version that wrote
    /// it, a core count of at least 1, an ISO date, and finite positive figures.
    pub fn from_json(text: &str) -> Result<CostProfile> {
        let p: CostProfile = serde_json::from_str(text).map_err(|e| {
            Error::Input(format!(
                "not a readable cost profile ({}): measure it again with `sqnn calibrate`",
                bounded(&e.to_string(), 200)
            ))
        })?;
        let again = "measure it again with `sqnn calibrate`";
        if p.format != PROFILE_FORMAT || p.version != PROFILE_VERSION {
            return Err(Error::Input(format!(
                "a cost profile of format {:?} version {}, this sqnn reads {PROFILE_FORMAT:?} \
                 version {PROFILE_VERSION}: {again}",
                bounded(&p.format, 64),
                p.version
            )));
        }
        let ours = env!("CARGO_PKG_VERSION");
        if p.sqnn_version != ours {
            return Err(Error::Input(format!(
                "the cost profile was measured by sqnn {}, this is sqnn {ours}: {again}",
                bounded(&p.sqnn_version, 64)
            )));
        }
        let date_ok = p.date.len() == 10
            && p.date.bytes().enumerate().all(|(i, b)| {
                if i == 4 || i == 7 {
                    b == b'-'
                } else {
                    b.is_ascii_digit()
                }
            });
        if !date_ok || p.cores == 0 || p.sets.is_empty() {
            return Err(Error::Input(format!(
                "the cost profile is damaged (date {:?}, {} cores, {} sets): {again}",
                bounded(&p.date, 64),
                p.cores,
                p.sets.len()
            )));
        }
        for (id, c) in &p.sets {
            let ok = |v: f64| v.is_finite() && v > 0.0;
            if !ok(c.pbs_ms_alone) || !ok(c.pbs_ms_all_threads) || c.samples == 0 {
                return Err(Error::Input(format!(
                    "the cost profile's figures for {id} are not positive numbers: {again}"
                )));
            }
        }
        Ok(p)
    }

    /// Reads and checks a profile file ([`from_json`](Self::from_json)); the error names the
    /// file.
    pub fn load(path: &Path) -> Result<CostProfile> {
        let text = read_text_limited(path, MAX_PROFILE_BYTES, "cost profile")?;
        CostProfile::from_json(&text).map_err(|e| match e {
            Error::Input(m) => Error::Input(format!("{}: {m}", path.display())),
            other => other,
        })
    }

    /// The profile at [`default_path`](Self::default_path), if there is one. `Ok(None)` when no
    /// file is there; an error when one is there but cannot be used (damaged, or from another
    /// sqnn version), naming the file and the fix.
    pub fn load_default() -> Result<Option<CostProfile>> {
        match Self::default_path() {
            Some(path) if path.exists() => Self::load(&path).map(Some),
            _ => Ok(None),
        }
    }

    /// The profile as pretty JSON.
    pub fn to_json(&self) -> Result<String> {
        serde_json::to_string_pretty(self)
            .map(|s| s + "\n")
            .map_err(|e| Error::Input(format!("cannot serialize the cost profile: {e}")))
    }

    /// Writes the profile atomically ([`crate::fsio::write_atomic`]), creating its directory.
    pub fn save(&self, path: &Path) -> Result<()> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        }
        write_atomic(path, self.to_json()?.as_bytes(), Secrecy::Public)
    }

    /// The median, over the measured sets that the built-in figures also hold, of measured ÷
    /// built-in one-core latency: how much faster or slower this machine is. Sets the profile
    /// lacks are planned with their built-in figure times this.
    pub fn scale(&self) -> f64 {
        let mut r: Vec<f64> = self
            .sets
            .keys()
            .map(|id| self.one_thread_ms(id.set()) / measured::figures(*id).pbs_ms_1_thread)
            .filter(|r| r.is_finite() && *r > 0.0)
            .collect();
        if r.is_empty() {
            return 1.0;
        }
        r.sort_by(f64::total_cmp);
        r[r.len() / 2]
    }

    /// A set's one-core bootstrap time from this profile: the time alone for a classic
    /// bootstrap; for a multi-bit one, the time alone undone of its threads' share (the
    /// built-in parallel fraction over `min(cores, pbs_threads)` threads).
    fn one_thread_ms(&self, set: &ParamSet) -> f64 {
        let Some(c) = self.sets.get(&set.id) else {
            return set.pbs_ms_1_thread * self.scale();
        };
        let f = set.pbs_parallel_fraction.clamp(0.0, 1.0);
        let per = self.cores.min(set.pbs_threads).max(1) as f64;
        c.pbs_ms_alone / ((1.0 - f) + f / per)
    }

    /// Selectable sets the profile lacks.
    pub fn missing(&self) -> Vec<ParamSetId> {
        catalogue()
            .iter()
            .filter(|s| s.selectable && !self.sets.contains_key(&s.id))
            .map(|s| s.id)
            .collect()
    }
}

/// The cost figures of one plan: the cores it assumes and the profile, if any.
#[derive(Clone, Copy, Debug)]
pub(super) struct Costs<'a> {
    /// Cores the latency figures assume.
    pub cores: usize,
    /// The machine's profile; `None`: the built-in figures.
    pub profile: Option<&'a CostProfile>,
}

impl Costs<'_> {
    /// `set` with this source's latency figures.
    pub fn set(&self, set: &ParamSet) -> ParamSet {
        match self.profile {
            None => *set,
            // The profile's amortized time with one bootstrap per core on its `cores` cores,
            // as the built-in figure's amortized time over two: the same wall time per round.
            Some(p) => ParamSet {
                pbs_ms_1_thread: p.one_thread_ms(set),
                pbs_ms_2_threads: p
                    .sets
                    .get(&set.id)
                    .map_or(set.pbs_ms_2_threads * p.scale(), |c| {
                        c.pbs_ms_all_threads * p.cores.max(1) as f64 / 2.0
                    }),
                ..*set
            },
        }
    }

    /// How much slower (above 1) or faster this source's machine is than the built-in
    /// figures': the profile's [`scale`](CostProfile::scale), 1 without one. The work outside
    /// bootstraps ([`linear_ms`](super::latency::linear_ms)) is built in, times this.
    pub fn scale(&self) -> f64 {
        self.profile.map_or(1.0, CostProfile::scale)
    }

    /// Which figures, from when, on how many cores (the plan's `costs`).
    pub fn source(&self) -> String {
        match self.profile {
            None => measured::source(),
            Some(p) => {
                let missing = p.missing();
                let partial = if missing.is_empty() {
                    String::new()
                } else {
                    format!(
                        "; {} set(s) not measured there use the built-in figures × {:.2}",
                        missing.len(),
                        p.scale()
                    )
                };
                format!(
                    "this machine's profile of {} ({} cores, {}, sqnn {}){partial}",
                    p.date, p.cores, p.machine, p.sqnn_version
                )
            }
        }
    }
}
