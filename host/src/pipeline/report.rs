//! Progress reports: what the loop knew of a batch when it started writing it, joined with what the write
//! did, becomes one `BatchProgress` (Spark's StreamingQueryProgress shape) for the listener, and the run's
//! totals.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use super::commit::Checkpointing;
use super::overlapped_write::Written;
use super::run::RunSummary;
use super::PipelineSpec;
use crate::kafka::TopicPartition;
use crate::metrics::Metrics;
use crate::progress::{
    millis, BatchProgress, ConsumerGroupProgress, Durations, ErrorCounts, EventTimeProgress,
    ProgressListener, SinkProgress, SourceProgress,
};
use crate::sink::Sink;

/// A batch being written, and what its progress report needs.
pub(super) struct InFlight {
    /// The write, and when it was done.
    pub(super) task: tokio::task::JoinHandle<anyhow::Result<(Written, Instant)>>,
    pub(super) report: BatchReport,
}

/// What the loop knew of a batch when it started writing it.
pub(super) struct BatchReport {
    pub(super) started: Instant,
    pub(super) wall_start: SystemTime,
    pub(super) poll_ms: u64,
    pub(super) process_ms: u64,
    pub(super) decode_ms: u64,
    pub(super) transform_ms: u64,
    pub(super) input_rows: u64,
    pub(super) start: BTreeMap<String, BTreeMap<String, i64>>,
    pub(super) end: BTreeMap<String, BTreeMap<String, i64>>,
    pub(super) errors: ErrorCounts,
    pub(super) watermark: Option<EventTimeProgress>,
    /// Each partition's latest event time, for the metrics.
    pub(super) event_times: Vec<(TopicPartition, Option<i64>)>,
    /// Offsets left to read in each partition after the batch, for the metrics.
    pub(super) consumer_lag: Vec<(TopicPartition, i64)>,
    /// As a consumer group member: its partitions when the batch was read.
    pub(super) consumer_group: Option<ConsumerGroupProgress>,
    pub(super) sink_started: Instant,
}

/// Reports each written batch to the listener and keeps the run's totals.
pub(super) struct Reporter {
    id: String,
    run_id: String,
    name: String,
    source: String,
    sink: String,
    previous_start: Option<Instant>,
    pub(super) summary: RunSummary,
    /// With `[metrics]`: updated from each report.
    pub(super) metrics: Option<Arc<Metrics>>,
}

impl Reporter {
    /// A reporter for a run of `spec` writing to `sink`. The query id is Spark's: the checkpoint's, stable
    /// across restarts; without one, per pipeline name.
    pub(super) fn new(
        spec: &PipelineSpec,
        checkpointing: Option<&Checkpointing>,
        sink: &Sink,
    ) -> Reporter {
        Reporter {
            id: match checkpointing {
                Some(c) => c.checkpoint.query_id().to_string(),
                None => format!("weir-{}", spec.name),
            },
            run_id: uuid::Uuid::new_v4().to_string(),
            name: spec.name.clone(),
            source: spec.source.description(),
            sink: sink.description(),
            previous_start: None,
            summary: RunSummary::default(),
            metrics: None,
        }
    }

    /// Waits for the batch's write and reports it.
    pub(super) async fn finish(
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
                consumer_group: report.consumer_group,
            }],
            sink: SinkProgress {
                description: self.sink.clone(),
                num_output_rows: written.rows,
            },
            errors: errors.clone(),
            event_time: report.watermark,
            state_operators: written.state,
        };
        if let Some(metrics) = &self.metrics {
            metrics.observe_batch(&progress);
            metrics.observe_event_times(&report.event_times, SystemTime::now());
            metrics.observe_consumer_lag(&report.consumer_lag);
            let transactions = written.transactions;
            metrics.observe_transactions(transactions.committed, transactions.aborted);
        }
        listener.on_progress(&progress);
        self.summary.batches += 1;
        self.summary.input_rows += report.input_rows;
        self.summary.output_rows += written.rows;
        self.summary.errors.add(&errors);
        Ok(())
    }
}

fn rate(rows: u64, elapsed: Duration) -> f64 {
    let secs = elapsed.as_secs_f64();
    if secs > 0.0 {
        (rows as f64 / secs * 10.0).round() / 10.0
    } else {
        0.0
    }
}
