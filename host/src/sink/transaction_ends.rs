//! One transaction end at a time among the producers of an instance.
//!
//! tansu 0.6 moves a transaction from prepared to committed (and only then commits the offsets sent with
//! it) once every transaction overlapping it in a partition is prepared, and then completes those too. When
//! one producer's end completes another's while that other is still appending its markers, the markers
//! appended after that are recorded on a transaction already finished, and stay there: every later
//! transaction in those partitions waits on it for good. Their offsets never commit, and read_committed
//! consumers stop at the first of them; the repartition topic's downstream tasks stall (seen in the
//! paused-instance test, with tansu's log showing `otherwise=Some(Committed)` for the producer).
//!
//! The race needs two transaction ends at the same time. A group member ends one per partition, in
//! parallel; registering a `transactional.id` also ends (aborts) what the previous owner left open. Taking
//! these in turn removes the race within an instance, on any broker, though Kafka does not need it: -3%
//! throughput for one member with 4 producers and -9% with 8 (docs/benchmarks.md). Two instances can
//! still end transactions at the same time: rarer, and not fixed here (docs/scaling-out.md).

use std::sync::{Arc, Mutex};

/// The turn shared by producers whose transaction ends must not overlap; cloning shares it.
#[derive(Clone, Default)]
pub(crate) struct TransactionEnds(Arc<Mutex<()>>);

impl TransactionEnds {
    /// Runs `end` (a commit, an abort, or a registration) once no producer sharing this turn runs one.
    pub(crate) fn in_turn<T>(&self, end: impl FnOnce() -> T) -> T {
        let _turn = self
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        end()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use super::*;

    #[test]
    fn ends_sharing_a_turn_never_overlap() {
        let ends = TransactionEnds::default();
        let (inside, most) = (&AtomicUsize::new(0), &AtomicUsize::new(0));
        std::thread::scope(|s| {
            for _ in 0..4 {
                let ends = ends.clone();
                s.spawn(move || {
                    ends.in_turn(|| {
                        let now = inside.fetch_add(1, Ordering::SeqCst) + 1;
                        most.fetch_max(now, Ordering::SeqCst);
                        std::thread::sleep(Duration::from_millis(20));
                        inside.fetch_sub(1, Ordering::SeqCst);
                    })
                });
            }
        });
        assert_eq!(most.load(Ordering::SeqCst), 1);
    }
}
