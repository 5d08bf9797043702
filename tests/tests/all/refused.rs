//! Output rows the producer or the broker refuses for good (`[sink] on_error`): the fraud pipeline turns a
//! ~1.3 KB transaction into a ~2.5 KB result row (the name is carried twice, in `id` and `name`), over the
//! sink's `message.max.bytes` of 2000. `fail` stops naming the source record, its size and the setting, and
//! does so again on restart; `dead-letter` sends the source record aside and the rest goes on, exactly once
//! with a checkpoint.

use std::path::Path;

use rdkafka::types::{RDKafkaApiKey, RDKafkaRespErr};
use weir_tests::kafka_log::read_log;
use weir_tests::*;

/// A transaction of the fraud workload (flag 1), tagged by `amount`; `long` makes its name and surname
/// 600 characters each.
fn transaction(tag: usize, long: bool) -> String {
    let (name, surname) = if long {
        ("n".repeat(600), "s".repeat(600))
    } else {
        (format!("name{tag}"), format!("sur{tag}"))
    };
    format!(
        r#"{{"name":"{name}","surname":"{surname}","amount":"{tag}","delta_t":"1","flag":1,"ts":{tag}}}"#
    )
}

/// 30 transactions; those at `long` are the oversized ones.
fn records(long: &[usize]) -> Vec<String> {
    (0..30).map(|i| transaction(i, long.contains(&i))).collect()
}

/// `examples/fraud/pipeline.toml` on the test's broker, the sink capped at 2000-byte records, with
/// `top` keys (checkpoint, name) and `sink` keys added.
fn fraud_pipeline(top: &str, sink: &str) -> String {
    let text = example_variant(
        "fraud/pipeline.toml",
        &[
            (
                "${KAFKA_BOOTSTRAP_SERVERS:-127.0.0.1:9092}",
                "${BROKER}".to_string(),
            ),
            ("name = \"fraud\"", format!("name = \"fraud\"\n{top}")),
            (
                "topic = \"results\"",
                format!("topic = \"results\"\nkafka.message.max.bytes = 2000\n{sink}"),
            ),
            (
                "endingOffsets = \"latest\"",
                "endingOffsets = \"latest\"\nmaxOffsetsPerTrigger = 10".to_string(),
            ),
        ],
    );
    text
}

/// Produces `records` to `transactions`, keyed by their index (a key as large as the value would make the
/// dead letters too large as well).
fn send(broker: &Broker, records: &[String]) {
    let keyed = records
        .iter()
        .enumerate()
        .map(|(i, r)| (i.to_string(), r.clone()));
    produce(&broker.bootstrap, "transactions", keyed).unwrap();
}

fn create_topics(broker: &Broker) {
    for topic in [
        "transactions",
        "results",
        "refused",
        "transactions-dead-letter",
    ] {
        broker.create_topic(topic, 1);
    }
}

/// The `amount` tags of the result rows.
fn result_tags(rows: &[String]) -> Vec<usize> {
    let mut tags: Vec<usize> = rows
        .iter()
        .map(|row| {
            let row: serde_json::Value = serde_json::from_str(row).unwrap();
            row["amount"].as_str().unwrap().parse().unwrap()
        })
        .collect();
    tags.sort_unstable();
    tags
}

const DEAD_LETTER: &str = "on_error = \"dead-letter\"\ndead_letter_topic = \"refused\"";

#[tokio::test(flavor = "multi_thread")]
async fn a_row_too_large_is_dead_lettered_as_its_source_record_and_the_rest_goes_on() {
    let broker = mock_cluster();
    create_topics(&broker);
    let sent = records(&[7, 8, 21]);
    send(&broker, &sent);
    let dir = scratch_dir();
    let spec = pipeline_spec(&dir, &broker.bootstrap, &fraud_pipeline("", DEAD_LETTER)).unwrap();
    let summary = run_pipeline(spec).await.unwrap();
    assert_eq!(summary.input_rows, 30);
    assert_eq!(summary.output_rows, 27);
    assert_eq!(summary.errors.refused_rows, 3);
    assert_eq!(summary.errors.dead_lettered, 3);

    let results = values(&read_topic(&broker.bootstrap, "results").unwrap());
    let expected: Vec<usize> = (0..30).filter(|i| ![7, 8, 21].contains(i)).collect();
    assert_eq!(result_tags(&results), expected);
    check_letters(&broker, &sent, &[7, 8, 21]);
}

/// The dead letters are the source records at `offsets`, unchanged, with the refusal in their headers.
fn check_letters(broker: &Broker, sent: &[String], offsets: &[i64]) {
    let dead = read_topic(&broker.bootstrap, "refused").unwrap();
    let mut found: Vec<i64> = Vec::new();
    for record in &dead {
        let offset: i64 = record
            .header("weir.source.offset")
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(
            record.value.as_deref(),
            Some(sent[offset as usize].as_bytes())
        );
        assert_eq!(record.header("weir.stage").unwrap(), "sink");
        assert_eq!(record.header("weir.source.topic").unwrap(), "transactions");
        let error = record.header("weir.error").unwrap();
        assert!(
            error.contains("too large") && error.contains("bytes, for topic results"),
            "{error}"
        );
        found.push(offset);
    }
    found.sort_unstable();
    assert_eq!(found, offsets);
}

