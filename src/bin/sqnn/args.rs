//! Flag groups shared by several commands: how TFHE parameters are chosen, which rows to use.

use std::path::PathBuf;

use clap::builder::{EnumValueParser, TypedValueParser};
use clap::{Args, ValueEnum};

use sqnn::data::{Dataset, Schema, Split, SplitSpec, SplitUse, TaskKind, TrainingRows};
use sqnn::Result;

/// A count of samples (or of samples per request): at least 1. Zero ran nothing and printed
/// an accuracy of 0 with exit 0.
pub fn at_least_one(text: &str) -> std::result::Result<usize, String> {
    match text.parse::<usize>() {
        Ok(0) => Err("must be at least 1".into()),
        Ok(n) => Ok(n),
        Err(e) => Err(format!("{e}: expected a whole number, at least 1")),
    }
}

/// How the TFHE parameters are chosen.
#[derive(Args, Clone)]
pub struct FheArgs {
    /// Bootstrap reads: `exact` (bit-identical to the clear backend; needs a bootstrap as wide
    /// as the widest accumulator) or `approximate` (one cheap bootstrap reads a wide
    /// accumulator, off by a few units with the probabilities the noise model predicts).
    #[arg(long, default_value = "approximate")]
    pub mode: sqnn::fhe::FheMode,
    /// Target probability, per bootstrap, of a wrong result (exact) or of a read past a table's
    /// margin (approximate), as log2 (Concrete ML's default: -40).
    #[arg(long, default_value_t = -40.0, allow_negative_numbers = true)]
    pub p_error: f64,
    /// Approximate mode: share of calibration rows (the training split) whose prediction may
    /// change under the simulated read noise (classification), or R² that may be lost
    /// (regression); the choice takes the fastest set within it.
    #[arg(long, default_value_t = sqnn::fhe::Calibration::DEFAULT_TOLERANCE)]
    pub tolerance: f64,
    /// Approximate mode: noise seeds the choice simulates per candidate on the calibration
    /// rows. More seeds give a more precise share of changed predictions (a small training
    /// split needs many: rows × seeds in the thousands), at more time. Default: enough for
    /// 4,000 row × seed simulations, at least 4 (36 on iris's 112 training rows, 4 from 1,000
    /// rows). The least a candidate gets: near the tolerance the choice doubles them until its
    /// estimate is two standard errors from it (at most 128,000 row × seed simulations).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=sqnn::fhe::Calibration::MAX_SEEDS))]
    pub calibration_seeds: Option<u64>,
    /// Approximate mode, expert override (off by default): also skip sets whose read noise
    /// (standard deviation, accumulator units) exceeds this. Without calibration rows (no
    /// data set), a guard of 2 units applies. Refused with --mode exact or --parameters.
    #[arg(long)]
    pub max_sigma: Option<f64>,
    /// Use this parameter set instead of choosing one (a `tfhe` constant name from `sqnn::fhe::ParamSetId::ALL`).
    #[arg(long)]
    pub parameters: Option<String>,
    /// Exact rounding (--mode exact only): where the bootstraps that clear a table's dropped
    /// bits run: `auto` (the cheapest set that meets the target: the table set, or a smaller
    /// set sharing its GLWE key), `table-set` (every bootstrap on one set), or a parameter
    /// set's name.
    #[arg(long, default_value = "auto")]
    pub extractions: String,
    /// Exact rounding (--mode exact only): clear a table's dropped bits in chunks of this many
    /// bits (1: one bit per bootstrap; a wider chunk takes two bootstraps). Default: the
    /// cheapest width that meets the target.
    #[arg(long)]
    pub extraction_chunk_bits: Option<u32>,
    /// The flags of this group given on the command line (not defaulted), by id: keys loaded
    /// from a directory fix what they would choose, so those flags are refused there.
    #[arg(skip)]
    pub given: Vec<&'static str>,
    /// How this command takes calibration rows (e.g. `give --data DATA`): the fix named when
    /// `--tolerance` or `--calibration-seeds` is given without them.
    #[arg(skip)]
    pub rows_from: &'static str,
}

impl FheArgs {
    /// The flag ids of this group.
    const IDS: [&'static str; 8] = [
        "mode",
        "p_error",
        "tolerance",
        "calibration_seeds",
        "max_sigma",
        "parameters",
        "extractions",
        "extraction_chunk_bits",
    ];

