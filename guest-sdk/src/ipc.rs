//! Arrow IPC stream encoding of the schemas and batches that cross the host/guest boundary.
//!
//! ABI v1 moves every schema and batch as an Arrow IPC *stream* (schema message, then record batch messages,
//! then an optional end-of-stream marker). Host and guest both use these functions so the two sides cannot
//! disagree on framing.

use arrow_array::RecordBatch;
use arrow_ipc::reader::StreamReader;
use arrow_ipc::writer::StreamWriter;
use arrow_schema::{ArrowError, Schema, SchemaRef};
use std::io::Cursor;

/// Encodes a schema alone as an IPC stream (schema message and end-of-stream marker).
pub fn schema_to_ipc(schema: &Schema) -> Result<Vec<u8>, ArrowError> {
    let mut writer = StreamWriter::try_new(Vec::new(), schema)?;
    writer.finish()?;
    writer.into_inner()
}

/// Decodes a schema from an IPC stream; record batches after it, if any, are ignored.
pub fn schema_from_ipc(bytes: &[u8]) -> Result<SchemaRef, ArrowError> {
    let reader = StreamReader::try_new(Cursor::new(bytes), None)?;
    Ok(reader.schema())
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
    let mut reader = StreamReader::try_new(Cursor::new(bytes), None)?;
    let schema = reader.schema();
    let batch = match reader.next() {
        None => return Ok(RecordBatch::new_empty(schema)),
        Some(batch) => batch?,
    };
    if reader.next().is_some() {
        return Err(ArrowError::IpcError(
            "the stream holds more than one record batch; ABI v1 moves one batch per call".into(),
        ));
    }
    Ok(batch)
}