#[tokio::test(flavor = "multi_thread")]
async fn rows_the_broker_refuses_after_sending_are_dead_lettered_too() {
    // The broker answers the first produce request with MSG_SIZE_TOO_LARGE, so its rows fail in their
    // delivery reports, not when sent; each is traced to its own record.
    let broker = mock_cluster();
    create_topics(&broker);
    let sent = records(&[]);
    send(&broker, &sent);
    broker.mock().unwrap().request_errors(
        RDKafkaApiKey::Produce,
        &[RDKafkaRespErr::RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE],
    );
    let dir = scratch_dir();
    let spec = pipeline_spec(&dir, &broker.bootstrap, &fraud_pipeline("", DEAD_LETTER)).unwrap();
    let summary = run_pipeline(spec).await.unwrap();
    let refused = summary.errors.refused_rows;
    assert!(refused > 0, "{summary:?}");
    assert_eq!(summary.errors.dead_lettered, refused);
    assert_eq!(summary.output_rows + refused, 30);
    let results = result_tags(&values(&read_topic(&broker.bootstrap, "results").unwrap()));
    let letters: Vec<usize> = read_topic(&broker.bootstrap, "refused")
        .unwrap()
        .iter()
        .map(|r| r.header("weir.source.offset").unwrap().parse().unwrap())
        .collect();
    let mut all: Vec<usize> = results.iter().chain(&letters).copied().collect();
    all.sort_unstable();
    assert_eq!(all, (0..30).collect::<Vec<_>>(), "each record once");
}

/// A checkpointed run of the capped fraud pipeline through the `weir` binary; its stderr and status.
fn weir_run(dir: &Path, bootstrap: &str, sink: &str) -> (bool, String) {
    let file = dir.join("fraud.toml");
    let top = format!(
        "checkpointLocation = \"{}\"",
        dir.join("checkpoint").display()
    );
    std::fs::write(&file, fraud_pipeline(&top, sink)).unwrap();
    let output = weir_command()
        .args(["run", "--progress", "json"])
        .arg(&file)
        .env("BROKER", bootstrap)
        .output()
        .unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn fail_names_the_row_and_fails_again_on_restart_then_dead_letter_finishes_exactly_once() {
    let broker = tansu();
    create_topics(&broker);
    let sent = records(&[23]);
    send(&broker, &sent);
    let dir = scratch_dir();
    for attempt in 0..2 {
        let (ok, stderr) = weir_run(&dir, &broker.bootstrap, "");
        assert!(!ok, "attempt {attempt}");
        for expected in [
            "the sink's output row of 2",
            "bytes for topic results was refused for good",
            "it came from transactions-0 offset 23",
            "message.max.bytes",
            "on_error = \"dead-letter\"",
        ] {
            assert!(
                stderr.contains(expected),
                "attempt {attempt}: {expected}: {stderr}"
            );
        }
    }
    // The batches before the refused row's committed (a prefix of the input); nothing of its batch did.
    let committed = read_log(&broker.bootstrap, "results", 0).unwrap().committed;
    let tags = result_tags(
        &committed
            .iter()
            .map(|r| String::from_utf8(r.value.clone().unwrap()).unwrap())
            .collect::<Vec<_>>(),
    );
    assert!(tags.len() >= 10 && tags.len() <= 23, "{tags:?}");
    assert_eq!(tags, (0..tags.len()).collect::<Vec<_>>());

    let (ok, stderr) = weir_run(&dir, &broker.bootstrap, DEAD_LETTER);
    assert!(ok, "{stderr}");
    let log = read_log(&broker.bootstrap, "results", 0).unwrap();
    let tags = result_tags(
        &log.committed
            .iter()
            .map(|r| String::from_utf8(r.value.clone().unwrap()).unwrap())
            .collect::<Vec<_>>(),
    );
    let expected: Vec<usize> = (0..30).filter(|i| *i != 23).collect();
    assert_eq!(tags, expected, "every other result exactly once");
    let letters = read_log(&broker.bootstrap, "refused", 0).unwrap().committed;
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0].value.as_deref(), Some(sent[23].as_bytes()));
}

#[tokio::test(flavor = "multi_thread")]
async fn in_a_transaction_a_row_refused_after_sending_aborts_the_attempt_and_the_batch_is_produced_again(
) {
    // As above, but exactly once: the refusal fails the whole transaction, which is aborted and made again
    // without the refused rows and with their dead letters. Every record ends once in the committed log.
    let broker = mock_cluster();
    create_topics(&broker);
    let sent = records(&[]);
    send(&broker, &sent);
    broker.mock().unwrap().request_errors(
        RDKafkaApiKey::Produce,
        &[RDKafkaRespErr::RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE],
    );
    let dir = scratch_dir();
    let top = format!(
        "checkpointLocation = \"{}\"",
        dir.join("checkpoint").display()
    );
    let spec = pipeline_spec(&dir, &broker.bootstrap, &fraud_pipeline(&top, DEAD_LETTER)).unwrap();
    let summary = run_pipeline(spec).await.unwrap();
    let refused = summary.errors.refused_rows;
    assert!(refused > 0, "{summary:?}");
    // The mock cluster writes no transaction markers, so the log is read whole: what the aborted
    // attempts sent never reached it (the broker refused the first, librdkafka purged the next).
    let tags = result_tags(&values(&read_topic(&broker.bootstrap, "results").unwrap()));
    let letters: Vec<usize> = read_topic(&broker.bootstrap, "refused")
        .unwrap()
        .iter()
        .map(|r| {
            let value = String::from_utf8(r.value.clone().unwrap()).unwrap();
            sent.iter().position(|s| *s == value).unwrap()
        })
        .collect();
    assert_eq!(letters.len() as u64, refused);
    let mut all: Vec<usize> = tags.iter().chain(&letters).copied().collect();
    all.sort_unstable();
    assert_eq!(all, (0..30).collect::<Vec<_>>(), "each record once");
}
