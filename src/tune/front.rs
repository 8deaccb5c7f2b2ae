//! The accuracy-versus-latency Pareto front and the recommended point on it.

use super::judge::Point;

/// Whether `a` dominates `b`: no slower, no less accurate, and better in one of the two.
pub fn dominates(a: &Point, b: &Point) -> bool {
    a.latency_ms <= b.latency_ms
        && a.metric >= b.metric
        && (a.latency_ms < b.latency_ms || a.metric > b.metric)
}

/// The indices of the points no other point dominates, fastest first. Of points with equal
/// latency and score, the first one found stays.
pub fn pareto_front(points: &[Point]) -> Vec<usize> {
    let mut front: Vec<usize> = (0..points.len())
        .filter(|&i| {
            let p = &points[i];
            !points.iter().enumerate().any(|(j, q)| {
                dominates(q, p) || (j < i && q.latency_ms == p.latency_ms && q.metric == p.metric)
            })
        })
        .collect();
    front.sort_by(|&a, &b| {
        points[a]
            .latency_ms
            .total_cmp(&points[b].latency_ms)
            .then(a.cmp(&b))
    });
    front
}

/// The tolerance the recommendation applies: `tolerance`, or `se_multiple` standard errors
/// of the best point of `front` ([`Point::metric_se`]) if that is more. With `se_multiple`
/// 1 this is the one-standard-error rule of cross-validation (Hastie, Tibshirani and
/// Friedman, *The Elements of Statistical Learning*, 7.10): of the models whose score is
/// within one standard error of the best, take the simplest, here the fastest; a difference
/// smaller than the score's own uncertainty is no reason to pay more bootstraps.
///
/// ```
/// use sqnn::tune::effective_tolerance;
/// assert_eq!(effective_tolerance(&[], &[], 0.01, 1.0), 0.01);
/// ```
pub fn effective_tolerance(
    points: &[Point],
    front: &[usize],
    tolerance: f64,
    se_multiple: f64,
) -> f64 {
    most_accurate(points, front).map_or(tolerance, |b| {
        tolerance.max(se_multiple * points[b].metric_se)
    })
}

/// The most accurate point of `front` (an index into `points`; of equal scores, the last).
/// `None` for an empty front.
pub fn most_accurate(points: &[Point], front: &[usize]) -> Option<usize> {
    front
        .iter()
        .copied()
        .max_by(|&a, &b| points[a].metric.total_cmp(&points[b].metric))
}

/// The recommended point of `front` (indices into `points`, fastest first): the fastest whose
/// score is within `tolerance` of the best score. `None` for an empty front.
pub fn recommend(points: &[Point], front: &[usize], tolerance: f64) -> Option<usize> {
    let best = points[most_accurate(points, front)?].metric;
    front
        .iter()
        .copied()
        .find(|&i| points[i].metric >= best - tolerance)
}

/// A judged point for tests: `config` at this latency and score, on the 4-bit set, one
/// bootstrap, every prediction as in clear.
#[cfg(test)]
pub(crate) fn point(config: super::Config, latency_ms: f64, metric: f64) -> Point {
    Point {
        config,
        parameter_set: crate::fhe::ParamSetId::ClassicMsg2Carry2,
        set_label: String::new(),
        metric,
        clear_metric: metric,
        metric_se: 0.0,
        agreement: 1.0,
        latency_ms,
        pbs_count: 1.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::EstimatorParams;
    use crate::tune::Config;

    fn pt(latency_ms: f64, metric: f64) -> Point {
        point(Config::of(&EstimatorParams::default()), latency_ms, metric)
    }

    #[test]
    fn front_and_recommendation() {
        let pts = vec![
            pt(100.0, 0.90),
            pt(50.0, 0.95), // dominates the first
            pt(200.0, 0.97),
            pt(300.0, 0.96), // dominated by the third
            pt(50.0, 0.95),  // a tie with the second: not repeated
            pt(20.0, 0.80),
        ];
        let front = pareto_front(&pts);
        assert_eq!(front, vec![5, 1, 2]);
        assert_eq!(recommend(&pts, &front, 0.0), Some(2));
        assert_eq!(recommend(&pts, &front, 0.02), Some(1));
        assert_eq!(recommend(&pts, &front, 0.5), Some(5));
        assert_eq!(recommend(&pts, &[], 0.1), None);
        // One standard error of the best (0.97 ± 0.02) reaches the 0.95 point.
        let mut se = pts.clone();
        se[2].metric_se = 0.02;
        let t = effective_tolerance(&se, &front, 0.01, 1.0);
        assert!((t - 0.02).abs() < 1e-12, "{t}");
        assert_eq!(recommend(&se, &front, t), Some(1));
        assert_eq!(effective_tolerance(&se, &front, 0.01, 0.0), 0.01);
        assert_eq!(effective_tolerance(&se, &front, 0.05, 1.0), 0.05);
    }
}
