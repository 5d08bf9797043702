//! `weir run --reload`: a changed module or join table is checked and swapped in between batches; a bad
//! one is refused and the running version stays; no record is dropped or processed twice across a swap.

use std::path::Path;
use std::time::Duration;

use weir::internal::Kind;
use weir::UdfRuntime;
use weir_tests::*;

/// A row-interface transform that copies `n` and adds `v` = `version`; `ddl` is what it declares.
fn versioned_wat(version: i64, ddl: &str) -> String {
    format!(
        r#"(module
  (import "weir" "output_schema" (func $output_schema (param i32 i32)))
  (import "weir" "out_copy" (func $out_copy (param i32 i32 i32)))
  (import "weir" "out_i64" (func $out_i64 (param i32 i64)))
  (import "weir" "out_row" (func $out_row))
  (memory (export "memory") 1)
  (data (i32.const 1000) "{ddl}")
  (func (export "weir_abi_v1") (result i32) (i32.const 1))
  (func (export "weir_kind") (result i32) (i32.const 2))
  (func (export "weir_init_rows") (result i32)
    (call $output_schema (i32.const 1000) (i32.const {len}))
    (i32.const 0))
  (func (export "weir_process_rows") (param $rows i32) (result i32)
    (local $row i32)
    (block $done (loop $next
      (br_if $done (i32.ge_s (local.get $row) (local.get $rows)))
      (call $out_copy (i32.const 0) (i32.const 0) (local.get $row))
      (call $out_i64 (i32.const 1) (i64.const {version}))
      (call $out_row)
      (local.set $row (i32.add (local.get $row) (i32.const 1)))
      (br $next)))
    (i32.const 0))
)"#,
        len = ddl.len()
    )
}

const DDL: &str = "n BIGINT, v BIGINT";

/// Replaces the module file in one step, as a build tool's final rename would.
fn install(dir: &Path, name: &str, wat: &str) {
    let staged = wat_module(dir, &format!("{name}.next"), wat);
    std::fs::rename(staged, dir.join(format!("{name}.wasm"))).unwrap();
}

#[test]
fn a_stage_swaps_in_a_good_version_and_refuses_a_bad_one() {
    let dir = scratch_dir();
    install(&dir, "versioned", &versioned_wat(1, DDL));
    let spec = weir::UdfSpec::new(dir.join("versioned.wasm"));
    let input = weir::parse_ddl_schema("n BIGINT").unwrap();
    let stage = UdfRuntime::new()
        .unwrap()
        .load(&spec, Kind::Transform, input)
        .unwrap();
    assert!(!stage.reload_if_changed().unwrap(), "unchanged file");

    install(&dir, "versioned", &versioned_wat(2, "n BIGINT, v STRING"));
    let refused = stage.reload_if_changed().unwrap_err().to_string();
    assert!(
        refused.contains("UDF `versioned`")
            && refused.contains("failed reloading")
            && refused.contains("the new version declares the output n: Int64, v: Utf8"),
        "{refused}"
    );
    assert!(
        !stage.reload_if_changed().unwrap(),
        "a refused file is tried once"
    );

    std::fs::write(dir.join("versioned.wasm"), b"\0asm garbage").unwrap();
    let refused = stage.reload_if_changed().unwrap_err().to_string();
    assert!(refused.contains("cannot load the module"), "{refused}");

    install(&dir, "versioned", &versioned_wat(2, DDL));
    assert!(stage.reload_if_changed().unwrap());
}

/// A pipeline reading `{"n": ...}` records from topic `numbers` through the transform `module` to topic
/// `out`, as JSON.
pub(super) fn versioned_pipeline(module: &Path) -> String {
    format!(
        r#"
[source]
kafka.bootstrap.servers = "${{BROKER}}"
subscribe = "numbers"
startingOffsets = "earliest"
[deserializer]
format = "json"
schema = "n BIGINT"
[[transform]]
udf = "{}"
[sink]
kafka.bootstrap.servers = "${{BROKER}}"
topic = "out"
format = "json"
"#,
        module.display()
    )
}

