//! `[[transform]]` and `[[after_aggregate]]`: each stage is a UDF (`udf`), SQL (`where`, `select`) or a
//! join with a table (`join`).

use std::path::{Path, PathBuf};

use super::section::Section;
use super::udf::{read_policies, read_udf};
use super::ConfigError;
use crate::join::{JoinSpec, JoinType, TableFormat, TableSpec};
use crate::pipeline::Transform;
use crate::schema::parse_ddl_schema;
use crate::sql::SqlSpec;
use crate::udf::{TransformSpec, UdfLimits};

/// A `[[transform]]` or `[[after_aggregate]]` stage: `udf`, `where`, `select` or `join`.
pub(super) fn read_transform(
    mut section: Section,
    base: &Path,
    limits: UdfLimits,
) -> Result<Transform, ConfigError> {
    if let Some(join) = read_join(&mut section, base)? {
        if let Some(other) = ["udf", "where", "select"]
            .into_iter()
            .find(|k| section.has_any(&[k]))
        {
            return Err(section.error(
                other,
                "a stage is a UDF, a SQL stage or a join: put each in its own [[transform]]",
            ));
        }
        section.finish(&["join", "on", "how", "format", "schema"])?;
        return Ok(Transform::Join(join));
    }
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
            "missing: expected the path of a .wasm transform, a SQL stage (`where` or `select`) or a `join`",
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

/// `join = "device_locations.csv"` with `on`, and optionally `how`, `format` and `schema`.
fn read_join(section: &mut Section, base: &Path) -> Result<Option<JoinSpec>, ConfigError> {
    let Some(path) = section.string("join")? else {
        if let Some(key) = ["on", "how"].into_iter().find(|k| section.has_any(&[k])) {
            return Err(section.error(key, "only used with `join = \"<table file>\"`"));
        }
        return Ok(None);
    };
    if path.trim().is_empty() {
        return Err(section.error(
            "join",
            "expected the path of a CSV, JSON lines or Parquet file",
        ));
    }
    let mut table = TableSpec::new(base.join(PathBuf::from(&path)));
    match section.string("format")? {
        Some(name) => table.format = named(section, "format", &name, &TableFormat::NAMES)?,
        None if TableFormat::from_extension(Path::new(&path)).is_none() => {
            return Err(section.error(
                "format",
                format!("missing: {path:?} has no .csv, .json, .jsonl or .parquet extension; say csv, json or parquet"),
            ))
        }
        None => {}
    }
    if let Some(schema) = section.parsed("schema", parse_ddl_schema)? {
        if table.format == TableFormat::Parquet {
            return Err(section.error("schema", "a Parquet file carries its own schema"));
        }
        table.schema = Some(schema);
    }
    let on = section.strings("on")?.filter(|on| !on.is_empty()).ok_or_else(|| {
        section.error("on", "missing: the columns to match, named alike in the rows and the table, e.g. [\"device_id\"]")
    })?;
    let how = match section.string("how")? {
        Some(name) => named(section, "how", &name, &JoinType::NAMES)?,
        None => JoinType::Inner,
    };
    Ok(Some(JoinSpec { table, on, how }))
}

/// The value of `names` that `name` is, or an error listing them.
fn named<T: Copy>(
    section: &Section,
    key: &str,
    name: &str,
    names: &[(&str, T)],
) -> Result<T, ConfigError> {
    names
        .iter()
        .find(|(known, _)| *known == name)
        .map(|(_, value)| *value)
        .ok_or_else(|| {
            let known: Vec<&str> = names.iter().map(|(known, _)| *known).collect();
            section.error(
                key,
                format!("expected {}, found {name:?}", known.join(", ")),
            )
        })
}
