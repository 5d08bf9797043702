//! The overlapped write: how a processed batch becomes output, on tokio's blocking pool while the loop
//! (`run.rs`) processes the next batch. First the stateful step (`stateful.rs`: windows, state, the
//! transforms after them), then every row, late row and dead letter produced and made durable, by a flush
//! or, with a checkpoint, by its delivery guarantee's commit protocol (`commit.rs`); to files or the
//! console, `files_and_console.rs` takes over after the stateful step. Writes run one at a time, in batch
//! order.

use std::collections::BTreeMap;
use std::ops::Range;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow_array::RecordBatch;
use tokio::task::JoinHandle;

use super::commit::Checkpointing;
use super::files_and_console::{print, write_files};
use super::group::GroupCommit;
use super::partition_write::{write_by_partition, write_by_partition_at_least_once};
use super::plan::Plan;
use super::refused::RefusedRows;
use super::stateful::Aggregated;
use super::stateless::ChunkOutput;
use crate::kafka::TopicPartition;
use crate::kafka::TopicWrite;
use crate::progress::ErrorCounts;
use crate::progress::StateOperatorProgress;
use crate::sink::Delivery;
use crate::sink::{AbortableTransaction, DeadLetter, KafkaSink, Sink, SinkRows};
use crate::source::PartitionChunk;
use crate::state::TableChanges;
use crate::window::WatermarkSnapshot;

/// What writing a batch did.
#[derive(Default)]
pub(crate) struct Written {
    /// Rows written to the sink.
    pub(crate) rows: u64,
    /// The aggregation's state counts.
    pub(crate) state: Vec<StateOperatorProgress>,
    /// Rows the transforms after the aggregation dropped, and rows the broker refused with the source
    /// records dead-lettered for them.
    pub(crate) errors: ErrorCounts,
    /// Where the time went.
    pub(crate) timings: WriteTimings,
    /// Exactly-once: the batch's transaction committed, and the attempts aborted before it.
    pub(crate) transactions: Transactions,
}

/// A batch's Kafka transactions, for the metrics.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Transactions {
    pub(crate) committed: u64,
    pub(crate) aborted: u64,
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
    pub(crate) start: BTreeMap<TopicPartition, i64>,
    pub(crate) end: BTreeMap<TopicPartition, i64>,
    /// What the source keeps in the checkpoint for this batch (the file source's files read).
    pub(crate) source_changes: Option<TableChanges>,
    pub(crate) watermark: WatermarkSnapshot,
}

impl BatchCommit {
    /// Everything the batch changes in the checkpoint's state: the operators' changes (taken once: an
    /// attempt at the batch that is aborted and made again commits the same changes) and the source's.
    pub(crate) fn take_changes(&self) -> Vec<TableChanges> {
        let mut changes = self.checkpointing.take_changes();
        changes.extend(self.source_changes.clone());
        changes
    }
}

/// A batch whose stateless stages are done.
pub(crate) struct ProcessedBatch {
    /// Its number (in the checkpoint, when there is one).
    pub(crate) batch: u64,
    /// The source records, for dead letters.
    pub(crate) chunks: Arc<Vec<PartitionChunk>>,
    /// What each partition's records became.
    pub(crate) outputs: Vec<ChunkOutput>,
    /// The watermark before and after the batch.
    pub(crate) watermarks: (Option<i64>, Option<i64>),
    /// With a checkpoint: how to commit it.
    pub(crate) commit: Option<BatchCommit>,
    /// As a consumer group member: what it commits with.
    pub(crate) group: Option<GroupCommit>,
}

/// Starts writing `batch` on tokio's blocking pool. The caller awaits one write before starting the next:
/// the aggregation's state and the sink's transactions go batch by batch, in order.
pub(crate) fn start_writing(
    plan: Arc<Plan>,
    sink: Arc<Sink>,
    batch: ProcessedBatch,
) -> JoinHandle<anyhow::Result<(Written, Instant)>> {
    // The write's end is taken here: the loop may look at the result later, when the next batch is ready.
    tokio::task::spawn_blocking(move || {
        let written = match sink.as_ref() {
            // A stateful group member's partitions each have a task of their own.
            Sink::Kafka(kafka) if plan.tasks.is_some() => {
                write_by_partition_at_least_once(&plan, kafka, batch)
            }
            Sink::Kafka(kafka) => write(&plan, kafka, batch),
            Sink::KafkaByPartition(producers) => write_by_partition(&plan, producers, batch),
            Sink::Files(files) => write_files(&plan, files, batch),
            Sink::Console(console) => print(&plan, console, batch),
        };
        written.map(|w| (w, Instant::now()))
    })
}

