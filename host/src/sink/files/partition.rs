//! `partitionBy`: a batch's rows split by the values of some columns, each part bound for the Hive-style
//! sub-directory its values name (`zip_code=94105/hour=2024-01-01T10%3A00%3A00/`), without those columns.
//!
//! Directory names follow Hive's (and so Spark's) escaping, so Spark, DuckDB and pandas read the values
//! back: characters that mean something in a path are written `%XX`, and NULL is
//! `__HIVE_DEFAULT_PARTITION__`.

use std::collections::BTreeMap;
use std::fmt::Write;

use arrow_array::{Array, RecordBatch, UInt32Array};
use arrow_cast::display::{ArrayFormatter, FormatOptions};
use arrow_schema::{DataType, Schema};
use arrow_select::take::take_record_batch;

/// The directory name of a NULL partition value.
const NULL_VALUE: &str = "__HIVE_DEFAULT_PARTITION__";

/// The positions of the `partitionBy` columns in `schema`; an error names a column that is missing or
/// of a type that does not name a directory (nested types).
pub(crate) fn partition_columns(schema: &Schema, names: &[String]) -> Result<Vec<usize>, String> {
    names
        .iter()
        .map(|name| {
            let (i, field) = schema.column_with_name(name).ok_or_else(|| {
                format!("partitionBy column `{name}` is not among the rows' columns")
            })?;
            if field.data_type().is_nested() || matches!(field.data_type(), DataType::Binary) {
                return Err(format!(
                    "partitionBy column `{name}` is {}, which cannot name a directory",
                    field.data_type()
                ));
            }
            Ok(i)
        })
        .collect()
}

/// The rows of `batch` grouped by the values of `columns`: each group's directory (relative, ending in
/// `/`, or empty without `columns`) and its rows without those columns. Groups come in directory order.
pub(crate) fn split_by_partition(
    batch: &RecordBatch,
    columns: &[usize],
) -> anyhow::Result<Vec<(String, RecordBatch)>> {
    let kept: Vec<usize> = (0..batch.num_columns())
        .filter(|i| !columns.contains(i))
        .collect();
    if columns.is_empty() {
        return Ok(vec![(String::new(), batch.clone())]);
    }
    let options = FormatOptions::default();
    let formatters = columns
        .iter()
        .map(|&i| ArrayFormatter::try_new(batch.column(i).as_ref(), &options))
        .collect::<Result<Vec<_>, _>>()?;
    let names: Vec<&str> = columns
        .iter()
        .map(|&i| batch.schema_ref().field(i).name().as_str())
        .collect();
    let mut groups: BTreeMap<String, Vec<u32>> = BTreeMap::new();
    let mut dir = String::new();
    for row in 0..batch.num_rows() {
        dir.clear();
        for ((name, formatter), &column) in names.iter().zip(&formatters).zip(columns) {
            escape_into(&mut dir, name);
            dir.push('=');
            if batch.column(column).is_null(row) {
                dir.push_str(NULL_VALUE);
            } else {
                escape_into(&mut dir, &formatter.value(row).to_string());
            }
            dir.push('/');
        }
        match groups.get_mut(dir.as_str()) {
            Some(rows) => rows.push(row as u32),
            None => {
                groups.insert(dir.clone(), vec![row as u32]);
            }
        }
    }
    let without = batch.project(&kept)?;
    groups
        .into_iter()
        .map(|(dir, rows)| Ok((dir, take_record_batch(&without, &UInt32Array::from(rows))?)))
        .collect()
}

/// Appends `value` to `out` with Hive's escaping: `%XX` for control characters and
/// `"#%'*/:=?\{[]^` and DEL.
fn escape_into(out: &mut String, value: &str) {
    for c in value.chars() {
        if c.is_control() || "\"#%'*/:=?\\{[]^\u{7f}".contains(c) {
            let _ = write!(out, "%{:02X}", c as u32);
        } else {
            out.push(c);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow_array::{Int64Array, StringArray};
    use arrow_schema::Field;

    use super::*;

    #[test]
    fn rows_split_by_value_into_escaped_directories_without_the_column() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("zip", DataType::Utf8, true),
            Field::new("n", DataType::Int64, false),
        ]));
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(StringArray::from(vec![
                    Some("94105"),
                    Some("a/b=c"),
                    None,
                    Some("94105"),
                ])),
                Arc::new(Int64Array::from(vec![1, 2, 3, 4])),
            ],
        )
        .unwrap();
        let columns = partition_columns(&schema, &["zip".to_string()]).unwrap();
        let parts = split_by_partition(&batch, &columns).unwrap();
        let seen: Vec<(&str, Vec<i64>)> = parts
            .iter()
            .map(|(dir, rows)| {
                assert_eq!(rows.num_columns(), 1, "the partition column is left out");
                let n = rows
                    .column(0)
                    .as_any()
                    .downcast_ref::<Int64Array>()
                    .unwrap();
                (dir.as_str(), n.values().to_vec())
            })
            .collect();
        assert_eq!(
            seen,
            vec![
                ("zip=94105/", vec![1, 4]),
                ("zip=__HIVE_DEFAULT_PARTITION__/", vec![3]),
                ("zip=a%2Fb%3Dc/", vec![2]),
            ]
        );
    }

    #[test]
    fn a_missing_or_nested_column_is_refused_by_name() {
        let schema = Schema::new(vec![Field::new(
            "tags",
            DataType::List(Arc::new(Field::new("item", DataType::Utf8, true))),
            true,
        )]);
        let missing = partition_columns(&schema, &["zip".to_string()]).unwrap_err();
        assert!(missing.contains("`zip` is not among"), "{missing}");
        let nested = partition_columns(&schema, &["tags".to_string()]).unwrap_err();
        assert!(nested.contains("cannot name a directory"), "{nested}");
    }
}
