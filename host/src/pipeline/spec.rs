//! What a pipeline is made of: the stages' specs put together, the typed form of a pipeline file, also
//! built directly by the Rust API ([`PipelineBuilder`](super::PipelineBuilder)).

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use crate::aggregate::AggregateSpec;
use crate::decode::{DecodeFormat, DeserializerSpec};
use crate::dedup::DedupSpec;
use crate::join::JoinSpec;
use crate::metrics::MetricsSpec;
use crate::secrets::{is_secret_key, Secrets};
use crate::sink::{Delivery, SinkFormat, SinkSpec};
use crate::source::SourceSpec;
use crate::sql::SqlSpec;
use crate::stream_join::StreamJoinSpec;
use crate::udf::TransformSpec;
use crate::window::WatermarkSpec;

/// A whole pipeline: source → deserializer → transforms → sink, and how often it triggers.
///
/// Its `Debug` output prints `***` for its [`secrets`](PipelineSpec::secrets).
#[derive(Clone)]
pub struct PipelineSpec {
    /// A name for logs and progress reports (default: the pipeline file's stem).
    pub name: String,
    /// The source: Kafka topics, or files.
    pub source: SourceSpec,
    /// How records (Kafka values, or lines of files) become rows.
    pub deserializer: DeserializerSpec,
    /// Transforms (WebAssembly UDFs and SQL stages), applied in order.
    pub transforms: Vec<Transform>,
    /// Event time and the watermark, taken from the deserialized rows of each partition.
    pub watermark: Option<WatermarkSpec>,
    /// `[stream_join]`: the rows joined with a second Kafka topic's as both arrive, after the transforms and
    /// before deduplication and the aggregation (needs the watermark).
    pub stream_join: Option<StreamJoinSpec>,
    /// `[deduplicate]`: rows repeating an earlier row's key dropped, after the transforms and before the
    /// aggregation (needs the watermark).
    pub deduplicate: Option<DedupSpec>,
    /// A stateful aggregation after the transforms.
    pub aggregate: Option<AggregateSpec>,
    /// Transforms applied to the aggregation's output (e.g. `where = "count > 1"`).
    pub after_aggregate: Vec<Transform>,
    /// The Kafka sink.
    pub sink: SinkSpec,
    /// When micro-batches start.
    pub trigger: Trigger,
    /// `checkpointLocation`: the folder of the pipeline's checkpoint (sled), from which a restart resumes.
    pub checkpoint: Option<PathBuf>,
    /// `stateStoreLocation`: a consumer group member's folder (sled) for the local copies of its tasks'
    /// state, from which a restore starts instead of the changelog's beginning (`state/local_copy.rs`).
    pub state_store: Option<PathBuf>,
    /// `[metrics]`: where the Prometheus endpoint and the health checks listen, if anywhere.
    pub metrics: Option<MetricsSpec>,
    /// `minBatchesToRetain`: how many of the last committed batches keep their records in the checkpoint
    /// (Spark's `spark.sql.streaming.minBatchesToRetain`); older ones are removed as batches commit.
    pub min_batches_to_retain: u64,
    /// Values never to print: those the pipeline file took from the environment and those of secret keys
    /// ([`crate::secrets`]). [`Pipeline::new`](super::Pipeline::new) adds the secret `kafka.*` options of
    /// a spec built in code.
    pub secrets: Secrets,
}

impl PipelineSpec {
    /// Whether this is a consumer group member (`consumerGroup = true`).
    pub(crate) fn is_group_member(&self) -> bool {
        self.source.kafka().is_some_and(|k| k.consumer_group)
    }

    /// Whether a group member's aggregation reads its rows through the repartition topic: its input is not
    /// declared partitioned by the group keys (`aggregate.input_partitioned_by`).
    pub(crate) fn repartitions(&self) -> bool {
        self.is_group_member()
            && (self.aggregate.as_ref()).is_some_and(|a| a.input_partitioned_by.is_empty())
    }

    /// [`PipelineSpec::secrets`] with the values of the secret `kafka.*` options (`sasl.password`, ...)
    /// of the source and the sink added.
    pub(crate) fn all_secrets(&self) -> Secrets {
        let mut secrets = self.secrets.clone();
        let source_options = self.source.kafka().map(|source| &source.kafka);
        for (key, value) in source_options
            .into_iter()
            .flatten()
            .chain(&self.sink.options.kafka)
        {
            if is_secret_key(key) {
                secrets.add_secret(value);
            }
        }
        secrets
    }
}

