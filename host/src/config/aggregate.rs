//! `[watermark]` and `[aggregate]`: event time, windows, aggregates and output modes.

use super::section::Section;
use super::{parse_duration, ConfigError};
use crate::aggregate::{AggregateExpr, AggregateSpec, Function, OutputMode, WindowBy, WindowKind};
use crate::window::{WatermarkSpec, WindowSpec};

pub(super) fn read_watermark(mut section: Section) -> Result<WatermarkSpec, ConfigError> {
    let column = section.string("column")?.ok_or_else(|| {
        section.error(
            "column",
            "missing: expected the event-time column, e.g. \"ts\"",
        )
    })?;
    let delay = section.parsed("delay", parse_duration)?.ok_or_else(|| {
        section.error(
            "delay",
            "missing: expected how late records may be, e.g. \"5s\"",
        )
    })?;
    let mut spec = WatermarkSpec::new(column, delay);
    if let Some(idle_timeout) = section.parsed("idle_timeout", parse_duration)? {
        spec.idle_timeout = idle_timeout;
    }
    spec.late_data_topic = section.string("late_data_topic")?;
    if let Some(max_drift) = section.parsed("max_drift", parse_duration)? {
        spec.max_drift = (!max_drift.is_zero()).then_some(max_drift);
    }
    section.finish(&[
        "column",
        "delay",
        "idle_timeout",
        "late_data_topic",
        "max_drift",
    ])?;
    Ok(spec)
}

pub(super) fn read_aggregate(mut section: Section) -> Result<AggregateSpec, ConfigError> {
    let group_by = section.strings("group_by")?.unwrap_or_default();
    let window = section.table("window")?.map(read_window).transpose()?;
    let mut aggregates = Vec::new();
    for mut item in section.array_of_tables("aggregates")? {
        let function = item
            .parsed("function", Function::parse)?
            .ok_or_else(|| item.error("function", "missing: expected e.g. \"count\""))?;
        let mut aggregate = AggregateExpr::new(function, item.string("column")?.as_deref());
        if let Some(alias) = item.string("as")? {
            aggregate = aggregate.with_alias(alias);
        }
        if let Some(max_items) = item.integer("max_items")? {
            aggregate = aggregate.with_max_items(max_items as usize);
        }
        item.finish(&["function", "column", "as", "max_items"])?;
        aggregates.push(aggregate);
    }
    if aggregates.is_empty() {
        return Err(section.error(
            "aggregates",
            "missing: expected e.g. [{ function = \"count\" }]",
        ));
    }
    let output_mode = section
        .parsed("output_mode", OutputMode::parse)?
        .unwrap_or(OutputMode::Append);
    let input_partitioned_by = section.strings("input_partitioned_by")?.unwrap_or_default();
    section.finish(&[
        "group_by",
        "window",
        "aggregates",
        "output_mode",
        "input_partitioned_by",
    ])?;
    Ok(AggregateSpec {
        group_by,
        window,
        aggregates,
        output_mode,
        input_partitioned_by,
    })
}

/// `window = { column, size, slide, offset }` (tumbling or sliding) or `{ column, gap }` (sessions).
fn read_window(mut window: Section) -> Result<WindowBy, ConfigError> {
    let column = window
        .string("column")?
        .ok_or_else(|| window.error("column", "missing: expected the event-time column"))?;
    let millis = |d: std::time::Duration| d.as_millis() as i64;
    let kind = match window.parsed("gap", parse_duration)? {
        Some(gap) => {
            if gap.is_zero() {
                return Err(window.error("gap", "must be more than zero"));
            }
            WindowKind::Session {
                gap_ms: millis(gap),
            }
        }
        None => {
            let size = window.parsed("size", parse_duration)?.ok_or_else(|| {
                window.error(
                    "size",
                    "missing: expected the window length, e.g. \"10s\" (or gap = \"30s\" for sessions)",
                )
            })?;
            let slide = window.parsed("slide", parse_duration)?.unwrap_or(size);
            let offset = window.parsed("offset", parse_duration)?.unwrap_or_default();
            let spec = WindowSpec {
                size_ms: millis(size),
                slide_ms: millis(slide),
                offset_ms: millis(offset),
            };
            spec.validate().map_err(|e| window.error("size", e))?;
            WindowKind::Fixed(spec)
        }
    };
    if matches!(kind, WindowKind::Session { .. }) && (window.has_any(&["size", "slide", "offset"]))
    {
        return Err(window.error(
            "gap",
            "a session window takes `gap` only, not size, slide or offset",
        ));
    }
    window.finish(&["column", "size", "slide", "offset", "gap"])?;
    Ok(WindowBy { column, kind })
}
