//! Calls, time, failures and rows in and out per UDF, read from the stages' own counters at each scrape (the stages count
//! whether or not metrics are served; an atomic add per call).

use std::sync::Arc;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{
    DescriptorEncoder, EncodeCounterValue, EncodeLabelSet, EncodeMetric,
};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Unit;

use crate::udf::{CallCounts, CallTotals};

/// `udf`: a stage's name (its `name` key, or its module's file stem).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct UdfLabels {
    udf: String,
}

/// A UDF and a direction: rows handed to it (`in`) or returned by it (`out`).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RowLabels {
    udf: String,
    direction: &'static str,
}

/// The pipeline's UDF stages, by name.
#[derive(Debug)]
pub(super) struct UdfCalls {
    pub(super) stages: Vec<(String, Arc<CallCounts>)>,
}

impl Collector for UdfCalls {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let totals: Vec<(UdfLabels, CallTotals)> = self
            .stages
            .iter()
            .map(|(name, counts)| (UdfLabels { udf: name.clone() }, counts.read()))
            .collect();
        counter(
            &mut encoder,
            ("udf_calls", None),
            "UDF calls (one per partition's batch, however many slices)",
            totals.iter().map(|(udf, t)| (udf, t.calls)),
        )?;
        counter(
            &mut encoder,
            ("udf", Some(&Unit::Seconds)),
            "Time spent in UDF calls, instantiation included",
            totals.iter().map(|(udf, t)| (udf, t.time.as_secs_f64())),
        )?;
        counter(
            &mut encoder,
            ("udf_failures", None),
            "UDF calls that failed (trap, limit, malformed output, or the guest's error status)",
            totals.iter().map(|(udf, t)| (udf, t.failures)),
        )?;
        let rows: Vec<(RowLabels, u64)> = totals
            .iter()
            .flat_map(|(labels, t)| {
                let of = |direction: &'static str, n| {
                    let labels = RowLabels {
                        udf: labels.udf.clone(),
                        direction,
                    };
                    (labels, n)
                };
                [of("in", t.rows_in), of("out", t.rows_out)]
            })
            .collect();
        counter(
            &mut encoder,
            ("udf_rows", None),
            "Rows handed to each UDF (direction=in) and returned by it (direction=out)",
            rows.iter().map(|(labels, n)| (labels, *n)),
        )?;
        Ok(())
    }
}

/// One counter family, a value per label set.
fn counter<'a, L: EncodeLabelSet + 'a, N: EncodeCounterValue>(
    encoder: &mut DescriptorEncoder,
    (name, unit): (&str, Option<&Unit>),
    help: &str,
    values: impl Iterator<Item = (&'a L, N)>,
) -> Result<(), std::fmt::Error> {
    let mut family = encoder.encode_descriptor(name, help, unit, MetricType::Counter)?;
    for (labels, value) in values {
        ConstCounter::new(value).encode(family.encode_family(labels)?)?;
    }
    Ok(())
}