/// The derived form, with every secret masked.
impl fmt::Debug for PipelineSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        /// A field's `Debug` text, already masked.
        struct Masked(String);
        impl fmt::Debug for Masked {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
        let secrets = self.all_secrets();
        let alternate = f.alternate();
        let masked = |field: &dyn fmt::Debug| {
            let text = if alternate {
                format!("{field:#?}")
            } else {
                format!("{field:?}")
            };
            Masked(secrets.redact(&text).into_owned())
        };
        f.debug_struct("PipelineSpec")
            .field("name", &masked(&self.name))
            .field("source", &masked(&self.source))
            .field("deserializer", &masked(&self.deserializer))
            .field("transforms", &masked(&self.transforms))
            .field("watermark", &masked(&self.watermark))
            .field("stream_join", &masked(&self.stream_join))
            .field("deduplicate", &masked(&self.deduplicate))
            .field("aggregate", &masked(&self.aggregate))
            .field("after_aggregate", &masked(&self.after_aggregate))
            .field("sink", &masked(&self.sink))
            .field("trigger", &self.trigger)
            .field("checkpoint", &masked(&self.checkpoint))
            .field("state_store", &masked(&self.state_store))
            .field("metrics", &self.metrics)
            .field("min_batches_to_retain", &self.min_batches_to_retain)
            .field("secrets", &self.secrets)
            .finish()
    }
}

/// One `[[transform]]` or `[[after_aggregate]]` stage: a WebAssembly UDF, SQL expressions or a join with a
/// table.
///
/// ```
/// use weir::{SqlSpec, Transform, TransformSpec, UdfSpec};
/// let stages: Vec<Transform> = vec![
///     SqlSpec::filter("flag = 1").into(),
///     TransformSpec::new(UdfSpec::new("fraud_flagged.wasm")).into(),
/// ];
/// assert!(matches!(stages[0], Transform::Sql(_)));
/// ```
#[derive(Debug, Clone)]
pub enum Transform {
    /// A WebAssembly transform (`udf = "..."`).
    Udf(TransformSpec),
    /// A `where` or `select` stage.
    Sql(SqlSpec),
    /// A join with a table read from a file (`join = "..."`).
    Join(JoinSpec),
}

impl From<TransformSpec> for Transform {
    fn from(spec: TransformSpec) -> Transform {
        Transform::Udf(spec)
    }
}

impl From<SqlSpec> for Transform {
    fn from(spec: SqlSpec) -> Transform {
        Transform::Sql(spec)
    }
}

impl From<JoinSpec> for Transform {
    fn from(spec: JoinSpec) -> Transform {
        Transform::Join(spec)
    }
}

/// When micro-batches start, and for the bounded triggers when the run stops, as Spark's triggers.
///
/// ```
/// use weir::Trigger;
/// assert!(Trigger::AvailableNow.is_bounded());
/// assert_eq!(Trigger::ProcessingTime(std::time::Duration::from_secs(5)).interval().unwrap().as_secs(), 5);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// The next batch starts as soon as the previous one is done.
    AsFastAsPossible,
    /// `processingTime`: batches start at this interval; a late batch starts the next one at once.
    ProcessingTime(Duration),
    /// `availableNow`: everything in the source when the run starts (the latest offsets then), in batches
    /// of at most `maxOffsetsPerTrigger` records, as fast as possible; then the run stops.
    AvailableNow,
    /// `once`: everything in the source when the run starts, in one batch whatever
    /// `maxOffsetsPerTrigger` says; then the run stops. The batch holds all of it in memory at once:
    /// prefer `AvailableNow` for a backlog.
    Once,
}

impl Trigger {
    /// The interval between batch starts, for `ProcessingTime`.
    pub fn interval(self) -> Option<Duration> {
        match self {
            Trigger::ProcessingTime(interval) => Some(interval),
            _ => None,
        }
    }

    /// Whether the trigger stops the run at the offsets available when it started.
    pub fn is_bounded(self) -> bool {
        matches!(self, Trigger::AvailableNow | Trigger::Once)
    }
}