/// Writes one batch to Kafka; see the module's doc.
fn write(plan: &Plan, sink: &KafkaSink, batch: ProcessedBatch) -> anyhow::Result<Written> {
    let aggregating = Instant::now();
    let output = BatchOutput::new(plan, sink, &batch, None)?;
    let mut timings = WriteTimings {
        aggregate: aggregating.elapsed(),
        ..WriteTimings::default()
    };
    let mut refused = RefusedRows::new(plan.spec().sink.on_error.clone());
    let Some(commit) = &batch.commit else {
        // Without a transaction, rows the broker refused later are lettered after the others went out.
        let producing = Instant::now();
        let Delivered::Done(counts) = deliver(plan, sink, &batch, &output, &mut refused, false)?
        else {
            unreachable!("without a transaction every attempt is delivered");
        };
        timings.produce = producing.elapsed();
        if let Some(group) = &batch.group {
            group.commit_offsets(batch.batch);
        }
        return Ok(output.written(counts, &refused, timings));
    };
    let checkpointing = &commit.checkpointing;
    let changes = commit.take_changes();
    // Write-ahead: the batch's offsets are in the checkpoint before anything of it is produced.
    let mut beginning = Instant::now();
    checkpointing.plan(batch.batch, &commit.start, &commit.end)?;
    let transactional = checkpointing.delivery == Delivery::ExactlyOnce;
    let mut attempt = 1;
    let mut aborted = 0;
    loop {
        let attempted = checkpointing.begin(sink).and_then(|()| {
            let delivering = Instant::now();
            timings.checkpoint += delivering - beginning;
            let delivered = deliver(plan, sink, &batch, &output, &mut refused, transactional)?;
            let Delivered::Done(counts) = delivered else {
                return Ok(None);
            };
            let committing = Instant::now();
            timings.produce += committing - delivering;
            let state = (commit.watermark.clone(), changes.as_slice());
            let waited =
                checkpointing.commit(sink, batch.batch, &commit.end, state, counts.rows)?;
            timings.produce += waited;
            timings.checkpoint += committing.elapsed() - waited;
            Ok(Some(counts))
        });
        match attempted {
            Ok(Some(counts)) => {
                let mut written = output.written(counts, &refused, timings);
                if transactional {
                    written.transactions = Transactions {
                        committed: 1,
                        aborted,
                    };
                }
                return Ok(written);
            }
            // A row the broker refused fails the whole transaction: it is aborted and the batch produced
            // again without the rows refused so far.
            Ok(None) => {}
            Err(error)
                if error.downcast_ref::<AbortableTransaction>().is_some()
                    && attempt < TRANSACTION_ATTEMPTS =>
            {
                attempt += 1;
                tracing::warn!(
                    "batch {}: {error:#}; producing it again (attempt {attempt} of {TRANSACTION_ATTEMPTS})",
                    batch.batch
                );
            }
            Err(error) => {
                checkpointing.abandon(sink);
                return Err(error);
            }
        }
        checkpointing.abandon(sink);
        aborted += u64::from(transactional);
        refused.restart();
        beginning = Instant::now();
    }
}

/// How many times a batch's transaction is made before an abortable failure stops the pipeline. Kafka
/// asks producers to abort and start over on such failures; librdkafka may need one transaction to bump
/// its epoch after a record was refused (seen on its mock cluster).
pub(super) const TRANSACTION_ATTEMPTS: u32 = 3;

/// What the batch becomes once, however many times it is produced: the stateful part is run here.
pub(super) struct BatchOutput {
    /// The rows for the sink.
    rows: SinkRows,
    /// The output rows of each chunk, when there is no aggregation (which mixes them).
    by_chunk: Option<Vec<Range<usize>>>,
    late: Option<RecordBatch>,
    state: Vec<StateOperatorProgress>,
    transform_dropped: u64,
    /// As a stateful group member: records for Weir's own topics, produced with the rows.
    pub(super) internal: Vec<TopicWrite>,
    /// As a repartitioning member's input partition: markers to write once the transaction committed.
    pub(super) after_commit: Vec<TopicWrite>,
}

impl BatchOutput {
    /// `task_end`: for a stateful group member's partition, the offset its batch ends at.
    pub(super) fn new(
        plan: &Plan,
        sink: &KafkaSink,
        batch: &ProcessedBatch,
        task_end: Option<i64>,
    ) -> anyhow::Result<BatchOutput> {
        let by_chunk = (!plan.has_state()).then(|| {
            let mut start = 0;
            batch
                .outputs
                .iter()
                .map(|o| {
                    start += o.rows.num_rows();
                    start - o.rows.num_rows()..start
                })
                .collect()
        });
        let aggregated = aggregate(plan, batch, task_end)?;
        Ok(BatchOutput {
            rows: sink.rows(&aggregated.rows)?,
            by_chunk,
            late: aggregated.late,
            state: aggregated.state,
            transform_dropped: aggregated.transform_dropped,
            internal: aggregated.internal,
            after_commit: aggregated.after_commit,
        })
    }

