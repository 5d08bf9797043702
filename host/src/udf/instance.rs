//! One running instance of a UDF module: its store, its limits, and the ABI v1 calls.
//!
//! An instance serves one worker at a time. Through the Arrow IPC interface it copies each input batch into
//! guest memory once and each result out once; through the row interface ([`super::rows`]) the guest pulls
//! values and the host builds the output. Everything read back from the guest is bounds-checked, so a hostile
//! module can make a call fail but cannot make the host panic (`instance/guest_memory.rs`); a failed call
//! is classified from what the store recorded (`instance/failure.rs`).

use std::time::{Duration, Instant};

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use wasmtime::{Instance, InstancePre, Memory, Store, TypedFunc};
use wasmtime_wasi::p1::WasiP1Ctx;
use wasmtime_wasi::WasiCtxBuilder;
use weir_guest::abi::{self, Kind, RowError};
use weir_guest::ipc;

use super::limits::MemoryCap;
use super::log::GuestLog;
use super::output::{decode_output, untrusted_ipc};
use super::poll::{GuestClock, RefusedSleep};
use super::rows::RowIo;
use super::{UdfFailure, UdfLimits, EPOCH_TICK};
use failure::classify;
use guest_memory::IpcCalls;

mod failure;
mod guest_memory;

/// The host side of a store: WASI with no files, network or environment, the guest's log and its limits.
pub(crate) struct GuestState {
    wasi: WasiP1Ctx,
    limiter: MemoryCap,
    /// The row interface's input, output and declarations.
    pub(crate) rows: RowIo,
    /// The guest's monotonic clock, which `poll_oneoff` reads for absolute deadlines.
    pub(crate) clock: GuestClock,
    /// When the current call's `limits.timeout` runs out; host calls that wait stop short of it.
    pub(crate) deadline: Instant,
    /// Set when `poll_oneoff` refused a sleep past `deadline`, so the trap is reported as the time limit.
    pub(crate) refused_sleep: Option<RefusedSleep>,
}

impl GuestState {
    /// The host side for an instance with `limits`: its stdout and stderr go to `log`, its clock is its own,
    /// and it sees no files, network or environment.
    pub(crate) fn new(limits: UdfLimits, log: &GuestLog) -> GuestState {
        let clock = GuestClock::new();
        let wasi = WasiCtxBuilder::new()
            .stdout(log.clone())
            .stderr(log.clone())
            .monotonic_clock(clock)
            .build_p1();
        GuestState {
            wasi,
            limiter: MemoryCap::new(limits.memory_bytes),
            rows: RowIo::new(log.clone(), limits.max_output_bytes),
            clock,
            deadline: Instant::now() + limits.timeout,
            refused_sleep: None,
        }
    }

    pub(crate) fn wasi(&mut self) -> &mut WasiP1Ctx {
        &mut self.wasi
    }
}

/// The functions of the interface a module implements, looked up once.
enum Calls {
    /// Arrow IPC batches in guest memory (`weir_init`, `weir_process`).
    Ipc(IpcCalls),
    /// Values through the `weir::*` host imports (`weir_init_rows`, `weir_process_rows`).
    Rows {
        init: TypedFunc<(), i32>,
        process: TypedFunc<i32, i32>,
    },
}

impl Calls {
    /// The row interface's functions when the module exports them, otherwise the IPC interface's.
    fn look_up(
        pre: &InstancePre<GuestState>,
        instance: &Instance,
        store: &mut Store<GuestState>,
    ) -> Result<Calls, UdfFailure> {
        let abi_error = |e: wasmtime::Error| UdfFailure::Abi(format!("{e:#}"));
        if pre.module().get_export(abi::rows::PROCESS_EXPORT).is_some() {
            return Ok(Calls::Rows {
                init: instance
                    .get_typed_func(&mut *store, abi::rows::INIT_EXPORT)
                    .map_err(abi_error)?,
                process: instance
                    .get_typed_func(&mut *store, abi::rows::PROCESS_EXPORT)
                    .map_err(abi_error)?,
            });
        }
        Ok(Calls::Ipc(IpcCalls {
            alloc: instance
                .get_typed_func(&mut *store, abi::ALLOC_EXPORT)
                .map_err(abi_error)?,
            free: instance
                .get_typed_func(&mut *store, abi::FREE_EXPORT)
                .map_err(abi_error)?,
            init: instance
                .get_typed_func(&mut *store, abi::INIT_EXPORT)
                .map_err(abi_error)?,
            process: instance
                .get_typed_func(&mut *store, abi::PROCESS_EXPORT)
                .map_err(abi_error)?,
            result_slot: 0,
        }))
    }
}

/// The kind `weir_kind` returned (`code`), if ABI v1 defines it and it is the one `expected`.
fn checked_kind(code: i32, expected: Option<Kind>) -> Result<Kind, UdfFailure> {
    match (Kind::from_code(code), expected) {
        (Some(kind), None) => Ok(kind),
        (Some(kind), Some(expected)) if kind == expected => Ok(kind),
        (Some(kind), Some(expected)) => Err(UdfFailure::Abi(format!(
            "the module is a {}, but it is used as a {}",
            kind.name(),
            expected.name()
        ))),
        (None, _) => Err(UdfFailure::Abi(format!(
            "`weir_kind` returned {code}, which ABI v1 does not define"
        ))),
    }
}

