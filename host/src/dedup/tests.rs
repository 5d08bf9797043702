//! Deduplication batch by batch: which rows pass, when keys are forgotten, and the state restored.

use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::Int64Type;
use arrow_array::{Int64Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema, SchemaRef};

use super::operator::DedupCounts;
use super::{DedupSpec, Deduplicator};
use crate::state::StateStore;

fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("id", DataType::Utf8, true),
        Field::new("ts", DataType::Int64, true),
        Field::new("n", DataType::Int64, false),
    ]))
}

/// Rows of (id, ts); `n` numbers them from `first`.
fn rows(first: i64, events: &[(Option<&str>, Option<i64>)]) -> RecordBatch {
    let ids: StringArray = events.iter().map(|(id, _)| *id).collect();
    let times: Int64Array = events.iter().map(|(_, ts)| *ts).collect();
    let numbers = Int64Array::from_iter_values(first..first + events.len() as i64);
    RecordBatch::try_new(
        schema(),
        vec![Arc::new(ids), Arc::new(times), Arc::new(numbers)],
    )
    .unwrap()
}

fn numbers(batch: &RecordBatch) -> Vec<i64> {
    batch
        .column(2)
        .as_primitive::<Int64Type>()
        .values()
        .to_vec()
}

fn operator(spec: &DedupSpec, store: &StateStore) -> Deduplicator {
    let table = store.table("deduplicate").unwrap();
    Deduplicator::new(spec, &schema(), ("ts", 100), table).unwrap()
}

#[test]
fn repeats_are_dropped_within_and_across_batches_until_the_watermark_passes() {
    let store = StateStore::in_memory();
    let mut dedup = operator(&DedupSpec::new(["id"]), &store);
    let first = rows(
        0,
        &[
            (Some("a"), Some(10)),
            (Some("b"), Some(20)),
            (Some("a"), Some(15)),
        ],
    );
    let (kept, counts) = dedup.process(&first, None).unwrap();
    assert_eq!(numbers(&kept), [0, 1]);
    assert_eq!(
        counts,
        DedupCounts {
            kept: 2,
            duplicates: 1,
            late_rows: vec![]
        }
    );
    let progress = dedup.finish_batch(Some(10), &counts).unwrap();
    // `a` expired at its event time 10; `b` (20) is still remembered.
    assert_eq!(progress.num_rows_total, 1);
    assert_eq!(progress.num_dropped_duplicate_rows, Some(1));
    let second = rows(
        3,
        &[
            (Some("a"), Some(30)),
            (Some("b"), Some(31)),
            (Some("c"), Some(5)),
        ],
    );
    let (kept, counts) = dedup.process(&second, Some(10)).unwrap();
    assert_eq!(numbers(&kept), [3]);
    assert_eq!(
        counts,
        DedupCounts {
            kept: 1,
            duplicates: 1,
            late_rows: vec![2]
        }
    );
}

#[test]
fn within_the_watermark_a_key_is_kept_for_the_delay_past_its_event_time() {
    let store = StateStore::in_memory();
    let mut dedup = operator(&DedupSpec::new(["id"]).within_watermark(), &store);
    let (kept, _) = dedup
        .process(&rows(0, &[(Some("a"), Some(10))]), None)
        .unwrap();
    assert_eq!(numbers(&kept), [0]);
    dedup
        .finish_batch(Some(50), &DedupCounts::default())
        .unwrap();
    // Expires at 10 + 100: a repeat at 60 is still a duplicate, even with another event time.
    let (kept, counts) = dedup
        .process(&rows(1, &[(Some("a"), Some(60))]), Some(50))
        .unwrap();
    assert!(numbers(&kept).is_empty());
    assert_eq!(counts.duplicates, 1);
    dedup
        .finish_batch(Some(110), &DedupCounts::default())
        .unwrap();
    let (kept, _) = dedup
        .process(&rows(2, &[(Some("a"), Some(120))]), Some(110))
        .unwrap();
    assert_eq!(numbers(&kept), [2]);
}

