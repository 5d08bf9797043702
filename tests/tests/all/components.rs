//! UDFs as WebAssembly components (`wit/weir-udf.wit`): a Python transform in a pipeline is exact, and a
//! hostile Python component meets the same limits and sandbox as a core module.
//!
//! The hostile cases run one component, `udfs/py-hostile`, told by its config how to misbehave, through
//! the library's [`UdfRuntime`] on a small batch: no broker needed.

use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow_array::{ArrayRef, Int64Array, RecordBatch, StringArray};
use weir::internal::demo::{demo_records, MALFORMED_EVERY};
use weir::internal::{Kind, UdfStage};
use weir::{UdfError, UdfFailure, UdfLimits, UdfRuntime, UdfSpec};
use weir_tests::*;

use super::fraud::{create_fraud_topics, expected_results};

#[tokio::test(flavor = "multi_thread")]
async fn python_udfs_write_exactly_what_the_rust_ones_write() {
    udf_module("py_json_transactions");
    udf_module("py_fraud_flagged");
    let broker = tansu();
    create_fraud_topics(&broker);
    let n = 50_000;
    let produced = produce(&broker.bootstrap, "transactions", demo_records(n)).unwrap();
    let summary = run_pipeline(example_spec(
        "fraud/pipeline-python.toml",
        &broker.bootstrap,
    ))
    .await
    .unwrap();
    assert_eq!(summary.input_rows, produced);
    assert_eq!(summary.errors.dead_lettered, n / MALFORMED_EVERY);
    let mut results = values(&read_topic(&broker.bootstrap, "results").unwrap());
    results.sort();
    let expected = expected_results(n);
    assert_eq!(results.len(), expected.len());
    assert!(
        results == expected,
        "first difference: {:?}",
        results.iter().zip(&expected).find(|(a, b)| a != b)
    );
    // The Python deserializer's rejected records reach the dead-letter topic with its reason.
    let dead = read_topic(&broker.bootstrap, "transactions-dead-letter").unwrap();
    assert_eq!(dead.len() as u64, n / MALFORMED_EVERY);
    let reason = dead[0].header("weir.error").unwrap();
    assert!(reason.starts_with("not a transaction: "), "{reason}");
    assert_eq!(
        dead[0].header("weir.stage").unwrap(),
        "py_json_transactions"
    );
}

/// Three rows of (`n` int64, `name` utf8).
fn sample() -> RecordBatch {
    let columns: Vec<(&str, ArrayRef)> = vec![
        (
            "n",
            Arc::new(Int64Array::from(vec![Some(1), None, Some(3)])),
        ),
        (
            "name",
            Arc::new(StringArray::from(vec![Some("a"), Some("b"), None])),
        ),
    ];
    RecordBatch::try_from_iter(columns).unwrap()
}

/// The hostile component told to `misbehave`, loaded with `limits`.
fn hostile(misbehave: &str, limits: UdfLimits) -> Result<UdfStage, UdfError> {
    let spec = UdfSpec::new(udf_module("py_hostile"))
        .with_config(serde_json::json!({ "misbehave": misbehave }))
        .with_limits(limits);
    UdfRuntime::new()
        .unwrap()
        .load(&spec, Kind::Transform, sample().schema())
}

fn limits(timeout: Duration) -> UdfLimits {
    let mut limits = UdfLimits::default();
    limits.timeout = timeout;
    limits
}

/// Runs the hostile component's `process` once on the sample, expecting a failure.
fn failure(misbehave: &str, limits: UdfLimits) -> UdfError {
    let stage = hostile(misbehave, limits).unwrap();
    refused(stage.process(&sample(), " on test offsets 0..=2"))
}

/// The error of a call expected to fail.
fn refused<T>(result: Result<T, UdfError>) -> UdfError {
    match result {
        Ok(_) => panic!("the call succeeded, but it should have failed"),
        Err(error) => error,
    }
}

