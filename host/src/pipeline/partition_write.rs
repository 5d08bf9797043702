//! A stateful consumer group member's write, partition by partition: each partition's rows, dead letters
//! and state changes (its task's changelog records, `tasks.rs`) go out with its offset.
//! - **Exactly once**: in a transaction of the partition's own producer (`sink/by_partition.rs`), the
//!   partitions in parallel. A partition whose producer was fenced has moved to another instance: its output
//!   is dropped, and its new owner, which starts from the last committed offset and the state committed with
//!   it, writes it.
//! - **At least once**: through the instance's one producer, partition after partition, flushed; then the
//!   batch's offsets are committed to the group. A task's changes are acknowledged before its offset is
//!   committed, so its changelog always reaches the committed offset, and a restore as of that offset
//!   (`state/changelog.rs`) skips the changes of a batch whose offset never committed, as it skips an
//!   aborted transaction's: the state matches the offset, and only output can be written twice.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;

use rdkafka::consumer::ConsumerGroupMetadata;

use super::commit::crash_point;
use super::group::GroupCommit;
use super::overlapped_write::{
    deliver, BatchOutput, Delivered, ProcessedBatch, Transactions, WriteTimings, Written,
    TRANSACTION_ATTEMPTS,
};
use super::plan::Plan;
use super::refused::RefusedRows;
use super::stateless::ChunkOutput;
use crate::kafka::{TopicPartition, TopicWrite};
use crate::sink::{is_fenced, AbortableTransaction, KafkaSink, PartitionProducers};
use crate::source::PartitionChunk;

/// Writes `batch` partition by partition; see the module's doc.
pub(super) fn write_by_partition(
    plan: &Plan,
    producers: &PartitionProducers,
    batch: ProcessedBatch,
) -> anyhow::Result<Written> {
    let group = batch
        .group
        .as_ref()
        .expect("a group member's batch commits with the group");
    let metadata = group.member.metadata()?;
    let parts = by_partition(batch.batch, &batch.chunks, batch.outputs, batch.watermarks);
    let written: Vec<anyhow::Result<Option<Written>>> = std::thread::scope(|s| {
        let writing: Vec<_> = parts
            .iter()
            .map(|part| s.spawn(|| write_partition(plan, producers, part, group, &metadata)))
            .collect();
        writing
            .into_iter()
            .map(|w| w.join().expect("writing a partition does not panic"))
            .collect()
    });
    let mut total = Written::default();
    for partition in written {
        if let Some(w) = partition? {
            total.add(w);
        }
    }
    Ok(total)
}

/// At least once; see the module's doc.
pub(super) fn write_by_partition_at_least_once(
    plan: &Plan,
    sink: &KafkaSink,
    batch: ProcessedBatch,
) -> anyhow::Result<Written> {
    let group = batch
        .group
        .as_ref()
        .expect("a group member's batch commits with the group");
    let mut total = Written::default();
    let mut timings = WriteTimings::default();
    let parts = by_partition(batch.batch, &batch.chunks, batch.outputs, batch.watermarks);
    let mut kept = Vec::new();
    for part in parts {
        let chunk = &part.chunks[0];
        let aggregating = Instant::now();
        let end = group.end[&(chunk.topic.clone(), chunk.partition)];
        let output = BatchOutput::new(plan, sink, &part, Some(end))?;
        let producing = Instant::now();
        let mut refused = RefusedRows::new(plan.spec().sink.on_error.clone());
        let Delivered::Done(counts) = deliver(plan, sink, &part, &output, &mut refused, false)?
        else {
            unreachable!("without a transaction every attempt is delivered");
        };
        if counts.rows > 0 || !output.internal.is_empty() {
            crash_point("produced", batch.batch);
        }
        timings.aggregate += producing - aggregating;
        timings.produce += producing.elapsed();
        total.add(output.written(counts, &refused, WriteTimings::default()));
        kept.push(((chunk.topic.clone(), chunk.partition), output.internal));
    }
    if group.commit_offsets(batch.batch) {
        if let Some(tasks) = &plan.tasks {
            for (tp, internal) in kept {
                tasks.keep_locally(&tp, &internal, sink);
            }
        }
    }
    total.timings = timings;
    Ok(total)
}

/// Batch `number`'s chunks and their outputs as one batch per partition.
fn by_partition(
    number: u64,
    chunks: &[PartitionChunk],
    outputs: Vec<ChunkOutput>,
    watermarks: (Option<i64>, Option<i64>),
) -> Vec<ProcessedBatch> {
    (chunks.iter().zip(outputs))
        .map(|(chunk, output)| ProcessedBatch {
            batch: number,
            chunks: Arc::new(vec![chunk.clone()]),
            outputs: vec![output],
            watermarks,
            commit: None,
            group: None,
        })
        .collect()
}

