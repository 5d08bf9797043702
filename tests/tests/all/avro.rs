//! `format = "avro"`: Confluent-framed Avro from two producers with two versions of the schema (the second
//! adds a field with a default), read as the latest version through the fraud UDF, exact; records that are
//! not Avro, name an unknown schema id or are cut short are dead-lettered with the reason; the same from
//! records framed by confluent-kafka's own AvroSerializer; and results written as Avro, their schema
//! registered, read back by another Avro implementation.

use std::time::Duration;

use apache_avro::Schema;
use rdkafka::producer::BaseRecord;
use weir::internal::workload::{transactions, Transaction};
use weir::internal::CheckedProducer;
use weir_tests::avro::{framed, transaction_schema};
use weir_tests::registry::TestRegistry;
use weir_tests::*;

fn produce_bytes(broker: &Broker, topic: &str, values: impl IntoIterator<Item = Vec<u8>>) {
    let mut producer = CheckedProducer::new(&broker.client_config(), "the Avro records").unwrap();
    for value in values {
        producer
            .send(BaseRecord::<(), Vec<u8>>::to(topic).payload(&value))
            .unwrap();
    }
    producer.finish(Duration::from_secs(60)).unwrap();
}

/// `tx` (Avro, dead letters to `tx-dead-letter`) through the fraud UDF to `results` in `sink_format`.
fn avro_pipeline(registry_url: &str, sink_format: &str) -> String {
    let registry = if sink_format == "avro" {
        format!("schema_registry = \"{registry_url}\"")
    } else {
        String::new()
    };
    format!(
        r#"
[source]
kafka.bootstrap.servers = "${{BROKER}}"
subscribe = "tx"
startingOffsets = "earliest"
endingOffsets = "latest"

[deserializer]
format = "avro"
schema_registry = "{}"
on_error = "dead-letter"
dead_letter_topic = "tx-dead-letter"

[[transform]]
udf = "{}"

[sink]
kafka.bootstrap.servers = "${{BROKER}}"
topic = "results"
format = "{sink_format}"
{registry}
"#,
        registry_url,
        udf_module("fraud_flagged").display()
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn avro_from_two_schema_versions_is_exact_and_bad_records_are_dead_lettered() {
    udf_module("fraud_flagged");
    let (v1, v2) = (transaction_schema(1), transaction_schema(2));
    let registry = TestRegistry::start(&[("tx-value", vec![v1.clone(), v2.clone()])]);
    let (id1, id2) = (registry.ids[0], registry.ids[1]);
    let (schema1, schema2) = (
        Schema::parse_str(&v1).unwrap(),
        Schema::parse_str(&v2).unwrap(),
    );
    let broker = tansu();
    broker.create_topic("tx", 2);
    broker.create_topic("results", 1);
    broker.create_topic("tx-dead-letter", 1);

    // Producer 1 writes the first half with version 1, producer 2 the rest with version 2.
    let n = 10_000;
    let all: Vec<Transaction> = transactions(n).collect();
    let (old, new) = all.split_at(n as usize / 2);
    produce_bytes(
        &broker,
        "tx",
        old.iter().map(|tx| framed(&schema1, id1, tx, None)),
    );
    produce_bytes(
        &broker,
        "tx",
        new.iter().map(|tx| framed(&schema2, id2, tx, Some("app"))),
    );
    let mut cut_short = framed(&schema2, id2, &all[0], Some("app"));
    cut_short.truncate(cut_short.len() - 3);
    let bad = vec![
        b"{\"name\": \"json, not avro\"}".to_vec(),
        framed(&schema1, 999, &all[1], None),
        cut_short,
    ];
    produce_bytes(&broker, "tx", bad);

    let dir = scratch_dir();
    let toml = avro_pipeline(&registry.url, "json");
    let spec = pipeline_spec(&dir, &broker.bootstrap, &toml).unwrap();
    let summary = run_pipeline(spec).await.unwrap();
    assert_eq!(summary.input_rows, n + 3);
    assert_eq!(summary.errors.dead_lettered, 3);

    // Read as version 2: the old records get the default channel.
    assert_results_with_channels(&broker, old, new);

    assert_dead_letter_reasons(&broker);
}

/// The three bad records are dead-lettered, each with its own reason.
fn assert_dead_letter_reasons(broker: &Broker) {
    let mut reasons: Vec<String> = read_topic(&broker.bootstrap, "tx-dead-letter")
        .unwrap()
        .iter()
        .map(|r| r.header("weir.error").unwrap())
        .collect();
    reasons.sort();
    assert_eq!(reasons.len(), 3, "{reasons:?}");
    assert!(
        reasons
            .iter()
            .any(|r| r.contains("not Avro in the Confluent wire format")),
        "{reasons:?}"
    );
    assert!(
        reasons
            .iter()
            .any(|r| r.contains("writer schema id 999") && r.contains("404")),
        "{reasons:?}"
    );
    assert!(
        reasons
            .iter()
            .any(|r| r.contains("shorter than its schema")),
        "{reasons:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn avro_results_register_their_schema_and_read_back_exactly() {
    let v1 = transaction_schema(1);
    let registry = TestRegistry::start(&[("tx-value", vec![v1.clone()])]);
    let schema = Schema::parse_str(&v1).unwrap();
    let broker = tansu();
    broker.create_topic("tx", 2);
    broker.create_topic("results", 1);
    broker.create_topic("tx-dead-letter", 1);
    let n = 5_000;
    let all: Vec<Transaction> = transactions(n).collect();
    produce_bytes(
        &broker,
        "tx",
        all.iter()
            .map(|tx| framed(&schema, registry.ids[0], tx, None)),
    );

    let dir = scratch_dir();
    let toml = avro_pipeline(&registry.url, "avro");
    let summary = run_pipeline(pipeline_spec(&dir, &broker.bootstrap, &toml).unwrap())
        .await
        .unwrap();
    assert_eq!(summary.input_rows, n);

    // The sink registered its rows' schema under `results-value`; every record names it.
    let (id, written) = registry
        .latest("results-value")
        .expect("the sink registered its schema");
    let written = Schema::parse_str(&written).unwrap();
    let mut got: Vec<serde_json::Value> = read_topic(&broker.bootstrap, "results")
        .unwrap()
        .iter()
        .map(|record| {
            let value = record.value.as_deref().unwrap();
            assert_eq!(value[0], 0, "the magic byte");
            assert_eq!(u32::from_be_bytes(value[1..5].try_into().unwrap()), id);
            let datum = apache_avro::from_avro_datum(&written, &mut &value[5..], None).unwrap();
            serde_json::Value::try_from(datum).unwrap()
        })
        .collect();
    let mut expected: Vec<serde_json::Value> = all
        .iter()
        .filter_map(Transaction::fraud_result)
        .map(|json| serde_json::from_str(&json).unwrap())
        .collect();
    let by_id = |v: &serde_json::Value| {
        v["id"].as_str().unwrap_or_default().to_string() + &v["ts"].to_string()
    };
    got.sort_by_key(by_id);
    expected.sort_by_key(by_id);
    assert!(!expected.is_empty());
    assert_eq!(got, expected);
}

/// The Python of the virtualenv `.ci/install-confluent-kafka` makes: `$WEIR_CONFLUENT_PYTHON`, or its place
/// under `~/.cache/weir/`.
fn confluent_python() -> std::path::PathBuf {
    if let Ok(path) = std::env::var("WEIR_CONFLUENT_PYTHON") {
        return path.into();
    }
    let home = std::env::var("HOME").unwrap_or_else(|_| "/root".into());
    let path = std::path::PathBuf::from(home).join(".cache/weir/confluent-kafka-2.16.1/bin/python");
    assert!(
        path.exists(),
        "confluent-kafka is not installed at {}: run `bash .ci/install-confluent-kafka`",
        path.display()
    );
    path
}

/// `transactions` serialized by confluent-kafka's AvroSerializer (`tests/scripts/confluent_avro.py`): the
/// schemas it registered, by id, and the values.
fn confluent_serialized(transactions: &[Transaction]) -> (Vec<(u32, String)>, Vec<Vec<u8>>) {
    use std::io::Write;
    let mut child = std::process::Command::new(confluent_python())
        .arg(workspace().join("tests/scripts/confluent_avro.py"))
        .args([transaction_schema(1), transaction_schema(2)])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let lines: String = transactions.iter().map(|tx| tx.value() + "\n").collect();
    let writing = std::thread::spawn(move || stdin.write_all(lines.as_bytes()));
    let output = child.wait_with_output().unwrap();
    writing.join().unwrap().unwrap();
    assert!(output.status.success(), "confluent_avro.py failed");
    let text = String::from_utf8(output.stdout).unwrap();
    let mut lines = text.lines();
    let header: serde_json::Value = serde_json::from_str(lines.next().unwrap()).unwrap();
    let mut schemas: Vec<(u32, String)> = header["schemas"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(id, schema)| (id.parse().unwrap(), schema.as_str().unwrap().to_string()))
        .collect();
    schemas.sort();
    let hex = |line: &str| -> Vec<u8> {
        (0..line.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&line[i..i + 2], 16).unwrap())
            .collect()
    };
    (schemas, lines.map(hex).collect())
}

#[tokio::test(flavor = "multi_thread")]
async fn avro_written_by_confluents_serializer_is_read_exactly() {
    udf_module("fraud_flagged");
    let n = 4_000;
    let all: Vec<Transaction> = transactions(n).collect();
    let (schemas, values) = confluent_serialized(&all);
    // Serve Confluent's schemas under the ids its serializer wrote into the records.
    let versions: Vec<String> = schemas.iter().map(|(_, s)| s.clone()).collect();
    let registry = TestRegistry::start(&[("tx-value", versions)]);
    let ids: Vec<u32> = schemas.iter().map(|(id, _)| *id).collect();
    assert_eq!(
        registry.ids, ids,
        "the test registry numbers the schemas as Confluent's did"
    );
    assert_eq!(
        values[0][..5],
        [0, 0, 0, 0, ids[0] as u8],
        "Confluent's framing"
    );

    let broker = tansu();
    broker.create_topic("tx", 2);
    broker.create_topic("results", 1);
    broker.create_topic("tx-dead-letter", 1);
    produce_bytes(&broker, "tx", values);
    let dir = scratch_dir();
    let toml = avro_pipeline(&registry.url, "json");
    let summary = run_pipeline(pipeline_spec(&dir, &broker.bootstrap, &toml).unwrap())
        .await
        .unwrap();
    assert_eq!(summary.input_rows, n);
    assert_eq!(summary.errors.dead_lettered, 0);

    let (old, new) = all.split_at(n as usize / 2);
    assert_results_with_channels(&broker, old, new);
}

/// `results` holds exactly the fraud results of `old` (channel "web", version 2's default) and of `new`
/// (channel "app"), as JSON.
fn assert_results_with_channels(broker: &Broker, old: &[Transaction], new: &[Transaction]) {
    let with_channel = |tx: &Transaction, channel: &str| {
        tx.fraud_result()
            .map(|json| format!("{},\"channel\":\"{channel}\"}}", json.trim_end_matches('}')))
    };
    let mut expected: Vec<String> = old
        .iter()
        .filter_map(|tx| with_channel(tx, "web"))
        .chain(new.iter().filter_map(|tx| with_channel(tx, "app")))
        .collect();
    expected.sort();
    let mut results = values(&read_topic(&broker.bootstrap, "results").unwrap());
    results.sort();
    assert!(!expected.is_empty());
    assert_eq!(results.len(), expected.len());
    assert_eq!(results, expected);
}
