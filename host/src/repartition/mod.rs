//! Repartitioning: when a group member aggregates input that is not partitioned by the group keys, its
//! rows go through an internal topic, `weir-<name>-repartition`, keyed by the group keys, so that each
//! group is aggregated by one task whichever instance read its rows.
//!
//! A member reads both the input and the repartition topic in one consumer group, as Kafka Streams'
//! sub-topologies do:
//! - an **upstream** task (an input partition) runs the stateless stages, splits the rows by the hash of
//!   their group keys ([`route`]), and writes one record to every repartition partition: that
//!   partition's rows with the input offsets of its batch and its watermark ([`record`]), inside the
//!   input partition's transaction, with its offsets;
//! - a **downstream** task (a repartition partition) aggregates them, with its output, changelog and
//!   offsets in the repartition partition's transaction. Its watermark is the smallest over every
//!   upstream partition's, so no input partition can make another's rows late, across instances.
//!
//! A broker that hands aborted records to read_committed readers (tansu) would let a killed upstream
//! attempt's rows count; [`chain`] decides which writes committed from the writes themselves.

pub(crate) mod chain;
pub(crate) mod record;
pub(crate) mod route;

/// The repartition topic of pipeline `pipeline`.
pub(crate) fn repartition_topic(pipeline: &str) -> String {
    format!("weir-{pipeline}-repartition")
}
