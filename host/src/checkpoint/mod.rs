//! Checkpoints: what a restarted pipeline needs to resume exactly where its last committed batch ended.
//!
//! One sled database per pipeline, at `checkpointLocation`:
//!
//! | tree | key | value |
//! |---|---|---|
//! | `meta` | `query`, `plan` | the query id; the plan's [`PlanFingerprint`] |
//! | `offsets` | batch id | [`PlannedBatch`]: the offsets the batch reads, written before it runs (write-ahead) |
//! | `commits` | batch id | [`CommittedBatch`]: end offsets and watermark, written when its output is durable |
//! | `pending` | batch id | the batch's commit record and state changes, while its Kafka transaction commits |
//! | `state/<table>` | operator key | operator state as of the last committed batch |
//!
//! With exactly-once delivery the Kafka transaction is the commit point: the batch's state changes are
//! staged in `pending` before it, and applied (with the `commits` record) after it. After a crash between
//! the two, [`recover`] asks Kafka which offsets the consumer group committed, and applies or discards the
//! pending batch accordingly. With at-least-once delivery the `commits` record is the commit point.
//!
//! The footprint stays flat over a long run: only the last `minBatchesToRetain` batches keep their
//! `offsets` and `commits` records, and the database is copied into a fresh generation when its folder has
//! doubled (`generations.rs`), since sled reclaims the space of removed values slowly.

mod database;
mod format;
mod generations;
mod group;
mod inspect;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub use database::Checkpoint;
pub(crate) use database::DEFAULT_BATCHES_TO_RETAIN;
pub(crate) use group::GroupOffsets;
pub use inspect::inspect;

use crate::kafka::TopicPartition;
use crate::window::WatermarkSnapshot;

/// Offsets by topic then partition, as Spark writes them: `{"tx": {"0": 42}}`.
pub(crate) type Offsets = BTreeMap<String, BTreeMap<String, i64>>;

/// Offsets keyed by (topic, partition), as the source uses them.
pub(crate) fn to_positions(offsets: &Offsets) -> BTreeMap<TopicPartition, i64> {
    offsets
        .iter()
        .flat_map(|(topic, partitions)| {
            partitions.iter().filter_map(move |(partition, offset)| {
                Some(((topic.clone(), partition.parse().ok()?), *offset))
            })
        })
        .collect()
}

/// What must not change between the runs that share a checkpoint: the source, and everything that shapes
/// the aggregation's state. Rate limits, filters, transforms after the state, and the output topic may.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanFingerprint {
    /// The topics read: `subscribe`, `subscribePattern` or `assign`.
    pub source: String,
    /// The group keys, when there is an aggregation.
    pub group_by: Vec<String>,
    /// The aggregates (`count(*) as n`, ...).
    pub aggregates: Vec<String>,
    /// The window, when there is one.
    pub window: Option<String>,
    /// The output mode.
    pub output_mode: Option<String>,
    /// The columns reaching the aggregation (the UDFs' output that feeds the state).
    pub state_input: Option<String>,
    /// The event-time column of the watermark.
    pub watermark_column: Option<String>,
    /// The deduplication (`dropDuplicates(id)`), when there is one.
    #[serde(default)]
    pub deduplicate: Option<String>,
    /// The stream-stream join, when there is one: its held rows are state.
    #[serde(default)]
    pub stream_join: Option<String>,
}

impl PlanFingerprint {
    /// Each difference from `earlier` that would corrupt the state, as "what: was → now".
    fn differences(&self, earlier: &PlanFingerprint) -> Vec<String> {
        let mut changes = Vec::new();
        let mut compare = |what: &str, was: String, now: String| {
            if was != now {
                changes.push(format!("{what}: {was} → {now}"));
            }
        };
        let show = |v: &Option<String>| v.clone().unwrap_or_else(|| "none".into());
        compare("source topics", earlier.source.clone(), self.source.clone());
        compare(
            "grouping keys",
            format!("{:?}", earlier.group_by),
            format!("{:?}", self.group_by),
        );
        compare(
            "aggregates",
            format!("{:?}", earlier.aggregates),
            format!("{:?}", self.aggregates),
        );
        compare("window", show(&earlier.window), show(&self.window));
        compare(
            "output mode",
            show(&earlier.output_mode),
            show(&self.output_mode),
        );
        compare(
            "columns feeding the state (UDF output schemas)",
            show(&earlier.state_input),
            show(&self.state_input),
        );
        compare(
            "watermark column",
            show(&earlier.watermark_column),
            show(&self.watermark_column),
        );
        compare(
            "deduplication",
            show(&earlier.deduplicate),
            show(&self.deduplicate),
        );
        compare(
            "stream-stream join",
            show(&earlier.stream_join),
            show(&self.stream_join),
        );
        changes
    }
}

