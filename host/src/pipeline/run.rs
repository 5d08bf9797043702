//! The micro-batch loop: poll → process partitions in parallel → write → report, on tokio.
//!
//! The source and the sink are blocking clients, so each step runs on tokio's blocking pool while the loop
//! itself stays responsive to shutdown between batches. A batch's source offsets move forward only after
//! its output (and dead letters) are acknowledged by the broker: a failure never skips records.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use anyhow::Context;
use arrow_array::RecordBatch;
use arrow_select::concat::concat_batches;

use super::commit::Checkpointing;
use super::plan::{ChunkOutput, Plan};
use crate::aggregate::StateOperatorProgress;
use crate::config::Trigger;
use crate::progress::{
    millis, offsets_json, BatchProgress, Durations, ErrorCounts, EventTimeProgress,
    ProgressListener, SinkProgress, SourceProgress,
};
use crate::sink::{DeadLetter, KafkaSink};
use crate::source::{KafkaSource, PartitionChunk, SourceBatch, TopicPartition};
use crate::window::{WatermarkSnapshot, WatermarkTracker};

/// How long one poll waits for the first record when the trigger runs as fast as possible.
const IDLE_POLL: Duration = Duration::from_millis(500);

/// What a finished run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunSummary {
    /// Micro-batches with records.
    pub batches: u64,
    /// Records read.
    pub input_rows: u64,
    /// Records written to the sink.
    pub output_rows: u64,
    /// Records and rows that failed alone.
    pub errors: ErrorCounts,
}

/// How often `--reload` looks at the module files.
const RELOAD_CHECK: Duration = Duration::from_secs(1);

