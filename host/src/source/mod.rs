//! Source: Kafka records, or new files under a directory, in; Arrow batches out, split by partition (or
//! file) so they are decoded in parallel.

mod files;
mod kafka;
mod latest;
mod options;
mod records;

use std::collections::BTreeMap;
use std::time::Duration;

use arrow_schema::SchemaRef;

pub(crate) use files::{FileSource, FILES_READ_TABLE};
pub use files::{FileSourceFormat, FileSourceSpec, DEFAULT_MAX_FILE_AGE};
pub(crate) use kafka::{GroupMember, Handover, KafkaSource, Membership};
pub use latest::latest_offsets;
pub use options::{OffsetSpec, SourceOptions, TopicSelection};
pub(crate) use records::headers_field;
pub use records::{sample_records, source_schema, PartitionChunk, RecordOrigin};

use crate::kafka::TopicPartition;
use crate::state::TableChanges;

/// What a pipeline reads.
#[derive(Debug, Clone)]
pub enum SourceSpec {
    /// Kafka topics, with Spark's options.
    Kafka(SourceOptions),
    /// New files under a directory.
    Files(FileSourceSpec),
}

impl SourceSpec {
    /// The source as the plan, progress and checkpoint name it.
    ///
    /// ```
    /// use weir::{FileSourceFormat, FileSourceSpec, SourceSpec};
    /// let files = SourceSpec::Files(FileSourceSpec::new("in", FileSourceFormat::Text));
    /// assert_eq!(files.description(), "FileStreamSource[text in]");
    /// ```
    pub fn description(&self) -> String {
        match self {
            SourceSpec::Kafka(options) => options.description(),
            SourceSpec::Files(files) => files.description(),
        }
    }

    /// The schema of the records the source hands to the deserializer: Spark's Kafka source schema (also
    /// for the lines of files), or a Parquet source's declared schema.
    pub fn record_schema(&self) -> SchemaRef {
        match self {
            SourceSpec::Kafka(options) => source_schema(options.include_headers),
            SourceSpec::Files(FileSourceSpec {
                format: FileSourceFormat::Parquet { schema },
                ..
            }) => schema.clone(),
            SourceSpec::Files(_) => source_schema(false),
        }
    }

    /// The Kafka options, when the source is Kafka.
    pub fn kafka(&self) -> Option<&SourceOptions> {
        match self {
            SourceSpec::Kafka(options) => Some(options),
            SourceSpec::Files(_) => None,
        }
    }

    /// The Kafka options to change, when the source is Kafka.
    ///
    /// ```
    /// # use std::collections::BTreeMap;
    /// use weir::{SourceOptions, SourceSpec};
    /// let options = BTreeMap::from([
    ///     ("kafka.bootstrap.servers".to_string(), "localhost:9092".to_string()),
    ///     ("subscribe".to_string(), "tx".to_string()),
    /// ]);
    /// let mut source = SourceSpec::Kafka(SourceOptions::from_options(options)?);
    /// source.kafka_mut().unwrap().max_offsets_per_trigger = Some(10_000);
    /// # Ok::<(), weir::OptionError>(())
    /// ```
    pub fn kafka_mut(&mut self) -> Option<&mut SourceOptions> {
        match self {
            SourceSpec::Kafka(options) => Some(options),
            SourceSpec::Files(_) => None,
        }
    }
}

/// One micro-batch of records, split by partition (or file).
#[derive(Debug, Default)]
pub(crate) struct SourceBatch {
    /// The records, one chunk per partition that had any, in topic/partition order.
    pub chunks: Vec<PartitionChunk>,
    /// Where each partition stood before the batch (the next offset to read).
    pub start: BTreeMap<TopicPartition, i64>,
    /// Where each partition stands after the batch.
    pub end: BTreeMap<TopicPartition, i64>,
    /// Records left behind `end` in each partition, as far as the consumer knows (for the metrics).
    pub lag: Vec<(TopicPartition, i64)>,
    /// What the source keeps in the checkpoint, committed with the batch (the file source's files read).
    pub checkpoint_changes: Option<TableChanges>,
}

/// An open source.
pub(crate) enum Source {
    Kafka(Box<KafkaSource>),
    Files(FileSource),
}

impl Source {
    /// Reads the next batch, waiting at most about `max_wait` for the first record.
    pub(crate) fn next_batch(&mut self, max_wait: Duration) -> anyhow::Result<SourceBatch> {
        match self {
            Source::Kafka(kafka) => kafka.next_batch(max_wait),
            Source::Files(files) => files.next_batch(max_wait),
        }
    }

    /// A bounded run read everything it was to read.
    pub(crate) fn is_finished(&self) -> bool {
        match self {
            Source::Kafka(kafka) => kafka.is_finished(),
            Source::Files(files) => files.is_finished(),
        }
    }

    /// The partitions the watermark follows.
    pub(crate) fn partitions(&self) -> Vec<TopicPartition> {
        match self {
            Source::Kafka(kafka) => kafka.positions().keys().cloned().collect(),
            Source::Files(_) => vec![FileSource::position_key()],
        }
    }
}
