//! The aggregation operator alone: rows per second folded into tumbling windows with 10,000 keys, the state
//! written to sled once per batch, as the pipeline does.

use std::sync::Arc;

use arrow_array::{ArrayRef, Int64Array, RecordBatch, StringArray};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use weir::internal::Aggregator;
use weir::internal::StateStore;
use weir::WindowSpec;
use weir::{AggregateExpr, AggregateSpec, Function, OutputMode, WindowBy, WindowKind};

const KEYS: usize = 10_000;
const ROWS: usize = 100_000;

/// `ROWS` rows over `KEYS` ids, event times spread over one 10 s window starting at `start`.
fn batch(start: i64) -> RecordBatch {
    let ids: StringArray = (0..ROWS)
        .map(|i| Some(format!("user{}", (i * 7919) % KEYS)))
        .collect();
    let ts: Int64Array = (0..ROWS).map(|i| start + (i as i64 % 10_000)).collect();
    let amount: Int64Array = (0..ROWS).map(|i| (i % 1000) as i64).collect();
    RecordBatch::try_from_iter([
        ("id", Arc::new(ids) as ArrayRef),
        ("ts", Arc::new(ts) as ArrayRef),
        ("amount", Arc::new(amount) as ArrayRef),
    ])
    .unwrap()
}

fn aggregator(schema: &arrow_array::RecordBatch) -> Aggregator {
    let spec = AggregateSpec {
        group_by: vec!["id".into()],
        window: Some(WindowBy {
            column: "ts".into(),
            kind: WindowKind::Fixed(WindowSpec::tumbling(10_000)),
        }),
        aggregates: vec![
            AggregateExpr::new(Function::Count, None),
            AggregateExpr::new(Function::Sum, Some("amount")).with_alias("total"),
        ],
        output_mode: OutputMode::Append,
        input_partitioned_by: Vec::new(),
    };
    let table = StateStore::temporary().unwrap().table("bench").unwrap();
    Aggregator::new(spec, &schema.schema(), true, table).unwrap()
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("aggregate");
    group.throughput(Throughput::Elements(ROWS as u64));
    group.sample_size(20);
    let input = batch(0);
    group.bench_function(
        "count+sum, tumbling 10 s, 10,000 keys, 100,000-row batch, state to sled",
        |b| {
            b.iter_batched(
                || aggregator(&input),
                |mut agg| {
                    agg.update(&input, None).unwrap();
                    // The watermark closes the window: the rows are emitted and the state evicted.
                    agg.finish_batch(Some(10_000)).unwrap()
                },
                BatchSize::PerIteration,
            )
        },
    );
    let mut open = aggregator(&input);
    group.bench_function(
        "count+sum into open windows (no emission), 10,000 keys, 100,000-row batch",
        |b| {
            b.iter(|| {
                open.update(&input, None).unwrap();
                open.finish_batch(None).unwrap()
            })
        },
    );
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
