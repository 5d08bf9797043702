//! The aggregation trigger by trigger: what each output mode emits, windows, late rows, the aggregates.

use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, Int64Type};
use arrow_array::{ArrayRef, Int64Array, RecordBatch, StringArray};

use super::*;
use crate::state::StateStore;
use crate::window::WindowSpec;

fn batch(rows: &[(&str, i64, i64)]) -> RecordBatch {
    RecordBatch::try_from_iter([
        (
            "user",
            Arc::new(StringArray::from(
                rows.iter().map(|r| r.0).collect::<Vec<_>>(),
            )) as ArrayRef,
        ),
        (
            "ts",
            Arc::new(Int64Array::from(
                rows.iter().map(|r| r.1).collect::<Vec<_>>(),
            )) as ArrayRef,
        ),
        (
            "amount",
            Arc::new(Int64Array::from(
                rows.iter().map(|r| r.2).collect::<Vec<_>>(),
            )) as ArrayRef,
        ),
    ])
    .unwrap()
}

fn count() -> AggregateExpr {
    AggregateExpr::new(Function::Count, None)
}

fn aggregator(
    window: Option<WindowKind>,
    mode: OutputMode,
    aggregates: Vec<AggregateExpr>,
) -> Aggregator {
    let table = StateStore::temporary().unwrap().table("t").unwrap();
    aggregator_on(table, window, mode, aggregates)
}

/// An aggregator over `table`, e.g. one another aggregator wrote (what a restart from a checkpoint sees).
fn aggregator_on(
    table: crate::state::StateTable,
    window: Option<WindowKind>,
    mode: OutputMode,
    aggregates: Vec<AggregateExpr>,
) -> Aggregator {
    let spec = AggregateSpec {
        group_by: vec!["user".into()],
        window: window.map(|kind| WindowBy {
            kind,
            column: "ts".into(),
        }),
        aggregates,
        output_mode: mode,
        input_partitioned_by: Vec::new(),
    };
    Aggregator::new(spec, &batch(&[]).schema(), true, table).unwrap()
}

/// The emitted rows as (user, window_start or -1, count) triples, sorted.
fn rows(out: &RecordBatch) -> Vec<(String, i64, i64)> {
    let users = out.column_by_name("user").unwrap().as_string::<i32>();
    let counts = out
        .column_by_name("count")
        .unwrap()
        .as_primitive::<Int64Type>();
    let starts = out
        .column_by_name("window_start")
        .map(|c| c.as_primitive::<Int64Type>().clone());
    let mut rows: Vec<_> = (0..out.num_rows())
        .map(|i| {
            (
                users.value(i).to_string(),
                starts.as_ref().map_or(-1, |s| s.value(i)),
                counts.value(i),
            )
        })
        .collect();
    rows.sort();
    rows
}

fn r(user: &str, start: i64, count: i64) -> (String, i64, i64) {
    (user.to_string(), start, count)
}

#[test]
fn append_emits_a_window_once_when_the_watermark_passes_its_end() {
    let mut agg = aggregator(
        Some(WindowKind::Fixed(WindowSpec::tumbling(10))),
        OutputMode::Append,
        vec![count()],
    );
    agg.update(&batch(&[("a", 1, 0), ("a", 5, 0), ("b", 12, 0)]), None)
        .unwrap();
    let (out, state) = agg.finish_batch(Some(5)).unwrap();
    assert!(rows(&out).is_empty());
    assert_eq!((state.num_rows_total, state.num_rows_updated), (2, 2));

    agg.update(&batch(&[("a", 9, 0)]), Some(5)).unwrap();
    let (out, state) = agg.finish_batch(Some(10)).unwrap();
    assert_eq!(rows(&out), [r("a", 0, 3)]);
    assert_eq!((state.num_rows_removed, state.num_rows_total), (1, 1));

    let (out, _) = agg.finish_batch(Some(25)).unwrap();
    assert_eq!(rows(&out), [r("b", 10, 1)]);
    let (out, state) = agg.finish_batch(Some(100)).unwrap();
    assert!(rows(&out).is_empty(), "a window is emitted once");
    assert_eq!(state.num_rows_total, 0);
}

