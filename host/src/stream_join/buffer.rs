//! One stream's rows held by a stream-stream join until the watermark rules out any further match: the
//! rows themselves, their event times, keys and whether they matched, and their checkpoint encoding.

use anyhow::Context;
use arrow_array::{ArrayRef, BooleanArray, RecordBatch, UInt32Array};
use arrow_row::{RowConverter, SortField};
use arrow_schema::SchemaRef;
use arrow_select::concat::concat_batches;

/// A stream's held rows, in arrival order.
pub(super) struct Buffer {
    /// 0 for the left stream, 1 for the right: the first byte of its checkpoint keys.
    side: u8,
    pub(super) rows: RecordBatch,
    pub(super) times: Vec<i64>,
    pub(super) matched: Vec<bool>,
    /// Each row's join key, row-encoded; `None` when part of it is NULL (such a row matches nothing).
    pub(super) keys: Vec<Option<Box<[u8]>>>,
    /// Each row's id in the checkpoint.
    ids: Vec<u64>,
    next_id: u64,
    /// Whole rows to and from checkpoint bytes.
    rows_codec: RowConverter,
}

/// Rows with their event times and encoded keys, on their way into a buffer.
pub(super) struct Arriving {
    pub(super) rows: RecordBatch,
    pub(super) times: Vec<i64>,
    pub(super) keys: Vec<Option<Box<[u8]>>>,
}

impl Buffer {
    pub(super) fn new(side: u8, schema: &SchemaRef) -> anyhow::Result<Buffer> {
        let fields = schema
            .fields()
            .iter()
            .map(|f| SortField::new(f.data_type().clone()))
            .collect();
        Ok(Buffer {
            side,
            rows: RecordBatch::new_empty(schema.clone()),
            times: Vec::new(),
            matched: Vec::new(),
            keys: Vec::new(),
            ids: Vec::new(),
            next_id: 0,
            rows_codec: RowConverter::new(fields)
                .context("the join holds rows of these column types in its state")?,
        })
    }

    pub(super) fn len(&self) -> usize {
        self.times.len()
    }

    /// Adds `arriving` after the rows held; returns where they start.
    pub(super) fn append(&mut self, arriving: Arriving) -> anyhow::Result<usize> {
        let start = self.len();
        self.rows = concat_batches(&self.rows.schema(), [&self.rows, &arriving.rows])?;
        self.matched.resize(start + arriving.times.len(), false);
        self.times.extend(arriving.times);
        self.keys.extend(arriving.keys);
        self.ids
            .extend(self.next_id..self.next_id + (self.len() - start) as u64);
        self.next_id += (self.len() - start) as u64;
        Ok(start)
    }

    /// Drops the rows `expired` says are past any match; returns the dropped rows that never matched
    /// (for an outer join) and the checkpoint keys to remove.
    pub(super) fn evict(
        &mut self,
        expired: impl Fn(i64) -> bool,
    ) -> anyhow::Result<(RecordBatch, Vec<Vec<u8>>)> {
        let gone: Vec<bool> = self.times.iter().map(|&t| expired(t)).collect();
        let removals = self
            .ids
            .iter()
            .zip(&gone)
            .filter(|(_, &g)| g)
            .map(|(&id, _)| self.state_key(id))
            .collect();
        let unmatched: Vec<u32> = (0..self.len())
            .filter(|&i| gone[i] && !self.matched[i])
            .map(|i| i as u32)
            .collect();
        let unmatched =
            arrow_select::take::take_record_batch(&self.rows, &UInt32Array::from(unmatched))?;
        let keep: Vec<bool> = gone.iter().map(|g| !g).collect();
        self.rows = arrow_select::filter::filter_record_batch(
            &self.rows,
            &BooleanArray::from(keep.clone()),
        )?;
        retain(&mut self.times, &keep);
        retain(&mut self.matched, &keep);
        retain(&mut self.keys, &keep);
        retain(&mut self.ids, &keep);
        Ok((unmatched, removals))
    }

    fn state_key(&self, id: u64) -> Vec<u8> {
        let mut key = vec![self.side];
        key.extend_from_slice(&id.to_be_bytes());
        key
    }

    /// The checkpoint entries of the rows at `indices`: `[matched][event time][the row]` under
    /// `[side][id]`.
    pub(super) fn entries(&self, indices: &[usize]) -> anyhow::Result<Vec<(Vec<u8>, Vec<u8>)>> {
        if indices.is_empty() {
            return Ok(Vec::new());
        }
        let take = UInt32Array::from(indices.iter().map(|&i| i as u32).collect::<Vec<_>>());
        let picked = arrow_select::take::take_record_batch(&self.rows, &take)?;
        let encoded = self.rows_codec.convert_columns(picked.columns())?;
        Ok(indices
            .iter()
            .enumerate()
            .map(|(n, &i)| {
                let mut value = vec![u8::from(self.matched[i])];
                value.extend_from_slice(&self.times[i].to_be_bytes());
                value.extend_from_slice(encoded.row(n).as_ref());
                (self.state_key(self.ids[i]), value)
            })
            .collect())
    }

    /// Rebuilds the buffer from its checkpoint entries (this side's, in key order); the caller encodes the
    /// rows' keys.
    pub(super) fn restore(&mut self, entries: &[(Vec<u8>, Vec<u8>)]) -> anyhow::Result<()> {
        if entries.is_empty() {
            return Ok(());
        }
        let parser = self.rows_codec.parser();
        let mut ids = Vec::with_capacity(entries.len());
        for (key, value) in entries {
            let id: [u8; 8] = key
                .get(1..9)
                .and_then(|b| b.try_into().ok())
                .context("a damaged join state key")?;
            anyhow::ensure!(value.len() >= 9, "a damaged join state entry");
            ids.push(u64::from_be_bytes(id));
            self.matched.push(value[0] == 1);
            self.times
                .push(i64::from_be_bytes(value[1..9].try_into().expect("8 bytes")));
        }
        let columns: Vec<ArrayRef> = self
            .rows_codec
            .convert_rows(entries.iter().map(|(_, value)| parser.parse(&value[9..])))
            .context("decoding the join's held rows")?;
        let columns = columns
            .into_iter()
            .zip(self.rows.schema().fields())
            .map(|(column, field)| arrow_cast::cast(&column, field.data_type()))
            .collect::<Result<Vec<_>, _>>()?;
        self.rows = RecordBatch::try_new(self.rows.schema(), columns)?;
        self.next_id = ids.iter().max().map_or(0, |m| m + 1);
        self.ids = ids;
        Ok(())
    }

    /// Approximate bytes held, for progress.
    pub(super) fn memory_bytes(&self) -> u64 {
        let keys: usize = self.keys.iter().flatten().map(|k| k.len()).sum();
        (self.rows.get_array_memory_size() + keys + self.len() * 40) as u64
    }
}

/// Keeps the items of `items` whose `keep` is true.
fn retain<T>(items: &mut Vec<T>, keep: &[bool]) {
    let mut flags = keep.iter();
    items.retain(|_| *flags.next().expect("one flag per item"));
}
