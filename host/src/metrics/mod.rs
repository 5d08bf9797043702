//! What a running pipeline tells Prometheus, and the health checks an orchestrator asks.
//!
//! The batch counters and timings are taken from each batch's progress report, so a scrape says what the
//! progress lines say; the per-partition event-time clocks come from the watermark, the transaction
//! outcomes from the commit protocol. `http.rs` serves them (`[metrics] listen`): `/metrics` in the
//! OpenMetrics text format, `/health` (the process is up) and `/ready` (the source has its partitions and
//! the sink its producer).

mod http;
mod spec;
mod udf_calls;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::{Registry, Unit};

pub(crate) use http::MetricsServer;
pub use spec::MetricsSpec;

use crate::kafka::TopicPartition;
use crate::progress::{BatchProgress, StateOperatorProgress};
use crate::udf::CallCounts;
use udf_calls::UdfCalls;

/// `stage`: where in the pipeline a count or a time belongs.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StageLabels {
    stage: &'static str,
}

/// `kind`: what happened to records that failed alone.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FailureLabels {
    kind: &'static str,
}

/// One source partition.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PartitionLabels {
    topic: String,
    partition: i32,
}

/// How a batch's Kafka transaction ended.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: &'static str,
}

/// The pipeline's metrics, shared by the batch loop (which updates them) and the endpoint (which reads
/// them). Updates are atomic adds and stores.
pub(crate) struct Metrics {
    registry: Registry,
    batches: Counter,
    records: Family<StageLabels, Counter>,
    batch_duration: Histogram,
    stage_seconds: Family<StageLabels, Counter<f64, AtomicU64>>,
    failed_records: Family<FailureLabels, Counter>,
    failed_calls: Counter,
    late_rows: Counter,
    state_groups: Gauge,
    state_memory: Gauge,
    state_disk: Gauge,
    watermark: Gauge,
    partition_event_time: Family<PartitionLabels, Gauge>,
    partition_event_time_lag: Family<PartitionLabels, Gauge<f64, AtomicU64>>,
    consumer_lag: Family<PartitionLabels, Gauge>,
    transactions: Family<OutcomeLabels, Counter>,
    assigned_partitions: Gauge,
    rebalances: Gauge,
    ready: AtomicBool,
}

impl Metrics {
    /// The metrics of the pipeline `name`, every series labelled `pipeline="<name>"`, with the call counts
    /// of its UDF stages (by name).
    pub(crate) fn new(name: &str, udfs: Vec<(String, Arc<CallCounts>)>) -> Metrics {
        let labels = [("pipeline".into(), name.to_string().into())].into_iter();
        let mut metrics = Metrics {
            registry: Registry::with_prefix_and_labels("weir", labels),
            batches: Counter::default(),
            records: Family::default(),
            batch_duration: Histogram::new(exponential_buckets(0.001, 2.0, 16)),
            stage_seconds: Family::default(),
            failed_records: Family::default(),
            failed_calls: Counter::default(),
            late_rows: Counter::default(),
            state_groups: Gauge::default(),
            state_memory: Gauge::default(),
            state_disk: Gauge::default(),
            watermark: Gauge::default(),
            partition_event_time: Family::default(),
            partition_event_time_lag: Family::default(),
            consumer_lag: Family::default(),
            transactions: Family::default(),
            assigned_partitions: Gauge::default(),
            rebalances: Gauge::default(),
            ready: AtomicBool::new(false),
        };
        metrics.register();
        metrics
            .registry
            .register_collector(Box::new(UdfCalls { stages: udfs }));
        metrics
    }

    fn register(&mut self) {
        let registry = &mut self.registry;
        registry.register("batches", "Micro-batches written", self.batches.clone());
        registry.register(
            "records",
            "Records read from the source (stage=source) and rows written to the sink (stage=sink)",
            self.records.clone(),
        );
        registry.register_with_unit(
            "batch_duration",
            "A batch from its poll to its commit (Spark's triggerExecution)",
            Unit::Seconds,
            self.batch_duration.clone(),
        );
        registry.register_with_unit(
            "stage",
            "Time spent per stage: poll, decode, transform, aggregate, produce, checkpoint",
            Unit::Seconds,
            self.stage_seconds.clone(),
        );
        registry.register(
            "failed_records",
            "Records and rows that failed alone, by what happened to them",
            self.failed_records.clone(),
        );
        registry.register(
            "failed_udf_calls",
            "UDF calls that failed as a whole and whose records were dead-lettered (on_failure)",
            self.failed_calls.clone(),
        );
        registry.register(
            "assigned_partitions",
            "As a consumer group member: the input partitions this instance owns",
            self.assigned_partitions.clone(),
        );
        registry.register(
            "rebalances",
            "As a consumer group member: rebalances that moved partitions to or from this instance",
            self.rebalances.clone(),
        );
        registry.register(
            "late_rows",
            "Rows older than the watermark, dropped by the aggregation or deduplication",
            self.late_rows.clone(),
        );
        registry.register(
            "state_groups",
            "Groups held by the aggregation, and keys held by deduplication",
            self.state_groups.clone(),
        );
        registry.register_with_unit(
            "state_memory",
            "Approximate memory of the groups and keys held",
            Unit::Bytes,
            self.state_memory.clone(),
        );
        registry.register_with_unit(
            "state_disk",
            "The state store's size on disk",
            Unit::Bytes,
            self.state_disk.clone(),
        );
        registry.register(
            "watermark_milliseconds",
            "The pipeline's watermark, milliseconds since the epoch",
            self.watermark.clone(),
        );
        registry.register(
            "partition_event_time_milliseconds",
            "The latest event time seen in each source partition, milliseconds since the epoch",
            self.partition_event_time.clone(),
        );
        registry.register_with_unit(
            "partition_event_time_lag",
            "How far each source partition's latest event time is behind the wall clock",
            Unit::Seconds,
            self.partition_event_time_lag.clone(),
        );
        registry.register(
            "consumer_lag",
            "Offsets in each source partition not read yet: the broker's high watermark at the last fetch, \
             less the next offset to read",
            self.consumer_lag.clone(),
        );
        registry.register(
            "transactions",
            "Kafka transactions of batches (exactly-once), by outcome: committed or aborted",
            self.transactions.clone(),
        );
    }

