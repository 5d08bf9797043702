//! The file and console sinks end to end. The workload's transactions archived as Parquet, partitioned by
//! `flag`, exactly once across a crash at each commit step and random kills: the rows of the files the
//! committed-files log lists are the produced records, each once, and no other part file is left. A second
//! pipeline writing into the same directory is refused. The console prints Spark's table.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use arrow_array::cast::AsArray;
use arrow_array::types::Int64Type;
use arrow_array::Array;
use weir::internal::demo::produce_to_partitions;
use weir::internal::workload::{transactions, PARTITIONS};
use weir_tests::sink_files::{committed_json_lines, committed_parquet, partition_value};
use weir_tests::*;

use super::checkpoint::{crash_kill_and_finish, EXACTLY_ONCE_CRASH_POINTS};

/// An archive of the `tx` topic into `dir/archive` as Parquet, with its checkpoint in `dir`.
fn archive_pipeline(dir: &Path, name: &str, per_trigger: u64) -> PathBuf {
    files_pipeline(
        dir,
        name,
        per_trigger,
        "format = \"parquet\"\npath = \"archive\"",
    )
}

/// A pipeline named `name` from the `tx` topic to the file sink `sink` (its keys but `partitionBy`).
fn files_pipeline(dir: &Path, name: &str, per_trigger: u64, sink: &str) -> PathBuf {
    let text = format!(
        r#"name = "{name}"
checkpointLocation = "{checkpoint}"

[source]
kafka.bootstrap.servers = "${{KAFKA_BOOTSTRAP_SERVERS}}"
subscribe = "tx"
startingOffsets = "earliest"
endingOffsets = "latest"
maxOffsetsPerTrigger = {per_trigger}

[deserializer]
format = "json"
schema = "name STRING, surname STRING, amount STRING, delta_t STRING, flag INT, ts BIGINT"

[sink]
{sink}
partitionBy = ["flag"]
"#,
        checkpoint = dir.join(format!("checkpoint-{name}")).display()
    );
    let file = dir.join(format!("{name}.toml"));
    std::fs::write(&file, text).unwrap();
    file
}

/// The rows of the committed files under `archive`, as `name|surname|amount|delta_t|flag|ts` lines, flag
/// taken from the directory name; sorted.
pub(super) fn archived_rows(archive: &Path) -> Vec<String> {
    let mut rows = Vec::new();
    for (relative, batch) in committed_parquet(archive) {
        let flag = partition_value(&relative, "flag");
        let text = |name: &str| {
            batch
                .column_by_name(name)
                .unwrap()
                .as_string::<i32>()
                .clone()
        };
        let (names, surnames, amounts, deltas) = (
            text("name"),
            text("surname"),
            text("amount"),
            text("delta_t"),
        );
        let ts = batch
            .column_by_name("ts")
            .unwrap()
            .as_primitive::<Int64Type>();
        assert!(
            batch.column_by_name("flag").is_none(),
            "flag is in the path"
        );
        for i in 0..batch.num_rows() {
            assert!(!ts.is_null(i));
            let (name, surname, amount) = (names.value(i), surnames.value(i), amounts.value(i));
            let (delta, ts) = (deltas.value(i), ts.value(i));
            rows.push(format!("{name}|{surname}|{amount}|{delta}|{flag}|{ts}"));
        }
    }
    rows.sort();
    rows
}

/// Every part file under `dir`, relative, whether the log lists it or not.
pub(super) fn part_files_on_disk(dir: &Path) -> BTreeSet<PathBuf> {
    let mut found = BTreeSet::new();
    let mut folders = vec![dir.to_path_buf()];
    while let Some(folder) = folders.pop() {
        for entry in std::fs::read_dir(&folder).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                folders.push(path);
            } else if path
                .file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("part-")
            {
                found.insert(path.strip_prefix(dir).unwrap().to_path_buf());
            }
        }
    }
    found
}

/// A broker with the first `n` transactions in the 4 partitions of `tx`.
fn broker_with_transactions(n: u64) -> Broker {
    let broker = tansu();
    broker.create_topic("tx", PARTITIONS);
    let records =
        transactions(n).map(|tx| ((tx.ts % i64::from(PARTITIONS)) as i32, tx.key(), tx.value()));
    produce_to_partitions(&broker.bootstrap, "tx", records).unwrap();
    broker
}

