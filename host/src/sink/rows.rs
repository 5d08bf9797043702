//! Rows in the sink's shape: which column is the value, the key, the topic, the partition, the headers.
//!
//! Resolved once per batch by column name, so the produce loop only indexes arrays. The values are a
//! column as it is, or every other column encoded per row as JSON (arrow-json) or as Avro in the Confluent
//! wire format (arrow-avro).

use arrow_array::cast::AsArray;
use arrow_array::{Array, ArrayRef, GenericListArray, Int32Array, RecordBatch, StructArray};
use arrow_avro::schema::{AvroSchema, FingerprintStrategy};
use arrow_avro::writer::format::AvroSoeFormat;
use arrow_avro::writer::EncodedRows;
use arrow_json::writer::{LineDelimited, WriterBuilder};
use arrow_schema::{DataType, Schema};

use super::SinkOptions;
use crate::sink::SinkFormat;

const KAFKA_COLUMNS: [&str; 4] = ["key", "headers", "topic", "partition"];

/// How a row becomes a record value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Encoding {
    /// The `value` column.
    Value,
    /// The other columns as a JSON object.
    Json,
    /// The other columns as an Avro record, prefixed by the registry `id` of their schema.
    Avro {
        /// The schema's registry id.
        id: u32,
    },
}

/// The Avro schema (JSON) of the columns an Avro sink writes: all but `key`, `headers`, `topic` and
/// `partition`.
pub(crate) fn avro_schema_of(batch: &RecordBatch) -> Result<String, String> {
    let written = written_columns(batch)?;
    AvroSchema::try_from(written.schema().as_ref())
        .map(|schema| schema.json_string)
        .map_err(|e| format!("the rows' columns as an Avro schema: {e}"))
}

/// The columns written as the value by the JSON and Avro encodings.
fn written_columns(batch: &RecordBatch) -> Result<RecordBatch, String> {
    let keep: Vec<usize> = (0..batch.num_columns())
        .filter(|i| !KAFKA_COLUMNS.contains(&batch.schema().field(*i).name().as_str()))
        .collect();
    batch.project(&keep).map_err(|e| e.to_string())
}

/// Each row of `batch` as an Avro record in the Confluent wire format, schema id `id`.
fn avro_rows(batch: &RecordBatch, id: u32) -> Result<EncodedRows, String> {
    let written = written_columns(batch)?;
    let mut encoder = arrow_avro::writer::WriterBuilder::new(written.schema().as_ref().clone())
        .with_fingerprint_strategy(FingerprintStrategy::Id(id))
        .build_encoder::<AvroSoeFormat>()
        .map_err(|e| format!("an Avro encoder for the rows: {e}"))?;
    encoder
        .encode(&written)
        .map_err(|e| format!("serializing rows as Avro: {e}"))?;
    Ok(encoder.flush())
}

/// Checks that rows of `schema` can be written with `format` (and the `topic` option), naming what is missing.
pub(crate) fn check_sink_schema(
    schema: &Schema,
    format: SinkFormat,
    options: &SinkOptions,
) -> Result<(), String> {
    let topic_option = options.topic.is_some();
    let bytes_like = |name: &str| -> Result<bool, String> {
        match schema.field_with_name(name) {
            Err(_) => Ok(false),
            Ok(f)
                if matches!(
                    f.data_type(),
                    DataType::Utf8 | DataType::Binary | DataType::LargeUtf8 | DataType::LargeBinary
                ) =>
            {
                Ok(true)
            }
            Ok(f) => Err(format!(
                "the `{name}` column is {} but the Kafka sink needs a string or binary",
                f.data_type()
            )),
        }
    };
    if format == SinkFormat::Kafka && !bytes_like("value")? {
        return Err("the rows have no `value` column; add one in a transform or set the sink's format = \"json\"".into());
    }
    match &options.key_column {
        None => {
            bytes_like("key")?;
        }
        Some(column) => {
            if !bytes_like(column)? {
                return Err(format!("key_column `{column}` is not a column of the rows"));
            }
        }
    }
    match schema.field_with_name("topic") {
        Ok(f) if f.data_type() != &DataType::Utf8 => {
            return Err(format!(
                "the `topic` column is {} but must be a string",
                f.data_type()
            ))
        }
        Err(_) if !topic_option => {
            return Err("the rows have no `topic` column and the sink has no `topic` option".into())
        }
        _ => {}
    }
    if let Ok(f) = schema.field_with_name("partition") {
        if f.data_type() != &DataType::Int32 {
            return Err(format!(
                "the `partition` column is {} but must be an int",
                f.data_type()
            ));
        }
    }
    if let Ok(f) = schema.field_with_name("headers") {
        if f.data_type() != crate::source::headers_field().data_type() {
            return Err(format!(
                "the `headers` column is {} but must be array<struct<key string, value binary>>",
                f.data_type()
            ));
        }
    }
    Ok(())
}

/// The columns of one batch, resolved for producing.
pub(crate) struct SinkRows {
    values: Values,
    keys: Option<ArrayRef>,
    topics: Option<ArrayRef>,
    partitions: Option<Int32Array>,
    headers: Option<GenericListArray<i32>>,
    len: usize,
}

