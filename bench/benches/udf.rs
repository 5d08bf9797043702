//! The UDF boundary, measured on the reference transactions:
//!
//! - `udf_call`: one call of a transform per batch size (1, 100, 1,000, 10,000 rows), for a Rust guest that
//!   exchanges Arrow IPC and for Zig and AssemblyScript guests on the row interface: per-call overhead at 1
//!   row, per-row cost at 10,000.
//! - `json_decode`: 1,000,000 transaction records deserialized in batches of 1,000, 10,000 and 100,000 by the
//!   host's built-in arrow-json decoder, the Rust WebAssembly deserializer (`json-transactions`, Arrow IPC)
//!   and the C one (`c-transactions`, row interface).
//! - `json_vs_avro`: the same 1,000,000 transactions from JSON (built-in arrow-json) and from Avro in the
//!   Confluent wire format (built-in arrow-avro), both into the same six columns, in the same batch sizes.
//! - `sql_vs_udf`: the fraud example's transform, `flag = 1` and `id = name || surname`, as the Rust
//!   WebAssembly module `fraud-flagged` and as two SQL stages (`where`, `select`), on batches of 1,000,
//!   10,000 and 100,000 decoded transactions.
//! - `component`: the fraud example's transform as the Python component `py-fraud-flagged`, the
//!   JavaScript component `js-fraud-flagged`, and the same Rust code as a component
//!   (`fraud-flagged-component`) and as a core module (`fraud-flagged`), on 1,000, 10,000 and 100,000
//!   transactions (one stage call; the default `limits.max_rows` passes 100,000 in ten slices), with
//!   `py-hostile` passing its input through as the cost of the crossing alone; the two JSON deserializers
//!   (`py-json-transactions`, `json-transactions`) on 10,000 records; one column of 10,000 values of each
//!   type crossing into Python and back; and loading each transform (with its machine code in the compile
//!   cache: read it, create the first instance, call init).
//!
//! The modules come from `bash scripts/build-udfs.sh`.

use std::path::PathBuf;

use arrow_array::RecordBatch;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use weir::internal::workload;
use weir::internal::Deserializer;
use weir::internal::{sample_records, source_schema, PartitionChunk};
use weir::internal::{Kind, SqlStage, UdfStage};
use weir::parse_ddl_schema;
use weir::DecodeFormat;
use weir::SqlSpec;
use weir::UdfRuntime;
use weir::UdfSpec;
use weir_tests::avro::{framed, transaction_schema, Schema};
use weir_tests::registry::TestRegistry;

const TRANSACTION_DDL: &str =
    "name STRING, surname STRING, amount STRING, delta_t STRING, flag INT, ts BIGINT";

fn module(name: &str) -> PathBuf {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../target/wasm32-wasip1/release")
        .join(format!("{name}.wasm"));
    assert!(
        path.exists(),
        "{} is missing: run `bash scripts/build-udfs.sh`",
        path.display()
    );
    path
}

fn udf(name: &str, config: serde_json::Value) -> UdfSpec {
    UdfSpec::new(module(name))
        .with_name(name)
        .with_config(config)
}

/// The first `n` transactions as Kafka records of one partition.
fn records(n: u64) -> PartitionChunk {
    let values: Vec<Vec<u8>> = workload::transactions(n)
        .map(|t| t.value().into_bytes())
        .collect();
    sample_records("tx", &values)
}

fn chunks(total: u64, size: u64) -> Vec<PartitionChunk> {
    let all = records(total);
    (0..total / size)
        .map(|i| all.slice((i * size) as usize..((i + 1) * size) as usize))
        .collect()
}

fn native_json() -> Deserializer {
    let format = DecodeFormat::Json {
        schema: parse_ddl_schema(TRANSACTION_DDL).unwrap(),
        permissive: false,
        corrupt_record_column: None,
        strict: false,
    };
    Deserializer::new(&format, &UdfRuntime::new().unwrap(), &source_schema(false)).unwrap()
}

