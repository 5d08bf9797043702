//! Arrow batches to and from the WIT world's typed column lists: pure functions, so the type rules are in
//! one place and tested without a guest.
//!
//! Each Arrow type crosses as one of five lists (`values` in `wit/weir-udf.wit`): every integer, date and
//! timestamp type as `ints` (s64), both float types as `floats`, then `bools`, `strings` and `bytes`. The
//! declared type says which Arrow type a list becomes, and every value is checked against it.

use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::{
    Date32Type, Float32Type, Float64Type, Int16Type, Int32Type, Int64Type, Int8Type,
    TimestampMicrosecondType, TimestampMillisecondType, TimestampNanosecondType,
    TimestampSecondType, UInt16Type, UInt32Type, UInt64Type, UInt8Type,
};
use arrow_array::{
    Array, ArrayRef, ArrowPrimitiveType, BinaryArray, BooleanArray, PrimitiveArray, RecordBatch,
    RecordBatchOptions, StringArray,
};
use arrow_schema::{
    DataType as ArrowType, Field as ArrowField, Schema, SchemaRef, TimeUnit as ArrowUnit,
};

use super::bindings::types::{Batch, DataType, Field, TimeUnit, Values};

/// The WIT schema of an Arrow schema, or the first column whose type the world cannot carry.
pub(super) fn schema_to_wit(schema: &Schema) -> Result<Vec<Field>, String> {
    schema
        .fields()
        .iter()
        .map(|field| {
            Ok(Field {
                name: field.name().clone(),
                data_type: type_to_wit(field.data_type()).ok_or_else(|| {
                    format!(
                        "column `{}` is {}, which the component interface does not carry (it carries \
                         booleans, integers, floats, utf8, binary, date32 and timestamps)",
                        field.name(),
                        field.data_type()
                    )
                })?,
                nullable: field.is_nullable(),
            })
        })
        .collect()
}

fn type_to_wit(ty: &ArrowType) -> Option<DataType> {
    Some(match ty {
        ArrowType::Boolean => DataType::Boolean,
        ArrowType::Int8 => DataType::Int8,
        ArrowType::Int16 => DataType::Int16,
        ArrowType::Int32 => DataType::Int32,
        ArrowType::Int64 => DataType::Int64,
        ArrowType::UInt8 => DataType::Uint8,
        ArrowType::UInt16 => DataType::Uint16,
        ArrowType::UInt32 => DataType::Uint32,
        ArrowType::UInt64 => DataType::Uint64,
        ArrowType::Float32 => DataType::Float32,
        ArrowType::Float64 => DataType::Float64,
        ArrowType::Utf8 => DataType::Utf8,
        ArrowType::Binary => DataType::Binary,
        ArrowType::Date32 => DataType::Date32,
        ArrowType::Timestamp(unit, tz) => {
            let unit = match unit {
                ArrowUnit::Second => TimeUnit::Second,
                ArrowUnit::Millisecond => TimeUnit::Millisecond,
                ArrowUnit::Microsecond => TimeUnit::Microsecond,
                ArrowUnit::Nanosecond => TimeUnit::Nanosecond,
            };
            DataType::Timestamp((unit, tz.as_ref().map(|tz| tz.to_string())))
        }
        _ => return None,
    })
}

/// The Arrow schema a component declared.
pub(super) fn schema_from_wit(fields: &[Field]) -> Result<SchemaRef, String> {
    let mut seen = std::collections::HashSet::new();
    let fields: Vec<ArrowField> = fields
        .iter()
        .map(|field| {
            if !seen.insert(field.name.as_str()) {
                return Err(format!(
                    "the output schema has two columns named `{}`",
                    field.name
                ));
            }
            Ok(ArrowField::new(
                &field.name,
                type_from_wit(&field.data_type),
                field.nullable,
            ))
        })
        .collect::<Result<_, String>>()?;
    Ok(Arc::new(Schema::new(fields)))
}

fn type_from_wit(ty: &DataType) -> ArrowType {
    match ty {
        DataType::Boolean => ArrowType::Boolean,
        DataType::Int8 => ArrowType::Int8,
        DataType::Int16 => ArrowType::Int16,
        DataType::Int32 => ArrowType::Int32,
        DataType::Int64 => ArrowType::Int64,
        DataType::Uint8 => ArrowType::UInt8,
        DataType::Uint16 => ArrowType::UInt16,
        DataType::Uint32 => ArrowType::UInt32,
        DataType::Uint64 => ArrowType::UInt64,
        DataType::Float32 => ArrowType::Float32,
        DataType::Float64 => ArrowType::Float64,
        DataType::Utf8 => ArrowType::Utf8,
        DataType::Binary => ArrowType::Binary,
        DataType::Date32 => ArrowType::Date32,
        DataType::Timestamp((unit, tz)) => ArrowType::Timestamp(
            match unit {
                TimeUnit::Second => ArrowUnit::Second,
                TimeUnit::Millisecond => ArrowUnit::Millisecond,
                TimeUnit::Microsecond => ArrowUnit::Microsecond,
                TimeUnit::Nanosecond => ArrowUnit::Nanosecond,
            },
            tz.as_deref().map(Arc::from),
        ),
    }
}