enum Values {
    Column(ArrayRef),
    /// The JSON text of every row, and where each row's text ends.
    Json {
        text: Vec<u8>,
        ends: Vec<usize>,
    },
    /// Every row's Avro record.
    Avro(EncodedRows),
}

impl SinkRows {
    /// Resolves the columns of `batch` (checked with [`check_sink_schema`] when the plan was made).
    pub(crate) fn new(
        batch: &RecordBatch,
        encoding: Encoding,
        key_column: Option<&str>,
    ) -> Result<SinkRows, String> {
        let column = |name: &str| batch.column_by_name(name).cloned();
        let values = match encoding {
            Encoding::Value => {
                Values::Column(column("value").ok_or("the rows have no `value` column")?)
            }
            Encoding::Avro { id } => Values::Avro(avro_rows(batch, id)?),
            Encoding::Json => {
                let projected = written_columns(batch)?;
                let mut writer = WriterBuilder::new()
                    .with_explicit_nulls(false)
                    .build::<_, LineDelimited>(Vec::new());
                writer
                    .write(&projected)
                    .map_err(|e| format!("serializing rows as JSON: {e}"))?;
                writer.finish().map_err(|e| e.to_string())?;
                let text = writer.into_inner();
                // arrow-json escapes newlines inside strings, so each '\n' ends exactly one row.
                let ends: Vec<usize> = text
                    .iter()
                    .enumerate()
                    .filter(|(_, b)| **b == b'\n')
                    .map(|(i, _)| i)
                    .collect();
                if ends.len() != batch.num_rows() {
                    return Err(format!(
                        "JSON writer produced {} lines for {} rows",
                        ends.len(),
                        batch.num_rows()
                    ));
                }
                Values::Json { text, ends }
            }
        };
        Ok(SinkRows {
            values,
            keys: column(key_column.unwrap_or("key")),
            topics: column("topic"),
            partitions: column("partition")
                .and_then(|c| c.as_any().downcast_ref::<Int32Array>().cloned()),
            headers: column("headers").and_then(|c| c.as_list_opt::<i32>().cloned()),
            len: batch.num_rows(),
        })
    }

    /// Number of rows.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// The value of row `row`.
    pub(crate) fn value(&self, row: usize) -> Option<&[u8]> {
        match &self.values {
            Values::Column(column) => bytes_at(column, row),
            Values::Json { text, ends } => {
                let start = if row == 0 { 0 } else { ends[row - 1] + 1 };
                Some(&text[start..ends[row]])
            }
            Values::Avro(rows) => {
                let offsets = rows.offsets();
                Some(&rows.bytes()[offsets[row]..offsets[row + 1]])
            }
        }
    }

    /// The key of row `row`.
    pub(crate) fn key(&self, row: usize) -> Option<&[u8]> {
        self.keys.as_ref().and_then(|k| bytes_at(k, row))
    }

    /// The `topic` column's value for row `row`.
    pub(crate) fn topic(&self, row: usize) -> Option<&str> {
        self.topics.as_ref().and_then(|t| {
            let t = t.as_string::<i32>();
            (!t.is_null(row)).then(|| t.value(row))
        })
    }

    /// The `partition` column's value for row `row`.
    pub(crate) fn partition(&self, row: usize) -> Option<i32> {
        self.partitions
            .as_ref()
            .and_then(|p| (!p.is_null(row)).then(|| p.value(row)))
    }

    /// The bytes row `row` takes as a record: key, value and headers.
    pub(crate) fn size(&self, row: usize) -> usize {
        let headers: usize = self
            .headers(row)
            .iter()
            .map(|(k, v)| k.len() + v.map_or(0, <[u8]>::len))
            .sum();
        self.key(row).map_or(0, <[u8]>::len) + self.value(row).map_or(0, <[u8]>::len) + headers
    }

    /// The headers of row `row` as (key, value) pairs.
    pub(crate) fn headers(&self, row: usize) -> Vec<(&str, Option<&[u8]>)> {
        let Some(list) = &self.headers else {
            return Vec::new();
        };
        if list.is_null(row) {
            return Vec::new();
        }
        let items = list
            .values()
            .as_any()
            .downcast_ref::<StructArray>()
            .expect("headers are structs");
        let keys = items.column(0).as_string::<i32>();
        let values = items.column(1).as_binary::<i32>();
        let offsets = list.value_offsets();
        (offsets[row] as usize..offsets[row + 1] as usize)
            .map(|i| (keys.value(i), (!values.is_null(i)).then(|| values.value(i))))
            .collect()
    }
}

fn bytes_at(column: &ArrayRef, row: usize) -> Option<&[u8]> {
    if column.is_null(row) {
        return None;
    }
    match column.data_type() {
        DataType::Utf8 => Some(column.as_string::<i32>().value(row).as_bytes()),
        DataType::LargeUtf8 => Some(column.as_string::<i64>().value(row).as_bytes()),
        DataType::Binary => Some(column.as_binary::<i32>().value(row)),
        DataType::LargeBinary => Some(column.as_binary::<i64>().value(row)),
        _ => None,
    }
}