fn wasm_deserializer(runtime: &UdfRuntime, name: &str) -> Deserializer {
    Deserializer::new(
        &DecodeFormat::Udf(udf(name, serde_json::json!({}))),
        runtime,
        &source_schema(false),
    )
    .unwrap()
}

fn udf_call(c: &mut Criterion) {
    let runtime = UdfRuntime::new().unwrap();
    let decoder = native_json();
    let load = |name: &str, config, input: &RecordBatch| -> UdfStage {
        runtime
            .load(&udf(name, config), Kind::Transform, input.schema())
            .unwrap()
    };
    let mut group = c.benchmark_group("udf_call");
    for rows in [1u64, 100, 1_000, 10_000] {
        let (transactions, _) = decoder.decode(&records(rows)).unwrap();
        let rust = load("fraud_flagged", serde_json::json!({}), &transactions);
        let zig = load("zig_amount_cents", serde_json::json!({}), &transactions);
        let with_cents = zig.process(&transactions, "").unwrap().batch;
        let assemblyscript = load(
            "as_threshold",
            serde_json::json!({"min_cents": 50_000}),
            &with_cents,
        );
        group.throughput(Throughput::Elements(rows));
        group.bench_with_input(
            BenchmarkId::new("rust_ipc_fraud_flagged", rows),
            &transactions,
            |b, batch| b.iter(|| rust.process(batch, "").unwrap()),
        );
        group.bench_with_input(
            BenchmarkId::new("zig_rows_amount_cents", rows),
            &transactions,
            |b, batch| b.iter(|| zig.process(batch, "").unwrap()),
        );
        group.bench_with_input(
            BenchmarkId::new("as_rows_threshold", rows),
            &with_cents,
            |b, batch| b.iter(|| assemblyscript.process(batch, "").unwrap()),
        );
    }
    group.finish();
}

fn json_decode(c: &mut Criterion) {
    const TOTAL: u64 = 1_000_000;
    let runtime = UdfRuntime::new().unwrap();
    let decoders = [
        ("native_arrow_json", native_json()),
        (
            "wasm_rust_ipc",
            wasm_deserializer(&runtime, "json_transactions"),
        ),
        ("wasm_c_rows", wasm_deserializer(&runtime, "c_transactions")),
    ];
    let mut group = c.benchmark_group("json_decode");
    group.sample_size(10);
    group.throughput(Throughput::Elements(TOTAL));
    for size in [1_000u64, 10_000, 100_000] {
        let input = chunks(TOTAL, size);
        for (name, decoder) in &decoders {
            group.bench_with_input(BenchmarkId::new(*name, size), &input, |b, input| {
                b.iter(|| decode_every_chunk(decoder, input, TOTAL))
            });
        }
    }
    group.finish();
}

/// Decodes every chunk of `input`, which must hold `total` good records.
fn decode_every_chunk(decoder: &Deserializer, input: &[PartitionChunk], total: u64) {
    let mut rows = 0;
    for chunk in input {
        let (batch, failures) = decoder.decode(chunk).unwrap();
        assert!(failures.is_empty());
        rows += batch.num_rows();
    }
    assert_eq!(rows as u64, total);
}

/// `json_vs_avro`: the same transactions from JSON (arrow-json) and from Confluent-framed Avro
/// (arrow-avro, the writer schema fetched once from a test registry); the input sizes are printed first.
fn json_vs_avro(c: &mut Criterion) {
    const TOTAL: u64 = 1_000_000;
    let registry = TestRegistry::start(&[("tx-value", vec![transaction_schema(1)])]);
    let schema = Schema::parse_str(&transaction_schema(1)).unwrap();
    let json: Vec<Vec<u8>> = workload::transactions(TOTAL)
        .map(|t| t.value().into_bytes())
        .collect();
    let avro: Vec<Vec<u8>> = workload::transactions(TOTAL)
        .map(|t| framed(&schema, registry.ids[0], &t, None))
        .collect();
    let bytes = |values: &[Vec<u8>]| values.iter().map(Vec::len).sum::<usize>();
    println!(
        "input: {TOTAL} records, JSON {} bytes, Avro {} bytes",
        bytes(&json),
        bytes(&avro)
    );
    let avro_decoder = Deserializer::new(
        &DecodeFormat::Avro {
            registry: registry.url.clone(),
            reader_schema: Some(transaction_schema(1)),
            subject: None,
        },
        &UdfRuntime::new().unwrap(),
        &source_schema(false),
    )
    .unwrap();
    let decoders = [("json", native_json(), json), ("avro", avro_decoder, avro)];
    let mut group = c.benchmark_group("json_vs_avro");
    group.sample_size(10);
    group.throughput(Throughput::Elements(TOTAL));
    for size in [1_000usize, 10_000, 100_000] {
        for (name, decoder, values) in &decoders {
            let input: Vec<PartitionChunk> = values
                .chunks(size)
                .map(|c| sample_records("tx", c))
                .collect();
            group.bench_with_input(BenchmarkId::new(*name, size), &input, |b, input| {
                b.iter(|| decode_every_chunk(decoder, input, TOTAL))
            });
        }
    }
    group.finish();
}

