//! UDFs as WebAssembly components (`wit/weir-udf.wit`): Python UDFs in a pipeline are exact, the same
//! transform gives the same rows in Rust (core module and component), Python and JavaScript, every type
//! crosses into each language and back, and a new Python or JavaScript version is picked up under
//! `--reload`. The limits and sandbox are in `component_limits.rs`.

use std::sync::Arc;
use std::time::Duration;

use arrow_array::{ArrayRef, Int64Array, RecordBatch, StringArray};
use weir::internal::demo::{demo_records, MALFORMED_EVERY};
use weir::internal::Kind;
use weir::{UdfRuntime, UdfSpec};
use weir_tests::*;

use super::component_limits::{refused, sample};
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

/// Loads `module` as a transform of `input`'s schema with `config` and runs it on `input`.
fn run_transform(module: &str, config: serde_json::Value, input: &RecordBatch) -> RecordBatch {
    let spec = UdfSpec::new(udf_module(module)).with_config(config);
    let stage = UdfRuntime::new()
        .unwrap()
        .load(&spec, Kind::Transform, input.schema())
        .unwrap_or_else(|e| panic!("{module}: {e}"));
    stage
        .process(input, "")
        .unwrap_or_else(|e| panic!("{module}: {e}"))
        .batch
}

#[test]
fn fraud_flagged_gives_the_same_rows_in_every_language_and_kind_of_file() {
    let input = transactions(5_000);
    let core = run_transform("fraud_flagged", serde_json::json!({}), &input);
    assert_eq!(core.num_rows(), 1_667);
    for module in [
        "fraud_flagged_component",
        "py_fraud_flagged",
        "js_fraud_flagged",
    ] {
        let output = run_transform(module, serde_json::json!({}), &input);
        assert!(output == core, "{module} differs from the core module");
    }
}

#[test]
fn the_javascript_filter_keeps_the_rows_the_rust_one_keeps() {
    let input = transactions(2_000);
    for config in [
        serde_json::json!({"column": "n", "greater_than": 1500}),
        serde_json::json!({"column": "flag", "equals": 1}),
        serde_json::json!({"column": "surname", "equals": "sürname-8"}),
    ] {
        let rust = run_transform("filter", config.clone(), &input);
        assert!(rust.num_rows() > 0, "{config}");
        assert_eq!(
            run_transform("js_filter", config.clone(), &input),
            rust,
            "{config}"
        );
    }
}

#[test]
fn every_type_crosses_into_python_and_javascript_and_back_unchanged() {
    let input = every_type();
    for module in ["py_hostile", "js_hostile"] {
        let output = run_transform(module, serde_json::json!({}), &input);
        assert!(output == input, "{module}: {output:?}");
    }
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

/// The interpreted languages a component UDF can be written in, for the `--reload` test.
#[derive(Clone, Copy, Debug)]
enum Language {
    Python,
    JavaScript,
}

#[test]
fn a_component_built_for_another_major_version_of_the_world_is_refused_before_it_runs() {
    let dir = scratch_dir();
    let module = wat_module(
        &dir,
        "future",
        r#"(component
             (instance $udf)
             (export "weir:udf/transform@2.0.0" (instance $udf)))"#,
    );
    let error = refused(UdfRuntime::new().unwrap().load(
        &UdfSpec::new(module),
        Kind::Transform,
        sample().schema(),
    ));
    assert_eq!(
        error.cause.to_string(),
        "the component is built for the Weir UDF world weir:udf@2.0.0 (export `weir:udf/transform@2.0.0`), \
         but this host supports weir:udf@1.x; rebuild it against a matching wit/weir-udf.wit"
    );
}

/// Builds a transform in `language` that copies `n` and adds `v` = `version` into `dir/<file>.v<version>`,
/// with the toolchain that `.ci/install-guest-toolchains` installs.
fn build_versioned(
    language: Language,
    dir: &std::path::Path,
    version: i64,
    file: &str,
) -> std::path::PathBuf {
    let source = dir.join(format!("v{version}"));
    std::fs::create_dir_all(&source).unwrap();
    let staged = dir.join(format!("{file}.v{version}"));
    let home = std::path::PathBuf::from(std::env::var("HOME").unwrap());
    let mut command = match language {
        Language::Python => {
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
            let mut command = std::process::Command::new(
                home.join(".cache/weir/componentize-py-0.25.1/bin/componentize-py"),
            );
            command
                .args(["-d", "wit", "-w", "transform-udf", "componentize", "app"])
                .args(["-p", "guest-sdk/python", "-p"])
                .arg(&source)
                .arg("-o");
            command
        }
        Language::JavaScript => {
            // ComponentizeJS resolves imports from the source's folder, so the kit goes beside it.
            std::fs::copy(
                workspace().join("guest-sdk/js/weir-udf.js"),
                source.join("weir-udf.js"),
            )
            .unwrap();
            std::fs::write(
                source.join("app.js"),
                format!(
                    "import {{ weirTransform, field, INT64 }} from \"./weir-udf.js\";\n\
                     class Versioned {{\n  \
                     init(config, schema) {{ return [field(\"n\", INT64), field(\"v\", INT64)]; }}\n  \
                     process(columns) {{ return {{ n: columns.n, v: columns.n.map(() => {version}n) }}; }}\n\
                     }}\n\
                     export const transform = weirTransform(Versioned);\n"
                ),
            )
            .unwrap();
            let mut command = std::process::Command::new("node");
            command
                .arg("scripts/componentize-js.mjs")
                .arg(source.join("app.js"))
                .arg("transform-udf");
            command
        }
    };
    let status = command
        .arg(&staged)
        .current_dir(workspace())
        .stdout(std::process::Stdio::null())
        .status()
        .unwrap_or_else(|e| {
            panic!("building {language:?}: {e} (run .ci/install-guest-toolchains)")
        });
    assert!(
        status.success(),
        "building the {language:?} version {version}"
    );
    staged
}

#[tokio::test(flavor = "multi_thread")]
async fn a_running_pipeline_reloads_a_new_python_version_between_batches() {
    reloads_a_new_version(Language::Python).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_running_pipeline_reloads_a_new_javascript_version_between_batches() {
    reloads_a_new_version(Language::JavaScript).await;
}

/// Runs version 1 of a `language` transform under `--reload`, swaps version 2 into its file, and checks
/// that every record comes out once, by one version, with version 2 from some point on.
async fn reloads_a_new_version(language: Language) {
    use super::reload::{run_with_reload, versioned_pipeline, wait_for_rows};
    let dir = scratch_dir();
    let (v1, v2) = std::thread::scope(|scope| {
        let v1 = scope.spawn(|| build_versioned(language, &dir, 1, "versioned.wasm"));
        let v2 = build_versioned(language, &dir, 2, "versioned.wasm");
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
