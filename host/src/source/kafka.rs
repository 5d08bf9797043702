//! The Kafka source: resolves topics and offsets the way Spark does, then polls micro-batches.
//!
//! Partitions are *assigned*, never joined through a consumer group, so the source starts at once and its
//! offsets are Weir's own (Spark keeps them in its checkpoint and commits nothing to Kafka; Weir does the
//! same). With `consumerGroup = true` the source is a group member instead, and instances of the pipeline
//! share the partitions (`kafka/group.rs`). Each micro-batch is split by partition, so partitions can be
//! processed in parallel and the offsets of each are known exactly.
//!
//! This file opens the consumer and polls; `kafka/assignment.rs` works out which partitions to read and
//! from which offsets.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use arrow_schema::SchemaRef;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};

use super::options::SourceOptions;
use super::records::{source_schema, ChunkBuilder, PartitionChunk};
use super::SourceBatch;
use crate::kafka::{SourceContext, TopicPartition, CONSUMER_DEFAULTS};

mod assignment;
mod group;

pub(crate) use group::{GroupMember, Handover, Membership};

/// Records per micro-batch when `maxOffsetsPerTrigger` is not set: bounds the memory of one batch. 50,000
/// ran the reference workload as fast as 100,000 once the next batch was read ahead, with less memory.
pub(crate) const DEFAULT_MAX_RECORDS_PER_BATCH: u64 = 50_000;
/// The `once` trigger's batch closes early (the rest following in another batch) when the broker sends
/// nothing for this long.
const WHOLE_BATCH_STALL: Duration = Duration::from_secs(30);
/// How often subscribed topics are checked for new partitions (and patterns for new topics).
const DISCOVERY_INTERVAL: Duration = Duration::from_secs(5);
/// How long metadata and offset look-ups may take before the source gives up.
const METADATA_TIMEOUT: Duration = Duration::from_secs(30);

/// Moves a partition's position forward (never back: the consumer's own position may already be ahead).
fn advance(positions: &mut BTreeMap<TopicPartition, i64>, tp: TopicPartition, to: i64) {
    let position = positions.entry(tp).or_insert(to);
    *position = (*position).max(to);
}

/// A Kafka source reading assigned partitions from resolved offsets.
pub(crate) struct KafkaSource {
    consumer: Arc<BaseConsumer<SourceContext>>,
    options: SourceOptions,
    schema: SchemaRef,
    /// The next offset to read, per assigned partition.
    positions: BTreeMap<TopicPartition, i64>,
    /// Where a bounded query stops, per partition.
    ending: Option<BTreeMap<TopicPartition, i64>>,
    last_discovery: Instant,
    bootstrap: String,
    /// The consumer's configuration, for the `latest` probe.
    config: ClientConfig,
    /// Partitions paused by watermark alignment ([`KafkaSource::hold_back`]).
    held: BTreeSet<TopicPartition>,
    /// The `once` trigger: the first batch reads to the ending offsets, however many records that is.
    whole: bool,
    /// As a consumer group member: the member, and the rebalances it has yet to apply.
    member: Option<GroupMember>,
}

impl KafkaSource {
    /// Connects, resolves the partitions and the starting (and ending) offsets, and assigns them.
    /// Partitions in `resume` (a checkpoint's committed positions) start there; only partitions new since
    /// then use `startingOffsets`, as in Spark. A resume position the broker no longer holds (retention, a
    /// deleted topic) is data loss, handled per `failOnDataLoss`.
    ///
    /// With `membership`, the source joins the group instead, and the group's committed offsets say where
    /// each partition it is given starts.
    pub(crate) fn open(
        options: SourceOptions,
        resume: Option<&BTreeMap<TopicPartition, i64>>,
        membership: Option<Membership>,
    ) -> anyhow::Result<KafkaSource> {
        let mut config = ClientConfig::new();
        match &membership {
            // Cooperative: a rebalance moves only the partitions that change owner.
            Some(membership) => config
                .set("group.id", &membership.group)
                .set("partition.assignment.strategy", "cooperative-sticky"),
            None => config.set("group.id", format!("weir-source-{}", uuid::Uuid::new_v4())),
        };
        config
            .set("client.id", "weir-source")
            .set("enable.partition.eof", "true");
        for (key, value) in CONSUMER_DEFAULTS {
            config.set(*key, *value);
        }
        for (key, value) in &options.kafka {
            config.set(key, value);
        }
        // Weir owns offsets: never commit, and report out-of-range instead of jumping silently.
        config
            .set("enable.auto.commit", "false")
            .set("auto.offset.reset", "error");
        let bootstrap = options
            .kafka
            .get("bootstrap.servers")
            .cloned()
            .unwrap_or_default();
        let consumer: Arc<BaseConsumer<SourceContext>> = Arc::new(
            config
                .create_with_context(SourceContext::default())
                .context("creating the Kafka consumer")?,
        );
        let client_config = config.clone();
        let mut source = KafkaSource {
            consumer,
            schema: source_schema(options.include_headers),
            options,
            positions: BTreeMap::new(),
            ending: None,
            last_discovery: Instant::now(),
            bootstrap,
            config: client_config,
            held: BTreeSet::new(),
            whole: false,
            member: None,
        };
        if let Some(membership) = membership {
            source.join_group(membership)?;
            return Ok(source);
        }
        let partitions = source.resolve_partitions(true)?;
        let starting = source.options.starting.clone();
        let mut starts = source.resolve_offsets(&partitions, &starting, "startingOffsets")?;
        if let Some(resume) = resume {
            for (tp, &position) in resume {
                if !partitions.contains(tp) {
                    source.data_loss_of_partition(tp)?;
                    continue;
                }
                let (low, _) = source.watermarks(tp)?;
                if position < low {
                    source.data_loss(tp, position, low)?;
                    starts.insert(tp.clone(), low);
                } else {
                    starts.insert(tp.clone(), position);
                }
            }
        }
        if let Some(ending) = source.options.ending.clone() {
            source.ending = Some(source.resolve_offsets(&partitions, &ending, "endingOffsets")?);
        }
        source.assign(starts, false)?;
        Ok(source)
    }

