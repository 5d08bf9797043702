//! Reading a join table from its file into one Arrow batch, with arrow-csv, arrow-json and parquet.
//!
//! A table is read whole and strictly: a malformed line, a value that does not fit its column or a damaged
//! Parquet file fails the read, naming the file (and the line, where the reader knows it), because a
//! table with rows silently missing would quietly turn matches into non-matches.

use std::fs::File;
use std::io::{BufReader, Seek};
use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use arrow_array::RecordBatch;
use arrow_schema::{ArrowError, SchemaRef};
use arrow_select::concat::concat_batches;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use super::spec::{TableFormat, TableSpec};

/// Rows read per batch; the batches are put together into one at the end.
const READ_BATCH_ROWS: usize = 64 * 1024;

/// Reads the table `spec` names: its rows, in the file's order, as one batch.
pub(super) fn read_table(spec: &TableSpec) -> anyhow::Result<RecordBatch> {
    let path = &spec.path;
    let file = File::open(path)
        .with_context(|| format!("cannot open the join table {}", path.display()))?;
    let batches = match spec.format {
        TableFormat::Csv => read_csv(file, spec.schema.clone()),
        TableFormat::Json => read_json(file, spec.schema.clone()),
        TableFormat::Parquet => read_parquet(file),
    }
    .map_err(|error| describe(error, path, spec.format))?;
    let (schema, batches) = batches;
    concat_batches(&schema, &batches)
        .with_context(|| format!("cannot put the join table {} together", path.display()))
}

type Batches = (SchemaRef, Vec<RecordBatch>);

fn read_csv(mut file: File, schema: Option<SchemaRef>) -> Result<Batches, ArrowError> {
    let format = arrow_csv::reader::Format::default().with_header(true);
    let schema = match schema {
        Some(schema) => schema,
        None => {
            let (schema, _) = format.infer_schema(BufReader::new(&file), None)?;
            file.rewind()?;
            Arc::new(schema)
        }
    };
    let reader = arrow_csv::ReaderBuilder::new(schema.clone())
        .with_format(format)
        .with_batch_size(READ_BATCH_ROWS)
        .build(file)?;
    Ok((schema, reader.collect::<Result<_, _>>()?))
}

fn read_json(file: File, schema: Option<SchemaRef>) -> Result<Batches, ArrowError> {
    let mut file = BufReader::new(file);
    let schema = match schema {
        Some(schema) => schema,
        None => {
            let (schema, _) = arrow_json::reader::infer_json_schema_from_seekable(&mut file, None)?;
            Arc::new(schema)
        }
    };
    let reader = arrow_json::ReaderBuilder::new(schema.clone())
        .with_batch_size(READ_BATCH_ROWS)
        .with_strict_mode(true)
        .build(file)?;
    Ok((schema, reader.collect::<Result<_, _>>()?))
}

fn read_parquet(file: File) -> Result<Batches, ArrowError> {
    let builder = ParquetRecordBatchReaderBuilder::try_new(file)
        .map_err(|e| ArrowError::ParquetError(e.to_string()))?;
    let schema = builder.schema().clone();
    let reader = builder
        .with_batch_size(READ_BATCH_ROWS)
        .build()
        .map_err(|e| ArrowError::ParquetError(e.to_string()))?;
    Ok((schema, reader.collect::<Result<_, _>>()?))
}

/// A reader's error with the file it was reading.
fn describe(error: ArrowError, path: &Path, format: TableFormat) -> anyhow::Error {
    let reason = match error {
        ArrowError::CsvError(message)
        | ArrowError::JsonError(message)
        | ArrowError::ParquetError(message)
        | ArrowError::ParseError(message) => message,
        other => other.to_string(),
    };
    anyhow::anyhow!(
        "the join table {} is not readable as {format}: {reason}",
        path.display()
    )
}
