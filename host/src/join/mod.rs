//! Joins: a stream joined with a static table read from a file, as Spark's
//! `stream.join(spark.read.csv("device_locations.csv"), "device_id", "left_outer")`, for the lookups
//! (device → zip code, account → customer) that enrich every row without state of their own.
//!
//! The table is read whole when the pipeline is planned, its keys indexed in a hash table, and each batch
//! probes the index and gathers the matched columns with Arrow's `take`: no query engine on the batch
//! path, and nothing in the checkpoint, because the join keeps no state between batches.
//!
//! ```toml
//! [[transform]]
//! join = "device_locations.csv"   # CSV with a header line, JSON lines or Parquet
//! on = ["device_id"]
//! how = "left_outer"              # inner (default), left_outer, left_semi, left_anti
//! ```

mod index;
mod spec;
mod stage;
mod table;

pub use spec::{JoinSpec, JoinType, TableFormat, TableSpec};
pub use stage::StaticJoin;

#[cfg(test)]
mod tests;
