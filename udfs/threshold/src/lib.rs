//! Transform UDF: keeps the rows whose numeric column is above a value, e.g. the windows with `count > 1`.
//!
//! Configuration (the stage's `config` table): `{ column = "count", greater_than = 1 }`. The output has
//! the input's schema.

use serde::Deserialize;
use weir_guest::arrow_array::cast::AsArray;
use weir_guest::arrow_array::types::{Float64Type, Int32Type, Int64Type};
use weir_guest::arrow_array::{BooleanArray, RecordBatch};
use weir_guest::arrow_schema::{DataType, SchemaRef};
use weir_guest::{RowErrors, Udf, UdfError};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    column: String,
    greater_than: f64,
}

/// The filter, with its column and bound.
pub struct Threshold {
    column: usize,
    greater_than: f64,
}

impl Udf for Threshold {
    fn init(config: &str, input: SchemaRef) -> Result<(Self, SchemaRef), UdfError> {
        let config: Config = serde_json::from_str(config).map_err(|e| {
            UdfError::new(format!(
                "config: {e}; expected {{ column = \"count\", greater_than = 1 }}"
            ))
        })?;
        let column = input
            .index_of(&config.column)
            .map_err(|_| UdfError::new(format!("the input has no `{}` column", config.column)))?;
        if !matches!(
            input.field(column).data_type(),
            DataType::Int32 | DataType::Int64 | DataType::Float64
        ) {
            return Err(UdfError::new(format!(
                "`{}` is {}; expected int, bigint or double",
                config.column,
                input.field(column).data_type()
            )));
        }
        Ok((
            Threshold {
                column,
                greater_than: config.greater_than,
            },
            input,
        ))
    }

    fn process(
        &mut self,
        batch: RecordBatch,
        _errors: &mut RowErrors,
    ) -> Result<RecordBatch, UdfError> {
        let column = batch.column(self.column);
        let above = |v: Option<f64>| Some(v.is_some_and(|v| v > self.greater_than));
        let keep: BooleanArray = match column.data_type() {
            DataType::Int32 => column
                .as_primitive::<Int32Type>()
                .iter()
                .map(|v| above(v.map(f64::from)))
                .collect(),
            DataType::Int64 => column
                .as_primitive::<Int64Type>()
                .iter()
                .map(|v| above(v.map(|v| v as f64)))
                .collect(),
            DataType::Float64 => column
                .as_primitive::<Float64Type>()
                .iter()
                .map(above)
                .collect(),
            other => {
                return Err(UdfError::new(format!(
                    "column type {other} is not supported; use int, bigint or double"
                )))
            }
        };
        Ok(arrow_select::filter::filter_record_batch(&batch, &keep)?)
    }
}

weir_guest::export_transform!(Threshold);

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use weir_guest::arrow_array::{ArrayRef, Int64Array, StringArray};

    #[test]
    fn keeps_rows_above_the_bound() {
        let batch = RecordBatch::try_from_iter([
            (
                "id",
                Arc::new(StringArray::from(vec!["a", "b", "c"])) as ArrayRef,
            ),
            (
                "count",
                Arc::new(Int64Array::from(vec![Some(1), Some(2), None])) as ArrayRef,
            ),
        ])
        .unwrap();
        let (out, _) =
            weir_guest::run_native::<Threshold>(r#"{"column":"count","greater_than":1}"#, batch)
                .unwrap();
        assert_eq!(
            weir_guest::column::<StringArray>(&out, "id")
                .unwrap()
                .value(0),
            "b"
        );
        assert_eq!(out.num_rows(), 1);
    }

    #[test]
    fn bad_config_is_explained() {
        let batch =
            RecordBatch::try_from_iter([("n", Arc::new(Int64Array::from(vec![1])) as ArrayRef)])
                .unwrap();
        let err = weir_guest::run_native::<Threshold>(r#"{"column":"count"}"#, batch).unwrap_err();
        assert!(err.to_string().contains("greater_than"), "{err}");
    }
}