    /// For the `once` trigger: the next batch reads up to the ending offsets, with no cap on its records,
    /// waiting for the broker as long as records keep coming.
    pub(crate) fn read_all_in_one_batch(&mut self) {
        self.whole = true;
    }

    /// The next offset to read, per partition.
    pub(crate) fn positions(&self) -> &BTreeMap<TopicPartition, i64> {
        &self.positions
    }

    /// The partitions a bounded query has read to their ending offsets.
    pub(crate) fn finished_partitions(&self) -> BTreeSet<TopicPartition> {
        let Some(ending) = &self.ending else {
            return BTreeSet::new();
        };
        ending
            .iter()
            .filter(|(tp, end)| self.positions.get(*tp).is_some_and(|p| p >= *end))
            .map(|(tp, _)| tp.clone())
            .collect()
    }

    /// The partitions held back by watermark alignment now.
    pub(crate) fn held(&self) -> &BTreeSet<TopicPartition> {
        &self.held
    }

    /// Pauses the partitions in `held` and resumes those held before and not now (watermark alignment,
    /// `crate::window::partitions_to_hold`). librdkafka drops what it had fetched for a paused partition
    /// and fetches again from the next unread offset on resume, so nothing is skipped or read twice.
    pub(crate) fn hold_back(&mut self, held: &BTreeSet<TopicPartition>) -> anyhow::Result<()> {
        let finished = self.finished_partitions();
        let list = |partitions: Vec<&TopicPartition>| {
            let mut list = TopicPartitionList::new();
            for (topic, partition) in partitions {
                list.add_partition(topic, *partition);
            }
            list
        };
        let pause: Vec<&TopicPartition> = held.difference(&self.held).collect();
        let resume: Vec<&TopicPartition> = self
            .held
            .difference(held)
            .filter(|tp| !finished.contains(*tp))
            .collect();
        if !pause.is_empty() {
            tracing::debug!(?pause, "holding back partitions ahead in event time");
            self.consumer
                .pause(&list(pause))
                .context("pausing partitions ahead in event time")?;
        }
        if !resume.is_empty() {
            tracing::debug!(?resume, "resuming partitions back within the drift");
            self.consumer
                .resume(&list(resume))
                .context("resuming partitions held back")?;
        }
        self.held = held.clone();
        Ok(())
    }

    /// Whether a bounded query has read everything up to its ending offsets.
    pub(crate) fn is_finished(&self) -> bool {
        match &self.ending {
            None => false,
            Some(ending) => ending
                .iter()
                .all(|(tp, end)| self.positions.get(tp).is_some_and(|p| p >= end)),
        }
    }

