//! Deduplication end to end: the reference workload sent at least once (every seventh transaction twice,
//! the repeat a few dozen records later) through `examples/fraud-window/pipeline-dedup.toml` gives the
//! alerts of the workload without repeats, computed offline; the same across crashes (exactly-once), and
//! with one partition's records arriving only after the others' were processed (per-partition watermark).

use std::path::{Path, PathBuf};

use weir::internal::demo::produce_to_partitions;
use weir::internal::workload::{closing_records, fraud_window_alerts, transactions, PARTITIONS};
use weir_tests::kafka_log::read_log;
use weir_tests::*;

use super::checkpoint::{crash_kill_and_finish, finish, EXACTLY_ONCE_CRASH_POINTS};

/// Every seventh transaction is sent again, this many transactions later.
const REPEAT_EVERY: u64 = 7;
const REPEAT_AFTER: usize = 40;

/// The first `n` transactions with their repeats, as (partition, key, value), partitioned by user; only
/// those of `partitions`.
fn with_repeats(n: u64, partitions: &[i32]) -> Vec<(i32, String, String)> {
    let mut records = Vec::new();
    let mut repeats: Vec<(usize, (i32, String, String))> = Vec::new();
    for (i, tx) in transactions(n).enumerate() {
        let user: i32 = tx.name["name".len()..].parse().unwrap();
        let record = (user % PARTITIONS, tx.key(), tx.value());
        if (i as u64).is_multiple_of(REPEAT_EVERY) {
            repeats.push((i + REPEAT_AFTER, record.clone()));
        }
        records.push(record);
        while repeats.first().is_some_and(|(at, _)| *at == i) {
            records.push(repeats.remove(0).1);
        }
    }
    records.extend(repeats.into_iter().map(|(_, record)| record));
    records.retain(|(partition, _, _)| partitions.contains(partition));
    records
}

fn produce_closing(broker: &Broker, n: u64) {
    let closing = closing_records(n)
        .into_iter()
        .map(|(partition, tx)| (partition, tx.key(), tx.value()));
    produce_to_partitions(&broker.bootstrap, "tx", closing).unwrap();
}

/// The example with `edits`, its checkpoint in `dir`, written to `dir/pipeline.toml`.
fn dedup_pipeline(dir: &Path, edits: &[(&str, String)]) -> PathBuf {
    let mut edits = edits.to_vec();
    edits.push((
        "name = \"fraud-window-dedup\"",
        format!(
            "name = \"fraud-window-dedup\"\ncheckpointLocation = \"{}\"",
            dir.join("checkpoint").display()
        ),
    ));
    let file = dir.join("pipeline.toml");
    std::fs::write(
        &file,
        example_variant("fraud-window/pipeline-dedup.toml", &edits),
    )
    .unwrap();
    file
}

fn expected_alerts(n: u64) -> Vec<String> {
    let mut expected: Vec<String> = fraud_window_alerts(n).iter().map(|a| a.json()).collect();
    expected.sort();
    expected
}

/// The alerts committed to `alerts` (from the raw log: tansu hands aborted records to readers), sorted.
fn committed_alerts(broker: &Broker) -> Vec<String> {
    let mut got = read_log(&broker.bootstrap, "alerts", 0)
        .unwrap()
        .committed_values();
    got.sort();
    got
}

#[tokio::test(flavor = "multi_thread")]
async fn repeats_are_counted_once_and_without_deduplication_they_are_not() {
    let broker = tansu();
    let n = 100_000;
    broker.create_topic("tx", PARTITIONS);
    broker.create_topic("alerts", 1);
    broker.create_topic("alerts-undeduplicated", 1);
    let records = with_repeats(n, &[0, 1, 2, 3]);
    assert_eq!(records.len() as u64, n + n.div_ceil(REPEAT_EVERY));
    produce_to_partitions(&broker.bootstrap, "tx", records).unwrap();
    produce_closing(&broker, n);

    let mut spec = example_spec("fraud-window/pipeline-dedup.toml", &broker.bootstrap);
    spec.source.kafka_mut().unwrap().max_offsets_per_trigger = Some(7_000);
    let summary = run_pipeline(spec.clone()).await.unwrap();
    assert_eq!(summary.input_rows, n + n.div_ceil(REPEAT_EVERY) + 4);
    let mut got = values(&read_topic(&broker.bootstrap, "alerts").unwrap());
    got.sort();
    let expected = expected_alerts(n);
    assert_eq!(got.len(), expected.len());
    assert!(got == expected, "the alerts differ from the offline ones");

    // The repeats do change the alerts when nothing drops them, or this test would prove nothing.
    spec.deduplicate = None;
    spec.sink.options.topic = Some("alerts-undeduplicated".into());
    run_pipeline(spec).await.unwrap();
    let mut undeduplicated =
        values(&read_topic(&broker.bootstrap, "alerts-undeduplicated").unwrap());
    undeduplicated.sort();
    assert!(undeduplicated != expected);
}