fn sql_vs_udf(c: &mut Criterion) {
    let runtime = UdfRuntime::new().unwrap();
    let decoder = native_json();
    let mut group = c.benchmark_group("sql_vs_udf");
    for rows in [1_000u64, 10_000, 100_000] {
        let (transactions, _) = decoder.decode(&records(rows)).unwrap();
        let module = runtime
            .load(
                &udf("fraud_flagged", serde_json::json!({})),
                Kind::Transform,
                transactions.schema(),
            )
            .unwrap();
        let flagged = SqlStage::plan(
            &SqlSpec::filter("flag = 1"),
            "transform[0]",
            &transactions.schema(),
        )
        .unwrap();
        let with_id = SqlStage::plan(
            &SqlSpec::select(["name || surname AS id", "*"]),
            "transform[1]",
            flagged.output_schema(),
        )
        .unwrap();
        // Both give the same rows, or the comparison would mean nothing.
        let by_sql = with_id
            .process(&flagged.process(&transactions).unwrap())
            .unwrap();
        assert_eq!(module.process(&transactions, "").unwrap().batch, by_sql);
        group.throughput(Throughput::Elements(rows));
        group.bench_with_input(
            BenchmarkId::new("wasm_fraud_flagged", rows),
            &transactions,
            |b, batch| b.iter(|| module.process(batch, "").unwrap()),
        );
        group.bench_with_input(
            BenchmarkId::new("sql_where_select", rows),
            &transactions,
            |b, batch| b.iter(|| with_id.process(&flagged.process(batch).unwrap()).unwrap()),
        );
    }
    group.finish();
}

fn component(c: &mut Criterion) {
    let runtime = UdfRuntime::new().unwrap();
    let decoder = native_json();
    let mut group = c.benchmark_group("component");
    group.sample_size(10);
    for rows in [1_000u64, 10_000, 100_000] {
        let (transactions, _) = decoder.decode(&records(rows)).unwrap();
        let load = |name: &str| {
            runtime
                .load(
                    &udf(name, serde_json::json!({})),
                    Kind::Transform,
                    transactions.schema(),
                )
                .unwrap()
        };
        let (python, javascript, component, rust) = (
            load("py_fraud_flagged"),
            load("js_fraud_flagged"),
            load("fraud_flagged_component"),
            load("fraud_flagged"),
        );
        // All give the same rows, or the comparison would mean nothing.
        let expected = rust.process(&transactions, "").unwrap().batch;
        for stage in [&python, &javascript, &component] {
            assert_eq!(stage.process(&transactions, "").unwrap().batch, expected);
        }
        // py-hostile with no config returns its input: what crossing the interface costs, both ways.
        let passthrough = load("py_hostile");
        assert_eq!(
            passthrough.process(&transactions, "").unwrap().batch,
            transactions
        );
        group.throughput(Throughput::Elements(rows));
        for (name, stage) in [
            ("python_fraud_flagged", &python),
            ("python_passthrough", &passthrough),
            ("javascript_fraud_flagged", &javascript),
            ("rust_component_fraud_flagged", &component),
            ("rust_fraud_flagged", &rust),
        ] {
            group.bench_with_input(BenchmarkId::new(name, rows), &transactions, |b, batch| {
                b.iter(|| stage.process(batch, "").unwrap())
            });
        }
    }
    let input = records(10_000);
    group.throughput(Throughput::Elements(10_000));
    for name in ["py_json_transactions", "json_transactions"] {
        let decoder = wasm_deserializer(&runtime, name);
        assert_eq!(decoder.decode(&input).unwrap().0.num_rows(), 10_000);
        group.bench_with_input(BenchmarkId::new(name, 10_000), &input, |b, input| {
            b.iter(|| decoder.decode(input).unwrap())
        });
    }
    crossing(&runtime, &mut group);
    let (transactions, _) = decoder.decode(&records(1)).unwrap();
    group.throughput(Throughput::Elements(1));
    for name in [
        "py_fraud_flagged",
        "js_fraud_flagged",
        "fraud_flagged_component",
        "fraud_flagged",
    ] {
        let spec = udf(name, serde_json::json!({}));
        group.bench_function(BenchmarkId::new("load", name), |b| {
            b.iter(|| {
                runtime
                    .load(&spec, Kind::Transform, transactions.schema())
                    .unwrap()
            })
        });
    }
    group.finish();
}

