//! The committed-files log: `<path>/_weir_log/<batch>.json`, one entry per committed batch, listing the
//! files it wrote (as Spark's `_spark_metadata` does), compacted every 100 batches. Writing an entry is a file sink's commit point: the
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
    /// The batch's files replace every earlier batch's: the pipeline writes its whole result each batch
    /// (`output_mode = "complete"`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub replaces: bool,
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
/// output should read, and nothing else. In complete mode, only the last batch's files: each batch's
/// replace the ones before.
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
    let mut files = Vec::new();
    for entry in FilesLog::at(dir).entries()? {
        if entry.replaces {
            files.clear();
        }
        files.extend(entry.files.into_iter().map(|file| dir.join(file.path)));
    }
    Ok(files)
}

/// Every [`COMPACT_EVERY`] batches, the entries so far are gathered into one `<batch>.compact.json` and
/// the single entries removed, so the log's folder keeps at most this many files however long the
/// pipeline runs (Spark compacts its sink log the same way). In complete mode the entries (and files) a
/// later batch replaced are dropped then, so the output folder keeps at most ~100 results.
pub(crate) const COMPACT_EVERY: u64 = 100;

/// A compacted log: every entry up to its batch.
#[derive(Debug, Serialize, Deserialize)]
struct Compacted {
    version: u32,
    batches: Vec<CommittedBatchFiles>,
}

/// What the log's folder holds: the latest compacted file's batch and the single entries after it.
#[derive(Default)]
struct Listing {
    compacted: Option<u64>,
    entries: Vec<u64>,
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

    /// The last committed batch.
    pub(crate) fn last_batch(&self) -> anyhow::Result<Option<u64>> {
        let listing = self.listing()?;
        Ok(listing.entries.last().copied().max(listing.compacted))
    }

    /// Whether `batch` committed: every batch up to the compacted one did.
    pub(crate) fn has(&self, batch: u64) -> anyhow::Result<bool> {
        let listing = self.listing()?;
        Ok(listing.compacted >= Some(batch) || listing.entries.contains(&batch))
    }

    /// Every committed batch's entry, in order.
    pub(crate) fn entries(&self) -> anyhow::Result<Vec<CommittedBatchFiles>> {
        let listing = self.listing()?;
        let mut entries = match listing.compacted {
            Some(batch) => {
                let path = self.dir.join(format!("{batch}.compact.json"));
                let compacted: Compacted = read_json(&path)?;
                check_version(&path, compacted.version)?;
                compacted.batches
            }
            None => Vec::new(),
        };
        for batch in listing.entries {
            let path = self.entry_path(batch);
            let entry: CommittedBatchFiles = read_json(&path)?;
            check_version(&path, entry.version)?;
            entries.push(entry);
        }
        Ok(entries)
    }

    /// Commits `batch`: its entry is written aside, synced, and renamed into place, so it appears whole or
    /// not at all, and survives a power cut once this returns. Every [`COMPACT_EVERY`] batches the log is
    /// then compacted.
    pub(crate) fn add(
        &self,
        batch: u64,
        files: Vec<CommittedFile>,
        replaces: bool,
    ) -> anyhow::Result<()> {
        std::fs::create_dir_all(&self.dir)
            .with_context(|| format!("creating {}", self.dir.display()))?;
        let entry = CommittedBatchFiles {
            version: VERSION,
            batch,
            files,
            replaces,
        };
        self.write_whole(&self.entry_path(batch), &serde_json::to_vec(&entry)?)?;
        if (batch + 1).is_multiple_of(COMPACT_EVERY) {
            self.compact(batch)?;
        }
        Ok(())
    }

