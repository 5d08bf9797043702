//! The stateful step of a batch: the rows of every partition deduplicated and folded into the aggregation
//! at once (their state is shared by all partitions), the rows the output mode emits, and the transforms
//! after it. A stateful group member instead folds each partition into that partition's own aggregation
//! (`tasks.rs`). The overlapped writer runs it for one batch at a time, in order (`overlapped_write.rs`).

use anyhow::Context;
use arrow_array::RecordBatch;

use super::plan::Plan;
use super::stateless::ChunkOutput;
use super::transforms::TransformError;
use crate::kafka::{TopicPartition, TopicWrite};
use crate::progress::StateOperatorProgress;
use crate::window::WatermarkSpec;

/// What the stateful part of a batch produced.
pub struct Aggregated {
    /// Rows for the sink.
    pub rows: RecordBatch,
    /// The state counts of deduplication and the aggregation, those there are.
    pub state: Vec<StateOperatorProgress>,
    /// Rows the transforms after the aggregation dropped as failed.
    pub transform_dropped: u64,
    /// Rows that arrived behind the watermark, when `watermark.late_data_topic` is set.
    pub late: Option<RecordBatch>,
    /// As a stateful group member: records for Weir's own topics in the partition's transaction (its state
    /// changes for its changelog, or its rows for the repartition topic).
    pub(crate) internal: Vec<TopicWrite>,
    /// As a repartitioning group member's input partition: the markers to write once the partition's
    /// transaction committed (`upstream.rs`).
    pub(crate) after_commit: Vec<TopicWrite>,
}

impl Plan {
    /// The stateful part of a batch: drops repeats (deduplication), folds the rows of all partitions into
    /// the aggregation with the watermark as it stood before the batch, emits what the output mode calls
    /// for at the watermark after it, and runs the transforms that follow. Without an aggregation, returns
    /// the rows deduplication kept.
    pub fn aggregate(
        &self,
        rows: RecordBatch,
        watermark_before: Option<i64>,
        watermark_after: Option<i64>,
    ) -> anyhow::Result<Aggregated> {
        let mut state = Vec::new();
        let mut late = LateRows::new(self.spec.watermark.as_ref());
        let rows = match &self.deduplicator {
            None => rows,
            Some(dedup) => {
                let mut dedup = dedup.lock().unwrap_or_else(|e| e.into_inner());
                let (kept, counts) = dedup.process(&rows, watermark_before)?;
                late.add(&rows, &counts.late_rows)?;
                state.push(dedup.finish_batch(watermark_after, &counts)?);
                kept
            }
        };
        let Some(aggregator) = &self.aggregator else {
            return Ok(Aggregated {
                rows,
                state,
                transform_dropped: 0,
                late: late.finish()?,
                internal: Vec::new(),
                after_commit: Vec::new(),
            });
        };
        let mut aggregator = aggregator.lock().unwrap_or_else(|e| e.into_inner());
        let late_rows = aggregator.update(&rows, watermark_before)?;
        let (emitted, progress) = aggregator.finish_batch(watermark_after)?;
        state.push(progress);
        drop(aggregator);
        late.add(&rows, &late_rows)?;
        let (rows, dropped) = self.after_aggregation(emitted)?;
        Ok(Aggregated {
            rows,
            state,
            transform_dropped: dropped,
            late: late.finish()?,
            internal: Vec::new(),
            after_commit: Vec::new(),
        })
    }

    /// The stateful part of a group member's batch for one partition, `tp`, ending at its offset `end`:
    /// its rows folded into the partition's own aggregation (`tasks.rs`), which emits at the partition's
    /// own watermark. With a repartition, an input partition's rows go to the repartition topic instead
    /// (`upstream.rs`), and a repartition partition's task aggregates the upstream writes it reads.
    pub(super) fn aggregate_partition(
        &self,
        tp: &TopicPartition,
        output: &ChunkOutput,
        end: i64,
    ) -> anyhow::Result<Aggregated> {
        let tasks = self
            .tasks
            .as_ref()
            .expect("planned for a stateful group member");
        let task = match &self.upstreams {
            Some(upstreams) if upstreams.topic() != tp.0 => {
                let (writes, markers) =
                    upstreams.run(tp, &output.rows, output.max_event_time, end)?;
                return Ok(Aggregated {
                    rows: RecordBatch::new_empty(self.output_schema().clone()),
                    state: Vec::new(),
                    transform_dropped: 0,
                    late: None,
                    internal: writes,
                    after_commit: markers,
                });
            }
            Some(_) => tasks.run_repartitioned(tp, output.upstream_writes.clone(), end)?,
            None => tasks.run(tp, &output.rows, output.max_event_time, end)?,
        };
        let mut late = LateRows::new(self.spec.watermark.as_ref());
        late.add(&task.input, &task.late_rows)?;
        let (rows, dropped) = self.after_aggregation(task.emitted)?;
        Ok(Aggregated {
            rows,
            state: vec![task.progress],
            transform_dropped: dropped,
            late: late.finish()?,
            internal: vec![tasks.changelog_write(&task.changelog)?],
            after_commit: Vec::new(),
        })
    }

    /// The transforms after the aggregation, over the rows it emitted; returns the rows and how many the
    /// transforms dropped.
    fn after_aggregation(&self, emitted: RecordBatch) -> anyhow::Result<(RecordBatch, u64)> {
        match &self.after_aggregate {
            Some(after) => after
                .run(emitted, " on the aggregation's output")
                .map_err(|error| match error {
                    TransformError::Call(error, _) => anyhow::Error::from(error),
                    TransformError::Rows(error) => error,
                }),
            None => Ok((emitted, 0)),
        }
    }
}

/// The rows the stateful operators drop as late, kept only when `watermark.late_data_topic` wants them.
struct LateRows {
    wanted: bool,
    parts: Vec<RecordBatch>,
}

impl LateRows {
    fn new(watermark: Option<&WatermarkSpec>) -> LateRows {
        LateRows {
            wanted: watermark.is_some_and(|w| w.late_data_topic.is_some()),
            parts: Vec::new(),
        }
    }

    /// Keeps `rows` at `indices`.
    fn add(&mut self, rows: &RecordBatch, indices: &[u32]) -> anyhow::Result<()> {
        if self.wanted && !indices.is_empty() {
            let indices = arrow_array::UInt32Array::from(indices.to_vec());
            self.parts.push(
                arrow_select::take::take_record_batch(rows, &indices)
                    .context("selecting late rows")?,
            );
        }
        Ok(())
    }

    /// The late rows of every operator together, if any.
    fn finish(self) -> anyhow::Result<Option<RecordBatch>> {
        let Some(first) = self.parts.first() else {
            return Ok(None);
        };
        let rows = arrow_select::concat::concat_batches(&first.schema(), &self.parts)
            .context("joining late rows")?;
        Ok(Some(rows))
    }
}