/// An instantiated module with its ABI functions looked up once.
pub(crate) struct CoreInstance {
    store: Store<GuestState>,
    memory: Memory,
    calls: Calls,
    /// What the module says it is (`weir_kind`).
    pub(crate) kind: Kind,
    /// The ABI minor version the module was built for (`weir_abi_v1`).
    pub(crate) minor: i32,
    log: GuestLog,
    limits: UdfLimits,
}

/// A successful process call.
pub struct UdfOutput {
    /// The rows the UDF returned.
    pub batch: RecordBatch,
    /// Input rows the UDF reported as failed, by index in the input batch.
    pub row_errors: Vec<RowError>,
}

impl CoreInstance {
    /// Instantiates the module and checks its kind against `expected` (any kind when `None`); `init` is a
    /// separate step.
    pub(crate) fn new(
        pre: &InstancePre<GuestState>,
        limits: UdfLimits,
        expected: Option<Kind>,
    ) -> Result<Self, UdfFailure> {
        let log = GuestLog::new(limits.max_log_bytes);
        let mut store = Store::new(pre.module().engine(), GuestState::new(limits, &log));
        store.limiter(|state| &mut state.limiter);
        store.epoch_deadline_trap();
        store.set_epoch_deadline(ticks(limits.timeout));
        let instance = pre
            .instantiate(&mut store)
            .map_err(|e| classify(&mut store, &log, limits, e))?;
        let abi_error = |e: wasmtime::Error| UdfFailure::Abi(format!("{e:#}"));
        let memory = instance
            .get_memory(&mut store, abi::MEMORY_EXPORT)
            .ok_or_else(|| UdfFailure::Abi("no exported memory".into()))?;
        store.data_mut().rows.memory = Some(memory);
        let calls = Calls::look_up(pre, &instance, &mut store)?;
        let kind: TypedFunc<(), i32> = instance
            .get_typed_func(&mut store, abi::KIND_EXPORT)
            .map_err(abi_error)?;
        let mut this = CoreInstance {
            store,
            memory,
            calls,
            log,
            limits,
            // Both are read from the module just below.
            kind: Kind::Transform,
            minor: 0,
        };
        // WASI reactors (Rust and C cdylibs among them) run their constructors in `_initialize`.
        if let Ok(initialize) = instance.get_typed_func::<(), ()>(&mut this.store, "_initialize") {
            this.call(|store| initialize.call(store, ()))?;
        }
        let version: TypedFunc<(), i32> = instance
            .get_typed_func(&mut this.store, abi::VERSION_EXPORT)
            .map_err(abi_error)?;
        this.minor = this.call(|store| version.call(store, ()))?;
        let code = this.call(|store| kind.call(store, ()))?;
        this.kind = checked_kind(code, expected)?;
        if let Calls::Ipc(ipc) = &this.calls {
            let slot = this.alloc_bytes(&ipc.clone(), abi::RESULT_SLOT_LEN)?;
            if let Calls::Ipc(ipc) = &mut this.calls {
                ipc.result_slot = slot;
            }
        }
        Ok(this)
    }

    /// Calls `weir_init` with the configuration JSON and the input schema; returns the output schema.
    pub(crate) fn init(
        &mut self,
        config: &str,
        input: &SchemaRef,
    ) -> Result<SchemaRef, UdfFailure> {
        let ipc = match &self.calls {
            Calls::Ipc(ipc) => ipc.clone(),
            Calls::Rows { init, .. } => {
                let init = init.clone();
                self.store
                    .data_mut()
                    .rows
                    .begin_init(config, input)
                    .map_err(UdfFailure::Guest)?;
                let status = self.call(|store| init.call(store, ()))?;
                let rows = &mut self.store.data_mut().rows;
                return match status {
                    abi::STATUS_OK => rows.declared.take().ok_or_else(|| {
                        UdfFailure::Abi(
                            "`weir_init_rows` returned 0 without declaring the output schema with weir::output_schema"
                                .into(),
                        )
                    }),
                    abi::STATUS_ERROR => Err(UdfFailure::Guest(guest_message(rows.error.take()))),
                    other => Err(UdfFailure::Abi(format!(
                        "`weir_init_rows` returned status {other}, which ABI v1 does not define"
                    ))),
                };
            }
        };
        let schema = ipc::schema_to_ipc(input)
            .map_err(|e| UdfFailure::Abi(format!("encoding the input schema: {e}")))?;
        let config_ptr = self.write_bytes(&ipc, config.as_bytes())?;
        let schema_ptr = self.write_bytes(&ipc, &schema)?;
        let (init, slot) = (ipc.init.clone(), ipc.result_slot);
        let status = self.call(|store| {
            init.call(
                store,
                (
                    config_ptr,
                    config.len() as i32,
                    schema_ptr,
                    schema.len() as i32,
                    slot,
                ),
            )
        })?;
        self.free_bytes(&ipc, config_ptr, config.len())?;
        self.free_bytes(&ipc, schema_ptr, schema.len())?;
        let result = self.take_result(&ipc)?;
        match status {
            abi::STATUS_OK => untrusted_ipc(|| ipc::schema_from_ipc(&result)).map_err(|e| {
                UdfFailure::MalformedOutput(format!(
                    "the output schema is not an Arrow IPC stream: {e}"
                ))
            }),
            abi::STATUS_ERROR => Err(UdfFailure::Guest(
                String::from_utf8_lossy(&result).into_owned(),
            )),
            other => Err(UdfFailure::Abi(format!(
                "`weir_init` returned status {other}, which ABI v1 does not define"
            ))),
        }
    }