    /// Gathers every entry up to `batch` into `<batch>.compact.json`, then removes what it replaces. A
    /// crash in between leaves files the listing ignores (entries and older compactions up to `batch`),
    /// removed by the next compaction.
    fn compact(&self, batch: u64) -> anyhow::Result<()> {
        let mut batches = self.entries()?;
        // Entries a later one replaced are left out, and their files deleted once the compaction is
        // written: readers had the last 100 batches' time to finish with them.
        let superseded = batches
            .iter()
            .rposition(|entry| entry.replaces)
            .unwrap_or(0);
        let replaced: Vec<CommittedBatchFiles> = batches.drain(..superseded).collect();
        let compacted = Compacted {
            version: VERSION,
            batches,
        };
        let path = self.dir.join(format!("{batch}.compact.json"));
        self.write_whole(&path, &serde_json::to_vec(&compacted)?)?;
        let sink_dir = self
            .dir
            .parent()
            .expect("the log is inside the sink's directory");
        for file in replaced.iter().flat_map(|entry| &entry.files) {
            let path = sink_dir.join(&file.path);
            match std::fs::remove_file(&path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(e).with_context(|| format!("deleting {}", path.display()))
                }
                _ => {}
            }
        }
        for entry in std::fs::read_dir(&self.dir)? {
            let path = entry?.path();
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default();
            let replaced = match log_file(name) {
                Some(LogFile::Entry(b)) => b <= batch,
                Some(LogFile::Compacted(b)) => b < batch,
                None => false,
            };
            if replaced {
                std::fs::remove_file(&path)
                    .with_context(|| format!("removing {}", path.display()))?;
            }
        }
        Ok(())
    }

    /// The folder's compacted file and entries; files a compaction replaced are left out.
    fn listing(&self) -> anyhow::Result<Listing> {
        let names = match std::fs::read_dir(&self.dir) {
            Ok(names) => names,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Listing::default()),
            Err(e) => return Err(e).with_context(|| format!("listing {}", self.dir.display())),
        };
        let mut listing = Listing::default();
        for name in names {
            match log_file(&name?.file_name().to_string_lossy()) {
                Some(LogFile::Entry(batch)) => listing.entries.push(batch),
                Some(LogFile::Compacted(batch)) => {
                    listing.compacted = listing.compacted.max(Some(batch))
                }
                None => {}
            }
        }
        listing
            .entries
            .retain(|batch| Some(*batch) > listing.compacted);
        listing.entries.sort_unstable();
        Ok(listing)
    }

    /// Writes `bytes` to `path` aside, synced, then renamed into place.
    fn write_whole(&self, path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        let aside = self.dir.join(format!(".{name}.inprogress"));
        let mut file =
            File::create(&aside).with_context(|| format!("creating {}", aside.display()))?;
        file.write_all(bytes)
            .and_then(|()| file.sync_all())
            .with_context(|| format!("writing {}", aside.display()))?;
        std::fs::rename(&aside, path)
            .with_context(|| format!("renaming {} into place", aside.display()))?;
        sync_dir(&self.dir)
    }

    fn entry_path(&self, batch: u64) -> PathBuf {
        self.dir.join(format!("{batch}.json"))
    }
}

/// The files of the log's folder.
enum LogFile {
    Entry(u64),
    Compacted(u64),
}

fn log_file(name: &str) -> Option<LogFile> {
    if let Some(batch) = name.strip_suffix(".compact.json") {
        return batch.parse().ok().map(LogFile::Compacted);
    }
    name.strip_suffix(".json")?.parse().ok().map(LogFile::Entry)
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> anyhow::Result<T> {
    let text = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_slice(&text)
        .with_context(|| format!("{}: not a committed-files log entry", path.display()))
}

fn check_version(path: &Path, version: u32) -> anyhow::Result<()> {
    anyhow::ensure!(
        version == VERSION,
        "{}: log version {version} (this Weir reads version {VERSION})",
        path.display()
    );
    Ok(())
}

/// Makes a rename in `dir` durable.
pub(crate) fn sync_dir(dir: &Path) -> anyhow::Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .with_context(|| format!("syncing the directory {}", dir.display()))
}
