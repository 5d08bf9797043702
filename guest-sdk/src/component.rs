//! A Rust [`Udf`] as a WebAssembly **component** of the WIT world `weir:udf@1` (`wit/weir-udf.wit`,
//! `docs/components.md`), for the `component` feature.
//!
//! The same type that [`export_transform!`](crate::export_transform) makes a core module (ABI v1, Arrow
//! IPC) becomes a component with [`export_transform_component!`](crate::export_transform_component), built
//! for the `wasm32-wasip2` target. Batches then cross as Arrow's buffers column by column
//! ([`crate::columns`]) instead of IPC messages; the UDF's code does not change:
//!
//! ```ignore
//! // Cargo.toml: weir-guest = { ..., features = ["component"] }, crate-type = ["cdylib"]
//! weir_guest::export_transform_component!(fraud_flagged::FraudFlagged);
//! // cargo build --release --target wasm32-wasip2
//! ```

use std::cell::RefCell;

use arrow_schema::SchemaRef;

use crate::{glue, Udf};

/// The bindings of the transform world, generated from the WIT file.
#[doc(hidden)]
pub mod transform {
    wit_bindgen::generate!({
        path: "../wit/weir-udf.wit",
        world: "transform-udf",
        pub_export_macro: true,
        export_macro_name: "__export_transform_world",
        default_bindings_module: "weir_guest::component::transform",
    });
}

/// The bindings of the deserializer world, sharing the transform world's types.
#[doc(hidden)]
pub mod deserializer {
    wit_bindgen::generate!({
        path: "../wit/weir-udf.wit",
        world: "deserializer-udf",
        pub_export_macro: true,
        export_macro_name: "__export_deserializer_world",
        default_bindings_module: "weir_guest::component::deserializer",
        with: { "weir:udf/types@1.0.0": crate::component::transform::weir::udf::types },
    });
}

#[doc(hidden)]
pub use transform::weir::udf::types::{Batch, Field, Output};
use transform::weir::udf::types::{Column, DataType, RowError, TimeUnit};

thread_local! {
    /// The input schema `init` was given, which the columns of each batch are read as.
    static INPUT: RefCell<Option<SchemaRef>> = const { RefCell::new(None) };
}

/// The world's `init` for a UDF type `T`.
#[doc(hidden)]
pub fn init<T: Udf>(config: &str, input: Vec<Field>) -> Result<Vec<Field>, String> {
    let input = schema_from_wit(&input)?;
    let (udf, output) = T::init(config, input.clone()).map_err(|e| e.to_string())?;
    let declared = schema_to_wit(&output)?;
    glue::install(udf, output);
    INPUT.with(|cell| *cell.borrow_mut() = Some(input));
    Ok(declared)
}

/// The world's `process` for whichever UDF `init` installed.
#[doc(hidden)]
pub fn process(batch: Batch) -> Result<Output, String> {
    let input = INPUT
        .with(|cell| cell.borrow().clone())
        .ok_or("process called before init")?;
    let batch = batch_from_wit(batch, &input).map_err(|e| format!("the input batch: {e}"))?;
    let (out, errors) = glue::process_installed(batch).map_err(|e| e.to_string())?;
    Ok(Output {
        batch: batch_to_wit(&out)?,
        errors: errors
            .into_iter()
            .map(|e| RowError {
                row: e.row,
                message: e.message,
            })
            .collect(),
    })
}

crate::wit_mapping!(pub(crate));

/// The `Guest` implementation of one world's export for a [`Udf`] type: the body of the two export macros.
#[doc(hidden)]
#[macro_export]
macro_rules! __export_component {
    ($ty:ty, $world:ident, $guest:path, $export:ident) => {
        struct __WeirComponent;
        impl $guest for __WeirComponent {
            fn init(
                config: ::std::string::String,
                input: ::std::vec::Vec<$crate::component::Field>,
            ) -> ::std::result::Result<
                ::std::vec::Vec<$crate::component::Field>,
                ::std::string::String,
            > {
                $crate::component::init::<$ty>(&config, input)
            }
            fn process(
                batch: $crate::component::Batch,
            ) -> ::std::result::Result<$crate::component::Output, ::std::string::String> {
                $crate::component::process(batch)
            }
        }
        $crate::component::$world::$export!(__WeirComponent);
    };
}

/// Makes this crate a **transform component** backed by the [`Udf`] type given (feature `component`, target
/// `wasm32-wasip2`). The component twin of [`export_transform!`](crate::export_transform).
///
/// ```ignore
/// weir_guest::export_transform_component!(MyTransform);
/// ```
#[macro_export]
macro_rules! export_transform_component {
    ($ty:ty) => {
        $crate::__export_component!(
            $ty,
            transform,
            $crate::component::transform::exports::weir::udf::transform::Guest,
            __export_transform_world
        );
    };
}

/// Makes this crate a **deserializer component** backed by the [`Udf`] type given (feature `component`,
/// target `wasm32-wasip2`). The component twin of [`export_deserializer!`](crate::export_deserializer).
///
/// ```ignore
/// weir_guest::export_deserializer_component!(MyDeserializer);
/// ```
#[macro_export]
macro_rules! export_deserializer_component {
    ($ty:ty) => {
        $crate::__export_component!(
            $ty,
            deserializer,
            $crate::component::deserializer::exports::weir::udf::deserializer::Guest,
            __export_deserializer_world
        );
    };
}
