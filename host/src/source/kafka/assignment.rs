//! Which partitions the source reads, and from which offsets: the topics resolved against the broker's
//! metadata, `startingOffsets`/`endingOffsets` resolved to offsets, partitions assigned, new partitions
//! discovered while running, and offsets the broker no longer holds (at start or while polling) handled per
//! `failOnDataLoss`.

use std::collections::BTreeMap;
use std::time::Instant;

use anyhow::{bail, Context};
use rdkafka::consumer::Consumer;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::{Offset, TopicPartitionList};

use super::{KafkaSource, METADATA_TIMEOUT};
use crate::kafka::{fetch_metadata_checked, TopicPartition};
use crate::source::latest::latest_offsets;
use crate::source::options::{OffsetSpec, TopicSelection};

impl KafkaSource {
    /// The partitions the options select, per the broker's metadata now.
    pub(super) fn resolve_partitions(&self, at_start: bool) -> anyhow::Result<Vec<TopicPartition>> {
        // At start nothing is assigned yet, so polling for librdkafka's errors loses no message.
        let metadata = if at_start {
            let serve_events = || {
                let _ = self.consumer.poll(std::time::Duration::ZERO);
            };
            fetch_metadata_checked(self.consumer.client(), None, METADATA_TIMEOUT, serve_events)
        } else {
            self.consumer
                .fetch_metadata(None, METADATA_TIMEOUT)
                .map_err(anyhow::Error::from)
        }
        .with_context(|| format!("fetching topic metadata from {}", self.bootstrap))?;
        let mut found = Vec::new();
        let topic_partitions = |name: &str| {
            metadata
                .topics()
                .iter()
                .find(|t| t.name() == name && t.error().is_none())
                .map(|t| t.partitions().iter().map(|p| p.id()).collect::<Vec<_>>())
        };
        match &self.options.topics {
            TopicSelection::Subscribe(topics) => {
                for topic in topics {
                    match topic_partitions(topic) {
                        Some(ids) => found.extend(ids.into_iter().map(|p| (topic.clone(), p))),
                        None if at_start => bail!(
                            "source option `subscribe`: topic {topic:?} does not exist on {}",
                            self.bootstrap
                        ),
                        None => {}
                    }
                }
            }
            TopicSelection::Pattern(regex) => {
                for topic in metadata
                    .topics()
                    .iter()
                    .filter(|t| t.error().is_none() && regex.is_match(t.name()))
                {
                    found.extend(
                        topic
                            .partitions()
                            .iter()
                            .map(|p| (topic.name().to_string(), p.id())),
                    );
                }
            }
            TopicSelection::Assign(assign) => {
                for (topic, partitions) in assign {
                    let existing = topic_partitions(topic).unwrap_or_default();
                    for partition in partitions {
                        if !existing.contains(partition) {
                            bail!("source option `assign`: partition {topic}-{partition} does not exist on {}", self.bootstrap);
                        }
                        found.push((topic.clone(), *partition));
                    }
                }
            }
        }
        found.sort();
        Ok(found)
    }

    /// Turns an offset spec into numeric offsets for `partitions`, checking them against the broker.
    pub(super) fn resolve_offsets(
        &self,
        partitions: &[TopicPartition],
        spec: &OffsetSpec,
        key: &str,
    ) -> anyhow::Result<BTreeMap<TopicPartition, i64>> {
        let mut offsets = BTreeMap::new();
        if let OffsetSpec::Specific(given) = spec {
            if let Some(extra) = given.keys().find(|tp| !partitions.contains(tp)) {
                bail!(
                    "source option `{key}` names {}-{}, which the query does not read",
                    extra.0,
                    extra.1
                );
            }
        }
        let mut listed = BTreeMap::new();
        for tp in partitions {
            listed.insert(tp.clone(), self.watermarks(tp)?);
        }
        let needs_latest = match spec {
            OffsetSpec::Latest => true,
            OffsetSpec::Specific(given) => given.values().any(|o| *o == -1),
            OffsetSpec::Earliest => false,
        };
        let latest = if needs_latest {
            latest_offsets(&self.config, &listed)?
        } else {
            BTreeMap::new()
        };
        for (tp, (low, _)) in listed {
            let high = latest.get(&tp).copied().unwrap_or(low);
            let offset = match spec {
                OffsetSpec::Earliest => low,
                OffsetSpec::Latest => high,
                OffsetSpec::Specific(given) => match given.get(&tp) {
                    None => bail!("source option `{key}` has no offset for {}-{} (give every partition, as Spark requires)", tp.0, tp.1),
                    Some(-2) => low,
                    Some(-1) => high,
                    Some(&n) if n < low && key == "startingOffsets" => {
                        self.data_loss(&tp, n, low)?;
                        low
                    }
                    Some(&n) => n,
                },
            };
            offsets.insert(tp, offset);
        }
        Ok(offsets)
    }