/// The column lists of an Arrow batch whose schema passed [`schema_to_wit`].
pub(super) fn batch_to_wit(batch: &RecordBatch) -> Result<Batch, String> {
    let columns = batch
        .schema()
        .fields()
        .iter()
        .zip(batch.columns())
        .map(|(field, array)| {
            column_to_wit(array).map_err(|e| format!("column `{}`: {e}", field.name()))
        })
        .collect::<Result<_, String>>()?;
    Ok(Batch {
        rows: batch.num_rows() as u32,
        columns,
    })
}

fn ints<T: ArrowPrimitiveType>(array: &ArrayRef) -> Values
where
    T::Native: Into<i64>,
{
    Values::Ints(
        array
            .as_primitive::<T>()
            .iter()
            .map(|v| v.map(Into::into))
            .collect(),
    )
}

fn column_to_wit(array: &ArrayRef) -> Result<Values, String> {
    Ok(match array.data_type() {
        ArrowType::Boolean => Values::Bools(array.as_boolean().iter().collect()),
        ArrowType::Int8 => ints::<Int8Type>(array),
        ArrowType::Int16 => ints::<Int16Type>(array),
        ArrowType::Int32 => ints::<Int32Type>(array),
        ArrowType::Int64 => ints::<Int64Type>(array),
        ArrowType::UInt8 => ints::<UInt8Type>(array),
        ArrowType::UInt16 => ints::<UInt16Type>(array),
        ArrowType::UInt32 => ints::<UInt32Type>(array),
        ArrowType::UInt64 => Values::Ints(
            array
                .as_primitive::<UInt64Type>()
                .iter()
                .map(|v| v.map(i64::try_from).transpose())
                .collect::<Result<_, _>>()
                .map_err(|_| "a uint64 value is past the s64 range of the interface".to_string())?,
        ),
        ArrowType::Date32 => ints::<Date32Type>(array),
        ArrowType::Timestamp(ArrowUnit::Second, _) => ints::<TimestampSecondType>(array),
        ArrowType::Timestamp(ArrowUnit::Millisecond, _) => ints::<TimestampMillisecondType>(array),
        ArrowType::Timestamp(ArrowUnit::Microsecond, _) => ints::<TimestampMicrosecondType>(array),
        ArrowType::Timestamp(ArrowUnit::Nanosecond, _) => ints::<TimestampNanosecondType>(array),
        ArrowType::Float32 => Values::Floats(
            array
                .as_primitive::<Float32Type>()
                .iter()
                .map(|v| v.map(f64::from))
                .collect(),
        ),
        ArrowType::Float64 => Values::Floats(array.as_primitive::<Float64Type>().iter().collect()),
        ArrowType::Utf8 => Values::Strings(
            array
                .as_string::<i32>()
                .iter()
                .map(|v| v.map(str::to_string))
                .collect(),
        ),
        ArrowType::Binary => Values::Bytes(
            array
                .as_binary::<i32>()
                .iter()
                .map(|v| v.map(<[u8]>::to_vec))
                .collect(),
        ),
        other => return Err(format!("{other} is not carried by the component interface")),
    })
}

/// The bytes a returned batch takes, as `limits.max_output` counts them: 8 per value and per row, plus
/// the bytes of strings and binaries.
pub(super) fn output_size(batch: &Batch) -> u64 {
    let column = |values: &Values| -> u64 {
        match values {
            Values::Bools(v) => 8 * v.len() as u64,
            Values::Ints(v) => 8 * v.len() as u64,
            Values::Floats(v) => 8 * v.len() as u64,
            Values::Strings(v) => v
                .iter()
                .map(|s| 8 + s.as_ref().map_or(0, |s| s.len() as u64))
                .sum(),
            Values::Bytes(v) => v
                .iter()
                .map(|b| 8 + b.as_ref().map_or(0, |b| b.len() as u64))
                .sum(),
        }
    };
    8 * u64::from(batch.rows) + batch.columns.iter().map(column).sum::<u64>()
}

