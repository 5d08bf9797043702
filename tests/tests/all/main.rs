//! Weir's integration tests, one binary with a module per area (as wasmtime's `tests/all`).
//!
//! They need the UDF modules built for wasm32-wasip1 and the tansu binary; `bash .ci/run` prepares both.

mod avro;
mod checkpoint;
mod cli;
mod component_limits;
mod components;
mod dedup;
mod file_source;
mod files;
mod fraud;
mod group;
mod group_state;
mod join;
mod limits;
mod metrics;
mod nest;
mod poison;
mod polyglot;
mod refused;
mod reload;
mod sandbox;
mod secured;
mod source;
mod sql;
mod stream_join;
mod udf_errors;
mod window;
