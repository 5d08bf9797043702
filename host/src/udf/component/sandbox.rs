//! The host side of a component's store: WASI preview 2 with nothing to reach, and the limits.
//!
//! A component imports WASI 0.2 (componentize-py's CPython and jco's SpiderMonkey import most of it). It
//! gets the same sandbox as a core module: no preopened directories, environment, arguments or network;
//! empty stdin; stdout and stderr into the bounded guest log. wasmtime-wasi blocks in its host calls when
//! a guest waits for a clock, where epoch interruption cannot stop it, so the two monotonic-clock
//! subscriptions are Weir's own: a wait that would outlast the call's time limit ends the call at once, as
//! a core module's `poll_oneoff` does (`udf/poll.rs`).

use std::time::{Duration, Instant};

use wasmtime::component::{Linker, Resource, ResourceTable};
use wasmtime::StoreContextMut;
use wasmtime_wasi::clocks::WasiClocksView;
use wasmtime_wasi::p2::bindings::clocks::monotonic_clock::Host as MonotonicClock;
use wasmtime_wasi::p2::DynPollable;
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

use crate::udf::limits::MemoryCap;
use crate::udf::log::GuestLog;
use crate::udf::poll::{GuestClock, RefusedSleep};
use crate::udf::UdfLimits;

/// The WASI interface whose subscriptions are replaced; the version wasmtime-wasi 48 implements (guests
/// built for any 0.2.x link to it).
const MONOTONIC_CLOCK: &str = "wasi:clocks/monotonic-clock@0.2.12";

/// What a component's store holds besides the guest.
pub(crate) struct ComponentState {
    wasi: WasiCtx,
    table: ResourceTable,
    pub(crate) limiter: MemoryCap,
    clock: GuestClock,
    /// When the current call's `limits.timeout` runs out.
    pub(crate) deadline: Instant,
    /// Set when a subscription past `deadline` was refused, so the trap is reported as the time limit.
    pub(crate) refused_sleep: Option<RefusedSleep>,
}

impl ComponentState {
    /// The host side for an instance with `limits`, printing into `log`.
    pub(crate) fn new(limits: UdfLimits, log: &GuestLog) -> ComponentState {
        let clock = GuestClock::new();
        let wasi = WasiCtxBuilder::new()
            .stdout(log.clone())
            .stderr(log.clone())
            .monotonic_clock(clock)
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .build();
        ComponentState {
            wasi,
            table: ResourceTable::new(),
            limiter: MemoryCap::new(limits.memory_bytes),
            clock,
            deadline: Instant::now() + limits.timeout,
            refused_sleep: None,
        }
    }

    /// Refuses a wait of `asked` that would outlast the call's time limit.
    fn check_wait(&mut self, asked: Duration) -> wasmtime::Result<()> {
        let left = self.deadline.saturating_duration_since(Instant::now());
        if asked > left {
            self.refused_sleep = Some(RefusedSleep {
                asked,
                left,
                through: "wasi:clocks/monotonic-clock",
            });
            wasmtime::bail!("the guest asked to wait past its time limit");
        }
        Ok(())
    }
}

impl WasiView for ComponentState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// A linker with WASI 0.2, its clock subscriptions bounded by the call's time limit.
pub(crate) fn linker(engine: &wasmtime::Engine) -> wasmtime::Result<Linker<ComponentState>> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_sync(&mut linker)?;
    linker.allow_shadowing(true);
    let mut clock = linker.instance(MONOTONIC_CLOCK)?;
    clock.func_wrap(
        "subscribe-duration",
        |mut store: StoreContextMut<'_, ComponentState>, (nanos,): (u64,)| {
            store.data_mut().check_wait(Duration::from_nanos(nanos))?;
            let pollable: Resource<DynPollable> =
                MonotonicClock::subscribe_duration(&mut store.data_mut().clocks(), nanos)?;
            Ok((pollable,))
        },
    )?;
    clock.func_wrap(
        "subscribe-instant",
        |mut store: StoreContextMut<'_, ComponentState>, (when,): (u64,)| {
            let state = store.data_mut();
            let now = state.clock.now_nanos();
            state.check_wait(Duration::from_nanos(when.saturating_sub(now)))?;
            let pollable: Resource<DynPollable> =
                MonotonicClock::subscribe_instant(&mut store.data_mut().clocks(), when)?;
            Ok((pollable,))
        },
    )?;
    Ok(linker)
}