#[test]
fn parquet_files_are_exactly_once_across_crashes_and_kills() {
    let n = 60_000;
    let broker = broker_with_transactions(n);
    let dir = scratch_dir();
    let file = archive_pipeline(&dir, "archive", n / 100);

    let killed = crash_kill_and_finish(&file, &broker.bootstrap, EXACTLY_ONCE_CRASH_POINTS, (4, n));
    assert_eq!(killed, 4, "the kills should land while the pipeline runs");

    let archive = dir.join("archive");
    let expected = expected_rows(n);
    let got = archived_rows(&archive);
    assert_eq!(got.len(), expected.len(), "rows lost or written twice");
    assert!(
        got == expected,
        "the archived rows differ from the produced records"
    );
    let listed: BTreeSet<PathBuf> = weir::committed_files(&archive)
        .unwrap()
        .iter()
        .map(|p| p.strip_prefix(&archive).unwrap().to_path_buf())
        .collect();
    assert_eq!(
        part_files_on_disk(&archive),
        listed,
        "only committed files are left"
    );
    let printed = successful_stdout(weir_command().arg("files").arg(&archive), "weir files");
    let printed: BTreeSet<PathBuf> = printed
        .lines()
        .map(|line| {
            Path::new(line)
                .strip_prefix(&archive)
                .unwrap()
                .to_path_buf()
        })
        .collect();
    assert_eq!(printed, listed, "weir files prints the committed files");

    // Another pipeline (another checkpoint) writing into the same directory is refused, by name.
    let other = archive_pipeline(&dir, "intruder", n / 100);
    let output = weir_command()
        .args(["run", "--progress", "json"])
        .arg(&other)
        .env("KAFKA_BOOTSTRAP_SERVERS", &broker.bootstrap)
        .stdout(Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(stderr.contains("holds another run's output"), "{stderr}");
    assert_eq!(
        archived_rows(&archive).len(),
        expected.len(),
        "nothing touched"
    );
}

/// The expected rows: every transaction once, as [`archived_rows`] writes them.
pub(super) fn expected_rows(n: u64) -> Vec<String> {
    let mut expected: Vec<String> = transactions(n)
        .map(|tx| {
            let amount = &tx.amount;
            let delta = &tx.delta_t;
            format!(
                "{}|{}|{amount}|{delta}|{}|{}",
                tx.name, tx.surname, tx.flag, tx.ts
            )
        })
        .collect();
    expected.sort();
    expected
}

/// The rows of the committed JSON-lines files under `dir`, as [`archived_rows`] writes them.
pub(super) fn json_rows(dir: &Path) -> Vec<String> {
    let mut rows: Vec<String> = committed_json_lines(dir)
        .into_iter()
        .map(|(relative, row)| {
            let flag = partition_value(&relative, "flag");
            let text = |key: &str| row[key].as_str().unwrap().to_string();
            let (name, surname, amount) = (text("name"), text("surname"), text("amount"));
            let (delta, ts) = (text("delta_t"), &row["ts"]);
            format!("{name}|{surname}|{amount}|{delta}|{flag}|{ts}")
        })
        .collect();
    rows.sort();
    rows
}

/// Spark's one query per sink: two pipeline files run by one `weir run`, each reading the topic once
/// into its own sink with its own checkpoint.
#[test]
fn one_run_of_two_pipelines_writes_both_sinks() {
    let n = 20_000;
    let broker = broker_with_transactions(n);
    let dir = scratch_dir();
    let parquet = archive_pipeline(&dir, "archive", n / 10);
    let json = files_pipeline(&dir, "lines", n / 10, "format = \"json\"\npath = \"lines\"");
    let stderr = {
        let output = weir_command()
            .args(["run", "--progress", "json"])
            .args([&parquet, &json])
            .env("KAFKA_BOOTSTRAP_SERVERS", &broker.bootstrap)
            .stdout(Stdio::null())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        assert!(output.status.success(), "{stderr}");
        stderr
    };
    assert_eq!(stderr.matches("records in").count(), 2, "{stderr}");
    let expected = expected_rows(n);
    assert!(
        archived_rows(&dir.join("archive")) == expected,
        "the Parquet archive differs"
    );
    assert!(
        json_rows(&dir.join("lines")) == expected,
        "the JSON lines differ"
    );
}

#[test]
fn the_console_prints_each_batch_as_a_table() {
    let broker = tansu();
    broker.create_topic("people", 1);
    let people = [
        r#"{"name":"ada","city":"London"}"#,
        r#"{"name":"grace","city":"Arlington, Virginia, USA"}"#,
        r#"{"name":"edsger"}"#,
        r#"{"name":"barbara","city":"Boston"}"#,
    ];
    let values: Vec<String> = people.iter().map(|p| p.to_string()).collect();
    produce_to(&broker.bootstrap, "people", 0, &values, &[]);
    let dir = scratch_dir();
    let file = dir.join("console.toml");
    std::fs::write(
        &file,
        r#"name = "console"
[source]
kafka.bootstrap.servers = "${KAFKA_BOOTSTRAP_SERVERS}"
subscribe = "people"
startingOffsets = "earliest"
[deserializer]
format = "json"
schema = "name STRING, city STRING"
[trigger]
once = true
[sink]
format = "console"
numRows = 3
"#,
    )
    .unwrap();
    let stdout = successful_stdout(
        // No --progress: JSON progress lines, the default off a terminal, would split the tables.
        weir_command()
            .arg("run")
            .arg(&file)
            .env("KAFKA_BOOTSTRAP_SERVERS", &broker.bootstrap),
        "the console pipeline",
    );
    let expected = "\
-------------------------------------------
Batch: 0
-------------------------------------------
+--------+----------------------+
| name   | city                 |
+--------+----------------------+
| ada    | London               |
| grace  | Arlington, Virgin... |
| edsger | NULL                 |
+--------+----------------------+
only showing top 3 rows

";
    assert_eq!(stdout, expected);
}
