//! The built-in Avro deserializer: Spark's `from_avro` for Kafka values in the Confluent wire format (a zero
//! magic byte, the writer schema's registry id in 4 big-endian bytes, then the Avro binary body), decoded
//! by arrow-avro straight into Arrow columns.
//!
//! Each record names its writer schema; the registry is asked for an id the first time it is seen
//! (`crate::registry`). Every record is read *as* the reader schema (Avro schema resolution: fields added with
//! a default, removed, promoted), so all rows share one Arrow schema however many writer versions the
//! topic holds. The reader schema is the file's `reader_schema`, or the subject's latest version when the
//! pipeline is planned.
//!
//! Why arrow-avro rather than the `apache-avro` crate: it decodes into Arrow builders with no
//! per-value allocation and resolves schemas itself, where `apache-avro` gives one `Value` tree per record
//! that Weir would then have to turn into columns by hand.
//!
//! A bad record (no magic byte, an id the registry does not know or cannot be asked about, a body that
//! does not decode) fails alone and follows `on_error`. arrow-avro does not undo the fields of a row that
//! failed halfway, so after one the decoder is built again and the good rows since its last batch are
//! decoded again; a clean chunk never pays for that.

use std::collections::HashMap;
use std::sync::Arc;

use arrow_array::{Array, BinaryArray, RecordBatch};
use arrow_avro::reader::{Decoder, ReaderBuilder};
use arrow_avro::schema::{AvroSchema, Fingerprint, FingerprintAlgorithm, SchemaStore};
use arrow_schema::{Schema, SchemaRef};
use arrow_select::concat::concat_batches;

use super::RowFailure;
use crate::registry::SchemaRegistry;

/// The length of the Confluent prefix: the magic byte and the schema id.
const PREFIX: usize = 5;

/// The id the reader schema is stored under to learn its Arrow schema (no registry id is this large).
const PROBE_ID: u32 = u32::MAX;

/// Decodes record values in the Confluent wire format into the reader schema's columns.
pub struct AvroDecoder {
    registry: SchemaRegistry,
    reader: AvroSchema,
    schema: SchemaRef,
}

impl AvroDecoder {
    /// A decoder reading as `reader` (Avro schema JSON), or as `subject`'s latest schema when `reader` is
    /// `None`; writer schemas come from the registry at `registry_url`.
    pub fn new(
        registry_url: &str,
        reader: Option<&str>,
        subject: &str,
    ) -> Result<AvroDecoder, String> {
        let registry = SchemaRegistry::new(registry_url);
        let reader = match reader {
            Some(json) => json.to_string(),
            None => {
                registry
                    .latest(subject)
                    .map_err(|e| format!("reading the latest schema of subject {subject:?}: {e}"))?
                    .1
            }
        };
        let reader = AvroSchema::new(reader);
        let probe = build_decoder(&reader, &[(PROBE_ID, reader.json_string.clone())], 1)
            .map_err(|e| format!("the reader schema: {e}"))?;
        let fields = probe.schema().fields().clone();
        Ok(AvroDecoder {
            registry,
            reader,
            schema: Arc::new(Schema::new(fields)),
        })
    }

    /// The schema of decoded rows.
    pub fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    /// The registry's URL, for the plan.
    pub(crate) fn registry_url(&self) -> &str {
        self.registry.url()
    }

    /// Decodes the `value` column of a source batch: one row per good record; bad records are returned as
    /// failures.
    pub fn decode(&self, values: &BinaryArray) -> Result<(RecordBatch, Vec<RowFailure>), String> {
        let mut failures = Vec::new();
        let mut framed = Vec::with_capacity(values.len());
        // Ids the registry could not give in this chunk: asked once, not once per record.
        let mut unavailable = HashMap::new();
        for row in 0..values.len() {
            let value = (!values.is_null(row)).then(|| values.value(row));
            match self.writer_id(value, &mut unavailable) {
                Ok(id) => framed.push((row, id)),
                Err(message) => failures.push(RowFailure { row, message }),
            }
        }
        if framed.is_empty() {
            return Ok((RecordBatch::new_empty(self.schema.clone()), failures));
        }
        let writers = self.registry.known_writers();
        let new_decoder = || build_decoder(&self.reader, &writers, values.len() + 1);
        let mut decoder = new_decoder()?;
        let mut batches = Vec::new();
        // The good rows in the decoder since its last batch, and the writer schema of the last one.
        let mut pending: Vec<usize> = Vec::new();
        let mut last_id = None;
        for (row, id) in framed {
            // A new writer schema starts a new batch, so the decoder switches to it at once.
            if last_id.is_some_and(|last| last != id) {
                flush(&mut decoder, &mut batches)?;
                pending.clear();
            }
            last_id = Some(id);
            match decode_one(&mut decoder, values.value(row)) {
                Ok(()) => pending.push(row),
                Err(message) => {
                    failures.push(RowFailure { row, message });
                    decoder = new_decoder()?;
                    last_id = None;
                    for &good in &pending {
                        decode_one(&mut decoder, values.value(good))?;
                    }
                    flush(&mut decoder, &mut batches)?;
                    pending.clear();
                }
            }
        }
        flush(&mut decoder, &mut batches)?;
        failures.sort_by_key(|f| f.row);
        Ok((self.concat(batches)?, failures))
    }

