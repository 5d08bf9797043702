//! Kafka client plumbing shared by the source, the sink and the checkpoint: the `kafka.*` passthrough
//! options, the consumer settings Weir starts from, the delivery-checked producer, the start-up check that
//! names a failed TLS or SASL handshake, the topics Weir keeps for itself (changelogs), and the name of a
//! topic partition.
//!
//! This is the bottom layer of the Kafka side: it knows librdkafka, and nothing of pipelines or stages.

use anyhow::Context;

mod connection;
mod consumer;
mod options;
mod producer;
mod topics;

pub(crate) use connection::{fetch_metadata_checked, HandshakeFailure, RecordsHandshakes};
pub use consumer::CONSUMER_DEFAULTS;
pub(crate) use consumer::{Rebalancing, SourceContext};
pub use options::OptionError;
pub(crate) use options::{split_kafka_options, FORBIDDEN_SINK_KEYS, FORBIDDEN_SOURCE_KEYS};
pub use producer::CheckedProducer;
pub(crate) use producer::{flush_in_steps, send_waiting, DeliveryFailures};
pub(crate) use topics::{
    ensure_topic, partitions_of, read_partitions, KeyedRecord, StoredRecord, TopicWrite,
};

/// `kafka.*` options (prefix removed) as a librdkafka configuration, for a client Weir adds its own
/// settings to afterwards.
pub(crate) fn client_config(
    options: &std::collections::BTreeMap<String, String>,
) -> rdkafka::ClientConfig {
    let mut config = rdkafka::ClientConfig::new();
    for (key, value) in options {
        config.set(key, value);
    }
    config
}

/// A Kafka topic partition.
pub(crate) type TopicPartition = (String, i32);

/// `offsets` as the list librdkafka commits (for a group, or inside a transaction).
pub(crate) fn offset_list(
    offsets: &std::collections::BTreeMap<TopicPartition, i64>,
) -> anyhow::Result<rdkafka::TopicPartitionList> {
    let mut list = rdkafka::TopicPartitionList::new();
    for ((topic, partition), offset) in offsets {
        list.add_partition_offset(topic, *partition, rdkafka::Offset::Offset(*offset))
            .with_context(|| format!("listing offset {offset} of {topic}-{partition}"))?;
    }
    Ok(list)
}
