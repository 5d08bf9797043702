//! The layout of a group's state key, which decides the order of the aggregation's state.
//!
//! - With a window: the window's end, then its start (8 bytes each, ordered so that byte order is numeric
//!   order), then the group key. Keys sort by window end, so the windows a watermark closes are one range
//!   at the front ([`ending_after`]), and the first 16 bytes name the sled entry a window's groups share.
//! - Without a window: one byte, a stable hash bucket of the group key, then the group key; the bucket
//!   names the sled entry, which spreads the groups over [`BUCKETS`] entries.

/// Bytes of the window prefix: end, then start.
pub(super) const WINDOW_LEN: usize = 16;
/// Bytes of the bucket prefix of a key without a window.
pub(super) const BUCKET_LEN: usize = 1;
/// Groups without a window are spread over this many sled entries.
const BUCKETS: u32 = 64;

/// Appends the window prefix of `[start, end)`.
pub(super) fn push_window(key: &mut Vec<u8>, start: i64, end: i64) {
    key.extend_from_slice(&ordered(end));
    key.extend_from_slice(&ordered(start));
}

/// Appends a key without a window: its bucket, then the group key.
pub(super) fn push_unwindowed(key: &mut Vec<u8>, group_key: &[u8]) {
    key.push(bucket(group_key));
    key.extend_from_slice(group_key);
}

/// The window `(start, end)` of a windowed key.
pub(super) fn window(key: &[u8]) -> (i64, i64) {
    (unordered(&key[8..16]), unordered(&key[0..8]))
}

/// The group key of a windowed key.
pub(super) fn windowed_group(key: &[u8]) -> &[u8] {
    &key[WINDOW_LEN..]
}

/// The smallest key of a window ending after `watermark`: every key below it is a window that ends at or
/// before the watermark.
pub(super) fn ending_after(watermark: i64) -> Vec<u8> {
    ordered(watermark.saturating_add(1)).to_vec()
}

/// The sled entry of a group without a window: FNV-1a of its key, so it is the same in every run.
fn bucket(key: &[u8]) -> u8 {
    let hash = key.iter().fold(0x811c_9dc5u32, |h, b| {
        (h ^ u32::from(*b)).wrapping_mul(0x0100_0193)
    });
    (hash % BUCKETS) as u8
}

/// Big-endian with the sign bit flipped, so byte order is numeric order.
fn ordered(value: i64) -> [u8; 8] {
    ((value as u64) ^ (1 << 63)).to_be_bytes()
}

fn unordered(bytes: &[u8]) -> i64 {
    let mut raw = [0u8; 8];
    raw.copy_from_slice(&bytes[..8]);
    (u64::from_be_bytes(raw) ^ (1 << 63)) as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windowed_keys_sort_by_end_and_read_back() {
        let mut early = Vec::new();
        push_window(&mut early, -5_000, 5_000);
        early.extend_from_slice(b"zed");
        let mut late = Vec::new();
        push_window(&mut late, 0, 10_000);
        late.extend_from_slice(b"amy");
        assert!(
            early < late,
            "the earlier end sorts first, whatever the group"
        );
        assert_eq!(window(&early), (-5_000, 5_000));
        assert_eq!(windowed_group(&late), b"amy");
        assert!(early < ending_after(5_000) && ending_after(5_000) <= late);
        assert!(ending_after(4_999) <= early);
    }
}