    /// Calls `weir_process` on one batch; checks the result against the declared output schema.
    pub(crate) fn process(
        &mut self,
        batch: &RecordBatch,
        output: &SchemaRef,
    ) -> Result<UdfOutput, UdfFailure> {
        let ipc = match &self.calls {
            Calls::Ipc(ipc) => ipc.clone(),
            Calls::Rows { process, .. } => {
                return self.process_rows(process.clone(), batch, output)
            }
        };
        let input = ipc::batch_to_ipc(batch)
            .map_err(|e| UdfFailure::Abi(format!("encoding the input batch: {e}")))?;
        let input_ptr = self.write_bytes(&ipc, &input)?;
        let (process, slot) = (ipc.process.clone(), ipc.result_slot);
        let status =
            self.call(|store| process.call(store, (input_ptr, input.len() as i32, slot)))?;
        self.free_bytes(&ipc, input_ptr, input.len())?;
        let result = self.take_result(&ipc)?;
        match status {
            abi::STATUS_OK => {}
            abi::STATUS_ERROR => {
                return Err(UdfFailure::Guest(
                    String::from_utf8_lossy(&result).into_owned(),
                ))
            }
            other => {
                return Err(UdfFailure::Abi(format!(
                    "`weir_process` returned status {other}, which ABI v1 does not define"
                )))
            }
        }
        decode_output(
            &result,
            output,
            batch.num_rows(),
            self.limits.max_output_bytes,
        )
    }

    /// `weir_process_rows`: the guest reads `batch` and appends rows through the row interface.
    fn process_rows(
        &mut self,
        process: TypedFunc<i32, i32>,
        batch: &RecordBatch,
        output: &SchemaRef,
    ) -> Result<UdfOutput, UdfFailure> {
        let rows = i32::try_from(batch.num_rows()).map_err(|_| {
            UdfFailure::Abi(format!(
                "{} rows do not fit a 32-bit guest",
                batch.num_rows()
            ))
        })?;
        self.store.data_mut().rows.begin_process(batch, output);
        let status = self.call(|store| process.call(store, rows));
        let state = &mut self.store.data_mut().rows;
        let status = match status {
            Ok(status) => status,
            Err(failure) => {
                state.abandon();
                return Err(failure);
            }
        };
        match status {
            abi::STATUS_OK => {
                let (batch, row_errors) = state
                    .finish_process(output)
                    .map_err(UdfFailure::MalformedOutput)?;
                Ok(UdfOutput { batch, row_errors })
            }
            abi::STATUS_ERROR => {
                state.abandon();
                Err(UdfFailure::Guest(guest_message(state.error.take())))
            }
            other => {
                state.abandon();
                Err(UdfFailure::Abi(format!(
                    "`weir_process_rows` returned status {other}, which ABI v1 does not define"
                )))
            }
        }
    }

    /// What the guest printed since the last call, for the host's log.
    pub(crate) fn take_printed(&self) -> super::log::Printed {
        self.log.take()
    }

    /// Whether its memory has grown past half of `limits.memory` ([`MemoryCap::past_half`]).
    pub(crate) fn worn(&self) -> bool {
        self.store.data().limiter.past_half()
    }

    /// Runs one guest call under the time limit, turning traps into [`UdfFailure`]s.
    fn call<R>(
        &mut self,
        f: impl FnOnce(&mut Store<GuestState>) -> wasmtime::Result<R>,
    ) -> Result<R, UdfFailure> {
        self.store.set_epoch_deadline(ticks(self.limits.timeout));
        self.store.data_mut().deadline = Instant::now() + self.limits.timeout;
        let result = f(&mut self.store);
        result.map_err(|e| classify(&mut self.store, &self.log, self.limits, e))
    }
}

/// The message a guest gave with `weir::error`, or a note that it gave none.
fn guest_message(message: Option<String>) -> String {
    message.unwrap_or_else(|| "(no message: call weir::error before returning status 1)".into())
}

/// Epoch ticks for a time limit, rounding up so a limit is never shorter than asked.
pub(crate) fn ticks(timeout: Duration) -> u64 {
    (timeout.as_nanos() / EPOCH_TICK.as_nanos()) as u64 + 1
}
