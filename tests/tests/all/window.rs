//! Stateful pipelines end to end: the reference fraud-window workload with exact alerts over 4
//! partitions, and the seeds' running count in update mode.

use std::collections::BTreeMap;

use weir::internal::workload::{self, fraud_window_alerts};
use weir_tests::*;

/// Produces the fraud-window workload: `n` transactions keyed by user, then one closing record per partition.
pub fn produce_workload(broker: &Broker, n: u64) {
    broker.create_topic("tx", workload::PARTITIONS);
    weir::internal::demo::produce_workload(&broker.bootstrap, "tx", n).unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn fraud_window_alerts_are_exact_over_four_partitions() {
    udf_module("filter");
    check_fraud_window_alerts("fraud-window/pipeline.toml").await;
}

/// Runs `example` (a variant of the fraud-window pipeline) over 200,000 transactions on tansu in small
/// batches and checks its alerts, and their keys, against the offline computation.
pub(super) async fn check_fraud_window_alerts(example: &str) {
    let broker = tansu();
    let n = 200_000;
    produce_workload(&broker, n);
    broker.create_topic("alerts", 1);
    // Small batches make the partitions advance unevenly, as the reference workload demands.
    let mut spec = example_spec(example, &broker.bootstrap);
    spec.source.kafka_mut().unwrap().max_offsets_per_trigger = Some(7_000);
    let summary = run_pipeline(spec).await.unwrap();
    assert_eq!(summary.input_rows, n + 4);

    let alerts = read_topic(&broker.bootstrap, "alerts").unwrap();
    let mut got = values(&alerts);
    got.sort();
    let mut expected: Vec<String> = fraud_window_alerts(n).iter().map(|a| a.json()).collect();
    expected.sort();
    assert!(!expected.is_empty());
    assert_eq!(
        got.len(),
        expected.len(),
        "alerts: got {}, expected {}",
        got.len(),
        expected.len()
    );
    assert!(
        got == expected,
        "the alerts differ from the offline computation"
    );
    for alert in &alerts {
        let value = String::from_utf8(alert.value.clone().unwrap()).unwrap();
        let key = String::from_utf8(alert.key.clone().unwrap()).unwrap();
        assert!(
            value.starts_with(&format!("{{\"id\":\"{key}\"")),
            "key {key} for {value}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn running_counts_in_update_mode_end_at_each_users_total() {
    let broker = mock_cluster();
    broker.create_topic("transactions", 4);
    broker.create_topic("alerts", 1);
    broker.create_topic("transactions-dead-letter", 1);
    let n = 50_000;
    produce(
        &broker.bootstrap,
        "transactions",
        workload::transactions(n).map(|t| (t.key(), t.value())),
    )
    .unwrap();
    let mut spec = example_spec("fraud/alerts.toml", &broker.bootstrap);
    spec.source.kafka_mut().unwrap().max_offsets_per_trigger = Some(10_000);
    let summary = run_pipeline(spec).await.unwrap();
    assert!(summary.batches >= 5);

    let mut totals: BTreeMap<String, i64> = BTreeMap::new();
    for tx in workload::transactions(n).filter(|t| t.flag == 1) {
        *totals.entry(tx.key()).or_default() += 1;
    }
    let mut last: BTreeMap<String, i64> = BTreeMap::new();
    for record in read_topic(&broker.bootstrap, "alerts").unwrap() {
        let value = String::from_utf8(record.value.unwrap()).unwrap();
        let (id, count) = value
            .strip_prefix("{\"id\":\"")
            .and_then(|rest| rest.split_once("\",\"count\":"))
            .map(|(id, count)| {
                (
                    id.to_string(),
                    count.trim_end_matches('}').parse::<i64>().unwrap(),
                )
            })
            .unwrap_or_else(|| panic!("unexpected alert {value}"));
        assert!(count > 1);
        let previous = last.insert(id, count);
        assert!(previous.is_none_or(|p| p < count), "counts only grow");
    }
    let expected: BTreeMap<String, i64> = totals.into_iter().filter(|(_, c)| *c > 1).collect();
    assert_eq!(last, expected);
}

/// One record per micro-batch, so the watermark moves between records: a record behind it is dropped
/// from the aggregation, counted, and written to the late-data topic.
#[tokio::test(flavor = "multi_thread")]
async fn late_records_go_to_the_late_data_topic() {
    let broker = mock_cluster();
    broker.create_topic("events", 1);
    broker.create_topic("out", 1);
    broker.create_topic("late", 1);
    let records: Vec<String> = [("a", 1_000), ("a", 20_000), ("a", 5_000), ("b", 21_000)]
        .iter()
        .map(|(user, ts)| format!(r#"{{"user":"{user}","ts":{ts}}}"#))
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
delay = "0s"
late_data_topic = "late"
[aggregate]
group_by = ["user"]
window = { column = "ts", size = "10s" }
aggregates = [{ function = "count" }]
output_mode = "append"
[sink]
kafka.bootstrap.servers = "${BROKER}"
topic = "out"
format = "json"
"#;
    let spec = pipeline_spec(&scratch_dir(), &broker.bootstrap, text).unwrap();
    let summary = run_pipeline(spec).await.unwrap();
    assert_eq!(summary.batches, 4);
    assert_eq!(
        values(&read_topic(&broker.bootstrap, "out").unwrap()),
        [r#"{"user":"a","window_start":0,"window_end":10000,"count":1}"#]
    );
    assert_eq!(
        values(&read_topic(&broker.bootstrap, "late").unwrap()),
        [r#"{"user":"a","ts":5000}"#]
    );
}

/// The Nest example: nested JSON exploded by a WebAssembly deserializer, person sightings counted per
/// device and hour in complete mode. Every batch writes the whole current result, so the last batch's
/// rows must equal the offline counts exactly.
#[tokio::test(flavor = "multi_thread")]
async fn nest_camera_sightings_per_device_and_hour_in_complete_mode() {
    udf_module("nest_cameras");
    let broker = mock_cluster();
    broker.create_topic("nest-devices", 2);
    broker.create_topic("camera-sightings", 1);
    let n = 20_000;
    let records = workload::nest_records(n)
        .enumerate()
        .map(|(i, (_, json))| (format!("home{}", i % 50), json));
    produce(&broker.bootstrap, "nest-devices", records).unwrap();
    let mut spec = example_spec("nest-cameras/pipeline.toml", &broker.bootstrap);
    spec.source.kafka_mut().unwrap().max_offsets_per_trigger = Some(6_000);
    let summary = run_pipeline(spec).await.unwrap();
    assert!(summary.batches >= 4, "{} batches", summary.batches);

    let expected = workload::nest_hourly_person_counts(n);
    let output = read_topic(&broker.bootstrap, "camera-sightings").unwrap();
    assert!(
        output.len() > expected.len(),
        "complete mode rewrites the result every batch"
    );
    let last = &output[output.len() - expected.len()..];
    let mut got = std::collections::BTreeMap::new();
    for record in last {
        let row: serde_json::Value =
            serde_json::from_slice(record.value.as_deref().unwrap()).unwrap();
        let start = row["window_start"].as_str().unwrap().replace("+00:00", "Z");
        let start = humantime::parse_rfc3339(&start)
            .unwrap()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap();
        let device = row["device_id"].as_str().unwrap().to_string();
        assert_eq!(record.key.as_deref(), Some(device.as_bytes()));
        got.insert(
            (device, start.as_millis() as i64),
            row["sightings"].as_i64().unwrap(),
        );
    }
    assert_eq!(got, expected);
}

/// A running query over two partitions where only one receives data: the silent partition holds the
/// watermark back until `idle_timeout`, then stops counting, and the window closes without new records.
#[tokio::test(flavor = "multi_thread")]
async fn an_idle_partition_stops_holding_the_watermark_back() {
    let broker = tansu();
    broker.create_topic("events", 2);
    broker.create_topic("out", 1);
    let records: Vec<String> = [1_000, 2_000, 30_000]
        .iter()
        .map(|ts| format!(r#"{{"user":"a","ts":{ts}}}"#))
        .collect();
    produce_to(&broker.bootstrap, "events", 0, &records, &[]);
    let text = r#"
[source]
kafka.bootstrap.servers = "${BROKER}"
subscribe = "events"
startingOffsets = "earliest"
[deserializer]
format = "json"
schema = "user STRING, ts BIGINT"
[watermark]
column = "ts"
delay = "1s"
idle_timeout = "2s"
[aggregate]
group_by = ["user"]
window = { column = "ts", size = "10s" }
aggregates = [{ function = "count" }]
output_mode = "append"
[sink]
kafka.bootstrap.servers = "${BROKER}"
topic = "out"
format = "json"
[trigger]
processingTime = "200ms"
"#;
    let pipeline =
        weir::Pipeline::new(pipeline_spec(&scratch_dir(), &broker.bootstrap, text).unwrap())
            .unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let started = std::time::Instant::now();
    let run = tokio::spawn(pipeline.run(async {
        let _ = stopped.await;
    }));
    let mut out = Vec::new();
    for _ in 0..200 {
        out = values(&read_topic(&broker.bootstrap, "out").unwrap());
        if !out.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let waited = started.elapsed();
    stop.send(()).unwrap();
    run.await.unwrap().unwrap();
    assert_eq!(
        out,
        [r#"{"user":"a","window_start":0,"window_end":10000,"count":2}"#]
    );
    assert!(
        waited >= std::time::Duration::from_secs(2),
        "the empty partition held the window for its idle timeout"
    );
}
