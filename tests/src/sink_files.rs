//! Reads a file sink's output the way its readers should: the files its committed-files log lists
//! (`weir::committed_files`), Parquet through the parquet crate's reader (not Weir's writer), JSON lines
//! through serde_json.

use std::fs::File;
use std::path::Path;

use arrow_array::RecordBatch;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

/// Each committed Parquet file's record batches, with the file's path relative to `dir`.
pub fn committed_parquet(dir: &Path) -> Vec<(String, RecordBatch)> {
    let mut batches = Vec::new();
    for path in weir::committed_files(dir).unwrap() {
        let relative = relative(dir, &path);
        let reader = ParquetRecordBatchReaderBuilder::try_new(File::open(&path).unwrap())
            .unwrap()
            .build()
            .unwrap();
        batches.extend(reader.map(|batch| (relative.clone(), batch.unwrap())));
    }
    batches
}

/// Each committed JSON-lines file's rows, with the file's path relative to `dir`.
pub fn committed_json_lines(dir: &Path) -> Vec<(String, serde_json::Value)> {
    let mut rows = Vec::new();
    for path in weir::committed_files(dir).unwrap() {
        let relative = relative(dir, &path);
        for line in std::fs::read_to_string(&path).unwrap().lines() {
            rows.push((relative.clone(), serde_json::from_str(line).unwrap()));
        }
    }
    rows
}

/// The value a Hive-style path gives `column` (`flag=1/part-...` → `1`).
pub fn partition_value<'a>(relative: &'a str, column: &str) -> &'a str {
    relative
        .split('/')
        .find_map(|part| part.strip_prefix(column)?.strip_prefix('='))
        .unwrap_or_else(|| panic!("{relative} is not under a {column}= directory"))
}

fn relative(dir: &Path, path: &Path) -> String {
    path.strip_prefix(dir)
        .unwrap()
        .to_str()
        .unwrap()
        .to_string()
}
