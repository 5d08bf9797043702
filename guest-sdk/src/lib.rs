//! # weir-guest: write Weir UDFs in Rust
//!
//! A Weir UDF is a WebAssembly module that the `weir` host loads at run time and calls with Apache Arrow
//! batches. This crate is everything a Rust UDF needs besides its own logic: implement [`Udf`] for a type
//! (or write a plain function) and add one macro line; the crate provides the ABI v1 exports (memory, Arrow
//! IPC framing, status codes, row errors). The contract itself is in [`abi`] and, byte by byte, in
//! `docs/abi.md`.
//!
//! ```
//! use std::sync::Arc;
//! use weir_guest::arrow_array::{Int64Array, RecordBatch};
//! use weir_guest::arrow_schema::{DataType, Field, Schema, SchemaRef};
//! use weir_guest::{RowErrors, Udf, UdfError};
//!
//! /// Doubles the `n` column.
//! struct Double { output: SchemaRef }
//!
//! impl Udf for Double {
//!     fn init(_config: &str, input: SchemaRef) -> Result<(Self, SchemaRef), UdfError> {
//!         input.field_with_name("n").map_err(|_| UdfError::new("the input has no column `n`"))?;
//!         let output: SchemaRef = Arc::new(Schema::new(vec![Field::new("n", DataType::Int64, true)]));
//!         Ok((Double { output: output.clone() }, output))
//!     }
//!     fn process(&mut self, batch: RecordBatch, _errors: &mut RowErrors) -> Result<RecordBatch, UdfError> {
//!         let n = weir_guest::column::<Int64Array>(&batch, "n")?;
//!         let doubled: Int64Array = n.iter().map(|v| v.map(|v| v * 2)).collect();
//!         Ok(RecordBatch::try_new(self.output.clone(), vec![Arc::new(doubled)])?)
//!     }
//! }
//!
//! weir_guest::export_transform!(Double);
//!
//! // The same code runs natively in unit tests:
//! let batch = RecordBatch::try_from_iter([("n", Arc::new(Int64Array::from(vec![1, 2])) as _)]).unwrap();
//! let (out, errors) = weir_guest::run_native::<Double>("{}", batch).unwrap();
//! assert_eq!(weir_guest::column::<Int64Array>(&out, "n").unwrap().values(), &[2, 4]);
//! assert!(errors.is_empty());
//! ```
//!
//! Build it with `cargo build --release --target wasm32-wasip1` from a crate with
//! `crate-type = ["cdylib", "rlib"]`; the `.wasm` file goes in the pipeline file's `udf` key.
//!
//! The same type becomes a WebAssembly **component** (the WIT world `weir:udf@1`, `docs/components.md`)
//! with the `component` feature: `weir_guest::export_transform_component!(Double);` and
//! `cargo build --release --target wasm32-wasip2`. Batches then cross as Arrow's buffers ([`columns`])
//! instead of IPC messages.

#![deny(missing_docs)]

pub mod abi;
pub mod columns;
#[cfg(feature = "component")]
pub mod component;
#[doc(hidden)]
pub mod glue;
pub mod ipc;

pub use arrow_array;
pub use arrow_buffer;
pub use arrow_schema;
pub use glue::{output_schema_native, run_native};

use arrow_array::{Array, RecordBatch};
use arrow_schema::{ArrowError, SchemaRef};

/// A user-defined function over Arrow batches.
///
/// The host creates one value per worker instance with [`Udf::init`] and then calls [`Udf::process`] once
/// per batch, with batches of the input schema that `init` saw.
pub trait Udf: Sized + 'static {
    /// Prepares the UDF for a pipeline: `config` is the JSON form of the stage's `config` table in the
    /// pipeline file (`{}` when absent), `input` the schema of the batches to come. Returns the UDF and the
    /// schema of every batch it will return; an error here stops the pipeline before it starts.
    fn init(config: &str, input: SchemaRef) -> Result<(Self, SchemaRef), UdfError>;

    /// Processes one batch and returns a batch of the declared output schema, with any number of rows.
    /// Input rows that fail on their own go in `errors` (the host routes those records by the stage's
    /// `on_error` policy); an `Err` fails the whole batch.
    fn process(
        &mut self,
        batch: RecordBatch,
        errors: &mut RowErrors,
    ) -> Result<RecordBatch, UdfError>;
}

