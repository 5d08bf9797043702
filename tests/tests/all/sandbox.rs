//! Hostile modules beyond the basic failures of `udf_errors`: stack overflow, attempts to reach files and
//! sockets, floods of log output, misuse of the row interface, and the `on_failure = "dead-letter"` policy
//! that lets a pipeline go on past a failing call without losing its records.

use std::path::{Path, PathBuf};

use super::udf_errors::{failure, pipeline, setup};
use weir_tests::*;

/// The echo transform with extra WASI imports and functions placed before its own definitions.
pub(crate) fn echo_with(
    setup: &super::udf_errors::Setup,
    name: &str,
    prelude: &str,
    body: &str,
) -> PathBuf {
    let wat = echo_transform_wat("weir_abi_v1", 2, body).replacen(
        "(module\n",
        &format!("(module\n{prelude}\n"),
        1,
    );
    wat_module(&setup.dir, name, &wat)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stack_overflow_traps_and_is_reported() {
    let setup = setup();
    let module = echo_with(
        &setup,
        "deep",
        "(func $deep (param i32) (result i32) (call $deep (i32.add (local.get 0) (i32.const 1))))",
        "(drop (call $deep (i32.const 0)))",
    );
    let message = failure(&setup, &module, "").await;
    assert!(message.contains("UDF `hostile`"), "{message}");
    assert!(message.contains("on in-0 offsets 0..=4"), "{message}");
    assert!(message.contains("call stack exhausted"), "{message}");
}

#[tokio::test(flavor = "multi_thread")]
async fn files_and_sockets_are_out_of_reach() {
    // The guest tries to open /etc/passwd through the first preopened directory, to list preopens, and to
    // accept a connection; it traps if any of them succeeds, and otherwise reports that all were refused.
    let setup = setup();
    let prelude = r#"
  (import "wasi_snapshot_preview1" "path_open" (func $path_open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_prestat_get" (func $prestat (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "sock_accept" (func $accept (param i32 i32 i32) (result i32)))
  (data (i32.const 720) "/etc/passwd")
  (data (i32.const 740) "files and sockets refused")"#;
    let body = r#"
    (if (i32.eqz (call $path_open (i32.const 3) (i32.const 0) (i32.const 720) (i32.const 11) (i32.const 0)
                                  (i64.const 0) (i64.const 0) (i32.const 0) (i32.const 640))) (then (unreachable)))
    (if (i32.eqz (call $path_open (i32.const 0) (i32.const 0) (i32.const 720) (i32.const 11) (i32.const 0)
                                  (i64.const 0) (i64.const 0) (i32.const 0) (i32.const 640))) (then (unreachable)))
    (if (i32.eqz (call $prestat (i32.const 3) (i32.const 640))) (then (unreachable)))
    (if (i32.eqz (call $accept (i32.const 3) (i32.const 0) (i32.const 640))) (then (unreachable)))
    (if (i32.eqz (call $accept (i32.const 1) (i32.const 0) (i32.const 640))) (then (unreachable)))
    (i32.store (local.get $ret) (i32.const 740))
    (i32.store offset=4 (local.get $ret) (i32.const 25))
    (return (i32.const 1))"#;
    let module = echo_with(&setup, "snoop", prelude, body);
    let message = failure(&setup, &module, "").await;
    assert!(
        message.contains("the UDF reported: files and sockets refused"),
        "{message}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_flood_of_log_output_is_capped_and_the_call_still_succeeds() {
    // 64 MiB written to stdout in 4 KiB pieces, then a normal echo.
    let setup = setup();
    let prelude = r#"
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (global $written (mut i32) (i32.const 0))"#;
    let body = r#"
    (global.set $written (i32.const 0))
    (i32.store (i32.const 600) (i32.const 4096))
    (i32.store (i32.const 604) (i32.const 4096))
    (loop $more
      (drop (call $fd_write (i32.const 1) (i32.const 600) (i32.const 1) (i32.const 620)))
      (global.set $written (i32.add (global.get $written) (i32.const 1)))
      (br_if $more (i32.lt_u (global.get $written) (i32.const 16384))))"#;
    let module = echo_with(&setup, "chatty", prelude, body);

    let spec = pipeline_spec(&setup.dir, &setup.broker.bootstrap, &pipeline(&module, "")).unwrap();
    let summary = run_pipeline(spec).await.unwrap();
    assert_eq!(summary.output_rows, 5);

    // Through the CLI, the host's log shows the kept part and counts the rest (64 KiB kept by default).
    let input = setup.dir.join("one.jsonl");
    std::fs::write(&input, "{\"a\": \"x\"}\n").unwrap();
    let output = weir_command()
        .args(["udf", "test"])
        .arg(&module)
        .arg("--input")
        .arg(&input)
        .args(["--input-schema", "a STRING"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    let dropped = 64 * 1024 * 1024 - 64 * 1024;
    assert!(
        stderr.contains(&format!(
            "{dropped} more bytes of guest output dropped (limits.max_log)"
        )),
        "{}",
        &stderr[stderr.len().saturating_sub(500)..]
    );
    assert!(stderr.len() < 512 * 1024, "{} bytes of log", stderr.len());
    assert!(
        !stderr.contains('\x1b'),
        "colour codes in a log that is not a terminal"
    );
}

/// A row-interface transform: init runs `init_body` (data at 1000: "n BIGINT"), process runs `process_body`
/// with `$rows`; both return status 0 unless the body returns first.
pub(crate) fn row_module(dir: &Path, name: &str, init_body: &str, process_body: &str) -> PathBuf {
    row_module_with(dir, name, "", init_body, process_body)
}

/// [`row_module`] with `prelude` (more imports, say) at the top of the module.
pub(crate) fn row_module_with(
    dir: &Path,
    name: &str,
    prelude: &str,
    init_body: &str,
    process_body: &str,
) -> PathBuf {
    let wat = format!(
        r#"(module
  {prelude}
  (import "weir" "output_schema" (func $output_schema (param i32 i32)))
  (import "weir" "in_i64" (func $in_i64 (param i32 i32) (result i64)))
  (import "weir" "out_i64" (func $out_i64 (param i32 i64)))
  (import "weir" "out_bytes" (func $out_bytes (param i32 i32 i32)))
  (import "weir" "out_copy" (func $out_copy (param i32 i32 i32)))
  (import "weir" "out_row" (func $out_row))
  (import "weir" "out_null" (func $out_null (param i32)))
  (import "weir" "row_error" (func $row_error (param i32 i32 i32)))
  (memory (export "memory") 1)
  (data (i32.const 1000) "n BIGINT")
  (func (export "weir_abi_v1") (result i32) (i32.const 1))
  (func (export "weir_kind") (result i32) (i32.const 2))
  (func (export "weir_init_rows") (result i32)
    {init_body}
    (i32.const 0))
  (func (export "weir_process_rows") (param $rows i32) (result i32)
    (local $row i32)
    {process_body}
    (i32.const 0))
)"#
    );
    wat_module(dir, name, &wat)
}

pub(crate) const DECLARE: &str = "(call $output_schema (i32.const 1000) (i32.const 8))";

/// A pipeline of `{"n": i}` records through the JSON decoder and `module`, with `extra` stage keys.
pub(crate) fn numbers_pipeline(module: &Path, extra: &str) -> String {
    format!(
        r#"
[source]
kafka.bootstrap.servers = "${{BROKER}}"
subscribe = "numbers"
startingOffsets = "earliest"
endingOffsets = "latest"
maxOffsetsPerTrigger = 10
[deserializer]
format = "json"
schema = "n BIGINT"
[[transform]]
udf = "{}"
name = "rows"
{extra}
[sink]
kafka.bootstrap.servers = "${{BROKER}}"
topic = "out"
format = "json"
"#,
        module.display()
    )
}

/// The copy loop of a row transform, with `check` run first on each row (`$row` in scope).
fn copy_rows(check: &str) -> String {
    format!(
        r#"(block $done (loop $next
      (br_if $done (i32.ge_s (local.get $row) (local.get $rows)))
      {check}
      (call $out_copy (i32.const 0) (i32.const 0) (local.get $row))
      (call $out_row)
      (local.set $row (i32.add (local.get $row) (i32.const 1)))
      (br $next)))"#
    )
}

pub(crate) async fn numbers_failure(setup: &super::udf_errors::Setup, module: &Path) -> String {
    let spec = pipeline_spec(
        &setup.dir,
        &setup.broker.bootstrap,
        &numbers_pipeline(module, ""),
    )
    .unwrap();
    format!("{:#}", run_pipeline(spec).await.unwrap_err())
}

pub(crate) fn numbers_setup() -> super::udf_errors::Setup {
    let setup = setup();
    setup.broker.create_topic("numbers", 1);
    setup.broker.create_topic("dead", 1);
    let values: Vec<String> = (0..40).map(|n| format!("{{\"n\":{n}}}")).collect();
    produce_to(&setup.broker.bootstrap, "numbers", 0, &values, &[]);
    setup
}

#[tokio::test(flavor = "multi_thread")]
async fn the_row_interface_copies_rows_and_refuses_misuse_by_name() {
    let setup = numbers_setup();
    let echo = row_module(&setup.dir, "row-echo", DECLARE, &copy_rows(""));
    let spec = pipeline_spec(
        &setup.dir,
        &setup.broker.bootstrap,
        &numbers_pipeline(&echo, ""),
    )
    .unwrap();
    assert_eq!(run_pipeline(spec).await.unwrap().output_rows, 40);

    let cases = [
        ("no-schema", "", "", "without declaring the output schema"),
        ("bad-ddl", "(call $output_schema (i32.const 1000) (i32.const 5))", "", "weir::output_schema: column \"n\" has the unsupported type \"BIG\"")
            as (&str, &str, &str, &str),
        (
            "bad-pointer",
            DECLARE,
            "(call $out_bytes (i32.const 0) (i32.const 65000) (i32.const 1000))",
            "weir::out_bytes: 1000 bytes at 65000 lie outside the guest's 65536 bytes of memory",
        ),
        (
            "bad-column",
            DECLARE,
            "(call $out_i64 (i32.const 3) (i64.const 1))",
            "weir::out_i64: output column 3 does not exist (the declared schema has 1 columns)",
        ),
        (
            "bad-row",
            DECLARE,
            "(drop (call $in_i64 (i32.const 0) (i32.const 99)))",
            "weir::in_i64: row 99 does not exist (the batch has 10 rows)",
        ),
        (
            "twice",
            DECLARE,
            "(call $out_i64 (i32.const 0) (i64.const 1)) (call $out_i64 (i32.const 0) (i64.const 2))",
            "output column 0 already has a value in row 0",
        ),
        (
            "unended",
            DECLARE,
            "(call $out_i64 (i32.const 0) (i64.const 1))",
            "column `n` has a value for row 0 but that row was never ended with weir::out_row",
        ),
    ];
    for (name, init, process, expected) in cases {
        let module = row_module(&setup.dir, name, init, process);
        let message = numbers_failure(&setup, &module).await;
        assert!(message.contains("UDF `rows`"), "{name}: {message}");
        assert!(message.contains(expected), "{name}: {message}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn on_failure_dead_letter_sends_the_failed_calls_records_and_goes_on() {
    // The transform traps on n = 13; batches are 10 records, so records 10..=19 fail as one call.
    let setup = numbers_setup();
    let trap_on_13 = "(if (i64.eq (call $in_i64 (i32.const 0) (local.get $row)) (i64.const 13)) (then (unreachable)))";
    let module = row_module(&setup.dir, "trap13", DECLARE, &copy_rows(trap_on_13));
    let text = numbers_pipeline(
        &module,
        "on_failure = \"dead-letter\"\ndead_letter_topic = \"dead\"",
    );
    let spec = pipeline_spec(&setup.dir, &setup.broker.bootstrap, &text).unwrap();
    let summary = run_pipeline(spec).await.unwrap();
    assert_eq!(summary.input_rows, 40);
    assert_eq!(summary.output_rows, 30);
    assert_eq!(summary.errors.failed_calls, 1);
    assert_eq!(summary.errors.dead_lettered, 10);

    let mut out = values(&read_topic(&setup.broker.bootstrap, "out").unwrap());
    out.sort_by_key(|v| v[5..v.len() - 1].parse::<i64>().unwrap());
    let expected: Vec<String> = (0..40)
        .filter(|n| !(10..20).contains(n))
        .map(|n| format!("{{\"n\":{n}}}"))
        .collect();
    assert_eq!(out, expected);

    let dead = read_topic(&setup.broker.bootstrap, "dead").unwrap();
    assert_eq!(
        values(&dead),
        (10..20)
            .map(|n| format!("{{\"n\":{n}}}"))
            .collect::<Vec<_>>()
    );
    for record in &dead {
        let header = |k: &str| record.header(k).unwrap();
        assert_eq!(header("weir.stage"), "rows");
        let error = header("weir.error");
        assert!(
            error.contains("on numbers-0 offsets 10..=19") && error.contains("trapped"),
            "{error}"
        );
        // One line with the cause, not a multi-line backtrace, in the header.
        assert!(!error.contains('\n') && error.len() < 600, "{error}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn on_failure_fail_stops_with_the_offsets_and_writes_nothing_of_the_batch() {
    let setup = numbers_setup();
    let trap_on_13 = "(if (i64.eq (call $in_i64 (i32.const 0) (local.get $row)) (i64.const 13)) (then (unreachable)))";
    let module = row_module(&setup.dir, "trap13-fail", DECLARE, &copy_rows(trap_on_13));
    let message = numbers_failure(&setup, &module).await;
    assert!(
        message.contains("on numbers-0 offsets 10..=19"),
        "{message}"
    );
    // The first batch (0..=9) was written; nothing of the failed one.
    let out = values(&read_topic(&setup.broker.bootstrap, "out").unwrap());
    assert_eq!(out.len(), 10, "{out:?}");
}

#[test]
fn on_failure_is_checked_in_the_pipeline_file() {
    let dir = scratch_dir();
    let module = hostile_path(&dir);
    let cases = [
        (
            "on_failure = \"dead-letter\"",
            "dead_letter_topic",
            "missing: on_failure = \"dead-letter\" needs a topic",
        ),
        (
            "on_failure = \"retry\"",
            "on_failure",
            "expected fail or dead-letter, found \"retry\"",
        ),
        (
            "dead_letter_topic = \"d\"",
            "dead_letter_topic",
            "only used with on_error = \"dead-letter\" or on_failure",
        ),
    ];
    for (extra, key, expected) in cases {
        let error =
            pipeline_spec(&dir, "127.0.0.1:1", &numbers_pipeline(&module, extra)).unwrap_err();
        let text = error.to_string();
        assert!(
            text.contains(key) && text.contains(expected),
            "{extra}: {text}"
        );
    }
}

fn hostile_path(dir: &Path) -> PathBuf {
    dir.join("any.wasm")
}
