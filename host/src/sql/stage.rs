//! A SQL stage, planned once against the schema of the rows that reach it and then evaluated on every
//! batch: one physical expression per output column (or one condition), with no query engine on the batch
//! path. Stages are shared by the worker threads, as the UDF stages are.

use std::sync::Arc;

use arrow_array::{ArrayRef, RecordBatch, RecordBatchOptions};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use datafusion_common::{DFSchema, DataFusionError, SchemaError};
use datafusion_physical_expr::expressions::Column;
use datafusion_physical_expr::PhysicalExpr;

use super::compile::Functions;
use super::SqlSpec;

/// A SQL stage that cannot be planned or failed on a batch: the pipeline-file key, the expression and why.
#[derive(Debug, Clone, thiserror::Error)]
#[error("`{key}` = {expression:?}: {message}")]
pub struct SqlError {
    /// The pipeline-file key of the expression, e.g. `transform[1].where`.
    pub key: String,
    /// The expression at fault.
    pub expression: String,
    /// What is wrong.
    pub message: String,
}

/// A planned `where` or `select` stage.
pub struct SqlStage {
    key: String,
    spec: SqlSpec,
    work: Work,
    output: SchemaRef,
}

enum Work {
    /// Keep the rows where the condition is true.
    Filter {
        condition: Arc<dyn PhysicalExpr>,
        text: String,
    },
    /// Compute each output column.
    Project(Vec<OutputColumn>),
}

enum OutputColumn {
    /// An input column kept as it is (by `*` or by its bare name).
    Input(usize),
    /// A computed column, with its expression's text for errors.
    Computed {
        expr: Arc<dyn PhysicalExpr>,
        text: String,
    },
}

impl SqlStage {
    /// Plans `spec` for rows of `input`; `key` names the stage in errors (e.g. `transform[1]`).
    pub fn plan(spec: &SqlSpec, key: &str, input: &SchemaRef) -> Result<SqlStage, SqlError> {
        let key = format!("{key}.{}", spec.key());
        let functions = Functions::new();
        let schema = DFSchema::try_from(input.as_ref().clone()).map_err(|e| SqlError {
            key: key.clone(),
            expression: spec.to_string(),
            message: format!("the rows reaching this stage have no SQL schema: {e}"),
        })?;
        let (work, output) = match spec {
            SqlSpec::Where { condition } => plan_filter(&functions, &schema, input, condition),
            SqlSpec::Select { expressions } => {
                plan_projection(&functions, &schema, input, expressions)
            }
        }
        .map_err(|(expression, message)| SqlError {
            key: key.clone(),
            expression,
            message,
        })?;
        Ok(SqlStage {
            key,
            spec: spec.clone(),
            work,
            output,
        })
    }

    /// The schema of the rows the stage writes.
    pub fn output_schema(&self) -> &SchemaRef {
        &self.output
    }

    /// The stage's key in the pipeline file, e.g. `transform[1].where`.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The stage as written.
    pub fn spec(&self) -> &SqlSpec {
        &self.spec
    }

