//! Sink: where rows go. Mostly to Kafka, in Spark's sink shape (`value`, optional `key`, `headers`,
//! `topic`, `partition` columns) or serialized as JSON or as Avro (its schema registered in a schema
//! registry); also to files (`files/`: Parquet or JSON lines, with a committed-files log) or the console.
//!
//! ```toml
//! [sink]
//! kafka.bootstrap.servers = "localhost:9092"
//! topic = "results"      # overrides a `topic` column; required when there is none
//! key_column = "id"      # the record key comes from this column instead of `key`
//! format = "json"        # or "avro" (with schema_registry), or "kafka" (the default): a `value` column
//! ```

mod by_partition;
mod console;
mod deliveries;
mod files;
mod kafka;
mod letters;
mod refusal;
mod rows;
mod spec;
mod transaction_ends;

use std::collections::BTreeMap;
use std::sync::Arc;

pub(crate) use by_partition::{is_fenced, PartitionProducers};
pub use files::FileSink;
pub(crate) use files::{check_file_schema, FilesLog};
pub use files::{committed_files, CommittedBatchFiles, CommittedFile, LOG_DIR};
pub(crate) use kafka::{AbortableTransaction, KafkaSink};
pub(crate) use letters::DeadLetter;
pub(crate) use refusal::Refusal;
pub use refusal::SinkOnError;
pub(crate) use rows::{check_sink_schema, SinkRows};
pub use spec::{ConsoleSpec, Delivery, FileFormat, FileSinkSpec, SinkFormat, SinkSpec, SinkTarget};
pub(crate) use transaction_ends::TransactionEnds;

use crate::kafka::{split_kafka_options, OptionError, FORBIDDEN_SINK_KEYS};
pub(crate) use console::ConsoleSink;

/// An open sink, of the spec's [`SinkTarget`].
pub(crate) enum Sink {
    Kafka(Box<KafkaSink>),
    /// A consumer group member's exactly-once output: a transaction per input partition.
    KafkaByPartition(Arc<PartitionProducers>),
    Files(FileSink),
    Console(ConsoleSink),
}

impl Sink {
    /// Spark's description of the sink, for progress reports.
    pub(crate) fn description(&self) -> String {
        match self {
            Sink::Kafka(kafka) => kafka.description(),
            Sink::KafkaByPartition(producers) => producers.description(),
            Sink::Files(files) => files.description(),
            Sink::Console(console) => console.description(),
        }
    }
}

/// The sink keys a pipeline file may use besides `kafka.*` options.
const SINK_OPTIONS: &[&str] = &[
    "kafka.*",
    "topic",
    "key_column",
    "format",
    "delivery",
    "on_error",
    "dead_letter_topic",
    "schema_registry",
    "subject",
];

/// The parsed sink options (none for a file or console sink).
#[derive(Debug, Clone, Default)]
pub struct SinkOptions {
    /// `topic`: the topic every row goes to, overriding a `topic` column.
    pub topic: Option<String>,
    /// `key_column`: the column whose value is the record key (default: the `key` column).
    pub key_column: Option<String>,
    /// `schema_registry`: with `format = "avro"`, the registry the rows' schema is registered in.
    pub schema_registry: Option<String>,
    /// `subject`: with `format = "avro"`, the subject it is registered under (default: `<topic>-value`).
    pub subject: Option<String>,
    /// Everything given as `kafka.*`, prefix removed, for librdkafka.
    pub kafka: BTreeMap<String, String>,
}

impl SinkOptions {
    /// Parses Spark-style sink options.
    ///
    /// ```
    /// use std::collections::BTreeMap;
    /// let options = BTreeMap::from([
    ///     ("kafka.bootstrap.servers".to_string(), "localhost:9092".to_string()),
    ///     ("topic".to_string(), "results".to_string()),
    /// ]);
    /// let sink = weir::SinkOptions::from_options(options).unwrap();
    /// assert_eq!(sink.topic.as_deref(), Some("results"));
    /// ```
    pub fn from_options(options: BTreeMap<String, String>) -> Result<SinkOptions, OptionError> {
        let (kafka, mut rest) = split_kafka_options(options, FORBIDDEN_SINK_KEYS)?;
        let topic = rest.remove("topic");
        let key_column = rest.remove("key_column");
        let schema_registry = rest.remove("schema_registry");
        let subject = rest.remove("subject");
        if let Some(key) = rest.keys().next() {
            return Err(OptionError::new(
                key.clone(),
                crate::spelling::unknown_key_message("sink option", key, SINK_OPTIONS),
            ));
        }
        Ok(SinkOptions {
            topic,
            key_column,
            schema_registry,
            subject,
            kafka,
        })
    }
}

impl SinkOptions {
    /// The registry and subject of an Avro sink: `subject`, or `<topic>-value`; an error names the missing
    /// option.
    pub(crate) fn avro_target(&self) -> Result<(&str, String), (&'static str, &'static str)> {
        let registry = self.schema_registry.as_deref().ok_or((
            "schema_registry",
            "missing: format = \"avro\" needs the schema registry's URL, e.g. \"http://localhost:8081\"",
        ))?;
        let subject = match (&self.subject, &self.topic) {
            (Some(subject), _) => subject.clone(),
            (None, Some(topic)) => format!("{topic}-value"),
            (None, None) => return Err((
                "subject",
                "missing: without a `topic` option, format = \"avro\" needs the registry subject",
            )),
        };
        Ok((registry, subject))
    }
}
