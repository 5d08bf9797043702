//! # Weir: an embeddable stream processor
//!
//! Weir reads Kafka (or new files), runs your business logic as WebAssembly UDFs over Apache Arrow
//! batches, and writes Kafka (or files), with Spark Structured Streaming's model and option names. The data
//! path is the module tree:
//!
//! ```text
//!   source ──▶ decode ──▶ udf / sql / join ──▶ dedup, aggregate ──▶ udf / sql ──▶ sink
//!   Kafka      json /     WebAssembly, Arrow     repeats dropped;     (after         Kafka
//!   records    csv /      IPC in linear memory;  windows, watermark   aggregate)     (value / key /
//!   or files   avro /     where / select by      per partition,                      headers / topic)
//!   → Arrow    string /
//!              WASM UDF   DataFusion; a join     state in sled
//!                         with a file's table
//!                     pipeline: micro-batch loop, partitions in parallel, progress reports
//! ```
//!
//! Each stage owns the spec type that describes it, and the layers run one way: the pipeline-file reader
//! ([`config`]) turns a file into those specs and sits on top; the pipeline puts them together and runs
//! them; the stages below know nothing of either. The modules, in the order a batch meets them:
//!
//! - `pipeline`: [`PipelineSpec`] (the stages' specs together), planning and the micro-batch loop;
//!   [`progress`]: per-batch reports; `checkpoint`: committed batches, offsets and state, beside it.
//! - `source`: Kafka source options and polling into Spark's source schema, assigning its partitions or
//!   as a consumer group member sharing them with other instances (`consumerGroup`); the file source (new files
//!   under a directory, their lines as records of that schema, or Parquet rows; the files read kept in
//!   the checkpoint).
//! - `decode`: built-in deserializers (JSON, CSV, Avro, string, binary) and the WebAssembly deserializer stage.
//! - `udf`: the WebAssembly runtime: core modules (ABI v1) and components (the WIT world `weir:udf@1`, for
//!   Python), checks, instances, limits; transform specs. `sql`: `where`
//!   and `select` stages, SQL expressions compiled by DataFusion. `join`: stream-static joins with a table
//!   read from a CSV, JSON lines or Parquet file. `stream_join`: stream-stream joins with a second Kafka
//!   topic, each stream's rows held until the watermark rules out a match.
//! - `window`: window assignment and the per-partition watermark; `dedup`: `dropDuplicates`, state
//!   bounded by the watermark; `aggregate`: grouping, aggregates and output modes; `state`: operator
//!   state in sled, and the changelog topics through which a group member's state moves with its
//!   partitions (with a local sled copy per task, so a restore reads only the changelog after it);
//!   `repartition`: a group member's rows sent through a topic to the task of their group
//!   keys, and which upstream writes committed.
//! - `sink`: the Kafka sink (a group member's exactly-once output: a transactional producer per input
//!   partition); the file sink (Parquet or JSON lines, `partitionBy`, a committed-files log);
//!   the console sink.
//! - Beside the data path: `metrics`, the Prometheus endpoint and the health checks; [`secrets`], the
//!   values (passwords, `${VAR}`s) never to print.
//! - Below the stages: `kafka` (the `kafka.*` passthrough, consumer defaults, the delivery-checked
//!   producer, naming a failed TLS or SASL handshake), `registry` (the Avro schema registry client),
//!   `schema` (Spark DDL strings), `spelling` ("did you mean" for misspelt keys).
//! - `workload` and `demo`: the transaction generator and the self-contained demo.
//!
//! ## The public API
//!
//! The modules are private; what a library user needs is re-exported here, and nothing else is supported:
//!
//! - the pipeline: [`Pipeline`], [`PipelineBuilder`], [`Plan`], [`RunSummary`];
//! - the specs, stage by stage: [`PipelineSpec`] and [`Trigger`]; [`SourceSpec`]: [`SourceOptions`],
//!   [`TopicSelection`], [`OffsetSpec`], or [`FileSourceSpec`], [`FileSourceFormat`] (with
//!   [`RecordOrigin`] telling the records of files from Kafka's); [`DeserializerSpec`],
//!   [`DecodeFormat`]; [`Transform`]: [`TransformSpec`], [`UdfSpec`], [`UdfLimits`], [`OnError`],
//!   [`OnFailure`], or [`SqlSpec`], or [`JoinSpec`]: [`JoinType`], [`TableSpec`],
//!   [`TableFormat`]; [`StreamJoinSpec`], [`StreamJoinType`]; [`WatermarkSpec`], [`WindowSpec`];
//!   [`DedupSpec`]; [`AggregateSpec`],
//!   [`AggregateExpr`], [`Function`], [`WindowBy`], [`WindowKind`], [`OutputMode`]; [`SinkSpec`],
//!   [`SinkTarget`], [`SinkOptions`], [`SinkFormat`], [`Delivery`], [`SinkOnError`], [`FileSinkSpec`],
//!   [`FileFormat`], [`ConsoleSpec`];
//! - reading pipeline files: the [`config`] module; schemas written as Spark DDL: [`parse_ddl_schema`];
//! - watching a run: the [`progress`] module ([`progress::ProgressListener`], [`progress::BatchProgress`]);
//!   Prometheus metrics and health checks: [`MetricsSpec`]; keeping secrets out of what is printed:
//!   [`secrets::Secrets`], from [`Pipeline::secrets`];
//! - the WebAssembly engine, [`UdfRuntime`]: [`Plan::new`] loads a pipeline's modules with one, to check
//!   a pipeline without running it;
//! - errors: [`SpecError`], [`config::ConfigError`], [`OptionError`], [`UdfError`] with [`UdfFailure`],
//!   [`SqlError`];
//!   everything else is an [`anyhow::Error`] whose context names the file, key, record or UDF at fault;
//! - checkpoints: [`inspect_checkpoint`], and [`inspect_pipeline`] for a pipeline's committed progress
//!   wherever it is kept (its checkpoint, or its consumer group and changelog); a file sink's output:
//!   [`committed_files`],
//!   [`CommittedBatchFiles`], [`CommittedFile`], [`LOG_DIR`].
//!
//! The `weir` binary's tools, the integration tests and the benchmarks also reach into the stages through a
//! hidden `internal` module; it is not part of the API and changes without notice.
//!
//! ## Core concepts: what each costs and how long it lives
//!
//! - A [`PipelineSpec`] is plain data: the stages' specs, from a pipeline file ([`config::load`]) or from
//!   [`Pipeline::builder`]. Both check it with [`PipelineSpec::validate`]. Cheap to build and clone.
//! - A [`UdfRuntime`] is the WebAssembly engine with its epoch ticker thread (the resolution of UDF
//!   time limits). One per process; [`Pipeline::new`] makes its own.
//! - A [`Plan`] is every stage loaded: each module or component compiled (once per module file, cached under
//!   `~/.cache/weir/modules`, so a restart skips Cranelift), instantiated to check its ABI and schema, and
//!   the schemas checked to compose from source to sink. It lives as long as its pipeline. Each stage keeps
//!   a pool of instances, made as worker threads need them, each with its own linear memory (up to the
//!   stage's `limits.memory`).
//! - A [`Pipeline`] is a plan plus, with a `checkpointLocation`, the opened checkpoint: its state
//!   restored, what a crash left settled, and the plan compared with the checkpoint's. [`Pipeline::run`]
//!   consumes it; the source and the sink are opened then and closed when the run ends.
//! - Checkpoints sit beside the data path, not in it: the loop hands each written batch's offsets,
//!   watermark and state changes to the checkpoint, and, exactly once, commits them with the batch's
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
#![warn(unreachable_pub)]

