//! One file as chunks of records: text formats split into records of Spark's Kafka source schema (so the
//! `[deserializer]` decodes them as it decodes Kafka values), Parquet read into the declared schema.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use arrow_array::{new_null_array, TimestampMillisecondArray};
use arrow_array::{ArrayRef, BinaryArray, Int32Array, Int64Array, RecordBatch, StringArray};
use arrow_schema::SchemaRef;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use super::spec::FileSourceFormat;
use crate::source::records::{source_schema, PartitionChunk, RecordOrigin};

/// The most records in one chunk: a large file is split so its parts are decoded in parallel.
const RECORDS_PER_CHUNK: usize = 50_000;

/// A file to read: its path (as chunks name it) and modification time.
pub(super) struct FileToRead<'a> {
    pub(super) path: &'a Path,
    pub(super) name: &'a str,
    pub(super) modified_ms: i64,
}

/// Reads the whole file into chunks of at most [`RECORDS_PER_CHUNK`] records.
pub(super) fn read_file(
    file: &FileToRead<'_>,
    format: &FileSourceFormat,
) -> anyhow::Result<Vec<PartitionChunk>> {
    if let FileSourceFormat::Parquet { schema } = format {
        return read_parquet(file, schema);
    }
    let bytes = std::fs::read(file.path)
        .with_context(|| format!("reading {} (file source)", file.path.display()))?;
    let records = split_records(&bytes, format);
    Ok(records
        .chunks(RECORDS_PER_CHUNK)
        .map(|records| line_chunk(file, records))
        .collect())
}

/// A record's first line (counting from 1) and its bytes, without the line end.
type Record<'a> = (i64, &'a [u8]);

/// Splits a text file into records: lines (blank ones skipped but for `text`), CSV rows whose quoted
/// fields may hold line ends, and, with `header`, each CSV file's first row left out.
pub(super) fn split_records<'a>(bytes: &'a [u8], format: &FileSourceFormat) -> Vec<Record<'a>> {
    let csv = matches!(format, FileSourceFormat::Csv { .. });
    let mut records = Vec::new();
    let (mut start, mut line, mut start_line, mut quoted) = (0, 1, 1, false);
    for (i, &byte) in bytes.iter().enumerate() {
        match byte {
            b'"' if csv => quoted = !quoted,
            b'\n' => {
                line += 1;
                if !quoted {
                    records.push((start_line, trim_line_end(&bytes[start..i])));
                    (start, start_line) = (i + 1, line);
                }
            }
            _ => {}
        }
    }
    if start < bytes.len() {
        records.push((start_line, trim_line_end(&bytes[start..])));
    }
    match format {
        FileSourceFormat::Text => records,
        FileSourceFormat::Csv { header: true } => {
            let mut rows = records.into_iter().filter(|(_, r)| !is_blank(r));
            rows.next();
            rows.collect()
        }
        _ => records.into_iter().filter(|(_, r)| !is_blank(r)).collect(),
    }
}

fn trim_line_end(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}

fn is_blank(record: &[u8]) -> bool {
    record.iter().all(u8::is_ascii_whitespace)
}

/// Records of one file in the Kafka source schema: no key, the record as `value`, the file as `topic`,
/// partition 0, the line as `offset`, and the file's modification time as `timestamp`.
fn line_chunk(file: &FileToRead<'_>, records: &[Record<'_>]) -> PartitionChunk {
    let rows = records.len();
    let columns: Vec<ArrayRef> = vec![
        Arc::new(BinaryArray::new_null(rows)),
        Arc::new(BinaryArray::from_iter_values(records.iter().map(|r| r.1))),
        Arc::new(StringArray::from(vec![file.name; rows])),
        Arc::new(Int32Array::from(vec![0; rows])),
        Arc::new(Int64Array::from_iter_values(records.iter().map(|r| r.0))),
        Arc::new(
            TimestampMillisecondArray::from(vec![file.modified_ms; rows]).with_timezone("+00:00"),
        ),
        Arc::new(Int32Array::from(vec![-1; rows])),
    ];
    let batch = RecordBatch::try_new(source_schema(false), columns)
        .expect("columns match the source schema");
    PartitionChunk {
        origin: RecordOrigin::FileLines,
        topic: file.name.to_string(),
        partition: 0,
        first_offset: records.first().map_or(0, |r| r.0),
        last_offset: records.last().map_or(0, |r| r.0),
        batch,
    }
}

