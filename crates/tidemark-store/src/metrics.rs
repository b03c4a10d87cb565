//! Counters and histograms of the store, as plain atomics.
//!
//! The store only counts; a server reads a [`MetricsSnapshot`] and exports
//! it (to Prometheus, say). Histograms have power-of-two buckets: bucket
//! `i` counts values `v` with `2^(i-1) < v <= 2^i` (bucket 0: `v <= 1`),
//! the last bucket everything above.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Buckets of the batch-size histogram: up to 2^11 = 2048, then overflow.
pub(crate) const BATCH_SIZE_BUCKETS: usize = 13;
/// Buckets of the latency histograms, in microseconds: up to 2^25 µs
/// (about 33 s), then overflow.
pub(crate) const LATENCY_BUCKETS: usize = 27;

#[derive(Debug)]
pub(crate) struct Histogram<const N: usize> {
    buckets: [AtomicU64; N],
    sum: AtomicU64,
    max: AtomicU64,
}

impl<const N: usize> Histogram<N> {
    fn new() -> Self {
        Histogram {
            buckets: std::array::from_fn(|_| AtomicU64::new(0)),
            sum: AtomicU64::new(0),
            max: AtomicU64::new(0),
        }
    }

    pub(crate) fn record(&self, value: u64) {
        let index = if value <= 1 {
            0
        } else {
            (64 - (value - 1).leading_zeros()) as usize
        };
        if let Some(bucket) = self.buckets.get(index.min(N - 1)) {
            bucket.fetch_add(1, Ordering::Relaxed);
        }
        self.sum.fetch_add(value, Ordering::Relaxed);
        self.max.fetch_max(value, Ordering::Relaxed);
    }

    pub(crate) fn record_duration(&self, d: Duration) {
        self.record(u64::try_from(d.as_micros()).unwrap_or(u64::MAX));
    }

    fn snapshot(&self) -> HistogramSnapshot {
        let counts: Vec<u64> = self
            .buckets
            .iter()
            .map(|b| b.load(Ordering::Relaxed))
            .collect();
        HistogramSnapshot {
            count: counts.iter().sum(),
            counts,
            sum: self.sum.load(Ordering::Relaxed),
            max: self.max.load(Ordering::Relaxed),
        }
    }
}

/// A histogram read at one instant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistogramSnapshot {
    /// Count per bucket; bucket `i` holds values up to `2^i`, the last one
    /// everything larger.
    pub counts: Vec<u64>,
    /// Number of values recorded.
    pub count: u64,
    /// Sum of the values.
    pub sum: u64,
    /// Largest value recorded.
    pub max: u64,
}

impl HistogramSnapshot {
    /// The inclusive upper bound of bucket `i` (`u64::MAX` for the last).
    pub fn upper_bound(&self, i: usize) -> u64 {
        if i + 1 >= self.counts.len() {
            u64::MAX
        } else {
            1u64 << i
        }
    }

