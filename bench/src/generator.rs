//! The workload's producer: the first N transactions of [`weir::internal::workload`], keyed by `name + surname` and
//! placed by the producer's default partitioner, then one closing record written to each partition
//! explicitly, exactly as `shared/bench/fraud-window.md` specifies.
//!
//! As fast as possible for throughput runs; at a fixed rate, in real time, for latency runs, remembering
//! when each record was sent so a window's closing can be put on the wall clock.

use std::time::{Duration, Instant};

use anyhow::Context;
use rdkafka::config::ClientConfig;
use rdkafka::producer::BaseRecord;
use weir::internal::workload::{closing_records, transactions};
use weir::internal::CheckedProducer;

/// What a generation wrote.
pub struct Generated {
    /// Records written, closing records included.
    pub records: u64,
    /// When the first record was handed to the producer.
    pub started: Instant,
    /// Until every record was acknowledged.
    pub elapsed: Duration,
    /// With [`Pace::RateTimed`]: when each of the N transactions was handed to the producer, from `started`.
    pub sent_at: Vec<Duration>,
}

/// How fast the workload is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pace {
    /// As fast as the producer can (throughput runs).
    Fastest,
    /// This many records per second, in real time (the soak).
    Rate(u64),
    /// As [`Pace::Rate`], remembering when each record was sent (latency runs; 16 bytes a record).
    RateTimed(u64),
}

impl Pace {
    fn rate(self) -> Option<u64> {
        match self {
            Pace::Fastest => None,
            Pace::Rate(rate) | Pace::RateTimed(rate) => Some(rate),
        }
    }
}

/// Writes the workload of `n` transactions plus the 4 closing records to `topic` (which must exist with 4
/// partitions), at `pace`.
///
/// ```no_run
/// use weir_bench::generator::{generate, Pace};
/// let generated = generate("127.0.0.1:9092", "tx", 1_000_000, Pace::Fastest)?;
/// assert_eq!(generated.records, 1_000_004);
/// # anyhow::Ok(())
/// ```
pub fn generate(bootstrap: &str, topic: &str, n: u64, pace: Pace) -> anyhow::Result<Generated> {
    let rate = pace.rate();
    let timed = matches!(pace, Pace::RateTimed(_));
    let mut producer = CheckedProducer::new(
        ClientConfig::new()
            .set("bootstrap.servers", bootstrap)
            // Bulk: large batches. Paced: small batches sent promptly, as a live source would. At 1 ms, tansu
            // spent 125% CPU on the many small requests at 50,000 records/s and acknowledged them up to
            // 0.8 s late, so the latency figures measured the broker's backlog; at 10 ms it spends about 20%
            // (docs/benchmarks.md, "Where the latency came from").
            .set("linger.ms", if rate.is_some() { "10" } else { "20" })
            .set("batch.size", "1000000")
            .set("queue.buffering.max.messages", "1000000"),
        &format!("the workload for {topic} at {bootstrap}"),
    )?;
    let started = Instant::now();
    let mut sent_at = Vec::with_capacity(if timed { n as usize } else { 0 });
    for (i, tx) in transactions(n).enumerate() {
        if let Some(rate) = rate {
            let due = Duration::from_secs_f64(i as f64 / rate as f64);
            let now = started.elapsed();
            if due > now + Duration::from_millis(1) {
                std::thread::sleep(due - now);
            }
        }
        let (key, value) = (tx.key(), tx.value());
        producer
            .send(
                BaseRecord::to(topic)
                    .key(key.as_str())
                    .payload(value.as_str()),
            )
            .with_context(|| format!("transaction {i}"))?;
        if timed {
            sent_at.push(started.elapsed());
        }
    }
    for (partition, tx) in closing_records(n) {
        let (key, value) = (tx.key(), tx.value());
        producer
            .send(
                BaseRecord::to(topic)
                    .partition(partition)
                    .key(key.as_str())
                    .payload(value.as_str()),
            )
            .with_context(|| format!("the closing record of {topic}-{partition}"))?;
    }
    let records = producer.finish(Duration::from_secs(120))?;
    Ok(Generated {
        records,
        started,
        elapsed: started.elapsed(),
        sent_at,
    })
}

#[cfg(test)]
mod tests {
    use weir::internal::workload::{closing_records, fraud_window_alerts, transactions};

    /// The spec's LCG and field formulas, written out again independently of `weir::internal::workload`, with the
    /// window counting done here too.
    fn spec_records(n: u64) -> Vec<(String, String)> {
        let mut x: u128 = 42;
        (0..n)
            .map(|i| {
                x = (x * 6364136223846793005 + 1442695040888963407) % (1u128 << 64);
                let r = (x >> 33) as u64;
                let user = r % 10000;
                let name = format!("name{user}");
                let surname = format!("sur{}", user % 97);
                let flag = u8::from((r >> 8).is_multiple_of(10));
                let amount = format!("{:.2}", (r % 100000) as f64 / 100.0);
                let delta_t = (r % 3600).to_string();
                let ts = 1700000000000i64 + i as i64 - ((r >> 16) % 2000) as i64;
                let key = format!("{name}{surname}");
                let value = format!(
                    "{{\"name\":\"{name}\",\"surname\":\"{surname}\",\"amount\":\"{amount}\",\"delta_t\":\"{delta_t}\",\"flag\":{flag},\"ts\":{ts}}}"
                );
                (key, value)
            })
            .collect()
    }

    #[test]
    fn the_first_records_are_the_specs() {
        let spec = spec_records(2_000);
        let generated: Vec<(String, String)> =
            transactions(2_000).map(|t| (t.key(), t.value())).collect();
        assert_eq!(generated, spec);
        // The spec's pseudo-code run in Python, so the test does not only compare two Rust programs.
        assert_eq!(
            spec[0].1,
            r#"{"name":"name5334","surname":"sur96","amount":"653.34","delta_t":"2134","flag":0,"ts":1699999999381}"#
        );
        assert_eq!(
            spec[2].1,
            r#"{"name":"name3538","surname":"sur46","amount":"635.38","delta_t":"2338","flag":0,"ts":1699999998475}"#
        );
    }

    #[test]
    fn the_alert_count_is_the_specs() {
        let n = 200_000;
        let mut counts = std::collections::HashMap::<(String, i64), u32>::new();
        for (key, value) in spec_records(n) {
            let parsed: serde_json::Value = serde_json::from_str(&value).unwrap();
            if parsed["flag"] == 1 {
                let ts = parsed["ts"].as_i64().unwrap();
                *counts.entry((key, ts - ts % 10_000)).or_default() += 1;
            }
        }
        let expected = counts.values().filter(|c| **c > 1).count();
        assert!(expected > 100, "{expected}");
        assert_eq!(fraud_window_alerts(n).len(), expected);
    }

    #[test]
    fn closing_records_close_every_window_and_never_alert() {
        let n = 1_000;
        let last_ts = transactions(n).map(|t| t.ts).max().unwrap();
        let closing = closing_records(n);
        assert_eq!(
            closing.iter().map(|(p, _)| *p).collect::<Vec<_>>(),
            [0, 1, 2, 3]
        );
        for (partition, tx) in closing {
            assert_eq!(tx.flag, 0);
            assert_eq!(
                (tx.name.as_str(), tx.surname),
                ("close", partition.to_string())
            );
            assert_eq!(tx.ts, 1_700_000_000_000 + n as i64 + 60_000);
            // Past the end of the last window plus the 5 s watermark delay.
            assert!(tx.ts - 5_000 >= last_ts - last_ts % 10_000 + 10_000);
        }
    }
}
