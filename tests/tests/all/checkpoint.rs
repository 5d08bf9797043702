//! Checkpoints and exactly-once delivery: the fraud-window pipeline killed at chosen and random moments and
//! restarted, its committed output compared with the offline result; at-least-once shows duplicates but no
//! loss; a changed plan, a deleted or damaged checkpoint are refused; `weir checkpoint inspect`.
//!
//! Committed output is read from the raw log (`weir_tests::kafka_log`): tansu hands aborted records to
//! `read_committed` consumers, so the test applies the transaction markers itself.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use weir::internal::workload::fraud_window_alerts;
use weir_tests::kafka_log::read_log;
use weir_tests::*;

use super::window::produce_workload;

/// `examples/fraud-window/pipeline.toml` with a checkpoint, `per_trigger`-record batches (small ones give
/// many commit points) and the given delivery guarantee, written to `dir`.
fn pipeline_file(dir: &Path, delivery: &str, per_trigger: u64) -> PathBuf {
    checkpointed_fraud_window(
        dir,
        &format!("crash-{delivery}"),
        &[
            (
                "endingOffsets = \"latest\"",
                format!("endingOffsets = \"latest\"\nmaxOffsetsPerTrigger = {per_trigger}"),
            ),
            (
                "\n[sink]\n",
                format!("\n[sink]\ndelivery = \"{delivery}\"\n"),
            ),
        ],
    )
}

/// `examples/fraud-window/pipeline.toml` named `name`, with its checkpoint in `dir/checkpoint` and `edits`
/// applied, written to `dir/pipeline.toml`; its modules are checked to be built.
pub(super) fn checkpointed_fraud_window(
    dir: &Path,
    name: &str,
    edits: &[(&str, String)],
) -> PathBuf {
    let mut edits = edits.to_vec();
    edits.push((
        "name = \"fraud-window\"",
        format!(
            "name = \"{name}\"\ncheckpointLocation = \"{}\"",
            dir.join("checkpoint").display()
        ),
    ));
    let text = example_variant("fraud-window/pipeline.toml", &edits);
    for module in ["json_transactions", "fraud_flagged", "filter"] {
        udf_module(module);
    }
    let path = dir.join("pipeline.toml");
    std::fs::write(&path, text).unwrap();
    path
}

fn weir_run(file: &Path, bootstrap: &str) -> Command {
    let mut command = weir_command();
    command
        .args(["run", "--progress", "json"])
        .arg(file)
        .env("KAFKA_BOOTSTRAP_SERVERS", bootstrap)
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    command
}

/// Runs the pipeline with `WEIR_CRASH_AT=<at>`; it must die there.
fn crash_at(file: &Path, bootstrap: &str, at: &str) {
    let output = weir_run(file, bootstrap)
        .env("WEIR_CRASH_AT", at)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !output.status.success() && stderr.contains("WEIR_CRASH_AT: aborting"),
        "expected a crash at {at}: {stderr}"
    );
}

