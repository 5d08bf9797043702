//! Every UDF failure the core data path must report clearly: the message names the UDF, its module file,
//! the records (topic-partition and offsets) and the cause, and nothing of the failed batch is written.

use std::path::Path;

use weir_tests::*;

pub(crate) struct Setup {
    pub(crate) broker: Broker,
    pub(crate) dir: std::path::PathBuf,
}

pub(crate) fn setup() -> Setup {
    let broker = mock_cluster();
    broker.create_topic("in", 1);
    broker.create_topic("out", 1);
    let values: Vec<String> = (0..5).map(|i| format!("record {i}")).collect();
    produce_to(&broker.bootstrap, "in", 0, &values, &[]);
    Setup {
        broker,
        dir: scratch_dir(),
    }
}

pub(crate) fn pipeline(transform: &Path, limits: &str) -> String {
    format!(
        r#"
[source]
kafka.bootstrap.servers = "${{BROKER}}"
subscribe = "in"
startingOffsets = "earliest"
endingOffsets = "latest"
[deserializer]
format = "string"
[[transform]]
udf = "{}"
name = "hostile"
{limits}
[sink]
kafka.bootstrap.servers = "${{BROKER}}"
topic = "out"
format = "json"
"#,
        transform.display()
    )
}

/// Runs the transform and returns the error message, checking that nothing was written.
pub(crate) async fn failure(setup: &Setup, module: &Path, limits: &str) -> String {
    let spec = pipeline_spec(
        &setup.dir,
        &setup.broker.bootstrap,
        &pipeline(module, limits),
    )
    .unwrap();
    let error = run_pipeline(spec)
        .await
        .expect_err("the pipeline should fail");
    assert!(
        read_topic(&setup.broker.bootstrap, "out")
            .unwrap()
            .is_empty(),
        "a failed batch wrote output"
    );
    format!("{error:#}")
}

