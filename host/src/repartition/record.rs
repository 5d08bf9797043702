//! One upstream write as a repartition record's value: which upstream partition wrote it, the input
//! offsets of its attempt, the upstream's watermark, and its rows as Arrow IPC (none for a marker).
//!
//! The value is self-describing so that the records need no headers (the source reads headers only with
//! `includeHeaders`): `WRP1`, the length of a JSON description (4 bytes, big-endian), the description, and
//! the rows' IPC stream, if any.

use anyhow::Context;
use arrow_array::RecordBatch;
use weir_guest::ipc::{batch_from_ipc, batch_to_ipc};

use super::chain::Write;
use crate::kafka::TopicPartition;

/// The first bytes of every repartition record: the format and its version.
const MAGIC: &[u8; 4] = b"WRP1";

/// What a record says of itself.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct Description {
    topic: String,
    partition: i32,
    from: i64,
    to: i64,
    watermark: Option<i64>,
}

/// The value of upstream `upstream`'s write of `rows` (`None`: a marker) for an attempt over its input
/// `from..to`, with its watermark.
pub(crate) fn encode(
    upstream: &TopicPartition,
    (from, to): (i64, i64),
    watermark: Option<i64>,
    rows: Option<&RecordBatch>,
) -> anyhow::Result<Vec<u8>> {
    let description = serde_json::to_vec(&Description {
        topic: upstream.0.clone(),
        partition: upstream.1,
        from,
        to,
        watermark,
    })?;
    let mut value = Vec::with_capacity(8 + description.len());
    value.extend_from_slice(MAGIC);
    value.extend_from_slice(&(description.len() as u32).to_be_bytes());
    value.extend_from_slice(&description);
    if let Some(rows) = rows {
        value.extend(batch_to_ipc(rows).context("encoding rows for the repartition topic")?);
    }
    Ok(value)
}

/// The upstream partition and the write in `value`, read at `offset` of a repartition partition.
pub(crate) fn decode(
    value: &[u8],
    offset: i64,
) -> anyhow::Result<(TopicPartition, Write<RecordBatch>)> {
    let not_weir = || format!("the record at offset {offset} was not written by Weir");
    anyhow::ensure!(
        value.starts_with(MAGIC) && value.len() >= 8,
        "{}",
        not_weir()
    );
    let length = u32::from_be_bytes(value[4..8].try_into().expect("4 bytes")) as usize;
    let end = 8usize.checked_add(length).filter(|end| *end <= value.len());
    let end = end.with_context(not_weir)?;
    let description: Description = serde_json::from_slice(&value[8..end]).with_context(not_weir)?;
    let rows = match &value[end..] {
        [] => None,
        ipc => Some(
            batch_from_ipc(ipc)
                .with_context(|| format!("reading the rows of the record at offset {offset}"))?,
        ),
    };
    let write = Write {
        offset,
        from: description.from,
        to: description.to,
        watermark: description.watermark,
        rows,
    };
    Ok(((description.topic, description.partition), write))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow_array::{Int64Array, StringArray};
    use arrow_schema::{DataType, Field, Schema};

    use super::*;

    #[test]
    fn a_write_and_a_marker_read_back_as_written() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Utf8, false),
            Field::new("ts", DataType::Int64, false),
        ]));
        let rows = RecordBatch::try_new(
            schema,
            vec![
                Arc::new(StringArray::from(vec!["a", "b"])),
                Arc::new(Int64Array::from(vec![1, 2])),
            ],
        )
        .unwrap();
        let upstream = ("tx".to_string(), 3);
        let value = encode(&upstream, (10, 20), Some(15), Some(&rows)).unwrap();
        let (from, write) = decode(&value, 7).unwrap();
        assert_eq!(from, upstream);
        assert_eq!((write.offset, write.from, write.to), (7, 10, 20));
        assert_eq!(write.watermark, Some(15));
        assert_eq!(write.rows, Some(rows));

        let marker = encode(&upstream, (20, 20), None, None).unwrap();
        let (_, write) = decode(&marker, 8).unwrap();
        assert_eq!((write.from, write.to, write.rows), (20, 20, None));
    }

    #[test]
    fn a_record_not_written_by_weir_is_named_by_its_offset() {
        for value in [
            &b"{\"id\":1}"[..],
            b"WRP1\0\0\0\xff{}",
            b"WRP1\0\0\0\x02{}junk",
        ] {
            let error = format!("{:#}", decode(value, 42).unwrap_err());
            assert!(error.contains("offset 42"), "{error}");
        }
    }
}
