//! `sqnn compile` and `sqnn check`: lower a model, prove its accumulators, draw and calibrate.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args;
use serde_json::json;

use sqnn::analyze::{analyze, Analyzed};
use sqnn::data::SplitUse;
use sqnn::fsio::check_output;
use sqnn::ir::IntGraph;
use sqnn::{report, Error, Result};

use crate::args::{load_split_for, FheArgs, Rows, SplitArgs};

#[derive(Args)]
pub struct CompileArgs {
    /// The model file written by `sqnn train` (or a circuit file: its plan is chosen and
    /// recorded again, the circuit unchanged).
    pub model: PathBuf,
    /// Where to write the circuit.
    #[arg(long)]
    pub out: PathBuf,
    /// Name recorded in the circuit (default: the model's data set name).
    #[arg(long)]
    pub name: Option<String>,
    /// Share of a neuron's accumulator values whose table output may change when lowering
    /// rounds the accumulator before the table (default 0: lossless rounding only, bit-exact
    /// with the model unless a table is wider than --max-table-bits).
    #[arg(long, default_value_t = sqnn::lower::Rounding::DEFAULT.tolerance)]
    pub round_tolerance: f64,
    /// Widest table index, bits: wider accumulators drop at least the extra low bits.
    #[arg(long, default_value_t = sqnn::lower::Rounding::DEFAULT.max_table_bits)]
    pub max_table_bits: u32,
    /// The data set whose training rows choose the TFHE plan recorded in the circuit, by the
    /// accuracy its reads keep (default: the data set the model was trained on, or a
    /// circuit's name; the test rows are never used). Give the split flags training used.
    #[arg(long)]
    pub data: Option<String>,
    #[command(flatten)]
    pub fhe: FheArgs,
    #[command(flatten)]
    pub split: SplitArgs,
}

#[derive(Args)]
pub struct CheckArgs {
    /// The circuit file.
    pub circuit: PathBuf,
    /// Print the report as JSON instead of text.
    #[arg(long)]
    pub json: bool,
    /// Also write the accumulator-width picture as SVG.
    #[arg(long)]
    pub svg: Option<PathBuf>,
    /// Also measure each accumulator's width on this data set's rows (what Concrete ML compiles
    /// for) and compare it with the proved worst case.
    #[arg(long)]
    pub calibrate: Option<String>,
    #[command(flatten)]
    pub fhe: FheArgs,
    #[command(flatten)]
    pub split: SplitArgs,
}

