//! Watermark alignment: holding back partitions that read too far ahead in event time.
//!
//! The watermark follows the slowest partition, and the aggregation keeps every window the watermark has
//! not closed. When partitions are read at different speeds (a backlog read as fast as possible, where the
//! broker serves one partition's fetches more often than another's), the fast partitions' windows pile up
//! until the slow one catches up: measured on the reference workload, reading 4,000,000 records left one
//! partition at 9% while another was read to its end, with 259,237 groups open. Flink calls the remedy watermark
//! alignment: a partition more than `max_drift` of event time ahead of the slowest active one is paused at
//! the source until the slowest comes within half of that. Open state is then bounded by how much event
//! time fits in `max_drift`, not by how far the read got ahead.

use std::collections::BTreeSet;
use std::time::Instant;

use super::WatermarkTracker;
use crate::kafka::TopicPartition;

/// The partitions to hold back now. `held` are those held so far (released only once within half of
/// `max_drift_ms`, so that a partition near the limit is not paused and resumed every batch); `finished`
/// partitions (read to their end) neither hold others back nor are held.
pub(crate) fn partitions_to_hold(
    tracker: &WatermarkTracker,
    max_drift_ms: i64,
    held: &BTreeSet<TopicPartition>,
    finished: &BTreeSet<TopicPartition>,
    now: Instant,
) -> BTreeSet<TopicPartition> {
    let slowest = tracker
        .clocks(now)
        .filter(|(tp, _, idle)| !idle && !finished.contains(*tp))
        .filter_map(|(_, max, _)| max)
        .min();
    let Some(slowest) = slowest else {
        return BTreeSet::new();
    };
    tracker
        .clocks(now)
        .filter(|(tp, _, _)| !finished.contains(*tp))
        .filter_map(|(tp, max, _)| {
            let lead = max? - slowest;
            let limit = if held.contains(tp) {
                max_drift_ms / 2
            } else {
                max_drift_ms
            };
            (lead > limit).then(|| tp.clone())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// `partitions_to_hold` by example (a unit test: doc tests cannot reach crate-private items).
    #[test]
    fn partitions_to_hold_example() {
        use crate::window::{partitions_to_hold, WatermarkTracker};
        use std::collections::BTreeSet;
        use std::time::{Duration, Instant};
        let now = Instant::now();
        let (fast, slow) = (("tx".to_string(), 0), ("tx".to_string(), 1));
        let mut tracker = WatermarkTracker::new(5_000, Duration::from_secs(60));
        tracker.observe(&fast, Some(100_000), now);
        tracker.observe(&slow, Some(20_000), now);
        let none = BTreeSet::new();
        assert_eq!(
            partitions_to_hold(&tracker, 30_000, &none, &none, now),
            BTreeSet::from([fast.clone()])
        );
    }

    fn tp(p: i32) -> TopicPartition {
        ("t".to_string(), p)
    }

    #[test]
    fn a_partition_ahead_is_held_until_within_half_the_drift() {
        let now = Instant::now();
        let mut tracker = WatermarkTracker::new(0, Duration::from_secs(60));
        tracker.observe(&tp(0), Some(1_000), now);
        tracker.observe(&tp(1), Some(0), now);
        let none = BTreeSet::new();
        let held = partitions_to_hold(&tracker, 600, &none, &none, now);
        assert_eq!(held, BTreeSet::from([tp(0)]));
        // The slow partition catches up to 500 behind: within the drift, but not within half of it.
        tracker.observe(&tp(1), Some(500), now);
        let held = partitions_to_hold(&tracker, 600, &held, &none, now);
        assert_eq!(held, BTreeSet::from([tp(0)]));
        tracker.observe(&tp(1), Some(800), now);
        assert!(partitions_to_hold(&tracker, 600, &held, &none, now).is_empty());
    }

    #[test]
    fn idle_and_finished_partitions_hold_no_one_back() {
        let now = Instant::now();
        let mut tracker = WatermarkTracker::new(0, Duration::from_secs(1));
        tracker.observe(&tp(0), Some(0), now);
        tracker.observe(&tp(1), Some(10_000), now);
        let none = BTreeSet::new();
        let finished = BTreeSet::from([tp(0)]);
        assert!(partitions_to_hold(&tracker, 600, &none, &finished, now).is_empty());
        let later = now + Duration::from_secs(2);
        tracker.observe(&tp(1), Some(10_000), later);
        assert!(partitions_to_hold(&tracker, 600, &none, &none, later).is_empty());
    }
}
