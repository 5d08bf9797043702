//! A hostile component meets the same limits and sandbox as a core module, in Python and in JavaScript.
//!
//! Each language has one hostile transform, `udfs/py-hostile` and `udfs/js-hostile`, told by its config how
//! to misbehave; the cases run through the library's [`UdfRuntime`] on a small batch: no broker needed.
//! What only one language can try (Python's sleep, files, environment and network; componentize-py's
//! leak) is tested for that one.

use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow_array::{ArrayRef, Int64Array, RecordBatch, StringArray};
use weir::internal::{Kind, UdfStage};
use weir::{UdfError, UdfFailure, UdfLimits, UdfRuntime, UdfSpec};
use weir_tests::*;

/// The two guest languages of components, by the prefix of their UDF folders.
const LANGUAGES: [&str; 2] = ["py", "js"];

/// Three rows of (`n` int64, `name` utf8).
pub(crate) fn sample() -> RecordBatch {
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

/// The hostile component of `language` told to `misbehave`, loaded with `limits`.
fn hostile(language: &str, misbehave: &str, limits: UdfLimits) -> Result<UdfStage, UdfError> {
    let spec = UdfSpec::new(udf_module(&format!("{language}_hostile")))
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
fn failure(language: &str, misbehave: &str, limits: UdfLimits) -> UdfError {
    let stage = hostile(language, misbehave, limits).unwrap();
    refused(stage.process(&sample(), " on test offsets 0..=2"))
}

/// The error of a call expected to fail.
pub(crate) fn refused<T>(result: Result<T, UdfError>) -> UdfError {
    match result {
        Ok(_) => panic!("the call succeeded, but it should have failed"),
        Err(error) => error,
    }
}

#[test]
fn a_well_behaved_component_passes_rows_through_and_reports_row_errors() {
    for language in LANGUAGES {
        let stage = hostile(language, "", UdfLimits::default()).unwrap();
        let output = stage.process(&sample(), "").unwrap();
        assert_eq!(output.batch, sample(), "{language}");
        let stage = hostile(language, "reject-odd", UdfLimits::default()).unwrap();
        let output = stage.process(&sample(), "").unwrap();
        assert_eq!(output.batch.num_rows(), 2, "{language}");
        assert_eq!(output.row_errors.len(), 1, "{language}");
        assert_eq!(output.row_errors[0].row, 1, "{language}");
        assert_eq!(output.row_errors[0].message, "row 1 is odd", "{language}");
    }
}

#[test]
fn an_endless_loop_is_interrupted_at_the_time_limit() {
    for language in LANGUAGES {
        let stage = hostile(language, "loop", limits(Duration::from_secs(2))).unwrap();
        let started = Instant::now();
        let error = refused(stage.process(&sample(), " on test offsets 0..=2"));
        assert!(
            matches!(*error.cause, UdfFailure::Timeout { sleep: None, .. }),
            "{language}: {error}"
        );
        let took = started.elapsed();
        assert!(
            took >= Duration::from_secs(2) && took < Duration::from_secs(10),
            "{language}: took {took:?}"
        );
        let text = error.to_string();
        assert!(
            text.starts_with(&format!("UDF `{language}_hostile` (")),
            "{text}"
        );
        assert!(
            text.contains("failed in process on test offsets 0..=2"),
            "{text}"
        );
    }
}

#[test]
fn a_python_sleep_past_the_time_limit_ends_the_call_at_once() {
    let stage = hostile("py", "sleep", limits(Duration::from_secs(2))).unwrap();
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
    for language in LANGUAGES {
        let mut limits = UdfLimits::default();
        limits.memory_bytes = 128 << 20;
        let error = failure(language, "grow", limits);
        assert!(
            matches!(*error.cause, UdfFailure::MemoryCap { cap, .. } if cap == 128 << 20),
            "{language}: {error}"
        );
    }
}

#[test]
fn an_exception_is_the_udfs_error_with_its_type_and_line() {
    // (language, the error of `raise` in process, the error of `raise-in-init`)
    let cases = [
        (
            "py",
            "KeyError in process: 'no such account' (at app.py:",
            "RuntimeError in init: init refused on purpose",
        ),
        (
            "js",
            "TypeError in process: no such account (at app.js:",
            "RangeError in init: init refused on purpose (at app.js:",
        ),
    ];
    for (language, in_process, in_init) in cases {
        let error = failure(language, "raise", UdfLimits::default());
        let text = error.to_string();
        assert!(matches!(*error.cause, UdfFailure::Guest(_)), "{text}");
        assert!(text.contains(in_process), "{text}");
        let error = refused(hostile(language, "raise-in-init", UdfLimits::default()));
        let text = error.to_string();
        assert!(text.contains("failed in init"), "{text}");
        assert!(text.contains(in_init), "{text}");
    }
}

#[test]
fn a_value_of_the_wrong_type_or_out_of_range_fails_the_call_and_names_what_was_wrong() {
    // (language, misbehave, how the error ends)
    let cases = [
        (
            "py",
            "wrong-type",
            "process returned a str at row 0 of column `n`, which takes int or None",
        ),
        (
            "py",
            "overflow",
            "process returned 300 at row 1 of column `small`: signed char is greater than maximum",
        ),
        (
            "js",
            "wrong-type",
            "process returned a string at row 0 of column `n`, which takes bigint or null",
        ),
        (
            "js",
            "overflow",
            "process returned 300 at row 1 of column `small`, which does not fit int8",
        ),
    ];
    for (language, misbehave, ending) in cases {
        let text = failure(language, misbehave, UdfLimits::default()).to_string();
        assert!(
            text.ends_with(&format!("the UDF reported: {ending}")),
            "{text}"
        );
    }
}

#[test]
fn output_past_max_output_is_refused() {
    for language in LANGUAGES {
        let mut limits = UdfLimits::default();
        limits.max_output_bytes = 1 << 20;
        let error = failure(language, "huge", limits);
        assert!(
            matches!(*error.cause, UdfFailure::OutputTooLarge { cap, .. } if cap == 1 << 20),
            "{language}: {error}"
        );
    }
}

#[test]
fn a_python_component_sees_no_files_environment_or_network() {
    let seen = |misbehave: &str| -> String {
        let stage = hostile("py", misbehave, UdfLimits::default()).unwrap();
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

#[test]
fn what_a_component_prints_reaches_the_hosts_log_named_by_its_udf() {
    let dir = scratch_dir();
    let input = dir.join("rows.jsonl");
    std::fs::write(&input, "{\"n\": 1, \"name\": \"a\"}\n").unwrap();
    for (language, greeting) in [("py", "hello from python"), ("js", "hello from javascript")] {
        let module = udf_module(&format!("{language}_hostile"));
        let output = weir_command()
            .args(["udf", "test"])
            .arg(&module)
            .arg("--input")
            .arg(&input)
            .args(["--input-schema", "n BIGINT, name STRING"])
            .args(["--config", r#"{"misbehave": "print"}"#])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "{language}: {stderr}");
        for line in [greeting, "and from stderr"] {
            let logged = stderr
                .lines()
                .find(|l| l.contains(line))
                .unwrap_or_else(|| panic!("{language}: `{line}` is not in the log: {stderr}"));
            assert!(
                logged.contains("weir::udf") && logged.contains(&format!("{language}_hostile")),
                "{language}: {logged}"
            );
        }
    }
}

#[test]
fn a_component_importing_anything_but_wasi_is_refused_at_load_time() {
    let dir = scratch_dir();
    let module = wat_module(
        &dir,
        "foreign",
        r#"(component
             (import "acme:net/sockets@1.0.0" (instance (export "connect" (func))))
             (instance $udf)
             (export "weir:udf/transform@1.0.0" (instance $udf)))"#,
    );
    let error = refused(UdfRuntime::new().unwrap().load(
        &UdfSpec::new(module),
        Kind::Transform,
        sample().schema(),
    ));
    let message = error.to_string();
    assert!(message.contains("foreign.wasm"), "{message}");
    assert!(
        message.contains("acme:net/sockets@1.0.0")
            && message.contains("a Weir component may import only WASI 0.2"),
        "{message}"
    );
}

/// What the JavaScript kit makes of `values` (a JavaScript expression) returned in a column of `type`.
fn javascript_returns(r#type: &str, values: &str) -> Result<ArrayRef, UdfError> {
    let spec = UdfSpec::new(udf_module("js_hostile")).with_config(serde_json::json!({
        "misbehave": "return", "type": r#type, "values": values
    }));
    let stage = UdfRuntime::new()
        .unwrap()
        .load(&spec, Kind::Transform, sample().schema())?;
    let output = stage.process(&sample(), "")?;
    Ok(output.batch.column(0).clone())
}

#[test]
fn the_javascript_kit_takes_every_value_a_column_can_hold_and_refuses_the_rest() {
    use arrow_array::{BooleanArray, Float32Array, Int32Array, UInt64Array};
    let accepted: [(&str, &str, ArrayRef); 6] = [
        (
            "int64",
            "[1, 2n, null, undefined, -(2n ** 63n)]",
            Arc::new(Int64Array::from(vec![
                Some(1),
                Some(2),
                None,
                None,
                Some(i64::MIN),
            ])),
        ),
        (
            "uint64",
            "[0n, 2n ** 64n - 1n, 5]",
            Arc::new(UInt64Array::from(vec![0, u64::MAX, 5])),
        ),
        (
            "int32",
            "[1, null, -0, 2147483647, -2147483648]",
            Arc::new(Int32Array::from(vec![
                Some(1),
                None,
                Some(0),
                Some(i32::MAX),
                Some(i32::MIN),
            ])),
        ),
        (
            "float32",
            "[0.1, null, 1.5, -2]",
            Arc::new(Float32Array::from(vec![
                Some(0.1),
                None,
                Some(1.5),
                Some(-2.0),
            ])),
        ),
        (
            "boolean",
            "[true, false, null]",
            Arc::new(BooleanArray::from(vec![Some(true), Some(false), None])),
        ),
        (
            "utf8",
            "['a', null, 'é', '']",
            Arc::new(StringArray::from(vec![
                Some("a"),
                None,
                Some("é"),
                Some(""),
            ])),
        ),
    ];
    for (r#type, values, expected) in accepted {
        let column = javascript_returns(r#type, values).unwrap_or_else(|e| panic!("{values}: {e}"));
        assert_eq!(&column, &expected, "{type} {values}");
    }
    // (type, values, how the error ends)
    let refused_values = [
        (
            "int32",
            "[1, 2n]",
            "a bigint at row 1 of column `v`, which takes a whole number or null",
        ),
        (
            "int32",
            "[1, '5']",
            "a string at row 1 of column `v`, which takes a whole number or null",
        ),
        (
            "int32",
            "[true]",
            "a boolean at row 0 of column `v`, which takes a whole number or null",
        ),
        (
            "int32",
            "[1.5]",
            "a number at row 0 of column `v`, which takes a whole number or null",
        ),
        (
            "int8",
            "[127, 128]",
            "128 at row 1 of column `v`, which does not fit int8",
        ),
        (
            "int64",
            "[1n, 2 ** 63]",
            "9223372036854775808 at row 1 of column `v`, which does not fit int64",
        ),
        (
            "int64",
            "[1n, null, 'x']",
            "a string at row 2 of column `v`, which takes bigint or null",
        ),
        (
            "uint64",
            "[-1n]",
            "-1 at row 0 of column `v`, which does not fit uint64",
        ),
        (
            "float64",
            "[1, 'x']",
            "a string at row 1 of column `v`, which takes number or null",
        ),
        (
            "boolean",
            "[true, 1]",
            "a number at row 1 of column `v`, which takes boolean or null",
        ),
        (
            "utf8",
            "['a', 5]",
            "a number at row 1 of column `v`, which takes string or null",
        ),
        (
            "binary",
            "[new Uint8Array(1), 'x']",
            "a string at row 1 of column `v`, which takes Uint8Array or null",
        ),
    ];
    for (r#type, values, ending) in refused_values {
        let text = refused(javascript_returns(r#type, values)).to_string();
        assert!(
            text.ends_with(&format!("the UDF reported: process returned {ending}")),
            "{type} {values}: {text}"
        );
    }
}
