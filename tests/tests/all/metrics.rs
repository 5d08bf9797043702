//! `[metrics]`: a running pipeline's Prometheus endpoint agrees with its own progress lines, and the health
//! checks answer.

use std::collections::BTreeMap;
use std::io::{BufRead, Read, Write};
use std::process::Stdio;
use std::time::{Duration, Instant};

use weir_tests::*;

use super::checkpoint::checkpointed_fraud_window;
use super::window::produce_workload;

/// `GET path` on 127.0.0.1:`port`: the status code and the body; `None` when nothing listens.
fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let status = response.split(' ').nth(1)?.parse().ok()?;
    let body = response.split_once("\r\n\r\n")?.1.to_string();
    Some((status, body))
}

/// The value of the series `name{labels}` in an OpenMetrics text (labels as written, in order).
fn series(text: &str, name: &str, labels: &str) -> Option<f64> {
    let key = format!("{name}{{{labels}}} ");
    text.lines()
        .find_map(|line| line.strip_prefix(&key))
        .and_then(|value| value.trim().parse().ok())
}

#[test]
fn the_endpoint_agrees_with_the_progress_and_the_checks_answer() {
    let broker = tansu();
    let n = 20_000;
    produce_workload(&broker, n);
    broker.create_topic("alerts", 1);
    let dir = scratch_dir();
    let port = free_port();
    // Unbounded (no endingOffsets), exactly-once, in several batches, with the endpoint on.
    let file = checkpointed_fraud_window(
        &dir,
        "metered",
        &[
            (
                "endingOffsets = \"latest\"",
                "maxOffsetsPerTrigger = 5000".to_string(),
            ),
            (
                "\n[sink]\n",
                format!("\n[metrics]\nlisten = \"127.0.0.1:{port}\"\n\n[sink]\n"),
            ),
        ],
    );
    let mut child = weir_command()
        .args(["run", "--progress", "json"])
        .arg(&file)
        .env("KAFKA_BOOTSTRAP_SERVERS", &broker.bootstrap)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();

    // Every record read: the progress lines so far are the whole run's.
    let mut progress: Vec<serde_json::Value> = Vec::new();
    let mut read = 0;
    for line in lines {
        let line = line.unwrap();
        let Ok(batch) = serde_json::from_str::<serde_json::Value>(&line) else {
            continue;
        };
        read += batch["numInputRows"].as_u64().unwrap();
        progress.push(batch);
        if read == n + 4 {
            break;
        }
    }
    assert_eq!(read, n + 4);
    let health = http_get(port, "/health");
    let ready = http_get(port, "/ready");
    let (status, metrics) = http_get(port, "/metrics").expect("the endpoint answers");
    let missing = http_get(port, "/nothing-here");
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let stderr = stderr_of(&mut child);
    assert!(child.wait().unwrap().success(), "{stderr}");

    assert_eq!(status, 200);
    assert_eq!(health.map(|(s, _)| s), Some(200));
    assert_eq!(ready.map(|(s, _)| s), Some(200));
    assert_eq!(missing.map(|(s, _)| s), Some(404));
    let sum = |field: &dyn Fn(&serde_json::Value) -> u64| progress.iter().map(field).sum::<u64>();
    let pipeline = "pipeline=\"metered\"";
    let expect = [
        (
            "weir_batches_total",
            pipeline.to_string(),
            progress.len() as u64,
        ),
        (
            "weir_records_total",
            format!("{pipeline},stage=\"source\""),
            n + 4,
        ),
        (
            "weir_records_total",
            format!("{pipeline},stage=\"sink\""),
            sum(&|b| b["sink"]["numOutputRows"].as_u64().unwrap()),
        ),
        (
            // Exactly-once: one committed transaction per batch, none aborted.
            "weir_transactions_total",
            format!("{pipeline},outcome=\"committed\""),
            progress.len() as u64,
        ),
        (
            "weir_transactions_total",
            format!("{pipeline},outcome=\"aborted\""),
            0,
        ),
        (
            "weir_late_rows_total",
            pipeline.to_string(),
            sum(&|b| {
                b["stateOperators"][0]["numRowsDroppedByWatermark"]
                    .as_u64()
                    .unwrap()
            }),
        ),
        (
            "weir_state_groups",
            pipeline.to_string(),
            progress.last().unwrap()["stateOperators"][0]["numRowsTotal"]
                .as_u64()
                .unwrap(),
        ),
        (
            "weir_watermark_milliseconds",
            pipeline.to_string(),
            progress.last().unwrap()["eventTime"]["watermarkMs"]
                .as_u64()
                .unwrap(),
        ),
    ];
    for (name, labels, value) in expect {
        assert_eq!(
            series(&metrics, name, &labels),
            Some(value as f64),
            "{name}{{{labels}}} in\n{metrics}"
        );
    }
    assert!(sum(&|b| b["sink"]["numOutputRows"].as_u64().unwrap()) > 0);
    // Each of the 4 partitions has an event-time clock, and the workload's times are years ago.
    let lags: BTreeMap<i32, f64> = (0..4)
        .filter_map(|p| {
            let labels = format!("{pipeline},topic=\"tx\",partition=\"{p}\"");
            series(&metrics, "weir_partition_event_time_lag_seconds", &labels).map(|v| (p, v))
        })
        .collect();
    assert_eq!(lags.len(), 4, "{metrics}");
    assert!(lags.values().all(|lag| *lag > 86_400.0), "{lags:?}");
    // Every record read: each partition's position is at the broker's high watermark.
    for p in 0..4 {
        let labels = format!("{pipeline},topic=\"tx\",partition=\"{p}\"");
        assert_eq!(
            series(&metrics, "weir_consumer_lag", &labels),
            Some(0.0),
            "{metrics}"
        );
    }
    assert!(
        metrics.contains("weir_batch_duration_seconds_count{pipeline=\"metered\"}"),
        "{metrics}"
    );
    // Every UDF stage was called, none failed, and the calls took time.
    for udf in ["json_transactions", "fraud_flagged", "filter"] {
        let labels = format!("{pipeline},udf=\"{udf}\"");
        let calls = series(&metrics, "weir_udf_calls_total", &labels);
        assert!(calls.is_some_and(|c| c >= 1.0), "{udf}: {metrics}");
        assert_eq!(
            series(&metrics, "weir_udf_failures_total", &labels),
            Some(0.0)
        );
        let seconds = series(&metrics, "weir_udf_seconds_total", &labels);
        assert!(seconds.is_some_and(|s| s > 0.0), "{udf}: {metrics}");
    }
    // Rows stage to stage: every record read reaches the deserializer, its rows the transform, and the
    // filter after the aggregation returns the sink's rows.
    let rows = |udf: &str, direction: &str| {
        let labels = format!("{pipeline},udf=\"{udf}\",direction=\"{direction}\"");
        series(&metrics, "weir_udf_rows_total", &labels)
    };
    assert_eq!(
        rows("json_transactions", "in"),
        Some((n + 4) as f64),
        "{metrics}"
    );
    assert_eq!(
        rows("fraud_flagged", "in"),
        rows("json_transactions", "out")
    );
    let written = sum(&|b| b["sink"]["numOutputRows"].as_u64().unwrap());
    assert_eq!(rows("filter", "out"), Some(written as f64), "{metrics}");

    // The endpoint ends with the run.
    let started = Instant::now();
    while http_get(port, "/health").is_some() && started.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(http_get(port, "/health").is_none());
}

