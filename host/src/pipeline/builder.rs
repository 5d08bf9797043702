//! Building a [`PipelineSpec`] in Rust, for programs that embed Weir instead of using pipeline files.
//!
//! The builder takes the same option names as the pipeline file and the stages' own spec types, and its
//! [`PipelineBuilder::build`] runs the same checks ([`PipelineSpec::validate`]), so the two stay one thing:
//! whatever a file can say, the builder can too.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::Context;
use arrow_schema::SchemaRef;

use crate::aggregate::AggregateSpec;
use crate::decode::{DecodeFormat, DeserializerSpec};
use crate::dedup::DedupSpec;
use crate::metrics::MetricsSpec;
use crate::pipeline::{PipelineSpec, Transform, Trigger};
use crate::secrets::Secrets;
use crate::sink::{Delivery, SinkFormat, SinkOnError, SinkOptions, SinkSpec, SinkTarget};
use crate::source::{FileSourceSpec, SourceOptions, SourceSpec};
use crate::stream_join::StreamJoinSpec;
use crate::udf::{OnError, TransformSpec, UdfLimits, UdfSpec};
use crate::window::WatermarkSpec;

/// Collects the parts of a pipeline; [`PipelineBuilder::build`] checks them as the file parser does.
pub struct PipelineBuilder {
    name: String,
    source: BTreeMap<String, String>,
    file_source: Option<FileSourceSpec>,
    deserializer: Option<DecodeFormat>,
    on_error: OnError,
    transforms: Vec<Transform>,
    watermark: Option<WatermarkSpec>,
    stream_join: Option<StreamJoinSpec>,
    deduplicate: Option<DedupSpec>,
    aggregate: Option<AggregateSpec>,
    after_aggregate: Vec<Transform>,
    sink: BTreeMap<String, String>,
    sink_format: SinkFormat,
    sink_target: SinkTarget,
    delivery: Option<Delivery>,
    sink_on_error: SinkOnError,
    trigger: Trigger,
    limits: UdfLimits,
    checkpoint: Option<PathBuf>,
    metrics: Option<MetricsSpec>,
    min_batches_to_retain: u64,
}

impl PipelineBuilder {
    pub(crate) fn new(name: impl Into<String>) -> Self {
        PipelineBuilder {
            name: name.into(),
            source: BTreeMap::new(),
            file_source: None,
            deserializer: None,
            on_error: OnError::Fail,
            transforms: Vec::new(),
            watermark: None,
            stream_join: None,
            deduplicate: None,
            aggregate: None,
            after_aggregate: Vec::new(),
            sink: BTreeMap::new(),
            sink_format: SinkFormat::Kafka,
            sink_target: SinkTarget::Kafka,
            delivery: None,
            sink_on_error: SinkOnError::Fail,
            trigger: Trigger::AsFastAsPossible,
            limits: UdfLimits::default(),
            checkpoint: None,
            metrics: None,
            min_batches_to_retain: crate::checkpoint::DEFAULT_BATCHES_TO_RETAIN,
        }
    }

    /// `checkpointLocation`: resume from this folder after a restart, with exactly-once delivery.
    pub fn checkpoint(mut self, location: impl Into<PathBuf>) -> Self {
        self.checkpoint = Some(location.into());
        self
    }

    /// `minBatchesToRetain`: how many committed batches keep their records in the checkpoint (default 100).
    pub fn min_batches_to_retain(mut self, batches: u64) -> Self {
        self.min_batches_to_retain = batches;
        self
    }

    /// A source option, as in `[source]`: `kafka.bootstrap.servers`, `subscribe`, `startingOffsets`...
    pub fn source_option(mut self, key: &str, value: impl Into<String>) -> Self {
        self.source.insert(key.to_string(), value.into());
        self
    }

