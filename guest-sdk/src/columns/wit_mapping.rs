//! Arrow schemas and batches to and from the WIT world's types, as a macro: the host's wasmtime bindgen
//! and the guest's wit-bindgen make different Rust types of the same WIT types, with the same names and
//! shapes, so one macro body serves both and the mapping is written once.

/// Defines, with visibility `$vis`, `schema_to_wit`, `schema_from_wit`, `batch_to_wit` and
/// `batch_from_wit` (and the private `type_to_wit` and `type_from_wit`) between Arrow and the WIT world,
/// for bindings whose WIT types `data-type`, `time-unit`, `field`, `column` and `batch` are in scope
/// where the macro is called, with their generated names (`DataType`, `TimeUnit`, `Field`, `Column`,
/// `Batch`).
#[doc(hidden)]
#[macro_export]
macro_rules! wit_mapping {
    ($vis:vis) => {
        /// The WIT batch of an Arrow batch whose schema passed `schema_to_wit`.
        $vis fn batch_to_wit(
            batch: &$crate::arrow_array::RecordBatch,
        ) -> ::std::result::Result<Batch, ::std::string::String> {
            let columns = $crate::columns::batch_to_columns(batch)?
                .into_iter()
                .map(|column| Column {
                    data: column.data,
                    offsets: column.offsets,
                    valid: column.valid,
                })
                .collect();
            Ok(Batch {
                rows: batch.num_rows() as u32,
                columns,
            })
        }

        /// The Arrow batch of a WIT batch of `schema`, checked as `batch_from_columns` checks it.
        $vis fn batch_from_wit(
            batch: Batch,
            schema: &$crate::arrow_schema::SchemaRef,
        ) -> ::std::result::Result<$crate::arrow_array::RecordBatch, ::std::string::String> {
            let columns = batch
                .columns
                .into_iter()
                .map(|column| $crate::columns::Column {
                    data: column.data,
                    offsets: column.offsets,
                    valid: column.valid,
                })
                .collect();
            $crate::columns::batch_from_columns(columns, schema, batch.rows as usize)
        }

        /// The WIT schema of an Arrow schema, or the first column whose type the world cannot carry.
        $vis fn schema_to_wit(
            schema: &$crate::arrow_schema::Schema,
        ) -> ::std::result::Result<::std::vec::Vec<Field>, ::std::string::String> {
            schema
                .fields()
                .iter()
                .map(|field| {
                    Ok(Field {
                        name: field.name().clone(),
                        data_type: type_to_wit(field.data_type()).ok_or_else(|| {
                            format!(
                                "column `{}` is {}, which the component interface does not carry (it \
                                 carries booleans, integers, floats, utf8, binary, date32 and timestamps)",
                                field.name(),
                                field.data_type()
                            )
                        })?,
                        nullable: field.is_nullable(),
                    })
                })
                .collect()
        }

        /// The Arrow schema of a WIT schema, refusing two columns of the same name.
        $vis fn schema_from_wit(
            fields: &[Field],
        ) -> ::std::result::Result<$crate::arrow_schema::SchemaRef, ::std::string::String> {
            let mut seen = ::std::collections::HashSet::new();
            let fields = fields
                .iter()
                .map(|field| {
                    if !seen.insert(field.name.as_str()) {
                        return Err(format!("the schema has two columns named `{}`", field.name));
                    }
                    Ok($crate::arrow_schema::Field::new(
                        &field.name,
                        type_from_wit(&field.data_type),
                        field.nullable,
                    ))
                })
                .collect::<::std::result::Result<::std::vec::Vec<_>, ::std::string::String>>()?;
            Ok(::std::sync::Arc::new($crate::arrow_schema::Schema::new(fields)))
        }

        /// The WIT type of an Arrow type, or `None` when the interface does not carry it.
        fn type_to_wit(ty: &$crate::arrow_schema::DataType) -> Option<DataType> {
            use $crate::arrow_schema::{DataType as A, TimeUnit as U};
            Some(match ty {
                A::Boolean => DataType::Boolean,
                A::Int8 => DataType::Int8,
                A::Int16 => DataType::Int16,
                A::Int32 => DataType::Int32,
                A::Int64 => DataType::Int64,
                A::UInt8 => DataType::Uint8,
                A::UInt16 => DataType::Uint16,
                A::UInt32 => DataType::Uint32,
                A::UInt64 => DataType::Uint64,
                A::Float32 => DataType::Float32,
                A::Float64 => DataType::Float64,
                A::Utf8 => DataType::Utf8,
                A::Binary => DataType::Binary,
                A::Date32 => DataType::Date32,
                A::Timestamp(unit, tz) => {
                    let unit = match unit {
                        U::Second => TimeUnit::Second,
                        U::Millisecond => TimeUnit::Millisecond,
                        U::Microsecond => TimeUnit::Microsecond,
                        U::Nanosecond => TimeUnit::Nanosecond,
                    };
                    DataType::Timestamp((unit, tz.as_ref().map(|tz| tz.to_string())))
                }
                _ => return None,
            })
        }

        /// The Arrow type of a WIT type.
        fn type_from_wit(ty: &DataType) -> $crate::arrow_schema::DataType {
            use $crate::arrow_schema::{DataType as A, TimeUnit as U};
            match ty {
                DataType::Boolean => A::Boolean,
                DataType::Int8 => A::Int8,
                DataType::Int16 => A::Int16,
                DataType::Int32 => A::Int32,
                DataType::Int64 => A::Int64,
                DataType::Uint8 => A::UInt8,
                DataType::Uint16 => A::UInt16,
                DataType::Uint32 => A::UInt32,
                DataType::Uint64 => A::UInt64,
                DataType::Float32 => A::Float32,
                DataType::Float64 => A::Float64,
                DataType::Utf8 => A::Utf8,
                DataType::Binary => A::Binary,
                DataType::Date32 => A::Date32,
                DataType::Timestamp((unit, tz)) => {
                    let unit = match unit {
                        TimeUnit::Second => U::Second,
                        TimeUnit::Millisecond => U::Millisecond,
                        TimeUnit::Microsecond => U::Microsecond,
                        TimeUnit::Nanosecond => U::Nanosecond,
                    };
                    A::Timestamp(unit, tz.as_deref().map(::std::sync::Arc::from))
                }
            }
        }
    };
}
