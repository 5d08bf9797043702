//! What every WebAssembly stage shares in the pipeline file: `udf`, `name`, `config`, `[limits]`, and the
//! `on_error` / `on_failure` / `dead_letter_topic` policies; and `[[transform]]` / `[[after_aggregate]]`,
//! whose stages are UDFs or SQL (`where`, `select`).

use std::path::{Path, PathBuf};

use super::section::Section;
use super::{parse_duration, parse_size, ConfigError};
use crate::pipeline::Transform;
use crate::sql::SqlSpec;
use crate::udf::{OnError, OnFailure, TransformSpec, UdfLimits, UdfSpec};

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

/// A `[[transform]]` or `[[after_aggregate]]` stage: `udf`, `where` or `select`.
pub(super) fn read_transform(
    mut section: Section,
    base: &Path,
    limits: UdfLimits,
) -> Result<Transform, ConfigError> {
    if let Some(sql) = read_sql(&mut section)? {
        if section.has_any(&["udf"]) {
            return Err(section.error(
                "udf",
                format!(
                    "a stage is a UDF or a SQL `{}`: put each in its own [[transform]]",
                    sql.key()
                ),
            ));
        }
        section.finish(&["where", "select"])?;
        return Ok(Transform::Sql(sql));
    }
    let mut udf = read_udf(&mut section, base, limits)?.ok_or_else(|| {
        section.error(
            "udf",
            "missing: expected the path of a .wasm transform, or a SQL stage (`where` or `select`)",
        )
    })?;
    let on_error = read_policies(&mut section, Some(&mut udf))?;
    section.finish(&[
        "udf",
        "name",
        "config",
        "limits",
        "on_error",
        "on_failure",
        "dead_letter_topic",
    ])?;
    Ok(Transform::Udf(TransformSpec { udf, on_error }))
}

/// `where = "flag = 1"` or `select = ["*", "name || surname AS id"]`, one per stage.
fn read_sql(section: &mut Section) -> Result<Option<SqlSpec>, ConfigError> {
    let condition = section.string("where")?;
    let expressions = section.strings("select")?;
    match (condition, expressions) {
        (None, None) => Ok(None),
        (Some(_), Some(_)) => Err(section.error(
            "select",
            "a stage is a `where` or a `select`: put each in its own [[transform]]",
        )),
        (Some(condition), None) if condition.trim().is_empty() => {
            Err(section.error("where", "expected a condition such as \"flag = 1\""))
        }
        (Some(condition), None) => Ok(Some(SqlSpec::Where { condition })),
        (None, Some(expressions)) if expressions.is_empty() => Err(section.error(
            "select",
            "expected a list of expressions such as [\"*\", \"name || surname AS id\"]",
        )),
        (None, Some(expressions)) => Ok(Some(SqlSpec::Select { expressions })),
    }
}
