use std::sync::Arc;

use arrow_array::{ArrayRef, Int64Array, RecordBatch, StringArray, TimestampMillisecondArray};
use arrow_schema::{
    DataType as ArrowType, Field as ArrowField, Schema, SchemaRef, TimeUnit as ArrowUnit,
};

use super::*;
use crate::udf::component::bindings::types::{DataType, Field};

/// One column of each family: the layout of each type is tested in `weir_guest::columns`; here, the
/// schema mapping and the batch around the columns.
fn sample() -> RecordBatch {
    let columns: Vec<(&str, ArrayRef)> = vec![
        (
            "count",
            Arc::new(Int64Array::from(vec![None, Some(i64::MAX), Some(-1)])),
        ),
        (
            "name",
            Arc::new(StringArray::from(vec![Some("ann"), None, Some("zoë")])),
        ),
        (
            "at",
            Arc::new(
                TimestampMillisecondArray::from(vec![Some(1_700_000_000_000), None, Some(0)])
                    .with_timezone("UTC"),
            ),
        ),
    ];
    RecordBatch::try_from_iter(columns).unwrap()
}

fn round_trip(batch: &RecordBatch) -> RecordBatch {
    let fields = schema_to_wit(&batch.schema()).unwrap();
    let schema = schema_from_wit(&fields).unwrap();
    assert_eq!(schema.fields(), batch.schema().fields());
    batch_from_wit(batch_to_wit(batch).unwrap(), &schema).unwrap()
}

#[test]
fn a_batch_crosses_to_the_interface_and_back_unchanged() {
    let batch = sample();
    assert_eq!(round_trip(&batch), batch);
}

#[test]
fn a_sliced_batch_crosses_as_its_own_rows() {
    let batch = sample().slice(1, 2);
    assert_eq!(round_trip(&batch), batch);
}

fn one_column(name: &str, ty: ArrowType, nullable: bool) -> SchemaRef {
    Arc::new(Schema::new(vec![ArrowField::new(name, ty, nullable)]))
}

fn returned(rows: u32, data: &[u8], offsets: &[u8], valid: Option<&[u8]>) -> Batch {
    Batch {
        rows,
        columns: vec![Column {
            data: data.to_vec(),
            offsets: offsets.to_vec(),
            valid: valid.map(<[u8]>::to_vec),
        }],
    }
}

#[test]
fn a_malformed_column_is_refused_with_its_name_and_type() {
    let ints = one_column("n", ArrowType::Int32, true);
    assert_eq!(
        batch_from_wit(returned(2, &[1, 0, 0, 0], &[], None), &ints).unwrap_err(),
        "column `n` (Int32): `data` has 4 bytes, but 2 rows take 8"
    );
    let missing = Batch {
        rows: 0,
        columns: vec![],
    };
    assert!(batch_from_wit(missing, &ints)
        .unwrap_err()
        .contains("0 columns"));
}

#[test]
fn a_null_in_a_column_declared_not_nullable_is_refused() {
    let ids = one_column("id", ArrowType::Int64, false);
    let error = batch_from_wit(returned(1, &[0; 8], &[], Some(&[0])), &ids).unwrap_err();
    assert!(error.contains("id"), "{error}");
}

#[test]
fn types_the_interface_does_not_carry_are_named() {
    let schema = Schema::new(vec![ArrowField::new(
        "tags",
        ArrowType::List(Arc::new(ArrowField::new("item", ArrowType::Utf8, true))),
        true,
    )]);
    let error = schema_to_wit(&schema).unwrap_err();
    assert!(error.starts_with("column `tags` is List"), "{error}");
    let twice = [
        Field {
            name: "a".into(),
            data_type: DataType::Int64,
            nullable: true,
        },
        Field {
            name: "a".into(),
            data_type: DataType::Utf8,
            nullable: true,
        },
    ];
    assert!(schema_from_wit(&twice)
        .unwrap_err()
        .contains("two columns named `a`"));
}

#[test]
fn the_output_size_is_the_bytes_of_the_buffers() {
    let batch = Batch {
        rows: 2,
        columns: vec![
            Column {
                data: vec![0; 16],
                offsets: vec![],
                valid: Some(vec![1, 0]),
            },
            Column {
                data: b"abc".to_vec(),
                offsets: vec![0; 12],
                valid: None,
            },
        ],
    };
    assert_eq!(output_size(&batch), 16 + 2 + 3 + 12);
}

#[test]
fn timestamps_keep_their_unit_and_zone() {
    let ty = ArrowType::Timestamp(ArrowUnit::Microsecond, Some("Europe/Paris".into()));
    let schema = Schema::new(vec![ArrowField::new("at", ty, true)]);
    let fields = schema_to_wit(&schema).unwrap();
    assert_eq!(schema_from_wit(&fields).unwrap().as_ref(), &schema);
}
