//! The file source end to end. The workload's transactions as JSON-lines files are archived as Parquet,
//! exactly once across a crash at each commit step and random kills; that archive, read back as a Parquet
//! source through its committed-files log, is copied whole. A running pipeline picks up CSV files as they
//! arrive, and a bad line stops it naming the file and line, with nothing of that file committed.

use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant, SystemTime};

use weir::internal::workload::transactions;
use weir_tests::sink_files::committed_json_lines;
use weir_tests::*;

use super::checkpoint::{crash_kill_and_finish, EXACTLY_ONCE_CRASH_POINTS};
use super::files::{archived_rows, expected_rows, part_files_on_disk};

const TRANSACTION_SCHEMA: &str =
    "name STRING, surname STRING, amount STRING, delta_t STRING, flag INT, ts BIGINT";

/// Writes `text` to `dir/name`, modified `age_secs` ago (the source reads the oldest first).
fn write_file(dir: &Path, name: &str, text: &str, age_secs: u64) {
    std::fs::create_dir_all(dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    let file = std::fs::File::options().append(true).open(&path).unwrap();
    file.set_modified(SystemTime::now() - Duration::from_secs(age_secs))
        .unwrap();
}

/// The first `n` transactions as JSON lines, `files` files of equal size, oldest first.
fn landing_files(dir: &Path, n: u64, files: u64) {
    let values: Vec<String> = transactions(n).map(|tx| tx.value()).collect();
    for (i, part) in values.chunks((n / files) as usize).enumerate() {
        let text = part.join("\n") + "\n";
        write_file(dir, &format!("tx-{i:04}.json"), &text, 10_000 - i as u64);
    }
}

fn write_pipeline(dir: &Path, name: &str, body: &str) -> std::path::PathBuf {
    let text = format!("name = \"{name}\"\ncheckpointLocation = \"checkpoint-{name}\"\n{body}");
    let file = dir.join(format!("{name}.toml"));
    std::fs::write(&file, text).unwrap();
    file
}

#[test]
fn json_files_to_parquet_are_exactly_once_across_crashes_and_kills() {
    let n = 60_000;
    let dir = scratch_dir();
    // A thousand small files, one per batch: a run long enough (~2 s) for the kills to land.
    landing_files(&dir.join("landing"), n, 1_000);
    let archive = write_pipeline(
        &dir,
        "archive",
        &format!(
            r#"[source]
path = "landing"
format = "json"
maxFilesPerTrigger = 1

[deserializer]
format = "json"
schema = "{TRANSACTION_SCHEMA}"

[sink]
format = "parquet"
path = "archive"
partitionBy = ["flag"]

[trigger]
availableNow = true
"#
        ),
    );
    let killed = crash_kill_and_finish(&archive, "", EXACTLY_ONCE_CRASH_POINTS, (4, n));
    println!("{killed} kills landed while the archive ran");
    assert!(
        killed >= 2,
        "the kills should land while the pipeline runs ({killed})"
    );

    let archived = dir.join("archive");
    let got = archived_rows(&archived);
    assert_eq!(got.len(), n as usize, "rows lost or written twice");
    assert!(
        got == expected_rows(n),
        "the archived rows differ from the files' records"
    );
    let listed = weir::committed_files(&archived).unwrap().len();
    assert_eq!(
        part_files_on_disk(&archived).len(),
        listed,
        "only committed files are left"
    );

    // The archive read back as a Parquet source, through its log: every committed file, once.
    let copy = write_pipeline(
        &dir,
        "copy",
        r#"[source]
path = "archive"
format = "parquet"
schema = "name STRING, surname STRING, amount STRING, delta_t STRING, ts BIGINT"

[sink]
format = "json"
path = "copy"

[trigger]
availableNow = true
"#,
    );
    successful_stdout(weir_command().arg("run").arg(&copy), "the copy");
    let mut copied: Vec<String> = committed_json_lines(&dir.join("copy"))
        .into_iter()
        .map(|(_, row)| {
            let text = |key: &str| row[key].as_str().unwrap().to_string();
            let (name, surname, amount) = (text("name"), text("surname"), text("amount"));
            format!(
                "{name}|{surname}|{amount}|{}|{}",
                text("delta_t"),
                row["ts"]
            )
        })
        .collect();
    copied.sort();
    let mut expected: Vec<String> = expected_rows(n)
        .iter()
        .map(|row| {
            let fields: Vec<&str> = row.split('|').collect();
            [&fields[..4], &fields[5..]].concat().join("|")
        })
        .collect();
    expected.sort();
    assert!(copied == expected, "the copy differs from the archive");
}

/// The committed `id,note` rows under `dir`, sorted.
fn committed_notes(dir: &Path) -> Vec<String> {
    let mut rows: Vec<String> = committed_json_lines(dir)
        .into_iter()
        .map(|(_, row)| format!("{}:{}", row["id"], row["note"].as_str().unwrap_or("NULL")))
        .collect();
    rows.sort();
    rows
}

/// `weir run FILE` in the background, its errors kept for the test to read.
fn spawn_run(file: &Path) -> Child {
    weir_command()
        .arg("run")
        .arg(file)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Waits until the committed rows under `dir` number `count`, or the pipeline exits.
fn wait_for_rows(dir: &Path, count: usize, pipeline: &mut Child) -> Vec<String> {
    let started = Instant::now();
    loop {
        let rows = committed_notes(dir);
        if rows.len() >= count || started.elapsed() > Duration::from_secs(30) {
            return rows;
        }
        assert!(
            pipeline.try_wait().unwrap().is_none(),
            "the pipeline stopped early"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn csv_files_are_picked_up_as_they_arrive_and_a_bad_line_is_named() {
    let dir = scratch_dir();
    let landing = dir.join("landing");
    std::fs::create_dir_all(&landing).unwrap();
    let file = write_pipeline(
        &dir,
        "notes",
        r#"[source]
path = "landing"
format = "csv"
header = true

[deserializer]
format = "csv"
schema = "id INT, note STRING"

[sink]
format = "json"
path = "out"

[trigger]
processingTime = "100ms"
"#,
    );
    let mut pipeline = spawn_run(&file);
    let out = dir.join("out");
    write_file(&landing, "a.csv", "id,note\n1,first\n2,second\n", 2);
    assert_eq!(
        wait_for_rows(&out, 2, &mut pipeline),
        ["1:first", "2:second"]
    );
    // A file arriving later, with a quoted field over two lines and a hidden file beside it.
    write_file(&landing, "b.csv", "id,note\n3,\"two\nlines\"\n", 1);
    write_file(&landing, ".b.csv.tmp", "id,note\n9,hidden\n", 1);
    let rows = wait_for_rows(&out, 3, &mut pipeline);
    assert_eq!(rows, ["1:first", "2:second", "3:two\nlines"]);

    write_file(&landing, "c.csv", "id,note\n4,fine\nfive,bad\n", 0);
    let output = pipeline.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !output.status.success(),
        "a bad line stops the pipeline: {stderr}"
    );
    let named = format!(
        "record {} line 3 could not be deserialized",
        landing.join("c.csv").display()
    );
    assert!(stderr.contains(&named), "{stderr}");
    assert_eq!(
        committed_notes(&out).len(),
        3,
        "nothing of c.csv is committed"
    );

    // Mended, the file is read again from the start: the restart did not record it as read.
    write_file(&landing, "c.csv", "id,note\n4,fine\n5,mended\n", 0);
    let mut restarted = spawn_run(&file);
    let rows = wait_for_rows(&out, 5, &mut restarted);
    restarted.kill().unwrap();
    restarted.wait().unwrap();
    assert_eq!(rows[3..], ["4:fine".to_string(), "5:mended".to_string()]);
}

/// To Kafka, at least once by default: bad lines go to the dead-letter topic named by file and line, and a
/// second run reads no file again.
#[tokio::test(flavor = "multi_thread")]
async fn json_lines_to_kafka_dead_letter_bad_lines_by_file_and_line() {
    let broker = mock_cluster();
    broker.create_topic("out", 1);
    broker.create_topic("dlq", 1);
    let dir = scratch_dir();
    let landing = dir.join("in");
    write_file(&landing, "a.json", "{\"id\":1}\nnot json\n{\"id\":2}\n", 5);
    write_file(&landing, "b.json", "{\"id\":3}\n", 1);
    let text = format!(
        r#"checkpointLocation = "checkpoint"
[source]
path = "in"
format = "json"

[deserializer]
format = "json"
schema = "id INT"
on_error = "dead-letter"
dead_letter_topic = "dlq"

[sink]
kafka.bootstrap.servers = "{}"
topic = "out"
format = "json"

[trigger]
availableNow = true
"#,
        broker.bootstrap
    );
    let spec = || weir::config::parse(&text, "p.toml", &dir, "to-kafka", |_| None).unwrap();
    assert_eq!(spec().sink.delivery, weir::Delivery::AtLeastOnce);
    let summary = run_pipeline(spec()).await.unwrap();
    assert_eq!((summary.input_rows, summary.errors.dead_lettered), (4, 1));
    let mut out = values(&read_topic(&broker.bootstrap, "out").unwrap());
    out.sort();
    assert_eq!(out, ["{\"id\":1}", "{\"id\":2}", "{\"id\":3}"]);
    let dead = read_topic(&broker.bootstrap, "dlq").unwrap();
    assert_eq!(values(&dead), ["not json"]);
    let file = landing.join("a.json").display().to_string();
    assert_eq!(dead[0].header("weir.source.topic").unwrap(), file);
    assert_eq!(dead[0].header("weir.source.offset").unwrap(), "2");

    let again = run_pipeline(spec()).await.unwrap();
    assert_eq!(
        again.input_rows, 0,
        "every file was read by a committed batch"
    );
}
