//! Which repartition partition a row goes to: a hash of its group keys, so that every row of a group,
//! whichever input partition and instance it came from, is aggregated by the same downstream task.
//!
//! The keys are row-encoded (arrow-row: equal values, equal bytes, whatever the column types) and hashed
//! with 64-bit FNV-1a, written here because every instance of a pipeline must agree on it, across builds
//! and platforms, which a std hasher does not promise.

use anyhow::Context;
use arrow_array::{RecordBatch, UInt32Array};
use arrow_row::{RowConverter, SortField};
use arrow_select::take::take_record_batch;

/// Splits `rows` into `partitions` batches (possibly empty) by the hash of the columns `keys`; each keeps
/// its rows' order.
pub(crate) fn split_by_keys(
    rows: &RecordBatch,
    keys: &[usize],
    partitions: usize,
) -> anyhow::Result<Vec<RecordBatch>> {
    let columns: Vec<_> = keys.iter().map(|k| rows.column(*k).clone()).collect();
    let fields = columns
        .iter()
        .map(|c| SortField::new(c.data_type().clone()))
        .collect();
    let converter = RowConverter::new(fields).context("encoding the group keys")?;
    let encoded = converter
        .convert_columns(&columns)
        .context("encoding the group keys")?;
    let mut indices: Vec<Vec<u32>> = vec![Vec::new(); partitions];
    for (row, key) in encoded.iter().enumerate() {
        indices[partition_of(key.as_ref(), partitions)].push(row as u32);
    }
    indices
        .into_iter()
        .map(|rows_of| {
            take_record_batch(rows, &UInt32Array::from(rows_of)).context("splitting rows by key")
        })
        .collect()
}

/// The partition of a row-encoded key.
fn partition_of(key: &[u8], partitions: usize) -> usize {
    (fnv1a(key) % partitions as u64) as usize
}

/// 64-bit FNV-1a.
fn fnv1a(bytes: &[u8]) -> u64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    bytes
        .iter()
        .fold(OFFSET, |hash, b| (hash ^ u64::from(*b)).wrapping_mul(PRIME))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::Arc;

    use arrow_array::{Int64Array, StringArray};
    use arrow_schema::{DataType, Field, Schema};

    use super::*;

    #[test]
    fn fnv1a_is_the_published_function() {
        // Test vectors of the FNV reference (http://www.isthe.com/chongo/tech/comp/fnv/).
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a(b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn every_row_of_a_key_goes_to_one_partition_in_order() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Utf8, false),
            Field::new("n", DataType::Int64, false),
        ]));
        let ids: Vec<String> = (0..1000).map(|i| format!("user-{}", i % 37)).collect();
        let rows = RecordBatch::try_new(
            schema,
            vec![
                Arc::new(StringArray::from(ids.clone())),
                Arc::new(Int64Array::from_iter_values(0..1000)),
            ],
        )
        .unwrap();
        let parts = split_by_keys(&rows, &[0], 4).unwrap();
        assert_eq!(parts.len(), 4);
        assert_eq!(parts.iter().map(RecordBatch::num_rows).sum::<usize>(), 1000);
        let mut home: BTreeMap<String, usize> = BTreeMap::new();
        for (p, part) in parts.iter().enumerate() {
            assert!(part.num_rows() > 0, "37 keys fill 4 partitions");
            let id = part
                .column(0)
                .as_any()
                .downcast_ref::<StringArray>()
                .unwrap();
            let n = part
                .column(1)
                .as_any()
                .downcast_ref::<Int64Array>()
                .unwrap();
            for row in 0..part.num_rows() {
                assert_eq!(*home.entry(id.value(row).to_string()).or_insert(p), p);
            }
            assert!(n.values().windows(2).all(|w| w[0] < w[1]), "order kept");
        }
        assert_eq!(home.len(), 37);
    }
}
