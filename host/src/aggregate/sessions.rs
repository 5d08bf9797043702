//! Session windows: each group's events open `[ts, ts + gap)` intervals, which merge with each other and
//! with the group's open sessions; merged sessions merge their accumulators.

use super::grouping::BatchGroups;
use super::state_key;
use super::{Accumulator, Aggregator, Group, WindowBy, WindowKind};

/// A session after a batch's events and the group's open sessions were swept together.
struct MergedSession {
    start: i64,
    end: i64,
    /// The open sessions it swallowed, as (start, end).
    open: Vec<(i64, i64)>,
    /// The batch's rows that fall in it.
    rows: Vec<u32>,
}

/// The state key of a session: end, start, group key (the layout of every window).
fn session_key(start: i64, end: i64, group_key: &[u8]) -> Vec<u8> {
    let mut key = Vec::with_capacity(state_key::WINDOW_LEN + group_key.len());
    state_key::push_window(&mut key, start, end);
    key.extend_from_slice(group_key);
    key
}

/// Sweeps a group's open sessions and a batch's events (each opening `[ts, ts + gap)`) together in start
/// order, merging what overlaps.
fn sweep(open: &[(i64, i64)], events: &[(i64, u32)], gap_ms: i64) -> Vec<MergedSession> {
    let mut items: Vec<(i64, i64, Option<u32>)> =
        open.iter().map(|(s, e)| (*s, *e, None)).collect();
    items.extend(
        events
            .iter()
            .map(|(ts, row)| (*ts, ts + gap_ms, Some(*row))),
    );
    items.sort_unstable_by_key(|(start, end, row)| (*start, *end, row.is_some()));
    let mut merged: Vec<MergedSession> = Vec::new();
    for (start, end, row) in items {
        match merged.last_mut() {
            Some(session) if start < session.end => session.end = session.end.max(end),
            _ => merged.push(MergedSession {
                start,
                end,
                open: Vec::new(),
                rows: Vec::new(),
            }),
        }
        let session = merged.last_mut().expect("just pushed");
        match row {
            Some(row) => session.rows.push(row),
            None => session.open.push((start, end)),
        }
    }
    merged
}

impl Aggregator {
    /// Places a group's events of this batch (sorted by time) into sessions: each event opens
    /// `[ts, ts + gap)`; overlapping intervals, including the group's open sessions, merge. Merged open
    /// sessions have their accumulators merged under the new session's key; the events become (row, slot)
    /// pairs of the resulting sessions.
    pub(super) fn assign_sessions(
        &mut self,
        group_key: &[u8],
        events: &[(i64, u32)],
        gap_ms: i64,
        groups: &mut BatchGroups,
    ) {
        let open: Vec<(i64, i64)> = self
            .sessions
            .get(group_key)
            .map(|s| s.iter().copied().collect())
            .unwrap_or_default();
        let merged = sweep(&open, events, gap_ms);
        let sessions = self.sessions.entry(group_key.to_vec()).or_default();
        for MergedSession {
            start,
            end,
            open: old,
            rows,
        } in merged
        {
            if rows.is_empty() {
                continue;
            }
            let key = session_key(start, end, group_key);
            // Fold the open sessions this one swallowed into one accumulator set, earliest first.
            let mut accumulators: Option<Vec<Accumulator>> = None;
            for (old_start, old_end) in old {
                sessions.remove(&(old_start, old_end));
                let old_key = session_key(old_start, old_end, group_key);
                self.dirty.remove(&old_key);
                if let Some(group) = self.groups.remove(&old_key) {
                    self.progress.num_rows_removed += 1;
                    self.removed_keys.push(old_key);
                    match &mut accumulators {
                        None => accumulators = Some(group.accumulators),
                        Some(into) => {
                            for ((aggregate, into), from) in self
                                .aggregates
                                .iter()
                                .zip(into.iter_mut())
                                .zip(group.accumulators)
                            {
                                aggregate.merge(into, from);
                            }
                        }
                    }
                }
            }
            if let Some(accumulators) = accumulators {
                self.groups.insert(
                    key.clone(),
                    Group {
                        accumulators,
                        window: Some((start, end)),
                    },
                );
            }
            sessions.insert((start, end));
            let slot = groups.slot(&key);
            groups.pairs.extend(rows.into_iter().map(|row| (row, slot)));
        }
    }

    /// Drops a closed session from the group's index of open sessions.
    pub(super) fn forget_session(&mut self, key: &[u8]) {
        if let Some(WindowBy {
            kind: WindowKind::Session { .. },
            ..
        }) = self.spec.window
        {
            let group_key = state_key::windowed_group(key);
            if let Some(sessions) = self.sessions.get_mut(group_key) {
                sessions.remove(&state_key::window(key));
                if sessions.is_empty() {
                    self.sessions.remove(group_key);
                }
            }
        }
    }
}
