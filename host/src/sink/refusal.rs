//! Rows the producer or the broker refuses for good: too large, invalid, unauthorized, or sent to a topic or
//! partition that does not exist. Retrying such a row gives the same answer, so the sink hands it to the
//! pipeline's `[sink] on_error` policy instead of failing the batch like a transient error.
//!
//! ```toml
//! [sink]
//! on_error = "dead-letter"            # or "fail" (the default): stop, naming the row and its source
//! dead_letter_topic = "results-refused"
//! ```

use rdkafka::error::RDKafkaErrorCode;

/// What the sink does with a row refused for good (`[sink] on_error`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum SinkOnError {
    /// Stop the pipeline with an error naming the row, its size, its source records and the settings that
    /// bound it; nothing of the batch is committed, so a restart meets the same row again.
    #[default]
    Fail,
    /// Write the row's source records (or, after an aggregation, its key) to this topic with the error in
    /// their headers, leave the row out, and go on.
    DeadLetter {
        /// The dead-letter topic.
        topic: String,
    },
}

/// One output row the producer or broker refused for good.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Refusal {
    /// The row in the batch given to [`super::KafkaSink::write`].
    pub row: usize,
    /// The topic it was for.
    pub topic: String,
    /// Its size as produced: key, value and headers.
    pub bytes: usize,
    /// The error code.
    pub code: RDKafkaErrorCode,
    /// The error as librdkafka words it.
    pub message: String,
}

impl Refusal {
    /// What would let such a row through, for the error that stops the pipeline.
    pub(crate) fn remedy(&self) -> &'static str {
        use RDKafkaErrorCode::*;
        match self.code {
            MessageSizeTooLarge | InvalidMessageSize | MessageBatchTooLarge => {
                "records are bounded by the producer's message.max.bytes (librdkafka's default 1000000; \
                 [sink] kafka.message.max.bytes) and by the broker's message.max.bytes or the topic's \
                 max.message.bytes"
            }
            TopicAuthorizationFailed => {
                "the sink's credentials may not write this topic (the broker's ACLs; [sink] kafka.sasl.*)"
            }
            UnknownPartition => "the row's `partition` column names a partition the topic does not have",
            UnknownTopic | InvalidTopic => {
                "the topic does not exist (the broker does not create topics on use) or its name is invalid"
            }
            _ => "the broker refuses this record as it is",
        }
    }
}

/// Whether `code` refuses the record itself, so that sending it again would fail again.
pub(crate) fn refused_for_good(code: RDKafkaErrorCode) -> bool {
    use RDKafkaErrorCode::*;
    matches!(
        code,
        MessageSizeTooLarge
            | InvalidMessageSize
            | MessageBatchTooLarge
            | InvalidMessage
            | InvalidRecord
            | InvalidTimestamp
            | PolicyViolation
            | TopicAuthorizationFailed
            | UnknownPartition
            | UnknownTopic
            | InvalidTopic
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_errors_about_the_record_itself_are_for_good() {
        assert!(refused_for_good(RDKafkaErrorCode::MessageSizeTooLarge));
        assert!(refused_for_good(RDKafkaErrorCode::UnknownPartition));
        assert!(!refused_for_good(RDKafkaErrorCode::MessageTimedOut));
        assert!(!refused_for_good(RDKafkaErrorCode::BrokerTransportFailure));
        assert!(!refused_for_good(RDKafkaErrorCode::QueueFull));
    }
}
