//! Reading event times: the watermark's column as milliseconds since the epoch, from BIGINT milliseconds
//! or a timestamp of any unit. The watermark, the aggregation and deduplication read it alike.

use anyhow::Context;
use arrow_array::cast::AsArray;
use arrow_array::types::Int64Type;
use arrow_array::ArrayRef;
use arrow_schema::DataType;

/// The event time of each row in milliseconds.
pub(crate) fn event_times(column: &ArrayRef) -> anyhow::Result<Vec<Option<i64>>> {
    let millis = match column.data_type() {
        DataType::Int64 => column.clone(),
        DataType::Timestamp(_, tz) => arrow_cast::cast(
            column,
            &DataType::Timestamp(arrow_schema::TimeUnit::Millisecond, tz.clone()),
        )
        .and_then(|c| arrow_cast::cast(&c, &DataType::Int64))
        .context("reading event times")?,
        other => anyhow::bail!(
            "event-time column of type {other}; expected Int64 milliseconds or a timestamp"
        ),
    };
    Ok(millis.as_primitive::<Int64Type>().iter().collect())
}
