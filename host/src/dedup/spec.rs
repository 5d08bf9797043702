//! What deduplication is, as the pipeline file and the builder say it.

use std::fmt;

/// Spark's `dropDuplicates(columns)` and `dropDuplicatesWithinWatermark(columns)` on a stream with a
/// watermark: a row whose `columns` repeat those of an earlier row is dropped, and what is remembered is
/// forgotten as the watermark passes, so the state stays bounded.
///
/// ```
/// use weir::DedupSpec;
/// let exact = DedupSpec::new(["event_id", "ts"]);
/// let within = DedupSpec::new(["event_id"]).within_watermark();
/// assert_eq!(exact.to_string(), "dropDuplicates(event_id, ts)");
/// assert_eq!(within.to_string(), "dropDuplicatesWithinWatermark(event_id)");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DedupSpec {
    /// The columns whose values make a row a duplicate.
    pub columns: Vec<String>,
    /// `dropDuplicatesWithinWatermark`: a key is remembered until the watermark passes its first row's
    /// event time plus the watermark's delay, so duplicates with other event times within the delay are
    /// dropped too. Otherwise (`dropDuplicates`), until the watermark passes the first row's event time.
    pub within_watermark: bool,
}

impl DedupSpec {
    /// `dropDuplicates` over `columns`.
    pub fn new<S: Into<String>>(columns: impl IntoIterator<Item = S>) -> DedupSpec {
        DedupSpec {
            columns: columns.into_iter().map(Into::into).collect(),
            within_watermark: false,
        }
    }

    /// The same as `dropDuplicatesWithinWatermark`.
    pub fn within_watermark(mut self) -> DedupSpec {
        self.within_watermark = true;
        self
    }
}

impl fmt::Display for DedupSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self.within_watermark {
            true => "dropDuplicatesWithinWatermark",
            false => "dropDuplicates",
        };
        write!(f, "{name}({})", self.columns.join(", "))
    }
}
