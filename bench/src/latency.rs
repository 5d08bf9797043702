//! Latency at a fixed input rate: the generator writes the workload in real time (e.g. 50,000 records/s)
//! while an unbounded pipeline runs, and each alert's delay is measured from the moment its window could
//! close to the moment the alert is readable.
//!
//! A window ending at event time `end` can close once event time reaches `end + delay` (the watermark
//! delay). Records carry event time `BASE + i` (minus up to 2 s of disorder), so that moment is when the
//! generator sent record `i = end + delay - BASE`; its send time is the reference. Windows that only the
//! closing records close (their `end + delay` lies past the last transaction) are left out, since no
//! transaction marks when they could close.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context;

use crate::fetch_wait::{FetchProbe, PartitionWait};
use crate::generator::{generate, Pace};
use crate::measure::{AlertWatch, Ending, Exactness, Expected, Run};
use crate::variant::Variant;

/// Latency percentiles of one run.
#[derive(Debug, Clone)]
pub struct Latency {
    /// The configuration.
    pub variant: &'static str,
    /// Input records per second.
    pub rate: u64,
    /// Transactions written.
    pub records: u64,
    /// Alerts whose delay was measured.
    pub measured: usize,
    /// Median delay.
    pub p50: Duration,
    /// 99th percentile.
    pub p99: Duration,
    /// The largest.
    pub max: Duration,
    /// The window with the largest delay: its end in event time, as seconds after the workload's first
    /// record (`BASE_TS`).
    pub slowest_window_s: Option<f64>,
    /// The alert check of the run.
    pub exactness: Exactness,
    /// Peak RSS of the pipeline, KiB.
    pub peak_rss_kib: u64,
    /// What the broker made a bare consumer beside the pipeline wait, per input partition.
    pub fetch_waits: Vec<PartitionWait>,
}

/// The pipeline's watermark delay (`examples/fraud-window`: `delay = "5s"`).
const WATERMARK_DELAY_MS: i64 = 5_000;

/// Runs `variant` unbounded on `input` (which must exist, empty, with 4 partitions) while writing `n`
/// transactions to it at `rate` per second; alerts go to `alerts` (one partition). Files go to `dir`.
pub fn measure_latency(
    bootstrap: &str,
    variant: &Variant,
    (input, alerts): (&str, &str),
    n: u64,
    rate: u64,
    dir: &Path,
) -> anyhow::Result<Latency> {
    let pipeline = variant.write_pipeline(dir, input, alerts, false)?;
    let expected = Expected::fraud_window(n);
    let log = dir.join("weir.log");
    let watch = AlertWatch::start(bootstrap, alerts, Duration::from_millis(5))?;
    let run = std::thread::scope(|scope| {
        let running = scope.spawn(|| {
            Run {
                weir: &weir_tests::weir_binary(),
                pipeline: &pipeline,
                bootstrap,
                expected: &expected,
                records: n,
                ending: Ending::Terminate,
                timeout: Duration::from_secs(60) + Duration::from_secs(n / rate.max(1)),
                log: &log,
                env: &[("WEIR_LOG", "warn,weir::pipeline=info")],
                footprint: None,
            }
            .measure(watch)
        });
        let probe = wait_until_ready(&log, &running).and_then(|()| {
            let partitions = weir::internal::workload::PARTITIONS;
            FetchProbe::start(bootstrap, (input, partitions), &source_kafka(&pipeline)?)
        });
        let generated = probe
            .as_ref()
            .map_err(|e| anyhow::anyhow!("{e:#}"))
            .and_then(|_| generate(bootstrap, input, n, Pace::RateTimed(rate)));
        let run = running
            .join()
            .map_err(|_| anyhow::anyhow!("the measured run panicked"))?;
        let fetch_waits = probe.and_then(FetchProbe::finish);
        anyhow::Ok((run?, generated?, fetch_waits?))
    });
    let (run, generated, fetch_waits) = run?;
    let mut delays: Vec<Duration> = Vec::new();
    let mut slowest: Option<(Duration, i64)> = None;
    let mut seen = std::collections::BTreeSet::new();
    for alert in &run.alerts {
        let Some(end) = expected.window_end(&alert.value) else {
            continue;
        };
        let index = end + WATERMARK_DELAY_MS - weir::internal::workload::BASE_TS;
        if !seen.insert(&alert.value) || index >= n as i64 {
            continue;
        }
        let could_close = generated.started + generated.sent_at[index.max(0) as usize];
        let delay = alert.read_at.saturating_duration_since(could_close);
        if slowest.is_none_or(|(longest, _)| delay > longest) {
            slowest = Some((delay, end));
        }
        delays.push(delay);
    }
    delays.sort();
    let percentile = |p: f64| {
        let rank = ((delays.len() as f64 * p).ceil() as usize).clamp(1, delays.len().max(1));
        delays.get(rank - 1).copied().unwrap_or_default()
    };
    Ok(Latency {
        variant: variant.name,
        rate,
        records: n,
        measured: delays.len(),
        p50: percentile(0.50),
        p99: percentile(0.99),
        max: delays.last().copied().unwrap_or_default(),
        slowest_window_s: slowest
            .map(|(_, end)| (end - weir::internal::workload::BASE_TS) as f64 / 1000.0),
        exactness: run.exactness,
        peak_rss_kib: run.peak_rss_kib,
        fetch_waits,
    })
}

/// The `kafka.*` options of the pipeline file's source, for a consumer that should fetch as it does.
fn source_kafka(pipeline: &Path) -> anyhow::Result<std::collections::BTreeMap<String, String>> {
    let text = std::fs::read_to_string(pipeline)
        .with_context(|| format!("reading {}", pipeline.display()))?;
    let dir = pipeline.parent().unwrap_or(Path::new("."));
    let spec = weir::config::parse(&text, &pipeline.display().to_string(), dir, "bench", |_| {
        None
    })?;
    let kafka = spec
        .source
        .kafka()
        .context("the pipeline's source is not Kafka")?;
    Ok(kafka.kafka.clone())
}

/// Waits until the pipeline has its partitions assigned (its log says "source ready"), so the first
/// windows' delays do not include its start-up.
pub(crate) fn wait_until_ready<T>(
    log: &Path,
    running: &std::thread::ScopedJoinHandle<'_, T>,
) -> anyhow::Result<()> {
    let started = Instant::now();
    loop {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        if text.contains("source ready") {
            return Ok(());
        }
        if running.is_finished() {
            anyhow::bail!(
                "the pipeline stopped before it was ready; see {}",
                log.display()
            );
        }
        if started.elapsed() > Duration::from_secs(60) {
            return Err(anyhow::anyhow!("no \"source ready\" in {}", log.display()))
                .context("waiting for the pipeline to start");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
