//! Event-time windows and the watermark: which windows a record belongs to, and when a window is complete.
//!
//! Windows are aligned as Spark aligns them: `[start, end)` with starts at `offset + k × slide`. Tumbling
//! windows are sliding windows whose slide equals their size. Times are milliseconds since the epoch.

mod alignment;
mod event_time;
mod watermark;

pub(crate) use alignment::partitions_to_hold;
pub(crate) use event_time::event_times;
pub use watermark::WatermarkSpec;
pub(crate) use watermark::{WatermarkSnapshot, WatermarkTracker};

/// A tumbling or sliding window over an event-time column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowSpec {
    /// Window length in ms.
    pub size_ms: i64,
    /// Distance between window starts in ms (equal to `size_ms` for tumbling windows).
    pub slide_ms: i64,
    /// Shift of window starts from the epoch in ms (Spark's `startTime`).
    pub offset_ms: i64,
}

impl WindowSpec {
    /// Tumbling windows of `size_ms`.
    pub fn tumbling(size_ms: i64) -> Self {
        WindowSpec {
            size_ms,
            slide_ms: size_ms,
            offset_ms: 0,
        }
    }

    /// Checks the sizes: positive, slide at most the size, offset smaller than the slide.
    pub fn validate(&self) -> Result<(), String> {
        if self.size_ms <= 0 || self.slide_ms <= 0 {
            return Err("window size and slide must be more than zero".into());
        }
        if self.slide_ms > self.size_ms {
            return Err(format!(
                "the slide ({} ms) is longer than the window ({} ms)",
                self.slide_ms, self.size_ms
            ));
        }
        if self.offset_ms.abs() >= self.slide_ms {
            return Err(format!(
                "the offset ({} ms) must be smaller than the slide ({} ms)",
                self.offset_ms, self.slide_ms
            ));
        }
        Ok(())
    }

    /// Appends the start of every window containing `ts` to `starts`, latest first.
    ///
    /// ```
    /// use weir::WindowSpec;
    /// let mut starts = Vec::new();
    /// WindowSpec::tumbling(10_000).starts(1_700_000_012_345, &mut starts);
    /// assert_eq!(starts, [1_700_000_010_000]);
    ///
    /// starts.clear();
    /// let sliding = WindowSpec { size_ms: 10_000, slide_ms: 5_000, offset_ms: 0 };
    /// sliding.starts(12_345, &mut starts);
    /// assert_eq!(starts, [10_000, 5_000]);
    /// ```
    pub fn starts(&self, ts: i64, starts: &mut Vec<i64>) {
        let last = ts - (ts - self.offset_ms).rem_euclid(self.slide_ms);
        let mut start = last;
        while start > ts - self.size_ms {
            starts.push(start);
            start -= self.slide_ms;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn starts(spec: WindowSpec, ts: i64) -> Vec<i64> {
        let mut out = Vec::new();
        spec.starts(ts, &mut out);
        out
    }

    #[test]
    fn tumbling_windows_align_to_the_epoch_and_include_their_start() {
        let w = WindowSpec::tumbling(10);
        assert_eq!(starts(w, 0), [0]);
        assert_eq!(starts(w, 9), [0]);
        assert_eq!(starts(w, 10), [10]);
        assert_eq!(starts(w, -1), [-10]);
    }

    #[test]
    fn sliding_windows_cover_every_window_holding_the_time() {
        let w = WindowSpec {
            size_ms: 10,
            slide_ms: 3,
            offset_ms: 0,
        };
        // windows [3,13), [6,16), [9,19), [12,22) contain 12; [0,10) does not
        assert_eq!(starts(w, 12), [12, 9, 6, 3]);
        let shifted = WindowSpec {
            size_ms: 10,
            slide_ms: 10,
            offset_ms: 2,
        };
        assert_eq!(starts(shifted, 11), [2]);
        assert_eq!(starts(shifted, 12), [12]);
    }

    #[test]
    fn bad_sizes_are_refused() {
        assert!(WindowSpec {
            size_ms: 5,
            slide_ms: 10,
            offset_ms: 0
        }
        .validate()
        .is_err());
        assert!(WindowSpec {
            size_ms: 0,
            slide_ms: 0,
            offset_ms: 0
        }
        .validate()
        .is_err());
        assert!(WindowSpec {
            size_ms: 10,
            slide_ms: 5,
            offset_ms: 5
        }
        .validate()
        .is_err());
    }
}
