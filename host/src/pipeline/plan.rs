//! The plan: every stage loaded and checked to compose, before a single record is read.
//!
//! `weir validate` stops here and prints the plan; `weir run` goes on to run it. Processing one partition's
//! records through the stateless stages is [`Plan::process_chunk`], a function of its input, so workers
//! can run it in parallel on different partitions; the aggregation then sees the whole batch at once
//! ([`Plan::aggregate`]), because its state is shared by all partitions.

use std::fmt::Write;
use std::sync::Mutex;
use std::time::Instant;

use anyhow::Context;
use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;

use crate::aggregate::{event_times, Aggregator, StateOperatorProgress};
use crate::checkpoint::PlanFingerprint;
use crate::config::{DecodeFormat, OnError, OnFailure, PipelineSpec, TransformSpec, WatermarkSpec};
use crate::decode::{DecodeError, Deserializer};
use crate::progress::ErrorCounts;
use crate::sink::check_sink_schema;
use crate::source::{source_schema, PartitionChunk};
use crate::state::StateStore;
use crate::udf::{Kind, UdfError, UdfRuntime, UdfStage};

/// A pipeline with its stages loaded.
pub struct Plan {
    pub(crate) spec: PipelineSpec,
    source_schema: SchemaRef,
    deserializer: Deserializer,
    transforms: Vec<(TransformSpec, UdfStage)>,
    /// The event-time column in the deserialized rows, when there is a watermark.
    event_time: Option<usize>,
    /// The aggregation; run by one thread at a time, after the partitions' stateless stages.
    aggregator: Option<Mutex<Aggregator>>,
    after_aggregate: Vec<(TransformSpec, UdfStage)>,
    output: SchemaRef,
}

/// What the stateful part of a batch produced.
pub struct Aggregated {
    /// Rows for the sink.
    pub rows: RecordBatch,
    /// The aggregation's state counts, when there is an aggregation.
    pub state: Option<StateOperatorProgress>,
    /// Rows the transforms after the aggregation dropped as failed.
    pub transform_dropped: u64,
    /// Rows that arrived behind the watermark, when `watermark.late_data_topic` is set.
    pub late: Option<RecordBatch>,
}

/// What one partition's records became.
pub struct ChunkOutput {
    /// Rows for the sink.
    pub rows: RecordBatch,
    /// Records for a dead-letter topic.
    pub dead_letters: Vec<DeadLetterRecord>,
    /// Records and rows that failed alone.
    pub errors: ErrorCounts,
    /// The largest event time among the partition's deserialized records (before any filter), when the
    /// pipeline has a watermark.
    pub max_event_time: Option<i64>,
    /// Time spent in the deserializer and in the transforms, for the progress's stage breakdown.
    pub timings: ChunkTimings,
}

/// Where one partition's processing time went.
#[derive(Debug, Clone, Copy, Default)]
pub struct ChunkTimings {
    /// The deserializer.
    pub decode: std::time::Duration,
    /// The transforms before the aggregation.
    pub transform: std::time::Duration,
}

/// A source record on its way to a dead-letter topic.
#[derive(Debug, Clone)]
pub struct DeadLetterRecord {
    /// Its row in the chunk.
    pub row: usize,
    /// The dead-letter topic.
    pub topic: String,
    /// The stage that failed on it.
    pub stage: String,
    /// Why.
    pub error: String,
}

/// Why a transform stage stopped.
enum TransformError {
    /// The call failed as a whole; the stage's `on_failure` decides.
    Call(UdfError),
    /// A row failed and the stage's `on_error` is `fail`.
    Row(anyhow::Error),
}

impl Plan {
    /// Loads every module and checks that the schemas compose from source to sink; operator state lives in
    /// the operators' memory, for this run only.
    pub fn new(spec: PipelineSpec, runtime: &UdfRuntime) -> anyhow::Result<Plan> {
        Plan::with_state(spec, runtime, StateStore::in_memory())
    }

