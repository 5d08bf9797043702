//! What the broker makes a consumer wait, per partition, during a latency run (issue 16).
//!
//! A bare rdkafka consumer, with the pipeline's consumer settings (Weir's defaults and its source's
//! `kafka.*` options other than the address, which it is given), reads the input topic beside the pipeline and
//! times each record from its produce timestamp to its poll. If it waits about as long as the alerts are
//! late, the delay is the broker's (a held fetch, a produce backlog), not Weir's batching or watermark;
//! the largest gap between two receipts on a partition shows a held fetch directly. The timestamp is the
//! generator's, so the wait includes its linger (10 ms). The probe's fetches add to the broker's load: with a
//! 10 ms fetch wait, the pipeline's p99 was 121 ms beside it against 51-70 ms without it, in one session.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};

use crate::ceiling::assigned_consumer_config;

/// The waits of one partition's records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionWait {
    /// The partition.
    pub partition: i32,
    /// Records received.
    pub records: u64,
    /// Median wait from produce timestamp to poll.
    pub p50: Duration,
    /// 99th percentile.
    pub p99: Duration,
    /// The largest.
    pub max: Duration,
    /// The largest gap between two receipts.
    pub largest_gap: Duration,
}

/// The consumer beside the pipeline, until [`FetchProbe::finish`].
pub struct FetchProbe {
    stop: Arc<AtomicBool>,
    reading: JoinHandle<anyhow::Result<Vec<PartitionWait>>>,
}

impl FetchProbe {
    /// Starts reading `partitions` partitions of `topic` from the beginning with the source's `kafka`
    /// options, and returns once the consumer has been fetching for a second, so its connecting is not
    /// counted as the broker's wait.
    pub fn start(
        bootstrap: &str,
        (topic, partitions): (&str, i32),
        kafka: &BTreeMap<String, String>,
    ) -> anyhow::Result<FetchProbe> {
        let mut config = assigned_consumer_config(bootstrap, "weir-bench-fetch-probe");
        for (key, value) in kafka.iter().filter(|(key, _)| *key != "bootstrap.servers") {
            config.set(key, value);
        }
        let consumer: BaseConsumer = config.create()?;
        let mut assignment = TopicPartitionList::new();
        for partition in 0..partitions {
            assignment.add_partition_offset(topic, partition, Offset::Beginning)?;
        }
        consumer.assign(&assignment)?;
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let (settled, settling) = std::sync::mpsc::channel();
        let reading = std::thread::spawn(move || read(&consumer, partitions, &stopped, settled));
        settling
            .recv_timeout(SETTLING * 10)
            .map_err(|_| anyhow::anyhow!("the fetch probe did not start reading {topic}"))?;
        Ok(FetchProbe { stop, reading })
    }

    /// Stops reading and returns each partition's waits.
    pub fn finish(self) -> anyhow::Result<Vec<PartitionWait>> {
        self.stop.store(true, Ordering::Relaxed);
        self.reading
            .join()
            .map_err(|_| anyhow::anyhow!("the fetch probe panicked"))?
    }
}

/// How long the probe fetches before the input starts.
const SETTLING: Duration = Duration::from_secs(1);

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Polls until `stop`, collecting each partition's waits and gaps in milliseconds.
fn read(
    consumer: &BaseConsumer,
    partitions: i32,
    stop: &AtomicBool,
    settled: std::sync::mpsc::Sender<()>,
) -> anyhow::Result<Vec<PartitionWait>> {
    let started = std::time::Instant::now();
    let mut settled = Some(settled);
    let count = partitions.max(0) as usize;
    let (mut waits, mut gaps) = (vec![Vec::new(); count], vec![Vec::new(); count]);
    let mut last_receipt: Vec<Option<i64>> = vec![None; count];
    while !stop.load(Ordering::Relaxed) {
        if started.elapsed() >= SETTLING {
            if let Some(settled) = settled.take() {
                let _ = settled.send(());
            }
        }
        let Some(polled) = consumer.poll(Duration::from_millis(100)) else {
            continue;
        };
        let message = polled?;
        let now = now_ms();
        let index = message.partition() as usize;
        let Some(sent) = message.timestamp().to_millis() else {
            continue;
        };
        waits[index].push(now - sent);
        if let Some(last) = last_receipt[index] {
            gaps[index].push(now - last);
        }
        last_receipt[index] = Some(now);
    }
    Ok(waits
        .iter_mut()
        .zip(gaps.iter_mut())
        .enumerate()
        .map(|(partition, (waits, gaps))| summarise(partition as i32, waits, gaps))
        .collect())
}

/// The percentiles of one partition's waits (sorted in place).
fn summarise(partition: i32, waits: &mut [i64], gaps: &mut [i64]) -> PartitionWait {
    waits.sort_unstable();
    let at = |q: f64| {
        let rank = ((waits.len() as f64 * q).ceil() as usize).clamp(1, waits.len().max(1));
        let ms = waits.get(rank - 1).copied().unwrap_or(0).max(0);
        Duration::from_millis(ms as u64)
    };
    let largest_gap = gaps.iter().copied().max().unwrap_or(0).max(0);
    PartitionWait {
        partition,
        records: waits.len() as u64,
        p50: at(0.50),
        p99: at(0.99),
        max: at(1.0),
        largest_gap: Duration::from_millis(largest_gap as u64),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_taken_from_the_sorted_waits() {
        let mut waits: Vec<i64> = (1..=100).rev().collect();
        let mut gaps = vec![5, 40, 7];
        let wait = summarise(2, &mut waits, &mut gaps);
        assert_eq!(
            wait,
            PartitionWait {
                partition: 2,
                records: 100,
                p50: Duration::from_millis(50),
                p99: Duration::from_millis(99),
                max: Duration::from_millis(100),
                largest_gap: Duration::from_millis(40),
            }
        );
        let empty = summarise(0, &mut [], &mut []);
        assert_eq!((empty.records, empty.max), (0, Duration::ZERO));
    }
}