#[test]
fn null_keys_are_one_key_and_rows_without_an_event_time_are_late() {
    let store = StateStore::in_memory();
    let mut dedup = operator(&DedupSpec::new(["id"]), &store);
    let batch = rows(0, &[(None, Some(1)), (None, Some(2)), (Some("a"), None)]);
    let (kept, counts) = dedup.process(&batch, None).unwrap();
    assert_eq!(numbers(&kept), [0]);
    assert_eq!(
        counts,
        DedupCounts {
            kept: 1,
            duplicates: 1,
            late_rows: vec![2]
        }
    );
}

#[test]
fn keys_of_several_columns_and_the_state_survive_a_restart() {
    let store = StateStore::temporary().unwrap();
    let spec = DedupSpec::new(["id", "ts"]);
    let mut dedup = operator(&spec, &store);
    let batch = rows(
        0,
        &[
            (Some("a"), Some(10)),
            (Some("a"), Some(11)),
            (Some("a"), Some(10)),
        ],
    );
    let (kept, _) = dedup.process(&batch, None).unwrap();
    assert_eq!(numbers(&kept), [0, 1]);
    let progress = dedup
        .finish_batch(Some(10), &DedupCounts::default())
        .unwrap();
    assert_eq!((progress.num_rows_total, progress.num_rows_removed), (1, 1));
    assert_eq!(store.table("deduplicate").unwrap().len(), 1);

    let mut restarted = operator(&spec, &store);
    // The batch's entry holds both keys, the forgotten one too: the watermark, not the table, decides.
    assert_eq!(restarted.restore().unwrap(), 2);
    let again = rows(3, &[(Some("a"), Some(11)), (Some("a"), Some(12))]);
    let (kept, counts) = restarted.process(&again, Some(10)).unwrap();
    assert_eq!(numbers(&kept), [4]);
    assert_eq!(counts.duplicates, 1);
}

#[test]
fn planning_names_a_missing_column() {
    let table = StateStore::in_memory().table("deduplicate").unwrap();
    let missing = Deduplicator::new(
        &DedupSpec::new(["event"]),
        &schema(),
        ("ts", 0),
        table.clone(),
    );
    let error = format!("{:#}", missing.err().unwrap());
    assert!(
        error.contains("`deduplicate.columns`: no column `event`"),
        "{error}"
    );
    let no_time = Deduplicator::new(&DedupSpec::new(["id"]), &schema(), ("time", 0), table);
    let error = format!("{:#}", no_time.err().unwrap());
    assert!(
        error.contains("`watermark.column`: no column `time`"),
        "{error}"
    );
}

#[test]
fn a_key_forgotten_before_a_restart_stays_forgotten_after_it() {
    let store = StateStore::temporary().unwrap();
    let spec = DedupSpec::new(["id"]);
    let mut dedup = operator(&spec, &store);
    let batch = rows(0, &[(Some("a"), Some(10)), (Some("b"), Some(50))]);
    let (_, counts) = dedup.process(&batch, None).unwrap();
    // `a` is forgotten; its state entry stays until `b` is forgotten too.
    dedup.finish_batch(Some(20), &counts).unwrap();
    assert_eq!(store.table("deduplicate").unwrap().len(), 1);

    let mut restarted = operator(&spec, &store);
    restarted.restore().unwrap();
    let again = rows(2, &[(Some("a"), Some(30)), (Some("b"), Some(40))]);
    let (kept, counts) = restarted.process(&again, Some(20)).unwrap();
    assert_eq!(numbers(&kept), [2]);
    assert_eq!(counts.duplicates, 1);
    // Once `b` is forgotten, its batch's entry goes, and the new batch's entry stays for `a` at 30.
    restarted.finish_batch(Some(50), &counts).unwrap();
    assert_eq!(store.table("deduplicate").unwrap().len(), 1);
}
