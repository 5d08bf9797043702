//! The micro-batch loop: open the source and the sink, then, batch after batch, poll → the stateless step
//! per partition, in parallel (`stateless.rs`) → the watermark → write (`overlapped_write.rs`, which runs
//! the stateful step and commits) → report (`report.rs`), on tokio.
//!
//! The source and the sink are blocking clients, so each step runs on tokio's blocking pool while the loop
//! itself stays responsive to shutdown between batches. As fast as possible, three batches are in flight:
//! batch N+1 is read while batch N is processed and batch N-1 is written; writes stay one at a time and in
//! order. A batch's source offsets move forward only after its output (and dead letters) are acknowledged
//! by the broker: a failure never skips records.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use anyhow::Context;

use super::commit::Checkpointing;
use super::group::{BatchToken, GroupCommit, GroupRun, MemberBatches};
use super::opening::{open_io, serve_metrics, watermark_tracker};
use super::overlapped_write::{start_writing, BatchCommit, ProcessedBatch};
use super::plan::Plan;
use super::report::{BatchReport, InFlight, Reporter};
use super::stateless::ChunkOutput;
use crate::kafka::TopicPartition;
use crate::progress::{millis, offsets_json, ErrorCounts, EventTimeProgress, ProgressListener};
use crate::sink::Sink;
use crate::source::{PartitionChunk, Source, SourceBatch};
use crate::state::TableChanges;
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
    let checkpointing = checkpointing.map(Arc::new);
    let opening = Instant::now();
    let metrics = serve_metrics(&plan).await?;
    let spec = plan.spec();
    let group_member = spec.source.kafka().is_some_and(|k| k.consumer_group);
    let group = group_member.then(|| GroupRun::new(&plan));
    let (source, sink) = open_io(spec, checkpointing.as_ref(), group.as_ref(), opening).await?;
    let member = group.and_then(|group| group.member_batches(&source));
    let mut batches = BatchLoop::new(plan, reload, checkpointing, (source, sink), opening);
    batches.member = member;
    if let Some(server) = &metrics {
        server.metrics().set_ready(true);
        batches.reporter.metrics = Some(server.metrics().clone());
    }
    // The shutdown signal, pinned once and polled by every step that waits.
    tokio::pin!(shutdown);
    let ended: anyhow::Result<()> = async {
        while batches.step(&mut shutdown, listener).await? == Step::Next {}
        Ok(())
    }
    .await;
    // A batch still being written is finished and reported, even when the loop stopped on an error: its
    // output is then complete and committed, or not at all.
    let finished = match batches.writing.take() {
        Some(last) => batches.reporter.finish(last, listener).await,
        None => Ok(()),
    };
    // A batch read and never processed is settled: a group member's consumer, closed when the source is
    // dropped, gives its partitions up only once no batch is in flight.
    batches.read_token = None;
    ended?;
    finished?;
    Ok(batches.reporter.summary)
}

/// Whether the loop goes on after a step.
#[derive(Debug, PartialEq, Eq)]
enum Step {
    Next,
    Stop,
}

/// What the loop carries from one batch to the next.
struct BatchLoop {
    plan: Arc<Plan>,
    sink: Arc<Sink>,
    checkpointing: Option<Arc<Checkpointing>>,
    watermarks: Option<WatermarkTracker>,
    reporter: Reporter,
    /// The source is either idle here or inside the poll that is reading the next batch.
    idle_source: Option<Source>,
    polling: Option<Polling>,
    /// The batch being aggregated, produced and committed while the loop processes the next one.
    writing: Option<InFlight>,
    next_batch: u64,
    /// As a consumer group member: the member, and the token holding the batch just read in flight.
    member: Option<MemberBatches>,
    read_token: Option<BatchToken>,
    workers: usize,
    poll_wait: Duration,
    reload: bool,
    reload_checked: Instant,
    opening: Instant,
}

/// Per partition, the next offset to read.
type Offsets = std::collections::BTreeMap<TopicPartition, i64>;

/// A poll running on the blocking pool; it hands the source back with the batch.
type Polling = tokio::task::JoinHandle<(Source, anyhow::Result<SourceBatch>)>;