/// The fraud-window example with `[metrics] listen` on `port`, written to `dir` (no broker is needed
/// until the source opens).
fn metered_example(dir: &std::path::Path, port: u16) -> std::path::PathBuf {
    let text = example_variant(
        "fraud-window/pipeline.toml",
        &[(
            "\n[sink]\n",
            format!("\n[metrics]\nlisten = \"127.0.0.1:{port}\"\n\n[sink]\n"),
        )],
    );
    for module in ["json_transactions", "fraud_flagged", "filter"] {
        udf_module(module);
    }
    let file = dir.join("pipeline.toml");
    std::fs::write(&file, text).unwrap();
    file
}

#[test]
fn a_taken_address_is_named_and_start_up_is_healthy_but_not_ready() {
    let dir = scratch_dir();
    // Nothing listens at this broker address: the source cannot open, so the run stays in start-up.
    let no_broker = format!("127.0.0.1:{}", free_port());

    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let output = weir_command()
        .arg("run")
        .arg(metered_example(&dir, port))
        .env("KAFKA_BOOTSTRAP_SERVERS", &no_broker)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        stderr.contains(&format!(
            "metrics.listen: cannot listen on 127.0.0.1:{port}"
        )),
        "{stderr}"
    );
    drop(taken);

    let port = free_port();
    let mut child = weir_command()
        .args(["--log-format", "json", "run"])
        .arg(metered_example(&dir, port))
        .env("KAFKA_BOOTSTRAP_SERVERS", &no_broker)
        .env("WEIR_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let mut health = None;
    while health.is_none() && started.elapsed() < Duration::from_secs(20) {
        health = http_get(port, "/health");
        std::thread::sleep(Duration::from_millis(50));
    }
    let ready = http_get(port, "/ready");
    child.kill().unwrap();
    child.wait().unwrap();
    let stderr = stderr_of(&mut child);
    assert_eq!(health.map(|(s, _)| s), Some(200), "{stderr}");
    assert_eq!(ready.map(|(s, _)| s), Some(503), "{stderr}");
    // --log-format json: every log line is a JSON object; one says where the metrics are.
    let lines: Vec<serde_json::Value> = stderr
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .collect();
    assert!(
        lines.iter().any(|line| line["fields"]["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("metrics served"))),
        "{stderr}"
    );
}

/// Everything `child` wrote to its (piped) stderr, read to its end.
fn stderr_of(child: &mut std::process::Child) -> String {
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    stderr
}