    /// Reads new files under a directory instead of Kafka, as `[source] path = "..."` does. Parquet files
    /// need no deserializer; JSON, CSV and text lines are records for one.
    ///
    /// ```no_run
    /// # fn main() -> anyhow::Result<()> {
    /// use weir::{FileSourceFormat, FileSourceSpec, Pipeline};
    /// let schema = weir::parse_ddl_schema("device_id STRING, has_person BOOLEAN").map_err(anyhow::Error::msg)?;
    /// let spec = Pipeline::builder("cameras")
    ///     .file_source(FileSourceSpec::new("landing/cameras", FileSourceFormat::Json))
    ///     .deserializer_json(schema)
    ///     .sink_option("kafka.bootstrap.servers", "localhost:9092")
    ///     .sink_option("topic", "cameras")
    ///     .build()?;
    /// # Ok(()) }
    /// ```
    pub fn file_source(mut self, spec: FileSourceSpec) -> Self {
        if spec.format.is_typed() && self.deserializer.is_none() {
            self.deserializer = Some(DecodeFormat::Rows);
        }
        self.file_source = Some(spec);
        self
    }

    /// A sink option, as in `[sink]`: `kafka.*`, `topic`.
    pub fn sink_option(mut self, key: &str, value: impl Into<String>) -> Self {
        self.sink.insert(key.to_string(), value.into());
        self
    }

    /// How rows become record values (default [`SinkFormat::Kafka`]).
    pub fn sink_format(mut self, format: SinkFormat) -> Self {
        self.sink_format = format;
        self
    }

    /// Where the rows go (default [`SinkTarget::Kafka`]): files or the console instead.
    ///
    /// ```
    /// use weir::{FileFormat, FileSinkSpec, Pipeline, SinkTarget};
    /// let spec = Pipeline::builder("archive")
    ///     .source_option("kafka.bootstrap.servers", "localhost:9092")
    ///     .source_option("subscribe", "cameras")
    ///     .deserializer_json(weir::parse_ddl_schema("device_id STRING, zip_code STRING").unwrap())
    ///     .sink_target(SinkTarget::Files(FileSinkSpec {
    ///         path: "archive/cameras".into(),
    ///         format: FileFormat::Parquet,
    ///         partition_by: vec!["zip_code".into()],
    ///     }))
    ///     .checkpoint("checkpoints/archive")
    ///     .build()
    ///     .unwrap();
    /// assert_eq!(spec.sink.delivery, weir::Delivery::ExactlyOnce);
    /// ```
    pub fn sink_target(mut self, target: SinkTarget) -> Self {
        self.sink_target = target;
        self
    }

    /// `[sink] delivery` (default: exactly-once with a checkpoint, at-least-once without).
    pub fn delivery(mut self, delivery: Delivery) -> Self {
        self.delivery = Some(delivery);
        self
    }

    /// `[sink] on_error`: what happens to a row the broker refuses for good (default: fail).
    pub fn sink_on_error(mut self, on_error: SinkOnError) -> Self {
        self.sink_on_error = on_error;
        self
    }

    /// Limits for the UDFs added after this call.
    pub fn limits(mut self, limits: UdfLimits) -> Self {
        self.limits = limits;
        self
    }

    /// A WebAssembly deserializer.
    pub fn deserializer_udf(mut self, path: impl Into<PathBuf>) -> Self {
        self.deserializer = Some(DecodeFormat::Udf(self.udf(path.into())));
        self
    }

    /// The built-in JSON deserializer into `schema` (failing records follow [`Self::on_error`]).
    pub fn deserializer_json(mut self, schema: SchemaRef) -> Self {
        self.deserializer = Some(DecodeFormat::Json {
            schema,
            permissive: false,
            corrupt_record_column: None,
            strict: false,
        });
        self
    }

    /// The policy for records the deserializer rejects (default [`OnError::Fail`]).
    pub fn on_error(mut self, on_error: OnError) -> Self {
        self.on_error = on_error;
        self
    }

    /// A WebAssembly transform, after the ones added before.
    pub fn transform_udf(self, path: impl Into<PathBuf>) -> Self {
        let udf = self.udf(path.into());
        self.transform(TransformSpec::new(udf))
    }

