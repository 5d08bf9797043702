//! The pipeline file: a TOML description of source, deserializer, transforms, sink and limits.
//!
//! ```toml
//! name = "fraud"
//!
//! [source]
//! kafka.bootstrap.servers = "${KAFKA_BOOTSTRAP_SERVERS:-localhost:9092}"
//! subscribe = "transactions"
//! startingOffsets = "earliest"
//!
//! [deserializer]
//! udf = "json_transactions.wasm"      # or format = "json" with schema = "name STRING, flag INT"
//! on_error = "dead-letter"            # fail (default) | drop | dead-letter
//! dead_letter_topic = "transactions-dlq"
//!
//! [[transform]]
//! udf = "fraud_flagged.wasm"
//! config = { threshold = 1 }          # handed to the UDF's init as JSON
//!
//! [[transform]]                       # or SQL: where = "flag = 1", select = ["*", "..."]
//! join = "watchlist.csv"              # or a join with a CSV, JSON lines or Parquet table
//! on = ["name", "surname"]
//! how = "left_outer"
//!
//! [sink]
//! kafka.bootstrap.servers = "${KAFKA_BOOTSTRAP_SERVERS:-localhost:9092}"
//! topic = "results"
//! format = "json"                     # kafka (default: needs a value column) | json
//!
//! [trigger]
//! processingTime = "1s"               # default: as fast as possible; or availableNow = true, once = true
//!
//! [limits]                            # for every UDF; a stage may override with its own limits table
//! memory = "256MiB"
//! timeout = "10s"
//! ```
//!
//! Strings expand `${VAR}` and `${VAR:-default}` from the environment. Paths are relative to the file.
//! Every error names the file, the key and what was expected. Values from the environment and values of
//! secret keys (`kafka.sasl.password`, ...) are collected into the spec's
//! [`Secrets`], and errors print `***` in their place.

mod aggregate;
mod deserializer;
mod expand;
mod section;
mod source_sink;
mod stream_join;
mod transform;
mod udf;
mod units;

use std::path::Path;

pub use expand::expand;
use expand::expand_table;
pub use udf::parse_limit_flags;
pub use units::{parse_duration, parse_size};

use section::Section;

use aggregate::{read_aggregate, read_watermark};
use deserializer::read_deserializer;
use source_sink::{read_sink, read_source};
use stream_join::read_stream_join;
use transform::read_transform;
use udf::read_limits;

use crate::decode::{DecodeFormat, DeserializerSpec};
use crate::dedup::DedupSpec;
use crate::metrics::MetricsSpec;
use crate::pipeline::{PipelineSpec, Trigger};
use crate::secrets::Secrets;
use crate::source::{SourceSpec, TopicSelection};
use crate::udf::{OnError, UdfLimits};

/// A mistake in a pipeline file: which file, which key, what was expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}: `{key}`: {message}")]
pub struct ConfigError {
    /// The pipeline file.
    pub file: String,
    /// The dotted key at fault, e.g. `deserializer.on_error`.
    pub key: String,
    /// What was wrong and what was expected.
    pub message: String,
}

impl ConfigError {
    fn new(file: &str, key: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigError {
            file: file.to_string(),
            key: key.into(),
            message: message.into(),
        }
    }
}

/// Reads and checks a pipeline file, expanding `${VAR}` from the process environment.
pub fn load(path: &Path) -> Result<PipelineSpec, ConfigError> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path)
        .map_err(|e| ConfigError::new(&file, "", format!("cannot read the pipeline file: {e}")))?;
    let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let default_name = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    parse(&text, &file, &base, &default_name, |name| {
        std::env::var(name).ok()
    })
}

