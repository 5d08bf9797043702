//! Where a checkpoint's sled database lives on disk, and how it is rewritten to stay small.
//!
//! sled is log-structured and reclaims the space of rewritten and removed values slowly: with only the
//! last 100 batch records and a few open windows live, a checkpoint's folder still grew from 13 to 35 MB
//! over 24,000,000 records, most of it in `blobs/` (values and pages over 128 KiB: a batch's staged state
//! changes, a window's groups). So the checkpoint copies its live data into a fresh database, a new
//! *generation*, once the folder has doubled since the last copy, and switches to it by renaming one file:
//!
//! ```text
//! checkpointLocation/
//!   CURRENT         "gen-000007": the generation in use, replaced by an atomic rename
//!   gen-000007/     the sled database (conf, db, blobs/, snap.*)
//! ```
//!
//! A crash before the rename leaves the old generation in use, and the half-written one is removed at the
//! next open; after it, the new one is in use and the old one is removed. Checkpoints written before
//! generations existed (sled's files directly in the folder) open in place and move into a generation at
//! their first copy.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;

/// sled's page cache per checkpoint: operators keep their open state in memory, so the cache only needs
/// to hold what a batch writes.
const CACHE_BYTES: u64 = 16 << 20;

/// The file naming the generation in use.
const CURRENT: &str = "CURRENT";

/// The files sled keeps in its folder, for the layout from before generations.
const SLED_FILES: &[&str] = &["conf", "db", "blobs"];

/// A checkpoint folder's generations.
#[derive(Debug, Clone)]
pub(crate) struct Generations {
    root: PathBuf,
    /// The generation in use; `None` for the layout from before generations (sled in `root` itself).
    current: Option<u32>,
}

fn generation_dir(root: &Path, generation: u32) -> PathBuf {
    root.join(format!("gen-{generation:06}"))
}

fn open_sled(dir: &Path) -> sled::Result<sled::Db> {
    sled::Config::new()
        .path(dir)
        .cache_capacity(CACHE_BYTES)
        .open()
}

impl Generations {
    /// Whether `root` holds a checkpoint in either layout.
    pub(crate) fn exist(root: &Path) -> bool {
        root.join(CURRENT).exists() || SLED_FILES[..2].iter().any(|f| root.join(f).exists())
    }

    /// Opens the database in use at `root` (creating generation 0 when `root` is new), and removes what an
    /// interrupted copy left behind.
    pub(crate) fn open(root: &Path) -> anyhow::Result<(Generations, sled::Db)> {
        let current = match fs::read_to_string(root.join(CURRENT)) {
            Ok(text) => Some(parse_generation(text.trim()).with_context(|| {
                format!(
                    "{} names no generation: {text:?}",
                    root.join(CURRENT).display()
                )
            })?),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(e).context("reading the checkpoint's CURRENT file"),
        };
        let fresh = !root.exists();
        let mut generations = Generations {
            root: root.to_path_buf(),
            current,
        };
        if fresh {
            fs::create_dir_all(root).context("creating the checkpoint folder")?;
            generations.switch_to(0)?;
        }
        generations.remove_others()?;
        let db = open_sled(&generations.dir()).context("sled cannot open it")?;
        Ok((generations, db))
    }

    /// The folder of the database in use.
    pub(crate) fn dir(&self) -> PathBuf {
        match self.current {
            Some(generation) => generation_dir(&self.root, generation),
            None => self.root.clone(),
        }
    }

    /// Copies every tree of `db` into a new generation and switches to it; returns the new database. The
    /// caller drops `db` afterwards, which closes the old generation, and then calls
    /// [`Generations::remove_others`].
    pub(crate) fn copy(&mut self, db: &sled::Db) -> anyhow::Result<sled::Db> {
        let next = self.current.map_or(1, |g| g + 1);
        let dir = generation_dir(&self.root, next);
        if dir.exists() {
            fs::remove_dir_all(&dir).context("removing an unfinished checkpoint generation")?;
        }
        let copy = open_sled(&dir).context("creating a checkpoint generation")?;
        for name in db.tree_names() {
            let (from, to) = (db.open_tree(&name)?, copy.open_tree(&name)?);
            for entry in from.iter() {
                let (key, value) = entry?;
                to.insert(key, value)?;
            }
        }
        copy.flush().context("writing the checkpoint generation")?;
        self.switch_to(next)?;
        Ok(copy)
    }