#[test]
fn a_well_behaved_component_passes_rows_through_and_reports_row_errors() {
    let stage = hostile("", UdfLimits::default()).unwrap();
    let output = stage.process(&sample(), "").unwrap();
    assert_eq!(output.batch, sample());
    let stage = hostile("reject-odd", UdfLimits::default()).unwrap();
    let output = stage.process(&sample(), "").unwrap();
    assert_eq!(output.batch.num_rows(), 2);
    assert_eq!(output.row_errors.len(), 1);
    assert_eq!(output.row_errors[0].row, 1);
    assert_eq!(output.row_errors[0].message, "row 1 is odd");
}

#[test]
fn an_endless_python_loop_is_interrupted_at_the_time_limit() {
    let stage = hostile("loop", limits(Duration::from_secs(2))).unwrap();
    let started = Instant::now();
    let error = refused(stage.process(&sample(), " on test offsets 0..=2"));
    assert!(
        matches!(*error.cause, UdfFailure::Timeout { sleep: None, .. }),
        "{error}"
    );
    let took = started.elapsed();
    assert!(
        took >= Duration::from_secs(2) && took < Duration::from_secs(10),
        "took {took:?}"
    );
    let text = error.to_string();
    assert!(text.starts_with("UDF `py_hostile` ("), "{text}");
    assert!(
        text.contains("failed in process on test offsets 0..=2"),
        "{text}"
    );
}

#[test]
fn a_python_sleep_past_the_time_limit_ends_the_call_at_once() {
    let stage = hostile("sleep", limits(Duration::from_secs(2))).unwrap();
    let started = Instant::now();
    let error = refused(stage.process(&sample(), ""));
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "took {:?}",
        started.elapsed()
    );
    let text = error.to_string();
    assert!(
        matches!(*error.cause, UdfFailure::Timeout { sleep: Some(_), .. }),
        "{text}"
    );
    // CPython sleeps until an instant, so the wait asked is an hour less the time it took to ask.
    assert!(
        text.contains("the guest asked wasi:clocks/monotonic-clock to sleep 3599."),
        "{text}"
    );
}

#[test]
fn memory_growth_stops_at_the_cap() {
    let mut limits = UdfLimits::default();
    limits.memory_bytes = 128 << 20;
    let error = failure("grow", limits);
    assert!(
        matches!(*error.cause, UdfFailure::MemoryCap { cap, .. } if cap == 128 << 20),
        "{error}"
    );
}

#[test]
fn an_exception_in_process_is_the_udfs_error_with_its_type_and_line() {
    let error = failure("raise", UdfLimits::default());
    let text = error.to_string();
    assert!(matches!(*error.cause, UdfFailure::Guest(_)), "{text}");
    assert!(
        text.contains("KeyError in process: 'no such account' (at app.py:"),
        "{text}"
    );
    let error = refused(hostile("raise-in-init", UdfLimits::default()));
    let text = error.to_string();
    assert!(text.contains("failed in init"), "{text}");
    assert!(
        text.contains("RuntimeError in init: init refused on purpose"),
        "{text}"
    );
}

#[test]
fn a_value_of_the_wrong_type_or_out_of_range_fails_the_call_and_names_what_was_wrong() {
    let error = failure("wrong-type", UdfLimits::default());
    let text = error.to_string();
    assert!(
        text.ends_with(
            "the UDF reported: process returned a str at row 0 of column `n`, which takes int or None"
        ),
        "{text}"
    );
    let error = failure("overflow", UdfLimits::default());
    let text = error.to_string();
    assert!(
        text.ends_with(
            "the UDF reported: process returned 300 at row 1 of column `small`: signed char is \
             greater than maximum"
        ),
        "{text}"
    );
}