/// Parses pipeline-file text. `file` names it in errors, `base` resolves relative module paths and
/// `env` answers `${VAR}` lookups.
pub fn parse(
    text: &str,
    file: &str,
    base: &Path,
    default_name: &str,
    env: impl Fn(&str) -> Option<String>,
) -> Result<PipelineSpec, ConfigError> {
    let mut table = read_toml(text, file)?;
    let mut secrets = Secrets::default();
    expand_table(file, &mut table, &env, &mut secrets)?;
    let read = read_pipeline(Section::new(file, "", table), base, default_name).and_then(|spec| {
        spec.validate()
            .map_err(|e| ConfigError::new(file, e.key, e.message))?;
        Ok(spec)
    });
    match read {
        Ok(mut spec) => {
            spec.secrets = secrets;
            Ok(spec)
        }
        Err(mut error) => {
            error.message = secrets.redact(&error.message).into_owned();
            Err(error)
        }
    }
}

/// The file as a TOML table; a syntax error names its line.
fn read_toml(text: &str, file: &str) -> Result<toml::Table, ConfigError> {
    text.parse().map_err(|e: toml::de::Error| {
        let line = e
            .span()
            .map(|span| text[..span.start.min(text.len())].lines().count().max(1))
            .unwrap_or(0);
        ConfigError::new(
            file,
            format!("line {line}"),
            format!("not valid TOML: {}", e.message()),
        )
    })
}

/// Every section of the file into the stages' specs (the checks that span stages come after).
fn read_pipeline(
    mut root: Section,
    base: &Path,
    default_name: &str,
) -> Result<PipelineSpec, ConfigError> {
    let name = root
        .string("name")?
        .unwrap_or_else(|| default_name.to_string());
    let limits = match root.table("limits")? {
        Some(section) => read_limits(section, UdfLimits::default())?,
        None => UdfLimits::default(),
    };
    let source = root
        .table("source")?
        .ok_or_else(|| root.error("source", "missing: expected a [source] table"))?;
    let source = read_source(source, base)?;
    let deserializer = match (root.table("deserializer")?, &source) {
        (None, SourceSpec::Files(files)) if files.format.is_typed() => DeserializerSpec {
            format: DecodeFormat::Rows,
            on_error: OnError::Fail,
        },
        (Some(_), SourceSpec::Files(files)) if files.format.is_typed() => return Err(root.error(
            "deserializer",
            "Parquet files hold typed rows, read into the source's `schema`: remove [deserializer]",
        )),
        (Some(section), _) => read_deserializer(section, base, limits)?,
        (None, _) => {
            return Err(root.error("deserializer", "missing: expected a [deserializer] table"))
        }
    };
    let mut deserializer = deserializer;
    if let SourceSpec::Kafka(kafka) = &source {
        default_avro_subject(&mut deserializer.format, &kafka.topics);
    }
    let transforms = root
        .array_of_tables("transform")?
        .into_iter()
        .map(|section| read_transform(section, base, limits))
        .collect::<Result<Vec<_>, _>>()?;
    let stream_join = root
        .table("stream_join")?
        .map(|section| read_stream_join(section, base, limits))
        .transpose()?;
    let watermark = root.table("watermark")?.map(read_watermark).transpose()?;
    let deduplicate = root
        .table("deduplicate")?
        .map(read_deduplicate)
        .transpose()?;
    let aggregate = root.table("aggregate")?.map(read_aggregate).transpose()?;
    let after_aggregate = root
        .array_of_tables("after_aggregate")?
        .into_iter()
        .map(|section| read_transform(section, base, limits))
        .collect::<Result<Vec<_>, _>>()?;
    let sink = root
        .table("sink")?
        .ok_or_else(|| root.error("sink", "missing: expected a [sink] table"))?;
    let checkpoint = root
        .string("checkpointLocation")?
        .map(|path| base.join(path));
    let state_store = root
        .string("stateStoreLocation")?
        .map(|path| base.join(path));
    let kafka_source = matches!(source, SourceSpec::Kafka(_));
    // A consumer group member's offsets are committed in the group, as a checkpoint's would be.
    let group_member = matches!(&source, SourceSpec::Kafka(kafka) if kafka.consumer_group);
    let sink = read_sink(
        sink,
        base,
        (checkpoint.is_some() || group_member, kafka_source),
    )?;
    let min_batches_to_retain = match root.integer("minBatchesToRetain")? {
        Some(_) if checkpoint.is_none() => {
            return Err(root.error("minBatchesToRetain", "only used with a checkpointLocation"))
        }
        Some(n) => n as u64,
        None => crate::checkpoint::DEFAULT_BATCHES_TO_RETAIN,
    };
    let trigger = root.table("trigger")?.map(read_trigger).transpose()?;
    let metrics = root.table("metrics")?.map(read_metrics).transpose()?;
    root.finish(&[
        "name",
        "source",
        "deserializer",
        "transform",
        "watermark",
        "stream_join",
        "deduplicate",
        "aggregate",
        "after_aggregate",
        "sink",
        "trigger",
        "limits",
        "checkpointLocation",
        "stateStoreLocation",
        "minBatchesToRetain",
        "metrics",
    ])?;
    Ok(PipelineSpec {
        name,
        source,
        deserializer,
        transforms,
        watermark,
        stream_join,
        deduplicate,
        aggregate,
        after_aggregate,
        sink,
        trigger: trigger.unwrap_or(Trigger::AsFastAsPossible),
        checkpoint,
        state_store,
        metrics,
        min_batches_to_retain,
        secrets: Secrets::default(),
    })
}

