//! The checkpoint's cost per batch, as the exactly-once path pays it: the write-ahead plan, the batch's
//! state changes staged, then the commit record with the changes made current (three flushed sled
//! writes), for a batch whose window state changes by 0 bytes, 64 KiB or 1 MiB.

use std::collections::BTreeMap;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use weir::internal::{Checkpoint, CommittedBatch, PlannedBatch};

fn offsets(batch: u64) -> BTreeMap<String, BTreeMap<String, i64>> {
    let partitions = (0..4)
        .map(|p| (p.to_string(), batch as i64 * 25_000))
        .collect();
    BTreeMap::from([("tx".to_string(), partitions)])
}

fn checkpoint_commit(c: &mut Criterion) {
    let mut group = c.benchmark_group("checkpoint_commit");
    for state_bytes in [0usize, 64 << 10, 1 << 20] {
        let dir = std::env::temp_dir().join(format!(
            "weir-bench-checkpoint-{}-{state_bytes}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        let checkpoint = Checkpoint::open(&dir).unwrap();
        let table = checkpoint.state().table("windows").unwrap();
        // One window's blob per 32 KiB, as the aggregation writes a window's groups.
        let blobs = state_bytes / (32 << 10);
        let mut batch = 0u64;
        group.throughput(Throughput::Bytes(state_bytes as u64));
        group.bench_with_input(
            BenchmarkId::from_parameter(state_bytes),
            &blobs,
            |b, &blobs| {
                b.iter(|| {
                    batch += 1;
                    checkpoint
                        .write_planned(&PlannedBatch {
                            batch,
                            start: offsets(batch - 1),
                            end: offsets(batch),
                        })
                        .unwrap();
                    let upserts = (0..blobs).map(|w| {
                        (
                            (batch * 1000 + w as u64).to_be_bytes().to_vec(),
                            vec![7u8; 32 << 10],
                        )
                    });
                    table.apply(upserts, std::iter::empty()).unwrap();
                    let changes = checkpoint.state().take_changes();
                    let record = CommittedBatch {
                        batch,
                        end: offsets(batch),
                        watermark: Default::default(),
                        output_rows: 500,
                        committed_at_ms: 0,
                    };
                    checkpoint.stage(&record, &changes).unwrap();
                    checkpoint.commit(&record, &changes).unwrap();
                })
            },
        );
        drop(checkpoint);
        let _ = std::fs::remove_dir_all(&dir);
    }
    group.finish();
}

criterion_group!(benches, checkpoint_commit);
criterion_main!(benches);
