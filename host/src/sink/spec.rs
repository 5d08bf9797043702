//! What the sink stage is: where rows go, how they become records, and what a restart guarantees.

use super::{SinkOnError, SinkOptions};

/// The sink stage.
#[derive(Debug, Clone)]
pub struct SinkSpec {
    /// Kafka options and the target topic.
    pub options: SinkOptions,
    /// How rows become record values.
    pub format: SinkFormat,
    /// `delivery`: what a restart after a crash guarantees about the output.
    pub delivery: Delivery,
    /// `on_error`: what happens to a row the producer or the broker refuses for good.
    pub on_error: SinkOnError,
}

/// The delivery guarantee of the sink (`[sink] delivery`).
///
/// ```toml
/// checkpointLocation = "checkpoints/fraud-window"
/// [sink]
/// delivery = "exactly-once"   # the default with a checkpointLocation; "at-least-once" otherwise
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// Output is flushed, then the checkpoint records the batch: a crash in between repeats the batch's
    /// output on restart (nothing is lost; some records may appear twice).
    AtLeastOnce,
    /// Each batch's output and its source offsets commit in one Kafka transaction, which is the commit
    /// point; consumers reading with `isolation.level = read_committed` see every result exactly once.
    ExactlyOnce,
}

impl Delivery {
    /// The delivery when none is given: exactly-once with a checkpoint, at-least-once without.
    pub fn default_for(checkpointed: bool) -> Delivery {
        if checkpointed {
            Delivery::ExactlyOnce
        } else {
            Delivery::AtLeastOnce
        }
    }
}

/// How the sink turns rows into Kafka records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SinkFormat {
    /// Spark's shape: a `value` column (string or binary) and optional `key`, `headers`, `topic`,
    /// `partition` columns.
    Kafka,
    /// Every column except `key`, `headers`, `topic` and `partition` written as one JSON object per row
    /// (Spark's `to_json(struct(*))`); those four keep their Kafka meaning.
    Json,
    /// The same columns as one Avro record per row in the Confluent wire format, its schema (derived from
    /// the columns) registered in the options' `schema_registry` under their `subject`.
    Avro,
}
