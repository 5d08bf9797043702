//! Source: Kafka records in, Arrow batches of Spark's Kafka source schema out.

mod kafka;
mod latest;
mod options;
mod records;

pub(crate) use kafka::{KafkaSource, SourceBatch};
pub use latest::latest_offsets;
pub use options::{OffsetSpec, SourceOptions, TopicSelection};
pub(crate) use records::headers_field;
pub use records::{sample_records, source_schema, PartitionChunk};
