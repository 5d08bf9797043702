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
    /// `format = "csv"`: one CSV row per value (fields in the schema's order), read with arrow-csv.
    Csv {
        /// The columns to read.
        schema: SchemaRef,
    },
    /// The file source's Parquet rows, typed already: passed on as they are read.
    Rows,
    /// `format = "string"`: one `value` string column (key, topic, partition, offset, timestamp kept).
    String,
    /// `format = "binary"`: the Kafka records as they are.
    Binary,
    /// `format = "avro"`: Avro in the Confluent wire format, writer schemas from a schema registry, read as
    /// one reader schema.
    Avro {
        /// `schema_registry`: the registry's URL, e.g. `http://localhost:8081`.
        registry: String,
        /// `reader_schema`: the Avro schema (JSON) every record is read as; `None`: `subject`'s latest.
        reader_schema: Option<String>,
        /// `subject`: the registry subject whose latest schema is the reader schema (default: the
        /// subscribed topic's `<topic>-value`).
        subject: Option<String>,
    },
    /// `udf = "path.wasm"`: a WebAssembly deserializer.
    Udf(UdfSpec),
}

impl DecodeFormat {
    /// The rules between the built-in JSON reader's options; the error names the option at fault. PERMISSIVE
    /// turns a malformed record into a row of nulls, so it cannot go with a NOT NULL column, and only it
    /// fills `columnNameOfCorruptRecord`, which must be a STRING column of the schema.
    ///
    /// ```
    /// use weir::DecodeFormat;
    /// let json = DecodeFormat::Json {
    ///     schema: weir::parse_ddl_schema("name STRING NOT NULL").unwrap(),
    ///     permissive: true,
    ///     corrupt_record_column: None,
    ///     strict: false,
    /// };
    /// assert_eq!(json.check().unwrap_err().0, "schema");
    /// ```
    pub fn check(&self) -> Result<(), (&'static str, String)> {
        let DecodeFormat::Json {
            schema,
            permissive,
            corrupt_record_column,
            ..
        } = self
        else {
            return Ok(());
        };
        if let Some(column) = schema.fields().iter().find(|f| !f.is_nullable()) {
            if *permissive {
                return Err((
                    "schema",
                    format!(
                        "column {:?} is NOT NULL, but mode = \"PERMISSIVE\" turns malformed records into rows of \
                         nulls; drop NOT NULL or choose another mode",
                        column.name()
                    ),
                ));
            }
        }
        if let Some(column) = corrupt_record_column {
            if !*permissive {
                return Err((
                    "columnNameOfCorruptRecord",
                    "only used with mode = \"PERMISSIVE\"".into(),
                ));
            }
            match schema.field_with_name(column) {
                Ok(field) if field.data_type() == &arrow_schema::DataType::Utf8 => {}
                _ => {
                    return Err((
                        "columnNameOfCorruptRecord",
                        format!("the schema needs a STRING column {column:?}"),
                    ))
                }
            }
        }
        Ok(())
    }
}
