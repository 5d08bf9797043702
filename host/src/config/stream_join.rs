//! `[stream_join]`: the other stream's topic, its deserializer and watermark, the condition and the join
//! type.

use std::path::Path;

use super::deserializer::read_deserializer;
use super::section::Section;
use super::units::parse_duration;
use super::ConfigError;
use crate::stream_join::{StreamJoinSpec, StreamJoinType};
use crate::udf::UdfLimits;

pub(super) fn read_stream_join(
    mut section: Section,
    base: &Path,
    limits: UdfLimits,
) -> Result<StreamJoinSpec, ConfigError> {
    let missing = |section: &Section, key: &str, example: &str| {
        section.error(key, format!("missing: expected {example}"))
    };
    let topic = section.string("topic")?.ok_or_else(|| {
        missing(
            &section,
            "topic",
            "the other stream's topic, e.g. \"clicks\"",
        )
    })?;
    let on = section.string("on")?.ok_or_else(|| {
        missing(
            &section,
            "on",
            "the condition, e.g. \"clickAdId = adId AND clickTime BETWEEN impressionTime AND impressionTime + \
             interval 1 hour\"",
        )
    })?;
    let how = match section.string("how")?.as_deref() {
        None | Some("inner") => StreamJoinType::Inner,
        Some("left_outer" | "leftOuter") => StreamJoinType::LeftOuter,
        Some("right_outer" | "rightOuter") => StreamJoinType::RightOuter,
        Some(other) => {
            return Err(section.error(
                "how",
                format!("expected \"inner\", \"left_outer\" or \"right_outer\", found {other:?}"),
            ))
        }
    };
    let mut watermark = section.table("watermark")?.ok_or_else(|| {
        missing(
            &section,
            "watermark",
            "the other stream's event time, e.g. { column = \"clickTime\", delay = \"30s\" }",
        )
    })?;
    let event_time = watermark.string("column")?.ok_or_else(|| {
        missing(
            &watermark,
            "column",
            "the event-time column, e.g. \"clickTime\"",
        )
    })?;
    let delay = watermark.parsed("delay", parse_duration)?.ok_or_else(|| {
        missing(
            &watermark,
            "delay",
            "how late its rows may be, e.g. \"30s\"",
        )
    })?;
    watermark.finish(&["column", "delay"])?;
    let deserializer = section.table("deserializer")?.ok_or_else(|| {
        missing(
            &section,
            "deserializer",
            "how its records become rows, e.g. { format = \"json\", schema = \"clickAdId STRING, clickTime \
             TIMESTAMP\" }",
        )
    })?;
    let deserializer = read_deserializer(deserializer, base, limits)?;
    section.finish(&["topic", "on", "how", "watermark", "deserializer"])?;
    Ok(StreamJoinSpec {
        topic,
        deserializer,
        event_time,
        delay_ms: delay.as_millis() as i64,
        on,
        how,
    })
}
