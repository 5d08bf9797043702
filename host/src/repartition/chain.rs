//! Which of an upstream task's writes to a repartition partition committed, decided by the reader.
//!
//! tansu (and librdkafka's mock cluster) hand the records of aborted transactions to read_committed
//! consumers, so a downstream task cannot trust the broker to drop the writes of an upstream attempt that
//! was killed or fenced. Each write names the input offsets its batch went from and to (an attempt), and
//! the committed attempts form a chain: each starts where the previous one ended. Three facts about the
//! writers make the chain readable as it arrives, one partition at a time, in log order:
//!
//! 1. An upstream attempt starts at its partition's committed offset (or where the previous attempt
//!    ended, once that one has committed): an aborted attempt is followed by a retry from the same offset,
//!    and once an attempt from offset `p` commits, no attempt from `p` is written again.
//! 2. A zombie's attempt never commits: its producer was fenced by its successor's. Its writes are mostly
//!    in the log before its successor's; a broker that did not check the producer epoch on produce could
//!    append records it had queued when it was paused after them (tansu 0.6 does check it).
//! 3. After an attempt commits, its writer appends a marker starting where the attempt ended; a new owner
//!    appends one at its committed offset when it takes the partition over.
//!
//! So an attempt from the current position `p` has committed once a record starting where it ended follows
//! it: only the committed attempt from `p` is followed by its owner's next write. When several from `p` are
//! followed (an aborted retry over the same input, followed by the same record), the last in the log
//! before the follower is the retry that committed. A zombie's attempt is followed by nothing of its own,
//! and by a successor's record only if it ended on the committed chain, later than the successor's first
//! attempt from `p`, which is then already decided. Until an attempt is decided it is pending: the
//! downstream task holds it, and commits its own offset no further than the first pending record, so a
//! restart reads it again. Records starting before `p` are behind the chain (aborted attempts, or records
//! read again after a restart) and are dropped.
//!
//! A marker carries no rows, only the upstream's watermark as of its offset, which counts once the chain
//! has reached that offset (before, rows in between could still be behind it).

use std::collections::BTreeMap;

use crate::kafka::TopicPartition;

/// `from` of an upstream attempt or marker written before its partition had a committed offset.
pub(crate) const NOTHING_COMMITTED: i64 = -1;

/// One upstream write read from a repartition partition.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Write<T> {
    /// Its offset in the repartition partition.
    pub(crate) offset: i64,
    /// The input offset the upstream attempt started from ([`NOTHING_COMMITTED`] for the first).
    pub(crate) from: i64,
    /// The input offset its batch ended at; equal to `from` for a marker.
    pub(crate) to: i64,
    /// The upstream's watermark once its input up to `to` is read.
    pub(crate) watermark: Option<i64>,
    /// Its rows for this partition (`None` for a marker).
    pub(crate) rows: Option<T>,
}

impl<T> Write<T> {
    fn is_marker(&self) -> bool {
        self.rows.is_none()
    }
}

/// Where one upstream partition's chain stands, as the downstream task's state keeps it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub(crate) struct UpstreamPosition {
    /// The input offset the applied attempts reached (`None`: nothing read from this upstream yet).
    pub(crate) to: Option<i64>,
    /// The upstream's watermark as of `to`.
    pub(crate) watermark: Option<i64>,
}

/// What a downstream task keeps of its chains in its changelog: each upstream's position, and the first
/// offset of its repartition partition to read again when it moves (the first write not yet decided).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct ChainsState {
    pub(crate) upstreams: Vec<(String, i32, UpstreamPosition)>,
    pub(crate) resume_at: Option<i64>,
}

/// One upstream partition's chain: its position and the writes not yet decided.
#[derive(Debug)]
struct Chain<T> {
    position: UpstreamPosition,
    pending: Vec<Write<T>>,
}

/// The chains of every upstream partition writing to one repartition partition; see the module's doc.
#[derive(Debug)]
pub(crate) struct Chains<T> {
    chains: BTreeMap<TopicPartition, Chain<T>>,
}

impl<T> Chains<T> {
    /// Chains resuming at `positions` (a downstream task's restored state).
    pub(crate) fn new(positions: BTreeMap<TopicPartition, UpstreamPosition>) -> Chains<T> {
        let chains = (positions.into_iter())
            .map(|(upstream, position)| {
                let pending = Vec::new();
                (upstream, Chain { position, pending })
            })
            .collect();
        Chains { chains }
    }

