//! The committed-files log: `<path>/_weir_log/<batch>.json`, one entry per committed batch, listing the
//! files it wrote (as Spark's `_spark_metadata` does). Writing an entry is a file sink's commit point: the
//! batch's files exist and are synced before it, and the checkpoint records the batch only after it. A
//! directory listing also shows the files of batches that failed half-way; the log never does.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::{Deserialize, Serialize};

/// The log's folder inside the sink's directory. It starts with `_`, which Spark, Hive and pandas skip
/// when they list a dataset's files.
pub const LOG_DIR: &str = "_weir_log";

/// The version written in every entry, for readers to check.
const VERSION: u32 = 1;

/// One batch's entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommittedBatchFiles {
    /// The entry format's version (1).
    pub version: u32,
    /// The batch, as numbered in the pipeline's checkpoint.
    pub batch: u64,
    /// The files, relative to the sink's directory.
    pub files: Vec<CommittedFile>,
}

/// One file of a committed batch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommittedFile {
    /// The path relative to the sink's directory, `/`-separated (`zip_code=94105/part-00003-00000.parquet`).
    pub path: String,
    /// Rows in the file.
    pub rows: u64,
    /// The file's size in bytes.
    pub bytes: u64,
}

/// The files a file sink committed under `dir`, batch by batch, read from its log: what a reader of the
/// output should read, and nothing else.
///
/// ```
/// # fn main() -> anyhow::Result<()> {
/// let dir = std::env::temp_dir().join(format!("weir-doc-log-{}", std::process::id()));
/// std::fs::create_dir_all(&dir)?;
/// assert!(weir::committed_files(&dir)?.is_empty()); // nothing committed yet
/// # std::fs::remove_dir_all(&dir)?;
/// # Ok(()) }
/// ```
pub fn committed_files(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let log = FilesLog::at(dir);
    let mut files = Vec::new();
    for batch in log.batches()? {
        for file in log.read(batch)?.files {
            files.push(dir.join(file.path));
        }
    }
    Ok(files)
}

/// The log of one sink directory.
pub(crate) struct FilesLog {
    dir: PathBuf,
}

impl FilesLog {
    /// The log of the sink writing under `sink_dir` (which may not exist yet).
    pub(crate) fn at(sink_dir: &Path) -> FilesLog {
        FilesLog {
            dir: sink_dir.join(LOG_DIR),
        }
    }

    /// The committed batches, in order.
    pub(crate) fn batches(&self) -> anyhow::Result<Vec<u64>> {
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e).with_context(|| format!("listing {}", self.dir.display())),
        };
        let mut batches = Vec::new();
        for entry in entries {
            let name = entry?.file_name();
            let batch = name.to_str().and_then(|n| n.strip_suffix(".json"));
            if let Some(batch) = batch.and_then(|b| b.parse().ok()) {
                batches.push(batch);
            }
        }
        batches.sort_unstable();
        Ok(batches)
    }

    /// Whether `batch` committed.
    pub(crate) fn has(&self, batch: u64) -> bool {
        self.entry_path(batch).exists()
    }

    /// The entry of a committed batch.
    pub(crate) fn read(&self, batch: u64) -> anyhow::Result<CommittedBatchFiles> {
        let path = self.entry_path(batch);
        let text = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        let entry: CommittedBatchFiles = serde_json::from_slice(&text)
            .with_context(|| format!("{}: not a committed-files log entry", path.display()))?;
        anyhow::ensure!(
            entry.version == VERSION,
            "{}: log entry version {} (this Weir reads version {VERSION})",
            path.display(),
            entry.version
        );
        Ok(entry)
    }

    /// Commits `batch`: its entry is written aside, synced, and renamed into place, so it appears whole or
    /// not at all, and survives a power cut once this returns.
    pub(crate) fn add(&self, batch: u64, files: Vec<CommittedFile>) -> anyhow::Result<()> {
        std::fs::create_dir_all(&self.dir)
            .with_context(|| format!("creating {}", self.dir.display()))?;
        let entry = CommittedBatchFiles {
            version: VERSION,
            batch,
            files,
        };
        let aside = self.dir.join(format!(".{batch}.json.inprogress"));
        let mut file =
            File::create(&aside).with_context(|| format!("creating {}", aside.display()))?;
        file.write_all(&serde_json::to_vec(&entry)?)
            .and_then(|()| file.sync_all())
            .with_context(|| format!("writing {}", aside.display()))?;
        let path = self.entry_path(batch);
        std::fs::rename(&aside, &path)
            .with_context(|| format!("renaming {} into place", aside.display()))?;
        sync_dir(&self.dir)
    }

    fn entry_path(&self, batch: u64) -> PathBuf {
        self.dir.join(format!("{batch}.json"))
    }
}

/// Makes a rename in `dir` durable.
pub(crate) fn sync_dir(dir: &Path) -> anyhow::Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .with_context(|| format!("syncing the directory {}", dir.display()))
}
