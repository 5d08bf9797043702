//! The built-in JSON deserializer: Spark's `from_json` with a declared schema, on arrow-json.
//!
//! The fast path hands the whole batch of values to one arrow-json decoder. Only when that fails (or the
//! values do not map one-to-one to rows) does it go record by record, to find exactly which records are
//! bad; a clean batch never pays for that. `NOT NULL` columns and `strict = true` add a check of each
//! record before arrow-json reads it (`json_check.rs`), which is the documented policy's other half.

use std::sync::Arc;

use arrow_array::{new_null_array, Array, ArrayRef, BinaryArray, RecordBatch, StringArray};
use arrow_json::ReaderBuilder;
use arrow_schema::{ArrowError, Schema, SchemaRef};
use arrow_select::concat::concat_batches;

use super::json_check::RecordCheck;
use super::RowFailure;

/// Decodes record values as JSON objects into a fixed schema.
pub struct JsonDecoder {
    /// The output schema, including the corrupt-record column if any.
    schema: SchemaRef,
    /// The schema arrow-json reads: the output without the corrupt-record column, every column nullable
    /// (`NOT NULL` is the check's to enforce, with a message that names the column).
    read_schema: SchemaRef,
    permissive: bool,
    corrupt_record_column: Option<String>,
    /// The `NOT NULL` and `strict` checks, when there are any.
    check: Option<RecordCheck>,
}

impl JsonDecoder {
    /// A decoder for `schema`; see [`crate::decode::DecodeFormat::Json`] for the options.
    pub fn new(
        schema: SchemaRef,
        permissive: bool,
        corrupt_record_column: Option<String>,
        strict: bool,
    ) -> Self {
        let read_fields = schema
            .fields()
            .iter()
            .filter(|f| Some(f.name()) != corrupt_record_column.as_ref())
            .map(|f| f.as_ref().clone().with_nullable(true))
            .collect::<Vec<_>>();
        JsonDecoder {
            check: RecordCheck::new(&schema, strict),
            read_schema: Arc::new(Schema::new(read_fields)),
            schema,
            permissive,
            corrupt_record_column,
        }
    }

    /// The schema of decoded rows.
    pub fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    /// Decodes the `value` column of a source batch: one row per good record; bad records are returned as
    /// failures (or, in permissive mode, become rows of nulls).
    pub fn decode(
        &self,
        values: &BinaryArray,
    ) -> Result<(RecordBatch, Vec<RowFailure>), ArrowError> {
        let checked = |check: &RecordCheck| values.iter().flatten().all(|v| check.check(v).is_ok());
        if values.null_count() == 0 && self.check.as_ref().is_none_or(checked) {
            if let Some(batch) = self.decode_all(values)? {
                return self
                    .with_corrupt_column(batch, &vec![None; values.len()])
                    .map(|b| (b, Vec::new()));
            }
        }
        self.decode_each(values)
    }

    /// The fast path: `None` when some record is bad or is not exactly one object.
    fn decode_all(&self, values: &BinaryArray) -> Result<Option<RecordBatch>, ArrowError> {
        let mut decoder = ReaderBuilder::new(self.read_schema.clone())
            .with_batch_size(values.len().max(1))
            .build_decoder()?;
        for value in values.iter().flatten() {
            let mut rest = value;
            while !rest.is_empty() {
                match decoder.decode(rest) {
                    Ok(0) => return Ok(None),
                    Ok(read) => rest = &rest[read..],
                    Err(_) => return Ok(None),
                }
            }
            // A newline ends a value that arrow-json might otherwise join with the next record.
            if decoder.decode(b"\n").is_err() {
                return Ok(None);
            }
        }
        match decoder.flush() {
            Ok(Some(batch)) if batch.num_rows() == values.len() => Ok(Some(batch)),
            Ok(None) if values.is_empty() => {
                Ok(Some(RecordBatch::new_empty(self.read_schema.clone())))
            }
            _ => Ok(None),
        }
    }

    /// The slow path: each record alone, so each bad one is found and named.
    fn decode_each(
        &self,
        values: &BinaryArray,
    ) -> Result<(RecordBatch, Vec<RowFailure>), ArrowError> {
        let mut parts = Vec::new();
        let mut corrupt = Vec::new();
        let mut failures = Vec::new();
        for (row, value) in values.iter().enumerate() {
            let result = match value {
                None => Err("the record has no value (null)".to_string()),
                Some(bytes) => self.decode_one(bytes),
            };
            match result {
                Ok(batch) => {
                    parts.push(batch);
                    corrupt.push(None);
                }
                Err(message) if self.permissive => {
                    parts.push(null_row(&self.read_schema));
                    corrupt.push(value.map(|v| String::from_utf8_lossy(v).into_owned()));
                    tracing::debug!(row, "malformed JSON kept as nulls: {message}");
                }
                Err(message) => failures.push(RowFailure { row, message }),
            }
        }
        let batch = concat_batches(&self.read_schema, &parts)?;
        Ok((self.with_corrupt_column(batch, &corrupt)?, failures))
    }

