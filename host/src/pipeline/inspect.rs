//! `weir checkpoint inspect PIPELINE.toml`: what a pipeline has committed, wherever it keeps it. A
//! pipeline with `checkpointLocation` keeps it in that folder (`checkpoint/inspect.rs`). A group member
//! (`consumerGroup = true`) has no folder: Kafka holds its progress, and this reads it there: the group's
//! members and their partitions, each input partition's committed offset and lag, and the changelog a
//! partition's next owner would read to rebuild its state.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::time::Duration;

use anyhow::{bail, Context};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Offset, TopicPartitionList};

use super::spec::PipelineSpec;
use super::tasks::OPERATOR;
use crate::kafka::{client_config, TopicPartition};
use crate::source::{latest_offsets, SourceOptions, TopicSelection};
use crate::state::changelog::changelog_topic;

/// How long each request to the broker may take.
const TIMEOUT: Duration = Duration::from_secs(15);

/// The report of `spec`'s committed progress: its checkpoint folder's, or its consumer group's.
///
/// ```no_run
/// let spec = weir::config::load(std::path::Path::new("examples/fraud-window/pipeline.toml"))?;
/// print!("{}", weir::inspect_pipeline(&spec)?);
/// # Ok::<(), anyhow::Error>(())
/// ```
pub fn inspect_pipeline(spec: &PipelineSpec) -> anyhow::Result<String> {
    match (spec.source.kafka(), &spec.checkpoint) {
        (Some(options), _) if options.consumer_group => inspect_group(spec, options),
        (_, Some(folder)) => crate::checkpoint::inspect(folder),
        (_, None) => bail!(
            "pipeline {:?} keeps no progress to inspect: it has no checkpointLocation and is not a \
             consumer group member",
            spec.name
        ),
    }
}

/// The group `weir-<name>`: members, committed offsets and lag, and the changelog.
fn inspect_group(spec: &PipelineSpec, options: &SourceOptions) -> anyhow::Result<String> {
    let group = format!("weir-{}", spec.name);
    let mut config = client_config(&options.kafka);
    config
        .set("group.id", &group)
        .set("enable.auto.commit", "false");
    let consumer: BaseConsumer = config
        .create()
        .context("creating a Kafka client to read the group")?;
    let mut out = String::new();
    let _ = writeln!(out, "pipeline    {} (consumerGroup = true)", spec.name);
    write_members(&mut out, &consumer, &group);
    let partitions = input_partitions(&consumer, &options.topics)?;
    write_offsets(&mut out, (&config, &consumer), &partitions)?;
    if spec.aggregate.is_some() {
        let changelog = changelog_topic(&spec.name, OPERATOR);
        write_changelog(&mut out, (&config, &consumer), &changelog)?;
    }
    Ok(out)
}

