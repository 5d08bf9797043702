//! Values crossing the row interface: reading one input value of any supported Arrow type, and typed
//! builders for the declared output columns.
//!
//! Kept apart from the host functions so the type rules (what reads as an integer, what fits a column) are
//! in one place and testable without a guest.

use std::sync::Arc;

use arrow_array::builder::{
    ArrayBuilder, BinaryBuilder, BooleanBuilder, Date32Builder, Float32Builder, Float64Builder,
    Int16Builder, Int32Builder, Int64Builder, Int8Builder, StringBuilder,
    TimestampMicrosecondBuilder,
};
use arrow_array::cast::AsArray;
use arrow_array::types::{
    Date32Type, Date64Type, Float32Type, Float64Type, Int16Type, Int32Type, Int64Type, Int8Type,
    TimestampMicrosecondType, TimestampMillisecondType, TimestampNanosecondType,
    TimestampSecondType, UInt16Type, UInt32Type, UInt64Type, UInt8Type,
};
use arrow_array::{Array, ArrayRef};
use arrow_schema::{DataType, TimeUnit};

/// One input value, read for copying or for a typed getter.
pub(super) enum Value<'a> {
    Null,
    Int(i64),
    Float(f64),
    Bytes(&'a [u8]),
}

/// Reads the value at `row` of `array`, or says its type is not one the row interface reads.
pub(super) fn read_value(array: &ArrayRef, row: usize) -> Result<Value<'_>, String> {
    if array.is_null(row) {
        return Ok(Value::Null);
    }
    Ok(match array.data_type() {
        DataType::Boolean => Value::Int(i64::from(array.as_boolean().value(row))),
        DataType::Int8 => Value::Int(array.as_primitive::<Int8Type>().value(row).into()),
        DataType::Int16 => Value::Int(array.as_primitive::<Int16Type>().value(row).into()),
        DataType::Int32 => Value::Int(array.as_primitive::<Int32Type>().value(row).into()),
        DataType::Int64 => Value::Int(array.as_primitive::<Int64Type>().value(row)),
        DataType::UInt8 => Value::Int(array.as_primitive::<UInt8Type>().value(row).into()),
        DataType::UInt16 => Value::Int(array.as_primitive::<UInt16Type>().value(row).into()),
        DataType::UInt32 => Value::Int(array.as_primitive::<UInt32Type>().value(row).into()),
        DataType::UInt64 => Value::Int(array.as_primitive::<UInt64Type>().value(row) as i64),
        DataType::Date32 => Value::Int(array.as_primitive::<Date32Type>().value(row).into()),
        DataType::Date64 => Value::Int(array.as_primitive::<Date64Type>().value(row)),
        DataType::Timestamp(unit, _) => Value::Int(match unit {
            TimeUnit::Second => array.as_primitive::<TimestampSecondType>().value(row),
            TimeUnit::Millisecond => array.as_primitive::<TimestampMillisecondType>().value(row),
            TimeUnit::Microsecond => array.as_primitive::<TimestampMicrosecondType>().value(row),
            TimeUnit::Nanosecond => array.as_primitive::<TimestampNanosecondType>().value(row),
        }),
        DataType::Float32 => Value::Float(array.as_primitive::<Float32Type>().value(row).into()),
        DataType::Float64 => Value::Float(array.as_primitive::<Float64Type>().value(row)),
        DataType::Utf8 => Value::Bytes(array.as_string::<i32>().value(row).as_bytes()),
        DataType::LargeUtf8 => Value::Bytes(array.as_string::<i64>().value(row).as_bytes()),
        DataType::Binary => Value::Bytes(array.as_binary::<i32>().value(row)),
        DataType::LargeBinary => Value::Bytes(array.as_binary::<i64>().value(row)),
        other => {
            return Err(format!(
                "its type {other} is not one the row interface reads"
            ))
        }
    })
}