#[test]
fn deduplication_is_exactly_once_across_crashes_and_kills() {
    let broker = tansu();
    let n = 100_000;
    broker.create_topic("tx", PARTITIONS);
    broker.create_topic("alerts", 1);
    produce_to_partitions(&broker.bootstrap, "tx", with_repeats(n, &[0, 1, 2, 3])).unwrap();
    produce_closing(&broker, n);
    let dir = scratch_dir();
    let file = dedup_pipeline(
        &dir,
        &[
            (
                "endingOffsets = \"latest\"",
                format!(
                    "endingOffsets = \"latest\"\nmaxOffsetsPerTrigger = {}",
                    n / 200
                ),
            ),
            (
                "\n[sink]\n",
                "\n[sink]\ndelivery = \"exactly-once\"\n".into(),
            ),
        ],
    );
    let killed = crash_kill_and_finish(
        &file,
        &broker.bootstrap,
        EXACTLY_ONCE_CRASH_POINTS,
        (5, n + 1),
    );
    assert_eq!(killed, 5, "the kills should land while the pipeline runs");
    let got = committed_alerts(&broker);
    let expected = expected_alerts(n);
    assert_eq!(got.len(), expected.len());
    assert!(
        got == expected,
        "committed alerts differ from the offline ones"
    );
}

#[test]
fn a_partition_whose_records_come_last_is_not_late_and_its_repeats_still_drop() {
    let broker = tansu();
    let n = 60_000;
    broker.create_topic("tx", PARTITIONS);
    broker.create_topic("alerts", 1);
    let dir = scratch_dir();
    let file = dedup_pipeline(
        &dir,
        &[(
            "\n[sink]\n",
            "\n[sink]\ndelivery = \"exactly-once\"\n".into(),
        )],
    );
    // First run: partitions 0-2 only. Partition 3 has sent nothing, so it holds the watermark back.
    produce_to_partitions(&broker.bootstrap, "tx", with_repeats(n, &[0, 1, 2])).unwrap();
    finish(&file, &broker.bootstrap);
    assert!(
        committed_alerts(&broker).is_empty(),
        "no window can close yet"
    );
    // Second run: partition 3's records, from the start of event time, and the closing records.
    produce_to_partitions(&broker.bootstrap, "tx", with_repeats(n, &[3])).unwrap();
    produce_closing(&broker, n);
    finish(&file, &broker.bootstrap);
    let got = committed_alerts(&broker);
    let expected = expected_alerts(n);
    assert_eq!(got.len(), expected.len());
    assert!(
        got == expected,
        "the lagging partition's rows were lost or counted twice"
    );
}

/// One record per batch: a repeat still remembered is dropped as a duplicate; a record behind the
/// watermark is dropped as late and written to the late-data topic.
#[tokio::test(flavor = "multi_thread")]
async fn repeats_are_dropped_and_late_rows_go_to_the_late_data_topic() {
    let broker = mock_cluster();
    broker.create_topic("events", 1);
    broker.create_topic("out", 1);
    broker.create_topic("late", 1);
    let records: Vec<String> = [1_000, 20_000, 5_000, 20_000, 21_000]
        .iter()
        .map(|ts| format!(r#"{{"user":"a","ts":{ts}}}"#))
        .collect();
    produce_to(&broker.bootstrap, "events", 0, &records, &[]);
    let text = r#"
[source]
kafka.bootstrap.servers = "${BROKER}"
subscribe = "events"
startingOffsets = "earliest"
endingOffsets = "latest"
maxOffsetsPerTrigger = 1
[deserializer]
format = "json"
schema = "user STRING, ts BIGINT"
[watermark]
column = "ts"
delay = "10s"
late_data_topic = "late"
[deduplicate]
columns = ["user", "ts"]
[sink]
kafka.bootstrap.servers = "${BROKER}"
topic = "out"
format = "json"
"#;
    let spec = pipeline_spec(&scratch_dir(), &broker.bootstrap, text).unwrap();
    let summary = run_pipeline(spec).await.unwrap();
    assert_eq!(summary.batches, 5);
    let row = |ts: i64| format!(r#"{{"user":"a","ts":{ts}}}"#);
    assert_eq!(
        values(&read_topic(&broker.bootstrap, "out").unwrap()),
        [row(1_000), row(20_000), row(21_000)]
    );
    assert_eq!(
        values(&read_topic(&broker.bootstrap, "late").unwrap()),
        [row(5_000)]
    );
}
