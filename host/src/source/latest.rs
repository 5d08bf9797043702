//! Resolving `latest`: where each partition ends right now.
//!
//! Kafka answers this with ListOffsets. tansu 0.6 answers ListOffsets(latest) with the base offset of the
//! last record batch plus one, which is short of the end whenever that batch holds more than one record
//! (measured: ten records produced in one batch give a "latest" of 1). The high watermark in a Fetch
//! response is right on both. So `latest` is the larger of the two: exact on Kafka, and exact on tansu.

use std::collections::BTreeMap;
use std::ffi::CString;
use std::time::{Duration, Instant};

use anyhow::Context;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Offset, TopicPartitionList};

use crate::kafka::SourceContext;
use crate::kafka::TopicPartition;

/// How long the probe waits for every partition's first fetch response.
const PROBE_TIMEOUT: Duration = Duration::from_secs(15);

/// The end of each partition: `listed` holds ListOffsets' (earliest, latest) per partition; one fetch per
/// partition, from just before the listed end, brings the broker's high watermark.
pub fn latest_offsets(
    config: &ClientConfig,
    listed: &BTreeMap<TopicPartition, (i64, i64)>,
) -> anyhow::Result<BTreeMap<TopicPartition, i64>> {
    let mut ends: BTreeMap<TopicPartition, i64> = listed
        .iter()
        .map(|(tp, (_, high))| (tp.clone(), *high))
        .collect();
    if listed.values().all(|(low, high)| high <= low) {
        return Ok(ends);
    }
    let mut config = config.clone();
    config
        .set("enable.partition.eof", "true")
        .set("enable.auto.commit", "false");
    let probe: BaseConsumer<SourceContext> = config
        .create_with_context(SourceContext::default())
        .context("creating the offset probe")?;
    let mut list = TopicPartitionList::new();
    for ((topic, partition), (low, high)) in listed.iter().filter(|(_, (low, high))| high > low) {
        list.add_partition_offset(topic, *partition, Offset::Offset((*high - 1).max(*low)))?;
    }
    probe.assign(&list).context("assigning the offset probe")?;
    // An empty partition's listed end is exact (the gap needs a record batch), so only the others are probed.
    let mut unknown: Vec<TopicPartition> = listed
        .iter()
        .filter(|(_, (low, high))| high > low)
        .map(|(tp, _)| tp.clone())
        .collect();
    let deadline = Instant::now() + PROBE_TIMEOUT;
    while !unknown.is_empty() && Instant::now() < deadline {
        let _ = probe.poll(Duration::from_millis(50));
        unknown.retain(|tp| match fetched_high_watermark(&probe, tp) {
            Some(high) => {
                let end = ends.entry(tp.clone()).or_insert(high);
                *end = (*end).max(high);
                false
            }
            None => true,
        });
    }
    if !unknown.is_empty() {
        tracing::warn!(
            ?unknown,
            "no fetch response in {PROBE_TIMEOUT:?}; using the broker's listed end offsets"
        );
    }
    Ok(ends)
}

/// The high watermark librdkafka cached from the last fetch response for `tp`, if one arrived.
fn fetched_high_watermark(
    consumer: &BaseConsumer<SourceContext>,
    tp: &TopicPartition,
) -> Option<i64> {
    let topic = CString::new(tp.0.as_str()).ok()?;
    let (mut low, mut high) = (-1i64, -1i64);
    // SAFETY: the client pointer is valid for the consumer's lifetime; the out-pointers are valid locals.
    let code = unsafe {
        rdkafka::bindings::rd_kafka_get_watermark_offsets(
            consumer.client().native_ptr(),
            topic.as_ptr(),
            tp.1,
            &mut low,
            &mut high,
        )
    };
    (code == rdkafka::bindings::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR && high >= 0)
        .then_some(high)
}