/// A builder for one output column, typed by the declared schema.
pub(super) enum OutColumn {
    Boolean(BooleanBuilder),
    Int8(Int8Builder),
    Int16(Int16Builder),
    Int32(Int32Builder),
    Int64(Int64Builder),
    Float32(Float32Builder),
    Float64(Float64Builder),
    Utf8(StringBuilder),
    Binary(BinaryBuilder),
    Timestamp(TimestampMicrosecondBuilder, Option<Arc<str>>),
    Date32(Date32Builder),
}

impl OutColumn {
    /// A builder for `data_type`; the declared schema comes from DDL, so every type DDL names is here.
    pub(super) fn new(data_type: &DataType, rows: usize) -> OutColumn {
        match data_type {
            DataType::Boolean => OutColumn::Boolean(BooleanBuilder::with_capacity(rows)),
            DataType::Int8 => OutColumn::Int8(Int8Builder::with_capacity(rows)),
            DataType::Int16 => OutColumn::Int16(Int16Builder::with_capacity(rows)),
            DataType::Int32 => OutColumn::Int32(Int32Builder::with_capacity(rows)),
            DataType::Int64 => OutColumn::Int64(Int64Builder::with_capacity(rows)),
            DataType::Float32 => OutColumn::Float32(Float32Builder::with_capacity(rows)),
            DataType::Float64 => OutColumn::Float64(Float64Builder::with_capacity(rows)),
            DataType::Binary => OutColumn::Binary(BinaryBuilder::with_capacity(rows, rows * 16)),
            DataType::Timestamp(_, tz) => {
                OutColumn::Timestamp(TimestampMicrosecondBuilder::with_capacity(rows), tz.clone())
            }
            DataType::Date32 => OutColumn::Date32(Date32Builder::with_capacity(rows)),
            _ => OutColumn::Utf8(StringBuilder::with_capacity(rows, rows * 16)),
        }
    }

    pub(super) fn len(&self) -> usize {
        match self {
            OutColumn::Boolean(b) => b.len(),
            OutColumn::Int8(b) => b.len(),
            OutColumn::Int16(b) => b.len(),
            OutColumn::Int32(b) => b.len(),
            OutColumn::Int64(b) => b.len(),
            OutColumn::Float32(b) => b.len(),
            OutColumn::Float64(b) => b.len(),
            OutColumn::Utf8(b) => b.len(),
            OutColumn::Binary(b) => b.len(),
            OutColumn::Timestamp(b, _) => b.len(),
            OutColumn::Date32(b) => b.len(),
        }
    }

    /// Bytes one value takes in the column besides its data: the fixed width, or the offset of a string or
    /// binary value (the validity bit is not counted).
    pub(super) fn slot_bytes(&self) -> u64 {
        match self {
            OutColumn::Boolean(_) | OutColumn::Int8(_) => 1,
            OutColumn::Int16(_) => 2,
            OutColumn::Int32(_) | OutColumn::Float32(_) | OutColumn::Date32(_) => 4,
            OutColumn::Utf8(_) | OutColumn::Binary(_) => 4,
            OutColumn::Int64(_) | OutColumn::Float64(_) | OutColumn::Timestamp(..) => 8,
        }
    }

