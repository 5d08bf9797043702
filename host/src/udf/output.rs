//! Reading what a guest returns: the process envelope and Arrow IPC from untrusted guest memory.
//!
//! Everything here must turn any bytes into a value or an error, never a panic that reaches the host;
//! `decode_fuzz` checks that with random and damaged envelopes.

use std::cell::Cell;
use std::sync::Once;

use arrow_schema::SchemaRef;
use weir_guest::abi;
use weir_guest::ipc;

use super::instance::UdfOutput;
use super::rows::ROW_BYTES;
use super::UdfFailure;

thread_local! {
    /// Set while this thread decodes guest bytes, whose panics are caught and reported as errors.
    static QUIET: Cell<bool> = const { Cell::new(false) };
}

/// Wraps the process's panic hook once so that panics caught by [`untrusted_ipc`] are not printed.
fn install_quiet_hook() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !QUIET.with(Cell::get) {
                previous(info);
            }
        }));
    });
}

/// Reads a `weir_process` result: the envelope, the Arrow IPC batch, its schema against the declared
/// `output`, its rows against `max_output` (each row costs [`ROW_BYTES`] besides its bytes, as in the row
/// interface, so a batch of no columns cannot claim any number of rows), and the row errors' indices
/// against `input_rows`.
///
/// Everything here comes from untrusted guest memory, so any bytes must give a value or an error, never a
/// panic; `decode_fuzz` checks that with random and mutated envelopes.
pub(crate) fn decode_output(
    result: &[u8],
    output: &SchemaRef,
    input_rows: usize,
    max_output: u64,
) -> Result<UdfOutput, UdfFailure> {
    let (ipc_bytes, row_errors) = abi::decode_process_result(result)
        .map_err(|e| UdfFailure::MalformedOutput(e.to_string()))?;
    let out = untrusted_ipc(|| ipc::batch_from_ipc(ipc_bytes)).map_err(|e| {
        UdfFailure::MalformedOutput(format!("the output is not an Arrow IPC stream: {e}"))
    })?;
    if out.schema().fields() != output.fields() {
        return Err(UdfFailure::MalformedOutput(format!(
            "the output batch has the schema {:?}, but init declared {:?}",
            out.schema(),
            output
        )));
    }
    let cost = result.len() as u64 + out.num_rows() as u64 * ROW_BYTES;
    if cost > max_output {
        return Err(UdfFailure::OutputTooLarge {
            len: cost,
            cap: max_output,
        });
    }
    if let Some(bad) = row_errors.iter().find(|e| e.row as usize >= input_rows) {
        return Err(UdfFailure::MalformedOutput(format!(
            "a row error names row {}, but the input had {input_rows} rows",
            bad.row
        )));
    }
    Ok(UdfOutput {
        batch: out,
        row_errors,
    })
}

/// Runs an Arrow IPC decode of guest bytes, turning a panic into an error.
///
/// arrow-ipc 60 validates most of a stream but panics on some damaged buffers (the property tests in
/// `decode_fuzz` found "the offset of the new Buffer cannot exceed the existing length"). The decode reads
/// only the given bytes and builds new arrays, so nothing is left half-changed when it unwinds. The panic
/// is expected here, so it is kept off stderr (other panics still print).
pub(crate) fn untrusted_ipc<T>(
    decode: impl FnOnce() -> Result<T, arrow_schema::ArrowError>,
) -> Result<T, String> {
    install_quiet_hook();
    QUIET.with(|quiet| quiet.set(true));
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(decode));
    QUIET.with(|quiet| quiet.set(false));
    match result {
        Ok(result) => result.map_err(|e| e.to_string()),
        Err(panic) => {
            let what = panic
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| panic.downcast_ref::<&str>().copied())
                .unwrap_or("a panic");
            Err(format!("the Arrow IPC reader refused it ({what})"))
        }
    }
}
