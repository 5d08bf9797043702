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
//! Each stage owns the spec type that describes it, and the layers run one way: [`config`] reads a
//! pipeline file into those specs and sits on top; [`pipeline`] puts them together and runs them; the
//! stages below know nothing of either.
//!
//! - [`config`]: the pipeline file (TOML), `${VAR}` expansion, errors naming file and key.
//! - [`pipeline`]: [`PipelineSpec`] (the stages' specs together), planning and the micro-batch loop;
//!   [`progress`]: per-batch reports; [`checkpoint`]: committed batches, offsets and state, beside it.
//! - [`source`]: Kafka source options and polling into Spark's source schema.
//! - [`decode`]: built-in deserializers and the WebAssembly deserializer stage.
//! - [`udf`]: the WebAssembly runtime: ABI v1 checks, instances, limits; transform specs.
//! - [`window`]: window assignment and the per-partition watermark; [`aggregate`]: grouping, aggregates
//!   and output modes; [`state`]: operator state in sled.
//! - [`sink`]: the Kafka sink.
//! - Below the stages: [`kafka`] (the `kafka.*` passthrough, consumer defaults, topic partitions),
//!   [`schema`] (Spark DDL strings), [`spelling`] ("did you mean" for misspelt keys).
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
pub mod kafka;
pub mod pipeline;
pub mod progress;
pub mod schema;
pub mod sink;
pub mod source;
pub mod spelling;
pub mod state;
pub mod udf;
pub mod window;
pub mod workload;

pub use pipeline::PipelineSpec;
pub use pipeline::{Pipeline, RunSummary};
pub use sink::SinkFormat;