#[test]
fn rows_at_or_below_the_watermark_are_dropped_and_counted() {
    let mut agg = aggregator(
        Some(WindowKind::Fixed(WindowSpec::tumbling(10))),
        OutputMode::Append,
        vec![count()],
    );
    agg.update(
        &batch(&[("a", 20, 0), ("a", 15, 0), ("a", 16, 0)]),
        Some(15),
    )
    .unwrap();
    let (out, state) = agg.finish_batch(Some(30)).unwrap();
    assert_eq!(rows(&out), [r("a", 10, 1), r("a", 20, 1)]);
    assert_eq!(state.num_rows_dropped_by_watermark, 1);
}

#[test]
fn update_emits_the_rows_each_batch_changed() {
    let mut agg = aggregator(None, OutputMode::Update, vec![count()]);
    agg.update(&batch(&[("a", 0, 0), ("b", 0, 0)]), None)
        .unwrap();
    assert_eq!(
        rows(&agg.finish_batch(None).unwrap().0),
        [r("a", -1, 1), r("b", -1, 1)]
    );
    agg.update(&batch(&[("a", 0, 0)]), None).unwrap();
    assert_eq!(rows(&agg.finish_batch(None).unwrap().0), [r("a", -1, 2)]);
    assert!(rows(&agg.finish_batch(None).unwrap().0).is_empty());
}

#[test]
fn update_with_windows_evicts_closed_windows() {
    let mut agg = aggregator(
        Some(WindowKind::Fixed(WindowSpec::tumbling(10))),
        OutputMode::Update,
        vec![count()],
    );
    agg.update(&batch(&[("a", 1, 0)]), None).unwrap();
    assert_eq!(rows(&agg.finish_batch(Some(0)).unwrap().0), [r("a", 0, 1)]);
    let (out, state) = agg.finish_batch(Some(10)).unwrap();
    assert!(rows(&out).is_empty());
    assert_eq!((state.num_rows_removed, state.num_rows_total), (1, 0));
}

#[test]
fn complete_emits_everything_every_batch_and_keeps_it() {
    let mut agg = aggregator(
        Some(WindowKind::Fixed(WindowSpec::tumbling(10))),
        OutputMode::Complete,
        vec![count()],
    );
    agg.update(&batch(&[("a", 1, 0), ("b", 11, 0)]), None)
        .unwrap();
    assert_eq!(
        rows(&agg.finish_batch(Some(50)).unwrap().0),
        [r("a", 0, 1), r("b", 10, 1)]
    );
    agg.update(&batch(&[("b", 12, 0)]), None).unwrap();
    let (out, state) = agg.finish_batch(Some(100)).unwrap();
    assert_eq!(rows(&out), [r("a", 0, 1), r("b", 10, 2)]);
    assert_eq!(state.num_rows_total, 2);
}

#[test]
fn sliding_windows_count_a_row_in_every_window_holding_it() {
    let sliding = WindowSpec {
        size_ms: 10,
        slide_ms: 5,
        offset_ms: 0,
    };
    let mut agg = aggregator(
        Some(WindowKind::Fixed(sliding)),
        OutputMode::Append,
        vec![count()],
    );
    agg.update(&batch(&[("a", 7, 0), ("a", 12, 0)]), None)
        .unwrap();
    let (out, _) = agg.finish_batch(Some(100)).unwrap();
    // 7 is in [0,10) and [5,15); 12 is in [5,15) and [10,20)
    assert_eq!(rows(&out), [r("a", 0, 1), r("a", 5, 2), r("a", 10, 1)]);
}

