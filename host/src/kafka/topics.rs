//! Topics Weir keeps for itself (a stateful group member's changelogs): creating one compacted, and
//! reading its partitions from the start to their end.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Headers, Message};
use rdkafka::{Offset, TopicPartitionList};

use super::SourceContext;

/// How long creating a topic, or reading its partitions to their end, may take.
const TOPIC_TIMEOUT: Duration = Duration::from_secs(60);

/// Creates `topic` with as many partitions as the largest of `like`, compacted (`compacted`) or not, unless
/// it exists; an existing topic must have at least that many. Returns the partitions it has.
pub(crate) fn ensure_topic(
    config: &ClientConfig,
    topic: &str,
    like: &[&str],
    compacted: bool,
) -> anyhow::Result<i32> {
    let admin: AdminClient<DefaultClientContext> =
        config.create().context("creating a Kafka admin client")?;
    let mut partitions = 1;
    for source in like {
        partitions = partitions.max(partition_count(&admin, source)?);
    }
    let policy = if compacted { "compact" } else { "delete" };
    let new =
        NewTopic::new(topic, partitions, TopicReplication::Fixed(-1)).set("cleanup.policy", policy);
    let options = AdminOptions::new().operation_timeout(Some(TOPIC_TIMEOUT));
    let results = futures_executor::block_on(admin.create_topics([&new], &options))
        .with_context(|| format!("creating topic {topic}"))?;
    for result in results {
        match result {
            Ok(_) => tracing::info!(topic, partitions, policy, "created topic"),
            Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((_, code)) => bail!("creating topic {topic}: {code}"),
        }
    }
    let existing = partition_count(&admin, topic)?;
    if existing < partitions {
        bail!("topic {topic} has {existing} partitions, and needs {partitions} (one per input partition): delete it, or add partitions");
    }
    Ok(existing)
}

/// Every partition of `topics`.
pub(crate) fn partitions_of(
    config: &ClientConfig,
    topics: &[&str],
) -> anyhow::Result<Vec<(String, i32)>> {
    let admin: AdminClient<DefaultClientContext> =
        config.create().context("creating a Kafka admin client")?;
    let mut all = Vec::new();
    for topic in topics {
        let count = partition_count(&admin, topic)?;
        anyhow::ensure!(count > 0, "topic {topic} does not exist");
        all.extend((0..count).map(|p| (topic.to_string(), p)));
    }
    Ok(all)
}

/// How many partitions `topic` has (0 when it does not exist).
fn partition_count(admin: &AdminClient<DefaultClientContext>, topic: &str) -> anyhow::Result<i32> {
    let metadata = admin
        .inner()
        .fetch_metadata(Some(topic), TOPIC_TIMEOUT)
        .with_context(|| format!("reading topic {topic}'s metadata"))?;
    Ok(metadata
        .topics()
        .first()
        .map_or(0, |t| t.partitions().len() as i32))
}

/// A record Weir writes to a topic of its own: key, value (`None`: a tombstone) and text headers.
pub(crate) type KeyedRecord = (Vec<u8>, Option<Vec<u8>>, Vec<(&'static str, String)>);

/// Records for one partition of a topic Weir keeps for itself (a changelog, the repartition topic), written
/// in a batch's transaction.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct TopicWrite {
    pub(crate) topic: String,
    pub(crate) partition: i32,
    pub(crate) records: Vec<KeyedRecord>,
}

/// A record read back from a topic Weir wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StoredRecord {
    pub(crate) offset: i64,
    pub(crate) key: Vec<u8>,
    /// `None`: a tombstone.
    pub(crate) value: Option<Vec<u8>>,
    pub(crate) headers: Vec<(String, Vec<u8>)>,
}

/// Every record of each of `partitions` of `topic` from the offset paired with it (or the partition's
/// start, if later) to its end as of the call, read by one consumer (read_committed: a broker that filters
/// aborted transactions leaves them out; one that does not returns them too).
pub(crate) fn read_partitions(
    config: &ClientConfig,
    topic: &str,
    partitions: &[(i32, i64)],
) -> anyhow::Result<BTreeMap<i32, Vec<StoredRecord>>> {
    let mut config = config.clone();
    config
        .set("group.id", "weir-restore")
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "true")
        .set("isolation.level", "read_committed")
        // The end of a partition shows as an empty fetch, which the broker would otherwise hold for
        // 500 ms: a restore is on the path of a partition moving.
        .set("fetch.wait.max.ms", "10");
    let consumer: BaseConsumer<SourceContext> = config
        .create_with_context(SourceContext::default())
        .with_context(|| format!("creating a consumer to read back {topic}"))?;
    let mut logs: BTreeMap<i32, Vec<StoredRecord>> = BTreeMap::new();
    let mut list = TopicPartitionList::new();
    for &(partition, from) in partitions {
        logs.insert(partition, Vec::new());
        let (low, high) = consumer
            .fetch_watermarks(topic, partition, TOPIC_TIMEOUT)
            .with_context(|| format!("reading {topic}-{partition}'s offsets"))?;
        if high > low.max(from) {
            list.add_partition_offset(topic, partition, Offset::Offset(low.max(from)))?;
        }
    }
    let mut unfinished: BTreeSet<i32> = list.elements().iter().map(|e| e.partition()).collect();
    consumer
        .assign(&list)
        .with_context(|| format!("assigning {topic}'s partitions {unfinished:?}"))?;
    let deadline = Instant::now() + TOPIC_TIMEOUT;
    // A partition ends where the broker says it does (after the last transaction marker, which is never
    // delivered), so the end-of-partition event decides, not the last offset read.
    while !unfinished.is_empty() {
        if Instant::now() > deadline {
            bail!("reading {topic}'s partitions {unfinished:?} to their end took over {TOPIC_TIMEOUT:?}");
        }
        let message = match consumer.poll(Duration::from_millis(100)) {
            None => continue,
            Some(Err(KafkaError::PartitionEOF(partition))) => {
                unfinished.remove(&partition);
                continue;
            }
            Some(message) => message.with_context(|| format!("reading {topic}"))?,
        };
        let headers = message.headers().map_or_else(Vec::new, |h| {
            h.iter()
                .map(|h| (h.key.to_string(), h.value.unwrap_or_default().to_vec()))
                .collect()
        });
        logs.entry(message.partition())
            .or_default()
            .push(StoredRecord {
                offset: message.offset(),
                key: message.key().unwrap_or_default().to_vec(),
                value: message.payload().map(<[u8]>::to_vec),
                headers,
            });
    }
    Ok(logs)
}