    fn decode_one(&self, bytes: &[u8]) -> Result<RecordBatch, String> {
        if let Some(check) = &self.check {
            check.check(bytes)?;
        }
        let mut decoder = ReaderBuilder::new(self.read_schema.clone())
            .build_decoder()
            .map_err(|e| e.to_string())?;
        let read = decoder
            .decode(bytes)
            .map_err(|e| format!("malformed JSON: {e}"))?;
        if read < bytes.len() {
            return Err("malformed JSON: more than one value in the record".into());
        }
        match decoder
            .flush()
            .map_err(|e| format!("malformed JSON: {e}"))?
        {
            Some(batch) if batch.num_rows() == 1 => Ok(batch),
            _ => Err("malformed JSON: expected exactly one object".into()),
        }
    }

    fn with_corrupt_column(
        &self,
        batch: RecordBatch,
        corrupt: &[Option<String>],
    ) -> Result<RecordBatch, ArrowError> {
        let Some(name) = &self.corrupt_record_column else {
            // Declared NOT NULL columns are checked here (cheaply: their null counts) and keep their flag.
            return RecordBatch::try_new(self.schema.clone(), batch.columns().to_vec());
        };
        let corrupt: ArrayRef = Arc::new(
            corrupt
                .iter()
                .map(|c| c.as_deref())
                .collect::<StringArray>(),
        );
        let columns = self
            .schema
            .fields()
            .iter()
            .map(|f| {
                if f.name() == name {
                    Ok(corrupt.clone())
                } else {
                    batch.column_by_name(f.name()).cloned().ok_or_else(|| {
                        ArrowError::SchemaError(format!("missing column {}", f.name()))
                    })
                }
            })
            .collect::<Result<Vec<_>, _>>()?;
        RecordBatch::try_new(self.schema.clone(), columns)
    }
}

fn null_row(schema: &SchemaRef) -> RecordBatch {
    let columns = schema
        .fields()
        .iter()
        .map(|f| new_null_array(f.data_type(), 1))
        .collect();
    RecordBatch::try_new(schema.clone(), columns).expect("a null row fits any nullable schema")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::parse_ddl_schema;
    use arrow_array::Int32Array;

    fn values(items: &[Option<&str>]) -> BinaryArray {
        items.iter().map(|v| v.map(str::as_bytes)).collect()
    }

    #[test]
    fn clean_batch_takes_the_fast_path() {
        let decoder = JsonDecoder::new(
            parse_ddl_schema("name STRING, flag INT").unwrap(),
            false,
            None,
            false,
        );
        let (batch, failures) = decoder
            .decode(&values(&[
                Some(r#"{"name":"a","flag":1}"#),
                Some(r#"{"flag":0, "x": 3}"#),
            ]))
            .unwrap();
        assert!(failures.is_empty());
        let flag = batch
            .column(1)
            .as_any()
            .downcast_ref::<Int32Array>()
            .unwrap();
        assert_eq!(flag.values(), &[1, 0]);
    }

    #[test]
    fn bad_records_are_named_by_row() {
        let decoder = JsonDecoder::new(
            parse_ddl_schema("name STRING, flag INT").unwrap(),
            false,
            None,
            false,
        );
        let input = values(&[
            Some(r#"{"name":"a","flag":1}"#),
            Some("{oops"),
            None,
            Some(r#"{"a":1}{"a":2}"#),
            Some(r#"{"name":"b"}"#),
        ]);
        let (batch, failures) = decoder.decode(&input).unwrap();
        assert_eq!(batch.num_rows(), 2);
        assert_eq!(
            failures.iter().map(|f| f.row).collect::<Vec<_>>(),
            [1, 2, 3]
        );
        assert!(failures[1].message.contains("no value"));
    }

    #[test]
    fn permissive_mode_keeps_nulls_and_the_corrupt_record() {
        let schema = parse_ddl_schema("name STRING, _corrupt STRING").unwrap();
        let decoder = JsonDecoder::new(schema, true, Some("_corrupt".into()), false);
        let (batch, failures) = decoder
            .decode(&values(&[Some(r#"{"name":"a"}"#), Some("nope")]))
            .unwrap();
        assert!(failures.is_empty());
        let corrupt = batch
            .column(1)
            .as_any()
            .downcast_ref::<StringArray>()
            .unwrap();
        assert_eq!(corrupt.iter().collect::<Vec<_>>(), [None, Some("nope")]);
        assert!(batch.column(0).is_null(1));
    }
}
