//! Weir's benchmark suite for the reference workload `fraud-window` (`shared/bench/fraud-window.md`).
//!
//! The `weir-bench` binary (`src/main.rs`) runs it with one command; each module is one step of it:
//!
//! - [`generator`]: writes the workload to Kafka, as fast as possible or at a fixed rate;
//! - [`variant`]: the pipeline configurations compared, derived from `examples/fraud-window`;
//! - [`measure`]: runs the `weir` binary once, watches the alerts topic, checks the alerts exactly and
//!   records wall time, peak RSS, CPU time and the per-stage times from the progress lines;
//! - [`ceiling`]: the broker's consume-only ceiling, measured beside the pipeline;
//! - [`latency`]: the delay from a window's closing to its alert, at a fixed input rate;
//! - [`soak`]: a long run at a fixed rate, sampling memory and the checkpoint's size ([`footprint`]) to
//!   show both reach a plateau;
//! - [`group`]: instances sharing a consumer group: their throughput, the changelog's cost, a restore and
//!   a failover, and their table;
//! - [`report`]: medians, the markdown and CSV tables; [`plot`]: the PNG chart;
//! - [`environment`]: the broker, topic names, the built binaries and the commit every command starts from.
//!
//! The criterion micro-benchmarks are in `benches/`. `docs/benchmarks.md` has the figures and how to
//! reproduce them.

pub mod ceiling;
pub mod environment;
pub mod fetch_wait;
pub mod footprint;
pub mod generator;
pub mod group;
pub mod latency;
pub mod measure;
pub mod plot;
pub mod report;
pub mod soak;
pub mod stages;
pub mod variant;
