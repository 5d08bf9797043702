//! `weir checkpoint inspect DIR`: what a checkpoint holds, without running the pipeline.

use std::fmt::Write;
use std::path::Path;

use anyhow::{bail, Context};

use super::database::last;
use super::{Checkpoint, CommittedBatch, PlannedBatch};

/// The report: query id, plan, batches, offsets per partition, watermark, and state per operator table.
pub fn inspect(path: &Path) -> anyhow::Result<String> {
    if !path.exists() {
        bail!("{}: no such checkpoint folder", path.display());
    }
    let checkpoint = Checkpoint::open(path)?;
    let mut out = String::new();
    let _ = writeln!(out, "checkpoint  {}", path.display());
    let _ = writeln!(out, "query id    {}", checkpoint.query_id());
    if let Some(plan) = checkpoint.plan()? {
        let _ = writeln!(out, "source      {}", plan.source);
        if !plan.group_by.is_empty() || plan.window.is_some() {
            let _ = writeln!(
                out,
                "aggregate   {} by [{}], {}, {} mode",
                plan.aggregates.join(", "),
                plan.group_by.join(", "),
                plan.window.as_deref().unwrap_or("no window"),
                plan.output_mode.as_deref().unwrap_or("-")
            );
        }
    }
    write_batches(&mut out, &checkpoint)?;
    write_state(&mut out, &checkpoint)?;
    let _ = writeln!(out, "on disk     {} bytes", checkpoint.size_on_disk());
    Ok(out)
}

/// The batches: how many committed, the last planned, the last commit's offsets and watermark, and a
/// batch staged but not settled.
fn write_batches(out: &mut String, checkpoint: &Checkpoint) -> anyhow::Result<()> {
    let planned: Option<PlannedBatch> =
        last(&checkpoint.tree("offsets")?, "the last planned batch")?;
    let committed: Option<CommittedBatch> = checkpoint.last_commit()?;
    // Batch ids count from 0 over the checkpoint's life; only the last ones keep their records.
    let _ = writeln!(
        out,
        "batches     {} committed, last planned {} ({} batch records kept, minBatchesToRetain)",
        committed.as_ref().map_or(0, |c| c.batch + 1),
        planned
            .as_ref()
            .map_or("none".into(), |p| p.batch.to_string()),
        checkpoint.tree("commits")?.len()
    );
    match &committed {
        None => {
            let _ = writeln!(out, "last commit none");
        }
        Some(commit) => {
            let _ = writeln!(
                out,
                "last commit batch {} at {} ms since the epoch, {} rows written",
                commit.batch, commit.committed_at_ms, commit.output_rows
            );
            let _ = writeln!(out, "offsets     (where the next batch starts)");
            for (topic, partitions) in &commit.end {
                for (partition, offset) in partitions {
                    let _ = writeln!(out, "  {topic}-{partition}  {offset}");
                }
            }
            let _ = writeln!(
                out,
                "watermark   {}",
                commit
                    .watermark
                    .watermark
                    .map_or("none".into(), |w| format!("{w} ms"))
            );
        }
    }
    if let Some((staged, _)) = checkpoint.pending()? {
        let _ = writeln!(
            out,
            "staged      batch {} (its Kafka transaction had not been confirmed; settled at the next start)",
            staged.batch
        );
    }
    Ok(())
}

/// Each operator's state table: entries and bytes.
fn write_state(out: &mut String, checkpoint: &Checkpoint) -> anyhow::Result<()> {
    let _ = writeln!(out, "state");
    let mut tables = 0;
    let db = checkpoint.db();
    for name in db.tree_names() {
        let name = String::from_utf8_lossy(&name).into_owned();
        let Some(table) = name.strip_prefix("state/") else {
            continue;
        };
        let tree = db.open_tree(&name).context("opening a state tree")?;
        let (mut entries, mut bytes) = (0u64, 0u64);
        for item in tree.iter() {
            let (k, v) = item.context("reading state")?;
            entries += 1;
            bytes += (k.len() + v.len()) as u64;
        }
        tables += 1;
        let _ = writeln!(out, "  {table}  {entries} entries, {bytes} bytes");
    }
    if tables == 0 {
        let _ = writeln!(out, "  (no stateful operator)");
    }
    Ok(())
}