/// Starts the pipeline and SIGKILLs it after `after`; returns false if it finished first.
fn kill_after(file: &Path, bootstrap: &str, after: Duration) -> bool {
    let mut child = weir_run(file, bootstrap).spawn().unwrap();
    let started = Instant::now();
    while started.elapsed() < after {
        if child.try_wait().unwrap().is_some() {
            return false;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    true
}

/// Runs the pipeline to its end; it must succeed.
pub(super) fn finish(file: &Path, bootstrap: &str) {
    let output = weir_run(file, bootstrap).output().unwrap();
    assert!(
        output.status.success(),
        "the final run failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A small deterministic random sequence (the workload's LCG), so a failing run can be repeated.
fn pauses(seed: u64, count: usize, max_ms: u64) -> Vec<Duration> {
    let mut x = seed;
    (0..count)
        .map(|_| {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            Duration::from_millis(150 + (x >> 33) % max_ms)
        })
        .collect()
}

/// A crash at each step of an exactly-once batch's commit (`WEIR_CRASH_AT`), in its first batches.
pub(super) const EXACTLY_ONCE_CRASH_POINTS: &[&str] =
    &["planned:1", "produced:2", "staged:3", "committed:4"];

/// Runs the pipeline `file` to a crash at each of `points`, then kills it at up to `kills` random moments
/// (from `seed`) while it runs, restarting each time, then lets it finish. Returns the kills that landed.
pub(super) fn crash_kill_and_finish(
    file: &Path,
    bootstrap: &str,
    points: &[&str],
    (kills, seed): (usize, u64),
) -> usize {
    for at in points {
        crash_at(file, bootstrap, at);
    }
    let mut killed = 0;
    for pause in pauses(seed, kills * 4, 600) {
        if killed == kills {
            break;
        }
        killed += usize::from(kill_after(file, bootstrap, pause));
    }
    finish(file, bootstrap);
    killed
}

/// Kills the pipeline at every crash point and at `kills` random moments while it runs, restarting each
/// time, then lets it finish. Returns the committed alerts (values, with repeats), the expected ones, and a
/// summary of the log's transactions.
fn crash_and_recover(delivery: &str, n: u64, kills: usize) -> (Vec<String>, Vec<String>, String) {
    let broker = tansu();
    produce_workload(&broker, n);
    broker.create_topic("alerts", 1);
    let dir = scratch_dir();
    // Small batches: many commit points, and a run long enough to be killed many times.
    let file = pipeline_file(&dir, delivery, n / 400);
    let points: &[&str] = if delivery == "exactly-once" {
        EXACTLY_ONCE_CRASH_POINTS
    } else {
        &["planned:1", "produced:2", "committed:3"]
    };
    let killed = crash_kill_and_finish(&file, &broker.bootstrap, points, (kills, n ^ kills as u64));

    let log = read_log(&broker.bootstrap, "alerts", 0).unwrap();
    let mut got = log.committed_values();
    got.sort();
    let mut expected: Vec<String> = fraud_window_alerts(n).iter().map(|a| a.json()).collect();
    expected.sort();
    let summary = format!(
        "{killed} kills landed while running; {} committed records, {} aborted, {} in open transactions; {} commit and {} abort markers",
        log.committed.len(),
        log.aborted(),
        log.open(),
        log.commits,
        log.aborts
    );
    (got, expected, summary)
}

#[test]
fn exactly_once_survives_kills_at_every_commit_step_and_at_random() {
    let n: u64 = env_or("WEIR_CRASH_N", 200_000);
    let kills: usize = env_or("WEIR_CRASH_KILLS", 20);
    let (got, expected, summary) = crash_and_recover("exactly-once", n, kills);
    println!("exactly-once, {n} records, 4 crash points + up to {kills} kills: {summary}");
    assert!(summary.starts_with(&format!("{kills} kills")), "{summary}");
    assert!(!expected.is_empty());
    assert_eq!(got.len(), expected.len(), "{summary}");
    assert!(
        got == expected,
        "committed alerts differ from the offline result; {summary}"
    );
}

#[test]
fn at_least_once_repeats_output_after_a_crash_but_loses_nothing() {
    let (got, expected, summary) = crash_and_recover("at-least-once", 100_000, 5);
    println!("at-least-once, 100000 records, 3 crash points + 5 kills: {summary}");
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for alert in &got {
        *counts.entry(alert.as_str()).or_default() += 1;
    }
    let missing: Vec<&String> = expected
        .iter()
        .filter(|a| !counts.contains_key(a.as_str()))
        .collect();
    assert!(
        missing.is_empty(),
        "{} alerts lost, e.g. {:?}",
        missing.len(),
        missing.first()
    );
    assert!(
        counts.keys().all(|a| expected.iter().any(|e| e == a)),
        "an alert that should not exist"
    );
    let repeated = counts.values().filter(|c| **c > 1).count();
    assert!(
        repeated > 0,
        "the crash after producing should have repeated output; {summary}"
    );
}

#[test]
fn inspect_a_plan_change_and_a_lost_or_damaged_checkpoint() {
    let broker = tansu();
    produce_workload(&broker, 20_000);
    broker.create_topic("alerts", 1);
    let dir = scratch_dir();
    let file = pipeline_file(&dir, "exactly-once", 8000);
    // Batches of at most 8,000 records; a batch also ends when the read-ahead finds nothing more at once,
    // so the run's own progress lines say how many it committed.
    let run = weir_run(&file, &broker.bootstrap)
        .stdout(Stdio::piped())
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let batches = String::from_utf8_lossy(&run.stdout).lines().count();
    assert!(batches >= 3, "{batches} batches for 20,004 records");
    let committed = format!("batches     {batches} committed");

    let report = successful_stdout(
        weir_command()
            .args(["checkpoint", "inspect"])
            .arg(dir.join("checkpoint")),
        "weir checkpoint inspect",
    );
    for expected in [
        "query id",
        committed.as_str(),
        "tx-0  ",
        "watermark   ",
        "aggregate  ",
    ] {
        assert!(report.contains(expected), "{expected:?} in\n{report}");
    }

    // Another window size would corrupt the state: refused, naming the change. A new output topic is fine.
    let text = std::fs::read_to_string(&file).unwrap();
    let changed = dir.join("changed.toml");
    std::fs::write(&changed, text.replace("size = \"10s\"", "size = \"20s\"")).unwrap();
    let output = weir_run(&changed, &broker.bootstrap).output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        stderr.contains("would corrupt its state: window: "),
        "{stderr}"
    );
    assert!(
        stderr.contains(
            "window: 10000 ms windows sliding 10000 ms, offset 0 ms, on ts → 20000 ms windows"
        ),
        "{stderr}"
    );
    // `weir validate` says the same before any run, without a broker.
    let validated = weir_command()
        .arg("validate")
        .arg(&changed)
        .env("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:1")
        .output()
        .unwrap();
    let refused = String::from_utf8_lossy(&validated.stderr);
    assert!(!validated.status.success());
    assert!(
        refused.contains("would corrupt its state: window: "),
        "{refused}"
    );
    broker.create_topic("alerts-2", 1);
    std::fs::write(
        &changed,
        text.replace("topic = \"alerts\"", "topic = \"alerts-2\""),
    )
    .unwrap();
    finish(&changed, &broker.bootstrap);

    // A damaged checkpoint is an error, never a fresh start. Its database is in the generation CURRENT
    // names.
    let generation = std::fs::read_to_string(dir.join("checkpoint/CURRENT")).unwrap();
    let db = dir.join("checkpoint").join(generation.trim()).join("db");
    let saved = std::fs::read(&db).unwrap();
    std::fs::write(&db, b"not a sled file").unwrap();
    let output = weir_run(&file, &broker.bootstrap).output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(stderr.contains("cannot be used"), "{stderr}");
    std::fs::write(&db, saved).unwrap();

    // A deleted checkpoint is noticed through the consumer group's committed offsets.
    std::fs::remove_dir_all(dir.join("checkpoint")).unwrap();
    let output = weir_run(&file, &broker.bootstrap).output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        stderr.contains("the checkpoint was deleted or moved"),
        "{stderr}"
    );
}

/// A checkpointed pipeline `name` copying JSON records `{"n": ...}` from `in` to `out`, with extra
/// `[source]` and `[sink]` keys.
fn numbers_pipeline(dir: &Path, name: &str, source: &str, sink: &str) -> String {
    format!(
        r#"
name = "{name}"
checkpointLocation = "{}"
[source]
kafka.bootstrap.servers = "${{BROKER}}"
subscribe = "in"
startingOffsets = "earliest"
endingOffsets = "latest"
{source}
[deserializer]
format = "json"
schema = "n BIGINT"
[sink]
kafka.bootstrap.servers = "${{BROKER}}"
topic = "out"
format = "json"
{sink}
"#,
        dir.join("checkpoint").display()
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn a_broker_outage_loses_nothing() {
    let broker = mock_cluster();
    broker.create_topic("in", 1);
    broker.create_topic("out", 1);
    let n = 20_000;
    let sent: Vec<String> = (0..n).map(|i| format!("{{\"n\":{i}}}")).collect();
    produce_to(&broker.bootstrap, "in", 0, &sent, &[]);
    let dir = scratch_dir();
    let text = numbers_pipeline(&dir, "outage", "maxOffsetsPerTrigger = 500", "");
    let spec = pipeline_spec(&dir, &broker.bootstrap, &text).unwrap();
    let running = tokio::spawn(run_pipeline(spec));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!running.is_finished(), "the outage should start mid-run");
    broker.mock().unwrap().broker_down(1).unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    broker.mock().unwrap().broker_up(1).unwrap();
    let summary = running.await.unwrap().unwrap();
    assert_eq!(summary.input_rows, n);

    let out = values(&read_topic(&broker.bootstrap, "out").unwrap());
    let seen: std::collections::BTreeSet<&str> = out.iter().map(String::as_str).collect();
    let missing = sent.iter().filter(|v| !seen.contains(v.as_str())).count();
    assert_eq!(missing, 0, "{missing} records lost over the outage");
}

#[tokio::test(flavor = "multi_thread")]
async fn checkpointed_offsets_gone_from_the_broker_fail_or_skip_per_fail_on_data_loss() {
    // The mock cluster keeps the newest 5 MiB of a partition, so producing 6 MB after a run drops records
    // the checkpoint has not read yet.
    let broker = mock_cluster();
    broker.create_topic("in", 1);
    broker.create_topic("out", 1);
    let batch = |from: u64, to: u64| -> Vec<String> {
        (from..to).map(|i| format!("{{\"n\":{i}}}")).collect()
    };
    produce_to(&broker.bootstrap, "in", 0, &batch(0, 1_000), &[]);
    let dir = scratch_dir();
    let text = |fail_on_data_loss: bool| {
        numbers_pipeline(
            &dir,
            "retention",
            &format!("failOnDataLoss = {fail_on_data_loss}"),
            "delivery = \"at-least-once\"",
        )
    };
    let run =
        |fail: bool| run_pipeline(pipeline_spec(&dir, &broker.bootstrap, &text(fail)).unwrap());
    assert_eq!(run(true).await.unwrap().input_rows, 1_000);
    let pad = "x".repeat(1000);
    let more: Vec<String> = (1_000..7_000)
        .map(|i| format!("{{\"n\":{i},\"pad\":\"{pad}\"}}"))
        .collect();
    produce_to(&broker.bootstrap, "in", 0, &more, &[]);

    let error = format!("{:#}", run(true).await.unwrap_err());
    assert!(
        error.contains("offsets 1000..")
            && error.contains("are no longer available")
            && error.contains("failOnDataLoss = false"),
        "{error}"
    );
    // With failOnDataLoss = false the run goes on from the earliest offset still there.
    let summary = run(false).await.unwrap();
    assert!(
        summary.input_rows > 0 && summary.input_rows < 6_000,
        "{summary:?}"
    );
}
