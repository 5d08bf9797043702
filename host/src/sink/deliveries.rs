//! The producer's delivery reports, sorted: rows refused for good (for `[sink] on_error`), and other
//! failures, which fail the batch. Records are tagged when sent so a report can name its output row.

use std::collections::HashMap;
use std::sync::Mutex;

use rdkafka::error::KafkaError;
use rdkafka::message::DeliveryResult;
use rdkafka::producer::ProducerContext;
use rdkafka::ClientContext;

use super::refusal::{refused_for_good, Refusal};
use crate::kafka::{DeliveryFailures, HandshakeFailure, RecordsHandshakes};

/// Which record a delivery report is about: [`NOT_A_ROW`] for dead letters and late rows, otherwise one
/// more than the output row's index in its batch.
pub(super) type RecordTag = usize;

/// The tag of records that are not output rows: refusing one of them fails the batch.
pub(super) const NOT_A_ROW: RecordTag = 0;

/// Counts failed deliveries and keeps the first reason, for the end-of-batch check, and keeps the output
/// rows refused for good apart, for `[sink] on_error`. A failed TLS or SASL handshake is recorded, for
/// start-up to report.
#[derive(Default)]
pub(super) struct Deliveries {
    failures: DeliveryFailures,
    refused: Mutex<Vec<Refusal>>,
    handshakes: HandshakeFailure,
    /// The highest offset acknowledged so far for records that are not output rows, by topic and partition
    /// (a task's local state copy notes where its changelog records ended: `state/local_copy.rs`).
    acknowledged: Mutex<HashMap<(String, i32), i64>>,
}

impl Deliveries {
    /// Forgets what an aborted attempt left: its failures and refusals.
    pub(super) fn reset(&self) {
        self.failures.take();
        self.refused
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }

    /// The rows refused for good since the last call.
    pub(super) fn take_refused(&self) -> Vec<Refusal> {
        std::mem::take(&mut *self.refused.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// The highest offset acknowledged for a record that is not an output row in `topic`-`partition`.
    pub(super) fn acknowledged(&self, topic: &str, partition: i32) -> Option<i64> {
        let acknowledged = self.acknowledged.lock().unwrap_or_else(|e| e.into_inner());
        acknowledged.get(&(topic.to_string(), partition)).copied()
    }

    /// How many deliveries failed since the last call, with the first reason.
    pub(super) fn take_failed(&self) -> Option<(u64, String)> {
        self.failures.take()
    }
}

impl ClientContext for Deliveries {
    fn error(&self, error: KafkaError, reason: &str) {
        self.handshakes.record(&error, reason);
        tracing::warn!("Kafka producer: {error}: {reason}");
    }
}

impl RecordsHandshakes for Deliveries {
    fn handshakes(&self) -> &HandshakeFailure {
        &self.handshakes
    }
}

impl ProducerContext for Deliveries {
    type DeliveryOpaque = RecordTag;

    fn delivery(&self, result: &DeliveryResult<'_>, tag: RecordTag) {
        use rdkafka::message::Message;
        let (error, message) = match result {
            Ok(message) if tag == NOT_A_ROW => {
                let mut acknowledged = self.acknowledged.lock().unwrap_or_else(|e| e.into_inner());
                let offset = (acknowledged)
                    .entry((message.topic().to_string(), message.partition()))
                    .or_insert(message.offset());
                *offset = (*offset).max(message.offset());
                return;
            }
            Ok(_) => return,
            Err((error, message)) => (error, message),
        };
        match error.rdkafka_error_code() {
            Some(code) if tag != NOT_A_ROW && refused_for_good(code) => {
                let headers = message.headers().map_or(0, header_bytes);
                self.refused
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(Refusal {
                        row: tag - 1,
                        topic: message.topic().to_string(),
                        bytes: message.key_len() + message.payload_len() + headers,
                        code,
                        message: error.to_string(),
                    });
            }
            _ => self
                .failures
                .record(|| format!("{error} (topic {})", message.topic())),
        }
    }
}

fn header_bytes(headers: &rdkafka::message::BorrowedHeaders) -> usize {
    use rdkafka::message::Headers;
    headers
        .iter()
        .map(|h| h.key.len() + h.value.map_or(0, <[u8]>::len))
        .sum()
}
