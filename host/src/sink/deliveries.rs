//! The producer's delivery reports, sorted: rows refused for good (for `[sink] on_error`), and other
//! failures, which fail the batch. Records are tagged when sent so a report can name its output row.

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
        let Err((error, message)) = result else {
            return;
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