    /// An upper estimate of quantile `q` (0.0..=1.0): the bound of the
    /// bucket it falls in, capped at the maximum seen. 0 when empty.
    pub fn quantile(&self, q: f64) -> u64 {
        if self.count == 0 {
            return 0;
        }
        let rank = ((q.clamp(0.0, 1.0) * self.count as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (i, c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return self.upper_bound(i).min(self.max);
            }
        }
        self.max
    }
}

/// The live counters.
#[derive(Debug)]
pub(crate) struct Metrics {
    pub(crate) batches: AtomicU64,
    pub(crate) failed_batches: AtomicU64,
    pub(crate) commits: AtomicU64,
    pub(crate) conflicts: AtomicU64,
    pub(crate) invalid: AtomicU64,
    pub(crate) failed_commits: AtomicU64,
    pub(crate) audit_written: AtomicU64,
    pub(crate) audit_dropped: AtomicU64,
    pub(crate) last_batch_size: AtomicU64,
    pub(crate) max_batch_size: AtomicU64,
    pub(crate) checkpoints: AtomicU64,
    pub(crate) failed_checkpoints: AtomicU64,
    pub(crate) batch_sizes: Histogram<BATCH_SIZE_BUCKETS>,
    pub(crate) batch_latency_us: Histogram<LATENCY_BUCKETS>,
    pub(crate) commit_latency_us: Histogram<LATENCY_BUCKETS>,
}

impl Metrics {
    pub(crate) fn new() -> Self {
        Metrics {
            batches: AtomicU64::new(0),
            failed_batches: AtomicU64::new(0),
            commits: AtomicU64::new(0),
            conflicts: AtomicU64::new(0),
            invalid: AtomicU64::new(0),
            failed_commits: AtomicU64::new(0),
            audit_written: AtomicU64::new(0),
            audit_dropped: AtomicU64::new(0),
            last_batch_size: AtomicU64::new(0),
            max_batch_size: AtomicU64::new(0),
            checkpoints: AtomicU64::new(0),
            failed_checkpoints: AtomicU64::new(0),
            batch_sizes: Histogram::new(),
            batch_latency_us: Histogram::new(),
            commit_latency_us: Histogram::new(),
        }
    }

    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self) -> MetricsSnapshot {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        MetricsSnapshot {
            batches: get(&self.batches),
            failed_batches: get(&self.failed_batches),
            commits: get(&self.commits),
            conflicts: get(&self.conflicts),
            invalid_writes: get(&self.invalid),
            failed_commits: get(&self.failed_commits),
            audit_written: get(&self.audit_written),
            audit_dropped: get(&self.audit_dropped),
            last_batch_size: get(&self.last_batch_size),
            max_batch_size: get(&self.max_batch_size),
            checkpoints: get(&self.checkpoints),
            failed_checkpoints: get(&self.failed_checkpoints),
            batch_sizes: self.batch_sizes.snapshot(),
            batch_latency_us: self.batch_latency_us.snapshot(),
            commit_latency_us: self.commit_latency_us.snapshot(),
        }
    }
}

/// The store's counters at one instant.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct MetricsSnapshot {
    /// Write transactions attempted (each is one fsync when it commits).
    pub batches: u64,
    /// Write transactions that failed and were rolled back.
    pub failed_batches: u64,
    /// Commits made durable (a `commit_all` counts once, however many
    /// objects it writes: one decision, one audit record).
    pub commits: u64,
    /// Commits refused by compare-and-swap (a `commit_all` counts once,
    /// however many of its writes are stale).
    pub conflicts: u64,
    /// Commits or audit entries refused as malformed (an empty
    /// `commit_all` or one naming an object twice included).
    pub invalid_writes: u64,
    /// Commits that failed with their batch (full, corrupt, I/O) or on a
    /// corrupt row.
    pub failed_commits: u64,
    /// Audit records written (with commits and alone).
    pub audit_written: u64,
    /// Audit-only entries lost because their batch failed.
    pub audit_dropped: u64,
    /// Requests in the last batch.
    pub last_batch_size: u64,
    /// Requests in the largest batch so far.
    pub max_batch_size: u64,
    /// WAL checkpoints run.
    pub checkpoints: u64,
    /// WAL checkpoints that failed (the WAL keeps the data; they retry).
    pub failed_checkpoints: u64,
    /// Requests per batch.
    pub batch_sizes: HistogramSnapshot,
    /// Time of one batch transaction, BEGIN to durable COMMIT, in µs.
    pub batch_latency_us: HistogramSnapshot,
    /// Time a caller waits in `commit` or `commit_all`, from call to durable
    /// answer, in µs.
    pub commit_latency_us: HistogramSnapshot,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_land_in_power_of_two_buckets() {
        let h: Histogram<5> = Histogram::new();
        for v in [0, 1, 2, 3, 4, 5, 100] {
            h.record(v);
        }
        let s = h.snapshot();
        // <=1: {0,1}; <=2: {2}; <=4: {3,4}; <=8: {5}; overflow: {100}.
        assert_eq!(s.counts, vec![2, 1, 2, 1, 1]);
        assert_eq!((s.count, s.sum, s.max), (7, 115, 100));
        assert_eq!(s.quantile(0.5), 4);
        assert_eq!(s.quantile(1.0), 100);
    }

    #[test]
    fn an_empty_histogram_has_zero_quantiles() {
        let h: Histogram<3> = Histogram::new();
        assert_eq!(h.snapshot().quantile(0.99), 0);
    }
}
