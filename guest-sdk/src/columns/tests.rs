use std::sync::Arc;

use arrow_array::{
    ArrayRef, BinaryArray, BooleanArray, Float32Array, Int16Array, Int64Array, Int8Array,
    RecordBatch, StringArray, Time32SecondArray, TimestampMillisecondArray, UInt64Array,
};
use arrow_schema::DataType;

use super::*;

fn sample() -> RecordBatch {
    let columns: Vec<(&str, ArrayRef)> = vec![
        (
            "flag",
            Arc::new(BooleanArray::from(vec![Some(true), None, Some(false)])),
        ),
        (
            "small",
            Arc::new(Int8Array::from(vec![Some(-3), Some(7), None])),
        ),
        (
            "count",
            Arc::new(Int64Array::from(vec![None, Some(i64::MAX), Some(-1)])),
        ),
        (
            "big",
            Arc::new(UInt64Array::from(vec![Some(u64::MAX), Some(0), None])),
        ),
        (
            "ratio",
            Arc::new(Float32Array::from(vec![Some(0.5), None, Some(-2.25)])),
        ),
        (
            "name",
            Arc::new(StringArray::from(vec![Some("ann"), None, Some("zoë")])),
        ),
        (
            "raw",
            Arc::new(BinaryArray::from(vec![
                Some(&b"\x00\x01"[..]),
                None,
                Some(b""),
            ])),
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

fn round_trip(array: &ArrayRef) -> ArrayRef {
    let column = to_column(array.as_ref()).unwrap();
    from_column(column, array.data_type(), array.len()).unwrap()
}

#[test]
fn every_carried_type_crosses_and_comes_back_unchanged() {
    for array in sample().columns() {
        assert_eq!(&round_trip(array), array, "{}", array.data_type());
    }
}

#[test]
fn a_sliced_array_crosses_as_its_own_rows() {
    // Slices share the parent's buffers with an offset: only the slice's rows cross, with string offsets
    // counted from 0.
    let batch = sample().slice(1, 2);
    for array in batch.columns() {
        assert_eq!(&round_trip(array), array, "{}", array.data_type());
    }
    let name = to_column(batch.column(5).as_ref()).unwrap();
    assert_eq!(name.data, "zoë".as_bytes());
    assert_eq!(name.offsets, [0, 0, 0, 0, 0, 0, 0, 0, 4, 0, 0, 0]);
    assert_eq!(name.valid, Some(vec![0, 1]));
}

/// The examples in `column`'s documentation in wit/weir-udf.wit.
#[test]
fn columns_are_laid_out_as_the_wit_file_says() {
    let shorts: ArrayRef = Arc::new(Int16Array::from(vec![Some(7), None, Some(-1)]));
    let column = to_column(shorts.as_ref()).unwrap();
    assert_eq!(column.data, [7, 0, 0, 0, 255, 255]);
    assert!(column.offsets.is_empty());
    assert_eq!(column.valid, Some(vec![1, 0, 1]));

    let strings: ArrayRef = Arc::new(StringArray::from(vec!["ab", "c"]));
    let column = to_column(strings.as_ref()).unwrap();
    assert_eq!(column.data, b"abc");
    assert_eq!(column.offsets, [0, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0]);
    assert_eq!(column.valid, None);

    let bools: ArrayRef = Arc::new(BooleanArray::from(vec![true, false, true]));
    assert_eq!(to_column(bools.as_ref()).unwrap().data, [1, 0, 1]);
}

fn column(data: &[u8], offsets: &[u8], valid: Option<&[u8]>) -> Column {
    Column {
        data: data.to_vec(),
        offsets: offsets.to_vec(),
        valid: valid.map(<[u8]>::to_vec),
    }
}

#[test]
fn buffers_of_the_wrong_length_are_refused() {
    let ints = DataType::Int32;
    assert_eq!(
        from_column(column(&[1, 0, 0, 0], &[], None), &ints, 2).unwrap_err(),
        "`data` has 4 bytes, but 2 rows take 8"
    );
    assert_eq!(
        from_column(column(&[1, 0, 0, 0], &[], Some(&[1, 1])), &ints, 1).unwrap_err(),
        "`valid` has 2 bytes, but 1 rows take 1"
    );
    assert_eq!(
        from_column(column(&[1, 0, 0, 0], &[0; 8], None), &ints, 1).unwrap_err(),
        "`offsets` is only for utf8 and binary columns, and is not empty"
    );
    assert_eq!(
        from_column(
            column(b"ab", &[0, 0, 0, 0, 2, 0, 0, 0], None),
            &DataType::Utf8,
            2
        )
        .unwrap_err(),
        "`offsets` has 8 bytes, but 2 rows take 12"
    );
}

#[test]
fn offsets_past_the_data_and_invalid_utf8_are_refused() {
    let past_end = column(b"ab", &[0, 0, 0, 0, 9, 0, 0, 0], None);
    assert!(from_column(past_end, &DataType::Utf8, 1).is_err());
    let backwards = column(b"ab", &[0, 0, 0, 0, 2, 0, 0, 0, 1, 0, 0, 0], None);
    assert!(from_column(backwards, &DataType::Utf8, 2).is_err());
    let invalid = column(&[0xff, 0xfe], &[0, 0, 0, 0, 2, 0, 0, 0], None);
    let error = from_column(invalid.clone(), &DataType::Utf8, 1).unwrap_err();
    assert!(error.contains("utf-8") || error.contains("UTF8"), "{error}");
    // The same bytes are a valid binary.
    assert!(from_column(invalid, &DataType::Binary, 1).is_ok());
}

#[test]
fn types_the_interface_does_not_carry_are_refused_both_ways() {
    let list = DataType::new_list(DataType::Int32, true);
    assert!(!carried(&list));
    assert!(!carried(&DataType::Float16));
    assert!(carried(&DataType::Date32));
    let time: ArrayRef = Arc::new(Time32SecondArray::from(vec![1]));
    assert_eq!(
        to_column(time.as_ref()).unwrap_err(),
        "Time32(s) is not carried by the component interface"
    );
    let error = from_column(column(&[0; 4], &[], None), &list, 1).unwrap_err();
    assert!(
        error.ends_with("is not carried by the component interface"),
        "{error}"
    );
}
