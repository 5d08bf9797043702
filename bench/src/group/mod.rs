//! Instances of the reference workload sharing a consumer group (`consumerGroup = true`), for
//! `weir-bench group`: the throughput of 1, 2 and 3 instances, the cost of the changelog against one
//! instance in assign mode, the rate of a restore and the time of a failover.
//!
//! A run starts one `weir run` in assign mode (the suite's `wasm exactly-once`), or k at once in group mode
//! on a fresh group, each on a fresh alerts topic, and measures:
//! - throughput from the start, and from reading: the first partitions assigned in group mode (a join
//!   takes about half of `session.timeout.ms`, which would otherwise hide what the processing costs), the
//!   first partition read in assign mode;
//! - the CPU time of all instances when the last alert is readable, per million records;
//! - with one instance, a restore: once it stopped, a second instance of the same pipeline rebuilds every
//!   partition's state from the changelog, as a member taking over would;
//! - with two or more, a failover: from SIGKILL of one instance to another being assigned its partitions.
//!
//! The alerts are checked from the raw log, since tansu hands aborted records to read_committed readers.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context;
use serde_json::Value;

use crate::measure::{Alert, AlertWatch, Exactness, Expected};
use crate::variant::VARIANTS;
use instance::Instance;

mod instance;
pub mod report;
mod runs;

pub use runs::{measure_groups, GroupRuns};

/// The log message of a member given partitions (`source/kafka/group.rs`).
const ASSIGNED: &str = "partitions assigned to this instance";
/// The log message of assign mode starting on a partition (`source/kafka/assignment.rs`).
const READING: &str = "reading partition";
/// The log message of a finished restore (`pipeline/tasks.rs`).
const RESTORED: &str = "state restored from";
/// The group's session timeout: how long a dead member keeps its partitions.
pub const SESSION_TIMEOUT_MS: u64 = 6000;

/// How the partitions are shared out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Mode {
    /// One instance assigns itself every partition and keeps a checkpoint: the suite's `wasm exactly-once`.
    Assign,
    /// This many instances share a consumer group, the input declared partitioned by user.
    Group(usize),
    /// The same, the input not declared: every row goes through the repartition topic.
    Repartitioned(usize),
}

impl std::fmt::Display for Mode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Mode::Assign => write!(f, "one instance, assign mode, checkpoint"),
            Mode::Group(1) => write!(f, "group mode, 1 instance"),
            Mode::Group(k) => write!(f, "group mode, {k} instances"),
            Mode::Repartitioned(1) => write!(f, "group mode, repartitioned, 1 instance"),
            Mode::Repartitioned(k) => write!(f, "group mode, repartitioned, {k} instances"),
        }
    }
}

/// What one run measured.
#[derive(Debug, Clone)]
pub struct GroupMeasure {
    /// How it ran.
    pub mode: Mode,
    /// Records in the input.
    pub records: u64,
    /// From starting the instances to the last expected alert being readable.
    pub wall: Duration,
    /// From the first partitions being read (assigned, in group mode) to the last expected alert being
    /// readable.
    pub after_join: Duration,
    /// CPU time (user and kernel) of all instances when the last alert was readable.
    pub cpu: Duration,
    /// The committed alerts against the offline result.
    pub exactness: Exactness,
    /// With one instance: a second one restoring all the state.
    pub restore: Option<Restore>,
    /// With several: SIGKILL of one to its partitions being assigned to another.
    pub failover: Option<Duration>,
}

impl GroupMeasure {
    /// Input records per second from the start.
    pub fn records_per_second(&self) -> f64 {
        self.records as f64 / self.wall.as_secs_f64()
    }

    /// Input records per second once partitions were being read.
    pub fn records_per_second_after_join(&self) -> f64 {
        self.records as f64 / self.after_join.as_secs_f64()
    }

    /// CPU seconds per million input records.
    pub fn cpu_per_million(&self) -> f64 {
        self.cpu.as_secs_f64() * 1e6 / self.records as f64
    }
}

/// A restore as the restoring instance logged it.
#[derive(Debug, Clone, Copy)]
pub struct Restore {
    /// Partitions restored.
    pub partitions: u64,
    /// Changelog records read (a record holds a window's groups, so there are few).
    pub read: u64,
    /// Their bytes, keys and values.
    pub bytes: u64,
    /// Groups rebuilt.
    pub groups: u64,
    /// Seconds from making sure the changelog exists to the last partition rebuilt.
    pub seconds: f64,
}

impl Restore {
    /// Groups rebuilt per second.
    pub fn groups_per_second(&self) -> f64 {
        self.groups as f64 / self.seconds
    }
}

