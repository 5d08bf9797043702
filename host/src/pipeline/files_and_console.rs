//! How a batch is written by the sinks without transactions: files and the console. The stateful step runs
//! first, as for Kafka (`overlapped_write.rs`); then, with a checkpoint, the batch's offsets are written
//! ahead, its rows written, and the batch committed by the sink's own protocol (`commit.rs`). Nothing is
//! refused or dead-lettered here: the spec allows no dead letters with these sinks.

use std::time::Instant;

use super::commit::committed_record;
use super::overlapped_write::{aggregate, ProcessedBatch, WriteTimings, Written};
use super::plan::Plan;
use super::stateful::Aggregated;
use crate::progress::ErrorCounts;
use crate::sink::{ConsoleSink, FileSink};

/// Writes a batch's rows as files and commits them through the sink's log and the checkpoint.
pub(super) fn write_files(
    plan: &Plan,
    sink: &FileSink,
    batch: ProcessedBatch,
) -> anyhow::Result<Written> {
    let (aggregated, mut timings) = aggregate_timed(plan, &batch)?;
    let commit = batch
        .commit
        .as_ref()
        .expect("a file sink runs with a checkpoint (checked by the spec)");
    let checkpointing = &commit.checkpointing;
    let changes = commit.take_changes();
    let planning = Instant::now();
    checkpointing.plan(batch.batch, &commit.start, &commit.end)?;
    let writing = Instant::now();
    let files = sink.write(batch.batch, &aggregated.rows)?;
    let committing = Instant::now();
    let state = (commit.watermark.clone(), changes.as_slice());
    let logged = checkpointing.commit_files(sink, batch.batch, &commit.end, state, files)?;
    timings.produce = committing - writing + logged;
    timings.checkpoint = (writing - planning) + committing.elapsed() - logged;
    Ok(written(aggregated, timings))
}

/// Prints a batch's rows; with a checkpoint, the batch commits after it is printed (at least once).
pub(super) fn print(
    plan: &Plan,
    sink: &ConsoleSink,
    batch: ProcessedBatch,
) -> anyhow::Result<Written> {
    let (aggregated, mut timings) = aggregate_timed(plan, &batch)?;
    if let Some(commit) = &batch.commit {
        commit
            .checkpointing
            .plan(batch.batch, &commit.start, &commit.end)?;
    }
    let printing = Instant::now();
    sink.show(batch.batch, &aggregated.rows)?;
    timings.produce = printing.elapsed();
    if let Some(commit) = &batch.commit {
        let committing = Instant::now();
        let checkpointing = &commit.checkpointing;
        let changes = commit.take_changes();
        let rows = aggregated.rows.num_rows() as u64;
        let record = committed_record(batch.batch, &commit.end, commit.watermark.clone(), rows);
        checkpointing.commit_after_output(&record, &changes)?;
        timings.checkpoint = committing.elapsed();
    }
    Ok(written(aggregated, timings))
}

/// The stateful step, and the time it took.
fn aggregate_timed(
    plan: &Plan,
    batch: &ProcessedBatch,
) -> anyhow::Result<(Aggregated, WriteTimings)> {
    let aggregating = Instant::now();
    let aggregated = aggregate(plan, batch, None)?;
    let timings = WriteTimings {
        aggregate: aggregating.elapsed(),
        ..WriteTimings::default()
    };
    Ok((aggregated, timings))
}

fn written(aggregated: Aggregated, timings: WriteTimings) -> Written {
    Written {
        rows: aggregated.rows.num_rows() as u64,
        state: aggregated.state,
        errors: ErrorCounts {
            transform_dropped: aggregated.transform_dropped,
            ..ErrorCounts::default()
        },
        timings,
        transactions: Default::default(),
    }
}
