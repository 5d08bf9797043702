//! The plan: every stage loaded and checked to compose, before a single record is read.
//!
//! `weir validate` stops here and prints the plan; `weir run` goes on to run it. Processing one partition's
//! records through the stages is [`Plan::process_chunk`], a function of its input, so workers can run it
//! in parallel on different partitions.

use std::fmt::Write;

use anyhow::Context;
use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;

use crate::config::{OnError, PipelineSpec, TransformSpec};
use crate::decode::Deserializer;
use crate::progress::ErrorCounts;
use crate::sink::check_sink_schema;
use crate::source::{source_schema, PartitionChunk};
use crate::udf::{Kind, UdfRuntime, UdfStage};

/// A pipeline with its stages loaded.
pub struct Plan {
    pub(crate) spec: PipelineSpec,
    source_schema: SchemaRef,
    deserializer: Deserializer,
    transforms: Vec<(TransformSpec, UdfStage)>,
}

/// What one partition's records became.
pub struct ChunkOutput {
    /// Rows for the sink.
    pub rows: RecordBatch,
    /// Records for the dead-letter topic: row in the chunk, and why.
    pub dead_letters: Vec<(usize, String)>,
    /// Records and rows that failed alone.
    pub errors: ErrorCounts,
}

impl Plan {
    /// Loads every module and checks that the schemas compose from source to sink.
    pub fn new(spec: PipelineSpec, runtime: &UdfRuntime) -> anyhow::Result<Plan> {
        let source_schema = source_schema(spec.source.include_headers);
        let deserializer = Deserializer::new(&spec.deserializer.format, runtime, &source_schema)?;
        let mut schema = deserializer.output_schema().clone();
        let mut transforms = Vec::new();
        for transform in &spec.transforms {
            let stage = runtime.load(&transform.udf, Kind::Transform, schema.clone())?;
            schema = stage.output_schema().clone();
            transforms.push((transform.clone(), stage));
        }
        check_sink_schema(&schema, spec.sink.format, spec.sink.options.topic.is_some())
            .map_err(anyhow::Error::msg)
            .context("the rows reaching the sink do not fit it")?;
        Ok(Plan {
            spec,
            source_schema,
            deserializer,
            transforms,
        })
    }

    /// The pipeline's description from its file.
    pub fn spec(&self) -> &PipelineSpec {
        &self.spec
    }

    /// The schema of the rows that reach the sink.
    pub fn output_schema(&self) -> &SchemaRef {
        match self.transforms.last() {
            Some((_, stage)) => stage.output_schema(),
            None => self.deserializer.output_schema(),
        }
    }

    /// A human-readable plan: each stage with the schema it produces.
    pub fn describe(&self) -> String {
        let mut out = String::new();
        let schema = |s: &SchemaRef| {
            s.fields()
                .iter()
                .map(|f| format!("{}: {}", f.name(), f.data_type()))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let _ = writeln!(out, "pipeline `{}`", self.spec.name);
        let _ = writeln!(out, "  source       {}", self.spec.source.description());
        let _ = writeln!(out, "               -> {}", schema(&self.source_schema));
        let _ = writeln!(
            out,
            "  deserialize  {} (on_error: {})",
            self.deserializer.describe(),
            policy(&self.spec.deserializer.on_error)
        );
        let _ = writeln!(
            out,
            "               -> {}",
            schema(self.deserializer.output_schema())
        );
        for (spec, stage) in &self.transforms {
            let _ = writeln!(
                out,
                "  transform    WebAssembly `{}` ({}, on_error: {})",
                stage.name(),
                spec.udf.path.display(),
                policy(&spec.on_error)
            );
            let _ = writeln!(out, "               -> {}", schema(stage.output_schema()));
        }
        let format = match self.spec.sink.format {
            crate::config::SinkFormat::Kafka => "value column",
            crate::config::SinkFormat::Json => "rows as JSON",
        };
        let topic = self
            .spec
            .sink
            .options
            .topic
            .as_deref()
            .unwrap_or("from the topic column");
        let _ = writeln!(out, "  sink         Kafka topic {topic} ({format})");
        let _ = writeln!(out, "  trigger      {:?}", self.spec.trigger);
        out
    }

    /// Runs one partition's records through the deserializer and the transforms.
    ///
    /// Records that fail alone are handled by their stage's `on_error`; with `fail`, the error names the
    /// record's topic, partition and offset.
    pub fn process_chunk(&self, chunk: &PartitionChunk) -> anyhow::Result<ChunkOutput> {
        let mut errors = ErrorCounts::default();
        let (mut rows, failures) = self.deserializer.decode(chunk)?;
        let mut dead_letters = Vec::new();
        if let Some(first) = failures.first() {
            match &self.spec.deserializer.on_error {
                OnError::Fail => {
                    let offset = chunk.first_offset + first.row as i64;
                    anyhow::bail!(
                        "record {}-{} offset {offset} could not be deserialized ({}): {}{}; set the deserializer's \
                         on_error to \"drop\" or \"dead-letter\" to go on without such records",
                        chunk.topic,
                        chunk.partition,
                        self.deserializer.describe(),
                        first.message,
                        if failures.len() > 1 { format!(" (and {} more in this batch)", failures.len() - 1) } else { String::new() }
                    );
                }
                OnError::Drop => {
                    errors.deserializer_dropped += failures.len() as u64;
                    tracing::debug!(
                        dropped = failures.len(),
                        "{}: dropped records that failed to deserialize",
                        chunk.describe()
                    );
                }
                OnError::DeadLetter { .. } => {
                    errors.dead_lettered += failures.len() as u64;
                    dead_letters = failures.into_iter().map(|f| (f.row, f.message)).collect();
                }
            }
        }
        for (spec, stage) in &self.transforms {
            let output = stage.process(&rows, &chunk.describe())?;
            if let Some(first) = output.row_errors.first() {
                if spec.on_error == OnError::Fail {
                    anyhow::bail!(
                        "UDF `{}` rejected row {} of the batch{}: {}; set its on_error to \"drop\" to go on without such rows",
                        stage.name(),
                        first.row,
                        chunk.describe(),
                        first.message
                    );
                }
                errors.transform_dropped += output.row_errors.len() as u64;
            }
            rows = output.batch;
        }
        Ok(ChunkOutput {
            rows,
            dead_letters,
            errors,
        })
    }
}

fn policy(on_error: &OnError) -> String {
    match on_error {
        OnError::Fail => "fail".into(),
        OnError::Drop => "drop".into(),
        OnError::DeadLetter { topic } => format!("dead-letter to {topic}"),
    }
}
