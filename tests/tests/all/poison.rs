//! A poison corpus through both deserializers of `examples/fraud`: the WebAssembly `json_transactions` and
//! the built-in `json`, under each documented policy (docs/pipeline-file.md, "The built-in JSON policy").
//! Every record must end as exactly one of: a result row, a dead letter, or a row the fraud transform
//! filters out (flag ≠ 1) — nothing lost, nothing twice — and each record's fate is written out below.
//! With `strict = true` and the WebAssembly deserializer's required columns as `NOT NULL`, the two paths
//! agree record for record.

use std::collections::BTreeSet;
use std::time::Duration;

use rdkafka::config::ClientConfig;
use rdkafka::producer::BaseRecord;
use weir::internal::CheckedProducer;
use weir_tests::*;

/// What becomes of a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fate {
    /// A result row (flag = 1).
    Result,
    /// Decoded, then filtered out by the transform (flag ≠ 1, or null).
    Filtered,
    /// Sent to the dead-letter topic as malformed.
    Dead,
}
use Fate::{Dead as D, Filtered as F, Result as R};

/// A well-formed transaction tagged by `amount`, with the keys of `fields` (a JSON object's members)
/// replacing or adding its own.
fn tx(tag: &str, fields: &str) -> String {
    let mut object: serde_json::Map<String, serde_json::Value> = serde_json::from_str(&format!(
        r#"{{"name":"ann","surname":"lee","amount":"{tag}","delta_t":"3","flag":1,"ts":1700000000000}}"#
    ))
    .unwrap();
    let changes: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(&format!("{{{fields}}}")).unwrap();
    object.extend(changes);
    serde_json::Value::Object(object).to_string()
}

/// The columns of each record's fates, one per deserializer and policy.
const WASM: usize = 0;
const JSON: usize = 1;
const JSON_STRICT_NOT_NULL: usize = 2;
const JSON_STRICT: usize = 3;

