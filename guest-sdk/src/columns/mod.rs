//! Arrow arrays to and from the component interface's columns (`column` in `wit/weir-udf.wit`).
//!
//! A column crosses in Arrow's own layout: the values buffer as bytes, the byte offsets of strings and
//! binaries, and one validity byte per row when there are nulls. Booleans are the one change: Arrow packs
//! them as bits, the interface as a byte each, which is what guests in any language can index. The host
//! and the Rust component glue both use these functions, so the layout has one implementation; they are
//! pure, and nothing here depends on running inside WebAssembly.
//!
//! ```
//! use std::sync::Arc;
//! use weir_guest::arrow_array::{Array, ArrayRef, Int16Array};
//! use weir_guest::columns::{from_column, to_column};
//!
//! let shorts: ArrayRef = Arc::new(Int16Array::from(vec![Some(7), None, Some(-1)]));
//! let column = to_column(shorts.as_ref()).unwrap();
//! assert_eq!(column.data, [7, 0, 0, 0, 255, 255]);
//! assert_eq!(column.valid, Some(vec![1, 0, 1]));
//! let back = from_column(column, shorts.data_type(), 3).unwrap();
//! assert_eq!(&back, &shorts);
//! ```

use arrow_array::cast::AsArray;
use arrow_array::{make_array, Array, ArrayRef, RecordBatch, RecordBatchOptions};
use arrow_buffer::{BooleanBuffer, Buffer, NullBuffer, OffsetBuffer};
use arrow_data::ArrayData;
use arrow_schema::{DataType, SchemaRef};

/// One column's buffers, as the WIT record `column` carries them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    /// The values: `rows` of them at the type's [`width`], little-endian; for utf8 and binary, every
    /// value's bytes one after another.
    pub data: Vec<u8>,
    /// For utf8 and binary only: `rows + 1` little-endian i32 byte offsets into `data`, from 0.
    pub offsets: Vec<u8>,
    /// One byte per row, 0 where the value is null; `None` when no value is null.
    pub valid: Option<Vec<u8>>,
}

/// Whether the interface carries arrays of `ty`: booleans, integers, floats, date32, timestamps, utf8 and
/// binary.
pub fn carried(ty: &DataType) -> bool {
    matches!(
        ty,
        DataType::Boolean
            | DataType::Int8
            | DataType::Int16
            | DataType::Int32
            | DataType::Int64
            | DataType::UInt8
            | DataType::UInt16
            | DataType::UInt32
            | DataType::UInt64
            | DataType::Float32
            | DataType::Float64
            | DataType::Date32
            | DataType::Timestamp(_, _)
            | DataType::Utf8
            | DataType::Binary
    )
}

/// The bytes one value of `ty` takes in `data`, or `None` for the types with offsets (utf8, binary).
pub fn width(ty: &DataType) -> Option<usize> {
    match ty {
        DataType::Boolean => Some(1),
        DataType::Utf8 | DataType::Binary => None,
        other => other.primitive_width(),
    }
}

/// The buffers of `array`, whose type is [`carried`]. A sliced array gives only its own rows, with string
/// offsets counted from 0.
pub fn to_column(array: &dyn Array) -> Result<Column, String> {
    let valid = array
        .nulls()
        .filter(|nulls| nulls.null_count() > 0)
        .map(|nulls| nulls.iter().map(u8::from).collect());
    let (data, offsets) = match array.data_type() {
        DataType::Boolean => (
            array.as_boolean().values().iter().map(u8::from).collect(),
            Vec::new(),
        ),
        DataType::Utf8 => {
            let strings = array.as_string::<i32>();
            value_bytes(strings.offsets(), strings.values())
        }
        DataType::Binary => {
            let binaries = array.as_binary::<i32>();
            value_bytes(binaries.offsets(), binaries.values())
        }
        ty => {
            let width = width(ty)
                .filter(|_| carried(ty))
                .ok_or_else(|| format!("{ty} is not carried by the component interface"))?;
            let data = array.to_data();
            let start = data.offset() * width;
            let values = &data.buffers()[0].as_slice()[start..start + data.len() * width];
            (values.to_vec(), Vec::new())
        }
    };
    Ok(Column {
        data,
        offsets,
        valid,
    })
}

