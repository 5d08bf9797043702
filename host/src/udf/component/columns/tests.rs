use std::sync::Arc;

use arrow_array::{
    ArrayRef, BinaryArray, BooleanArray, Float32Array, Int64Array, Int8Array, RecordBatch,
    StringArray, TimestampMillisecondArray,
};
use arrow_schema::{DataType as ArrowType, Field as ArrowField, Schema, TimeUnit as ArrowUnit};

use super::*;

fn sample() -> RecordBatch {
    let columns: Vec<(&str, ArrayRef)> = vec![
        ("flag", Arc::new(BooleanArray::from(vec![Some(true), None]))),
        ("small", Arc::new(Int8Array::from(vec![Some(-3), Some(7)]))),
        (
            "count",
            Arc::new(Int64Array::from(vec![None, Some(i64::MAX)])),
        ),
        ("ratio", Arc::new(Float32Array::from(vec![Some(0.5), None]))),
        ("name", Arc::new(StringArray::from(vec![Some("ann"), None]))),
        (
            "raw",
            Arc::new(BinaryArray::from(vec![Some(&b"\x00\x01"[..]), None])),
        ),
        (
            "at",
            Arc::new(
                TimestampMillisecondArray::from(vec![Some(1_700_000_000_000), None])
                    .with_timezone("UTC"),
            ),
        ),
    ];
    RecordBatch::try_from_iter(columns).unwrap()
}

#[test]
fn a_batch_crosses_to_the_interface_and_back_unchanged() {
    let batch = sample();
    let fields = schema_to_wit(&batch.schema()).unwrap();
    let schema = schema_from_wit(&fields).unwrap();
    assert_eq!(schema.fields(), batch.schema().fields());
    let back = batch_from_wit(batch_to_wit(&batch).unwrap(), &schema).unwrap();
    assert_eq!(back, batch.with_schema(schema).unwrap());
}

#[test]
fn integers_dates_and_timestamps_cross_as_ints_and_floats_as_floats() {
    let wit = batch_to_wit(&sample()).unwrap();
    let names: Vec<&str> = wit.columns.iter().map(list_name).collect();
    assert_eq!(
        names,
        ["bools", "ints", "ints", "floats", "strings", "bytes", "ints"]
    );
    assert_eq!(wit.rows, 2);
}

#[test]
fn a_value_that_does_not_fit_its_column_is_named() {
    let schema = Arc::new(Schema::new(vec![ArrowField::new(
        "small",
        ArrowType::Int8,
        true,
    )]));
    let batch = Batch {
        rows: 2,
        columns: vec![Values::Ints(vec![Some(1), Some(300)])],
    };
    let error = batch_from_wit(batch, &schema).unwrap_err();
    assert_eq!(error, "column `small` (Int8): row 1: 300 does not fit");
}

#[test]
fn a_column_of_the_wrong_list_or_length_is_refused() {
    let schema = Arc::new(Schema::new(vec![ArrowField::new(
        "name",
        ArrowType::Utf8,
        true,
    )]));
    let wrong_list = Batch {
        rows: 1,
        columns: vec![Values::Ints(vec![Some(1)])],
    };
    assert_eq!(
        batch_from_wit(wrong_list, &schema).unwrap_err(),
        "column `name` (Utf8): it crosses as `strings`, but the UDF returned `ints`"
    );
    let short = Batch {
        rows: 2,
        columns: vec![Values::Strings(vec![Some("a".into())])],
    };
    assert_eq!(
        batch_from_wit(short, &schema).unwrap_err(),
        "column `name` (Utf8): 1 values for a batch of 2 rows"
    );
    let missing = Batch {
        rows: 0,
        columns: vec![],
    };
    assert!(batch_from_wit(missing, &schema)
        .unwrap_err()
        .contains("0 columns"));
}

#[test]
fn a_null_in_a_column_declared_not_nullable_is_refused() {
    let schema = Arc::new(Schema::new(vec![ArrowField::new(
        "id",
        ArrowType::Int64,
        false,
    )]));
    let batch = Batch {
        rows: 1,
        columns: vec![Values::Ints(vec![None])],
    };
    let error = batch_from_wit(batch, &schema).unwrap_err();
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
fn the_output_size_counts_eight_bytes_a_value_and_a_row_and_the_text() {
    let batch = Batch {
        rows: 2,
        columns: vec![
            Values::Ints(vec![Some(1), None]),
            Values::Strings(vec![Some("abc".into()), None]),
        ],
    };
    assert_eq!(output_size(&batch), 16 + 16 + (8 + 3 + 8));
}

#[test]
fn timestamps_keep_their_unit_and_zone() {
    let ty = ArrowType::Timestamp(ArrowUnit::Microsecond, Some("Europe/Paris".into()));
    let wit = type_to_wit(&ty).unwrap();
    assert_eq!(type_from_wit(&wit), ty);
}
