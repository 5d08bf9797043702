//! The `[stream_join]` topic's side of a pipeline: its records decoded by their own deserializer, per
//! partition like the source's, then joined with the source's rows at the start of the stateful step.

use std::sync::Mutex;

use anyhow::Context;
use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use arrow_select::concat::concat_batches;

use super::plan::Plan;
use super::stateless::{ChunkOutput, ChunkTimings};
use crate::decode::{DecodeError, DecodeFormat, Deserializer};
use crate::pipeline::PipelineSpec;
use crate::progress::{ErrorCounts, StateOperatorProgress};
use crate::source::PartitionChunk;
use crate::state::StateStore;
use crate::stream_join::StreamJoin;
use crate::udf::{OnError, OnFailure, UdfRuntime};
use crate::window::event_times;

/// The other stream of a stream-stream join, planned.
pub(super) struct JoinedStream {
    /// Its topic: chunks of it go through [`Plan::process_joined_chunk`].
    pub(super) topic: String,
    deserializer: Deserializer,
    /// Its deserializer's policies: for records that fail alone, and for a UDF call that fails whole.
    on_error: OnError,
    on_failure: OnFailure,
    event_time: usize,
    /// Added to its partitions' event times before the watermark sees them (the source's delay less its
    /// own), so that each stream holds the watermark back by its own delay.
    watermark_shift_ms: i64,
    /// The join; run by one thread at a time, after the partitions' stateless stages.
    pub(super) join: Mutex<StreamJoin>,
}

impl JoinedStream {
    /// Plans the spec's `[stream_join]`, if any, for source rows of `left` (the transforms' output), its
    /// held rows restored from `state`.
    pub(super) fn plan(
        spec: &PipelineSpec,
        left: &SchemaRef,
        runtime: &UdfRuntime,
        state: &StateStore,
    ) -> anyhow::Result<Option<JoinedStream>> {
        let (Some(join), Some(watermark)) = (&spec.stream_join, &spec.watermark) else {
            return Ok(None);
        };
        let source = crate::source::source_schema(false);
        let deserializer = Deserializer::new(&join.deserializer.format, runtime, &source)
            .context("stream_join.deserializer")?;
        let right = deserializer.output_schema().clone();
        let event_time = right.index_of(&join.event_time).map_err(|_| {
            anyhow::anyhow!(
                "stream_join.watermark.column `{}` is not a column of the other stream's rows",
                join.event_time
            )
        })?;
        let table = state.table("stream-join")?;
        let planned = StreamJoin::plan(join, (left, &watermark.column), &right, table)?;
        let on_failure = match &join.deserializer.format {
            DecodeFormat::Udf(udf) => udf.on_failure.clone(),
            _ => OnFailure::Fail,
        };
        Ok(Some(JoinedStream {
            topic: join.topic.clone(),
            deserializer,
            on_error: join.deserializer.on_error.clone(),
            on_failure,
            event_time,
            watermark_shift_ms: watermark.delay_ms - join.delay_ms,
            join: Mutex::new(planned),
        }))
    }

    /// The deserialized rows' schema.
    fn schema(&self) -> &SchemaRef {
        self.deserializer.output_schema()
    }

    /// The joined rows' schema.
    pub(super) fn output_schema(&self) -> SchemaRef {
        self.join
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .output_schema()
            .clone()
    }

    /// The deserializer, as the plan describes it.
    pub(super) fn describe_deserializer(&self) -> String {
        self.deserializer.describe()
    }
}

impl Plan {
    /// One partition of the other stream: deserialized, with its own `on_error` and `on_failure`; no
    /// transforms (they are the source's).
    pub(super) fn process_joined_chunk(
        &self,
        joined: &JoinedStream,
        chunk: &PartitionChunk,
    ) -> anyhow::Result<ChunkOutput> {
        let started = std::time::Instant::now();
        let (rows, failures) = match joined.deserializer.decode(chunk) {
            Ok(decoded) => decoded,
            Err(DecodeError::Udf(error)) => {
                let mut output = self.call_failed(chunk, &joined.on_failure, error, None)?;
                output.rows = RecordBatch::new_empty(joined.schema().clone());
                output.joined = true;
                return Ok(output);
            }
            Err(error) => return Err(error.into()),
        };
        let mut errors = ErrorCounts::default();
        let decoder = (&joined.deserializer, &joined.on_error);
        let dead_letters = self.rejected_records(chunk, failures, decoder, &mut errors)?;
        let max_event_time = event_times(rows.column(joined.event_time))?
            .into_iter()
            .flatten()
            .max()
            .map(|t| t.saturating_add(joined.watermark_shift_ms));
        Ok(ChunkOutput {
            rows,
            dead_letters,
            errors,
            max_event_time,
            joined: true,
            upstream_writes: Vec::new(),
            timings: ChunkTimings {
                decode: started.elapsed(),
                transform: std::time::Duration::ZERO,
            },
        })
    }

    /// The stateful step's first part: the partitions' rows put together, and, with a `[stream_join]`,
    /// the two streams joined (with the join's state counts).
    pub(super) fn join_streams(
        &self,
        outputs: &[ChunkOutput],
        watermarks: (Option<i64>, Option<i64>),
    ) -> anyhow::Result<(RecordBatch, Option<StateOperatorProgress>)> {
        let rows_of = |joined: bool, schema: &SchemaRef| {
            let parts = outputs
                .iter()
                .filter(|o| o.joined == joined)
                .map(|o| &o.rows);
            concat_batches(schema, parts).context("joining the partitions' rows")
        };
        let source_rows = rows_of(false, &self.transforms.output_schema())?;
        let Some(joined) = &self.joined else {
            return Ok((source_rows, None));
        };
        let other_rows = rows_of(true, joined.schema())?;
        let mut join = joined.join.lock().unwrap_or_else(|e| e.into_inner());
        let result = join.process(&source_rows, &other_rows, watermarks)?;
        Ok((result.rows, Some(result.progress)))
    }
}
