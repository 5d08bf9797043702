//! The source as a consumer group member (`consumerGroup = true`): instances of one pipeline share its
//! partitions through the group `weir-<name>`, whose cooperative-sticky assignor moves only the partitions
//! that must move when a member joins, leaves or dies. Kafka's group protocol is the coordinator; Weir
//! runs none of its own.
//!
//! A rebalance reaches the source inside its poll (`kafka/consumer.rs`). Before a partition is read, the
//! pipeline's [`Handover`] fences whatever its previous owner left unfinished, and only then is the
//! group's committed offset read, so that offset is final. Before a partition is given up, the handover
//! waits for the batches already read with it to commit. Between polls, the source moves its positions
//! and drops the records of the batch being read that belong to partitions it gave up.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerGroupMetadata};
use rdkafka::{Offset, TopicPartitionList};

use super::KafkaSource;
use crate::kafka::{offset_list, Rebalancing, SourceContext, TopicPartition};
use crate::source::records::ChunkBuilder;
use crate::source::OffsetSpec;

/// How long reading the group's committed offsets may take when partitions are assigned.
const COMMITTED_TIMEOUT: Duration = Duration::from_secs(30);

/// What the pipeline does when partitions move to or from this instance.
pub(crate) trait Handover: Send + Sync {
    /// `partitions` are about to be read: whatever their previous owner left unfinished must be fenced
    /// first (exactly-once: its open transactions aborted).
    fn taken(&self, partitions: &[TopicPartition]) -> anyhow::Result<()>;
    /// `partitions` start from these offsets the group committed (`None`: nothing committed yet): the state
    /// that goes with them must be ready before they are read. Returns the partitions to read from
    /// elsewhere (a repartition partition, from its first write not yet decided).
    fn starting(
        &self,
        partitions: &[(TopicPartition, Option<i64>)],
    ) -> anyhow::Result<Vec<(TopicPartition, Offset)>>;
    /// `partitions` are about to be given up: returns once every batch read with them has committed or
    /// failed.
    fn released(&self, partitions: &[TopicPartition]);
}

/// How a source joins its group.
#[derive(Clone)]
pub(crate) struct Membership {
    /// The group: `weir-<name>`.
    pub(crate) group: String,
    pub(crate) handover: Arc<dyn Handover>,
}

/// A change of assignment, from the rebalance callback to the source's next look.
enum Change {
    /// Partitions taken, with the offset each starts from when it is known (not `earliest`/`latest`).
    Assigned(Vec<(TopicPartition, Option<i64>)>),
    Revoked(Vec<TopicPartition>),
    /// Fencing failed: the source must not go on.
    Failed(String),
}

/// The member's side of rebalances: runs the handover, then queues the change for the source.
pub(super) struct MemberRebalancing {
    handover: Arc<dyn Handover>,
    starting: OffsetSpec,
    changes: Mutex<Vec<Change>>,
    changed: AtomicBool,
    /// Rebalances that moved partitions to or from this member.
    rebalances: AtomicU64,
}

/// The consumer group member behind a source, for committing its offsets: the member's own metadata
/// (generation and member id) goes with every commit, so a broker that checks it refuses a stale member.
#[derive(Clone)]
pub(crate) struct GroupMember {
    consumer: Arc<BaseConsumer<SourceContext>>,
    group: String,
    rebalancing: Arc<MemberRebalancing>,
}

impl GroupMember {
    /// What a transactional producer sends with the offsets it commits for this member.
    pub(crate) fn metadata(&self) -> anyhow::Result<ConsumerGroupMetadata> {
        self.consumer
            .group_metadata()
            .with_context(|| format!("reading consumer group {}'s metadata", self.group))
    }

    /// Commits `offsets` for the group outside a transaction (at-least-once).
    pub(crate) fn commit(&self, offsets: &BTreeMap<TopicPartition, i64>) -> anyhow::Result<()> {
        self.consumer
            .commit(&offset_list(offsets)?, CommitMode::Sync)
            .with_context(|| format!("committing offsets for consumer group {}", self.group))
    }

    /// The group's name.
    pub(crate) fn group(&self) -> &str {
        &self.group
    }

