//! What a run opens before its first batch: the metrics endpoint, the source and the sink, and the
//! per-partition watermark over the partitions the source was given.

use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;

use super::commit::Checkpointing;
use super::{PipelineSpec, Plan, Trigger};
use crate::aggregate::OutputMode;
use crate::metrics::MetricsServer;
use crate::sink::{ConsoleSink, FileSink, KafkaSink, Sink, SinkTarget};
use crate::source::{KafkaSource, OffsetSpec};
use crate::window::WatermarkTracker;

/// With `[metrics]`, the endpoint, served from before the source opens so that `/health` answers and
/// `/ready` says "not yet" while it does.
pub(super) async fn serve_metrics(plan: &Plan) -> anyhow::Result<Option<MetricsServer>> {
    let spec = plan.spec();
    match &spec.metrics {
        Some(metrics) => Ok(Some(
            MetricsServer::start(metrics, &spec.name, plan.udf_call_counts()).await?,
        )),
        None => Ok(None),
    }
}

/// Opens the source (from the checkpoint's positions, checking that none was lost) and the sink. The sink
/// starts while the source does: both wait on the broker (offsets, the group's offsets, the transactional
/// producer's fencing), ~100-200 ms each on tansu, which a short run would otherwise pay twice.
pub(super) async fn open_io(
    spec: &PipelineSpec,
    checkpointing: Option<&Arc<Checkpointing>>,
    opening: Instant,
) -> anyhow::Result<(KafkaSource, Arc<Sink>)> {
    let opening_sink = open_sink(spec, checkpointing);
    let mut source_options = spec.source.clone();
    let trigger = spec.trigger;
    if trigger.is_bounded() {
        source_options.ending = Some(OffsetSpec::Latest);
    }
    let resume_positions = checkpointing.and_then(|c| c.resume.positions.clone());
    let opening_checkpoint = checkpointing.cloned();
    let source = tokio::task::spawn_blocking(move || {
        let mut source = KafkaSource::open(source_options, resume_positions.as_ref())?;
        if trigger == Trigger::Once {
            source.read_all_in_one_batch();
        }
        if let Some(c) = &opening_checkpoint {
            c.check_not_lost(source.positions().keys())?;
        }
        anyhow::Ok(source)
    })
    .await?
    .context("starting the Kafka source")?;
    tracing::info!(elapsed = ?opening.elapsed(), "source ready: partitions assigned and offsets resolved");
    let sink = Arc::new(opening_sink.await?.context("starting the sink")?);
    tracing::info!(elapsed = ?opening.elapsed(), "sink ready");
    Ok((source, sink))
}

/// Starts opening the spec's sink on the blocking pool: the Kafka producer (with the checkpoint's
/// transactional id), the file sink's directory (checked against the checkpoint's last batch), or the
/// console.
fn open_sink(
    spec: &PipelineSpec,
    checkpointing: Option<&Arc<Checkpointing>>,
) -> tokio::task::JoinHandle<anyhow::Result<Sink>> {
    let target = spec.sink.target.clone();
    let (options, format) = (spec.sink.options.clone(), spec.sink.format);
    let transactional_id = checkpointing.and_then(|c| c.transactional_id());
    let committed = checkpointing
        .map(|c| c.resume.next_batch)
        .and_then(|next| next.checked_sub(1));
    // In complete mode every batch writes the whole result, which replaces the last one.
    let replacing = spec
        .aggregate
        .as_ref()
        .is_some_and(|a| a.output_mode == OutputMode::Complete);
    tokio::task::spawn_blocking(move || {
        Ok(match target {
            SinkTarget::Kafka => Sink::Kafka(Box::new(KafkaSink::open(
                options,
                format,
                transactional_id.as_deref(),
            )?)),
            SinkTarget::Files(files) => Sink::Files(FileSink::open(&files, committed, replacing)?),
            SinkTarget::Console(console) => Sink::Console(ConsoleSink::new(console)),
        })
    })
}

/// The per-partition watermark, over the partitions the source was assigned, restored from the checkpoint.
pub(super) fn watermark_tracker(
    spec: &PipelineSpec,
    source: &KafkaSource,
    checkpointing: Option<&Arc<Checkpointing>>,
) -> Option<WatermarkTracker> {
    let watermark = spec.watermark.as_ref()?;
    let mut tracker = WatermarkTracker::new(watermark.delay_ms, watermark.idle_timeout);
    for partition in source.positions().keys() {
        tracker.add_partition(partition, Instant::now());
    }
    if let Some(snapshot) = checkpointing.and_then(|c| c.resume.watermark.as_ref()) {
        tracker.restore(snapshot, Instant::now());
    }
    Some(tracker)
}
