//! Prometheus metrics.
//!
//! [`Metrics`] observes every decision of the pipeline (I6) and renders the
//! Prometheus text format: decisions by client identity, domain, outcome
//! and tag (client identities are the ACL's, so the label set is small), a latency
//! histogram, requests in flight and shed, denied clients, and whatever the
//! store reports (commit and fsync latency, batch sizes).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use tidemark_core::AuditOutcome;
use tidemark_signer::{DecisionEvent, DecisionObserver};

/// Latency histogram bucket bounds, in seconds.
const BUCKETS: [f64; 12] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
];

/// What a decision is counted by: (client, domain, outcome, tag).
type DecisionKey = (String, String, &'static str, String);

/// A source of extra metric lines (the store's counters).
pub type ExtraMetrics = Arc<dyn Fn() -> Vec<(String, f64)> + Send + Sync>;

/// Decision counters and latency histogram.
#[derive(Default)]
pub struct Metrics {
    decisions: Mutex<BTreeMap<DecisionKey, u64>>,
    denied: Mutex<BTreeMap<&'static str, u64>>,
    buckets: [AtomicU64; BUCKETS.len()],
    latency_count: AtomicU64,
    latency_sum_ns: AtomicU64,
    extra: Mutex<Vec<ExtraMetrics>>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Metrics {
    /// Empty metrics.
    pub fn new() -> Arc<Self> {
        Arc::new(Metrics::default())
    }

    /// Adds a source of extra lines, rendered as gauges.
    pub fn add_source(&self, source: ExtraMetrics) {
        self.extra
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(source);
    }

    /// Counts a denied client (no grant, bad request, TLS refusal).
    pub fn count_denied(&self, reason: &'static str) {
        *self
            .denied
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(reason)
            .or_default() += 1;
    }

    /// Total decisions with `outcome`.
    pub fn total(&self, outcome: AuditOutcome) -> u64 {
        self.decisions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .filter(|((_, _, o, _), _)| *o == outcome.as_str())
            .map(|(_, n)| n)
            .sum()
    }

    /// The Prometheus text exposition.
    pub fn render(&self, in_flight: usize, shed: u64) -> String {
        let mut out = String::new();
        out.push_str(
            "# HELP tidemark_decisions_total Decisions by client, domain, outcome and tag.\n",
        );
        out.push_str("# TYPE tidemark_decisions_total counter\n");
        for ((client, domain, outcome, tag), n) in self
            .decisions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
        {
            let _ = writeln!(
                out,
                "tidemark_decisions_total{{client=\"{client}\",domain=\"{domain}\",outcome=\"{outcome}\",tag=\"{tag}\"}} {n}"
            );
        }
        out.push_str("# HELP tidemark_denied_total Requests denied before a decision.\n");
        out.push_str("# TYPE tidemark_denied_total counter\n");
        for (reason, n) in self
            .denied
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
        {
            let _ = writeln!(out, "tidemark_denied_total{{reason=\"{reason}\"}} {n}");
        }
        out.push_str("# HELP tidemark_decision_seconds Decision latency, lock to answer.\n");
        out.push_str("# TYPE tidemark_decision_seconds histogram\n");
        let mut cumulative = 0;
        for (bound, bucket) in BUCKETS.iter().zip(&self.buckets) {
            cumulative += bucket.load(Ordering::Relaxed);
            let _ = writeln!(
                out,
                "tidemark_decision_seconds_bucket{{le=\"{bound}\"}} {cumulative}"
            );
        }
        let count = self.latency_count.load(Ordering::Relaxed);
        let _ = writeln!(
            out,
            "tidemark_decision_seconds_bucket{{le=\"+Inf\"}} {count}"
        );
        let sum = self.latency_sum_ns.load(Ordering::Relaxed) as f64 / 1e9;
        let _ = writeln!(out, "tidemark_decision_seconds_sum {sum}");
        let _ = writeln!(out, "tidemark_decision_seconds_count {count}");
        out.push_str("# TYPE tidemark_in_flight gauge\n");
        let _ = writeln!(out, "tidemark_in_flight {in_flight}");
        out.push_str("# TYPE tidemark_shed_total counter\n");
        let _ = writeln!(out, "tidemark_shed_total {shed}");
        for source in self
            .extra
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
        {
            for (name, value) in source() {
                let _ = writeln!(out, "{name} {value}");
            }
        }
        out
    }
}

impl DecisionObserver for Metrics {
    fn observe(&self, event: &DecisionEvent<'_>) {
        let key = (
            event.client.to_string(),
            event.object.domain().to_string(),
            event.outcome.as_str(),
            event.tag.unwrap_or("").to_owned(),
        );
        *self
            .decisions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(key)
            .or_default() += 1;
        let secs = event.latency.as_secs_f64();
        if let Some(i) = BUCKETS.iter().position(|b| secs <= *b) {
            self.buckets[i].fetch_add(1, Ordering::Relaxed);
        }
        self.latency_count.fetch_add(1, Ordering::Relaxed);
        self.latency_sum_ns
            .fetch_add(event.latency.as_nanos() as u64, Ordering::Relaxed);
    }
}