/// One partition's transaction, made again (a few times at most) when the broker refused a row in it.
/// `None` when the partition's producer was fenced or closed: the partition is another instance's now.
fn write_partition(
    plan: &Plan,
    producers: &PartitionProducers,
    part: &ProcessedBatch,
    group: &GroupCommit,
    metadata: &ConsumerGroupMetadata,
) -> anyhow::Result<Option<Written>> {
    let chunk = &part.chunks[0];
    let tp = (chunk.topic.clone(), chunk.partition);
    let Some(sink) = producers.get(&tp) else {
        tracing::warn!(
            "batch {}: {}-{} was given up while the batch was written; its new owner writes it",
            part.batch,
            tp.0,
            tp.1
        );
        return Ok(None);
    };
    let producing = Instant::now();
    let end = group.end[&tp];
    let output = BatchOutput::new(plan, &sink, part, Some(end))?;
    let offsets = BTreeMap::from([(tp.clone(), end)]);
    let mut refused = RefusedRows::new(plan.spec().sink.on_error.clone());
    for attempt in 1..=TRANSACTION_ATTEMPTS {
        let attempted = sink.begin().and_then(|()| {
            match deliver(plan, &sink, part, &output, &mut refused, true)? {
                Delivered::Done(counts) => {
                    // A task's changes and an upstream's rows are output too (`produced` of a repartition).
                    if counts.rows > 0 || !output.internal.is_empty() {
                        crash_point("produced", part.batch);
                    }
                    sink.send_offsets(&offsets, metadata)?;
                    sink.commit()?;
                    Ok(Some(counts))
                }
                Delivered::Again => Ok(None),
            }
        });
        match attempted {
            Ok(Some(counts)) => {
                let timings = WriteTimings {
                    produce: producing.elapsed(),
                    ..WriteTimings::default()
                };
                let mut written = output.written(counts, &refused, timings);
                written.transactions = Transactions {
                    committed: 1,
                    aborted: u64::from(attempt) - 1,
                };
                if let Some(tasks) = &plan.tasks {
                    tasks.keep_locally(&tp, &output.internal, &sink);
                }
                // Without its marker a committed batch waits downstream for the partition's next one.
                if let Err(e) = write_markers(producers, &tp, &output.after_commit) {
                    tracing::warn!(
                        "batch {}: {e:#}; the partition's next batch marks it",
                        part.batch
                    );
                }
                return Ok(Some(written));
            }
            Err(error) if is_fenced(&error) => {
                producers.release(std::slice::from_ref(&tp));
                if let Some(tasks) = &plan.tasks {
                    tasks.release(std::slice::from_ref(&tp));
                }
                tracing::warn!(
                    "batch {}: {}-{} was taken by another instance, whose producer fenced this one's; this instance's output for it is dropped and the new owner writes it",
                    part.batch,
                    tp.0,
                    tp.1
                );
                return Ok(None);
            }
            Ok(None) => {}
            Err(error)
                if error.downcast_ref::<AbortableTransaction>().is_some()
                    && attempt < TRANSACTION_ATTEMPTS =>
            {
                tracing::warn!(
                    "batch {} on {}-{}: {error:#}; producing it again",
                    part.batch,
                    tp.0,
                    tp.1
                );
            }
            Err(error) => {
                let _ = sink.abort();
                return Err(error);
            }
        }
        if let Err(e) = sink.abort() {
            tracing::warn!("aborting a transaction of {}-{}: {e:#}", tp.0, tp.1);
        }
        refused.restart();
    }
    anyhow::bail!(
        "batch {} on {}-{}: the broker refused rows in {TRANSACTION_ATTEMPTS} transactions in a row",
        part.batch,
        tp.0,
        tp.1
    )
}

/// Writes `markers` (`upstream.rs`) in a transaction of `tp`'s producer; nothing when the partition is no
/// longer this instance's.
pub(super) fn write_markers(
    producers: &PartitionProducers,
    tp: &TopicPartition,
    markers: &[TopicWrite],
) -> anyhow::Result<()> {
    let Some(sink) = producers.get(tp) else {
        return Ok(());
    };
    let written = sink.begin().and_then(|()| {
        for write in markers {
            sink.write_keyed(&write.topic, write.partition, &write.records)?;
        }
        sink.commit()
    });
    if written.is_err() {
        let _ = sink.abort();
    }
    written.with_context(|| format!("marking {}-{} in the repartition topic", tp.0, tp.1))
}

impl Written {
    /// Adds another partition's write to this one.
    fn add(&mut self, other: Written) {
        self.rows += other.rows;
        self.errors.add(&other.errors);
        self.timings.produce = self.timings.produce.max(other.timings.produce);
        self.transactions.committed += other.transactions.committed;
        self.transactions.aborted += other.transactions.aborted;
        // Each partition has state of its own: the operators' counts are the partitions' sums.
        for state in other.state {
            match (self.state.iter_mut()).find(|s| s.operator_name == state.operator_name) {
                Some(total) => total.add(&state),
                None => self.state.push(state),
            }
        }
    }
}