/// A Parquet file's rows in `schema`: columns found by name and cast to the declared type; a column the
/// file lacks is NULL when the schema allows it.
fn read_parquet(file: &FileToRead<'_>, schema: &SchemaRef) -> anyhow::Result<Vec<PartitionChunk>> {
    let path = file.path.display();
    let opened =
        std::fs::File::open(file.path).with_context(|| format!("opening {path} (file source)"))?;
    let reader = ParquetRecordBatchReaderBuilder::try_new(opened)
        .and_then(|b| b.with_batch_size(RECORDS_PER_CHUNK).build())
        .with_context(|| format!("{path} is not a readable Parquet file"))?;
    let mut chunks = Vec::new();
    let mut first_row = 0;
    for batch in reader {
        let batch = batch.with_context(|| format!("reading {path}"))?;
        let rows = batch.num_rows() as i64;
        chunks.push(PartitionChunk {
            origin: RecordOrigin::FileRows,
            topic: file.name.to_string(),
            partition: 0,
            first_offset: first_row,
            last_offset: first_row + rows - 1,
            batch: into_schema(&batch, schema).with_context(|| format!("reading {path}"))?,
        });
        first_row += rows;
    }
    Ok(chunks)
}

fn into_schema(batch: &RecordBatch, schema: &SchemaRef) -> anyhow::Result<RecordBatch> {
    let columns = schema
        .fields()
        .iter()
        .map(|field| match batch.column_by_name(field.name()) {
            Some(column) => arrow_cast::cast(column, field.data_type()).with_context(|| {
                format!(
                    "column `{}` is {}, which does not convert to the declared {}",
                    field.name(),
                    column.data_type(),
                    field.data_type()
                )
            }),
            None if field.is_nullable() => Ok(new_null_array(field.data_type(), batch.num_rows())),
            None => anyhow::bail!(
                "the file has no column `{}`, which the schema declares NOT NULL",
                field.name()
            ),
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok(RecordBatch::try_new(schema.clone(), columns)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(text: &str, format: FileSourceFormat) -> Vec<(i64, String)> {
        split_records(text.as_bytes(), &format)
            .into_iter()
            .map(|(line, r)| (line, String::from_utf8(r.to_vec()).unwrap()))
            .collect()
    }

    #[test]
    fn json_lines_skip_blank_lines_and_keep_their_line_numbers() {
        let text = "{\"a\":1}\r\n\n  \n{\"a\":2}";
        assert_eq!(
            lines(text, FileSourceFormat::Json),
            [(1, "{\"a\":1}".into()), (4, "{\"a\":2}".into())]
        );
    }

    #[test]
    fn text_keeps_blank_lines_but_not_a_last_line_end() {
        assert_eq!(
            lines("a\n\nb\n", FileSourceFormat::Text),
            [(1, "a".into()), (2, "".into()), (3, "b".into())]
        );
    }

    #[test]
    fn a_quoted_csv_field_holds_line_ends_and_the_header_is_left_out() {
        let text = "id,note\n1,\"two\nlines\"\n\n2,\"say \"\"hi\"\"\"\n";
        assert_eq!(
            lines(text, FileSourceFormat::Csv { header: true }),
            [
                (2, "1,\"two\nlines\"".into()),
                (5, "2,\"say \"\"hi\"\"\"".into())
            ]
        );
        assert_eq!(
            lines(text, FileSourceFormat::Csv { header: false }).len(),
            3
        );
    }
}