    /// Records which of this group's flags `matches` (a subcommand's) got from the command
    /// line, and how the command takes calibration rows (`rows_from`, the fix said when a flag
    /// of the choice by accuracy has none to apply to).
    pub fn note_given(&mut self, matches: &clap::ArgMatches, rows_from: &'static str) {
        self.rows_from = rows_from;
        self.given = Self::IDS
            .into_iter()
            .filter(|id| {
                matches!(
                    matches
                        .try_get_raw(id)
                        .ok()
                        .flatten()
                        .and(matches.value_source(id)),
                    Some(clap::parser::ValueSource::CommandLine)
                )
            })
            .collect();
    }

    /// Refuses the flags that cannot apply to keys loaded from `dir`, generated with
    /// `parameter_set` for `mode` (when recorded): `--parameters` naming another set, `--mode`
    /// naming another mode, and the flags that only steer the choice of parameters. (Keys that
    /// record no mode honour `--mode`: it says whether outputs must equal the clear ones.)
    #[cfg_attr(not(feature = "tfhe-backend"), allow(dead_code))]
    pub fn check_loaded_keys(
        &self,
        dir: &std::path::Path,
        parameter_set: &str,
        mode: Option<sqnn::fhe::FheMode>,
    ) -> Result<()> {
        for id in &self.given {
            let flag = format!("--{}", id.replace('_', "-"));
            let honoured = match *id {
                "parameters" => self.parameters.as_deref() == Some(parameter_set),
                "mode" => mode.is_none_or(|m| m == self.mode),
                _ => false,
            };
            if honoured {
                continue;
            }
            return Err(sqnn::Error::param(
                "keys",
                format!(
                    "{flag} cannot apply to the keys loaded from {} (generated for \
                     {parameter_set}): keys fix the parameters and the reads; drop {flag}, or \
                     generate keys with it (`sqnn keygen CIRCUIT --out-dir DIR {flag} ...`) and \
                     run with those",
                    dir.display()
                ),
            ));
        }
        Ok(())
    }
    /// Refuses `--tolerance` and `--calibration-seeds` given where they cannot apply: they steer
    /// the choice by the accuracy kept on calibration rows, which only approximate mode makes,
    /// only when it chooses the set (no `--parameters`), and only with rows (`has_rows`).
    /// Unused, they were silently ignored. Then the other flags that steer one mode's plan only
    /// ([`check_mode_flags`](Self::check_mode_flags)).
    fn check_choice_flags(&self, has_rows: bool) -> Result<()> {
        for id in ["tolerance", "calibration_seeds"] {
            if !self.given.contains(&id) {
                continue;
            }
            let flag = format!("--{}", id.replace('_', "-"));
            let why = if self.mode == sqnn::fhe::FheMode::Exact {
                format!(
                    "--mode exact makes no such choice (exact reads are bit-identical to the \
                     clear backend's, there is nothing to tolerate): drop {flag}, or drop \
                     --mode exact for approximate reads"
                )
            } else if let Some(set) = &self.parameters {
                format!(
                    "--parameters {set} fixes the set, so none is chosen: drop {flag}, or drop \
                     --parameters and let the accuracy choose"
                )
            } else if !has_rows {
                format!(
                    "there are no calibration rows: {}, or drop {flag}",
                    self.rows_from
                )
            } else {
                continue;
            };
            return Err(sqnn::Error::param(
                id,
                format!(
                    "{flag} steers the choice of parameters by the accuracy kept on calibration \
                     rows, and here {why}"
                ),
            ));
        }
        self.check_mode_flags()
    }

    /// Refuses `--max-sigma` where approximate mode chooses no set (`--mode exact` chooses by
    /// the failure target alone, `--parameters` fixes the set), and `--extractions` and
    /// `--extraction-chunk-bits` in approximate mode (they place exact rounding's bootstraps,
    /// and approximate reads round nothing). Unused, they were silently ignored.
    fn check_mode_flags(&self) -> Result<()> {
        let exact = self.mode == sqnn::fhe::FheMode::Exact;
        if self.given.contains(&"max_sigma") {
            let why = if exact {
                Some(
                    "--mode exact chooses the set by the --p-error target alone (exact reads \
                     must be exact, so the noise is bounded by it): drop --max-sigma, or drop \
                     --mode exact for approximate reads"
                        .to_string(),
                )
            } else {
                self.parameters.as_ref().map(|set| {
                    format!(
                        "--parameters {set} fixes the set, so none is chosen: drop --max-sigma, \
                         or drop --parameters and let the guard choose"
                    )
                })
            };
            if let Some(why) = why {
                return Err(sqnn::Error::param(
                    "max_sigma",
                    format!(
                        "--max-sigma skips the sets whose read noise exceeds it when approximate \
                         mode chooses a set, and here {why}"
                    ),
                ));
            }
        }
        if exact {
            return Ok(());
        }
        match ["extractions", "extraction_chunk_bits"]
            .into_iter()
            .find(|id| self.given.contains(id))
        {
            None => Ok(()),
            Some(id) => {
                let flag = format!("--{}", id.replace('_', "-"));
                Err(sqnn::Error::param(
                    id,
                    format!(
                        "{flag} steers exact rounding (the bootstraps that clear a table's \
                         dropped bits before its exact read), and here the reads are \
                         approximate (--mode approximate, the default, also when the circuit \
                         records exact reads: a flag plans anew), which clear no bits: drop \
                         {flag}, or give --mode exact"
                    ),
                ))
            }
        }
    }