    /// The partitions this member owns now.
    pub(crate) fn assignment(&self) -> Vec<TopicPartition> {
        self.consumer
            .assignment()
            .map(|list| listed(&list))
            .unwrap_or_default()
    }

    /// Rebalances that moved partitions to or from this member since it joined.
    pub(crate) fn rebalances(&self) -> u64 {
        self.rebalancing.rebalances.load(Ordering::Relaxed)
    }
}

fn listed(partitions: &TopicPartitionList) -> Vec<TopicPartition> {
    partitions
        .elements()
        .iter()
        .map(|e| (e.topic().to_string(), e.partition()))
        .collect()
}

fn names(partitions: &[TopicPartition]) -> String {
    let names: Vec<String> = partitions.iter().map(|(t, p)| format!("{t}-{p}")).collect();
    names.join(", ")
}

impl MemberRebalancing {
    fn push(&self, change: Change) {
        self.rebalances.fetch_add(1, Ordering::Relaxed);
        self.changes.lock().expect("not poisoned").push(change);
        self.changed.store(true, Ordering::Release);
    }

    /// Where a partition without a committed offset starts: `startingOffsets`, as for a fresh query.
    fn starting_offset(&self, tp: &TopicPartition) -> Offset {
        match &self.starting {
            OffsetSpec::Earliest => Offset::Beginning,
            OffsetSpec::Latest => Offset::End,
            OffsetSpec::Specific(offsets) => match offsets.get(tp) {
                Some(-2) => Offset::Beginning,
                Some(offset) if *offset >= 0 => Offset::Offset(*offset),
                _ => Offset::End,
            },
        }
    }

    /// The group's committed offset of each partition, read after fencing, else `startingOffsets`; and
    /// whether it was the group's.
    fn starting_offsets(
        &self,
        consumer: &BaseConsumer<SourceContext>,
        partitions: &TopicPartitionList,
    ) -> anyhow::Result<Vec<(TopicPartition, Offset, bool)>> {
        let committed = consumer
            .committed_offsets(partitions.clone(), COMMITTED_TIMEOUT)
            .context("reading the group's committed offsets")?;
        Ok(committed
            .elements()
            .iter()
            .map(|e| {
                let tp = (e.topic().to_string(), e.partition());
                match e.offset() {
                    Offset::Offset(o) => (tp, Offset::Offset(o), true),
                    _ => {
                        let offset = self.starting_offset(&tp);
                        (tp, offset, false)
                    }
                }
            })
            .collect())
    }
}

impl Rebalancing for MemberRebalancing {
    fn assigned(
        &self,
        consumer: &BaseConsumer<SourceContext>,
        partitions: &mut TopicPartitionList,
    ) {
        let taking = Instant::now();
        let tps = listed(partitions);
        if tps.is_empty() {
            return;
        }
        let starts = self
            .handover
            .taken(&tps)
            .and_then(|()| self.starting_offsets(consumer, partitions))
            .and_then(|starts| {
                let committed: Vec<_> = (starts.iter())
                    .map(|(tp, offset, committed)| match (offset, committed) {
                        (Offset::Offset(o), true) => (tp.clone(), Some(*o)),
                        _ => (tp.clone(), None),
                    })
                    .collect();
                let elsewhere = self.handover.starting(&committed)?;
                Ok(starts
                    .into_iter()
                    .map(|(tp, offset, committed)| {
                        match elsewhere.iter().find(|(moved, _)| *moved == tp) {
                            Some((_, from)) => (tp, *from, committed),
                            None => (tp, offset, committed),
                        }
                    })
                    .collect::<Vec<_>>())
            });
        let starts = match starts {
            Ok(starts) => starts,
            Err(error) => {
                let message = format!("taking partitions {}: {error:#}", names(&tps));
                return self.push(Change::Failed(message));
            }
        };
        for ((topic, partition), offset, _) in &starts {
            if let Err(error) = partitions.set_partition_offset(topic, *partition, *offset) {
                return self.push(Change::Failed(format!("{topic}-{partition}: {error}")));
            }
        }
        tracing::info!(partitions = %names(&tps), elapsed = ?taking.elapsed(), "partitions assigned to this instance");
        let known = starts
            .into_iter()
            .map(|(tp, offset, _)| match offset {
                Offset::Offset(o) => (tp, Some(o)),
                _ => (tp, None),
            })
            .collect();
        self.push(Change::Assigned(known));
    }

