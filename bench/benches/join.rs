//! Criterion benchmarks of the stream-static join (`join = "..."` in a `[[transform]]`):
//!
//! - `static_join_load`: reading and indexing a 1,000,000-row table (`account`, `segment`,
//!   `credit_limit`) from CSV and from Parquet, as `weir run` does at start and `--reload` on a change.
//! - `static_join_probe`: joining batches of 1,000, 10,000 and 100,000 rows against it, inner and left
//!   outer; half of the rows' accounts are in the table.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::{Float64Array, Int64Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use weir::internal::StaticJoin;
use weir::{JoinSpec, JoinType, TableSpec};

const TABLE_ROWS: i64 = 1_000_000;
const SEGMENTS: [&str; 4] = ["retail", "business", "private", "student"];

/// The table: accounts 0..1,000,000 with a segment and a credit limit.
fn table() -> RecordBatch {
    let schema = Arc::new(Schema::new(vec![
        Field::new("account", DataType::Int64, false),
        Field::new("segment", DataType::Utf8, false),
        Field::new("credit_limit", DataType::Int64, false),
    ]));
    let accounts = 0..TABLE_ROWS;
    let segments =
        StringArray::from_iter_values(accounts.clone().map(|a| SEGMENTS[(a % 4) as usize]));
    let limits = Int64Array::from_iter_values(accounts.clone().map(|a| 1000 + a % 9000));
    let accounts = Int64Array::from_iter_values(accounts);
    RecordBatch::try_new(
        schema,
        vec![Arc::new(accounts), Arc::new(segments), Arc::new(limits)],
    )
    .unwrap()
}

/// The table as CSV and as Parquet, written once per run to a scratch folder.
fn tables() -> (PathBuf, PathBuf) {
    let dir = std::env::temp_dir().join(format!("weir-bench-join-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let table = table();
    let csv = dir.join("accounts.csv");
    let mut out = std::io::BufWriter::new(std::fs::File::create(&csv).unwrap());
    writeln!(out, "account,segment,credit_limit").unwrap();
    for account in 0..TABLE_ROWS {
        let segment = SEGMENTS[(account % 4) as usize];
        writeln!(out, "{account},{segment},{}", 1000 + account % 9000).unwrap();
    }
    out.into_inner().unwrap().sync_all().unwrap();
    let parquet = dir.join("accounts.parquet");
    let file = std::fs::File::create(&parquet).unwrap();
    let mut writer = parquet::arrow::ArrowWriter::try_new(file, table.schema(), None).unwrap();
    writer.write(&table).unwrap();
    writer.close().unwrap();
    (csv, parquet)
}

/// `rows` stream rows; account ids spread over twice the table's range, so about half match.
fn stream(rows: usize) -> RecordBatch {
    let mut x: u64 = 42;
    let accounts: Int64Array = (0..rows)
        .map(|_| {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((x >> 33) % (2 * TABLE_ROWS as u64)) as i64
        })
        .collect();
    let schema = Arc::new(Schema::new(vec![
        Field::new("name", DataType::Utf8, false),
        Field::new("account", DataType::Int64, false),
        Field::new("amount", DataType::Float64, false),
    ]));
    let names = StringArray::from_iter_values((0..rows).map(|i| format!("name{}", i % 10_000)));
    let amounts = Float64Array::from_iter_values((0..rows).map(|i| (i % 100_000) as f64 / 100.0));
    RecordBatch::try_new(
        schema,
        vec![Arc::new(names), Arc::new(accounts), Arc::new(amounts)],
    )
    .unwrap()
}

fn static_join(c: &mut Criterion) {
    let (csv, parquet) = tables();
    let input = stream(1).schema();
    let plan = |path: &Path, how: JoinType| {
        StaticJoin::plan(
            &JoinSpec::new(TableSpec::new(path), ["account"]).with_how(how),
            "bench",
            &input,
        )
        .unwrap()
    };

    let mut load = c.benchmark_group("static_join_load");
    load.sample_size(10);
    load.throughput(Throughput::Elements(TABLE_ROWS as u64));
    load.bench_function("csv_1m_rows", |b| b.iter(|| plan(&csv, JoinType::Inner)));
    load.bench_function("parquet_1m_rows", |b| {
        b.iter(|| plan(&parquet, JoinType::Inner))
    });
    load.finish();

    let inner = plan(&parquet, JoinType::Inner);
    let outer = plan(&parquet, JoinType::LeftOuter);
    let mut probe = c.benchmark_group("static_join_probe");
    for rows in [1_000usize, 10_000, 100_000] {
        let batch = stream(rows);
        let matched = inner.process(&batch).unwrap().num_rows();
        assert!(
            matched > rows * 2 / 5 && matched < rows * 3 / 5,
            "{matched} of {rows} matched"
        );
        assert_eq!(outer.process(&batch).unwrap().num_rows(), rows);
        probe.throughput(Throughput::Elements(rows as u64));
        probe.bench_with_input(BenchmarkId::new("inner", rows), &batch, |b, batch| {
            b.iter(|| inner.process(batch).unwrap())
        });
        probe.bench_with_input(BenchmarkId::new("left_outer", rows), &batch, |b, batch| {
            b.iter(|| outer.process(batch).unwrap())
        });
    }
    probe.finish();
    let _ = std::fs::remove_dir_all(csv.parent().unwrap());
}

criterion_group!(benches, static_join);
criterion_main!(benches);