/// The group's state and each member's partitions, as the broker describes them.
fn write_members(out: &mut String, consumer: &BaseConsumer, group: &str) {
    let described = consumer.fetch_group_list(Some(group), TIMEOUT);
    let Some(info) = described
        .as_ref()
        .ok()
        .and_then(|list| list.groups().first())
    else {
        let why = described
            .err()
            .map_or("no such group".into(), |e| e.to_string());
        let _ = writeln!(
            out,
            "group       {group}: not described by the broker ({why})"
        );
        return;
    };
    let _ = writeln!(
        out,
        "group       {group}: {}, {} member{}",
        info.state(),
        info.members().len(),
        if info.members().len() == 1 { "" } else { "s" }
    );
    for member in info.members() {
        let owned = member.assignment().and_then(assigned_partitions).map_or(
            "(the broker did not say which partitions)".into(),
            |tps| {
                tps.iter()
                    .map(|(t, p)| format!("{t}-{p}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            },
        );
        // tansu leaves the client id and host empty.
        let client = match (member.client_id(), member.client_host()) {
            ("", "") => String::new(),
            (id, host) => format!(" ({id}, {host})"),
        };
        let _ = writeln!(out, "  member    {}{client}: {owned}", member.id());
    }
}

/// The partitions a consumer-protocol assignment gives (version, then per topic its name and partitions:
/// Kafka's non-flexible encoding, big-endian, strings and arrays prefixed by their length).
fn assigned_partitions(bytes: &[u8]) -> Option<Vec<TopicPartition>> {
    let mut at = 2; // the version
    let mut take = |n: usize| -> Option<&[u8]> {
        let field = bytes.get(at..at + n)?;
        at += n;
        Some(field)
    };
    let topics = i32::from_be_bytes(take(4)?.try_into().ok()?);
    let mut assigned = Vec::new();
    for _ in 0..topics.max(0) {
        let length = i16::from_be_bytes(take(2)?.try_into().ok()?);
        let topic = String::from_utf8(take(usize::try_from(length).ok()?)?.to_vec()).ok()?;
        let count = i32::from_be_bytes(take(4)?.try_into().ok()?);
        for _ in 0..count.max(0) {
            assigned.push((topic.clone(), i32::from_be_bytes(take(4)?.try_into().ok()?)));
        }
    }
    Some(assigned)
}

/// The input partitions the source reads, from the cluster's metadata.
fn input_partitions(
    consumer: &BaseConsumer,
    selection: &TopicSelection,
) -> anyhow::Result<Vec<TopicPartition>> {
    if let TopicSelection::Assign(assigned) = selection {
        return Ok((assigned.iter())
            .flat_map(|(t, ps)| ps.iter().map(|p| (t.clone(), *p)))
            .collect());
    }
    let metadata = consumer
        .fetch_metadata(None, TIMEOUT)
        .context("reading the cluster's topics")?;
    let read = |topic: &str| match selection {
        TopicSelection::Subscribe(topics) => topics.iter().any(|t| t == topic),
        TopicSelection::Pattern(pattern) => pattern.is_match(topic),
        TopicSelection::Assign(_) => false,
    };
    Ok((metadata.topics().iter())
        .filter(|t| read(t.name()))
        .flat_map(|t| {
            t.partitions()
                .iter()
                .map(|p| (t.name().to_string(), p.id()))
        })
        .collect())
}

/// Each partition's (start, end): listed by the broker, the end corrected from a fetch (tansu's listed
/// end falls short, see `source/latest.rs`).
fn partition_bounds(
    config: &ClientConfig,
    consumer: &BaseConsumer,
    partitions: &[TopicPartition],
) -> anyhow::Result<BTreeMap<TopicPartition, (i64, i64)>> {
    let mut listed = BTreeMap::new();
    for (topic, partition) in partitions {
        let bounds = consumer
            .fetch_watermarks(topic, *partition, TIMEOUT)
            .with_context(|| format!("reading {topic}-{partition}'s offsets"))?;
        listed.insert((topic.clone(), *partition), bounds);
    }
    let ends = latest_offsets(config, &listed)?;
    Ok(listed
        .into_iter()
        .map(|(tp, (start, _))| {
            let end = ends[&tp];
            (tp, (start, end))
        })
        .collect())
}

/// Each input partition's committed offset, end and lag.
fn write_offsets(
    out: &mut String,
    (config, consumer): (&ClientConfig, &BaseConsumer),
    partitions: &[TopicPartition],
) -> anyhow::Result<()> {
    let mut list = TopicPartitionList::new();
    for (topic, partition) in partitions {
        list.add_partition(topic, *partition);
    }
    let committed = consumer
        .committed_offsets(list, TIMEOUT)
        .context("reading the group's committed offsets")?;
    let bounds = partition_bounds(config, consumer, partitions)?;
    let _ = writeln!(out, "input       partition: committed / end (lag)");
    let mut total_lag = 0;
    for element in committed.elements() {
        let tp = (element.topic().to_string(), element.partition());
        let (_, end) = bounds[&tp];
        let line = match element.offset() {
            Offset::Offset(at) => {
                total_lag += end - at;
                format!("{at} / {end} ({})", end - at)
            }
            _ => format!("none committed / {end}"),
        };
        let _ = writeln!(out, "  {}-{}: {line}", tp.0, tp.1);
    }
    let _ = writeln!(
        out,
        "lag         {total_lag} records past the committed offsets"
    );
    Ok(())
}

/// Each changelog partition's records: what a restore of that partition reads.
fn write_changelog(
    out: &mut String,
    (config, consumer): (&ClientConfig, &BaseConsumer),
    topic: &str,
) -> anyhow::Result<()> {
    let metadata = consumer
        .fetch_metadata(Some(topic), TIMEOUT)
        .with_context(|| format!("reading {topic}'s metadata"))?;
    let partitions: Vec<TopicPartition> = (metadata.topics().first())
        .filter(|t| t.error().is_none())
        .map_or(Vec::new(), |t| {
            (t.partitions().iter())
                .map(|p| (topic.to_string(), p.id()))
                .collect()
        });
    if partitions.is_empty() {
        let _ = writeln!(out, "changelog   {topic}: not created yet");
        return Ok(());
    }
    let _ = writeln!(
        out,
        "changelog   {topic}: records a restore reads, per partition"
    );
    for ((_, partition), (start, end)) in partition_bounds(config, consumer, &partitions)? {
        let _ = writeln!(
            out,
            "  {partition}: {} (offsets {start}..{end})",
            end - start
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::assigned_partitions;

    /// A consumer-protocol assignment as librdkafka writes it: version 1, two topics, no user data.
    #[test]
    fn reads_an_assignment() {
        let mut bytes = vec![0, 1, 0, 0, 0, 2];
        for (topic, partitions) in [("tx", &[0i32, 2][..]), ("other", &[5][..])] {
            bytes.extend((topic.len() as i16).to_be_bytes());
            bytes.extend(topic.as_bytes());
            bytes.extend((partitions.len() as i32).to_be_bytes());
            for p in partitions {
                bytes.extend(p.to_be_bytes());
            }
        }
        bytes.extend((-1i32).to_be_bytes());
        assert_eq!(
            assigned_partitions(&bytes),
            Some(vec![
                ("tx".into(), 0),
                ("tx".into(), 2),
                ("other".into(), 5)
            ])
        );
        // Cut short: not readable, rather than partly read.
        assert_eq!(assigned_partitions(&bytes[..10]), None);
    }
}
