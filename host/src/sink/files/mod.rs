//! The file sink: each batch's rows written as new Parquet or JSON-lines files under a directory, split
//! by `partitionBy`, then committed by an entry in the directory's committed-files log (`log.rs`).
//!
//! A batch's files are named after it (`part-<batch>-<n>.<ext>`) and written aside (`.<name>.inprogress`),
//! synced, and renamed into place, so no reader ever opens half a file. A batch that fails before its log
//! entry leaves files no log entry lists; when the pipeline starts again they are deleted, and its records,
//! read again from the last committed batch's offsets, are written anew.

mod log;
mod partition;

use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};

use anyhow::Context;
use arrow_array::RecordBatch;
use arrow_schema::Schema;
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;

pub(crate) use log::FilesLog;
pub use log::{committed_files, CommittedBatchFiles, CommittedFile, LOG_DIR};
pub(crate) use partition::partition_columns;

use super::{FileFormat, FileSinkSpec};
use log::sync_dir;
use partition::split_by_partition;

/// An open file sink.
pub struct FileSink {
    spec: FileSinkSpec,
    log: FilesLog,
    /// Complete mode: each batch's files replace the earlier ones.
    replacing: bool,
}

impl FileSink {
    /// Opens the sink's directory for a run whose checkpoint last committed `committed` (`None`: no batch
    /// yet); `replacing` (complete mode) makes each batch's files replace the earlier ones. Refuses a directory whose log is ahead of the checkpoint (another pipeline's output, or a
    /// checkpoint that was replaced) or behind it (a log removed or replaced), and deletes the files of
    /// batches that did not commit.
    pub fn open(
        spec: &FileSinkSpec,
        committed: Option<u64>,
        replacing: bool,
    ) -> anyhow::Result<FileSink> {
        std::fs::create_dir_all(&spec.path)
            .with_context(|| format!("creating the sink directory {}", spec.path.display()))?;
        let log = FilesLog::at(&spec.path);
        let logged = log.last_batch()?;
        if logged > committed {
            anyhow::bail!(
                "the sink directory {} has committed batches up to {} in {LOG_DIR}, but the checkpoint only \
                 up to {}: the directory holds another run's output. Give this pipeline its own `path`, or \
                 its old checkpoint",
                spec.path.display(),
                logged.unwrap_or_default(),
                committed.map_or("none".to_string(), |b| b.to_string()),
            );
        }
        if logged < committed {
            // Deleting "uncommitted" files against a log that lost entries would delete committed output.
            anyhow::bail!(
                "the checkpoint committed batches up to {} to {}, but its committed-files log {LOG_DIR} ends \
                 at {}: the log was removed or replaced. Restore it, or start over with a new \
                 checkpointLocation and path",
                committed.unwrap_or_default(),
                spec.path.display(),
                logged.map_or("no batch".to_string(), |b| format!("batch {b}")),
            );
        }
        let removed = remove_uncommitted(&spec.path, logged)?;
        if removed > 0 {
            tracing::info!(files = removed, dir = %spec.path.display(), "deleted the files of batches that did not commit");
        }
        Ok(FileSink {
            spec: spec.clone(),
            log,
            replacing,
        })
    }

    /// Spark's description of the sink, for progress reports.
    pub(crate) fn description(&self) -> String {
        format!("FileSink[{}]", self.spec.path.display())
    }

    /// Writes the rows of `batch` as files (one per partition directory), durable but not yet committed.
    pub fn write(&self, batch: u64, rows: &RecordBatch) -> anyhow::Result<Vec<CommittedFile>> {
        if rows.num_rows() == 0 {
            return Ok(Vec::new());
        }
        let columns = partition_columns(rows.schema_ref(), &self.spec.partition_by)
            .map_err(anyhow::Error::msg)?;
        let mut files = Vec::new();
        for (n, (dir, part)) in split_by_partition(rows, &columns)?.into_iter().enumerate() {
            let name = format!(
                "{dir}part-{batch:05}-{n:05}.{}",
                self.spec.format.extension()
            );
            let bytes = self.write_file(&name, &part)?;
            files.push(CommittedFile {
                path: name,
                rows: part.num_rows() as u64,
                bytes,
            });
        }
        Ok(files)
    }

