//! What every Weir consumer starts from: throughput settings for micro-batches, and the context that turns
//! librdkafka's end-of-partition events into a flag instead of errors and records failed TLS and SASL
//! handshakes.

use std::sync::atomic::{AtomicBool, Ordering};

use rdkafka::consumer::ConsumerContext;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::ClientContext;

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
}

impl SourceContext {
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

impl ConsumerContext for SourceContext {}
