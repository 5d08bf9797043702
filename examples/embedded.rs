//! Weir as a library: the windowed fraud pipeline built in code, run against an in-process broker.
//!
//! `cargo run --release --example embedded` (after `bash scripts/build-udfs.sh fraud-flagged filter`). It
//! fills a 4-partition topic with generated transactions, then runs what
//! `examples/fraud-window/pipeline.toml` describes, built with [`weir::PipelineBuilder`]: the built-in JSON
//! deserializer, a watermark, the `fraud_flagged` WebAssembly transform, flagged transactions counted per
//! user in 10-second windows, the `filter` transform keeping counts above one, and a checkpoint, so the
//! alerts commit exactly once. It checks the alerts against an offline computation and exits non-zero
//! unless they are exact.

use std::path::PathBuf;
use std::time::Duration;

// The broker, the input and the check are Weir's test scaffolding (`weir::internal`, not API); the pipeline
// is built and run with the public API only.
use weir::internal::demo;
use weir::internal::workload::{self, fraud_window_alerts};
use weir::{
    parse_ddl_schema, AggregateExpr, AggregateSpec, Function, OutputMode, Pipeline, SinkFormat,
    TransformSpec, UdfSpec, WatermarkSpec, WindowBy, WindowKind, WindowSpec,
};

const TRANSACTIONS: u64 = 50_000;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cluster = rdkafka::mocking::MockCluster::new(1)?;
    let bootstrap = cluster.bootstrap_servers();
    cluster.create_topic("transactions", workload::PARTITIONS, 1)?;
    cluster.create_topic("alerts", 1, 1)?;
    demo::produce_workload(&bootstrap, "transactions", TRANSACTIONS)?;

    let modules = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/wasm32-wasip1/release");
    let schema = parse_ddl_schema(
        "name STRING, surname STRING, amount STRING, delta_t STRING, flag INT, ts BIGINT",
    )
    .map_err(anyhow::Error::msg)?;
    let checkpoint = std::env::temp_dir().join(format!("weir-embedded-{}", std::process::id()));
    let spec = Pipeline::builder("embedded")
        .source_option("kafka.bootstrap.servers", &bootstrap)
        .source_option("subscribe", "transactions")
        .source_option("startingOffsets", "earliest")
        .source_option("endingOffsets", "latest")
        .deserializer_json(schema)
        .watermark(WatermarkSpec::new("ts", Duration::from_secs(5)))
        .transform_udf(modules.join("fraud_flagged.wasm"))
        .aggregate(alerts_per_window())
        .after_aggregate(TransformSpec::new(
            UdfSpec::new(modules.join("filter.wasm"))
                .with_config(serde_json::json!({ "column": "count", "greater_than": 1 })),
        ))
        .sink_option("kafka.bootstrap.servers", &bootstrap)
        .sink_option("topic", "alerts")
        .sink_option("key_column", "id")
        .sink_format(SinkFormat::Json)
        .checkpoint(&checkpoint)
        .build()?;
    let pipeline = Pipeline::new(spec)?;
    print!("{}", pipeline.plan().describe());
    let summary = pipeline.run(std::future::pending()).await;
    let _ = std::fs::remove_dir_all(&checkpoint);
    let summary = summary?;
    check_alerts(&bootstrap, summary.batches, summary.input_rows)
}

/// `[aggregate]` of the fraud-window pipeline: flagged transactions per user and 10-second window, each
/// window's count emitted once, when the watermark passes its end.
fn alerts_per_window() -> AggregateSpec {
    AggregateSpec {
        group_by: vec!["id".into()],
        window: Some(WindowBy {
            column: "ts".into(),
            kind: WindowKind::Fixed(WindowSpec::tumbling(workload::WINDOW_MS)),
        }),
        aggregates: vec![AggregateExpr::new(Function::Count, None)],
        output_mode: OutputMode::Append,
        input_partitioned_by: Vec::new(),
    }
}

fn check_alerts(bootstrap: &str, batches: u64, input_rows: u64) -> anyhow::Result<()> {
    let mut got: Vec<String> = demo::read_topic(bootstrap, "alerts")?
        .into_iter()
        .filter_map(|record| record.value)
        .map(|value| String::from_utf8_lossy(&value).into_owned())
        .collect();
    got.sort();
    let mut expected: Vec<String> = fraud_window_alerts(TRANSACTIONS)
        .iter()
        .map(|alert| alert.json())
        .collect();
    expected.sort();
    println!(
        "{batches} batches: {input_rows} records in, {} alerts out (expected {})",
        got.len(),
        expected.len()
    );
    anyhow::ensure!(
        got == expected,
        "the alerts differ from the offline computation"
    );
    println!("embedded: OK, the alerts are exactly as expected");
    Ok(())
}
