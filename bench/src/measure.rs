//! One measured run of the `weir` binary: start it, watch the alerts topic as a reader would, check the
//! alerts exactly, and record wall time, peak RSS, CPU time and where the batches spent their time.
//!
//! Wall time runs from just before the process is started to the moment the last expected alert is
//! readable by a `read_committed` consumer, as the workload's spec defines throughput. Peak RSS and CPU
//! time come from the kernel's accounting of the finished process (`wait4`), not from sampling.

use std::collections::BTreeMap;
use std::io::BufRead;
use std::path::Path;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::{Message, Offset, TopicPartitionList};
use serde::Deserialize;

pub use crate::stages::StageTimes;

/// The alerts a run must produce: each alert's JSON value, with its id (the record key) and window end.
pub struct Expected {
    alerts: BTreeMap<String, (String, i64)>,
}

impl Expected {
    /// The offline result of the fraud-window job over the first `n` transactions.
    pub fn fraud_window(n: u64) -> Expected {
        let alerts = weir::internal::workload::fraud_window_alerts(n)
            .into_iter()
            .map(|a| {
                let end = a.window_start + weir::internal::workload::WINDOW_MS;
                (a.json(), (a.id, end))
            })
            .collect();
        Expected { alerts }
    }

    /// How many alerts.
    pub fn len(&self) -> usize {
        self.alerts.len()
    }

    /// Whether there are none (a workload too small to alert).
    pub fn is_empty(&self) -> bool {
        self.alerts.is_empty()
    }

    /// Window end (ms) of the alert with this JSON value.
    pub fn window_end(&self, value: &str) -> Option<i64> {
        self.alerts.get(value).map(|(_, end)| *end)
    }

    /// The moment the last expected alert was first readable, if any was read.
    pub fn last_read(&self, read: &[Alert]) -> Option<Instant> {
        let mut first_read: BTreeMap<&str, Instant> = BTreeMap::new();
        for alert in read {
            first_read.entry(&alert.value).or_insert(alert.read_at);
        }
        first_read
            .iter()
            .filter(|(value, _)| self.window_end(value).is_some())
            .map(|(_, at)| *at)
            .max()
    }

    /// Compares what was read with what was expected.
    pub fn check(&self, read: &[Alert]) -> Exactness {
        let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
        let mut wrong_keys = 0;
        for alert in read {
            *seen.entry(&alert.value).or_default() += 1;
            if let Some((id, _)) = self.alerts.get(&alert.value) {
                if alert.key.as_deref() != Some(id.as_str()) {
                    wrong_keys += 1;
                }
            }
        }
        Exactness {
            expected: self.alerts.len(),
            read: read.len(),
            missing: self
                .alerts
                .keys()
                .filter(|v| !seen.contains_key(v.as_str()))
                .count(),
            extra: seen
                .keys()
                .filter(|v| !self.alerts.contains_key(**v))
                .count(),
            duplicates: seen.values().map(|n| n - 1).sum(),
            wrong_keys,
        }
    }
}

/// The outcome of comparing the alerts read with the expected ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exactness {
    /// Alerts expected.
    pub expected: usize,
    /// Alert records read.
    pub read: usize,
    /// Expected alerts never read.
    pub missing: usize,
    /// Distinct values read that were not expected.
    pub extra: usize,
    /// Records read more than once (counting each repeat).
    pub duplicates: usize,
    /// Expected alerts whose record key is not their id.
    pub wrong_keys: usize,
}

impl Exactness {
    /// No alert missing, extra, repeated or mis-keyed.
    pub fn is_exact(&self) -> bool {
        self.missing == 0 && self.extra == 0 && self.duplicates == 0 && self.wrong_keys == 0
    }
}

impl std::fmt::Display for Exactness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.is_exact() {
            write!(f, "exact ({} alerts)", self.expected)
        } else {
            write!(
                f,
                "NOT exact: {} read, {} expected; {} missing, {} extra, {} duplicates, {} with a wrong key",
                self.read, self.expected, self.missing, self.extra, self.duplicates, self.wrong_keys
            )
        }
    }
}

/// One alert record as a reader saw it.
#[derive(Debug, Clone)]
pub struct Alert {
    /// The record key.
    pub key: Option<String>,
    /// The record value.
    pub value: String,
    /// When the watcher received it.
    pub read_at: Instant,
}

/// A consumer reading an alerts topic from the beginning on its own thread, as a downstream reader would:
/// `read_committed`, `assign()`ed (no group join), recording when each alert became readable.
pub struct AlertWatch {
    alerts: Arc<Mutex<Vec<Alert>>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<anyhow::Result<()>>>,
}

