//! The watermark: the event time below which no more records are expected.
//!
//! Weir tracks the largest event time seen **per source partition** and takes the minimum over partitions,
//! minus the delay. A fast partition therefore cannot make a slow one's records late (Spark keeps one
//! maximum for the whole stream, so it can). A partition that has sent nothing for `idle_timeout` stops
//! holding the watermark back until it sends again; when every partition is silent, the largest event time
//! seen decides. The watermark never moves backwards.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::kafka::TopicPartition;

/// `[watermark]`: which column holds event time, how late records may be, when a silent partition stops
/// holding the watermark back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatermarkSpec {
    /// The event-time column of the deserialized rows (Int64 milliseconds or a timestamp).
    pub column: String,
    /// The watermark delay (Spark's `withWatermark` threshold) in ms.
    pub delay_ms: i64,
    /// A partition that sends nothing for this long stops holding the watermark back.
    pub idle_timeout: Duration,
    /// Watermark alignment: a partition more than this far ahead of the slowest in event time is paused at
    /// the source until the slowest catches up, which bounds the open state; `None` turns it off.
    pub max_drift: Option<Duration>,
    /// Where rows that arrive behind the watermark go (as JSON), besides being counted.
    pub late_data_topic: Option<String>,
}

impl WatermarkSpec {
    /// Event time from `column`, records up to `delay` late, and the defaults for the rest: a partition
    /// silent for 60 s stops holding the watermark back, partitions 10 minutes of event time ahead of the
    /// slowest are held back (alignment), late rows are counted and dropped.
    ///
    /// ```
    /// use std::time::Duration;
    /// let spec = weir::WatermarkSpec::new("ts", Duration::from_secs(5));
    /// assert_eq!(spec.delay_ms, 5_000);
    /// assert_eq!(spec.max_drift, Some(Duration::from_secs(600)));
    /// ```
    pub fn new(column: impl Into<String>, delay: Duration) -> WatermarkSpec {
        WatermarkSpec {
            column: column.into(),
            delay_ms: delay.as_millis() as i64,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            max_drift: Some(DEFAULT_MAX_DRIFT),
            late_data_topic: None,
        }
    }
}

/// Default for `watermark.max_drift` ([`WatermarkSpec::max_drift`]): ten minutes of event time. Measured on
/// the reference workload on tansu, which answers each fetch with one partition's records: without
/// alignment a 4,000,000-record backlog reached 135 MiB and grew on; with it, 24,000,000 records stayed at
/// 97-102 MiB with 120 s and with 600 s alike. Each pause drops what librdkafka had fetched for the
/// partition, so a small drift costs time on such a broker: over 1,000,000 records, exactly-once, 6
/// interleaved runs, 120 s took a median 2.07 s and 600 s 1.75 s (1.48 s for the build before alignment).
pub(crate) const DEFAULT_MAX_DRIFT: Duration = Duration::from_secs(600);

/// Default for `watermark.idle_timeout` ([`WatermarkSpec::idle_timeout`]).
pub(crate) const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, Copy)]
struct PartitionClock {
    max_event_ms: Option<i64>,
    last_active: Instant,
}

/// Per-partition event-time clocks and the watermark they give.
#[derive(Debug, Clone)]
pub(crate) struct WatermarkTracker {
    delay_ms: i64,
    idle_timeout: Duration,
    partitions: BTreeMap<TopicPartition, PartitionClock>,
    watermark: Option<i64>,
}

impl WatermarkTracker {
    /// A tracker with the `watermark` delay and idle timeout.
    pub(crate) fn new(delay_ms: i64, idle_timeout: Duration) -> Self {
        WatermarkTracker {
            delay_ms,
            idle_timeout,
            partitions: BTreeMap::new(),
            watermark: None,
        }
    }

    /// The current watermark, `None` until every active partition has sent an event time.
    pub(crate) fn watermark(&self) -> Option<i64> {
        self.watermark
    }

    /// Declares a partition the source reads, so that it holds the watermark back until it sends data or
    /// goes idle.
    pub(crate) fn add_partition(&mut self, partition: &TopicPartition, now: Instant) {
        self.partitions
            .entry(partition.clone())
            .or_insert(PartitionClock {
                max_event_ms: None,
                last_active: now,
            });
    }

    /// Records the largest event time in a batch of one partition.
    pub(crate) fn observe(
        &mut self,
        partition: &TopicPartition,
        max_event_ms: Option<i64>,
        now: Instant,
    ) {
        let clock = self
            .partitions
            .entry(partition.clone())
            .or_insert(PartitionClock {
                max_event_ms: None,
                last_active: now,
            });
        clock.last_active = now;
        if let Some(ts) = max_event_ms {
            clock.max_event_ms = Some(clock.max_event_ms.map_or(ts, |m| m.max(ts)));
        }
    }

