//! What went wrong in a core module's call, as a [`UdfFailure`], from what its store recorded.

use wasmtime::Store;

use super::GuestState;
use crate::udf::error::Recorded;
use crate::udf::log::GuestLog;
use crate::udf::{UdfFailure, UdfLimits};

/// The failure of a call that returned `error`.
pub(super) fn classify(
    store: &mut Store<GuestState>,
    log: &GuestLog,
    limits: UdfLimits,
    error: wasmtime::Error,
) -> UdfFailure {
    let state = store.data_mut();
    let recorded = Recorded {
        memory: state.limiter.refused.take(),
        output: state.rows.out.too_large.take(),
        sleep: state.refused_sleep.take(),
    };
    recorded.explain(error, log, limits)
}
