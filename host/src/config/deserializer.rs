//! `[deserializer]`: a WebAssembly UDF or a built-in format, with Spark's `mode` accepted for the error
//! policy of the built-in JSON reader.

use std::path::Path;

use super::section::Section;
use super::udf::{read_policies, read_udf};
use super::ConfigError;
use crate::decode::{DecodeFormat, DeserializerSpec};
use crate::schema::parse_ddl_schema;
use crate::udf::{OnError, UdfLimits};

pub(super) fn read_deserializer(
    mut section: Section,
    base: &Path,
    limits: UdfLimits,
) -> Result<DeserializerSpec, ConfigError> {
    let mut udf = read_udf(&mut section, base, limits)?;
    let format_name = section.string("format")?;
    let mode = section.string("mode")?;
    let strict = section.boolean("strict")?;
    let mut on_error = read_policies(&mut section, udf.as_mut())?;
    let format = match (udf, format_name.as_deref()) {
        (Some(udf), None) => DecodeFormat::Udf(udf),
        (Some(_), Some(_)) => {
            return Err(section.error("format", "give either `udf` or `format`, not both"))
        }
        (None, Some("json")) => read_json(&mut section, mode.as_deref(), strict, &mut on_error)?,
        (None, Some("avro")) => read_avro(&mut section, base)?,
        (None, Some("csv")) => DecodeFormat::Csv {
            schema: section.parsed("schema", parse_ddl_schema)?.ok_or_else(|| {
                section.error(
                    "schema",
                    "missing: format = \"csv\" needs a schema such as \"id INT, name STRING\" (fields in order)",
                )
            })?,
        },
        (None, Some("string")) => DecodeFormat::String,
        (None, Some("binary")) => DecodeFormat::Binary,
        (None, Some(other)) => {
            return Err(section.error(
                "format",
                format!(
                    "expected \"json\", \"csv\", \"avro\", \"string\" or \"binary\", found {other:?}"
                ),
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
        "schema_registry",
        "reader_schema",
        "subject",
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

/// `format = "json"`: the schema, `columnNameOfCorruptRecord`, `strict`, and Spark's `mode`: PERMISSIVE,
/// or another spelling of the error policy (DROPMALFORMED is `drop`, FAILFAST is `fail`). The rules
/// between these options are the decode stage's own ([`DecodeFormat::check`]), checked with the rest of
/// the pipeline.
fn read_json(
    section: &mut Section,
    mode: Option<&str>,
    strict: Option<bool>,
    on_error: &mut OnError,
) -> Result<DecodeFormat, ConfigError> {
    let schema = section.parsed("schema", parse_ddl_schema)?.ok_or_else(|| {
        section.error(
            "schema",
            "missing: format = \"json\" needs a schema such as \"name STRING, flag INT\"",
        )
    })?;
    let corrupt_record_column = section.string("columnNameOfCorruptRecord")?;
    let permissive = match mode.map(str::to_ascii_uppercase).as_deref() {
        None => false,
        Some("PERMISSIVE") => true,
        Some(spark) => {
            let implied = match spark {
                "DROPMALFORMED" => OnError::Drop,
                "FAILFAST" => OnError::Fail,
                _ => {
                    return Err(section.error(
                        "mode",
                        format!("expected PERMISSIVE, DROPMALFORMED or FAILFAST, found {spark:?}"),
                    ))
                }
            };
            if section_sets_policy(on_error, &implied) {
                return Err(section.error("mode", format!("mode = {spark:?} contradicts on_error")));
            }
            *on_error = implied;
            false
        }
    };
    Ok(DecodeFormat::Json {
        schema,
        permissive,
        corrupt_record_column,
        strict: strict.unwrap_or(false),
    })
}

/// `format = "avro"`: the registry's URL, and the reader schema as a `.avsc` file (relative to the pipeline
/// file) or, without one, a registry subject whose latest schema is read at planning.
fn read_avro(section: &mut Section, base: &Path) -> Result<DecodeFormat, ConfigError> {
    let registry = section.string("schema_registry")?.ok_or_else(|| {
        section.error(
            "schema_registry",
            "missing: format = \"avro\" needs the schema registry's URL, e.g. \"http://localhost:8081\"",
        )
    })?;
    let reader_schema = match section.string("reader_schema")? {
        None => None,
        Some(path) => {
            let path = base.join(path);
            let text = std::fs::read_to_string(&path).map_err(|e| {
                section.error(
                    "reader_schema",
                    format!("cannot read {}: {e}", path.display()),
                )
            })?;
            Some(text)
        }
    };
    Ok(DecodeFormat::Avro {
        registry,
        reader_schema,
        subject: section.string("subject")?,
    })
}
