//! Running as one of several instances (`[source] consumerGroup = true`): the pipeline's side of the
//! consumer group. The source is a group member (`source/kafka/group.rs`); this file decides what happens
//! when partitions move:
//! - **taken**: exactly once, the partition's transactional producer is opened, which fences its previous
//!   owner (`sink/by_partition.rs`); only then does the source read the group's offset, and, with an
//!   aggregation, the partition's state is rebuilt from its changelog as of that offset (`tasks.rs`);
//! - **given up**: the rebalance waits until every batch read before it has committed (or failed), so a
//!   partition leaves with its output and offsets settled, and the next owner starts where this one
//!   stopped. Then its producer is closed.
//!
//! Offsets are the group's: committed with each partition's transaction (exactly once), or after the
//! output is acknowledged (at least once). There is no checkpoint in this mode: an aggregation's state is
//! kept per partition and moves with it through a changelog topic (`tasks.rs`).

use std::collections::BTreeMap;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use rdkafka::Offset;

use super::partition_write::write_markers;
use super::plan::Plan;
use super::tasks::PartitionTasks;
use super::upstream::Upstreams;
use crate::kafka::TopicPartition;
use crate::progress::ConsumerGroupProgress;
use crate::sink::{Delivery, PartitionProducers};
use crate::source::{GroupMember, Handover, Membership, Source};

/// How long a rebalance waits for the batches in flight before giving their partitions up anyway (their
/// commits are then fenced by the next owner, and nothing is written twice).
const SETTLE_TIMEOUT: Duration = Duration::from_secs(120);

/// The batches read from the source and not yet committed or failed.
#[derive(Default)]
pub(crate) struct BatchesInFlight {
    count: Mutex<u64>,
    settled: Condvar,
}

/// One batch in flight; dropping it (when the batch's write ends, or the batch is dropped) settles it.
pub(crate) struct BatchToken(Arc<BatchesInFlight>);

impl BatchesInFlight {
    /// Counts a batch as in flight until the token is dropped.
    pub(crate) fn token(self: &Arc<Self>) -> BatchToken {
        *self.count.lock().expect("not poisoned") += 1;
        BatchToken(self.clone())
    }

    /// Waits until no batch is in flight, or `timeout`; says whether they settled.
    fn wait_settled(&self, timeout: Duration) -> bool {
        let count = self.count.lock().expect("not poisoned");
        let (count, _) = self
            .settled
            .wait_timeout_while(count, timeout, |count| *count > 0)
            .expect("not poisoned");
        *count == 0
    }
}

impl Drop for BatchToken {
    fn drop(&mut self) {
        *self.0.count.lock().expect("not poisoned") -= 1;
        self.0.settled.notify_all();
    }
}

/// What the pipeline does when the group moves partitions; see the module's doc.
struct InstanceHandover {
    /// Exactly once: the per-partition producers.
    producers: Option<Arc<PartitionProducers>>,
    /// With state: the per-partition tasks.
    tasks: Option<Arc<PartitionTasks>>,
    /// With a repartition: the input partitions' tasks.
    upstreams: Option<Arc<Upstreams>>,
    in_flight: Arc<BatchesInFlight>,
}

impl Handover for InstanceHandover {
    fn taken(&self, partitions: &[TopicPartition]) -> anyhow::Result<()> {
        match &self.producers {
            Some(producers) => producers.take(partitions),
            None => Ok(()),
        }
    }

    fn starting(
        &self,
        partitions: &[(TopicPartition, Option<i64>)],
    ) -> anyhow::Result<Vec<(TopicPartition, Offset)>> {
        let Some(tasks) = &self.tasks else {
            return Ok(Vec::new());
        };
        let Some(upstreams) = &self.upstreams else {
            return tasks.restore(partitions);
        };
        // An input partition's new owner marks where it starts, so that downstream tasks can count its
        // last owner's last batch (`repartition/chain.rs`); a repartition partition's task is rebuilt.
        let (downstream, input): (Vec<_>, Vec<_>) =
            (partitions.iter().cloned()).partition(|(tp, _)| tp.0 == upstreams.topic());
        for (tp, committed) in &input {
            let marker = upstreams.start(tp, *committed)?;
            if let Some(producers) = &self.producers {
                write_markers(producers, tp, &marker)?;
            }
        }
        tasks.restore(&downstream)
    }