    /// Polls one micro-batch: waits up to `max_wait` for the first record, then takes what has arrived, up
    /// to `maxOffsetsPerTrigger` records.
    pub(crate) fn next_batch(&mut self, max_wait: Duration) -> anyhow::Result<SourceBatch> {
        let assigned_here = self.member.is_none();
        if assigned_here
            && self.ending.is_none()
            && self.last_discovery.elapsed() >= DISCOVERY_INTERVAL
        {
            self.discover()?;
        }
        let start = self.positions.clone();
        let cap = match self.whole {
            true => usize::MAX,
            false => self
                .options
                .max_offsets_per_trigger
                .unwrap_or(DEFAULT_MAX_RECORDS_PER_BATCH) as usize,
        };
        let deadline = Instant::now() + max_wait;
        let mut last_record = Instant::now();
        let mut builders: Vec<ChunkBuilder> = Vec::new();
        let mut count = 0usize;
        // Per record: find the partition's builder, compare with its end, append. Positions and the
        // finished check are updated per batch, or when a partition reaches its end.
        let mut finished = self.is_finished();
        while count < cap && !finished {
            let timeout = if count == 0 {
                deadline.saturating_duration_since(Instant::now())
            } else if self.whole {
                max_wait
            } else {
                Duration::ZERO
            };
            let polled = self.consumer.poll(timeout);
            count -=
                Self::apply_rebalances(self.member.as_ref(), &mut self.positions, &mut builders)?;
            let message = match polled {
                // `once` waits for the rest as long as the broker keeps sending.
                None if self.whole && count > 0 && last_record.elapsed() < WHOLE_BATCH_STALL => {
                    continue
                }
                None => break,
                Some(Ok(message)) => message,
                Some(Err(KafkaError::PartitionEOF(_))) => {
                    // Control records (transaction markers) have offsets but are never delivered, so the
                    // consumer's own position is the truth at the end of a partition.
                    self.catch_up_positions()?;
                    continue;
                }
                Some(Err(error)) => {
                    self.handle_error(error)?;
                    continue;
                }
            };
            let (partition, offset) = (message.partition(), message.offset());
            let index = self.chunk_builder(&mut builders, message.topic(), partition);
            let builder = &mut builders[index];
            if builder.end.is_some_and(|end| offset >= end) {
                self.pause(&(builder.topic.clone(), partition))?;
                continue;
            }
            builder.append(&message);
            count += 1;
            last_record = Instant::now();
            if builder.end.is_some_and(|end| offset + 1 >= end) {
                advance(
                    &mut self.positions,
                    (builder.topic.clone(), partition),
                    offset + 1,
                );
                finished = self.is_finished();
            }
        }
        self.close_batch(builders, start)
    }

    /// The index in `builders` of the chunk of `topic`-`partition`, made (with the partition's end, for a
    /// bounded query) at its first record in the batch.
    fn chunk_builder(
        &self,
        builders: &mut Vec<ChunkBuilder>,
        topic: &str,
        partition: i32,
    ) -> usize {
        if let Some(index) = builders
            .iter()
            .position(|b| b.partition == partition && b.topic == topic)
        {
            return index;
        }
        let end = self
            .ending
            .as_ref()
            .and_then(|e| e.get(&(topic.to_string(), partition)).copied());
        builders.push(ChunkBuilder::new(
            topic,
            partition,
            self.schema.clone(),
            self.options.include_headers,
            end,
        ));
        builders.len() - 1
    }

    /// Moves the positions past the batch's records (and past transaction markers at partition ends),
    /// and returns the batch's chunks in topic-partition order.
    fn close_batch(
        &mut self,
        builders: Vec<ChunkBuilder>,
        start: BTreeMap<TopicPartition, i64>,
    ) -> anyhow::Result<SourceBatch> {
        for builder in builders.iter().filter(|b| b.len() > 0) {
            advance(
                &mut self.positions,
                (builder.topic.clone(), builder.partition),
                builder.last_offset() + 1,
            );
        }
        if self.consumer.context().take_reached_end() {
            self.catch_up_positions()?;
        }
        let mut chunks: Vec<PartitionChunk> = builders
            .into_iter()
            .filter(|b| b.len() > 0)
            .map(ChunkBuilder::finish)
            .collect();
        chunks.sort_by(|a, b| (&a.topic, a.partition).cmp(&(&b.topic, b.partition)));
        Ok(SourceBatch {
            chunks,
            start,
            end: self.positions.clone(),
            lag: self.lag(),
            checkpoint_changes: None,
        })
    }

    /// Records left in each assigned partition after its position: the high watermark librdkafka last
    /// had from the broker (it comes with every fetch response, so no request is made), less the next
    /// offset to read. Partitions with no fetch yet are left out.
    fn lag(&self) -> Vec<(TopicPartition, i64)> {
        let client = self.consumer.client().native_ptr();
        self.positions
            .iter()
            .filter_map(|((topic, partition), position)| {
                let name = std::ffi::CString::new(topic.as_str()).ok()?;
                let (mut low, mut high) = (0i64, 0i64);
                // SAFETY: the client lives as long as `self.consumer`; the topic name is a valid C string
                // for the call; librdkafka only writes the two offsets, and reads its own cache.
                let error = unsafe {
                    rdkafka::bindings::rd_kafka_get_watermark_offsets(
                        client,
                        name.as_ptr(),
                        *partition,
                        &mut low,
                        &mut high,
                    )
                };
                let known = error
                    == rdkafka::bindings::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR
                    && high >= 0;
                known.then(|| ((topic.clone(), *partition), (high - position).max(0)))
            })
            .collect()
    }

    fn catch_up_positions(&mut self) -> anyhow::Result<()> {
        let positions = self
            .consumer
            .position()
            .context("reading consumer positions")?;
        for element in positions.elements() {
            if let Offset::Offset(offset) = element.offset() {
                let tp = (element.topic().to_string(), element.partition());
                if let Some(position) = self.positions.get_mut(&tp) {
                    *position = (*position).max(offset);
                }
            }
        }
        Ok(())
    }

    fn pause(&self, tp: &TopicPartition) -> anyhow::Result<()> {
        let mut list = TopicPartitionList::new();
        list.add_partition(&tp.0, tp.1);
        self.consumer
            .pause(&list)
            .context("pausing a finished partition")?;
        Ok(())
    }
}
