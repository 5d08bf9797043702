//! Criterion benchmark of the stream-stream join (`[stream_join]`) in its steady state: each batch brings
//! 10,000 impressions and 10,000 clicks (each click 30 s after an impression of the batch before), the
//! watermark moves one minute per batch, and the condition's one-minute range keeps `held` batches of
//! impressions in the state, so every batch matches 10,000 pairs against a state of a constant size. The
//! state is in memory (a pipeline with a checkpoint also encodes the new rows for sled).

use std::cell::Cell;
use std::sync::Arc;

use arrow_array::{ArrayRef, Int64Array, RecordBatch, StringArray};
use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, Throughput};
use weir::internal::{StateStore, StreamJoin};
use weir::{DecodeFormat, DeserializerSpec, OnError, StreamJoinSpec, StreamJoinType};

const PER_BATCH: i64 = 10_000;
const MINUTE: i64 = 60_000;

fn spec() -> StreamJoinSpec {
    StreamJoinSpec {
        topic: "clicks".into(),
        deserializer: DeserializerSpec {
            format: DecodeFormat::String,
            on_error: OnError::Fail,
        },
        event_time: "clickTime".into(),
        delay_ms: 0,
        on: "clickAdId = adId AND clickTime BETWEEN impressionTime AND impressionTime + 60000"
            .into(),
        how: StreamJoinType::LeftOuter,
    }
}

/// Batch `k`'s impressions (ads `k * PER_BATCH ..`, a minute of event time) or its clicks (on batch
/// `k - 1`'s ads, 30 s after each).
fn rows(k: i64, clicks: bool) -> RecordBatch {
    let ads = if clicks { k - 1 } else { k };
    let ids = StringArray::from_iter_values(
        (0..PER_BATCH).map(|j| format!("ad-{}", ads * PER_BATCH + j)),
    );
    let shift = if clicks { MINUTE / 2 } else { 0 };
    let times = Int64Array::from_iter_values((0..PER_BATCH).map(|j| ads * MINUTE + j * 6 + shift));
    let names = if clicks {
        ("clickAdId", "clickTime")
    } else {
        ("adId", "impressionTime")
    };
    RecordBatch::try_from_iter([
        (names.0, Arc::new(ids) as ArrayRef),
        (names.1, Arc::new(times) as _),
    ])
    .unwrap()
}

fn stream_join(c: &mut Criterion) {
    let mut group = c.benchmark_group("stream_join");
    group.sample_size(20);
    group.throughput(Throughput::Elements(2 * PER_BATCH as u64));
    for held in [1i64, 10] {
        let (left, right) = (rows(0, false).schema(), rows(1, true).schema());
        let table = StateStore::in_memory().table("stream-join").unwrap();
        let mut join = StreamJoin::plan(&spec(), (&left, "impressionTime"), &right, table).unwrap();
        let next = Cell::new(0i64);
        // Batch `k` with the watermark `held` minutes behind it.
        let batch = || {
            next.set(next.get() + 1);
            let k = next.get();
            let watermark = Some((k - held) * MINUTE);
            (rows(k, false), rows(k, true), (watermark, watermark))
        };
        for _ in 0..=held {
            let (impressions, clicks, watermarks) = batch();
            join.process(&impressions, &clicks, watermarks).unwrap();
        }
        let state_rows = held * PER_BATCH;
        group.bench_function(BenchmarkId::new("held_impressions", state_rows), |b| {
            b.iter_batched(
                batch,
                |(impressions, clicks, watermarks)| {
                    join.process(&impressions, &clicks, watermarks).unwrap()
                },
                BatchSize::SmallInput,
            )
        });
    }
    group.finish();
}

criterion_group!(benches, stream_join);
criterion_main!(benches);