    /// A transform stage as its spec says it, after the ones added before: a [`TransformSpec`] (the
    /// module's `config`, limits and policies) or a [`SqlSpec`](crate::SqlSpec) (`where`, `select`).
    pub fn transform(mut self, transform: impl Into<Transform>) -> Self {
        self.transforms.push(transform.into());
        self
    }

    /// `[watermark]`: event time and how late records may be, per partition.
    pub fn watermark(mut self, watermark: WatermarkSpec) -> Self {
        self.watermark = Some(watermark);
        self
    }

    /// `[stream_join]`: join the rows, after the transforms, with those of another Kafka topic as both
    /// arrive (needs the watermark; see [`StreamJoinSpec`]).
    pub fn stream_join(mut self, join: StreamJoinSpec) -> Self {
        self.stream_join = Some(join);
        self
    }

    /// `[deduplicate]`: drop rows repeating an earlier row's `columns`, after the transforms (needs the
    /// watermark).
    pub fn deduplicate(mut self, deduplicate: DedupSpec) -> Self {
        self.deduplicate = Some(deduplicate);
        self
    }

    /// `[aggregate]`: grouping, window, aggregates and output mode, after the transforms.
    pub fn aggregate(mut self, aggregate: AggregateSpec) -> Self {
        self.aggregate = Some(aggregate);
        self
    }

    /// `[[after_aggregate]]`: a transform of the aggregation's output, after the ones added before.
    pub fn after_aggregate(mut self, transform: impl Into<Transform>) -> Self {
        self.after_aggregate.push(transform.into());
        self
    }

    /// `[metrics]`: serve Prometheus metrics and the health checks while the pipeline runs.
    pub fn metrics(mut self, metrics: MetricsSpec) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// The trigger (default: as fast as possible).
    pub fn trigger(mut self, trigger: Trigger) -> Self {
        self.trigger = trigger;
        self
    }

    fn udf(&self, path: PathBuf) -> UdfSpec {
        UdfSpec::new(path).with_limits(self.limits)
    }

    /// Checks the options and the rules that span stages ([`PipelineSpec::validate`]), and returns the spec.
    pub fn build(self) -> anyhow::Result<PipelineSpec> {
        let source = match (self.file_source, self.source.keys().next()) {
            (None, _) => {
                SourceSpec::Kafka(SourceOptions::from_options(self.source).context("source")?)
            }
            (Some(files), None) => SourceSpec::Files(files),
            (Some(_), Some(key)) => {
                anyhow::bail!(
                    "source option `{key}`: only used with a Kafka source; this one reads files"
                )
            }
        };
        let sink = match (&self.sink_target, self.sink.keys().next()) {
            (SinkTarget::Kafka, _) => SinkOptions::from_options(self.sink).context("sink")?,
            (_, None) => SinkOptions::default(),
            (_, Some(key)) => anyhow::bail!(
                "sink option `{key}`: only used with a Kafka sink; this one writes files or to the console"
            ),
        };
        let format = self
            .deserializer
            .context("no deserializer: call deserializer_udf or deserializer_json")?;
        let delivery = self.delivery.unwrap_or(Delivery::default_for(
            self.checkpoint.is_some(),
            matches!(source, SourceSpec::Kafka(_)),
            &self.sink_target,
        ));
        let spec = PipelineSpec {
            name: self.name,
            source,
            deserializer: DeserializerSpec {
                format,
                on_error: self.on_error,
            },
            transforms: self.transforms,
            watermark: self.watermark,
            stream_join: self.stream_join,
            deduplicate: self.deduplicate,
            aggregate: self.aggregate,
            after_aggregate: self.after_aggregate,
            sink: SinkSpec {
                target: self.sink_target,
                options: sink,
                format: self.sink_format,
                delivery,
                on_error: self.sink_on_error,
            },
            trigger: self.trigger,
            checkpoint: self.checkpoint,
            state_store: None,
            metrics: self.metrics,
            min_batches_to_retain: self.min_batches_to_retain,
            secrets: Secrets::default(),
        };
        spec.validate()?;
        Ok(spec)
    }
}