pub(crate) async fn run(
    plan: Arc<Plan>,
    reload: bool,
    checkpointing: Option<Checkpointing>,
    shutdown: impl Future<Output = ()>,
    listener: &mut dyn ProgressListener,
) -> anyhow::Result<RunSummary> {
    let spec = plan.spec().clone();
    let checkpointing = checkpointing.map(Arc::new);
    let source_options = spec.source.clone();
    let resume_positions = checkpointing
        .as_ref()
        .and_then(|c| c.resume.positions.clone());
    let opening = Instant::now();
    let opening_checkpoint = checkpointing.clone();
    let source = tokio::task::spawn_blocking(move || {
        let source = KafkaSource::open_resuming(source_options, resume_positions.as_ref())?;
        if let Some(c) = &opening_checkpoint {
            c.check_not_lost(source.positions().keys())?;
        }
        anyhow::Ok(source)
    })
    .await?
    .context("starting the Kafka source")?;
    tracing::info!(elapsed = ?opening.elapsed(), "source ready: partitions assigned and offsets resolved");
    let transactional_id = checkpointing.as_ref().and_then(|c| c.transactional_id());
    let sink = Arc::new(
        KafkaSink::open_with(
            spec.sink.options.clone(),
            spec.sink.format,
            transactional_id.as_deref(),
        )
        .context("starting the Kafka sink")?,
    );
    let mut next_batch = checkpointing.as_ref().map_or(0, |c| c.resume.next_batch);
    let workers = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    // Spark's query id: the checkpoint's, stable across restarts; without one, per pipeline name.
    let id = match &checkpointing {
        Some(c) => c.checkpoint.query_id().to_string(),
        None => format!("weir-{}", spec.name),
    };
    let run_id = uuid::Uuid::new_v4().to_string();
    let description = spec.source.description();
    let mut summary = RunSummary::default();
    let mut previous_start: Option<Instant> = None;
    let mut watermarks = spec.watermark.as_ref().map(|w| {
        let mut tracker = WatermarkTracker::new(w.delay_ms, w.idle_timeout);
        for partition in source.positions().keys() {
            tracker.add_partition(partition, Instant::now());
        }
        if let Some(snapshot) = checkpointing
            .as_ref()
            .and_then(|c| c.resume.watermark.as_ref())
        {
            tracker.restore(snapshot, Instant::now());
        }
        tracker
    });
    tokio::pin!(shutdown);
    let mut reload_checked = Instant::now();
    let poll_wait = match spec.trigger {
        Trigger::AsFastAsPossible => IDLE_POLL,
        Trigger::ProcessingTime(interval) => interval.min(IDLE_POLL),
    };
    // The source is either idle here or inside the poll that is reading the next batch.
    let mut idle_source = Some(source);
    let mut polling = None;

    loop {
        if reload && reload_checked.elapsed() >= RELOAD_CHECK {
            reload_checked = Instant::now();
            let checking = plan.clone();
            for outcome in
                tokio::task::spawn_blocking(move || checking.reload_changed_modules()).await?
            {
                match outcome {
                    Ok(done) => tracing::info!("{done}"),
                    Err(refused) => tracing::error!("{refused}"),
                }
            }
        }
        let started = Instant::now();
        let wall_start = SystemTime::now();
        let polled = match polling.take() {
            Some(prefetched) => prefetched,
            None => {
                let source = idle_source
                    .take()
                    .expect("the source is idle when nothing is polling");
                if source.is_finished() {
                    tracing::info!(since_start = ?opening.elapsed(), "reached endingOffsets; stopping");
                    break;
                }
                poll(source, poll_wait)
            }
        };
        let (returned, batch) = tokio::select! {
            joined = polled => joined?,
            () = &mut shutdown => { tracing::info!("stopping on request"); break; }
        };
        let batch = batch.context("polling the Kafka source")?;
        // As fast as possible, the next batch is read while this one is processed and written: reading
        // converts records to Arrow, which would otherwise leave the other core idle. Its offsets are
        // committed only after this batch's, as before.
        if spec.trigger == Trigger::AsFastAsPossible && !returned.is_finished() {
            polling = Some(poll(returned, poll_wait));
        } else {
            idle_source = Some(returned);
        }
        let poll_ms = started.elapsed().as_millis() as u64;
        let watermark_before = watermarks.as_ref().and_then(WatermarkTracker::watermark);
        if batch.chunks.is_empty() {
            // With no records, only an idle partition timing out can move the watermark and close windows.
            let moved = match watermarks.as_mut() {
                Some(tracker) => tracker.advance(Instant::now()) != watermark_before,
                None => false,
            };
            if !(plan.has_aggregation() && moved) {
                continue;
            }
        }

        let planning = Instant::now();
        if let Some(c) = &checkpointing {
            c.plan(next_batch, &batch.start, &batch.end)?;
        }
        let write_ahead = planning.elapsed();
        let process_started = Instant::now();
        let chunks = Arc::new(batch.chunks);
        let outputs = process_in_parallel(&plan, &chunks, workers).await?;
        let process_ms = millis(process_started.elapsed());
        let decode_ms = millis(outputs.iter().map(|o| o.timings.decode).sum());
        let transform_ms = millis(outputs.iter().map(|o| o.timings.transform).sum());
        let watermark_after = watermarks.as_mut().and_then(|tracker| {
            let now = Instant::now();
            for (chunk, output) in chunks.iter().zip(&outputs) {
                tracker.observe(
                    &(chunk.topic.clone(), chunk.partition),
                    output.max_event_time,
                    now,
                );
            }
            tracker.advance(now)
        });

        let sink_started = Instant::now();
        let mut errors = ErrorCounts::default();
        for output in &outputs {
            errors.add(&output.errors);
        }
        let commit = checkpointing.as_ref().map(|c| BatchCommit {
            checkpointing: c.clone(),
            batch: next_batch,
            end: batch.end.clone(),
            watermark: watermarks
                .as_ref()
                .map(WatermarkTracker::snapshot)
                .unwrap_or_default(),
        });
        let written = write_batch(
            &plan,
            &sink,
            &chunks,
            outputs,
            (watermark_before, watermark_after),
            commit,
        )
        .await?;
        next_batch += 1;
        errors.transform_dropped += written.transform_dropped;
        let output_rows = written.rows;
        let sink_ms = millis(sink_started.elapsed());

        let input_rows: u64 = chunks.iter().map(|c| c.batch.num_rows() as u64).sum();
        let elapsed = started.elapsed();
        let since_previous = previous_start.map(|p| started - p).unwrap_or(elapsed);
        previous_start = Some(started);
        let progress = BatchProgress {
            id: id.clone(),
            run_id: run_id.clone(),
            name: spec.name.clone(),
            timestamp: humantime::format_rfc3339_millis(wall_start).to_string(),
            batch_id: summary.batches,
            num_input_rows: input_rows,
            input_rows_per_second: rate(input_rows, since_previous),
            processed_rows_per_second: rate(input_rows, elapsed),
            duration_ms: Durations {
                trigger_execution: elapsed.as_millis() as u64,
                poll: poll_ms,
                process: process_ms,
                decode: decode_ms,
                transform: transform_ms,
                sink: sink_ms,
                aggregate: millis(written.timings.aggregate),
                produce: millis(written.timings.produce),
                checkpoint: millis(written.timings.checkpoint + write_ahead),
            },
            sources: vec![SourceProgress {
                description: description.clone(),
                start_offset: offsets_json(&batch.start),
                end_offset: offsets_json(&batch.end),
                num_input_rows: input_rows,
            }],
            sink: SinkProgress {
                description: sink.description(),
                num_output_rows: output_rows,
            },
            errors: errors.clone(),
            event_time: watermarks
                .as_ref()
                .map(|_| EventTimeProgress::new(watermark_after)),
            state_operators: written.state.into_iter().collect(),
        };
        listener.on_progress(&progress);
        summary.batches += 1;
        summary.input_rows += input_rows;
        summary.output_rows += output_rows;
        summary.errors.add(&errors);

        if let Trigger::ProcessingTime(interval) = spec.trigger {
            let next = started + interval;
            tokio::select! {
                () = tokio::time::sleep_until(next.into()) => {}
                () = &mut shutdown => { tracing::info!("stopping on request"); break; }
            }
        }
    }
    Ok(summary)
}