    /// The writer schema id of a record, its schema fetched if new; an error says why the record is bad.
    /// `unavailable` holds the ids the registry failed to give, with why, so each is asked once per chunk.
    fn writer_id(
        &self,
        value: Option<&[u8]>,
        unavailable: &mut HashMap<u32, String>,
    ) -> Result<u32, String> {
        let value = value.ok_or("the value is null")?;
        let id = match value {
            [0, a, b, c, d, ..] if value.len() > PREFIX => u32::from_be_bytes([*a, *b, *c, *d]),
            _ => return Err(
                "not Avro in the Confluent wire format (a zero byte, a 4-byte schema id, a body)"
                    .into(),
            ),
        };
        if let Some(why) = unavailable.get(&id) {
            return Err(why.clone());
        }
        if let Err(e) = self.registry.writer_schema(id) {
            let why = format!("writer schema id {id}: {e}");
            unavailable.insert(id, why.clone());
            return Err(why);
        }
        Ok(id)
    }

    /// The batches in the output schema, as one.
    fn concat(&self, batches: Vec<RecordBatch>) -> Result<RecordBatch, String> {
        let batches = batches
            .into_iter()
            .map(|b| RecordBatch::try_new(self.schema.clone(), b.columns().to_vec()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| {
                format!("a writer schema does not resolve to the reader's columns: {e}")
            })?;
        concat_batches(&self.schema, &batches).map_err(|e| e.to_string())
    }
}

/// A decoder of Confluent-framed records written with any of `writers` (id, schema JSON), read as `reader`.
fn build_decoder(
    reader: &AvroSchema,
    writers: &[(u32, String)],
    batch_size: usize,
) -> Result<Decoder, String> {
    let mut store = SchemaStore::new_with_type(FingerprintAlgorithm::Id);
    for (id, json) in writers {
        store
            .set(Fingerprint::Id(*id), AvroSchema::new(json.clone()))
            .map_err(|e| format!("writer schema id {id}: {e}"))?;
    }
    ReaderBuilder::new()
        .with_batch_size(batch_size)
        .with_reader_schema(reader.clone())
        .with_writer_schema_store(store)
        .build_decoder()
        .map_err(|e| e.to_string())
}

/// Decodes one whole record into `decoder`; an error unless it is exactly one row, all its bytes used.
fn decode_one(decoder: &mut Decoder, frame: &[u8]) -> Result<(), String> {
    let room = decoder.capacity();
    match decoder.decode(frame) {
        Ok(n) if n == frame.len() && room - decoder.capacity() == 1 => Ok(()),
        Ok(n) if n < frame.len() => Err("the Avro body is shorter than its schema says".into()),
        Ok(_) => Err("the value holds more than one Avro record".into()),
        Err(e) => Err(format!("the Avro body does not decode: {e}")),
    }
}

/// Takes the decoder's finished rows as a batch, if there are any.
fn flush(decoder: &mut Decoder, batches: &mut Vec<RecordBatch>) -> Result<(), String> {
    if let Some(batch) = decoder.flush().map_err(|e| e.to_string())? {
        batches.push(batch);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const READER: &str = r#"{"type":"record","name":"T","fields":[{"name":"n","type":"long"}]}"#;

    #[test]
    fn an_unreachable_registry_or_a_missing_prefix_fails_the_record_alone() {
        // Nothing listens on port 1: the registry is down.
        let decoder = AvroDecoder::new("http://127.0.0.1:1", Some(READER), "t-value").unwrap();
        assert_eq!(decoder.schema().field(0).name(), "n");
        let values = BinaryArray::from_iter_values([
            &[0u8, 0, 0, 0, 7, 2][..],
            &[0, 0, 0, 0, 7, 4][..],
            b"{\"n\": 1}",
        ]);
        let (batch, failures) = decoder.decode(&values).unwrap();
        assert_eq!(batch.num_rows(), 0);
        let messages: Vec<&str> = failures.iter().map(|f| f.message.as_str()).collect();
        assert_eq!(
            failures.iter().map(|f| f.row).collect::<Vec<_>>(),
            [0, 1, 2]
        );
        assert!(messages[0].contains("writer schema id 7") && messages[0].contains("127.0.0.1:1"));
        assert_eq!(messages[0], messages[1], "asked once, the same reason");
        assert!(messages[2].contains("not Avro in the Confluent wire format"));
    }
}
