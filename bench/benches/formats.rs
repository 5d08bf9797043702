//! `json_vs_avro`: the same 1,000,000 reference transactions deserialized by the built-in decoders from
//! JSON (arrow-json, `format = "json"`) and from Avro in the Confluent wire format (arrow-avro,
//! `format = "avro"`, the writer schema fetched once from a registry), in batches of 1,000, 10,000 and
//! 100,000 records. Both produce the same six columns. The input sizes are printed first.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use weir::internal::workload;
use weir::internal::Deserializer;
use weir::internal::{sample_records, source_schema, PartitionChunk};
use weir::{parse_ddl_schema, DecodeFormat, UdfRuntime};
use weir_tests::avro::{framed, transaction_schema, Schema};
use weir_tests::registry::TestRegistry;

const TOTAL: u64 = 1_000_000;

/// `values` cut into chunks of `size` records of one partition.
fn chunks(values: &[Vec<u8>], size: usize) -> Vec<PartitionChunk> {
    values
        .chunks(size)
        .map(|chunk| sample_records("tx", chunk))
        .collect()
}

fn decoder(format: DecodeFormat) -> Deserializer {
    Deserializer::new(&format, &UdfRuntime::new().unwrap(), &source_schema(false)).unwrap()
}

fn json_vs_avro(c: &mut Criterion) {
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
    let decoders = [
        (
            "json",
            decoder(DecodeFormat::Json {
                schema: parse_ddl_schema(
                    "name STRING, surname STRING, amount STRING, delta_t STRING, flag INT, ts BIGINT",
                )
                .unwrap(),
                permissive: false,
                corrupt_record_column: None,
                strict: false,
            }),
            &json,
        ),
        (
            "avro",
            decoder(DecodeFormat::Avro {
                registry: registry.url.clone(),
                reader_schema: Some(transaction_schema(1)),
                subject: None,
            }),
            &avro,
        ),
    ];
    let mut group = c.benchmark_group("json_vs_avro");
    group.sample_size(10);
    group.throughput(Throughput::Elements(TOTAL));
    for size in [1_000usize, 10_000, 100_000] {
        for (name, decoder, values) in &decoders {
            let input = chunks(values, size);
            group.bench_with_input(BenchmarkId::new(*name, size), &input, |b, input| {
                b.iter(|| {
                    let mut rows = 0;
                    for chunk in input {
                        let (batch, failures) = decoder.decode(chunk).unwrap();
                        assert!(failures.is_empty());
                        rows += batch.num_rows();
                    }
                    assert_eq!(rows as u64, TOTAL);
                })
            });
        }
    }
    group.finish();
}

criterion_group!(benches, json_vs_avro);
criterion_main!(benches);