    /// Refuses the flags of this group given to a command that makes no plan here (`what`
    /// says why, `fix` what to do instead): unused, they were silently ignored. A flag that
    /// would be refused with the plan too (`has_rows`: whether the command took calibration
    /// rows) is refused first as such, so that following `fix` is not refused in turn.
    pub fn refuse_given(&self, has_rows: bool, what: &str, fix: &str) -> Result<()> {
        self.check_choice_flags(has_rows)?;
        match self.given.first() {
            None => Ok(()),
            Some(&id) => {
                let flag = format!("--{}", id.replace('_', "-"));
                Err(sqnn::Error::param(
                    id,
                    format!("{flag} chooses TFHE parameters, and {what}: drop {flag}, or {fix}"),
                ))
            }
        }
    }

    /// The plan these flags ask for, with this machine's cost profile when `sqnn calibrate`
    /// wrote one (on its cores), else the built-in figures (on theirs): never the running
    /// machine's core count, so reports are the same on any machine. In approximate mode
    /// chosen by the accuracy kept on `calibration`'s rows when given (else by the read-noise
    /// guard).
    pub fn plan(
        &self,
        an: &sqnn::analyze::Analyzed,
        calibration: Option<sqnn::fhe::Calibration>,
    ) -> Result<sqnn::fhe::FhePlan> {
        use sqnn::fhe::{self, ParamSetId, PlanFacts, PlanRequest};
        let set = match &self.parameters {
            Some(name) => Some(name.parse::<ParamSetId>()?),
            None => None,
        };
        self.check_choice_flags(calibration.is_some())?;
        let calibration = match calibration {
            Some(c) => {
                let c = c.tolerance(self.tolerance)?;
                Some(match self.calibration_seeds {
                    Some(n) => c.seeds(n)?,
                    None => c,
                })
            }
            None => None,
        };
        let max_sigma = match (&calibration, self.max_sigma) {
            (_, Some(s)) => Some(s),
            (None, None) => Some(FALLBACK_MAX_SIGMA),
            (Some(_), None) => None,
        };
        let extractions = match self.extractions.as_str() {
            "auto" => fhe::Extractions::Cheapest,
            "table-set" => fhe::Extractions::TableSet,
            name => fhe::Extractions::On(name.parse::<ParamSetId>()?),
        };
        let req = PlanRequest {
            set,
            max_sigma,
            calibration,
            extractions,
            extraction_chunk_bits: self.extraction_chunk_bits,
            ..self.cost_request()
        };
        fhe::plan(&PlanFacts::new(an), &req)
    }
}

/// This machine's cost profile, if `sqnn calibrate` wrote one (read once). A profile that
/// cannot be used (damaged, or from another sqnn version) is set aside with a note on standard
/// error: plans then use the built-in figures.
pub fn cost_profile() -> Option<sqnn::fhe::CostProfile> {
    static PROFILE: std::sync::OnceLock<Option<sqnn::fhe::CostProfile>> =
        std::sync::OnceLock::new();
    PROFILE
        .get_or_init(|| match sqnn::fhe::CostProfile::load_default() {
            Ok(p) => p,
            Err(e) => {
                eprintln!(
                    "note: {e}; until then, plans use the built-in cost figures of {}",
                    sqnn::fhe::builtin_date()
                );
                None
            }
        })
        .clone()
}

impl Default for FheArgs {
    /// The flags' defaults, none given.
    fn default() -> FheArgs {
        FheArgs {
            mode: sqnn::fhe::FheMode::Approximate,
            p_error: -40.0,
            tolerance: sqnn::fhe::Calibration::DEFAULT_TOLERANCE,
            calibration_seeds: None,
            max_sigma: None,
            parameters: None,
            extractions: "auto".into(),
            extraction_chunk_bits: None,
            given: Vec::new(),
            rows_from: "",
        }
    }
}

