//! Deduplication: Spark's `dropDuplicates` and `dropDuplicatesWithinWatermark`, for sources that deliver a
//! record more than once (a producer's retries, a device resending) and outputs that must count it once.
//!
//! The operator remembers the key of every row it lets through, in memory and in the checkpoint's state,
//! and forgets it once the watermark rules out a duplicate that would still count: the state is bounded by
//! the watermark, as the aggregation's is. It runs in the stateful step, over all partitions' rows at once,
//! before the aggregation.
//!
//! ```toml
//! [deduplicate]
//! columns = ["event_id"]
//! within_watermark = true      # dropDuplicatesWithinWatermark; false (default): dropDuplicates
//! ```

mod operator;
mod spec;

pub(crate) use operator::Deduplicator;
pub use spec::DedupSpec;

#[cfg(test)]
mod tests;