    /// Runs the stage on a batch of rows of its input schema.
    pub fn process(&self, rows: &RecordBatch) -> Result<RecordBatch, SqlError> {
        match &self.work {
            Work::Filter { condition, text } => {
                let mask = evaluate(condition, rows).map_err(|e| self.error(text, e))?;
                let mask = arrow_array::cast::as_boolean_array(&mask);
                arrow_select::filter::filter_record_batch(rows, mask)
                    .map_err(|e| self.error(text, e.into()))
            }
            Work::Project(columns) => {
                let arrays = columns
                    .iter()
                    .map(|column| match column {
                        OutputColumn::Input(i) => Ok(rows.column(*i).clone()),
                        OutputColumn::Computed { expr, text } => {
                            evaluate(expr, rows).map_err(|e| self.error(text, e))
                        }
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                let options = RecordBatchOptions::new().with_row_count(Some(rows.num_rows()));
                RecordBatch::try_new_with_options(self.output.clone(), arrays, &options)
                    .map_err(|e| self.error(&self.spec.to_string(), e.into()))
            }
        }
    }

    fn error(&self, expression: &str, error: DataFusionError) -> SqlError {
        SqlError {
            key: self.key.clone(),
            expression: expression.to_string(),
            message: error.find_root().to_string(),
        }
    }
}

/// An expression's value for every row of `rows`.
fn evaluate(expr: &Arc<dyn PhysicalExpr>, rows: &RecordBatch) -> Result<ArrayRef, DataFusionError> {
    expr.evaluate(rows)?.into_array(rows.num_rows())
}

type PlanError = (String, String);

fn plan_filter(
    functions: &Functions,
    schema: &DFSchema,
    input: &SchemaRef,
    condition: &str,
) -> Result<(Work, SchemaRef), PlanError> {
    let fail = |message: String| (condition.to_string(), message);
    let (_, expr) = functions
        .compile(condition, schema)
        .map_err(|e| fail(explain(&e, condition, input)))?;
    let data_type = expr
        .data_type(input)
        .map_err(|e| fail(explain(&e, condition, input)))?;
    if data_type != DataType::Boolean && data_type != DataType::Null {
        return Err(fail(format!(
            "is {data_type}, not a condition: `where` keeps the rows for which a boolean expression \
             such as `flag = 1` is true{}",
            columns_used(condition, input)
        )));
    }
    let work = Work::Filter {
        condition: expr,
        text: condition.to_string(),
    };
    Ok((work, input.clone()))
}

fn plan_projection(
    functions: &Functions,
    schema: &DFSchema,
    input: &SchemaRef,
    expressions: &[String],
) -> Result<(Work, SchemaRef), PlanError> {
    if expressions.is_empty() {
        return Err((
            String::new(),
            "no expressions: expected e.g. [\"*\", \"name || surname AS id\"]".into(),
        ));
    }
    let mut computed = Vec::new();
    for text in expressions.iter().filter(|text| text.trim() != "*") {
        let fail = |message: String| (text.clone(), message);
        let (logical, expr) = functions
            .compile(text, schema)
            .map_err(|e| fail(explain(&e, text, input)))?;
        let name = logical.schema_name().to_string();
        let field = expr
            .return_field(input)
            .map_err(|e| fail(explain(&e, text, input)))?;
        computed.push((text, name, expr, field));
    }
    let named: Vec<String> = computed.iter().map(|(_, name, ..)| name.clone()).collect();
    let mut columns = Vec::new();
    let mut fields: Vec<Arc<Field>> = Vec::new();
    let mut computed = computed.into_iter();
    for text in expressions {
        if text.trim() == "*" {
            for (i, field) in input.fields().iter().enumerate() {
                if !named.contains(field.name()) {
                    columns.push(OutputColumn::Input(i));
                    fields.push(field.clone());
                }
            }
            continue;
        }
        let Some((text, name, expr, field)) = computed.next() else {
            break;
        };
        if fields.iter().any(|f| f.name() == &name) {
            return Err((
                text.clone(),
                format!("a second column named `{name}`: give one of them another name with AS"),
            ));
        }
        fields.push(Arc::new(
            Field::new(name, field.data_type().clone(), field.is_nullable())
                .with_metadata(field.metadata().clone()),
        ));
        // A bare column (renamed or not) is passed on, not evaluated.
        columns.push(match expr.downcast_ref::<Column>() {
            Some(column) => OutputColumn::Input(column.index()),
            None => OutputColumn::Computed {
                expr,
                text: text.clone(),
            },
        });
    }
    Ok((Work::Project(columns), Arc::new(Schema::new(fields))))
}

/// A planning error in the user's terms: a missing column is named with the columns there are; any other
/// error also lists the columns the expression uses, with their types.
fn explain(error: &DataFusionError, text: &str, input: &SchemaRef) -> String {
    let root = error.find_root();
    if let DataFusionError::SchemaError(schema_error, _) = root {
        if let SchemaError::FieldNotFound { field, .. } = schema_error.as_ref() {
            return format!(
                "no column `{}` in the rows reaching this stage (they have: {})",
                field.name,
                crate::schema::column_list(input)
            );
        }
    }
    format!("{}{}", root.strip_backtrace(), columns_used(text, input))
}

/// ` (columns used: flag Int32, name Utf8)`: the input columns whose names appear in `text` as words.
fn columns_used(text: &str, input: &Schema) -> String {
    let words: Vec<&str> = text
        .split(|c: char| !(c.is_alphanumeric() || c == '_'))
        .collect();
    let used: Vec<String> = input
        .fields()
        .iter()
        .filter(|field| words.contains(&field.name().as_str()))
        .map(|field| format!("{} {}", field.name(), field.data_type()))
        .collect();
    if used.is_empty() {
        String::new()
    } else {
        format!(" (columns used: {})", used.join(", "))
    }
}