pub(super) async fn wait_for_rows(bootstrap: &str, topic: &str, rows: usize) -> Vec<String> {
    for _ in 0..300 {
        let found = values(&read_topic(bootstrap, topic).unwrap());
        if found.len() >= rows {
            return found;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{topic} did not reach {rows} rows within 30 s");
}

/// Starts the pipeline `text` (reading topic `numbers`) with `--reload`; returns a function that sends
/// `{"n": ...}` records for a range of numbers, and one that stops the run and returns its summary.
pub(super) fn run_with_reload(
    broker: &Broker,
    dir: &Path,
    text: &str,
) -> (
    impl Fn(std::ops::Range<i64>),
    impl FnOnce() -> tokio::task::JoinHandle<weir::RunSummary>,
) {
    let spec = pipeline_spec(dir, &broker.bootstrap, text).unwrap();
    let pipeline = weir::Pipeline::new(spec).unwrap().reload_modules(true);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(async move {
        let stopping = async {
            let _ = stopped.await;
        };
        pipeline.run(stopping).await.unwrap()
    });
    let bootstrap = broker.bootstrap.clone();
    let send = move |range: std::ops::Range<i64>| {
        let values: Vec<String> = range.map(|n| format!("{{\"n\":{n}}}")).collect();
        produce_to(&bootstrap, "numbers", 0, &values, &[]);
    };
    let stop = move || {
        stop.send(()).unwrap();
        running
    };
    (send, stop)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_running_pipeline_picks_up_a_new_version_between_batches() {
    let broker = mock_cluster();
    broker.create_topic("numbers", 1);
    broker.create_topic("out", 1);
    let dir = scratch_dir();
    install(&dir, "versioned", &versioned_wat(1, DDL));
    let text = versioned_pipeline(&dir.join("versioned.wasm"));
    let (send, stop) = run_with_reload(&broker, &dir, &text);

    send(0..10);
    wait_for_rows(&broker.bootstrap, "out", 10).await;
    // A version with another schema is refused; the running one keeps going.
    install(&dir, "versioned", &versioned_wat(3, "n BIGINT, v STRING"));
    tokio::time::sleep(Duration::from_secs(4)).await;
    send(10..20);
    wait_for_rows(&broker.bootstrap, "out", 20).await;
    // A good version is swapped in at the next check (every second, between batches).
    install(&dir, "versioned", &versioned_wat(2, DDL));
    tokio::time::sleep(Duration::from_secs(4)).await;
    send(20..30);
    let mut rows = wait_for_rows(&broker.bootstrap, "out", 30).await;

    let summary = stop().await.unwrap();
    assert_eq!(summary.input_rows, 30);
    rows.sort_by_key(|r| r[5..r.find(',').unwrap()].parse::<i64>().unwrap());
    let expected: Vec<String> = (0..30)
        .map(|n| format!("{{\"n\":{n},\"v\":{}}}", if n < 20 { 1 } else { 2 }))
        .collect();
    assert_eq!(
        rows, expected,
        "each record once, by the version current when its batch ran"
    );
}

/// Writes the join table `labels.csv` (n → label `{version}-n`) in one step.
fn install_table(dir: &Path, header: &str, version: &str) {
    let rows: Vec<String> = (0..40).map(|n| format!("{n},{version}-{n}")).collect();
    let staged = dir.join("labels.next");
    std::fs::write(&staged, format!("{header}\n{}\n", rows.join("\n"))).unwrap();
    std::fs::rename(staged, dir.join("labels.csv")).unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_running_pipeline_reads_a_changed_join_table_between_batches() {
    let broker = mock_cluster();
    broker.create_topic("numbers", 1);
    broker.create_topic("out", 1);
    let dir = scratch_dir();
    install_table(&dir, "n,label", "v1");
    let text = r#"
[source]
kafka.bootstrap.servers = "${BROKER}"
subscribe = "numbers"
startingOffsets = "earliest"
[deserializer]
format = "json"
schema = "n BIGINT"
[[transform]]
join = "labels.csv"
on = "n"
[sink]
kafka.bootstrap.servers = "${BROKER}"
topic = "out"
format = "json"
"#;
    let (send, stop) = run_with_reload(&broker, &dir, text);

    send(0..10);
    wait_for_rows(&broker.bootstrap, "out", 10).await;
    install_table(&dir, "n,label", "v2");
    tokio::time::sleep(Duration::from_secs(4)).await;
    send(10..20);
    wait_for_rows(&broker.bootstrap, "out", 20).await;
    // Other columns: refused, and v2 stays.
    install_table(&dir, "n,name", "v3");
    tokio::time::sleep(Duration::from_secs(4)).await;
    send(20..30);
    let mut rows = wait_for_rows(&broker.bootstrap, "out", 30).await;

    let summary = stop().await.unwrap();
    assert_eq!(summary.input_rows, 30);
    rows.sort_by_key(|r| r[5..r.find(',').unwrap()].parse::<i64>().unwrap());
    let expected: Vec<String> = (0..30)
        .map(|n| {
            let version = if n < 10 { "v1" } else { "v2" };
            format!("{{\"n\":{n},\"label\":\"{version}-{n}\"}}")
        })
        .collect();
    assert_eq!(
        rows, expected,
        "each batch joined with the table of its time"
    );
}
