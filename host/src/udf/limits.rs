//! The resource limits of one UDF instance, each settable in the pipeline file.

use std::time::Duration;

use wasmtime::ResourceLimiter;

/// Limits that keep an untrusted UDF from taking the host down with it.
///
/// Pipeline files set them in `[limits]` (for every UDF) or in a stage's own `limits` table:
///
/// ```toml
/// [limits]
/// memory = "256MiB"      # linear memory cap per instance
/// timeout = "10s"        # wall time per call
/// max_output = "64MiB"   # bytes a call may return
/// max_log = "64KiB"      # guest stdout/stderr kept per call
/// max_rows = 10000       # rows per call; a larger batch is passed in slices
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct UdfLimits {
    /// The most linear memory an instance may grow to, in bytes. An instance whose memory has grown past
    /// half of it is replaced after its call, since linear memory never shrinks.
    pub memory_bytes: u64,
    /// The most wall time one `init` or `process` call may take; the call is interrupted past it.
    pub timeout: Duration,
    /// The most bytes one call may return.
    pub max_output_bytes: u64,
    /// The most guest stdout/stderr bytes kept per call; the rest is counted and dropped.
    pub max_log_bytes: u64,
    /// The most rows one `process` call gets: a partition's batch is passed in slices of this many rows,
    /// so an instance's linear memory (which never shrinks) follows this, not the micro-batch size.
    /// Spark's Arrow UDFs do the same (`spark.sql.execution.arrow.maxRecordsPerBatch`, also 10,000).
    pub max_rows_per_call: usize,
}

impl Default for UdfLimits {
    fn default() -> Self {
        UdfLimits {
            memory_bytes: 256 << 20,
            timeout: Duration::from_secs(10),
            max_output_bytes: 64 << 20,
            max_log_bytes: 64 << 10,
            max_rows_per_call: 10_000,
        }
    }
}

/// Refuses memory growth past the cap, remembering that it did so the error can say why.
pub(crate) struct MemoryCap {
    cap: u64,
    /// The size refused, and whether it was the module's initial memory rather than a `memory.grow`.
    pub(crate) refused: Option<(u64, bool)>,
    /// The largest size a memory of the instance has grown to.
    largest: u64,
}

impl MemoryCap {
    pub(crate) fn new(cap: u64) -> MemoryCap {
        MemoryCap {
            cap,
            refused: None,
            largest: 0,
        }
    }

    /// Whether a memory of the instance has grown past half the cap. Linear memory never shrinks, so such
    /// an instance is replaced after its call rather than pooled: memory a guest leaks call after call
    /// (componentize-py 0.25 leaks every binary value a Python UDF returns) then never reaches the cap, and
    /// a guest that merely needed much memory once gives it back.
    pub(crate) fn past_half(&self) -> bool {
        self.largest > self.cap / 2
    }
}

impl ResourceLimiter for MemoryCap {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired as u64 > self.cap {
            // wasmtime asks for a memory's initial size too, growing it from nothing.
            self.refused = Some((desired as u64, current == 0));
            // Trapping (rather than returning -1 from memory.grow) stops a guest that ignores failed growth.
            wasmtime::bail!("memory cap reached");
        }
        self.largest = self.largest.max(desired as u64);
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= 100_000)
    }
}
