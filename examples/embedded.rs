//! Weir as a library: a pipeline built in code, run against an in-process broker.
//!
//! `cargo run --release --example embedded` (after `bash scripts/build-udfs.sh`). It fills a topic with
//! generated transactions, keeps the flagged ones with the `fraud_flagged` WebAssembly transform behind the
//! built-in JSON deserializer, and prints what the run did.

use std::path::PathBuf;

use weir::config::parse_ddl_schema;
use weir::{Pipeline, SinkFormat};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cluster = rdkafka::mocking::MockCluster::new(1)?;
    let bootstrap = cluster.bootstrap_servers();
    cluster.create_topic("transactions", 4, 1)?;
    cluster.create_topic("results", 1, 1)?;
    let records = weir::workload::transactions(10_000).map(|tx| (tx.key(), tx.value()));
    weir::demo::produce(&bootstrap, "transactions", records)?;

    let transform = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../target/wasm32-wasip1/release/fraud_flagged.wasm");
    let schema = parse_ddl_schema(
        "name STRING, surname STRING, amount STRING, delta_t STRING, flag INT, ts BIGINT",
    )
    .map_err(anyhow::Error::msg)?;
    let spec = Pipeline::builder("embedded")
        .source_option("kafka.bootstrap.servers", &bootstrap)
        .source_option("subscribe", "transactions")
        .source_option("startingOffsets", "earliest")
        .source_option("endingOffsets", "latest")
        .deserializer_json(schema)
        .transform_udf(transform)
        .sink_option("kafka.bootstrap.servers", &bootstrap)
        .sink_option("topic", "results")
        .sink_format(SinkFormat::Json)
        .build()?;
    let pipeline = Pipeline::new(spec)?;
    print!("{}", pipeline.plan().describe());
    let summary = pipeline.run(std::future::pending()).await?;
    println!(
        "{} batches: {} records in, {} flagged out",
        summary.batches, summary.input_rows, summary.output_rows
    );
    Ok(())
}
