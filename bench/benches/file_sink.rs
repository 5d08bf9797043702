//! Criterion benchmark of the file sink (`[sink] path = ...`): one batch of the reference workload's
//! decoded transactions (`name`, `surname`, `amount`, `delta_t`, `flag`, `ts`) written and committed, as
//! a checkpointed pipeline does each batch: files written aside, synced, renamed, and the batch's entry
//! added to the committed-files log (also synced). Parquet (Snappy) unpartitioned and `partitionBy =
//! ["flag"]`, and JSON lines; batches of 10,000 and 100,000 rows. The figures include the fsyncs, which
//! on this VM's disk are a large share at small batches.

use std::sync::Arc;

use arrow_array::{Int32Array, Int64Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use weir::internal::workload::transactions;
use weir::internal::FileSink;
use weir::{FileFormat, FileSinkSpec};

/// The first `rows` transactions as the JSON deserializer decodes them.
fn batch(rows: u64) -> RecordBatch {
    let txs: Vec<_> = transactions(rows).collect();
    let schema = Arc::new(Schema::new(vec![
        Field::new("name", DataType::Utf8, true),
        Field::new("surname", DataType::Utf8, true),
        Field::new("amount", DataType::Utf8, true),
        Field::new("delta_t", DataType::Utf8, true),
        Field::new("flag", DataType::Int32, true),
        Field::new("ts", DataType::Int64, true),
    ]));
    let text = |f: fn(&weir::internal::workload::Transaction) -> &str| {
        Arc::new(StringArray::from_iter_values(txs.iter().map(f)))
    };
    RecordBatch::try_new(
        schema,
        vec![
            text(|t| &t.name),
            text(|t| &t.surname),
            text(|t| &t.amount),
            text(|t| &t.delta_t),
            Arc::new(Int32Array::from_iter_values(txs.iter().map(|t| t.flag))),
            Arc::new(Int64Array::from_iter_values(txs.iter().map(|t| t.ts))),
        ],
    )
    .unwrap()
}

fn file_sink(c: &mut Criterion) {
    let root = std::env::temp_dir().join(format!("weir-bench-files-{}", std::process::id()));
    let variants: [(&str, FileFormat, &[&str]); 3] = [
        ("parquet", FileFormat::Parquet, &[]),
        ("parquet_by_flag", FileFormat::Parquet, &["flag"]),
        ("json_lines", FileFormat::JsonLines, &[]),
    ];
    let mut group = c.benchmark_group("file_sink");
    group.sample_size(20);
    for rows in [10_000u64, 100_000] {
        let rows_batch = batch(rows);
        group.throughput(Throughput::Elements(rows));
        for (name, format, partition_by) in variants {
            let spec = FileSinkSpec {
                path: root.join(format!("{name}-{rows}")),
                format,
                partition_by: partition_by.iter().map(|c| c.to_string()).collect(),
            };
            let sink = FileSink::open(&spec, None, false).unwrap();
            let mut next = 0u64;
            group.bench_with_input(BenchmarkId::new(name, rows), &rows_batch, |b, rows| {
                b.iter(|| {
                    let files = sink.write(next, rows).unwrap();
                    sink.commit(next, files).unwrap();
                    next += 1;
                })
            });
            if next == 0 {
                continue; // filtered out of this run
            }
            let written: u64 = weir::committed_files(&spec.path)
                .unwrap()
                .iter()
                .map(|f| std::fs::metadata(f).unwrap().len())
                .sum();
            println!(
                "{name} {rows}: {next} batches, {:.1} bytes per row",
                written as f64 / (next * rows) as f64
            );
        }
    }
    group.finish();
    std::fs::remove_dir_all(&root).unwrap();
}

criterion_group!(benches, file_sink);
criterion_main!(benches);