    pub(super) fn written(
        &self,
        delivered: Counts,
        refused: &RefusedRows,
        timings: WriteTimings,
    ) -> Written {
        Written {
            rows: delivered.rows,
            state: self.state.clone(),
            errors: ErrorCounts {
                transform_dropped: self.transform_dropped,
                dead_lettered: delivered.lettered,
                refused_rows: refused.count(),
                ..ErrorCounts::default()
            },
            timings,
            transactions: Transactions::default(),
        }
    }
}

/// The stateful step over the batch's rows, all partitions together: deduplication, the aggregation and
/// the transforms after it, or the rows as they are. A stateful group member's batch is one partition's,
/// ending at `task_end`.
pub(super) fn aggregate(
    plan: &Plan,
    batch: &ProcessedBatch,
    task_end: Option<i64>,
) -> anyhow::Result<Aggregated> {
    if plan.tasks.is_some() {
        // A stateful group member writes partition by partition (`partition_write.rs`).
        let ([chunk], [output]) = (batch.chunks.as_slice(), batch.outputs.as_slice()) else {
            anyhow::bail!("a group member's stateful step takes one partition at a time");
        };
        let Some(end) = task_end else {
            anyhow::bail!(
                "a group member's partition batch is aggregated with the offset it ends at"
            );
        };
        let tp = (chunk.topic.clone(), chunk.partition);
        return plan.aggregate_partition(&tp, output, end);
    }
    let (before, after) = batch.watermarks;
    let (rows, joined) = plan.join_streams(&batch.outputs, batch.watermarks)?;
    let mut aggregated = plan.aggregate(rows, before, after)?;
    aggregated.state.splice(0..0, joined);
    Ok(aggregated)
}

/// What one attempt at producing a batch came to.
pub(super) enum Delivered {
    /// Everything was acknowledged: the rows written and the source records dead-lettered for refused
    /// rows.
    Done(Counts),
    /// The transaction must be aborted and the batch produced again (the broker refused a row in it).
    Again,
}

pub(super) struct Counts {
    pub(super) rows: u64,
    lettered: u64,
}

/// Produces the batch's rows (less those refused earlier), late rows and dead letters, and flushes; rows
/// refused on the way go through `[sink] on_error`. In a transaction (`transactional`), a row the broker
/// refuses after the flush fails the transaction, so the attempt asks to be made again.
pub(super) fn deliver(
    plan: &Plan,
    sink: &KafkaSink,
    batch: &ProcessedBatch,
    output: &BatchOutput,
    refused: &mut RefusedRows,
    transactional: bool,
) -> anyhow::Result<Delivered> {
    let chunks = batch.chunks.as_slice();
    let (queued, at_once) = sink.write(&output.rows, &refused.rows)?;
    for write in &output.internal {
        sink.write_keyed(&write.topic, write.partition, &write.records)?;
    }
    let by_chunk = output.by_chunk.as_deref();
    refused.take(plan, sink, chunks, by_chunk, &output.rows, at_once)?;
    if let (Some(late), Some(watermark)) = (&output.late, &plan.spec().watermark) {
        if let Some(topic) = &watermark.late_data_topic {
            sink.write_json(topic, late)?;
        }
    }
    for (chunk, out) in chunks.iter().zip(&batch.outputs) {
        for letter in &out.dead_letters {
            let record = DeadLetter {
                chunk,
                row: letter.row,
                stage: &letter.stage,
                error: &letter.error,
            };
            sink.dead_letter(&letter.topic, record)?;
        }
    }
    let mut lettered = refused.send_letters(sink, chunks, &output.rows)?;
    let later = sink.flush()?;
    if later.is_empty() {
        let rows = queued as u64;
        return Ok(Delivered::Done(Counts { rows, lettered }));
    }
    let newly = later.len();
    refused.take(plan, sink, chunks, by_chunk, &output.rows, later)?;
    if transactional {
        return Ok(Delivered::Again);
    }
    lettered += refused.send_letters(sink, chunks, &output.rows)?;
    // Dead letters are not output rows: one refused fails this flush rather than being returned.
    sink.flush()?;
    Ok(Delivered::Done(Counts {
        rows: (queued - newly) as u64,
        lettered,
    }))
}