    /// Takes `write` of `upstream`; returns the attempts it showed to have committed, in chain order, with
    /// their rows to apply. Their upstream's position has moved past them.
    pub(crate) fn offer(&mut self, upstream: &TopicPartition, write: Write<T>) -> Vec<Write<T>> {
        let chain = self.chains.entry(upstream.clone()).or_insert(Chain {
            position: UpstreamPosition::default(),
            pending: Vec::new(),
        });
        // The first write seen of an upstream starts its chain: earlier ones would be in this partition
        // before it, and a restart resumes at or before the first write still undecided.
        let at = *chain.position.to.get_or_insert(write.from);
        if write.from < at {
            return Vec::new();
        }
        chain.pending.push(write);
        chain.decide()
    }

    /// Chains resuming from a task's kept `state`.
    pub(crate) fn from_state(state: ChainsState) -> Chains<T> {
        let positions = (state.upstreams.into_iter())
            .map(|(topic, partition, position)| ((topic, partition), position))
            .collect();
        Chains::new(positions)
    }

    /// What the task keeps of them.
    pub(crate) fn state(&self) -> ChainsState {
        ChainsState {
            upstreams: (self.chains.iter())
                .map(|((topic, partition), chain)| (topic.clone(), *partition, chain.position))
                .collect(),
            resume_at: self.first_pending(),
        }
    }

    /// The first offset of this partition holding a write not yet decided: a downstream task commits no
    /// further, so that a restart reads it again.
    pub(crate) fn first_pending(&self) -> Option<i64> {
        (self.chains.values())
            .flat_map(|chain| chain.pending.iter().map(|w| w.offset))
            .min()
    }

    /// The smallest watermark over `upstreams` (all the input's partitions): `None` while any of them has
    /// none, since its records could still be anything.
    pub(crate) fn watermark(&self, upstreams: &[TopicPartition]) -> Option<i64> {
        upstreams
            .iter()
            .map(|tp| self.chains.get(tp).and_then(|c| c.position.watermark))
            .try_fold(i64::MAX, |lowest, w| w.map(|w| lowest.min(w)))
            .filter(|_| !upstreams.is_empty())
    }
}

impl<T> Chain<T> {
    /// Moves the position along every attempt that the pending writes show to have committed.
    fn decide(&mut self) -> Vec<Write<T>> {
        let mut applied = Vec::new();
        loop {
            let at = self.position.to.expect("set by the first write");
            self.apply_markers(at);
            // The last attempt from here that a write starting where it ended follows.
            let followed = (0..self.pending.len()).rev().find(|&i| {
                let attempt = &self.pending[i];
                attempt.from == at
                    && !attempt.is_marker()
                    && self.pending[i + 1..].iter().any(|w| w.from == attempt.to)
            });
            let Some(followed) = followed else { break };
            let end = self.pending[followed].to;
            let attempt = self.pending.remove(followed);
            self.position.to = Some(end);
            self.raise_watermark(attempt.watermark);
            self.pending.retain(|w| w.from >= end);
            applied.push(attempt);
        }
        applied
    }

    /// Markers at or behind the position: their watermark counts, and they are done.
    fn apply_markers(&mut self, at: i64) {
        let mut watermark = None;
        self.pending.retain(|w| {
            let done = w.is_marker() && w.from <= at;
            if done && w.from == at {
                watermark = watermark.max(w.watermark);
            }
            !done
        });
        self.raise_watermark(watermark);
    }

