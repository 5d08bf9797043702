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
//! ## Core concepts: what each costs and how long it lives
//!
//! - A [`PipelineSpec`] is plain data: the stages' specs, from a pipeline file ([`config::load`]) or from
//!   [`Pipeline::builder`]. Both check it with [`PipelineSpec::validate`]. Cheap to build and clone.
//! - A [`udf::UdfRuntime`] is the WebAssembly engine with its epoch ticker thread (the resolution of UDF
//!   time limits). One per process; [`Pipeline::new`] makes its own.
//! - A [`pipeline::Plan`] is every stage loaded: each module compiled (once per module file, cached under
//!   `~/.cache/weir/modules`, so a restart skips Cranelift), instantiated to check its ABI and schema, and
//!   the schemas checked to compose from source to sink. It lives as long as its pipeline. Each stage keeps
//!   a pool of instances, made as worker threads need them, each with its own linear memory (up to the
//!   stage's `limits.memory`).
//! - A [`Pipeline`] is a plan plus, with a `checkpointLocation`, the opened checkpoint: its state
//!   restored, what a crash left settled, and the plan compared with the checkpoint's. [`Pipeline::run`]
//!   consumes it; the source and the sink are opened then and closed when the run ends.
//! - Checkpoints sit beside the data path, not in it: the loop hands each written batch's offsets,
//!   watermark and state changes to [`checkpoint`], and, exactly once, commits them with the batch's
//!   output in one Kafka transaction.
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
