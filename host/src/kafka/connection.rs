//! Connecting to a secured cluster: failing at start-up, in librdkafka's own words, when TLS or SASL is
//! set up wrong.
//!
//! librdkafka retries a failed connection forever and reports the cause only to its error callback, so a
//! wrong CA or password would otherwise look like a broker that never answers: a metadata request that
//! times out after 30 seconds with "Operation timed out". A failed TLS handshake or SASL authentication
//! does not heal by retrying, so the contexts record it ([`HandshakeFailure`]) and
//! [`fetch_metadata_checked`] gives up as soon as one is seen, naming the options to check.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::bail;
use rdkafka::client::Client;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::metadata::Metadata;
use rdkafka::ClientContext;

/// How long each metadata attempt waits before the recorded failures are looked at again.
const ATTEMPT: Duration = Duration::from_millis(500);

/// The last failed TLS handshake or SASL authentication a client reported, until it is taken.
#[derive(Default)]
pub(crate) struct HandshakeFailure {
    last: Mutex<Option<String>>,
}

impl HandshakeFailure {
    /// Records `error` if it is a TLS or SASL failure (returns whether it was). The message says which
    /// pipeline keys to check.
    pub(crate) fn record(&self, error: &KafkaError, reason: &str) -> bool {
        let hint = match error {
            KafkaError::Global(RDKafkaErrorCode::SSL) => {
                "check `kafka.ssl.ca.location` and the other `kafka.ssl.*` options"
            }
            KafkaError::Global(
                RDKafkaErrorCode::Authentication | RDKafkaErrorCode::SaslAuthenticationFailed,
            ) => "check `kafka.sasl.mechanism`, `kafka.sasl.username` and `kafka.sasl.password`",
            _ => return false,
        };
        let message = format!("{reason}; {hint}");
        *self.last.lock().unwrap_or_else(|e| e.into_inner()) = Some(message);
        true
    }

    /// The failure recorded since the last call, if any.
    pub(crate) fn take(&self) -> Option<String> {
        self.last.lock().unwrap_or_else(|e| e.into_inner()).take()
    }
}

/// A client context that records handshake failures.
pub(crate) trait RecordsHandshakes: ClientContext {
    /// Where this context keeps them.
    fn handshakes(&self) -> &HandshakeFailure;
}

/// The cluster's metadata (for `topic`, or every topic), as `Client::fetch_metadata`; but a TLS or SASL
/// failure ends the wait at once with librdkafka's reason, instead of a timeout. librdkafka hands errors to
/// the context only when the client is polled: `serve_events` polls it (before anything is assigned or
/// sent, so no message or delivery report is lost).
pub(crate) fn fetch_metadata_checked<C: RecordsHandshakes>(
    client: &Client<C>,
    topic: Option<&str>,
    timeout: Duration,
    mut serve_events: impl FnMut(),
) -> anyhow::Result<Metadata> {
    let deadline = Instant::now() + timeout;
    loop {
        let attempt = ATTEMPT.min(deadline.saturating_duration_since(Instant::now()));
        let result = client.fetch_metadata(topic, attempt);
        serve_events();
        if let Some(failure) = client.context().handshakes().take() {
            bail!("cannot connect to the Kafka cluster: {failure}");
        }
        match result {
            Ok(metadata) => return Ok(metadata),
            Err(e) if Instant::now() >= deadline => return Err(e.into()),
            Err(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_tls_and_sasl_failures_are_recorded_with_the_keys_to_check() {
        let failures = HandshakeFailure::default();
        let timeout = KafkaError::Global(RDKafkaErrorCode::OperationTimedOut);
        assert!(!failures.record(&timeout, "timed out"));
        assert_eq!(failures.take(), None);

        let ssl = KafkaError::Global(RDKafkaErrorCode::SSL);
        assert!(failures.record(&ssl, "SSL handshake failed: certificate verify failed"));
        let message = failures.take().unwrap();
        assert!(message.contains("certificate verify failed"), "{message}");
        assert!(message.contains("kafka.ssl.ca.location"), "{message}");
        assert_eq!(failures.take(), None, "taken once");

        let sasl = KafkaError::Global(RDKafkaErrorCode::Authentication);
        assert!(failures.record(&sasl, "SASL authentication error"));
        assert!(failures.take().unwrap().contains("kafka.sasl.password"));
    }
}
