//! What the deserializer stage is: a built-in format or a WebAssembly UDF, and its row-error policy.

use arrow_schema::SchemaRef;

use crate::udf::{OnError, UdfSpec};

/// The deserializer stage.
#[derive(Debug, Clone)]
pub struct DeserializerSpec {
    /// A built-in format or a WebAssembly UDF.
    pub format: DecodeFormat,
    /// What happens to a record that cannot be deserialized.
    pub on_error: OnError,
}

/// How record values are decoded.
#[derive(Debug, Clone)]
pub enum DecodeFormat {
    /// `format = "json"`: one JSON object per value, read with arrow-json into `schema`.
    Json {
        /// The columns to read.
        schema: SchemaRef,
        /// `mode = "PERMISSIVE"`: a malformed record becomes a row of nulls (with the raw value in
        /// `columnNameOfCorruptRecord`, if set) instead of an error.
        permissive: bool,
        /// `columnNameOfCorruptRecord`: a string column that receives the raw value of malformed records.
        corrupt_record_column: Option<String>,
        /// `strict = true`: a value whose JSON type is not its column's (`"1"` for INT, a fraction for
        /// BIGINT, a number for TIMESTAMP), a repeated key or an integer out of range makes the record
        /// malformed, as in Spark's `from_json`, instead of being converted by arrow-json.
        strict: bool,
    },
    /// `format = "string"`: one `value` string column (key, topic, partition, offset, timestamp kept).
    String,
    /// `format = "binary"`: the Kafka records as they are.
    Binary,
    /// `udf = "path.wasm"`: a WebAssembly deserializer.
    Udf(UdfSpec),
}
