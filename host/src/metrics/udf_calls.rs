//! Calls, time and failures per UDF, read from the stages' own counters at each scrape (the stages count
//! whether or not metrics are served; an atomic add per call).

use std::sync::Arc;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
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
        let calls = ConstCounter::new(0u64);
        let mut family = encoder.encode_descriptor(
            "udf_calls",
            "UDF calls (one per partition's batch, however many slices)",
            None,
            calls.metric_type(),
        )?;
        for (labels, (calls, _, _)) in &counts {
            ConstCounter::new(*calls).encode(family.encode_family(labels)?)?;
        }
        let mut family = encoder.encode_descriptor(
            "udf",
            "Time spent in UDF calls, instantiation included",
            Some(&Unit::Seconds),
            calls.metric_type(),
        )?;
        for (labels, (_, seconds, _)) in &counts {
            ConstCounter::new(*seconds).encode(family.encode_family(labels)?)?;
        }
        let mut family = encoder.encode_descriptor(
            "udf_failures",
            "UDF calls that failed (trap, limit, malformed output, or the guest's error status)",
            None,
            calls.metric_type(),
        )?;
        for (labels, (_, _, failures)) in &counts {
            ConstCounter::new(*failures).encode(family.encode_family(labels)?)?;
        }
        Ok(())
    }
}
