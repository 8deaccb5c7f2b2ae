//! The bounded worker pool: at most `workers` evaluations run at once (each on the blocking
//! thread pool, its bootstraps on rayon), at most `queue` wait; past that a request is refused
//! at once (503 with `Retry-After`) instead of piling up work.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use prometheus_client::metrics::gauge::Gauge;
use tokio::sync::Semaphore;

use super::metrics::Metrics;

/// Why a job did not run.
#[derive(Debug)]
pub enum Refused {
    /// Every worker busy and the queue full.
    Full,
    /// Waiting plus running took longer than the timeout.
    TimedOut,
    /// The job panicked (a bug).
    Panicked,
}

pub struct Pool {
    permits: Arc<Semaphore>,
    pending: AtomicUsize,
    capacity: usize,
    metrics: Arc<Metrics>,
}

/// Counts a request as pending until dropped.
struct PendingGuard<'a>(&'a Pool);

impl Drop for PendingGuard<'_> {
    fn drop(&mut self) {
        self.0.pending.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Holds a gauge one up until dropped (also when a waiting future is cancelled).
struct GaugeGuard(Gauge);

impl GaugeGuard {
    fn up(g: &Gauge) -> GaugeGuard {
        g.inc();
        GaugeGuard(g.clone())
    }
}

impl Drop for GaugeGuard {
    fn drop(&mut self) {
        self.0.dec();
    }
}

impl Pool {
    pub fn new(workers: usize, queue: usize, metrics: Arc<Metrics>) -> Pool {
        Pool {
            permits: Arc::new(Semaphore::new(workers)),
            pending: AtomicUsize::new(0),
            capacity: workers.saturating_add(queue),
            metrics,
        }
    }

    /// Runs `job` on a worker within `timeout` (waiting included).
    pub async fn run<T: Send + 'static>(
        &self,
        timeout: Duration,
        job: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, Refused> {
        if self.pending.fetch_add(1, Ordering::SeqCst) >= self.capacity {
            self.pending.fetch_sub(1, Ordering::SeqCst);
            self.metrics.rejected.inc();
            return Err(Refused::Full);
        }
        let _pending = PendingGuard(self);
        let metrics = Arc::clone(&self.metrics);
        let work = async move {
            let waiting = GaugeGuard::up(&metrics.queue_depth);
            let permit = Arc::clone(&self.permits).acquire_owned().await;
            drop(waiting);
            let Ok(permit) = permit else {
                return Err(Refused::Panicked);
            };
            let running = GaugeGuard::up(&metrics.in_flight);
            // The permit moves into the job: a job that outlives its request's timeout still
            // holds its worker, so the pool never runs more than `workers` jobs.
            let handle = tokio::task::spawn_blocking(move || {
                let out = job();
                drop((running, permit));
                out
            });
            handle.await.map_err(|_| Refused::Panicked)
        };
        match tokio::time::timeout(timeout, work).await {
            Ok(r) => r,
            Err(_) => Err(Refused::TimedOut),
        }
    }
}
