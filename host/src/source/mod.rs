//! Source: Kafka records in, Arrow batches of Spark's Kafka source schema out.

mod kafka;
mod latest;
mod options;
mod records;

pub use kafka::{KafkaSource, SourceBatch, DEFAULT_MAX_RECORDS_PER_BATCH};
pub use latest::latest_offsets;
pub use options::{OffsetSpec, SourceOptions, TopicSelection, SOURCE_OPTIONS};
pub use records::{headers_field, sample_records, source_schema, PartitionChunk};
