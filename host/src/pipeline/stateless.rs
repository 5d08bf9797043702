//! The stateless step of a batch, per partition: deserialize, run the transforms, and apply each stage's
//! policies to what fails (`on_error` for single records or rows, `on_failure` for a whole call).
//!
//! [`Plan::process_chunk`] is a function of its input, so workers run it in parallel on different
//! partitions; the stateful step then sees the whole batch at once (`stateful.rs`).

use std::time::Instant;

use anyhow::Context;
use arrow_array::{Array, BinaryArray, RecordBatch};

use super::plan::Plan;
use crate::decode::{DecodeError, DecodeFormat, Deserializer, RowFailure};
use crate::kafka::TopicPartition;
use crate::progress::ErrorCounts;
use crate::repartition::chain::Write;
use crate::repartition::record;
use crate::source::PartitionChunk;
use crate::udf::{OnError, OnFailure, UdfError};
use crate::window::event_times;

use super::transforms::TransformError;

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
    /// Whether the rows are the `[stream_join]` topic's (the other stream), not the source's.
    pub joined: bool,
    /// A repartition partition's records: the upstream writes in them (`repartition/`); `rows` is empty.
    pub(crate) upstream_writes: Vec<(TopicPartition, Write<RecordBatch>)>,
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

impl Plan {
    /// Runs one partition's records through the deserializer and the transforms.
    ///
    /// Records that fail alone are handled by their stage's `on_error`; with `fail`, the error names the
    /// record's topic, partition and offset. A call that fails as a whole is handled by its stage's
    /// `on_failure`.
    pub fn process_chunk(&self, chunk: &PartitionChunk) -> anyhow::Result<ChunkOutput> {
        if let Some(joined) = self.joined.as_ref().filter(|j| j.topic == chunk.topic) {
            return self.process_joined_chunk(joined, chunk);
        }
        if self
            .upstreams
            .as_ref()
            .is_some_and(|u| u.topic() == chunk.topic)
        {
            return self.read_upstream_writes(chunk);
        }
        let mut errors = ErrorCounts::default();
        let decode_started = Instant::now();
        let (rows, failures) = match self.deserializer.decode(chunk) {
            Ok(decoded) => decoded,
            Err(DecodeError::Udf(error)) => {
                let on_failure = match &self.spec.deserializer.format {
                    DecodeFormat::Udf(udf) => &udf.on_failure,
                    _ => &OnFailure::Fail,
                };
                return self.call_failed(chunk, on_failure, error, None);
            }
            Err(error) => return Err(error.into()),
        };
        let decoder = (&self.deserializer, &self.spec.deserializer.on_error);
        let dead_letters = self.rejected_records(chunk, failures, decoder, &mut errors)?;
        let max_event_time = match self.event_time {
            Some(i) => event_times(rows.column(i))?.into_iter().flatten().max(),
            None => None,
        };
        let transform_started = Instant::now();
        let decode = transform_started - decode_started;
        let records = chunk.describe();
        let rows = match self.transforms.run(rows, &records) {
            Ok((rows, dropped)) => {
                errors.transform_dropped += dropped;
                rows
            }
            Err(TransformError::Call(error, on_failure)) => {
                return self.call_failed(chunk, &on_failure, error, max_event_time)
            }
            Err(TransformError::Rows(error)) => return Err(error),
        };
        Ok(ChunkOutput {
            rows,
            dead_letters,
            errors,
            max_event_time,
            timings: ChunkTimings {
                decode,
                transform: transform_started.elapsed(),
            },
            joined: false,
            upstream_writes: Vec::new(),
        })
    }

    /// A repartition partition's records, read as the upstream writes they hold.
    fn read_upstream_writes(&self, chunk: &PartitionChunk) -> anyhow::Result<ChunkOutput> {
        let started = Instant::now();
        let values = (chunk.batch.column_by_name("value"))
            .and_then(|c| c.as_any().downcast_ref::<BinaryArray>())
            .context("the source's records have no binary value column")?;
        let upstream_writes = (0..chunk.batch.num_rows())
            .map(|row| {
                let offset = chunk.offset(row);
                record::decode(values.value(row), offset)
                    .with_context(|| format!("{}-{}", chunk.topic, chunk.partition))
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok(ChunkOutput {
            rows: RecordBatch::new_empty(self.transforms.output_schema()),
            dead_letters: Vec::new(),
            errors: ErrorCounts::default(),
            max_event_time: None,
            timings: ChunkTimings {
                decode: started.elapsed(),
                transform: std::time::Duration::ZERO,
            },
            joined: false,
            upstream_writes,
        })
    }

    /// A deserializer's `on_error` for the records it could not decode: fail naming the first, drop
    /// them (counted), or return them for the dead-letter topic.
    pub(super) fn rejected_records(
        &self,
        chunk: &PartitionChunk,
        failures: Vec<RowFailure>,
        (deserializer, on_error): (&Deserializer, &OnError),
        errors: &mut ErrorCounts,
    ) -> anyhow::Result<Vec<DeadLetterRecord>> {
        let Some(first) = failures.first() else {
            return Ok(Vec::new());
        };
        match on_error {
            OnError::Fail => {
                let more = match failures.len() {
                    1 => String::new(),
                    n => format!(" (and {} more in this batch)", n - 1),
                };
                anyhow::bail!(
                    "record {} could not be deserialized ({}): {}{more}; set the deserializer's \
                     on_error to \"drop\" or \"dead-letter\" to go on without such records",
                    chunk.locate(first.row),
                    deserializer.describe(),
                    first.message,
                );
            }
            OnError::Drop => {
                errors.deserializer_dropped += failures.len() as u64;
                tracing::debug!(
                    dropped = failures.len(),
                    "{}: dropped records that failed to deserialize",
                    chunk.describe()
                );
                Ok(Vec::new())
            }
            OnError::DeadLetter { topic } => {
                errors.dead_lettered += failures.len() as u64;
                let stage = deserializer.stage_name();
                Ok(failures
                    .into_iter()
                    .map(|f| DeadLetterRecord {
                        row: f.row,
                        topic: topic.clone(),
                        stage: stage.to_string(),
                        error: f.message,
                    })
                    .collect())
            }
        }
    }

    /// A stage's `on_failure` for a call that failed as a whole: fail the pipeline with the error, or
    /// send the whole chunk to the dead-letter topic.
    pub(super) fn call_failed(
        &self,
        chunk: &PartitionChunk,
        on_failure: &OnFailure,
        error: UdfError,
        max_event_time: Option<i64>,
    ) -> anyhow::Result<ChunkOutput> {
        match on_failure {
            OnFailure::DeadLetter { topic } => {
                Ok(self.dead_letter_chunk(chunk, topic, &error, max_event_time))
            }
            OnFailure::Fail => Err(error.into()),
        }
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
            rows: RecordBatch::new_empty(self.transforms.output_schema()),
            errors: ErrorCounts {
                dead_lettered: dead_letters.len() as u64,
                failed_calls: 1,
                ..ErrorCounts::default()
            },
            dead_letters,
            max_event_time,
            timings: ChunkTimings::default(),
            joined: false,
            upstream_writes: Vec::new(),
        }
    }
}
