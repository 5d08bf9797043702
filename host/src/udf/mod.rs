//! The WebAssembly UDF runtime: modules compiled once, instances pooled per worker, limits enforced.
//!
//! ```text
//! UdfRuntime (one wasmtime Engine + the WASI linker + the epoch ticker)
//!   └─ UdfStage (one per pipeline stage: compiled module, config, schemas)
//!        └─ UdfInstance (one per worker, reused while calls succeed; a failed instance is dropped)
//! ```
//! Time limits use epoch interruption: a background thread ticks every [`EPOCH_TICK`], and each call may
//! run for its timeout's worth of ticks. Memory is capped per instance by a resource limiter.

mod error;
mod instance;
mod limits;
mod log;
mod module;
mod rows;
pub mod tool;

use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use wasmtime::{Config, Engine, InstancePre, Linker};
pub use weir_guest::abi::{Kind, RowError};

pub use error::{UdfError, UdfFailure};
pub use instance::UdfOutput;
use instance::{GuestState, UdfInstance};
pub use limits::UdfLimits;
pub use module::{Interface, ModuleInfo};

use crate::config::UdfSpec;

/// How often the epoch advances; the resolution of UDF time limits.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// The shared engine that compiles and runs every UDF module.
///
/// Create one per process (it owns a ticker thread) and load each stage's module through it.
#[derive(Clone)]
pub struct UdfRuntime {
    linker: Linker<GuestState>,
}

impl UdfRuntime {
    /// Creates the engine and starts its epoch ticker, which stops when the engine is dropped.
    pub fn new() -> anyhow::Result<UdfRuntime> {
        let mut config = Config::new();
        config.epoch_interruption(true);
        let engine = Engine::new(&config)
            .map_err(|e| anyhow::anyhow!("creating the WebAssembly engine: {e:#}"))?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p1::add_to_linker_sync(&mut linker, |state: &mut GuestState| state.wasi())
            .map_err(|e| anyhow::anyhow!("adding WASI to the linker: {e:#}"))?;
        rows::add_to_linker(&mut linker)
            .map_err(|e| anyhow::anyhow!("adding the row interface to the linker: {e:#}"))?;
        let weak = engine.weak();
        std::thread::Builder::new()
            .name("weir-udf-epoch".into())
            .spawn(move || {
                while let Some(engine) = weak.upgrade() {
                    engine.increment_epoch();
                    drop(engine);
                    std::thread::sleep(EPOCH_TICK);
                }
            })?;
        Ok(UdfRuntime { linker })
    }

    /// Lists what the module at `path` declares and, when it follows ABI v1, its kind and ABI minor
    /// version (read by instantiating it; nothing else runs).
    pub fn inspect(
        &self,
        path: &std::path::Path,
    ) -> Result<(ModuleInfo, Option<(Kind, i32)>), UdfError> {
        off_async_thread(|| self.inspect_here(path))
    }

    fn inspect_here(
        &self,
        path: &std::path::Path,
    ) -> Result<(ModuleInfo, Option<(Kind, i32)>), UdfError> {
        let error = |operation, cause| UdfError {
            udf: path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default(),
            path: path.to_path_buf(),
            operation,
            records: String::new(),
            cause: Box::new(cause),
        };
        let info = module::describe_file(self.linker.engine(), path)
            .map_err(|cause| error("loading", cause))?;
        if info.abi.is_err() {
            return Ok((info, None));
        }
        let pre = module::load(&self.linker, path).map_err(|cause| error("loading", cause))?;
        let instance = UdfInstance::new(&pre, UdfLimits::default(), None)
            .map_err(|cause| error("instantiating", cause))?;
        Ok((info, Some((instance.kind, instance.minor))))
    }

    /// Loads the module of `spec` as a stage of `kind` taking batches of `input`: compiles it, checks the ABI,
    /// creates a first instance and calls its init, which declares the output schema.
    pub fn load(&self, spec: &UdfSpec, kind: Kind, input: SchemaRef) -> Result<UdfStage, UdfError> {
        off_async_thread(|| self.load_here(spec, kind, input))
    }

