//! The Kafka consumer group that holds a checkpointed pipeline's committed offsets.
//!
//! Weir reads with `assign()` and never joins the group; the group exists so that exactly-once batches can
//! commit their source offsets inside their Kafka transaction (`send_offsets_to_transaction`), and so that a
//! restart can ask the broker which batch committed last. At-least-once pipelines commit here too, after
//! the checkpoint, which lets a restart notice a deleted checkpoint.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::Context;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerGroupMetadata};
use rdkafka::{Offset, TopicPartitionList};

use crate::kafka::{
    client_config, fetch_metadata_checked, offset_list, SourceContext, TopicPartition,
};
use crate::source::SourceOptions;

const TIMEOUT: Duration = Duration::from_secs(30);

/// A handle on the pipeline's consumer group.
pub(crate) struct GroupOffsets {
    consumer: BaseConsumer<SourceContext>,
    name: String,
}

impl GroupOffsets {
    /// A client for group `name`, with the source's `kafka.*` options (bootstrap servers, security).
    pub(crate) fn open(source: &SourceOptions, name: &str) -> anyhow::Result<GroupOffsets> {
        let mut config = client_config(&source.kafka);
        config
            .set("group.id", name)
            .set("client.id", "weir-commits")
            .set("enable.auto.commit", "false");
        let consumer: BaseConsumer<SourceContext> = config
            .create_with_context(SourceContext::default())
            .with_context(|| format!("creating a client for consumer group {name}"))?;
        // Reach the cluster now, so a wrong CA or password is named; this consumer is never assigned, so
        // polling it for librdkafka's errors takes no message.
        let serve_events = || {
            let _ = consumer.poll(Duration::ZERO);
        };
        fetch_metadata_checked(consumer.client(), None, TIMEOUT, serve_events)
            .with_context(|| format!("connecting the client for consumer group {name}"))?;
        Ok(GroupOffsets {
            consumer,
            name: name.to_string(),
        })
    }

    /// What a transactional producer needs to commit offsets for this group.
    pub(crate) fn metadata(&self) -> anyhow::Result<ConsumerGroupMetadata> {
        self.consumer
            .group_metadata()
            .context("reading the consumer group's metadata")
    }

    /// The offsets the group has committed for `partitions` (partitions without one are left out).
    pub(crate) fn committed<'a>(
        &self,
        partitions: impl IntoIterator<Item = &'a TopicPartition>,
    ) -> anyhow::Result<BTreeMap<TopicPartition, i64>> {
        let mut list = TopicPartitionList::new();
        for (topic, partition) in partitions {
            list.add_partition(topic, *partition);
        }
        if list.count() == 0 {
            return Ok(BTreeMap::new());
        }
        let committed = self
            .consumer
            .committed_offsets(list, TIMEOUT)
            .with_context(|| {
                format!(
                    "reading the offsets committed by consumer group {}",
                    self.name
                )
            })?;
        Ok(committed
            .elements()
            .iter()
            .filter_map(|e| match e.offset() {
                Offset::Offset(o) => Some(((e.topic().to_string(), e.partition()), o)),
                _ => None,
            })
            .collect())
    }

    /// Commits `offsets` for the group outside any transaction (at-least-once pipelines).
    pub(crate) fn commit(&self, offsets: &BTreeMap<TopicPartition, i64>) -> anyhow::Result<()> {
        self.consumer
            .commit(&offset_list(offsets)?, CommitMode::Sync)
            .with_context(|| format!("committing offsets for consumer group {}", self.name))
    }
}
