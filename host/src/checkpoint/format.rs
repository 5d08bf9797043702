//! The byte layout of a staged batch in the `pending` tree: its commit record (JSON) and its state changes.
//!
//! State keys and values are arbitrary bytes and a batch can change many of them, so they are written
//! length-prefixed rather than as JSON arrays of numbers:
//!
//! ```text
//! u32 record_len, record (JSON CommittedBatch)
//! u32 tables, then per table: u32 name_len, name, u32 upserts, (u32 len, key, u32 len, value)*,
//!                             u32 removals, (u32 len, key)*
//! ```
//! All integers little-endian.

use anyhow::{bail, Context};

use super::CommittedBatch;
use crate::state::TableChanges;

fn put(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
    out.extend_from_slice(bytes);
}

/// Encodes a staged batch.
pub(crate) fn encode_pending(
    commit: &CommittedBatch,
    changes: &[TableChanges],
) -> anyhow::Result<Vec<u8>> {
    let mut out = Vec::new();
    put(&mut out, &serde_json::to_vec(commit)?);
    out.extend_from_slice(&(changes.len() as u32).to_le_bytes());
    for change in changes {
        put(&mut out, change.table.as_bytes());
        out.extend_from_slice(&(change.upserts.len() as u32).to_le_bytes());
        for (key, value) in &change.upserts {
            put(&mut out, key);
            put(&mut out, value);
        }
        out.extend_from_slice(&(change.removals.len() as u32).to_le_bytes());
        for key in &change.removals {
            put(&mut out, key);
        }
    }
    Ok(out)
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn count(&mut self) -> anyhow::Result<u32> {
        let Some((head, rest)) = self.0.split_first_chunk::<4>() else {
            bail!("the staged batch is truncated");
        };
        self.0 = rest;
        Ok(u32::from_le_bytes(*head))
    }

    fn bytes(&mut self) -> anyhow::Result<&'a [u8]> {
        let len = self.count()? as usize;
        if self.0.len() < len {
            bail!("the staged batch is truncated");
        }
        let (bytes, rest) = self.0.split_at(len);
        self.0 = rest;
        Ok(bytes)
    }
}

/// Decodes a staged batch.
pub(crate) fn decode_pending(bytes: &[u8]) -> anyhow::Result<(CommittedBatch, Vec<TableChanges>)> {
    let mut reader = Reader(bytes);
    let commit: CommittedBatch =
        serde_json::from_slice(reader.bytes()?).context("decoding the staged commit record")?;
    let mut changes = Vec::new();
    for _ in 0..reader.count()? {
        let table = String::from_utf8_lossy(reader.bytes()?).into_owned();
        let mut change = TableChanges {
            table,
            ..TableChanges::default()
        };
        for _ in 0..reader.count()? {
            let key = reader.bytes()?.to_vec();
            change.upserts.push((key, reader.bytes()?.to_vec()));
        }
        for _ in 0..reader.count()? {
            change.removals.push(reader.bytes()?.to_vec());
        }
        changes.push(change);
    }
    if !reader.0.is_empty() {
        bail!("the staged batch has {} trailing bytes", reader.0.len());
    }
    Ok((commit, changes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_staged_batch_round_trips() {
        let commit = CommittedBatch {
            batch: 7,
            end: [("tx".to_string(), [("0".to_string(), 42)].into())].into(),
            watermark: Default::default(),
            output_rows: 3,
            committed_at_ms: 1,
        };
        let changes = vec![TableChanges {
            table: "aggregate".into(),
            upserts: vec![(vec![0, 1], vec![2]), (vec![], vec![])],
            removals: vec![vec![9; 20]],
        }];
        let bytes = encode_pending(&commit, &changes).unwrap();
        assert_eq!(decode_pending(&bytes).unwrap(), (commit, changes));
        assert!(decode_pending(&bytes[..bytes.len() - 1]).is_err());
    }
}
