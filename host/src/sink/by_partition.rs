//! Exactly-once output for a consumer group member: one transactional producer per input partition, with
//! `transactional.id` = `<group>-<topic>-<partition>`, each committing its partition's output with its
//! partition's offsets.
//!
//! Why per partition: when a partition moves to another instance, the new owner registers the partition's
//! `transactional.id` before it reads the group's offset, and the broker fences the old owner's producer
//! and aborts its open transaction. A member that paused past the session timeout (a zombie) therefore
//! cannot commit output for a partition it lost, on any broker: tansu does not check the group generation
//! that KIP-447 relies on (the offsets are still sent with the member's metadata, for brokers that do).
//! This is Kafka Streams' first exactly-once design; it costs a producer and a transaction per partition.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use anyhow::Context;

use super::kafka::{describe, KafkaSink};
use super::transaction_ends::TransactionEnds;
use super::{SinkFormat, SinkOptions};
use crate::kafka::TopicPartition;

/// The transactional producers of the partitions this instance owns.
pub(crate) struct PartitionProducers {
    options: SinkOptions,
    format: SinkFormat,
    /// `weir-<name>`: the start of every `transactional.id`.
    prefix: String,
    /// One turn for all of them: their transactions end one at a time (`transaction_ends.rs`).
    ends: TransactionEnds,
    producers: Mutex<BTreeMap<TopicPartition, Arc<KafkaSink>>>,
}

impl PartitionProducers {
    /// No producer yet: they are opened as partitions are taken.
    pub(crate) fn new(options: SinkOptions, format: SinkFormat, prefix: String) -> Self {
        PartitionProducers {
            options,
            format,
            prefix,
            ends: TransactionEnds::default(),
            producers: Mutex::new(BTreeMap::new()),
        }
    }

    /// The `transactional.id` of input partition `tp`.
    pub(crate) fn transactional_id(&self, (topic, partition): &TopicPartition) -> String {
        format!("{}-{topic}-{partition}", self.prefix)
    }

    /// Opens the producers of `partitions`, in parallel: each registers its `transactional.id`, which
    /// fences the partition's previous owner and aborts what it left open.
    pub(crate) fn take(&self, partitions: &[TopicPartition]) -> anyhow::Result<()> {
        let opened: Vec<anyhow::Result<(TopicPartition, KafkaSink)>> = std::thread::scope(|s| {
            let opening: Vec<_> = partitions
                .iter()
                .map(|tp| {
                    s.spawn(move || {
                        let id = self.transactional_id(tp);
                        let ends = self.ends.clone();
                        KafkaSink::open(self.options.clone(), self.format, Some(&id), ends)
                            .with_context(|| format!("opening the producer of {}-{}", tp.0, tp.1))
                            .map(|sink| (tp.clone(), sink))
                    })
                })
                .collect();
            opening
                .into_iter()
                .map(|o| o.join().expect("opening a producer does not panic"))
                .collect()
        });
        let mut producers = self.producers.lock().expect("not poisoned");
        for result in opened {
            let (tp, sink) = result?;
            producers.insert(tp, Arc::new(sink));
        }
        Ok(())
    }

    /// Closes the producers of `partitions` (given up, or fenced by their new owner).
    pub(crate) fn release(&self, partitions: &[TopicPartition]) {
        let mut producers = self.producers.lock().expect("not poisoned");
        for tp in partitions {
            producers.remove(tp);
        }
    }

    /// The producer of `tp`, while this instance owns it.
    pub(crate) fn get(&self, tp: &TopicPartition) -> Option<Arc<KafkaSink>> {
        self.producers
            .lock()
            .expect("not poisoned")
            .get(tp)
            .cloned()
    }

    /// Spark's description of the sink, for progress reports.
    pub(crate) fn description(&self) -> String {
        describe(self.options.topic.as_deref())
    }
}

/// Whether `error` says the producer was fenced: another producer registered its `transactional.id`.
pub(crate) fn is_fenced(error: &anyhow::Error) -> bool {
    use rdkafka::error::{KafkaError, RDKafkaErrorCode};
    error.chain().any(|cause| {
        cause
            .downcast_ref::<KafkaError>()
            .and_then(KafkaError::rdkafka_error_code)
            .is_some_and(|code| {
                matches!(
                    code,
                    RDKafkaErrorCode::Fenced
                        | RDKafkaErrorCode::ProducerFenced
                        | RDKafkaErrorCode::InvalidProducerEpoch
                )
            })
    })
}