    pub(super) fn watermarks(&self, tp: &TopicPartition) -> anyhow::Result<(i64, i64)> {
        self.consumer
            .fetch_watermarks(&tp.0, tp.1, METADATA_TIMEOUT)
            .with_context(|| {
                format!(
                    "fetching the offsets of {}-{} from {}",
                    tp.0, tp.1, self.bootstrap
                )
            })
    }

    /// Offsets `from..available` of `tp` are gone: fail, or warn and go on, per `failOnDataLoss`.
    pub(super) fn data_loss(
        &self,
        tp: &TopicPartition,
        from: i64,
        available: i64,
    ) -> anyhow::Result<()> {
        let what = format!(
            "offsets {from}..{available} of {}-{} are no longer available on the broker (the earliest is {available})",
            tp.0, tp.1
        );
        if self.options.fail_on_data_loss {
            bail!("{what}; records may have been lost. Set failOnDataLoss = false to continue from the earliest offset");
        }
        tracing::warn!("{what}; continuing from {available} because failOnDataLoss = false");
        Ok(())
    }

    /// A checkpointed partition is gone (its topic deleted, or fewer partitions now): fail, or warn and go
    /// on, per `failOnDataLoss`.
    pub(super) fn data_loss_of_partition(&self, tp: &TopicPartition) -> anyhow::Result<()> {
        let what = format!(
            "partition {}-{} of the checkpoint no longer exists on {}",
            tp.0, tp.1, self.bootstrap
        );
        if self.options.fail_on_data_loss {
            bail!("{what}; its unread records may have been lost. Set failOnDataLoss = false to go on without it");
        }
        tracing::warn!("{what}; going on without it because failOnDataLoss = false");
        Ok(())
    }

    pub(super) fn assign(
        &mut self,
        starts: BTreeMap<TopicPartition, i64>,
        incremental: bool,
    ) -> anyhow::Result<()> {
        let mut list = TopicPartitionList::new();
        for ((topic, partition), offset) in &starts {
            list.add_partition_offset(topic, *partition, Offset::Offset(*offset))?;
        }
        if incremental {
            self.consumer
                .incremental_assign(&list)
                .context("assigning new partitions")?;
        } else {
            self.consumer
                .assign(&list)
                .context("assigning partitions")?;
        }
        for (tp, offset) in starts {
            tracing::info!(topic = tp.0, partition = tp.1, offset, "reading partition");
            self.positions.insert(tp, offset);
        }
        Ok(())
    }

    /// Picks up partitions added to subscribed topics (and topics matching a pattern) since the start.
    pub(super) fn discover(&mut self) -> anyhow::Result<()> {
        self.last_discovery = Instant::now();
        let partitions = self.resolve_partitions(false)?;
        let new: Vec<TopicPartition> = partitions
            .into_iter()
            .filter(|tp| !self.positions.contains_key(tp))
            .collect();
        if new.is_empty() {
            return Ok(());
        }
        // As in Spark, partitions that appear while the query runs are read from their beginning.
        let starts = self.resolve_offsets(&new, &OffsetSpec::Earliest, "startingOffsets")?;
        self.assign(starts, true)
    }

    /// A consumer error while polling: offsets out of the retained range are data loss (per
    /// `failOnDataLoss`), a deleted topic too; transport errors are left to librdkafka's retries.
    pub(super) fn handle_error(&mut self, error: KafkaError) -> anyhow::Result<()> {
        match error {
            KafkaError::MessageConsumption(RDKafkaErrorCode::AutoOffsetReset)
            | KafkaError::MessageConsumption(RDKafkaErrorCode::OffsetOutOfRange) => {
                // Find the partitions whose position fell out of the retained range and handle each.
                for (tp, position) in self.positions.clone() {
                    // Only records below the earliest retained offset can be lost; ListOffsets' "latest"
                    // is not trusted here (see `latest.rs`).
                    let (low, _) = self.watermarks(&tp)?;
                    if position < low {
                        let to = low;
                        self.data_loss(&tp, position, to)?;
                        self.consumer
                            .seek(&tp.0, tp.1, Offset::Offset(to), METADATA_TIMEOUT)
                            .with_context(|| format!("seeking {}-{} to {to}", tp.0, tp.1))?;
                        self.positions.insert(tp, to);
                    }
                }
                Ok(())
            }
            KafkaError::MessageConsumption(RDKafkaErrorCode::UnknownTopicOrPartition)
            | KafkaError::MessageConsumption(RDKafkaErrorCode::UnknownTopic) => {
                if self.options.fail_on_data_loss {
                    bail!("a source topic or partition was deleted while the query ran: {error}; set failOnDataLoss = false to go on without it");
                }
                tracing::warn!("a source topic or partition disappeared: {error}");
                Ok(())
            }
            KafkaError::MessageConsumptionFatal(_) => {
                Err(error).context("the Kafka consumer failed")
            }
            other => {
                // Transport errors and the like: librdkafka retries by itself.
                tracing::warn!("Kafka consumer: {other}");
                Ok(())
            }
        }
    }
}
