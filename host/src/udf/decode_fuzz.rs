//! Property tests of [`decode_output`]: whatever bytes a guest hands back, the host gets a value or an
//! error, never a panic. Inputs are random bytes and valid envelopes damaged at random (bytes overwritten,
//! truncated, lengths rewritten), which reach deeper into the Arrow IPC reader than random bytes do.

use std::sync::Arc;

use arrow_array::types::Int32Type;
use arrow_array::{ArrayRef, Int64Array, ListArray, RecordBatch, StringArray};
use arrow_schema::SchemaRef;
use proptest::prelude::*;
use weir_guest::abi::{encode_process_result, RowError};
use weir_guest::ipc::batch_to_ipc;

use super::output::decode_output;

/// A valid envelope: a batch of strings, numbers (with nulls) and lists, and two row errors.
fn valid_envelope() -> (Vec<u8>, SchemaRef) {
    let names: ArrayRef = Arc::new(StringArray::from(vec![Some("ann"), None, Some("li")]));
    let counts: ArrayRef = Arc::new(Int64Array::from(vec![Some(1), Some(-7), None]));
    let lists: ArrayRef = Arc::new(ListArray::from_iter_primitive::<Int32Type, _, _>(vec![
        Some(vec![Some(1), None]),
        None,
        Some(vec![]),
    ]));
    let batch =
        RecordBatch::try_from_iter([("name", names), ("count", counts), ("list", lists)]).unwrap();
    let errors = [
        RowError {
            row: 0,
            message: "bad".into(),
        },
        RowError {
            row: 2,
            message: "worse".into(),
        },
    ];
    let envelope = encode_process_result(&batch_to_ipc(&batch).unwrap(), &errors);
    (envelope, batch.schema())
}

#[test]
fn the_valid_envelope_decodes() {
    let (envelope, schema) = valid_envelope();
    let output = decode_output(&envelope, &schema, 3, u64::MAX).unwrap();
    assert_eq!(output.batch.num_rows(), 3);
    assert_eq!(output.row_errors.len(), 2);
    // A row error past the input is refused, not trusted.
    assert!(decode_output(&envelope, &schema, 2, u64::MAX).is_err());
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..1024)) {
        let (_, schema) = valid_envelope();
        let _ = decode_output(&bytes, &schema, 3, u64::MAX);
    }

    #[test]
    fn damaged_envelopes_never_panic(
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
        truncate in proptest::option::of(any::<prop::sample::Index>()),
    ) {
        let (mut envelope, schema) = valid_envelope();
        for (at, value) in edits {
            let i = at.index(envelope.len());
            envelope[i] = value;
        }
        if let Some(at) = truncate {
            envelope.truncate(at.index(envelope.len()));
        }
        let _ = decode_output(&envelope, &schema, 3, u64::MAX);
    }

    #[test]
    fn rewritten_lengths_never_panic(field in 0usize..64, value in any::<u32>()) {
        // Every aligned u32 in the first 256 bytes is a candidate length or offset in the IPC framing.
        let (mut envelope, schema) = valid_envelope();
        let at = (field * 4).min(envelope.len() - 4);
        envelope[at..at + 4].copy_from_slice(&value.to_le_bytes());
        let _ = decode_output(&envelope, &schema, 3, u64::MAX);
    }
}