/// What one column of 10,000 values costs to cross into a Python component and back, by type
/// (`py-hostile` passing its input through): the per-row cost of each type in docs/benchmarks.md.
fn crossing(
    runtime: &UdfRuntime,
    group: &mut criterion::BenchmarkGroup<criterion::measurement::WallTime>,
) {
    use arrow_array::{
        ArrayRef, BinaryArray, BooleanArray, Float64Array, Int64Array, StringArray,
        TimestampMillisecondArray,
    };
    use std::sync::Arc;
    const ROWS: usize = 10_000;
    let batch = |array: ArrayRef| RecordBatch::try_from_iter([("c", array)]).unwrap();
    let ints = || (0..ROWS as i64).map(|i| i * 7_919 + 1_000_000);
    let text = |i: usize| format!("account-{i:06}-{}", "x".repeat(45));
    let cases = [
        (
            "int64",
            batch(Arc::new(Int64Array::from_iter_values(ints()))),
        ),
        (
            "int64_10pct_null",
            batch(Arc::new(Int64Array::from_iter(
                ints().map(|i| (i % 10 != 0).then_some(i)),
            ))),
        ),
        (
            "float64",
            batch(Arc::new(Float64Array::from_iter_values(
                ints().map(|i| i as f64 / 100.0),
            ))),
        ),
        (
            "timestamp_ms",
            batch(Arc::new(
                TimestampMillisecondArray::from_iter_values(ints()),
            )),
        ),
        (
            "bool",
            batch(Arc::new(BooleanArray::from_iter(
                (0..ROWS).map(|i| Some(i % 3 == 0)),
            ))),
        ),
        (
            "utf8_ascii_60",
            batch(Arc::new(StringArray::from_iter_values((0..ROWS).map(text)))),
        ),
        (
            "utf8_accented_60",
            batch(Arc::new(StringArray::from_iter_values(
                (0..ROWS).map(|i| text(i).replace('x', "é")),
            ))),
        ),
        (
            "binary_60",
            batch(Arc::new(BinaryArray::from_iter_values(
                (0..ROWS).map(|i| text(i).into_bytes()),
            ))),
        ),
    ];
    group.throughput(Throughput::Elements(ROWS as u64));
    for (name, input) in cases {
        let spec = udf("py_hostile", serde_json::json!({}));
        let stage = runtime
            .load(&spec, Kind::Transform, input.schema())
            .unwrap();
        assert_eq!(stage.process(&input, "").unwrap().batch, input);
        group.bench_with_input(
            BenchmarkId::new("python_crossing", name),
            &input,
            |b, input| b.iter(|| stage.process(input, "").unwrap()),
        );
    }
}

criterion_group!(
    benches,
    udf_call,
    json_decode,
    json_vs_avro,
    sql_vs_udf,
    component
);
criterion_main!(benches);
