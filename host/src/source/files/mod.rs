//! The file source: new files under a directory, oldest first, `maxFilesPerTrigger` at a time, each file
//! read once over the checkpoint's life.
//!
//! Spark's file source, with Weir's stages: JSON lines, CSV and text files become records of the Kafka
//! source schema (the file as `topic`, the line as `offset`), so the `[deserializer]` decodes them with the
//! same policies, dead letters and UDFs as Kafka values; Parquet files are typed rows already.
//!
//! Which files were read is checkpoint state (the `file-source` table: path → modification time): each
//! batch's files are recorded in the same commit as its output, so a crash before the commit reads them
//! again and one after it never does. Like Spark, files older than the newest seen by more than
//! `maxFileAge` are ignored and forgotten, which keeps that table from growing without end.
//!
//! A directory written by a Weir file sink (it has a `_weir_log`) is read through its committed-files log,
//! so the files of a batch that never committed are never read.

mod read;
mod spec;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, UNIX_EPOCH};

use anyhow::Context;

pub use spec::{FileSourceFormat, FileSourceSpec, DEFAULT_MAX_FILE_AGE};

use super::records::FILES_STREAM;
use super::SourceBatch;
use crate::kafka::TopicPartition;
use crate::sink::{committed_files, LOG_DIR};
use crate::state::TableChanges;
use read::{read_file, FileToRead};

/// The checkpoint table of the files read: relative path → modification time (ms, big-endian).
pub(crate) const FILES_READ_TABLE: &str = "file-source";

/// A file under the source directory.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Listed {
    modified_ms: i64,
    /// Relative to the source directory, `/`-separated.
    relative: String,
}

/// An open file source.
pub(crate) struct FileSource {
    spec: FileSourceSpec,
    /// Files read, by relative path, with their modification times.
    read: BTreeMap<String, i64>,
    /// Files read over the checkpoint's life: the source's position, as Spark's `logOffset`.
    files_read: i64,
    /// `availableNow` and `once`: the files there at the start, still to read; `None` runs on.
    bounded: Option<BTreeSet<String>>,
    /// `once`: the first batch reads every file, whatever `maxFilesPerTrigger` says.
    whole: bool,
}

impl FileSource {
    /// Opens the source with the files earlier batches read (the checkpoint's `file-source` table) and
    /// its position; a bounded trigger reads only the files there now.
    pub(crate) fn open(
        spec: FileSourceSpec,
        read: Vec<(Vec<u8>, Vec<u8>)>,
        files_read: i64,
        bounded: bool,
    ) -> anyhow::Result<FileSource> {
        let read = read
            .into_iter()
            .map(|(path, modified)| {
                let modified: [u8; 8] = modified.as_slice().try_into().ok()?;
                Some((String::from_utf8(path).ok()?, i64::from_be_bytes(modified)))
            })
            .collect::<Option<BTreeMap<_, _>>>()
            .context("the checkpoint's file-source table is damaged")?;
        let mut source = FileSource {
            spec,
            read,
            files_read,
            bounded: None,
            whole: false,
        };
        if bounded {
            let now = source.new_files(None)?;
            source.bounded = Some(now.into_iter().map(|f| f.relative).collect());
        }
        Ok(source)
    }

    /// The `once` trigger: the first batch reads every file there at the start.
    pub(crate) fn read_all_in_one_batch(&mut self) {
        self.whole = true;
    }

    /// The source's one partition (see [`FILES_STREAM`]), whose position is the number of files read.
    pub(crate) fn position_key() -> TopicPartition {
        (FILES_STREAM.to_string(), 0)
    }

    /// A bounded run read every file it started with.
    pub(crate) fn is_finished(&self) -> bool {
        self.bounded.as_ref().is_some_and(BTreeSet::is_empty)
    }

