//! Arrow IPC stream encoding of the schemas and batches that cross the host/guest boundary.
//!
//! ABI v1 moves every schema and batch as an Arrow IPC *stream* (schema message, then record batch messages,
//! then an optional end-of-stream marker). Host and guest both use these functions so the two sides cannot
//! disagree on framing.

use arrow_array::RecordBatch;
use arrow_buffer::Buffer;
use arrow_ipc::reader::StreamDecoder;
use arrow_ipc::writer::StreamWriter;
use arrow_schema::{ArrowError, Schema, SchemaRef};

/// Encodes a schema alone as an IPC stream (schema message and end-of-stream marker).
pub fn schema_to_ipc(schema: &Schema) -> Result<Vec<u8>, ArrowError> {
    let mut writer = StreamWriter::try_new(Vec::new(), schema)?;
    writer.finish()?;
    writer.into_inner()
}

/// Decodes a schema from an IPC stream; record batches after it, if any, are ignored.
pub fn schema_from_ipc(bytes: &[u8]) -> Result<SchemaRef, ArrowError> {
    // The push decoder, for the reason given in `batch_from_ipc`.
    let mut decoder = StreamDecoder::new();
    let mut buffer = Buffer::from(bytes);
    while decoder.schema().is_none() && !buffer.is_empty() {
        // What follows the schema is not this function's to judge.
        if let Err(error) = decoder.decode(&mut buffer) {
            if decoder.schema().is_none() {
                return Err(error);
            }
        }
    }
    decoder
        .schema()
        .ok_or_else(|| ArrowError::IpcError("the stream ends before its schema".into()))
}

/// Encodes one batch as an IPC stream: its schema, the batch and the end-of-stream marker.
pub fn batch_to_ipc(batch: &RecordBatch) -> Result<Vec<u8>, ArrowError> {
    let mut writer = StreamWriter::try_new(Vec::new(), &batch.schema())?;
    writer.write(batch)?;
    writer.finish()?;
    writer.into_inner()
}

/// Decodes the single batch of an IPC stream.
///
/// A stream with no batch gives an empty batch of its schema; a stream with several batches is an error,
/// because ABI v1 moves exactly one batch per call.
///
/// ```
/// use std::sync::Arc;
/// use weir_guest::arrow_array::{Int32Array, RecordBatch};
/// use weir_guest::ipc::{batch_from_ipc, batch_to_ipc};
/// let batch = RecordBatch::try_from_iter([("n", Arc::new(Int32Array::from(vec![1, 2])) as _)]).unwrap();
/// let bytes = batch_to_ipc(&batch).unwrap();
/// assert_eq!(batch_from_ipc(&bytes).unwrap(), batch);
/// ```
pub fn batch_from_ipc(bytes: &[u8]) -> Result<RecordBatch, ArrowError> {
    // A push decoder over the bytes, not a `StreamReader`: the reader allocates each message body at the
    // length its header declares before reading it, so a damaged header (as from a hostile guest) asking
    // for 64 GB aborted the host; the decoder only ever holds the bytes there are.
    let mut decoder = StreamDecoder::new();
    let mut buffer = Buffer::from(bytes);
    let mut batch = None;
    while !buffer.is_empty() {
        let Some(decoded) = decoder.decode(&mut buffer)? else {
            continue;
        };
        if batch.replace(decoded).is_some() {
            return Err(ArrowError::IpcError(
                "the stream holds more than one record batch; ABI v1 moves one batch per call"
                    .into(),
            ));
        }
    }
    decoder.finish()?;
    match (batch, decoder.schema()) {
        (Some(batch), _) => Ok(batch),
        (None, Some(schema)) => Ok(RecordBatch::new_empty(schema)),
        (None, None) => Err(ArrowError::IpcError(
            "the stream ends before its schema".into(),
        )),
    }
}
