//! Schemas written as Spark DDL strings (`"name STRING, amount DOUBLE, flag INT"`), as `from_json` takes them.

use std::sync::Arc;

use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};

/// Parses a Spark DDL schema of named columns into an Arrow schema. Columns are nullable unless followed
/// by `NOT NULL` (which the built-in JSON deserializer enforces: a record without a value for such a column
/// is malformed).
///
/// Types: `STRING`, `BINARY`, `BOOLEAN`, `TINYINT`/`BYTE`, `SMALLINT`/`SHORT`, `INT`/`INTEGER`,
/// `BIGINT`/`LONG`, `FLOAT`, `DOUBLE`, `TIMESTAMP` (microseconds, UTC as `+00:00`, as Spark stores it) and `DATE`.
///
/// ```
/// use weir::parse_ddl_schema;
/// let schema = parse_ddl_schema("name STRING NOT NULL, flag INT").unwrap();
/// assert_eq!(schema.field(1).name(), "flag");
/// assert!(!schema.field(0).is_nullable() && schema.field(1).is_nullable());
/// assert!(parse_ddl_schema("flag NUMBER").unwrap_err().contains("NUMBER"));
/// ```
pub fn parse_ddl_schema(ddl: &str) -> Result<SchemaRef, String> {
    let mut fields = Vec::new();
    for column in ddl.split(',') {
        let column = column.trim();
        if column.is_empty() {
            return Err(format!("empty column in schema {ddl:?}"));
        }
        let mut words = column.split_whitespace();
        let name = words.next().unwrap_or_default().trim_matches('`');
        let type_name = words
            .next()
            .ok_or_else(|| format!("column {name:?} has no type (write e.g. \"{name} STRING\")"))?;
        let rest: Vec<String> = words.map(str::to_ascii_uppercase).collect();
        let nullable = match rest.as_slice() {
            [] => true,
            [not, null] if not == "NOT" && null == "NULL" => false,
            _ => {
                return Err(format!(
                "unexpected {:?} after the type of column {name:?} (only NOT NULL may follow it)",
                rest.join(" ")
            ))
            }
        };
        let data_type = match type_name.to_ascii_uppercase().as_str() {
            "STRING" => DataType::Utf8,
            "BINARY" => DataType::Binary,
            "BOOLEAN" => DataType::Boolean,
            "TINYINT" | "BYTE" => DataType::Int8,
            "SMALLINT" | "SHORT" => DataType::Int16,
            "INT" | "INTEGER" => DataType::Int32,
            "BIGINT" | "LONG" => DataType::Int64,
            "FLOAT" => DataType::Float32,
            "DOUBLE" => DataType::Float64,
            "TIMESTAMP" => DataType::Timestamp(TimeUnit::Microsecond, Some("+00:00".into())),
            "DATE" => DataType::Date32,
            other => {
                return Err(format!(
                    "column {name:?} has the unsupported type {other:?}; supported: STRING, BINARY, BOOLEAN, \
                     TINYINT, SMALLINT, INT, BIGINT, FLOAT, DOUBLE, TIMESTAMP, DATE"
                ))
            }
        };
        if fields.iter().any(|f: &Field| f.name() == name) {
            return Err(format!("column {name:?} appears twice"));
        }
        fields.push(Field::new(name, data_type, nullable));
    }
    Ok(Arc::new(Schema::new(fields)))
}

/// Writes an Arrow schema as a Spark DDL string, the inverse of [`parse_ddl_schema`] for the types it knows.
/// Nullability is not written: guests read this as their input schema (`weir::in_schema`), where every
/// column may be treated as nullable.
///
/// Other types are written with their Arrow name (e.g. `headers List(...)`), which no DDL parser accepts, so a
/// guest that copies such a column into its declared output gets a clear error at init.
pub(crate) fn format_ddl_schema(schema: &Schema) -> String {
    let columns: Vec<String> = schema
        .fields()
        .iter()
        .map(|field| {
            let type_name = match field.data_type() {
                DataType::Utf8 | DataType::LargeUtf8 => "STRING".to_string(),
                DataType::Binary | DataType::LargeBinary => "BINARY".to_string(),
                DataType::Boolean => "BOOLEAN".to_string(),
                DataType::Int8 => "TINYINT".to_string(),
                DataType::Int16 => "SMALLINT".to_string(),
                DataType::Int32 => "INT".to_string(),
                DataType::Int64 => "BIGINT".to_string(),
                DataType::Float32 => "FLOAT".to_string(),
                DataType::Float64 => "DOUBLE".to_string(),
                DataType::Timestamp(..) => "TIMESTAMP".to_string(),
                DataType::Date32 => "DATE".to_string(),
                other => other.to_string(),
            };
            format!("{} {type_name}", field.name())
        })
        .collect();
    columns.join(", ")
}

#[cfg(test)]
mod tests {
    /// `format_ddl_schema` by example (a unit test: doc tests cannot reach crate-private items).
    #[test]
    fn format_ddl_schema_example() {
        use crate::schema::{format_ddl_schema, parse_ddl_schema};
        let ddl = "name STRING, flag INT, at TIMESTAMP";
        assert_eq!(format_ddl_schema(&parse_ddl_schema(ddl).unwrap()), ddl);
    }
}