    fn raise_watermark(&mut self, watermark: Option<i64>) {
        self.position.watermark = self.position.watermark.max(watermark);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tp(partition: i32) -> TopicPartition {
        ("tx".to_string(), partition)
    }

    fn attempt(offset: i64, from: i64, to: i64, rows: &str) -> Write<String> {
        Write {
            offset,
            from,
            to,
            watermark: Some(to * 10),
            rows: Some(rows.to_string()),
        }
    }

    fn marker(offset: i64, at: i64) -> Write<String> {
        Write {
            offset,
            from: at,
            to: at,
            watermark: Some(at * 10),
            rows: None,
        }
    }

    /// Offers `writes` of upstream 0 in order; returns the rows applied.
    fn applied(chains: &mut Chains<String>, writes: Vec<Write<String>>) -> Vec<String> {
        (writes.into_iter())
            .flat_map(|w| chains.offer(&tp(0), w))
            .map(|w| w.rows.unwrap())
            .collect()
    }

    #[test]
    fn an_attempt_counts_once_a_write_starting_where_it_ended_follows() {
        let mut chains = Chains::new(BTreeMap::new());
        assert!(applied(&mut chains, vec![attempt(0, NOTHING_COMMITTED, 10, "a")]).is_empty());
        assert_eq!(chains.first_pending(), Some(0));
        assert_eq!(applied(&mut chains, vec![attempt(1, 10, 20, "b")]), ["a"]);
        assert_eq!(chains.first_pending(), Some(1));
        assert_eq!(applied(&mut chains, vec![marker(2, 20)]), ["b"]);
        assert_eq!(chains.first_pending(), None);
        let position = chains.state().upstreams[0].2;
        assert_eq!(position.to, Some(20));
        assert_eq!(position.watermark, Some(200));
    }

    #[test]
    fn a_zombie_s_attempt_is_superseded_by_its_successor_s_from_the_same_offset() {
        let mut chains = Chains::new(BTreeMap::new());
        let writes = vec![
            attempt(0, 10, 30, "zombie"),
            marker(1, 10), // the new owner takes over at the committed offset 10
            attempt(2, 10, 20, "b"),
            attempt(3, 20, 30, "c"),
            marker(4, 30),
        ];
        assert_eq!(applied(&mut chains, writes), ["b", "c"]);
    }

    #[test]
    fn a_zombie_s_attempt_written_after_its_successor_s_does_not_hold_the_chain() {
        let mut chains = Chains::new(BTreeMap::new());
        let writes = vec![
            marker(0, 10), // the new owner takes over at the committed offset 10
            attempt(1, 10, 20, "b"),
            attempt(2, 10, 30, "zombie"), // queued before the pause, delivered after it
            marker(3, 20),
            attempt(4, 20, 40, "c"),
            marker(5, 40),
        ];
        assert_eq!(applied(&mut chains, writes), ["b", "c"]);
        assert_eq!(chains.first_pending(), None);
    }

    #[test]
    fn an_aborted_retry_is_the_same_attempt_and_counts_once() {
        let mut chains = Chains::new(BTreeMap::new());
        let writes = vec![
            attempt(0, 10, 20, "b"),
            attempt(1, 10, 20, "b again"),
            marker(2, 20),
        ];
        assert_eq!(applied(&mut chains, writes), ["b again"]);
    }

    #[test]
    fn a_restart_reads_again_from_the_first_pending_write_and_drops_what_it_applied() {
        let mut chains = Chains::new(BTreeMap::new());
        chains.offer(&tp(1), attempt(0, 5, 6, "other upstream, pending"));
        assert_eq!(
            applied(&mut chains, vec![attempt(1, 10, 20, "a"), marker(2, 20)]),
            ["a"]
        );
        assert_eq!(chains.first_pending(), Some(0));
        // A new owner of the downstream partition resumes with the positions committed with offset 0.
        let mut resumed = Chains::from_state(chains.state());
        assert!(resumed.offer(&tp(1), attempt(0, 5, 6, "other")).is_empty());
        assert!(applied(&mut resumed, vec![attempt(1, 10, 20, "a"), marker(2, 20)]).is_empty());
        let applied_other: Vec<String> = (resumed.offer(&tp(1), marker(3, 6)).into_iter())
            .map(|w| w.rows.unwrap())
            .collect();
        assert_eq!(applied_other, ["other"]);
    }

    #[test]
    fn a_marker_s_watermark_waits_until_the_chain_reaches_it() {
        let mut chains = Chains::new(BTreeMap::new());
        applied(&mut chains, vec![attempt(0, 0, 10, "a"), marker(1, 10)]);
        assert_eq!(chains.watermark(&[tp(0)]), Some(100));
        // The next attempt is pending: a marker beyond it cannot move the watermark past its rows.
        chains.offer(&tp(0), attempt(2, 10, 20, "b"));
        assert_eq!(chains.watermark(&[tp(0)]), Some(100));
        chains.offer(&tp(0), marker(3, 20));
        assert_eq!(chains.watermark(&[tp(0)]), Some(200));
    }

    #[test]
    fn the_watermark_is_the_smallest_over_every_upstream_and_none_while_one_has_none() {
        let mut chains = Chains::new(BTreeMap::new());
        chains.offer(&tp(0), attempt(0, 0, 10, "a"));
        chains.offer(&tp(0), marker(1, 10));
        assert_eq!(chains.watermark(&[tp(0)]), Some(100));
        assert_eq!(chains.watermark(&[tp(0), tp(1)]), None);
        chains.offer(&tp(1), attempt(2, 0, 5, "b"));
        chains.offer(&tp(1), marker(3, 5));
        assert_eq!(chains.watermark(&[tp(0), tp(1)]), Some(50));
    }
}
