//! Stateful instances sharing a consumer group: the fraud-window aggregation kept per input partition,
//! its changes in a changelog topic, and rebuilt from it wherever the partition goes. Instances are killed,
//! paused and added while the records come; the committed alerts, read from the raw log (tansu hands aborted
//! records to read_committed consumers), must equal the offline computation: none missing, none extra.

use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::Duration;

use weir::internal::workload::{self, fraud_window_alerts};
use weir_tests::*;

use super::group::{
    committed, resume_after_session_timeout, start_instance, wait_for_committed, wait_until_fenced,
};

/// `examples/fraud-window` as a group member, exactly once, with batches small enough that instances are
/// mid-batch when they are killed or paused, and a short session timeout.
/// With round-robin `input`, not declared partitioned by user: rows go through the repartition topic.
fn stateful_group_pipeline(dir: &Path, input: Input) -> PathBuf {
    let mut edits = vec![
        (
            "endingOffsets = \"latest\"",
            "consumerGroup = true\nmaxOffsetsPerTrigger = 20000\n\
             kafka.session.timeout.ms = \"6000\"\nkafka.heartbeat.interval.ms = \"500\""
                .to_string(),
        ),
        (
            "name = \"fraud-window\"",
            "name = \"fraud-window-group\"".to_string(),
        ),
    ];
    if input == Input::RoundRobin {
        edits.push(("input_partitioned_by = [\"id\"]", String::new()));
    }
    let text = example_variant("fraud-window/pipeline.toml", &edits);
    let path = dir.join("pipeline.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// How the input is partitioned.
#[derive(Clone, Copy, PartialEq)]
enum Input {
    /// By user (the workload's key), as the example declares.
    ByUser,
    /// Round-robin: each user's transactions are in every partition.
    RoundRobin,
}

/// Produces the workload's `n` transactions in steps over `over`, then the closing records that close
/// every window of every partition.
fn produce_workload_slowly(
    bootstrap: String,
    n: u64,
    over: Duration,
    input: Input,
) -> std::thread::JoinHandle<()> {
    use weir::internal::demo::{produce, produce_to_partitions};
    std::thread::spawn(move || {
        let steps = 40;
        let per_step = n.div_ceil(steps);
        let mut transactions = workload::transactions(n).map(|tx| (tx.key(), tx.value()));
        for step in 0..steps {
            let records: Vec<_> = transactions.by_ref().take(per_step as usize).collect();
            let partitions = workload::PARTITIONS as u64;
            let _written = match input {
                Input::ByUser => produce(&bootstrap, "tx", records).unwrap(),
                Input::RoundRobin => {
                    let spread = (records.into_iter().enumerate()).map(|(i, (key, value))| {
                        let partition = ((step * per_step + i as u64) % partitions) as i32;
                        (partition, key, value)
                    });
                    produce_to_partitions(&bootstrap, "tx", spread).unwrap()
                }
            };
            std::thread::sleep(over / steps as u32);
        }
        let closing = workload::closing_records(n)
            .into_iter()
            .map(|(partition, tx)| (partition, tx.key(), tx.value()));
        produce_to_partitions(&bootstrap, "tx", closing).unwrap();
    })
}

struct Setup {
    broker: Broker,
    dir: PathBuf,
    file: PathBuf,
    n: u64,
}

fn setup(n: u64, over: Duration, input: Input) -> (Setup, std::thread::JoinHandle<()>) {
    for module in ["json_transactions", "fraud_flagged", "filter"] {
        udf_module(module);
    }
    let broker = tansu();
    broker.create_topic("tx", workload::PARTITIONS);
    broker.create_topic("alerts", 1);
    let dir = scratch_dir();
    let file = stateful_group_pipeline(&dir, input);
    let producing = produce_workload_slowly(broker.bootstrap.clone(), n, over, input);
    let setup = Setup {
        broker,
        dir,
        file,
        n,
    };
    (setup, producing)
}

impl Setup {
    fn start(&self, name: &str, env: &[(&str, &str)]) -> Child {
        start_instance(&self.file, &self.broker.bootstrap, &self.dir, (name, env))
    }

    /// Starts `a` and `b`, SIGKILLs `a` 10 s in, and starts `c` 8 s later (past the session timeout, when
    /// `b` holds every partition); returns `b` and `c`.
    fn lose_one_gain_one(&self) -> (Child, Child) {
        let mut a = self.start("a", &[]);
        let b = self.start("b", &[]);
        std::thread::sleep(Duration::from_secs(10));
        a.kill().unwrap();
        a.wait().unwrap();
        std::thread::sleep(Duration::from_secs(8));
        (b, self.start("c", &[]))
    }

    /// Writes every record of the repartition and changelog topics, committed or not, with its producer
    /// and offset, into the scratch folder, so that a failure can be followed write by write.
    fn dump_internal_topics(&self) -> PathBuf {
        let path = self.dir.join("internal-topics.txt");
        let mut text = String::new();
        for topic in [
            "weir-fraud-window-group-repartition",
            "weir-fraud-window-group-aggregate-changelog",
        ] {
            for partition in 0..workload::PARTITIONS {
                let bootstrap = &self.broker.bootstrap;
                let Ok(log) = kafka_log::read_log(bootstrap, topic, partition) else {
                    continue;
                };
                let committed = log.committed.iter().map(|r| ("committed", r));
                let others = (log.not_committed.iter()).map(|(fate, r)| (fate.name(), r));
                let mut records: Vec<_> = committed.chain(others).collect();
                records.sort_by_key(|(_, r)| r.offset);
                for (fate, r) in records {
                    let (pid, epoch) = r.producer;
                    let key = String::from_utf8_lossy(r.key.as_deref().unwrap_or_default());
                    let value = describe_value(r.value.as_deref().unwrap_or_default());
                    text += &format!(
                        "{topic}-{partition} @{} {fate} p{pid}e{epoch} key={key} {value}\n",
                        r.offset
                    );
                }
            }
        }
        std::fs::write(&path, text).unwrap();
        path
    }

    fn log(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.join(format!("{name}.log"))).unwrap_or_default()
    }

    /// Waits for the expected alerts, stops the instances, and checks the committed alerts are exactly
    /// the offline computation's.
    fn stop_and_check(&self, instances: Vec<Child>, names: &[&str]) {
        let bootstrap = &self.broker.bootstrap;
        let mut expected: Vec<String> = fraud_window_alerts(self.n)
            .iter()
            .map(|a| a.json())
            .collect();
        expected.sort();
        wait_for_committed(
            bootstrap,
            "alerts",
            expected.len(),
            Duration::from_secs(180),
        );
        // Anything written twice would show after the expected count: give the instances time to write it.
        std::thread::sleep(Duration::from_secs(3));
        for mut instance in instances {
            let _ = instance.kill();
            instance.wait().unwrap();
        }
        let mut alerts = committed(bootstrap, "alerts");
        alerts.sort();
        let logs: Vec<String> = names.iter().map(|name| self.log(name)).collect();
        let missing = expected
            .iter()
            .filter(|a| alerts.binary_search(a).is_err())
            .count();
        let mut distinct = alerts.clone();
        distinct.dedup();
        if (alerts.len(), missing) != (expected.len(), 0) || alerts.len() != distinct.len() {
            eprintln!(
                "the internal topics' logs: {}",
                self.dump_internal_topics().display()
            );
        }
        assert_eq!(
            (alerts.len(), missing, alerts.len() - distinct.len()),
            (expected.len(), 0, 0),
            "(committed alerts, missing, duplicated); the instances' logs:\n{}",
            logs.join("\n----\n")
        );
        assert!(
            alerts == expected,
            "the alerts differ from the offline computation"
        );
    }
}

/// A repartition record's description (its rows' size only), or a changelog value's first characters.
fn describe_value(value: &[u8]) -> String {
    if value.starts_with(b"WRP1") && value.len() >= 8 {
        let length = u32::from_be_bytes(value[4..8].try_into().unwrap()) as usize;
        let end = (8 + length).min(value.len());
        let description = String::from_utf8_lossy(&value[8..end]);
        return format!("{description} rows={}B", value.len() - end);
    }
    String::from_utf8_lossy(&value[..value.len().min(300)]).into_owned()
}

#[test]
fn three_stateful_instances_lose_one_and_gain_one_and_every_alert_is_written_once() {
    let n = 1_000_000;
    let (setup, producing) = setup(n, Duration::from_secs(40), Input::ByUser);
    let mut a = setup.start("a", &[]);
    let b = setup.start("b", &[]);
    let c = setup.start("c", &[]);
    std::thread::sleep(Duration::from_secs(14));
    a.kill().unwrap();
    a.wait().unwrap();
    // Past the session timeout b and c hold every partition, a's rebuilt from the changelog; then d joins.
    std::thread::sleep(Duration::from_secs(10));
    let d = setup.start("d", &[]);
    producing.join().unwrap();
    setup.stop_and_check(vec![b, c, d], &["a", "b", "c", "d"]);
    // a's partitions were rebuilt from a changelog with state in it.
    let replayed = |line: &str| {
        line.contains("task restored from weir-fraud-window-group-aggregate-changelog")
            && !line.contains(" records=0 ")
    };
    assert!(
        ["b", "c", "d"]
            .iter()
            .any(|name| setup.log(name).lines().any(replayed)),
        "no restore replayed records: {}",
        setup.log("b")
    );
    // The progress says what was restored.
    let restores: Vec<serde_json::Value> = ["b", "c", "d"]
        .iter()
        .flat_map(|name| {
            let text = std::fs::read_to_string(setup.dir.join(format!("{name}.json"))).unwrap();
            text.lines()
                .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
                .map(|p| p["sources"][0]["consumerGroup"]["restores"].clone())
                .collect::<Vec<_>>()
        })
        .collect();
    assert!(
        restores.iter().any(|r| r["records"].as_u64() > Some(0)),
        "{restores:?}"
    );
    // `weir checkpoint inspect` on the pipeline file reads the group's progress from Kafka: every record
    // committed, and a changelog to restore each partition from.
    let report = successful_stdout(
        weir_command()
            .args(["checkpoint", "inspect"])
            .arg(&setup.file)
            .env("KAFKA_BOOTSTRAP_SERVERS", &setup.broker.bootstrap),
        "weir checkpoint inspect",
    );
    assert!(
        report.contains("lag         0 records past the committed offsets"),
        "{report}"
    );
    let committed = report.lines().filter(|l| l.starts_with("  tx-"));
    assert_eq!(committed.count(), 4, "{report}");
    let changelog: Vec<u64> = (report.lines())
        .skip_while(|l| !l.starts_with("changelog   weir-fraud-window-group-aggregate-changelog"))
        .skip(1)
        .filter_map(|l| l.split(": ").nth(1)?.split(' ').next()?.parse().ok())
        .collect();
    assert!(
        changelog.len() == 4 && changelog.iter().all(|&records| records > 0),
        "{report}"
    );
}

#[test]
fn a_paused_stateful_instance_cannot_commit_its_windows_after_losing_them() {
    paused_instance_is_fenced(Input::ByUser);
}

/// The same through the repartition topic: a stops with an upstream write or a task's batch in an open
/// transaction; the rows it wrote before the pause are in the log, and the reader must not count them.
#[test]
fn a_paused_repartitioning_instance_cannot_commit_its_upstream_rows_after_losing_them() {
    paused_instance_is_fenced(Input::RoundRobin);
}

fn paused_instance_is_fenced(input: Input) {
    let n = 300_000;
    let (setup, producing) = setup(n, Duration::from_secs(24), input);
    // a stops itself with a batch's alerts and state changes produced and its transactions open.
    let mut a = setup.start("a", &[("WEIR_CRASH_AT", "produced:8:stop")]);
    let b = setup.start("b", &[]);
    // Past the session timeout b takes every partition, fencing a's producers; then a goes on.
    resume_after_session_timeout(&mut a, || setup.log("a"));
    producing.join().unwrap();
    wait_until_fenced(|| setup.log("a"));
    setup.stop_and_check(vec![a, b], &["a", "b"]);
    let a_log = setup.log("a");
    assert!(
        a_log.contains("WEIR_CRASH_AT: stopping")
            && a_log.contains("whose producer fenced this one's"),
        "a's open transactions were fenced: {a_log}"
    );
}

/// Input written round-robin, not by user: the rows go through the repartition topic to the task of their
/// user's hash. One of two instances is killed mid-run and a third joins; the alerts are still exact (with
/// the input declared partitioned by user instead, each partition would count a share of each user).
#[test]
fn round_robin_input_is_repartitioned_by_user_and_every_alert_is_written_once() {
    let n = 300_000;
    let (setup, producing) = setup(n, Duration::from_secs(20), Input::RoundRobin);
    let (b, c) = setup.lose_one_gain_one();
    producing.join().unwrap();
    setup.stop_and_check(vec![b, c], &["a", "b", "c"]);
    let shuffled = |name: &str| {
        setup
            .log(name)
            .contains("weir-fraud-window-group-repartition")
    };
    assert!(["b", "c"].iter().any(|n| shuffled(n)), "{}", setup.log("b"));
}

/// At least once: a task's changes are acknowledged before its offset is committed, and a restore takes
/// the state as of the committed offset, so the state never counts a record twice. Only the output of a
/// killed instance's last batches can be written again: every alert is there, none is wrong, and few are
/// repeated.
#[test]
fn at_least_once_stateful_members_lose_no_alert_and_make_none_wrong_when_one_is_killed() {
    let n = 300_000;
    let (setup, producing) = setup(n, Duration::from_secs(20), Input::ByUser);
    let mut text = std::fs::read_to_string(&setup.file).unwrap();
    text.push_str("delivery = \"at-least-once\"\n");
    std::fs::write(&setup.file, text).unwrap();
    let (b, c) = setup.lose_one_gain_one();
    producing.join().unwrap();
    let bootstrap = &setup.broker.bootstrap;
    let expected: std::collections::BTreeSet<String> =
        fraud_window_alerts(n).iter().map(|a| a.json()).collect();
    let started = std::time::Instant::now();
    let written = || -> std::collections::BTreeSet<String> {
        committed(bootstrap, "alerts").into_iter().collect()
    };
    while !expected.is_subset(&written()) && started.elapsed() < Duration::from_secs(180) {
        std::thread::sleep(Duration::from_millis(500));
    }
    std::thread::sleep(Duration::from_secs(3));
    for mut instance in [b, c] {
        let _ = instance.kill();
        instance.wait().unwrap();
    }
    let alerts = committed(bootstrap, "alerts");
    let distinct: std::collections::BTreeSet<String> = alerts.iter().cloned().collect();
    let missing = expected.difference(&distinct).count();
    let wrong = distinct.difference(&expected).count();
    let repeated = alerts.len() - distinct.len();
    let logs: Vec<String> = ["a", "b", "c"].iter().map(|name| setup.log(name)).collect();
    assert_eq!(
        (missing, wrong),
        (0, 0),
        "(missing, wrong) alerts of {}; the instances' logs:\n{}",
        expected.len(),
        logs.join("\n----\n")
    );
    // Only the batches a wrote after its last commit are written again.
    eprintln!("{repeated} of {} alerts repeated", expected.len());
    assert!(
        repeated < expected.len() / 4,
        "{repeated} of {} alerts repeated",
        expected.len()
    );
    assert!(
        ["b", "c"].iter().any(|name| setup
            .log(name)
            .contains("task restored from weir-fraud-window-group-aggregate-changelog")),
        "{}",
        setup.log("b")
    );
}

/// Each instance keeps a local copy of its tasks' state (`stateStoreLocation`). An instance killed and
/// started again on the same folder restores the partitions it gets back from its copy and the changelog
/// records written after it (by the instance that held them meanwhile), not from the changelog's start.
#[test]
fn an_instance_restarted_on_its_local_state_copy_reads_only_the_changelog_after_it() {
    let n = 300_000;
    let (setup, producing) = setup(n, Duration::from_secs(24), Input::ByUser);
    let text = std::fs::read_to_string(&setup.file).unwrap().replacen(
        "name = \"fraud-window-group\"",
        "name = \"fraud-window-group\"\nstateStoreLocation = \"${WEIR_STATE_DIR}\"",
        1,
    );
    std::fs::write(&setup.file, text).unwrap();
    let folder = |name: &str| setup.dir.join(format!("state-{name}"));
    let (a_state, b_state) = (folder("a"), folder("b"));
    let a_env = [("WEIR_STATE_DIR", a_state.to_str().unwrap())];
    let b_env = [("WEIR_STATE_DIR", b_state.to_str().unwrap())];
    let mut a = setup.start("a", &a_env);
    let b = setup.start("b", &b_env);
    std::thread::sleep(Duration::from_secs(10));
    a.kill().unwrap();
    a.wait().unwrap();
    // b holds every partition past the session timeout; then a comes back on its folder.
    std::thread::sleep(Duration::from_secs(10));
    let again = setup.start("a-again", &a_env);
    producing.join().unwrap();
    setup.stop_and_check(vec![b, again], &["a", "b", "a-again"]);
    let log = setup.log("a-again");
    assert!(
        log.lines()
            .any(|l| l.contains("task restored from") && l.contains("local_copy=Some(")),
        "a's partitions were not restored from its local copy: {log}"
    );
    assert!(
        !log.contains("does not lead to the committed offset"),
        "{log}"
    );
}
