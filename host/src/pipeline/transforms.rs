//! A chain of transforms, loaded: the WebAssembly UDFs, SQL stages and table joins between the deserializer and the
//! aggregation (`transform`), or between the aggregation and the sink (`after_aggregate`), in the file's
//! order, each planned against the schema the stage before it writes.

use std::fmt::Write;

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;

use super::spec::Transform;
use crate::join::StaticJoin;
use crate::schema::column_list;
use crate::sql::{SqlError, SqlStage};
use crate::udf::{Kind, OnError, OnFailure, TransformSpec, UdfError, UdfRuntime, UdfStage};

/// One loaded stage of a chain.
// A chain holds a handful of stages, made once per plan: their size does not matter.
#[allow(clippy::large_enum_variant)]
pub(super) enum LoadedTransform {
    /// A WebAssembly transform with its policies.
    Udf(TransformSpec, UdfStage),
    /// A `where` or `select` stage.
    Sql(SqlStage),
    /// A join with a table.
    Join(StaticJoin),
}

/// The loaded stages of a chain, and the schema of the rows it starts from.
pub(super) struct TransformChain {
    input: SchemaRef,
    stages: Vec<LoadedTransform>,
}

/// Why a chain stopped.
pub(super) enum TransformError {
    /// A UDF's call failed as a whole; its `on_failure` decides.
    Call(UdfError, OnFailure),
    /// A row failed and its stage's `on_error` is `fail`, or a SQL or join stage failed on the batch.
    Rows(anyhow::Error),
}

impl TransformChain {
    /// Loads `specs` in order; `key` is their pipeline-file array (`transform`, `after_aggregate`).
    pub(super) fn load(
        runtime: &UdfRuntime,
        specs: &[Transform],
        input: &SchemaRef,
        key: &str,
    ) -> anyhow::Result<TransformChain> {
        let mut chain = TransformChain {
            input: input.clone(),
            stages: Vec::new(),
        };
        for (i, spec) in specs.iter().enumerate() {
            let schema = chain.output_schema();
            let stage = match spec {
                Transform::Udf(spec) => LoadedTransform::Udf(
                    spec.clone(),
                    runtime.load(&spec.udf, Kind::Transform, schema)?,
                ),
                Transform::Sql(spec) => {
                    LoadedTransform::Sql(SqlStage::plan(spec, &format!("{key}[{i}]"), &schema)?)
                }
                Transform::Join(spec) => {
                    LoadedTransform::Join(StaticJoin::plan(spec, &format!("{key}[{i}]"), &schema)?)
                }
            };
            chain.stages.push(stage);
        }
        Ok(chain)
    }

    /// The schema of the rows the chain writes (its input's, when it is empty).
    pub(super) fn output_schema(&self) -> SchemaRef {
        match self.stages.last() {
            None => self.input.clone(),
            Some(LoadedTransform::Udf(_, stage)) => stage.output_schema().clone(),
            Some(LoadedTransform::Sql(stage)) => stage.output_schema().clone(),
            Some(LoadedTransform::Join(stage)) => stage.output_schema().clone(),
        }
    }

    /// The chain's UDF stages, in order.
    pub(super) fn udf_stages(&self) -> impl Iterator<Item = &UdfStage> {
        self.stages.iter().filter_map(|stage| match stage {
            LoadedTransform::Udf(_, stage) => Some(stage),
            LoadedTransform::Sql(_) | LoadedTransform::Join(_) => None,
        })
    }

    /// For `weir run --reload`: reads again every join table whose file changed. One line per table read,
    /// or refused (the version in use stays), for the log.
    pub(super) fn reload_changed_tables(&self) -> Vec<Result<String, String>> {
        let joins = self.stages.iter().filter_map(|stage| match stage {
            LoadedTransform::Join(join) => Some(join),
            _ => None,
        });
        joins
            .filter_map(|join| match join.reload_if_changed() {
                Ok(false) => None,
                Ok(true) => Some(Ok(format!(
                    "`{}`: join table {} read again ({} rows)",
                    join.key(),
                    join.spec().table.path.display(),
                    join.table_rows()
                ))),
                Err(refused) => Some(Err(format!("{refused:#}"))),
            })
            .collect()
    }

    /// Runs `rows` through every stage; returns the rows and how many rows UDFs dropped as failed.
    /// `records` names the source records in errors.
    pub(super) fn run(
        &self,
        mut rows: RecordBatch,
        records: &str,
    ) -> Result<(RecordBatch, u64), TransformError> {
        let mut dropped = 0;
        for stage in &self.stages {
            rows = match stage {
                LoadedTransform::Udf(spec, stage) => {
                    let (output, failed) = run_udf(spec, stage, &rows, records)?;
                    dropped += failed;
                    output
                }
                LoadedTransform::Sql(stage) => stage
                    .process(&rows)
                    .map_err(|error| TransformError::Rows(sql_failed(error, records)))?,
                LoadedTransform::Join(stage) => stage.process(&rows).map_err(|error| {
                    TransformError::Rows(
                        error.context(format!("`{}` failed{records}", stage.key())),
                    )
                })?,
            };
        }
        Ok((rows, dropped))
    }

    /// The plan's lines for the chain: each stage and the schema it writes.
    pub(super) fn describe(&self, out: &mut String) {
        for stage in &self.stages {
            let (line, schema) = match stage {
                LoadedTransform::Udf(spec, stage) => (
                    format!(
                        "WebAssembly `{}` ({}, on_error: {})",
                        stage.name(),
                        spec.udf.path.display(),
                        super::plan::policy(&spec.on_error)
                    ),
                    stage.output_schema(),
                ),
                LoadedTransform::Sql(stage) => (
                    format!("SQL {} ({})", stage.spec(), stage.key()),
                    stage.output_schema(),
                ),
                LoadedTransform::Join(stage) => (
                    format!(
                        "{} ({}, {} rows)",
                        stage.spec(),
                        stage.key(),
                        stage.table_rows()
                    ),
                    stage.output_schema(),
                ),
            };
            let _ = writeln!(out, "  transform    {line}");
            let _ = writeln!(out, "               -> {}", column_list(schema));
        }
    }
}

/// Runs `rows` through one UDF; returns its rows and how many rows it dropped as failed.
fn run_udf(
    spec: &TransformSpec,
    stage: &UdfStage,
    rows: &RecordBatch,
    records: &str,
) -> Result<(RecordBatch, u64), TransformError> {
    let output = stage
        .process(rows, records)
        .map_err(|error| TransformError::Call(error, spec.udf.on_failure.clone()))?;
    let Some(first) = output.row_errors.first() else {
        return Ok((output.batch, 0));
    };
    if spec.on_error == OnError::Fail {
        return Err(TransformError::Rows(anyhow::anyhow!(
            "UDF `{}` rejected row {} of the batch{records}: {}; set its on_error to \"drop\" to go on without such rows",
            stage.name(),
            first.row,
            first.message
        )));
    }
    Ok((output.batch, output.row_errors.len() as u64))
}

/// A SQL stage's failure on a batch, with the records it came from.
fn sql_failed(error: SqlError, records: &str) -> anyhow::Error {
    anyhow::Error::new(error).context(format!("a SQL stage failed{records}"))
}