    fn revoked(&self, partitions: &TopicPartitionList, lost: bool) {
        let releasing = Instant::now();
        let tps = listed(partitions);
        if tps.is_empty() {
            return;
        }
        self.handover.released(&tps);
        match lost {
            true => {
                tracing::warn!(partitions = %names(&tps), "partitions lost: this instance missed the group's session timeout, and another instance has taken them")
            }
            false => {
                tracing::info!(partitions = %names(&tps), elapsed = ?releasing.elapsed(), "partitions released to another instance")
            }
        }
        self.push(Change::Revoked(tps));
    }
}

impl KafkaSource {
    /// Joins the group and subscribes; partitions come with the first rebalance, inside a poll.
    pub(super) fn join_group(&mut self, membership: Membership) -> anyhow::Result<()> {
        let rebalancing = Arc::new(MemberRebalancing {
            handover: membership.handover,
            starting: self.options.starting.clone(),
            changes: Mutex::new(Vec::new()),
            changed: AtomicBool::new(false),
            rebalances: AtomicU64::new(0),
        });
        self.consumer.context().rebalance_with(rebalancing.clone());
        let topics: Vec<String> = match &self.options.topics {
            crate::source::TopicSelection::Subscribe(topics) => topics.clone(),
            // librdkafka reads a subscription starting with `^` as a regular expression.
            crate::source::TopicSelection::Pattern(regex) => vec![regex.as_str().to_string()],
            crate::source::TopicSelection::Assign(_) => {
                anyhow::bail!("a consumer group member subscribes: `assign` cannot be used")
            }
        };
        let topics: Vec<&str> = topics.iter().map(String::as_str).collect();
        self.consumer
            .subscribe(&topics)
            .with_context(|| format!("joining consumer group {}", membership.group))?;
        tracing::info!(group = %membership.group, "joined the consumer group; waiting for partitions");
        self.member = Some(GroupMember {
            consumer: self.consumer.clone(),
            group: membership.group,
            rebalancing,
        });
        Ok(())
    }

    /// The group member, when the source is one.
    pub(crate) fn member(&self) -> Option<GroupMember> {
        self.member.clone()
    }

    /// Applies the rebalances since the last look (see [`MemberRebalancing::apply`]); returns how many
    /// records were dropped.
    pub(super) fn apply_rebalances(
        member: Option<&GroupMember>,
        positions: &mut BTreeMap<TopicPartition, i64>,
        builders: &mut Vec<ChunkBuilder>,
    ) -> anyhow::Result<usize> {
        match member {
            Some(member) => member.rebalancing.apply(positions, builders),
            None => Ok(0),
        }
    }
}

impl MemberRebalancing {
    /// Positions of taken partitions are set, those of given up partitions forgotten with their records in
    /// `builders` (never processed, so never committed). Returns how many records were dropped.
    fn apply(
        &self,
        positions: &mut BTreeMap<TopicPartition, i64>,
        builders: &mut Vec<ChunkBuilder>,
    ) -> anyhow::Result<usize> {
        if !self.changed.swap(false, Ordering::Acquire) {
            return Ok(0);
        }
        let changes = std::mem::take(&mut *self.changes.lock().expect("not poisoned"));
        let mut dropped = 0;
        for change in changes {
            match change {
                Change::Assigned(starts) => {
                    for (tp, start) in starts {
                        match start {
                            Some(offset) => positions.insert(tp, offset),
                            None => positions.remove(&tp),
                        };
                    }
                }
                Change::Revoked(tps) => {
                    for tp in &tps {
                        positions.remove(tp);
                    }
                    builders.retain(|b| {
                        let keep = !tps.contains(&(b.topic.clone(), b.partition));
                        dropped += if keep { 0 } else { b.len() };
                        keep
                    });
                }
                Change::Failed(message) => anyhow::bail!("consumer group rebalance: {message}"),
            }
        }
        Ok(dropped)
    }
}
