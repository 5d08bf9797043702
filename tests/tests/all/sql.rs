//! SQL stages end to end: the fraud examples with `where` and `select` in place of their UDFs give the
//! same output as the UDF versions' offline results; a bad expression is refused by `weir validate` with
//! its key and column; an expression that fails on a batch names the records and writes nothing.

use weir::internal::demo::{demo_records, MALFORMED_EVERY};
use weir_tests::*;

use super::fraud::{create_fraud_topics, expected_results};
use super::window::check_fraud_window_alerts;

#[tokio::test(flavor = "multi_thread")]
async fn the_all_sql_fraud_pipeline_gives_the_results_of_the_udf_one() {
    let broker = mock_cluster();
    create_fraud_topics(&broker);
    let n = 30_000;
    produce(&broker.bootstrap, "transactions", demo_records(n)).unwrap();
    let summary = run_pipeline(example_spec("fraud/pipeline-sql.toml", &broker.bootstrap))
        .await
        .unwrap();
    assert_eq!(summary.errors.dead_lettered, n / MALFORMED_EVERY);
    let mut results = values(&read_topic(&broker.bootstrap, "results").unwrap());
    results.sort();
    let expected = expected_results(n);
    assert_eq!(results.len(), expected.len());
    assert!(results == expected, "the SQL stages' results differ");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_all_sql_fraud_window_alerts_are_exact() {
    check_fraud_window_alerts("fraud-window/pipeline-sql.toml").await;
}

/// `examples/fraud/pipeline-sql.toml` with `edits`, in a scratch folder; returns the file.
fn sql_variant(edits: &[(&str, String)]) -> std::path::PathBuf {
    let dir = scratch_dir();
    let file = dir.join("pipeline.toml");
    std::fs::write(&file, example_variant("fraud/pipeline-sql.toml", edits)).unwrap();
    file
}

#[test]
fn validate_prints_the_sql_stages_and_their_columns() {
    let stdout = successful_stdout(
        weir_command()
            .args(["validate", "examples/fraud/pipeline-sql.toml"])
            .current_dir(workspace()),
        "weir validate",
    );
    assert!(
        stdout.contains("SQL where flag = 1 (transform[0].where)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("-> id: Utf8, name: Utf8, surname: Utf8, amount: Utf8"),
        "{stdout}"
    );
}

#[test]
fn validate_refuses_a_missing_column_or_a_wrong_type_naming_the_key_and_column() {
    let cases = [
        (
            "where = \"flag = 1\"",
            "where = \"flags = 1\"",
            "`transform[0].where` = \"flags = 1\": no column `flags`",
        ),
        (
            "select = [\"name || surname AS id\", \"*\"]",
            "select = [\"amount * flag AS risk\", \"*\"]",
            "(columns used: amount Utf8, flag Int32)",
        ),
        (
            "where = \"flag = 1\"",
            "where = \"surname\"",
            "`transform[0].where` = \"surname\": is Utf8, not a condition",
        ),
    ];
    for (from, to, expected) in cases {
        let file = sql_variant(&[(from, to.to_string())]);
        let output = weir_command().arg("validate").arg(&file).output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{to} was accepted");
        assert!(stderr.contains(expected), "{to}: {stderr}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_expression_that_fails_on_a_batch_names_its_records_and_writes_nothing() {
    let broker = mock_cluster();
    create_fraud_topics(&broker);
    let good = r#"{"name":"a","surname":"b","amount":"1.5","delta_t":"2","flag":1,"ts":1}"#;
    let bad = r#"{"name":"c","surname":"d","amount":"lots","delta_t":"2","flag":1,"ts":2}"#;
    produce_to(
        &broker.bootstrap,
        "transactions",
        2,
        &[good.to_string(), bad.to_string()],
        &[],
    );
    let file = sql_variant(&[
        (
            "select = [\"name || surname AS id\", \"*\"]",
            "select = [\"CAST(amount AS DOUBLE) AS amount\", \"*\"]".to_string(),
        ),
        (
            "${KAFKA_BOOTSTRAP_SERVERS:-127.0.0.1:9092}",
            "${BROKER}".to_string(),
        ),
    ]);
    let text = std::fs::read_to_string(&file).unwrap();
    let spec = pipeline_spec(file.parent().unwrap(), &broker.bootstrap, &text).unwrap();
    let error = run_pipeline(spec).await.unwrap_err();
    let message = format!("{error:#}");
    assert!(
        message.contains("a SQL stage failed on transactions-2 offsets 0..=1"),
        "{message}"
    );
    assert!(message.contains("`transform[1].select`"), "{message}");
    assert!(message.contains("lots"), "{message}");
    assert!(read_topic(&broker.bootstrap, "results").unwrap().is_empty());
}
