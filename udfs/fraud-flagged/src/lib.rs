//! Transform UDF for the seeds' fraud detection, stateless part: keeps the transactions with `flag == 1`
//! and puts `id = name || surname` in front of the other columns.
//!
//! Its input is any batch with `name`, `surname` (strings) and `flag` (int); every other column is carried
//! through unchanged, so it composes with deserializers that add fields.

use std::fmt::Write;
use std::sync::Arc;

use arrow_select::filter::filter_record_batch;
use weir_guest::arrow_array::builder::StringBuilder;
use weir_guest::arrow_array::{ArrayRef, BooleanArray, Int32Array, RecordBatch, StringArray};
use weir_guest::arrow_schema::{DataType, Field, Schema, SchemaRef};
use weir_guest::{RowErrors, Udf, UdfError};

/// The transform: stateless, so it keeps only its output schema.
pub struct FraudFlagged {
    output: SchemaRef,
}

impl Udf for FraudFlagged {
    fn init(_config: &str, input: SchemaRef) -> Result<(Self, SchemaRef), UdfError> {
        for (name, ty) in [
            ("name", DataType::Utf8),
            ("surname", DataType::Utf8),
            ("flag", DataType::Int32),
        ] {
            let field = input
                .field_with_name(name)
                .map_err(|_| UdfError::new(format!("the input has no `{name}` column")))?;
            if field.data_type() != &ty {
                return Err(UdfError::new(format!(
                    "`{name}` is {} but {ty} was expected",
                    field.data_type()
                )));
            }
        }
        let mut fields = vec![Arc::new(Field::new("id", DataType::Utf8, true))];
        fields.extend(input.fields().iter().cloned());
        let output = Arc::new(Schema::new(fields));
        Ok((
            FraudFlagged {
                output: output.clone(),
            },
            output,
        ))
    }

    fn process(
        &mut self,
        batch: RecordBatch,
        _errors: &mut RowErrors,
    ) -> Result<RecordBatch, UdfError> {
        let flag = weir_guest::column::<Int32Array>(&batch, "flag")?;
        let keep: BooleanArray = flag.iter().map(|f| Some(f == Some(1))).collect();
        let kept = filter_record_batch(&batch, &keep)?;
        let name = weir_guest::column::<StringArray>(&kept, "name")?;
        let surname = weir_guest::column::<StringArray>(&kept, "surname")?;
        let bytes = name.values().len() + surname.values().len();
        let mut id = StringBuilder::with_capacity(kept.num_rows(), bytes);
        for (name, surname) in name.iter().zip(surname.iter()) {
            match (name, surname) {
                (Some(name), Some(surname)) => {
                    // Writing into the builder's pending value avoids a String per row.
                    id.write_str(name)
                        .and_then(|()| id.write_str(surname))
                        .map_err(|_| UdfError::new("building id"))?;
                    id.append_value("");
                }
                _ => id.append_null(),
            }
        }
        let mut columns: Vec<ArrayRef> = vec![Arc::new(id.finish())];
        columns.extend(kept.columns().iter().cloned());
        Ok(RecordBatch::try_new(self.output.clone(), columns)?)
    }
}

weir_guest::export_transform!(FraudFlagged);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_flagged_rows_and_builds_ids() {
        let batch = RecordBatch::try_from_iter([
            (
                "name",
                Arc::new(StringArray::from(vec!["a", "b", "c"])) as ArrayRef,
            ),
            (
                "surname",
                Arc::new(StringArray::from(vec!["x", "y", "z"])) as ArrayRef,
            ),
            (
                "flag",
                Arc::new(Int32Array::from(vec![1, 0, 1])) as ArrayRef,
            ),
        ])
        .unwrap();
        let (out, errors) = weir_guest::run_native::<FraudFlagged>("{}", batch).unwrap();
        assert!(errors.is_empty());
        let id = weir_guest::column::<StringArray>(&out, "id").unwrap();
        assert_eq!(id.iter().collect::<Vec<_>>(), [Some("ax"), Some("cz")]);
        assert_eq!(out.schema().field(0).name(), "id");
        assert_eq!(out.num_columns(), 4);
    }

    #[test]
    fn refuses_input_without_flag() {
        let batch = RecordBatch::try_from_iter([(
            "name",
            Arc::new(StringArray::from(vec!["a"])) as ArrayRef,
        )])
        .unwrap();
        let err = weir_guest::run_native::<FraudFlagged>("{}", batch).unwrap_err();
        assert!(err.to_string().contains("no `surname` column"), "{err}");
    }
}