impl AlertWatch {
    /// Starts reading partition 0 of `topic` (the suite creates alert topics with one partition).
    /// `max_wait` bounds how long the broker holds a fetch when there is nothing new, and so the
    /// resolution of the recorded times.
    pub fn start(bootstrap: &str, topic: &str, max_wait: Duration) -> anyhow::Result<AlertWatch> {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", bootstrap)
            .set("group.id", "weir-bench-watch")
            .set("enable.auto.commit", "false")
            .set("isolation.level", "read_committed")
            .set("fetch.wait.max.ms", max_wait.as_millis().to_string())
            .set("fetch.queue.backoff.ms", "0")
            .set("enable.partition.eof", "true")
            .create()
            .with_context(|| format!("creating the watcher of {topic}"))?;
        let mut list = TopicPartitionList::new();
        list.add_partition_offset(topic, 0, Offset::Beginning)?;
        consumer
            .assign(&list)
            .with_context(|| format!("assigning {topic}"))?;
        // Ready once its first fetch has come back (the end of the empty topic): a consumer still looking up
        // where to start saw records up to ~0.4 s late, which small runs measured as their wall time.
        let started = Instant::now();
        loop {
            match consumer.poll(Duration::from_millis(5)) {
                Some(Err(KafkaError::PartitionEOF(_))) => break,
                Some(Err(error)) => return Err(error).with_context(|| format!("reading {topic}")),
                Some(Ok(_)) => {
                    anyhow::bail!("{topic} is not empty: the suite needs a fresh alerts topic")
                }
                None if started.elapsed() > Duration::from_secs(30) => {
                    anyhow::bail!("the watcher of {topic} did not reach its end within 30 s")
                }
                None => {}
            }
        }
        let alerts = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (into, stopping, topic) = (alerts.clone(), stop.clone(), topic.to_string());
        let thread = std::thread::spawn(move || {
            while !stopping.load(Ordering::Relaxed) {
                let message = match consumer.poll(Duration::from_millis(20)) {
                    None | Some(Err(KafkaError::PartitionEOF(_))) => continue,
                    Some(message) => message.with_context(|| format!("reading {topic}"))?,
                };
                let alert = Alert {
                    key: message
                        .key()
                        .map(|k| String::from_utf8_lossy(k).into_owned()),
                    value: String::from_utf8_lossy(message.payload().unwrap_or_default())
                        .into_owned(),
                    read_at: Instant::now(),
                };
                into.lock().unwrap_or_else(|e| e.into_inner()).push(alert);
            }
            Ok(())
        });
        Ok(AlertWatch {
            alerts,
            stop,
            thread: Some(thread),
        })
    }

    /// Alerts read so far.
    pub fn count(&self) -> usize {
        self.alerts.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// Stops reading and returns every alert read.
    pub fn finish(mut self) -> anyhow::Result<Vec<Alert>> {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            thread
                .join()
                .map_err(|_| anyhow::anyhow!("the alert watcher panicked"))??;
        }
        Ok(std::mem::take(
            &mut *self.alerts.lock().unwrap_or_else(|e| e.into_inner()),
        ))
    }
}

impl Drop for AlertWatch {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// What one run measured.
#[derive(Debug, Clone)]
pub struct RunMeasure {
    /// Records in the input.
    pub records: u64,
    /// From starting the process to the last expected alert being readable.
    pub wall: Duration,
    /// From starting the process to its exit.
    pub exit: Duration,
    /// Peak resident memory of the process, KiB.
    pub peak_rss_kib: u64,
    /// CPU time in user mode.
    pub cpu_user: Duration,
    /// CPU time in the kernel.
    pub cpu_system: Duration,
    /// The alert check.
    pub exactness: Exactness,
    /// Micro-batches run.
    pub batches: u64,
    /// The batches' stage times.
    pub stages: StageTimes,
    /// Every alert read, with when.
    pub alerts: Vec<Alert>,
}

impl RunMeasure {
    /// Input records per second of wall time.
    pub fn records_per_second(&self) -> f64 {
        self.records as f64 / self.wall.as_secs_f64()
    }
}

/// How a run is stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// The pipeline is bounded (`endingOffsets`) and exits by itself.
    Exits,
    /// The pipeline is unbounded: SIGTERM once every expected alert has been read.
    Terminate,
}

/// One run of the `weir` binary to measure.
pub struct Run<'a> {
    /// The `weir` binary ([`weir_tests::weir_binary`], or a baseline build to compare with).
    pub weir: &'a Path,
    /// The pipeline file.
    pub pipeline: &'a Path,
    /// The broker, passed as `KAFKA_BOOTSTRAP_SERVERS`.
    pub bootstrap: &'a str,
    /// The alerts it must produce.
    pub expected: &'a Expected,
    /// The input's size, for records per second.
    pub records: u64,
    /// How it stops.
    pub ending: Ending,
    /// How long to wait for the last alert.
    pub timeout: Duration,
    /// Where its stderr goes.
    pub log: &'a Path,
    /// Extra environment, e.g. `WEIR_LOG`.
    pub env: &'a [(&'a str, &'a str)],
    /// With a sampler (the soak), the process's footprint is sampled while it runs.
    pub footprint: Option<&'a std::sync::Mutex<crate::footprint::Sampler>>,
}

