use arrow_array::cast::AsArray;
use arrow_array::{Int64Array, StringArray};

use super::*;
use crate::schema::parse_ddl_schema;
use crate::state::StateStore;

const MINUTE: i64 = 60_000;

fn spec(how: StreamJoinType) -> StreamJoinSpec {
    StreamJoinSpec {
        topic: "clicks".into(),
        deserializer: crate::decode::DeserializerSpec {
            format: crate::decode::DecodeFormat::String,
            on_error: crate::udf::OnError::Fail,
        },
        event_time: "clickTime".into(),
        delay_ms: 0,
        on: "clickAdId = adId AND clickTime BETWEEN impressionTime AND impressionTime + interval 1 hour"
            .into(),
        how,
    }
}

fn plan(how: StreamJoinType, store: &StateStore) -> StreamJoin {
    let left = parse_ddl_schema("adId STRING, impressionTime TIMESTAMP").unwrap();
    let right = parse_ddl_schema("clickAdId STRING, clickTime TIMESTAMP").unwrap();
    let table = store.table("stream-join").unwrap();
    StreamJoin::plan(&spec(how), (&left, "impressionTime"), &right, table).unwrap()
}

fn rows(names: (&str, &str), rows: &[(&str, i64)]) -> RecordBatch {
    let ids = StringArray::from(rows.iter().map(|r| Some(r.0)).collect::<Vec<_>>());
    let times = Int64Array::from(rows.iter().map(|r| r.1).collect::<Vec<_>>());
    let timestamp = parse_ddl_schema("t TIMESTAMP")
        .unwrap()
        .field(0)
        .data_type()
        .clone();
    let millis = DataType::Timestamp(arrow_schema::TimeUnit::Millisecond, None);
    let times = arrow_cast::cast(&arrow_cast::cast(&times, &millis).unwrap(), &timestamp).unwrap();
    RecordBatch::try_from_iter([(names.0, Arc::new(ids) as ArrayRef), (names.1, times)]).unwrap()
}

fn impressions(items: &[(&str, i64)]) -> RecordBatch {
    rows(("adId", "impressionTime"), items)
}

fn clicks(items: &[(&str, i64)]) -> RecordBatch {
    rows(("clickAdId", "clickTime"), items)
}

/// Each output row as `adId@time/clickAdId@time`, NULL as `-`.
fn show(batch: &RecordBatch) -> Vec<String> {
    let text = |c: usize, i: usize| {
        let column = batch.column(c);
        if column.is_null(i) {
            return "-".to_string();
        }
        match column.data_type() {
            DataType::Utf8 => column.as_string::<i32>().value(i).to_string(),
            _ => {
                let millis = DataType::Timestamp(arrow_schema::TimeUnit::Millisecond, None);
                let ms = arrow_cast::cast(
                    &arrow_cast::cast(column, &millis).unwrap(),
                    &DataType::Int64,
                )
                .unwrap();
                (ms.as_primitive::<arrow_array::types::Int64Type>().value(i) / MINUTE).to_string()
            }
        }
    };
    let mut shown: Vec<String> = (0..batch.num_rows())
        .map(|i| {
            format!(
                "{}@{}/{}@{}",
                text(0, i),
                text(1, i),
                text(2, i),
                text(3, i)
            )
        })
        .collect();
    shown.sort();
    shown
}

fn none() -> RecordBatch {
    impressions(&[])
}

#[test]
fn pairs_are_found_whichever_stream_brings_its_row_first_and_only_in_range() {
    let store = StateStore::in_memory();
    let mut join = plan(StreamJoinType::Inner, &store);
    let first = join
        .process(
            &impressions(&[("a", 0), ("b", 0)]),
            &clicks(&[("b", 10 * MINUTE)]),
            (None, Some(0)),
        )
        .unwrap();
    assert_eq!(show(&first.rows), ["b@0/b@10"]);
    // A click for `a` in the next batch meets the held impression; one too late for it does not.
    let second = join
        .process(
            &none(),
            &clicks(&[("a", 30 * MINUTE), ("a", 61 * MINUTE)]),
            (Some(0), Some(0)),
        )
        .unwrap();
    assert_eq!(show(&second.rows), ["a@0/a@30"]);
    // An impression arriving after its click meets it too.
    let third = join
        .process(
            &impressions(&[("a", 50 * MINUTE)]),
            &clicks(&[]),
            (Some(0), Some(0)),
        )
        .unwrap();
    assert_eq!(show(&third.rows), ["a@50/a@61"]);
    assert_eq!(third.progress.num_rows_total, 6);
}