/// The Arrow batch of a returned batch, checked against the declared `schema`: as many columns, each of
/// the list its type crosses as, with `rows` values that fit the type.
pub(super) fn batch_from_wit(batch: Batch, schema: &SchemaRef) -> Result<RecordBatch, String> {
    if batch.columns.len() != schema.fields().len() {
        return Err(format!(
            "the batch has {} columns, but the declared output schema has {}",
            batch.columns.len(),
            schema.fields().len()
        ));
    }
    let rows = batch.rows as usize;
    let columns = schema
        .fields()
        .iter()
        .zip(batch.columns)
        .map(|(field, values)| {
            column_from_wit(values, field.data_type(), rows)
                .map_err(|e| format!("column `{}` ({}): {e}", field.name(), field.data_type()))
        })
        .collect::<Result<Vec<ArrayRef>, String>>()?;
    RecordBatch::try_new_with_options(
        schema.clone(),
        columns,
        &RecordBatchOptions::new().with_row_count(Some(rows)),
    )
    .map_err(|e| e.to_string())
}

fn list_name(values: &Values) -> &'static str {
    match values {
        Values::Bools(_) => "bools",
        Values::Ints(_) => "ints",
        Values::Floats(_) => "floats",
        Values::Strings(_) => "strings",
        Values::Bytes(_) => "bytes",
    }
}

fn checked_len(len: usize, rows: usize) -> Result<(), String> {
    if len == rows {
        Ok(())
    } else {
        Err(format!("{len} values for a batch of {rows} rows"))
    }
}

/// Narrows s64 values to `T`, naming the first that does not fit.
fn narrow<T: ArrowPrimitiveType>(values: Vec<Option<i64>>) -> Result<ArrayRef, String>
where
    T::Native: TryFrom<i64>,
{
    let array: PrimitiveArray<T> = values
        .into_iter()
        .enumerate()
        .map(|(row, v)| {
            v.map(|v| T::Native::try_from(v).map_err(|_| format!("row {row}: {v} does not fit")))
                .transpose()
        })
        .collect::<Result<_, String>>()?;
    Ok(Arc::new(array))
}

fn column_from_wit(values: Values, ty: &ArrowType, rows: usize) -> Result<ArrayRef, String> {
    let wrong = |values: &Values, want: &str| {
        Err(format!(
            "it crosses as `{want}`, but the UDF returned `{}`",
            list_name(values)
        ))
    };
    let len = match &values {
        Values::Bools(v) => v.len(),
        Values::Ints(v) => v.len(),
        Values::Floats(v) => v.len(),
        Values::Strings(v) => v.len(),
        Values::Bytes(v) => v.len(),
    };
    checked_len(len, rows)?;
    match (ty, values) {
        (ArrowType::Boolean, Values::Bools(v)) => Ok(Arc::new(BooleanArray::from(v))),
        (ArrowType::Boolean, other) => wrong(&other, "bools"),
        (ArrowType::Float64, Values::Floats(v)) => {
            Ok(Arc::new(PrimitiveArray::<Float64Type>::from(v)))
        }
        (ArrowType::Float32, Values::Floats(v)) => Ok(Arc::new(
            v.into_iter()
                .map(|v| v.map(|v| v as f32))
                .collect::<PrimitiveArray<Float32Type>>(),
        )),
        (ArrowType::Float32 | ArrowType::Float64, other) => wrong(&other, "floats"),
        (ArrowType::Utf8, Values::Strings(v)) => Ok(Arc::new(StringArray::from(v))),
        (ArrowType::Utf8, other) => wrong(&other, "strings"),
        (ArrowType::Binary, Values::Bytes(v)) => Ok(Arc::new(
            v.iter().map(|b| b.as_deref()).collect::<BinaryArray>(),
        )),
        (ArrowType::Binary, other) => wrong(&other, "bytes"),
        (ty, Values::Ints(v)) => match ty {
            ArrowType::Int8 => narrow::<Int8Type>(v),
            ArrowType::Int16 => narrow::<Int16Type>(v),
            ArrowType::Int32 => narrow::<Int32Type>(v),
            ArrowType::Int64 => narrow::<Int64Type>(v),
            ArrowType::UInt8 => narrow::<UInt8Type>(v),
            ArrowType::UInt16 => narrow::<UInt16Type>(v),
            ArrowType::UInt32 => narrow::<UInt32Type>(v),
            ArrowType::UInt64 => narrow::<UInt64Type>(v),
            ArrowType::Date32 => narrow::<Date32Type>(v),
            ArrowType::Timestamp(unit, tz) => {
                let array = PrimitiveArray::<Int64Type>::from(v);
                arrow_cast::cast(&array, &ArrowType::Timestamp(*unit, tz.clone()))
                    .map_err(|e| e.to_string())
            }
            other => Err(format!("{other} is not carried by the component interface")),
        },
        (_, other) => wrong(&other, "ints"),
    }
}

#[cfg(test)]
mod tests;
