//! What a stream-stream join is: the other stream (its topic, deserializer and event time), the
//! condition, and which unmatched rows it keeps.

use crate::decode::DeserializerSpec;

/// Which rows a stream-stream join emits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamJoinType {
    /// Matched pairs only (the default).
    Inner,
    /// Also each source row that matched nothing, with NULLs for the other stream's columns, once the
    /// watermark rules out a match.
    LeftOuter,
    /// Also each row of the other stream that matched nothing, with NULLs for the source's columns.
    RightOuter,
}

impl StreamJoinType {
    /// The name in the pipeline file.
    pub fn name(self) -> &'static str {
        match self {
            StreamJoinType::Inner => "inner",
            StreamJoinType::LeftOuter => "left_outer",
            StreamJoinType::RightOuter => "right_outer",
        }
    }
}

/// `[stream_join]`: the rows of the pipeline's source (the left stream, after its transforms) joined
/// with a second Kafka topic's (the right stream), as Spark's
/// `impressions.join(clicks, expr("clickAdId = adId AND clickTime BETWEEN impressionTime AND
/// impressionTime + interval 1 hour"), "leftOuter")`.
///
/// ```toml
/// [stream_join]
/// topic = "clicks"
/// on = "clickAdId = adId AND clickTime BETWEEN impressionTime AND impressionTime + interval 1 hour"
/// how = "left_outer"
/// watermark = { column = "clickTime", delay = "30s" }
/// deserializer = { format = "json", schema = "clickAdId STRING, clickTime TIMESTAMP" }
/// ```
#[derive(Debug, Clone)]
pub struct StreamJoinSpec {
    /// The right stream's topic, read by the same source, from the same brokers.
    pub topic: String,
    /// How its records become rows.
    pub deserializer: DeserializerSpec,
    /// Its event-time column.
    pub event_time: String,
    /// Its watermark delay in ms (the `[watermark]` section gives the left stream's).
    pub delay_ms: i64,
    /// The condition, in SQL over both streams' columns: at least one equality between them and a range
    /// of the right event time from the left one.
    pub on: String,
    /// Which rows it emits.
    pub how: StreamJoinType,
}

impl StreamJoinSpec {
    /// The join as the plan and the checkpoint's fingerprint describe it.
    pub fn describe(&self) -> String {
        format!(
            "{} join with {} on {} ({} watermark delay {} ms)",
            self.how.name(),
            self.topic,
            self.on,
            self.event_time,
            self.delay_ms
        )
    }
}
