//! The micro-batch loop: poll → process partitions in parallel → write → report, on tokio.
//!
//! The source and the sink are blocking clients, so each step runs on tokio's blocking pool while the loop
//! itself stays responsive to shutdown between batches. As fast as possible, three batches are in flight:
//! batch N+1 is read while batch N is processed and batch N-1 is written (`write.rs`); writes stay one at
//! a time and in order. A batch's source offsets move forward only after its output (and dead letters) are
//! acknowledged by the broker: a failure never skips records.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use anyhow::Context;

use super::commit::Checkpointing;
use super::plan::{ChunkOutput, Plan};
use super::write::{start_writing, BatchCommit, ProcessedBatch, Written};
use crate::config::Trigger;
use crate::progress::{
    millis, offsets_json, BatchProgress, Durations, ErrorCounts, EventTimeProgress,
    ProgressListener, SinkProgress, SourceProgress,
};
use crate::sink::KafkaSink;
use crate::source::{KafkaSource, PartitionChunk, SourceBatch};
use crate::window::{partitions_to_hold, WatermarkTracker};

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
    // The sink starts while the source does: both wait on the broker (offsets, the group's offsets, the
    // transactional producer's fencing), ~100-200 ms each on tansu, which a short run would otherwise pay
    // twice.
    let transactional_id = checkpointing.as_ref().and_then(|c| c.transactional_id());
    let (sink_options, sink_format) = (spec.sink.options.clone(), spec.sink.format);
    let opening_sink = tokio::task::spawn_blocking(move || {
        KafkaSink::open_with(sink_options, sink_format, transactional_id.as_deref())
    });
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
    let sink = Arc::new(opening_sink.await?.context("starting the Kafka sink")?);
    tracing::info!(elapsed = ?opening.elapsed(), "sink ready");
    let mut next_batch = checkpointing.as_ref().map_or(0, |c| c.resume.next_batch);
    let workers = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let mut reporter = Reporter {
        // Spark's query id: the checkpoint's, stable across restarts; without one, per pipeline name.
        id: match &checkpointing {
            Some(c) => c.checkpoint.query_id().to_string(),
            None => format!("weir-{}", spec.name),
        },
        run_id: uuid::Uuid::new_v4().to_string(),
        name: spec.name.clone(),
        source: spec.source.description(),
        sink: sink.description(),
        previous_start: None,
        summary: RunSummary::default(),
    };
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
    // The batch being aggregated, produced and committed while the loop processes the next one.
    let mut writing: Option<InFlight> = None;

    let ended: anyhow::Result<()> = async {
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
                        return Ok(());
                    }
                    poll(source, poll_wait)
                }
            };
            let (returned, batch) = tokio::select! {
                joined = polled => joined?,
                () = &mut shutdown => { tracing::info!("stopping on request"); return Ok(()); }
            };
            let batch = batch.context("polling the Kafka source")?;
            let mut returned = returned;
            if let (Some(tracker), Some(drift)) = (
                &watermarks,
                spec.watermark.as_ref().and_then(|w| w.max_drift),
            ) {
                // Watermark alignment, from what the batches processed so far showed (window/alignment.rs).
                let hold = partitions_to_hold(
                    tracker,
                    drift.as_millis() as i64,
                    returned.held(),
                    &returned.finished_partitions(),
                    Instant::now(),
                );
                returned.hold_back(&hold)?;
            }
            // As fast as possible, the next batch is read while this one is processed and written: reading
            // converts records to Arrow, which would otherwise leave the other core idle. Its offsets are
            // committed only after this batch's, as before.
            if spec.trigger == Trigger::AsFastAsPossible && !returned.is_finished() {
                polling = Some(poll(returned, poll_wait));
            } else {
                idle_source = Some(returned);
            }
            let poll_ms = millis(started.elapsed());
            let watermark_before = watermarks.as_ref().and_then(WatermarkTracker::watermark);
            if batch.chunks.is_empty() {
                // With no records, only an idle partition timing out can move the watermark and close
                // windows.
                let moved = match watermarks.as_mut() {
                    Some(tracker) => tracker.advance(Instant::now()) != watermark_before,
                    None => false,
                };
                if !(plan.has_aggregation() && moved) {
                    continue;
                }
            }

            let process_started = Instant::now();
            let chunks = Arc::new(batch.chunks);
            let outputs = process_in_parallel(&plan, &chunks, workers).await?;
            let process_ms = millis(process_started.elapsed());
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
            let mut errors = ErrorCounts::default();
            for output in &outputs {
                errors.add(&output.errors);
            }
            // The previous batch was written while this one was processed; state and transactions go in
            // order, so it must be done before this one starts.
            if let Some(previous) = writing.take() {
                reporter.finish(previous, listener).await?;
            }
            let report = BatchReport {
                started,
                wall_start,
                poll_ms,
                process_ms,
                decode_ms: millis(outputs.iter().map(|o| o.timings.decode).sum()),
                transform_ms: millis(outputs.iter().map(|o| o.timings.transform).sum()),
                input_rows: chunks.iter().map(|c| c.batch.num_rows() as u64).sum(),
                start: offsets_json(&batch.start),
                end: offsets_json(&batch.end),
                errors,
                watermark: watermarks
                    .as_ref()
                    .map(|_| EventTimeProgress::new(watermark_after)),
                sink_started: Instant::now(),
            };
            let commit = checkpointing.as_ref().map(|c| BatchCommit {
                checkpointing: c.clone(),
                batch: next_batch,
                start: batch.start,
                end: batch.end,
                watermark: watermarks
                    .as_ref()
                    .map(WatermarkTracker::snapshot)
                    .unwrap_or_default(),
            });
            writing = Some(InFlight {
                task: start_writing(
                    plan.clone(),
                    sink.clone(),
                    ProcessedBatch {
                        chunks,
                        outputs,
                        watermarks: (watermark_before, watermark_after),
                        commit,
                    },
                ),
                report,
            });
            next_batch += 1;

            if let Trigger::ProcessingTime(interval) = spec.trigger {
                if let Some(this) = writing.take() {
                    reporter.finish(this, listener).await?;
                }
                let next = started + interval;
                tokio::select! {
                    () = tokio::time::sleep_until(next.into()) => {}
                    () = &mut shutdown => { tracing::info!("stopping on request"); return Ok(()); }
                }
            }
        }
    }
    .await;
    // A batch still being written is finished and reported, even when the loop stopped on an error: its
    // output is then complete and committed, or not at all.
    let finished = match writing.take() {
        Some(last) => reporter.finish(last, listener).await,
        None => Ok(()),
    };
    ended?;
    finished?;
    Ok(reporter.summary)
}

