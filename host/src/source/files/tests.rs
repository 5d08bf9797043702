use std::path::Path;
use std::time::{Duration, SystemTime};

use arrow_array::cast::AsArray;
use arrow_array::types::Int64Type;

use super::*;

fn write(dir: &Path, relative: &str, text: &str, age_secs: u64) {
    let path = dir.join(relative);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, text).unwrap();
    let modified = SystemTime::now() - Duration::from_secs(age_secs);
    std::fs::File::options()
        .append(true)
        .open(&path)
        .unwrap()
        .set_modified(modified)
        .unwrap();
}

fn temp_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("weir-file-source-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn open(dir: &Path, read: Vec<(Vec<u8>, Vec<u8>)>, max_files: Option<usize>) -> FileSource {
    let mut spec = FileSourceSpec::new(dir, FileSourceFormat::Json);
    spec.max_files_per_trigger = max_files;
    FileSource::open(spec, read, 0, false).unwrap()
}

/// The files a batch read, by the `topic` of their chunks, relative to `dir`.
fn files_of(batch: &SourceBatch, dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = batch
        .chunks
        .iter()
        .map(|c| {
            c.topic
                .strip_prefix(&format!("{}/", dir.display()))
                .unwrap()
                .to_string()
        })
        .collect();
    names.dedup();
    names
}

fn upserts(batch: &SourceBatch) -> Vec<(Vec<u8>, Vec<u8>)> {
    batch.checkpoint_changes.clone().unwrap().upserts
}

