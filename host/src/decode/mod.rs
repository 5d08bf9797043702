//! Decode: Kafka records (Spark's source schema) become rows of the user's schema.
//!
//! Either a built-in format (`json`, `avro` with a schema registry, `string`, `binary`: also the native
//! baseline that WebAssembly is measured against) or a WebAssembly deserializer UDF. Records that fail alone are returned as
//! [`RowFailure`]s so the pipeline can apply the stage's `on_error` policy to just those records.

mod avro;
mod csv;
mod json;
mod json_check;
mod spec;

use std::sync::Arc;

use arrow_array::{Array, ArrayRef, BinaryArray, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema, SchemaRef};

pub use avro::AvroDecoder;
pub use csv::CsvDecoder;
pub use json::JsonDecoder;
pub use spec::{DecodeFormat, DeserializerSpec};

use crate::source::PartitionChunk;
use crate::udf::{Kind, UdfError, UdfRuntime, UdfStage};

/// One input record that could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowFailure {
    /// Its row in the chunk.
    pub row: usize,
    /// Why.
    pub message: String,
}

/// A ready deserializer stage.
pub enum Deserializer {
    /// arrow-json into a declared schema.
    Json(JsonDecoder),
    /// arrow-avro, the Confluent wire format, writer schemas from a registry.
    Avro(AvroDecoder),
    /// arrow-csv into a declared schema.
    Csv(CsvDecoder),
    /// The file source's Parquet rows, as read.
    Rows(SchemaRef),
    /// Key and value as UTF-8 strings, the other source columns kept.
    String(SchemaRef),
    /// The records unchanged.
    Binary(SchemaRef),
    /// A WebAssembly deserializer (boxed: a stage is much larger than the built-in variants).
    Udf(Box<UdfStage>),
}

/// Why decoding a chunk failed as a whole.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// The UDF failed (trap, timeout, limits, malformed output, or its own error).
    #[error(transparent)]
    Udf(#[from] UdfError),
    /// The built-in decoder failed on the batch.
    #[error("the built-in {format} deserializer failed{records}: {message}")]
    Builtin {
        /// Which format.
        format: &'static str,
        /// The records, as [`PartitionChunk::describe`] gives them.
        records: String,
        /// Why.
        message: String,
    },
}

impl Deserializer {
    /// Builds the stage for `format`, loading the module when it is a UDF.
    pub fn new(
        format: &DecodeFormat,
        runtime: &UdfRuntime,
        source: &SchemaRef,
    ) -> anyhow::Result<Deserializer> {
        Ok(match format {
            DecodeFormat::Json {
                schema,
                permissive,
                corrupt_record_column,
                strict,
            } => Deserializer::Json(JsonDecoder::new(
                schema.clone(),
                *permissive,
                corrupt_record_column.clone(),
                *strict,
            )),
            DecodeFormat::Avro {
                registry,
                reader_schema,
                subject,
            } => {
                let subject = subject.as_deref().unwrap_or_default();
                let decoder = AvroDecoder::new(registry, reader_schema.as_deref(), subject)
                    .map_err(|e| anyhow::anyhow!("the built-in avro deserializer: {e}"))?;
                Deserializer::Avro(decoder)
            }
            DecodeFormat::Csv { schema } => Deserializer::Csv(CsvDecoder::new(schema.clone())),
            DecodeFormat::Rows => Deserializer::Rows(source.clone()),
            DecodeFormat::String => Deserializer::String(string_schema(source)),
            DecodeFormat::Binary => Deserializer::Binary(source.clone()),
            DecodeFormat::Udf(spec) => Deserializer::Udf(Box::new(runtime.load(
                spec,
                Kind::Deserializer,
                source.clone(),
            )?)),
        })
    }

    /// The schema of decoded rows.
    pub fn output_schema(&self) -> &SchemaRef {
        match self {
            Deserializer::Json(json) => json.schema(),
            Deserializer::Avro(avro) => avro.schema(),
            Deserializer::Csv(csv) => csv.schema(),
            Deserializer::Rows(schema)
            | Deserializer::String(schema)
            | Deserializer::Binary(schema) => schema,
            Deserializer::Udf(udf) => udf.output_schema(),
        }
    }

    /// The stage name in dead-letter headers: the UDF's name, or the built-in format's.
    pub fn stage_name(&self) -> &str {
        match self {
            Deserializer::Json(_) => "json",
            Deserializer::Avro(_) => "avro",
            Deserializer::Csv(_) => "csv",
            Deserializer::Rows(_) => "parquet",
            Deserializer::String(_) => "string",
            Deserializer::Binary(_) => "binary",
            Deserializer::Udf(udf) => udf.name(),
        }
    }

