//! What a run opens before its first batch: the metrics endpoint, the source and the sink, and the
//! per-partition watermark over the partitions the source was given.

use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;

use super::commit::Checkpointing;
use super::group::GroupRun;
use super::{PipelineSpec, Plan, Trigger};
use crate::aggregate::OutputMode;
use crate::metrics::MetricsServer;
use crate::sink::{ConsoleSink, FileSink, KafkaSink, Sink, SinkTarget, TransactionEnds};
use crate::source::{
    FileSource, FileSourceSpec, KafkaSource, Membership, OffsetSpec, Source, SourceOptions,
    SourceSpec, TopicSelection, FILES_READ_TABLE,
};
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
/// producer's fencing), ~100-200 ms each on tansu, which a short run would otherwise pay twice. A consumer
/// group member (`group`) joins its group instead, and exactly once its sink is the per-partition
/// producers, opened as partitions are assigned.
pub(super) async fn open_io(
    spec: &PipelineSpec,
    checkpointing: Option<&Arc<Checkpointing>>,
    group: Option<&GroupRun>,
    opening: Instant,
) -> anyhow::Result<(Source, Arc<Sink>)> {
    let opening_sink = open_sink(spec, checkpointing, group);
    let membership = group.map(|g| g.membership.clone());
    let (mut source, trigger) = (spec.source.clone(), spec.trigger);
    // A stream-stream join's other topic is read by the same consumer, beside the source's.
    if let (Some(join), Some(kafka)) = (&spec.stream_join, source.kafka_mut()) {
        if let TopicSelection::Subscribe(topics) = &mut kafka.topics {
            topics.push(join.topic.clone());
        }
    }
    // A repartitioning member reads the repartition topic beside its input (`upstream.rs`).
    let upstreams = group.and_then(|g| g.upstreams.clone());
    if let (Some(upstreams), Some(kafka)) = (&upstreams, source.kafka_mut()) {
        if let TopicSelection::Subscribe(topics) = &mut kafka.topics {
            topics.push(upstreams.topic().to_string());
        }
    }
    let opening_checkpoint = checkpointing.cloned();
    let source = tokio::task::spawn_blocking(move || match source {
        SourceSpec::Kafka(options) => {
            if let Some(upstreams) = &upstreams {
                upstreams.prepare()?;
            }
            open_kafka(options, trigger, opening_checkpoint.as_deref(), membership)
                .map(Source::Kafka)
        }
        SourceSpec::Files(files) => {
            open_files(files, trigger, opening_checkpoint.as_deref()).map(Source::Files)
        }
    })
    .await?
    .context("starting the source")?;
    tracing::info!(elapsed = ?opening.elapsed(), "source ready");
    let sink = Arc::new(opening_sink.await?.context("starting the sink")?);
    tracing::info!(elapsed = ?opening.elapsed(), "sink ready");
    Ok((source, sink))
}

/// The Kafka source, at the checkpoint's positions; a bounded trigger stops at the offsets there now.
fn open_kafka(
    mut options: SourceOptions,
    trigger: Trigger,
    checkpointing: Option<&Checkpointing>,
    membership: Option<Membership>,
) -> anyhow::Result<Box<KafkaSource>> {
    if trigger.is_bounded() {
        options.ending = Some(OffsetSpec::Latest);
    }
    let resume_positions = checkpointing.and_then(|c| c.resume.positions.as_ref());
    let mut source = KafkaSource::open(options, resume_positions, membership)?;
    if trigger == Trigger::Once {
        source.read_all_in_one_batch();
    }
    if let Some(c) = checkpointing {
        c.check_not_lost(source.positions().keys())?;
    }
    Ok(Box::new(source))
}

/// The file source, knowing the files the checkpoint's batches read; a bounded trigger reads the files
/// there now.
fn open_files(
    spec: FileSourceSpec,
    trigger: Trigger,
    checkpointing: Option<&Checkpointing>,
) -> anyhow::Result<FileSource> {
    let (read, position) = match checkpointing {
        None => (Vec::new(), 0),
        Some(c) => {
            let table = c.checkpoint.state().table(FILES_READ_TABLE)?;
            let position = c
                .resume
                .positions
                .as_ref()
                .and_then(|p| p.values().next().copied());
            (table.entries()?, position.unwrap_or(0))
        }
    };
    let mut source = FileSource::open(spec, read, position, trigger.is_bounded())?;
    if trigger == Trigger::Once {
        source.read_all_in_one_batch();
    }
    Ok(source)
}

/// Starts opening the spec's sink on the blocking pool: the Kafka producer (with the checkpoint's
/// transactional id), the file sink's directory (checked against the checkpoint's last batch), or the
/// console.
fn open_sink(
    spec: &PipelineSpec,
    checkpointing: Option<&Arc<Checkpointing>>,
    group: Option<&GroupRun>,
) -> tokio::task::JoinHandle<anyhow::Result<Sink>> {
    let by_partition = group.and_then(|g| g.producers.clone());
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
            SinkTarget::Kafka if by_partition.is_some() => {
                Sink::KafkaByPartition(by_partition.expect("checked by the guard"))
            }
            SinkTarget::Kafka => Sink::Kafka(Box::new(KafkaSink::open(
                options,
                format,
                transactional_id.as_deref(),
                TransactionEnds::default(),
            )?)),
            SinkTarget::Files(files) => Sink::Files(FileSink::open(&files, committed, replacing)?),
            SinkTarget::Console(console) => Sink::Console(ConsoleSink::new(console)),
        })
    })
}

/// The per-partition watermark, over the partitions the source was assigned, restored from the checkpoint.
pub(super) fn watermark_tracker(
    spec: &PipelineSpec,
    source: &Source,
    checkpointing: Option<&Arc<Checkpointing>>,
) -> Option<WatermarkTracker> {
    let watermark = spec.watermark.as_ref()?;
    let mut tracker = WatermarkTracker::new(watermark.delay_ms, watermark.idle_timeout);
    for partition in source.partitions() {
        tracker.add_partition(&partition, Instant::now());
    }
    if let Some(snapshot) = checkpointing.and_then(|c| c.resume.watermark.as_ref()) {
        tracker.restore(snapshot, Instant::now());
    }
    Some(tracker)
}