    /// The commit point of `batch`: its files listed in the log.
    pub fn commit(&self, batch: u64, files: Vec<CommittedFile>) -> anyhow::Result<()> {
        self.log.add(batch, files, self.replacing)
    }

    /// Writes one file aside and renames it into place; returns its size.
    fn write_file(&self, relative: &str, rows: &RecordBatch) -> anyhow::Result<u64> {
        let path = self.spec.path.join(relative);
        let dir = path.parent().expect("a file under the sink directory");
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        let aside = dir.join(format!(".{name}.inprogress"));
        let file = File::create(&aside).with_context(|| format!("creating {}", aside.display()))?;
        let file = encode(self.spec.format, file, rows)
            .with_context(|| format!("writing {}", aside.display()))?;
        file.sync_all()
            .with_context(|| format!("syncing {}", aside.display()))?;
        let bytes = file.metadata()?.len();
        std::fs::rename(&aside, &path)
            .with_context(|| format!("renaming {} into place", aside.display()))?;
        sync_dir(dir)?;
        Ok(bytes)
    }
}

/// Writes `rows` to `file` in `format` and hands the file back, complete.
fn encode(format: FileFormat, file: File, rows: &RecordBatch) -> anyhow::Result<File> {
    let buffered = BufWriter::with_capacity(1 << 20, file);
    let buffered = match format {
        FileFormat::Parquet => {
            let properties = WriterProperties::builder()
                .set_compression(Compression::SNAPPY)
                .build();
            let mut writer = ArrowWriter::try_new(buffered, rows.schema(), Some(properties))?;
            writer.write(rows)?;
            writer.into_inner()?
        }
        FileFormat::JsonLines => {
            let mut writer = arrow_json::LineDelimitedWriter::new(buffered);
            writer.write(rows)?;
            writer.finish()?;
            writer.into_inner()
        }
    };
    Ok(buffered.into_inner()?)
}

/// Deletes, under `dir`, the part files of batches after `logged` (the last committed one) and any file
/// left being written; returns how many. The log's own folder is not touched.
fn remove_uncommitted(dir: &Path, logged: Option<u64>) -> anyhow::Result<usize> {
    let mut removed = 0;
    let mut folders: Vec<PathBuf> = vec![dir.to_path_buf()];
    while let Some(folder) = folders.pop() {
        let entries =
            std::fs::read_dir(&folder).with_context(|| format!("listing {}", folder.display()))?;
        for entry in entries {
            let entry = entry?;
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if entry.file_type()?.is_dir() {
                if name != LOG_DIR {
                    folders.push(entry.path());
                }
            } else if name.ends_with(".inprogress") || part_batch(&name) > logged {
                std::fs::remove_file(entry.path())
                    .with_context(|| format!("deleting {}", entry.path().display()))?;
                removed += 1;
            }
        }
    }
    Ok(removed)
}

/// The batch a part file's name says it belongs to (`part-00042-00001.parquet` → 42).
fn part_batch(name: &str) -> Option<u64> {
    name.strip_prefix("part-")?.split('-').next()?.parse().ok()
}

/// Checks that rows of `schema` can be written by the sink: its `partitionBy` columns exist and name
/// directories, and columns remain to fill the files.
pub(crate) fn check_file_schema(schema: &Schema, spec: &FileSinkSpec) -> Result<(), String> {
    let columns = partition_columns(schema, &spec.partition_by)?;
    if columns.len() == schema.fields().len() {
        return Err(
            "partitionBy takes every column, which leaves nothing to write in the files".into(),
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests;
