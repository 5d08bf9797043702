//! Calls, time and failures per UDF, read from the stages' own counters at each scrape (the stages count
//! whether or not metrics are served; an atomic add per call).

use std::sync::Arc;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{
    DescriptorEncoder, EncodeCounterValue, EncodeLabelSet, EncodeMetric,
};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Unit;

use crate::udf::CallCounts;

/// `udf`: a stage's name (its `name` key, or its module's file stem).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct UdfLabels {
    udf: String,
}

/// The pipeline's UDF stages, by name.
#[derive(Debug)]
pub(super) struct UdfCalls {
    pub(super) stages: Vec<(String, Arc<CallCounts>)>,
}

impl Collector for UdfCalls {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let counts: Vec<(UdfLabels, (u64, f64, u64))> = self
            .stages
            .iter()
            .map(|(name, counts)| {
                let (calls, time, failures) = counts.read();
                (
                    UdfLabels { udf: name.clone() },
                    (calls, time.as_secs_f64(), failures),
                )
            })
            .collect();
        let calls = counts.iter().map(|(udf, (calls, _, _))| (udf, *calls));
        counter(
            &mut encoder,
            ("udf_calls", None),
            "UDF calls (one per partition's batch, however many slices)",
            calls,
        )?;
        let seconds = counts.iter().map(|(udf, (_, seconds, _))| (udf, *seconds));
        counter(
            &mut encoder,
            ("udf", Some(&Unit::Seconds)),
            "Time spent in UDF calls, instantiation included",
            seconds,
        )?;
        let failures = counts
            .iter()
            .map(|(udf, (_, _, failures))| (udf, *failures));
        counter(
            &mut encoder,
            ("udf_failures", None),
            "UDF calls that failed (trap, limit, malformed output, or the guest's error status)",
            failures,
        )?;
        Ok(())
    }
}

/// One counter family, a value per UDF.
fn counter<'a, N: EncodeCounterValue>(
    encoder: &mut DescriptorEncoder,
    (name, unit): (&str, Option<&Unit>),
    help: &str,
    values: impl Iterator<Item = (&'a UdfLabels, N)>,
) -> Result<(), std::fmt::Error> {
    let mut family = encoder.encode_descriptor(name, help, unit, MetricType::Counter)?;
    for (labels, value) in values {
        ConstCounter::new(value).encode(family.encode_family(labels)?)?;
    }
    Ok(())
}