/// Every type the interface carries, with nulls, extremes, empty and non-ASCII values, sliced so that
/// the buffers start at an offset.
fn every_type() -> RecordBatch {
    use arrow_array::{
        BinaryArray, BooleanArray, Date32Array, Float32Array, Float64Array, Int16Array, Int32Array,
        Int8Array, TimestampMicrosecondArray, UInt16Array, UInt32Array, UInt64Array, UInt8Array,
    };
    let columns: Vec<(&str, ArrayRef)> = vec![
        (
            "flag",
            Arc::new(BooleanArray::from(vec![
                None,
                Some(true),
                None,
                Some(false),
                Some(true),
            ])),
        ),
        (
            "i8",
            Arc::new(Int8Array::from(vec![
                Some(0),
                Some(i8::MIN),
                None,
                Some(i8::MAX),
                Some(-1),
            ])),
        ),
        (
            "i16",
            Arc::new(Int16Array::from(vec![
                Some(0),
                Some(i16::MIN),
                Some(i16::MAX),
                None,
                Some(2),
            ])),
        ),
        (
            "i32",
            Arc::new(Int32Array::from(vec![
                Some(0),
                None,
                Some(i32::MIN),
                Some(i32::MAX),
                Some(3),
            ])),
        ),
        (
            "i64",
            Arc::new(Int64Array::from(vec![
                Some(0),
                Some(i64::MIN),
                Some(i64::MAX),
                Some(4),
                None,
            ])),
        ),
        (
            "u8",
            Arc::new(UInt8Array::from(vec![
                Some(0),
                Some(u8::MAX),
                None,
                Some(1),
                Some(2),
            ])),
        ),
        (
            "u16",
            Arc::new(UInt16Array::from(vec![
                Some(0),
                Some(u16::MAX),
                Some(1),
                None,
                Some(2),
            ])),
        ),
        (
            "u32",
            Arc::new(UInt32Array::from(vec![
                Some(0),
                Some(u32::MAX),
                Some(1),
                Some(2),
                None,
            ])),
        ),
        (
            "u64",
            Arc::new(UInt64Array::from(vec![
                Some(0),
                Some(u64::MAX),
                None,
                Some(1),
                Some(2),
            ])),
        ),
        (
            "f32",
            Arc::new(Float32Array::from(vec![
                Some(0.0),
                Some(-1.5),
                Some(f32::MAX),
                None,
                Some(1e-30),
            ])),
        ),
        (
            "f64",
            Arc::new(Float64Array::from(vec![
                Some(0.0),
                Some(f64::MIN),
                None,
                Some(0.1),
                Some(1e300),
            ])),
        ),
        (
            "day",
            Arc::new(Date32Array::from(vec![
                Some(0),
                Some(-1),
                Some(20_000),
                None,
                Some(1),
            ])),
        ),
        (
            "at",
            Arc::new(
                TimestampMicrosecondArray::from(vec![
                    Some(0),
                    None,
                    Some(1_700_000_000_000_000),
                    Some(-1),
                    Some(1),
                ])
                .with_timezone("Europe/Paris"),
            ),
        ),
        (
            "ascii",
            Arc::new(StringArray::from(vec![
                Some("x"),
                Some(""),
                None,
                Some("abc"),
                Some("z"),
            ])),
        ),
        (
            "text",
            Arc::new(StringArray::from(vec![
                Some("zoë"),
                None,
                Some(""),
                Some("日本"),
                Some("a"),
            ])),
        ),
        (
            "raw",
            Arc::new(BinaryArray::from(vec![
                Some(&b"\x00"[..]),
                Some(b""),
                None,
                Some(b"\xff\xfe"),
                Some(b"ok"),
            ])),
        ),
    ];
    RecordBatch::try_from_iter(columns).unwrap().slice(1, 4)
}

