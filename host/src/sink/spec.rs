//! What the sink stage is: where rows go, how they become records, and what a restart guarantees.

use std::path::PathBuf;

use super::{SinkOnError, SinkOptions};

/// The sink stage.
#[derive(Debug, Clone)]
pub struct SinkSpec {
    /// Where the rows go: Kafka (the default), files, or the console.
    pub target: SinkTarget,
    /// Kafka options and the target topic.
    pub options: SinkOptions,
    /// How rows become record values.
    pub format: SinkFormat,
    /// `delivery`: what a restart after a crash guarantees about the output.
    pub delivery: Delivery,
    /// `on_error`: what happens to a row the producer or the broker refuses for good.
    pub on_error: SinkOnError,
}

impl SinkSpec {
    /// One line for the plan `weir validate` prints.
    pub(crate) fn describe(&self) -> String {
        match &self.target {
            SinkTarget::Kafka => {
                let format = match self.format {
                    SinkFormat::Kafka => "value column",
                    SinkFormat::Json => "rows as JSON",
                    SinkFormat::Avro => "rows as Avro, schema registered",
                };
                let topic = self.options.topic.as_deref();
                let topic = topic.unwrap_or("from the topic column");
                format!("Kafka topic {topic} ({format})")
            }
            SinkTarget::Files(files) => {
                let by = match files.partition_by.as_slice() {
                    [] => String::new(),
                    columns => format!(", partitioned by {}", columns.join(", ")),
                };
                let format = files.format.extension();
                format!("{format} files under {}{by}", files.path.display())
            }
            SinkTarget::Console(console) => format!(
                "console, {} rows per batch{}",
                console.num_rows,
                if console.truncate {
                    ", values cut to 20 characters"
                } else {
                    ""
                }
            ),
        }
    }
}

/// The delivery guarantee of the sink (`[sink] delivery`).
///
/// ```toml
/// checkpointLocation = "checkpoints/fraud-window"
/// [sink]
/// delivery = "exactly-once"   # the default with a checkpointLocation; "at-least-once" otherwise
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// Output is flushed, then the checkpoint records the batch: a crash in between repeats the batch's
    /// output on restart (nothing is lost; some records may appear twice).
    AtLeastOnce,
    /// Each batch's output and its source offsets commit in one Kafka transaction, which is the commit
    /// point; consumers reading with `isolation.level = read_committed` see every result exactly once.
    ExactlyOnce,
}

impl Delivery {
    /// The delivery when none is given: exactly-once with a checkpoint, at-least-once without; always
    /// at-least-once to the console, whose output cannot be taken back, and to Kafka from a source that
    /// is not Kafka (`kafka_source`), whose positions cannot join the Kafka transaction.
    pub fn default_for(checkpointed: bool, kafka_source: bool, target: &SinkTarget) -> Delivery {
        let exactly_once = match target {
            SinkTarget::Kafka => kafka_source,
            SinkTarget::Files(_) => true,
            SinkTarget::Console(_) => false,
        };
        if checkpointed && exactly_once {
            Delivery::ExactlyOnce
        } else {
            Delivery::AtLeastOnce
        }
    }
}

/// Where the sink writes (`[sink] format`, and `path` for files).
///
/// ```toml
/// [sink]                      # Kafka: kafka.bootstrap.servers, topic, format = "kafka", "json" or "avro"
/// format = "parquet"          # files: "parquet" or "json" (JSON lines) with a `path`
/// path = "archive/cameras"
/// partitionBy = ["zip_code"]
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SinkTarget {
    /// Records produced to Kafka, shaped by [`SinkFormat`].
    Kafka,
    /// Files under a directory, listed batch by batch in its committed-files log.
    Files(FileSinkSpec),
    /// Each batch printed as a table on standard output.
    Console(ConsoleSpec),
}

/// A file sink: Spark's `writeStream.format("parquet").option("path", ...).partitionBy(...)`.
///
/// Each batch writes new files, then lists them in `<path>/_weir_log/<batch>.json`, the commit point: a
/// reader that takes its files from the log ([`crate::committed_files`]) never sees those of a failed
/// batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileSinkSpec {
    /// `path`: the output directory.
    pub path: PathBuf,
    /// `format`: Parquet or JSON lines.
    pub format: FileFormat,
    /// `partitionBy`: columns whose values name sub-directories (`zip_code=94105/`), Hive-style; they are
    /// not repeated inside the files.
    pub partition_by: Vec<String>,
}

/// The format of a file sink's files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileFormat {
    /// Apache Parquet, Snappy-compressed (Spark's default).
    Parquet,
    /// One JSON object per line, as `format = "json"` writes record values.
    JsonLines,
}

impl FileFormat {
    /// The files' extension.
    pub fn extension(self) -> &'static str {
        match self {
            FileFormat::Parquet => "parquet",
            FileFormat::JsonLines => "json",
        }
    }
}

/// The console sink: Spark's `format("console")`, for trying a pipeline out.
///
/// ```toml
/// [sink]
/// format = "console"
/// numRows = 20        # rows shown per batch (the default)
/// truncate = true     # cut values to 20 characters (the default)
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConsoleSpec {
    /// `numRows`: at most this many rows of each batch are shown.
    pub num_rows: usize,
    /// `truncate`: values longer than 20 characters are cut to 17 and `...`.
    pub truncate: bool,
}

impl Default for ConsoleSpec {
    fn default() -> ConsoleSpec {
        ConsoleSpec {
            num_rows: 20,
            truncate: true,
        }
    }
}

/// How the sink turns rows into Kafka records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SinkFormat {
    /// Spark's shape: a `value` column (string or binary) and optional `key`, `headers`, `topic`,
    /// `partition` columns.
    Kafka,
    /// Every column except `key`, `headers`, `topic` and `partition` written as one JSON object per row
    /// (Spark's `to_json(struct(*))`); those four keep their Kafka meaning.
    Json,
    /// The same columns as one Avro record per row in the Confluent wire format, its schema (derived from
    /// the columns) registered in the options' `schema_registry` under their `subject`.
    Avro,
}