/// One run of `examples/fraud-window`.
pub struct GroupRun<'a> {
    /// The `weir` binary.
    pub weir: &'a Path,
    /// The broker.
    pub bootstrap: &'a str,
    /// The input topic and its records.
    pub input: (&'a str, u64),
    /// A fresh alerts topic with one partition; it also names the group.
    pub alerts: &'a str,
    /// The alerts it must produce.
    pub expected: &'a Expected,
    /// How long to wait for the last alert.
    pub timeout: Duration,
    /// Where the pipeline file and the instances' logs go.
    pub dir: &'a Path,
}

impl GroupRun<'_> {
    /// Starts the instances, waits for every alert, then (in group mode) measures a restore (one instance)
    /// or a failover (several), and checks the committed alerts.
    pub fn measure(&self, mode: Mode) -> anyhow::Result<GroupMeasure> {
        let (pipeline, instances, reading) = match mode {
            Mode::Assign => (
                VARIANTS[0].write_pipeline(self.dir, self.input.0, self.alerts, true)?,
                1,
                READING,
            ),
            Mode::Group(k) => (
                group_pipeline(self.dir, self.input.0, self.alerts)?,
                k,
                ASSIGNED,
            ),
            Mode::Repartitioned(k) => (
                repartitioned_pipeline(self.dir, self.input.0, self.alerts)?,
                k,
                ASSIGNED,
            ),
        };
        let watch = AlertWatch::start(self.bootstrap, self.alerts, Duration::from_millis(20))?;
        let started = Instant::now();
        let mut running = (0..instances)
            .map(|i| self.start(&pipeline, &format!("instance-{i}")))
            .collect::<anyhow::Result<Vec<_>>>()?;
        self.wait_for_alerts(&watch, &mut running, started)?;
        let cpu = running.iter_mut().map(Instance::cpu).sum();
        let joined = running
            .iter()
            .filter_map(|i| i.event(reading, started))
            .map(|(at, _)| at)
            .min()
            .with_context(|| format!("no instance logged \"{reading}\""))?;
        // Anything written twice would show after the expected count: give it time to be written.
        std::thread::sleep(Duration::from_secs(2));
        let (restore, failover) = match mode {
            Mode::Assign => (None, None),
            Mode::Group(1) | Mode::Repartitioned(1) => {
                let only = running.pop().expect("one instance");
                only.stop(libc::SIGTERM)?;
                (Some(self.restore(&pipeline)?), None)
            }
            Mode::Group(_) | Mode::Repartitioned(_) => (None, Some(failover(&mut running)?)),
        };
        for instance in running {
            instance.stop(libc::SIGTERM)?;
        }
        let read = watch.finish()?;
        let last = self
            .expected
            .last_read(&read)
            .context("no expected alert was read")?;
        let exactness = self
            .expected
            .check(&committed_alerts(self.bootstrap, self.alerts)?);
        Ok(GroupMeasure {
            mode,
            records: self.input.1,
            wall: last - started,
            after_join: last.saturating_duration_since(joined),
            cpu,
            exactness,
            restore,
            failover,
        })
    }

    fn start(&self, pipeline: &Path, name: &str) -> anyhow::Result<Instance> {
        Instance::start(
            self.weir,
            pipeline,
            self.bootstrap,
            &self.dir.join(format!("{name}.log")),
        )
    }

    /// Waits until every expected alert was read; fails if an instance exits or time runs out.
    fn wait_for_alerts(
        &self,
        watch: &AlertWatch,
        running: &mut [Instance],
        started: Instant,
    ) -> anyhow::Result<()> {
        while watch.count() < self.expected.len() {
            for instance in running.iter_mut() {
                instance.check_running()?;
            }
            anyhow::ensure!(
                started.elapsed() < self.timeout,
                "{} of {} alerts read after {:?}; the logs are in {}",
                watch.count(),
                self.expected.len(),
                self.timeout,
                self.dir.display()
            );
            std::thread::sleep(Duration::from_millis(2));
        }
        Ok(())
    }

    /// The restore of a large state: one member counts every transaction per user in windows as long as
    /// the workload (so every user is state), then stops, and a second one rebuilds all of it.
    pub fn restore_at_scale(&self) -> anyhow::Result<Restore> {
        let pipeline = large_state_pipeline(self.dir, self.input.0, self.alerts)?;
        let mut member = self.start(&pipeline, "large-state")?;
        member.wait_for_input(self.input.1, self.timeout)?;
        member.stop(libc::SIGTERM)?;
        self.restore(&pipeline)
    }

    /// Starts an instance of the stopped pipeline and waits for it to rebuild every partition.
    fn restore(&self, pipeline: &Path) -> anyhow::Result<Restore> {
        let started = Instant::now();
        let restorer = self.start(pipeline, "restorer")?;
        let fields = restorer.wait_for(RESTORED, started, Duration::from_secs(120))?;
        restorer.stop(libc::SIGTERM)?;
        let number = |key: &str| {
            fields
                .get(key)
                .and_then(Value::as_f64)
                .with_context(|| format!("the restore's log line has no {key}: {fields:?}"))
        };
        Ok(Restore {
            partitions: number("partitions")? as u64,
            read: number("read")? as u64,
            bytes: number("bytes")? as u64,
            groups: number("groups")? as u64,
            seconds: number("seconds")?,
        })
    }
}