/// `n` transactions for fraud-flagged: every third flagged, every seventh surname null.
fn transactions(n: usize) -> RecordBatch {
    use arrow_array::Int32Array;
    let columns: Vec<(&str, ArrayRef)> = vec![
        (
            "name",
            Arc::new(StringArray::from_iter_values(
                (0..n).map(|i| format!("name-{i}")),
            )),
        ),
        (
            "surname",
            Arc::new(StringArray::from_iter(
                (0..n).map(|i| (i % 7 != 0).then(|| format!("sürname-{i}"))),
            )),
        ),
        (
            "flag",
            Arc::new(Int32Array::from_iter_values(
                (0..n).map(|i| (i % 3 == 0) as i32),
            )),
        ),
        ("n", Arc::new(Int64Array::from_iter_values(0..n as i64))),
    ];
    RecordBatch::try_from_iter(columns).unwrap()
}

#[test]
fn the_same_rust_udf_as_a_component_and_as_a_core_module_gives_the_same_rows() {
    let input = transactions(5_000);
    let runtime = UdfRuntime::new().unwrap();
    let run = |module: &str| {
        let spec = UdfSpec::new(udf_module(module));
        let stage = runtime
            .load(&spec, Kind::Transform, input.schema())
            .unwrap();
        stage.process(&input, "").unwrap().batch
    };
    let core = run("fraud_flagged");
    assert_eq!(core.num_rows(), 1_667);
    assert_eq!(run("fraud_flagged_component"), core);
    assert_eq!(run("py_fraud_flagged"), core);
}

#[test]
fn every_type_crosses_into_python_and_back_unchanged() {
    let input = every_type();
    let spec = UdfSpec::new(udf_module("py_hostile"));
    let stage = UdfRuntime::new()
        .unwrap()
        .load(&spec, Kind::Transform, input.schema())
        .unwrap();
    assert_eq!(stage.process(&input, "").unwrap().batch, input);
}

#[test]
fn output_past_max_output_is_refused() {
    let mut limits = UdfLimits::default();
    limits.max_output_bytes = 1 << 20;
    let error = failure("huge", limits);
    assert!(
        matches!(*error.cause, UdfFailure::OutputTooLarge { cap, .. } if cap == 1 << 20),
        "{error}"
    );
}

#[test]
fn a_component_sees_no_files_environment_or_network() {
    let seen = |misbehave: &str| -> String {
        let stage = hostile(misbehave, UdfLimits::default()).unwrap();
        let output = stage.process(&sample(), "").unwrap();
        let column = output
            .batch
            .column(0)
            .as_any()
            .downcast_ref::<StringArray>()
            .unwrap();
        column.value(0).to_string()
    };
    assert!(seen("files").starts_with("refused: "), "{}", seen("files"));
    assert!(seen("env").starts_with("0 variables"), "{}", seen("env"));
    assert!(
        seen("network").starts_with("refused: "),
        "{}",
        seen("network")
    );
}

#[test]
fn a_transform_component_used_as_a_deserializer_is_refused_before_it_runs() {
    let spec = UdfSpec::new(udf_module("py_fraud_flagged"));
    let error = refused(UdfRuntime::new().unwrap().load(
        &spec,
        Kind::Deserializer,
        sample().schema(),
    ));
    assert_eq!(
        error.cause.to_string(),
        "the component is a transform, but it is used as a deserializer"
    );
}

/// Builds a Python transform that copies `n` and adds `v` = `version` into `dir/<file>`, with the
/// componentize-py that `.ci/install-guest-toolchains` installs.
fn build_versioned_python(dir: &std::path::Path, version: i64, file: &str) -> std::path::PathBuf {
    let source = dir.join(format!("v{version}"));
    std::fs::create_dir_all(&source).unwrap();
    std::fs::write(
        source.join("app.py"),
        format!(
            "import weir_udf\nfrom weir_udf import Field, INT64\n\n\
             class Versioned:\n    def init(self, config, schema):\n        \
             return [Field('n', INT64), Field('v', INT64)]\n\n    \
             def process(self, columns):\n        \
             return {{'n': columns['n'], 'v': [{version}] * len(columns['n'])}}\n\n\
             Transform = weir_udf.transform(Versioned)\n"
        ),
    )
    .unwrap();
    let home = std::env::var("HOME").unwrap();
    let componentize_py =
        std::path::Path::new(&home).join(".cache/weir/componentize-py-0.25.1/bin/componentize-py");
    let staged = dir.join(format!("{file}.v{version}"));
    let status = std::process::Command::new(&componentize_py)
        .current_dir(workspace())
        .args(["-d", "wit", "-w", "transform-udf", "componentize", "app"])
        .args(["-p", "guest-sdk/python", "-p"])
        .arg(&source)
        .arg("-o")
        .arg(&staged)
        .stdout(std::process::Stdio::null())
        .status()
        .unwrap_or_else(|e| {
            panic!(
                "{}: {e} (run .ci/install-guest-toolchains)",
                componentize_py.display()
            )
        });
    assert!(status.success());
    staged
}