/// A poll for the next batch on tokio's blocking pool; hands the source back with the batch.
fn poll(
    mut source: KafkaSource,
    wait: Duration,
) -> tokio::task::JoinHandle<(KafkaSource, anyhow::Result<SourceBatch>)> {
    tokio::task::spawn_blocking(move || {
        let batch = source.next_batch(wait);
        (source, batch)
    })
}

fn rate(rows: u64, elapsed: Duration) -> f64 {
    let secs = elapsed.as_secs_f64();
    if secs > 0.0 {
        (rows as f64 / secs * 10.0).round() / 10.0
    } else {
        0.0
    }
}

/// Processes the chunks on up to `workers` blocking threads, each taking every `workers`-th partition, and
/// returns the outputs in chunk order.
async fn process_in_parallel(
    plan: &Arc<Plan>,
    chunks: &Arc<Vec<PartitionChunk>>,
    workers: usize,
) -> anyhow::Result<Vec<ChunkOutput>> {
    let workers = workers.clamp(1, chunks.len().max(1));
    let mut tasks = Vec::with_capacity(workers);
    for worker in 0..workers {
        let (plan, chunks) = (plan.clone(), chunks.clone());
        tasks.push(tokio::task::spawn_blocking(move || {
            (worker..chunks.len())
                .step_by(workers)
                .map(|i| plan.process_chunk(&chunks[i]).map(|out| (i, out)))
                .collect::<anyhow::Result<Vec<_>>>()
        }));
    }
    let mut outputs: Vec<(usize, ChunkOutput)> = Vec::with_capacity(chunks.len());
    for task in tasks {
        outputs.extend(task.await??);
    }
    outputs.sort_by_key(|(i, _)| *i);
    Ok(outputs.into_iter().map(|(_, out)| out).collect())
}

/// What writing a batch did.
struct Written {
    rows: u64,
    state: Option<StateOperatorProgress>,
    transform_dropped: u64,
    timings: WriteTimings,
}

/// Where writing a batch spent its time (see [`Durations`]).
#[derive(Default)]
struct WriteTimings {
    aggregate: Duration,
    produce: Duration,
    checkpoint: Duration,
}

/// What committing a batch to the checkpoint needs.
struct BatchCommit {
    checkpointing: Arc<Checkpointing>,
    batch: u64,
    end: std::collections::BTreeMap<TopicPartition, i64>,
    watermark: WatermarkSnapshot,
}

/// Runs the stateful part, produces everything of the batch and makes it durable: by a flush, or, with a
/// checkpoint, by its delivery guarantee's commit protocol (`commit.rs`).
async fn write_batch(
    plan: &Arc<Plan>,
    sink: &Arc<KafkaSink>,
    chunks: &Arc<Vec<PartitionChunk>>,
    outputs: Vec<ChunkOutput>,
    (watermark_before, watermark_after): (Option<i64>, Option<i64>),
    commit: Option<BatchCommit>,
) -> anyhow::Result<Written> {
    let (plan, sink, chunks) = (plan.clone(), sink.clone(), chunks.clone());
    tokio::task::spawn_blocking(move || {
        let produce = || {
            produce_batch(
                &plan,
                &sink,
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
        let beginning = Instant::now();
        let attempt = checkpointing.begin(&sink).and_then(|()| {
            let began = beginning.elapsed();
            let mut written = produce()?;
            let committing = Instant::now();
            let waited = checkpointing.commit(
                &sink,
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
            checkpointing.abandon(&sink);
        }
        attempt
    })
    .await?
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