pub(crate) fn hostile(setup: &Setup, name: &str, body: &str) -> std::path::PathBuf {
    wat_module(
        &setup.dir,
        name,
        &echo_transform_wat("weir_abi_v1", 2, body),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn the_echo_module_itself_works() {
    let setup = setup();
    let module = hostile(&setup, "echo", "");
    let spec = pipeline_spec(&setup.dir, &setup.broker.bootstrap, &pipeline(&module, "")).unwrap();
    let summary = run_pipeline(spec).await.unwrap();
    assert_eq!(summary.output_rows, 5);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_module_is_named() {
    let setup = setup();
    let message = failure(&setup, &setup.dir.join("nope.wasm"), "").await;
    assert!(
        message.contains("UDF `hostile`") && message.contains("nope.wasm"),
        "{message}"
    );
    assert!(message.contains("cannot load the module"), "{message}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wrong_abi_version_is_refused_before_instantiation() {
    let setup = setup();
    let module = wat_module(&setup.dir, "v2", &echo_transform_wat("weir_abi_v2", 2, ""));
    let message = failure(&setup, &module, "").await;
    assert!(
        message.contains("built for Weir UDF ABI v2") && message.contains("supports v1"),
        "{message}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_export_and_a_wrong_kind_are_named() {
    let setup = setup();
    let wat = echo_transform_wat("weir_abi_v1", 2, "")
        .replace("(export \"weir_process\")", "(export \"weir_proc\")");
    let module = wat_module(&setup.dir, "no-process", &wat);
    let message = failure(&setup, &module, "").await;
    assert!(
        message.contains("missing export `weir_process`"),
        "{message}"
    );

    let module = wat_module(
        &setup.dir,
        "deserializer",
        &echo_transform_wat("weir_abi_v1", 1, ""),
    );
    let message = failure(&setup, &module, "").await;
    assert!(
        message.contains("is a deserializer, but it is used as a transform"),
        "{message}"
    );

    let module = wat_module(
        &setup.dir,
        "not-weir",
        "(module (memory (export \"memory\") 1))",
    );
    let message = failure(&setup, &module, "").await;
    assert!(message.contains("not a Weir UDF"), "{message}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_trap_names_the_udf_and_the_offsets() {
    let setup = setup();
    let module = hostile(&setup, "trap", "(unreachable)");
    let message = failure(&setup, &module, "").await;
    assert!(message.contains("UDF `hostile`"), "{message}");
    assert!(message.contains("on in-0 offsets 0..=4"), "{message}");
    // The cause first, where it is, on one line; the backtrace goes to the debug log.
    assert!(
        message.contains("the guest trapped: wasm `unreachable` instruction executed, at "),
        "{message}"
    );
    assert!(
        !message.contains('\n') && !message.contains("backtrace"),
        "{message}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_endless_loop_is_interrupted_by_the_timeout() {
    let setup = setup();
    let module = hostile(&setup, "loop", "(loop $forever (br $forever))");
    let started = std::time::Instant::now();
    let message = failure(&setup, &module, "limits = { timeout = \"300ms\" }").await;
    assert!(message.contains("longer than the 300ms limit"), "{message}");
    assert!(started.elapsed() < std::time::Duration::from_secs(60));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_memory_bomb_hits_the_cap() {
    let setup = setup();
    let module = hostile(
        &setup,
        "bomb",
        "(loop $more (drop (memory.grow (i32.const 16))) (br $more))",
    );
    let message = failure(&setup, &module, "limits = { memory = \"8MiB\" }").await;
    assert!(
        message.contains("past the 8388608-byte cap (limits.memory)"),
        "{message}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_large_initial_memory_is_named_as_declared_not_as_grown() {
    let setup = setup();
    let wat = echo_transform_wat("weir_abi_v1", 2, "").replacen(
        "(memory (export \"memory\") 2)",
        "(memory (export \"memory\") 60000)",
        1,
    );
    let module = wat_module(&setup.dir, "roomy", &wat);
    let message = failure(&setup, &module, "").await;
    assert!(
        message.contains(
            "the module declares an initial memory of 3932160000 bytes, past the 268435456-byte cap (limits.memory)"
        ),
        "{message}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_pointer_from_weir_alloc_is_printed_unsigned() {
    let setup = setup();
    let wat = echo_transform_wat("weir_abi_v1", 2, "").replacen(
        "    (local.get $p))\n",
        "    (i32.const 0xFFFFFF00))\n",
        1,
    );
    let module = wat_module(&setup.dir, "far", &wat);
    let message = failure(&setup, &module, "").await;
    assert!(
        message.contains("`weir_alloc` returned 4294967040 for 2 bytes, which lie outside the guest's 131072 bytes of memory"),
        "{message}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn guest_errors_and_malformed_output_are_reported() {
    let setup = setup();
    let says_no = "(i32.store (local.get $ret) (i32.const 512)) (i32.store offset=4 (local.get $ret) (i32.const 17)) (return (i32.const 1))";
    let message = failure(&setup, &hostile(&setup, "no", says_no), "").await;
    assert!(
        message.contains("the UDF reported: the guest says no"),
        "{message}"
    );

    let garbage = "(i32.store (local.get $ret) (i32.const 512)) (i32.store offset=4 (local.get $ret) (i32.const 17)) (return (i32.const 0))";
    let message = failure(&setup, &hostile(&setup, "garbage", garbage), "").await;
    assert!(message.contains("malformed output"), "{message}");

    let huge = "(i32.store (local.get $ret) (i32.const 0)) (i32.store offset=4 (local.get $ret) (i32.const 2000000000)) (return (i32.const 0))";
    let message = failure(&setup, &hostile(&setup, "huge", huge), "").await;
    assert!(message.contains("(limits.max_output)"), "{message}");

    let status = "(i32.store (local.get $ret) (i32.const 0)) (i32.store offset=4 (local.get $ret) (i32.const 0)) (return (i32.const 7))";
    let message = failure(&setup, &hostile(&setup, "status", status), "").await;
    assert!(message.contains("returned status 7"), "{message}");
}

#[tokio::test(flavor = "multi_thread")]
async fn schemas_that_do_not_compose_are_refused_at_plan_time() {
    let setup = setup();
    // fraud_flagged needs name/surname/flag; the string deserializer gives key/value/...
    let message = failure(&setup, &udf_module("fraud_flagged"), "").await;
    assert!(
        message.contains("failed in init") && message.contains("no `name` column"),
        "{message}"
    );

    // The Kafka sink format needs a `value` column.
    let module = hostile(&setup, "echo", "");
    let text = pipeline(&module, "")
        .replace("format = \"json\"", "format = \"kafka\"")
        .replace(
            "format = \"string\"",
            "format = \"json\"\nschema = \"a STRING\"",
        );
    let spec = pipeline_spec(&setup.dir, &setup.broker.bootstrap, &text).unwrap();
    let error = run_pipeline(spec).await.unwrap_err();
    assert!(
        format!("{error:#}").contains("no `value` column"),
        "{error:#}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn what_the_guest_printed_before_a_trap_is_in_the_error() {
    let setup = setup();
    let print_then_trap = "(i32.store (i32.const 600) (i32.const 512)) (i32.store (i32.const 604) (i32.const 17)) \
                           (drop (call $fd_write (i32.const 2) (i32.const 600) (i32.const 1) (i32.const 620))) \
                           (unreachable)";
    let wat = echo_transform_wat("weir_abi_v1", 2, print_then_trap).replacen(
        "(module\n",
        "(module\n  (import \"wasi_snapshot_preview1\" \"fd_write\" (func $fd_write (param i32 i32 i32 i32) (result i32)))\n",
        1,
    );
    let module = wat_module(&setup.dir, "printer", &wat);
    let message = failure(&setup, &module, "").await;
    assert!(
        message.contains("the guest printed: the guest says no"),
        "{message}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn imports_other_than_wasi_are_refused() {
    let setup = setup();
    let wat = echo_transform_wat("weir_abi_v1", 2, "").replacen(
        "(module\n",
        "(module\n  (import \"env\" \"open_socket\" (func (param i32) (result i32)))\n",
        1,
    );
    let message = failure(&setup, &wat_module(&setup.dir, "socket", &wat), "").await;
    assert!(
        message.contains("imports `env::open_socket`, which the host does not provide"),
        "{message}"
    );
}

/// A batch larger than `limits.max_rows` is passed in slices: each call gets at most that many rows, the
/// rows come back whole and in order, and rejected records keep their index in the batch (so dead letters
/// name the right offsets).
#[test]
fn batches_are_passed_in_slices_of_max_rows() {
    let mut limits = weir::UdfLimits::default();
    limits.max_rows_per_call = 3;
    let load = |path: std::path::PathBuf, kind, input| {
        let spec = weir::UdfSpec::new(path)
            .with_name("sliced")
            .with_limits(limits);
        weir::UdfRuntime::new()
            .unwrap()
            .load(&spec, kind, input)
            .unwrap()
    };

    // A row-interface transform that answers each call with one row: the number of rows it was given.
    let dir = scratch_dir();
    let counter = wat_module(
        &dir,
        "counter",
        r#"(module
  (import "weir" "output_schema" (func $output_schema (param i32 i32)))
  (import "weir" "out_i64" (func $out_i64 (param i32 i64)))
  (import "weir" "out_row" (func $out_row))
  (memory (export "memory") 1)
  (data (i32.const 1000) "rows BIGINT")
  (func (export "weir_abi_v1") (result i32) (i32.const 1))
  (func (export "weir_kind") (result i32) (i32.const 2))
  (func (export "weir_init_rows") (result i32)
    (call $output_schema (i32.const 1000) (i32.const 11))
    (i32.const 0))
  (func (export "weir_process_rows") (param $rows i32) (result i32)
    (call $out_i64 (i32.const 0) (i64.extend_i32_s (local.get $rows)))
    (call $out_row)
    (i32.const 0)))"#,
    );
    let input = weir::parse_ddl_schema("n BIGINT").unwrap();
    let batch = arrow_array::RecordBatch::try_new(
        input.clone(),
        vec![std::sync::Arc::new(
            arrow_array::Int64Array::from_iter_values(0..10),
        )],
    )
    .unwrap();
    let calls = load(counter, weir::internal::Kind::Transform, input)
        .process(&batch, "")
        .unwrap();
    let sizes: Vec<i64> = int64s(&calls.batch, "rows");
    assert_eq!(sizes, [3, 3, 3, 1]);

    // Row errors are renumbered from each slice to the batch.
    let deserializer = load(
        udf_module("json_transactions"),
        weir::internal::Kind::Deserializer,
        weir::internal::source_schema(false),
    );
    let values: Vec<Vec<u8>> = (0..10)
        .map(|i| match i {
            4 | 8 => b"{not json".to_vec(),
            _ => format!(
                r#"{{"name":"n{i}","surname":"s","amount":"1.00","delta_t":"1","flag":0,"ts":{i}}}"#
            )
            .into_bytes(),
        })
        .collect();
    let chunk = weir::internal::sample_records("tx", &values);
    let output = deserializer.process(&chunk.batch, " of tx-0").unwrap();
    let rejected: Vec<u32> = output.row_errors.iter().map(|e| e.row).collect();
    assert_eq!(rejected, [4, 8]);
    assert_eq!(int64s(&output.batch, "ts"), [0, 1, 2, 3, 5, 6, 7, 9]);
}

fn int64s(batch: &arrow_array::RecordBatch, column: &str) -> Vec<i64> {
    use arrow_array::cast::AsArray;
    batch
        .column_by_name(column)
        .unwrap()
        .as_primitive::<arrow_array::types::Int64Type>()
        .values()
        .to_vec()
}
