//! Kafka client plumbing shared by the source, the sink and the checkpoint: the `kafka.*` passthrough
//! options, the consumer settings Weir starts from, and the name of a topic partition.
//!
//! This is the bottom layer of the Kafka side: it knows librdkafka, and nothing of pipelines or stages.

mod consumer;
mod options;

pub(crate) use consumer::SourceContext;
pub use consumer::CONSUMER_DEFAULTS;
pub use options::{
    split_kafka_options, OptionError, Options, FORBIDDEN_SINK_KEYS, FORBIDDEN_SOURCE_KEYS,
};

/// A Kafka topic partition.
pub type TopicPartition = (String, i32);