#[test]
fn new_files_are_read_oldest_first_a_batch_at_a_time_and_never_twice() {
    let dir = temp_dir();
    write(&dir, "b.json", "{\"n\":2}\n", 20);
    write(&dir, "a.json", "{\"n\":1}\n\n{\"n\":11}\n", 30);
    write(&dir, "day=1/c.json", "{\"n\":3}\n", 10);
    write(&dir, ".hidden.json", "{}\n", 5);
    write(&dir, "_temporary/d.json", "{}\n", 5);
    let mut source = open(&dir, Vec::new(), Some(2));

    let first = source.next_batch(Duration::ZERO).unwrap();
    assert_eq!(files_of(&first, &dir), ["a.json", "b.json"]);
    let lines = first.chunks[0].batch.column(4).as_primitive::<Int64Type>();
    assert_eq!(lines.values(), &[1, 3], "records keep their line numbers");
    assert_eq!(first.start[&("files".to_string(), 0)], 0);
    assert_eq!(first.end[&("files".to_string(), 0)], 2);
    let second = source.next_batch(Duration::ZERO).unwrap();
    assert_eq!(files_of(&second, &dir), ["day=1/c.json"]);
    assert!(source.next_batch(Duration::ZERO).unwrap().chunks.is_empty());

    // A restart knows the files its checkpoint recorded, and reads only what came since.
    write(&dir, "e.json", "{\"n\":5}\n", 0);
    let recorded = [upserts(&first), upserts(&second)].concat();
    let mut restarted = open(&dir, recorded, None);
    let third = restarted.next_batch(Duration::ZERO).unwrap();
    assert_eq!(files_of(&third, &dir), ["e.json"]);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn files_older_than_max_file_age_are_ignored_and_forgotten() {
    let dir = temp_dir();
    write(&dir, "old.json", "{}\n", 3_600);
    let mut spec = FileSourceSpec::new(&dir, FileSourceFormat::Json);
    spec.max_file_age = Duration::from_secs(60);
    let mut source = FileSource::open(spec, Vec::new(), 0, false).unwrap();
    // The first batch reads files of any age, as Spark's does.
    let first = source.next_batch(Duration::ZERO).unwrap();
    assert_eq!(files_of(&first, &dir), ["old.json"]);

    // The age counts back from the newest file read so far (old.json), not from now.
    write(&dir, "new.json", "{}\n", 0);
    write(&dir, "late.json", "{}\n", 1_800);
    let second = source.next_batch(Duration::ZERO).unwrap();
    assert_eq!(files_of(&second, &dir), ["late.json", "new.json"]);
    let changes = second.checkpoint_changes.unwrap();
    let forgotten = [b"late.json".to_vec(), b"old.json".to_vec()];
    assert_eq!(
        changes.removals, forgotten,
        "the table of files read stays bounded"
    );

    write(&dir, "later.json", "{}\n", 1_200);
    let third = source.next_batch(Duration::ZERO).unwrap();
    assert!(
        third.chunks.is_empty(),
        "older than new.json by more than 60 s: ignored"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_bounded_source_reads_the_files_there_at_the_start_then_finishes() {
    let dir = temp_dir();
    write(&dir, "a.json", "{}\n", 20);
    write(&dir, "b.json", "{}\n", 10);
    let mut spec = FileSourceSpec::new(&dir, FileSourceFormat::Json);
    spec.max_files_per_trigger = Some(1);
    let mut source = FileSource::open(spec, Vec::new(), 0, true).unwrap();
    write(&dir, "later.json", "{}\n", 0);
    let mut read = Vec::new();
    while !source.is_finished() {
        read.extend(files_of(&source.next_batch(Duration::ZERO).unwrap(), &dir));
    }
    assert_eq!(read, ["a.json", "b.json"]);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_directory_a_weir_file_sink_wrote_is_read_through_its_log() {
    let dir = temp_dir();
    write(&dir, "part-0-0.json", "{\"n\":1}\n", 10);
    write(&dir, "part-1-0.json", "{\"n\":2}\n", 5);
    let log = crate::sink::FilesLog::at(&dir);
    let committed = crate::sink::CommittedFile {
        path: "part-0-0.json".into(),
        rows: 1,
        bytes: 8,
    };
    log.add(0, vec![committed], false).unwrap();
    let mut source = open(&dir, Vec::new(), None);
    let batch = source.next_batch(Duration::ZERO).unwrap();
    assert_eq!(
        files_of(&batch, &dir),
        ["part-0-0.json"],
        "batch 1 never committed"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn parquet_rows_are_read_into_the_declared_schema_by_name() {
    use arrow_array::{Int32Array, RecordBatch, StringArray};
    let dir = temp_dir();
    let written = RecordBatch::try_from_iter([
        (
            "name",
            std::sync::Arc::new(StringArray::from(vec!["a", "b"])) as _,
        ),
        ("n", std::sync::Arc::new(Int32Array::from(vec![1, 2])) as _),
    ])
    .unwrap();
    let file = std::fs::File::create(dir.join("rows.parquet")).unwrap();
    let mut writer = parquet::arrow::ArrowWriter::try_new(file, written.schema(), None).unwrap();
    writer.write(&written).unwrap();
    writer.close().unwrap();
    let open_with = |ddl: &str| {
        let schema = crate::schema::parse_ddl_schema(ddl).unwrap();
        let spec = FileSourceSpec::new(&dir, FileSourceFormat::Parquet { schema });
        FileSource::open(spec, Vec::new(), 0, false).unwrap()
    };

    let batch = open_with("n BIGINT, name STRING, missing STRING")
        .next_batch(Duration::ZERO)
        .unwrap();
    let chunk = &batch.chunks[0];
    assert_eq!(chunk.origin, crate::source::RecordOrigin::FileRows);
    assert_eq!(
        chunk.batch.column(0).as_primitive::<Int64Type>().values(),
        &[1, 2]
    );
    assert_eq!(chunk.batch.column(2).null_count(), 2);
    assert_eq!(
        (
            chunk.offset(1),
            chunk.describe().contains("rows.parquet rows 0..=1")
        ),
        (1, true)
    );

    let error = open_with("name STRING, absent INT NOT NULL")
        .next_batch(Duration::ZERO)
        .unwrap_err();
    let error = format!("{error:#}");
    assert!(
        error.contains("rows.parquet") && error.contains("`absent`"),
        "{error}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
