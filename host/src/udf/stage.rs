//! A UDF stage: one module serving a pipeline stage, with a pool of instances and, for `weir run --reload`,
//! the ability to swap in a new version of its file between batches.
//!
//! A stage's output schema is fixed when the pipeline is planned, because the stages after it were checked
//! against it; a new version of the module must declare the same schema, or it is refused and the running
//! version stays.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use super::binary::{Linkers, Prepared, UdfInstance};
use super::{forward_printed, off_async_thread, Kind, UdfError, UdfFailure, UdfOutput};
use crate::udf::UdfSpec;
use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;

/// What identifies a version of a module file: the SHA-256 of its bytes (`None` when it cannot be read).
///
/// Not its modification time: file times advance in clock ticks of several milliseconds, so two builds in
/// quick succession can share one (seen in CI); hashing a 2 MB module once a second costs a few ms.
type Fingerprint = Option<[u8; 32]>;

fn fingerprint(path: &std::path::Path) -> Fingerprint {
    use sha2::Digest;
    let bytes = std::fs::read(path).ok()?;
    Some(sha2::Sha256::digest(&bytes).into())
}

/// One loaded version of a stage's module, with its idle instances.
pub(crate) struct Version {
    pre: Prepared,
    idle: Mutex<Vec<UdfInstance>>,
    output: SchemaRef,
}

impl Version {
    /// Compiles and checks the module, and initialises a first instance, which declares the output schema.
    /// On failure, says what was being done ("loading", "in init") and why.
    pub(crate) fn load(
        linkers: &Linkers,
        spec: &UdfSpec,
        kind: Kind,
        input: &SchemaRef,
    ) -> Result<Version, (&'static str, UdfFailure)> {
        let pre = linkers
            .prepare(&spec.path)
            .map_err(|cause| ("loading", cause))?;
        let mut first =
            UdfInstance::new(&pre, spec.limits, Some(kind)).map_err(|cause| ("loading", cause))?;
        let output = first
            .init(&spec.config.to_string(), input)
            .map_err(|cause| ("in init", cause))?;
        forward_printed(&spec.name, &first);
        Ok(Version {
            pre,
            idle: Mutex::new(vec![first]),
            output,
        })
    }

    /// Pools `instance` for the next call, unless its memory grew past half the cap: then it is dropped and
    /// the next call makes a fresh one.
    fn give_back(&self, instance: UdfInstance) {
        if instance.worn() {
            tracing::debug!(target: "weir::udf", "an instance grew past half of limits.memory; replacing it");
            return;
        }
        self.idle
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(instance);
    }
}

/// What a stage's calls came to since it was loaded (each call is one partition's batch, however many
/// slices it was passed in), for the metrics; counted with relaxed atomic adds.
#[derive(Debug, Default)]
pub(crate) struct CallCounts {
    calls: AtomicU64,
    nanos: AtomicU64,
    failures: AtomicU64,
    rows_in: AtomicU64,
    rows_out: AtomicU64,
}

/// What a stage's calls add up to, at one moment.
pub(crate) struct CallTotals {
    /// Calls.
    pub(crate) calls: u64,
    /// The time they took.
    pub(crate) time: Duration,
    /// How many failed.
    pub(crate) failures: u64,
    /// Rows handed to the UDF.
    pub(crate) rows_in: u64,
    /// Rows it returned (calls that failed return none).
    pub(crate) rows_out: u64,
}

impl CallCounts {
    fn record(&self, elapsed: Duration, rows_in: usize, rows_out: Option<usize>) {
        self.calls.fetch_add(1, Ordering::Relaxed);
        self.nanos
            .fetch_add(elapsed.as_nanos() as u64, Ordering::Relaxed);
        self.failures
            .fetch_add(u64::from(rows_out.is_none()), Ordering::Relaxed);
        self.rows_in.fetch_add(rows_in as u64, Ordering::Relaxed);
        self.rows_out
            .fetch_add(rows_out.unwrap_or(0) as u64, Ordering::Relaxed);
    }

    /// The totals so far.
    pub(crate) fn read(&self) -> CallTotals {
        CallTotals {
            calls: self.calls.load(Ordering::Relaxed),
            time: Duration::from_nanos(self.nanos.load(Ordering::Relaxed)),
            failures: self.failures.load(Ordering::Relaxed),
            rows_in: self.rows_in.load(Ordering::Relaxed),
            rows_out: self.rows_out.load(Ordering::Relaxed),
        }
    }
}

/// One loaded UDF stage of a pipeline, shared by the workers that run it.
pub struct UdfStage {
    spec: UdfSpec,
    kind: Kind,
    config: String,
    input: SchemaRef,
    output: SchemaRef,
    linkers: Linkers,
    current: RwLock<Arc<Version>>,
    /// The file's fingerprint when it was last read, loaded or not, so each version is tried once.
    seen: Mutex<Fingerprint>,
    counts: Arc<CallCounts>,
}

impl UdfStage {
    pub(crate) fn new(
        spec: &UdfSpec,
        kind: Kind,
        input: SchemaRef,
        linkers: Linkers,
        version: Version,
    ) -> UdfStage {
        UdfStage {
            spec: spec.clone(),
            kind,
            config: spec.config.to_string(),
            input,
            output: version.output.clone(),
            linkers,
            current: RwLock::new(Arc::new(version)),
            seen: Mutex::new(fingerprint(&spec.path)),
            counts: Arc::default(),
        }
    }

