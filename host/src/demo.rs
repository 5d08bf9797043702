//! The self-contained demo: an in-process Kafka-protocol broker (librdkafka's mock cluster), the workload
//! generator, and a pipeline file run against them, with the output checked.
//!
//! It exists so that `weir demo examples/fraud/pipeline.toml` shows the whole data path on a machine with
//! no Kafka installed. The helpers to produce and read topics are also what the integration tests use.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use anyhow::{bail, Context};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::mocking::MockCluster;
use rdkafka::producer::BaseRecord;
use rdkafka::{Offset, TopicPartitionList};

use crate::kafka::CheckedProducer;
use crate::workload;

/// A record read back from a topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadRecord {
    /// The partition.
    pub partition: i32,
    /// The offset.
    pub offset: i64,
    /// The key.
    pub key: Option<Vec<u8>>,
    /// The value.
    pub value: Option<Vec<u8>>,
    /// The headers, in order.
    pub headers: Vec<(String, Option<Vec<u8>>)>,
}

impl ReadRecord {
    /// The first header named `key`, as text (lossy UTF-8); `None` when absent or null.
    pub fn header(&self, key: &str) -> Option<String> {
        self.headers
            .iter()
            .find(|(name, _)| name == key)
            .and_then(|(_, value)| value.as_deref())
            .map(|value| String::from_utf8_lossy(value).into_owned())
    }
}

/// A client configuration for the cluster at `bootstrap`, to add options to (e.g. TLS and SASL).
pub fn client_config(bootstrap: &str) -> ClientConfig {
    let mut config = ClientConfig::new();
    config.set("bootstrap.servers", bootstrap);
    config
}

/// Produces `records` (key, value) to `topic` and waits until all are acknowledged; fails if any was not.
pub fn produce(
    bootstrap: &str,
    topic: &str,
    records: impl IntoIterator<Item = (String, String)>,
) -> anyhow::Result<u64> {
    produce_with(client_config(bootstrap), topic, records)
}

/// [`produce`] with a client configuration of one's own (`bootstrap.servers` and, say, TLS and SASL).
pub fn produce_with(
    mut config: ClientConfig,
    topic: &str,
    records: impl IntoIterator<Item = (String, String)>,
) -> anyhow::Result<u64> {
    let mut producer = CheckedProducer::new(
        config
            .set("linger.ms", "20")
            .set("batch.num.messages", "10000"),
        &format!("the records generated for {topic}"),
    )?;
    for (key, value) in records {
        producer.send(BaseRecord::to(topic).key(&key).payload(&value))?;
    }
    producer.finish(Duration::from_secs(120))
}

/// Produces each of `records` (partition, key, value) to its partition of `topic`; waits until all are
/// acknowledged and fails if any was not.
pub fn produce_to_partitions(
    bootstrap: &str,
    topic: &str,
    records: impl IntoIterator<Item = (i32, String, String)>,
) -> anyhow::Result<u64> {
    let mut producer = CheckedProducer::new(
        ClientConfig::new().set("bootstrap.servers", bootstrap),
        &format!("the records generated for {topic}"),
    )?;
    for (partition, key, value) in records {
        producer.send(
            BaseRecord::to(topic)
                .partition(partition)
                .key(&key)
                .payload(&value),
        )?;
    }
    producer.finish(Duration::from_secs(120))
}

/// The reference workload's `n` transactions keyed by user, then its closing records, one per partition
/// with an event time past every window, so every partition's watermark closes every window.
pub fn produce_workload(bootstrap: &str, topic: &str, n: u64) -> anyhow::Result<u64> {
    let records = workload::transactions(n).map(|tx| (tx.key(), tx.value()));
    let closing = workload::closing_records(n)
        .into_iter()
        .map(|(partition, tx)| (partition, tx.key(), tx.value()));
    Ok(produce(bootstrap, topic, records)? + produce_to_partitions(bootstrap, topic, closing)?)
}

/// Reads every record of `topic` that is there now (up to each partition's high watermark).
pub fn read_topic(bootstrap: &str, topic: &str) -> anyhow::Result<Vec<ReadRecord>> {
    read_topic_with(client_config(bootstrap), topic)
}

/// [`read_topic`] with a client configuration of one's own (`bootstrap.servers` and, say, TLS and SASL).
pub fn read_topic_with(mut config: ClientConfig, topic: &str) -> anyhow::Result<Vec<ReadRecord>> {
    config
        .set("group.id", "weir-reader")
        .set("enable.auto.commit", "false");
    let consumer: BaseConsumer = config.create().context("creating a reader")?;
    let timeout = Duration::from_secs(30);
    let metadata = consumer
        .fetch_metadata(Some(topic), timeout)
        .context("reading topic metadata")?;
    let mut listed = BTreeMap::new();
    for p in metadata
        .topics()
        .iter()
        .flat_map(|t| t.partitions().iter().map(|p| p.id()))
    {
        listed.insert(
            (topic.to_string(), p),
            consumer.fetch_watermarks(topic, p, timeout)?,
        );
    }
    let latest = crate::source::latest_offsets(&config, &listed)?;
    let mut ends = BTreeMap::new();
    let mut list = TopicPartitionList::new();
    for ((_, p), (low, _)) in &listed {
        let high = latest[&(topic.to_string(), *p)];
        if high > *low {
            ends.insert(*p, high);
            list.add_partition_offset(topic, *p, Offset::Offset(*low))?;
        }
    }
    consumer.assign(&list)?;
    let mut records = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    let mut positions: BTreeMap<i32, i64> = BTreeMap::new();
    while ends
        .iter()
        .any(|(p, end)| positions.get(p).copied().unwrap_or(-1) + 1 < *end)
    {
        if std::time::Instant::now() > deadline {
            bail!(
                "timed out reading {topic}: read {} records so far",
                records.len()
            );
        }
        let Some(message) = consumer.poll(Duration::from_millis(500)) else {
            // Transaction markers occupy offsets but are never delivered: trust the consumer's position.
            for element in consumer.position()?.elements() {
                if let Offset::Offset(o) = element.offset() {
                    let seen = positions.entry(element.partition()).or_insert(-1);
                    *seen = (*seen).max(o - 1);
                }
            }
            continue;
        };
        let message = message.context("reading records")?;
        positions.insert(message.partition(), message.offset());
        let headers = message
            .headers()
            .map(|h| {
                h.iter()
                    .map(|h| (h.key.to_string(), h.value.map(<[u8]>::to_vec)))
                    .collect()
            })
            .unwrap_or_default();
        records.push(ReadRecord {
            partition: message.partition(),
            offset: message.offset(),
            key: message.key().map(<[u8]>::to_vec),
            value: message.payload().map(<[u8]>::to_vec),
            headers,
        });
    }
    Ok(records)
}