    fn load_here(
        &self,
        spec: &UdfSpec,
        kind: Kind,
        input: SchemaRef,
    ) -> Result<UdfStage, UdfError> {
        let error = |operation, cause| UdfError {
            udf: spec.name.clone(),
            path: spec.path.clone(),
            operation,
            records: String::new(),
            cause: Box::new(cause),
        };
        let pre =
            module::load(&self.linker, &spec.path).map_err(|cause| error("loading", cause))?;
        let config = spec.config.to_string();
        let mut first = UdfInstance::new(&pre, spec.limits, Some(kind))
            .map_err(|cause| error("loading", cause))?;
        let output = first
            .init(&config, &input)
            .map_err(|cause| error("in init", cause))?;
        forward_printed(&spec.name, &first);
        Ok(UdfStage {
            name: spec.name.clone(),
            path: spec.path.clone(),
            kind,
            pre,
            config,
            limits: spec.limits,
            input,
            output,
            idle: Mutex::new(vec![first]),
        })
    }
}

/// One loaded UDF stage of a pipeline, shared by the workers that run it.
pub struct UdfStage {
    name: String,
    path: PathBuf,
    kind: Kind,
    pre: InstancePre<GuestState>,
    config: String,
    limits: UdfLimits,
    input: SchemaRef,
    output: SchemaRef,
    idle: Mutex<Vec<UdfInstance>>,
}

impl UdfStage {
    /// The stage name, from the pipeline file or the module's file stem.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether this is a deserializer or a transform.
    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// The schema the stage takes.
    pub fn input_schema(&self) -> &SchemaRef {
        &self.input
    }

    /// The schema the stage returns, as its init declared.
    pub fn output_schema(&self) -> &SchemaRef {
        &self.output
    }

    /// Runs the UDF on one batch. `records` describes the input for errors (e.g. " on tx-0 offsets 5..=9").
    ///
    /// The instance used goes back to the pool only if the call succeeded or failed cleanly with the
    /// guest's own error status; after a trap, timeout, cap or malformed output it is dropped, and the next
    /// call gets a fresh one.
    pub fn process(&self, batch: &RecordBatch, records: &str) -> Result<UdfOutput, UdfError> {
        off_async_thread(|| self.process_here(batch, records))
    }

    fn process_here(&self, batch: &RecordBatch, records: &str) -> Result<UdfOutput, UdfError> {
        let error = |operation, cause| UdfError {
            udf: self.name.clone(),
            path: self.path.clone(),
            operation,
            records: records.to_string(),
            cause: Box::new(cause),
        };
        let pooled = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let mut instance = match pooled {
            Some(instance) => instance,
            None => {
                let mut fresh = UdfInstance::new(&self.pre, self.limits, Some(self.kind))
                    .map_err(|cause| error("instantiating", cause))?;
                let output = fresh
                    .init(&self.config, &self.input)
                    .map_err(|cause| error("in init", cause))?;
                if output.fields() != self.output.fields() {
                    return Err(error(
                        "in init",
                        UdfFailure::MalformedOutput(format!(
                            "a new instance declared {output:?}, but the first declared {:?}",
                            self.output
                        )),
                    ));
                }
                fresh
            }
        };
        let result = instance.process(batch, &self.output);
        forward_printed(&self.name, &instance);
        match result {
            Ok(output) => {
                self.idle
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(instance);
                Ok(output)
            }
            Err(cause @ UdfFailure::Guest(_)) => {
                self.idle
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(instance);
                Err(error("in process", cause))
            }
            Err(cause) => Err(error("in process", cause)),
        }
    }
}

/// Runs guest code where WASI may block: wasmtime-wasi's synchronous calls (a guest printing, say) block on
/// the ambient tokio runtime, which panics on an async worker thread. Callers may be anywhere (the CLI's
/// async main, an embedding application's task, a blocking thread), so this leaves the worker first.
fn off_async_thread<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    use tokio::runtime::{Handle, RuntimeFlavor};
    match Handle::try_current().map(|h| h.runtime_flavor()) {
        Err(_) => f(),
        Ok(RuntimeFlavor::CurrentThread) => std::thread::scope(|scope| {
            scope
                .spawn(f)
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
        }),
        Ok(_) => tokio::task::block_in_place(f),
    }
}

/// Sends what a guest printed to the host's log, one event per line.
fn forward_printed(udf: &str, instance: &UdfInstance) {
    let printed = instance.take_printed();
    for line in printed.text.lines() {
        tracing::info!(target: "weir::udf", udf, "{line}");
    }
    if printed.dropped > 0 {
        tracing::warn!(target: "weir::udf", udf, "{} more bytes of guest output dropped (limits.max_log)", printed.dropped);
    }
}