    /// A one-line description for the plan.
    pub fn describe(&self) -> String {
        match self {
            Deserializer::Json(_) => "built-in json (arrow-json)".into(),
            Deserializer::Avro(avro) => {
                format!(
                    "built-in avro (arrow-avro, registry {})",
                    avro.registry_url()
                )
            }
            Deserializer::Csv(_) => "built-in csv (arrow-csv)".into(),
            Deserializer::Rows(_) => "none: the Parquet files' rows, as read".into(),
            Deserializer::String(_) => "built-in string".into(),
            Deserializer::Binary(_) => "built-in binary".into(),
            Deserializer::Udf(udf) => format!("WebAssembly deserializer `{}`", udf.name()),
        }
    }

    /// Decodes one partition's records.
    pub fn decode(
        &self,
        chunk: &PartitionChunk,
    ) -> Result<(RecordBatch, Vec<RowFailure>), DecodeError> {
        let builtin = |format, message: String| DecodeError::Builtin {
            format,
            records: chunk.describe(),
            message,
        };
        match self {
            Deserializer::Json(json) => {
                let values = value_column(&chunk.batch);
                json.decode(values)
                    .map_err(|e| builtin("json", e.to_string()))
            }
            Deserializer::Avro(avro) => avro
                .decode(value_column(&chunk.batch))
                .map_err(|e| builtin("avro", e)),
            Deserializer::String(schema) => {
                to_strings(&chunk.batch, schema).map_err(|e| builtin("string", e))
            }
            Deserializer::Csv(csv) => csv
                .decode(value_column(&chunk.batch))
                .map_err(|e| builtin("csv", e.to_string())),
            Deserializer::Rows(_) | Deserializer::Binary(_) => {
                Ok((chunk.batch.clone(), Vec::new()))
            }
            Deserializer::Udf(udf) => {
                let output = udf.process(&chunk.batch, &chunk.describe())?;
                let failures = output
                    .row_errors
                    .into_iter()
                    .map(|e| RowFailure {
                        row: e.row as usize,
                        message: e.message,
                    })
                    .collect();
                Ok((output.batch, failures))
            }
        }
    }
}

fn value_column(batch: &RecordBatch) -> &BinaryArray {
    batch
        .column(1)
        .as_any()
        .downcast_ref::<BinaryArray>()
        .expect("the source schema's value column is binary")
}

/// The source schema with `key` and `value` as strings.
fn string_schema(source: &SchemaRef) -> SchemaRef {
    let fields: Vec<Field> = source
        .fields()
        .iter()
        .map(|f| match f.name().as_str() {
            "key" | "value" => Field::new(f.name(), DataType::Utf8, true),
            _ => f.as_ref().clone(),
        })
        .collect();
    Arc::new(Schema::new(fields))
}

/// Key and value as UTF-8; a record whose key or value is not UTF-8 fails alone.
fn to_strings(
    batch: &RecordBatch,
    schema: &SchemaRef,
) -> Result<(RecordBatch, Vec<RowFailure>), String> {
    let as_text = |column: &ArrayRef| -> Vec<Result<Option<String>, usize>> {
        let binary = column
            .as_any()
            .downcast_ref::<BinaryArray>()
            .expect("binary key/value");
        binary
            .iter()
            .enumerate()
            .map(|(row, v)| match v {
                None => Ok(None),
                Some(bytes) => std::str::from_utf8(bytes)
                    .map(|s| Some(s.to_string()))
                    .map_err(|_| row),
            })
            .collect()
    };
    let keys = as_text(batch.column(0));
    let values = as_text(batch.column(1));
    let mut failures = Vec::new();
    let mut keep = Vec::with_capacity(batch.num_rows());
    for row in 0..batch.num_rows() {
        let bad = match (&keys[row], &values[row]) {
            (Err(_), _) => Some("the key is not UTF-8"),
            (_, Err(_)) => Some("the value is not UTF-8"),
            _ => None,
        };
        if let Some(message) = bad {
            failures.push(RowFailure {
                row,
                message: message.into(),
            });
        }
        keep.push(bad.is_none());
    }
    let strings = |texts: Vec<Result<Option<String>, usize>>| -> ArrayRef {
        Arc::new(
            texts
                .into_iter()
                .map(|t| t.ok().flatten())
                .collect::<StringArray>(),
        )
    };
    let mut columns = batch.columns().to_vec();
    columns[0] = strings(keys);
    columns[1] = strings(values);
    let converted = RecordBatch::try_new(schema.clone(), columns).map_err(|e| e.to_string())?;
    let keep: arrow_array::BooleanArray = keep.into_iter().map(Some).collect();
    let kept =
        arrow_select::filter::filter_record_batch(&converted, &keep).map_err(|e| e.to_string())?;
    Ok((kept, failures))
}