/// Every `MALFORMED_EVERY`-th demo record is not JSON, to show dead-lettering.
pub const MALFORMED_EVERY: u64 = 10_000;

/// The demo's input: `n` workload transactions with a malformed record after every [`MALFORMED_EVERY`].
pub fn demo_records(n: u64) -> impl Iterator<Item = (String, String)> {
    workload::transactions(n).enumerate().flat_map(|(i, tx)| {
        let mut records = vec![(tx.key(), tx.value())];
        if (i as u64 + 1).is_multiple_of(MALFORMED_EVERY) {
            records.push((tx.key(), format!("{{\"name\": \"truncated record {i}")));
        }
        records
    })
}

/// The mock cluster keeps at most 5 MiB (and 100,000 records) per partition and drops the oldest beyond
/// that, so a large demo would lose input before the pipeline starts; this says so instead of letting the
/// check fail later.
fn check_nothing_dropped(bootstrap: &str, topic: &str, partitions: i32) -> anyhow::Result<()> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .context("creating a reader")?;
    for partition in 0..partitions {
        let (low, _) = consumer.fetch_watermarks(topic, partition, Duration::from_secs(30))?;
        if low > 0 {
            bail!(
                "the in-process broker dropped the oldest {low} records of {topic}-{partition} (it keeps 5 MiB per \
                 partition): use fewer --records (at most about 150,000), or run against a real broker"
            );
        }
    }
    Ok(())
}

/// Runs the fraud demo: starts a mock cluster, generates `n` records, runs the pipeline file against it and
/// checks `results` and the dead-letter topic. Returns a report for the terminal.
pub async fn run_fraud_demo(pipeline_file: &Path, n: u64) -> anyhow::Result<String> {
    let cluster = MockCluster::new(1).context("starting the in-process Kafka broker")?;
    let bootstrap = cluster.bootstrap_servers();
    cluster.create_topic("transactions", 4, 1)?;
    cluster.create_topic("results", 1, 1)?;
    cluster.create_topic("transactions-dead-letter", 1, 1)?;
    println!("demo: in-process Kafka broker at {bootstrap}; generating {n} transactions");
    let produced = produce(&bootstrap, "transactions", demo_records(n))?;
    check_nothing_dropped(&bootstrap, "transactions", 4)?;

    let file = pipeline_file.display().to_string();
    let text = std::fs::read_to_string(pipeline_file).with_context(|| format!("reading {file}"))?;
    let base = pipeline_file.parent().unwrap_or(Path::new("."));
    let env = |name: &str| match name {
        "KAFKA_BOOTSTRAP_SERVERS" => Some(bootstrap.clone()),
        _ => std::env::var(name).ok(),
    };
    let spec = crate::config::parse(&text, &file, base, "fraud", env)?;
    if spec
        .source
        .kafka()
        .is_none_or(|kafka| kafka.ending.is_none())
    {
        bail!("{file}: the demo needs a bounded pipeline: set source.endingOffsets = \"latest\"");
    }
    let pipeline = crate::Pipeline::new(spec)?;
    print!("{}", pipeline.plan().describe());
    let started = std::time::Instant::now();
    let summary = pipeline.run(std::future::pending()).await?;
    let elapsed = started.elapsed();

    let expected: Vec<String> = workload::transactions(n)
        .filter_map(|t| t.fraud_result())
        .collect();
    let mut results: Vec<String> = read_topic(&bootstrap, "results")?
        .into_iter()
        .map(|r| String::from_utf8_lossy(&r.value.unwrap_or_default()).into_owned())
        .collect();
    let dead = read_topic(&bootstrap, "transactions-dead-letter")?;
    let mut expected_sorted = expected.clone();
    expected_sorted.sort();
    results.sort();
    let malformed = n / MALFORMED_EVERY;
    let ok = results == expected_sorted && dead.len() as u64 == malformed;
    let report = format!(
        "demo: {produced} records produced, {} read in {:.2}s ({:.0} records/s); {} written, {} results read back (expected {}), {} dead letters (expected {malformed}): {}",
        summary.input_rows,
        elapsed.as_secs_f64(),
        summary.input_rows as f64 / elapsed.as_secs_f64(),
        summary.output_rows,
        results.len(),
        expected.len(),
        dead.len(),
        if ok { "OK, the output is exactly as expected" } else { "MISMATCH" }
    );
    if !ok {
        bail!(report);
    }
    Ok(report)
}