    pub(super) fn type_name(&self) -> &'static str {
        match self {
            OutColumn::Boolean(_) => "BOOLEAN",
            OutColumn::Int8(_) => "TINYINT",
            OutColumn::Int16(_) => "SMALLINT",
            OutColumn::Int32(_) => "INT",
            OutColumn::Int64(_) => "BIGINT",
            OutColumn::Float32(_) => "FLOAT",
            OutColumn::Float64(_) => "DOUBLE",
            OutColumn::Utf8(_) => "STRING",
            OutColumn::Binary(_) => "BINARY",
            OutColumn::Timestamp(..) => "TIMESTAMP",
            OutColumn::Date32(_) => "DATE",
        }
    }

    pub(super) fn append_null(&mut self) {
        match self {
            OutColumn::Boolean(b) => b.append_null(),
            OutColumn::Int8(b) => b.append_null(),
            OutColumn::Int16(b) => b.append_null(),
            OutColumn::Int32(b) => b.append_null(),
            OutColumn::Int64(b) => b.append_null(),
            OutColumn::Float32(b) => b.append_null(),
            OutColumn::Float64(b) => b.append_null(),
            OutColumn::Utf8(b) => b.append_null(),
            OutColumn::Binary(b) => b.append_null(),
            OutColumn::Timestamp(b, _) => b.append_null(),
            OutColumn::Date32(b) => b.append_null(),
        }
    }

    /// Appends an integer, refusing one that does not fit the column.
    pub(super) fn append_int(&mut self, v: i64) -> Result<(), String> {
        let narrow = |ty: &str| format!("{v} does not fit a {ty} column");
        match self {
            OutColumn::Boolean(b) => b.append_value(v != 0),
            OutColumn::Int8(b) => b.append_value(v.try_into().map_err(|_| narrow("TINYINT"))?),
            OutColumn::Int16(b) => b.append_value(v.try_into().map_err(|_| narrow("SMALLINT"))?),
            OutColumn::Int32(b) => b.append_value(v.try_into().map_err(|_| narrow("INT"))?),
            OutColumn::Int64(b) => b.append_value(v),
            OutColumn::Float32(b) => b.append_value(v as f32),
            OutColumn::Float64(b) => b.append_value(v as f64),
            OutColumn::Timestamp(b, _) => b.append_value(v),
            OutColumn::Date32(b) => b.append_value(v.try_into().map_err(|_| narrow("DATE"))?),
            other => {
                return Err(format!(
                    "an integer cannot go into a {} column",
                    other.type_name()
                ))
            }
        }
        Ok(())
    }

    pub(super) fn append_float(&mut self, v: f64) -> Result<(), String> {
        match self {
            OutColumn::Float32(b) => b.append_value(v as f32),
            OutColumn::Float64(b) => b.append_value(v),
            other => {
                return Err(format!(
                    "a float cannot go into a {} column (use weir::out_i64 for integers)",
                    other.type_name()
                ))
            }
        }
        Ok(())
    }

    pub(super) fn append_bytes(&mut self, v: &[u8]) -> Result<(), String> {
        match self {
            OutColumn::Binary(b) => b.append_value(v),
            OutColumn::Utf8(b) => b.append_value(
                std::str::from_utf8(v).map_err(|e| format!("the value is not UTF-8: {e}"))?,
            ),
            other => {
                return Err(format!(
                    "bytes cannot go into a {} column",
                    other.type_name()
                ))
            }
        }
        Ok(())
    }

    pub(super) fn finish(self) -> ArrayRef {
        match self {
            OutColumn::Boolean(mut b) => Arc::new(b.finish()),
            OutColumn::Int8(mut b) => Arc::new(b.finish()),
            OutColumn::Int16(mut b) => Arc::new(b.finish()),
            OutColumn::Int32(mut b) => Arc::new(b.finish()),
            OutColumn::Int64(mut b) => Arc::new(b.finish()),
            OutColumn::Float32(mut b) => Arc::new(b.finish()),
            OutColumn::Float64(mut b) => Arc::new(b.finish()),
            OutColumn::Utf8(mut b) => Arc::new(b.finish()),
            OutColumn::Binary(mut b) => Arc::new(b.finish()),
            OutColumn::Timestamp(mut b, tz) => Arc::new(b.finish().with_timezone_opt(tz)),
            OutColumn::Date32(mut b) => Arc::new(b.finish()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_are_range_checked_per_column_type() {
        let mut column = OutColumn::new(&DataType::Int8, 1);
        assert!(column.append_int(127).is_ok());
        assert_eq!(
            column.append_int(128).unwrap_err(),
            "128 does not fit a TINYINT column"
        );
        let mut column = OutColumn::new(&DataType::Utf8, 1);
        assert!(column
            .append_bytes(&[0xff])
            .unwrap_err()
            .contains("not UTF-8"));
        assert!(column.append_float(1.0).unwrap_err().contains("STRING"));
    }
}
