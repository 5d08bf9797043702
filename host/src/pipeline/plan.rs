//! The plan: every stage loaded and checked to compose, before a single record is read.
//!
//! `weir validate` stops here and prints the plan; `weir run` goes on to run it. A batch then goes through
//! the plan in two steps: the stateless stages per partition (`stateless.rs`), then the stateful step
//! over the whole batch (`stateful.rs`).

use std::fmt::Write;
use std::sync::{Arc, Mutex};

use anyhow::Context;
use arrow_schema::SchemaRef;

use crate::aggregate::Aggregator;
use crate::checkpoint::PlanFingerprint;
use crate::decode::Deserializer;
use crate::dedup::Deduplicator;
use crate::pipeline::PipelineSpec;
use crate::schema::column_list;
use crate::sink::{check_file_schema, check_sink_schema, SinkTarget};
use crate::source::SourceSpec;
use crate::state::StateStore;
use crate::udf::OnError;
use crate::udf::{CallCounts, UdfRuntime, UdfStage};

use super::joined_stream::JoinedStream;
use super::tasks::PartitionTasks;
use super::transforms::TransformChain;
use super::upstream::Upstreams;

/// A pipeline with its stages loaded.
pub struct Plan {
    pub(crate) spec: PipelineSpec,
    source_schema: SchemaRef,
    pub(super) deserializer: Deserializer,
    pub(super) transforms: TransformChain,
    /// The event-time column in the deserialized rows, when there is a watermark.
    pub(super) event_time: Option<usize>,
    /// Deduplication; run by one thread at a time, after the partitions' stateless stages.
    pub(super) deduplicator: Option<Mutex<Deduplicator>>,
    /// The aggregation; run by one thread at a time, after the partitions' stateless stages.
    pub(super) aggregator: Option<Mutex<Aggregator>>,
    /// As a stateful group member: the aggregation per input partition (or per repartition partition), in
    /// place of `aggregator`.
    pub(super) tasks: Option<Arc<PartitionTasks>>,
    /// As a repartitioning group member: the input partitions' tasks, which write to the repartition topic.
    pub(super) upstreams: Option<Arc<Upstreams>>,
    /// The `[stream_join]` topic's stream, when there is one.
    pub(super) joined: Option<JoinedStream>,
    /// The transforms of the aggregation's output (none without an aggregation).
    pub(super) after_aggregate: Option<TransformChain>,
    output: SchemaRef,
}

impl Plan {
    /// Loads every module and checks that the schemas compose from source to sink; operator state lives in
    /// the operators' memory, for this run only.
    pub fn new(spec: PipelineSpec, runtime: &UdfRuntime) -> anyhow::Result<Plan> {
        Plan::with_state(spec, runtime, StateStore::in_memory())
    }