    /// [`Plan::new`] with operator state in `state` (a checkpoint's), restored from what it holds.
    pub fn with_state(
        spec: PipelineSpec,
        runtime: &UdfRuntime,
        state: StateStore,
    ) -> anyhow::Result<Plan> {
        let source_schema = source_schema(spec.source.include_headers);
        let deserializer = Deserializer::new(&spec.deserializer.format, runtime, &source_schema)?;
        let event_time = match &spec.watermark {
            None => None,
            Some(watermark) => {
                let decoded = deserializer.output_schema();
                Some(decoded.index_of(&watermark.column).map_err(|_| {
                    anyhow::anyhow!(
                        "watermark.column `{}` is not a column of the deserialized rows ({})",
                        watermark.column,
                        decoded
                            .fields()
                            .iter()
                            .map(|f| f.name().as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                })?)
            }
        };
        let transforms = load_transforms(runtime, &spec.transforms, deserializer.output_schema())?;
        let mut schema = last_schema(&transforms, deserializer.output_schema());
        let (aggregator, after_aggregate) = match &spec.aggregate {
            None => (None, Vec::new()),
            Some(aggregate) => {
                let table = state.table("aggregate")?;
                let mut aggregator =
                    Aggregator::new(aggregate.clone(), &schema, spec.watermark.is_some(), table)
                        .context("planning the aggregation")?;
                let restored = aggregator
                    .restore()
                    .context("restoring the aggregation's state")?;
                if restored > 0 {
                    tracing::info!(
                        groups = restored,
                        "aggregation state restored from the checkpoint"
                    );
                }
                let after =
                    load_transforms(runtime, &spec.after_aggregate, aggregator.output_schema())?;
                schema = last_schema(&after, aggregator.output_schema());
                (Some(Mutex::new(aggregator)), after)
            }
        };
        check_sink_schema(&schema, spec.sink.format, &spec.sink.options)
            .map_err(anyhow::Error::msg)
            .context("the rows reaching the sink do not fit it")?;
        Ok(Plan {
            spec,
            source_schema,
            deserializer,
            transforms,
            event_time,
            aggregator,
            after_aggregate,
            output: schema,
        })
    }

    /// The pipeline's description from its file.
    pub fn spec(&self) -> &PipelineSpec {
        &self.spec
    }

    /// The schema of the rows that reach the sink.
    pub fn output_schema(&self) -> &SchemaRef {
        &self.output
    }

    /// The schema of the rows that come out of the stateless stages (the partitions' part of the work).
    pub fn processed_schema(&self) -> SchemaRef {
        last_schema(&self.transforms, self.deserializer.output_schema())
    }

    /// What a checkpoint compares between runs (see [`PlanFingerprint`]).
    pub fn fingerprint(&self) -> PlanFingerprint {
        let aggregate = self.spec.aggregate.as_ref();
        PlanFingerprint {
            source: self.spec.source.description(),
            group_by: aggregate.map(|a| a.group_by.clone()).unwrap_or_default(),
            aggregates: aggregate
                .map(|a| a.aggregates.iter().map(ToString::to_string).collect())
                .unwrap_or_default(),
            window: aggregate.and_then(|a| a.window.as_ref().map(ToString::to_string)),
            output_mode: aggregate.map(|a| format!("{:?}", a.output_mode)),
            state_input: aggregate.map(|_| column_list(&self.processed_schema())),
            watermark_column: self.spec.watermark.as_ref().map(|w| w.column.clone()),
        }
    }

    /// Whether the pipeline has an aggregation.
    pub fn has_aggregation(&self) -> bool {
        self.aggregator.is_some()
    }

    /// A human-readable plan: each stage with the schema it produces.
    pub fn describe(&self) -> String {
        let mut out = String::new();
        let schema = column_list;
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
        describe_transforms(&mut out, &self.transforms);
        if let (Some(aggregator), Some(spec)) = (&self.aggregator, &self.spec.aggregate) {
            let aggregator = aggregator.lock().unwrap_or_else(|e| e.into_inner());
            let window = match &spec.window {
                Some(w) => match w.kind {
                    crate::aggregate::WindowKind::Fixed(f) => {
                        format!(
                            ", window {} ms sliding {} ms on `{}`",
                            f.size_ms, f.slide_ms, w.column
                        )
                    }
                    crate::aggregate::WindowKind::Session { gap_ms } => {
                        format!(", session window gap {gap_ms} ms on `{}`", w.column)
                    }
                },
                None => String::new(),
            };
            let _ = writeln!(
                out,
                "  aggregate    group by [{}]{window}, {:?} mode, state in sled",
                spec.group_by.join(", "),
                spec.output_mode
            );
            let _ = writeln!(
                out,
                "               -> {}",
                schema(aggregator.output_schema())
            );
        }
        if let Some(watermark) = &self.spec.watermark {
            let _ = writeln!(
                out,
                "  watermark    per partition on `{}`, delay {} ms, idle after {:?}",
                watermark.column, watermark.delay_ms, watermark.idle_timeout
            );
        }
        describe_transforms(&mut out, &self.after_aggregate);
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
        let decode_started = Instant::now();
        let (rows, failures) = match self.deserializer.decode(chunk) {
            Ok(decoded) => decoded,
            Err(DecodeError::Udf(error)) => match &self.spec.deserializer.format {
                DecodeFormat::Udf(udf) => match &udf.on_failure {
                    OnFailure::DeadLetter { topic } => {
                        return Ok(self.dead_letter_chunk(chunk, topic, &error, None))
                    }
                    OnFailure::Fail => return Err(error.into()),
                },
                _ => return Err(error.into()),
            },
            Err(error) => return Err(error.into()),
        };
        let mut dead_letters = Vec::new();
        if let Some(first) = failures.first() {
            match &self.spec.deserializer.on_error {
                OnError::Fail => {
                    let offset = chunk.offset(first.row);
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
                OnError::DeadLetter { topic } => {
                    errors.dead_lettered += failures.len() as u64;
                    let stage = self.deserializer.stage_name();
                    dead_letters = failures
                        .into_iter()
                        .map(|f| DeadLetterRecord {
                            row: f.row,
                            topic: topic.clone(),
                            stage: stage.to_string(),
                            error: f.message,
                        })
                        .collect();
                }
            }
        }
        let max_event_time = match self.event_time {
            Some(i) => event_times(rows.column(i))?.into_iter().flatten().max(),
            None => None,
        };
        let transform_started = Instant::now();
        let decode = transform_started - decode_started;
        let records = chunk.describe();
        let mut rows = rows;
        for (spec, stage) in &self.transforms {
            match run_transform(spec, stage, &rows, &records) {
                Ok((output, dropped)) => {
                    rows = output;
                    errors.transform_dropped += dropped;
                }
                Err(TransformError::Call(error)) => match &spec.udf.on_failure {
                    OnFailure::DeadLetter { topic } => {
                        return Ok(self.dead_letter_chunk(chunk, topic, &error, max_event_time))
                    }
                    OnFailure::Fail => return Err(error.into()),
                },
                Err(TransformError::Row(error)) => return Err(error),
            }
        }
        Ok(ChunkOutput {
            rows,
            dead_letters,
            errors,
            max_event_time,
            timings: ChunkTimings {
                decode,
                transform: transform_started.elapsed(),
            },
        })
    }

    /// `on_failure = "dead-letter"`: every record of the chunk goes to `topic` with the call's error, and the
    /// chunk yields no rows. Records are dead-lettered once, even those an earlier stage had rejected.
    fn dead_letter_chunk(
        &self,
        chunk: &PartitionChunk,
        topic: &str,
        error: &UdfError,
        max_event_time: Option<i64>,
    ) -> ChunkOutput {
        let message = error.to_string();
        tracing::warn!(
            "{message}; its {} records go to the dead-letter topic {topic} (on_failure = \"dead-letter\")",
            chunk.batch.num_rows()
        );
        let dead_letters = (0..chunk.batch.num_rows())
            .map(|row| DeadLetterRecord {
                row,
                topic: topic.to_string(),
                stage: error.udf.clone(),
                error: message.clone(),
            })
            .collect::<Vec<_>>();
        ChunkOutput {
            rows: RecordBatch::new_empty(self.processed_schema()),
            errors: ErrorCounts {
                dead_lettered: dead_letters.len() as u64,
                failed_calls: 1,
                ..ErrorCounts::default()
            },
            dead_letters,
            max_event_time,
            timings: ChunkTimings::default(),
        }
    }

    /// For `weir run --reload`: swaps in every UDF module whose file changed and still fits the plan.
    /// Returns one line per change, swapped or refused, for the log.
    pub fn reload_changed_modules(&self) -> Vec<Result<String, UdfError>> {
        let deserializer = match &self.deserializer {
            Deserializer::Udf(stage) => Some(stage.as_ref()),
            _ => None,
        };
        let stages = deserializer.into_iter().chain(
            self.transforms
                .iter()
                .chain(&self.after_aggregate)
                .map(|(_, stage)| stage),
        );
        stages
            .filter_map(|stage| match stage.reload_if_changed() {
                Ok(false) => None,
                Ok(true) => Some(Ok(format!(
                    "UDF `{}` reloaded from {}",
                    stage.name(),
                    stage.path().display()
                ))),
                Err(refused) => Some(Err(refused)),
            })
            .collect()
    }

    /// The stateful part of a batch: folds the rows of all partitions into the aggregation with the
    /// watermark as it stood before the batch, emits what the output mode calls for at the watermark after
    /// it, and runs the transforms that follow. Without an aggregation, returns the rows as they are.
    pub fn aggregate(
        &self,
        rows: RecordBatch,
        watermark_before: Option<i64>,
        watermark_after: Option<i64>,
    ) -> anyhow::Result<Aggregated> {
        let Some(aggregator) = &self.aggregator else {
            return Ok(Aggregated {
                rows,
                state: None,
                transform_dropped: 0,
                late: None,
            });
        };
        let mut aggregator = aggregator.lock().unwrap_or_else(|e| e.into_inner());
        let late_rows = aggregator.update(&rows, watermark_before)?;
        let (emitted, progress) = aggregator.finish_batch(watermark_after)?;
        drop(aggregator);
        let late = match &self.spec.watermark {
            Some(WatermarkSpec {
                late_data_topic: Some(_),
                ..
            }) if !late_rows.is_empty() => {
                let indices = arrow_array::UInt32Array::from(late_rows);
                Some(
                    arrow_select::take::take_record_batch(&rows, &indices)
                        .context("selecting late rows")?,
                )
            }
            _ => None,
        };
        let (rows, dropped) = run_transforms(
            &self.after_aggregate,
            emitted,
            " on the aggregation's output",
        )?;
        Ok(Aggregated {
            rows,
            state: Some(progress),
            transform_dropped: dropped,
            late,
        })
    }
}

fn load_transforms(
    runtime: &UdfRuntime,
    specs: &[TransformSpec],
    input: &SchemaRef,
) -> anyhow::Result<Vec<(TransformSpec, UdfStage)>> {
    let mut schema = input.clone();
    let mut stages = Vec::new();
    for spec in specs {
        let stage = runtime.load(&spec.udf, Kind::Transform, schema.clone())?;
        schema = stage.output_schema().clone();
        stages.push((spec.clone(), stage));
    }
    Ok(stages)
}

fn last_schema(stages: &[(TransformSpec, UdfStage)], input: &SchemaRef) -> SchemaRef {
    stages
        .last()
        .map_or_else(|| input.clone(), |(_, stage)| stage.output_schema().clone())
}

/// Runs `rows` through one transform; returns its rows and how many rows it dropped as failed.
fn run_transform(
    spec: &TransformSpec,
    stage: &UdfStage,
    rows: &RecordBatch,
    records: &str,
) -> Result<(RecordBatch, u64), TransformError> {
    let output = stage.process(rows, records).map_err(TransformError::Call)?;
    let Some(first) = output.row_errors.first() else {
        return Ok((output.batch, 0));
    };
    if spec.on_error == OnError::Fail {
        return Err(TransformError::Row(anyhow::anyhow!(
            "UDF `{}` rejected row {} of the batch{records}: {}; set its on_error to \"drop\" to go on without such rows",
            stage.name(),
            first.row,
            first.message
        )));
    }
    Ok((output.batch, output.row_errors.len() as u64))
}

/// Runs `rows` through a chain of transforms that must not fail (after the aggregation, where no source
/// records remain to dead-letter); returns the rows and how many rows were dropped as failed.
fn run_transforms(
    stages: &[(TransformSpec, UdfStage)],
    mut rows: RecordBatch,
    records: &str,
) -> anyhow::Result<(RecordBatch, u64)> {
    let mut dropped = 0;
    for (spec, stage) in stages {
        let (output, failed) = run_transform(spec, stage, &rows, records).map_err(|e| match e {
            TransformError::Call(error) => anyhow::Error::from(error),
            TransformError::Row(error) => error,
        })?;
        rows = output;
        dropped += failed;
    }
    Ok((rows, dropped))
}

/// The plan's lines for a chain of transforms.
fn describe_transforms(out: &mut String, stages: &[(TransformSpec, UdfStage)]) {
    for (spec, stage) in stages {
        let _ = writeln!(
            out,
            "  transform    WebAssembly `{}` ({}, on_error: {})",
            stage.name(),
            spec.udf.path.display(),
            policy(&spec.on_error)
        );
        let _ = writeln!(
            out,
            "               -> {}",
            column_list(stage.output_schema())
        );
    }
}

/// `name: type, ...` of a schema, for the plan and for errors.
pub fn column_list(schema: &SchemaRef) -> String {
    schema
        .fields()
        .iter()
        .map(|f| format!("{}: {}", f.name(), f.data_type()))
        .collect::<Vec<_>>()
        .join(", ")
}

fn policy(on_error: &OnError) -> String {
    match on_error {
        OnError::Fail => "fail".into(),
        OnError::Drop => "drop".into(),
        OnError::DeadLetter { topic } => format!("dead-letter to {topic}"),
    }
}