#[test]
fn every_aggregate_function() {
    let expr = |function, alias: &str| {
        AggregateExpr::new(function, Some("amount"))
            .with_alias(alias)
            .with_max_items(2)
    };
    let mut agg = aggregator(
        None,
        OutputMode::Complete,
        vec![
            count(),
            expr(Function::Sum, "sum"),
            expr(Function::Min, "min"),
            expr(Function::Max, "max"),
            expr(Function::Avg, "avg"),
            expr(Function::CountDistinct, "distinct"),
            expr(Function::First, "first"),
            expr(Function::Last, "last"),
            expr(Function::CollectList, "list"),
        ],
    );
    agg.update(&batch(&[("a", 0, 5), ("a", 0, 3)]), None)
        .unwrap();
    agg.update(&batch(&[("a", 0, 5), ("a", 0, 7)]), None)
        .unwrap();
    let (out, _) = agg.finish_batch(None).unwrap();
    let int = |name: &str| {
        out.column_by_name(name)
            .unwrap()
            .as_primitive::<Int64Type>()
            .value(0)
    };
    assert_eq!(int("count"), 4);
    assert_eq!(int("sum"), 20);
    assert_eq!((int("min"), int("max")), (3, 7));
    assert_eq!(
        out.column_by_name("avg")
            .unwrap()
            .as_primitive::<Float64Type>()
            .value(0),
        5.0
    );
    assert_eq!(int("distinct"), 3);
    assert_eq!((int("first"), int("last")), (5, 7));
    let list = out
        .column_by_name("list")
        .unwrap()
        .as_list::<i32>()
        .value(0);
    assert_eq!(
        list.as_primitive::<Int64Type>().values(),
        &[5, 3],
        "bounded by max_items"
    );
}

#[test]
fn append_without_a_watermark_is_refused() {
    let spec = AggregateSpec {
        group_by: vec!["user".into()],
        window: Some(WindowBy {
            column: "ts".into(),
            kind: WindowKind::Fixed(WindowSpec::tumbling(10)),
        }),
        aggregates: vec![count()],
        output_mode: OutputMode::Append,
        input_partitioned_by: Vec::new(),
    };
    let table = StateStore::temporary().unwrap().table("t").unwrap();
    let error = Aggregator::new(spec, &batch(&[]).schema(), false, table)
        .err()
        .unwrap();
    assert!(
        error
            .to_string()
            .contains("needs an event-time window and a [watermark]"),
        "{error}"
    );
}

#[test]
fn state_is_written_to_sled_and_evicted_from_it() {
    let store = StateStore::temporary().unwrap();
    let spec = AggregateSpec {
        group_by: vec!["user".into()],
        window: Some(WindowBy {
            column: "ts".into(),
            kind: WindowKind::Fixed(WindowSpec::tumbling(10)),
        }),
        aggregates: vec![count()],
        output_mode: OutputMode::Append,
        input_partitioned_by: Vec::new(),
    };
    let mut agg =
        Aggregator::new(spec, &batch(&[]).schema(), true, store.table("t").unwrap()).unwrap();
    agg.update(&batch(&[("a", 1, 0), ("b", 11, 0)]), None)
        .unwrap();
    agg.finish_batch(Some(0)).unwrap();
    assert_eq!(store.table("t").unwrap().len(), 2);
    agg.finish_batch(Some(10)).unwrap();
    assert_eq!(store.table("t").unwrap().len(), 1);
}

#[test]
fn session_windows_grow_merge_and_close() {
    let session = WindowKind::Session { gap_ms: 10 };
    let mut agg = aggregator(Some(session), OutputMode::Append, vec![count()]);
    // a: events at 0 and 5 form [0, 15); 40 opens [40, 50). b: one event.
    agg.update(
        &batch(&[("a", 0, 0), ("a", 40, 0), ("a", 5, 0), ("b", 3, 0)]),
        None,
    )
    .unwrap();
    assert!(rows(&agg.finish_batch(Some(0)).unwrap().0).is_empty());
    // a: 22 opens [22, 32); 14 bridges [0,15) and [22,32) (14 + 10 = 24 > 22): one session [0, 32)
    agg.update(&batch(&[("a", 22, 0)]), Some(0)).unwrap();
    agg.finish_batch(Some(0)).unwrap();
    agg.update(&batch(&[("a", 14, 0)]), Some(0)).unwrap();
    let (out, state) = agg.finish_batch(Some(13)).unwrap();
    assert_eq!(
        rows(&out),
        [r("b", 3, 1)],
        "b's session [3, 13) closed at watermark 13"
    );
    assert_eq!(
        state.num_rows_total, 2,
        "a's merged session and a's [40, 50)"
    );
    let (out, _) = agg.finish_batch(Some(100)).unwrap();
    assert_eq!(rows(&out), [r("a", 0, 4), r("a", 40, 1)]);
    let ends = out
        .column_by_name("window_end")
        .unwrap()
        .as_primitive::<Int64Type>();
    let mut ends: Vec<i64> = ends.values().to_vec();
    ends.sort();
    assert_eq!(ends, [32, 50]);
}