pub fn compile(a: &CompileArgs) -> Result<ExitCode> {
    check_output(&a.out, "out", &[&a.model])?;
    // A model is lowered; a circuit (compiled before) is planned again as it is.
    let (mut graph, trained_on) = match sqnn::train::Model::load(&a.model) {
        Ok(model) => {
            let name = a
                .name
                .clone()
                .unwrap_or_else(|| model.data_name().to_string());
            let rounding = sqnn::lower::Rounding::new(a.round_tolerance, a.max_table_bits)?;
            let graph = sqnn::lower::lower_model(&model, &name, rounding)?;
            (graph, model.data_name().to_string())
        }
        Err(not_a_model) => match IntGraph::load(&a.model) {
            Ok(mut graph) => {
                if let Some(name) = &a.name {
                    graph.name = name.clone();
                }
                let data = graph.name.clone();
                (graph, data)
            }
            Err(_) => return Err(not_a_model),
        },
    };
    let an = analyze(graph.clone())?;
    print!("{}", report::render_text(an.report()));
    if an.report().ok {
        // Broken input (the calibration data or split) is an error; a circuit that no
        // parameter set fits is reported, and compiled without a plan, unless a plan flag asked
        // for the plan that cannot be made.
        match compile_plan(a, &an, &trained_on)? {
            // A flag the planner refuses (`--parameters` not in the catalogue, `--p-error NaN`)
            // is broken input too: the circuit is not written without the plan asked for.
            Err(e) if !matches!(e, Error::Backend(_)) => return Err(e),
            // Nor when a flag asked for a plan no set can make (`--mode exact` on accumulators
            // too wide for exact reads): written without one, keygen and run would plan the
            // default request (approximate reads) instead, after an exit 0 here.
            Err(e) if !a.fhe.given.is_empty() => return Err(unplannable(a, e)),
            Ok((plan, chosen_by)) => {
                print!("{}", sqnn::fhe::render_plan(&plan));
                graph.plan = Some(sqnn::ir::PlanRecord {
                    chosen_by,
                    ..plan.record()
                });
            }
            Err(e) => {
                println!("TFHE: {e}");
                for h in crate::hint::hints(&e) {
                    println!("hint: {h}");
                }
                println!("(no plan recorded: keygen and run plan when they run)");
            }
        }
    }
    graph.save(&a.out)?;
    println!("wrote {}", a.out.display());
    Ok(if an.report().ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// Why `compile` writes nothing when the plan its flags ask for cannot be made: the planner's
/// reason and fix (`e`), and the other ways out.
fn unplannable(a: &CompileArgs, e: Error) -> Error {
    let fhe = &a.fhe;
    let flags: Vec<String> = fhe
        .given
        .iter()
        .map(|id| match *id {
            "mode" => format!("--mode {}", fhe.mode),
            "parameters" => format!("--parameters {}", fhe.parameters.as_deref().unwrap_or("")),
            id => format!("--{}", id.replace('_', "-")),
        })
        .collect();
    let why = match e {
        Error::Backend(message) => message,
        e => e.to_string(),
    };
    let exact = if fhe.mode == sqnn::fhe::FheMode::Exact {
        "; or drop --mode exact for approximate reads"
    } else {
        ""
    };
    Error::Backend(format!(
        "not writing {}: no parameter set can make the plan asked for ({}): {why}{exact}. \
         (Without plan flags, compile reports this and writes the circuit without a plan; \
         keygen and run then plan approximate reads.)",
        a.out.display(),
        flags.join(", ")
    ))
}

/// The plan `compile` records, and how it was chosen: by accuracy on the training rows of
/// `--data` (default: the model's data set, `trained_on`); without them (the model's data set
/// cannot be loaded here), by the read-noise guard, said on standard error. The outer error is
/// broken input (data, split), the inner one a plan that cannot be made.
fn compile_plan(
    a: &CompileArgs,
    an: &Analyzed,
    trained_on: &str,
) -> Result<Result<(sqnn::fhe::FhePlan, String)>> {
    let data = a.data.as_deref().unwrap_or(trained_on);
    let loaded = load_split_for(
        data,
        &a.split,
        &an.graph().schema(),
        an.graph().meta.training_rows.as_ref(),
        SplitUse::Calibrate,
    );
    let (cal, how) = match loaded {
        Ok((ds, sp)) => (
            Some(crate::args::calibration(an, &ds, &sp)?),
            format!(
                "calibration rows: the training split of {}, tolerance {}",
                ds.name, a.fhe.tolerance
            ),
        ),
        Err(e) if a.data.is_none() && !a.split.given() => {
            eprintln!(
                "note: the model's data set {data:?} cannot be loaded here ({e}): the plan is \
                 chosen without calibration rows (give --data to choose it by accuracy)"
            );
            (
                None,
                format!(
                    "no calibration rows: read-noise guard of {} units",
                    a.fhe.max_sigma.unwrap_or(crate::args::FALLBACK_MAX_SIGMA)
                ),
            )
        }
        Err(e) => return Err(e),
    };
    Ok(a.fhe.plan(an, cal).map(|plan| {
        let chosen_by = format!("{} [{how}]", plan.describe_choice());
        (plan, chosen_by)
    }))
}

pub fn check(a: &CheckArgs) -> Result<ExitCode> {
    if let Some(svg) = &a.svg {
        let data = a.calibrate.as_deref().map(Path::new);
        let inputs: Vec<&Path> = [Some(a.circuit.as_path()), data]
            .into_iter()
            .flatten()
            .collect();
        check_output(svg, "svg", &inputs)?;
    }
    let an = analyze(IntGraph::load(&a.circuit)?)?;
    let r = an.report();
    if a.json {
        a.fhe.refuse_given(
            a.calibrate.is_some(),
            "check --json prints the accumulator report alone, without a plan",
            "drop --json to see the plan it gives",
        )?;
        println!("{}", report::render_json(r));
    } else {
        print!("{}", report::render_text(r));
        // With a data set, the plan is chosen anew by the accuracy kept on its training rows;
        // else it is the circuit's recorded plan.
        let rows = match &a.calibrate {
            Some(data) if r.ok => Some(load_split_for(
                data,
                &a.split,
                &an.graph().schema(),
                an.graph().meta.training_rows.as_ref(),
                SplitUse::Calibrate,
            )?),
            _ => None,
        };
        let rows = rows.as_ref().map(|(data, split)| Rows { data, split });
        print_fhe_plan(
            &an,
            &a.fhe,
            a.calibrate.as_ref().map(|_| "--calibrate"),
            rows,
        )?;
    }
    if let Some(data) = &a.calibrate {
        calibrate(&an, data, &a.split, a.json)?;
    }
    if let Some(svg) = &a.svg {
        let picture = report::render_svg(r);
        sqnn::fsio::write_atomic(svg, picture.as_bytes(), sqnn::fsio::Secrecy::Public)?;
        if !a.json {
            println!("picture: {}", svg.display());
        }
    }
    Ok(if r.ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// Widths measured on data (Concrete ML's way) against the proved ones.
pub fn calibrate(an: &Analyzed, data: &str, split: &SplitArgs, json: bool) -> Result<()> {
    let (ds, sp) = load_split_for(
        data,
        split,
        &an.graph().schema(),
        an.graph().meta.training_rows.as_ref(),
        SplitUse::Calibrate,
    )?;
    let train = ds.subset(&sp.train);
    let inputs = an.graph().quantize_inputs(&train.x)?;
    let cal = sqnn::execute::calibrate(an, &inputs)?;
    if json {
        let per: Vec<_> = cal
            .neurons
            .iter()
            .map(|n| {
                let (p, m) = (n.proved, n.measured);
                json!({"node": n.node, "layer": n.layer, "neuron": n.neuron,
                "proved_bits": p.range_bits(), "measured_bits": m.range_bits(),
                "proved": [p.lo, p.hi], "measured": [m.lo, m.hi]})
            })
            .collect();
        println!(
            "{}",
            json!({"calibration_samples": cal.samples, "neurons": per,
            "neurons_wider_than_measured": cal.wider_than_measured().count()})
        );
        return Ok(());
    }
    println!(
        "\ncalibration on {} training rows of {} (what a measuring compiler would see):",
        cal.samples, ds.name
    );
    println!("layer  proved bits max  measured bits max  neurons whose proof needs more bits");
    for l in &an.report().layers {
        let more = cal.of_layer(l.layer).filter(|n| n.extra_bits() > 0).count();
        println!(
            "{:<5}  {:>15}  {:>17}  {more} of {}",
            l.layer,
            l.range_bits_max,
            cal.measured_bits_max(l.layer),
            cal.of_layer(l.layer).count()
        );
    }
    if let Some(n) = cal.wider_than_measured().max_by_key(|n| n.extra_bits()) {
        let (p, m) = (n.proved, n.measured);
        println!(
            "e.g. layer {} neuron {}: data reaches [{}, {}] ({} bits), the proved worst case is [{}, {}] ({} bits)",
            n.layer, n.neuron, m.lo, m.hi, m.range_bits(), p.lo, p.hi, p.range_bits()
        );
    }
    Ok(())
}

/// Prints the plan, or why no parameter set holds the circuit; a flag the planner refuses is
/// an error (exit 2).
pub fn print_fhe_plan(
    an: &Analyzed,
    fhe: &FheArgs,
    asks: Option<&str>,
    rows: Option<Rows>,
) -> Result<()> {
    if !an.report().ok {
        return Ok(());
    }
    match fhe.plan_for(an, asks, rows) {
        Ok(plan) => print!("{}", sqnn::fhe::render_plan(&plan)),
        Err(e) if !matches!(e, Error::Backend(_)) => return Err(e),
        Err(e) => {
            println!("TFHE: {e}");
            for h in crate::hint::hints(&e) {
                println!("hint: {h}");
            }
        }
    }
    Ok(())
}
