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
//! [sink]
//! kafka.bootstrap.servers = "${KAFKA_BOOTSTRAP_SERVERS:-localhost:9092}"
//! topic = "results"
//! format = "json"                     # kafka (default: needs a value column) | json
//!
//! [trigger]
//! processingTime = "1s"               # default: as fast as possible
//!
//! [limits]                            # for every UDF; a stage may override with its own limits table
//! memory = "256MiB"
//! timeout = "10s"
//! ```
//!
//! Strings expand `${VAR}` and `${VAR:-default}` from the environment. Paths are relative to the file.
//! Every error names the file, the key and what was expected.

mod expand;
mod section;
mod units;

use std::path::{Path, PathBuf};

pub use expand::expand;
pub use units::{parse_duration, parse_size};

use section::Section;

use crate::decode::{DecodeFormat, DeserializerSpec};
use crate::pipeline::{PipelineSpec, Trigger};
use crate::schema::parse_ddl_schema;
use crate::sink::{Delivery, SinkFormat, SinkOnError, SinkOptions, SinkSpec};
use crate::source::SourceOptions;
use crate::spelling::unknown_key_message;
use crate::udf::{OnError, OnFailure, TransformSpec, UdfLimits, UdfSpec};
use crate::window::WatermarkSpec;

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
    let mut table: toml::Table = text.parse().map_err(|e: toml::de::Error| {
        let line = e
            .span()
            .map(|span| text[..span.start.min(text.len())].lines().count().max(1))
            .unwrap_or(0);
        ConfigError::new(
            file,
            format!("line {line}"),
            format!("not valid TOML: {}", e.message()),
        )
    })?;
    expand_strings(file, "", &mut table, &env)?;
    let mut root = Section::new(file, "", table);

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
    let source = read_source(source)?;
    let deserializer = root
        .table("deserializer")?
        .ok_or_else(|| root.error("deserializer", "missing: expected a [deserializer] table"))?;
    let deserializer = read_deserializer(deserializer, base, limits)?;
    let transforms = root
        .array_of_tables("transform")?
        .into_iter()
        .map(|section| read_transform(section, base, limits, true))
        .collect::<Result<Vec<_>, _>>()?;
    let watermark = root.table("watermark")?.map(read_watermark).transpose()?;
    let aggregate = root.table("aggregate")?.map(read_aggregate).transpose()?;
    let after_aggregate = root
        .array_of_tables("after_aggregate")?
        .into_iter()
        .map(|section| read_transform(section, base, limits, false))
        .collect::<Result<Vec<_>, _>>()?;
    let sink = root
        .table("sink")?
        .ok_or_else(|| root.error("sink", "missing: expected a [sink] table"))?;
    let checkpoint = root
        .string("checkpointLocation")?
        .map(|path| base.join(path));
    let sink = read_sink(sink, checkpoint.is_some())?;
    let min_batches_to_retain = match root.integer("minBatchesToRetain")? {
        Some(_) if checkpoint.is_none() => {
            return Err(root.error("minBatchesToRetain", "only used with a checkpointLocation"))
        }
        Some(n) => n as u64,
        None => crate::checkpoint::DEFAULT_BATCHES_TO_RETAIN,
    };
    let trigger = match root.table("trigger")? {
        Some(mut section) => {
            let interval = section.parsed("processingTime", parse_duration)?;
            section.finish(&["processingTime"])?;
            match interval {
                Some(d) if !d.is_zero() => Trigger::ProcessingTime(d),
                _ => Trigger::AsFastAsPossible,
            }
        }
        None => Trigger::AsFastAsPossible,
    };
    root.finish(&[
        "name",
        "source",
        "deserializer",
        "transform",
        "watermark",
        "aggregate",
        "after_aggregate",
        "sink",
        "trigger",
        "limits",
        "checkpointLocation",
        "minBatchesToRetain",
    ])?;
    let spec = PipelineSpec {
        name,
        source,
        deserializer,
        transforms,
        watermark,
        aggregate,
        after_aggregate,
        sink,
        trigger,
        checkpoint,
        min_batches_to_retain,
    };
    spec.validate()
        .map_err(|e| ConfigError::new(file, e.key, e.message))?;
    Ok(spec)
}

fn expand_strings(
    file: &str,
    path: &str,
    table: &mut toml::Table,
    env: &impl Fn(&str) -> Option<String>,
) -> Result<(), ConfigError> {
    for (key, value) in table.iter_mut() {
        let key = if path.is_empty() {
            key.clone()
        } else {
            format!("{path}.{key}")
        };
        expand_value(file, &key, value, env)?;
    }
    Ok(())
}