mod aggregate;
mod checkpoint;
pub mod config;
mod decode;
mod dedup;
mod demo;
mod join;
mod kafka;
mod metrics;
mod pipeline;
pub mod progress;
mod registry;
mod repartition;
mod schema;
pub mod secrets;
mod sink;
mod source;
mod spelling;
mod sql;
mod state;
mod stream_join;
mod udf;
mod window;
mod workload;

pub use aggregate::{AggregateExpr, AggregateSpec, Function, OutputMode, WindowBy, WindowKind};
pub use checkpoint::inspect as inspect_checkpoint;
pub use decode::{DecodeFormat, DeserializerSpec};
pub use dedup::DedupSpec;
pub use join::{JoinSpec, JoinType, TableFormat, TableSpec};
pub use kafka::OptionError;
pub use metrics::MetricsSpec;
pub use pipeline::{
    inspect_pipeline, Pipeline, PipelineBuilder, PipelineSpec, Plan, RunSummary, SpecError,
    Transform, Trigger,
};
pub use schema::parse_ddl_schema;
pub use sink::{
    committed_files, CommittedBatchFiles, CommittedFile, ConsoleSpec, Delivery, FileFormat,
    FileSinkSpec, SinkFormat, SinkOnError, SinkOptions, SinkSpec, SinkTarget, LOG_DIR,
};
pub use source::{
    FileSourceFormat, FileSourceSpec, OffsetSpec, RecordOrigin, SourceOptions, SourceSpec,
    TopicSelection, DEFAULT_MAX_FILE_AGE,
};
pub use sql::{SqlError, SqlSpec};
pub use stream_join::{StreamJoinSpec, StreamJoinType};
pub use udf::{
    OnError, OnFailure, TransformSpec, UdfError, UdfFailure, UdfLimits, UdfRuntime, UdfSpec,
};
pub use window::{WatermarkSpec, WindowSpec};

/// What the `weir` binary's tools, the integration tests and the benchmarks reach into: not part of the
/// API, and changed without notice.
#[doc(hidden)]
pub mod internal {
    pub use crate::aggregate::Aggregator;
    pub use crate::checkpoint::{Checkpoint, CommittedBatch, PlannedBatch};
    pub use crate::decode::{AvroDecoder, CsvDecoder, Deserializer, JsonDecoder};
    pub use crate::join::StaticJoin;
    pub use crate::kafka::{CheckedProducer, CONSUMER_DEFAULTS};
    pub use crate::schema::column_list;
    pub use crate::sink::FileSink;
    pub use crate::source::{latest_offsets, sample_records, source_schema, PartitionChunk};
    pub use crate::sql::SqlStage;
    pub use crate::state::changelog::changelog_topic;
    pub use crate::state::StateStore;
    pub use crate::stream_join::{Joined, StreamJoin};
    pub use crate::udf::{Kind, UdfStage};

    /// The demo's broker, records and topic helpers.
    pub mod demo {
        pub use crate::demo::*;
    }

    /// The reference workload (transactions, the closing records, the expected alerts).
    pub mod workload {
        pub use crate::workload::*;
    }
}
