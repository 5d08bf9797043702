//! How a processed batch becomes output: the stateful part (windows, state, the transforms after them),
//! then every row, late row and dead letter produced and made durable, by a flush or, with a checkpoint,
//! by its delivery guarantee's commit protocol (`commit.rs`). It runs on tokio's blocking pool while the
//! loop (`run.rs`) processes the next batch.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use arrow_array::RecordBatch;
use arrow_select::concat::concat_batches;
use tokio::task::JoinHandle;

use super::commit::Checkpointing;
use super::plan::{ChunkOutput, Plan};
use crate::aggregate::StateOperatorProgress;
use crate::sink::{DeadLetter, KafkaSink};
use crate::source::{PartitionChunk, TopicPartition};
use crate::window::WatermarkSnapshot;

/// What writing a batch did.
pub(crate) struct Written {
    /// Rows written to the sink.
    pub(crate) rows: u64,
    /// The aggregation's state counts.
    pub(crate) state: Option<StateOperatorProgress>,
    /// Rows the transforms after the aggregation dropped.
    pub(crate) transform_dropped: u64,
    /// Where the time went.
    pub(crate) timings: WriteTimings,
}

/// Where writing a batch spent its time (see [`crate::progress::Durations`]).
#[derive(Default)]
pub(crate) struct WriteTimings {
    pub(crate) aggregate: Duration,
    pub(crate) produce: Duration,
    pub(crate) checkpoint: Duration,
}

/// What committing a batch to the checkpoint needs.
pub(crate) struct BatchCommit {
    pub(crate) checkpointing: Arc<Checkpointing>,
    pub(crate) batch: u64,
    pub(crate) start: BTreeMap<TopicPartition, i64>,
    pub(crate) end: BTreeMap<TopicPartition, i64>,
    pub(crate) watermark: WatermarkSnapshot,
}

/// A batch whose stateless stages are done.
pub(crate) struct ProcessedBatch {
    /// The source records, for dead letters.
    pub(crate) chunks: Arc<Vec<PartitionChunk>>,
    /// What each partition's records became.
    pub(crate) outputs: Vec<ChunkOutput>,
    /// The watermark before and after the batch.
    pub(crate) watermarks: (Option<i64>, Option<i64>),
    /// With a checkpoint: how to commit it.
    pub(crate) commit: Option<BatchCommit>,
}

/// Starts writing `batch` on tokio's blocking pool. The caller awaits one write before starting the next:
/// the aggregation's state and the sink's transactions go batch by batch, in order.
pub(crate) fn start_writing(
    plan: Arc<Plan>,
    sink: Arc<KafkaSink>,
    batch: ProcessedBatch,
) -> JoinHandle<anyhow::Result<(Written, Instant)>> {
    // The write's end is taken here: the loop may look at the result later, when the next batch is ready.
    tokio::task::spawn_blocking(move || write(&plan, &sink, batch).map(|w| (w, Instant::now())))
}

/// Writes one batch; see the module's doc.
fn write(plan: &Plan, sink: &KafkaSink, batch: ProcessedBatch) -> anyhow::Result<Written> {
    let ProcessedBatch {
        chunks,
        outputs,
        watermarks: (watermark_before, watermark_after),
        commit,
    } = batch;
    let produce = || {
        produce_batch(
            plan,
            sink,
            &chunks,
            &outputs,
            watermark_before,
            watermark_after,
        )
    };
    let Some(commit) = commit else {
        let mut written = produce()?;
        let flushing = Instant::now();
        sink.flush()?;
        written.timings.produce += flushing.elapsed();
        return Ok(written);
    };
    let checkpointing = &commit.checkpointing;
    // Write-ahead: the batch's offsets are in the checkpoint before anything of it is produced.
    let beginning = Instant::now();
    checkpointing.plan(commit.batch, &commit.start, &commit.end)?;
    let attempt = checkpointing.begin(sink).and_then(|()| {
        let began = beginning.elapsed();
        let mut written = produce()?;
        let committing = Instant::now();
        let waited = checkpointing.commit(
            sink,
            commit.batch,
            &commit.end,
            commit.watermark.clone(),
            written.rows,
        )?;
        written.timings.produce += waited;
        written.timings.checkpoint += began + committing.elapsed() - waited;
        Ok(written)
    });
    if attempt.is_err() {
        checkpointing.abandon(sink);
    }
    attempt
}

/// Produces the batch's rows, late rows and dead letters (not yet durable).
fn produce_batch(
    plan: &Plan,
    sink: &KafkaSink,
    chunks: &[PartitionChunk],
    outputs: &[ChunkOutput],
    watermark_before: Option<i64>,
    watermark_after: Option<i64>,
) -> anyhow::Result<Written> {
    let aggregating = Instant::now();
    let batches: Vec<&RecordBatch> = outputs.iter().map(|o| &o.rows).collect();
    let rows = concat_batches(&plan.processed_schema(), batches)
        .context("joining the partitions' rows")?;
    let aggregated = plan.aggregate(rows, watermark_before, watermark_after)?;
    let producing = Instant::now();
    let written = sink.write(&aggregated.rows)?;
    if let (Some(late), Some(watermark)) = (&aggregated.late, &plan.spec().watermark) {
        if let Some(topic) = &watermark.late_data_topic {
            sink.write_json(topic, late)?;
        }
    }
    for (chunk, output) in chunks.iter().zip(outputs) {
        for letter in &output.dead_letters {
            sink.dead_letter(
                &letter.topic,
                DeadLetter {
                    chunk,
                    row: letter.row,
                    stage: &letter.stage,
                    error: &letter.error,
                },
            )?;
        }
    }
    Ok(Written {
        rows: written as u64,
        state: aggregated.state,
        transform_dropped: aggregated.transform_dropped,
        timings: WriteTimings {
            aggregate: producing - aggregating,
            produce: producing.elapsed(),
            checkpoint: Duration::ZERO,
        },
    })
}
