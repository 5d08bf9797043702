//! `[source]` and `[sink]`: the Kafka options of each end, and the sink's format, delivery and refusal
//! policy.

use super::section::Section;
use super::ConfigError;
use crate::sink::{Delivery, SinkFormat, SinkOnError, SinkOptions, SinkSpec};
use crate::source::SourceOptions;

pub(super) fn read_source(section: Section) -> Result<SourceOptions, ConfigError> {
    let file = section.file();
    let key_of = |k: &str| section.key(k);
    let prefix = key_of("");
    let options = section.into_options()?;
    SourceOptions::from_options(options)
        .map_err(|e| ConfigError::new(file, format!("{prefix}{}", e.key), e.message))
}

pub(super) fn read_sink(mut section: Section, checkpointed: bool) -> Result<SinkSpec, ConfigError> {
    let delivery = match section.string("delivery")?.as_deref() {
        None => Delivery::default_for(checkpointed),
        Some("exactly-once") => Delivery::ExactlyOnce,
        Some("at-least-once") => Delivery::AtLeastOnce,
        Some(other) => {
            return Err(section.error(
                "delivery",
                format!("expected \"exactly-once\" or \"at-least-once\", found {other:?}"),
            ))
        }
    };
    let format = match section.string("format")?.as_deref() {
        None | Some("kafka") => SinkFormat::Kafka,
        Some("json") => SinkFormat::Json,
        Some("avro") => SinkFormat::Avro,
        Some(other) => {
            return Err(section.error(
                "format",
                format!("expected \"kafka\", \"json\" or \"avro\", found {other:?}"),
            ))
        }
    };
    let on_error = read_sink_on_error(&mut section)?;
    let file = section.file();
    let prefix = section.key("");
    let options = section.into_options()?;
    let options = SinkOptions::from_options(options)
        .map_err(|e| ConfigError::new(file, format!("{prefix}{}", e.key), e.message))?;
    Ok(SinkSpec {
        options,
        format,
        delivery,
        on_error,
    })
}

/// `[sink] on_error` and its `dead_letter_topic`.
pub(super) fn read_sink_on_error(section: &mut Section) -> Result<SinkOnError, ConfigError> {
    let topic = section.string("dead_letter_topic")?;
    match (section.string("on_error")?.as_deref(), topic) {
        (None | Some("fail"), None) => Ok(SinkOnError::Fail),
        (Some("dead-letter"), Some(topic)) => Ok(SinkOnError::DeadLetter { topic }),
        (Some("dead-letter"), None) => Err(section.error(
            "dead_letter_topic",
            "missing: on_error = \"dead-letter\" needs a topic",
        )),
        (None | Some("fail"), Some(_)) => Err(section.error(
            "dead_letter_topic",
            "only used with on_error = \"dead-letter\"",
        )),
        (Some(other), _) => Err(section.error(
            "on_error",
            format!(
                "expected \"fail\" or \"dead-letter\" (for rows the broker refuses for good), found {other:?}"
            ),
        )),
    }
}
