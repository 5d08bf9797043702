//! Per-batch progress, modelled on Spark's `StreamingQueryProgress`, so existing dashboards and habits carry
//! over: the same field names where the concept is the same, plus Weir's error counts.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::kafka::TopicPartition;

/// The progress of one micro-batch.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchProgress {
    /// The query id (stable for a pipeline name).
    pub id: String,
    /// The id of this run of the query.
    pub run_id: String,
    /// The pipeline name.
    pub name: String,
    /// When the batch started, RFC 3339.
    pub timestamp: String,
    /// Batch number in this run, from 0.
    pub batch_id: u64,
    /// Records read from the source.
    pub num_input_rows: u64,
    /// Input rows per second of wall time since the previous batch started.
    pub input_rows_per_second: f64,
    /// Input rows per second of this batch's processing time.
    pub processed_rows_per_second: f64,
    /// Where the time went, in milliseconds.
    pub duration_ms: Durations,
    /// The source and its offsets.
    pub sources: Vec<SourceProgress>,
    /// The sink.
    pub sink: SinkProgress,
    /// Records that failed, by stage and policy.
    pub errors: ErrorCounts,
    /// The watermark after the batch, when the pipeline has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_time: Option<EventTimeProgress>,
    /// The aggregation's state, as Spark's `stateOperators`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub state_operators: Vec<StateOperatorProgress>,
}

/// Spark's `eventTime` block: the watermark, as an RFC 3339 time and in ms.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EventTimeProgress {
    /// RFC 3339, absent until the watermark is known.
    pub watermark: Option<String>,
    /// Milliseconds since the epoch.
    pub watermark_ms: Option<i64>,
}

impl EventTimeProgress {
    /// The block for a watermark in ms.
    pub fn new(watermark_ms: Option<i64>) -> Self {
        let watermark = watermark_ms.and_then(|ms| {
            let time = std::time::UNIX_EPOCH
                .checked_add(std::time::Duration::from_millis(u64::try_from(ms).ok()?))?;
            Some(humantime::format_rfc3339_millis(time).to_string())
        });
        EventTimeProgress {
            watermark,
            watermark_ms,
        }
    }
}

/// Milliseconds spent in each stage of a batch (`triggerExecution` is the whole batch, as in Spark).
///
/// `poll`, `process` and `sink` are wall time. As fast as possible they overlap between batches: `poll` is
/// the wait for a batch read ahead, and a batch's `sink` runs while the next one is processed, so across
/// batches they can add up to more than the run's time. `decode` and `transform` split `process` (summed
/// over the worker threads, which run partitions in parallel, so together they can exceed it);
/// `aggregate`, `produce` and `checkpoint` split `sink`.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Durations {
    /// The whole batch.
    pub trigger_execution: u64,
    /// Polling the source.
    pub poll: u64,
    /// Deserializer and transforms (wall time; the partitions run in parallel).
    pub process: u64,
    /// The deserializer, summed over the worker threads.
    pub decode: u64,
    /// The transforms before the aggregation, summed over the worker threads.
    pub transform: u64,
    /// Everything after `process`: aggregation, producing, checkpointing.
    pub sink: u64,
    /// The window/state operator and the transforms after it.
    pub aggregate: u64,
    /// Producing the batch's rows and waiting until the broker has them (acknowledged, or the transaction
    /// committed).
    pub produce: u64,
    /// The checkpoint: the write-ahead plan, beginning the transaction, adding the offsets to it, and the
    /// state and commit records written to sled.
    pub checkpoint: u64,
}

/// Whole milliseconds of `d`, as progress reports them.
pub(crate) fn millis(d: std::time::Duration) -> u64 {
    d.as_millis() as u64
}

/// One source's part of a batch, with offsets as Spark writes them: `{"topic":{"0":42}}`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SourceProgress {
    /// e.g. `KafkaV2[Subscribe[transactions]]`.
    pub description: String,
    /// Offsets before the batch.
    pub start_offset: BTreeMap<String, BTreeMap<String, i64>>,
    /// Offsets after the batch.
    pub end_offset: BTreeMap<String, BTreeMap<String, i64>>,
    /// Records read.
    pub num_input_rows: u64,
    /// As a consumer group member (`consumerGroup = true`): this instance's share of the partitions.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub consumer_group: Option<ConsumerGroupProgress>,
}

/// A consumer group member's partitions when the batch was read.
///
/// ```
/// let progress = weir::progress::ConsumerGroupProgress {
///     group: "weir-fraud".into(),
///     assigned_partitions: vec!["transactions-0".into(), "transactions-2".into()],
///     rebalances: 3,
///     restores: None,
/// };
/// let json = serde_json::to_value(&progress).unwrap();
/// assert_eq!(json["assignedPartitions"][1], "transactions-2");
/// ```
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ConsumerGroupProgress {
    /// The group: `weir-<name>`.
    pub group: String,
    /// The partitions this instance owns, as `topic-partition`.
    pub assigned_partitions: Vec<String>,
    /// Rebalances that moved partitions to or from this instance since it started.
    pub rebalances: u64,
    /// With state: the partitions' state rebuilt from changelogs since the instance started.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub restores: Option<RestoreProgress>,
}

