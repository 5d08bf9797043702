//! `format = "avro"`: Confluent-framed Avro from two producers with two versions of the schema (the second
//! adds a field with a default), read as the latest version through the fraud UDF, exact; records that are
//! not Avro, name an unknown schema id or are cut short are dead-lettered with the reason. And the results
//! written as Avro, their schema registered, read back by another Avro implementation.

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
    let expected_result = |tx: &Transaction, channel: &str| {
        tx.fraud_result()
            .map(|json| format!("{},\"channel\":\"{channel}\"}}", json.trim_end_matches('}')))
    };
    let mut expected: Vec<String> = old
        .iter()
        .filter_map(|tx| expected_result(tx, "web"))
        .chain(new.iter().filter_map(|tx| expected_result(tx, "app")))
        .collect();
    expected.sort();
    let mut results = values(&read_topic(&broker.bootstrap, "results").unwrap());
    results.sort();
    assert!(!expected.is_empty());
    assert_eq!(results.len(), expected.len());
    assert_eq!(results, expected);

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
