use super::*;

/// Attempt `attempt` of task tx-0 over input offsets `from`..`to`, setting `key` to `value` (`None`:
/// removing it); its watermark is `to`.
fn batch(
    attempt: &str,
    (from, to): (Option<i64>, i64),
    key: &str,
    value: Option<&str>,
) -> ChangelogBatch {
    let mut change = TableChanges {
        table: "aggregate".into(),
        ..TableChanges::default()
    };
    match value {
        Some(v) => change.upserts.push((key.into(), v.into())),
        None => change.removals.push(key.into()),
    }
    ChangelogBatch {
        task: ("tx".into(), 0),
        attempt: attempt.into(),
        from,
        to,
        watermark: Some(to),
        changes: vec![change],
    }
}

/// The batches as the broker would return them, one after the other.
fn log(batches: &[ChangelogBatch]) -> Vec<StoredRecord> {
    let mut records = Vec::new();
    for batch in batches {
        for (key, value, headers) in batch.records().unwrap() {
            records.push(StoredRecord {
                offset: records.len() as i64,
                key,
                value,
                headers: headers
                    .into_iter()
                    .map(|(k, v)| (k.to_string(), v.into_bytes()))
                    .collect(),
            });
        }
    }
    records
}

fn entries(restored: &Restored) -> Vec<(String, String)> {
    restored.tables["aggregate"]
        .iter()
        .map(|(k, v)| {
            let text = |b: &[u8]| String::from_utf8(b.to_vec()).unwrap();
            (text(k), text(v))
        })
        .collect()
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn committed_attempts_are_replayed_in_order() {
    let records = log(&[
        batch("a", (None, 10), "w1", Some("1")),
        batch("b", (Some(10), 20), "w1", Some("2")),
        batch("c", (Some(20), 30), "w2", Some("1")),
    ]);
    let restored = replay(&records, "tx", Some(30)).unwrap();
    assert_eq!(entries(&restored), pairs(&[("w1", "2"), ("w2", "1")]));
    assert_eq!(restored.watermark, Some(30));
    assert_eq!((restored.records, restored.skipped), (6, 0));
    // As of an earlier commit, the later attempts do not count.
    let restored = replay(&records, "tx", Some(10)).unwrap();
    assert_eq!(entries(&restored), pairs(&[("w1", "1")]));
    assert_eq!(restored.skipped, 4);
}

#[test]
fn attempts_that_never_committed_are_skipped() {
    let records = log(&[
        batch("a", (None, 10), "w1", Some("1")),
        // An instance killed mid-batch: its transaction never committed.
        batch("killed", (Some(10), 20), "w1", Some("99")),
        // Its successor starts where the last commit stopped, and reads the same records again.
        batch("b", (Some(10), 20), "w2", Some("1")),
        batch("c", (Some(20), 30), "w2", None),
        // Open when the partition moved: past the committed offset.
        batch("open", (Some(30), 40), "w1", None),
    ]);
    let restored = replay(&records, "tx", Some(30)).unwrap();
    assert_eq!(entries(&restored), pairs(&[("w1", "1")]));
    assert_eq!(restored.watermark, Some(30));
    assert_eq!(restored.skipped, 4);
}

#[test]
fn a_first_batch_made_again_counts_once() {
    let records = log(&[
        batch("killed", (None, 10), "w1", Some("9")),
        batch("a", (None, 12), "w2", Some("1")),
    ]);
    let restored = replay(&records, "tx", Some(12)).unwrap();
    assert_eq!(entries(&restored), pairs(&[("w2", "1")]));
}

#[test]
fn nothing_committed_restores_nothing() {
    let records = log(&[batch("a", (None, 10), "w1", Some("1"))]);
    let restored = replay(&records, "tx", None).unwrap();
    assert!(restored.tables.is_empty());
    assert_eq!((restored.records, restored.skipped), (0, 2));
}

#[test]
fn other_topics_tasks_are_left_out() {
    let mut other = batch("o", (None, 10), "w9", Some("9"));
    other.task = ("payments".into(), 0);
    let records = log(&[other, batch("a", (None, 10), "w1", Some("1"))]);
    let restored = replay(&records, "tx", Some(10)).unwrap();
    assert_eq!(entries(&restored), pairs(&[("w1", "1")]));
}

#[test]
fn a_compacted_log_is_replayed_whole() {
    // Compaction removed the attempt ending at 10 (its keys were written again later): the chain back
    // from 30 misses a link, so every record left counts, in log order.
    let records = log(&[
        batch("b", (Some(10), 20), "w1", Some("2")),
        batch("c", (Some(20), 30), "w2", Some("1")),
    ]);
    let restored = replay(&records, "tx", Some(30)).unwrap();
    assert_eq!(entries(&restored), pairs(&[("w1", "2"), ("w2", "1")]));
}

#[test]
fn records_weir_did_not_write_are_refused() {
    let records = vec![StoredRecord {
        offset: 7,
        key: b"k".to_vec(),
        value: None,
        headers: vec![(TOPIC.into(), b"tx".to_vec())],
    }];
    let error = replay(&records, "tx", Some(10)).unwrap_err().to_string();
    assert!(error.contains("offset 7"), "{error}");
}

/// A local copy as of input offset `position` holding `w1 = 1`.
fn copy(position: i64) -> (Restored, i64) {
    let mut base = Restored::default();
    base.apply(b"aggregate\0w1", Some(b"1")).unwrap();
    (base, position)
}

#[test]
fn a_local_copy_is_brought_to_the_committed_offset_by_the_attempts_after_it() {
    // The records read after the copy: another owner's attempts from 10 on, one killed and made again.
    let records = log(&[
        batch("killed", (Some(10), 20), "w1", Some("99")),
        batch("b", (Some(10), 20), "w2", Some("1")),
        batch("c", (Some(20), 30), "w1", Some("3")),
    ]);
    let restored = replay_onto(&records, "tx", 30, copy(10)).unwrap().unwrap();
    assert_eq!(entries(&restored), pairs(&[("w1", "3"), ("w2", "1")]));
    assert_eq!(restored.watermark, Some(30));
    assert_eq!((restored.records, restored.skipped), (4, 2));
    // Committed where the copy stands: nothing to apply.
    let restored = replay_onto(&[], "tx", 10, copy(10)).unwrap().unwrap();
    assert_eq!(entries(&restored), pairs(&[("w1", "1")]));
}

#[test]
fn a_local_copy_off_the_committed_chain_is_not_used() {
    let records = log(&[
        batch("b", (Some(12), 20), "w2", Some("1")),
        batch("c", (Some(20), 30), "w1", Some("3")),
    ]);
    // The chain back from 30 passes 20 and 12, never 10 (the copy's batch never committed).
    assert!(replay_onto(&records, "tx", 30, copy(10)).unwrap().is_none());
    // Nor a copy the records do not reach back to (a link missing).
    assert!(replay_onto(&records[2..], "tx", 30, copy(12))
        .unwrap()
        .is_none());
    // A copy ahead of the committed offset.
    assert!(replay_onto(&records, "tx", 20, copy(30)).unwrap().is_none());
}

#[test]
fn an_attempt_s_span_is_read_back_from_its_records() {
    let records = batch("b", (Some(10), 20), "w2", Some("1"))
        .records()
        .unwrap();
    assert_eq!(attempt_span(&records), Some((Some(10), 20)));
    let first = batch("a", (None, 10), "w2", Some("1")).records().unwrap();
    assert_eq!(attempt_span(&first), Some((None, 10)));
    assert_eq!(attempt_span(&[]), None);
}
