//! `GET /v1/metrics`: Prometheus text (requests by route and status, bootstraps, queue depth,
//! latency histogram), with `prometheus-client`.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

/// A request's route (its pattern, not its path) and status.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteStatus {
    /// The route pattern, e.g. `/v1/circuits/{name}/evaluate`.
    pub route: String,
    /// The HTTP status code.
    pub status: u16,
}

/// A request's route.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Route {
    /// The route pattern.
    pub route: String,
}

/// The server's metrics.
pub struct Metrics {
    registry: Registry,
    /// Requests answered, by route and status.
    pub requests: Family<RouteStatus, Counter>,
    /// Request latency in seconds, by route.
    pub latency: Family<Route, Histogram>,
    /// Bootstraps run.
    pub bootstraps: Counter,
    /// Encrypted samples evaluated.
    pub samples: Counter,
    /// Requests waiting for a worker.
    pub queue_depth: Gauge,
    /// Requests a worker is running.
    pub in_flight: Gauge,
    /// Requests refused because the queue was full.
    pub rejected: Counter,
    /// Bytes of decompressed keys in memory.
    pub cached_key_bytes: Gauge,
}

impl Metrics {
    /// Registers every metric under the `sqnn_` prefix.
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("sqnn");
        let requests = Family::<RouteStatus, Counter>::default();
        let latency = Family::<Route, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.001, 2.0, 18))
        });
        let m = Metrics {
            bootstraps: Counter::default(),
            samples: Counter::default(),
            queue_depth: Gauge::default(),
            in_flight: Gauge::default(),
            rejected: Counter::default(),
            cached_key_bytes: Gauge::default(),
            requests: requests.clone(),
            latency: latency.clone(),
            registry: Registry::default(),
        };
        registry.register("requests", "HTTP requests answered", requests);
        registry.register("request_duration_seconds", "HTTP request latency", latency);
        registry.register(
            "bootstraps",
            "Programmable bootstraps run",
            m.bootstraps.clone(),
        );
        registry.register("samples", "Encrypted samples evaluated", m.samples.clone());
        registry.register(
            "queue_depth",
            "Evaluations waiting for a worker",
            m.queue_depth.clone(),
        );
        registry.register("in_flight", "Evaluations running", m.in_flight.clone());
        registry.register(
            "rejected",
            "Requests refused with 503 because the queue was full",
            m.rejected.clone(),
        );
        registry.register(
            "cached_key_bytes",
            "Bytes of decompressed evaluation keys in memory",
            m.cached_key_bytes.clone(),
        );
        Metrics { registry, ..m }
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}
