//! This machine's bootstrap costs ([`measure_costs`]): what `sqnn calibrate` writes as a
//! [`CostProfile`]. It times `tfhe`'s keyswitch + bootstrap with fresh keys made for the
//! measurement and dropped after it; it reads nothing secret (no decryption, no noise).

use std::collections::BTreeMap;
use std::time::Instant;

use rayon::prelude::*;

use super::params::tfhe_parameters;
use crate::error::{Error, Result};
use crate::fhe::{CostProfile, ParamSetId, SetCost};
use crate::progress::Progress;

/// Measures every set of `sets`: `bootstraps` keyswitch + bootstrap one at a time on the
/// calling thread (after one to warm up; the median is kept), then `bootstraps` rounds of one
/// per rayon thread at once (the median round's time per bootstrap). Keys are generated per set
/// (about 1 s for the 2- and 4-bit sets, 12 s for the 6-bit ones here) and dropped before the
/// next. `progress` advances by one per bootstrap and says which set it is on. `date` is the
/// profile's (ISO, `YYYY-MM-DD`).
///
/// Errors: `bootstraps` is 0, a set cannot be built, or a set is not selectable (the 8-bit set
/// needs 11 GB of keys).
pub fn measure_costs(
    sets: &[ParamSetId],
    bootstraps: usize,
    date: String,
    progress: &dyn Progress,
) -> Result<CostProfile> {
    if bootstraps == 0 {
        return Err(Error::param("bootstraps", "must be at least 1"));
    }
    if let Some(id) = sets.iter().find(|id| !id.set().selectable) {
        return Err(Error::param(
            "parameters",
            format!("{id} is not selectable (too large to measure here): leave it out"),
        ));
    }
    let threads = rayon::current_num_threads().max(1);
    let per_set = crate::cast::to_u64(bootstraps + 1 + bootstraps * threads);
    progress.start(
        &format!("timing bootstraps of {} parameter sets", sets.len()),
        per_set * crate::cast::to_u64(sets.len()),
    );
    let mut out = BTreeMap::new();
    for (i, id) in sets.iter().enumerate() {
        let set = id.set();
        progress.message(&format!(
            "{}/{}: {} keys for {}",
            i + 1,
            sets.len(),
            set.label(),
            set.name
        ));
        let params = tfhe_parameters(set)?;
        let cks = ::tfhe::shortint::ClientKey::new(params);
        let sks = ::tfhe::shortint::ServerKey::new(&cks);
        let lut = sks.generate_lookup_table(|x| x);
        let ct = cks.unchecked_encrypt(1);
        let one = || {
            let t = Instant::now();
            let _ = std::hint::black_box(sks.apply_lookup_table(&ct, &lut));
            t.elapsed().as_secs_f64() * 1e3
        };
        progress.message(&format!(
            "{}/{}: {} set, one at a time",
            i + 1,
            sets.len(),
            set.label()
        ));
        one();
        progress.advance(1);
        let mut alone: Vec<f64> = (0..bootstraps)
            .map(|_| {
                let ms = one();
                progress.advance(1);
                ms
            })
            .collect();
        alone.sort_by(f64::total_cmp);
        progress.message(&format!(
            "{}/{}: {} set, {threads} at once",
            i + 1,
            sets.len(),
            set.label()
        ));
        // Rounds of one bootstrap per thread, as a layer's bootstraps run; the median round
        // (a single timing of them all moved by a third from one run to the next here).
        let mut rounds: Vec<f64> = (0..bootstraps)
            .map(|_| {
                let t = Instant::now();
                (0..threads).into_par_iter().for_each(|_| {
                    let _ = std::hint::black_box(sks.apply_lookup_table(&ct, &lut));
                    progress.advance(1);
                });
                t.elapsed().as_secs_f64() * 1e3
            })
            .collect();
        rounds.sort_by(f64::total_cmp);
        out.insert(
            *id,
            SetCost {
                pbs_ms_alone: alone[alone.len() / 2],
                pbs_ms_all_threads: rounds[rounds.len() / 2] / threads as f64,
                samples: bootstraps,
            },
        );
    }
    progress.finish();
    Ok(CostProfile::new(date, threads, out))
}
