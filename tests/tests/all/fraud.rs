//! The fraud example end to end: exact output, dead letters, and the native JSON path.

use weir::internal::demo::{demo_records, MALFORMED_EVERY};
use weir::internal::workload;
use weir_tests::*;

pub(super) fn expected_results(n: u64) -> Vec<String> {
    let mut expected: Vec<String> = workload::transactions(n)
        .filter_map(|t| t.fraud_result())
        .collect();
    expected.sort();
    expected
}

/// The topics of `examples/fraud`: 4 input partitions, as in the reference workload.
pub(super) fn create_fraud_topics(broker: &Broker) {
    broker.create_topic("transactions", 4);
    broker.create_topic("results", 1);
    broker.create_topic("transactions-dead-letter", 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn wasm_fraud_pipeline_on_tansu_is_exact_over_100k_records() {
    udf_module("json_transactions");
    let broker = tansu();
    create_fraud_topics(&broker);
    let n = 100_000;
    let produced = produce(&broker.bootstrap, "transactions", demo_records(n)).unwrap();
    assert_eq!(produced, n + n / MALFORMED_EVERY);

    let summary = run_pipeline(example_spec("fraud/pipeline.toml", &broker.bootstrap))
        .await
        .unwrap();
    assert_eq!(summary.input_rows, produced);
    assert_eq!(summary.errors.dead_lettered, n / MALFORMED_EVERY);

    let mut results = values(&read_topic(&broker.bootstrap, "results").unwrap());
    results.sort();
    let expected = expected_results(n);
    assert_eq!(results.len(), expected.len());
    assert!(
        results == expected,
        "the results differ from the offline computation"
    );
    assert_eq!(summary.output_rows, expected.len() as u64);

    // Each malformed record reaches the dead-letter topic unchanged, with the reason and its origin.
    let dead = read_topic(&broker.bootstrap, "transactions-dead-letter").unwrap();
    assert_eq!(dead.len() as u64, n / MALFORMED_EVERY);
    for record in &dead {
        let value = String::from_utf8(record.value.clone().unwrap()).unwrap();
        assert!(
            value.starts_with("{\"name\": \"truncated record"),
            "{value}"
        );
        let header = |k: &str| record.header(k);
        assert!(header("weir.error").unwrap().contains("not a transaction"));
        assert_eq!(header("weir.stage").unwrap(), "json_transactions");
        assert_eq!(header("weir.source.topic").unwrap(), "transactions");
        let offset: i64 = header("weir.source.offset").unwrap().parse().unwrap();
        assert!(offset >= 0);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn native_json_path_gives_the_same_results() {
    udf_module("fraud_flagged");
    let broker = mock_cluster();
    create_fraud_topics(&broker);
    let n = 30_000;
    produce(&broker.bootstrap, "transactions", demo_records(n)).unwrap();
    let summary = run_pipeline(example_spec(
        "fraud/pipeline-native.toml",
        &broker.bootstrap,
    ))
    .await
    .unwrap();
    assert_eq!(summary.errors.dead_lettered, n / MALFORMED_EVERY);
    let mut results = values(&read_topic(&broker.bootstrap, "results").unwrap());
    results.sort();
    assert!(
        results == expected_results(n),
        "the native path's results differ"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn malformed_records_fail_or_drop_as_configured() {
    let broker = mock_cluster();
    broker.create_topic("in", 1);
    broker.create_topic("out", 1);
    let good = r#"{"name":"a","surname":"b","amount":"1","delta_t":"2","flag":1}"#.to_string();
    produce_to(
        &broker.bootstrap,
        "in",
        0,
        &[good.clone(), "nope".into(), good],
        &[],
    );
    let dir = scratch_dir();
    let module = udf_module("json_transactions");
    let pipeline = |policy: &str| {
        format!(
            r#"
[source]
kafka.bootstrap.servers = "${{BROKER}}"
subscribe = "in"
startingOffsets = "earliest"
endingOffsets = "latest"
[deserializer]
udf = "{}"
on_error = "{policy}"
[sink]
kafka.bootstrap.servers = "${{BROKER}}"
topic = "out"
format = "json"
"#,
            module.display()
        )
    };
    let error = run_pipeline(pipeline_spec(&dir, &broker.bootstrap, &pipeline("fail")).unwrap())
        .await
        .unwrap_err();
    let message = format!("{error:#}");
    assert!(
        message.contains("record in-0 offset 1 could not be deserialized"),
        "{message}"
    );
    assert!(message.contains("not a transaction"), "{message}");
    assert!(
        read_topic(&broker.bootstrap, "out").unwrap().is_empty(),
        "nothing of a failed batch is written"
    );

    let summary = run_pipeline(pipeline_spec(&dir, &broker.bootstrap, &pipeline("drop")).unwrap())
        .await
        .unwrap();
    assert_eq!(
        (summary.output_rows, summary.errors.deserializer_dropped),
        (2, 1)
    );
}

/// The issue's acceptance run: `weir run examples/fraud/pipeline.toml` (the binary) over 1,000,000 records
/// on tansu, for the WebAssembly path and the built-in JSON path, each checked exactly. Prints throughput;
/// asserts only correctness. Run with `cargo test --release -p weir-tests -- --ignored one_million`
/// (`WEIR_N` changes the record count).
#[tokio::test(flavor = "multi_thread")]
#[ignore = "a measurement run of about a minute; see docs/benchmarks.md"]
async fn one_million_records_through_the_weir_binary() {
    let n: u64 = env_or("WEIR_N", 1_000_000);
    let expected = expected_results(n);
    for file in ["pipeline.toml", "pipeline-native.toml"] {
        let broker = tansu();
        create_fraud_topics(&broker);
        let records = workload::transactions(n).map(|t| (t.key(), t.value()));
        produce(&broker.bootstrap, "transactions", records).unwrap();
        let started = std::time::Instant::now();
        let output = std::process::Command::new("/usr/bin/time")
            .args(["-f", "peak-rss-kib %M"])
            .arg(workspace().join("target/release/weir"))
            .args([
                "run",
                &format!("examples/fraud/{file}"),
                "--progress",
                "json",
            ])
            .env("KAFKA_BOOTSTRAP_SERVERS", &broker.bootstrap)
            .env("WEIR_LOG", "warn,weir=info")
            .current_dir(workspace())
            .output()
            .unwrap();
        let elapsed = started.elapsed();
        // Where the time outside batches went (start-up, end detection), from the binary's log.
        for line in String::from_utf8_lossy(&output.stderr)
            .lines()
            .filter(|l| l.contains("ready") || l.contains("reached"))
        {
            println!("  {line}");
        }
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let mut results = values(&read_topic(&broker.bootstrap, "results").unwrap());
        results.sort();
        assert!(
            results == expected,
            "{file}: {} results, expected {}",
            results.len(),
            expected.len()
        );
        let stderr = String::from_utf8_lossy(&output.stderr);
        let rss = stderr
            .split("peak-rss-kib ")
            .nth(1)
            .map(str::trim)
            .unwrap_or("?")
            .to_string();
        let progress: Vec<serde_json::Value> = String::from_utf8_lossy(&output.stdout)
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect();
        let total = |stage: &str| -> u64 {
            progress
                .iter()
                .map(|p| p["durationMs"][stage].as_u64().unwrap())
                .sum()
        };
        println!(
            "{file}: {n} records -> {} results (exact) in {:.2} s = {:.0} records/s, {} batches; \
             time in batches: poll {} ms, process {} ms, sink {} ms; peak RSS {rss} KiB",
            results.len(),
            elapsed.as_secs_f64(),
            n as f64 / elapsed.as_secs_f64(),
            progress.len(),
            total("poll"),
            total("process"),
            total("sink")
        );
    }
}