#[test]
fn merged_sessions_combine_every_aggregate() {
    let expr = |function, alias: &str| {
        AggregateExpr::new(function, Some("amount"))
            .with_alias(alias)
            .with_max_items(10)
    };
    let mut agg = aggregator(
        Some(WindowKind::Session { gap_ms: 10 }),
        OutputMode::Complete,
        vec![
            count(),
            expr(Function::Sum, "sum"),
            expr(Function::Min, "min"),
            expr(Function::First, "first"),
            expr(Function::Last, "last"),
        ],
    );
    // [0, 10) and [15, 25), then 8 opens [8, 18), which overlaps both: one session [0, 25)
    agg.update(&batch(&[("a", 0, 7), ("a", 15, 2)]), None)
        .unwrap();
    assert_eq!(agg.finish_batch(None).unwrap().0.num_rows(), 2);
    agg.update(&batch(&[("a", 8, 5)]), None).unwrap();
    let (out, _) = agg.finish_batch(None).unwrap();
    assert_eq!(out.num_rows(), 1);
    let int = |name: &str| {
        out.column_by_name(name)
            .unwrap()
            .as_primitive::<Int64Type>()
            .value(0)
    };
    assert_eq!((int("count"), int("sum"), int("min")), (3, 14, 2));
    // first and last are in arrival order, as Spark's: merging keeps the earliest session's first.
    assert_eq!((int("first"), int("last")), (7, 5));
}

#[test]
fn a_restored_aggregator_continues_where_the_stored_state_left_off() {
    // Fixed windows and sessions: a first aggregator folds a batch and writes its state; a second one on
    // the same table restores it, folds the next batch and must emit what one aggregator would have.
    for window in [
        WindowKind::Fixed(WindowSpec::tumbling(10)),
        WindowKind::Session { gap_ms: 10 },
    ] {
        let table = StateStore::temporary().unwrap().table("t").unwrap();
        let first_batch = batch(&[("a", 1, 1), ("a", 3, 1), ("b", 4, 1)]);
        let second_batch = batch(&[("a", 8, 1), ("b", 25, 1)]);

        let mut uninterrupted = aggregator(Some(window), OutputMode::Append, vec![count()]);
        uninterrupted.update(&first_batch, None).unwrap();
        uninterrupted.finish_batch(Some(0)).unwrap();
        uninterrupted.update(&second_batch, Some(0)).unwrap();
        let expected = rows(&uninterrupted.finish_batch(Some(100)).unwrap().0);

        let mut before = aggregator_on(
            table.clone(),
            Some(window),
            OutputMode::Append,
            vec![count()],
        );
        before.update(&first_batch, None).unwrap();
        assert!(before.finish_batch(Some(0)).unwrap().0.num_rows() == 0);
        drop(before);
        let mut after = aggregator_on(table, Some(window), OutputMode::Append, vec![count()]);
        assert_eq!(
            after.restore().unwrap(),
            2,
            "{window:?}: groups a and b restored"
        );
        after.update(&second_batch, Some(0)).unwrap();
        let got = rows(&after.finish_batch(Some(100)).unwrap().0);
        assert_eq!(got, expected, "{window:?}");
        assert!(
            got.iter()
                .any(|(user, _, count)| user == "a" && *count == 3),
            "{got:?}"
        );
    }
}