/// A rule a [`PipelineSpec`] breaks: the pipeline-file key at fault and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{key}`: {message}")]
pub struct SpecError {
    /// The dotted key of the pipeline file, e.g. `sink.delivery` or `after_aggregate[0].on_error`.
    pub key: String,
    /// What is wrong and what would be right.
    pub message: String,
}

impl SpecError {
    pub(super) fn new(key: impl Into<String>, message: impl Into<String>) -> SpecError {
        SpecError {
            key: key.into(),
            message: message.into(),
        }
    }
}

impl PipelineSpec {
    /// Checks the rules that span stages. The pipeline file reader and
    /// [`PipelineBuilder::build`](super::PipelineBuilder::build) both call it, so a spec from either has
    /// passed the same checks; what needs the modules' schemas is checked when the pipeline is planned.
    ///
    /// ```
    /// # fn main() -> anyhow::Result<()> {
    /// let file = r#"
    ///     [source]
    ///     kafka.bootstrap.servers = "localhost:9092"
    ///     subscribe = "in"
    ///     [deserializer]
    ///     format = "string"
    ///     [sink]
    ///     kafka.bootstrap.servers = "localhost:9092"
    ///     topic = "out"
    /// "#;
    /// let mut spec = weir::config::parse(file, "inline.toml", std::path::Path::new("."), "inline", |_| None)?;
    /// assert!(spec.validate().is_ok());
    /// spec.sink.delivery = weir::Delivery::ExactlyOnce;
    /// let error = spec.validate().unwrap_err();
    /// assert_eq!(error.key, "sink.delivery");
    /// # Ok(()) }
    /// ```
    pub fn validate(&self) -> Result<(), SpecError> {
        self.deserializer
            .format
            .check()
            .map_err(|(key, message)| SpecError::new(format!("deserializer.{key}"), message))?;
        if let DecodeFormat::Avro {
            reader_schema: None,
            subject: None,
            ..
        } = &self.deserializer.format
        {
            return Err(SpecError::new(
                "deserializer.reader_schema",
                "format = \"avro\" reads every record as one schema: give `reader_schema` (an .avsc file) \
                 or `subject` (its latest version in the registry; the default with one subscribed topic)",
            ));
        }
        if self.sink.format == SinkFormat::Avro {
            self.sink
                .options
                .avro_target()
                .map_err(|(key, message)| SpecError::new(format!("sink.{key}"), message))?;
        } else if self.sink.options.schema_registry.is_some() || self.sink.options.subject.is_some()
        {
            return Err(SpecError::new(
                "sink.schema_registry",
                "only used with format = \"avro\"",
            ));
        }
        if self.deduplicate.is_some() && self.watermark.is_none() {
            return Err(SpecError::new(
                "deduplicate",
                "needs a [watermark]: the keys seen are forgotten as the watermark passes, which keeps the \
                 state bounded",
            ));
        }
        let ending = self.source.kafka().and_then(|kafka| kafka.ending.as_ref());
        if self.trigger.is_bounded() && ending.is_some() {
            return Err(SpecError::new(
                "source.endingOffsets",
                "the availableNow and once triggers stop at the offsets available at start: remove \
                 endingOffsets, or the trigger",
            ));
        }
        let group_member = self.source.kafka().is_some_and(|k| k.consumer_group);
        if self.sink.delivery == Delivery::ExactlyOnce && self.checkpoint.is_none() && !group_member
        {
            return Err(SpecError::new(
                "sink.delivery",
                "exactly-once needs a checkpoint: set `checkpointLocation` at the top of the file",
            ));
        }
        match &self.aggregate {
            None if !self.after_aggregate.is_empty() => {
                return Err(SpecError::new(
                    "after_aggregate",
                    "only used with an [aggregate] section",
                ))
            }
            None => {}
            Some(aggregate) => {
                aggregate
                    .check_output_mode(self.watermark.is_some())
                    .map_err(|message| SpecError::new("aggregate.output_mode", message))?;
                aggregate
                    .check_input_partitioning()
                    .map_err(|message| SpecError::new("aggregate.input_partitioned_by", message))?;
            }
        }
        self.check_sink_target()?;
        self.check_file_source()?;
        self.check_consumer_group()?;
        self.check_stream_join()?;
        self.check_dead_letter_policies()
    }
}
