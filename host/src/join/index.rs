//! The join table's index: its key columns row-encoded by arrow-row (so keys of several columns and any
//! type compare as bytes), the first table row of each distinct key in a hash table, and the others
//! chained behind it in file order. Probing a batch encodes its keys the same way and looks each up.
//!
//! A key with a null in any of its columns matches nothing, on either side, as SQL's `=` says.

use std::hash::BuildHasher;

use arrow_array::{ArrayRef, BooleanArray};
use arrow_buffer::NullBuffer;
use arrow_row::{RowConverter, Rows, SortField};
use hashbrown::{DefaultHashBuilder, HashTable};

/// The end of a chain of table rows.
const END: u32 = u32::MAX;

/// The table's keys, indexed.
pub(super) struct TableIndex {
    converter: RowConverter,
    keys: Rows,
    /// The first table row of each distinct key.
    heads: HashTable<u32>,
    /// For each table row, the next row with the same key, or [`END`].
    next: Vec<u32>,
    hasher: DefaultHashBuilder,
}

/// For each probed row, its first match in the table, if any.
pub(super) struct Matches<'a> {
    first: Vec<u32>,
    next: &'a [u32],
}

impl TableIndex {
    /// Indexes the table's key columns (already of the rows' key types).
    pub(super) fn build(columns: &[ArrayRef]) -> anyhow::Result<TableIndex> {
        let fields = columns
            .iter()
            .map(|column| SortField::new(column.data_type().clone()))
            .collect();
        let converter = RowConverter::new(fields)?;
        let keys = converter.convert_columns(columns)?;
        let rows = u32::try_from(keys.num_rows())
            .ok()
            .filter(|rows| *rows < END)
            .ok_or_else(|| anyhow::anyhow!("a join table holds at most {} rows", END - 1))?;
        let nulls = key_nulls(columns);
        let hasher = DefaultHashBuilder::default();
        let mut heads = HashTable::with_capacity(rows as usize);
        let mut next = vec![END; rows as usize];
        // Backwards, so that each chain ends up in the file's order.
        for row in (0..rows).rev().filter(|&row| is_valid(&nulls, row)) {
            let bytes = keys.row(row as usize);
            let hash = hasher.hash_one(bytes.as_ref());
            let same = |other: &u32| keys.row(*other as usize).as_ref() == bytes.as_ref();
            match heads.find_mut(hash, same) {
                Some(head) => {
                    next[row as usize] = *head;
                    *head = row;
                }
                None => {
                    heads.insert_unique(hash, row, |other| {
                        hasher.hash_one(keys.row(*other as usize).as_ref())
                    });
                }
            }
        }
        Ok(TableIndex {
            converter,
            keys,
            heads,
            next,
            hasher,
        })
    }

    /// Looks up the keys of a batch's rows (the `on` columns, in order).
    pub(super) fn probe(&self, columns: &[ArrayRef]) -> anyhow::Result<Matches<'_>> {
        let probed = self.converter.convert_columns(columns)?;
        let nulls = key_nulls(columns);
        let first = (0..probed.num_rows())
            .map(|row| {
                if !is_valid(&nulls, row as u32) {
                    return END;
                }
                let bytes = probed.row(row);
                let hash = self.hasher.hash_one(bytes.as_ref());
                let same = |other: &u32| self.keys.row(*other as usize).as_ref() == bytes.as_ref();
                self.heads.find(hash, same).copied().unwrap_or(END)
            })
            .collect();
        Ok(Matches {
            first,
            next: &self.next,
        })
    }
}

impl Matches<'_> {
    /// Which rows have a match.
    pub(super) fn matched(&self) -> BooleanArray {
        self.first.iter().map(|first| Some(*first != END)).collect()
    }

    /// Which rows have none.
    pub(super) fn unmatched(&self) -> BooleanArray {
        self.first.iter().map(|first| Some(*first == END)).collect()
    }

    /// The row and table positions of every match, row by row; with `outer`, a row without a match once,
    /// with no table position.
    pub(super) fn pairs(&self, outer: bool) -> (Vec<u32>, Vec<Option<u32>>) {
        let mut rows = Vec::with_capacity(self.first.len());
        let mut table = Vec::with_capacity(self.first.len());
        for (row, &first) in self.first.iter().enumerate() {
            if first == END && outer {
                rows.push(row as u32);
                table.push(None);
            }
            let mut at = first;
            while at != END {
                rows.push(row as u32);
                table.push(Some(at));
                at = self.next[at as usize];
            }
        }
        (rows, table)
    }
}

/// The rows whose key has a null in any column, as one validity mask.
fn key_nulls(columns: &[ArrayRef]) -> Option<NullBuffer> {
    columns.iter().fold(None, |nulls, column| {
        NullBuffer::union(nulls.as_ref(), column.logical_nulls().as_ref())
    })
}

fn is_valid(nulls: &Option<NullBuffer>, row: u32) -> bool {
    nulls
        .as_ref()
        .is_none_or(|nulls| nulls.is_valid(row as usize))
}
