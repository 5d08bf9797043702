//! The built-in CSV deserializer: Spark's `from_csv` with a declared schema, on arrow-csv. Each record is
//! one CSV row (the file source's CSV rows, or a Kafka value), its fields in the schema's order.
//!
//! As the JSON reader does, it hands every record to one arrow-csv decoder, and only when that fails goes
//! record by record to find exactly which records are bad.

use std::io::Cursor;

use arrow_array::{Array, BinaryArray, RecordBatch};
use arrow_schema::{ArrowError, SchemaRef};
use arrow_select::concat::concat_batches;

use super::RowFailure;

/// Decodes record values as CSV rows into a fixed schema.
pub struct CsvDecoder {
    schema: SchemaRef,
}

impl CsvDecoder {
    /// A decoder for `schema`.
    pub fn new(schema: SchemaRef) -> CsvDecoder {
        CsvDecoder { schema }
    }

    /// The schema of decoded rows.
    pub fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    /// Decodes the `value` column of a source batch: one row per good record; bad records are returned as
    /// failures naming their row.
    pub fn decode(
        &self,
        values: &BinaryArray,
    ) -> Result<(RecordBatch, Vec<RowFailure>), ArrowError> {
        if values.null_count() == 0 {
            let mut text = Vec::with_capacity(values.values().len() + values.len());
            for value in values.iter().flatten() {
                text.extend_from_slice(value);
                text.push(b'\n');
            }
            if let Ok(batch) = self.read(text) {
                if batch.num_rows() == values.len() {
                    return Ok((batch, Vec::new()));
                }
            }
        }
        self.decode_each(values)
    }

    /// The slow path: each record alone, so each bad one is found and named.
    fn decode_each(
        &self,
        values: &BinaryArray,
    ) -> Result<(RecordBatch, Vec<RowFailure>), ArrowError> {
        let mut parts = Vec::new();
        let mut failures = Vec::new();
        for (row, value) in values.iter().enumerate() {
            let read = match value {
                None => Err("the record has no value (null)".to_string()),
                Some(bytes) => {
                    let mut text = bytes.to_vec();
                    text.push(b'\n');
                    match self.read(text) {
                        Ok(batch) if batch.num_rows() == 1 => Ok(batch),
                        Ok(batch) => {
                            Err(format!("expected one CSV row, found {}", batch.num_rows()))
                        }
                        Err(e) => Err(format!("not a CSV row of the schema: {e}")),
                    }
                }
            };
            match read {
                Ok(batch) => parts.push(batch),
                Err(message) => failures.push(RowFailure { row, message }),
            }
        }
        Ok((concat_batches(&self.schema, &parts)?, failures))
    }

    fn read(&self, text: Vec<u8>) -> Result<RecordBatch, ArrowError> {
        let rows = text.iter().filter(|&&b| b == b'\n').count().max(1);
        let reader = arrow_csv::ReaderBuilder::new(self.schema.clone())
            .with_batch_size(rows)
            .build(Cursor::new(text))?;
        let batches = reader.collect::<Result<Vec<_>, _>>()?;
        concat_batches(&self.schema, &batches)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::cast::AsArray;
    use arrow_array::types::Int32Type;

    fn decode(rows: &[&str]) -> (RecordBatch, Vec<RowFailure>) {
        let schema = crate::schema::parse_ddl_schema("id INT NOT NULL, note STRING").unwrap();
        let values = BinaryArray::from_iter_values(rows.iter().map(|r| r.as_bytes()));
        CsvDecoder::new(schema).decode(&values).unwrap()
    }

    #[test]
    fn rows_are_read_in_the_schema_with_quoted_fields() {
        let (batch, failures) = decode(&["1,plain", "2,\"two\nlines, and a comma\""]);
        assert!(failures.is_empty(), "{failures:?}");
        assert_eq!(
            batch.column(0).as_primitive::<Int32Type>().values(),
            &[1, 2]
        );
        assert_eq!(
            batch.column(1).as_string::<i32>().value(1),
            "two\nlines, and a comma"
        );
    }

    #[test]
    fn a_bad_row_fails_alone_and_names_why() {
        let (batch, failures) = decode(&["1,a", "x,b", "3,c,extra", "4,d"]);
        assert_eq!(
            batch.column(0).as_primitive::<Int32Type>().values(),
            &[1, 4]
        );
        let rows: Vec<usize> = failures.iter().map(|f| f.row).collect();
        assert_eq!(rows, [1, 2]);
        assert!(
            failures[0].message.contains("not a CSV row"),
            "{failures:?}"
        );
    }
}
