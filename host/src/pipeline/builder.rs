//! Building a [`PipelineSpec`] in Rust, for programs that embed Weir instead of using pipeline files.
//!
//! The builder takes the same option names as the pipeline file, so the two stay one thing.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::Context;
use arrow_schema::SchemaRef;

use crate::config::{
    DecodeFormat, Delivery, DeserializerSpec, OnError, PipelineSpec, SinkFormat, SinkSpec,
    TransformSpec, Trigger, UdfSpec,
};
use crate::sink::SinkOptions;
use crate::source::SourceOptions;
use crate::udf::UdfLimits;

/// Collects the parts of a pipeline; [`PipelineBuilder::build`] checks them as the file parser does.
pub struct PipelineBuilder {
    name: String,
    source: BTreeMap<String, String>,
    deserializer: Option<DecodeFormat>,
    on_error: OnError,
    transforms: Vec<TransformSpec>,
    sink: BTreeMap<String, String>,
    sink_format: SinkFormat,
    trigger: Trigger,
    limits: UdfLimits,
    checkpoint: Option<PathBuf>,
}

impl PipelineBuilder {
    pub(crate) fn new(name: impl Into<String>) -> Self {
        PipelineBuilder {
            name: name.into(),
            source: BTreeMap::new(),
            deserializer: None,
            on_error: OnError::Fail,
            transforms: Vec::new(),
            sink: BTreeMap::new(),
            sink_format: SinkFormat::Kafka,
            trigger: Trigger::AsFastAsPossible,
            limits: UdfLimits::default(),
            checkpoint: None,
        }
    }

    /// `checkpointLocation`: resume from this folder after a restart, with exactly-once delivery.
    pub fn checkpoint(mut self, location: impl Into<PathBuf>) -> Self {
        self.checkpoint = Some(location.into());
        self
    }

    /// A source option, as in `[source]`: `kafka.bootstrap.servers`, `subscribe`, `startingOffsets`...
    pub fn source_option(mut self, key: &str, value: impl Into<String>) -> Self {
        self.source.insert(key.to_string(), value.into());
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
    pub fn transform_udf(mut self, path: impl Into<PathBuf>) -> Self {
        let udf = self.udf(path.into());
        self.transforms.push(TransformSpec {
            udf,
            on_error: OnError::Fail,
        });
        self
    }

    /// The trigger (default: as fast as possible).
    pub fn trigger(mut self, trigger: Trigger) -> Self {
        self.trigger = trigger;
        self
    }

    fn udf(&self, path: PathBuf) -> UdfSpec {
        let name = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        UdfSpec {
            name,
            path,
            config: serde_json::json!({}),
            limits: self.limits,
            on_failure: Default::default(),
        }
    }

    /// Checks the options and returns the spec.
    pub fn build(self) -> anyhow::Result<PipelineSpec> {
        let source = SourceOptions::from_options(self.source).context("source")?;
        let sink = SinkOptions::from_options(self.sink).context("sink")?;
        let format = self
            .deserializer
            .context("no deserializer: call deserializer_udf or deserializer_json")?;
        Ok(PipelineSpec {
            name: self.name,
            source,
            deserializer: DeserializerSpec {
                format,
                on_error: self.on_error,
            },
            transforms: self.transforms,
            watermark: None,
            aggregate: None,
            after_aggregate: Vec::new(),
            sink: SinkSpec {
                options: sink,
                format: self.sink_format,
                delivery: if self.checkpoint.is_some() {
                    Delivery::ExactlyOnce
                } else {
                    Delivery::AtLeastOnce
                },
                on_error: Default::default(),
            },
            trigger: self.trigger,
            checkpoint: self.checkpoint,
            min_batches_to_retain: crate::checkpoint::DEFAULT_BATCHES_TO_RETAIN,
        })
    }
}
