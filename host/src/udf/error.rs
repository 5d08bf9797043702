//! Errors of UDF calls, each naming the UDF, its module file and the records it was working on.

use std::path::PathBuf;
use std::time::Duration;

use super::poll::RefusedSleep;

/// A UDF failed: which one, doing what, on which records, and why.
#[derive(Debug, thiserror::Error)]
#[error("UDF `{udf}` ({path}) failed {operation}{records}: {cause}")]
pub struct UdfError {
    /// The stage name.
    pub udf: String,
    /// The module file.
    pub path: PathBuf,
    /// What the host was doing: "loading", "in init", "in process".
    pub operation: &'static str,
    /// The input records, e.g. " on transactions-0 offsets 100..=199"; empty when not about records.
    pub records: String,
    /// Why (boxed: errors travel through every stage's `Result`, so they are kept small).
    pub cause: Box<UdfFailure>,
}

/// Why a UDF call failed.
#[derive(Debug, thiserror::Error)]
pub enum UdfFailure {
    /// The module file could not be read or compiled.
    #[error("cannot load the module: {0}")]
    Load(String),
    /// The module does not follow ABI v1 (version marker, exports, imports, kind, status codes).
    #[error("{0}")]
    Abi(String),
    /// The guest trapped (a panic, an `unreachable`, a stack overflow, a bad memory access).
    #[error("the guest trapped: {message}{printed}")]
    Trap {
        /// wasmtime's description of the trap, with the guest backtrace when there is one.
        message: String,
        /// The end of what the guest printed, to show a panic message.
        printed: String,
    },
    /// The call ran past the time limit and was interrupted, or asked to sleep past it and was ended at once.
    #[error("the call ran longer than the {limit:?} limit (limits.timeout) and was interrupted{}",
        sleep.map(|s| format!(": {s}")).unwrap_or_default())]
    Timeout {
        /// The limit.
        limit: Duration,
        /// The sleep that would have outlasted it, when the guest was waiting in WASI rather than running.
        sleep: Option<RefusedSleep>,
    },
    /// The guest tried to grow its memory past the cap, or the module declares more initial memory than it.
    #[error("{} {desired} bytes, past the {cap}-byte cap (limits.memory)",
        if *initial { "the module declares an initial memory of" } else { "the guest tried to grow its memory to" })]
    MemoryCap {
        /// The size it asked for.
        desired: u64,
        /// The cap.
        cap: u64,
        /// Whether it was the module's declared initial memory, not a `memory.grow`.
        initial: bool,
    },
    /// The guest returned more bytes than allowed.
    #[error("the guest returned {len} bytes, more than the {cap}-byte cap (limits.max_output)")]
    OutputTooLarge {
        /// Bytes returned.
        len: u64,
        /// The cap.
        cap: u64,
    },
    /// The guest's result could not be read: bad pointers, bad envelope, bad Arrow IPC, wrong schema.
    #[error("malformed output: {0}")]
    MalformedOutput(String),
    /// The guest reported an error with its status code and message.
    #[error("the UDF reported: {0}")]
    Guest(String),
}

/// What a store recorded during a failed call. The records come before the trap in the explanation,
/// since they explain it: a refused memory grow, an oversized output and a refused sleep each end in a
/// trap of their own making.
pub(crate) struct Recorded {
    /// The memory size refused, and whether it was the initial memory.
    pub(crate) memory: Option<(u64, bool)>,
    /// The output size refused.
    pub(crate) output: Option<u64>,
    /// The wait refused.
    pub(crate) sleep: Option<RefusedSleep>,
}

impl Recorded {
    /// Why the call that returned `error` failed; the end of what the guest printed goes with a trap.
    pub(crate) fn explain(
        self,
        error: wasmtime::Error,
        log: &super::log::GuestLog,
        limits: super::UdfLimits,
    ) -> UdfFailure {
        if let Some((desired, initial)) = self.memory {
            return UdfFailure::MemoryCap {
                desired,
                cap: limits.memory_bytes,
                initial,
            };
        }
        if let Some(len) = self.output {
            return UdfFailure::OutputTooLarge {
                len,
                cap: limits.max_output_bytes,
            };
        }
        if self.sleep.is_some()
            || matches!(
                error.downcast_ref::<wasmtime::Trap>(),
                Some(wasmtime::Trap::Interrupt)
            )
        {
            return UdfFailure::Timeout {
                limit: limits.timeout,
                sleep: self.sleep,
            };
        }
        UdfFailure::Trap {
            message: trap_message(&error),
            printed: log.take_tail(),
        }
    }
}

/// A trap in one line: its cause first, then where (the innermost frames). The whole backtrace, often
/// hundreds of bytes over many lines, would bury the cause in the error and in dead-letter headers, so it
/// goes to the debug log instead (`WEIR_LOG=weir::udf=debug`).
pub(crate) fn trap_message(error: &wasmtime::Error) -> String {
    let cause = error.root_cause().to_string();
    let cause = cause.strip_prefix("wasm trap: ").unwrap_or(&cause);
    let Some(backtrace) = error.downcast_ref::<wasmtime::WasmBacktrace>() else {
        return cause.to_string();
    };
    tracing::debug!(target: "weir::udf", "the guest's backtrace: {backtrace}");
    const SHOWN: usize = 3;
    let frames = backtrace.frames();
    let names: Vec<String> = frames
        .iter()
        .take(SHOWN)
        .map(|frame| match frame.func_name() {
            Some(name) => format!("`{name}`"),
            None => format!("function {}", frame.func_index()),
        })
        .collect();
    match frames.len() {
        0 => cause.to_string(),
        n if n <= SHOWN => format!("{cause}, at {}", names.join(" ← ")),
        n => format!("{cause}, at {} ← … ({n} frames)", names.join(" ← ")),
    }
}
