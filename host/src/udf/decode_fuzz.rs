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

/// A batch of strings, numbers (with nulls) and lists.
fn valid_batch() -> RecordBatch {
    let names: ArrayRef = Arc::new(StringArray::from(vec![Some("ann"), None, Some("li")]));
    let counts: ArrayRef = Arc::new(Int64Array::from(vec![Some(1), Some(-7), None]));
    let lists: ArrayRef = Arc::new(ListArray::from_iter_primitive::<Int32Type, _, _>(vec![
        Some(vec![Some(1), None]),
        None,
        Some(vec![]),
    ]));
    RecordBatch::try_from_iter([("name", names), ("count", counts), ("list", lists)]).unwrap()
}

/// A valid envelope: [`valid_batch`] and two row errors.
fn valid_envelope() -> (Vec<u8>, SchemaRef) {
    let batch = valid_batch();
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

#[test]
fn a_body_length_of_64_gb_is_an_error_not_an_allocation() {
    // arrow-ipc 59's StreamReader allocated a message body at its declared length before reading it, so a
    // damaged length aborted the process (found by `damaged_envelopes_never_panic`).
    let (mut envelope, schema) = valid_envelope();
    let ipc = batch_to_ipc(&valid_batch()).unwrap();
    let start = envelope
        .windows(ipc.len())
        .position(|window| window == ipc.as_slice())
        .expect("the envelope holds the batch's IPC stream");
    let at = start + body_length_field(&ipc);
    envelope[at..at + 8].copy_from_slice(&(64i64 << 30).to_le_bytes());
    assert!(decode_output(&envelope, &schema, 3, u64::MAX).is_err());
}

/// Where, in an IPC stream, the record batch message's metadata stores its body length (a little-endian
/// i64). Messages are framed as `0xFFFFFFFF`, the metadata's length (i32), the metadata, the body.
fn body_length_field(ipc: &[u8]) -> usize {
    let mut at = 0;
    loop {
        let length = i32::from_le_bytes(ipc[at + 4..at + 8].try_into().unwrap()) as usize;
        let metadata = &ipc[at + 8..at + 8 + length];
        let message = arrow_ipc::root_as_message(metadata).unwrap();
        let body = message.bodyLength();
        if message.header_type() == arrow_ipc::MessageHeader::RecordBatch {
            let offset = metadata
                .windows(8)
                .position(|bytes| bytes == body.to_le_bytes())
                .expect("the metadata holds the body length");
            return at + 8 + offset;
        }
        at += 8 + length + body as usize;
    }
}
