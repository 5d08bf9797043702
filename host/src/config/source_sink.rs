//! `[source]` and `[sink]`: the Kafka options of each end, and the sink's target (Kafka, files, console),
//! format, delivery and refusal policy.

use std::path::Path;

use super::section::Section;
use super::units::parse_duration;
use super::ConfigError;
use crate::schema::parse_ddl_schema;
use crate::sink::{
    ConsoleSpec, Delivery, FileFormat, FileSinkSpec, SinkFormat, SinkOnError, SinkOptions,
    SinkSpec, SinkTarget,
};
use crate::source::{FileSourceFormat, FileSourceSpec, SourceOptions, SourceSpec};

/// `[source]`: files with a `path`, else Kafka.
pub(super) fn read_source(section: Section, base: &Path) -> Result<SourceSpec, ConfigError> {
    if section.has_any(&["path"]) {
        read_file_source(section, base).map(SourceSpec::Files)
    } else {
        read_kafka_source(section).map(SourceSpec::Kafka)
    }
}

/// A file source: `path`, `format`, with `schema` for Parquet and `header` for CSV.
fn read_file_source(mut section: Section, base: &Path) -> Result<FileSourceSpec, ConfigError> {
    let path = base.join(section.string("path")?.unwrap_or_default());
    let header = section.boolean("header")?;
    let schema = section.parsed("schema", parse_ddl_schema)?;
    let format = match section.string("format")?.as_deref() {
        Some("json") => FileSourceFormat::Json,
        Some("csv") => FileSourceFormat::Csv {
            header: header.unwrap_or(false),
        },
        Some("text") => FileSourceFormat::Text,
        Some("parquet") => FileSourceFormat::Parquet {
            schema: schema.clone().ok_or_else(|| {
                section.error(
                    "schema",
                    "missing: Parquet files are read into a declared schema, e.g. \"id BIGINT, name STRING\"",
                )
            })?,
        },
        found => {
            return Err(section.error(
                "format",
                format!(
                    "with a `path` the source reads files: expected \"json\", \"csv\", \"text\" or \
                     \"parquet\", found {}",
                    found.map_or("nothing".to_string(), |f| format!("{f:?}"))
                ),
            ))
        }
    };
    if header.is_some() && !matches!(format, FileSourceFormat::Csv { .. }) {
        return Err(section.error("header", "only used with format = \"csv\""));
    }
    if schema.is_some() && !matches!(format, FileSourceFormat::Parquet { .. }) {
        return Err(section.error(
            "schema",
            "JSON, CSV and text records are decoded by the [deserializer]: give the schema there",
        ));
    }
    let mut spec = FileSourceSpec::new(path, format);
    spec.max_files_per_trigger = section.integer("maxFilesPerTrigger")?.map(|n| n as usize);
    if let Some(age) = section.parsed("maxFileAge", parse_duration)? {
        spec.max_file_age = age;
    }
    section.finish(&[
        "path",
        "format",
        "schema",
        "header",
        "maxFilesPerTrigger",
        "maxFileAge",
    ])?;
    Ok(spec)
}

fn read_kafka_source(section: Section) -> Result<SourceOptions, ConfigError> {
    let file = section.file();
    let key_of = |k: &str| section.key(k);
    let prefix = key_of("");
    let options = section.into_options()?;
    SourceOptions::from_options(options)
        .map_err(|e| ConfigError::new(file, format!("{prefix}{}", e.key), e.message))
}

/// `[sink]`: the Kafka sink by default; with `path`, a file sink; with `format = "console"`, the console.
pub(super) fn read_sink(
    mut section: Section,
    base: &Path,
    (checkpointed, kafka_source): (bool, bool),
) -> Result<SinkSpec, ConfigError> {
    let format = section.string("format")?;
    let path = section.string("path")?;
    let partition_by = section.strings("partitionBy")?;
    let target = match (format.as_deref(), path) {
        (Some("console"), None) => SinkTarget::Console(read_console(&mut section)?),
        (Some("parquet" | "json") | None, Some(path)) => SinkTarget::Files(FileSinkSpec {
            path: base.join(path),
            format: match format.as_deref() {
                Some("json") => FileFormat::JsonLines,
                _ => FileFormat::Parquet,
            },
            partition_by: partition_by.clone().unwrap_or_default(),
        }),
        (Some("parquet"), None) => {
            return Err(section.error(
                "path",
                "missing: format = \"parquet\" writes files, under this directory",
            ))
        }
        (Some(other), Some(_)) => {
            return Err(section.error(
                "format",
                format!("with a `path` the sink writes files: expected \"parquet\" or \"json\", found {other:?}"),
            ))
        }
        _ => SinkTarget::Kafka,
    };
    if partition_by.is_some() && !matches!(target, SinkTarget::Files(_)) {
        return Err(section.error("partitionBy", "only used with a file sink (`path`)"));
    }
    if !matches!(target, SinkTarget::Console(_)) {
        if let Some(key) = ["numRows", "truncate"]
            .into_iter()
            .find(|k| section.has_any(&[k]))
        {
            return Err(section.error(key, "only used with format = \"console\""));
        }
    }
    let delivery = match section.string("delivery")?.as_deref() {
        None => Delivery::default_for(checkpointed, kafka_source, &target),
        Some("exactly-once") => Delivery::ExactlyOnce,
        Some("at-least-once") => Delivery::AtLeastOnce,
        Some(other) => {
            return Err(section.error(
                "delivery",
                format!("expected \"exactly-once\" or \"at-least-once\", found {other:?}"),
            ))
        }
    };
    let format = match (&target, format.as_deref()) {
        (SinkTarget::Kafka, None | Some("kafka")) => SinkFormat::Kafka,
        (SinkTarget::Kafka, Some("json")) => SinkFormat::Json,
        (SinkTarget::Kafka, Some("avro")) => SinkFormat::Avro,
        (SinkTarget::Kafka, Some(other)) => {
            return Err(section.error(
                "format",
                format!(
                    "expected \"kafka\", \"json\" or \"avro\" (to Kafka), \"parquet\" or \"json\" with a \
                     `path` (files), or \"console\"; found {other:?}"
                ),
            ))
        }
        _ => SinkFormat::Kafka,
    };
    let on_error = read_sink_on_error(&mut section)?;
    let file = section.file();
    let prefix = section.key("");
    let options = section.into_options()?;
    let options = match (&target, options.keys().next()) {
        (SinkTarget::Kafka, _) => SinkOptions::from_options(options)
            .map_err(|e| ConfigError::new(file, format!("{prefix}{}", e.key), e.message))?,
        (_, None) => SinkOptions::default(),
        (_, Some(key)) => {
            return Err(ConfigError::new(
                file,
                format!("{prefix}{key}"),
                "only used with a Kafka sink; this one writes files (`path`) or to the console",
            ))
        }
    };
    Ok(SinkSpec {
        target,
        options,
        format,
        delivery,
        on_error,
    })
}

/// The console sink's `numRows` and `truncate`.
fn read_console(section: &mut Section) -> Result<ConsoleSpec, ConfigError> {
    let mut console = ConsoleSpec::default();
    if let Some(n) = section.integer("numRows")? {
        console.num_rows = n as usize;
    }
    if let Some(truncate) = section.boolean("truncate")? {
        console.truncate = truncate;
    }
    Ok(console)
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
