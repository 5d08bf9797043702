//! Schemas as users write and read them: Spark's DDL strings (`name STRING, amount DOUBLE NOT NULL`) and
//! the `name: type, ...` lists that plans and errors print.

mod ddl;

use arrow_schema::SchemaRef;

pub(crate) use ddl::format_ddl_schema;
pub use ddl::parse_ddl_schema;

/// `name: type, ...` of a schema, for the plan and for errors.
pub fn column_list(schema: &SchemaRef) -> String {
    schema
        .fields()
        .iter()
        .map(|f| format!("{}: {}", f.name(), f.data_type()))
        .collect::<Vec<_>>()
        .join(", ")
}
