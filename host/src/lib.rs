//! # Weir: an embeddable stream processor
//!
//! Weir reads Kafka, runs your business logic as WebAssembly UDFs over Apache Arrow batches, and writes
//! Kafka, with Spark Structured Streaming's model and option names. The data path is the module tree:
//!
//! ```text
//!   source ──▶ decode ──▶ udf (transforms) ──▶ aggregate ──▶ udf ──▶ sink
//!   Kafka      json /     WebAssembly,         windows,       (after     Kafka
//!   records    string /   Arrow IPC in         watermark      aggregate) (value / key /
//!   → Arrow    binary /   linear memory        per partition,            headers / topic)
//!              WASM UDF                        state in sled
//!                     pipeline: micro-batch loop, partitions in parallel, progress reports
//! ```
//!
//! - [`config`]: the pipeline file (TOML), `${VAR}` expansion, errors naming file and key.
//! - [`source`]: Kafka source options and polling into Spark's source schema.
//! - [`decode`]: built-in deserializers and the WebAssembly deserializer stage.
//! - [`udf`]: the WebAssembly runtime: ABI v1 checks, instances, limits.
//! - [`window`]: window assignment and the per-partition watermark; [`aggregate`]: grouping, aggregates
//!   and output modes; [`state`]: operator state in sled.
//! - [`sink`]: the Kafka sink.
//! - [`pipeline`]: planning and the micro-batch loop; [`progress`]: per-batch reports.
//! - [`workload`] and [`demo`]: the transaction generator and the self-contained demo.
//!
//! ```no_run
//! # async fn example() -> anyhow::Result<()> {
//! let spec = weir::config::load(std::path::Path::new("examples/fraud/pipeline.toml"))?;
//! let pipeline = weir::Pipeline::new(spec)?;
//! print!("{}", pipeline.plan().describe());
//! let summary = pipeline.run(std::future::pending()).await?;
//! # Ok(()) }
//! ```

#![deny(missing_docs)]

pub mod aggregate;
pub mod checkpoint;
pub mod config;
pub mod decode;
pub mod demo;
pub mod pipeline;
pub mod progress;
pub mod sink;
pub mod source;
pub mod state;
pub mod udf;
pub mod window;
pub mod workload;

pub use config::{PipelineSpec, SinkFormat};
pub use pipeline::{Pipeline, RunSummary};