/// Why a UDF call failed: the message reaches the host's error, which adds the UDF and the offsets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UdfError(String);

impl UdfError {
    /// An error with this message.
    pub fn new(message: impl Into<String>) -> Self {
        UdfError(message.into())
    }
}

impl std::fmt::Display for UdfError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UdfError {}

impl From<ArrowError> for UdfError {
    fn from(error: ArrowError) -> Self {
        UdfError(error.to_string())
    }
}

/// The input rows of one call that failed on their own.
#[derive(Debug, Default)]
pub struct RowErrors(Vec<abi::RowError>);

impl RowErrors {
    /// Reports that input row `row` (its index in the batch given to `process`) failed.
    pub fn push(&mut self, row: usize, message: impl Into<String>) {
        let mut message = message.into();
        if message.is_empty() {
            message.push_str("row failed");
        }
        self.0.push(abi::RowError {
            row: row as u32,
            message,
        });
    }

    /// The errors reported so far.
    pub fn into_vec(self) -> Vec<abi::RowError> {
        self.0
    }
}

/// The column `name` of `batch` as the array type `A`, or an error naming the column and what was found.
pub fn column<'a, A: Array + 'static>(
    batch: &'a RecordBatch,
    name: &str,
) -> Result<&'a A, UdfError> {
    let array = batch
        .column_by_name(name)
        .ok_or_else(|| UdfError::new(format!("the batch has no column `{name}`")))?;
    array.as_any().downcast_ref::<A>().ok_or_else(|| {
        UdfError::new(format!(
            "column `{name}` is {} but {} was expected",
            array.data_type(),
            std::any::type_name::<A>()
                .rsplit("::")
                .next()
                .unwrap_or("another type")
        ))
    })
}

/// Exports the ABI v1 functions for a [`Udf`] type, as a module of the given kind. Prefer
/// [`export_transform!`] and [`export_deserializer!`].
#[macro_export]
#[doc(hidden)]
macro_rules! __export_udf {
    ($ty:ty, $kind:expr) => {
        #[no_mangle]
        pub extern "C" fn weir_abi_v1() -> i32 {
            $crate::abi::MINOR as i32
        }
        #[no_mangle]
        pub extern "C" fn weir_kind() -> i32 {
            $kind as i32
        }
        #[no_mangle]
        pub extern "C" fn weir_alloc(len: i32) -> i32 {
            $crate::glue::alloc(len)
        }
        #[no_mangle]
        pub unsafe extern "C" fn weir_free(ptr: i32, len: i32) {
            $crate::glue::free(ptr, len)
        }
        #[no_mangle]
        pub unsafe extern "C" fn weir_init(
            config_ptr: i32,
            config_len: i32,
            schema_ptr: i32,
            schema_len: i32,
            ret_ptr: i32,
        ) -> i32 {
            $crate::glue::init::<$ty>(config_ptr, config_len, schema_ptr, schema_len, ret_ptr)
        }
        #[no_mangle]
        pub unsafe extern "C" fn weir_process(batch_ptr: i32, batch_len: i32, ret_ptr: i32) -> i32 {
            $crate::glue::process(batch_ptr, batch_len, ret_ptr)
        }
    };
}

/// Makes this crate's WebAssembly module a **transform** backed by the [`Udf`] type given.
///
/// ```ignore
/// weir_guest::export_transform!(MyTransform);
/// ```
#[macro_export]
macro_rules! export_transform {
    ($ty:ty) => {
        $crate::__export_udf!($ty, $crate::abi::Kind::Transform);
    };
}

/// Makes this crate's WebAssembly module a **deserializer** backed by the [`Udf`] type given. Its input is
/// the Kafka source schema: `key`, `value`, `topic`, `partition`, `offset`, `timestamp`, `timestampType`
/// and, with `includeHeaders`, `headers`.
///
/// ```ignore
/// weir_guest::export_deserializer!(MyDeserializer);
/// ```
#[macro_export]
macro_rules! export_deserializer {
    ($ty:ty) => {
        $crate::__export_udf!($ty, $crate::abi::Kind::Deserializer);
    };
}