/// A batch being written, and what its progress report needs.
struct InFlight {
    /// The write, and when it was done.
    task: tokio::task::JoinHandle<anyhow::Result<(Written, Instant)>>,
    report: BatchReport,
}

/// What the loop knew of a batch when it started writing it.
struct BatchReport {
    started: Instant,
    wall_start: SystemTime,
    poll_ms: u64,
    process_ms: u64,
    decode_ms: u64,
    transform_ms: u64,
    input_rows: u64,
    start: BTreeMap<String, BTreeMap<String, i64>>,
    end: BTreeMap<String, BTreeMap<String, i64>>,
    errors: ErrorCounts,
    watermark: Option<EventTimeProgress>,
    sink_started: Instant,
}

/// Reports each written batch to the listener and keeps the run's totals.
struct Reporter {
    id: String,
    run_id: String,
    name: String,
    source: String,
    sink: String,
    previous_start: Option<Instant>,
    summary: RunSummary,
}

impl Reporter {
    /// Waits for the batch's write and reports it.
    async fn finish(
        &mut self,
        in_flight: InFlight,
        listener: &mut dyn ProgressListener,
    ) -> anyhow::Result<()> {
        let (written, done_at) = in_flight.task.await??;
        let report = in_flight.report;
        let mut errors = report.errors;
        errors.add(&written.errors);
        // Measured to when the write was done, not to when the loop got round to looking.
        let elapsed = done_at - report.started;
        let since_previous = self
            .previous_start
            .map(|p| report.started - p)
            .unwrap_or(elapsed);
        self.previous_start = Some(report.started);
        let progress = BatchProgress {
            id: self.id.clone(),
            run_id: self.run_id.clone(),
            name: self.name.clone(),
            timestamp: humantime::format_rfc3339_millis(report.wall_start).to_string(),
            batch_id: self.summary.batches,
            num_input_rows: report.input_rows,
            input_rows_per_second: rate(report.input_rows, since_previous),
            processed_rows_per_second: rate(report.input_rows, elapsed),
            duration_ms: Durations {
                trigger_execution: millis(elapsed),
                poll: report.poll_ms,
                process: report.process_ms,
                decode: report.decode_ms,
                transform: report.transform_ms,
                sink: millis(done_at - report.sink_started),
                aggregate: millis(written.timings.aggregate),
                produce: millis(written.timings.produce),
                checkpoint: millis(written.timings.checkpoint),
            },
            sources: vec![SourceProgress {
                description: self.source.clone(),
                start_offset: report.start,
                end_offset: report.end,
                num_input_rows: report.input_rows,
            }],
            sink: SinkProgress {
                description: self.sink.clone(),
                num_output_rows: written.rows,
            },
            errors: errors.clone(),
            event_time: report.watermark,
            state_operators: written.state.into_iter().collect(),
        };
        listener.on_progress(&progress);
        self.summary.batches += 1;
        self.summary.input_rows += report.input_rows;
        self.summary.output_rows += written.rows;
        self.summary.errors.add(&errors);
        Ok(())
    }
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
