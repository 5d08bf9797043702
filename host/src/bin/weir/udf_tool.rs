//! `weir udf inspect` and `weir udf test`: what a module declares, and what it does to sample data. They
//! live beside the binary, which is their only user, and use the library's public API.
//!
//! They exist for UDF authors: to see why a module is refused, which schema it declares, and which rows
//! it produces or rejects, without a broker or a pipeline file.

use std::fmt::Write;
use std::path::Path;

use anyhow::Context;
use arrow_array::BinaryArray;
use arrow_schema::SchemaRef;

use weir::internal::JsonDecoder;
use weir::internal::Kind;
use weir::internal::{sample_records, source_schema};
use weir::{UdfError, UdfFailure, UdfLimits, UdfRuntime, UdfSpec};

/// The report of `weir udf inspect`: ABI, kind, exports, imports and, when an input schema is known, the
/// output schema the module declares for it.
pub fn inspect(
    path: &Path,
    input_schema: Option<SchemaRef>,
    config: &str,
    limits: UdfLimits,
) -> anyhow::Result<String> {
    let runtime = UdfRuntime::new()?;
    let (info, abi) = runtime.inspect(path)?;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "module   {} ({} bytes)",
        path.display(),
        info.size_bytes
    );
    match (&info.abi, abi) {
        (Ok(interface), Some((kind, minor))) => {
            match &info.world {
                Some(world) => {
                    let _ = writeln!(out, "world    {world} (component)");
                }
                None => {
                    let _ = writeln!(out, "ABI      v1.{minor}");
                }
            }
            let _ = writeln!(out, "kind     {}", kind.name());
            let _ = writeln!(out, "data     {}", interface.name());
        }
        (Err(why), _) => {
            let _ = writeln!(out, "ABI      not usable: {why}");
        }
        (Ok(_), None) => {}
    }
    let _ = writeln!(out, "exports");
    for export in &info.exports {
        let _ = writeln!(out, "  {export}");
    }
    let _ = writeln!(out, "imports");
    for import in &info.imports {
        let _ = writeln!(out, "  {import}");
    }
    if let Some((kind, _)) = abi {
        let input = match (kind, input_schema) {
            // A deserializer always takes the Kafka source schema.
            (Kind::Deserializer, _) => Some(source_schema(false)),
            (Kind::Transform, given) => given,
        };
        match input {
            None => {
                let _ = writeln!(
                    out,
                    "schemas  pass --input-schema \"col TYPE, ...\" to see the output schema"
                );
            }
            Some(input) => {
                let stage = runtime.load(&spec(path, config, limits)?, kind, input.clone())?;
                let _ = writeln!(out, "input    {}", weir::internal::column_list(&input));
                let _ = writeln!(
                    out,
                    "output   {}",
                    weir::internal::column_list(stage.output_schema())
                );
            }
        }
    }
    Ok(out)
}

/// The report of `weir udf test`: the module run once on the lines of `input` (raw record values for a
/// deserializer; JSON objects of `input_schema` for a transform), as a table, with the rejected rows.
pub fn test(
    path: &Path,
    input: &Path,
    input_schema: Option<SchemaRef>,
    config: &str,
    limits: UdfLimits,
) -> anyhow::Result<String> {
    let runtime = UdfRuntime::new()?;
    let spec = spec(path, config, limits)?;
    let (info, abi) = runtime.inspect(path)?;
    let Some((kind, _)) = abi else {
        // Worded as a pipeline words it (`weir run`, `weir validate`).
        return Err(UdfError {
            udf: spec.name,
            path: spec.path,
            operation: "loading",
            records: String::new(),
            cause: Box::new(UdfFailure::Abi(info.abi.err().unwrap_or_default())),
        }
        .into());
    };
    let text = std::fs::read(input).with_context(|| format!("reading {}", input.display()))?;
    let lines: Vec<Vec<u8>> = text
        .split(|b| *b == b'\n')
        .filter(|l| !l.iter().all(u8::is_ascii_whitespace))
        .map(<[u8]>::to_vec)
        .collect();
    let file = input.display().to_string();
    let batch = match kind {
        Kind::Deserializer => sample_records(&file, &lines).batch,
        Kind::Transform => {
            let schema = input_schema
                .context("a transform needs --input-schema \"col TYPE, ...\" for its JSON lines")?;
            let values: BinaryArray = lines.iter().map(|l| Some(l.as_slice())).collect();
            let (batch, failures) = JsonDecoder::new(schema, false, None, false).decode(&values)?;
            if let Some(bad) = failures.first() {
                anyhow::bail!("{file} line {}: {}", bad.row + 1, bad.message);
            }
            batch
        }
    };
    let stage = runtime.load(&spec, kind, batch.schema())?;
    let output = stage.process(&batch, &format!(" on {file} lines 1..={}", lines.len()))?;
    let mut out =
        arrow_cast::pretty::pretty_format_batches(std::slice::from_ref(&output.batch))?.to_string();
    let _ = writeln!(
        out,
        "\n{} input rows, {} output rows, {} rejected",
        batch.num_rows(),
        output.batch.num_rows(),
        output.row_errors.len()
    );
    for error in &output.row_errors {
        let _ = writeln!(out, "  {file} line {}: {}", error.row + 1, error.message);
    }
    Ok(out)
}

fn spec(path: &Path, config: &str, limits: UdfLimits) -> anyhow::Result<UdfSpec> {
    let config: serde_json::Value = serde_json::from_str(config).context("--config is not JSON")?;
    Ok(UdfSpec::new(path).with_config(config).with_limits(limits))
}

/// Parses `--input-schema` (Spark DDL).
pub fn parse_input_schema(ddl: Option<&str>) -> anyhow::Result<Option<SchemaRef>> {
    ddl.map(|d| weir::parse_ddl_schema(d).map_err(anyhow::Error::msg))
        .transpose()
        .context("--input-schema")
}