/// Where calibration rows come from: a data set and its split (the training rows are used).
#[derive(Clone, Copy)]
pub struct Rows<'a> {
    pub data: &'a Dataset,
    pub split: &'a Split,
}

impl FheArgs {
    /// The plan of `an`: the one its circuit records (`sqnn compile` chose it), unless a flag of
    /// this group was given or `asks` names another request for a new choice (e.g.
    /// `--data`); then, or when the circuit records none, a new plan (chosen by accuracy on
    /// `rows`' training rows when given), with a note on standard error saying why.
    pub fn plan_for(
        &self,
        an: &sqnn::analyze::Analyzed,
        asks: Option<&str>,
        rows: Option<Rows>,
    ) -> Result<sqnn::fhe::FhePlan> {
        // Before the note that says a new plan is made.
        self.check_choice_flags(rows.is_some())?;
        let mut why: Vec<String> = self
            .given
            .iter()
            .map(|id| format!("--{}", id.replace('_', "-")))
            .collect();
        why.extend(asks.map(str::to_string));
        let name = &an.graph().name;
        match &an.graph().plan {
            Some(r) if why.is_empty() => {
                return sqnn::fhe::recorded_plan(
                    &sqnn::fhe::PlanFacts::new(an),
                    r,
                    &self.cost_request(),
                );
            }
            Some(r) => eprintln!(
                "note: planning anew because of {} (circuit {name} records {}, {} reads)",
                why.join(", "),
                r.parameter_set,
                r.mode
            ),
            None => eprintln!(
                "note: circuit {name} records no plan (compiled before plans were recorded, or \
                 built by hand): planning now; recompiling the model records one"
            ),
        }
        let calibration = match rows {
            Some(r) => Some(calibration(an, r.data, r.split)?),
            None => None,
        };
        self.plan(an, calibration)
    }

    /// The request's costs: this machine's profile if there is one, else the built-in
    /// figures' cores.
    fn cost_request(&self) -> sqnn::fhe::PlanRequest {
        let base = sqnn::fhe::PlanRequest::new(self.mode).target(self.p_error);
        match cost_profile() {
            Some(p) => base.profile(p),
            None => base.cores(sqnn::fhe::builtin_cores()),
        }
    }
}

/// The read-noise guard (accumulator units) of a choice without calibration rows.
pub use sqnn::fhe::FALLBACK_MAX_SIGMA;

