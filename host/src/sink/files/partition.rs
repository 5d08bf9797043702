//! `partitionBy`: a batch's rows split by the values of some columns, each part bound for the Hive-style
//! sub-directory its values name (`zip_code=94105/hour=2024-01-01T10%3A00%3A00/`), without those columns.
//!
//! Directory names follow Hive's (and so Spark's) escaping, so Spark, DuckDB and pandas read the values
//! back: characters that mean something in a path are written `%XX`, and NULL is
//! `__HIVE_DEFAULT_PARTITION__`.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write;

use arrow_array::{Array, ArrayRef, RecordBatch, UInt32Array};
use arrow_cast::display::{ArrayFormatter, FormatOptions};
use arrow_row::{Row, RowConverter, SortField};
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
    // Rows are grouped by their row-encoded values (bytes compared, no formatting per row); each group's
    // directory is then formatted once, from its first row.
    let values: Vec<ArrayRef> = columns.iter().map(|&i| batch.column(i).clone()).collect();
    let fields = values
        .iter()
        .map(|v| SortField::new(v.data_type().clone()))
        .collect();
    let encoded = RowConverter::new(fields)?.convert_columns(&values)?;
    let mut by_value: HashMap<Row<'_>, Vec<u32>> = HashMap::new();
    for row in 0..batch.num_rows() {
        by_value
            .entry(encoded.row(row))
            .or_default()
            .push(row as u32);
    }
    let names: Vec<&str> = columns
        .iter()
        .map(|&i| batch.schema_ref().field(i).name().as_str())
        .collect();
    let options = FormatOptions::default();
    let formatters = values
        .iter()
        .map(|v| ArrayFormatter::try_new(v.as_ref(), &options))
        .collect::<Result<Vec<_>, _>>()?;
    // Distinct values may name the same directory (as -0.0 and 0.0 do): their rows go together.
    let mut groups: BTreeMap<String, Vec<u32>> = BTreeMap::new();
    for rows in by_value.into_values() {
        let first = rows[0] as usize;
        let mut dir = String::new();
        for ((name, formatter), value) in names.iter().zip(&formatters).zip(&values) {
            escape_into(&mut dir, name);
            dir.push('=');
            if value.is_null(first) {
                dir.push_str(NULL_VALUE);
            } else {
                escape_into(&mut dir, &formatter.value(first).to_string());
            }
            dir.push('/');
        }
        groups.entry(dir).or_default().extend(rows);
    }
    for rows in groups.values_mut() {
        rows.sort_unstable();
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

    /// `batch` split by `columns`: each directory with its rows' values of the one column left (`n`).
    fn split(batch: &RecordBatch, columns: &[&str]) -> Vec<(String, Vec<i64>)> {
        let names: Vec<String> = columns.iter().map(|c| c.to_string()).collect();
        let columns = partition_columns(batch.schema_ref(), &names).unwrap();
        split_by_partition(batch, &columns)
            .unwrap()
            .into_iter()
            .map(|(dir, rows)| {
                assert_eq!(rows.num_columns(), 1, "the partition columns are left out");
                let n = rows
                    .column(0)
                    .as_any()
                    .downcast_ref::<Int64Array>()
                    .unwrap();
                (dir, n.values().to_vec())
            })
            .collect()
    }

    fn owned(expected: Vec<(&str, Vec<i64>)>) -> Vec<(String, Vec<i64>)> {
        expected
            .into_iter()
            .map(|(d, n)| (d.to_string(), n))
            .collect()
    }

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
        assert_eq!(
            split(&batch, &["zip"]),
            owned(vec![
                ("zip=94105/", vec![1, 4]),
                ("zip=__HIVE_DEFAULT_PARTITION__/", vec![3]),
                ("zip=a%2Fb%3Dc/", vec![2]),
            ])
        );
    }

    #[test]
    fn two_columns_name_nested_directories_and_rows_keep_their_order() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("day", DataType::Utf8, false),
            Field::new("flag", DataType::Int64, true),
            Field::new("n", DataType::Int64, false),
        ]));
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(StringArray::from(vec!["d2", "d1", "d2", "d1", "d2"])),
                Arc::new(Int64Array::from(vec![
                    Some(1),
                    Some(0),
                    Some(1),
                    None,
                    Some(0),
                ])),
                Arc::new(Int64Array::from(vec![10, 11, 12, 13, 14])),
            ],
        )
        .unwrap();
        assert_eq!(
            split(&batch, &["day", "flag"]),
            owned(vec![
                ("day=d1/flag=0/", vec![11]),
                ("day=d1/flag=__HIVE_DEFAULT_PARTITION__/", vec![13]),
                ("day=d2/flag=0/", vec![14]),
                ("day=d2/flag=1/", vec![10, 12]),
            ])
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
