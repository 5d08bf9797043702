//! The WebAssembly UDF runtime: modules compiled once, instances pooled per worker, limits enforced.
//!
//! ```text
//! UdfRuntime (one wasmtime Engine + the WASI linker + the epoch ticker)
//!   └─ UdfStage (one per pipeline stage: compiled module, config, schemas)
//!        └─ UdfInstance (one per worker, reused while calls succeed; a failed instance is dropped)
//! ```
//! Time limits use epoch interruption: a background thread ticks every [`EPOCH_TICK`], and each call may
//! run for its timeout's worth of ticks. Epochs stop guest code, not a host call in progress, so WASI's one
//! blocking call, `poll_oneoff`, is Weir's own and waits only within the call's time left (`poll.rs`).
//! Memory is capped per instance by a resource limiter.

mod binary;
mod compile_cache;
mod component;
#[cfg(test)]
mod decode_fuzz;
mod error;
mod instance;
mod limits;
mod log;
mod module;
mod output;
mod poll;
mod rows;
mod spec;
mod stage;

use std::time::Duration;

use arrow_schema::SchemaRef;
use wasmtime::{Config, Engine, Linker};
pub use weir_guest::abi::Kind;

use binary::{Linkers, UdfInstance};
pub use error::{UdfError, UdfFailure};
use instance::GuestState;
pub(crate) use instance::UdfOutput;
pub use limits::UdfLimits;
pub(crate) use module::ModuleInfo;
pub use spec::{OnError, OnFailure, TransformSpec, UdfSpec};
pub use stage::UdfStage;
use stage::Version;
pub(crate) use stage::{CallCounts, CallTotals};

/// How often the epoch advances; the resolution of UDF time limits.
pub(crate) const EPOCH_TICK: Duration = Duration::from_millis(10);

/// The shared engine that compiles and runs every UDF module.
///
/// Create one per process (it owns a ticker thread) and load each stage's module through it.
#[derive(Clone)]
pub struct UdfRuntime {
    linkers: Linkers,
}

impl UdfRuntime {
    /// Creates the engine and starts its epoch ticker, which stops when the engine is dropped.
    pub fn new() -> anyhow::Result<UdfRuntime> {
        let mut config = Config::new();
        config.epoch_interruption(true);
        enable_proposals(&mut config);
        let engine = Engine::new(&config)
            .map_err(|e| anyhow::anyhow!("creating the WebAssembly engine: {e:#}"))?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p1::add_to_linker_sync(&mut linker, |state: &mut GuestState| state.wasi())
            .and_then(|()| poll::add_to_linker(&mut linker))
            .map_err(|e| anyhow::anyhow!("adding WASI to the linker: {e:#}"))?;
        rows::add_to_linker(&mut linker)
            .map_err(|e| anyhow::anyhow!("adding the row interface to the linker: {e:#}"))?;
        let components = component::linker(&engine)
            .map_err(|e| anyhow::anyhow!("adding WASI 0.2 to the component linker: {e:#}"))?;
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
        Ok(UdfRuntime {
            linkers: Linkers {
                core: linker,
                component: components,
            },
        })
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
        let info = module::describe_file(self.linkers.engine(), path)
            .map_err(|cause| error("loading", cause))?;
        if info.abi.is_err() {
            return Ok((info, None));
        }
        let pre = self
            .linkers
            .prepare(path)
            .map_err(|cause| error("loading", cause))?;
        let instance = UdfInstance::new(&pre, UdfLimits::default(), None)
            .map_err(|cause| error("instantiating", cause))?;
        Ok((info, Some(instance.version())))
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
        let version = Version::load(&self.linkers, spec, kind, &input)
            .map_err(|(operation, cause)| error(operation, cause))?;
        Ok(UdfStage::new(
            spec,
            kind,
            input,
            self.linkers.clone(),
            version,
        ))
    }
}

/// The WebAssembly proposals a UDF may use, set here rather than left to wasmtime's defaults so that
/// docs/abi.md can list them and they do not change with a wasmtime upgrade. On: WebAssembly 2.0 (mutable
/// globals, saturating float-to-int, sign extension, multi-value, bulk memory, reference types, 128-bit
/// SIMD), tail calls and extended constant expressions: what Rust, C, Zig and AssemblyScript emit. Off:
/// relaxed SIMD (its results may differ between machines, and a refused row is traced by running the
/// stages again), memory64 and multiple memories (the ABI has one 32-bit `memory`). Threads, exceptions,
/// GC and function references need wasmtime cargo features Weir does not build, so they are off too.
fn enable_proposals(config: &mut Config) {
    config
        .wasm_multi_value(true)
        .wasm_bulk_memory(true)
        .wasm_simd(true)
        .wasm_tail_call(true)
        .wasm_extended_const(true)
        .wasm_relaxed_simd(false)
        .wasm_memory64(false)
        .wasm_multi_memory(false);
}

/// Runs guest code where WASI may block: wasmtime-wasi's synchronous calls (a guest printing, say) block on
/// the ambient tokio runtime, which panics on an async worker thread. Callers may be anywhere (the CLI's
/// async main, an embedding application's task, a blocking thread), so this leaves the worker first.
pub(crate) fn off_async_thread<R: Send>(f: impl FnOnce() -> R + Send) -> R {
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
pub(crate) fn forward_printed(udf: &str, instance: &UdfInstance) {
    let printed = instance.take_printed();
    for line in printed.text.lines() {
        tracing::info!(target: "weir::udf", udf, "{line}");
    }
    if printed.dropped > 0 {
        tracing::warn!(target: "weir::udf", udf, "{} more bytes of guest output dropped (limits.max_log)", printed.dropped);
    }
}
