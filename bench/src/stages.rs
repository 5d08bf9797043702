//! The batches' stage times, from the pipeline's `--progress json` lines: where a run's wall time went.

use std::time::Duration;

use serde::Deserialize;

/// The batches' stage times, summed over a run from the `--progress json` lines (milliseconds).
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct StageTimes {
    /// Polling the source.
    pub poll: f64,
    /// Deserializer and transforms, wall time.
    pub process: f64,
    /// The deserializer, summed over worker threads.
    pub decode: f64,
    /// The transforms, summed over worker threads.
    pub transform: f64,
    /// The window/state operator and the transforms after it.
    pub aggregate: f64,
    /// Producing until the broker has the output.
    pub produce: f64,
    /// Checkpoint work.
    pub checkpoint: f64,
}

impl StageTimes {
    pub(crate) fn add(&mut self, other: &StageTimes) {
        self.poll += other.poll;
        self.process += other.process;
        self.decode += other.decode;
        self.transform += other.transform;
        self.aggregate += other.aggregate;
        self.produce += other.produce;
        self.checkpoint += other.checkpoint;
    }

    /// The stages as shares of `wall`, in the data path's order: poll, decode, UDF, window/state, produce,
    /// checkpoint, and the rest (start-up above all; none when the overlapping stages add up to more than
    /// the wall time). Decode and UDF split the process stage's wall time in proportion to their summed
    /// thread times.
    pub fn shares_of(&self, wall: Duration) -> [(&'static str, f64); 7] {
        let wall_ms = wall.as_secs_f64() * 1000.0;
        let threads = self.decode + self.transform;
        let (decode, udf) = if threads > 0.0 {
            (
                self.process * self.decode / threads,
                self.process * self.transform / threads,
            )
        } else {
            (0.0, 0.0)
        };
        let stages = [
            ("poll", self.poll),
            ("decode", decode),
            ("UDF", udf),
            ("window/state", self.aggregate),
            ("produce", self.produce),
            ("checkpoint", self.checkpoint),
        ];
        let counted: f64 = stages.iter().map(|(_, ms)| ms).sum();
        let mut shares = [("other", 0.0); 7];
        for (share, (name, ms)) in shares.iter_mut().zip(stages) {
            *share = (name, 100.0 * ms / wall_ms);
        }
        shares[6] = ("other", 100.0 * (wall_ms - counted).max(0.0) / wall_ms);
        shares
    }
}
