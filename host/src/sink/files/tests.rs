use std::sync::Arc;

use arrow_array::{Int64Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use super::*;

fn rows(zips: &[&str], counts: &[i64]) -> RecordBatch {
    let schema = Arc::new(Schema::new(vec![
        Field::new("zip_code", DataType::Utf8, false),
        Field::new("count", DataType::Int64, false),
    ]));
    RecordBatch::try_new(
        schema,
        vec![
            Arc::new(StringArray::from(zips.to_vec())),
            Arc::new(Int64Array::from(counts.to_vec())),
        ],
    )
    .unwrap()
}

fn spec(dir: &Path, format: FileFormat, partition_by: &[&str]) -> FileSinkSpec {
    FileSinkSpec {
        path: dir.to_path_buf(),
        format,
        partition_by: partition_by.iter().map(|c| c.to_string()).collect(),
    }
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("weir-files-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// The counts in a Parquet file, read back with the parquet crate's reader.
fn parquet_counts(path: &Path) -> Vec<i64> {
    let reader = ParquetRecordBatchReaderBuilder::try_new(File::open(path).unwrap())
        .unwrap()
        .build()
        .unwrap();
    let mut counts = Vec::new();
    for batch in reader {
        let batch = batch.unwrap();
        assert_eq!(
            batch.num_columns(),
            1,
            "zip_code is in the directory name only"
        );
        let column = batch
            .column(0)
            .as_any()
            .downcast_ref::<Int64Array>()
            .unwrap();
        counts.extend(column.values().iter().copied());
    }
    counts
}

#[test]
fn committed_parquet_files_are_listed_by_batch_and_partition() {
    let dir = temp_dir("parquet");
    let sink =
        FileSink::open(&spec(&dir, FileFormat::Parquet, &["zip_code"]), None, false).unwrap();
    let files = sink
        .write(0, &rows(&["94105", "10001", "94105"], &[1, 2, 3]))
        .unwrap();
    sink.commit(0, files).unwrap();
    let files = sink.write(1, &rows(&["10001"], &[4])).unwrap();
    sink.commit(1, files).unwrap();

    let listed = committed_files(&dir).unwrap();
    let names: Vec<String> = listed
        .iter()
        .map(|p| p.strip_prefix(&dir).unwrap().display().to_string())
        .collect();
    assert_eq!(
        names,
        [
            "zip_code=10001/part-00000-00000.parquet",
            "zip_code=94105/part-00000-00001.parquet",
            "zip_code=10001/part-00001-00000.parquet",
        ]
    );
    let counts: Vec<Vec<i64>> = listed.iter().map(|p| parquet_counts(p)).collect();
    assert_eq!(counts, [vec![2], vec![1, 3], vec![4]]);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn json_lines_files_hold_one_object_per_row() {
    let dir = temp_dir("json");
    let sink = FileSink::open(&spec(&dir, FileFormat::JsonLines, &[]), None, false).unwrap();
    let files = sink.write(0, &rows(&["94105", "10001"], &[1, 2])).unwrap();
    assert_eq!(files[0].rows, 2);
    sink.commit(0, files).unwrap();
    let text = std::fs::read_to_string(dir.join("part-00000-00000.json")).unwrap();
    assert_eq!(
        text,
        "{\"zip_code\":\"94105\",\"count\":1}\n{\"zip_code\":\"10001\",\"count\":2}\n"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn files_of_a_batch_that_did_not_commit_are_deleted_at_the_next_open() {
    let dir = temp_dir("uncommitted");
    let spec = spec(&dir, FileFormat::Parquet, &["zip_code"]);
    let sink = FileSink::open(&spec, None, false).unwrap();
    let files = sink.write(0, &rows(&["1"], &[1])).unwrap();
    sink.commit(0, files).unwrap();
    sink.write(1, &rows(&["1", "2"], &[2, 3])).unwrap(); // a crash before its commit
    std::fs::write(
        dir.join("zip_code=2/.part-00001-00001.parquet.inprogress"),
        b"half",
    )
    .unwrap();
    std::fs::write(dir.join("README"), b"not ours").unwrap();

    FileSink::open(&spec, Some(0), false).unwrap();
    let mut left: Vec<String> = Vec::new();
    for sub in ["zip_code=1", "zip_code=2"] {
        for entry in std::fs::read_dir(dir.join(sub)).unwrap() {
            left.push(format!(
                "{sub}/{}",
                entry.unwrap().file_name().to_string_lossy()
            ));
        }
    }
    left.sort();
    assert_eq!(left, ["zip_code=1/part-00000-00000.parquet"]);
    assert!(
        dir.join("README").exists(),
        "only part files are the sink's"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_log_ahead_of_the_checkpoint_is_refused() {
    let dir = temp_dir("ahead");
    let spec = spec(&dir, FileFormat::Parquet, &[]);
    let sink = FileSink::open(&spec, None, false).unwrap();
    for batch in 0..3 {
        let files = sink.write(batch, &rows(&["1"], &[1])).unwrap();
        sink.commit(batch, files).unwrap();
    }
    let error = FileSink::open(&spec, Some(1), false)
        .err()
        .unwrap()
        .to_string();
    assert!(error.contains("committed batches up to 2"), "{error}");
    assert!(error.contains("only up to 1"), "{error}");
    assert_eq!(committed_files(&dir).unwrap().len(), 3, "nothing deleted");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_log_behind_the_checkpoint_is_refused_and_no_file_deleted() {
    let dir = temp_dir("behind");
    let spec = spec(&dir, FileFormat::Parquet, &[]);
    let sink = FileSink::open(&spec, None, false).unwrap();
    for batch in 0..2 {
        let files = sink.write(batch, &rows(&["1"], &[1])).unwrap();
        sink.commit(batch, files).unwrap();
    }
    std::fs::remove_dir_all(dir.join(LOG_DIR)).unwrap();
    let error = FileSink::open(&spec, Some(1), false)
        .err()
        .unwrap()
        .to_string();
    assert!(error.contains("the log was removed or replaced"), "{error}");
    assert!(dir.join("part-00000-00000.parquet").exists());
    assert!(dir.join("part-00001-00000.parquet").exists());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn partitioning_by_every_column_is_refused() {
    let schema = rows(&[], &[]).schema();
    let all = spec(Path::new("x"), FileFormat::Parquet, &["zip_code", "count"]);
    let error = check_file_schema(&schema, &all).unwrap_err();
    assert!(error.contains("nothing to write"), "{error}");
}

#[test]
fn the_log_is_compacted_every_hundred_batches_and_still_lists_every_file() {
    let dir = temp_dir("compact");
    let sink = FileSink::open(&spec(&dir, FileFormat::JsonLines, &[]), None, false).unwrap();
    for batch in 0..250 {
        let files = sink.write(batch, &rows(&["1"], &[batch as i64])).unwrap();
        sink.commit(batch, files).unwrap();
    }
    let mut names: Vec<String> = std::fs::read_dir(dir.join(LOG_DIR))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names.len(),
        51,
        "one compacted file and the 50 entries after it"
    );
    assert!(names.contains(&"199.compact.json".to_string()), "{names:?}");
    // A single entry a crash left behind a compaction is not read twice.
    std::fs::write(dir.join(LOG_DIR).join("5.json"), b"{}").unwrap();

    let listed = committed_files(&dir).unwrap();
    let expected: Vec<PathBuf> = (0..250)
        .map(|batch| dir.join(format!("part-{batch:05}-00000.json")))
        .collect();
    assert_eq!(listed, expected);
    let log = FilesLog::at(&dir);
    assert_eq!(log.last_batch().unwrap(), Some(249));
    assert!(log.has(17).unwrap() && log.has(249).unwrap() && !log.has(250).unwrap());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn in_complete_mode_each_batch_replaces_the_result_and_compaction_deletes_the_old_ones() {
    let dir = temp_dir("complete");
    let sink = FileSink::open(&spec(&dir, FileFormat::JsonLines, &[]), None, true).unwrap();
    for batch in 0..150 {
        let files = sink
            .write(batch, &rows(&["1", "2"], &[batch as i64, 0]))
            .unwrap();
        sink.commit(batch, files).unwrap();
    }
    assert_eq!(
        committed_files(&dir).unwrap(),
        [dir.join("part-00149-00000.json")],
        "only the last result"
    );
    let on_disk = std::fs::read_dir(&dir)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with("part-")
        })
        .count();
    assert_eq!(
        on_disk, 51,
        "results before batch 99 were deleted by the compaction at 99"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