/// Calibration rows for the choice by accuracy: the training split of `data`, quantized for the
/// circuit (never the test rows).
pub fn calibration(
    an: &sqnn::analyze::Analyzed,
    ds: &Dataset,
    split: &Split,
) -> Result<sqnn::fhe::Calibration> {
    let train = ds.subset(&split.train);
    let inputs = an.graph().quantize_inputs(&train.x)?;
    sqnn::fhe::Calibration::new(an, &inputs, &train.y)
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BackendKind {
    /// Exact integer execution in clear.
    Clear,
    /// Clear execution with the misreads the chosen TFHE parameters would make (no keys).
    Simulate,
    /// Encrypted execution.
    Tfhe,
}

/// Which rows of the data set to run or evaluate on.
#[derive(Args, Clone)]
pub struct SplitArgs {
    /// Fraction of rows held out for testing (default 0.25).
    #[arg(long)]
    pub test_size: Option<f64>,
    /// Seed of the shuffled, stratified split (default 42).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Which rows are test rows: `auto` (Concrete ML's exact rows where they are recorded, i.e.
    /// scikit-learn's `train_test_split(test_size=0.25, stratify=y, random_state=42)` for iris,
    /// breast_cancer and diabetes, else `seeded`), `seeded` (sqnn's own stratified shuffle with
    /// --test-size and --seed), `concrete-ml`, or a JSON file {"train": [...], "test": [...]}.
    #[arg(long, default_value = "auto")]
    pub split: String,
    /// Target column of a CSV file (default: the last column).
    #[arg(long)]
    pub target: Option<String>,
    /// Task of a CSV file (default: inferred from the target column).
    #[arg(long, value_parser = task_parser())]
    pub task: Option<TaskKind>,
}

/// Loads a data set and picks its split.
pub fn load_split(data: &str, s: &SplitArgs) -> Result<(Dataset, Split)> {
    let ds = Dataset::load(data, s.target.as_deref(), s.task)?;
    let split = s.spec().split(&ds)?;
    Ok((ds, split))
}

/// Loads a data set for a circuit or model (`schema`), picks its split (on the data as read, so
/// the rows are those training used), and matches its columns by name and its labels by value
/// ([`Schema::conform`]); a match by position (no names recorded) is said on standard error.
/// With `trained` (the split the model was trained on, when recorded) and no split flag, the
/// data set the model was trained on is split as training split it; a split that would score
/// training rows (`Evaluate`) or calibrate on test rows (`Calibrate`) is refused.
pub fn load_split_for(
    data: &str,
    s: &SplitArgs,
    schema: &Schema,
    trained: Option<&TrainingRows>,
    usage: SplitUse,
) -> Result<(Dataset, Split)> {
    let ds = schema.load(data, s.target.as_deref(), s.task)?;
    let conformed = schema.conform(&ds)?;
    // The model's split on this data set, found once: taken as it is without split flags,
    // else the requested split is checked against it.
    let recorded = trained.and_then(|t| t.split_of(&ds).map(|sp| (t, sp)));
    let split = match recorded {
        Some((_, trained_split)) if !s.given() => trained_split,
        Some((t, trained_split)) => {
            let split = s.spec().split(&ds)?;
            t.check_against(&trained_split, &split, usage)?;
            split
        }
        None => s.spec().split(&ds)?,
    };
    if let Some(note) = conformed.columns.note() {
        eprintln!("note: {note}");
    }
    Ok((conformed.data, split))
}

/// `text` as one shell word: as it is when it holds only safe characters, else single-quoted.
pub fn shell_word(text: &str) -> String {
    let safe = |c: char| c.is_ascii_alphanumeric() || "_-./:=,+@%".contains(c);
    if !text.is_empty() && text.chars().all(safe) {
        text.to_string()
    } else {
        format!("'{}'", text.replace('\'', r"'\''"))
    }
}

impl SplitArgs {
    /// The flags given, as a command line shows them (each with a leading space): a printed
    /// command reads the same rows, target and task.
    pub fn flags(&self) -> String {
        let mut out = String::new();
        if let Some(t) = self.test_size {
            out.push_str(&format!(" --test-size {t}"));
        }
        if let Some(s) = self.seed {
            out.push_str(&format!(" --seed {s}"));
        }
        if self.split != "auto" {
            out.push_str(&format!(" --split {}", shell_word(&self.split)));
        }
        if let Some(t) = &self.target {
            out.push_str(&format!(" --target {}", shell_word(t)));
        }
        if let Some(t) = self.task {
            let name = match t {
                TaskKind::Classify => "classify",
                TaskKind::Regress => "regress",
            };
            out.push_str(&format!(" --task {name}"));
        }
        out
    }

    /// Whether a split flag was given (`--split` other than `auto`, `--test-size`, `--seed`).
    pub fn given(&self) -> bool {
        self.split != "auto" || self.test_size.is_some() || self.seed.is_some()
    }

    /// The split these flags ask for: `auto` with --test-size or --seed given is sqnn's seeded
    /// split.
    pub fn spec(&self) -> SplitSpec {
        let seeded = SplitSpec::Seeded {
            test_size: self.test_size.unwrap_or(SplitSpec::DEFAULT_TEST_SIZE),
            seed: self.seed.unwrap_or(SplitSpec::DEFAULT_SEED),
        };
        match self.split.as_str() {
            "auto" if self.test_size.is_none() && self.seed.is_none() => SplitSpec::Auto,
            "auto" | "seeded" => seeded,
            "concrete-ml" => SplitSpec::ConcreteMl,
            path => SplitSpec::File(PathBuf::from(path)),
        }
    }
}

/// The parser of `--task` (shared by the commands that read data).
fn task_parser() -> impl TypedValueParser<Value = TaskKind> {
    EnumValueParser::<TaskArg>::new().map(TaskKind::from)
}

/// `--task` values ([`TaskKind`]).
#[derive(Clone, Copy, ValueEnum)]
enum TaskArg {
    /// Classification: the target column holds class labels.
    Classify,
    /// Regression: the target column holds real values.
    Regress,
}

impl From<TaskArg> for TaskKind {
    fn from(a: TaskArg) -> TaskKind {
        match a {
            TaskArg::Classify => TaskKind::Classify,
            TaskArg::Regress => TaskKind::Regress,
        }
    }
}