fn expand_value(
    file: &str,
    key: &str,
    value: &mut toml::Value,
    env: &impl Fn(&str) -> Option<String>,
) -> Result<(), ConfigError> {
    match value {
        toml::Value::String(s) => {
            *s = expand(s, env).map_err(|e| ConfigError::new(file, key, e))?
        }
        toml::Value::Table(table) => expand_strings(file, key, table, env)?,
        toml::Value::Array(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                expand_value(file, &format!("{key}[{i}]"), item, env)?;
            }
        }
        _ => {}
    }
    Ok(())
}

fn read_watermark(mut section: Section) -> Result<WatermarkSpec, ConfigError> {
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

fn read_aggregate(mut section: Section) -> Result<crate::aggregate::AggregateSpec, ConfigError> {
    use crate::aggregate::{
        AggregateExpr, AggregateSpec, Function, OutputMode, WindowBy, WindowKind,
    };
    use crate::window::WindowSpec;
    let group_by = section.strings("group_by")?.unwrap_or_default();
    let window = match section.table("window")? {
        None => None,
        Some(mut window) => {
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
            if matches!(kind, WindowKind::Session { .. })
                && (window.has_any(&["size", "slide", "offset"]))
            {
                return Err(window.error(
                    "gap",
                    "a session window takes `gap` only, not size, slide or offset",
                ));
            }
            window.finish(&["column", "size", "slide", "offset", "gap"])?;
            Some(WindowBy { column, kind })
        }
    };
    let mut aggregates = Vec::new();
    for mut item in section.array_of_tables("aggregates")? {
        let function = item
            .parsed("function", Function::parse)?
            .ok_or_else(|| item.error("function", "missing: expected e.g. \"count\""))?;
        let column = item.string("column")?;
        let alias = item.string("as")?.unwrap_or_else(|| match &column {
            Some(column) => format!("{}_{column}", function.name()),
            None => function.name().to_string(),
        });
        let max_items = item.integer("max_items")?.unwrap_or(100) as usize;
        item.finish(&["function", "column", "as", "max_items"])?;
        aggregates.push(AggregateExpr {
            function,
            column,
            alias,
            max_items,
        });
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
    section.finish(&["group_by", "window", "aggregates", "output_mode"])?;
    Ok(AggregateSpec {
        group_by,
        window,
        aggregates,
        output_mode,
    })
}

/// Limits given as `KEY=VALUE` pairs with the keys of `[limits]` (`weir udf test --limit timeout=2s`), over
/// the defaults; errors name the flag and the key.
///
/// ```
/// let limits = weir::config::parse_limit_flags(&["timeout=2s".into(), "max_rows=50".into()]).unwrap();
/// assert_eq!(limits.timeout, std::time::Duration::from_secs(2));
/// assert_eq!(limits.max_rows_per_call, 50);
/// assert!(weir::config::parse_limit_flags(&["timeout".into()]).is_err());
/// ```
pub fn parse_limit_flags(flags: &[String]) -> Result<UdfLimits, ConfigError> {
    let mut table = toml::Table::new();
    for flag in flags {
        let Some((key, value)) = flag.split_once('=') else {
            return Err(ConfigError::new(
                "--limit",
                flag.as_str(),
                "expected KEY=VALUE, e.g. timeout=2s",
            ));
        };
        let value = match value.parse::<i64>() {
            Ok(number) if key == "max_rows" => toml::Value::Integer(number),
            _ => toml::Value::String(value.to_string()),
        };
        table.insert(key.trim().to_string(), value);
    }
    read_limits(
        Section::new("--limit", "limits", table),
        UdfLimits::default(),
    )
}

fn read_limits(mut section: Section, defaults: UdfLimits) -> Result<UdfLimits, ConfigError> {
    let mut limits = defaults;
    if let Some(bytes) = section.parsed("memory", parse_size)? {
        limits.memory_bytes = bytes;
    }
    if let Some(timeout) = section.parsed("timeout", parse_duration)? {
        if timeout.is_zero() {
            return Err(section.error("timeout", "must be more than zero"));
        }
        limits.timeout = timeout;
    }
    if let Some(bytes) = section.parsed("max_output", parse_size)? {
        limits.max_output_bytes = bytes;
    }
    if let Some(bytes) = section.parsed("max_log", parse_size)? {
        limits.max_log_bytes = bytes;
    }
    if let Some(rows) = section.integer("max_rows")? {
        limits.max_rows_per_call = usize::try_from(rows)
            .ok()
            .filter(|rows| *rows > 0)
            .ok_or_else(|| section.error("max_rows", "must be a whole number above zero"))?;
    }
    section.finish(&["memory", "timeout", "max_output", "max_log", "max_rows"])?;
    Ok(limits)
}

fn read_source(section: Section) -> Result<SourceOptions, ConfigError> {
    let file = section.file();
    let key_of = |k: &str| section.key(k);
    let prefix = key_of("");
    let options = section.into_options()?;
    SourceOptions::from_options(options)
        .map_err(|e| ConfigError::new(file, format!("{prefix}{}", e.key), e.message))
}

fn read_sink(mut section: Section, checkpointed: bool) -> Result<SinkSpec, ConfigError> {
    let delivery = match (section.string("delivery")?.as_deref(), checkpointed) {
        (None, true) | (Some("exactly-once"), _) => Delivery::ExactlyOnce,
        (None, false) | (Some("at-least-once"), _) => Delivery::AtLeastOnce,
        (Some(other), _) => {
            return Err(section.error(
                "delivery",
                format!("expected \"exactly-once\" or \"at-least-once\", found {other:?}"),
            ))
        }
    };
    let format = match section.string("format")?.as_deref() {
        None | Some("kafka") => SinkFormat::Kafka,
        Some("json") => SinkFormat::Json,
        Some(other) => {
            return Err(section.error(
                "format",
                format!("expected \"kafka\" or \"json\", found {other:?}"),
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
fn read_sink_on_error(section: &mut Section) -> Result<SinkOnError, ConfigError> {
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

/// Reads `on_error`, `on_failure` and `dead_letter_topic` together, since both policies may use the topic.
///
/// `allow_dead_letter` says whether records can be traced back to the source (not after an aggregation);
/// `udf` is the stage's module, which receives `on_failure`.
fn read_policies(
    section: &mut Section,
    allow_dead_letter: bool,
    udf: Option<&mut UdfSpec>,
) -> Result<OnError, ConfigError> {
    let policy = section.string("on_error")?;
    let topic = section.string("dead_letter_topic")?;
    let on_failure = match (section.string("on_failure")?.as_deref(), &udf) {
        (None | Some("fail"), _) => OnFailure::Fail,
        (Some(_), None) => {
            return Err(section.error("on_failure", "only used with a UDF (`udf = \"...\"`)"))
        }
        (Some("dead-letter"), Some(_)) if allow_dead_letter => OnFailure::DeadLetter {
            topic: topic.clone().ok_or_else(|| {
                section.error(
                    "dead_letter_topic",
                    "missing: on_failure = \"dead-letter\" needs a topic",
                )
            })?,
        },
        (Some(other), Some(_)) => {
            let expected = if allow_dead_letter {
                "fail or dead-letter"
            } else {
                "fail (after an aggregation there are no source records to dead-letter)"
            };
            return Err(section.error(
                "on_failure",
                format!("expected {expected}, found {other:?}"),
            ));
        }
    };
    let on_error = match policy.as_deref() {
        None | Some("fail") => OnError::Fail,
        Some("drop") => OnError::Drop,
        Some("dead-letter") if allow_dead_letter => OnError::DeadLetter {
            topic: topic.clone().ok_or_else(|| {
                section.error(
                    "dead_letter_topic",
                    "missing: on_error = \"dead-letter\" needs a topic",
                )
            })?,
        },
        Some(other) => {
            let expected = if allow_dead_letter {
                "fail, drop or dead-letter"
            } else {
                "fail or drop"
            };
            return Err(section.error("on_error", format!("expected {expected}, found {other:?}")));
        }
    };
    if topic.is_some()
        && !matches!(on_error, OnError::DeadLetter { .. })
        && !matches!(on_failure, OnFailure::DeadLetter { .. })
    {
        return Err(section.error(
            "dead_letter_topic",
            "only used with on_error = \"dead-letter\" or on_failure = \"dead-letter\"",
        ));
    }
    if let Some(udf) = udf {
        udf.on_failure = on_failure;
    }
    Ok(on_error)
}

fn read_udf(
    section: &mut Section,
    base: &Path,
    limits: UdfLimits,
) -> Result<Option<UdfSpec>, ConfigError> {
    let Some(path) = section.string("udf")? else {
        return Ok(None);
    };
    if path.is_empty() {
        return Err(section.error("udf", "expected the path of a .wasm module"));
    }
    let mut spec = UdfSpec::new(base.join(PathBuf::from(path)));
    if let Some(name) = section.string("name")? {
        spec = spec.with_name(name);
    }
    if let Some(config) = section.table("config")? {
        spec = spec.with_config(config.into_json());
    }
    let limits = match section.table("limits")? {
        Some(own) => read_limits(own, limits)?,
        None => limits,
    };
    Ok(Some(spec.with_limits(limits)))
}

fn read_deserializer(
    mut section: Section,
    base: &Path,
    limits: UdfLimits,
) -> Result<DeserializerSpec, ConfigError> {
    let mut udf = read_udf(&mut section, base, limits)?;
    let format_name = section.string("format")?;
    let mode = section.string("mode")?;
    let strict = section.boolean("strict")?;
    let mut on_error = read_policies(&mut section, true, udf.as_mut())?;
    let format = match (udf, format_name.as_deref()) {
        (Some(udf), None) => DecodeFormat::Udf(udf),
        (Some(_), Some(_)) => {
            return Err(section.error("format", "give either `udf` or `format`, not both"))
        }
        (None, Some("json")) => {
            let schema = section.parsed("schema", parse_ddl_schema)?.ok_or_else(|| {
                section.error(
                    "schema",
                    "missing: format = \"json\" needs a schema such as \"name STRING, flag INT\"",
                )
            })?;
            let corrupt_record_column = section.string("columnNameOfCorruptRecord")?;
            // Spark's `mode` is accepted as another spelling of the error policy.
            let permissive = match mode.as_deref().map(str::to_ascii_uppercase).as_deref() {
                None => false,
                Some("PERMISSIVE") => true,
                Some(spark) => {
                    let implied = match spark {
                        "DROPMALFORMED" => OnError::Drop,
                        "FAILFAST" => OnError::Fail,
                        _ => {
                            return Err(section.error(
                                "mode",
                                format!(
                                "expected PERMISSIVE, DROPMALFORMED or FAILFAST, found {spark:?}"
                            ),
                            ))
                        }
                    };
                    if section_sets_policy(&on_error, &implied) {
                        return Err(
                            section.error("mode", format!("mode = {spark:?} contradicts on_error"))
                        );
                    }
                    on_error = implied;
                    false
                }
            };
            if let Some(column) = schema.fields().iter().find(|f| !f.is_nullable()) {
                if permissive {
                    return Err(section.error(
                        "schema",
                        format!(
                            "column {:?} is NOT NULL, but mode = \"PERMISSIVE\" turns malformed records into rows of \
                             nulls; drop NOT NULL or choose another mode",
                            column.name()
                        ),
                    ));
                }
            }
            if let Some(column) = &corrupt_record_column {
                if !permissive {
                    return Err(section.error(
                        "columnNameOfCorruptRecord",
                        "only used with mode = \"PERMISSIVE\"",
                    ));
                }
                match schema.field_with_name(column) {
                    Ok(field) if field.data_type() == &arrow_schema::DataType::Utf8 => {}
                    _ => {
                        return Err(section.error(
                            "columnNameOfCorruptRecord",
                            format!("the schema needs a STRING column {column:?}"),
                        ))
                    }
                }
            }
            DecodeFormat::Json {
                schema,
                permissive,
                corrupt_record_column,
                strict: strict.unwrap_or(false),
            }
        }
        (None, Some("string")) => DecodeFormat::String,
        (None, Some("binary")) => DecodeFormat::Binary,
        (None, Some(other)) => {
            return Err(section.error(
                "format",
                format!("expected \"json\", \"string\" or \"binary\", found {other:?}"),
            ))
        }
        (None, None) => {
            return Err(section.error(
                "udf",
                "missing: expected `udf = \"path.wasm\"` or `format = \"json\"`",
            ))
        }
    };
    if mode.is_some() && !matches!(format, DecodeFormat::Json { .. }) {
        return Err(section.error("mode", "only used with format = \"json\""));
    }
    if strict.is_some() && !matches!(format, DecodeFormat::Json { .. }) {
        return Err(section.error(
            "strict",
            "only used with format = \"json\" (a UDF takes its own settings in `config`)",
        ));
    }
    section.finish(&[
        "udf",
        "name",
        "config",
        "limits",
        "format",
        "schema",
        "mode",
        "strict",
        "columnNameOfCorruptRecord",
        "on_error",
        "on_failure",
        "dead_letter_topic",
    ])?;
    Ok(DeserializerSpec { format, on_error })
}

/// Whether an explicit `on_error` differs from what Spark's `mode` implies (the default `fail` does not count).
fn section_sets_policy(on_error: &OnError, implied: &OnError) -> bool {
    on_error != &OnError::Fail && on_error != implied
}

/// A `[[transform]]` (`from_source`: its rows trace back to Kafka records) or `[[after_aggregate]]` stage.
fn read_transform(
    mut section: Section,
    base: &Path,
    limits: UdfLimits,
    from_source: bool,
) -> Result<TransformSpec, ConfigError> {
    let mut udf = read_udf(&mut section, base, limits)?
        .ok_or_else(|| section.error("udf", "missing: expected the path of a .wasm transform"))?;
    let on_error = read_policies(&mut section, from_source, Some(&mut udf))?;
    if let OnError::DeadLetter { .. } = on_error {
        return Err(section.error(
            "on_error",
            "a transform's rows are dropped or fail the pipeline (\"drop\" or \"fail\"); use on_failure = \"dead-letter\" to dead-letter the records of a failed call",
        ));
    }
    section.finish(&[
        "udf",
        "name",
        "config",
        "limits",
        "on_error",
        "on_failure",
        "dead_letter_topic",
    ])?;
    Ok(TransformSpec { udf, on_error })
}

#[cfg(test)]
mod tests;
