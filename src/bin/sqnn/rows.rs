//! Rows of new samples to predict (`--rows FILE.csv`), for `sqnn run` and `sqnn client`, and
//! the predictions file (`--out`).

use std::path::Path;

use sqnn::ir::IntGraph;
use sqnn::{fsio, Error, Result};

use crate::args::SplitArgs;

/// Quantized rows, and their targets when the file has them.
pub type Chosen = (Vec<Vec<i64>>, Option<Vec<f64>>);

/// The first `samples` rows (all by default) of the CSV file `path`, quantized for `graph`:
/// its feature columns by name, a target column if present ([`sqnn::data::Schema::load_rows`]).
/// `verb` says what the command does with them, for the message that refuses split flags.
pub fn load(
    graph: &IntGraph,
    path: &Path,
    split: &SplitArgs,
    samples: Option<usize>,
    verb: &str,
) -> Result<Chosen> {
    if split.split != "auto" || split.test_size.is_some() || split.seed.is_some() {
        return Err(Error::param(
            "split",
            format!(
                "--split, --test-size and --seed choose the test rows of --data; --rows {verb} \
                 the rows of its file (the first --samples): drop them"
            ),
        ));
    }
    let rows = graph
        .schema()
        .load_rows(path, split.target.as_deref(), graph.n_features())?;
    if let Some(note) = rows.columns.note() {
        eprintln!("note: {note}");
    }
    let n = samples.unwrap_or(usize::MAX).min(rows.x.nrows());
    let x = rows.x.slice(ndarray::s![..n, ..]).to_owned();
    let y = rows.y.map(|y| y[..n].to_vec());
    Ok((graph.quantize_inputs(&x)?, y))
}

/// Writes `row,prediction[,target]` (labels for classes) to `path`, atomically.
pub fn write_predictions(
    path: &Path,
    g: &IntGraph,
    preds: &[f64],
    y: Option<&[f64]>,
) -> Result<()> {
    let mut w = csv::Writer::from_writer(Vec::new());
    let csv_err = |e: csv::Error| Error::Input(format!("cannot write the predictions: {e}"));
    let mut header = vec!["row", "prediction"];
    if y.is_some() {
        header.push("target");
    }
    w.write_record(&header).map_err(csv_err)?;
    for (i, p) in preds.iter().enumerate() {
        let mut rec = vec![i.to_string(), g.prediction_label(*p)];
        if let Some(y) = y {
            rec.push(g.prediction_label(y[i]));
        }
        w.write_record(&rec).map_err(csv_err)?;
    }
    let bytes = w
        .into_inner()
        .map_err(|e| Error::Input(format!("cannot write the predictions: {e}")))?;
    fsio::write_atomic(path, &bytes, fsio::Secrecy::OwnerOnly)
}