/// The corpus: each record with its fate under the WebAssembly deserializer, built-in `json` as is,
/// built-in `json` with `strict = true` and NOT NULL columns, and with `strict = true` alone. A tag in
/// `amount` finds it among the results.
fn corpus() -> Vec<(Option<String>, [Fate; 4])> {
    let raw = |s: &str| Some(s.to_string());
    vec![
        (Some(tx("good", "")), [R, R, R, R]),
        (Some(tx("flag0", r#""flag":0"#)), [F, F, F, F]),
        (Some(tx("flag-string", r#""flag":"1""#)), [D, R, D, D]),
        (Some(tx("flag-fraction", r#""flag":1.0"#)), [D, R, D, D]),
        (Some(tx("flag-huge", r#""flag":3000000000"#)), [D, D, D, D]),
        (Some(tx("flag-bool", r#""flag":true"#)), [D, D, D, D]),
        (Some(tx("flag-null", r#""flag":null"#)), [D, F, D, F]),
        (
            Some(tx("ts-fraction", r#""ts":1700000000000.5"#)),
            [D, R, D, D],
        ),
        (Some(tx("ts-string", r#""ts":"5""#)), [D, R, D, D]),
        (Some(tx("ts-null", r#""ts":null"#)), [R, R, R, R]),
        (
            raw(r#"{"name":"ann","surname":"lee","amount":"ts-missing","delta_t":"3","flag":1}"#),
            [R, R, R, R],
        ),
        (
            raw(r#"{"surname":"lee","amount":"name-missing","delta_t":"3","flag":1}"#),
            [D, R, D, R],
        ),
        (Some(tx("name-null", r#""name":null"#)), [D, R, D, R]),
        (Some(tx("name-number", r#""name":12"#)), [D, D, D, D]),
        (
            Some(tx("extra-key", r#""extra":{"a":[1,2]}"#)),
            [R, R, R, R],
        ),
        // serde's derive refuses a repeated key; arrow-json keeps the last one.
        (
            raw(
                r#"{"name":"ann","name":"bob","surname":"lee","amount":"dup-key","delta_t":"3","flag":1}"#,
            ),
            [D, R, D, D],
        ),
        (
            raw(
                r#"{ "name" : "a\u006En", "surname":"lee", "amount":"spaced", "delta_t":"3", "flag":1 }"#,
            ),
            [R, R, R, R],
        ),
        (raw("{}"), [D, F, D, F]),
        (raw(r#"{"flag":1,"amount":"flag-only"}"#), [D, R, D, R]),
        (raw("{oops"), [D, D, D, D]),
        (raw("[1,2]"), [D, D, D, D]),
        (raw("3"), [D, D, D, D]),
        (raw(""), [D, D, D, D]),
        (None, [D, D, D, D]),
        (Some(tx("amount-number", r#""amount":1.5"#)), [D, D, D, D]),
    ]
}

/// The schema of `examples/fraud/pipeline-native.toml`, and the one that matches the WASM deserializer.
const NATIVE: &str =
    "name STRING, surname STRING, amount STRING, delta_t STRING, flag INT, ts BIGINT";
const STRICT: &str = "name STRING NOT NULL, surname STRING NOT NULL, amount STRING NOT NULL, \
                      delta_t STRING NOT NULL, flag INT NOT NULL, ts BIGINT";

fn produce_corpus(bootstrap: &str, records: &[(Option<String>, [Fate; 4])]) {
    let mut producer = CheckedProducer::new(
        ClientConfig::new().set("bootstrap.servers", bootstrap),
        "the poison corpus",
    )
    .unwrap();
    for (value, _) in records {
        let mut record = BaseRecord::<(), str>::to("transactions").partition(0);
        if let Some(value) = value {
            record = record.payload(value.as_str());
        }
        producer.send(record).unwrap();
    }
    producer.finish(Duration::from_secs(30)).unwrap();
}

/// `examples/<pipeline>` with `edits`, reading and writing the test's broker (`${BROKER}`).
fn variant(pipeline: &str, edits: &[(&str, String)]) -> String {
    let mut edits = edits.to_vec();
    edits.push((
        "${KAFKA_BOOTSTRAP_SERVERS:-127.0.0.1:9092}",
        "${BROKER}".to_string(),
    ));
    example_variant(pipeline, &edits)
}

/// Runs one variant of the fraud pipeline over the corpus and checks every record's fate (column `which`).
async fn check_fates(pipeline: &str, edits: &[(&str, String)], which: usize) {
    let broker = mock_cluster();
    broker.create_topic("transactions", 1);
    broker.create_topic("results", 1);
    broker.create_topic("transactions-dead-letter", 1);
    let records = corpus();
    produce_corpus(&broker.bootstrap, &records);
    let text = variant(pipeline, edits);
    let dir = scratch_dir();
    let spec = pipeline_spec(&dir, &broker.bootstrap, &text).unwrap();
    let summary = run_pipeline(spec).await.unwrap();

    let expect = |fate: Fate| -> BTreeSet<usize> {
        (0..records.len())
            .filter(|i| records[*i].1[which] == fate)
            .collect()
    };
    let dead: BTreeSet<usize> = read_topic(&broker.bootstrap, "transactions-dead-letter")
        .unwrap()
        .iter()
        .map(|r| r.header("weir.source.offset").unwrap().parse().unwrap())
        .collect();
    let tags: Vec<String> = records
        .iter()
        .map(|(value, _)| {
            let parsed = value.as_deref().and_then(|v| serde_json::from_str(v).ok());
            parsed
                .and_then(|v: serde_json::Value| v["amount"].as_str().map(str::to_string))
                .unwrap_or_default()
        })
        .collect();
    let results: BTreeSet<usize> = values(&read_topic(&broker.bootstrap, "results").unwrap())
        .iter()
        .map(|row| {
            let row: serde_json::Value = serde_json::from_str(row).unwrap();
            let tag = row["amount"].as_str().unwrap();
            tags.iter().position(|t| t == tag).unwrap()
        })
        .collect();
    let named = |set: &BTreeSet<usize>| -> Vec<String> {
        set.iter()
            .map(|i| format!("{i}:{:?}", records[*i].0))
            .collect()
    };
    assert_eq!(
        named(&dead),
        named(&expect(D)),
        "{pipeline} {edits:?}: dead letters"
    );
    assert_eq!(
        named(&results),
        named(&expect(R)),
        "{pipeline} {edits:?}: results"
    );
    // Nothing lost or doubled: results + dead letters + filtered rows = the input.
    assert_eq!(summary.input_rows, records.len() as u64);
    assert_eq!(summary.errors.dead_lettered, dead.len() as u64);
    assert_eq!(summary.output_rows, results.len() as u64);
    assert_eq!(dead.len() + results.len() + expect(F).len(), records.len());
}

#[tokio::test(flavor = "multi_thread")]
async fn the_webassembly_deserializer_dead_letters_every_malformed_record() {
    check_fates("fraud/pipeline.toml", &[], WASM).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn built_in_json_follows_arrow_json_conversions_by_default() {
    check_fates("fraud/pipeline-native.toml", &[], JSON).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn built_in_json_with_strict_and_not_null_agrees_with_the_webassembly_path() {
    let schema = |ddl: &str| format!("schema = \"{ddl}\"");
    let native = schema(NATIVE);
    let edits = [(
        native.as_str(),
        format!("{}\nstrict = true", schema(STRICT)),
    )];
    check_fates("fraud/pipeline-native.toml", &edits, JSON_STRICT_NOT_NULL).await;
    let fates = |which: usize| corpus().iter().map(|(_, f)| f[which]).collect::<Vec<_>>();
    assert_eq!(fates(WASM), fates(JSON_STRICT_NOT_NULL));
}

#[tokio::test(flavor = "multi_thread")]
async fn built_in_json_with_strict_refuses_type_mismatches() {
    let edits = [(
        "on_error = \"dead-letter\"",
        "strict = true\non_error = \"dead-letter\"".to_string(),
    )];
    check_fates("fraud/pipeline-native.toml", &edits, JSON_STRICT).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn permissive_mode_turns_malformed_records_into_filtered_null_rows() {
    let broker = mock_cluster();
    broker.create_topic("transactions", 1);
    broker.create_topic("results", 1);
    let records = corpus();
    produce_corpus(&broker.bootstrap, &records);
    for strict in [false, true] {
        let edits = [
            (
                "on_error = \"dead-letter\"\ndead_letter_topic = \"transactions-dead-letter\"",
                format!("mode = \"PERMISSIVE\"\nstrict = {strict}"),
            ),
            (
                "topic = \"results\"",
                format!("topic = \"results-{strict}\""),
            ),
        ];
        let text = variant("fraud/pipeline-native.toml", &edits);
        let spec = pipeline_spec(&scratch_dir(), &broker.bootstrap, &text).unwrap();
        let summary = run_pipeline(spec).await.unwrap();
        // Malformed records become rows of nulls, whose null flag the transform filters: what was a dead
        // letter is now filtered, and the results are those of the same mode's dead-letter run.
        let which = if strict { JSON_STRICT } else { JSON };
        let expected = records.iter().filter(|(_, f)| f[which] == R).count() as u64;
        assert_eq!(summary.errors.dead_lettered, 0, "strict = {strict}");
        assert_eq!(summary.output_rows, expected, "strict = {strict}");
        assert_eq!(summary.input_rows, records.len() as u64);
    }
}