/// State restored from changelogs as partitions came to this instance, in total since it started.
///
/// ```
/// let restores = weir::progress::RestoreProgress { partitions: 2, records: 4_000, seconds: 0.5 };
/// let json = serde_json::to_value(&restores).unwrap();
/// assert_eq!(json["records"], 4_000);
/// ```
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct RestoreProgress {
    /// Partitions whose state was restored.
    pub partitions: u64,
    /// Changelog records replayed.
    pub records: u64,
    /// Time spent reading and replaying.
    pub seconds: f64,
}

/// The sink's part of a batch.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SinkProgress {
    /// e.g. `KafkaSink[results]`.
    pub description: String,
    /// Records written.
    pub num_output_rows: u64,
}

/// Records and rows that failed alone, by what happened to them.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ErrorCounts {
    /// Records the deserializer rejected that were dropped (`on_error = "drop"`).
    pub deserializer_dropped: u64,
    /// Records that went to a dead-letter topic: rejected by the deserializer, in a UDF call that failed
    /// (`on_failure`), or the source of an output row the broker refused (`[sink] on_error`).
    pub dead_lettered: u64,
    /// Rows transforms rejected that were dropped.
    pub transform_dropped: u64,
    /// UDF calls that failed as a whole and whose records went to a dead-letter topic (`on_failure`).
    pub failed_calls: u64,
    /// Output rows the producer or the broker refused for good, left out under `[sink] on_error =
    /// "dead-letter"` (their source records are counted in `dead_lettered`).
    pub refused_rows: u64,
}

impl ErrorCounts {
    /// Adds another batch's counts.
    pub fn add(&mut self, other: &ErrorCounts) {
        self.deserializer_dropped += other.deserializer_dropped;
        self.dead_lettered += other.dead_lettered;
        self.transform_dropped += other.transform_dropped;
        self.failed_calls += other.failed_calls;
        self.refused_rows += other.refused_rows;
    }
}

/// Offsets grouped the way Spark prints them.
pub(crate) fn offsets_json(
    offsets: &BTreeMap<TopicPartition, i64>,
) -> BTreeMap<String, BTreeMap<String, i64>> {
    let mut out: BTreeMap<String, BTreeMap<String, i64>> = BTreeMap::new();
    for ((topic, partition), offset) in offsets {
        out.entry(topic.clone())
            .or_default()
            .insert(partition.to_string(), *offset);
    }
    out
}

/// Receives each batch's progress: the CLI prints it, an embedding program may do anything.
pub trait ProgressListener: Send {
    /// Called after each batch is written.
    fn on_progress(&mut self, progress: &BatchProgress);
}

/// A listener that ignores progress.
impl ProgressListener for () {
    fn on_progress(&mut self, _: &BatchProgress) {}
}

/// Counts for the progress report, as Spark's `stateOperators`.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct StateOperatorProgress {
    /// Which operator: `aggregate` or `dedupe` (Spark's names).
    pub operator_name: String,
    /// Groups (or, deduplicating, keys) held.
    pub num_rows_total: u64,
    /// Groups changed by the batch.
    pub num_rows_updated: u64,
    /// Groups evicted by the watermark.
    pub num_rows_removed: u64,
    /// Input rows dropped because they were older than the watermark.
    pub num_rows_dropped_by_watermark: u64,
    /// Approximate bytes of the groups held in memory.
    pub memory_used_bytes: u64,
    /// Bytes of the sled store on disk.
    pub state_on_disk_bytes: u64,
    /// Rows dropped as repeats (deduplication only; Spark's `numDroppedDuplicateRows`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub num_dropped_duplicate_rows: Option<u64>,
}

impl StateOperatorProgress {
    /// Adds another part's counts of the same operator (a group member's partitions, each with state of
    /// its own).
    pub(crate) fn add(&mut self, other: &StateOperatorProgress) {
        self.num_rows_total += other.num_rows_total;
        self.num_rows_updated += other.num_rows_updated;
        self.num_rows_removed += other.num_rows_removed;
        self.num_rows_dropped_by_watermark += other.num_rows_dropped_by_watermark;
        self.memory_used_bytes += other.memory_used_bytes;
        self.state_on_disk_bytes += other.state_on_disk_bytes;
        if let Some(dropped) = other.num_dropped_duplicate_rows {
            *self.num_dropped_duplicate_rows.get_or_insert(0) += dropped;
        }
    }
}
