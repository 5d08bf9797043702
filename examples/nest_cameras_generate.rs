//! The Nest example's input: `cargo run --release --example nest_cameras_generate -- 20000` writes that
//! many device records (one a second of event time, each with one to three cameras) to the `nest-devices`
//! topic of the broker in `KAFKA_BOOTSTRAP_SERVERS` (default 127.0.0.1:9092), keyed by home. Create the
//! topics first: `nest-devices`, and `nest-camera-stats` with `cleanup.policy=compact`.
//!
//! Then run `examples/nest-cameras/` as its `stats.toml` says. With the same record count,
//! `tests/tests/all/nest.rs` shows the exact expected outputs: `weir::internal::workload` computes the
//! hourly counts per zip code (`nest_zip_hourly_counts`) and the report (`nest_busy_hours`) offline.

use weir::internal::demo::produce;
use weir::internal::workload::{nest_records_every, NEST_EXAMPLE_SPACING_MS};

fn main() -> anyhow::Result<()> {
    let n: u64 = match std::env::args().nth(1) {
        Some(n) => n
            .parse()
            .map_err(|e| anyhow::anyhow!("the record count {n:?}: {e}"))?,
        None => 20_000,
    };
    let bootstrap =
        std::env::var("KAFKA_BOOTSTRAP_SERVERS").unwrap_or_else(|_| "127.0.0.1:9092".into());
    let records = nest_records_every(n, NEST_EXAMPLE_SPACING_MS)
        .enumerate()
        .map(|(i, (_, json))| (format!("home{}", i % 50), json));
    let written = produce(&bootstrap, "nest-devices", records)?;
    println!("{written} device records written to nest-devices on {bootstrap}");
    Ok(())
}
