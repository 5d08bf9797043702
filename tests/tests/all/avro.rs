//! `format = "avro"`: Confluent-framed Avro from two producers with two versions of the schema (the second
//! adds a field with a default), read as the latest version through the fraud UDF, exact; records that are
//! not Avro, name an unknown schema id or are cut short are dead-lettered with the reason.

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

/// `tx` (Avro, dead letters to `tx-dead-letter`) through the fraud UDF to `results` as JSON.
fn avro_pipeline(registry_url: &str) -> String {
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
format = "json"
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
    let toml = avro_pipeline(&registry.url);
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