    fn released(&self, partitions: &[TopicPartition]) {
        let waiting = Instant::now();
        if !self.in_flight.wait_settled(SETTLE_TIMEOUT) {
            tracing::warn!(
                "giving partitions up with batches still in flight after {SETTLE_TIMEOUT:?}; their next owner fences them"
            );
        }
        tracing::debug!(waited = ?waiting.elapsed(), "batches in flight settled before a rebalance");
        if let Some(producers) = &self.producers {
            producers.release(partitions);
        }
        if let Some(tasks) = &self.tasks {
            tasks.release(partitions);
        }
        if let Some(upstreams) = &self.upstreams {
            upstreams.release(partitions);
        }
    }
}

/// A group member's pipeline: how its source joins, and what its batches commit with.
pub(crate) struct GroupRun {
    pub(crate) in_flight: Arc<BatchesInFlight>,
    tasks: Option<Arc<PartitionTasks>>,
    /// With a repartition: the input partitions' tasks (the source also reads their topic).
    pub(crate) upstreams: Option<Arc<Upstreams>>,
    /// Exactly once: the per-partition producers, which are also the sink.
    pub(crate) producers: Option<Arc<PartitionProducers>>,
    pub(crate) membership: Membership,
}

impl GroupRun {
    /// For pipeline `name`: the group `weir-<name>`, and per-partition producers when `delivery` is
    /// exactly once.
    pub(crate) fn new(plan: &Plan) -> GroupRun {
        let spec = plan.spec();
        let group = format!("weir-{}", spec.name);
        let producers = (spec.sink.delivery == Delivery::ExactlyOnce).then(|| {
            Arc::new(PartitionProducers::new(
                spec.sink.options.clone(),
                spec.sink.format,
                group.clone(),
            ))
        });
        let in_flight = Arc::new(BatchesInFlight::default());
        let handover = Arc::new(InstanceHandover {
            producers: producers.clone(),
            tasks: plan.tasks.clone(),
            upstreams: plan.upstreams.clone(),
            in_flight: in_flight.clone(),
        });
        GroupRun {
            in_flight,
            tasks: plan.tasks.clone(),
            upstreams: plan.upstreams.clone(),
            producers,
            membership: Membership { group, handover },
        }
    }

    /// What the batch loop keeps once `source` has joined the group.
    pub(crate) fn member_batches(self, source: &Source) -> Option<MemberBatches> {
        match source {
            Source::Kafka(kafka) => kafka.member().map(|member| MemberBatches {
                member,
                in_flight: self.in_flight,
                tasks: self.tasks,
            }),
            Source::Files(_) => None,
        }
    }
}

/// What a group member's batch commits with: the member (whose metadata goes with the offsets) and the
/// batch's end offsets; it holds the batch in flight until it is dropped.
pub(crate) struct GroupCommit {
    pub(crate) member: GroupMember,
    pub(crate) end: BTreeMap<TopicPartition, i64>,
    pub(crate) _in_flight: BatchToken,
}

impl GroupCommit {
    /// At least once, after the output is acknowledged; says whether the offsets committed. A refused
    /// commit (the partitions moved meanwhile) means the next owner reads those records again, which
    /// at-least-once allows.
    pub(crate) fn commit_offsets(&self, batch: u64) -> bool {
        let committed = self.member.commit(&self.end);
        if let Err(e) = &committed {
            tracing::warn!(
                "batch {batch} is written, but committing its offsets to consumer group {} failed: {e:#}; its records may be read again",
                self.member.group()
            );
        }
        committed.is_ok()
    }
}

/// What a group member's batch loop keeps: the member, and the batches in flight.
pub(crate) struct MemberBatches {
    pub(crate) member: GroupMember,
    pub(crate) in_flight: Arc<BatchesInFlight>,
    tasks: Option<Arc<PartitionTasks>>,
}

impl MemberBatches {
    /// The member's share of the partitions now, for the batch's progress report.
    pub(crate) fn progress(&self) -> ConsumerGroupProgress {
        ConsumerGroupProgress {
            group: self.member.group().to_string(),
            assigned_partitions: (self.member.assignment().iter())
                .map(|(topic, partition)| format!("{topic}-{partition}"))
                .collect(),
            rebalances: self.member.rebalances(),
            restores: self.tasks.as_ref().map(|tasks| tasks.restores()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rebalance_waits_for_the_batches_in_flight_to_settle() {
        let in_flight = Arc::new(BatchesInFlight::default());
        assert!(in_flight.wait_settled(Duration::ZERO));
        let (first, second) = (in_flight.token(), in_flight.token());
        assert!(!in_flight.wait_settled(Duration::from_millis(10)));
        drop(first);
        assert!(!in_flight.wait_settled(Duration::from_millis(10)));
        let writing = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            drop(second);
        });
        assert!(in_flight.wait_settled(Duration::from_secs(10)));
        writing.join().unwrap();
    }
}
