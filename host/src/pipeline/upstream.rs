//! A repartitioning group member's upstream tasks: one per input partition it owns. Each batch's rows,
//! after the stateless stages, are split by their group keys and written to every partition of the
//! repartition topic (`repartition/`), in the input partition's transaction with its offsets; the
//! aggregation runs downstream, in the repartition partitions' tasks (`tasks.rs`).
//!
//! A task keeps where its chain of attempts stands (the offset its last batch ended at) and its largest
//! event time, whose watermark goes with every write. Neither needs restoring when the partition moves:
//! the new owner starts at the committed offset, and a downstream task never lets an upstream's
//! watermark go back.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::Mutex;

use anyhow::Context;
use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use rdkafka::config::ClientConfig;

use crate::kafka::{client_config, ensure_topic, TopicPartition, TopicWrite};
use crate::repartition::chain::NOTHING_COMMITTED;
use crate::repartition::{record, repartition_topic, route};
use crate::PipelineSpec;

/// The member's upstream tasks; see the module's doc.
pub(crate) struct Upstreams {
    topic: String,
    /// The repartition topic's partitions, once it exists ([`Upstreams::prepare`]).
    partitions: AtomicI32,
    /// The group keys' columns in the rows.
    keys: Vec<usize>,
    delay_ms: Option<i64>,
    input_topics: Vec<String>,
    kafka: ClientConfig,
    tasks: Mutex<BTreeMap<TopicPartition, Upstream>>,
}

/// One input partition's task.
struct Upstream {
    /// The offset the last batch ended at, or the committed offset it started at.
    position: i64,
    max_event_time: Option<i64>,
}

impl Upstreams {
    /// The upstream tasks of a member whose aggregation reads rows of `rows` through the repartition
    /// topic, else `None`.
    pub(crate) fn plan(spec: &PipelineSpec, rows: &SchemaRef) -> anyhow::Result<Option<Upstreams>> {
        let (true, Some(aggregate), Some(kafka)) =
            (spec.repartitions(), &spec.aggregate, spec.source.kafka())
        else {
            return Ok(None);
        };
        let keys = (aggregate.group_by.iter())
            .map(|key| {
                rows.index_of(key)
                    .with_context(|| format!("aggregate.group_by: `{key}` is not a column"))
            })
            .collect::<anyhow::Result<Vec<usize>>>()?;
        let input_topics = match &kafka.topics {
            crate::source::TopicSelection::Subscribe(topics) => topics.clone(),
            _ => anyhow::bail!("a repartitioning member names its input topics with `subscribe`"),
        };
        Ok(Some(Upstreams {
            topic: repartition_topic(&spec.name),
            partitions: AtomicI32::new(0),
            keys,
            delay_ms: spec.watermark.as_ref().map(|w| w.delay_ms),
            input_topics,
            kafka: client_config(&spec.sink.options.kafka),
            tasks: Mutex::default(),
        }))
    }

    /// The repartition topic, which the member reads beside its input.
    pub(crate) fn topic(&self) -> &str {
        &self.topic
    }

    /// Creates the repartition topic, one partition per input partition, unless it exists.
    pub(crate) fn prepare(&self) -> anyhow::Result<()> {
        let topics: Vec<&str> = self.input_topics.iter().map(String::as_str).collect();
        let partitions = ensure_topic(&self.kafka, &self.topic, &topics, false)?;
        self.partitions.store(partitions, Ordering::Relaxed);
        Ok(())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<TopicPartition, Upstream>> {
        self.tasks.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Starts the task of `tp`, given to this instance at its `committed` offset; returns the marker its
    /// new owner writes there (`repartition/chain.rs`).
    pub(crate) fn start(
        &self,
        tp: &TopicPartition,
        committed: Option<i64>,
    ) -> anyhow::Result<Vec<TopicWrite>> {
        let position = committed.unwrap_or(NOTHING_COMMITTED);
        self.lock().insert(
            tp.clone(),
            Upstream {
                position,
                max_event_time: None,
            },
        );
        self.writes(tp, (position, position), None, None)
    }

    /// Drops the tasks of `partitions`, given up.
    pub(crate) fn release(&self, partitions: &[TopicPartition]) {
        let mut tasks = self.lock();
        for tp in partitions {
            tasks.remove(tp);
        }
    }

    /// Partition `tp`'s `rows` of a batch ending at offset `end`, with the largest event time among its
    /// records: one write to every repartition partition, and the markers to append once they committed
    /// (so that downstream tasks can count them; `repartition/chain.rs`).
    pub(crate) fn run(
        &self,
        tp: &TopicPartition,
        rows: &RecordBatch,
        max_event_time: Option<i64>,
        end: i64,
    ) -> anyhow::Result<(Vec<TopicWrite>, Vec<TopicWrite>)> {
        let (from, watermark) = {
            let mut tasks = self.lock();
            let task = tasks
                .get_mut(tp)
                .with_context(|| format!("{}-{} has no upstream task", tp.0, tp.1))?;
            task.max_event_time = task.max_event_time.max(max_event_time);
            let from = std::mem::replace(&mut task.position, end);
            (from, self.watermark(task.max_event_time))
        };
        let parts = route::split_by_keys(rows, &self.keys, self.partition_count()?)?;
        let writes = self.writes(tp, (from, end), watermark, Some(parts))?;
        let markers = self.writes(tp, (end, end), watermark, None)?;
        Ok((writes, markers))
    }

    fn watermark(&self, max_event_time: Option<i64>) -> Option<i64> {
        max_event_time
            .zip(self.delay_ms)
            .map(|(time, delay)| time - delay)
    }

    fn partition_count(&self) -> anyhow::Result<usize> {
        match self.partitions.load(Ordering::Relaxed) {
            0 => anyhow::bail!("the repartition topic {} is not prepared", self.topic),
            n => Ok(n as usize),
        }
    }

    /// One record per repartition partition: its part of `parts`, or a marker.
    fn writes(
        &self,
        tp: &TopicPartition,
        offsets: (i64, i64),
        watermark: Option<i64>,
        parts: Option<Vec<RecordBatch>>,
    ) -> anyhow::Result<Vec<TopicWrite>> {
        let count = self.partition_count()?;
        (0..count)
            .map(|partition| {
                let rows = parts.as_ref().map(|parts| &parts[partition]);
                let value = record::encode(tp, offsets, watermark, rows)?;
                Ok(TopicWrite {
                    topic: self.topic.clone(),
                    partition: partition as i32,
                    records: vec![(Vec::new(), Some(value), Vec::new())],
                })
            })
            .collect()
    }
}