/// The bytes of a utf8 or binary array's values and its offsets counted from 0.
fn value_bytes(offsets: &OffsetBuffer<i32>, values: &Buffer) -> (Vec<u8>, Vec<u8>) {
    let first = offsets[0];
    let last = offsets[offsets.len() - 1];
    let data = values.as_slice()[first as usize..last as usize].to_vec();
    let offsets = offsets
        .iter()
        .flat_map(|offset| (offset - first).to_le_bytes())
        .collect();
    (data, offsets)
}

/// The columns of `batch`, whose types are all [`carried`]; an error names the column.
pub fn batch_to_columns(batch: &RecordBatch) -> Result<Vec<Column>, String> {
    batch
        .schema()
        .fields()
        .iter()
        .zip(batch.columns())
        .map(|(field, array)| {
            to_column(array.as_ref()).map_err(|e| format!("column `{}`: {e}", field.name()))
        })
        .collect()
}

/// The batch of `rows` rows of `schema` in `columns`, one per field, each checked as [`from_column`]
/// checks it; an error names the column and its type.
pub fn batch_from_columns(
    columns: Vec<Column>,
    schema: &SchemaRef,
    rows: usize,
) -> Result<RecordBatch, String> {
    if columns.len() != schema.fields().len() {
        return Err(format!(
            "the batch has {} columns, but the schema has {}",
            columns.len(),
            schema.fields().len()
        ));
    }
    let arrays = schema
        .fields()
        .iter()
        .zip(columns)
        .map(|(field, column)| {
            from_column(column, field.data_type(), rows)
                .map_err(|e| format!("column `{}` ({}): {e}", field.name(), field.data_type()))
        })
        .collect::<Result<Vec<ArrayRef>, String>>()?;
    RecordBatch::try_new_with_options(
        schema.clone(),
        arrays,
        &RecordBatchOptions::new().with_row_count(Some(rows)),
    )
    .map_err(|e| e.to_string())
}

/// `Ok` when a buffer has the length `rows` values need.
fn checked_len(buffer: &str, len: usize, want: usize, rows: usize) -> Result<(), String> {
    if len == want {
        Ok(())
    } else {
        Err(format!(
            "`{buffer}` has {len} bytes, but {rows} rows take {want}"
        ))
    }
}

/// The array of `rows` values of `ty` in `column`, checked by Arrow's own validation: every buffer has the
/// length `rows` values take, offsets rise within `data`, and utf8 is valid UTF-8.
pub fn from_column(column: Column, ty: &DataType, rows: usize) -> Result<ArrayRef, String> {
    if !carried(ty) {
        return Err(format!("{ty} is not carried by the component interface"));
    }
    let nulls = match column.valid {
        Some(valid) => {
            checked_len("valid", valid.len(), rows, rows)?;
            Some(NullBuffer::from_iter(valid.iter().map(|v| *v != 0)))
        }
        None => None,
    };
    let data = ArrayData::builder(ty.clone()).len(rows).nulls(nulls);
    let data = match width(ty) {
        None => {
            checked_len("offsets", column.offsets.len(), 4 * (rows + 1), rows)?;
            data.add_buffer(Buffer::from_vec(column.offsets))
                .add_buffer(Buffer::from_vec(column.data))
        }
        Some(_) if !column.offsets.is_empty() => {
            return Err("`offsets` is only for utf8 and binary columns, and is not empty".into())
        }
        Some(width) => {
            checked_len("data", column.data.len(), rows * width, rows)?;
            if *ty == DataType::Boolean {
                let bits = BooleanBuffer::from_iter(column.data.iter().map(|b| *b != 0));
                data.add_buffer(bits.into_inner())
            } else {
                data.add_buffer(Buffer::from_vec(column.data))
            }
        }
    };
    // `align_buffers` copies a buffer only when the allocator handed back one that is not aligned for the
    // type; `build` validates lengths, offsets and UTF-8.
    let data = data
        .align_buffers(true)
        .build()
        .map_err(|e| e.to_string())?;
    Ok(make_array(data))
}

mod wit_mapping;

#[cfg(test)]
mod tests;