    /// Reads the next batch's files; with none new, waits `max_wait` and returns an empty batch.
    pub(crate) fn next_batch(&mut self, max_wait: Duration) -> anyhow::Result<SourceBatch> {
        let limit = (!self.whole)
            .then_some(self.spec.max_files_per_trigger)
            .flatten();
        self.whole = false;
        let files = self.new_files(limit)?;
        if files.is_empty() {
            if self.bounded.is_none() {
                std::thread::sleep(max_wait);
            }
            return Ok(SourceBatch::default());
        }
        let mut chunks = Vec::new();
        for file in &files {
            let path = self.spec.path.join(&file.relative);
            let name = path.display().to_string();
            let to_read = FileToRead {
                path: &path,
                name: &name,
                modified_ms: file.modified_ms,
            };
            chunks.extend(read_file(&to_read, &self.spec.format)?);
        }
        let start = BTreeMap::from([(Self::position_key(), self.files_read)]);
        self.files_read += files.len() as i64;
        let end = BTreeMap::from([(Self::position_key(), self.files_read)]);
        let changes = self.record(&files);
        Ok(SourceBatch {
            chunks,
            start,
            end,
            lag: Vec::new(),
            checkpoint_changes: Some(changes),
        })
    }

    /// Notes `files` as read, forgets files past `maxFileAge`, and returns both as the checkpoint changes
    /// the batch commits.
    fn record(&mut self, files: &[Listed]) -> TableChanges {
        if let Some(bounded) = &mut self.bounded {
            for file in files {
                bounded.remove(&file.relative);
            }
        }
        let upserts = files
            .iter()
            .map(|f| {
                (
                    f.relative.clone().into_bytes(),
                    f.modified_ms.to_be_bytes().to_vec(),
                )
            })
            .collect();
        self.read
            .extend(files.iter().map(|f| (f.relative.clone(), f.modified_ms)));
        let oldest = self.oldest_kept();
        let forgotten: Vec<String> = self
            .read
            .iter()
            .filter(|(_, &modified)| modified < oldest)
            .map(|(path, _)| path.clone())
            .collect();
        for path in &forgotten {
            self.read.remove(path);
        }
        TableChanges {
            table: FILES_READ_TABLE.to_string(),
            upserts,
            removals: forgotten.into_iter().map(String::into_bytes).collect(),
        }
    }

    /// Files older than this (ms) are ignored: `maxFileAge` before the newest file read (as in Spark, so
    /// the first batch may read files of any age).
    fn oldest_kept(&self) -> i64 {
        let newest = self.read.values().copied().max().unwrap_or(i64::MIN);
        newest.saturating_sub(self.spec.max_file_age.as_millis() as i64)
    }

    /// Files not read yet, oldest first, at most `limit`.
    fn new_files(&self, limit: Option<usize>) -> anyhow::Result<Vec<Listed>> {
        let oldest = self.oldest_kept();
        let mut new: Vec<Listed> = list(&self.spec.path)?
            .into_iter()
            .filter(|f| f.modified_ms >= oldest && !self.read.contains_key(&f.relative))
            .filter(|f| {
                self.bounded
                    .as_ref()
                    .is_none_or(|b| b.contains(&f.relative))
            })
            .collect();
        new.sort();
        new.truncate(limit.unwrap_or(usize::MAX));
        Ok(new)
    }
}

/// The files under `dir`: through its committed-files log when a Weir file sink wrote it, else every file
/// in it and its subdirectories whose name starts with neither `.` nor `_` (hidden, or in progress).
fn list(dir: &Path) -> anyhow::Result<Vec<Listed>> {
    let paths = if dir.join(LOG_DIR).is_dir() {
        committed_files(dir)?
    } else {
        let mut paths = Vec::new();
        walk(dir, &mut paths)?;
        paths
    };
    paths
        .into_iter()
        .map(|path| {
            let modified = std::fs::metadata(&path)
                .and_then(|m| m.modified())
                .with_context(|| format!("reading the modification time of {}", path.display()))?;
            let relative = path.strip_prefix(dir).unwrap_or(&path);
            Ok(Listed {
                modified_ms: modified
                    .duration_since(UNIX_EPOCH)
                    .map_or(0, |d| d.as_millis() as i64),
                relative: relative
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy())
                    .collect::<Vec<_>>()
                    .join("/"),
            })
        })
        .collect()
}

fn walk(dir: &Path, paths: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    let entries = std::fs::read_dir(dir)
        .with_context(|| format!("listing the source directory {}", dir.display()))?;
    for entry in entries {
        let entry = entry.with_context(|| format!("listing {}", dir.display()))?;
        let name = entry.file_name();
        if name.to_string_lossy().starts_with(['.', '_']) {
            continue;
        }
        let kind = entry
            .file_type()
            .with_context(|| format!("reading {}", entry.path().display()))?;
        if kind.is_dir() {
            walk(&entry.path(), paths)?;
        } else if kind.is_file() {
            paths.push(entry.path());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