    /// Each partition's largest event time, with whether it has been silent past the idle timeout at `now`.
    pub(crate) fn clocks(
        &self,
        now: Instant,
    ) -> impl Iterator<Item = (&TopicPartition, Option<i64>, bool)> + '_ {
        self.partitions.iter().map(move |(tp, clock)| {
            let idle = now.duration_since(clock.last_active) >= self.idle_timeout;
            (tp, clock.max_event_ms, idle)
        })
    }

    /// Recomputes the watermark at `now` and returns it.
    pub(crate) fn advance(&mut self, now: Instant) -> Option<i64> {
        let mut lowest_active: Option<i64> = None;
        let mut highest: Option<i64> = None;
        for clock in self.partitions.values() {
            let idle = now.duration_since(clock.last_active) >= self.idle_timeout;
            if let Some(ts) = clock.max_event_ms {
                highest = Some(highest.map_or(ts, |h| h.max(ts)));
            }
            match (clock.max_event_ms, idle) {
                (_, true) => continue,
                // An active partition that has sent no event time yet: nothing can be final.
                (None, false) => return self.watermark,
                (Some(ts), false) => lowest_active = Some(lowest_active.map_or(ts, |l| l.min(ts))),
            }
        }
        // When every partition is idle, none holds the watermark back: what has been seen is all there is.
        if let Some(time) = lowest_active.or(highest) {
            let candidate = time - self.delay_ms;
            self.watermark = Some(self.watermark.map_or(candidate, |w| w.max(candidate)));
        }
        self.watermark
    }
}

/// What a checkpoint keeps of a [`WatermarkTracker`]: the watermark and each partition's largest event
/// time. Idle timers start afresh after a restart.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct WatermarkSnapshot {
    /// The watermark, once there is one.
    pub watermark: Option<i64>,
    /// (topic, partition, largest event time seen).
    pub partitions: Vec<(String, i32, Option<i64>)>,
}

impl WatermarkTracker {
    /// The state to checkpoint.
    pub(crate) fn snapshot(&self) -> WatermarkSnapshot {
        WatermarkSnapshot {
            watermark: self.watermark,
            partitions: self
                .partitions
                .iter()
                .map(|((topic, partition), clock)| (topic.clone(), *partition, clock.max_event_ms))
                .collect(),
        }
    }

    /// Resumes from a checkpointed state; every partition counts as active from `now`.
    pub(crate) fn restore(&mut self, snapshot: &WatermarkSnapshot, now: Instant) {
        self.watermark = snapshot.watermark;
        for (topic, partition, max_event_ms) in &snapshot.partitions {
            self.partitions.insert(
                (topic.clone(), *partition),
                PartitionClock {
                    max_event_ms: *max_event_ms,
                    last_active: now,
                },
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `advance` by example (a unit test: doc tests cannot reach crate-private items).
    #[test]
    fn advance_example() {
        use crate::window::WatermarkTracker;
        use std::time::{Duration, Instant};
        let now = Instant::now();
        let (fast, slow) = (("tx".to_string(), 0), ("tx".to_string(), 1));
        let mut tracker = WatermarkTracker::new(5_000, Duration::from_secs(60));
        tracker.observe(&fast, Some(100_000), now);
        tracker.observe(&slow, Some(20_000), now);
        // the slow partition holds the watermark back
        assert_eq!(tracker.advance(now), Some(15_000));
    }

    fn tp(p: i32) -> TopicPartition {
        ("t".to_string(), p)
    }

    #[test]
    fn a_partition_without_data_holds_the_watermark_until_idle() {
        let start = Instant::now();
        let mut tracker = WatermarkTracker::new(5, Duration::from_secs(10));
        tracker.add_partition(&tp(0), start);
        tracker.add_partition(&tp(1), start);
        tracker.observe(&tp(0), Some(100), start);
        assert_eq!(tracker.advance(start), None);
        // partition 0 still sends; partition 1 has been silent past the timeout: partition 0 alone decides
        let later = start + Duration::from_secs(11);
        tracker.observe(&tp(0), Some(100), later);
        assert_eq!(tracker.advance(later), Some(95));
    }

    #[test]
    fn when_every_partition_is_idle_the_largest_event_time_decides() {
        let start = Instant::now();
        let mut tracker = WatermarkTracker::new(5, Duration::from_secs(1));
        tracker.add_partition(&tp(1), start);
        tracker.observe(&tp(0), Some(100), start);
        assert_eq!(tracker.advance(start), None);
        assert_eq!(tracker.advance(start + Duration::from_secs(2)), Some(95));
    }

    #[test]
    fn the_watermark_never_goes_back() {
        let now = Instant::now();
        let mut tracker = WatermarkTracker::new(0, Duration::from_secs(10));
        tracker.observe(&tp(0), Some(100), now);
        assert_eq!(tracker.advance(now), Some(100));
        // a new partition with older data joins: the watermark stays
        tracker.observe(&tp(1), Some(50), now);
        assert_eq!(tracker.advance(now), Some(100));
    }

    #[test]
    fn idle_partitions_rejoin_when_they_send_again() {
        let start = Instant::now();
        let mut tracker = WatermarkTracker::new(0, Duration::from_secs(1));
        tracker.observe(&tp(0), Some(10), start);
        tracker.observe(&tp(1), Some(50), start);
        let later = start + Duration::from_secs(2);
        tracker.observe(&tp(1), Some(60), later);
        assert_eq!(tracker.advance(later), Some(60));
        tracker.observe(&tp(0), Some(20), later);
        assert_eq!(tracker.advance(later), Some(60));
    }
}