/// Avro without a reader schema or a subject reads as the latest schema of the subscribed topic's value
/// subject, `<topic>-value`, as Confluent's serializers name it (when exactly one topic is subscribed).
fn default_avro_subject(format: &mut DecodeFormat, topics: &TopicSelection) {
    if let (
        DecodeFormat::Avro {
            reader_schema: None,
            subject: subject @ None,
            ..
        },
        TopicSelection::Subscribe(topics),
    ) = (format, topics)
    {
        if let [topic] = topics.as_slice() {
            *subject = Some(format!("{topic}-value"));
        }
    }
}

/// `[metrics] listen`: an address and port such as `127.0.0.1:9464`.
fn read_metrics(mut section: Section) -> Result<MetricsSpec, ConfigError> {
    let listen = section
        .parsed("listen", |text| {
            text.parse::<std::net::SocketAddr>().map_err(|_| {
                format!("expected an address and port such as \"127.0.0.1:9464\", found {text:?}")
            })
        })?
        .ok_or_else(|| section.error("listen", "missing: expected e.g. \"127.0.0.1:9464\""))?;
    section.finish(&["listen"])?;
    Ok(MetricsSpec::new(listen))
}

/// `[deduplicate]`: `columns` and `within_watermark`.
fn read_deduplicate(mut section: Section) -> Result<DedupSpec, ConfigError> {
    let columns = section
        .strings("columns")?
        .filter(|columns| !columns.is_empty())
        .ok_or_else(|| {
            section.error(
                "columns",
                "missing: the columns that make a row a repeat, e.g. [\"event_id\"]",
            )
        })?;
    let within = section.boolean("within_watermark")?.unwrap_or(false);
    section.finish(&["columns", "within_watermark"])?;
    Ok(DedupSpec {
        columns,
        within_watermark: within,
    })
}

/// `[trigger]`: `processingTime` (zero means as fast as possible, as in Spark), `availableNow = true` or
/// `once = true`, one of them.
fn read_trigger(mut section: Section) -> Result<Trigger, ConfigError> {
    let interval = section.parsed("processingTime", parse_duration)?;
    let available_now = section.boolean("availableNow")?.unwrap_or(false);
    let once = section.boolean("once")?.unwrap_or(false);
    let chosen = [interval.is_some(), available_now, once];
    if chosen.iter().filter(|set| **set).count() > 1 {
        let key = if once { "once" } else { "availableNow" };
        return Err(section.error(
            key,
            "a pipeline has one trigger: processingTime, availableNow or once",
        ));
    }
    section.finish(&["processingTime", "availableNow", "once"])?;
    Ok(match interval {
        _ if available_now => Trigger::AvailableNow,
        _ if once => Trigger::Once,
        Some(d) if !d.is_zero() => Trigger::ProcessingTime(d),
        _ => Trigger::AsFastAsPossible,
    })
}

#[cfg(test)]
mod sink_tests;
#[cfg(test)]
mod source_tests;
#[cfg(test)]
mod stream_join_tests;
#[cfg(test)]
mod tests;
