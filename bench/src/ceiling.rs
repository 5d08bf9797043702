//! The broker's consume-only ceiling: one rdkafka consumer with Weir's fetch settings
//! ([`weir::internal::CONSUMER_DEFAULTS`]), `assign()`ed to every partition of the input from the beginning,
//! counting records and doing nothing else until each partition reaches its high watermark. It is the
//! most any pipeline on this client, broker and machine could read.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::Context;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Message, Offset, TopicPartitionList};

/// Drains `topic` (with `partitions` partitions) once; returns the records read and the time taken from
/// creating the consumer to the last record.
pub fn consume_only(
    bootstrap: &str,
    topic: &str,
    partitions: i32,
) -> anyhow::Result<(u64, Duration)> {
    let config = assigned_consumer_config(bootstrap, "weir-bench-ceiling");
    let started = Instant::now();
    let consumer: BaseConsumer = config
        .create()
        .context("creating the consume-only client")?;
    let mut list = TopicPartitionList::new();
    let mut listed = BTreeMap::new();
    for partition in 0..partitions {
        list.add_partition_offset(topic, partition, Offset::Beginning)?;
        let offsets = consumer
            .fetch_watermarks(topic, partition, Duration::from_secs(10))
            .with_context(|| format!("listing the offsets of {topic}-{partition}"))?;
        listed.insert((topic.to_string(), partition), offsets);
    }
    // The end as Weir's source finds it: tansu's ListOffsets answers with the last batch's start, so the
    // high watermark comes from a fetch.
    let mut remaining: BTreeMap<i32, i64> = weir::internal::latest_offsets(&config, &listed)?
        .into_iter()
        .filter(|(_, high)| *high > 0)
        .map(|((_, partition), high)| (partition, high))
        .collect();
    consumer
        .assign(&list)
        .with_context(|| format!("assigning {topic}"))?;
    let mut count = 0u64;
    while !remaining.is_empty() {
        if started.elapsed() > Duration::from_secs(300) {
            anyhow::bail!("the consume-only client did not reach the end of {topic} in 300 s");
        }
        let Some(message) = consumer.poll(Duration::from_millis(100)) else {
            continue;
        };
        let message = message.with_context(|| format!("consuming {topic}"))?;
        count += 1;
        let partition = message.partition();
        if remaining
            .get(&partition)
            .is_some_and(|high| message.offset() + 1 >= *high)
        {
            remaining.remove(&partition);
        }
    }
    Ok((count, started.elapsed()))
}

/// The configuration of a bench consumer that reads as Weir's source does: assigned partitions (the group
/// id is only a name), nothing committed, Weir's consumer defaults.
pub(crate) fn assigned_consumer_config(bootstrap: &str, group: &str) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", bootstrap)
        .set("group.id", group)
        .set("enable.auto.commit", "false");
    for (key, value) in weir::internal::CONSUMER_DEFAULTS {
        config.set(*key, *value);
    }
    config
}