impl Run<'_> {
    /// Runs `weir run`, reading the alerts with `watch` (started before, so no alert is missed), until
    /// every expected alert was read and the process exited, or the timeout passed.
    pub fn measure(&self, watch: AlertWatch) -> anyhow::Result<RunMeasure> {
        let Run {
            weir,
            pipeline,
            bootstrap,
            expected,
            records,
            ending,
            timeout,
            log,
            env,
            footprint,
        } = *self;
        let stderr =
            std::fs::File::create(log).with_context(|| format!("creating {}", log.display()))?;
        let started = Instant::now();
        let mut child = std::process::Command::new(weir)
            .args(["run", "--progress", "json"])
            .arg(pipeline)
            .env("KAFKA_BOOTSTRAP_SERVERS", bootstrap)
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .with_context(|| format!("starting {} run {}", weir.display(), pipeline.display()))?;
        let stdout = child.stdout.take().expect("stdout is piped");
        let progress = std::thread::spawn(move || {
            let mut totals = StageTimes::default();
            let mut batches = 0;
            for line in std::io::BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
            {
                #[derive(Deserialize)]
                #[serde(rename_all = "camelCase")]
                struct Line {
                    duration_ms: StageTimes,
                }
                if let Ok(line) = serde_json::from_str::<Line>(&line) {
                    totals.add(&line.duration_ms);
                    batches += 1;
                }
            }
            (totals, batches)
        });

        let pid = child.id() as libc::pid_t;
        let mut exited: Option<(Instant, libc::rusage, i32)> = None;
        let mut terminated = false;
        loop {
            if exited.is_none() {
                exited = reap(pid)?.map(|(usage, status)| (Instant::now(), usage, status));
            }
            if let (Some(sampler), None) = (footprint, &exited) {
                let mut sampler = sampler.lock().unwrap_or_else(|e| e.into_inner());
                sampler.tick(pid, started.elapsed());
            }
            let all_read = watch.count() >= expected.len();
            if all_read && ending == Ending::Terminate && exited.is_none() && !terminated {
                // SAFETY: signalling our own child, whose pid we have not reaped yet.
                unsafe { libc::kill(pid, libc::SIGTERM) };
                terminated = true;
            }
            if let Some((_, _, status)) = exited {
                // Give a reader a moment to see alerts committed just before the exit.
                if all_read || started.elapsed() > timeout || status != 0 {
                    std::thread::sleep(Duration::from_millis(200));
                    break;
                }
            }
            if started.elapsed() > timeout + Duration::from_secs(30) {
                // SAFETY: as above.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        let (exit_at, usage, status) = exited.expect("the loop ends after the exit");
        let alerts = watch.finish()?;
        let (stages, batches) = progress
            .join()
            .map_err(|_| anyhow::anyhow!("reading the progress lines panicked"))?;
        if status != 0 {
            let tail = std::fs::read_to_string(log).unwrap_or_default();
            let tail: Vec<&str> = tail.lines().rev().take(15).collect();
            anyhow::bail!(
                "weir run {} exited with status {status}; the end of {}:\n{}",
                pipeline.display(),
                log.display(),
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            );
        }
        let exactness = expected.check(&alerts);
        let last = expected.last_read(&alerts).unwrap_or(exit_at);
        Ok(RunMeasure {
            records,
            wall: last.max(started) - started,
            exit: exit_at - started,
            peak_rss_kib: usage.ru_maxrss as u64,
            cpu_user: timeval(usage.ru_utime),
            cpu_system: timeval(usage.ru_stime),
            exactness,
            batches,
            stages,
            alerts,
        })
    }
}

/// The child's rusage and exit status once it has exited (`wait4` with `WNOHANG`).
fn reap(pid: libc::pid_t) -> anyhow::Result<Option<(libc::rusage, i32)>> {
    let mut status = 0;
    // SAFETY: rusage is plain data, fully written by wait4 when it returns the pid.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let reaped = unsafe { libc::wait4(pid, &mut status, libc::WNOHANG, &mut usage) };
    match reaped {
        0 => Ok(None),
        r if r == pid => {
            let code = if libc::WIFEXITED(status) {
                libc::WEXITSTATUS(status)
            } else {
                128 + libc::WTERMSIG(status)
            };
            Ok(Some((usage, code)))
        }
        _ => Err(std::io::Error::last_os_error()).context("waiting for the weir process"),
    }
}

fn timeval(t: libc::timeval) -> Duration {
    Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64)
}
