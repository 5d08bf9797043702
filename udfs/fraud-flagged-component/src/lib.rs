//! The `fraud-flagged` transform as a WebAssembly component: the UDF is `fraud_flagged::FraudFlagged`,
//! unchanged; only the export differs. Built for `wasm32-wasip2`, it crosses batches as Arrow's buffers
//! through the WIT world `weir:udf@1` rather than as Arrow IPC through ABI v1, so the benchmarks compare the
//! two paths on the same code, without an interpreter (docs/benchmarks.md).

weir_guest::export_transform_component!(fraud_flagged::FraudFlagged);
