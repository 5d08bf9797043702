//! The pipeline: a [`PipelineSpec`] built from a file or from code, planned, then run.
//!
//! A batch goes down these files in order:
//!
//! 1. `spec.rs` and `builder.rs`: what the pipeline is, and the checks that span stages (with
//!    `cross_checks.rs`);
//! 2. `plan.rs`: every stage loaded and checked to compose (what `weir validate` prints);
//! 3. `run.rs`: the loop opens the source, the sink and the metrics endpoint (`opening.rs`), polls a
//!    batch, and moves the watermark;
//! 4. `stateless.rs`: per partition, in parallel: deserialize, transform (`transforms.rs`: the UDFs and
//!    SQL stages in order), apply `on_error`/`on_failure`; the `[stream_join]` topic's partitions are
//!    deserialized by `joined_stream.rs`;
//! 5. `overlapped_write.rs`: behind the loop, one batch at a time: the two streams joined
//!    (`joined_stream.rs`), `stateful.rs` (deduplication and the aggregation), then
//!    output and dead letters produced (`refused.rs` for rows the broker refuses), or written to files or
//!    printed (`files_and_console.rs`);
//! 6. `commit.rs`: the checkpoint's commit protocol; `report.rs`: the batch's progress report, which
//!    also updates the metrics.
//!
//! ```no_run
//! # async fn example() -> anyhow::Result<()> {
//! use weir::{Pipeline, SinkFormat};
//! let spec = Pipeline::builder("fraud")
//!     .source_option("kafka.bootstrap.servers", "localhost:9092")
//!     .source_option("subscribe", "transactions")
//!     .source_option("startingOffsets", "earliest")
//!     .deserializer_udf("udfs/json_transactions.wasm")
//!     .transform_udf("udfs/fraud_flagged.wasm")
//!     .sink_option("kafka.bootstrap.servers", "localhost:9092")
//!     .sink_option("topic", "results")
//!     .sink_format(SinkFormat::Json)
//!     .build()?;
//! let shutdown = async { tokio::signal::ctrl_c().await.ok(); };
//! let summary = Pipeline::new(spec)?.run(shutdown).await?;
//! println!("{} records in, {} out", summary.input_rows, summary.output_rows);
//! # Ok(()) }
//! ```

mod builder;
mod commit;
mod cross_checks;
mod files_and_console;
mod group;
mod inspect;
mod joined_stream;
mod opening;
mod overlapped_write;
mod partition_write;
mod plan;
mod refused;
mod report;
mod run;
mod spec;
mod stateful;
mod stateless;
mod tasks;
mod transforms;
mod upstream;

use std::future::Future;
use std::sync::Arc;

use anyhow::Context;

use crate::progress::ProgressListener;
use crate::secrets::Secrets;
use crate::udf::UdfRuntime;
pub use builder::PipelineBuilder;
pub use inspect::inspect_pipeline;
pub use plan::Plan;
pub use run::RunSummary;
pub use spec::{PipelineSpec, SpecError, Transform, Trigger};

/// A planned pipeline, ready to run.
pub struct Pipeline {
    plan: Arc<Plan>,
    reload: bool,
    checkpointing: Option<commit::Checkpointing>,
}

impl Pipeline {
    /// Starts describing a pipeline in code; see the module example.
    pub fn builder(name: impl Into<String>) -> PipelineBuilder {
        PipelineBuilder::new(name)
    }

    /// Loads the pipeline's modules and checks it end to end (what `weir validate` does). With a
    /// `checkpointLocation`, also opens the checkpoint, settles what a crash left in it, restores the
    /// operator state, and refuses a plan that differs from the checkpoint's in ways that corrupt state.
    pub fn new(spec: PipelineSpec) -> anyhow::Result<Pipeline> {
        let runtime = UdfRuntime::new()?;
        let checkpointing = commit::open(&spec)?;
        let plan = match &checkpointing {
            None => Plan::new(spec, &runtime)?,
            Some(c) => {
                let plan = Plan::with_state(spec, &runtime, c.checkpoint.state().clone())?;
                c.checkpoint.check_plan(&plan.fingerprint())?;
                plan
            }
        };
        Ok(Pipeline {
            plan: Arc::new(plan),
            reload: false,
            checkpointing,
        })
    }

    /// What `weir validate` does: loads the modules and tables, checks the pipeline end to end, and, when
    /// its checkpoint exists, refuses a plan that differs from the checkpoint's in ways that corrupt state.
    /// Unlike [`Pipeline::new`], it creates nothing and asks no broker.
    ///
    /// ```no_run
    /// # fn main() -> anyhow::Result<()> {
    /// let spec = weir::config::load(std::path::Path::new("examples/nest-cameras/stats.toml"))?;
    /// print!("{}", weir::Pipeline::validate(spec)?.describe());
    /// # Ok(()) }
    /// ```
    pub fn validate(spec: PipelineSpec) -> anyhow::Result<Plan> {
        let runtime = UdfRuntime::new()?;
        let plan = Plan::new(spec, &runtime)?;
        if let Some(path) = plan.spec().checkpoint.as_ref().filter(|path| path.exists()) {
            let checkpoint = crate::checkpoint::Checkpoint::open(path).context(
                "comparing the plan with its checkpoint (a running pipeline holds it: validate while it is \
                 stopped)",
            )?;
            checkpoint.check_plan_unchanged(&plan.fingerprint())?;
        }
        Ok(plan)
    }

    /// Watches the UDF module files while running (`weir run --reload`): at each batch boundary, a module
    /// whose file changed is loaded, checked (ABI, init, the same output schema) and swapped in; a version
    /// that fails any check is refused with an error in the log, and the running one stays.
    pub fn reload_modules(mut self, reload: bool) -> Self {
        self.reload = reload;
        self
    }

    /// The loaded plan, e.g. to print it.
    pub fn plan(&self) -> &Plan {
        &self.plan
    }

    /// What must never be printed: the spec's [`secrets`](PipelineSpec::secrets) and the values of its
    /// secret `kafka.*` options. Pass what the pipeline says (errors, logs, plans, progress) through
    /// [`Secrets::redact`](crate::secrets::Secrets::redact) before showing it, as the `weir` binary does.
    ///
    /// ```no_run
    /// # fn main() -> anyhow::Result<()> {
    /// let spec = weir::config::load(std::path::Path::new("pipeline.toml"))?;
    /// let pipeline = weir::Pipeline::new(spec)?;
    /// println!("{}", pipeline.secrets().redact(&pipeline.plan().describe()));
    /// # Ok(()) }
    /// ```
    pub fn secrets(&self) -> Secrets {
        self.plan.spec().all_secrets()
    }

    /// Runs until the source reaches its `endingOffsets`, `shutdown` completes, or an error stops it.
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> anyhow::Result<RunSummary> {
        self.run_with_progress(shutdown, &mut ()).await
    }

    /// [`Pipeline::run`], reporting each batch's progress to `listener`.
    pub async fn run_with_progress(
        self,
        shutdown: impl Future<Output = ()>,
        listener: &mut dyn ProgressListener,
    ) -> anyhow::Result<RunSummary> {
        run::run(
            self.plan,
            self.reload,
            self.checkpointing,
            shutdown,
            listener,
        )
        .await
    }
}
