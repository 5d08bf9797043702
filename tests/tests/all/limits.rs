//! Limits a guest must not get around: a sleep inside WASI (which epoch interruption cannot reach), a busy
//! wait on the clock, and floods of row-interface output that cost the host memory but no output bytes.

use std::time::{Duration, Instant};

use super::sandbox::{
    echo_with, numbers_pipeline, numbers_setup, row_module, row_module_with, DECLARE,
};
use super::udf_errors::{failure, pipeline, setup};
use weir_tests::*;

const POLL: &str = r#"(import "wasi_snapshot_preview1" "poll_oneoff" (func $poll (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "clock_time_get" (func $now (param i32 i64 i32) (result i32)))"#;

/// A body that waits in `poll_oneoff` on one clock subscription (at 600; event at 656, count at 700) and
/// traps unless the wait returned one clock event. `timeout` is an i64 expression; `$now_ns` (the clock's
/// current time, read first at 720) is in scope as `(i64.load (i32.const 720))`.
fn sleep_body(clock: u32, absolute: bool, timeout: &str) -> String {
    format!(
        r#"
    (drop (call $now (i32.const {clock}) (i64.const 1) (i32.const 720)))
    (i64.store (i32.const 600) (i64.const 42))
    (i32.store8 (i32.const 608) (i32.const 0))
    (i32.store (i32.const 616) (i32.const {clock}))
    (i64.store (i32.const 624) {timeout})
    (i64.store (i32.const 632) (i64.const 0))
    (i32.store16 (i32.const 640) (i32.const {flags}))
    (if (call $poll (i32.const 600) (i32.const 656) (i32.const 1) (i32.const 700)) (then (unreachable)))
    (if (i32.ne (i32.load (i32.const 700)) (i32.const 1)) (then (unreachable)))
    (if (i64.ne (i64.load (i32.const 656)) (i64.const 42)) (then (unreachable)))"#,
        flags = u8::from(absolute)
    )
}

const HOUR_NS: &str = "(i64.const 3600000000000)";
const HOUR_AHEAD: &str = "(i64.add (i64.load (i32.const 720)) (i64.const 3600000000000))";