impl BatchLoop {
    fn new(
        plan: Arc<Plan>,
        reload: bool,
        checkpointing: Option<Arc<Checkpointing>>,
        (source, sink): (Source, Arc<Sink>),
        opening: Instant,
    ) -> BatchLoop {
        let spec = plan.spec();
        BatchLoop {
            reporter: Reporter::new(spec, checkpointing.as_deref(), &sink),
            watermarks: watermark_tracker(spec, &source, checkpointing.as_ref()),
            next_batch: checkpointing.as_ref().map_or(0, |c| c.resume.next_batch),
            workers: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1),
            poll_wait: spec
                .trigger
                .interval()
                .map_or(IDLE_POLL, |interval| interval.min(IDLE_POLL)),
            idle_source: Some(source),
            polling: None,
            writing: None,
            member: None,
            read_token: None,
            reload_checked: Instant::now(),
            plan,
            sink,
            checkpointing,
            reload,
            opening,
        }
    }

    /// One batch: poll it, run the stateless step on its partitions, move the watermark, and start writing
    /// it once the previous batch's write is done and reported.
    async fn step<S: Future<Output = ()>>(
        &mut self,
        shutdown: &mut Pin<&mut S>,
        listener: &mut dyn ProgressListener,
    ) -> anyhow::Result<Step> {
        self.reload_if_due().await?;
        let started = Instant::now();
        let wall_start = SystemTime::now();
        let Some(batch) = self.poll_next(shutdown).await? else {
            return Ok(Step::Stop);
        };
        let in_flight = self.read_token.take();
        let poll_ms = millis(started.elapsed());
        let watermark_before = self
            .watermarks
            .as_ref()
            .and_then(WatermarkTracker::watermark);
        if batch.chunks.is_empty() {
            // A quiet source: the batch written behind is reported now, not when the next records come.
            self.report_if_written(listener).await?;
            // With no records, only an idle partition timing out can move the watermark and close
            // windows.
            let moved = match self.watermarks.as_mut() {
                Some(tracker) => tracker.advance(Instant::now()) != watermark_before,
                None => false,
            };
            if !(self.plan.emits_on_watermark() && moved) {
                return Ok(Step::Next);
            }
        }

        let process_started = Instant::now();
        let chunks = Arc::new(batch.chunks);
        let outputs = process_in_parallel(&self.plan, &chunks, self.workers).await?;
        let process_ms = millis(process_started.elapsed());
        let watermark_after = self.observe_event_times(&chunks, &outputs);
        let mut errors = ErrorCounts::default();
        for output in &outputs {
            errors.add(&output.errors);
        }
        // The previous batch was written while this one was processed; state and transactions go in
        // order, so it must be done before this one starts.
        if let Some(previous) = self.writing.take() {
            self.reporter.finish(previous, listener).await?;
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
            watermark: self
                .watermarks
                .as_ref()
                .map(|_| EventTimeProgress::new(watermark_after)),
            consumer_lag: batch.lag,
            consumer_group: self.member.as_ref().map(MemberBatches::progress),
            event_times: self.event_times_for_metrics(),
            sink_started: Instant::now(),
        };
        let watermarks = (watermark_before, watermark_after);
        let group = (self.member.as_ref().zip(in_flight)).map(|(m, token)| GroupCommit {
            member: m.member.clone(),
            end: batch.end.clone(),
            _in_flight: token,
        });
        self.write_behind(
            chunks,
            (outputs, group),
            (batch.start, batch.end, batch.checkpoint_changes),
            watermarks,
            report,
        );
        self.wait_for_trigger(started, shutdown, listener).await
    }

    /// Each partition's latest event time, when the metrics show them (empty otherwise).
    fn event_times_for_metrics(&self) -> Vec<(TopicPartition, Option<i64>)> {
        match (&self.watermarks, &self.reporter.metrics) {
            (Some(tracker), Some(_)) => tracker
                .clocks(Instant::now())
                .map(|(partition, latest, _)| (partition.clone(), latest))
                .collect(),
            _ => Vec::new(),
        }
    }

    /// Reports the batch being written behind the loop if its write is done.
    async fn report_if_written(
        &mut self,
        listener: &mut dyn ProgressListener,
    ) -> anyhow::Result<()> {
        if self.writing.as_ref().is_some_and(|w| w.task.is_finished()) {
            let written = self.writing.take().expect("checked just above");
            self.reporter.finish(written, listener).await?;
        }
        Ok(())
    }

    /// Starts writing a processed batch behind the loop (`overlapped_write.rs`), with what its commit
    /// needs: the batch id, its offsets and the watermark.
    fn write_behind(
        &mut self,
        chunks: Arc<Vec<PartitionChunk>>,
        (outputs, group): (Vec<ChunkOutput>, Option<GroupCommit>),
        (start, end, source_changes): (Offsets, Offsets, Option<TableChanges>),
        watermarks: (Option<i64>, Option<i64>),
        report: BatchReport,
    ) {
        let commit = self.checkpointing.as_ref().map(|c| BatchCommit {
            checkpointing: c.clone(),
            start,
            end,
            source_changes,
            watermark: self
                .watermarks
                .as_ref()
                .map(WatermarkTracker::snapshot)
                .unwrap_or_default(),
        });
        let batch = ProcessedBatch {
            batch: self.next_batch,
            chunks,
            outputs,
            watermarks,
            commit,
            group,
        };
        self.writing = Some(InFlight {
            task: start_writing(self.plan.clone(), self.sink.clone(), batch),
            report,
        });
        self.next_batch += 1;
    }

    /// For `--reload`: swaps in changed modules and join tables, at most once per [`RELOAD_CHECK`].
    async fn reload_if_due(&mut self) -> anyhow::Result<()> {
        if !self.reload || self.reload_checked.elapsed() < RELOAD_CHECK {
            return Ok(());
        }
        self.reload_checked = Instant::now();
        let checking = self.plan.clone();
        for outcome in tokio::task::spawn_blocking(move || checking.reload_changed_files()).await? {
            match outcome {
                Ok(done) => tracing::info!("{done}"),
                Err(refused) => tracing::error!("{refused}"),
            }
        }
        Ok(())
    }

    /// The next batch (read ahead, or polled now), with watermark alignment applied to the source and,
    /// as fast as possible, the read of the batch after it started. `None` when the run is over: the
    /// source reached `endingOffsets`, or shutdown was asked for.
    async fn poll_next<S: Future<Output = ()>>(
        &mut self,
        shutdown: &mut Pin<&mut S>,
    ) -> anyhow::Result<Option<SourceBatch>> {
        let polled = match self.polling.take() {
            Some(prefetched) => prefetched,
            None => {
                let source = self
                    .idle_source
                    .take()
                    .expect("the source is idle when nothing is polling");
                if source.is_finished() {
                    tracing::info!(since_start = ?self.opening.elapsed(), "reached endingOffsets; stopping");
                    return Ok(None);
                }
                poll(source, self.poll_wait)
            }
        };
        let (mut returned, batch) = tokio::select! {
            joined = polled => joined?,
            () = shutdown.as_mut() => { tracing::info!("stopping on request"); return Ok(None); }
        };
        let batch = batch.context("polling the source")?;
        // In flight from now: a rebalance in the next poll waits for it before giving partitions up.
        self.read_token = self.member.as_ref().map(|m| m.in_flight.token());
        if let (Some(tracker), Some(drift), Source::Kafka(kafka)) = (
            &self.watermarks,
            self.plan
                .spec()
                .watermark
                .as_ref()
                .and_then(|w| w.max_drift),
            &mut returned,
        ) {
            // Watermark alignment, from what the batches processed so far showed (window/alignment.rs).
            let hold = partitions_to_hold(
                tracker,
                drift.as_millis() as i64,
                kafka.held(),
                &kafka.finished_partitions(),
                Instant::now(),
            );
            kafka.hold_back(&hold)?;
        }
        // As fast as possible, the next batch is read while this one is processed and written: reading
        // converts records to Arrow, which would otherwise leave the other core idle. Its offsets are
        // committed only after this batch's, as before.
        if self.plan.spec().trigger.interval().is_none() && !returned.is_finished() {
            self.polling = Some(poll(returned, self.poll_wait));
        } else {
            self.idle_source = Some(returned);
        }
        Ok(Some(batch))
    }

    /// Feeds each partition's largest event time to the watermark; returns the watermark after the batch.
    fn observe_event_times(
        &mut self,
        chunks: &[PartitionChunk],
        outputs: &[ChunkOutput],
    ) -> Option<i64> {
        let tracker = self.watermarks.as_mut()?;
        let now = Instant::now();
        for (chunk, output) in chunks.iter().zip(outputs) {
            tracker.observe(&chunk.watermark_partition(), output.max_event_time, now);
        }
        tracker.advance(now)
    }

    /// With `processingTime`, the batch is written and reported, then the loop sleeps until the next
    /// trigger; as fast as possible, it goes on at once.
    async fn wait_for_trigger<S: Future<Output = ()>>(
        &mut self,
        started: Instant,
        shutdown: &mut Pin<&mut S>,
        listener: &mut dyn ProgressListener,
    ) -> anyhow::Result<Step> {
        let Some(interval) = self.plan.spec().trigger.interval() else {
            return Ok(Step::Next);
        };
        if let Some(this) = self.writing.take() {
            self.reporter.finish(this, listener).await?;
        }
        tokio::select! {
            () = tokio::time::sleep_until((started + interval).into()) => Ok(Step::Next),
            () = shutdown.as_mut() => { tracing::info!("stopping on request"); Ok(Step::Stop) }
        }
    }
}

/// A poll for the next batch on tokio's blocking pool; hands the source back with the batch.
fn poll(mut source: Source, wait: Duration) -> Polling {
    tokio::task::spawn_blocking(move || {
        let batch = source.next_batch(wait);
        (source, batch)
    })
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