/// SIGKILLs the first instance and waits for another to be assigned its partitions.
fn failover(running: &mut Vec<Instance>) -> anyhow::Result<Duration> {
    let killed = running.remove(0);
    let at = Instant::now();
    killed.stop(libc::SIGKILL)?;
    let deadline = Duration::from_millis(SESSION_TIMEOUT_MS) + Duration::from_secs(60);
    while at.elapsed() < deadline {
        if let Some((assigned, _)) = running.iter().find_map(|i| i.event(ASSIGNED, at)) {
            return Ok(assigned - at);
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    anyhow::bail!("no instance took the killed one's partitions within {deadline:?}")
}

/// The committed alerts of `topic` (partition 0), from its raw log.
fn committed_alerts(bootstrap: &str, topic: &str) -> anyhow::Result<Vec<Alert>> {
    let log = weir_tests::kafka_log::read_log(bootstrap, topic, 0)?;
    let now = Instant::now();
    Ok(log
        .committed
        .into_iter()
        .map(|record| Alert {
            key: record.key.map(|k| String::from_utf8_lossy(&k).into_owned()),
            value: String::from_utf8_lossy(&record.value.unwrap_or_default()).into_owned(),
            read_at: now,
        })
        .collect())
}

/// `examples/fraud-window` as a group member reading `input` and writing alerts to `alerts`, exactly once,
/// with the session timeout of the tests.
pub fn group_pipeline(dir: &Path, input: &str, alerts: &str) -> anyhow::Result<PathBuf> {
    write_group_pipeline(dir, input, alerts, &[])
}

/// [`group_pipeline`] with `more` edits of the example.
fn write_group_pipeline(
    dir: &Path,
    input: &str,
    alerts: &str,
    more: &[(&str, String)],
) -> anyhow::Result<PathBuf> {
    let source = format!(
        "consumerGroup = true\nkafka.session.timeout.ms = \"{SESSION_TIMEOUT_MS}\"\n\
         kafka.heartbeat.interval.ms = \"500\""
    );
    let mut edits = vec![
        (
            "name = \"fraud-window\"",
            format!("name = \"bench-group-{alerts}\""),
        ),
        ("subscribe = \"tx\"", format!("subscribe = \"{input}\"")),
        ("topic = \"alerts\"", format!("topic = \"{alerts}\"")),
        ("endingOffsets = \"latest\"", source),
        (
            "\n[sink]\n",
            "\n[sink]\ndelivery = \"exactly-once\"\n".into(),
        ),
    ];
    edits.extend(more.iter().cloned());
    let text = weir_tests::example_variant("fraud-window/pipeline.toml", &edits);
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let path = dir.join("pipeline.toml");
    std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}

/// [`group_pipeline`] without declaring the input partitioned by user: rows go through the repartition
/// topic.
fn repartitioned_pipeline(dir: &Path, input: &str, alerts: &str) -> anyhow::Result<PathBuf> {
    let undeclared = [("input_partitioned_by = [\"id\"]", String::new())];
    write_group_pipeline(dir, input, alerts, &undeclared)
}

/// [`group_pipeline`] counting every transaction per user (a SQL stage makes the id, with no flag filter)
/// in 20-minute windows, and writing none of the counts out.
fn large_state_pipeline(dir: &Path, input: &str, alerts: &str) -> anyhow::Result<PathBuf> {
    let every_transaction = [
        (
            "udf = \"../../target/wasm32-wasip1/release/fraud_flagged.wasm\"",
            "select = [\"name || surname AS id\", \"*\"]".to_string(),
        ),
        (
            "greater_than = 1 }",
            "greater_than = 1000000000 }".to_string(),
        ),
        // Windows as long as the workload (1,000 s per million records), so every user's count stays open,
        // and batches of 20,000 records, each changing thousands of counts.
        ("size = \"10s\"", "size = \"1200s\"".to_string()),
        (
            "startingOffsets = \"earliest\"",
            "startingOffsets = \"earliest\"\nmaxOffsetsPerTrigger = 20000".to_string(),
        ),
    ];
    write_group_pipeline(dir, input, alerts, &every_transaction)
}
