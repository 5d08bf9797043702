//! The code behind the export macros: memory, the UDF instance, status codes and the result slot. The
//! instance itself (`install`, `process_installed`) is shared with the component glue.
//!
//! It exists so that a UDF author never touches a raw pointer: `export_transform!` and
//! `export_deserializer!` expand to `extern "C"` shims that call the generic functions here.

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use std::cell::RefCell;

use crate::abi::{self, RowError};
use crate::{ipc, RowErrors, Udf, UdfError};

thread_local! {
    /// The one UDF value of this instance, created by `weir_init`. WebAssembly instances are single-threaded,
    /// so a thread-local cell is the whole synchronisation story.
    static INSTANCE: RefCell<Option<Box<dyn ErasedUdf>>> = const { RefCell::new(None) };
}

/// The UDF with its declared output schema, behind a trait object so the cell above needs no generics.
trait ErasedUdf {
    fn process(&mut self, batch: RecordBatch) -> Result<(RecordBatch, Vec<RowError>), UdfError>;
}

struct Initialised<T: Udf> {
    udf: T,
    output: SchemaRef,
}

impl<T: Udf> ErasedUdf for Initialised<T> {
    fn process(&mut self, batch: RecordBatch) -> Result<(RecordBatch, Vec<RowError>), UdfError> {
        let mut errors = RowErrors::default();
        let rows = batch.num_rows();
        let out = self.udf.process(batch, &mut errors)?;
        if out.schema().fields() != self.output.fields() {
            return Err(UdfError::new(format!(
                "process returned the schema {:?} but init declared {:?}",
                out.schema(),
                self.output
            )));
        }
        let errors = errors.into_vec();
        if let Some(bad) = errors.iter().find(|e| e.row as usize >= rows) {
            return Err(UdfError::new(format!(
                "a row error names row {} of a batch of {rows} rows",
                bad.row
            )));
        }
        Ok((out, errors))
    }
}

/// `weir_alloc`: `len` bytes with alignment 1, or 0 when the allocation fails.
pub fn alloc(len: i32) -> i32 {
    if len <= 0 {
        return std::ptr::NonNull::<u8>::dangling().as_ptr() as i32;
    }
    let layout = match std::alloc::Layout::from_size_align(len as usize, 1) {
        Ok(layout) => layout,
        Err(_) => return 0,
    };
    // SAFETY: the layout has a non-zero size.
    unsafe { std::alloc::alloc(layout) as i32 }
}

/// `weir_free`: releases a buffer from [`alloc`] or a result buffer. Both use the layout `(len, 1)`.
///
/// # Safety
/// `ptr` and `len` must describe a buffer this module handed out and not yet freed.
pub unsafe fn free(ptr: i32, len: i32) {
    if len <= 0 || ptr == 0 {
        return;
    }
    let layout = std::alloc::Layout::from_size_align_unchecked(len as usize, 1);
    std::alloc::dealloc(ptr as *mut u8, layout);
}

/// `weir_init` for a UDF type `T`.
///
/// # Safety
/// The pointers must describe buffers in this module's memory, as the ABI requires of the host.
pub unsafe fn init<T: Udf>(
    config_ptr: i32,
    config_len: i32,
    schema_ptr: i32,
    schema_len: i32,
    ret_ptr: i32,
) -> i32 {
    let config = bytes(config_ptr, config_len);
    let schema = bytes(schema_ptr, schema_len);
    let result = (|| {
        let config = std::str::from_utf8(config)
            .map_err(|e| UdfError::new(format!("the configuration is not UTF-8: {e}")))?;
        let input = ipc::schema_from_ipc(schema)
            .map_err(|e| UdfError::new(format!("reading the input schema: {e}")))?;
        let (udf, output) = T::init(config, input)?;
        let encoded = ipc::schema_to_ipc(&output)
            .map_err(|e| UdfError::new(format!("encoding the output schema: {e}")))?;
        install(udf, output);
        Ok(encoded)
    })();
    respond(result, ret_ptr)
}

/// Makes `udf` this instance's UDF, declaring `output`.
pub(crate) fn install<T: Udf>(udf: T, output: SchemaRef) {
    INSTANCE.with(|cell| {
        *cell.borrow_mut() = Some(Box::new(Initialised { udf, output }));
    });
}

/// Runs the installed UDF on `batch`, checking its output schema and row errors.
pub(crate) fn process_installed(
    batch: RecordBatch,
) -> Result<(RecordBatch, Vec<RowError>), UdfError> {
    INSTANCE.with(|cell| match cell.borrow_mut().as_mut() {
        Some(udf) => udf.process(batch),
        None => Err(UdfError::new("process called before init")),
    })
}

/// `weir_process` for whichever UDF `weir_init` created.
///
/// # Safety
/// The pointers must describe buffers in this module's memory, as the ABI requires of the host.
pub unsafe fn process(batch_ptr: i32, batch_len: i32, ret_ptr: i32) -> i32 {
    let input = bytes(batch_ptr, batch_len);
    let result = (|| {
        let batch = ipc::batch_from_ipc(input)
            .map_err(|e| UdfError::new(format!("reading the input batch: {e}")))?;
        let (out, errors) = process_installed(batch)?;
        let encoded = ipc::batch_to_ipc(&out)
            .map_err(|e| UdfError::new(format!("encoding the output batch: {e}")))?;
        Ok(abi::encode_process_result(&encoded, &errors))
    })();
    respond(result, ret_ptr)
}

/// Runs `T` natively on a batch, exactly as the WebAssembly shims would: for unit tests of UDF crates.
pub fn run_native<T: Udf>(
    config: &str,
    batch: RecordBatch,
) -> Result<(RecordBatch, Vec<RowError>), UdfError> {
    let (udf, output) = T::init(config, batch.schema())?;
    let mut initialised = Initialised { udf, output };
    initialised.process(batch)
}

/// The schema `T::init` declares for an input schema, natively.
pub fn output_schema_native<T: Udf>(config: &str, input: SchemaRef) -> Result<SchemaRef, UdfError> {
    T::init(config, input).map(|(_, schema)| schema)
}

unsafe fn bytes<'a>(ptr: i32, len: i32) -> &'a [u8] {
    if len <= 0 {
        return &[];
    }
    std::slice::from_raw_parts(ptr as *const u8, len as usize)
}

/// Moves the result into a buffer the host frees with `weir_free` and writes its place into the slot.
unsafe fn respond(result: Result<Vec<u8>, UdfError>, ret_ptr: i32) -> i32 {
    let (status, payload) = match result {
        Ok(bytes) => (abi::STATUS_OK, bytes),
        Err(error) => (abi::STATUS_ERROR, error.to_string().into_bytes()),
    };
    // A boxed slice has exactly `len` bytes with alignment 1, the layout `free` releases.
    let payload: Box<[u8]> = payload.into_boxed_slice();
    let len = payload.len();
    let ptr = Box::into_raw(payload) as *mut u8;
    let slot = ret_ptr as *mut u8;
    std::ptr::copy_nonoverlapping((ptr as u32).to_le_bytes().as_ptr(), slot, 4);
    std::ptr::copy_nonoverlapping((len as u32).to_le_bytes().as_ptr(), slot.add(4), 4);
    status
}