    /// Points `CURRENT` at `generation`: written aside, synced, then renamed over the old one.
    fn switch_to(&mut self, generation: u32) -> anyhow::Result<()> {
        let staged = self.root.join("CURRENT.new");
        let mut file =
            fs::File::create(&staged).context("writing the checkpoint's CURRENT file")?;
        writeln!(file, "gen-{generation:06}")?;
        file.sync_all()?;
        fs::rename(&staged, self.root.join(CURRENT)).context("switching checkpoint generations")?;
        fs::File::open(&self.root)?.sync_all()?;
        self.current = Some(generation);
        Ok(())
    }

    /// Removes every generation but the one in use, and sled's files of the old layout once a generation
    /// is in use.
    pub(crate) fn remove_others(&self) -> anyhow::Result<()> {
        let Some(current) = self.current else {
            return Ok(());
        };
        for entry in fs::read_dir(&self.root).context("listing the checkpoint folder")? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let old_generation = name
                .strip_prefix("gen-")
                .and_then(|g| g.parse::<u32>().ok())
                .is_some_and(|g| g != current);
            let old_layout = SLED_FILES.contains(&name.as_str()) || name.starts_with("snap.");
            if old_generation || old_layout {
                let path = entry.path();
                let removed = if path.is_dir() {
                    fs::remove_dir_all(&path)
                } else {
                    fs::remove_file(&path)
                };
                removed.with_context(|| format!("removing {}", path.display()))?;
            }
        }
        Ok(())
    }
}

fn parse_generation(name: &str) -> Option<u32> {
    name.strip_prefix("gen-")?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_copy_keeps_every_tree_and_replaces_the_old_generation() {
        let root = std::env::temp_dir().join(format!("weir-gen-{}", uuid::Uuid::new_v4()));
        let (mut generations, db) = Generations::open(&root).unwrap();
        assert!(Generations::exist(&root));
        for i in 0u32..1000 {
            db.open_tree("t")
                .unwrap()
                .insert(i.to_be_bytes(), vec![7u8; 300])
                .unwrap();
        }
        db.open_tree("t").unwrap().clear().unwrap();
        db.open_tree("kept").unwrap().insert("k", "v").unwrap();
        let copy = generations.copy(&db).unwrap();
        drop(db);
        generations.remove_others().unwrap();
        assert_eq!(generations.dir(), root.join("gen-000001"));
        assert!(!root.join("gen-000000").exists());
        assert_eq!(
            copy.open_tree("kept").unwrap().get("k").unwrap().unwrap(),
            "v"
        );
        assert!(copy.open_tree("t").unwrap().is_empty());
        drop(copy);
        // Reopened, the checkpoint finds the copy through CURRENT.
        let (reopened, db) = Generations::open(&root).unwrap();
        assert_eq!(reopened.dir(), root.join("gen-000001"));
        assert_eq!(db.open_tree("kept").unwrap().len(), 1);
        drop(db);
        fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn the_layout_from_before_generations_opens_in_place_and_moves_at_its_first_copy() {
        let root = std::env::temp_dir().join(format!("weir-gen-{}", uuid::Uuid::new_v4()));
        let old = open_sled(&root).unwrap();
        old.open_tree("meta").unwrap().insert("query", "q").unwrap();
        old.flush().unwrap();
        drop(old);
        let (mut generations, db) = Generations::open(&root).unwrap();
        assert_eq!(generations.dir(), root);
        let copy = generations.copy(&db).unwrap();
        drop(db);
        generations.remove_others().unwrap();
        assert!(!root.join("db").exists() && !root.join("conf").exists());
        assert_eq!(
            copy.open_tree("meta")
                .unwrap()
                .get("query")
                .unwrap()
                .unwrap(),
            "q"
        );
        drop(copy);
        fs::remove_dir_all(&root).unwrap();
    }
}
