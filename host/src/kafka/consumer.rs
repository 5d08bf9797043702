//! What every Weir consumer starts from: throughput settings for micro-batches, and the context that turns
//! librdkafka's end-of-partition events into a flag instead of errors, records failed TLS and SASL
//! handshakes, and hands a group member's rebalances to the source.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, RebalanceProtocol};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::types::RDKafkaRespErr;
use rdkafka::{ClientContext, TopicPartitionList};

use super::connection::{HandshakeFailure, RecordsHandshakes};

/// Consumer settings Weir starts from, for throughput on micro-batches; any `kafka.*` option overrides them.
/// librdkafka's defaults fetch at most 1 MiB per partition and back off for a second once its queue is
/// full, which left the source idle between batches (measured on tansu: 1,000,000 records took 5.7 s to
/// consume with the defaults, 2.3 s with these). The prefetch queue (per partition) was 64 MiB until the
/// pipeline read the next batch while processing the current one; 2 MiB then ran the reference workload as
/// fast, with ~80 MiB less peak RSS.
pub const CONSUMER_DEFAULTS: &[(&str, &str)] = &[
    ("max.partition.fetch.bytes", "8388608"),
    ("fetch.queue.backoff.ms", "10"),
    ("queued.max.messages.kbytes", "2048"),
];

/// Receives librdkafka's global events for the source's consumers. Reaching the end of a partition is
/// expected, not an error: it is noted so the source can re-read its position (transaction markers take
/// offsets that are never delivered). A failed TLS or SASL handshake is recorded, for start-up to report.
#[derive(Default)]
pub(crate) struct SourceContext {
    reached_end: AtomicBool,
    handshakes: HandshakeFailure,
    /// A consumer group member's answer to rebalances, set before it subscribes.
    rebalancing: OnceLock<Arc<dyn Rebalancing>>,
}

/// What a consumer group member does when the group moves partitions, called on the thread that polls.
/// librdkafka takes the partitions only once the call returns, so work done here (fencing, finishing
/// batches) happens before the partitions are read or released.
pub(crate) trait Rebalancing: Send + Sync {
    /// Before `partitions` are read: sets the offset each starts from.
    fn assigned(&self, consumer: &BaseConsumer<SourceContext>, partitions: &mut TopicPartitionList);
    /// Before `partitions` are given up (`lost`: taken already, after a missed session timeout).
    fn revoked(&self, partitions: &TopicPartitionList, lost: bool);
}

impl SourceContext {
    /// Makes this consumer's rebalances go through `rebalancing` (once, before it subscribes).
    pub(crate) fn rebalance_with(&self, rebalancing: Arc<dyn Rebalancing>) {
        let _ = self.rebalancing.set(rebalancing);
    }

    /// Whether a partition's end was reached since the last call.
    pub(crate) fn take_reached_end(&self) -> bool {
        self.reached_end.swap(false, Ordering::Relaxed)
    }
}

impl ClientContext for SourceContext {
    fn error(&self, error: KafkaError, reason: &str) {
        match error {
            KafkaError::PartitionEOF(_) | KafkaError::Global(RDKafkaErrorCode::PartitionEOF) => {
                self.reached_end.store(true, Ordering::Relaxed)
            }
            other => {
                self.handshakes.record(&other, reason);
                tracing::warn!("Kafka consumer: {other}: {reason}")
            }
        }
    }
}

impl RecordsHandshakes for SourceContext {
    fn handshakes(&self) -> &HandshakeFailure {
        &self.handshakes
    }
}

impl ConsumerContext for SourceContext {
    fn rebalance(
        &self,
        consumer: &BaseConsumer<Self>,
        error: RDKafkaRespErr,
        partitions: &mut TopicPartitionList,
    ) {
        let cooperative = matches!(
            consumer.rebalance_protocol(),
            RebalanceProtocol::Cooperative
        );
        let result = match error {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => {
                if let Some(rebalancing) = self.rebalancing.get() {
                    rebalancing.assigned(consumer, partitions);
                }
                match cooperative {
                    true => consumer.incremental_assign(partitions),
                    false => consumer.assign(partitions),
                }
            }
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => {
                if let Some(rebalancing) = self.rebalancing.get() {
                    rebalancing.revoked(partitions, consumer.assignment_lost());
                }
                match cooperative {
                    true => consumer.incremental_unassign(partitions),
                    false => consumer.unassign(),
                }
            }
            other => {
                tracing::error!(
                    "Kafka consumer group: rebalancing failed: {:?}",
                    RDKafkaErrorCode::from(other)
                );
                consumer.unassign()
            }
        };
        if let Err(error) = result {
            tracing::error!("Kafka consumer group: taking the new assignment failed: {error}");
        }
    }
}
