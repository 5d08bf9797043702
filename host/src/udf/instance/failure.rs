//! What went wrong in a guest call, as a [`UdfFailure`]: the store's own records (a refused memory grow,
//! an oversized output, a refused sleep) come before the trap, since they explain it.

use wasmtime::{Store, Trap};

use super::GuestState;
use crate::udf::error::trap_message;
use crate::udf::log::GuestLog;
use crate::udf::{UdfFailure, UdfLimits};

/// The failure of a call that returned `error`.
pub(super) fn classify(
    store: &mut Store<GuestState>,
    log: &GuestLog,
    limits: UdfLimits,
    error: wasmtime::Error,
) -> UdfFailure {
    if let Some((desired, initial)) = store.data_mut().limiter.refused.take() {
        return UdfFailure::MemoryCap {
            desired,
            cap: limits.memory_bytes,
            initial,
        };
    }
    if let Some(len) = store.data_mut().rows.out.too_large.take() {
        return UdfFailure::OutputTooLarge {
            len,
            cap: limits.max_output_bytes,
        };
    }
    if let Some(sleep) = store.data_mut().refused_sleep.take() {
        return UdfFailure::Timeout {
            limit: limits.timeout,
            sleep: Some(sleep),
        };
    }
    if matches!(error.downcast_ref::<Trap>(), Some(Trap::Interrupt)) {
        return UdfFailure::Timeout {
            limit: limits.timeout,
            sleep: None,
        };
    }
    let printed = log.take();
    let tail: String = {
        let text = printed.text.trim_end();
        let start = text.len().saturating_sub(2000);
        let start = (start..=text.len())
            .find(|i| text.is_char_boundary(*i))
            .unwrap_or(text.len());
        text[start..].to_string()
    };
    let printed = if tail.is_empty() {
        String::new()
    } else {
        format!("; the guest printed: {tail}")
    };
    UdfFailure::Trap {
        message: trap_message(&error),
        printed,
    }
}
