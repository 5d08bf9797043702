//! Dead letters: a record the pipeline could not handle, sent aside unchanged with the reason in its headers
//! (`weir.error`, `weir.stage`, `weir.source.topic`/`partition`/`offset`), or, for an output row refused
//! after an aggregation, which no single record made, the row's key.

use anyhow::Context;
use arrow_array::cast::AsArray;
use arrow_array::Array;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::BaseRecord;

use super::deliveries::{RecordTag, NOT_A_ROW};
use super::rows::Encoding;
use super::{KafkaSink, Refusal, SinkRows};
use crate::source::PartitionChunk;

/// A source record bound for a dead-letter topic: it failed to deserialize, was in a UDF call that failed
/// (`on_failure`), or made an output row the broker refused (`[sink] on_error`).
pub(crate) struct DeadLetter<'a> {
    /// The records of the partition it came from.
    pub chunk: &'a PartitionChunk,
    /// Its row in the chunk.
    pub row: usize,
    /// The stage that rejected it.
    pub stage: &'a str,
    /// Why.
    pub error: &'a str,
}

impl KafkaSink {
    /// Sends a failed record, unchanged, to `topic` with `weir.error`, `weir.stage` and `weir.source.*`
    /// headers added to its own.
    pub(crate) fn dead_letter(&self, topic: &str, letter: DeadLetter<'_>) -> anyhow::Result<()> {
        let batch = &letter.chunk.batch;
        let (row, chunk) = (letter.row, letter.chunk);
        let binary = |i: usize| {
            let column = batch.column(i).as_binary::<i32>();
            (!column.is_null(row)).then(|| column.value(row))
        };
        let offset = chunk.offset(row);
        let partition = chunk.partition.to_string();
        let offset_text = offset.to_string();
        let mut headers = OwnedHeaders::new();
        if batch.num_columns() > 7 {
            let sink_rows = SinkRows::new(
                &batch.project(&[1, 7]).context("reading headers")?,
                Encoding::Value,
                None,
            )
            .map_err(anyhow::Error::msg)?;
            for (key, value) in sink_rows.headers(row) {
                headers = headers.insert(Header { key, value });
            }
        }
        let headers = with_weir_headers(
            headers,
            &[
                ("weir.error", letter.error),
                ("weir.stage", letter.stage),
                ("weir.source.topic", &chunk.topic),
                ("weir.source.partition", &partition),
                ("weir.source.offset", &offset_text),
            ],
        );
        let mut record =
            BaseRecord::<[u8], [u8], RecordTag>::with_opaque_to(topic, NOT_A_ROW).headers(headers);
        if let Some(value) = binary(1) {
            record = record.payload(value);
        }
        if let Some(key) = binary(0) {
            record = record.key(key);
        }
        self.send(record)
            .with_context(|| format!("producing a dead letter to topic {topic}"))
    }

    /// Writes, in place of an output row refused after an aggregation (which no source record made), its
    /// key and no value to `topic`, with `weir.error`, `weir.stage` (`sink`), `weir.sink.topic` and
    /// `weir.row.bytes` headers.
    pub(crate) fn refused_row_letter(
        &self,
        topic: &str,
        rows: &SinkRows,
        refusal: &Refusal,
    ) -> anyhow::Result<()> {
        let bytes = refusal.bytes.to_string();
        let headers = with_weir_headers(
            OwnedHeaders::new(),
            &[
                ("weir.error", &refusal.message),
                ("weir.stage", "sink"),
                ("weir.sink.topic", &refusal.topic),
                ("weir.row.bytes", &bytes),
            ],
        );
        let mut record =
            BaseRecord::<[u8], [u8], RecordTag>::with_opaque_to(topic, NOT_A_ROW).headers(headers);
        if let Some(key) = rows.key(refusal.row) {
            record = record.key(key);
        }
        self.send(record)
            .with_context(|| format!("producing a dead letter to topic {topic}"))
    }
}

/// `headers` with Weir's own text headers appended, in order.
fn with_weir_headers(headers: OwnedHeaders, pairs: &[(&str, &str)]) -> OwnedHeaders {
    pairs.iter().fold(headers, |headers, (key, value)| {
        headers.insert(Header {
            key,
            value: Some(*value),
        })
    })
}