/// A batch as planned, before it runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlannedBatch {
    /// The batch id, counting from 0 over the checkpoint's life.
    pub batch: u64,
    /// The first offset of each partition the batch reads.
    pub start: Offsets,
    /// One past the last offset of each partition the batch reads.
    pub end: Offsets,
}

/// A batch whose output is durable.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommittedBatch {
    /// The batch id.
    pub batch: u64,
    /// Where the next batch starts, per partition.
    pub end: Offsets,
    /// The watermark tracker after the batch.
    pub watermark: WatermarkSnapshot,
    /// Rows the batch wrote to the sink.
    pub output_rows: u64,
    /// When it committed, in ms since the epoch.
    pub committed_at_ms: i64,
}

/// Where a recovered pipeline starts.
#[derive(Debug, Clone, Default)]
pub(crate) struct Resume {
    /// The next batch id.
    pub next_batch: u64,
    /// Per-partition positions, when a batch was ever committed.
    pub positions: Option<BTreeMap<TopicPartition, i64>>,
    /// The watermark tracker to restore.
    pub watermark: Option<WatermarkSnapshot>,
}

/// Settles a crash's leftovers and says where to resume.
///
/// A batch staged when the crash came is applied if its sink committed it (`sink_committed`: exactly-once
/// to Kafka, the group's committed offsets are the batch's end offsets; to files, the committed-files log
/// lists the batch) and discarded otherwise, to be read again. Whether a checkpoint with no committed batch
/// was lost is checked once the source knows its partitions (`Checkpointing::check_not_lost`).
pub(crate) fn recover(
    checkpoint: &Checkpoint,
    sink_committed: impl Fn(&CommittedBatch) -> anyhow::Result<bool>,
) -> anyhow::Result<Resume> {
    if let Some((staged, changes)) = checkpoint.pending()? {
        if sink_committed(&staged)? {
            tracing::info!(
                batch = staged.batch,
                "the last batch committed in its sink before the crash; applying its state"
            );
            checkpoint.commit(&staged, &changes)?;
        } else {
            tracing::info!(
                batch = staged.batch,
                "the last batch did not commit before the crash; it will be read again"
            );
            checkpoint.discard_pending()?;
        }
    }
    match checkpoint.last_commit()? {
        None => Ok(Resume::default()),
        Some(last) => Ok(Resume {
            next_batch: last.batch + 1,
            positions: Some(to_positions(&last.end)),
            watermark: Some(last.watermark),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fingerprint(deduplicate: Option<&str>) -> PlanFingerprint {
        PlanFingerprint {
            source: "subscribe tx".into(),
            group_by: vec!["id".into()],
            aggregates: vec!["count(*) as count".into()],
            window: Some("10000 ms windows".into()),
            output_mode: Some("Update".into()),
            state_input: Some("id: Utf8, ts: Int64".into()),
            watermark_column: Some("ts".into()),
            deduplicate: deduplicate.map(str::to_string),
            stream_join: None,
        }
    }

    #[test]
    fn a_changed_deduplication_is_refused_and_validating_records_nothing() {
        let path = std::env::temp_dir().join(format!("weir-plan-{}", uuid::Uuid::new_v4()));
        let checkpoint = Checkpoint::open(&path).unwrap();
        let first = fingerprint(Some("dropDuplicates(id)"));
        checkpoint.check_plan_unchanged(&first).unwrap();
        assert_eq!(
            checkpoint.plan().unwrap(),
            None,
            "validating records no plan"
        );
        checkpoint.check_plan(&first).unwrap();
        assert_eq!(checkpoint.plan().unwrap(), Some(first.clone()));

        for changed in [
            fingerprint(None),
            fingerprint(Some("dropDuplicates(id, ts)")),
        ] {
            for check in [Checkpoint::check_plan, Checkpoint::check_plan_unchanged] {
                let error = check(&checkpoint, &changed).unwrap_err().to_string();
                assert!(
                    error.contains("deduplication: dropDuplicates(id) → "),
                    "{error}"
                );
            }
        }
        // A plan recorded before deduplication existed reads as one without it.
        let older = serde_json::json!({
            "source": "subscribe tx", "group_by": [], "aggregates": [], "window": null,
            "output_mode": null, "state_input": null, "watermark_column": null,
        });
        let older: PlanFingerprint = serde_json::from_value(older).unwrap();
        assert_eq!(older.deduplicate, None);
        drop(checkpoint);
        std::fs::remove_dir_all(&path).unwrap();
    }
}