    /// Adds a written batch's report.
    pub(crate) fn observe_batch(&self, progress: &BatchProgress) {
        self.batches.inc();
        let count = |stage, n| {
            self.records.get_or_create(&StageLabels { stage }).inc_by(n);
        };
        count("source", progress.num_input_rows);
        count("sink", progress.sink.num_output_rows);
        let d = &progress.duration_ms;
        self.batch_duration
            .observe(d.trigger_execution as f64 / 1000.0);
        for (stage, ms) in [
            ("poll", d.poll),
            ("decode", d.decode),
            ("transform", d.transform),
            ("aggregate", d.aggregate),
            ("produce", d.produce),
            ("checkpoint", d.checkpoint),
        ] {
            self.stage_seconds
                .get_or_create(&StageLabels { stage })
                .inc_by(ms as f64 / 1000.0);
        }
        let e = &progress.errors;
        for (kind, n) in [
            ("deserializer_dropped", e.deserializer_dropped),
            ("dead_lettered", e.dead_lettered),
            ("transform_dropped", e.transform_dropped),
            ("refused", e.refused_rows),
        ] {
            self.failed_records
                .get_or_create(&FailureLabels { kind })
                .inc_by(n);
        }
        self.failed_calls.inc_by(e.failed_calls);
        let states = &progress.state_operators;
        let sum = |field: fn(&StateOperatorProgress) -> u64| states.iter().map(field).sum::<u64>();
        self.late_rows
            .inc_by(sum(|s| s.num_rows_dropped_by_watermark));
        if !states.is_empty() {
            self.state_groups.set(gauge(sum(|s| s.num_rows_total)));
            self.state_memory.set(gauge(sum(|s| s.memory_used_bytes)));
            // One sled store holds every operator's state.
            self.state_disk.set(gauge(states[0].state_on_disk_bytes));
        }
        if let Some(ms) = progress.event_time.as_ref().and_then(|e| e.watermark_ms) {
            self.watermark.set(ms);
        }
        if let Some(group) = progress
            .sources
            .iter()
            .find_map(|s| s.consumer_group.as_ref())
        {
            self.assigned_partitions
                .set(gauge(group.assigned_partitions.len() as u64));
            self.rebalances.set(gauge(group.rebalances));
        }
    }

    /// Sets each partition's latest event time (ms since the epoch), and its lag behind `now`.
    pub(crate) fn observe_event_times(
        &self,
        partitions: &[(TopicPartition, Option<i64>)],
        now: SystemTime,
    ) {
        let now_ms = now
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or(Duration::ZERO)
            .as_millis() as i64;
        for ((topic, partition), latest) in partitions {
            let Some(latest) = *latest else { continue };
            let labels = PartitionLabels {
                topic: topic.clone(),
                partition: *partition,
            };
            self.partition_event_time.get_or_create(&labels).set(latest);
            self.partition_event_time_lag
                .get_or_create(&labels)
                .set((now_ms - latest) as f64 / 1000.0);
        }
    }

    /// Sets each partition's consumer lag (offsets not read yet).
    pub(crate) fn observe_consumer_lag(&self, lag: &[(TopicPartition, i64)]) {
        for ((topic, partition), offsets) in lag {
            let labels = PartitionLabels {
                topic: topic.clone(),
                partition: *partition,
            };
            self.consumer_lag.get_or_create(&labels).set(*offsets);
        }
    }

    /// Counts a batch's transactions: committed, and aborted (each made again).
    pub(crate) fn observe_transactions(&self, committed: u64, aborted: u64) {
        for (outcome, n) in [("committed", committed), ("aborted", aborted)] {
            self.transactions
                .get_or_create(&OutcomeLabels { outcome })
                .inc_by(n);
        }
    }

    /// Whether the source has its partitions and the sink its producer (`/ready`).
    pub(crate) fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::Relaxed);
    }

    fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Relaxed)
    }

    /// The OpenMetrics text of every series.
    fn encode(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("writing to a String cannot fail");
        out
    }
}

/// A count as a gauge's i64 (saturating: no state holds 2^63 groups or bytes).
fn gauge(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}
