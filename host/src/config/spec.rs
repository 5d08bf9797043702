//! What a pipeline is made of: the typed form of a pipeline file, also built directly by the Rust API.

use std::path::PathBuf;
use std::time::Duration;

use arrow_schema::SchemaRef;

use crate::sink::SinkOptions;
use crate::source::SourceOptions;
use crate::udf::UdfLimits;

/// A whole pipeline: source → deserializer → transforms → sink, and how often it triggers.
#[derive(Debug, Clone)]
pub struct PipelineSpec {
    /// A name for logs and progress reports (default: the pipeline file's stem).
    pub name: String,
    /// The Kafka source.
    pub source: SourceOptions,
    /// How Kafka records become rows.
    pub deserializer: DeserializerSpec,
    /// WebAssembly transforms, applied in order.
    pub transforms: Vec<TransformSpec>,
    /// Event time and the watermark, taken from the deserialized rows of each partition.
    pub watermark: Option<WatermarkSpec>,
    /// A stateful aggregation after the transforms.
    pub aggregate: Option<crate::aggregate::AggregateSpec>,
    /// WebAssembly transforms applied to the aggregation's output (e.g. `count > 1`).
    pub after_aggregate: Vec<TransformSpec>,
    /// The Kafka sink.
    pub sink: SinkSpec,
    /// When micro-batches start.
    pub trigger: Trigger,
    /// `checkpointLocation`: the folder of the pipeline's checkpoint (sled), from which a restart resumes.
    pub checkpoint: Option<PathBuf>,
    /// `minBatchesToRetain`: how many of the last committed batches keep their records in the checkpoint
    /// (Spark's `spark.sql.streaming.minBatchesToRetain`); older ones are removed as batches commit.
    pub min_batches_to_retain: u64,
}

/// `[watermark]`: which column holds event time, how late records may be, when a silent partition stops
/// holding the watermark back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatermarkSpec {
    /// The event-time column of the deserialized rows (Int64 milliseconds or a timestamp).
    pub column: String,
    /// The watermark delay (Spark's `withWatermark` threshold) in ms.
    pub delay_ms: i64,
    /// A partition that sends nothing for this long stops holding the watermark back.
    pub idle_timeout: Duration,
    /// Watermark alignment: a partition more than this far ahead of the slowest in event time is paused at
    /// the source until the slowest catches up, which bounds the open state; `None` turns it off.
    pub max_drift: Option<Duration>,
    /// Where rows that arrive behind the watermark go (as JSON), besides being counted.
    pub late_data_topic: Option<String>,
}

/// The deserializer stage.
#[derive(Debug, Clone)]
pub struct DeserializerSpec {
    /// A built-in format or a WebAssembly UDF.
    pub format: DecodeFormat,
    /// What happens to a record that cannot be deserialized.
    pub on_error: OnError,
}

/// How record values are decoded.
#[derive(Debug, Clone)]
pub enum DecodeFormat {
    /// `format = "json"`: one JSON object per value, read with arrow-json into `schema`.
    Json {
        /// The columns to read.
        schema: SchemaRef,
        /// `mode = "PERMISSIVE"`: a malformed record becomes a row of nulls (with the raw value in
        /// `columnNameOfCorruptRecord`, if set) instead of an error.
        permissive: bool,
        /// `columnNameOfCorruptRecord`: a string column that receives the raw value of malformed records.
        corrupt_record_column: Option<String>,
        /// `strict = true`: a value whose JSON type is not its column's (`"1"` for INT, a fraction for
        /// BIGINT, a number for TIMESTAMP), a repeated key or an integer out of range makes the record
        /// malformed, as in Spark's `from_json`, instead of being converted by arrow-json.
        strict: bool,
    },
    /// `format = "string"`: one `value` string column (key, topic, partition, offset, timestamp kept).
    String,
    /// `format = "binary"`: the Kafka records as they are.
    Binary,
    /// `udf = "path.wasm"`: a WebAssembly deserializer.
    Udf(UdfSpec),
}

/// A WebAssembly transform stage.
#[derive(Debug, Clone)]
pub struct TransformSpec {
    /// The module and its configuration.
    pub udf: UdfSpec,
    /// What happens to rows the transform reports as failed: `Fail` or `Drop`.
    pub on_error: OnError,
}

/// A WebAssembly module and how to run it.
#[derive(Debug, Clone)]
pub struct UdfSpec {
    /// The stage name in messages (default: the module's file stem).
    pub name: String,
    /// The `.wasm` file.
    pub path: PathBuf,
    /// The `config` table, handed to the UDF's init call as JSON.
    pub config: serde_json::Value,
    /// Resource limits for each instance.
    pub limits: UdfLimits,
    /// What happens when a call fails as a whole (trap, timeout, limit, malformed output, the UDF's own
    /// error): `on_failure` in the pipeline file.
    pub on_failure: OnFailure,
}

/// The policy for a UDF call that fails as a whole, rather than for single rows.
///
/// ```toml
/// [[transform]]
/// udf = "enrich.wasm"
/// on_failure = "dead-letter"              # or "fail" (the default)
/// dead_letter_topic = "enrich-failures"
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum OnFailure {
    /// Stop the pipeline with the error; nothing of the batch is committed.
    #[default]
    Fail,
    /// Write every source record of the failed call to this topic, with the error in its headers, and go on.
    DeadLetter {
        /// The dead-letter topic.
        topic: String,
    },
}

/// The policy for records or rows that fail on their own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OnError {
    /// Stop the pipeline with an error naming the record; nothing after it is committed.
    Fail,
    /// Skip the record and count it in the progress report.
    Drop,
    /// Write the original record, with the error in its headers, to this topic.
    DeadLetter {
        /// The dead-letter topic.
        topic: String,
    },
}

/// The sink stage.
#[derive(Debug, Clone)]
pub struct SinkSpec {
    /// Kafka options and the target topic.
    pub options: SinkOptions,
    /// How rows become record values.
    pub format: SinkFormat,
    /// `delivery`: what a restart after a crash guarantees about the output.
    pub delivery: Delivery,
    /// `on_error`: what happens to a row the producer or the broker refuses for good.
    pub on_error: crate::sink::SinkOnError,
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

/// How the sink turns rows into Kafka records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SinkFormat {
    /// Spark's shape: a `value` column (string or binary) and optional `key`, `headers`, `topic`,
    /// `partition` columns.
    Kafka,
    /// Every column except `key`, `headers`, `topic` and `partition` written as one JSON object per row
    /// (Spark's `to_json(struct(*))`); those four keep their Kafka meaning.
    Json,
}

/// When micro-batches start, as Spark's triggers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// The next batch starts as soon as the previous one is done.
    AsFastAsPossible,
    /// `processingTime`: batches start at this interval; a late batch starts the next one at once.
    ProcessingTime(Duration),
}
