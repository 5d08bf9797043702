//! Several instances of one pipeline sharing its partitions through a consumer group
//! (`consumerGroup = true`), exactly once: an instance killed, one joining late, and one paused past the
//! session timeout (a zombie) must together write every result once. The output is read from the raw log,
//! since tansu hands aborted records to read_committed consumers.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::{Duration, Instant};

use weir::internal::demo::{demo_records, MALFORMED_EVERY};
use weir_tests::kafka_log::read_log;
use weir_tests::*;

use super::fraud::expected_results;

/// Input partitions: enough for three instances to hold two each.
const PARTITIONS: i32 = 6;

/// `examples/fraud` as a group member with `delivery`: no end, small batches so that instances are
/// mid-batch when they are killed or paused, and a short session timeout (tansu's group join takes about
/// half of it).
fn group_pipeline(dir: &Path, delivery: &str) -> PathBuf {
    let text = example_variant(
        "fraud/pipeline.toml",
        &[
            (
                "endingOffsets = \"latest\"",
                "consumerGroup = true\nmaxOffsetsPerTrigger = 500\n\
                 kafka.session.timeout.ms = \"6000\"\nkafka.heartbeat.interval.ms = \"500\""
                    .to_string(),
            ),
            ("name = \"fraud\"", "name = \"fraud-group\"".to_string()),
            (
                "format = \"json\"",
                format!("format = \"json\"\ndelivery = \"{delivery}\""),
            ),
        ],
    );
    let path = dir.join("pipeline.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// One instance, its log in `dir/<name>.log` and its progress in `dir/<name>.json`, with `env` set.
pub(super) fn start_instance(
    file: &Path,
    bootstrap: &str,
    dir: &Path,
    (name, env): (&str, &[(&str, &str)]),
) -> Child {
    let log = File::create(dir.join(format!("{name}.log"))).unwrap();
    let progress = File::create(dir.join(format!("{name}.json"))).unwrap();
    weir_command()
        .envs(env.iter().copied())
        .args(["run", "--progress", "json"])
        .arg(file)
        .env("KAFKA_BOOTSTRAP_SERVERS", bootstrap)
        .env("WEIR_LOG", "warn,weir=info")
        .stdout(progress)
        .stderr(log)
        .spawn()
        .unwrap()
}

/// Produces the demo records in steps over `over`, so the instances read while they come.
fn produce_slowly(bootstrap: String, n: u64, over: Duration) -> std::thread::JoinHandle<u64> {
    std::thread::spawn(move || {
        let records: Vec<(String, String)> = demo_records(n).collect();
        let steps = 40;
        let mut produced = 0;
        for step in records.chunks(records.len().div_ceil(steps)) {
            produced += produce(&bootstrap, "transactions", step.to_vec()).unwrap();
            std::thread::sleep(over / steps as u32);
        }
        produced
    })
}

/// The committed values of a one-partition topic, from the raw log.
pub(super) fn committed(bootstrap: &str, topic: &str) -> Vec<String> {
    read_log(bootstrap, topic, 0).unwrap().committed_values()
}

/// Waits until `topic` holds `count` committed records (or more), for at most `timeout`.
pub(super) fn wait_for_committed(bootstrap: &str, topic: &str, count: usize, timeout: Duration) {
    let started = Instant::now();
    while committed(bootstrap, topic).len() < count && started.elapsed() < timeout {
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// Stops the instances still running, then checks that every result and dead letter was committed once.
fn stop_and_check(instances: Vec<Child>, bootstrap: &str, n: u64, dir: &Path) {
    let expected = expected_results(n);
    wait_for_committed(
        bootstrap,
        "results",
        expected.len(),
        Duration::from_secs(120),
    );
    // Anything written twice would show after the expected count: give the instances time to write it.
    std::thread::sleep(Duration::from_secs(3));
    for mut instance in instances {
        let _ = instance.kill();
        instance.wait().unwrap();
    }
    let log = read_log(bootstrap, "results", 0).unwrap();
    if log.fenced() > 0 {
        eprintln!("{} records of fenced producers in the log", log.fenced());
    }
    let mut results = log.committed_values();
    results.sort();
    let logs: Vec<String> = ["a", "b", "c"]
        .iter()
        .filter_map(|name| std::fs::read_to_string(dir.join(format!("{name}.log"))).ok())
        .collect();
    let mut repeated = results.clone();
    repeated.dedup();
    assert_eq!(
        results.len(),
        expected.len(),
        "committed results ({} repeated, {} aborted, {} fenced, {} open, {} commit and {} abort markers; \
         the first repeated: {:?}); the instances' logs:\n{}",
        results.len() - repeated.len(),
        log.aborted(),
        log.fenced(),
        log.open(),
        log.commits,
        log.aborts,
        results.windows(2).find(|w| w[0] == w[1]).map(|w| &w[0]),
        logs.join("\n----\n")
    );
    assert!(
        results == expected,
        "the results differ from the offline computation"
    );
    let letters = committed(bootstrap, "transactions-dead-letter");
    assert_eq!(letters.len() as u64, n / MALFORMED_EVERY);
}

/// Waits until `instance` has stopped itself (`WEIR_CRASH_AT=<point>:<batch>:stop`), leaves it stopped
/// past the group's session timeout, so that the other members take its partitions and fence its
/// producers, then lets it go on. `log` is its log, for the failure message.
pub(super) fn resume_after_session_timeout(instance: &mut Child, log: impl Fn() -> String) {
    let stopped = |pid: u32| {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        stat.rsplit(')')
            .next()
            .is_some_and(|rest| rest.trim_start().starts_with('T'))
    };
    let waiting = Instant::now();
    while !stopped(instance.id()) {
        assert!(
            waiting.elapsed() < Duration::from_secs(90),
            "the instance never reached its stop point: {}",
            log()
        );
        assert!(
            instance.try_wait().unwrap().is_none(),
            "the instance exited before its stop point: {}",
            log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_secs(12));
    let status = std::process::Command::new("kill")
        .args(["-CONT", &instance.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

/// Waits (at most 90 s) until the resumed instance's log says its producer was fenced: it goes on with
/// the batch it stopped in, and the commit is refused. How soon depends on the machine's load (in CI the
/// results were complete before it was logged), so the tests wait for it rather than expect it.
pub(super) fn wait_until_fenced(log: impl Fn() -> String) {
    let waiting = Instant::now();
    while !log().contains("whose producer fenced this one's") {
        assert!(
            waiting.elapsed() < Duration::from_secs(90),
            "the resumed instance was not fenced within 90 s: {}",
            log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A broker with the example's topics (the input on [`PARTITIONS`] partitions), the pipeline file in a
/// scratch folder, and `n` records being produced over `over`.
struct Setup {
    broker: Broker,
    dir: PathBuf,
    file: PathBuf,
    producing: Option<std::thread::JoinHandle<u64>>,
}

fn setup(delivery: &str, n: u64, over: Duration) -> Setup {
    udf_module("json_transactions");
    udf_module("fraud_flagged");
    let broker = tansu();
    broker.create_topic("transactions", PARTITIONS);
    broker.create_topic("results", 1);
    broker.create_topic("transactions-dead-letter", 1);
    let dir = scratch_dir();
    let file = group_pipeline(&dir, delivery);
    let producing = produce_slowly(broker.bootstrap.clone(), n, over);
    Setup {
        broker,
        dir,
        file,
        producing: Some(producing),
    }
}

impl Setup {
    fn start(&self, name: &str, env: &[(&str, &str)]) -> Child {
        start_instance(&self.file, &self.broker.bootstrap, &self.dir, (name, env))
    }

    /// Waits until every input record is produced.
    fn wait_for_input(&mut self) {
        let producing = self.producing.take().expect("waited for once");
        producing.join().unwrap();
    }

    fn log(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.join(format!("{name}.log"))).unwrap()
    }
}

#[test]
fn instances_share_the_partitions_and_take_over_a_killed_one_s_exactly_once() {
    let n = 60_000;
    let mut setup = setup("exactly-once", n, Duration::from_secs(32));
    let mut a = setup.start("a", &[]);
    let b = setup.start("b", &[]);
    std::thread::sleep(Duration::from_secs(8));
    a.kill().unwrap();
    a.wait().unwrap();
    // Past the session timeout b holds every partition; then c joins and takes some from it.
    std::thread::sleep(Duration::from_secs(10));
    let c = setup.start("c", &[]);
    setup.wait_for_input();
    stop_and_check(vec![b, c], &setup.broker.bootstrap, n, &setup.dir);
    let (b_log, c_log) = (setup.log("b"), setup.log("c"));
    assert!(
        b_log
            .matches("partitions assigned to this instance")
            .count()
            >= 2,
        "b took a's partitions over: {b_log}"
    );
    assert!(
        b_log.contains("partitions released to another instance"),
        "b gave partitions to c: {b_log}"
    );
    assert!(
        c_log.contains("partitions assigned to this instance"),
        "c was given partitions: {c_log}"
    );
    // b's progress says what it owned: all six partitions between a's death and c's arrival.
    let groups: Vec<serde_json::Value> = std::fs::read_to_string(setup.dir.join("b.json"))
        .unwrap()
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .map(|progress| progress["sources"][0]["consumerGroup"].clone())
        .collect();
    let owned = |g: &serde_json::Value| g["assignedPartitions"].as_array().map_or(0, Vec::len);
    assert!(groups.iter().all(|g| g["group"] == "weir-fraud-group"));
    assert!(groups.iter().any(|g| owned(g) == PARTITIONS as usize));
    assert!(groups.last().unwrap()["rebalances"].as_u64().unwrap() >= 3);
}

#[test]
fn a_paused_instance_that_lost_its_partitions_cannot_commit_for_them() {
    let n = 60_000;
    let mut setup = setup("exactly-once", n, Duration::from_secs(24));
    // a stops itself with a batch's rows produced and its transactions open, as a long GC pause or a
    // frozen VM would stop it.
    let stop_mid_batch = [("WEIR_CRASH_AT", "produced:20:stop")];
    let mut a = setup.start("a", &stop_mid_batch);
    let b = setup.start("b", &[]);
    // Past the session timeout b takes every partition, fencing a's producers; then a goes on.
    resume_after_session_timeout(&mut a, || setup.log("a"));
    setup.wait_for_input();
    wait_until_fenced(|| setup.log("a"));
    stop_and_check(vec![a, b], &setup.broker.bootstrap, n, &setup.dir);
    let a_log = setup.log("a");
    assert!(
        a_log.contains("WEIR_CRASH_AT: stopping")
            && a_log.contains("whose producer fenced this one's"),
        "a's open transactions were fenced: {a_log}"
    );
}

#[test]
fn at_least_once_members_commit_to_the_group_and_lose_nothing_when_one_is_killed() {
    let n = 30_000;
    let mut setup = setup("at-least-once", n, Duration::from_secs(16));
    let mut a = setup.start("a", &[]);
    let b = setup.start("b", &[]);
    std::thread::sleep(Duration::from_secs(8));
    a.kill().unwrap();
    a.wait().unwrap();
    setup.wait_for_input();
    let bootstrap = &setup.broker.bootstrap;
    let expected = expected_results(n);
    let mut missing = expected.clone();
    let started = Instant::now();
    while !missing.is_empty() && started.elapsed() < Duration::from_secs(120) {
        std::thread::sleep(Duration::from_millis(500));
        let written: std::collections::BTreeSet<String> =
            committed(bootstrap, "results").into_iter().collect();
        missing.retain(|result| !written.contains(result));
    }
    assert!(
        missing.is_empty(),
        "{} results missing: {}",
        missing.len(),
        setup.log("b")
    );
    // Only a's last uncommitted batches (at most ~150 results) can be written twice: b starts from the
    // group's offsets.
    let results = committed(bootstrap, "results").len();
    assert!(
        results < expected.len() + 300,
        "{results} results for {}",
        expected.len()
    );
    let mut b = b;
    b.kill().unwrap();
    b.wait().unwrap();
}
