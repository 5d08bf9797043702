//! What every WebAssembly stage shares in the pipeline file: `udf`, `name`, `config`, `[limits]`, and the
//! `on_error` / `on_failure` / `dead_letter_topic` policies.

use std::path::{Path, PathBuf};

use super::section::Section;
use super::{parse_duration, parse_size, ConfigError};
use crate::udf::{OnError, OnFailure, UdfLimits, UdfSpec};

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

pub(super) fn read_limits(
    mut section: Section,
    defaults: UdfLimits,
) -> Result<UdfLimits, ConfigError> {
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

/// Reads `on_error`, `on_failure` and `dead_letter_topic` together, since both policies may use the topic.
/// `udf` is the stage's module, which receives `on_failure`. Where a policy may not dead-letter (a
/// transform's rows, anything after an aggregation) is a rule of the pipeline, checked by
/// `PipelineSpec::validate`.
pub(super) fn read_policies(
    section: &mut Section,
    udf: Option<&mut UdfSpec>,
) -> Result<OnError, ConfigError> {
    let policy = section.string("on_error")?;
    let topic = section.string("dead_letter_topic")?;
    let on_failure = match (section.string("on_failure")?.as_deref(), &udf) {
        (None | Some("fail"), _) => OnFailure::Fail,
        (Some(_), None) => {
            return Err(section.error("on_failure", "only used with a UDF (`udf = \"...\"`)"))
        }
        (Some("dead-letter"), Some(_)) => OnFailure::DeadLetter {
            topic: topic.clone().ok_or_else(|| {
                section.error(
                    "dead_letter_topic",
                    "missing: on_failure = \"dead-letter\" needs a topic",
                )
            })?,
        },
        (Some(other), Some(_)) => {
            return Err(section.error(
                "on_failure",
                format!("expected fail or dead-letter, found {other:?}"),
            ));
        }
    };
    let on_error = match policy.as_deref() {
        None | Some("fail") => OnError::Fail,
        Some("drop") => OnError::Drop,
        Some("dead-letter") => OnError::DeadLetter {
            topic: topic.clone().ok_or_else(|| {
                section.error(
                    "dead_letter_topic",
                    "missing: on_error = \"dead-letter\" needs a topic",
                )
            })?,
        },
        Some(other) => {
            return Err(section.error(
                "on_error",
                format!("expected fail, drop or dead-letter, found {other:?}"),
            ));
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

pub(super) fn read_udf(
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