#[test]
fn the_watermark_evicts_what_can_no_longer_match_and_drops_late_rows() {
    let store = StateStore::in_memory();
    let mut join = plan(StreamJoinType::Inner, &store);
    join.process(
        &impressions(&[("a", 0)]),
        &clicks(&[("x", 0)]),
        (None, Some(0)),
    )
    .unwrap();
    // At 30 minutes the click (no impression after it can match: impressions come at >= 30) goes; the
    // impression stays until clicks up to 60 minutes are ruled out.
    let batch = join
        .process(&none(), &clicks(&[]), (Some(0), Some(30 * MINUTE)))
        .unwrap();
    assert_eq!(
        (
            batch.progress.num_rows_removed,
            batch.progress.num_rows_total
        ),
        (1, 1)
    );
    let batch = join
        .process(
            &impressions(&[("b", 10 * MINUTE)]),
            &clicks(&[("a", 45 * MINUTE)]),
            (Some(30 * MINUTE), Some(61 * MINUTE)),
        )
        .unwrap();
    assert_eq!(show(&batch.rows), ["a@0/a@45"]);
    assert_eq!(
        batch.progress.num_rows_dropped_by_watermark, 1,
        "b at 10 min is late"
    );
    assert_eq!(
        batch.progress.num_rows_total, 0,
        "the impression's hour is over: {:?}",
        batch.progress
    );
}

#[test]
fn outer_joins_emit_unmatched_rows_with_nulls_when_they_leave_the_state() {
    let store = StateStore::in_memory();
    let mut left = plan(StreamJoinType::LeftOuter, &store);
    let batch = left
        .process(
            &impressions(&[("a", 0), ("b", 0)]),
            &clicks(&[("a", MINUTE)]),
            (None, Some(0)),
        )
        .unwrap();
    assert_eq!(show(&batch.rows), ["a@0/a@1"]);
    let batch = left
        .process(&none(), &clicks(&[]), (Some(0), Some(2 * 60 * MINUTE)))
        .unwrap();
    assert_eq!(
        show(&batch.rows),
        ["b@0/-@-"],
        "a matched, so only b is emitted unmatched"
    );

    let mut right = plan(StreamJoinType::RightOuter, &store);
    right
        .process(
            &impressions(&[("a", 0)]),
            &clicks(&[("a", MINUTE), ("z", MINUTE)]),
            (None, Some(0)),
        )
        .unwrap();
    let batch = right
        .process(&none(), &clicks(&[]), (Some(0), Some(2 * MINUTE)))
        .unwrap();
    assert_eq!(show(&batch.rows), ["-@-/z@1"]);
}

#[test]
fn held_rows_and_their_matches_are_restored_from_the_checkpoint() {
    let store = StateStore::temporary().unwrap();
    let mut join = plan(StreamJoinType::LeftOuter, &store);
    join.process(
        &impressions(&[("a", 0), ("b", 0)]),
        &clicks(&[("a", MINUTE)]),
        (None, Some(0)),
    )
    .unwrap();
    drop(join);

    let mut restarted = plan(StreamJoinType::LeftOuter, &store);
    let batch = restarted
        .process(&none(), &clicks(&[("b", 5 * MINUTE)]), (Some(0), Some(0)))
        .unwrap();
    assert_eq!(
        show(&batch.rows),
        ["b@0/b@5"],
        "the held impression of b is back"
    );
    let batch = restarted
        .process(&none(), &clicks(&[]), (Some(0), Some(3 * 60 * MINUTE)))
        .unwrap();
    assert!(
        batch.rows.num_rows() == 0,
        "both matched: nothing unmatched to emit {:?}",
        show(&batch.rows)
    );
    drop(restarted);
    assert_eq!(
        plan(StreamJoinType::Inner, &store).left.buffer.len(),
        0,
        "the evictions were written too"
    );
}

#[test]
fn a_column_in_both_streams_or_a_condition_without_bounds_is_refused_at_planning() {
    let store = StateStore::in_memory();
    let left = parse_ddl_schema("adId STRING, impressionTime TIMESTAMP").unwrap();
    let same = parse_ddl_schema("adId STRING, clickTime TIMESTAMP").unwrap();
    let table = || store.table("stream-join").unwrap();
    let plan_with = |right: &SchemaRef, on: &str| {
        let mut spec = spec(StreamJoinType::Inner);
        spec.on = on.into();
        StreamJoin::plan(&spec, (&left, "impressionTime"), right, table())
            .err()
            .unwrap()
            .to_string()
    };
    let error = plan_with(&same, "adId = adId");
    assert!(error.contains("`adId` is in both streams"), "{error}");
    let right = parse_ddl_schema("clickAdId STRING, clickTime TIMESTAMP").unwrap();
    let error = plan_with(&right, "clickAdId = adId AND clickTime >= impressionTime");
    assert!(
        error.contains("`stream_join.on`") && error.contains("bounded on both sides"),
        "{error}"
    );
}
