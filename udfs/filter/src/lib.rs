//! Transform UDF: keeps the rows whose column compares as configured, e.g. the windows with `count > 1` or
//! the camera events with `has_person = true`.
//!
//! Configuration (the stage's `config` table), one comparison:
//! `{ column = "count", greater_than = 1 }`, `{ column = "temp", less_than = 0.5 }` or
//! `{ column = "has_person", equals = true }` (`equals` takes a number, a boolean or a string).
//! The output has the input's schema; rows whose column is null are dropped.

use serde::Deserialize;
use weir_guest::arrow_array::cast::AsArray;
use weir_guest::arrow_array::types::{Float64Type, Int32Type, Int64Type};
use weir_guest::arrow_array::{Array, BooleanArray, RecordBatch};
use weir_guest::arrow_schema::{DataType, SchemaRef};
use weir_guest::{RowErrors, Udf, UdfError};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    column: String,
    greater_than: Option<f64>,
    less_than: Option<f64>,
    equals: Option<serde_json::Value>,
}

/// The comparison a row must pass.
enum Test {
    Above(f64),
    Below(f64),
    Equals(serde_json::Value),
}

/// The filter, with its column and comparison.
pub struct Filter {
    column: usize,
    test: Test,
}

impl Udf for Filter {
    fn init(config: &str, input: SchemaRef) -> Result<(Self, SchemaRef), UdfError> {
        let expected =
            "expected { column = \"count\", greater_than = 1 } (or less_than, or equals)";
        let config: Config = serde_json::from_str(config)
            .map_err(|e| UdfError::new(format!("config: {e}; {expected}")))?;
        let test = match (config.greater_than, config.less_than, config.equals) {
            (Some(v), None, None) => Test::Above(v),
            (None, Some(v), None) => Test::Below(v),
            (None, None, Some(v)) => Test::Equals(v),
            _ => {
                return Err(UdfError::new(format!(
                    "config: give exactly one comparison; {expected}"
                )))
            }
        };
        let column = input
            .index_of(&config.column)
            .map_err(|_| UdfError::new(format!("the input has no `{}` column", config.column)))?;
        let data_type = input.field(column).data_type();
        let supported = match &test {
            Test::Above(_) | Test::Below(_) => matches!(
                data_type,
                DataType::Int32 | DataType::Int64 | DataType::Float64
            ),
            Test::Equals(_) => matches!(
                data_type,
                DataType::Int32
                    | DataType::Int64
                    | DataType::Float64
                    | DataType::Boolean
                    | DataType::Utf8
            ),
        };
        if !supported {
            return Err(UdfError::new(format!(
                "`{}` is {data_type}, which this comparison cannot read",
                config.column
            )));
        }
        Ok((Filter { column, test }, input))
    }

    fn process(
        &mut self,
        batch: RecordBatch,
        _errors: &mut RowErrors,
    ) -> Result<RecordBatch, UdfError> {
        let column = batch.column(self.column);
        let number = |v: Option<f64>| {
            v.map(|v| match &self.test {
                Test::Above(bound) => v > *bound,
                Test::Below(bound) => v < *bound,
                Test::Equals(value) => value.as_f64() == Some(v),
            })
        };
        let keep: BooleanArray = match column.data_type() {
            DataType::Int32 => column
                .as_primitive::<Int32Type>()
                .iter()
                .map(|v| number(v.map(f64::from)))
                .collect(),
            DataType::Int64 => column
                .as_primitive::<Int64Type>()
                .iter()
                .map(|v| number(v.map(|v| v as f64)))
                .collect(),
            DataType::Float64 => column
                .as_primitive::<Float64Type>()
                .iter()
                .map(number)
                .collect(),
            DataType::Boolean => {
                let wanted = matches!(&self.test, Test::Equals(serde_json::Value::Bool(b)) if *b);
                column
                    .as_boolean()
                    .iter()
                    .map(|v| v.map(|v| v == wanted))
                    .collect()
            }
            _ => {
                let wanted = match &self.test {
                    Test::Equals(serde_json::Value::String(s)) => Some(s.as_str()),
                    _ => None,
                };
                column
                    .as_string::<i32>()
                    .iter()
                    .map(|v| v.map(|v| Some(v) == wanted))
                    .collect()
            }
        };
        let keep: BooleanArray = keep.iter().map(|v| Some(v == Some(true))).collect();
        debug_assert_eq!(keep.len(), column.len());
        Ok(arrow_select::filter::filter_record_batch(&batch, &keep)?)
    }
}

weir_guest::export_transform!(Filter);

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use weir_guest::arrow_array::{ArrayRef, Int64Array, StringArray};

    fn run(config: &str, batch: RecordBatch) -> Result<RecordBatch, UdfError> {
        weir_guest::run_native::<Filter>(config, batch).map(|(out, _)| out)
    }

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
        let out = run(r#"{"column":"count","greater_than":1}"#, batch).unwrap();
        assert_eq!(
            weir_guest::column::<StringArray>(&out, "id")
                .unwrap()
                .value(0),
            "b"
        );
        assert_eq!(out.num_rows(), 1);
    }

    #[test]
    fn equals_booleans_and_strings() {
        let batch = RecordBatch::try_from_iter([
            (
                "seen",
                Arc::new(BooleanArray::from(vec![Some(true), Some(false), None])) as ArrayRef,
            ),
            (
                "zone",
                Arc::new(StringArray::from(vec!["x", "y", "x"])) as ArrayRef,
            ),
        ])
        .unwrap();
        assert_eq!(
            run(r#"{"column":"seen","equals":true}"#, batch.clone())
                .unwrap()
                .num_rows(),
            1
        );
        assert_eq!(
            run(r#"{"column":"seen","equals":false}"#, batch.clone())
                .unwrap()
                .num_rows(),
            1
        );
        assert_eq!(
            run(r#"{"column":"zone","equals":"x"}"#, batch)
                .unwrap()
                .num_rows(),
            2
        );
    }

    #[test]
    fn bad_config_is_explained() {
        let batch =
            RecordBatch::try_from_iter([("n", Arc::new(Int64Array::from(vec![1])) as ArrayRef)])
                .unwrap();
        let err = run(r#"{"column":"n"}"#, batch.clone()).unwrap_err();
        assert!(err.to_string().contains("exactly one comparison"), "{err}");
        let err = run(r#"{"column":"n","greater_than":1,"less_than":5}"#, batch).unwrap_err();
        assert!(err.to_string().contains("exactly one comparison"), "{err}");
    }
}