    /// The stage name, from the pipeline file or the module's file stem.
    pub fn name(&self) -> &str {
        &self.spec.name
    }

    /// Whether this is a deserializer or a transform.
    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// The schema the stage takes.
    pub fn input_schema(&self) -> &SchemaRef {
        &self.input
    }

    /// The stage's calls so far.
    pub(crate) fn call_counts(&self) -> Arc<CallCounts> {
        self.counts.clone()
    }

    /// The schema the stage returns, as its init declared.
    pub fn output_schema(&self) -> &SchemaRef {
        &self.output
    }

    fn error(&self, operation: &'static str, records: &str, cause: UdfFailure) -> UdfError {
        UdfError {
            udf: self.spec.name.clone(),
            path: self.spec.path.clone(),
            operation,
            records: records.to_string(),
            cause: Box::new(cause),
        }
    }

    /// Runs the UDF on one batch. `records` describes the input for errors (e.g. " on tx-0 offsets 5..=9").
    ///
    /// The instance used goes back to the pool only if the call succeeded or failed cleanly with the
    /// guest's own error status; after a trap, timeout, cap or malformed output it is dropped, and the next
    /// call gets a fresh one.
    pub fn process(&self, batch: &RecordBatch, records: &str) -> Result<UdfOutput, UdfError> {
        let started = Instant::now();
        let result = off_async_thread(|| self.process_here(batch, records));
        let rows_out = result.as_ref().ok().map(|output| output.batch.num_rows());
        self.counts
            .record(started.elapsed(), batch.num_rows(), rows_out);
        result
    }

    fn process_here(&self, batch: &RecordBatch, records: &str) -> Result<UdfOutput, UdfError> {
        let version = self
            .current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let pooled = version.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let mut instance = match pooled {
            Some(instance) => instance,
            None => {
                let mut fresh = UdfInstance::new(&version.pre, self.spec.limits, Some(self.kind))
                    .map_err(|cause| self.error("instantiating", records, cause))?;
                let output = fresh
                    .init(&self.config, &self.input)
                    .map_err(|cause| self.error("in init", records, cause))?;
                if output.fields() != self.output.fields() {
                    return Err(self.error(
                        "in init",
                        records,
                        UdfFailure::MalformedOutput(format!(
                            "a new instance declared {output:?}, but the first declared {:?}",
                            self.output
                        )),
                    ));
                }
                fresh
            }
        };
        let result = self.process_in_slices(&mut instance, batch);
        forward_printed(&self.spec.name, &instance);
        match result {
            Ok(output) => {
                version.give_back(instance);
                Ok(output)
            }
            Err(cause @ UdfFailure::Guest(_)) => {
                version.give_back(instance);
                Err(self.error("in process", records, cause))
            }
            Err(cause) => Err(self.error("in process", records, cause)),
        }
    }

    /// Calls the instance on `batch` in slices of at most `limits.max_rows_per_call` rows, and joins the
    /// outputs; row errors are renumbered to rows of `batch`.
    fn process_in_slices(
        &self,
        instance: &mut UdfInstance,
        batch: &RecordBatch,
    ) -> Result<UdfOutput, UdfFailure> {
        let rows = batch.num_rows();
        let step = self.spec.limits.max_rows_per_call.max(1);
        if rows <= step {
            return instance.process(batch, &self.output);
        }
        let mut batches = Vec::with_capacity(rows.div_ceil(step));
        let mut row_errors = Vec::new();
        for start in (0..rows).step_by(step) {
            let output =
                instance.process(&batch.slice(start, step.min(rows - start)), &self.output)?;
            batches.push(output.batch);
            row_errors.extend(output.row_errors.into_iter().map(|mut e| {
                e.row += start as u32;
                e
            }));
        }
        let batch = arrow_select::concat::concat_batches(&self.output, &batches).map_err(|e| {
            UdfFailure::MalformedOutput(format!("joining the outputs of the slices: {e}"))
        })?;
        Ok(UdfOutput { batch, row_errors })
    }

    /// For `--reload`: if the module file changed since it was last read, loads the new version (ABI check,
    /// init with the same config and input schema) and swaps it in for the calls that follow. Returns whether
    /// it swapped; an error means the new version was refused and the running one stays.
    ///
    /// Call it between batches: a batch runs entirely on the version it started with, so no record is
    /// processed twice or skipped.
    pub fn reload_if_changed(&self) -> Result<bool, UdfError> {
        let now = fingerprint(&self.spec.path);
        {
            let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
            if *seen == now {
                return Ok(false);
            }
            *seen = now;
        }
        if now.is_none() {
            return Err(self.error(
                "reloading",
                "",
                UdfFailure::Load("the module file is gone; the running version stays".into()),
            ));
        }
        let version =
            off_async_thread(|| Version::load(&self.linkers, &self.spec, self.kind, &self.input))
                .map_err(|(_, cause)| self.error("reloading", "", cause))?;
        if version.output.fields() != self.output.fields() {
            return Err(self.error(
                "reloading",
                "",
                UdfFailure::Abi(format!(
                    "the new version declares the output {}, but the pipeline was planned with {}; \
                     the running version stays (restart the pipeline to change a stage's schema)",
                    crate::schema::column_list(&version.output),
                    crate::schema::column_list(&self.output)
                )),
            ));
        }
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(version);
        Ok(true)
    }

    /// The module file.
    pub fn path(&self) -> &PathBuf {
        &self.spec.path
    }
}