    /// [`Plan::new`] with operator state in `state` (a checkpoint's), restored from what it holds.
    pub(crate) fn with_state(
        spec: PipelineSpec,
        runtime: &UdfRuntime,
        state: StateStore,
    ) -> anyhow::Result<Plan> {
        let source_schema = spec.source.record_schema();
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
        let transforms = TransformChain::load(
            runtime,
            &spec.transforms,
            deserializer.output_schema(),
            "transform",
        )?;
        let joined = JoinedStream::plan(&spec, &transforms.output_schema(), runtime, &state)?;
        let mut schema = match &joined {
            Some(joined) => joined.output_schema(),
            None => transforms.output_schema(),
        };
        let deduplicator = plan_deduplication(&spec, &schema, &state)?;
        let tasks = PartitionTasks::plan(&spec, &schema)?.map(Arc::new);
        let upstreams = Upstreams::plan(&spec, &schema)?.map(Arc::new);
        let (aggregator, after_aggregate) = match (&spec.aggregate, &tasks) {
            (None, _) => (None, None),
            // A group member aggregates per partition, in its tasks: no aggregation over the whole batch.
            (Some(_), Some(tasks)) => {
                let after = TransformChain::load(
                    runtime,
                    &spec.after_aggregate,
                    tasks.output_schema(),
                    "after_aggregate",
                )?;
                schema = after.output_schema();
                (None, Some(after))
            }
            (Some(aggregate), None) => {
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
                let after = TransformChain::load(
                    runtime,
                    &spec.after_aggregate,
                    aggregator.output_schema(),
                    "after_aggregate",
                )?;
                schema = after.output_schema();
                (Some(Mutex::new(aggregator)), Some(after))
            }
        };
        let fits = match &spec.sink.target {
            SinkTarget::Kafka => check_sink_schema(&schema, spec.sink.format, &spec.sink.options),
            SinkTarget::Files(files) => check_file_schema(&schema, files),
            SinkTarget::Console(_) => Ok(()),
        };
        fits.map_err(anyhow::Error::msg)
            .context("the rows reaching the sink do not fit it")?;
        Ok(Plan {
            spec,
            source_schema,
            deserializer,
            transforms,
            event_time,
            deduplicator,
            aggregator,
            tasks,
            upstreams,
            joined,
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
    pub(crate) fn processed_schema(&self) -> SchemaRef {
        match &self.joined {
            Some(joined) => joined.output_schema(),
            None => self.transforms.output_schema(),
        }
    }

    /// What a checkpoint compares between runs (see [`PlanFingerprint`]).
    pub(crate) fn fingerprint(&self) -> PlanFingerprint {
        let aggregate = self.spec.aggregate.as_ref();
        PlanFingerprint {
            source: match &self.spec.source {
                // The directory may be named relative to where `weir` runs: only the kind of files counts.
                SourceSpec::Files(files) => format!("FileStreamSource[{}]", files.format.name()),
                kafka => kafka.description(),
            },
            group_by: aggregate.map(|a| a.group_by.clone()).unwrap_or_default(),
            aggregates: aggregate
                .map(|a| a.aggregates.iter().map(ToString::to_string).collect())
                .unwrap_or_default(),
            window: aggregate.and_then(|a| a.window.as_ref().map(ToString::to_string)),
            output_mode: aggregate.map(|a| format!("{:?}", a.output_mode)),
            state_input: aggregate.map(|_| column_list(&self.processed_schema())),
            watermark_column: self.spec.watermark.as_ref().map(|w| w.column.clone()),
            deduplicate: self.spec.deduplicate.as_ref().map(ToString::to_string),
            // The delays may change between runs, as the source's may; what is held may not.
            stream_join: self.spec.stream_join.as_ref().map(|join| {
                let (how, topic, on) = (join.how.name(), &join.topic, &join.on);
                format!("{how} join with {topic} on {on}")
            }),
        }
    }

    /// Each UDF stage's name and call counts, in pipeline order.
    pub(crate) fn udf_call_counts(&self) -> Vec<(String, Arc<CallCounts>)> {
        let deserializer = match &self.deserializer {
            Deserializer::Udf(stage) => Some(stage.as_ref()),
            _ => None,
        };
        deserializer
            .into_iter()
            .chain(self.udf_transforms())
            .map(|stage| (stage.name().to_string(), stage.call_counts()))
            .collect()
    }

    /// Whether a moving watermark alone can make output: an aggregation closes windows, a stream-stream
    /// join emits the unmatched rows it lets go.
    pub(crate) fn emits_on_watermark(&self) -> bool {
        self.aggregator.is_some() || self.tasks.is_some() || self.joined.is_some()
    }

    /// Whether the stateful step changes which rows reach the sink (an aggregation or deduplication), so
    /// that they no longer follow the source chunks in order.
    pub(crate) fn has_state(&self) -> bool {
        self.aggregator.is_some()
            || self.tasks.is_some()
            || self.deduplicator.is_some()
            || self.joined.is_some()
    }

    /// The rows the aggregation emits, whether it runs over the whole batch or per partition.
    fn aggregate_output(&self) -> Option<SchemaRef> {
        match (&self.aggregator, &self.tasks) {
            (Some(aggregator), _) => Some(
                (aggregator.lock().unwrap_or_else(|e| e.into_inner()))
                    .output_schema()
                    .clone(),
            ),
            (None, Some(tasks)) => Some(tasks.output_schema().clone()),
            (None, None) => None,
        }
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
        self.transforms.describe(&mut out);
        if let Some(joined) = &self.joined {
            let join = joined.join.lock().unwrap_or_else(|e| e.into_inner());
            let _ = writeln!(out, "  stream join  {}", join.spec().describe());
            let _ = writeln!(
                out,
                "               the other stream deserialized by {}",
                joined.describe_deserializer()
            );
            let _ = writeln!(out, "               -> {}", schema(join.output_schema()));
        }
        if let (Some(dedup), Some(watermark)) = (&self.deduplicator, &self.spec.watermark) {
            let dedup = dedup.lock().unwrap_or_else(|e| e.into_inner());
            let _ = writeln!(
                out,
                "  deduplicate  {}, keys forgotten as the watermark on `{}` passes, state in sled",
                dedup.spec(),
                watermark.column
            );
        }
        if let (Some(output), Some(spec)) = (self.aggregate_output(), &self.spec.aggregate) {
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
            let state = match (&self.tasks, &self.upstreams) {
                (Some(_), Some(upstreams)) => format!(
                    "per partition of {}, where rows go by the hash of [{}], state in its changelog topic",
                    upstreams.topic(),
                    spec.group_by.join(", ")
                ),
                (Some(_), None) => format!(
                    "per input partition (partitioned by [{}]), state in its changelog topic",
                    spec.input_partitioned_by.join(", ")
                ),
                (None, _) => "state in sled".to_string(),
            };
            let state = match &self.spec.state_store {
                Some(path) => format!("{state}, local copies in {}", path.display()),
                None => state,
            };
            let _ = writeln!(
                out,
                "  aggregate    group by [{}]{window}, {:?} mode, {state}",
                spec.group_by.join(", "),
                spec.output_mode
            );
            let _ = writeln!(out, "               -> {}", schema(&output));
        }
        if let Some(watermark) = &self.spec.watermark {
            // A group member's tasks each follow their own partition only: no idle timeout applies.
            let idle = match self.tasks {
                Some(_) => ", each task its own partition's".to_string(),
                None => format!(", idle after {:?}", watermark.idle_timeout),
            };
            let _ = writeln!(
                out,
                "  watermark    per partition on `{}`, delay {} ms{idle}",
                watermark.column, watermark.delay_ms
            );
        }
        if let Some(after) = &self.after_aggregate {
            after.describe(&mut out);
        }
        let _ = writeln!(out, "  sink         {}", self.spec.sink.describe());
        let _ = writeln!(out, "  trigger      {:?}", self.spec.trigger);
        if let Some(metrics) = &self.spec.metrics {
            let _ = writeln!(
                out,
                "  metrics      http://{}/metrics (and /health, /ready)",
                metrics.listen
            );
        }
        out
    }

    /// The UDF stages of the transform chains, before and after the aggregation, in order.
    fn udf_transforms(&self) -> impl Iterator<Item = &UdfStage> {
        self.transforms.udf_stages().chain(
            self.after_aggregate
                .iter()
                .flat_map(|after| after.udf_stages()),
        )
    }

    /// For `weir run --reload`: swaps in every UDF module and join table whose file changed and still fits
    /// the plan. Returns one line per change, swapped or refused, for the log.
    pub(crate) fn reload_changed_files(&self) -> Vec<Result<String, String>> {
        let deserializer = match &self.deserializer {
            Deserializer::Udf(stage) => Some(stage.as_ref()),
            _ => None,
        };
        let stages = deserializer.into_iter().chain(self.udf_transforms());
        let modules = stages.filter_map(|stage| match stage.reload_if_changed() {
            Ok(false) => None,
            Ok(true) => Some(Ok(format!(
                "UDF `{}` reloaded from {}",
                stage.name(),
                stage.path().display()
            ))),
            Err(refused) => Some(Err(refused.to_string())),
        });
        let chains = std::iter::once(&self.transforms).chain(&self.after_aggregate);
        modules
            .chain(chains.flat_map(TransformChain::reload_changed_tables))
            .collect()
    }
}

/// The deduplication `spec` asks for, on rows of `schema`, with its state restored from `state`.
fn plan_deduplication(
    spec: &PipelineSpec,
    schema: &SchemaRef,
    state: &StateStore,
) -> anyhow::Result<Option<Mutex<Deduplicator>>> {
    let Some(dedup) = &spec.deduplicate else {
        return Ok(None);
    };
    let Some(watermark) = &spec.watermark else {
        anyhow::bail!("`deduplicate` needs a [watermark], which bounds its state");
    };
    let event_time = (watermark.column.as_str(), watermark.delay_ms);
    let mut operator = Deduplicator::new(dedup, schema, event_time, state.table("deduplicate")?)?;
    let restored = operator
        .restore()
        .context("restoring the deduplication state")?;
    if restored > 0 {
        tracing::info!(
            keys = restored,
            "deduplication state restored from the checkpoint"
        );
    }
    Ok(Some(Mutex::new(operator)))
}

/// An `on_error` policy as the pipeline file writes it.
pub(super) fn policy(on_error: &OnError) -> String {
    match on_error {
        OnError::Fail => "fail".into(),
        OnError::Drop => "drop".into(),
        OnError::DeadLetter { topic } => format!("dead-letter to {topic}"),
    }
}