#[tokio::test(flavor = "multi_thread")]
async fn a_running_pipeline_reloads_a_new_python_version_between_batches() {
    use super::reload::{run_with_reload, versioned_pipeline, wait_for_rows};
    let dir = scratch_dir();
    let (v1, v2) = std::thread::scope(|scope| {
        let v1 = scope.spawn(|| build_versioned_python(&dir, 1, "versioned.wasm"));
        let v2 = build_versioned_python(&dir, 2, "versioned.wasm");
        (v1.join().unwrap(), v2)
    });
    std::fs::rename(&v1, dir.join("versioned.wasm")).unwrap();
    let broker = mock_cluster();
    broker.create_topic("numbers", 1);
    broker.create_topic("out", 1);
    let text = versioned_pipeline(&dir.join("versioned.wasm"));
    let (send, stop) = run_with_reload(&broker, &dir, &text);
    send(0..10);
    wait_for_rows(&broker.bootstrap, "out", 10).await;
    std::fs::rename(&v2, dir.join("versioned.wasm")).unwrap();
    // The check runs every second; compiling the new 19 MB component takes seconds more.
    let mut rows = Vec::new();
    for round in 0..60 {
        send(10 + round..11 + round);
        rows = wait_for_rows(&broker.bootstrap, "out", 11 + round as usize).await;
        if rows.iter().any(|r| r.ends_with("\"v\":2}")) {
            break;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let summary = stop().await.unwrap();
    rows.sort_by_key(|r| r[5..r.find(',').unwrap()].parse::<i64>().unwrap());
    let first_v2 = rows
        .iter()
        .position(|r| r.ends_with("\"v\":2}"))
        .expect("version 2 was never swapped in");
    assert!(first_v2 >= 10, "{rows:?}");
    assert_eq!(summary.input_rows as usize, rows.len());
    for (n, row) in rows.iter().enumerate() {
        let v = if n < first_v2 { 1 } else { 2 };
        assert_eq!(
            row,
            &format!("{{\"n\":{n},\"v\":{v}}}"),
            "each record once, by one version"
        );
    }
}

/// componentize-py 0.25 leaks every binary value a Python UDF returns (600 KB a call here, so a 64 MiB cap
/// is reached after 88 calls); an instance whose memory passes half the cap is replaced after its call, so
/// a long run goes on.
#[test]
fn an_instance_that_leaks_memory_is_replaced_before_it_reaches_the_cap() {
    let mut limits = UdfLimits::default();
    limits.memory_bytes = 64 << 20;
    let spec = UdfSpec::new(udf_module("py_hostile")).with_limits(limits);
    let value = vec![7u8; 600_000];
    let batch = RecordBatch::try_from_iter([(
        "b",
        Arc::new(arrow_array::BinaryArray::from(vec![Some(&value[..])])) as ArrayRef,
    )])
    .unwrap();
    let stage = UdfRuntime::new()
        .unwrap()
        .load(&spec, Kind::Transform, batch.schema())
        .unwrap();
    for call in 0..300 {
        let output = stage
            .process(&batch, "")
            .unwrap_or_else(|e| panic!("call {call}: {e}"));
        assert_eq!(output.batch, batch);
    }
}
