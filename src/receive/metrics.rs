//! What `GET /metrics` reports, in the OpenMetrics text format Prometheus
//! scrapes (through the `prometheus-client` crate): requests by route and
//! status, refusals of callbacks and of reads by reason, request duration,
//! and the log and index positions.

use std::sync::atomic::AtomicU64;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// What `/metrics` is served as.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteStatus {
    route: &'static str,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Reason {
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Route {
    route: &'static str,
}

pub struct Metrics {
    registry: Registry,
    requests: Family<RouteStatus, Counter>,
    refused: Family<Reason, Counter>,
    reads_refused: Family<Reason, Counter>,
    duration: Family<Route, Histogram>,
    log_lines: Gauge<u64, AtomicU64>,
    index_lines: Gauge<u64, AtomicU64>,
    index_lag: Gauge<u64, AtomicU64>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("spawn_elite_receiver");
        let requests = Family::<RouteStatus, Counter>::default();
        let refused = Family::<Reason, Counter>::default();
        let reads_refused = Family::<Reason, Counter>::default();
        // 0.5 ms to about 8 s.
        let duration = Family::<Route, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.0005, 2.0, 15))
        });
        let log_lines = Gauge::<u64, AtomicU64>::default();
        let index_lines = Gauge::<u64, AtomicU64>::default();
        let index_lag = Gauge::<u64, AtomicU64>::default();
        registry.register(
            "requests",
            "HTTP requests answered, by route and status",
            requests.clone(),
        );
        registry.register(
            "callbacks_refused",
            "Callbacks refused, by reason",
            refused.clone(),
        );
        registry.register(
            "reads_refused",
            "Reads of the fleet refused, by reason",
            reads_refused.clone(),
        );
        registry.register(
            "request_duration_seconds",
            "Time from a request's head to its answer, by route",
            duration.clone(),
        );
        registry.register(
            "log_lines",
            "Lines in the hash-chained log",
            log_lines.clone(),
        );
        registry.register(
            "index_lines",
            "Log lines the registry index has taken in",
            index_lines.clone(),
        );
        registry.register(
            "index_lag_lines",
            "Log lines the registry index has not taken in yet",
            index_lag.clone(),
        );
        Metrics {
            registry,
            requests,
            refused,
            reads_refused,
            duration,
            log_lines,
            index_lines,
            index_lag,
        }
    }

    /// One answered request.
    pub fn observe(&self, route: &'static str, status: u16, took: Duration) {
        self.requests
            .get_or_create(&RouteStatus { route, status })
            .inc();
        self.duration
            .get_or_create(&Route { route })
            .observe(took.as_secs_f64());
    }

    /// One refused callback, by a reason from [`refusal_reason`].
    pub fn refused(&self, reason: &'static str) {
        self.refused.get_or_create(&Reason { reason }).inc();
    }

    /// One refused read of the fleet (a signature missing or not a
    /// reader's: `signature`).
    pub fn read_refused(&self, reason: &'static str) {
        self.reads_refused.get_or_create(&Reason { reason }).inc();
    }

    /// The text of `/metrics`, with the log and index positions as of now.
    pub fn render(&self, log_lines: u64, index_lines: u64) -> String {
        self.log_lines.set(log_lines);
        self.index_lines.set(index_lines);
        self.index_lag.set(log_lines.saturating_sub(index_lines));
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

/// The reason label of a refused callback: its status, named. The message
/// itself goes to the log, not into a label (labels must stay few).
pub fn refusal_reason(status: u16) -> &'static str {
    match status {
        400 => "malformed",
        401 => "signature",
        405 => "method",
        408 => "timeout",
        409 => "replay",
        413 => "too_large",
        500 => "log_write",
        _ => "other",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_text_has_counters_histogram_and_positions() {
        let m = Metrics::new();
        m.observe("callback", 204, Duration::from_millis(3));
        m.observe("repos", 200, Duration::from_millis(1));
        m.refused(refusal_reason(401));
        let text = m.render(10, 7);
        assert!(
            text.contains(
                "spawn_elite_receiver_requests_total{route=\"callback\",status=\"204\"} 1"
            ),
            "{text}"
        );
        assert!(
            text.contains("spawn_elite_receiver_callbacks_refused_total{reason=\"signature\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("spawn_elite_receiver_index_lag_lines 3"),
            "{text}"
        );
        assert!(text.contains("spawn_elite_receiver_log_lines 10"), "{text}");
        assert!(
            text.contains("spawn_elite_receiver_request_duration_seconds_count{route=\"repos\"} 1"),
            "{text}"
        );
        assert!(text.ends_with("# EOF\n"), "{text}");
    }
}