#[tokio::test(flavor = "multi_thread")]
async fn a_sleep_in_wasi_past_the_time_limit_ends_the_call_at_once() {
    let setup = setup();
    let cases = [
        ("relative", sleep_body(1, false, HOUR_NS)),
        ("monotonic-deadline", sleep_body(1, true, HOUR_AHEAD)),
        ("realtime-deadline", sleep_body(0, true, HOUR_AHEAD)),
    ];
    for (name, body) in cases {
        let module = echo_with(&setup, &format!("sleep-{name}"), POLL, &body);
        let started = Instant::now();
        let message = failure(&setup, &module, "limits = { timeout = \"1s\" }").await;
        // Not a speed check: before, the call slept the whole hour.
        assert!(started.elapsed() < Duration::from_secs(60), "{name}");
        assert!(message.contains("UDF `hostile`"), "{name}: {message}");
        assert!(
            message.contains("longer than the 1s limit (limits.timeout)"),
            "{name}: {message}"
        );
        assert!(
            message.contains("asked WASI's poll_oneoff to sleep 3599.")
                || message.contains("asked WASI's poll_oneoff to sleep 3600s"),
            "{name}: {message}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_sleep_within_the_time_limit_sleeps_and_the_call_succeeds() {
    let setup = setup();
    let module = echo_with(
        &setup,
        "nap",
        POLL,
        &sleep_body(1, false, "(i64.const 50000000)"),
    );
    let text = pipeline(&module, "limits = { timeout = \"5s\" }");
    let spec = pipeline_spec(&setup.dir, &setup.broker.bootstrap, &text).unwrap();
    assert_eq!(run_pipeline(spec).await.unwrap().output_rows, 5);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_sleeping_guest_is_dead_lettered_with_on_failure_and_the_pipeline_goes_on() {
    let setup = numbers_setup();
    let module = row_module_with(
        &setup.dir,
        "sleepy-rows",
        POLL,
        DECLARE,
        &sleep_body(1, false, HOUR_NS),
    );
    let text = numbers_pipeline(
        &module,
        "limits = { timeout = \"1s\" }\non_failure = \"dead-letter\"\ndead_letter_topic = \"dead\"",
    );
    let spec = pipeline_spec(&setup.dir, &setup.broker.bootstrap, &text).unwrap();
    let summary = run_pipeline(spec).await.unwrap();
    assert_eq!(summary.input_rows, 40);
    assert_eq!(summary.output_rows, 0);
    assert_eq!(summary.errors.dead_lettered, 40);
    let dead = read_topic(&setup.broker.bootstrap, "dead").unwrap();
    assert_eq!(dead.len(), 40);
    let error = dead[0].header("weir.error").unwrap();
    assert!(error.contains("limits.timeout"), "{error}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_busy_wait_on_the_clock_is_interrupted() {
    let setup = setup();
    let body =
        "(loop $spin (drop (call $now (i32.const 1) (i64.const 1) (i32.const 720))) (br $spin))";
    let module = echo_with(&setup, "spin", POLL, body);
    let message = failure(&setup, &module, "limits = { timeout = \"1s\" }").await;
    assert!(
        message.contains("ran longer than the 1s limit (limits.timeout) and was interrupted"),
        "{message}"
    );
    assert!(!message.contains("poll_oneoff"), "{message}");
}

#[test]
fn weir_udf_test_ends_a_sleep_past_its_time_limit() {
    let dir = scratch_dir();
    let wat = echo_transform_wat("weir_abi_v1", 2, &sleep_body(1, false, HOUR_NS)).replacen(
        "(module\n",
        &format!("(module\n{POLL}\n"),
        1,
    );
    let module = wat_module(&dir, "sleeper", &wat);
    let input = dir.join("one.jsonl");
    std::fs::write(&input, "{\"a\": \"x\"}\n").unwrap();
    let started = Instant::now();
    let output = weir_command()
        .args(["udf", "test"])
        .arg(&module)
        .arg("--input")
        .arg(&input)
        .args(["--input-schema", "a STRING"])
        .output()
        .unwrap();
    assert!(started.elapsed() < Duration::from_secs(60));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        stderr.contains("longer than the 10s limit (limits.timeout)")
            && stderr.contains("poll_oneoff"),
        "{stderr}"
    );

    // `--limit` sets any `[limits]` key; a bad one is named.
    let run = |extra: &[&str]| {
        let output = weir_command()
            .args(["udf", "test"])
            .arg(&module)
            .arg("--input")
            .arg(&input)
            .args(["--input-schema", "a STRING"])
            .args(extra)
            .output()
            .unwrap();
        String::from_utf8_lossy(&output.stderr).into_owned()
    };
    let stderr = run(&["--limit", "timeout=2s"]);
    assert!(stderr.contains("longer than the 2s limit"), "{stderr}");
    let stderr = run(&["--limit", "timeout=soon"]);
    assert!(stderr.contains("--limit: `limits.timeout`"), "{stderr}");

    // A module that is no Weir UDF is refused as a pipeline refuses it.
    let not_weir = wat_module(&dir, "not-weir", "(module (memory (export \"memory\") 1))");
    let output = weir_command()
        .args(["udf", "test"])
        .arg(&not_weir)
        .arg("--input")
        .arg(&input)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!(
            "UDF `not-weir` ({}) failed loading: not a Weir UDF",
            not_weir.display()
        )),
        "{stderr}"
    );
}

/// Peak RSS allowed to `weir udf test` while a flood is stopped at the default 64 MiB `max_output`: the
/// output builders hold at most about that much above what the tool needs anyway (measured: 46 MiB for the
/// row floods, 70 MiB for the row-error flood). Before rows were counted, these floods reached 1.5-2.2 GiB.
const FLOOD_RSS_BOUND: u64 = 160 << 20;

/// Runs `weir ARGS` under `peak-rss` (tests/src/bin/peak-rss.rs); returns its stderr, whether it
/// succeeded, and its own peak resident memory in bytes.
fn weir_peak_rss(args: &[&std::ffi::OsStr]) -> (String, bool, u64) {
    let weir = workspace().join("target/release/weir");
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_peak-rss"))
        .arg(weir)
        .args(args)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    let kib: u64 = stderr
        .lines()
        .last()
        .and_then(|l| l.strip_prefix("peak-rss-kib: "))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no peak in {stderr}"));
    (stderr, output.status.success(), kib * 1024)
}

#[test]
fn floods_of_empty_rows_null_rows_and_row_errors_stop_at_max_output() {
    let dir = scratch_dir();
    let input = dir.join("numbers.jsonl");
    std::fs::write(&input, "{\"n\": 1}\n{\"n\": 2}\n").unwrap();
    let cases = [
        ("empty-rows", "(loop $more (call $out_row) (br $more))"),
        (
            "null-rows",
            "(loop $more (call $out_null (i32.const 0)) (call $out_row) (br $more))",
        ),
        (
            "row-errors",
            "(loop $more (call $row_error (i32.const 0) (i32.const 1000) (i32.const 8)) (br $more))",
        ),
    ];
    for (name, body) in cases {
        let module = row_module(&dir, name, DECLARE, body);
        let (stderr, succeeded, peak) = weir_peak_rss(&[
            "udf".as_ref(),
            "test".as_ref(),
            module.as_os_str(),
            "--input".as_ref(),
            input.as_os_str(),
            "--input-schema".as_ref(),
            "n BIGINT".as_ref(),
        ]);
        assert!(!succeeded, "{name}");
        assert!(
            stderr.contains("more than the 67108864-byte cap (limits.max_output)"),
            "{name}: {stderr}"
        );
        assert!(
            peak < FLOOD_RSS_BOUND,
            "{name}: peak RSS {} MiB",
            peak >> 20
        );
    }
}
